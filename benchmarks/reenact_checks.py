"""Checks of the reenactment pipeline that need real video and print figures (JSON).

    python benchmarks/reenact_checks.py latency      # per-frame time of the whole path
    python benchmarks/reenact_checks.py memory       # peak memory: whole franck.mp4 vs 300 frames
    python benchmarks/reenact_checks.py smoothing [S,...]  # jitter on a still head, lag after a step
    python benchmarks/reenact_checks.py eye-contact  # gaze to the camera, pixels outside the eyes
    python benchmarks/reenact_checks.py parts        # each network and paste-back on its own
    python benchmarks/reenact_checks.py stream       # frames/s of Reenactor.stream, read-ahead off/on

``--runtime onnx`` runs the networks on ONNX Runtime (latency, parts, stream).

Driving frames are franck.mp4's held-out frames (4000 on), the source the astronaut
portrait; the sample data must be fetched (``freehead data fetch-samples``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

SAMPLES = Path("data/samples")
HELD_OUT = 4000
RIGID = [*range(27, 36), 36, 39, 42, 45]
"""Keypoints that move with the head only (nose, eye corners): jitter is measured on these,
since a talking mouth moves for real on a still head."""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _driving(start: int, count: int):
    from freehead.media import open_frames

    yield from open_frames(SAMPLES / "videos/franck/franck.mp4").frames(count, start)


RUNTIME = "torch"


def _reenactor():
    from freehead import Reenactor

    return Reenactor.from_pretrained(runtime=RUNTIME)


def _portrait() -> np.ndarray:
    from freehead.media import read_image

    return read_image(SAMPLES / "portraits/astronaut.png")


def latency(frames: int, warmup: int = 20) -> dict[str, object]:
    """Median time per output frame of ``Reenactor.reenact`` with paste-back: tracking, crop,
    E_can, E_gaze, smoothing, sketch, G and paste-back into the 512² portrait."""
    r = _reenactor()
    source = r.prepare_source(_portrait())
    times = []
    t = time.perf_counter()
    for i, _ in enumerate(r.reenact(source, _driving(HELD_OUT, warmup + frames),
                                    paste_back="source", fps=24.0)):  # fmt: skip
        now = time.perf_counter()
        if i >= warmup:
            times.append(now - t)
        t = now
    return {
        "frames": len(times),
        "threads": torch.get_num_threads(),
        "median_ms": round(float(np.median(times)) * 1000, 1),
        "p90_ms": round(float(np.percentile(times, 90)) * 1000, 1),
        "output": "512x512 (pasted back)",
        "runtime": RUNTIME,
    }


def memory_run(frames: int | None) -> dict[str, object]:
    """Reenact franck.mp4 (from frame 0, ``frames`` frames or all) into a video; peak RSS."""
    import tempfile

    from freehead.apps.jobs import reenact_file
    from freehead.inference.reenactor import ReenactOptions

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        result = reenact_file(_reenactor(), [SAMPLES / "portraits/astronaut.png"],
                              SAMPLES / "videos/franck/franck.mp4", Path(d) / "out.mp4",
                              ReenactOptions(paste_back="source"), max_frames=frames)  # fmt: skip
        seconds = time.perf_counter() - t
    return {
        "frames": result.frames,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


def memory() -> dict[str, object]:
    """Peak memory of the whole video against its first 300 frames, each in a fresh process."""
    out = {}
    for label, arg in (("first_300", "300"), ("whole", "0")):
        proc = subprocess.run([sys.executable, __file__, "memory-run", arg], capture_output=True,
                              text=True, check=True)  # fmt: skip
        out[label] = json.loads(proc.stdout)
    out["difference_mb"] = round(out["whole"]["peak_rss_mb"] - out["first_300"]["peak_rss_mb"], 1)
    return out


def _measure(images: list[np.ndarray]):
    from freehead.evaluation.metrics import measure_faces

    return measure_faces(images)


def _jitter(points: list[np.ndarray]) -> float:
    """Mean frame-to-frame displacement of points ``(N, 2)`` in pixels."""
    return float(
        np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in itertools.pairwise(points)])
    )


def smoothing(strengths: tuple[float, ...] = (1.0,)) -> dict[str, object]:
    """Landmark jitter with and without smoothing, and the lag after a step.

    Jitter is the mean frame-to-frame motion of the nose and eye corners, which move with
    the head only. It is measured in two cases. (1) The stillest 48-frame stretch of the
    held-out clip, read by the labeller on the outputs and on the keypoints G is asked to
    draw (crop pixels). The head is still there, but he talks, and that motion is real.
    (2) A truly still head: copies of one frame of that stretch, each with fresh sensor-like
    noise and JPEG compression, so all the outputs' motion is jitter.

    The step: a head turn between two held-out frames, each held 15 frames, once the
    largest in the clip and once about 10 degrees; how many frames the output's yaw (as
    the labeller reads it) takes to make 90 % of its change.
    """
    r = _reenactor()
    source = r.prepare_source(_portrait())
    clip = list(_driving(HELD_OUT, 800))
    angles = np.array([m.head_angles if m is not None else [np.nan] * 3 for m in _measure(clip)])
    window = 48
    spread = [np.nanmax(np.ptp(angles[i : i + window], axis=0)) for i in range(len(clip) - window)]
    still = int(np.nanargmin(spread))
    yaw = angles[:, 0]
    a = int(np.nanargmin(yaw))
    steps = {  # the largest yaw step in the clip, and one of about 10 degrees
        "large": int(np.nanargmax(yaw)),
        "small": int(np.nanargmin(np.abs(yaw - yaw[a] - 10.0))),
    }
    out: dict[str, object] = {
        "still_frames": f"{HELD_OUT + still}-{HELD_OUT + still + window - 1}",
        "still_driver_spread_deg": round(float(spread[still]), 2),
        **{f"{k}_step": f"frame {HELD_OUT + a} (yaw {yaw[a]:.1f}) -> {HELD_OUT + b} "
           f"(yaw {yaw[b]:.1f})" for k, b in steps.items()},
    }  # fmt: skip
    # A truly still head: one frame of the still stretch, with fresh sensor-like noise
    # (Gaussian, 2 grey levels) and JPEG compression in every copy; all its jitter is noise.
    from freehead.evaluation.methods import jpeg_round_trip

    rng = np.random.default_rng(1)
    frozen = [
        jpeg_round_trip(np.clip(clip[still] + rng.normal(0, 2, clip[still].shape), 0, 255)
                        .astype(np.uint8), quality=85)
        for _ in range(window)
    ]  # fmt: skip
    render = r.render
    for strength in (0.0, *strengths):
        drawn: list[np.ndarray] = []

        def recording_render(src, motion, drawn=drawn):
            drawn.append(motion.keypoints(src.canonical)[RIGID, :2] * r.size / 2)
            return render(src, motion)

        r.render = recording_render  # type: ignore[method-assign]
        outputs = list(
            r.reenact(source, clip[still : still + window], smoothing=strength, fps=24.0)
        )
        r.render = render  # type: ignore[method-assign]
        measured = [m.keypoints_px[RIGID] for m in _measure(outputs) if m is not None]
        figures: dict[str, object] = {
            "output_jitter_px": round(_jitter(measured), 3),
            "drawn_keypoint_jitter_px": round(_jitter(drawn), 3),
        }
        frozen_out = list(r.reenact(source, frozen, smoothing=strength, fps=24.0))
        frozen_kp = [m.keypoints_px[RIGID] for m in _measure(frozen_out) if m is not None]
        figures["frozen_output_jitter_px"] = round(_jitter(frozen_kp), 3)
        for name, b in steps.items():
            step = [clip[a]] * 15 + [clip[b]] * 15
            stepped = _measure(list(r.reenact(source, step, smoothing=strength, fps=24.0)))
            out_yaw = np.array([m.head_angles[0] if m is not None else np.nan for m in stepped])
            before, after = np.nanmean(out_yaw[10:15]), np.nanmean(out_yaw[25:30])
            reached = np.flatnonzero(np.abs(out_yaw[15:] - before) >= 0.9 * abs(after - before))
            figures[f"{name}_step_output_yaw_change_deg"] = round(float(after - before), 2)
            figures[f"{name}_step_frames_to_90pct"] = int(reached[0]) + 1 if reached.size else None
        out[f"strength_{strength:g}"] = figures
    s0 = out["strength_0"]
    for strength in strengths:
        s = out[f"strength_{strength:g}"]
        for key in (
            "output_jitter_px",
            "drawn_keypoint_jitter_px",
            "frozen_output_jitter_px",
        ):
            s[key.replace("_px", "_ratio")] = round(s[key] / s0[key], 3)  # type: ignore[index]
    return out


def eye_contact(stride: int) -> dict[str, object]:
    """Eye contact on the held-out frames (every ``stride``-th): the labeller's gaze on the
    output against the camera direction, the input's for comparison, and the change of
    the pixels outside the eye regions."""
    from freehead.evaluation.metrics import angle_between_deg

    r = _reenactor()
    frames = list(_driving(HELD_OUT, 800))[::stride]
    outputs = list(r.eye_contact(frames, fps=24.0 / stride))
    camera = np.array([0.0, 0.0, -1.0])
    m_in, m_out = _measure(frames), _measure(outputs)
    err_in, err_out, outside = [], [], []
    for f, o, mi, mo in zip(frames, outputs, m_in, m_out, strict=True):
        if mi is None or mo is None or not (mi.eyes_open and mo.eyes_open):
            continue
        err_in.append(angle_between_deg(mi.gaze, camera))
        err_out.append(angle_between_deg(mo.gaze, camera))
        keep = ~mi.eye_mask(f.shape[:2])
        outside.append(float(np.abs(f.astype(np.float64) - o)[keep].mean()))
    return {
        "frames": len(err_out),
        "input_gaze_to_camera_deg": round(float(np.mean(err_in)), 2),
        "output_gaze_to_camera_deg": round(float(np.mean(err_out)), 2),
        "outside_eyes_mean_abs_change": round(float(np.mean(outside)), 6),
        "outside_eyes_mask": "the labeller's eye boxes grown by 0.6 eye widths",
    }


def _median_ms(fn, repeats: int = 50, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 2)


def parts() -> dict[str, object]:
    """Median time of each network on a real held-out crop at batch 1, and of pasting a
    256² crop back into the 512² portrait with the face mask."""
    from freehead.inference.masks import face_mask
    from freehead.models.backbone import to_network_input
    from freehead.perception.crop import paste_back
    from freehead.sketch import draw_sketch

    r = _reenactor()
    net = r.networks
    source = r.prepare_source(_portrait())
    reading = r.prepare_source(next(_driving(HELD_OUT, 1))).readings[0]
    crop = to_network_input(reading.crop)
    x = net.e_can.prepare(reading.crop)
    kp = torch.from_numpy(reading.keypoints).float()[None]
    sketch = to_network_input(draw_sketch(reading.keypoints, reading.motion.gaze_angles, r.size))
    out = net.render(source.encoding, reading.keypoints, reading.motion.gaze_angles)
    mask = face_mask([source.readings[0].keypoints, reading.keypoints], r.size)
    box = source.readings[0].box
    with torch.inference_mode():
        return {
            "runtime": RUNTIME,
            "threads": torch.get_num_threads(),
            "keypoints_ms": _median_ms(lambda: net.e_can(x)),
            "gaze_ms": _median_ms(lambda: net.e_gaze.predict(crop, kp)),
            "generator_source_ms": _median_ms(
                lambda: net.g.encode_sources(crop[None], sketch[None])
            ),
            "generator_frame_ms": _median_ms(
                lambda: net.g.render_frame(source.encoding.features, sketch, 1)
            ),
            "paste_back_512_ms": _median_ms(lambda: paste_back(source.images[0], out, box, mask)),
        }


def stream(frames: int) -> dict[str, object]:
    """Output frames per second of ``Reenactor.stream`` over held-out frames (256² crops),
    reading one frame ahead in a second thread or not."""
    r = _reenactor()
    source = r.prepare_source(_portrait())
    clip = list(_driving(HELD_OUT, frames))
    out: dict[str, object] = {"runtime": RUNTIME, "frames": frames}
    for threaded in (False, True):
        list(r.stream(source, clip[:10], threaded=threaded, fps=24.0))  # warm-up
        t = time.perf_counter()
        n = sum(1 for _ in r.stream(source, clip, threaded=threaded, fps=24.0))
        out[f"read_ahead_{'on' if threaded else 'off'}_fps"] = round(
            n / (time.perf_counter() - t), 1
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "check",
        choices=["latency", "memory", "memory-run", "smoothing", "eye-contact", "parts", "stream"],
    )
    parser.add_argument("arg", nargs="?", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtime", choices=["torch", "onnx"], default="torch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global RUNTIME
    RUNTIME = args.runtime
    if args.check == "latency":
        result = latency(int(args.arg or 200))
    elif args.check == "memory":
        result = memory()
    elif args.check == "memory-run":
        result = memory_run(int(args.arg) or None)
    elif args.check == "smoothing":
        result = smoothing(tuple(float(v) for v in (args.arg or "1").split(",")))
    elif args.check == "parts":
        result = parts()
    elif args.check == "stream":
        result = stream(int(args.arg or 300))
    else:
        result = eye_contact(int(args.arg or 8))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

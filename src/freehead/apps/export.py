"""``freehead export-onnx``: export the networks to ONNX, then check the graphs against
PyTorch on held-out real frames (franck's stills from the held-out part of the standard
split, and the two portraits)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from freehead.errors import FreeheadError


@dataclass(frozen=True)
class ExportReport:
    """The graphs written to ``folder``, the opset, and the largest absolute difference
    from PyTorch of each graph's outputs over ``frames`` held-out frames."""

    folder: str
    graphs: list[str]
    opset: int
    frames: int
    max_abs_difference: dict[str, float]


def check_frames(samples: Path) -> list[np.ndarray]:
    """Held-out sample frames: franck's stills from :data:`DRIVER_START` on (never
    trained on), then the astronaut and Grace Hopper; fetched when missing."""
    from freehead.apps.demo import DRIVER_START
    from freehead.data.samples import fetch_samples
    from freehead.media import read_image

    def stills() -> list[Path]:
        found = sorted((samples / "stills").glob("franck_*.jpg"))
        return [p for p in found if int(re.sub(r"\D", "", p.stem) or -1) >= DRIVER_START]

    if not stills():
        fetch_samples(samples)
    portraits = [samples / "portraits" / n for n in ("astronaut.png", "grace_hopper.jpg")]
    return [read_image(p) for p in [*stills(), *portraits]]


def export_onnx(out: str | Path, models: str | Path | None = None,
                generator: str | Path | None = None, samples: str | Path = "data/samples",
                threads: int = 2, overwrite: bool = False) -> ExportReport:  # fmt: skip
    """Export the networks of a model folder (None: shipped; ``generator`` overrides G's
    file) into ``out`` and check them; ``overwrite`` replaces an earlier export. The
    export is made and checked in a hidden folder inside ``out`` and moved in when whole,
    its manifest last, so an interrupted export is never taken for a finished one and
    other files in ``out`` are left alone."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FreeheadError(f"{out} is a file; --out is the folder to export into")
    if (out / "manifest.json").exists() and not overwrite:
        raise FreeheadError(f"{out} already holds an export; pass --overwrite to replace it")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FreeheadError(f"cannot make the folder {out}: {e.strerror or e}") from None
    for stale in out.glob(".export-*"):  # what an interrupted export left
        shutil.rmtree(stale, ignore_errors=True)
    try:
        return _export_checked(out, models, generator, samples, threads)
    except BaseException:
        if created:  # a failed export leaves no folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def _export_checked(out: Path, models, generator, samples, threads: int) -> ExportReport:
    """:func:`export_onnx`'s work: export and check in a hidden folder, then move in."""
    from freehead.inference.export import export_models, write_check
    from freehead.inference.networks import FaceNetworks

    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp:
        work = Path(tmp)
        networks = FaceNetworks.load(models, generator=generator, precision="float32")
        manifest = export_models(networks, work)
        onnx = FaceNetworks.load(models, generator=generator, runtime="onnx", onnx_dir=work,
                                 threads=threads)  # fmt: skip
        frames = check_frames(Path(samples))
        diffs = check_graphs(networks, onnx, frames)
        write_check(work, diffs, len(frames))
        # checked: move it in, the manifest last (an export without one is not finished)
        (out / "manifest.json").unlink(missing_ok=True)
        for name in manifest["graphs"]:
            os.replace(work / name, out / name)
        os.replace(work / "manifest.json", out / "manifest.json")
    return ExportReport(str(out), manifest["graphs"], manifest["opset"], len(frames), diffs)


def _prior(networks, source, target) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A G v2's prior flow ``(1, 1, 2, S, S)`` from one reading to another's motion, and
    for a gated G v2 the regions it may change (``(1, 1, S/4, S/4)``, else None)."""
    if not networks.needs_mesh:
        return None, None
    from freehead.inference.mesh_motion import MeshPrior
    from freehead.models.regions import gate_regions

    mesh = MeshPrior(networks.size)
    prepared = mesh.prepare(source.crop, source.landmarks, source.motion)
    flows = torch.from_numpy(
        mesh.flows([prepared], target.motion, [None], target.motion.gaze_angles)
    )[None]
    kp = torch.from_numpy(np.asarray(target.keypoints, np.float32))[None]
    return flows, gate_regions(kp, flows) if networks.gated else None


def check_graphs(networks, onnx_networks, frames: list[np.ndarray]) -> dict[str, float]:
    """Run both runtimes' :class:`~freehead.inference.networks.FaceNetworks` over real
    frames (each its own source and target) and return the largest absolute difference
    of each graph's outputs; images are in [-1, 1]."""
    from freehead.inference.faces import FaceReader
    from freehead.models.backbone import to_network_input
    from freehead.sketch import draw_sketch

    diffs = {"keypoint_estimator": 0.0, "gaze_estimator": 0.0, "generator_source": 0.0,
             "generator_frame": 0.0}  # fmt: skip
    with FaceReader(networks, video=False) as reader:
        readings = [r for r in (reader(f) for f in frames) if r is not None]
    if not readings:
        raise FreeheadError("no face in the frames to check the ONNX graphs on")
    with torch.inference_mode():
        for a, b in zip(readings, [*readings[1:], readings[0]], strict=True):
            x = networks.e_can.prepare(a.crop)
            pt, ox = networks.e_can(x), onnx_networks.e_can(x)
            for name in ("keypoints", "rotation", "translation", "scale", "deformation"):
                d = (getattr(pt, name) - getattr(ox, name)).abs().max()
                diffs["keypoint_estimator"] = max(diffs["keypoint_estimator"], float(d))
            image = to_network_input(a.crop)
            gp = networks.e_gaze.predict(image, pt.keypoints)
            go = onnx_networks.e_gaze.predict(image, pt.keypoints)
            d = max(float((gp.meshes - go.meshes).abs().max()),
                    float((gp.eye_gaze - go.eye_gaze).abs().max()))  # fmt: skip
            diffs["gaze_estimator"] = max(diffs["gaze_estimator"], d)
            sketch = to_network_input(draw_sketch(a.keypoints, a.motion.gaze_angles, networks.size))
            target = to_network_input(draw_sketch(b.keypoints, b.motion.gaze_angles, networks.size))
            fp = networks.g.encode_sources(image[None], sketch[None])
            fo = onnx_networks.g.encode_sources(image[None], sketch[None])
            d = max(
                float((u - v).abs().max()) for u, v in zip(fp.features, fo.features, strict=True)
            )
            diffs["generator_source"] = max(diffs["generator_source"], d)
            prior, gate = _prior(networks, a, b)
            op = networks.g.render_frame(fp, target, 1, prior, gate).image
            oo = onnx_networks.g.render_frame(fp, target, 1, prior, gate).image
            diffs["generator_frame"] = max(diffs["generator_frame"], float((op - oo).abs().max()))
    return diffs

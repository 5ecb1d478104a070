"""ONNX export of the three networks, and the check of the graphs against PyTorch.

Four graphs, each with a dynamic batch:

* ``keypoint_estimator.onnx``: crops at E_can's input size ``(B, 3, 128, 128)`` -> p, R,
  t, s, d;
* ``gaze_estimator.onnx``: face crops ``(B, 3, S, S)`` and keypoints ``(B, 68, 3)`` -> eye
  meshes and per-eye gaze (the eye patches are cut inside the graph);
* ``generator_source.onnx``: G's per-source part, (image, sketch) ``(N, 3, S, S)`` -> the
  features at S/2, S/4, S/8;
* ``generator_frame_m1.onnx``: G's per-frame part for one source per target: (warped-from
  image, the three feature maps, the target sketch) -> the output ``(B, 3, S, S)``; a
  G v2's also takes each source's prior flow ``(N, 2, S, S)`` (input ``prior``, the mesh
  warp, computed outside the graph), and one with ``correction_regions`` the regions it
  may change, ``(B, 1, S/4, S/4)`` (input ``gate``). N-shot with M sources uses
  ``generator_frame_mM.onnx``, exported when first needed.

``manifest.json`` records the graphs, the opset, the model files they came from (with
their SHA-256) and, after the check of ``freehead export-onnx`` (:mod:`freehead.apps.export`), the largest difference from PyTorch.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from freehead.io_utils import atomic_path, atomic_write_json, sha256_file
from freehead.models.regions import GATE_SCALE

log = logging.getLogger(__name__)

OPSET = 20
"""20 for AffineGrid (E_gaze cuts its eye patches inside the graph)."""
EXPORT_VERSION = 2
"""Bumped when the graphs change for the same model files (cached exports are redone)."""
KEYPOINTS, GAZE, SOURCE = "keypoint_estimator.onnx", "gaze_estimator.onnx", "generator_source.onnx"


def frame_graph_name(m: int) -> str:
    return f"generator_frame_m{m}.onnx"


class KeypointGraph(nn.Module):
    def __init__(self, e_can):
        super().__init__()
        self.e_can = e_can

    def forward(self, images: Tensor):
        p = self.e_can(images)
        return p.keypoints, p.rotation, p.translation, p.scale, p.deformation


class GazeGraph(nn.Module):
    def __init__(self, e_gaze):
        super().__init__()
        self.e_gaze = e_gaze

    def forward(self, images: Tensor, keypoints: Tensor):
        p = self.e_gaze.predict(images, keypoints)
        return p.meshes, p.eye_gaze


class SourceGraph(nn.Module):
    def __init__(self, g):
        super().__init__()
        self.g = g

    def forward(self, image: Tensor, sketch: Tensor):
        return tuple(self.g.flow.encode_source(image, sketch).features)


class FrameGraph(nn.Module):
    def __init__(self, g, m: int):
        super().__init__()
        self.g, self.m = g, m

    def forward(self, image: Tensor, h1: Tensor, h2: Tensor, h3: Tensor, target_sketch: Tensor,
                prior: Tensor | None = None, gate: Tensor | None = None):  # fmt: skip
        from freehead.models.generator import SourceFeatures

        flows = None if prior is None else prior.view(-1, self.m, *prior.shape[1:])
        features = SourceFeatures(image, [h1, h2, h3])
        return self.g.render_frame(features, target_sketch, self.m, flows, gate).image


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            batch_axes: dict[str, str]) -> None:  # fmt: skip
    """Trace ``module`` on ``args`` and write the graph atomically."""
    module.eval()
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about fixed image sizes
        torch.onnx.export(
            module, args, str(tmp), input_names=inputs, output_names=outputs,
            dynamic_axes={name: {0: axis} for name, axis in batch_axes.items()},
            opset_version=OPSET, dynamo=False,
        )  # fmt: skip


def export_frame_graph(g, m: int, out: Path) -> Path:
    """G's per-frame graph for ``m`` sources per target. A G v2's prior hint is padded
    with zero channels (:meth:`~freehead.models.generator.FlowNetwork.pad_hint_channels`:
    the same function, and ONNX Runtime's fast convolution layout)."""
    if g.config.uses_prior:
        g = copy.deepcopy(g)
        g.flow.pad_hint_channels()
    s = g.config.image_size
    x = torch.zeros(m, 3, s, s)
    with torch.no_grad():
        feats = g.flow.encode_source(x, x).features
    path = out / frame_graph_name(m)
    names = ["image", "h1", "h2", "h3", "target_sketch"]
    args = (x, *feats, torch.zeros(1, 3, s, s))
    if g.config.uses_prior:
        names.append("prior")
        args = (*args, torch.zeros(m, 2, s, s))
    if g.config.correction_regions:
        names.append("gate")
        args = (*args, torch.zeros(1, 1, s // GATE_SCALE, s // GATE_SCALE))
    per_target = ("target_sketch", "gate", "output")
    axes = {n: "n" for n in names if n not in per_target} | {n: "b" for n in per_target}
    _export(FrameGraph(g, m), args, path, names, ["output"], axes)
    return path


def export_models(networks, out: str | Path) -> dict:
    """Export PyTorch :class:`~freehead.inference.networks.FaceNetworks` into ``out``;
    returns the manifest (also written as ``out/manifest.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s, k = networks.size, networks.e_can.config.input_size
    crops = torch.zeros(1, 3, k, k)
    _export(KeypointGraph(networks.e_can), (crops,), out / KEYPOINTS, ["images"],
            ["keypoints", "rotation", "translation", "scale", "deformation"],
            {n: "b" for n in ("images", "keypoints", "rotation", "translation", "scale",
                              "deformation")})  # fmt: skip
    with torch.no_grad():
        kp = networks.e_can(crops).keypoints
    _export(GazeGraph(networks.e_gaze), (torch.zeros(1, 3, s, s), kp), out / GAZE,
            ["images", "keypoints"], ["meshes", "eye_gaze"],
            {n: "b" for n in ("images", "keypoints", "meshes", "eye_gaze")})  # fmt: skip
    x = torch.zeros(1, 3, s, s)
    _export(SourceGraph(networks.g), (x, x), out / SOURCE, ["image", "sketch"],
            ["h1", "h2", "h3"], {n: "n" for n in ("image", "sketch", "h1", "h2", "h3")})  # fmt: skip
    export_frame_graph(networks.g, 1, out)
    manifest = {
        "opset": OPSET,
        "image_size": s,
        "graphs": [KEYPOINTS, GAZE, SOURCE, frame_graph_name(1)],
        "models": {
            part: {"file": str(p), "sha256": sha256_file(p)} for part, p in networks.files.items()
        },
        "torch": torch.__version__,
    }
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def write_check(out: Path, diffs: dict[str, float], frames: int) -> None:
    """Add the check's figures to ``out/manifest.json``."""
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["check"] = {"frames": frames, "max_abs_difference": diffs}
    atomic_write_json(out / "manifest.json", manifest)

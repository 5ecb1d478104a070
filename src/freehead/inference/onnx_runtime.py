"""The three networks on ONNX Runtime (CPU), behind the same calls as the PyTorch modules,
so :class:`~freehead.inference.networks.FaceNetworks` runs on either.

Graphs come from :mod:`freehead.inference.export`. ``open_onnx_models`` finds them in a folder, or
exports them once into a cache keyed by the model files' contents
(``$FREEHEAD_CACHE``, default ``~/.cache/freehead``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from freehead.errors import FreeheadError
from freehead.io_utils import cache_root

log = logging.getLogger(__name__)


def _session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise FreeheadError(
            "the ONNX runtime needs onnxruntime (pip install onnxruntime)"
        ) from None
    if not path.is_file():
        raise FreeheadError(f"{path} is missing; run: freehead export-onnx --out {path.parent}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # no busy-waiting: four sessions, torch and mediapipe share a few cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for bad files
        raise FreeheadError(f"{path} is not a loadable ONNX graph ({type(e).__name__})") from e


def _np(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)


class OnnxKeypointEstimator:
    """E_can on ONNX Runtime: ``prepare`` and ``__call__`` as :class:`KeypointEstimator`."""

    def __init__(self, path: Path, config, threads: int):
        self.config = config
        self.session = _session(path, threads)

    def eval(self) -> OnnxKeypointEstimator:
        return self

    def prepare(self, crops: np.ndarray) -> Tensor:
        from freehead.models.keypoints import prepare_crops

        return prepare_crops(crops, self.config.input_size)

    def __call__(self, images: Tensor):
        from freehead.models.keypoints import KeypointPrediction

        out = self.session.run(None, {"images": _np(images)})
        return KeypointPrediction(*(torch.from_numpy(o) for o in out))


class OnnxGazeEstimator:
    """E_gaze on ONNX Runtime: ``predict`` as :class:`GazeEstimator`."""

    def __init__(self, path: Path, config, threads: int):
        self.config = config
        self.session = _session(path, threads)

    def eval(self) -> OnnxGazeEstimator:
        return self

    def predict(self, images: Tensor, keypoints: Tensor):
        from freehead.models.gaze import GazePrediction

        meshes, gaze = self.session.run(None, {"images": _np(images), "keypoints": _np(keypoints)})
        return GazePrediction(meshes=torch.from_numpy(meshes), eye_gaze=torch.from_numpy(gaze))


class OnnxGenerator:
    """G on ONNX Runtime: ``encode_sources`` and ``render_frame`` as :class:`Generator`.
    The per-frame graph for M sources is exported by ``export_frame`` when first needed."""

    def __init__(self, folder: Path, config, threads: int,
                 export_frame: Callable[[int], Path] | None = None):  # fmt: skip
        from freehead.inference.export import SOURCE

        self.config = config
        self.folder = folder
        self.threads = threads
        self.source = _session(folder / SOURCE, threads)
        self._frames: dict[int, object] = {}
        self._export_frame = export_frame

    def eval(self) -> OnnxGenerator:
        return self

    def _frame_session(self, m: int):
        from freehead.inference.export import frame_graph_name

        if m not in self._frames:
            path = self.folder / frame_graph_name(m)
            if not path.is_file() and self._export_frame is not None:
                log.info("exporting G's per-frame graph for %d sources", m)
                self._export_frame(m)
            self._frames[m] = _session(path, self.threads)
        return self._frames[m]

    def encode_sources(self, images: Tensor, sketches: Tensor):
        from freehead.models.generator import SourceFeatures

        image = images.flatten(0, 1)
        feats = self.source.run(None, {"image": _np(image), "sketch": _np(sketches.flatten(0, 1))})
        return SourceFeatures(image=image, features=[torch.from_numpy(f) for f in feats])

    def render_frame(self, sources, target_sketch: Tensor, m: int, prior: Tensor | None = None,
                     gate: Tensor | None = None):  # fmt: skip
        from freehead.models.generator import GeneratorOutput

        if (prior is not None) != bool(getattr(self.config, "uses_prior", False)):
            raise FreeheadError("a G v2's graph takes a prior flow per source; a plain G's none")
        if (gate is not None) != bool(getattr(self.config, "correction_regions", False)):
            raise FreeheadError("a gated G v2's graph takes a gate per target; other Gs' none")
        h1, h2, h3 = (_np(f) for f in sources.features)
        feed = {"image": _np(sources.image), "h1": h1, "h2": h2, "h3": h3,
                "target_sketch": _np(target_sketch)}  # fmt: skip
        if prior is not None:
            feed["prior"] = _np(prior.flatten(0, 1))
        if gate is not None:
            feed["gate"] = _np(gate)
        (out,) = self._frame_session(m).run(None, feed)
        return GeneratorOutput(image=torch.from_numpy(out), warped=None)  # type: ignore[arg-type]


def model_digest(files: dict[str, Path]) -> str:
    """A short digest of the model files (and the exporter's versions)."""
    from freehead.inference.export import EXPORT_VERSION, OPSET
    from freehead.io_utils import sha256_file

    h = hashlib.sha256(f"{torch.__version__}/{OPSET}/{EXPORT_VERSION}".encode())
    for part in sorted(files):
        h.update(part.encode() + bytes.fromhex(sha256_file(Path(files[part]))))
    return h.hexdigest()[:16]


def open_onnx_models(networks, folder: str | Path | None, threads: int) -> tuple:
    """ONNX Runtime versions of PyTorch :class:`~freehead.inference.networks.FaceNetworks`
    (E_can, E_gaze, G), from ``folder`` (made by ``freehead export-onnx``) or, when None,
    from the cache, exporting them there first."""
    from freehead.inference.export import GAZE, KEYPOINTS, export_frame_graph, export_models

    if folder is None:
        folder = cache_root() / "onnx" / model_digest(networks.files)
        if not (folder / "manifest.json").is_file():
            log.info("exporting the models to ONNX in %s (once)", folder)
            export_models(networks, folder)
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise FreeheadError(
            f"{folder} holds no exported models; run: freehead export-onnx --out {folder}"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("image_size") != networks.size:
        raise FreeheadError(f"{folder} was exported for {manifest.get('image_size')}² crops, "
                            f"not {networks.size}²")  # fmt: skip
    g = networks.g
    return (
        OnnxKeypointEstimator(folder / KEYPOINTS, networks.e_can.config, threads),
        OnnxGazeEstimator(folder / GAZE, networks.e_gaze.config, threads),
        OnnxGenerator(
            folder, g.config, threads, export_frame=lambda m: export_frame_graph(g, m, folder)
        ),
    )

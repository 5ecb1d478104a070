"""The tensor-level layer over the three networks: E_can, E_gaze and G on one runtime
(PyTorch or ONNX Runtime), behind three calls.

* :meth:`FaceNetworks.read_crop`: a face crop -> E_can's keypoints, canonical keypoints
  and the face's motion (pose, expression, E_gaze's gaze);
* :meth:`FaceNetworks.encode_sources`: source crops with their keypoints and gaze -> G's
  per-source encoding, computed once per source;
* :meth:`FaceNetworks.render`: target keypoints and gaze -> the gaze-coded sketch -> G's
  crop.

Everything above (the :class:`~freehead.inference.reenactor.Reenactor`, the evaluation,
``freehead bench``, the ONNX check) goes through these calls, so what is scored and timed
is what users run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from freehead.errors import FreeheadError
from freehead.inference.motion import FaceMotion
from freehead.inference.timing import NoClock, StageClock
from freehead.models.regions import gate_regions
from freehead.models.shipped import MODEL_FILES, SHIPPED_DIR
from freehead.sketch import draw_sketch

RUNTIMES = ("torch", "onnx")
PRECISIONS = ("auto", "float32", "bfloat16")
"""G's arithmetic on PyTorch: ``auto`` is bfloat16 where the CPU multiplies bfloat16
natively (:func:`native_bf16`), else float32. E_can and E_gaze always run in float32."""


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot products in hardware (x86 AVX512-BF16 or AMX;
    read from ``/proc/cpuinfo``, so False where that is missing). Without them oneDNN
    emulates bfloat16, which is slower than float32."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def resolve_precision(precision: str, runtime: str) -> str:
    """``precision`` (:data:`PRECISIONS`) made definite for ``runtime``: ONNX Runtime
    graphs are float32; ``auto`` picks bfloat16 with :func:`native_bf16`."""
    if precision not in PRECISIONS:
        raise FreeheadError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if runtime == "onnx":
        if precision == "bfloat16":
            raise FreeheadError("the onnx runtime runs in float32; bfloat16 is for torch")
        return "float32"
    if precision == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return precision


def set_threads(threads: int) -> None:
    """PyTorch's intra-op threads (ONNX Runtime sessions take theirs at :meth:`load`)."""
    if threads < 1:
        raise FreeheadError("the thread count must be at least 1")
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class CropReading:
    """What E_can and E_gaze read from one crop: ``keypoints`` ``(K, 3)`` p in crop
    coordinates, ``canonical`` ``(K, 3)`` p_can, and the face's ``motion``."""

    keypoints: np.ndarray
    canonical: np.ndarray
    motion: FaceMotion


@dataclass(frozen=True)
class SourceEncoding:
    """G's encoding of ``m`` source crops of one person (its per-source work)."""

    features: object
    m: int


@dataclass
class FaceNetworks:
    """E_can, E_gaze and G, on PyTorch or ONNX Runtime. Build with :meth:`load`.

    ``e_can``, ``e_gaze``, ``g``: the PyTorch modules or their ONNX Runtime stand-ins
    (:mod:`freehead.inference.onnx_runtime`), which take the same calls. ``files``: the
    model files they came from; ``clock``: where stage times go
    (:class:`~freehead.inference.timing.StageClock`; by default nowhere); ``precision``:
    G's arithmetic, ``float32`` or ``bfloat16`` (autocast over G's convolutions; the
    warps, blends and the output stay float32).
    """

    e_can: Any
    e_gaze: Any
    g: Any
    runtime: str = "torch"
    files: dict[str, Path] = field(default_factory=dict)
    clock: StageClock = field(default_factory=NoClock)
    precision: str = "float32"

    @property
    def size(self) -> int:
        """The side of G's crops (and of every face crop read)."""
        return int(self.g.config.image_size)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        keypoints: str | Path | None = None,
        gaze: str | Path | None = None,
        generator: str | Path | None = None,
        runtime: str = "torch",
        onnx_dir: str | Path | None = None,
        threads: int | None = None,
        precision: str = "auto",
    ) -> FaceNetworks:
        """Load the three networks. ``path``: a folder holding the files of
        :data:`~freehead.models.shipped.MODEL_FILES` (None: the shipped models);
        ``keypoints``/``gaze``/``generator`` override one file each.

        ``runtime="onnx"`` runs them on ONNX Runtime: from ``onnx_dir`` (made by
        ``freehead export-onnx``) or, when None, from graphs exported once into a cache.
        ``threads``: the ONNX Runtime threads (default: torch's). ``precision``: G's
        arithmetic on PyTorch (:data:`PRECISIONS`; ``auto``: :func:`resolve_precision`)."""
        from freehead.models import GazeEstimator, KeypointEstimator
        from freehead.models.generator import Generator

        if runtime not in RUNTIMES:
            raise FreeheadError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if onnx_dir is not None and runtime != "onnx":
            raise FreeheadError("an ONNX folder is only used with the onnx runtime")
        precision = resolve_precision(precision, runtime)
        folder = SHIPPED_DIR if path is None else Path(path)
        if not folder.is_dir():
            raise FreeheadError(f"{folder} is not a model folder")
        overrides = {"keypoints": keypoints, "gaze": gaze, "generator": generator}
        files = {part: Path(overrides[part] or folder / name) for part, name in MODEL_FILES.items()}
        g = Generator.from_pretrained(files["generator"]).eval()
        networks = cls(
            KeypointEstimator.from_pretrained(files["keypoints"]).eval(),
            GazeEstimator.from_pretrained(files["gaze"]).eval(),
            g,
            files=files,
            precision=precision,
        )
        if runtime == "onnx":
            from freehead.inference.onnx_runtime import open_onnx_models

            n = threads or torch.get_num_threads()
            e_can, e_gaze, g = open_onnx_models(networks, onnx_dir, n)
            networks = cls(e_can, e_gaze, g, runtime="onnx", files=files)
        return networks

    # ------------------------------------------------------------------ the three calls
    @torch.inference_mode()
    def read_crop(self, crop: np.ndarray) -> CropReading:
        """E_can and E_gaze on one ``(S, S, 3)`` uint8 RGB face crop."""
        from freehead.models.backbone import to_network_input

        with self.clock.stage("keypoints"):
            pred = self.e_can(self.e_can.prepare(crop))
        with self.clock.stage("gaze"):
            eyes = self.e_gaze.predict(to_network_input(crop), pred.keypoints)
            motion = FaceMotion.from_prediction(pred, eyes.eye_gaze[0].double().numpy())
        return CropReading(
            pred.keypoints[0].double().numpy(), pred.canonical[0].double().numpy(), motion
        )

    @torch.inference_mode()
    def encode_sources(
        self, crops: np.ndarray, keypoints: np.ndarray, gaze_angles: np.ndarray
    ) -> SourceEncoding:
        """G's per-source work on ``m`` crops of one person: ``crops`` ``(m, S, S, 3)``
        uint8, their ``keypoints`` ``(m, K, 3)`` and camera-frame gaze ``(m, 2, 2)``
        (per-eye pitch, yaw in degrees)."""
        from freehead.models.backbone import to_network_input

        sketches = np.stack(
            [draw_sketch(k, a, self.size) for k, a in zip(keypoints, gaze_angles, strict=True)]
        )
        with self._g_precision():
            features = self.g.encode_sources(
                to_network_input(np.asarray(crops))[None], to_network_input(sketches)[None]
            )
        return SourceEncoding(features, len(sketches))

    def _g_precision(self):
        """The context G runs in: bfloat16 autocast, or nothing for float32."""
        if self.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def needs_mesh(self) -> bool:
        """Whether G is a G v2, which takes a prior flow per source (the mesh warp)."""
        config = getattr(self.g, "config", None)
        return bool(getattr(config, "uses_prior", False))

    @property
    def gated(self) -> bool:
        """Whether G is a G v2 that changes the warp only where it cannot be right, and
        takes those regions as a gate (``correction_regions``)."""
        config = getattr(self.g, "config", None)
        return bool(getattr(config, "correction_regions", False))

    @torch.inference_mode()
    def render(
        self,
        source: SourceEncoding,
        keypoints: np.ndarray,
        gaze_angles: np.ndarray,
        prior: np.ndarray | None = None,
    ) -> np.ndarray:
        """G's ``(S, S, 3)`` uint8 crop of the source person with the target ``keypoints``
        ``(K, 3)`` and camera-frame gaze ``(2,)`` or per eye ``(2, 2)`` (pitch, yaw in
        degrees), drawn as a gaze-coded sketch; G v2 also takes each source's prior flow,
        ``prior`` ``(m, 2, S, S)``."""
        from freehead.models.backbone import to_image, to_network_input

        with self.clock.stage("sketch"):
            sketch = draw_sketch(keypoints, gaze_angles, self.size)
        flows = None if prior is None else torch.from_numpy(np.asarray(prior, np.float32))[None]
        gate = None
        if flows is not None and self.gated:
            with self.clock.stage("mesh"):  # part of the prior
                kp = torch.from_numpy(np.asarray(keypoints, np.float32))[None]
                gate = gate_regions(kp, flows)
        with self.clock.stage("generator"), self._g_precision():
            out = self.g.render_frame(
                source.features, to_network_input(sketch), source.m, flows, gate
            )
            return to_image(out.image[0].float())

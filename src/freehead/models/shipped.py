"""The one table of the model files shipped with freehead (``assets/models``; their figures
are in docs/models.md and docs/generator.md)."""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
"""The folder of the shipped models; any model folder holds the same file names."""

MODEL_FILES: dict[str, str] = {
    "keypoints": "keypoint_estimator.safetensors",
    "gaze": "gaze_estimator.safetensors",
    "generator": "generator.safetensors",
}
"""The file of each network (E_can, E_gaze, G) in a model folder."""


def model_file(part: str, folder: str | Path | None = None) -> Path:
    """The file of ``part`` (a key of :data:`MODEL_FILES`) in ``folder`` (None: shipped)."""
    return (SHIPPED_DIR if folder is None else Path(folder)) / MODEL_FILES[part]

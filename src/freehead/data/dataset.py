"""A dataset folder on disk (docs/data.md, "Folder layout").

::

    DATASET/
      dataset.json          settings every clip shares: crop size and config, mean-shape hash
      mean_shape.npz        the canonical mean shape the labels were fitted with
      manifest.json         every finished clip: name, identity, split, frame counts
      clips/<name>/         one finished clip (the name may hold '/': id/video/clip)
        clip.json           its metadata; written last, so its presence means "done"
        labels.npz          per-frame labels (freehead.perception.labels.ClipLabels)
        frames/000000.jpg   crops at the dataset's size, one per frame

A clip is written under a temporary folder and renamed into place when complete, so a
killed run leaves no half clip that looks finished. ``manifest.json`` is rebuilt from the
clips' ``clip.json`` files at the end of every run, so shards on several machines that
write into one folder end with one manifest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_json
from freehead.media import read_image
from freehead.perception.crop import CropConfig
from freehead.perception.labels import ClipLabels
from freehead.perception.shape import MeanShape

DATASET_FORMAT = 1
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class DatasetSettings:
    size: int
    crop: CropConfig
    mean_shape_digest: str
    jpeg_quality: int = 95
    format: int = DATASET_FORMAT

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> DatasetSettings:
        try:
            return cls(
                size=int(obj["size"]),
                crop=CropConfig(**obj["crop"]),
                mean_shape_digest=str(obj["mean_shape_digest"]),
                jpeg_quality=int(obj.get("jpeg_quality", 95)),
                format=int(obj["format"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FreeheadError(f"dataset.json is not a freehead dataset description: {e}") from e


@dataclass(frozen=True)
class ClipInfo:
    """A clip's entry in the manifest (and its ``clip.json``)."""

    name: str
    identity: str
    split: str
    source: str
    first_frame: int
    frames: int
    frames_with_face: int
    fps: float


class Dataset:
    """Read access to a dataset folder (and the few writes preprocessing needs)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def settings_path(self) -> Path:
        return self.root / "dataset.json"

    def clip_dir(self, name: str) -> Path:
        return self.root / "clips" / name

    def exists(self) -> bool:
        return self.settings_path.is_file()

    def settings(self) -> DatasetSettings:
        if not self.exists():
            raise FreeheadError(f"{self.root} is not a freehead dataset (no dataset.json)")
        try:
            obj = json.loads(self.settings_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise FreeheadError(f"cannot read {self.settings_path}: {e}") from e
        return DatasetSettings.from_json(obj)

    def mean_shape(self) -> MeanShape:
        return MeanShape.load(self.root / "mean_shape.npz")

    def create_or_check(self, settings: DatasetSettings, mean_shape: MeanShape) -> None:
        """Start a new dataset, or check that an existing one was made the same way."""
        if self.exists():
            have = self.settings()
            if have != settings:
                raise FreeheadError(
                    f"{self.root} was made with other settings ({have.to_json()}); "
                    "use the same options or another --out"
                )
            return
        self.root.mkdir(parents=True, exist_ok=True)
        mean_shape.save(self.root / "mean_shape.npz")
        atomic_write_json(self.settings_path, settings.to_json())

    def is_done(self, name: str) -> bool:
        return (self.clip_dir(name) / "clip.json").is_file()

    def clips(self) -> list[ClipInfo]:
        """All finished clips, sorted by name (read from their clip.json files)."""
        out = []
        clips_root = self.root / "clips"
        if clips_root.is_dir():
            for meta in clips_root.rglob("clip.json"):
                if any(part.startswith(".") for part in meta.relative_to(clips_root).parts):
                    continue  # an unfinished clip's temporary folder
                out.append(ClipInfo(**json.loads(meta.read_text())))
        return sorted(out, key=lambda c: c.name)

    def clip(self, name: str) -> ClipInfo:
        if not self.is_done(name):
            known = ", ".join(c.name for c in self.clips()[:10])
            raise FreeheadError(f"no clip {name!r} in {self.root} (clips: {known or 'none'})")
        return ClipInfo(**json.loads((self.clip_dir(name) / "clip.json").read_text()))

    def set_split(self, name: str, split: str) -> None:
        info = self.clip(name)
        if info.split != split:
            data = asdict(info) | {"split": split}
            atomic_write_json(self.clip_dir(name) / "clip.json", data)

    def write_manifest(self) -> list[ClipInfo]:
        """Rebuild ``manifest.json`` (a file for people and other tools, so a plain JSON
        object) from the finished clips; returns the clips it lists."""
        clips = self.clips()
        manifest = {
            "format": DATASET_FORMAT,
            "clips": [asdict(c) for c in clips],
            "frames": sum(c.frames for c in clips),
            "frames_with_face": sum(c.frames_with_face for c in clips),
            "identities": sorted({c.identity for c in clips}),
        }
        atomic_write_json(self.root / "manifest.json", manifest)
        return clips

    def labels(self, name: str) -> ClipLabels:
        return ClipLabels.load(self.clip_dir(name) / "labels.npz")

    def frame(self, name: str, index: int) -> np.ndarray:
        """Crop ``index`` (0-based within the clip) as ``(S, S, 3)`` uint8 RGB."""
        return read_image(self.clip_dir(name) / "frames" / f"{index:06d}.jpg")

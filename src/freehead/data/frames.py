"""The usable frames of one split of a dataset folder (``freehead.data.dataset``), with
their clips' labels: what training samples and the estimators' evaluation both read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from freehead.data.dataset import Dataset
from freehead.errors import FreeheadError
from freehead.media import read_image
from freehead.perception.labels import ClipLabels


@dataclass(frozen=True)
class FrameRef:
    """One frame of a dataset: its clip's name and its index within the clip."""

    clip: str
    index: int


class ClipFrames:
    """The usable frames of one split of a dataset, with their clips' labels."""

    def __init__(self, dataset: Dataset, split: str, need_open_eyes: bool = False):
        self.dataset = dataset
        self.labels: dict[str, ClipLabels] = {}
        self.frames: list[FrameRef] = []
        self.clip_frames: dict[str, np.ndarray] = {}
        self.identity: dict[str, str] = {}
        for info in dataset.clips():
            if info.split != split:
                continue
            labels = dataset.labels(info.name)
            ok = labels.valid & (labels.eyes_open if need_open_eyes else True)
            idx = np.flatnonzero(ok)
            if len(idx) == 0:
                continue
            self.labels[info.name] = labels
            self.clip_frames[info.name] = idx
            self.identity[info.name] = info.identity
            self.frames.extend(FrameRef(info.name, int(i)) for i in idx)
        if not self.frames:
            raise FreeheadError(f"{dataset.root} has no usable {split} frames")

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, ref: FrameRef) -> np.ndarray:
        return read_image(self.dataset.clip_dir(ref.clip) / "frames" / f"{ref.index:06d}.jpg")

    def evenly_spaced(self, count: int) -> list[FrameRef]:
        """At most ``count`` frames spread evenly over the split (for validation)."""
        if count >= len(self.frames):
            return list(self.frames)
        pick = np.linspace(0, len(self.frames) - 1, count).round().astype(int)
        return [self.frames[i] for i in pick]

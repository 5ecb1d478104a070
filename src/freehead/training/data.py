"""Training samples from a dataset folder (``freehead.data.dataset``).

Frames come from the JPEG crops, decoded in DataLoader worker processes; labels are read
once. Only frames flagged valid (one face) are used; gaze samples also need both eyes open.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from freehead.data.frames import ClipFrames, FrameRef
from freehead.errors import FreeheadError
from freehead.geometry import angles_from_gaze, place_eye_mesh, rotation_from_angles
from freehead.models.backbone import to_network_input
from freehead.models.keypoints import prepare_crops
from freehead.perception.crop import crop_pixels
from freehead.perception.eyes import TEMPLATE, fit_eyes
from freehead.perception.keypoints import KEYPOINT_MESH_INDICES
from freehead.perception.labels import ClipLabels
from freehead.perception.meshwarp import MeshWarp
from freehead.perception.shape import MeanShape, fit_head_pose
from freehead.sketch import draw_sketch


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes to training crops. Geometric ones are a similarity in the image
    plane (shift by up to ``shift`` of the crop, scale by up to ``scale``), applied to the
    labels too, so they stay exact. Photometric: brightness, contrast, saturation."""

    shift: float = 0.03
    scale: float = 0.05
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.15


@dataclass(frozen=True)
class StillMotion:
    """Training pairs made from still photos (one-frame clips, ``preprocess --stills``):
    the still is the target, and the source is the still warped along its face mesh to a
    random pose (yaw and pitch uniform in ``±max_yaw``/``±max_pitch``, roll in
    ``±max_roll`` degrees, scale in ``1 ± scale``) and a training video's expression
    (the offsets between two random frames of one clip). ``fraction`` of the samples are
    such pairs (when the split has both kinds)."""

    fraction: float = 0.3
    max_yaw: float = 20.0
    max_pitch: float = 20.0
    max_roll: float = 5.0
    scale: float = 0.05


def _rng() -> np.random.Generator:
    # torch seeds each DataLoader worker differently; draw numpy's seed from it.
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation jitter of an RGB uint8 image."""
    x = image.astype(np.float32)
    grey = x.mean(-1, keepdims=True)
    x = grey + (x - grey) * (1 + rng.uniform(-cfg.saturation, cfg.saturation))
    x = x.mean() + (x - x.mean()) * (1 + rng.uniform(-cfg.contrast, cfg.contrast))
    x = x * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    return np.clip(x, 0, 255).astype(np.uint8)


def warp_crop(
    image: np.ndarray, out_size: int, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Resize a square crop to ``out_size`` exactly as inference does (``prepare_crops``),
    then move crop point ``q`` to ``scale * q + shift`` (crop coordinates)."""
    image = prepare_crops(image, out_size, as_tensor=False)[0]
    if scale == 1.0 and shift == (0.0, 0.0):
        return image
    m = out_size
    # pixel u of a crop of side m sits at q = (2u + 1) / m - 1
    b = [(shift[i] + 1 - scale) * m / 2 + scale * 0.5 - 0.5 for i in range(2)]
    mat = np.array([[scale, 0.0, b[0]], [0.0, scale, b[1]]], dtype=np.float64)
    return cv2.warpAffine(
        image, mat, (m, m), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


class KeypointPairs(TorchDataset):
    """Pairs (s, t) of frames of the same clip for E_can: item ``i`` is frame ``i`` and a
    random other frame of its clip. Each item: ``image`` ``(2, 3, S, S)`` in [-1, 1],
    ``keypoints`` ``(2, K, 3)``, ``rotation`` ``(2, 3, 3)``, ``translation`` ``(2, 3)``,
    ``scale`` ``(2,)``."""

    def __init__(self, frames: ClipFrames, input_size: int, augment: AugmentConfig | None):
        self.frames = frames
        self.input_size = input_size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.frames)

    def sample(self, ref: FrameRef, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        lab = self.frames.labels[ref.clip]
        i = ref.index
        a, shift = 1.0, (0.0, 0.0)
        if self.augment is not None and rng is not None:
            a = 1 + rng.uniform(-self.augment.scale, self.augment.scale)
            shift = tuple(rng.uniform(-self.augment.shift, self.augment.shift, 2))
        image = warp_crop(self.frames.image(ref), self.input_size, a, shift)
        if self.augment is not None and rng is not None:
            image = photometric(image, self.augment, rng)
        offset = np.array([shift[0], shift[1], 0.0], dtype=np.float32)
        return {
            "image": to_network_input(image)[0],
            "keypoints": torch.from_numpy(a * lab.keypoints[i] + offset),
            "rotation": torch.from_numpy(lab.rotation[i].copy()),
            "translation": torch.from_numpy(a * lab.translation[i] + offset),
            "scale": torch.tensor(a * float(lab.scale[i]), dtype=torch.float32),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = _rng() if self.augment is not None else None
        ref = self.frames.frames[index]
        pool = self.frames.clip_frames[ref.clip]
        j = int((rng or np.random.default_rng(index)).choice(pool))
        items = [self.sample(ref, rng), self.sample(FrameRef(ref.clip, j), rng)]
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class EyeSamples(TorchDataset):
    """Frames for E_gaze: ``image`` ``(3, S, S)`` in [-1, 1] at the dataset's size,
    ``keypoints`` ``(68, 3)``, ``meshes`` ``(2, V, 3)`` (pseudo-label eye meshes v*),
    crop coordinates. Patches are cut from the batch on the fly (``cut_eye_patches``)."""

    def __init__(self, frames: ClipFrames, augment: AugmentConfig | None):
        self.frames = frames
        self.augment = augment

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ref = self.frames.frames[index]
        lab = self.frames.labels[ref.clip]
        i = ref.index
        image = self.frames.image(ref)
        if self.augment is not None:
            image = photometric(image, self.augment, _rng())
        meshes = place_eye_mesh(
            TEMPLATE,
            torch.from_numpy(lab.eyeball_centre[i]).double(),
            torch.tensor(float(lab.eyeball_radius[i]), dtype=torch.float64).expand(2),
            torch.from_numpy(lab.eye_gaze[i]).double(),
        )
        return {
            "image": to_network_input(image)[0],
            "keypoints": torch.from_numpy(lab.keypoints[i].copy()),
            "meshes": meshes.float(),
        }


class InfiniteSampler(Sampler[int]):
    """Endless shuffled indices; rank ``r`` of ``world`` takes every world-th of each
    permutation. ``seed`` should change on resume so a resumed run sees fresh order."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.seed, self.rank, self.world = size, seed, rank, world

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed)
        while True:
            perm = torch.randperm(self.size, generator=g)
            yield from perm[self.rank :: self.world].tolist()


def sketch_of(labels: ClipLabels, index: int, size: int) -> np.ndarray:
    """The generator's conditioning sketch of a labelled frame (pseudo-label keypoints
    and per-eye gaze), ``(size, size, 3)`` uint8."""
    gaze = angles_from_gaze(torch.from_numpy(labels.eye_gaze[index].astype(np.float64))).numpy()
    return draw_sketch(labels.keypoints[index], gaze, size)


def _network_image(image: np.ndarray) -> torch.Tensor:
    return to_network_input(np.ascontiguousarray(image))[0]


def landmarks_in_pixels(labels: ClipLabels, index: int, size: int) -> np.ndarray:
    """A labelled frame's 478 landmarks in the pixels of its ``size``² crop (the
    tracker's convention: the first pixel's outer edge at 0), ``(478, 3)`` float64."""
    return crop_pixels(labels.landmarks[index], size)


def sketch_of_mesh(landmarks: np.ndarray, mean_shape: MeanShape, size: int) -> np.ndarray:
    """The sketch of a face given by its 478 landmarks ``(478, 3)`` in the pixels of a
    ``size``² crop, its gaze fitted as the labeller fits it: ``(size, size, 3)`` uint8."""
    crop = torch.from_numpy(landmarks[None] * (2.0 / size) - np.array([1.0, 1.0, 0.0]))
    eyes = fit_eyes(crop, fit_head_pose(crop, mean_shape), mean_shape, independent_frames=True)
    gaze = angles_from_gaze(eyes.gaze[0]).numpy()
    return draw_sketch(crop[0, list(KEYPOINT_MESH_INDICES)].numpy(), gaze, size)


def synthetic_source(warper: MeshWarp, image: np.ndarray, landmarks: np.ndarray,
                     offsets: np.ndarray | None, motion: StillMotion, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A still ``image`` with ``landmarks`` (``(478, 3)`` pixels) warped along its mesh to a
    random pose of ``motion`` with expression ``offsets``: the image ``(S, S, 3)`` uint8
    and its landmarks ``(478, 3)`` pixels."""
    yaw, pitch = rng.uniform(-1, 1, 2) * (motion.max_yaw, motion.max_pitch)
    roll = rng.uniform(-motion.max_roll, motion.max_roll)
    turn = rotation_from_angles(*(torch.tensor(float(a)) for a in (yaw, pitch, roll))).numpy()
    prepared = warper.prepare(image, landmarks)
    moved = warper.moved(prepared, turn, 1 + rng.uniform(-motion.scale, motion.scale), offsets)
    return warper.render(prepared, moved), moved.mesh


GAZE_CANDIDATES = 16
"""Frames a gaze pair's source is chosen among (:class:`GeneratorPairs`)."""


def gaze_in_head(labels: ClipLabels) -> np.ndarray:
    """Per frame, the gaze of both eyes relative to the head as (pitch, yaw) degrees,
    ``(T, 2)`` (NaN where a frame has no face)."""
    gaze = labels.eye_gaze.astype(np.float64).sum(1)  # (T, 3) camera frame
    in_head = np.einsum("tji,tj->ti", labels.rotation.astype(np.float64), gaze)  # R^T g
    return angles_from_gaze(torch.from_numpy(in_head)).numpy()


class GeneratorPairs(TorchDataset):
    """Training samples for G: target = frame ``i``, ``sources`` other random frames of its
    clip. Each item: ``source_image``, ``source_sketch`` ``(M, 3, S, S)``, ``target_image``,
    ``target_sketch`` ``(3, S, S)`` (all in [-1, 1]) and ``target_keypoints`` ``(68, 3)``.
    Colour jitter is the same for the sources and the target of an item.

    With ``prior`` (G v2), each item also holds ``source_prior`` ``(M, 2, S, S)``: for each
    source the mesh warp onto the target's landmarks as a flow (:meth:`_priors`); with
    redirection also ``redirect_prior``, onto the target's mesh with the irises turned to
    the redirection's gaze and the lids following.
    With ``stills``, one-frame clips (still photos) are targets too, their sources made by
    :class:`StillMotion`; other clips give same-clip pairs. ``gaze_pairs`` of those pairs
    take as source the frame whose gaze in the head differs most from the target's among
    :data:`GAZE_CANDIDATES` random frames of the clip (so the eyes' change is seen more often
    than the clips alone show it).

    With ``redirect_deg`` > 0, each item also asks for the target with another gaze:
    ``redirect_gaze`` ``(2,)`` (pitch, yaw) in degrees, uniform in ``±redirect_deg`` and the
    same for both eyes, ``redirect_sketch`` ``(3, S, S)`` (the target's sketch with that
    gaze), and ``target_eyes_open`` ``()`` (1.0 when both of the target's eyes are open
    enough for a gaze to be seen). No image of it exists; E_gaze judges it in training."""

    def __init__(
        self,
        frames: ClipFrames,
        sources: int,
        augment: AugmentConfig | None,
        redirect_deg: float = 0.0,
        prior: bool = False,
        stills: StillMotion | None = None,
        gaze_pairs: float = 0.0,
    ):
        self.frames = frames
        self.sources = sources
        self.augment = augment
        self.redirect_deg = redirect_deg
        self.size = frames.dataset.settings().size
        self.mean_shape = frames.dataset.mean_shape()
        self.prior = prior
        self.warper = MeshWarp(self.mean_shape)
        one = {c for c, idx in frames.clip_frames.items() if len(frames.labels[c].flags) == 1}
        self.videos = [f for f in frames.frames if f.clip not in one]
        self.stills = [f for f in frames.frames if f.clip in one] if stills else []
        self.motion = stills or StillMotion(fraction=0.0)
        self.gaze_pairs = gaze_pairs
        self.head_gaze = {c: gaze_in_head(frames.labels[c]) for c in frames.clip_frames}
        if not self.videos and not self.stills:
            raise FreeheadError(f"{frames.dataset.root} has no clip of two frames or more "
                                "(stills need a StillMotion)")  # fmt: skip

    def __len__(self) -> int:
        return len(self.videos) or len(self.stills)

    def item(
        self,
        target: FrameRef,
        sources: list[FrameRef],
        seed: int | None,
        redirect: np.ndarray | None = None,
    ) -> dict[str, torch.Tensor]:
        """The sample of a given target and sources (``seed``: colour jitter, None = off;
        ``redirect``: the redirection's gaze, for its prior)."""
        size = self.size
        lab = self.frames.labels[target.clip]

        def look(ref: FrameRef) -> np.ndarray:
            image = self.frames.image(ref)
            if self.augment is not None and seed is not None:
                image = photometric(image, self.augment, np.random.default_rng(seed))
            return image

        images = [look(r) for r in sources]
        item = {
            "source_image": torch.stack([_network_image(image) for image in images]),
            "source_sketch": torch.stack(
                [_network_image(sketch_of(lab, r.index, size)) for r in sources]
            ),
            "target_image": _network_image(look(target)),
            "target_sketch": _network_image(sketch_of(lab, target.index, size)),
            "target_keypoints": torch.from_numpy(lab.keypoints[target.index].copy()),
        }
        if self.prior:
            made = [(image, landmarks_in_pixels(lab, r.index, size))
                    for image, r in zip(images, sources, strict=True)]  # fmt: skip
            item |= self._priors(made, landmarks_in_pixels(lab, target.index, size), redirect)
        return item

    def _priors(self, sources: list[tuple[np.ndarray, np.ndarray]], want: np.ndarray,
                redirect: np.ndarray | None) -> dict[str, torch.Tensor]:  # fmt: skip
        """``source_prior`` ``(M, 2, S, S)``: each source (image, landmarks in pixels) warped
        onto the target's landmarks ``want``; with ``redirect`` (pitch, yaw) also
        ``redirect_prior``, onto the target's mesh with its irises turned to that gaze and
        its lids following (:meth:`MeshWarp.look`)."""
        prepared = [self.warper.prepare(image, landmarks) for image, landmarks in sources]
        target = self.warper.absolute(prepared[0], want)  # the same for every source
        out = {"source_prior": self._flows(prepared, target)}
        if redirect is not None:
            turned = self.warper.look(target, float(redirect[0]), float(redirect[1]))
            out["redirect_prior"] = self._flows(prepared, turned)
        return out

    def _flows(self, prepared: list, target) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.warper.flow(p, target) for p in prepared]))

    def still_item(self, target: FrameRef, rng: np.random.Generator, seed: int | None,
                   redirect: np.ndarray | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """A still as the target, its M sources made by :func:`synthetic_source`."""
        size, lab = self.size, self.frames.labels[target.clip]
        image = self.frames.image(target)
        if self.augment is not None and seed is not None:
            image = photometric(image, self.augment, np.random.default_rng(seed))
        want = landmarks_in_pixels(lab, target.index, size)
        made = [synthetic_source(self.warper, image, want, self._offsets(rng), self.motion, rng)
                for _ in range(self.sources)]  # fmt: skip
        item = {
            "source_image": torch.stack([_network_image(im) for im, _ in made]),
            "source_sketch": torch.stack(
                [_network_image(sketch_of_mesh(lm, self.mean_shape, size)) for _, lm in made]
            ),
            "target_image": _network_image(image),
            "target_sketch": _network_image(sketch_of(lab, target.index, size)),
            "target_keypoints": torch.from_numpy(lab.keypoints[target.index].copy()),
        }
        if self.prior:
            item |= self._priors(made, want, redirect)
        return item

    def _pick_sources(self, target: FrameRef, rng: np.random.Generator) -> np.ndarray:
        """The source frames of a video target: random ones of its clip or, for
        ``gaze_pairs`` of the samples (eyes open), those whose gaze in the head differs
        most."""
        pool = self.frames.clip_frames[target.clip]
        opened = self.frames.labels[target.clip].eyes_open
        if self.gaze_pairs > 0 and opened[target.index] and rng.random() < self.gaze_pairs:
            candidates = rng.choice(pool, size=min(len(pool), GAZE_CANDIDATES), replace=False)
            candidates = candidates[opened[candidates]]  # a closed eye's gaze means nothing
            if len(candidates):
                return self._most_different(target, candidates)
        return rng.choice(pool, size=self.sources, replace=len(pool) < self.sources + 1)

    def _most_different(self, target: FrameRef, candidates: np.ndarray) -> np.ndarray:
        angles = self.head_gaze[target.clip]
        change = np.abs(angles[candidates] - angles[target.index]).max(-1)
        order = candidates[np.argsort(-change, kind="stable")]
        return np.resize(order[: self.sources], self.sources)

    def _offsets(self, rng: np.random.Generator) -> np.ndarray | None:
        """A training video's expression: two random frames of one random clip."""
        if not self.videos:
            return None
        ref = self.videos[int(rng.integers(len(self.videos)))]
        lab, pool = self.frames.labels[ref.clip], self.frames.clip_frames[ref.clip]
        other = int(pool[int(rng.integers(len(pool)))])
        return self.warper.expression(landmarks_in_pixels(lab, ref.index, self.size),
                                      landmarks_in_pixels(lab, other, self.size))  # fmt: skip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = _rng()
        seed = int(rng.integers(2**31)) if self.augment is not None else None
        gaze = None
        if self.redirect_deg > 0:
            gaze = rng.uniform(-self.redirect_deg, self.redirect_deg, size=2)
        still = bool(self.stills) and (not self.videos or rng.random() < self.motion.fraction)
        if still:
            target = self.stills[int(rng.integers(len(self.stills)))]
            item = self.still_item(target, rng, seed, gaze)
        else:
            target = self.videos[index % len(self.videos)]
            picks = self._pick_sources(target, rng)
            item = self.item(target, [FrameRef(target.clip, int(j)) for j in picks], seed, gaze)
        if gaze is not None:
            lab = self.frames.labels[target.clip]
            sketch = draw_sketch(lab.keypoints[target.index], gaze, self.size)
            item["redirect_gaze"] = torch.from_numpy(gaze).float()
            item["redirect_sketch"] = _network_image(sketch)
            item["target_eyes_open"] = torch.tensor(float(lab.eyes_open[target.index]))
        return item

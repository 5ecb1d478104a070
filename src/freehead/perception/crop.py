"""Square face crops that hold still over time, and pasting a crop back into its frame.

A crop is a box ``(cx, cy, size)`` in the frame's pixels (continuous coordinates: 0 is
the left/top edge of the first pixel). Crop coordinates (geometry's convention) map the
box to [-1, 1]: ``x_c = (x - cx) / (size / 2)``, same for y, and ``z_c = z / (size / 2)``.

Boxes come from the fitted head pose rather than from the landmarks' extent, so an open
mouth or a turned head does not resize the crop; over a clip they are smoothed with a
zero-phase Gaussian in time (offline, so no lag).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from freehead.geometry import Similarity


@dataclass(frozen=True)
class CropConfig:
    """How much of the head a crop holds, in head units (1 IOD = outer eye corners).

    ``size_iod``: side of the square crop; ``centre_up_iod``: how far above the centre of
    the rigid face points the crop is centred (to take in hair rather than neck);
    ``smooth_seconds``: standard deviation of the temporal Gaussian on box centre and size.
    """

    size_iod: float = 4.0
    centre_up_iod: float = 0.0
    smooth_seconds: float = 0.3


def boxes_from_pose(pose: Similarity, config: CropConfig) -> np.ndarray:
    """Crop boxes from head poses fitted in pixels. -> ``(T, 3)`` float64 ``(cx, cy, size)``.

    The box is centred on the head origin moved ``centre_up_iod`` along the head's up axis
    projected into the image, and is ``size_iod`` times the head scale wide.
    """
    up = -pose.rotation[..., :, 1]  # the head's up axis (-y) in the frame
    centre = pose.translation + (config.centre_up_iod * pose.scale)[..., None] * up
    size = config.size_iod * pose.scale
    return torch.cat([centre[..., :2], size[..., None]], dim=-1).numpy().astype(np.float64)


def smooth_boxes(boxes: np.ndarray, valid: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing of ``(T, 3)`` boxes over time.

    Frames where ``valid`` is False first take the linear interpolation of their valid
    neighbours (the nearest valid box beyond the ends), so a frame without a face keeps
    a sensible crop. The clip's ends are extended with their own value.
    """
    if not valid.any():
        raise ValueError("no valid box to smooth")
    t = np.arange(len(boxes))
    filled = np.stack(
        [np.interp(t, t[valid], boxes[valid, i]) for i in range(boxes.shape[1])], axis=1
    )
    sigma = seconds * fps
    if sigma < 0.5 or len(boxes) == 1:
        return filled
    return gaussian_filter1d(filled, sigma, axis=0, mode="nearest")


def crop_pixels(points: np.ndarray, size: int) -> np.ndarray:
    """Crop coordinates ``(..., 3)`` ([-1, 1] across the crop) in the pixels of a
    ``size``² crop (the first pixel's outer edge at 0; z scaled as x and y)."""
    return (np.asarray(points, np.float64) + np.array([1.0, 1.0, 0.0])) * (size / 2.0)


def to_crop_coords(points: np.ndarray | torch.Tensor, box: np.ndarray | torch.Tensor):
    """Frame pixels -> crop coordinates. points ``(..., N, 3)``, box ``(..., 3)``."""
    half = box[..., 2:3] / 2
    offset = box[..., :2]
    xy = (points[..., :2] - offset[..., None, :]) / half[..., None, :]
    z = points[..., 2:3] / half[..., None, :]
    cat = torch.cat if isinstance(points, torch.Tensor) else np.concatenate
    return cat([xy, z], -1)


def from_crop_coords(points: np.ndarray | torch.Tensor, box: np.ndarray | torch.Tensor):
    """Crop coordinates -> frame pixels. points ``(..., N, 3)``, box ``(..., 3)``."""
    half = box[..., 2:3] / 2
    offset = box[..., :2]
    xy = points[..., :2] * half[..., None, :] + offset[..., None, :]
    z = points[..., 2:3] * half[..., None, :]
    cat = torch.cat if isinstance(points, torch.Tensor) else np.concatenate
    return cat([xy, z], -1)


def _crop_matrix(box: np.ndarray, size: int) -> np.ndarray:
    """2x3 affine taking crop pixel indices to frame pixel indices (OpenCV: pixel centres
    at integers)."""
    cx, cy, side = (float(v) for v in box)
    a = side / size
    return np.array(
        [[a, 0.0, cx - side / 2 + 0.5 * a - 0.5], [0.0, a, cy - side / 2 + 0.5 * a - 0.5]]
    )


def _sampled_frame(
    frame_shape: tuple[int, ...], box: np.ndarray, size: int
) -> tuple[tuple[int, int], np.ndarray]:
    """The (height, width) :func:`crop_image` samples the frame at, and the box in those
    pixels: a box over 1.5 times the crop's side first shrinks the frame to about the
    crop's scale."""
    box = np.asarray(box, np.float64)
    h, w = frame_shape[:2]
    ratio = box[2] / size
    if ratio <= 1.5:
        return (h, w), box
    nw, nh = max(1, round(w / ratio)), max(1, round(h / ratio))
    fx, fy = nw / w, nh / h
    return (nh, nw), np.array([box[0] * fx, box[1] * fy, box[2] * (fx + fy) / 2])


def crop_image(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Cut the square ``box`` out of ``frame`` ``(H, W, C)`` as ``(size, size, C)``.

    Parts of the box outside the frame are black (:func:`crop_coverage` says where;
    :func:`fill_uncovered` fills them). When the box is much larger
    than the crop the frame is first shrunk with area averaging, so there is no aliasing.
    """
    (nh, nw), box = _sampled_frame(frame.shape, box, size)
    if (nh, nw) != frame.shape[:2]:
        frame = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    m = _crop_matrix(box, size)
    return cv2.warpAffine(
        frame,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )


def crop_coverage(frame_shape: tuple[int, ...], box: np.ndarray, size: int) -> np.ndarray:
    """How much of each pixel of :func:`crop_image`'s ``size``² crop of ``box`` came from
    the frame: ``(size, size)`` float32, 1 inside the frame, 0 where the crop runs past it,
    and the bilinear blend with the black border in between (so the crop there is the
    frame's colour times the coverage)."""
    (h, w), box = _sampled_frame(frame_shape, box, size)
    m = _crop_matrix(box, size)
    idx = np.arange(size, dtype=np.float64)
    x, y = m[0, 0] * idx + m[0, 2], m[1, 1] * idx + m[1, 2]

    def inside(u: np.ndarray, n: int) -> np.ndarray:
        return np.clip(np.minimum(u + 1.0, n - u), 0.0, 1.0)

    return np.outer(inside(y, h), inside(x, w)).astype(np.float32)


def fill_uncovered(
    crop: np.ndarray,
    coverage: np.ndarray,
    keep_out: np.ndarray | None = None,
) -> np.ndarray:
    """The crop ``(S, S, C)`` uint8 with the parts outside its frame (``coverage``
    ``(S, S)`` < 1, see :func:`crop_coverage`) filled by a smooth continuation of the
    colours inside it, instead of black: a push-pull pyramid (each coarser level averages
    the covered pixels only, and fills the finer level's gaps). ``keep_out`` ``(S, S)`` in
    [0, 1]: covered pixels the fill should not draw from (the face, so a photo cut at the
    forehead is continued by its hair and background rather than by skin), unless nothing
    else is covered. Covered pixels are unchanged; a copy is returned. Without any covered
    pixel the crop is returned as is."""
    if coverage.min() >= 1.0 or coverage.max() <= 0.0:
        return crop
    weight = coverage.astype(np.float32)
    source = weight
    if keep_out is not None:
        outside = weight * (1.0 - np.clip(keep_out, 0.0, 1.0)).astype(np.float32)
        source = outside if outside.sum() > 0.01 * weight.sum() else weight
    premultiplied = crop.astype(np.float32) * (source / np.maximum(weight, 1e-6))[..., None]
    colour = _push_pull(premultiplied, source)
    filled = crop.astype(np.float32) + (1.0 - weight)[..., None] * colour
    return np.clip(np.rint(filled), 0, 255).astype(np.uint8)


def _push_pull(premultiplied: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` colours everywhere from colours ``premultiplied`` by ``weight``
    ``(H, W)`` in [0, 1]: where the weight is at least 1/2 the pixel's own colour, elsewhere
    blended towards the next coarser level's estimate."""
    h, w = weight.shape
    own = premultiplied / np.maximum(weight, 1e-6)[..., None]
    if weight.min() >= 0.5 or min(h, w) <= 2:
        if weight.max() <= 0.0:
            return np.zeros_like(premultiplied)
        mean = premultiplied.reshape(-1, premultiplied.shape[-1]).sum(0) / weight.sum()
        return np.where((weight > 0)[..., None], own, mean)
    half = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
    coarse = _push_pull(
        cv2.resize(premultiplied, half, interpolation=cv2.INTER_AREA).reshape(half[1], half[0], -1),
        cv2.resize(weight, half, interpolation=cv2.INTER_AREA),
    )
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    confidence = np.clip(2.0 * weight, 0.0, 1.0)[..., None]
    return confidence * own + (1.0 - confidence) * up


def feather_mask(size: int, margin: float = 0.08) -> np.ndarray:
    """``(size, size)`` float32 weights: 1 inside, falling smoothly to 0 at the crop's edge
    over ``margin`` of its side."""
    r = (np.arange(size) + 0.5) / size
    edge = np.minimum(r, 1 - r) / max(margin, 1e-6)
    ramp = np.clip(edge, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return np.outer(ramp, ramp).astype(np.float32)


def paste_back(
    frame: np.ndarray, crop: np.ndarray, box: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Blend ``crop`` ``(S, S, C)`` back into a copy of ``frame`` ``(H, W, C)`` at ``box``.

    ``mask`` ``(S, S)`` in [0, 1] weights the crop (default: :func:`feather_mask`, so no
    seam shows). Inverse of :func:`crop_image` up to resampling. Only the part of the frame
    under the box is resampled and blended; the rest is copied as it is.
    """
    size = crop.shape[0]
    h, w = frame.shape[:2]
    if mask is None:
        mask = feather_mask(size)
    box = np.asarray(box, np.float64)
    # the frame region the box covers, with a margin for the interpolation's reach
    half = box[2] / 2 + np.ceil(box[2] / size) + 1
    x0, y0 = max(0, int(np.floor(box[0] - half))), max(0, int(np.floor(box[1] - half)))
    x1, y1 = min(w, int(np.ceil(box[0] + half)) + 1), min(h, int(np.ceil(box[1] + half)) + 1)
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    m = _crop_matrix(np.array([box[0] - x0, box[1] - y0, box[2]]), size)
    roi = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop, m, roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(
        mask.astype(np.float32), m, roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    if frame.ndim == 3:
        alpha = alpha[..., None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1 - alpha) + warped.astype(np.float32) * alpha
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    out[y0:y1, x0:x1] = blended.astype(frame.dtype)
    return out

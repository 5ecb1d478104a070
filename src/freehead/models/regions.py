"""Where the mesh warp cannot be right, so G v2 may change it.

The mesh warp (G v2's prior) moves the source's own pixels. It cannot open a mouth the
source keeps shut, turn an eye, show a side that turns into view or fill what lies beyond
the source's frame. Those are the *free regions*: ellipses around the mouth opening and
each eye of the target, pixels where the prior's backward map changes area by more than
``stretch`` times either way (a side turned into view, a fold), and pixels whose prior
sample falls outside the source's frame. Everywhere else the warp is charged (training,
:func:`freehead.training.gan_losses.correction_weights`) and, for a G v2 built with
``correction_regions``, kept as it is (:func:`gate_regions`, the gate G reads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FREE_REGIONS = ((60, 68), (36, 42), (42, 48))
"""The 68-point ranges around which G v2 may change the warp freely: the inner lips (the
mouth opening) and each eye."""

GATE_SCALE = 4
"""The gate is made at ``S / GATE_SCALE`` (the resolution G predicts its residual flow at)
and G enlarges it."""


def _grid(n: int, like: Tensor) -> Tensor:
    """Pixel centres of an ``n``-pixel side in crop coordinates ([-1, 1]), ``(n,)``, with
    ``like``'s dtype and device."""
    return (torch.arange(n, dtype=like.dtype, device=like.device) + 0.5) * (2.0 / n) - 1.0


def _feature_ellipses(keypoints: Tensor, size: int, margin: float) -> Tensor:
    """``(B, size, size)`` bool: inside the ellipse around any of :data:`FREE_REGIONS`'
    keypoints (their extent grown by ``margin`` of it on every side; an opening counts as at
    least a third as high as it is wide, so a shut mouth still has one). ``keypoints``
    ``(B, 68, 2+)`` in crop coordinates."""
    g = _grid(size, keypoints)
    lows = torch.stack([keypoints[:, lo:hi, :2].amin(1) for lo, hi in FREE_REGIONS], 1)
    highs = torch.stack([keypoints[:, lo:hi, :2].amax(1) for lo, hi in FREE_REGIONS], 1)
    centre, half = (lows + highs) / 2, (highs - lows) / 2  # (B, R, 2)
    half = torch.stack([half[..., 0], torch.maximum(half[..., 1], half[..., 0] / 3)], -1)
    half = (half * (1 + 2 * margin)).clamp_min(1e-6)
    dx = (g[None, None, None, :] - centre[..., 0, None, None]) / half[..., 0, None, None]
    dy = (g[None, None, :, None] - centre[..., 1, None, None]) / half[..., 1, None, None]
    return (dx * dx + dy * dy <= 1.0).any(1)


def _derivative(x: Tensor, dim: int) -> Tensor:
    """``torch.gradient`` along ``dim`` (central inside, one-sided at the ends), written out:
    the library's is several times slower on small maps."""
    n = x.shape[dim]
    inner = (x.narrow(dim, 2, n - 2) - x.narrow(dim, 0, n - 2)) / 2
    first = x.narrow(dim, 1, 1) - x.narrow(dim, 0, 1)
    last = x.narrow(dim, n - 1, 1) - x.narrow(dim, n - 2, 1)
    return torch.cat([first, inner, last], dim)


def _stretched(prior: Tensor, stretch: float) -> Tensor:
    """``(B, S, S)`` bool: where the backward map ``prior`` ``(B, 2, S, S)`` (grid units)
    changes area by more than ``stretch`` times either way, det(I + d(flow) / d pixel)."""
    scale = torch.tensor([prior.shape[-1] / 2.0, prior.shape[-2] / 2.0], dtype=prior.dtype)
    pixels = prior * scale.to(prior.device)[:, None, None]  # in pixels
    d_dy, d_dx = _derivative(pixels, 2), _derivative(pixels, 3)  # each (B, 2, S, S)
    area = (1 + d_dx[:, 0]) * (1 + d_dy[:, 1]) - d_dy[:, 0] * d_dx[:, 1]
    return (area > stretch) | (area < 1.0 / stretch)


def _outside_frame(prior: Tensor) -> Tensor:
    """``(B, S, S)`` bool: where the backward map samples beyond the source's frame."""
    h, w = prior.shape[-2:]
    gy, gx = torch.meshgrid(_grid(h, prior), _grid(w, prior), indexing="ij")
    x, y = gx + prior[:, 0], gy + prior[:, 1]
    return (x.abs() > 1.0) | (y.abs() > 1.0)


def free_regions(keypoints: Tensor, prior: Tensor, margin: float = 0.5,
                 stretch: float = 1.5) -> Tensor:  # fmt: skip
    """Where the mesh warp cannot be right, ``(B, S, S)`` bool, at the prior's size: the
    target's mouth and eye ellipses, the prior's stretched or folded pixels and those it
    samples beyond the source's frame. ``keypoints`` ``(B, 68, 2+)`` (the target's, crop
    coordinates); ``prior`` ``(B, 2, S, S)`` or, for M sources, ``(B, M, 2, S, S)`` (free
    where any source's warp is)."""
    if prior.dim() == 5:
        per_source = free_regions(
            keypoints.repeat_interleave(prior.shape[1], 0), prior.flatten(0, 1), margin, stretch
        )
        return per_source.view(*prior.shape[:2], *per_source.shape[-2:]).any(1)
    kp = keypoints.to(prior.dtype)
    ellipses = _feature_ellipses(kp, prior.shape[-1], margin)
    return ellipses | _stretched(prior, stretch) | _outside_frame(prior)


def gate_regions(keypoints: Tensor, prior: Tensor, grow: int = 1) -> Tensor:
    """The gate a ``correction_regions`` G v2 reads, ``(B, 1, S/4, S/4)`` in [0, 1]: the
    free regions (:func:`free_regions`) of the prior resized to S/4, grown by
    ``grow`` pixels at that size and softened over as many, so that the change fades out
    instead of ending in a seam. 1 where G may change the warp, 0 where it keeps it."""
    prior = prior.float()
    shape = prior.shape
    flat = prior.reshape(-1, 2, *shape[-2:])
    # at each coarse pixel's centre: the mean of the 2 x 2 full pixels around it
    c = GATE_SCALE // 2
    coarse = (
        flat[..., c - 1 :: GATE_SCALE, c - 1 :: GATE_SCALE]
        + flat[..., c - 1 :: GATE_SCALE, c::GATE_SCALE]
        + flat[..., c::GATE_SCALE, c - 1 :: GATE_SCALE]
        + flat[..., c::GATE_SCALE, c::GATE_SCALE]
    ) / 4
    free = free_regions(keypoints.float(), coarse.view(*shape[:-2], *coarse.shape[-2:]))
    gate = free.float()[:, None]
    if grow > 0:
        k = 2 * grow + 1
        grown = F.avg_pool2d(gate, k, stride=1, padding=grow) > 0  # max_pool's, faster
        gate = grown.float()
        gate = F.avg_pool2d(gate, k, stride=1, padding=grow, count_include_pad=False)
    return gate

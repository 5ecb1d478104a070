"""The eyeball slides under the lids: how the mesh warp moves an iris.

A piecewise-affine warp cannot move an iris: the eye opening's fill triangles join the
iris's middle row to the lids, so moving the iris points shears the iris into a comet.
Here the mesh moves only the lids (the iris points are put back where the source's sit in
its eye, in the eye's own frame); inside each opening the eyeball is rigid in the eye's
frame and slides by the iris's move, fully in the middle of the eye and fading to nothing
at the corners, where the eyeball turns under the canthus. A sample the slide would take
from under a source lid is taken, inside the iris, from the iris's mirror image about its
centre row (irises are nearly symmetric), and elsewhere from less of the slide.

``benchmarks/iris_move_check.py`` measures it on ``data/v2``'s training clips (pairs of
one clip, head still within 6°). Moving both irises by a known shift, mediapipe's iris
centre follows the mesh-vertex warp by 0.22 of the shift along the eye, the sliding
eyeball by 0.55, and the opening's content shifted rigidly by 0.46.

``IRIS_PIXEL_GAIN``: mediapipe's iris landmarks move less than the iris does. In the same
pairs, the iris's dark mass in the opening moved 0.79 (along the eye) and 0.68 (across)
times the landmarks' move, while a rigid shift of the opening's content moves that
measure by 0.41 and 0.39 of the shift; so a real iris moves about 1.9 and 1.7 times its
landmarks' move. Along the eye the eyeball moves 1.8 times the landmarks' move. Across
it, 1: the measure barely sees vertical moves (the iris fills the opening's height), and
a larger vertical slide uncovers sclera the source never shows (below the iris when
looking up), which only a learned renderer can fill.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit

IRIS_PIXEL_GAIN = (1.8, 1.0)
"""How much further the iris moves in the image than mediapipe's iris landmarks say, along
the eye and across it (see the module's docstring for why across is 1)."""
FLAT = 0.25
"""The eyeball moves fully between this fraction of the eye's width from either corner."""


def eye_frame(landmarks: np.ndarray, outer: int, inner: int) -> tuple[np.ndarray, np.ndarray]:
    """An eye's frame: the corners' midpoint ``(2,)`` and the basis ``(2, 2)`` whose rows
    are the outer-to-inner corner vector and its perpendicular (so coordinates are in
    eye widths)."""
    a, b = landmarks[outer, :2], landmarks[inner, :2]
    return (a + b) / 2, _basis(a, b)


def _basis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    axis = b - a
    return np.array([[axis[0], axis[1]], [-axis[1], axis[0]]])


def _inverse(basis: np.ndarray) -> np.ndarray | None:
    """The inverse of an eye frame's basis (a scaled rotation: its transpose over its
    squared scale), written out: LAPACK's threads, woken for a 2 x 2 matrix, stole a
    sixth of the live stream's frame rate. None when the corners coincide."""
    scale2 = float(basis[0] @ basis[0])
    return basis.T / scale2 if scale2 > 1e-9 else None


def unrotated_irises(source: np.ndarray, target: np.ndarray, irises: tuple,
                     corners: tuple, gain: tuple[float, float] = IRIS_PIXEL_GAIN
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``target`` ``(478, 3)`` with each eye's iris points where the source's sit in its
    eye (in the eye's frame: :func:`eye_frame`), and each eyeball's move in source pixels
    ``(2, 2)``: the target iris centre's move in the eye's frame since the source's, times
    ``gain``, along the eye no further than :func:`along_limit` allows. ``irises``: the
    two eyes' iris point indices, centre first; ``corners``: (outer, inner) per eye."""
    out = np.array(target, np.float64)
    shifts = np.zeros((2, 2))
    for eye in (0, 1):
        idx = list(irises[eye])
        cs, bs = eye_frame(source, *corners[eye])
        ct, bt = eye_frame(target, *corners[eye])
        inv_s, inv_t = _inverse(bs), _inverse(bt)
        if inv_s is None or inv_t is None:
            continue
        rel = (source[idx, :2] - cs) @ inv_s  # (5, 2) eye widths
        out[idx, :2] = ct + rel @ bt
        moved = np.asarray(gain) * ((target[idx, :2].mean(0) - ct) @ inv_t - rel.mean(0))
        now = float(rel.mean(0)[0])
        radius = float(np.linalg.norm(rel[1:] - rel[0], axis=1).mean())
        limit = max(along_limit(radius), abs(now))  # an iris already further stays
        moved[0] = np.clip(now + moved[0], -limit, limit) - now
        shifts[eye] = moved @ bs
    return out, shifts


def along_limit(radius: float) -> float:
    """How far from the eye's middle (in eye widths; the corners at ±0.5) a slid iris
    centre may go, for an iris of ``radius`` eye widths: its rim stays off the corners and
    out of the stretch where the slide fades (``FLAT``), where the iris would be squeezed
    against the corner. Driving the training stills by other people's gaze asked for
    slides of up to half an eye's width."""
    return max(0.5 - max(radius, FLAT), 0.0)


def slide_eyeball(map_x: np.ndarray, map_y: np.ndarray, index: np.ndarray,
                  triangles: tuple[int, int], corners: tuple[np.ndarray, np.ndarray],
                  source_loop: np.ndarray, iris: np.ndarray, shift: np.ndarray) -> None:  # fmt: skip
    """Show the eyeball in one eye opening: the backward maps ``(H, W)`` (source pixel
    centres at integers), in place, at the output pixels whose triangle in ``index``
    ``(H, W)`` (the rasterised warp) is one of the opening's fill triangles
    ``triangles`` = (first, end).

    The eyeball is rigid in the eye's frame (its corners: ``corners`` = (target, source)
    ``(2, 2)`` each, outer and inner corner, landmark pixels), so lids that close or open
    cover or uncover it rather than stretch it, and it slides by ``shift`` ``(2,)`` (source
    pixels) fully in the middle of the eye, fading to nothing at the corners. Where that
    sample lies outside the source's opening ``source_loop`` ``(n, 2)`` (under a lid),
    inside the iris it is the iris's mirror image about its centre row (``iris`` ``(5, 2)``
    the source's iris points, centre first), and elsewhere the point nearest to it, on the
    way from the mesh's own sample, that is in the opening. No motion leaves the maps as
    they are."""
    (a, b), (sa, sb) = corners
    ct, bt = (a + b) / 2, _basis(a, b)
    cs, bs = (sa + sb) / 2, _basis(sa, sb)
    to_eye = _inverse(bt)
    if to_eye is None:
        return
    x0, y0 = np.floor(source_loop.min(0)).astype(int) - 2
    x1, y1 = np.ceil(source_loop.max(0)).astype(int) + 3
    mask = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
    cv2.fillPoly(mask, [np.round((source_loop - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    # the target opening's box: where the fill triangles can be
    tx0, ty0 = np.floor(np.minimum(a, b) - np.abs(bt[1]) - 1).astype(int)
    tx1, ty1 = np.ceil(np.maximum(a, b) + np.abs(bt[1]) + 2).astype(int)
    h, w = index.shape
    box = np.array([max(tx0, 0), max(ty0, 0), min(tx1, w), min(ty1, h)], np.int64)
    radius = float(np.linalg.norm(iris[1:] - iris[0], axis=1).mean())
    # source sample of a target pixel p (landmark pixels): cs + (p - ct) inv(bt) bs - 0.5
    affine = to_eye @ bs  # (2, 2), rows act on (p - ct)
    offset = cs - 0.5 - np.array([x0, y0])
    _slide(map_x, map_y, index, box, int(triangles[0]), int(triangles[1]), affine, offset,
           to_eye, ct, np.asarray(shift, np.float64), mask, float(x0), float(y0),
           iris[0] - [x0, y0], radius, math.sin(math.pi * FLAT))  # fmt: skip


@njit(cache=True, nogil=True)
def _inside(mask, x, y):
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    return 0 <= ix < mask.shape[1] and 0 <= iy < mask.shape[0] and mask[iy, ix] > 0


@njit(cache=True, nogil=True)
def _slide(map_x, map_y, index, box, first, end, affine, offset, to_eye, ct, shift, mask,
           x0, y0, centre, radius, flat):  # fmt: skip
    """:func:`slide_eyeball`'s per-pixel loop (compiled); mask coordinates are the source's
    minus (x0, y0)."""
    for y in range(box[1], box[3]):
        for x in range(box[0], box[2]):
            t = index[y, x]
            if t < first or t >= end:
                continue
            px, py = x + 0.5 - ct[0], y + 0.5 - ct[1]
            along = px * to_eye[0, 0] + py * to_eye[1, 0] + 0.5  # 0 and 1 at the corners
            weight = min(max(math.sin(math.pi * min(max(along, 0.0), 1.0)) / flat, 0.0), 1.0)
            ex = px * affine[0, 0] + py * affine[1, 0] + offset[0] - weight * shift[0]
            ey = px * affine[0, 1] + py * affine[1, 1] + offset[1] - weight * shift[1]
            mx, my = map_x[y, x] - x0, map_y[y, x] - y0
            if _inside(mask, ex, ey) or math.hypot(ex - mx, ey - my) < 0.5:
                pass  # in the source's opening (or where the mesh samples anyway)
            elif math.hypot(ex - centre[0], ey - centre[1]) < radius and _inside(
                mask, ex, 2 * centre[1] - ey
            ):
                ey = 2 * centre[1] - ey  # the iris's hidden part: its mirror image
            else:  # from the mesh's sample as far towards it as stays in the opening
                lo, hi = 0.0, 1.0
                for _ in range(6):
                    k = (lo + hi) / 2
                    if _inside(mask, mx + k * (ex - mx), my + k * (ey - my)):
                        lo = k
                    else:
                        hi = k
                ex, ey = mx + lo * (ex - mx), my + lo * (ey - my)
            map_x[y, x] = ex + x0
            map_y[y, x] = ey + y0

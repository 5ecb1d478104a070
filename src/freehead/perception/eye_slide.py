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

import cv2
import numpy as np

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
    axis = b - a
    return (a + b) / 2, np.stack([axis, np.array([-axis[1], axis[0]])])


def unrotated_irises(source: np.ndarray, target: np.ndarray, irises: tuple,
                     corners: tuple, gain: tuple[float, float] = IRIS_PIXEL_GAIN
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``target`` ``(478, 3)`` with each eye's iris points where the source's sit in its
    eye (in the eye's frame: :func:`eye_frame`), and each eyeball's move in source pixels
    ``(2, 2)``: the target iris centre's move in the eye's frame since the source's, times
    ``gain``. ``irises``: the two eyes' iris point indices; ``corners``: (outer, inner)
    per eye."""
    out = np.array(target, np.float64)
    shifts = np.zeros((2, 2))
    for eye in (0, 1):
        idx = list(irises[eye])
        cs, bs = eye_frame(source, *corners[eye])
        ct, bt = eye_frame(target, *corners[eye])
        if abs(np.linalg.det(bs)) < 1e-9 or abs(np.linalg.det(bt)) < 1e-9:
            continue
        rel = (source[idx, :2] - cs) @ np.linalg.inv(bs)  # (5, 2) eye widths
        out[idx, :2] = ct + rel @ bt
        moved = (target[idx, :2].mean(0) - ct) @ np.linalg.inv(bt) - rel.mean(0)
        shifts[eye] = (np.asarray(gain) * moved) @ bs
    return out, shifts


def _inside(mask: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    ix, iy = np.round(x).astype(np.int64), np.round(y).astype(np.int64)
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.zeros(x.shape, bool)
    out[ok] = mask[iy[ok], ix[ok]] > 0
    return out


def slide_eyeball(map_x: np.ndarray, map_y: np.ndarray, pixels: tuple[np.ndarray, np.ndarray],
                  corners: tuple[np.ndarray, np.ndarray], source_loop: np.ndarray,
                  iris: np.ndarray, shift: np.ndarray) -> None:  # fmt: skip
    """Show the eyeball in one eye opening: the backward maps ``(H, W)`` (source pixel
    centres at integers) at the opening's output ``pixels`` (ys, xs), in place.

    The eyeball is rigid in the eye's frame (its corners: ``corners`` = (target, source)
    ``(2, 2)`` each, outer and inner corner, landmark pixels), so lids that close or open
    uncover or cover it rather than stretch it, and it slides by ``shift`` ``(2,)`` (source
    pixels) fully in the middle of the eye, fading to nothing at the corners. Where that
    sample lies outside the source's opening ``source_loop`` ``(n, 2)`` (under a lid),
    inside the iris it is the iris's mirror image about its centre row (``iris`` ``(5, 2)``
    the source's iris points, centre first), and elsewhere the point nearest to it, on the
    way from the mesh's own sample, that is in the opening. No motion leaves the maps as
    they are."""
    ys, xs = pixels
    if len(xs) == 0:
        return
    (a, b), (sa, sb) = corners
    ct, bt = (a + b) / 2, np.stack([b - a, [a[1] - b[1], b[0] - a[0]]])
    cs, bs = (sa + sb) / 2, np.stack([sb - sa, [sa[1] - sb[1], sb[0] - sa[0]]])
    if abs(np.linalg.det(bt)) < 1e-9:
        return
    rel = (np.stack([xs, ys], 1) + 0.5 - ct) @ np.linalg.inv(bt)  # eye widths
    w = np.clip(np.sin(np.pi * np.clip(rel[:, 0] + 0.5, 0.0, 1.0)) / np.sin(np.pi * FLAT), 0, 1)
    x0, y0 = np.floor(source_loop.min(0)).astype(int) - 2
    x1, y1 = np.ceil(source_loop.max(0)).astype(int) + 3
    mask = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1)), np.uint8)
    cv2.fillPoly(mask, [np.round((source_loop - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    eyeball = cs + rel @ bs - 0.5 - [x0, y0] - w[:, None] * shift  # (N, 2)
    x, y = eyeball[:, 0], eyeball[:, 1]
    mx, my = map_x[ys, xs] - x0, map_y[ys, xs] - y0
    ok = _inside(mask, x, y) | (np.hypot(x - mx, y - my) < 0.5)  # or where the mesh samples
    # under a lid, inside the iris: the iris's mirror image about its centre row
    centre, radius = iris[0] - [x0, y0], float(np.linalg.norm(iris[1:] - iris[0], axis=1).mean())
    in_iris = ~ok & (np.hypot(x - centre[0], y - centre[1]) < radius)
    mirror = in_iris & _inside(mask, x, 2 * centre[1] - y)
    y = np.where(mirror, 2 * centre[1] - y, y)
    # elsewhere: from the mesh's sample (when in the opening) as far towards it as stays in
    lost = ~ok & ~mirror
    dx, dy = x[lost] - mx[lost], y[lost] - my[lost]
    lo, hi = np.zeros(len(dx)), np.ones(len(dx))
    for _ in range(6):
        k = (lo + hi) / 2
        inside = _inside(mask, mx[lost] + k * dx, my[lost] + k * dy)
        lo, hi = np.where(inside, k, lo), np.where(inside, hi, k)
    x[lost], y[lost] = mx[lost] + lo * dx, my[lost] + lo * dy
    map_x[ys, xs] = (x + x0).astype(map_x.dtype)
    map_y[ys, xs] = (y + y0).astype(map_y.dtype)

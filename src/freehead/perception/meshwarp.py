"""meshwarp: reenactment without learning, by warping the source image along the face mesh.

mediapipe's 478 landmarks (468 mesh points + 5 per iris) of the source and the driver give
a *target mesh*: where every source landmark should be in the output. The output is the
source image warped piecewise-affinely, triangle by triangle, from the source mesh onto
the target mesh (a backward map: every output pixel is read from the source pixel that
its triangle's affine map sends it to, with one ``cv2.remap``).

The triangles, fixed for every face (:func:`face_topology`):

* mediapipe's face tessellation, 852 triangles (the 3-cliques of its edge list, less the
  two cliques that are not faces of the mesh);
* the holes filled: each eye opening as two strips between its lids and a chain through
  the iris (outer corner, iris rim, iris centre, iris rim, inner corner); the mouth as one
  strip between the inner lips;
* a band from the face outline to a *head ring* (the outline enlarged
  :data:`HEAD_RING_SCALE` times about its centre, in the head frame) that moves rigidly
  with the head's similarity: hair, ears and neck;
* a band from the head ring to an *outer ring* (enlarged :data:`OUTER_RING_SCALE` times)
  fixed to the image: the background stays still. Beyond it the image is unchanged.

They are drawn outer band, head band, holes, then the face's triangles far to near (by
their mean depth in the target), so a turned face's near side covers its far side. Inside
the mouth opening the backward map is redone (:func:`mouth_interior`): the source's
interior keeps its size below the upper lip, and what the target opens wider is shaded
towards a dark cavity, instead of the source's lips or teeth stretched over it. Inside
each eye opening the mesh moves only the lids: the eyeball is rigid in the eye's frame and
slides by the iris's move (:mod:`freehead.perception.eye_slide`), so an iris turns without
shearing, and lids that close cover it rather than squash it.

Target meshes (all in the pixels of the output, which has the source's size):

* relative (:meth:`MeshWarp.relative`): the driver's motion since its reference frame —
  the head's similarity change and the expression offsets in the driver's head frame,
  which is in units of the face's size (the outer-eye-corner distance, IOD), so they are
  rescaled to the source's face — put on the source's mesh, irises included;
* absolute (:meth:`MeshWarp.absolute`): the driver's own mesh where it is in the driver's
  image (for self-reenactment of aligned crops: the same person, the same crop frame);
* gaze (:meth:`MeshWarp.gaze`): the source's mesh with each iris turned about its eyeball
  centre (the eyeball model of :mod:`freehead.perception.eyes`) to a requested gaze.

Coordinates: landmarks are the tracker's pixels (x right, y down, z away from the camera,
the first pixel's outer edge at 0); the rasteriser and ``cv2.remap`` put pixel centres at
integers, so the warp shifts by half a pixel at its edges.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import torch
from numba import njit

from freehead.errors import FreeheadError
from freehead.geometry import gaze_from_angles
from freehead.perception.eye_slide import IRIS_PIXEL_GAIN, slide_eyeball, unrotated_irises
from freehead.perception.eyes import IRIS_DISTANCE_IOD, OPEN_EYE_THRESHOLD
from freehead.perception.keypoints import (
    EYE_INNER_CORNER,
    EYE_LOWER_LID,
    EYE_OUTER_CORNER,
    EYE_UPPER_LID,
    IRIS,
    NUM_LANDMARKS,
)
from freehead.perception.shape import MeanShape, fit_head_pose
from freehead.perception.tracker import FaceTracker

HEAD_RING_SCALE = 1.6
"""The head ring: the face outline enlarged this many times about its centre."""
OUTER_RING_SCALE = 2.6
"""The fixed outer ring: the face outline enlarged this many times about its centre."""
IRIS_MARGIN = 0.85
"""Iris points are kept this far (a fraction of the way) from the eye's centre to its lids."""

MOUTH_CAVITY_RGB = (40, 16, 16)
"""The colour a mouth opened wider than the source's is shaded towards (a dark cavity)."""

MOUTH_CORNERS_INNER = (78, 308)
EYE_CORNERS = tuple(zip(EYE_OUTER_CORNER, EYE_INNER_CORNER, strict=True))
"""Each eye's (outer, inner) corner landmark."""
LAYER_OUTER, LAYER_HEAD, LAYER_HOLES, LAYER_FACE = 0, 1, 2, 3


# ------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class FaceTopology:
    """The warp's triangles over ``num_vertices`` = 478 landmarks + the head ring + the
    outer ring.

    ``triangles`` ``(F, 3)`` int64 vertex indices; ``layer`` ``(F,)`` the drawing group
    (``LAYER_*``); ``oval`` ``(R,)`` the face outline's landmarks in loop order (ring
    vertex ``478 + i`` is outline point ``i`` enlarged, ``478 + R + i`` the outer one);
    ``eyes`` the two eye-opening loops ``(n,)``; ``eye_fill`` the indices of the triangles
    that fill each eye opening; ``lips`` the inner lips, upper and lower, each from mouth
    corner to mouth corner; ``mouth`` ``(M,)`` the indices of the triangles that fill the
    mouth opening (``eye_fill``'s and ``mouth``'s indices are consecutive).
    """

    triangles: np.ndarray
    layer: np.ndarray
    oval: np.ndarray
    eyes: tuple[np.ndarray, np.ndarray]
    eye_fill: tuple[np.ndarray, np.ndarray]
    lips: tuple[np.ndarray, np.ndarray]
    mouth: np.ndarray
    num_vertices: int


def tessellation_triangles() -> np.ndarray:
    """mediapipe's face-mesh triangles, ``(852, 3)`` sorted index triples.

    mediapipe ships the tessellation as edges. Every face is a 3-clique of them; the only
    other 3-cliques are triangles whose three edges each already border two faces (they
    run round a vertex), which are dropped.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    edges = {tuple(sorted(e)) for e in FACEMESH_TESSELATION}
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    cliques = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    uses = Counter(e for t in cliques for e in itertools.combinations(t, 2))
    faces = [t for t in cliques if min(uses[e] for e in itertools.combinations(t, 2)) < 3]
    return np.array(sorted(faces), dtype=np.int64)


def orient_triangles(triangles: np.ndarray) -> np.ndarray:
    """The triangles ``(F, 3)`` of a connected, orientable mesh with one winding: two
    triangles that share an edge run along it in opposite directions (breadth first from
    the first triangle, which keeps its order). ``(F, 3)``."""
    out = np.array(triangles, dtype=np.int64)
    by_edge: dict[tuple[int, int], list[int]] = {}
    for f, t in enumerate(out.tolist()):
        for e in itertools.combinations(sorted(t), 2):
            by_edge.setdefault(e, []).append(f)
    done, queue = {0}, [0]
    while queue:
        f = queue.pop()
        t = out[f].tolist()
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            for g in by_edge[tuple(sorted((a, b)))]:
                if g in done:
                    continue
                u = out[g].tolist()
                if any((u[k], u[(k + 1) % 3]) == (a, b) for k in range(3)):
                    out[g] = out[g, ::-1]  # it ran along the edge the same way: flip it
                done.add(g)
                queue.append(g)
    return out


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """The closed loops of edges that border one triangle only, each ``(n,)`` vertex
    indices in walking order."""
    uses = Counter(
        tuple(sorted(e)) for t in triangles.tolist() for e in itertools.combinations(t, 2)
    )
    nxt: dict[int, list[int]] = {}
    for (a, b), n in uses.items():
        if n == 1:
            nxt.setdefault(a, []).append(b)
            nxt.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        while True:
            seen.add(cur)
            step = [v for v in nxt[cur] if v != prev]
            prev, cur = cur, step[0]
            if cur == start:
                break
            loop.append(cur)
        loops.append(np.array(loop, dtype=np.int64))
    return loops


def _arc(points: np.ndarray) -> np.ndarray:
    """Normalised arc length along a polyline ``(n, 2)`` -> ``(n,)`` from 0 to 1."""
    d = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return d / max(d[-1], 1e-12)


def strip_triangles(a: list[int], b: list[int], points: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangles filling the strip between two polylines ``a`` and ``b`` (vertex indices)
    that start at the same vertex and end at the same vertex, zipped by their arc lengths
    over ``points`` ``(V, 2)``; triangles with a repeated vertex are left out."""
    ta, tb = _arc(points[a]), _arc(points[b])
    i = j = 0
    out = []
    while i < len(a) - 1 or j < len(b) - 1:
        if i < len(a) - 1 and (j == len(b) - 1 or ta[i + 1] <= tb[j + 1]):
            tri = (a[i], a[i + 1], b[j])
            i += 1
        else:
            tri = (a[i], b[j + 1], b[j])
            j += 1
        if len(set(tri)) == 3:
            out.append(tri)
    return out


def _split_loop(
    loop: np.ndarray, first: int, last: int, points: np.ndarray
) -> tuple[list[int], list[int]]:
    """A closed loop cut at two of its vertices into two paths from ``first`` to ``last``,
    the upper one (smaller mean y) first."""
    k = int(np.flatnonzero(loop == first)[0])
    ring = np.roll(loop, -k).tolist()
    m = ring.index(last)
    one, two = ring[: m + 1], [first, *ring[m:][::-1]]
    if points[one, 1].mean() > points[two, 1].mean():
        one, two = two, one
    return one, two


def _iris_chain(eye: int, points: np.ndarray) -> list[int]:
    """Outer corner, the iris rim point on the outer side, the iris centre, the rim point
    on the inner side, the inner corner."""
    outer, inner = EYE_OUTER_CORNER[eye], EYE_INNER_CORNER[eye]
    centre, *rim = IRIS[eye]
    side = np.sign(points[outer, 0] - points[centre, 0])
    horizontal = sorted(rim, key=lambda i: abs(points[i, 1] - points[centre, 1]))[:2]
    near_outer = max(horizontal, key=lambda i: side * (points[i, 0] - points[centre, 0]))
    near_inner = min(horizontal, key=lambda i: side * (points[i, 0] - points[centre, 0]))
    return [outer, near_outer, centre, near_inner, inner]


def _ring_triangles(oval: np.ndarray, inner_base: int | None, outer_base: int) -> list:
    """Quads (as two triangles) between loop ``oval`` (or ring ``inner_base + i``) and the
    ring ``outer_base + i``."""
    r = len(oval)
    inner = oval if inner_base is None else inner_base + np.arange(r)
    out = []
    for i in range(r):
        j = (i + 1) % r
        out += [(inner[i], inner[j], outer_base + i), (inner[j], outer_base + j, outer_base + i)]
    return out


@lru_cache(maxsize=1)
def face_topology() -> FaceTopology:
    """The warp's triangles (built once, from the tessellation and the shipped mean shape's
    layout, which fixes the order of the fill strips)."""
    mesh = tessellation_triangles()
    points = MeanShape.default().points[:, :2]
    loops = boundary_loops(mesh)
    by_member = {v: loop for loop in loops for v in (10, *EYE_OUTER_CORNER, MOUTH_CORNERS_INNER[0])
                 if v in loop}  # fmt: skip
    oval = by_member[10]
    if (
        points[oval, 0] @ np.roll(points[oval, 1], -1)
        - points[oval, 1] @ np.roll(points[oval, 0], -1)
        < 0
    ):
        oval = oval[::-1]  # one winding for every face
    holes: list[tuple[int, int, int]] = []
    eyes, eye_fill = [], []
    for eye in (0, 1):
        loop = by_member[EYE_OUTER_CORNER[eye]]
        upper, lower = _split_loop(loop, EYE_OUTER_CORNER[eye], EYE_INNER_CORNER[eye], points)
        chain = _iris_chain(eye, points)
        first = len(holes)
        holes += strip_triangles(upper, chain, points) + strip_triangles(chain, lower, points)
        eyes.append(loop)
        eye_fill.append(np.arange(first, len(holes)))
    upper, lower = _split_loop(by_member[MOUTH_CORNERS_INNER[0]], *MOUTH_CORNERS_INNER, points)
    mouth = strip_triangles(upper, lower, points)
    first_mouth = len(holes)
    holes += mouth
    r = len(oval)
    outer_band = _ring_triangles(oval, NUM_LANDMARKS, NUM_LANDMARKS + r)
    head_band = _ring_triangles(oval, None, NUM_LANDMARKS)
    groups = [(outer_band, LAYER_OUTER), (head_band, LAYER_HEAD), (holes, LAYER_HOLES),
              (mesh.tolist(), LAYER_FACE)]  # fmt: skip
    triangles = orient_triangles(np.array([t for g, _ in groups for t in g], dtype=np.int64))
    a, b, c = points[triangles[-1]]  # a face triangle: counter-clockwise as x right, y down
    if (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) < 0:
        triangles = triangles[:, ::-1].copy()
    return FaceTopology(
        triangles=triangles,
        layer=np.concatenate([np.full(len(g), k, np.int8) for g, k in groups]),
        oval=oval,
        eyes=(eyes[0], eyes[1]),
        eye_fill=tuple(len(outer_band) + len(head_band) + f for f in eye_fill),
        lips=(np.array(upper), np.array(lower)),
        mouth=len(outer_band) + len(head_band) + first_mouth + np.arange(len(mouth)),
        num_vertices=NUM_LANDMARKS + 2 * r,
    )


# ------------------------------------------------------------------------- poses


@dataclass(frozen=True)
class HeadPose:
    """The similarity ``x -> scale * rotation @ x + translation`` from head coordinates
    (IOD units) to pixels: ``rotation`` ``(3, 3)``, ``translation`` ``(3,)``."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Head frame to pixels. ``(N, 3)`` -> ``(N, 3)``."""
        return self.scale * points @ self.rotation.T + self.translation

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Pixels to the head frame. ``(N, 3)`` -> ``(N, 3)``."""
        return (points - self.translation) @ self.rotation / self.scale


def head_pose(landmarks: np.ndarray, mean_shape: MeanShape) -> HeadPose:
    """The head pose fitted to the rigid landmarks (:func:`fit_head_pose`). ``(478, 3)``."""
    fit = fit_head_pose(torch.as_tensor(np.asarray(landmarks, np.float64)), mean_shape)
    return HeadPose(fit.rotation.numpy(), fit.translation.numpy(), float(fit.scale))


def relative_pose(source: HeadPose, driver: HeadPose, reference: HeadPose) -> HeadPose:
    """The driver's head motion since ``reference`` put on ``source``: turned by
    ``R_d R_ref^T``, scaled by ``s_d / s_ref``, moved by ``t_d - t_ref`` in units of the
    reference's face size times the source's."""
    return HeadPose(
        rotation=driver.rotation @ reference.rotation.T @ source.rotation,
        translation=source.translation
        + (driver.translation - reference.translation) * source.scale / reference.scale,
        scale=source.scale * driver.scale / reference.scale,
    )


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` ``(3,)`` to unit vector ``b``:
    ``(3, 3)`` (Rodrigues; ``a`` = -``b`` is turned about any perpendicular axis)."""
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-12:
        axis = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


# ------------------------------------------------------------------------- the warp


@dataclass(frozen=True)
class WarpSource:
    """A prepared source: ``image`` ``(H, W, 3)`` uint8, ``landmarks`` ``(478, 3)`` pixels
    (irises kept inside the eye openings), ``pose``, ``head`` ``(478, 3)`` the landmarks
    in head coordinates, ``ring`` ``(R, 3)`` the head ring in head coordinates, ``outer``
    ``(R, 2)`` the outer ring in pixels, ``vertices`` ``(V, 2)`` every warp vertex in
    pixels."""

    image: np.ndarray
    landmarks: np.ndarray
    pose: HeadPose
    head: np.ndarray
    ring: np.ndarray
    outer: np.ndarray
    vertices: np.ndarray


@dataclass(frozen=True)
class WarpTarget:
    """Where the source's landmarks go: ``mesh`` ``(478, 3)`` pixels of the output, and
    ``pose``, the head's similarity there (it moves the head ring)."""

    mesh: np.ndarray
    pose: HeadPose


def _check_landmarks(landmarks: np.ndarray, what: str) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (NUM_LANDMARKS, 3) or not np.isfinite(lm).all():
        raise FreeheadError(f"{what}: expected 478 x 3 finite landmarks, got {lm.shape}")
    return lm


def keep_irises_inside(landmarks: np.ndarray, margin: float = IRIS_MARGIN) -> np.ndarray:
    """The landmarks with each eye's iris points pulled, along the ray from the eye's
    corner midpoint, to at most ``margin`` of the way to the eye opening's edge (so the
    eye's fill triangles do not fold). ``(478, 3)`` -> ``(478, 3)``."""
    out = np.array(landmarks, np.float64)
    for eye, loop in enumerate(face_topology().eyes):
        poly = out[loop, :2]
        centre = (out[EYE_OUTER_CORNER[eye], :2] + out[EYE_INNER_CORNER[eye], :2]) / 2
        idx = list(IRIS[eye])
        d = out[idx, :2] - centre  # (5, 2)
        a, e = poly - centre, np.roll(poly, -1, axis=0) - poly  # (n, 2)
        # centre + u d = poly_k + v e_k  ->  u d - v e = a
        det = d[:, None, 0] * -e[None, :, 1] + e[None, :, 0] * d[:, None, 1]
        ok = np.abs(det) > 1e-12
        safe = np.where(ok, det, 1.0)
        u = (a[None, :, 0] * -e[None, :, 1] + e[None, :, 0] * a[None, :, 1]) / safe
        v = (d[:, None, 0] * a[None, :, 1] - d[:, None, 1] * a[None, :, 0]) / safe
        hit = ok & (u > 0) & (v >= 0) & (v <= 1)
        reach = np.where(hit, u, np.inf).min(axis=1)
        reach = np.where(np.isfinite(reach), reach, 0.0)
        out[idx, :2] = centre + np.minimum(1.0, margin * reach)[:, None] * d
    return out


MAX_OUTSIDE = 0.25
"""How far (in barycentric weight) a pixel of :func:`warp_maps`' grown edges may lie
outside its triangle."""


def warp_maps(target: np.ndarray, source: np.ndarray, triangles: np.ndarray, order: np.ndarray,
              shape: tuple[int, int],
              grow: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The triangles drawn at their ``target`` corners and the backward map to their
    ``source`` corners, in one pass over the pixels.

    ``target``, ``source`` ``(V, 2)`` vertices (pixel centres at integers); ``triangles``
    ``(F, 3)`` drawn in ``order`` ``(F,)`` (later ones cover earlier ones). A triangle takes
    the pixels whose centres lie inside it or within ``grow`` pixels outside its edges'
    lines (so that shared edges leave no gaps, as a conservative rasteriser's do), but
    not those whose barycentric weights fall below ``-MAX_OUTSIDE`` (a sliver's affine
    map, carried half a pixel beyond it, reads far away); degenerate ones take none. Each
    pixel reads the source point with its barycentric weights in the target triangle (the
    triangle's affine map). Returns the triangle seen at
    each pixel ``(H, W)`` int32 (-1 where none) and ``cv2.remap``'s x and y maps
    ``(H, W)`` float32 (pixels of no triangle map to themselves).
    """
    h, w = shape
    index = np.full((h, w), -1, np.int32)
    map_x = np.repeat(np.arange(w, dtype=np.float32)[None], h, 0)
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, 1)
    _fill_warp_maps(np.ascontiguousarray(target, np.float64),
                    np.ascontiguousarray(source, np.float64),
                    np.ascontiguousarray(triangles, np.int64), np.ascontiguousarray(order, np.int64),
                    float(grow), index, map_x, map_y)  # fmt: skip
    return index, map_x, map_y


@njit(cache=True, nogil=True)
def _fill_warp_maps(target, source, triangles, order, grow, index, map_x, map_y):
    """:func:`warp_maps`' loop (compiled): each triangle row by row; on a row, the pixels
    that pass all three edge tests."""
    h, w = index.shape
    px, py, sx, sy = np.empty(3), np.empty(3), np.empty(3), np.empty(3)
    for k in range(order.shape[0]):
        t = order[k]
        for i in range(3):
            px[i], py[i] = target[triangles[t, i], 0], target[triangles[t, i], 1]
            sx[i], sy[i] = source[triangles[t, i], 0], source[triangles[t, i], 1]
        area = (px[1] - px[0]) * (py[2] - py[0]) - (py[1] - py[0]) * (px[2] - px[0])
        if abs(area) < 1e-9:
            continue  # degenerate: its neighbours cover it
        sign = 1.0 if area > 0 else -1.0
        y0 = max(math.ceil(py.min() - grow - 1e-9), 0)
        y1 = min(math.floor(py.max() + grow + 1e-9), h - 1)
        for y in range(y0, y1 + 1):
            lo, hi = -math.inf, math.inf
            for i in range(3):  # edge i -> i+1: sign * cross(edge, q - p_i) >= -grow |edge|
                j = (i + 1) % 3
                dx, dy = px[j] - px[i], py[j] - py[i]
                slope = -dy * sign
                offset = sign * (dx * (y - py[i]) + dy * px[i]) + grow * math.hypot(dx, dy) + 1e-9
                if slope > 0:
                    lo = max(lo, -offset / slope)
                elif slope < 0:
                    hi = min(hi, -offset / slope)
                elif offset < 0:
                    hi = -math.inf
            x0 = max(math.ceil(lo), 0) if lo > -w else 0
            x1 = min(math.floor(hi), w - 1) if hi < 2 * w else w - 1
            for x in range(x0, x1 + 1):
                u, v, least = 0.0, 0.0, math.inf
                for i in range(3):  # the weight of corner i+2, from edge i -> i+1
                    j, m = (i + 1) % 3, (i + 2) % 3
                    cross = (px[j] - px[i]) * (y - py[i]) - (py[j] - py[i]) * (x - px[i])
                    weight = sign * cross / abs(area)
                    least = min(least, weight)
                    u += weight * sx[m]
                    v += weight * sy[m]
                if least < -MAX_OUTSIDE:
                    continue  # too far outside a thin triangle: the neighbours have it
                index[y, x] = t
                map_x[y, x] = u
                map_y[y, x] = v


def turn_irises(landmarks: np.ndarray, centres: np.ndarray, gaze: np.ndarray, want: np.ndarray,
                reach: float) -> np.ndarray:  # fmt: skip
    """The landmarks ``(478, 3)`` with each eye's five iris points turned about its eyeball
    centre from gaze ``gaze`` to gaze ``want`` (unit ``(3,)``, one for both eyes).

    ``centres`` ``(2, 3)`` eyeball centres, ``gaze`` ``(2, 3)`` each eye's unit gaze now,
    ``reach`` the iris centre's distance from the eyeball centre (orthographic, pixels).
    The iris is put on the eyeball: its centre (the mean of its five points) at
    ``centre + reach * gaze``, its rim points around it in the image plane; all turn by
    the smallest rotation from ``gaze`` to ``want`` and are projected (x, y; z kept), so
    the iris centre lands at ``centre + reach * want``.
    """
    out = np.array(landmarks, np.float64)
    for eye in (0, 1):
        idx = list(IRIS[eye])
        rim = np.zeros((len(idx), 3))
        rim[:, :2] = out[idx, :2] - out[idx, :2].mean(0)
        iris = centres[eye] + reach * gaze[eye] + rim  # (5, 3) on the eyeball model
        turned = centres[eye] + (iris - centres[eye]) @ rotation_between(gaze[eye], want).T
        out[idx, :2] = turned[:, :2]
    return out


@dataclass(frozen=True)
class EyeballFit:
    """Both eyes of one face by the labeller's eyeball model on that frame alone
    (:func:`freehead.perception.eyes.fit_eyes` with ``independent_frames``): eyeball
    ``centres`` ``(2, 3)`` and unit ``gaze`` ``(2, 3)`` per eye (camera frame, pixels),
    ``openness`` ``(2,)`` (lid gap over corner distance)."""

    centres: np.ndarray
    gaze: np.ndarray
    openness: np.ndarray


def fit_eyeballs(landmarks: np.ndarray, pose: HeadPose, mean_shape: MeanShape) -> EyeballFit:
    """:func:`freehead.perception.eyes.fit_eyes` for one face in numpy: 58-84 µs against
    228-264 µs for the torch one per face here, alternated in one run, and the per-frame
    prior fits twice. ``landmarks`` ``(478, 3)`` pixels, ``pose`` fitted on them
    (:func:`head_pose`)."""
    lm = np.asarray(landmarks, np.float64)
    xy = lm[:, :2]
    outer, inner = list(EYE_OUTER_CORNER), list(EYE_INNER_CORNER)
    gap = np.linalg.norm(xy[list(EYE_UPPER_LID)] - xy[list(EYE_LOWER_LID)], axis=-1)
    width = np.maximum(np.linalg.norm(xy[outer] - xy[inner], axis=-1), 1e-9)
    corners = pose.invert(lm[outer + inner])
    mids = (corners[:2] + corners[2:]) / 2  # (2, 3) corner midpoints, head frame
    centres = pose.apply(mids + mean_shape.eyeball_offset)
    reach = pose.scale * IRIS_DISTANCE_IOD
    offset = np.stack([xy[list(idx)].mean(0) for idx in IRIS]) - centres[:, :2]  # (2, 2)
    norm = np.linalg.norm(offset, axis=-1, keepdims=True)
    offset = np.where(norm > reach, offset * reach / np.maximum(norm, 1e-12), offset)
    dz = np.sqrt(np.maximum(reach**2 - (offset**2).sum(-1), 0.0))
    eyes = np.concatenate([offset, -dz[:, None]], axis=-1)
    gaze = eyes / np.linalg.norm(eyes, axis=-1, keepdims=True)
    return EyeballFit(centres=centres, gaze=gaze, openness=gap / width)


def gaze_in_head(landmarks: np.ndarray, pose: HeadPose, mean_shape: MeanShape) -> np.ndarray | None:
    """One face's gaze relative to its head, read as the labeller reads it: each eye by
    :func:`fit_eyeballs`, the two combined (their normalised sum) and turned into the head
    frame (``R^T g``).

    ``landmarks`` ``(478, 3)`` pixels, ``pose`` fitted on them (:func:`head_pose`).
    Unit ``(3,)``; None when either eye is shut (openness below
    :data:`freehead.perception.eyes.OPEN_EYE_THRESHOLD`): its iris points mean nothing.
    """
    fit = fit_eyeballs(landmarks, pose, mean_shape)
    if fit.openness.min() < OPEN_EYE_THRESHOLD:
        return None
    g = fit.gaze.sum(0)
    return pose.rotation.T @ (g / np.linalg.norm(g))


def track_landmarks(tracker: FaceTracker, image: np.ndarray, what: str) -> np.ndarray:
    """The largest face's ``(478, 3)`` landmarks in an ``(H, W, 3)`` uint8 RGB image;
    FreeheadError naming ``what`` without one."""
    check_image(image, what)
    found = tracker(np.ascontiguousarray(image)).landmarks
    if found is None:
        raise FreeheadError(f"no face found in the {what}")
    return found.astype(np.float64)


def check_image(image: np.ndarray, what: str) -> None:
    """FreeheadError unless ``image`` is ``(H, W, 3)`` uint8."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:  # fmt: skip
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image)
        raise FreeheadError(f"the {what} must be an (H, W, 3) uint8 RGB image, got {got}")


MAX_GAZE_DEG = 45.0
"""Gaze requests beyond this many degrees in pitch or yaw are refused."""
LID_FOLLOW = (1.0, 0.5)
"""How far the upper and the lower lid's middle move with the eyeball's vertical move (real
upper lids follow the gaze's pitch closely, lower lids less); the corners stay. Chosen by
eye on the training people's stills when the eyeball began to slide (it was 0.8 and 0.3):
a lid that lags the eyeball hides the iris looking up and bares sclera the source never
showed."""


def follow_with_lids(landmarks: np.ndarray, moved: np.ndarray,
                     follow: tuple[float, float] = LID_FOLLOW) -> np.ndarray:  # fmt: skip
    """``moved`` (``landmarks`` ``(478, 3)`` with the irises moved) with each eye's lids
    moved vertically by ``follow`` (upper, lower) of its iris centre's vertical move,
    fully at the middle of the lid and not at all at the corners. ``(478, 3)``."""
    out = np.array(moved, np.float64)
    for eye, loop in enumerate(face_topology().eyes):
        dy = float(moved[list(IRIS[eye]), 1].mean() - landmarks[list(IRIS[eye]), 1].mean())
        a, b = landmarks[EYE_OUTER_CORNER[eye], :2], landmarks[EYE_INNER_CORNER[eye], :2]
        axis = b - a
        length2 = float(axis @ axis)
        if length2 < 1e-12:
            continue
        points = landmarks[loop, :2]
        t = np.clip((points - a) @ axis / length2, 0.0, 1.0)
        bump = np.sin(np.pi * t)  # 0 at the corners, 1 midway
        side = np.sign((points[:, 0] - a[0]) * axis[1] - (points[:, 1] - a[1]) * axis[0])
        upper = side * np.sign(axis[0] or 1.0) > 0  # above the corner line in the image
        k = np.where(upper, follow[0], follow[1])
        out[loop, 1] += k * bump * dy
    return out


class MeshWarp:
    """Reenactment by a piecewise-affine warp of the source along the face mesh.

    Prepare a source once (:meth:`prepare`), make a target mesh per frame
    (:meth:`relative`, :meth:`absolute` or :meth:`gaze`), and :meth:`render` it. The
    landmarks are the tracker's (:func:`track_landmarks`); this class does no tracking.

    ``mouth_cavity``: inside the mouth opening, the source's mouth interior is shown at
    its own size below the upper lip and, where the target opens wider than that, a dark
    cavity (:func:`mouth_interior`), instead of the source's interior (or lips) stretched
    over the whole opening. ``eye_slide``: the eyeballs slide under the lids
    (:mod:`freehead.perception.eye_slide`); off, the iris points move the iris as mesh
    vertices (which shears it; kept to compare).
    """

    def __init__(self, mean_shape: MeanShape | None = None, head_ring: float = HEAD_RING_SCALE,
                 outer_ring: float = OUTER_RING_SCALE, mouth_cavity: bool = True,
                 eye_slide: bool = True) -> None:  # fmt: skip
        if not 1.0 < head_ring < outer_ring:
            raise FreeheadError("the rings must grow outwards: 1 < head_ring < outer_ring")
        self.mean_shape = mean_shape or MeanShape.default()
        self.topology = face_topology()
        self.head_ring, self.outer_ring = head_ring, outer_ring
        self.mouth_cavity, self.eye_slide = mouth_cavity, eye_slide
        face = self.topology.layer == LAYER_FACE
        self._fixed = np.flatnonzero(~face)  # already grouped outer, head band, holes
        self._face = np.flatnonzero(face)

    def prepare(self, image: np.ndarray, landmarks: np.ndarray) -> WarpSource:
        """The source's work, once: ``image`` ``(H, W, 3)`` uint8, its ``landmarks``
        ``(478, 3)`` pixels."""
        check_image(image, "source")
        lm = keep_irises_inside(_check_landmarks(landmarks, "source landmarks"))
        pose = head_pose(lm, self.mean_shape)
        head = pose.invert(lm)
        oval = head[self.topology.oval]
        centre = np.array([*oval[:, :2].mean(0), 0.0])
        ring = centre + self.head_ring * (oval - centre)
        ring[:, 2] = 0.0  # at the depth of the head frame's origin, the rigid points' centre
        ring_px = pose.apply(ring)[:, :2]
        centre_px = pose.apply(centre[None])[0, :2]
        outer = centre_px + self.outer_ring / self.head_ring * (ring_px - centre_px)
        vertices = np.concatenate([lm[:, :2], ring_px, outer])
        return WarpSource(image=np.ascontiguousarray(image), landmarks=lm, pose=pose, head=head,
                          ring=ring, outer=outer, vertices=vertices)  # fmt: skip

    def relative(self, source: WarpSource, driver: np.ndarray, reference: np.ndarray) -> WarpTarget:
        """The driver's motion since ``reference`` on the source: the head turns by
        ``R_d R_ref^T``, scales by ``s_d / s_ref`` and moves by ``t_d - t_ref`` (in units
        of the reference's face size, times the source's); the expression offsets
        ``h_d - h_ref`` (head frame, IOD units, irises included) are added to the
        source's own head-frame mesh. ``driver``, ``reference``: ``(478, 3)`` pixels."""
        d = _check_landmarks(driver, "driver landmarks")
        r = _check_landmarks(reference, "reference landmarks")
        pd, pr = head_pose(d, self.mean_shape), head_pose(r, self.mean_shape)
        pose = relative_pose(source.pose, pd, pr)
        offsets = pd.invert(d) - pr.invert(r)
        return WarpTarget(mesh=keep_irises_inside(pose.apply(source.head + offsets)), pose=pose)

    def expression(self, driver: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The expression offsets of ``driver`` since ``reference`` (``(478, 3)`` pixels
        each, one person): their meshes' difference in their own head frames, in the head
        frame's units (irises included), ``(478, 3)``; what :meth:`relative` adds."""
        return self.head_mesh(driver) - self.head_mesh(reference)

    def head_mesh(self, landmarks: np.ndarray) -> np.ndarray:
        """A face's ``(478, 3)`` landmarks (pixels) in its own head frame, ``(478, 3)``."""
        lm = _check_landmarks(landmarks, "landmarks")
        return head_pose(lm, self.mean_shape).invert(lm)

    def moved(self, source: WarpSource, rotation: np.ndarray, scale: float = 1.0,
              offsets: np.ndarray | None = None) -> WarpTarget:  # fmt: skip
        """The source's head turned by ``rotation`` ``(3, 3)`` (camera frame, about the
        head's centre) and scaled by ``scale`` about it, with expression ``offsets``
        ``(478, 3)`` (head frame, as :meth:`expression` gives) added: free views, pose
        requests and synthetic motion."""
        pose = HeadPose(rotation=np.asarray(rotation, np.float64) @ source.pose.rotation,
                        translation=source.pose.translation, scale=source.pose.scale * scale)  # fmt: skip
        head = source.head if offsets is None else source.head + offsets
        return WarpTarget(mesh=keep_irises_inside(pose.apply(head)), pose=pose)

    def absolute(self, source: WarpSource, driver: np.ndarray) -> WarpTarget:
        """The driver's own mesh, where it is in the driver's image (the output's frame):
        for self-reenactment, where source and driver are one person in one crop frame.
        ``driver``: ``(478, 3)`` pixels."""
        d = keep_irises_inside(_check_landmarks(driver, "driver landmarks"))
        return WarpTarget(mesh=d, pose=head_pose(d, self.mean_shape))

    def gaze(self, source: WarpSource, pitch: float, yaw: float) -> WarpTarget:
        """The source's mesh with each iris turned about its eyeball centre
        (:func:`turn_irises`, the eyeball model of :func:`freehead.perception.eyes.fit_eyes`)
        to the gaze (``pitch``, ``yaw``) in degrees, camera frame."""
        if not (math.isfinite(pitch) and math.isfinite(yaw)):
            raise FreeheadError("gaze angles must be finite numbers")
        if abs(pitch) > MAX_GAZE_DEG or abs(yaw) > MAX_GAZE_DEG:
            raise FreeheadError(f"gaze ({pitch:g}, {yaw:g}) is beyond ±{MAX_GAZE_DEG:g}°")
        return self.look(WarpTarget(mesh=source.landmarks, pose=source.pose), pitch, yaw)

    def look(self, target: WarpTarget, pitch: float, yaw: float) -> WarpTarget:
        """``target`` with each iris turned about its eyeball centre to the gaze
        (``pitch``, ``yaw``) in degrees, camera frame (the eyeballs placed on its mesh by
        its head pose), and the lids following the eyeball up or down
        (:func:`follow_with_lids`; the eyeball moves ``IRIS_PIXEL_GAIN`` times the iris
        points, :mod:`freehead.perception.eye_slide`)."""
        eyes = fit_eyeballs(target.mesh, target.pose, self.mean_shape)
        want = gaze_from_angles(
            torch.tensor(float(pitch), dtype=torch.float64),
            torch.tensor(float(yaw), dtype=torch.float64),
        ).numpy()
        mesh = turn_irises(target.mesh, eyes.centres, eyes.gaze, want,
                           target.pose.scale * IRIS_DISTANCE_IOD)  # fmt: skip
        # the lids follow the eyeball's vertical move: IRIS_PIXEL_GAIN[1] times the points'
        follow = tuple(k * IRIS_PIXEL_GAIN[1] for k in LID_FOLLOW)
        mesh = follow_with_lids(target.mesh, mesh, follow)
        return WarpTarget(mesh=keep_irises_inside(mesh), pose=target.pose)

    def target_vertices(self, source: WarpSource, target: WarpTarget) -> np.ndarray:
        """Every warp vertex in the output: the mesh, the head ring moved by the target's
        head similarity, the outer ring where it was. ``(V, 2)`` pixels."""
        ring = target.pose.apply(source.ring)[:, :2]
        return np.concatenate([target.mesh[:, :2], ring, source.outer])

    def draw_order(self, target: WarpTarget) -> np.ndarray:
        """Triangle indices in drawing order: the bands and holes, then the face's
        triangles far to near by their corners' mean target depth. ``(F,)``."""
        tris = self.topology.triangles[self._face]
        depth = target.mesh[tris, 2].mean(1)
        return np.concatenate([self._fixed, self._face[np.argsort(-depth, kind="stable")]])

    def maps(self, source: WarpSource, target: WarpTarget, cavity: bool = True
             ) -> tuple[np.ndarray, np.ndarray, tuple | None]:  # fmt: skip
        """The backward map of the warp: ``cv2.remap``'s x and y maps ``(H, W)`` float32
        (source pixel centres at integers), and, with ``cavity`` and the class's
        ``mouth_cavity``, the mouth pixels to shade (:func:`mouth_interior`; None if not)."""
        mesh, shifts = target.mesh, None
        if self.eye_slide:  # the mesh moves the lids; the eyeballs slide under them
            mesh, shifts = unrotated_irises(source.landmarks, target.mesh, IRIS, EYE_CORNERS)
            mesh = keep_irises_inside(mesh)  # a closing lid: the fill must not fold
        lids = WarpTarget(mesh=mesh, pose=target.pose)
        dst = self.target_vertices(source, lids) - 0.5  # pixel centres at integers
        src = source.vertices - 0.5
        tris = self.topology.triangles
        index, mx, my = warp_maps(dst, src, tris, self.draw_order(lids), source.image.shape[:2])
        if shifts is not None:
            self._slide_eyeballs(source, mesh, shifts, index, mx, my)
        shade = None
        if cavity and self.mouth_cavity:
            mouth = self.topology.mouth  # consecutive triangle indices
            inside = (index >= mouth[0]) & (index <= mouth[-1])
            upper, lower = self.topology.lips
            lips = [
                (x[upper, :2] - 0.5, x[lower, :2] - 0.5) for x in (source.landmarks, target.mesh)
            ]
            shade = mouth_interior(
                mx, my, inside, *lips[0], *lips[1], target.pose.scale / source.pose.scale
            )
        return mx, my, shade

    def _slide_eyeballs(self, source: WarpSource, mesh: np.ndarray, shifts: np.ndarray,
                        index: np.ndarray, mx: np.ndarray, my: np.ndarray) -> None:  # fmt: skip
        """:func:`slide_eyeball` in both eye openings of ``index`` (the rasterised triangles
        of the lids' ``mesh``), in place."""
        for eye in (0, 1):
            fill = self.topology.eye_fill[eye]
            corners = list(EYE_CORNERS[eye])
            slide_eyeball(mx, my, index, (int(fill[0]), int(fill[-1]) + 1),
                          (mesh[corners, :2], source.landmarks[corners, :2]),
                          source.landmarks[self.topology.eyes[eye], :2] - 0.5,
                          source.landmarks[list(IRIS[eye]), :2] - 0.5, shifts[eye])  # fmt: skip

    def flow(self, source: WarpSource, target: WarpTarget) -> np.ndarray:
        """The warp as a backward flow ``(2, H, W)`` float32 in the generator's units
        (:func:`freehead.models.generator.warp`: offsets of ``grid_sample``'s [-1, 1] grid,
        ``align_corners=False``), so that warping the source by it is :meth:`render`
        without the mouth's cavity shading, which a flow cannot express (the mouth
        interior still follows the source's own size below the upper lip)."""
        return self.flow_and_cavity(source, target)[0]

    def flow_and_cavity(self, source: WarpSource, target: WarpTarget
                        ) -> tuple[np.ndarray, tuple | None]:  # fmt: skip
        """:meth:`flow`, and the mouth pixels a flow cannot fill (where the target opens
        wider than the source: rows, columns and weights ``(N,)``, :func:`mouth_interior`;
        None if none), for whatever fills them afterwards."""
        mx, my, cavity = self.maps(source, target)
        h, w = mx.shape
        fx = (mx - np.arange(w, dtype=np.float32)[None, :]) * (2.0 / w)
        fy = (my - np.arange(h, dtype=np.float32)[:, None]) * (2.0 / h)
        return np.stack([fx, fy]).astype(np.float32), cavity

    def render(self, source: WarpSource, target: WarpTarget) -> np.ndarray:
        """The source warped onto the target mesh: ``(H, W, 3)`` uint8, the source's size."""
        mx, my, cavity = self.maps(source, target)
        out = cv2.remap(source.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if cavity is not None:
            ys, xs, weight = cavity
            patch = out[ys, xs].astype(np.float32)
            colour = np.float32(MOUTH_CAVITY_RGB)
            out[ys, xs] = np.round(patch + weight[:, None] * (colour - patch)).astype(np.uint8)
        return out


def lip_height(lip: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The y of a lip polyline ``(n, 2)`` at each of ``x`` ``(N,)``, linear between its
    points, held beyond its ends. ``(N,)``."""
    order = np.argsort(lip[:, 0], kind="stable")
    return np.interp(x, lip[order, 0], lip[order, 1])


def mouth_interior(map_x: np.ndarray, map_y: np.ndarray, inside: np.ndarray,
                   source_upper: np.ndarray, source_lower: np.ndarray,
                   target_upper: np.ndarray, target_lower: np.ndarray, scale: float,
                   feather: float = 0.25,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
    """Show the source's mouth interior at its own size inside the target's opening.

    For each output pixel ``inside`` ``(H, W)`` the mouth opening, the backward map
    ``map_y`` ``(H, W)`` (changed in place) is reset so that the pixel's depth below the
    target's upper inner lip, divided by ``scale`` (target face size over the source's),
    is its depth below the source's upper inner lip, at the source column ``map_x``
    gives: the upper teeth hang from the upper lip as in the source. Where that depth
    passes the source's own opening (by more than a pixel), the pixel reads the source's
    lower lip line and is to be shaded towards a cavity. The lips are ``(n, 2)``
    polylines from corner to corner in the maps' coordinates. Returns rows ``(N,)``,
    columns ``(N,)`` and cavity weights ``(N,)`` in [0, 1] (0 inside the source's
    opening, rising to 1 over ``feather`` of it, at least a pixel, beyond), or None when
    no pixel is inside.
    """
    ys, xs = np.nonzero(inside)
    if len(ys) == 0:
        return None
    x = xs.astype(np.float64)
    depth = (ys - lip_height(target_upper, x)) / scale
    sx = map_x[ys, xs].astype(np.float64)
    top, bottom = lip_height(source_upper, sx), lip_height(source_lower, sx)
    opening = np.maximum(bottom - top, 0.0)
    depth = np.clip(depth, 0.0, None)
    map_y[ys, xs] = np.minimum(top + depth, bottom + 1.0)  # a pixel's slack at the lip
    gap = np.maximum(feather * opening, 1.0)
    weight = np.clip((depth - opening - 1.0) / gap, 0.0, 1.0)
    return ys, xs, weight.astype(np.float32)

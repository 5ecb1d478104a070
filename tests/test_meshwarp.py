"""meshwarp: the no-learning reenactment that warps the source along the face mesh."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from freehead.errors import FreeheadError
from freehead.geometry import (
    angles_from_gaze,
    gaze_from_angles,
    lift_iris_to_sphere,
    rotation_from_angles,
)
from freehead.perception.eye_slide import unrotated_irises
from freehead.perception.eyes import IRIS_DISTANCE_IOD
from freehead.perception.keypoints import IRIS, NUM_LANDMARKS
from freehead.perception.meshwarp import (
    EYE_CORNERS,
    LAYER_FACE,
    LAYER_HOLES,
    MAX_OUTSIDE,
    MeshWarp,
    WarpTarget,
    boundary_loops,
    face_topology,
    orient_triangles,
    rotation_between,
    strip_triangles,
    tessellation_triangles,
    track_landmarks,
    turn_irises,
    warp_maps,
)
from freehead.perception.shape import MeanShape

from .conftest import read_video_frames

SIZE = 256


def signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(x @ np.roll(y, -1) - y @ np.roll(x, -1)) / 2


def synthetic_face(scale: float, centre: tuple[float, float], open_mouth: float = 0.0,
                   yaw: float = 0.0, roll: float = 0.0) -> np.ndarray:  # fmt: skip
    """The shipped mean shape in pixels: ``scale`` px per IOD, its rigid centre at
    ``centre``, turned by ``yaw`` and ``roll`` degrees; ``open_mouth`` IOD moves every
    point below the mouth's middle down (a non-rigid change: no rigid point lies there).
    ``(478, 3)``."""
    p = MeanShape.default().points.copy()
    mouth_y = p[[13, 14], 1].mean()
    below = p[:, 1] > mouth_y
    p[below, 1] += open_mouth
    turn = rotation_from_angles(*torch.tensor([yaw, 0.0, roll], dtype=torch.float64)).numpy()
    return scale * p @ turn.T + np.array([*centre, 0.0])


def texture(seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (bilinear resampling of it is nearly exact)."""
    noise = np.random.default_rng(seed).random((SIZE, SIZE, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 4.0)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    return np.round(smooth * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def warp() -> MeshWarp:
    return MeshWarp()


# ---------------------------------------------------------------------- topology


def test_tessellation_is_the_852_faces_of_a_disk_with_three_holes():
    tris = tessellation_triangles()
    assert tris.shape == (852, 3)
    uses = Counter(e for t in tris.tolist() for e in itertools.combinations(t, 2))
    assert max(uses.values()) == 2  # a manifold: no edge borders three triangles
    loops = sorted(len(loop) for loop in boundary_loops(tris))
    assert loops == [16, 16, 20, 36]  # two eyes, the inner lips, the face outline
    assert len({v for t in tris.tolist() for v in t}) == 468  # irises not in the mesh


def test_the_warp_triangles_cover_everything_inside_the_outer_ring():
    topo = face_topology()
    assert topo.num_vertices == NUM_LANDMARKS + 2 * len(topo.oval)
    # Topology: a single boundary, the outer ring: no hole is left (eyes, mouth filled).
    (outer,) = boundary_loops(topo.triangles)
    assert set(outer.tolist()) == set(range(NUM_LANDMARKS + len(topo.oval), topo.num_vertices))
    # The eyes' fill triangles run through each iris centre and its two side rim points,
    # so moving the iris points moves the iris.
    holes = set(topo.triangles[topo.layer == LAYER_HOLES].ravel().tolist())
    for centre, *rim in IRIS:
        assert centre in holes and len(holes & set(rim)) == 2
    # Geometry: on the mean shape's frontal view, face + holes tile the outline: with one
    # winding (as the topology orients them), their signed areas sum to the outline's;
    # an eye or the mouth left open would take its area off.
    p = MeanShape.default().points[:, :2]
    inside = topo.triangles[topo.layer >= LAYER_HOLES]
    areas = np.array([signed_area(p[t]) for t in inside])
    assert (areas > 0).sum() >= len(areas) - 2  # two at the side of the nose fold in view
    assert areas.sum() == pytest.approx(signed_area(p[topo.oval]), rel=1e-9)


def test_an_open_mouth_and_the_eyes_are_drawn_with_the_fill_triangles(warp):
    face = synthetic_face(96.0, (128.0, 116.0), open_mouth=0.12)
    topo = warp.topology
    source = warp.prepare(texture(), face)
    target = WarpTarget(mesh=face, pose=source.pose)
    dst = warp.target_vertices(source, target) - 0.5
    index, _, _ = warp_maps(dst, source.vertices - 0.5, topo.triangles, warp.draw_order(target),
                            (SIZE, SIZE))  # fmt: skip
    loops = (*topo.eyes, np.concatenate([topo.lips[0], topo.lips[1][::-1]]))
    for loop, fill in zip(loops, (*topo.eye_fill, topo.mouth), strict=True):
        assert (np.diff(fill) == 1).all()  # consecutive: the warp tests them as ranges
        poly = np.zeros((SIZE, SIZE), np.uint8)
        cv2.fillPoly(poly, [np.round((face[loop, :2] - 0.5) * 16).astype(np.int32)], 1, shift=4)
        poly = cv2.erode(poly, np.ones((5, 5), np.uint8)).astype(bool)  # off the lids' edges
        assert poly.sum() > 50
        assert np.isin(index[poly], fill).all()  # each opening by its own fill triangles
    oval = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(oval, [np.round((face[topo.oval, :2] - 0.5) * 16).astype(np.int32)], 1, shift=4)
    oval = cv2.erode(oval, np.ones((5, 5), np.uint8)).astype(bool)
    assert (index[oval] >= 0).all()
    assert np.isin(topo.layer[index[oval]], [LAYER_HOLES, LAYER_FACE]).all()


def test_warp_maps_send_each_pixel_of_a_triangle_to_its_point_in_the_source():
    vertices = np.array([[2.2, 3.1], [25.7, 5.4], [9.3, 27.8], [20.1, 18.6], [4.0, 9.0]])
    triangles = np.array([[0, 1, 2], [1, 3, 2], [0, 4, 3]])  # the last overlaps the others
    linear, shift = np.array([[0.9, 0.2], [-0.3, 1.1]]), np.array([3.0, -2.0])
    source = vertices @ linear.T + shift  # one affine map: every triangle's own
    order = np.array([0, 1, 2])
    index, map_x, map_y = warp_maps(vertices, source, triangles, order, (32, 32), grow=0)
    # brute force: the last triangle in the order whose closed area holds the pixel centre
    ys, xs = np.mgrid[0:32, 0:32].astype(float)
    want = np.full((32, 32), -1)
    for t in order:
        a, b, c = vertices[triangles[t]]
        cross = [(q1[0] - q0[0]) * (ys - q0[1]) - (q1[1] - q0[1]) * (xs - q0[0])
                 for q0, q1 in ((a, b), (b, c), (c, a))]  # fmt: skip
        inside = np.all([x >= -1e-9 for x in cross], 0) | np.all([x <= 1e-9 for x in cross], 0)
        want[inside] = t
    np.testing.assert_array_equal(index, want)
    seen = index >= 0
    mapped = np.stack([xs[seen], ys[seen]], 1) @ linear.T + shift
    np.testing.assert_allclose(map_x[seen], mapped[:, 0], atol=1e-4)
    np.testing.assert_allclose(map_y[seen], mapped[:, 1], atol=1e-4)
    np.testing.assert_array_equal(map_x[~seen], xs[~seen])  # no triangle: the pixel itself
    np.testing.assert_array_equal(map_y[~seen], ys[~seen])
    # drawn in another order, the overlap shows the triangle drawn last
    swapped, _, _ = warp_maps(vertices, source, triangles, order[::-1], (32, 32), grow=0)
    both = (index == 2) & (swapped != 2)
    assert both.any() and set(np.unique(swapped[both])) <= {0, 1}
    # grown by half a pixel (the default), a triangle also takes the pixels whose centres
    # lie within half a pixel outside its edges' lines, so shared edges leave no gaps,
    # unless they lie beyond MAX_OUTSIDE in barycentric weight (a sliver's far reach)
    grown, gx, gy = warp_maps(vertices, source, triangles, order, (32, 32))
    assert (grown[seen] >= 0).all() and (grown >= 0).sum() > seen.sum()
    for y, x in np.argwhere((grown >= 0) & ~seen):
        a, b, c = vertices[triangles[grown[y, x]]]
        area = np.cross(b - a, c - a)
        for p, q in ((a, b), (b, c), (c, a)):  # signed distance to each edge's line
            d = np.sign(area) * np.cross(q - p, np.array([x, y]) - p) / np.linalg.norm(q - p)
            assert d >= -0.5 - 1e-9
            assert d * np.linalg.norm(q - p) / abs(area) >= -MAX_OUTSIDE - 1e-9
    np.testing.assert_allclose(np.stack([gx, gy], -1)[grown >= 0],
                               np.stack([xs, ys], -1)[grown >= 0] @ linear.T + shift, atol=1e-4)  # fmt: skip
    sliver = np.array([[5.0, 5.2], [25.0, 5.2], [15.0, 5.5]])  # row 5: 0.2 px off, -2/3
    thin, _, _ = warp_maps(sliver, sliver, np.array([[0, 1, 2]]), np.array([0]), (32, 32))
    assert (thin >= 0).sum() == 0


def test_orienting_gives_every_triangle_one_winding():
    # a square's fan and a strip, given with mixed windings
    points = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [2, 0], [2, 1]], float)
    tris = np.array([[0, 1, 4], [2, 1, 4], [2, 3, 4], [0, 3, 4], [1, 5, 2], [6, 2, 5]])
    oriented = orient_triangles(tris)
    assert sorted(map(sorted, oriented.tolist())) == sorted(map(sorted, tris.tolist()))
    signs = {np.sign(signed_area(points[t])) for t in oriented}
    assert len(signs) == 1


def test_strips_zip_two_paths_with_shared_ends():
    points = np.array([[0, 0], [1, -1], [2, -1], [3, 0], [1.5, 1]], float)
    tris = strip_triangles([0, 1, 2, 3], [0, 4, 3], points)
    assert len(tris) == 3
    total = sum(abs(signed_area(points[list(t)])) for t in tris)
    assert total == pytest.approx(abs(signed_area(points[[0, 1, 2, 3, 4]])))


# ------------------------------------------------------------------ closed forms


def test_rotation_between_unit_vectors():
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 3)))
        q = rotation_between(a, b)
        assert q @ a == pytest.approx(b, abs=1e-12)
        assert q @ q.T == pytest.approx(np.eye(3), abs=1e-12)
        assert np.linalg.det(q) == pytest.approx(1.0)
        axis = np.cross(a, b) / np.linalg.norm(np.cross(a, b))
        assert q @ axis == pytest.approx(axis, abs=1e-12)  # the smallest: about a x b
    a = np.array([0.0, 0.0, -1.0])
    assert rotation_between(a, -a) @ a == pytest.approx(-a)


def test_identity_motion_returns_the_source(warp):
    face, image = synthetic_face(64.0, (128.0, 124.0), open_mouth=0.05), texture()
    source = warp.prepare(image, face)
    same = warp.render(source, warp.relative(source, face, face))
    assert np.array_equal(same, image)
    assert np.array_equal(warp.render(source, warp.absolute(source, face)), image)


def _in_plane(angle_deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_a_rigid_driver_motion_moves_the_source_by_the_same_similarity(warp):
    """Driver = sigma Q reference + tau (in-plane). The target is then, in closed form,
    the source turned by Q and scaled by sigma about its rigid centre c_s and moved by
    the driver's rigid-centre displacement in units of the reference's face size —
    whatever the reference's and the source's own head poses."""
    s0, c0 = 60.0, np.array([120.0, 118.0, 0.0])
    reference = synthetic_face(s0, tuple(c0[:2]), yaw=20.0, roll=-6.0)
    sigma, q, tau = 1.06, _in_plane(8.0), np.array([5.0, -4.0, 0.0])
    driver = sigma * reference @ q.T + tau
    ss, cs = 66.0, np.array([131.0, 127.0, 0.0])
    face, image = synthetic_face(ss, tuple(cs[:2]), open_mouth=0.08, yaw=-8.0, roll=4.0), texture(1)
    source = warp.prepare(image, face)
    target = warp.relative(source, driver, reference)
    shift = (sigma * q @ c0 + tau - c0) * ss / s0
    expected = sigma * (source.landmarks - cs) @ q.T + cs + shift
    assert target.mesh == pytest.approx(expected, abs=1e-6)
    # The image moves by that similarity too, face and head ring alike.
    a = sigma * q[:2, :2]
    m = np.concatenate([a, (a @ (0.5 - cs[:2]) + cs[:2] + shift[:2] - 0.5)[:, None]], axis=1)
    want = cv2.warpAffine(image, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
    got = warp.render(source, target)
    ring = warp.target_vertices(source, target)[
        NUM_LANDMARKS : NUM_LANDMARKS + len(warp.topology.oval)
    ]
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - 0.5) * 16).astype(np.int32)], 1, shift=4)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    mask &= cv2.erode(np.ones((SIZE, SIZE), np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    diff = np.abs(got.astype(int) - want.astype(int))[mask]
    assert mask.sum() > 10000
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 3


def test_outside_the_outer_ring_the_image_stays_still(warp):
    reference = synthetic_face(24.0, (128.0, 128.0))
    driver = 1.1 * (reference - [128, 128, 0]) @ _in_plane(-12.0).T + [134, 122, 0]
    face, image = synthetic_face(26.0, (126.0, 130.0)), texture(2)
    source = warp.prepare(image, face)
    got = warp.render(source, warp.relative(source, driver, reference))
    ring = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(ring, [np.round((source.outer - 0.5) * 16).astype(np.int32)], 1, shift=4)
    outside = ~cv2.dilate(ring, np.ones((5, 5), np.uint8)).astype(bool)
    assert outside.sum() > 5000 and (~outside).sum() > 5000
    assert np.array_equal(got[outside], image[outside])
    assert not np.array_equal(got[~outside], image[~outside])


# ----------------------------------------------------------------------- bad input


def test_bad_input_is_a_one_line_error(warp):
    face, image = synthetic_face(64.0, (128.0, 124.0)), texture()
    with pytest.raises(FreeheadError, match="finite landmarks"):
        warp.prepare(image, np.full((NUM_LANDMARKS, 3), np.nan))
    with pytest.raises(FreeheadError, match="uint8"):
        warp.prepare(image.astype(np.float32), face)
    source = warp.prepare(image, face)
    with pytest.raises(FreeheadError, match="478 x 3"):
        warp.relative(source, face[:468], face)
    with pytest.raises(FreeheadError, match="beyond"):
        warp.gaze(source, 60.0, 0.0)
    with pytest.raises(FreeheadError, match="finite"):
        warp.gaze(source, float("nan"), 0.0)
    with pytest.raises(FreeheadError, match="rings"):
        MeshWarp(head_ring=2.0, outer_ring=1.5)


def test_no_face_is_a_freehead_error():
    from freehead.evaluation.methods import make_method
    from freehead.perception.tracker import FaceTracker

    blank = np.full((SIZE, SIZE, 3), 128, np.uint8)
    with (
        FaceTracker(video=False) as tracker,
        pytest.raises(FreeheadError, match="no face found in the driver"),
    ):
        track_landmarks(tracker, blank, "driver")
    method = make_method("meshwarp")
    assert method.name == "meshwarp"
    with pytest.raises(FreeheadError, match="no face found in the source"):
        method.prepare([blank])


# ---------------------------------------------------------------------- real frames


@pytest.fixture(scope="module")
def real(samples):
    """The astronaut portrait and franck.mp4 held-out frames (4000 the reference, then
    frames where he turns and tilts), cropped as the dataset crops them."""
    from freehead.media import read_image
    from freehead.perception.crop import crop_image
    from freehead.perception.labels import label_images

    portrait = read_image(samples / "portraits" / "astronaut.png")
    frames = read_video_frames(samples / "videos/franck/franck.mp4", [4000, 4040, 4180, 4300])
    crop = crop_image(portrait, label_images([portrait]).box[0], SIZE)
    crops = [
        crop_image(im, box, SIZE) for im, box in zip(frames, label_images(frames).box, strict=True)
    ]
    return crop, crops[0], crops[1:]


def test_turning_an_iris_puts_its_centre_on_the_eyeball_at_the_new_gaze():
    """Closed form: the iris centre lands at ``centre + reach * want``, the iris turns
    rigidly (its rim's distances to its centre shrink only by foreshortening), and the
    rest of the face stays."""
    face = synthetic_face(64.0, (128.0, 124.0))
    centres = np.array([[-0.34, 0.12, 0.05], [0.34, 0.12, 0.05]]) * 64 + [128, 124, 0]
    now = np.stack([_unit([0.1, 0.05, -1.0]), _unit([-0.05, 0.0, -1.0])])
    reach = 64 * IRIS_DISTANCE_IOD
    for pitch, yaw in ((0.0, 20.0), (-15.0, 0.0), (10.0, -10.0)):
        want = gaze_from_angles(
            torch.tensor(pitch, dtype=torch.float64), torch.tensor(yaw, dtype=torch.float64)
        ).numpy()
        out = turn_irises(face, centres, now, want, reach)
        for eye, idx in enumerate(IRIS):
            got = out[list(idx), :2].mean(0)
            assert got == pytest.approx(centres[eye, :2] + reach * want[:2], abs=1e-9)
            lifted = lift_iris_to_sphere(torch.as_tensor(centres[eye]), torch.tensor(reach),
                                         torch.as_tensor(got))  # fmt: skip
            assert angles_from_gaze(lifted).numpy() == pytest.approx([pitch, yaw], abs=1e-6)
            before = np.linalg.norm(face[list(idx), :2] - face[list(idx), :2].mean(0), axis=1)
            after = np.linalg.norm(out[list(idx), :2] - got, axis=1)
            assert (after <= before + 1e-9).all() and (after >= 0.7 * before).all()
        others = np.setdiff1d(np.arange(NUM_LANDMARKS), np.array(IRIS).ravel())
        assert np.array_equal(out[others], face[others])


CORNERS = EYE_CORNERS


def test_unrotated_irises_sit_where_the_sources_do_and_the_shift_is_the_iris_move():
    """Closed form: a similarity of the whole face (head motion) slides no eyeball; an iris
    moved by (dx, dy) eye widths in its eye's frame slides its eyeball by gain times that,
    in source pixels, and the returned mesh has the iris back where the source's sits."""
    face = synthetic_face(64.0, (128.0, 124.0))
    turn = _in_plane(12.0)
    moved = (face - [128, 124, 0]) @ turn.T * 1.3 + [120, 130, 0]
    mesh, shifts = unrotated_irises(face, moved, IRIS, CORNERS, gain=(1.8, 1.0))
    assert np.abs(shifts).max() < 1e-9 and np.allclose(mesh, moved)
    target = face.copy()
    for eye in (0, 1):
        target[list(IRIS[eye]), :2] += [2.0, -1.0]
    mesh, shifts = unrotated_irises(face, target, IRIS, CORNERS, gain=(1.8, 1.0))
    assert np.allclose(mesh, face)
    for eye in (0, 1):
        a, b = face[CORNERS[eye][0], :2], face[CORNERS[eye][1], :2]
        u = (b - a) / np.linalg.norm(b - a)
        v = np.array([-u[1], u[0]])
        along, across = np.array([2.0, -1.0]) @ u, np.array([2.0, -1.0]) @ v
        assert shifts[eye] == pytest.approx(1.8 * along * u + 1.0 * across * v, abs=1e-9)


def test_an_eyeball_slides_along_the_eye_no_further_than_its_limit():
    """Closed form: asked to move an iris a whole eye width along the eye, the eyeball
    slides until the iris centre is :func:`along_limit` from the eye's middle (then its
    rim stays off the corner), while the move across the eye is kept."""
    from freehead.perception.eye_slide import along_limit

    face = synthetic_face(64.0, (128.0, 124.0))
    for sign in (1.0, -1.0):
        target = face.copy()
        for eye in (0, 1):
            a, b = face[CORNERS[eye][0], :2], face[CORNERS[eye][1], :2]
            target[list(IRIS[eye]), :2] += sign * (b - a) + [0.0, 0.5]
        _, shifts = unrotated_irises(face, target, IRIS, CORNERS, gain=(1.8, 1.0))
        for eye in (0, 1):
            a, b = face[CORNERS[eye][0], :2], face[CORNERS[eye][1], :2]
            width = np.linalg.norm(b - a)
            u = (b - a) / width
            rim = face[list(IRIS[eye])[1:], :2] - face[IRIS[eye][0], :2]
            radius = np.linalg.norm(rim, axis=1).mean() / width
            now = (face[list(IRIS[eye]), :2].mean(0) - (a + b) / 2) @ u / width
            lands = now + shifts[eye] @ u / width
            assert lands == pytest.approx(sign * along_limit(radius), abs=1e-9)
            assert 0.0 < along_limit(radius) < 0.5
            v = np.array([-u[1], u[0]])
            assert shifts[eye] @ v == pytest.approx(0.5 * v[1], abs=1e-9)


def test_the_eyeball_slides_rigidly_under_still_lids(warp):
    """Moving the iris points along the eye moves the opening's middle content rigidly by
    the eyeball's shift (the source's pixels, translated), and leaves the lids, the
    corners and everything outside the openings as they were."""
    face, image = synthetic_face(64.0, (128.0, 124.0)), texture(3)
    source = warp.prepare(image, face)
    target = source.landmarks.copy()
    for eye in (0, 1):
        target[list(IRIS[eye]), 0] += 1.5
    mx, my, _ = warp.maps(source, WarpTarget(mesh=target, pose=source.pose))
    _, shifts = unrotated_irises(source.landmarks, target, IRIS, CORNERS)
    h, w = mx.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    moved = (np.abs(mx - gx) > 1e-3) | (np.abs(my - gy) > 1e-3)
    for eye in (0, 1):
        centre = np.round(source.landmarks[IRIS[eye][0], :2] - 0.5).astype(int)
        x, y = centre
        # the iris's middle samples the source one eyeball shift back
        assert mx[y, x] == pytest.approx(x - shifts[eye][0], abs=0.05)
        assert my[y, x] == pytest.approx(y - shifts[eye][1], abs=0.05)
        assert abs(shifts[eye][0]) > 2.0
    opening = np.zeros((h, w), np.uint8)
    for loop in warp.topology.eyes:
        cv2.fillPoly(opening, [np.round(source.landmarks[loop, :2] - 0.5).astype(np.int32)], 1)
    grown = cv2.dilate(opening, np.ones((3, 3), np.uint8)) > 0
    assert moved.any() and not moved[~grown].any()  # only the openings change
    out = warp.render(source, WarpTarget(mesh=target, pose=source.pose))
    assert np.array_equal(out[~grown], image[~grown])


def test_the_labeller_reads_a_redirected_portraits_turn(real, warp):
    """The astronaut asked to look 20° to either side: the labeller reads the two apart by
    more than the asked 40°'s half (before the eyeball slid, a mesh warp sheared the iris
    and the labeller read them about 8° apart)."""
    from freehead.evaluation.metrics import measure_faces
    from freehead.perception.tracker import FaceTracker

    portrait = real[0]
    with FaceTracker(video=False) as tracker:
        source = warp.prepare(portrait, track_landmarks(tracker, portrait, "source"))
        outs = [warp.render(source, warp.gaze(source, 0.0, yaw)) for yaw in (20.0, -20.0)]
        m = measure_faces(outs, tracker)
    yaws = [float(angles_from_gaze(torch.from_numpy(x.gaze))[1]) for x in m]
    assert yaws[0] - yaws[1] > 20.0


def _unit(v: list[float]) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def test_gaze_moves_only_the_eyes_of_a_real_portrait(real, warp):
    from freehead.perception.tracker import FaceTracker

    portrait = real[0]
    with FaceTracker(video=False) as tracker:
        source = warp.prepare(portrait, track_landmarks(tracker, portrait, "source"))
    eye_box = np.zeros(portrait.shape[:2], bool)
    for loop in warp.topology.eyes:  # the opening, and the lids' skin that follows a nod
        pad = np.array([2, 2 + np.ptp(source.landmarks[loop, 1])])
        x0, y0 = np.floor(source.landmarks[loop, :2].min(0) - pad).astype(int)
        x1, y1 = np.ceil(source.landmarks[loop, :2].max(0) + pad).astype(int)
        eye_box[y0:y1, x0:x1] = True
    before = source.landmarks[[468, 473], :2]
    for pitch, yaw in ((0.0, 15.0), (0.0, -15.0), (10.0, 0.0), (-10.0, 0.0)):
        moved = warp.gaze(source, pitch, yaw).mesh[[468, 473], :2] - before
        if yaw:
            assert (np.sign(moved[:, 0]) == -np.sign(yaw)).all()  # yaw > 0: image left
            assert (np.abs(moved[:, 0]) > 1.0).all()
        if pitch:
            assert (np.sign(moved[:, 1]) == -np.sign(pitch)).all()  # pitch > 0: up
        out = warp.render(source, warp.gaze(source, pitch, yaw))
        assert np.array_equal(out[~eye_box], portrait[~eye_box])  # only the eyes change
        assert np.abs(out[eye_box].astype(int) - portrait[eye_box]).max() > 20


def test_real_frames_keep_the_portraits_identity_and_follow_the_head(real, warp):
    from freehead.evaluation.metrics import IdentityEncoder, identity_distance, measure_faces
    from freehead.perception.tracker import FaceTracker

    portrait, reference, drivers = real
    with FaceTracker(video=False) as tracker:
        source = warp.prepare(portrait, track_landmarks(tracker, portrait, "source"))
        ref = track_landmarks(tracker, reference, "reference")
        outputs = [warp.render(source, warp.relative(source, track_landmarks(tracker, d, "driver"), ref))
                   for d in drivers]  # fmt: skip
        m = measure_faces([portrait, reference, *drivers, *outputs], tracker)
    assert all(x is not None for x in m)
    n = len(drivers)
    src_m, ref_m, drv_m, out_m = m[0], m[1], m[2 : 2 + n], m[2 + n :]
    driver_motion = np.array([d.head_angles - ref_m.head_angles for d in drv_m])
    output_motion = np.array([o.head_angles - src_m.head_angles for o in out_m])
    assert np.abs(driver_motion).max() > 15  # the drivers do move
    error = np.abs(output_motion - driver_motion).mean()
    assert error < 3.0 and error < 0.3 * np.abs(driver_motion).mean()
    encoder = IdentityEncoder()
    mine = encoder.descriptor(portrait)
    for out, drv in zip(outputs, drivers, strict=True):
        d = encoder.descriptor(out)
        assert identity_distance(d, mine) < 0.45  # dlib's same-person threshold is 0.6
        assert identity_distance(d, mine) < identity_distance(d, encoder.descriptor(drv))


def test_gaze_in_head_is_the_labellers_eyeball_fit_and_none_for_shut_eyes(real):
    """:func:`fit_eyeballs` equals :func:`fit_eyes` on one frame (the labeller's model) and
    :func:`gaze_in_head` ``R^T`` of its combined gaze, on real faces; None once a lid
    closes."""
    from freehead.geometry import Similarity
    from freehead.perception.eyes import OPEN_EYE_THRESHOLD, fit_eyes
    from freehead.perception.keypoints import EYE_LOWER_LID, EYE_UPPER_LID
    from freehead.perception.meshwarp import fit_eyeballs, gaze_in_head, head_pose
    from freehead.perception.tracker import FaceTracker

    shape = MeanShape.default()
    portrait, reference, frames = real
    with FaceTracker(video=False) as tracker:
        faces = [track_landmarks(tracker, im, "test face") for im in (portrait, reference, *frames)]
    readings = []
    for lm in faces:
        pose = head_pose(lm, shape)
        sim = Similarity(torch.as_tensor(pose.rotation)[None],
                         torch.as_tensor(pose.translation)[None],
                         torch.tensor([pose.scale], dtype=torch.float64))  # fmt: skip
        fit = fit_eyes(torch.as_tensor(lm)[None], sim, shape, independent_frames=True)
        want = pose.rotation.T @ fit.combined_gaze()[0].numpy()
        eyes = fit_eyeballs(lm, pose, shape)  # the numpy fit, eye by eye
        np.testing.assert_allclose(eyes.centres, fit.centres[0].numpy(), atol=1e-9)
        np.testing.assert_allclose(eyes.gaze, fit.gaze[0].numpy(), atol=1e-9)
        np.testing.assert_allclose(eyes.openness, fit.openness[0].numpy(), atol=1e-12)
        got = gaze_in_head(lm, pose, shape)
        if float(fit.openness.min()) < OPEN_EYE_THRESHOLD:
            assert got is None
            continue
        assert got is not None
        np.testing.assert_allclose(got, want, atol=1e-9)
        readings.append(got)
    assert len(readings) >= 3
    assert max(_angle_deg(readings[0], r) for r in readings[1:]) > 1.0  # faces differ
    shut = faces[0].copy()
    shut[EYE_UPPER_LID[1], :2] = shut[EYE_LOWER_LID[1], :2] + [0.0, -0.5]
    assert gaze_in_head(shut, head_pose(shut, shape), shape) is None


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))

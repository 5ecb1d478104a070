import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from freehead import geometry as g

angle = st.floats(-179.0, 179.0)
pitch_angle = st.floats(-89.0, 89.0)
T = torch.float64


def t(x):
    return torch.tensor(x, dtype=T)


@given(angle, pitch_angle, angle)
def test_angles_round_trip(yaw, pitch, roll):
    r = g.rotation_from_angles(t(yaw), t(pitch), t(roll))
    back = g.angles_from_rotation(r)
    assert torch.allclose(back, t([yaw, pitch, roll]), atol=1e-6)


@given(angle, angle, angle)
def test_rotation_is_proper_orthonormal(yaw, pitch, roll):
    r = g.rotation_from_angles(t(yaw), t(pitch), t(roll))
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=T), atol=1e-12)
    assert math.isclose(torch.linalg.det(r).item(), 1.0, abs_tol=1e-12)


def test_head_angle_signs():
    forward = t(g.FORWARD)
    # yaw > 0: the nose turns to image left (-x); pitch > 0: up (-y)
    assert (g.rotation_from_angles(t(30.0), t(0.0), t(0.0)) @ forward)[0] < -0.4
    assert (g.rotation_from_angles(t(0.0), t(30.0), t(0.0)) @ forward)[1] < -0.4
    # roll > 0: clockwise in the image (y down): the head's up (-y) turns to +x
    up = t([0.0, -1.0, 0.0])
    assert (g.rotation_from_angles(t(0.0), t(0.0), t(20.0)) @ up)[0] > 0.3


@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6))
def test_6d_round_trip_and_projection(values):
    six = t(values)
    if six[:3].norm() < 1e-3 or torch.linalg.cross(six[:3], six[3:], dim=0).norm() < 1e-3:
        return
    r = g.rotation_from_6d(six)
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=T), atol=1e-9)
    assert math.isclose(torch.linalg.det(r).item(), 1.0, abs_tol=1e-9)
    assert torch.allclose(g.rotation_from_6d(g.rotation_to_6d(r)), r, atol=1e-9)


@settings(max_examples=50)
@given(angle, pitch_angle, angle, st.floats(0.1, 10.0), st.integers(0, 2**31 - 1))
def test_canonicalise_adapt_identity(yaw, pitch, roll, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    p_can = torch.randn(2, 68, 3, generator=gen, dtype=T)
    r = g.rotation_from_angles(t([yaw, -yaw]), t([pitch, 0.5 * pitch]), t([roll, 3.0]))
    tr = torch.randn(2, 3, generator=gen, dtype=T)
    s = t([scale, 1.0 / scale])
    d = 0.05 * torch.randn(2, 68, 3, generator=gen, dtype=T)
    p = g.adapt(p_can, r, tr, s, d)
    assert torch.allclose(g.canonicalise(p, r, tr, s, d), p_can, atol=1e-9)
    assert torch.allclose(g.adapt(g.canonicalise(p, r, tr, s, d), r, tr, s, d), p, atol=1e-9)


def test_adapt_closed_form():
    p_can = t([[1.0, 0.0, 0.0]])
    r = g.rotation_from_angles(t(0.0), t(0.0), t(90.0))  # x -> y
    out = g.adapt(p_can, r, t([1.0, 2.0, 3.0]), t(2.0), torch.zeros(1, 3, dtype=T))
    assert torch.allclose(out, t([[1.0, 4.0, 3.0]]), atol=1e-12)


@given(pitch_angle, angle)
def test_gaze_round_trip(pitch, yaw):
    v = g.gaze_from_angles(t(pitch), t(yaw))
    assert math.isclose(v.norm().item(), 1.0, abs_tol=1e-12)
    assert torch.allclose(g.angles_from_gaze(v), t([pitch, yaw]), atol=1e-6)


def test_gaze_signs():
    assert torch.allclose(g.gaze_from_angles(t(0.0), t(0.0)), t(g.FORWARD))
    # looking to the person's right = image left (-x) is positive yaw
    right = g.angles_from_gaze(t([-0.5, 0.0, -1.0]))
    assert right[1] > 20 and abs(right[0]) < 1e-9
    # looking up (-y) is positive pitch
    up = g.angles_from_gaze(t([0.0, -0.5, -1.0]))
    assert up[0] > 20 and abs(up[1]) < 1e-9
    # a closed form: 45 degrees to the person's right
    assert torch.allclose(g.angles_from_gaze(t([-1.0, 0.0, -1.0])), t([0.0, 45.0]))


@given(pitch_angle, angle, angle)
def test_head_forward_matches_gaze(pitch, yaw, roll):
    r = g.rotation_from_angles(t(yaw), t(pitch), t(roll))
    assert torch.allclose(r @ t(g.FORWARD), g.gaze_from_angles(t(pitch), t(yaw)), atol=1e-9)


def test_angle_between():
    a, b = t([1.0, 0.0, 0.0]), t([0.0, 2.0, 0.0])
    assert math.isclose(g.angle_between_deg(a, b).item(), 90.0, abs_tol=1e-9)
    assert math.isclose(g.angle_between_deg(a, a).item(), 0.0, abs_tol=1e-9)
    assert math.isclose(g.angle_between_deg(a, -a).item(), 180.0, abs_tol=1e-9)


@settings(max_examples=50)
@given(angle, pitch_angle, angle, st.floats(0.2, 5.0), st.integers(0, 2**31 - 1))
def test_umeyama_recovers_similarity_with_noise(yaw, pitch, roll, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randn(200, 3, generator=gen, dtype=T)
    r = g.rotation_from_angles(t(yaw), t(pitch), t(roll))
    tr = torch.randn(3, generator=gen, dtype=T) * 3
    dst = g.apply_similarity(src, r, tr, t(scale)) + 0.01 * scale * torch.randn(
        200, 3, generator=gen, dtype=T
    )
    fit = g.fit_similarity(src, dst)
    assert g.rotation_angle_deg(fit.rotation, r).item() < 0.5
    assert abs(fit.scale.item() / scale - 1) < 0.01
    assert (fit.translation - tr).norm().item() < 0.02 * scale + 1e-3
    assert math.isclose(torch.linalg.det(fit.rotation).item(), 1.0, abs_tol=1e-9)


def test_umeyama_exact_and_batched():
    src = torch.randn(4, 10, 3, dtype=T)
    r = g.rotation_from_angles(t([10.0, 20.0, -30.0, 170.0]), t([5.0, -40, 0, 80]), t(0.0))
    tr, s = torch.randn(4, 3, dtype=T), t([0.5, 1.0, 2.0, 3.0])
    fit = g.fit_similarity(src, g.apply_similarity(src, r, tr, s))
    assert torch.allclose(fit.rotation, r, atol=1e-9)
    assert torch.allclose(fit.scale, s, atol=1e-9)
    assert torch.allclose(fit.translation, tr, atol=1e-9)
    assert torch.allclose(fit.invert_points(fit.apply(src)), src, atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    src = torch.randn(30, 3, dtype=T)
    mirrored = src * t([-1.0, 1.0, 1.0])
    fit = g.fit_similarity(src, mirrored)
    assert math.isclose(torch.linalg.det(fit.rotation).item(), 1.0, abs_tol=1e-9)


def test_eye_template_shape_and_gaze():
    tpl = g.eye_template()
    assert 250 <= tpl.vertices.shape[0] <= 400
    assert torch.allclose(
        tpl.vertices[tpl.sphere].norm(dim=-1), torch.ones(len(tpl.sphere), dtype=T)
    )
    # every vertex is used by a face, every edge appears once
    assert set(tpl.faces.flatten().tolist()) == set(range(tpl.vertices.shape[0]))
    assert len({tuple(e) for e in tpl.edges.tolist()}) == tpl.edges.shape[0]
    assert torch.allclose(g.gaze_from_eye_mesh(tpl, tpl.vertices), t(g.FORWARD), atol=1e-12)


@given(st.floats(-40, 40), st.floats(-40, 40), st.floats(0.01, 2.0))
def test_placed_eye_mesh_has_its_gaze(pitch, yaw, radius):
    tpl = g.eye_template()
    gaze = g.gaze_from_angles(t(pitch), t(yaw))
    centre = t([0.1, -0.2, 0.3])
    verts = g.place_eye_mesh(tpl, centre, t(radius), gaze)
    assert g.angle_between_deg(g.gaze_from_eye_mesh(tpl, verts), gaze).item() < 1e-6
    assert torch.allclose(verts[tpl.sphere].mean(0), centre, atol=1e-9)
    # edge lengths scale with the radius and do not depend on the gaze
    base = g.edge_lengths(tpl, tpl.vertices)
    assert torch.allclose(g.edge_lengths(tpl, verts), radius * base, atol=1e-9)


@given(st.floats(-50, 50), st.floats(-50, 50))
def test_lift_iris_recovers_synthetic_eye(pitch, yaw):
    """A synthetic eye at a known gaze: its iris centre, seen orthographically, gives the
    gaze back."""
    tpl = g.eye_template()
    gaze = g.gaze_from_angles(t(pitch), t(yaw))
    centre, radius = t([0.3, 0.1, 0.5]), t(0.05)
    verts = g.place_eye_mesh(tpl, centre, radius, gaze)
    iris_xy = verts[tpl.iris_centre, :2]
    iris_distance = radius * math.cos(math.radians(tpl.iris_angle_deg))
    est = g.lift_iris_to_sphere(centre, iris_distance, iris_xy)
    assert g.angle_between_deg(est, gaze).item() < 0.5


def test_lift_iris_clamps_noise_outside_the_sphere():
    est = g.lift_iris_to_sphere(t([0.0, 0.0, 0.0]), t(1.0), t([2.0, 0.0]))
    assert torch.allclose(est, t([1.0, 0.0, 0.0]), atol=1e-9)

"""Shapes, eyes and crops on synthetic data with known answers."""

import numpy as np
import pytest
import torch

from freehead import geometry as g
from freehead.perception import crop as C
from freehead.perception.eyes import EYEBALL_RADIUS_IOD, IRIS_DISTANCE_IOD, fit_eyes
from freehead.perception.keypoints import (
    IRIS,
    KEYPOINT_MESH_INDICES,
    KEYPOINT_MIDLINE,
    KEYPOINT_MIRROR_PAIRS,
    KEYPOINT_PARTS,
    NUM_KEYPOINTS,
)
from freehead.perception.mean_shape_build import build_mean_shape
from freehead.perception.shape import (
    MeanShape,
    fit_head_pose,
    generalised_procrustes,
    orient_shape,
)

T = torch.float64


def test_keypoint_table_is_consistent():
    assert len(KEYPOINT_MESH_INDICES) == NUM_KEYPOINTS
    assert len(set(KEYPOINT_MESH_INDICES)) == NUM_KEYPOINTS
    assert sorted(i for part in KEYPOINT_PARTS.values() for i in part) == list(range(68))
    mirrored = {i for pair in KEYPOINT_MIRROR_PAIRS for i in pair}
    assert mirrored.isdisjoint(KEYPOINT_MIDLINE)
    assert len(mirrored) + len(KEYPOINT_MIDLINE) == 68


def test_shipped_mean_shape_is_a_symmetric_frontal_face():
    """In head coordinates the mirror pairs of the shipped shape mirror each other across
    x = 0 and the midline lies on it — tightly for the upper face, loosely for the jaw
    and lips, where the two men of the sample data are not symmetric — and the face
    parts sit where a face has them."""
    mean = MeanShape.default()
    kp = mean.points[list(KEYPOINT_MESH_INDICES)]
    for a, b in KEYPOINT_MIRROR_PAIRS:
        tol = 0.03 if 17 <= a < 48 else 0.1
        assert kp[a, 0] < 0 < kp[b, 0], (a, b)  # iBUG's left is image left
        assert abs(kp[a, 0] + kp[b, 0]) < tol, (a, b)
        assert abs(kp[a, 1] - kp[b, 1]) < tol, (a, b)
    for i in KEYPOINT_MIDLINE:
        assert abs(kp[i, 0]) < (0.03 if 27 <= i < 36 else 0.06), i
    assert kp[30, 2] < kp[39, 2]  # nose tip nearer the camera than the eye corners
    assert kp[19, 1] < kp[37, 1] < kp[30, 1] < kp[51, 1] < kp[8, 1]  # brow, eye, nose, lip, chin
    assert abs(np.linalg.norm(kp[45] - kp[36]) - 1.0) < 1e-9


def _posed_shapes(mean: np.ndarray, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yaw, pitch, roll = rng.uniform(-30, 30, (3, n))
    r = g.rotation_from_angles(torch.tensor(yaw), torch.tensor(pitch), torch.tensor(roll))
    s = torch.tensor(rng.uniform(50, 150, n))
    t = torch.tensor(rng.uniform(100, 300, (n, 3)))
    pts = g.apply_similarity(torch.tensor(mean).expand(n, -1, -1), r, t, s)
    return pts.numpy(), r, s, t


def test_gpa_recovers_the_mean_of_posed_noisy_copies():
    truth = MeanShape.default().points
    shapes, _, s, _ = _posed_shapes(truth, 60)
    noise = np.random.default_rng(1).normal(0, 0.003, shapes.shape) * s.numpy()[:, None, None]
    mean, _ = generalised_procrustes(shapes + noise)
    assert np.abs(mean - orient_shape(truth)).max() < 0.01


def test_head_pose_fit_recovers_known_pose():
    mean = MeanShape.default()
    shapes, r, s, t = _posed_shapes(mean.points, 20, seed=3)
    fit = fit_head_pose(torch.tensor(shapes), mean)
    assert g.rotation_angle_deg(fit.rotation, r).max() < 1e-3
    assert torch.allclose(fit.scale, s) and torch.allclose(fit.translation, t)


def _synthetic_faces(mean: MeanShape, gaze_pitch, gaze_yaw, seed=0):
    """Posed copies of the mean shape whose irises sit where the eye model puts them for
    the given gaze (degrees, camera frame, one value per frame)."""
    n = len(gaze_pitch)
    shapes, r, s, t = _posed_shapes(mean.points, n, seed)
    lm = torch.tensor(shapes)
    head = torch.tensor(mean.points)
    outer, inner = [33, 263], [133, 362]
    mids = (head[outer] + head[inner]) / 2
    centres_head = mids + torch.tensor(mean.eyeball_offset)
    centres = g.apply_similarity(centres_head.expand(n, -1, -1), r, t, s)  # (n, 2, 3)
    gaze = g.gaze_from_angles(torch.tensor(gaze_pitch), torch.tensor(gaze_yaw))
    for eye in range(2):
        iris = centres[:, eye] + (s * IRIS_DISTANCE_IOD)[:, None] * gaze
        for idx in IRIS[eye]:
            lm[:, idx] = iris
    return lm, gaze, s


def test_eye_fit_recovers_gaze_of_synthetic_faces():
    mean = MeanShape.default()
    pitch = np.array([0.0, 10.0, -15.0, 20.0, -5.0, 25.0])
    yaw = np.array([0.0, -20.0, 12.0, 30.0, -35.0, 5.0])
    lm, gaze, s = _synthetic_faces(mean, pitch, yaw)
    pose = fit_head_pose(lm, mean)
    fit = fit_eyes(lm, pose, mean)
    for eye in range(2):
        assert g.angle_between_deg(fit.gaze[:, eye], gaze).max() < 0.5
    assert torch.allclose(fit.radius, s * EYEBALL_RADIUS_IOD)
    meshes = fit.meshes()
    from freehead.perception.eyes import TEMPLATE

    assert meshes.shape == (6, 2, TEMPLATE.vertices.shape[0], 3)
    assert g.angle_between_deg(g.gaze_from_eye_mesh(TEMPLATE, meshes[:, 0]), gaze).max() < 0.5


def test_eye_fit_of_a_clip_with_no_valid_frame_uses_every_frame():
    """A folder whose photos all hold several faces has no frame flagged valid; the shared
    eyeball centres then come from every frame instead of failing."""
    mean = MeanShape.default()
    lm, gaze, _ = _synthetic_faces(mean, np.array([5.0, -10.0]), np.array([10.0, 20.0]))
    pose = fit_head_pose(lm, mean)
    none = fit_eyes(lm, pose, mean, valid=torch.zeros(2, dtype=torch.bool))
    every = fit_eyes(lm, pose, mean)
    assert torch.equal(none.centres, every.centres)
    assert g.angle_between_deg(none.combined_gaze(), gaze).max() < 0.5


def test_build_mean_shape_calibrates_zero_gaze_and_pitch():
    """Faces that look into the camera: after calibration their gaze reads ~0 and their
    median head pitch is 0, whatever eyeball offset the synthetic faces had."""
    truth = MeanShape(
        MeanShape.default().points, np.array([[-0.03, -0.02, 0.04], [0.03, -0.02, 0.04]])
    )
    n = 40
    lm, _, _ = _synthetic_faces(truth, np.zeros(n), np.zeros(n), seed=5)
    built = build_mean_shape(lm.numpy())
    assert np.abs(built.eyeball_offset[:, :2] - truth.eyeball_offset[:, :2]).max() < 0.01
    pose = fit_head_pose(lm, built)
    angles = g.angles_from_rotation(pose.rotation)
    assert abs(float(np.median(angles[:, 1].numpy()))) < 1.0
    gaze = fit_eyes(lm, pose, built).combined_gaze()
    assert g.angle_between_deg(gaze, torch.tensor(g.FORWARD, dtype=T)).max() < 1.0


def test_crop_coordinates_round_trip_and_match_pixels():
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[120:124, 250:254] = 255  # a 4x4 dot centred at pixel (252, 122)
    box = np.array([230.0, 140.0, 160.0])
    crop = C.crop_image(frame, box, 128)
    ys, xs = np.nonzero(crop[..., 0] > 64)
    seen = np.array([xs.mean() + 0.5, ys.mean() + 0.5]) / 128 * 2 - 1  # crop coordinates
    predicted = C.to_crop_coords(np.array([[252.0, 122.0, 5.0]]), box)[0]
    assert np.abs(seen - predicted[:2]).max() < 0.02
    back = C.from_crop_coords(predicted[None], box)[0]
    assert np.allclose(back, [252.0, 122.0, 5.0])


def test_paste_back_restores_the_frame():
    rng = np.random.default_rng(0)
    frame = (rng.uniform(0, 255, (240, 320, 3))).astype(np.uint8)
    frame = C.cv2.GaussianBlur(frame, (9, 9), 3)
    box = np.array([150.0, 110.0, 120.0])
    crop = C.crop_image(frame, box, 120)  # same scale: resampling error is small
    pasted = C.paste_back(frame, crop, box)
    assert np.abs(pasted.astype(int) - frame.astype(int)).mean() < 1.0
    # a changed crop changes the frame only inside the box
    pasted = C.paste_back(frame, np.zeros_like(crop), box)
    assert (pasted[:40] == frame[:40]).all() and (pasted[:, 220:] == frame[:, 220:]).all()
    assert pasted[110, 150].max() == 0


@pytest.mark.parametrize(
    "box", [[150.0, 110.0, 120.0], [10.0, 110.0, 160.0], [300.0, 20.5, 97.0], [160.0, 120.0, 900.0]]
)
def test_crop_coverage_is_the_crop_of_a_white_frame(box):
    """The coverage is what crop_image makes of a frame that is 1 everywhere: 1 inside the
    photo, 0 past it, the bilinear blend on the edge."""
    white = np.full((240, 320), 255, np.uint8)
    box = np.array(box)
    for size in (64, 128):
        seen = C.crop_image(white, box, size).astype(np.float32) / 255
        assert np.abs(C.crop_coverage(white.shape, box, size) - seen).max() < 0.02


def test_fill_uncovered_continues_the_photo_and_keeps_it():
    rng = np.random.default_rng(1)
    frame = C.cv2.GaussianBlur(rng.uniform(0, 255, (240, 320, 3)).astype(np.uint8), (31, 31), 9)
    frame[..., 0] = np.linspace(40, 200, 320)[None]  # red rises to the right
    box = np.array([20.0, 110.0, 160.0])  # runs 60 px past the photo's left edge
    crop = C.crop_image(frame, box, 128)
    coverage = C.crop_coverage(frame.shape, box, 128)
    assert (coverage == 0).any() and crop[coverage == 0].max() == 0  # black before
    filled = C.fill_uncovered(crop, coverage)
    assert (filled[coverage == 1] == crop[coverage == 1]).all()
    outside = filled[coverage == 0].astype(np.float32)
    edge = crop[:, coverage[0].argmax() + 2].astype(np.float32)  # the photo's first full column
    assert np.abs(outside.mean(0) - edge.mean(0)).max() < 20  # the edge's colours carried on
    assert outside[:, 0].max() < crop[coverage == 1][:, 0].mean()  # red keeps falling leftwards
    # a photo of one colour is continued in that colour; a box inside the photo is untouched
    flat = np.full_like(frame, (90, 60, 30))
    assert (C.fill_uncovered(C.crop_image(flat, box, 64), C.crop_coverage(flat.shape, box, 64))
            == (90, 60, 30)).all()  # fmt: skip
    # a face at the photo's edge is kept out of the fill, which then takes the background's
    framed = flat.copy()
    framed[60:160, :40] = (230, 170, 150)  # skin touching the left edge
    crop2 = C.crop_image(framed, box, 64)
    cov2 = C.crop_coverage(framed.shape, box, 64)
    face = np.zeros((64, 64), np.float32)
    face[10:54, 22:42] = 1.0  # over the skin: crop rows 12-51, columns 24-39
    assert np.abs(crop2[14:50, 25:39].astype(int) - (230, 170, 150)).max() < 2
    plain = C.fill_uncovered(crop2, cov2)[32, 2].astype(int)
    kept = C.fill_uncovered(crop2, cov2, keep_out=face)[32, 2].astype(int)
    assert np.abs(plain - (230, 170, 150)).max() < 60 and np.abs(kept - (90, 60, 30)).max() <= 2
    inside = np.array([160.0, 120.0, 100.0])
    assert C.fill_uncovered(crop, C.crop_coverage(frame.shape, inside, 128)) is crop


def test_smooth_boxes_removes_jitter_and_fills_gaps():
    rng = np.random.default_rng(0)
    n = 200
    truth = np.stack([np.linspace(100, 140, n), np.full(n, 80.0), np.full(n, 150.0)], 1)
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    valid = np.ones(n, bool)
    valid[50:60] = False
    noisy[~valid] = np.nan
    smooth = C.smooth_boxes(noisy, valid, fps=25, seconds=0.3)
    assert np.isfinite(smooth).all()
    jitter_before = np.abs(np.diff(noisy[valid][:40, 0])).mean()
    jitter_after = np.abs(np.diff(smooth[:40, 0])).mean()
    assert jitter_after < jitter_before / 5
    assert np.abs(smooth - truth)[10:-10].max() < 2.0


def test_boxes_from_pose_follow_the_head():
    r = g.rotation_from_angles(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]))
    pose = g.Similarity(
        r, torch.tensor([[200.0, 150.0, 0.0]], dtype=T), torch.tensor([50.0], dtype=T)
    )
    box = C.boxes_from_pose(pose, C.CropConfig(size_iod=4.0, centre_up_iod=0.5))
    assert np.allclose(box, [[200.0, 125.0, 200.0]])


@pytest.mark.parametrize("n", [1, 3])
def test_smooth_boxes_short_clips(n):
    boxes = np.tile([[10.0, 20.0, 30.0]], (n, 1))
    assert np.allclose(C.smooth_boxes(boxes, np.ones(n, bool), 25, 0.3), boxes)

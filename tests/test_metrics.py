"""Every evaluation metric on a case whose answer is known."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from freehead.evaluation.metrics import (
    PSNR_CAP_DB,
    IdentityEncoder,
    angle_between_deg,
    cosine_similarity,
    identity_distance,
    keypoint_distance_px,
    l1,
    measure_faces,
    outside_change,
    pose_error_deg,
    psnr,
    sharpness,
    sharpness_ratio,
    ssim,
    to_unit,
)
from freehead.media import read_image


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.2 + 0.6 * rng.random((size, size, 3))


def test_l1_and_psnr_of_known_differences():
    a = np.full((8, 8, 3), 0.2)
    assert l1(a, np.full((8, 8, 3), 0.5)) == pytest.approx(0.3)
    img = _image()
    assert psnr(img, img + 0.1) == pytest.approx(20.0)  # MSE 0.01
    noise = np.random.default_rng(1).choice([-0.05, 0.05], img.shape)
    assert psnr(img, img + noise) == pytest.approx(-10 * np.log10(0.0025))
    assert psnr(img, img) == PSNR_CAP_DB
    assert to_unit(np.array([[255]], np.uint8))[0, 0] == 1.0


def test_ssim_matches_the_definition():
    img = _image(2)
    assert ssim(img, img) == pytest.approx(1.0)
    other = np.clip(img + np.random.default_rng(3).normal(0, 0.1, img.shape), 0, 1)
    reference = structural_similarity(img, other, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1.0,
                                      channel_axis=-1)  # fmt: skip
    assert ssim(img, other) == pytest.approx(reference, abs=2e-3)
    assert ssim(img, other) < 0.9


def test_sharpness_ratio_falls_with_blur():
    import cv2

    img = _image(4)
    blurred = cv2.GaussianBlur(img, (7, 7), 2.0)
    assert sharpness_ratio(img, img, None) == pytest.approx(1.0)
    assert sharpness_ratio(blurred, img, None) < 0.2
    mask = np.zeros(img.shape[:2], bool)
    mask[10:30, 10:30] = True
    flat = img.copy()
    flat[mask] = 0.5
    inner = np.zeros_like(mask)
    inner[12:28, 12:28] = True  # away from the edge, where the 3x3 Laplacian sees outside
    assert sharpness(flat, inner) == pytest.approx(0.0)
    assert sharpness(flat, ~mask) == pytest.approx(sharpness(img, ~mask), rel=0.2)


def test_outside_change_ignores_the_kept_region():
    src = np.full((10, 10, 3), 0.5)
    out = src.copy()
    keep = np.zeros((10, 10), bool)
    keep[2:4, 2:6] = True
    out[keep] = 1.0  # changes inside the eyes do not count
    assert outside_change(out, src, keep) == 0.0
    out[9, 9] = 0.0  # one of 92 outside pixels changes by 0.5
    assert outside_change(out, src, keep) == pytest.approx(0.5 / 92)


def test_keypoint_pose_and_angle_errors():
    pts = np.random.default_rng(5).random((68, 2)) * 100
    assert keypoint_distance_px(pts, pts + np.array([3.0, 4.0])) == pytest.approx(5.0)
    assert angle_between_deg(np.array([1.0, 0, 0]), np.array([0, 1.0, 0])) == pytest.approx(90)
    assert angle_between_deg(np.array([0, 0, -1.0]), np.array([0, 0, -1.0])) == pytest.approx(0)
    assert pose_error_deg([10, 0, 0], [-10, 3, 0]) == pytest.approx(23 / 3)
    assert pose_error_deg([179, 0, 0], [-179, 0, 0]) == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def portraits(samples):
    return (
        read_image(samples / "portraits" / "astronaut.png"),
        read_image(samples / "portraits" / "grace_hopper.jpg"),
    )


def test_identity_distance_and_csim(portraits):
    import cv2

    astronaut, hopper = portraits
    enc = IdentityEncoder()
    a = enc.descriptor(astronaut)
    _, jpeg = cv2.imencode(".jpg", astronaut[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
    a_jpeg = enc.descriptor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])
    h = enc.descriptor(hopper)
    assert a.shape == (128,) and identity_distance(a, a) == 0.0
    assert identity_distance(a, a_jpeg) < 0.15  # the same picture, re-encoded
    assert identity_distance(a, h) > 0.6  # two people, beyond dlib's threshold
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, h) < cosine_similarity(a, a_jpeg)
    assert enc.descriptor(np.full((100, 100, 3), 128, np.uint8)) is None


def test_measure_faces(portraits):
    astronaut, _ = portraits
    blank = np.full_like(astronaut, 90)
    got = measure_faces([astronaut, blank])
    assert got[1] is None
    m = got[0]
    assert m is not None and m.keypoints_px.shape == (68, 2)
    assert np.isfinite(m.keypoints_px).all() and np.isfinite(m.head_angles).all()
    assert abs(np.linalg.norm(m.gaze) - 1) < 1e-6
    face = m.face_mask(astronaut.shape[:2])
    eyes = m.eye_mask(astronaut.shape[:2])
    assert 0 < eyes.sum() < face.sum()
    # the eye regions hold the eye keypoints
    for x, y in m.keypoints_px[36:48].round().astype(int):
        assert eyes[y, x]


def test_a_shared_still_image_tracker_measures_as_a_fresh_one(portraits):
    from freehead.perception.tracker import FaceTracker

    astronaut, hopper = portraits
    fresh = [measure_faces([image])[0] for image in (astronaut, hopper, astronaut)]
    with FaceTracker(video=False) as tracker:
        shared = [measure_faces([image], tracker)[0] for image in (astronaut, hopper, astronaut)]
        with FaceTracker(video=True) as video_tracker, pytest.raises(ValueError, match="video"):
            measure_faces([astronaut], video_tracker)
    for a, b in zip(fresh, shared, strict=True):
        assert a is not None and b is not None
        np.testing.assert_allclose(a.keypoints_px, b.keypoints_px, atol=1e-3)
        np.testing.assert_allclose(a.gaze, b.gaze, atol=1e-5)

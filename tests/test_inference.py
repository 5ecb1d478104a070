"""Inference building blocks: smoothing, motion transfer, gaze controls, masks, image
input conversion and video output."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from freehead.apps.video import VideoWriter, check_output, ffmpeg_exe, has_audio
from freehead.errors import FreeheadError
from freehead.geometry import angles_from_rotation, rotation_from_angles
from freehead.inference.gaze import GazeControl
from freehead.inference.masks import eye_mask, face_mask
from freehead.inference.motion import FaceMotion, relative_motion
from freehead.inference.smoothing import OneEuroFilter, SmoothingConfig
from freehead.media import as_rgb8
from freehead.models.keypoints import KeypointPrediction

# ------------------------------------------------------------------------- smoothing


def test_smoothing_off_returns_the_input():
    f = OneEuroFilter(25.0, SmoothingConfig(strength=0.0))
    x = np.random.default_rng(0).normal(size=(10, 3))
    assert all(np.array_equal(f(v), v) for v in x)


def test_smoothing_halves_jitter_and_follows_a_step_within_three_frames():
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 1.0, (400, 8))  # a still signal seen with unit noise
    f = OneEuroFilter(25.0)
    smoothed = np.array([f(v) for v in noise])
    ratio = (
        np.abs(np.diff(smoothed[50:], axis=0)).mean() / np.abs(np.diff(noise[50:], axis=0)).mean()
    )
    assert ratio <= 0.5
    # a step ten times the noise: 90 % of it within 3 frames
    f = OneEuroFilter(25.0)
    signal = np.r_[np.zeros(30), np.full(10, 10.0)]
    out = np.array([f(np.array([v]))[0] for v in signal])
    assert out[32] >= 9.0
    assert np.abs(out[:30]).max() == 0.0


def test_smoothing_strength_smooths_more():
    noise = np.random.default_rng(2).normal(size=(300, 4))

    def jitter(strength: float) -> float:
        f = OneEuroFilter(25.0, SmoothingConfig(strength=strength))
        return float(np.abs(np.diff([f(v) for v in noise], axis=0)).mean())

    assert jitter(2.0) < jitter(1.0) < jitter(0.5)


# --------------------------------------------------------------------------- motion


def _motion(yaw=10.0, pitch=-5.0, roll=3.0, seed=0) -> FaceMotion:
    rng = np.random.default_rng(seed)
    r = rotation_from_angles(*torch.tensor([yaw, pitch, roll], dtype=torch.float64)).numpy()
    g = rng.normal(size=(2, 3)) + np.array([0.0, 0.0, -3.0])
    return FaceMotion(
        rotation=r,
        translation=rng.normal(0, 0.05, 3),
        scale=0.5 + rng.uniform(0, 0.1),
        expression=rng.normal(0, 0.02, (68, 3)),
        eye_gaze=g / np.linalg.norm(g, axis=1, keepdims=True),
    )


def test_motion_from_prediction_reproduces_the_keypoints():
    m = _motion()
    canonical = np.random.default_rng(3).normal(0, 0.5, (68, 3))
    d = m.scale * m.expression @ m.rotation.T
    p = m.scale * canonical @ m.rotation.T + m.translation + d
    pred = KeypointPrediction(
        keypoints=torch.from_numpy(p)[None],
        rotation=torch.from_numpy(m.rotation)[None],
        translation=torch.from_numpy(m.translation)[None],
        scale=torch.tensor([m.scale], dtype=torch.float64),
        deformation=torch.from_numpy(d)[None],
    )
    back = FaceMotion.from_prediction(pred, m.gaze_camera)
    np.testing.assert_allclose(back.keypoints(pred.canonical[0].numpy()), p, atol=1e-9)
    np.testing.assert_allclose(back.eye_gaze, m.eye_gaze, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.floats(-60, 60), st.floats(-45, 45), st.floats(-40, 40),
    st.floats(-30, 30), st.floats(-30, 30),
)  # fmt: skip
def test_motion_vector_round_trip(yaw, pitch, roll, gp, gy):
    m = _motion(yaw, pitch, roll).with_camera_gaze(np.array([gp, gy]))
    back = FaceMotion.from_vector(m.to_vector(), 68)
    np.testing.assert_allclose(back.rotation, m.rotation, atol=1e-9)
    np.testing.assert_allclose(back.expression, m.expression, atol=1e-12)
    np.testing.assert_allclose(back.eye_gaze, m.eye_gaze, atol=1e-9)
    np.testing.assert_allclose(back.gaze_angles, np.array([[gp, gy]] * 2), atol=1e-6)


def test_relative_motion_of_a_still_driver_is_the_source():
    src, drv = _motion(seed=1), _motion(30, 10, -5, seed=2)
    out = relative_motion(src, drv, drv)
    canonical = np.random.default_rng(4).normal(0, 0.5, (68, 3))
    np.testing.assert_allclose(out.keypoints(canonical), src.keypoints(canonical), atol=1e-12)


def test_relative_motion_carries_the_rotation_change():
    src = _motion(0, 0, 0, seed=1)
    first, now = _motion(5, 0, 0, seed=2), _motion(25, 0, 0, seed=2)  # the driver turns 20°
    out = relative_motion(src, now, first)
    np.testing.assert_allclose(angles_from_rotation(torch.from_numpy(out.rotation)).numpy(),
                               [20, 0, 0], atol=1e-9)  # fmt: skip
    assert out.scale == pytest.approx(src.scale)


def test_pose_override_and_camera_gaze():
    m = _motion(20, 5, 0).with_angles(yaw=-10.0)
    np.testing.assert_allclose(m.head_angles, [-10, 5, 0], atol=1e-9)
    looking = m.with_camera_gaze(np.array([0.0, 0.0]))
    np.testing.assert_allclose(looking.gaze_angles, np.zeros((2, 2)), atol=1e-9)


# ----------------------------------------------------------------------------- gaze


def test_gaze_control_parsing(tmp_path):
    assert GazeControl.parse("transfer").target(0) is None
    np.testing.assert_allclose(GazeControl.parse("camera").target(5), [0, 0])
    np.testing.assert_allclose(GazeControl.parse("10,-5").target(0), [10, -5])
    csv = tmp_path / "path.csv"
    csv.write_text("frame,pitch,yaw\n0,0,0\n10,10,-20\n")
    control = GazeControl.parse(str(csv))
    np.testing.assert_allclose(control.target(5), [5, -10])
    np.testing.assert_allclose(control.target(50), [10, -20])  # held after the end
    for bad in ("sideways", "10,abc", "90,0", "nan,0"):
        with pytest.raises(FreeheadError):
            GazeControl.parse(bad)
    (tmp_path / "bad.csv").write_text("0,1,2\n5,x,3\n")
    with pytest.raises(FreeheadError, match="line 2"):
        GazeControl.parse(str(tmp_path / "bad.csv"))
    with pytest.raises(FreeheadError, match="no such"):
        GazeControl.parse(str(tmp_path / "missing.csv"))


def test_gaze_requests_are_numbers_within_what_the_sketch_encodes():
    """The accepted range is the sketch's: every accepted request gets its own eye colour,
    and the first angle past it, which would be drawn as the edge, is refused."""
    from freehead.inference.gaze import MAX_GAZE_DEG
    from freehead.sketch import GAZE_RANGE_DEG, gaze_colour

    assert MAX_GAZE_DEG == GAZE_RANGE_DEG
    edge = GazeControl.fixed(MAX_GAZE_DEG, -MAX_GAZE_DEG)
    np.testing.assert_array_equal(edge.target(3), [MAX_GAZE_DEG, -MAX_GAZE_DEG])
    assert gaze_colour(MAX_GAZE_DEG - 1, 0) != gaze_colour(MAX_GAZE_DEG, 0)
    assert gaze_colour(MAX_GAZE_DEG + 5, 0) == gaze_colour(MAX_GAZE_DEG, 0)  # saturated
    for pitch, yaw in ((MAX_GAZE_DEG + 0.5, 0), (0, -MAX_GAZE_DEG - 0.5), (float("inf"), 0)):
        with pytest.raises(FreeheadError, match="gaze"):
            GazeControl.fixed(pitch, yaw)
    with pytest.raises(FreeheadError, match="beyond"):
        GazeControl.along(np.array([[0, 0, 0], [5, 50, 0]]))
    path = GazeControl.along(np.array([[8, 0, 10], [0, 0, -10]]))  # any order
    np.testing.assert_allclose(path.target(4), [0, 0])
    with pytest.raises(FreeheadError, match="transfer"):
        GazeControl.transfer().requested(0)


# ----------------------------------------------------------------------------- masks


def _face_keypoints() -> np.ndarray:
    """A made-up frontal face in crop coordinates (jaw, brows, eyes; the rest at 0)."""
    xs = np.linspace(-0.4, 0.4, 17)
    jaw = np.stack([xs, 0.1 + 0.4 * np.cos(xs * 3.5)], 1)
    rest = np.zeros((51, 2))
    rest[36 - 17 : 42 - 17] = np.stack([np.linspace(-0.3, -0.1, 6), np.full(6, -0.1)], 1)
    rest[42 - 17 : 48 - 17] = np.stack([np.linspace(0.1, 0.3, 6), np.full(6, -0.1)], 1)
    rest[36 - 17 + 1 : 36 - 17 + 3, 1] = -0.13
    rest[42 - 17 + 1 : 42 - 17 + 3, 1] = -0.13
    rest[:10] = np.stack([np.linspace(-0.35, 0.35, 10), np.full(10, -0.25)], 1)  # brows
    return np.concatenate([jaw, rest])


def test_eye_mask_is_zero_away_from_the_eyes():
    kp = _face_keypoints()
    m = eye_mask(kp, 128)
    centre = ((kp[36:42].mean(0) + 1) * 64).astype(int)
    assert m[centre[1], centre[0]] == pytest.approx(1.0)
    assert m[100:, :].max() == 0.0 and m[:, :20].max() == 0.0
    assert 0.0 < m.mean() < 0.1


def test_face_mask_covers_the_face_and_not_the_corners():
    m = face_mask([_face_keypoints()], 128)
    assert m[64, 64] == pytest.approx(1.0, abs=1e-3)
    assert m[0, 0] < 1e-3 and m[127, 127] < 1e-3


# ---------------------------------------------------------------------- image input


def test_as_rgb8_converts_every_common_input():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.array_equal(as_rgb8(rgb), rgb)
    assert as_rgb8(rgb[..., 0]).shape == (40, 50, 3)
    rgba = np.concatenate([rgb, np.full((40, 50, 1), 7, np.uint8)], 2)
    assert np.array_equal(as_rgb8(rgba), rgb)
    assert np.array_equal(as_rgb8(rgb.astype(np.uint16) * 257), rgb)
    assert np.array_equal(as_rgb8(rgb / 255.0), rgb)
    from PIL import Image

    assert np.array_equal(
        as_rgb8(Image.fromarray(rgb).convert("L").convert("RGB")).shape, (40, 50, 3)
    )
    for bad, words in (
        (np.zeros((10, 10, 3), np.uint8), "too small"),
        (np.zeros((40, 40, 5), np.uint8), "expected an image"),
        (np.full((40, 40, 3), np.nan), "NaN"),
    ):
        with pytest.raises(FreeheadError, match=words):
            as_rgb8(bad)


# ---------------------------------------------------------------------- video output


def _frames(n: int, size=(48, 64)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def test_video_writer_writes_every_frame(tmp_path):
    import cv2

    out = tmp_path / "v.mp4"
    with VideoWriter(out, 25.0) as w:
        for f in _frames(12, (45, 63)):  # odd sides are padded for yuv420p
            w.write(f)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
    assert not list(tmp_path.glob(".*tmp*"))


def test_video_writer_failure_keeps_the_old_file(tmp_path):
    out = tmp_path / "v.mp4"
    out.write_bytes(b"the user's file")
    with pytest.raises(RuntimeError), VideoWriter(out, 25.0) as w:
        w.write(_frames(1)[0])
        raise RuntimeError("stop")
    assert out.read_bytes() == b"the user's file"
    assert not list(tmp_path.glob(".*tmp*"))


def test_video_writer_copies_audio(tmp_path):
    with_audio = tmp_path / "a.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-f", "lavfi", "-i",
                    "color=c=gray:s=64x48:d=1", "-shortest", str(with_audio)], check=True)  # fmt: skip
    assert has_audio(with_audio)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 25.0, audio_from=with_audio) as w:
        for f in _frames(10):
            w.write(f)
    assert has_audio(out)
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 25.0, audio_from=out.with_name("missing.mp4")) as w:
        w.write(_frames(1)[0])
    assert not has_audio(silent)


def test_check_output(tmp_path: Path):
    kinds = frozenset({".mp4"})
    (tmp_path / "x.mp4").write_bytes(b"")
    with pytest.raises(FreeheadError, match="exists"):
        check_output(tmp_path / "x.mp4", kinds, overwrite=False)
    assert check_output(tmp_path / "x.mp4", kinds, overwrite=True) == tmp_path / "x.mp4"
    with pytest.raises(FreeheadError, match="must be one of"):
        check_output(tmp_path / "x.gif", kinds, overwrite=False)


def test_frames_from_a_start_frame(samples):
    from freehead.media import open_frames

    video = open_frames(samples / "videos/franck/franck.mp4")
    head = list(video.frames(8))
    part = list(video.frames(3, start=5))
    assert len(part) == 3 and all(np.array_equal(a, b) for a, b in zip(part, head[5:], strict=True))
    stills = open_frames(samples / "stills")
    assert len(list(stills.frames(2, start=1))) == 2

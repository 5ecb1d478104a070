"""Labels of real frames from the sample videos."""

import numpy as np
import pytest

from freehead.perception.labels import FLAG_NO_FACE, FLAG_OK, label_images

from .conftest import read_video_frames


@pytest.fixture(scope="module")
def franck_turns(samples):
    """Frames of franck.mp4 with the head turned to image right (1088: his left) and to
    image left (3844: his right); looked at by eye when the test was written."""
    return read_video_frames(samples / "videos/franck/franck.mp4", [1088, 3844])


def test_yaw_sign_of_turned_heads(franck_turns):
    labels = label_images(franck_turns)
    assert (labels.flags == FLAG_OK).all()
    yaw_left, yaw_right = labels.head_angles[:, 0]
    assert yaw_left < -15  # turned to image right = the person's left: negative yaw
    assert yaw_right > 5  # turned to image left = the person's right: positive yaw


def test_mirroring_flips_yaw_roll_and_gaze_yaw(franck_turns):
    frames = [franck_turns[0], np.ascontiguousarray(franck_turns[0][:, ::-1])]
    labels = label_images(frames)
    (yaw, pitch, roll), (myaw, mpitch, mroll) = labels.head_angles
    assert yaw < -15 and myaw > 15
    assert abs(yaw + myaw) < 4 and abs(pitch - mpitch) < 4 and abs(roll + mroll) < 4
    (gp, gy), (mgp, mgy) = labels.gaze
    assert abs(gy + mgy) < 6 and abs(gp - mgp) < 6


def test_stills_are_labelled_with_plausible_values(samples):
    from freehead.media import read_image

    stills = sorted((samples / "stills").glob("franck_*.jpg"))[:4]
    labels = label_images([read_image(p) for p in stills])
    assert (labels.flags == FLAG_OK).all()
    assert np.abs(labels.head_angles).max() < 45
    assert np.abs(labels.gaze).max() < 45
    # the crop holds the whole face: keypoints well inside [-1, 1]
    assert np.abs(labels.keypoints[..., :2]).max() < 0.8
    # eye meshes: the inter-ocular distance is about one head-scale unit apart
    d = np.linalg.norm(labels.eyeball_centre[:, 0] - labels.eyeball_centre[:, 1], axis=-1)
    assert np.all((d / labels.scale > 0.6) & (d / labels.scale < 0.9))


def test_a_frame_without_a_face_is_flagged_not_fatal(franck_turns):
    blank = np.full_like(franck_turns[0], 128)
    labels = label_images([franck_turns[0], blank])
    assert labels.flags.tolist() == [FLAG_OK, FLAG_NO_FACE]
    assert np.isnan(labels.keypoints[1]).all() and np.isfinite(labels.keypoints[0]).all()
    assert np.isfinite(labels.box).all()  # the faceless frame keeps a crop

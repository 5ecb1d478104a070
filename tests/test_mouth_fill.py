"""The mouth interior a warp cannot make (freehead.inference.mouth_fill): the mapping of the
output's mouth opening onto the driver's, and the fill itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freehead.inference.mouth_fill import GAIN_RANGE, MouthFrame, driver_points, fill_mouth
from freehead.perception.meshwarp import MOUTH_CAVITY_RGB, MeshWarp, WarpTarget

from .test_meshwarp import synthetic_face, texture


@pytest.fixture(scope="module")
def warp() -> MeshWarp:
    return MeshWarp()


def _inside(frame: MouthFrame, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels whose centres lie strictly between the inner lips
    (away from the corners)."""
    rows, cols = np.mgrid[0:size, 0:size]
    uv = frame.to_uv(np.stack([cols.ravel(), rows.ravel()], 1) + 0.5)
    top, bottom = frame.lips_at(uv[:, 0])
    keep = (
        (uv[:, 0] > 0.2) & (uv[:, 0] < 0.8) & (uv[:, 1] > top + 0.02) & (uv[:, 1] < bottom - 0.02)
    )
    return rows.ravel()[keep], cols.ravel()[keep]


@settings(max_examples=25, deadline=None)
@given(st.floats(-30, 30), st.floats(40, 90), st.floats(100, 150), st.floats(100, 150))
def test_a_mouth_frame_does_not_change_with_the_faces_roll_size_or_place(roll, scale, x, y):
    """(u, v) of the inner lips are the same for a face rolled, scaled and moved in the
    image (the frame turns with the line between the inner mouth corners)."""
    lips = MeshWarp().topology.lips
    upright = MouthFrame.of(synthetic_face(60.0, (128.0, 128.0), open_mouth=0.1), lips)
    moved = MouthFrame.of(synthetic_face(scale, (x, y), open_mouth=0.1, roll=roll), lips)
    assert moved.upper == pytest.approx(upright.upper, abs=1e-6)
    assert moved.lower == pytest.approx(upright.lower, abs=1e-6)
    pixels = np.array([[120.0, 130.0], [90.0, 70.0]])
    assert moved.to_pixels(moved.to_uv(pixels)) == pytest.approx(pixels)


def test_the_same_mouth_maps_each_pixel_onto_itself(warp):
    face = synthetic_face(70.0, (128.0, 124.0), open_mouth=0.12, roll=8.0)
    frame = MouthFrame.of(face, warp.topology.lips)
    rows, cols = _inside(frame)
    assert len(rows) > 50
    points, opening = driver_points(rows, cols, frame, frame)
    assert points == pytest.approx(np.stack([cols, rows], 1) + 0.5, abs=1e-6)
    assert np.all(opening > 5.0)


def test_a_pixel_a_share_down_the_opening_reads_the_drivers_at_that_share(warp):
    """Output and driver open differently and stand elsewhere: a pixel a fraction t of the
    way from the upper inner lip to the lower reads the driver's crop at the same fraction
    of its own opening, at the same share across the mouth."""
    lips = warp.topology.lips
    output = MouthFrame.of(synthetic_face(70.0, (128.0, 124.0), open_mouth=0.2), lips)
    driver = MouthFrame.of(synthetic_face(50.0, (100.0, 140.0), open_mouth=0.06, roll=-10), lips)
    rows, cols = _inside(output)
    points, _ = driver_points(rows, cols, output, driver)
    uv_out = output.to_uv(np.stack([cols, rows], 1) + 0.5)
    top, bottom = output.lips_at(uv_out[:, 0])
    t_out = (uv_out[:, 1] - top) / (bottom - top)
    uv_drv = driver.to_uv(points)
    d_top, d_bottom = driver.lips_at(uv_drv[:, 0])
    assert uv_drv[:, 0] == pytest.approx(uv_out[:, 0], abs=1e-9)
    assert (uv_drv[:, 1] - d_top) / (d_bottom - d_top) == pytest.approx(t_out, abs=1e-6)


def _gap(warp: MeshWarp, open_source: float, open_target: float):
    face = synthetic_face(70.0, (128.0, 124.0), open_mouth=open_source)
    source = warp.prepare(texture(), face)
    target = warp.absolute(source, synthetic_face(70.0, (128.0, 124.0), open_mouth=open_target))
    _, cavity = warp.flow_and_cavity(source, target)
    return target, cavity


def _filled_between_the_lips(warp: MeshWarp, target: WarpTarget, cavity):
    """Rows and columns of the cavity's fully filled pixels that lie between the target's
    inner lips (the fill's triangles reach a little past the lip lines)."""
    rows, cols, weight = cavity
    between = np.zeros((256, 256), bool)
    between[_inside(MouthFrame.of(target.mesh, warp.topology.lips))] = True
    keep = (weight >= 1.0) & between[rows, cols]
    assert keep.sum() > 100
    return rows[keep], cols[keep]


def test_nothing_is_filled_where_the_target_opens_no_wider_than_the_source(warp):
    target, cavity = _gap(warp, 0.1, 0.1)
    image = texture(2)
    assert cavity is None or not np.any(cavity[2] > 0)
    before = image.copy()
    assert fill_mouth(image, cavity, target.mesh, warp.topology.lips) is image
    assert np.array_equal(image, before)


def test_a_mouth_opened_wider_is_filled_with_the_cavity_or_the_drivers_interior(warp):
    target, cavity = _gap(warp, 0.0, 0.2)
    rows, cols, weight = cavity
    full, none = weight >= 1.0, weight == 0
    assert full.sum() > 100
    image = texture(2)
    dark = fill_mouth(image.copy(), cavity, target.mesh, warp.topology.lips)
    assert np.all(dark[rows[full], cols[full]] == MOUTH_CAVITY_RGB)
    assert np.array_equal(dark[rows[none], cols[none]], image[rows[none], cols[none]])
    outside = np.ones(image.shape[:2], bool)
    outside[rows, cols] = False
    assert np.array_equal(dark[outside], image[outside])
    # the driver is the same face, open as wide, with its own interior: that is copied
    # (the same skin, so no colour change)
    crop = image.copy()
    crop[rows, cols] = texture(3)[rows, cols]
    lent = fill_mouth(image.copy(), cavity, target.mesh, warp.topology.lips, (crop, target.mesh))
    r, c = _filled_between_the_lips(warp, target, cavity)
    assert np.abs(lent[r, c].astype(int) - crop[r, c].astype(int)).max() <= 1


def test_a_drivers_shut_mouth_lends_nothing_but_the_cavity(warp):
    target, cavity = _gap(warp, 0.0, 0.2)
    shut = synthetic_face(70.0, (128.0, 124.0))
    image, crop = texture(2), texture(3)
    lent = fill_mouth(image.copy(), cavity, target.mesh, warp.topology.lips, (crop, shut))
    dark = fill_mouth(image.copy(), cavity, target.mesh, warp.topology.lips)
    assert np.array_equal(lent, dark)


def test_the_drivers_colours_follow_the_ratio_of_the_two_faces_skin(warp):
    """A driver filmed a third brighter than the portrait lends its interior three
    quarters as bright; one twice as bright, held at :data:`GAIN_RANGE`'s low end."""
    target, cavity = _gap(warp, 0.0, 0.2)
    crop = np.full((256, 256, 3), 120, np.uint8)
    crop[cavity[0], cavity[1]] = 200  # the interior, inside the mouth only
    r, c = _filled_between_the_lips(warp, target, cavity)
    for skin, want in ((90, 150), (60, 200 * GAIN_RANGE[0])):
        image = np.full((256, 256, 3), skin, np.uint8)
        lent = fill_mouth(
            image.copy(), cavity, target.mesh, warp.topology.lips, (crop, target.mesh)
        )
        assert np.all(np.abs(lent[r, c].astype(int) - want) <= 1)


def test_the_flow_is_the_same_with_or_without_its_cavity(warp):
    face = synthetic_face(70.0, (128.0, 124.0))
    source = warp.prepare(texture(), face)
    target = WarpTarget(synthetic_face(72.0, (130.0, 122.0), open_mouth=0.15), source.pose)
    flow, cavity = warp.flow_and_cavity(source, target)
    assert np.array_equal(flow, warp.flow(source, target))
    assert cavity is not None and cavity[2].max() == 1.0

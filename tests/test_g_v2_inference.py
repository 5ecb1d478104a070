"""G v2 at inference: the Reenactor makes each source's prior flow (the mesh warp onto the
target mesh) in every mode, and a fresh G v2, which outputs its prior, shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from freehead.perception.labels import label_images

from .conftest import read_video_frames


@pytest.fixture(scope="module")
def fresh_g_v2(tmp_path_factory) -> Path:
    """An untrained G v2 at the shipped size: it outputs the mesh warp of its source."""
    from freehead.checkpoint import save_model
    from freehead.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    g = Generator(GeneratorConfig(flow_prior="mesh"))
    path = tmp_path_factory.mktemp("g2") / "g2.safetensors"
    save_model(path, g, "generator", g.config)
    return path


@pytest.fixture(scope="module")
def reenactor(fresh_g_v2):
    from freehead import Reenactor

    return Reenactor.from_pretrained(generator=fresh_g_v2)


@pytest.fixture(scope="module")
def franck(samples) -> list[np.ndarray]:
    return read_video_frames(samples / "videos/franck/franck.mp4", [4000, 4100])


def _yaw_pitch(image: np.ndarray) -> np.ndarray:
    labels = label_images([image])
    assert bool(labels.valid[0])
    return labels.head_angles[0, :2].astype(np.float64)


def test_no_motion_is_no_warp(reenactor, franck):
    from freehead.inference.reenactor import _drawn_crop

    source = reenactor.prepare_source(franck[0])
    drawn = _drawn_crop(source.readings[0])  # the crop, filled past the photo
    out = reenactor.reenact(source, franck[0], relative=False)
    assert np.abs(out.astype(np.float32) - drawn).mean() < 0.5


def test_a_source_crop_past_its_photo_is_continued_not_black(reenactor, franck):
    """A portrait whose face sits at the photo's left edge: the crop runs past the photo,
    and the output there carries the photo's colours on instead of a black band."""
    from freehead.inference.reenactor import _drawn_crop
    from freehead.perception.crop import crop_coverage

    photo = np.ascontiguousarray(franck[0][:, 130:])
    source = reenactor.prepare_source(photo)
    crop = source.readings[0].crop
    past = crop_coverage(photo.shape, source.readings[0].box, crop.shape[0]) == 0
    assert past[:, :10].all() and 0.1 < past.mean() < 0.5
    out = reenactor.reenact(source, franck[1], relative=False).astype(np.float32)
    # the band past the photo (away from where the warp moves it) is coloured like the photo
    band = past & np.roll(past, 20, axis=1) & np.roll(past, -20, axis=1)
    assert (out[band].mean(0) > 0.4 * out[~past].mean(0)).all()
    # the estimators still read the crop they were trained on, with black past the photo
    assert crop[past].max() == 0
    # an aligned crop, even one enlarged to the networks' size, is all photo: nothing filled
    small = np.ascontiguousarray(crop[::2, ::2])
    aligned = reenactor.prepare_source(small, crops=True).readings[0]
    assert aligned.frame_shape is None and aligned.crop.shape[0] == 2 * small.shape[0]
    assert _drawn_crop(aligned) is aligned.crop


def test_free_view_turns_the_head_along_the_mesh(reenactor, franck):
    source = reenactor.prepare_source(franck[0])
    yaw0, pitch0 = source.motion.head_angles[:2]
    before = _yaw_pitch(source.readings[0].crop)
    turned = _yaw_pitch(reenactor.free_view(franck[0], yaw=yaw0 + 20.0))
    nodded = _yaw_pitch(reenactor.free_view(franck[0], pitch=pitch0 - 15.0))
    # the labeller sees the turn it was asked for (a mesh warp under-reads yaw somewhat)
    assert 10.0 < turned[0] - before[0] < 25.0 and abs(turned[1] - before[1]) < 4.0
    assert -20.0 < nodded[1] - before[1] < -7.0 and abs(nodded[0] - before[0]) < 4.0


def test_a_drivers_mesh_gives_the_prior_its_pose_and_expression():
    """Driven by a face, the prior takes the driver's mesh's head motion since its
    reference (meshwarp's relative target, exactly) or, absolutely, the driver's own pose;
    a rigid motion of the driver adds no expression."""
    from freehead.inference.mesh_motion import MeshPrior
    from freehead.perception.keypoints import IRIS
    from freehead.perception.meshwarp import head_pose

    from .test_meshwarp import synthetic_face, texture

    prior = MeshPrior(256)
    face = synthetic_face(64.0, (128.0, 124.0))
    source = prior.prepare(texture(), face, motion=None)  # E_can's motion is not read here
    reference = synthetic_face(60.0, (120.0, 128.0), yaw=5.0)
    driver = synthetic_face(66.0, (124.0, 130.0), yaw=-12.0, roll=6.0)
    driven = prior.drive(source, driver, reference)
    offsets, pose = driven.offsets, driven.pose
    assert np.abs(offsets).max() < 1e-6
    want = prior.warper.relative(source.warp, driver, reference)
    assert np.allclose(pose.rotation, want.pose.rotation) and pose.scale == pytest.approx(
        want.pose.scale
    )
    assert np.allclose(pose.translation, want.pose.translation)
    target = prior.target(source, None, driven, np.zeros(2))
    eyes = {*np.concatenate(prior.warper.topology.eyes).tolist(), *IRIS[0], *IRIS[1]}
    rest = [i for i in range(478) if i not in eyes]  # the eyes turn to the asked gaze
    assert np.allclose(target.mesh[rest], want.mesh[rest], atol=1e-9)
    pose = prior.drive(source, driver, None).pose
    own = head_pose(driver, prior.warper.mean_shape)
    assert np.allclose(pose.rotation, own.rotation) and pose.scale == pytest.approx(own.scale)
    # a driver read once (for N sources) drives as its landmarks do
    read = prior.read_driver(driver)
    for ref in (reference, None):
        once, again = prior.drive(source, read, ref), prior.drive(source, driver, ref)
        assert np.array_equal(once.offsets, again.offsets)
        assert np.array_equal(once.pose.rotation, again.pose.rotation)


def test_relative_driving_and_crop_mode(reenactor, franck):
    """A driver that moved between its reference and the frame moves the output; crop mode
    (the evaluation's path) tracks the crops for their meshes."""
    source = reenactor.prepare_source(franck[0])
    crop = source.readings[0].crop
    out = reenactor.reenact(franck[0], franck[1], reference=franck[0])
    assert np.abs(out.astype(np.float32) - crop).mean() > 1.0
    crops = reenactor.reenact(crop, reenactor.prepare_source(franck[1]).readings[0].crop,
                              relative=False, crops=True)  # fmt: skip
    assert crops.shape == crop.shape


def test_gaze_redirection_moves_the_irises_and_only_the_eyes(reenactor, franck):
    source = reenactor.prepare_source(franck[0])
    _, cy, side = source.readings[0].box
    right = reenactor.edit_eyes(source, np.array([0.0, 25.0]))
    left = reenactor.edit_eyes(source, np.array([0.0, -25.0]))
    change = np.abs(right.astype(np.int32) - franck[0]).max(-1)
    lip = source.readings[0].keypoints[51, 1]  # the upper lip's top, crop coordinates
    below_eyes = int(np.ceil(cy + lip * side / 2))  # mouth and chin
    assert change.max() > 10 and change[below_eyes:].max() == 0
    readings = [label_images([reenactor.prepare_source(x).readings[0].crop]) for x in (right, left)]
    # the labeller reads the eyes turned the asked way round: yaw +25 against yaw -25
    assert float(readings[0].gaze[0, 1]) > float(readings[1].gaze[0, 1]) + 5.0


def test_onnx_takes_the_prior_as_an_input(fresh_g_v2, samples, franck, tmp_path):
    """export-onnx on a G v2: the per-frame graph takes the prior flow (made outside it),
    the graph check passes, and the Reenactor on ONNX Runtime matches PyTorch."""
    from freehead import Reenactor
    from freehead.apps.export import export_onnx

    report = export_onnx(tmp_path / "onnx", generator=fresh_g_v2, samples=samples)
    assert report.max_abs_difference["generator_frame"] < 1e-3
    onnx = Reenactor.from_pretrained(generator=fresh_g_v2, runtime="onnx",
                                     onnx_dir=tmp_path / "onnx")  # fmt: skip
    torch_out = Reenactor.from_pretrained(generator=fresh_g_v2).free_view(franck[0], yaw=10.0)
    onnx_out = onnx.free_view(franck[0], yaw=10.0)
    assert np.abs(onnx_out.astype(np.int32) - torch_out).mean() < 0.5


def test_transferred_gaze_scales_the_drivers_difference_and_turns_with_the_head():
    """Closed form: with the head unturned, the source's angles plus the gain times the
    driver's difference; a turned head turns that gaze with it; equal gazes stay."""
    from freehead.geometry import angles_from_gaze, gaze_from_angles, rotation_from_angles
    from freehead.inference.mesh_motion import transferred_gaze

    def unit(pitch: float, yaw: float) -> np.ndarray:
        return gaze_from_angles(torch.tensor(pitch, dtype=torch.float64),
                                torch.tensor(yaw, dtype=torch.float64)).numpy()  # fmt: skip

    same = np.eye(3)
    assert transferred_gaze(unit(-3.0, 4.0), unit(5.0, 12.0), same, gain=1.5) == pytest.approx(
        (-3.0 + 1.5 * 8.0, 4.0 + 1.5 * 8.0), abs=1e-9
    )
    assert transferred_gaze(unit(2.0, -6.0), unit(2.0, -6.0), same) == pytest.approx((2.0, -6.0))
    turn = rotation_from_angles(*torch.tensor([0.0, 0.0, 30.0], dtype=torch.float64)).numpy()
    got = transferred_gaze(unit(0.0, 0.0), unit(0.0, 10.0), turn, gain=1.0)
    want = angles_from_gaze(torch.from_numpy(turn @ unit(0.0, 10.0))).numpy()
    assert got == pytest.approx(tuple(want), abs=1e-9)


def test_the_prior_transfers_a_driving_faces_gaze_unless_a_gaze_is_asked_for():
    """Driven by a face whose eyes turned (relative to its head) from the source's, the
    prior's target irises read the source's gaze plus the gain times that turn (by the
    same eyeball fit); with the gaze asked for (``gaze_in_head`` None), the asked one."""
    from dataclasses import replace

    from freehead.geometry import angles_from_gaze
    from freehead.inference.mesh_motion import GAZE_TRANSFER_GAIN, MeshPrior
    from freehead.perception.meshwarp import WarpTarget, gaze_in_head, head_pose

    from .test_meshwarp import synthetic_face, texture

    prior = MeshPrior(256)
    shape = prior.warper.mean_shape
    face = synthetic_face(64.0, (128.0, 124.0))
    source = prior.prepare(texture(), face, motion=None)
    assert source.gaze_in_head is not None
    pose = head_pose(face, shape)
    own = angles_from_gaze(torch.from_numpy(source.gaze_in_head)).numpy()
    seen = angles_from_gaze(torch.from_numpy(pose.rotation @ source.gaze_in_head)).numpy()
    # the driver: the same face looking 6° further to the side (eyeball model, lids follow)
    driver = prior.warper.look(WarpTarget(mesh=face, pose=pose), seen[0], seen[1] + 6.0).mesh
    driven = prior.drive(source, driver, None)
    got_in = angles_from_gaze(torch.from_numpy(driven.gaze_in_head)).numpy()
    assert 3.0 < got_in[1] - own[1] < 7.0  # the fit reads the turn (the irises kept inside)
    target = prior.target(source, None, driven, np.zeros(2))
    read = gaze_in_head(target.mesh, head_pose(target.mesh, shape), shape)
    moved = angles_from_gaze(torch.from_numpy(read)).numpy() - own
    np.testing.assert_allclose(moved, GAZE_TRANSFER_GAIN * (got_in - own), atol=0.5)
    asked = prior.target(source, None, replace(driven, gaze_in_head=None), np.zeros(2))
    read = gaze_in_head(asked.mesh, head_pose(asked.mesh, shape), shape)
    assert np.abs(angles_from_gaze(torch.from_numpy(pose.rotation @ read)).numpy()).max() < 1.5


def test_an_asked_gaze_overrides_the_drivers_own_in_the_prior(reenactor, franck):
    """Driving by a face, the prior's eyes follow the driver's own gaze unless a gaze is
    asked for: a driver whose gaze is turned 25° changes the output when its gaze is
    transferred, and leaves it as it was under ``gaze="camera"``. The sketch G reads
    carries the gaze the prior turned the eyes to."""
    from dataclasses import replace

    from freehead.geometry import gaze_from_angles

    source = reenactor.prepare_source(franck[0])
    prior = reenactor.mesh
    sketched: list[np.ndarray] = []
    render = reenactor.networks.render

    def run(**fields) -> np.ndarray:
        return reenactor.reenact(source, franck[1], reference=franck[0], smoothing=0.0, **fields)

    def recording(encoding, keypoints, gaze, flows):
        sketched.append(np.asarray(gaze, np.float64).copy())
        return render(encoding, keypoints, gaze, flows)

    reenactor.networks.render = recording
    transferred, asked = run(), run(gaze="camera")
    turned = gaze_from_angles(torch.tensor(0.0, dtype=torch.float64),
                              torch.tensor(25.0, dtype=torch.float64)).numpy()  # fmt: skip
    drive = prior.drive
    prior.drive = lambda *a: None if (d := drive(*a)) is None else replace(d, gaze_in_head=turned)
    try:
        turned_transferred, turned_asked = run(), run(gaze="camera")
    finally:
        del prior.drive  # back to the class's method
        del reenactor.networks.render
    assert np.array_equal(turned_asked, asked)
    changed = np.abs(turned_transferred.astype(np.float32) - transferred).max(-1) > 8
    assert changed.sum() > 20  # the eyes moved
    plain, camera, turned_plain, turned_camera = sketched
    assert np.array_equal(camera, turned_camera)  # an asked gaze: the driver's is not read
    assert turned_plain[1] - plain[1] > 10.0  # the sketch turned with the prior's eyes


@pytest.fixture(scope="module")
def gated_g_v2(tmp_path_factory) -> Path:
    """A G v2 that changes the warp only in its gate, with a residual flow and a
    correction that are not zero (so the gate shows)."""
    from freehead.checkpoint import save_model
    from freehead.models.generator import Generator, GeneratorConfig

    torch.manual_seed(0)
    g = Generator(GeneratorConfig(flow_prior="mesh", correction_regions=True))
    with torch.no_grad():
        for layer in (g.flow.out, g.render.full[-1]):
            layer.weight.normal_(0, 0.05)
    path = tmp_path_factory.mktemp("g2gated") / "g2.safetensors"
    save_model(path, g, "generator", g.config)
    return path


def test_a_gated_g_v2_exports_to_onnx_and_renders_as_pytorch(gated_g_v2, samples, tmp_path):
    """The frame graph takes the gate as an input; ONNX Runtime and PyTorch give the same
    picture."""
    import json

    from freehead import Reenactor
    from freehead.apps.export import export_onnx
    from freehead.media import read_image

    out = tmp_path / "onnx"
    export_onnx(out, generator=gated_g_v2, samples=samples)
    check = json.loads((out / "manifest.json").read_text())["check"]
    assert check["max_abs_difference"]["generator_frame"] < 1e-3
    portrait = read_image(samples / "portraits/grace_hopper.jpg")
    driver = read_image(samples / "stills/franck_04117.jpg")
    torch_r = Reenactor.from_pretrained(generator=gated_g_v2)
    onnx_r = Reenactor.from_pretrained(generator=gated_g_v2, runtime="onnx", onnx_dir=out)
    a = torch_r.reenact(portrait, driver, relative=False, crops=False).astype(np.float32)
    b = onnx_r.reenact(portrait, driver, relative=False, crops=False).astype(np.float32)
    assert np.abs(a - b).mean() < 0.5


def test_a_mouth_opened_wider_than_the_sources_shows_the_drivers_interior(reenactor, samples):
    """franck with his mouth shut, driven absolutely by himself with it open: the default
    fill shows the driver's own interior there (the output's mouth comes nearer the
    driver's than the warp's stretched lip does), the cavity fill darkens it, and every
    option changes nothing outside the mouth."""
    shut, open_ = read_video_frames(samples / "videos/franck/franck.mp4", [4720, 4000])
    source = reenactor.prepare_source(shut)
    driver = reenactor.prepare_source(open_).readings[0]
    out = {
        m: reenactor.reenact(source, open_, relative=False, mouth=m).astype(np.float32)
        for m in ("warp", "cavity", "driver")
    }
    changed = np.abs(out["driver"] - out["warp"]).max(-1) > 0
    assert changed.sum() > 100
    ys, xs = np.nonzero(changed)
    lips = driver.landmarks[[61, 291, 0, 17], :2]  # outer lip corners, top and bottom
    assert xs.min() >= lips[:, 0].min() - 2 and xs.max() <= lips[:, 0].max() + 2
    assert ys.min() >= lips[:, 1].min() - 2 and ys.max() <= lips[:, 1].max() + 2
    assert np.array_equal(changed, np.abs(out["cavity"] - out["warp"]).max(-1) > 0)
    real = driver.crop.astype(np.float32)[changed]
    assert (
        np.abs(out["driver"][changed] - real).mean()
        < 0.6 * np.abs(out["warp"][changed] - real).mean()
    )
    assert out["cavity"][changed].mean() < out["warp"][changed].mean() - 20

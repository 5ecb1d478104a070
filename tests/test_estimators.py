"""E_can and E_gaze: shapes, the eye-patch geometry, the losses on hand-computed cases,
configs and model files."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from freehead.checkpoint import (
    load_training_state,
    read_metadata,
    save_model,
    save_training_state,
)
from freehead.config import config_from_dict, config_to_yaml, load_config
from freehead.errors import FreeheadError
from freehead.geometry import (
    adapt,
    angle_between_deg,
    gaze_from_angles,
    place_eye_mesh,
    rotation_from_angles,
)
from freehead.models import (
    GazeEstimator,
    GazeEstimatorConfig,
    KeypointEstimator,
    KeypointEstimatorConfig,
    KeypointPrediction,
)
from freehead.models.gaze import EyeFrames, cut_eye_patches, eye_frames
from freehead.perception.eyes import TEMPLATE
from freehead.training.data import warp_crop
from freehead.training.losses import (
    GazeLossWeights,
    KeypointLossWeights,
    KeypointTargets,
    angular_error_deg,
    gaze_losses,
    keypoint_losses,
)
from freehead.training.tasks import KeypointRunConfig

SMALL_KP = KeypointEstimatorConfig(input_size=64, channels=(8, 16, 32), hidden=32)
SMALL_GAZE = GazeEstimatorConfig(channels=(8, 16), hidden=32)

# ------------------------------------------------------------------------- networks


def test_keypoint_estimator_shapes_and_canonical_keypoints():
    torch.manual_seed(0)
    model = KeypointEstimator(SMALL_KP).eval()
    crops = np.random.default_rng(0).integers(0, 255, (3, 100, 100, 3), dtype=np.uint8)
    pred = model(model.prepare(crops))
    assert pred.keypoints.shape == (3, 68, 3) and pred.deformation.shape == (3, 68, 3)
    assert pred.rotation.shape == (3, 3, 3) and pred.translation.shape == (3, 3)
    assert pred.scale.shape == (3,) and bool((pred.scale > 0).all())
    eye = torch.eye(3).expand(3, 3, 3)
    assert torch.allclose(pred.rotation @ pred.rotation.transpose(-1, -2), eye, atol=1e-5)
    # p = s R p_can + t + d holds for the computed canonical keypoints (Eq. 1 and 2)
    back = adapt(pred.canonical, pred.rotation, pred.translation, pred.scale, pred.deformation)
    assert torch.allclose(back, pred.keypoints, atol=1e-5)


def test_fresh_keypoint_estimator_starts_at_its_output_bias():
    model = KeypointEstimator(SMALL_KP).eval()
    mean = torch.randn(68, 3) * 0.3
    rot = rotation_from_angles(torch.tensor(10.0), torch.tensor(-5.0), torch.tensor(3.0))
    model.set_output_bias(mean, rot, torch.tensor([0.1, 0.0, 0.2]), torch.tensor(0.5))
    with torch.no_grad():
        pred = model(torch.zeros(1, 3, 64, 64))
    assert torch.allclose(pred.keypoints[0], mean, atol=0.02)
    assert torch.allclose(pred.rotation[0], rot, atol=0.02)
    assert abs(pred.scale[0].item() - 0.5) < 0.01


def test_gaze_estimator_shapes_and_gaze_from_meshes():
    model = GazeEstimator(SMALL_GAZE).eval()
    images = torch.rand(2, 3, 128, 128) * 2 - 1
    keypoints = torch.zeros(2, 68, 3)
    keypoints[:, 36, 0], keypoints[:, 39, 0] = -0.5, -0.2
    keypoints[:, 42, 0], keypoints[:, 45, 0] = 0.2, 0.5
    pred = model.predict(images, keypoints)
    assert pred.meshes.shape == (2, 2, TEMPLATE.vertices.shape[0], 3)
    assert pred.eye_gaze.shape == (2, 2, 3) and pred.angles.shape == (2, 2)
    assert torch.allclose(pred.gaze.norm(dim=-1), torch.ones(2), atol=1e-5)


@st.composite
def frames_strategy(draw):
    n = draw(st.integers(1, 3))
    vals = draw(st.lists(st.floats(-1, 1), min_size=n * 10, max_size=n * 10))
    t = torch.tensor(vals, dtype=torch.float64).view(n, 10)
    return EyeFrames(
        centre=t[:, :6].view(n, 2, 3),
        iod=0.2 + t[:, 6:8].abs(),
        angle=t[:, 8:10] * math.pi,
    )


@settings(max_examples=40, deadline=None)
@given(frames_strategy())
def test_eye_frames_round_trip_and_keep_angles(frames):
    pts = torch.randn(frames.centre.shape[0], 2, 5, 3, dtype=torch.float64)
    local = frames.to_local(pts)
    assert torch.allclose(frames.to_crop(local), pts, atol=1e-9)
    # a similarity: angles between directions survive (mirrored or not)
    a, b = pts[..., 1, :] - pts[..., 0, :], pts[..., 2, :] - pts[..., 0, :]
    la, lb = local[..., 1, :] - local[..., 0, :], local[..., 2, :] - local[..., 0, :]
    assert torch.allclose(angle_between_deg(a, b), angle_between_deg(la, lb), atol=1e-6)


def test_eye_patches_show_the_eyes_where_the_frames_say():
    """A dot drawn at each eye centre lands in the middle of both patches; a dot to the
    image-left of eye 1 appears on the patch's right (eye 1 is mirrored)."""
    cfg = GazeEstimatorConfig()
    size = 256
    keypoints = torch.zeros(1, 68, 3)
    keypoints[0, [36, 39, 42, 45], 0] = torch.tensor([-0.5, -0.2, 0.2, 0.5])
    frames = eye_frames(keypoints)
    image = -torch.ones(1, 3, size, size)

    def pix(q: float) -> int:
        return int((q + 1) * size / 2)

    for x in (-0.35, 0.35):
        image[0, :, pix(0.0) - 2 : pix(0.0) + 2, pix(x) - 2 : pix(x) + 2] = 1
    image[0, :, pix(0.0) - 2 : pix(0.0) + 2, pix(0.27) - 2 : pix(0.27) + 2] = 1
    patches = cut_eye_patches(image, frames, cfg)[:, 0]  # (2, h, w)
    h, w = cfg.patch_height, cfg.patch_width
    assert float(patches[0, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1].mean()) > 0.5
    assert float(patches[1, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1].mean()) > 0.5
    # the extra dot, 0.08 crop units (0.08 / 1.0 iod) image-left of eye 1
    du = 0.08 / (0.5 * cfg.patch_width_iod * 1.0) * w / 2
    col = round(w / 2 + du)
    assert float(patches[1, h // 2 - 1 : h // 2 + 1, col - 1 : col + 1].mean()) > 0.3
    assert float(patches[0, h // 2 - 1 : h // 2 + 1, col - 1 : col + 1].mean()) < -0.5


def test_warp_crop_moves_points_as_the_labels_say():
    img = np.zeros((256, 256, 3), np.uint8)
    img[100:104, 60:64] = 255
    q = np.array([(2 * 61.5 + 1) / 256 - 1, (2 * 101.5 + 1) / 256 - 1])
    out = warp_crop(img, 128, 1.1, (0.05, -0.02))[..., 0].astype(float)
    ys, xs = np.mgrid[:128, :128]
    got = np.array([(out * xs).sum(), (out * ys).sum()]) / out.sum()
    got = (2 * got + 1) / 128 - 1
    assert np.allclose(got, 1.1 * q + np.array([0.05, -0.02]), atol=2 / 128)


# --------------------------------------------------------------------------- losses


def test_angular_error_of_known_vectors():
    a = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 0, -1.0]])
    b = torch.tensor([[0, 1.0, 0], [1.0, 1.0, 0], [0, 0, -2.0]])
    assert torch.allclose(angular_error_deg(a, b), torch.tensor([90.0, 45.0, 0.0]), atol=1e-3)
    x = torch.tensor([[0.0, 0.0, -1.0]], requires_grad=True)
    angular_error_deg(x, torch.tensor([[0.0, 0.0, -1.0]])).sum().backward()
    assert torch.isfinite(x.grad).all()


def _prediction(canonical, rotation, translation, scale, deformation) -> KeypointPrediction:
    return KeypointPrediction(
        keypoints=adapt(canonical, rotation, translation, scale, deformation),
        rotation=rotation,
        translation=translation,
        scale=scale,
        deformation=deformation,
    )


def test_keypoint_losses_on_a_pair_with_a_known_answer():
    """Two frames of one face whose canonical keypoints differ by a constant delta:
    p^{t,rec} - l^t = s_t R_t delta, so L^rec = s_t^2 |delta|^2 + s_s^2 |delta|^2."""
    torch.manual_seed(1)
    can = torch.randn(1, 68, 3) * 0.3
    delta = torch.tensor([0.01, -0.02, 0.005])
    rs = rotation_from_angles(torch.tensor([12.0]), torch.tensor([3.0]), torch.tensor([-4.0]))
    rt = rotation_from_angles(torch.tensor([-7.0]), torch.tensor([-2.0]), torch.tensor([5.0]))
    ts, tt = torch.tensor([[0.1, 0.0, 0.3]]), torch.tensor([[-0.05, 0.02, 0.1]])
    ss, st_ = torch.tensor([0.5]), torch.tensor([0.6])
    zero = torch.zeros(1, 68, 3)
    src = _prediction(can + delta, rs, ts, ss, zero)
    tgt = _prediction(can, rt, tt, st_, zero)
    lab_s = KeypointTargets(src.keypoints, rs, ts, ss)
    lab_t = KeypointTargets(tgt.keypoints, rt, tt, st_)
    terms = keypoint_losses(src, tgt, lab_s, lab_t, KeypointLossWeights())
    expected = (st_**2 + ss**2) * delta.pow(2).sum()
    assert torch.allclose(terms["reconstruction"], expected, rtol=1e-4)
    for name in ("keypoints", "rotation", "deformation", "translation", "scale"):
        assert float(terms[name]) < 1e-10, name
    # deformations: L^d = mean |d|^2 of both frames; with d moved into the prediction
    d = torch.full((1, 68, 3), 0.01)
    src_d = _prediction(can, rs, ts, ss, d)
    terms = keypoint_losses(src_d, tgt, KeypointTargets(src_d.keypoints, rs, ts, ss), lab_t,
                            KeypointLossWeights())  # fmt: skip
    assert torch.allclose(terms["deformation"], torch.tensor(3 * 0.01**2))
    # p_can^s strips d_s and p^{s,rec} puts d_s back, so the reconstruction stays exact
    assert float(terms["reconstruction"]) < 1e-10
    w = KeypointLossWeights()
    total = sum(getattr(w, k) * v for k, v in terms.items() if k != "loss")
    assert torch.allclose(terms["loss"], total)


def test_gaze_losses_on_known_meshes():
    centre = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    radius = torch.tensor([0.13], dtype=torch.float64)
    g0 = gaze_from_angles(torch.tensor([0.0]), torch.tensor([0.0])).double()
    g10 = gaze_from_angles(torch.tensor([0.0]), torch.tensor([10.0])).double()
    v0 = place_eye_mesh(TEMPLATE, centre, radius, g0)
    w = GazeLossWeights()
    same = gaze_losses(v0, v0, w)
    assert float(same["loss"]) < 1e-6
    shifted = gaze_losses(v0 + torch.tensor([0.03, 0.0, 0.0], dtype=torch.float64), v0, w)
    assert abs(float(shifted["vertices"]) - 0.01) < 1e-9  # |0.03| on x, 0 on y and z
    assert float(shifted["edges"]) < 1e-9 and float(shifted["gaze"]) < 1e-3
    turned = gaze_losses(place_eye_mesh(TEMPLATE, centre, radius, g10), v0, w)
    assert abs(float(turned["gaze"]) - 10.0) < 1e-3
    assert float(turned["edges"]) < 1e-9  # a rigid turn keeps every edge length


# ------------------------------------------------------------------ configs and files


def test_config_from_yaml_keeps_defaults_and_rejects_typos(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  channels: [8, 16]\ntrain:\n  steps: 7\n")
    cfg = load_config(KeypointRunConfig, f)
    assert cfg.model.channels == (8, 16) and cfg.train.steps == 7
    assert cfg.train.batch_size == KeypointRunConfig().train.batch_size
    f2 = tmp_path / "c2.yaml"
    f2.write_text(config_to_yaml(cfg))
    assert load_config(KeypointRunConfig, f2) == cfg
    with pytest.raises(FreeheadError, match="stepz"):
        config_from_dict(KeypointRunConfig, {"train": {"stepz": 1}})
    with pytest.raises(FreeheadError, match="steps"):
        config_from_dict(KeypointRunConfig, {"train": {"steps": "many"}})
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(FreeheadError, match="not valid YAML"):
        load_config(KeypointRunConfig, tmp_path / "bad.yaml")


def test_model_file_round_trip_and_bad_files(tmp_path):
    model = KeypointEstimator(SMALL_KP).eval()
    path = tmp_path / "kp.safetensors"
    save_model(path, model, "keypoints", SMALL_KP)
    loaded = KeypointEstimator.from_pretrained(path).eval()
    assert loaded.config == SMALL_KP
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(model(x).keypoints, loaded(x).keypoints)
    meta = read_metadata(path)
    assert meta["freehead"] == "model" and meta["kind"] == "keypoints"
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # the usual mode, not mkstemp's 0600

    with pytest.raises(FreeheadError, match=r"kp\.safetensors.*'keypoints'.*not a 'gaze'"):
        GazeEstimator.from_pretrained(path)
    # same kind, config edited to another architecture
    other = KeypointEstimator(KeypointEstimatorConfig(input_size=64, channels=(8, 16, 32)))
    save_model(tmp_path / "other.safetensors", other, "keypoints", SMALL_KP)
    with pytest.raises(FreeheadError, match=r"other\.safetensors does not fit"):
        KeypointEstimator.from_pretrained(tmp_path / "other.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(FreeheadError, match=r"corrupt\.safetensors"):
        KeypointEstimator.from_pretrained(corrupt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(FreeheadError, match=r"junk\.safetensors"):
        KeypointEstimator.from_pretrained(junk)
    with pytest.raises(FreeheadError, match="no such"):
        KeypointEstimator.from_pretrained(tmp_path / "missing.safetensors")


def test_training_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = KeypointEstimator(SMALL_KP)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, 64, 64)).keypoints.sum().backward()
    opt.step()
    path = tmp_path / "state.safetensors"
    save_training_state(path, model, {"model": opt}, 7, "keypoints", KeypointRunConfig(), SMALL_KP)
    model2 = KeypointEstimator(SMALL_KP)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    assert load_training_state(path, model2, {"model": opt2}, "keypoints") == 7
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for pid in s1["state"]:
        for k, v in s1["state"][pid].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(s2["state"][pid][k]))
    assert s1["param_groups"] == s2["param_groups"]
    # a model loads from a training state too
    assert KeypointEstimator.from_pretrained(path).config == SMALL_KP
    with pytest.raises(FreeheadError, match="not a gaze training state"):
        load_training_state(path, model2, {"model": opt2}, "gaze")

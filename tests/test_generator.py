"""The generator's parts: sketches, warping, N-shot attention, critics and losses."""

import numpy as np
import pytest
import torch

from freehead.models.critics import CriticConfig, Critics, mouth_crops
from freehead.models.generator import Generator, GeneratorConfig, warp
from freehead.perception.keypoints import KEYPOINT_PARTS
from freehead.sketch import EYE_PARTS, draw_sketch, gaze_colour, gaze_from_colour
from freehead.training.gan_losses import (
    PerceptualLoss,
    default_identity,
    default_perceptual,
    feature_matching_loss,
    find_vgg19_weights,
    hinge_critic_loss,
    hinge_generator_loss,
    multiscale_ssim_loss,
)

TINY = GeneratorConfig(image_size=64, encoder_channels=(4, 8, 8), flow_channels=8,
                       render_channels=(8, 8, 4, 4), modulation_channels=4)  # fmt: skip


def face_keypoints() -> np.ndarray:
    """A plausible frontal face in crop coordinates (the mean shape, placed)."""
    from freehead.perception.keypoints import KEYPOINT_MESH_INDICES
    from freehead.perception.shape import MeanShape

    pts = MeanShape.default().points[list(KEYPOINT_MESH_INDICES)]
    return pts * 0.5 + np.array([0.0, 0.05, 0.0])


# ---------------------------------------------------------------------------- sketches


def test_sketch_colours_eyes_by_gaze_and_parts_by_colour():
    kp = face_keypoints()
    a = draw_sketch(kp, np.array([10.0, -20.0]), 256)
    b = draw_sketch(kp, np.array([[-15.0, 5.0], [-15.0, 5.0]]), 256)
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    for part, sketch, want in ((EYE_PARTS[0], a, (10.0, -20.0)), (EYE_PARTS[1], b, (-15.0, 5.0))):
        centre = kp[list(KEYPOINT_PARTS[part]), :2].mean(0)
        x, y = ((centre + 1) * 128 - 0.5).round().astype(int)
        rgb = sketch[y, x]
        assert tuple(rgb) == gaze_colour(*want)
        assert gaze_from_colour(rgb) == pytest.approx(want, abs=0.2)
    # outside the eyes the two sketches agree: only the gaze changed
    eyes = (a != b).any(-1)
    assert 0 < eyes.sum() < 0.01 * eyes.size
    assert len(np.unique(a.reshape(-1, 3), axis=0)) >= 8  # distinct part colours


# ---------------------------------------------------------------------------- warping


def test_zero_flow_returns_the_input():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 16, 16)), x, atol=1e-6)


def test_a_translation_flow_moves_the_image():
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 10, 12] = 1.0
    k = 3  # out(p) = x(p + w): a flow of +k pixels in x moves content k pixels left
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2 * k / 32
    out = warp(x, flow)
    assert out[0, 0, 10, 12 - k] == pytest.approx(1.0, abs=1e-5)
    assert out.sum() == pytest.approx(1.0, abs=1e-4)


# --------------------------------------------------------------------------- generator


@pytest.mark.parametrize("m", [1, 3])
def test_generator_shapes_and_attention(m):
    torch.manual_seed(0)
    g = Generator(TINY).eval()
    with torch.no_grad():  # give the attention something to do
        g.flow.out.weight.normal_(std=0.1)
    imgs = torch.rand(2, m, 3, 64, 64) * 2 - 1
    out = g(imgs, torch.rand(2, m, 3, 64, 64), torch.rand(2, 3, 64, 64))
    assert out.image.shape == (2, 3, 64, 64)
    assert out.image.abs().max() <= 1
    assert out.warped.flow.shape == (2, m, 2, 16, 16)
    assert out.warped.weights.shape == (2, m, 1, 16, 16)
    assert torch.allclose(out.warped.weights.sum(1), torch.ones(2, 1, 16, 16), atol=1e-6)


def test_copies_of_one_source_give_the_single_source_output():
    """N-shot with M identical sources blends M identical warps: the M = 1 path."""
    torch.manual_seed(1)
    g = Generator(TINY).eval()
    with torch.no_grad():
        g.flow.out.weight.normal_(std=0.1)
    img, sk, tgt = (
        torch.rand(1, 1, 3, 64, 64),
        torch.rand(1, 1, 3, 64, 64),
        torch.rand(1, 3, 64, 64),
    )
    one = g(img, sk, tgt).image
    three = g(img.expand(1, 3, -1, -1, -1), sk.expand(1, 3, -1, -1, -1), tgt).image
    assert torch.allclose(one, three, atol=1e-5)


def test_a_fresh_generator_starts_from_the_unwarped_source():
    g = Generator(TINY)
    out = g(torch.rand(1, 1, 3, 64, 64), torch.rand(1, 1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert torch.equal(out.warped.flow, torch.zeros_like(out.warped.flow))


# ------------------------------------------------------------------- critics and losses


def test_hinge_losses_on_hand_made_scores():
    real = [[torch.tensor([2.0, 0.5])]]
    fake = [[torch.tensor([-2.0, 0.5])]]
    # critic: mean(relu(1 - [2, .5])) + mean(relu(1 + [-2, .5])) = 0.25 + 0.75
    assert float(hinge_critic_loss(real, fake)) == pytest.approx(1.0)
    assert float(hinge_generator_loss(fake)) == pytest.approx(0.75)
    two = [[torch.tensor([0.0])], [torch.tensor([4.0])]]  # averaged over critics
    assert float(hinge_generator_loss(two)) == pytest.approx(-2.0)


def test_feature_matching_compares_all_but_the_scores():
    real = [[torch.zeros(2), torch.ones(3), torch.tensor([9.0])]]
    fake = [[torch.ones(2), torch.ones(3), torch.tensor([-9.0])]]
    assert float(feature_matching_loss(real, fake)) == pytest.approx(0.5)


def test_critics_and_mouth_crops():
    critics = Critics(CriticConfig(channels=(8, 16), mouth_size=32, mouth_channels=(8, 16)))
    kp = torch.from_numpy(face_keypoints()).float()[None].expand(2, -1, -1)
    img = torch.rand(2, 3, 64, 64)
    out = critics(img, torch.rand(2, 3, 64, 64), kp)
    assert len(out) == 3 and out[0][-1].shape == (2, 1, 16, 16) and out[1][-1].shape == (2, 1, 8, 8)
    # the mouth crop shows the lips: a dot at the lips' centre lands in the crop's middle
    dot = torch.zeros(1, 1, 64, 64)
    cx, cy = ((kp[0, 48:68, :2].mean(0) + 1) * 32 - 0.5).round().long().tolist()
    dot[0, 0, cy - 1 : cy + 2, cx - 1 : cx + 2] = 1
    crop = mouth_crops(dot, kp[:1], 32, 2.0)[0, 0]
    assert crop[14:18, 14:18].max() > 0.5 and crop[:4].max() == 0


def test_perceptual_loss_falls_back_loudly_without_vgg_weights(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("FREEHEAD_CACHE", str(tmp_path))  # no cached MobileNetV2 either
    loss = PerceptualLoss()
    assert loss.kind == "l1+ms-ssim" or find_vgg19_weights() is not None
    loss = PerceptualLoss(weights=tmp_path / "absent.pth")
    assert loss.kind == "l1+ms-ssim" and "no VGG19" in loss.note
    assert "no VGG19" in caplog.text
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    assert float(multiscale_ssim_loss(x, -x)) > 0.5


def test_eye_loss_sees_the_eyes_and_only_trains_the_image():
    from freehead.models.gaze import GazeEstimator
    from freehead.training.generator_task import EyeLoss

    torch.manual_seed(0)
    loss = EyeLoss(GazeEstimator.from_pretrained())
    kp = torch.from_numpy(face_keypoints()).float()[None]
    target = torch.rand(1, 3, 256, 256) * 2 - 1
    same = loss(target.clone(), target, kp)
    assert float(same["eye_detail"]) == pytest.approx(0.0, abs=1e-5)
    assert float(same["gaze"]) == pytest.approx(0.0, abs=1e-2)

    # change the image only outside the eyes: nothing to see
    frames_mask = torch.zeros(1, 1, 256, 256)
    for x, y in ((kp[0, 36:48, :2] + 1) / 2 * 256).round().long().tolist():
        frames_mask[..., max(0, y - 25) : y + 25, max(0, x - 30) : x + 30] = 1
    elsewhere = target * frames_mask + (1 - frames_mask) * torch.rand_like(target)
    assert float(loss(elsewhere, target, kp)["eye_detail"]) == pytest.approx(0.0, abs=1e-5)

    # change the eyes: both terms see it, and only the image gets a gradient
    output = torch.roll(target, shifts=3, dims=-1).requires_grad_(True)
    terms = loss(output, target, kp)
    assert float(terms["eye_detail"].detach()) > 0.1 and float(terms["gaze"].detach()) > 0.1
    (terms["eye_detail"] + terms["gaze"]).backward()
    assert output.grad is not None and float(output.grad.abs().sum()) > 0
    assert all(p.grad is None for p in loss.estimator.parameters())
    loss.train()
    assert not loss.estimator.training


# ---------------------------------------------------------------------------- training

TINY_RUN = """
model: {image_size: 128, encoder_channels: [8, 8, 16], flow_channels: 16,
        render_channels: [16, 8, 8, 8], modulation_channels: 8}
critics: {channels: [8, 16], mouth_size: 32, mouth_channels: [8, 16]}
validation_pairs: 2
train: {steps: 40, batch_size: 2, checkpoint_every: 20, validate_every: 40, log_every: 1,
        workers: 0, lr: 0.001}
"""


def test_a_few_generator_steps_lower_the_loss(tiny_dataset, tmp_path):
    import csv
    import json

    from freehead.checkpoint import read_metadata
    from freehead.config import load_config
    from freehead.training.generator_task import GeneratorRunConfig, GeneratorTask
    from freehead.training.loop import checkpoint_paths, train

    config = tmp_path / "g.yaml"
    config.write_text(TINY_RUN)
    run = tmp_path / "run"
    torch.manual_seed(0)
    final = train(GeneratorTask, tiny_dataset, run, config)
    with open(run / "train.csv") as f:
        rows = list(csv.DictReader(f))
    l1 = [float(r["l1"]) for r in rows]
    assert len(l1) == 40
    assert np.mean(l1[-10:]) < np.mean(l1[:5])
    assert (run / "val" / "step_00000040.png").is_file()
    info = json.loads((run / "run_info.json").read_text())
    want = default_perceptual()
    assert info["perceptual_loss"] == want.replace("l1_msssim", "l1+ms-ssim")
    assert info["perceptual_note"]
    saved = load_config(GeneratorRunConfig, run / "config.yaml")
    assert saved.perceptual == want and saved.identity == default_identity()
    assert info["identity_loss"].startswith(saved.identity)
    # the shipped network is G alone, from the model file or from a training state
    assert read_metadata(final)["kind"] == "generator"
    g = Generator.from_pretrained(final)
    newest = checkpoint_paths(run)[0][1]
    g2 = Generator.from_pretrained(newest)
    for a, b in zip(g.state_dict().values(), g2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_redirection_samples_change_only_the_eye_colour(tiny_dataset):
    from freehead.data.dataset import Dataset
    from freehead.data.frames import ClipFrames
    from freehead.sketch import gaze_from_colour
    from freehead.training.data import GeneratorPairs

    pairs = GeneratorPairs(ClipFrames(Dataset(tiny_dataset), "train"), 1, None, redirect_deg=20)
    for i in range(4):
        item = pairs[i]
        asked = item["redirect_gaze"].numpy()
        assert item["redirect_gaze"].shape == (2,) and np.abs(asked).max() <= 20
        assert float(item["target_eyes_open"]) in (0.0, 1.0)
        a = ((item["target_sketch"] + 1) * 127.5).round().permute(1, 2, 0).numpy()
        b = ((item["redirect_sketch"] + 1) * 127.5).round().permute(1, 2, 0).numpy()
        changed = np.abs(a - b).max(-1) > 1
        assert changed.mean() < 0.01  # the eye fill alone
        fill = b[changed & (b[..., 2] > 250)]  # gaze-coloured pixels have B = 255
        assert len(fill) and np.allclose(gaze_from_colour(np.median(fill, 0)), asked, atol=1.0)
    plain = GeneratorPairs(ClipFrames(Dataset(tiny_dataset), "train"), 1, None)
    assert "redirect_sketch" not in plain[0]


def test_a_run_can_start_from_another_runs_checkpoint(tiny_dataset, tmp_path):
    import json

    from freehead.checkpoint import read_tensors
    from freehead.errors import FreeheadError
    from freehead.training.generator_task import GeneratorTask
    from freehead.training.loop import checkpoint_paths, train

    short = TINY_RUN.replace("steps: 40", "steps: 2").replace("checkpoint_every: 20",
                                                              "checkpoint_every: 2")  # fmt: skip
    config = tmp_path / "g.yaml"
    config.write_text(short.replace("validate_every: 40", "validate_every: 100"))
    first = tmp_path / "first"
    train(GeneratorTask, tiny_dataset, first, config)
    start = checkpoint_paths(first)[0][1]
    # zero steps: the new run's model is the checkpoint's generator
    config.write_text(config.read_text().replace("steps: 2", "steps: 0"))
    final = train(GeneratorTask, tiny_dataset, tmp_path / "second", config, init=start)
    g = Generator.from_pretrained(final).state_dict()
    saved = read_tensors(start)
    for k, v in g.items():
        assert torch.equal(v, saved[f"model/generator.{k}"])
    info = json.loads((tmp_path / "second" / "run_info.json").read_text())
    assert info["init"] == str(start)
    # another architecture is refused in one line
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("flow_channels: 16", "flow_channels: 8"))
    with pytest.raises(FreeheadError):
        train(GeneratorTask, tiny_dataset, tmp_path / "third", other, init=start)


def test_generator_config_must_fit_the_dataset(tiny_dataset, tmp_path):
    from freehead.errors import FreeheadError
    from freehead.training.generator_task import GeneratorTask
    from freehead.training.loop import train

    with pytest.raises(FreeheadError, match=r"set model\.image_size: 128"):
        train(GeneratorTask, tiny_dataset, tmp_path / "run", None)


def test_generator_training_under_torchrun(tiny_dataset, tmp_path):
    """G and the critics are wrapped separately; both ranks end with the same weights."""
    import json
    import os
    import subprocess
    import sys

    config = tmp_path / "g.yaml"
    config.write_text(TINY_RUN.replace("steps: 40", "steps: 3").replace("validate_every: 40",
                                                                         "validate_every: 3"))  # fmt: skip
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "freehead", "train", "generator", "--data", str(tiny_dataset), "--out",
           str(run), "--config", str(config)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads((run / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["identical"]


def test_open_loss_choices_are_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    from dataclasses import replace

    from freehead.config import config_to_yaml
    from freehead.errors import FreeheadError
    from freehead.training.generator_task import GeneratorRunConfig, GeneratorTask
    from freehead.training.loop import resolve_run_config

    # a new run makes the open choices from what the machine has
    fresh = resolve_run_config(GeneratorTask, tmp_path / "new", None)
    assert fresh.perceptual == default_perceptual() and fresh.identity == default_identity()
    monkeypatch.setenv("FREEHEAD_CACHE", str(tmp_path / "empty-cache"))
    if find_vgg19_weights() is None:
        bare = resolve_run_config(GeneratorTask, tmp_path / "bare", None)
        assert (bare.perceptual, bare.identity) == ("l1_msssim", "none")

    # a run started with recorded choices keeps them, whatever the machine has now,
    # and the config file it was started from (choices unset) still resumes it
    user_file = tmp_path / "user.yaml"
    user_file.write_text(config_to_yaml(GeneratorRunConfig()))
    run = tmp_path / "run"
    run.mkdir()
    started = replace(GeneratorRunConfig(), perceptual="mobilenet_v2", identity="faceres")
    (run / "config.yaml").write_text(config_to_yaml(started))
    assert resolve_run_config(GeneratorTask, run, user_file) == started
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text(config_to_yaml(replace(started, perceptual="l1_msssim")))
    with pytest.raises(FreeheadError, match="another config"):
        resolve_run_config(GeneratorTask, run, explicit)

    # a run started before the choices were recorded keeps its old (unset) behaviour
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text(config_to_yaml(GeneratorRunConfig()))
    kept = resolve_run_config(GeneratorTask, old, user_file)
    assert kept.perceptual is None and kept.identity is None


# ---------------------------------------------------------------------------- G v2


def test_a_fresh_g_v2_outputs_the_mesh_warp(tiny_dataset):
    """G v2 starts as the mesh warp: zero residual flow and a closed gate give exactly the
    source warped by the prior flow, which is meshwarp's own picture up to interpolation."""
    from freehead.data.dataset import Dataset
    from freehead.data.frames import ClipFrames, FrameRef
    from freehead.perception.meshwarp import MeshWarp
    from freehead.training.data import GeneratorPairs, landmarks_in_pixels

    dataset = Dataset(tiny_dataset)
    pairs = GeneratorPairs(ClipFrames(dataset, "train"), 1, None, prior=True)
    clip, frames = next(iter(pairs.frames.clip_frames.items()))
    source, target = FrameRef(clip, int(frames[0])), FrameRef(clip, int(frames[-1]))
    item = pairs.item(target, [source], None)
    size = dataset.settings().size
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(image_size=size, encoder_channels=(8, 8, 16), flow_channels=16,
                                  render_channels=(16, 8, 8, 8), modulation_channels=8,
                                  flow_prior="mesh"))  # fmt: skip
    batch = {k: v[None] for k, v in item.items()}
    with torch.no_grad():
        out = g(batch["source_image"], batch["source_sketch"], batch["target_sketch"],
                batch["source_prior"])  # fmt: skip
        plain = warp(batch["source_image"][:, 0], batch["source_prior"][:, 0])
    assert torch.equal(out.image, plain)
    assert float(batch["source_prior"].abs().max()) > 0.01  # the head moved between them

    # the same picture as meshwarp's (no cavity shading), away from the crop's border
    warper = MeshWarp(dataset.mean_shape(), mouth_cavity=False)
    lab = pairs.frames.labels[clip]
    image = pairs.frames.image(source)
    prepared = warper.prepare(image, landmarks_in_pixels(lab, source.index, size))
    drawn = warper.render(prepared, warper.absolute(prepared, landmarks_in_pixels(
        lab, target.index, size)))  # fmt: skip
    ours = ((out.image[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    inner = slice(6, size - 6)
    # (measured: 0.2 grey levels apart, where the unwarped source is 2.2 away)
    assert np.abs(ours[inner, inner] - drawn[inner, inner]).mean() < 1.0
    assert np.abs(image[inner, inner].astype(np.float32) - drawn[inner, inner]).mean() > 1.5


def test_g_v2_refuses_a_missing_prior_and_the_plain_g_an_extra_one():
    x = torch.rand(1, 1, 3, 64, 64) * 2 - 1
    with pytest.raises(ValueError, match="prior flow"):
        Generator(GeneratorConfig(**{**TINY.__dict__, "flow_prior": "mesh"}))(x, x, x[:, 0])
    with pytest.raises(ValueError, match="prior flow"):
        Generator(TINY)(x, x, x[:, 0], torch.zeros(1, 1, 2, 64, 64))


def test_a_few_g_v2_steps_train(tiny_dataset, tmp_path):
    import csv

    from freehead.inference.networks import FaceNetworks
    from freehead.training.generator_task import GeneratorTask
    from freehead.training.loop import train

    config = tmp_path / "g2.yaml"
    config.write_text(TINY_RUN.replace("modulation_channels: 8}", "modulation_channels: 8,\n"
                                       "        flow_prior: mesh, correction_regions: true}")
                      .replace("steps: 40", "steps: 12").replace("validate_every: 40",
                                                                 "validate_every: 12")
                      + "perceptual: l1_msssim\nidentity: none\nloss: {flow_residual: 0.1, correction: 1.0, free_correction: 0.5}\n")  # fmt: skip
    run = tmp_path / "run"
    torch.manual_seed(0)
    final = train(GeneratorTask, tiny_dataset, run, config)
    with open(run / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and all(np.isfinite(float(r["loss"])) for r in rows)
    for term in ("flow_residual", "correction", "free_correction"):  # 0, then what G added
        values = [float(r[term]) for r in rows]
        assert values[0] == 0 and 0 < values[-1] < 5, term
    with open(run / "val.csv") as f:
        (val,) = list(csv.DictReader(f))
    assert 0 < float(val["prior_l1"]) < 1  # the geometry alone, beside G's figures
    g = Generator.from_pretrained(final)
    assert g.config.flow_prior == "mesh" and g.config.correction_regions
    # training moved the residual flow and the gate off their zero start
    assert float(g.flow.out.weight.detach().abs().sum()) > 0
    assert float(g.render.full[-1].weight.detach().abs().sum()) > 0
    networks = FaceNetworks.load(generator=final)
    assert networks.needs_mesh and networks.gated


def test_g_v2_trains_from_a_thinned_copy_with_its_landmarks(tiny_dataset, tmp_path):
    """``scripts/thin_dataset.py --keep-landmarks`` (the copy a GPU call carries) keeps what
    G v2's mesh prior needs: its priors match the full dataset's (mean error under 0.01 px,
    at most 0.5 px where thin triangles magnify half precision); without the flag the
    landmarks are gone. The GPU config is G v2's recipe with only the train section
    changed."""
    import importlib.util
    from dataclasses import replace
    from pathlib import Path

    from freehead.config import load_config
    from freehead.data.dataset import Dataset
    from freehead.data.frames import ClipFrames
    from freehead.training.data import GeneratorPairs
    from freehead.training.generator_task import GeneratorRunConfig

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("thin", root / "scripts/thin_dataset.py")
    thin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(thin)
    thin.thin(tiny_dataset, tmp_path / "kept", 1, 120, keep_landmarks=True)
    thin.thin(tiny_dataset, tmp_path / "dropped", 1, 120)
    clip = next(c.name for c in Dataset(tiny_dataset).clips() if c.split == "train")
    assert not Dataset(tmp_path / "dropped").labels(clip).landmarks.any()

    def prior(root_dir: Path) -> np.ndarray:
        pairs = GeneratorPairs(ClipFrames(Dataset(root_dir), "train"), 1, None, prior=True)
        target, source = pairs.videos[3], pairs.videos[12]
        return pairs.item(target, [source], None)["source_prior"].numpy()

    full, kept = prior(tiny_dataset), prior(tmp_path / "kept")
    size = Dataset(tiny_dataset).settings().size
    error = np.abs(full - kept) * size / 2  # pixels
    assert np.abs(full).max() > 0.01 and error.mean() < 0.01 and error.max() < 0.5
    v2 = load_config(GeneratorRunConfig, root / "configs/generator_v2.yaml")
    gpu = load_config(GeneratorRunConfig, root / "configs/generator_v2_gpu.yaml")
    assert replace(gpu, train=v2.train) == v2 and gpu.train.batch_size > v2.train.batch_size


def test_still_pairs_undo_a_synthetic_motion(tiny_dataset, samples, tmp_path):
    """A still is the target; its source is the still moved along its mesh, the source's
    sketch is drawn from the moved mesh, and the prior flow takes the source back onto the
    still (closer to it than the moved source is)."""
    import shutil

    from freehead.data.dataset import Dataset
    from freehead.data.frames import ClipFrames
    from freehead.data.preprocess import PreprocessOptions, preprocess
    from freehead.training.data import (
        GeneratorPairs,
        StillMotion,
        landmarks_in_pixels,
        sketch_of,
        sketch_of_mesh,
    )

    data = tmp_path / "mixed"
    shutil.copytree(tiny_dataset, data)
    photos = tmp_path / "photos" / "obama"
    photos.mkdir(parents=True)
    shutil.copy(samples / "people" / "train" / "barack_obama" / "3.png", photos / "3.png")
    preprocess([str(tmp_path / "photos")], data, PreprocessOptions(size=128, stills=True),
               show_progress=False)  # fmt: skip
    frames = ClipFrames(Dataset(data), "train")
    motion = StillMotion(fraction=1.0, max_yaw=15.0, max_pitch=10.0)
    pairs = GeneratorPairs(frames, 1, None, prior=True, stills=motion)
    assert [f.clip for f in pairs.stills] == ["obama/3"] and len(pairs) == len(pairs.videos)
    assert all(f.clip != "obama/3" for f in pairs.videos)

    # the sketch drawn from a mesh is the labels' own sketch for the labels' mesh
    lab = frames.labels["obama/3"]
    own = sketch_of_mesh(landmarks_in_pixels(lab, 0, 128), pairs.mean_shape, 128)
    assert np.abs(own.astype(int) - sketch_of(lab, 0, 128)).mean() < 1.0

    torch.manual_seed(3)
    item = pairs[0]
    target, source = item["target_image"], item["source_image"][0]
    assert torch.equal(target, torch.from_numpy(frames.image(pairs.stills[0])).permute(2, 0, 1)
                       .float() / 127.5 - 1)  # fmt: skip
    back = warp(source[None], item["source_prior"][:1])[0]
    inner = slice(16, 112)
    moved = (source - target)[:, inner, inner].abs().mean()
    undone = (back - target)[:, inner, inner].abs().mean()
    assert float(moved) > 0.03 and float(undone) < 0.5 * float(moved)  # measured: 0.13, 0.018
    assert not torch.equal(item["source_sketch"][0], item["target_sketch"])


def test_gaze_pairs_pick_sources_whose_eyes_turned(tiny_dataset):
    """With gaze_pairs, a video target's source is the frame (of 16, eyes open) whose gaze in
    the head differs most from the target's: more change than a random frame shows."""
    from freehead.data.dataset import Dataset
    from freehead.data.frames import ClipFrames
    from freehead.training.data import GeneratorPairs, gaze_in_head

    frames = ClipFrames(Dataset(tiny_dataset), "train")
    pairs = GeneratorPairs(frames, 1, None, gaze_pairs=1.0)
    rng = np.random.default_rng(0)
    chosen, random = [], []
    for target in pairs.videos:
        angles = gaze_in_head(frames.labels[target.clip])
        if not frames.labels[target.clip].eyes_open[target.index]:
            continue
        j = int(pairs._pick_sources(target, rng)[0])
        k = int(rng.choice(frames.clip_frames[target.clip]))
        chosen.append(np.abs(angles[j] - angles[target.index]).max())
        random.append(np.abs(angles[k] - angles[target.index]).max())
    assert len(chosen) > 10 and np.median(chosen) > 1.5 * np.median(random)


@pytest.mark.parametrize("on_warp", [True, False])
def test_gaze_on_warp_lets_only_the_flow_answer_e_gaze(tiny_dataset, tmp_path, on_warp):
    """With gaze_on_warp, E_gaze's redirection term reaches G only through the warp (the
    flow), never the rendering network that could paint the eye patches."""
    from dataclasses import replace

    from torch.utils.data import default_collate

    from freehead.config import load_config
    from freehead.data.dataset import Dataset
    from freehead.training.generator_task import GeneratorRunConfig, GeneratorTask, _judge
    from freehead.training.generator_task import _render as render_batch

    path = tmp_path / "g2.yaml"
    path.write_text(TINY_RUN.replace("modulation_channels: 8}", "modulation_channels: 8,\n"
                                     "        flow_prior: mesh}")
                    + "perceptual: l1_msssim\nidentity: none\n")  # fmt: skip
    config = replace(load_config(GeneratorRunConfig, path), gaze_on_warp=on_warp)
    task = GeneratorTask(config, Dataset(tiny_dataset))
    torch.manual_seed(0)
    model = task.build_model()
    pairs = task.train_dataset()
    batch = default_collate([pairs[0], pairs[1]])
    fakes, warped, sketches, _ = render_batch(model.generator, batch)
    terms = task._generator_terms(batch, fakes, warped, _judge(model.critics, batch, sketches, 4))
    flow, paint = model.generator.flow.out.weight, model.generator.render.full[-1].weight
    g_flow, g_paint = torch.autograd.grad(terms["redirect_gaze"], [flow, paint],
                                          allow_unused=True)  # fmt: skip
    assert g_flow is not None and float(g_flow.abs().sum()) > 0
    assert (g_paint is None) == on_warp


def test_g_v2_may_change_the_mouth_eyes_and_stretched_parts_freely():
    """correction_weights: 0 inside the mouth and eye ellipses and where the prior's
    backward map stretches or folds area by more than 1.5 times, 1 elsewhere."""
    from freehead.training.gan_losses import correction_weights

    size = 64
    kp = torch.from_numpy(face_keypoints()).float()[None]
    still = torch.zeros(1, 2, size, size)
    weight = correction_weights(kp, still)
    assert weight.shape == (1, 1, size, size)

    def pixel(point: torch.Tensor) -> tuple[int, int]:
        x, y = ((point[:2] + 1) * size / 2).long().tolist()
        return y, x

    for lo, hi in ((60, 68), (36, 42), (42, 48)):
        assert weight[0, 0][pixel(kp[0, lo:hi].mean(0))] == 0  # the middle of each is free
    assert weight[0, 0][pixel(kp[0, 30])] == 1  # the nose tip is charged
    assert weight[0, 0, 0, 0] == 1 and 0.6 < float(weight.mean()) < 0.98
    # the left quarter stretched twice as wide (a backward map reading half the distance)
    xs = (torch.arange(size) + 0.5) * (2.0 / size) - 1.0
    flow = torch.zeros(1, 2, size, size)
    left = xs < -0.5
    flow[0, 0, :, left] = (-0.5 + (xs[left] + 0.5) / 2 - xs[left])[None, :]
    stretched = correction_weights(kp, flow)
    assert stretched[0, 0, 32, :10].eq(0).all() and stretched[0, 0, 32, 20:28].eq(1).all()


def test_held_out_targets_spread_over_the_clip_to_its_last_frame():
    """One target per clip is the clip's last frame (not the one after the source); more
    spread evenly; short clips give what they have."""
    from freehead.training.generator_task import spread_targets

    assert spread_targets(20, 1).tolist() == [19]
    assert spread_targets(20, 2).tolist() == [10, 19]
    assert spread_targets(21, 4).tolist() == [5, 10, 15, 20]
    assert spread_targets(3, 5).tolist() == [1, 2]
    assert spread_targets(1, 3).tolist() == []


@pytest.mark.parametrize("adversarial", [0.0, 1.0])
def test_critics_run_and_train_only_when_a_term_reads_them(tiny_dataset, tmp_path, adversarial):
    """With adversarial and feature matching at 0 (loss.uses_critics off) a step leaves the
    critics as they were and logs their terms as 0; with a GAN term they train."""
    from dataclasses import replace

    from torch.utils.data import default_collate

    from freehead.config import load_config
    from freehead.data.dataset import Dataset
    from freehead.training.generator_task import GeneratorRunConfig, GeneratorTask

    path = tmp_path / "g.yaml"
    path.write_text(TINY_RUN + "perceptual: l1_msssim\nidentity: none\n")
    config = load_config(GeneratorRunConfig, path)
    loss = replace(config.loss, adversarial=adversarial, feature_matching=adversarial)
    task = GeneratorTask(replace(config, loss=loss), Dataset(tiny_dataset))
    torch.manual_seed(0)
    model = task.build_model()
    optimizers = task.build_optimizers(model)
    pairs = task.train_dataset()
    batch = default_collate([pairs[0], pairs[1]])
    critics = [p.detach().clone() for p in model.critics.parameters()]
    g = [p.detach().clone() for p in model.generator.parameters()]
    terms = task.train_step(task.distribute(model, lambda m: m), batch, optimizers)
    moved = [
        any(not torch.equal(a, b) for a, b in zip(before, part.parameters(), strict=True))
        for before, part in ((critics, model.critics), (g, model.generator))
    ]
    critics_moved = moved[0]
    assert moved[1]
    assert critics_moved == (adversarial > 0)
    assert (float(terms["critic"]) != 0) == (adversarial > 0)
    assert (float(terms["adversarial"]) != 0) == (adversarial > 0)

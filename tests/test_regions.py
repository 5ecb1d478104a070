"""The regions G v2 may change (the mouth, the eyes, stretched or folded parts, beyond the
source's frame) and a gated G v2, which outside them outputs the mesh warp exactly."""

from __future__ import annotations

import pytest
import torch

from freehead.models.generator import Generator, GeneratorConfig, warp
from freehead.models.regions import gate_regions

from .test_generator import TINY, face_keypoints

GATED = GeneratorConfig(**{**TINY.__dict__, "flow_prior": "mesh", "correction_regions": True})


def _pixel(point: torch.Tensor, size: int) -> tuple[int, int]:
    x, y = ((point[:2] + 1) * size / 2).long().tolist()
    return y, x


def test_samples_beyond_the_sources_frame_are_free():
    """A backward map reading an eighth of the image further right (8 of 64 pixels) samples
    beyond the frame in the target's last 8 columns, and only there."""
    from freehead.training.gan_losses import correction_weights

    size = 64
    kp = torch.from_numpy(face_keypoints()).float()[None]
    shifted = torch.zeros(1, 2, size, size)
    shifted[:, 0] = 0.25
    weight = correction_weights(kp, shifted)[0, 0]
    assert weight[:, -8:].eq(0).all() and weight[0, -10:-8].eq(1).all()
    assert correction_weights(kp, torch.zeros(1, 2, size, size))[0, 0, 0].eq(1).all()


def test_the_gate_is_one_on_the_mouth_and_eyes_zero_away_and_soft_between():
    kp = torch.from_numpy(face_keypoints()).float()[None]
    gate = gate_regions(kp, torch.zeros(1, 2, 256, 256))
    assert gate.shape == (1, 1, 64, 64)
    for lo, hi in ((60, 68), (36, 42), (42, 48)):
        assert gate[0, 0][_pixel(kp[0, lo:hi].mean(0), 64)] == 1
    assert gate[0, 0, 0, 0] == 0 and gate[0, 0][_pixel(kp[0, 30], 64)] == 0  # nose tip
    between = gate[(gate > 0) & (gate < 1)]
    assert between.numel() > 0  # the edge fades over a pixel at S/4


def test_with_several_sources_the_gate_frees_what_any_sources_warp_cannot_do():
    size = 64
    kp = torch.from_numpy(face_keypoints()).float()[None]
    still = torch.zeros(1, 2, size, size)
    shifted = still.clone()
    shifted[:, 0] = 0.25
    one = gate_regions(kp, still[:, None])
    both = gate_regions(kp, torch.stack([still, shifted], 1))
    assert torch.equal(one, gate_regions(kp, still))
    assert both[0, 0, :, -1].eq(1).all() and one[0, 0, 8, -1] == 0
    assert bool((both >= one).all())


def _gated_g_with_weights() -> Generator:
    """A gated G v2 whose residual flow and correction are not zero."""
    torch.manual_seed(0)
    g = Generator(GATED)
    with torch.no_grad():
        for layer in (g.flow.out, g.render.full[-1]):
            layer.weight.normal_(0, 0.3)
            layer.bias.normal_(0, 0.3)
    return g.eval()


def test_a_gated_g_v2_outputs_the_mesh_warp_outside_its_gate():
    g = _gated_g_with_weights()
    torch.manual_seed(1)
    images = torch.rand(1, 1, 3, 64, 64) * 2 - 1
    sketch = torch.rand(1, 3, 64, 64) * 2 - 1
    prior = torch.randn(1, 1, 2, 64, 64) * 0.02
    plain = warp(images[:, 0], prior[:, 0])
    with torch.no_grad():
        shut = g(images, images, sketch, prior, torch.zeros(1, 1, 16, 16))
        open_ = g(images, images, sketch, prior, torch.ones(1, 1, 16, 16))
        left = torch.zeros(1, 1, 16, 16)
        left[..., :8] = 1
        half = g(images, images, sketch, prior, left)
    assert torch.equal(shut.image, plain) and torch.equal(shut.warped.image, plain)
    assert float((open_.image - plain).abs().mean()) > 0.05
    assert float((open_.warped.image - plain).abs().mean()) > 1e-3
    # away from where the enlarged gate fades, each half is the warp or the open G's
    assert torch.equal(half.image[..., 40:], plain[..., 40:])
    assert torch.allclose(half.image[..., :24], open_.image[..., :24], atol=0.05)


def test_a_gated_g_v2_refuses_a_missing_gate_and_other_gs_an_extra_one():
    x = torch.rand(1, 1, 3, 64, 64) * 2 - 1
    prior, gate = torch.zeros(1, 1, 2, 64, 64), torch.zeros(1, 1, 16, 16)
    with pytest.raises(ValueError, match="gate"):
        Generator(GATED)(x, x, x[:, 0], prior)
    ungated = GeneratorConfig(**{**TINY.__dict__, "flow_prior": "mesh"})
    with pytest.raises(ValueError, match="gate"):
        Generator(ungated)(x, x, x[:, 0], prior, gate)
    with pytest.raises(ValueError, match="correction_regions"):
        GeneratorConfig(correction_regions=True)


def test_the_written_out_derivative_is_torch_gradient():
    from freehead.models.regions import _derivative

    x = torch.randn(2, 2, 7, 9)
    for dim in (2, 3):
        assert torch.allclose(_derivative(x, dim), torch.gradient(x, dim=dim)[0], atol=1e-6)


def test_with_gate_keeps_the_weights_and_turns_the_gate_on():
    ungated = Generator(GeneratorConfig(**{**GATED.__dict__, "correction_regions": False}))
    gated = ungated.eval().with_gate()
    assert gated.config.correction_regions and not gated.training
    assert gated.config == GATED
    weights, gated_weights = ungated.state_dict(), gated.state_dict()
    assert weights.keys() == gated_weights.keys()
    assert all(torch.equal(weights[k], gated_weights[k]) for k in weights)
    assert gated.with_gate() is gated


def test_an_open_gate_is_no_gate():
    """Training with the gate open (``gate_in_training`` off) is training the ungated G:
    the same weights give the same picture."""
    gated = _gated_g_with_weights()
    ungated = Generator(GeneratorConfig(**{**GATED.__dict__, "correction_regions": False}))
    ungated.load_state_dict(gated.state_dict())
    torch.manual_seed(2)
    images = torch.rand(1, 1, 3, 64, 64) * 2 - 1
    sketch = torch.rand(1, 3, 64, 64) * 2 - 1
    prior = torch.randn(1, 1, 2, 64, 64) * 0.02
    with torch.no_grad():
        a = gated(images, images, sketch, prior, torch.ones(1, 1, 16, 16)).image
        b = ungated.eval()(images, images, sketch, prior).image
    assert torch.equal(a, b)

"""Training G on the shared loop: hinge GAN with D_I and D_M, feature matching and a
perceptual loss on the output and on the warped source (DESIGN §7).

Pairs come from one clip (source and target frames of the same person); both sketches
are drawn from the pseudo-labels, so G learns from the labeller's keypoints and gaze,
and at inference E_can and E_gaze supply the same quantities (their held-out errors are
about 1% of the inter-ocular distance and 2.7°, docs/models.md), drawn by the same
``draw_sketch``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_path
from freehead.models.backbone import to_image
from freehead.models.critics import CriticConfig, Critics
from freehead.models.generator import Generator, GeneratorConfig
from freehead.training.data import AugmentConfig, ClipFrames, FrameRef, GeneratorPairs
from freehead.training.gan_losses import (
    PerceptualLoss,
    feature_matching_loss,
    hinge_critic_loss,
    hinge_generator_loss,
)
from freehead.training.loop import Task, TrainConfig, check_finite, clip_gradients
from freehead.visualize import grid

log = logging.getLogger("freehead.train")


@dataclass(frozen=True)
class GeneratorLossWeights:
    """HeadGAN's defaults: lambda_VGG = lambda_FM = 10 (the perceptual weight applies to
    whichever perceptual loss runs; see ``PerceptualLoss``)."""

    adversarial: float = 1.0
    feature_matching: float = 10.0
    perceptual: float = 10.0
    warped_perceptual: float = 10.0


GAN_TRAINING = TrainConfig(lr=2e-4, weight_decay=0.0, warmup_steps=0, final_lr_fraction=1.0,
                           batch_size=4, validate_every=500)  # fmt: skip
"""HeadGAN's optimiser settings (Adam 2e-4, constant); a small batch for CPUs."""


@dataclass(frozen=True)
class GeneratorRunConfig:
    """Everything a ``freehead train generator`` run is made of. ``vgg_weights``: a path to
    torchvision's VGG19 ImageNet file (default: looked for in the torch hub cache)."""

    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    critics: CriticConfig = field(default_factory=CriticConfig)
    loss: GeneratorLossWeights = field(default_factory=GeneratorLossWeights)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sources: int = 1
    critic_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    validation_pairs: int = 8
    vgg_weights: str | None = None
    train: TrainConfig = field(default_factory=lambda: GAN_TRAINING)


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


class GeneratorTraining(nn.Module):
    """What trains: G and its critics."""

    def __init__(self, config: GeneratorRunConfig):
        super().__init__()
        self.generator = Generator(config.model)
        self.critics = Critics(config.critics)


class GeneratorTask(Task):
    kind = "generator"
    config_type = GeneratorRunConfig
    config: GeneratorRunConfig

    def __init__(self, config: GeneratorRunConfig, dataset):
        super().__init__(config, dataset)
        size = dataset.settings().size
        if config.model.image_size != size:
            raise FreeheadError(
                f"the generator config is for {config.model.image_size}² images but "
                f"{dataset.root} holds {size}² crops; set model.image_size: {size}"
            )
        self.perceptual = PerceptualLoss(config.vgg_weights)
        log.info("perceptual loss: %s (%s)", self.perceptual.kind, self.perceptual.note)

    def build_model(self) -> nn.Module:
        return GeneratorTraining(self.config)

    def run_info(self) -> dict[str, Any]:
        return {"perceptual_loss": self.perceptual.kind, "perceptual_note": self.perceptual.note}

    def initialise(self, model: nn.Module) -> None:
        """Nothing to derive from the data: a fresh G copies the unwarped source."""

    def build_optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        assert isinstance(model, GeneratorTraining)
        c = self.config
        return {
            "generator": torch.optim.Adam(
                model.generator.parameters(), lr=c.train.lr, betas=c.betas
            ),
            "critics": torch.optim.Adam(model.critics.parameters(), lr=c.critic_lr, betas=c.betas),
        }

    def distribute(self, model: nn.Module, wrap) -> Any:
        assert isinstance(model, GeneratorTraining)
        return SimpleNamespace(generator=wrap(model.generator), critics=wrap(model.critics))

    def export(self, model: nn.Module) -> tuple[nn.Module, str]:
        assert isinstance(model, GeneratorTraining)
        return model.generator, "generator."

    def train_dataset(self) -> GeneratorPairs:
        return GeneratorPairs(
            ClipFrames(self.dataset, "train"), self.config.sources, self.config.augment
        )

    def train_step(self, wrapped: Any, batch: dict[str, Tensor], optimizers) -> dict[str, Tensor]:
        w = self.config.loss
        g, d = wrapped.generator, wrapped.critics
        target, sketch, kp = (
            batch["target_image"],
            batch["target_sketch"],
            batch["target_keypoints"],
        )
        b = target.shape[0]
        self.perceptual.to(target.device)  # VGG19, when there is one, lives where the batch does
        out = g(batch["source_image"], batch["source_sketch"], sketch)

        # generator step: critics see (fake, real) in one pass
        scores = d(torch.cat([out.image, target]), torch.cat([sketch, sketch]), torch.cat([kp, kp]))
        fake = [[t[:b] for t in critic] for critic in scores]
        real = [[t[b:] for t in critic] for critic in scores]
        terms = {
            "adversarial": hinge_generator_loss(fake),
            "feature_matching": feature_matching_loss(real, fake),
            "perceptual": self.perceptual(out.image, target),
            "warped_perceptual": self.perceptual(out.warped.image, target),
        }
        loss_g = sum(getattr(w, k) * v for k, v in terms.items())
        check_finite(loss_g)
        optimizers["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        clip_gradients(optimizers["generator"], self.config.train.grad_clip)
        optimizers["generator"].step()

        # critic step
        scores = d(
            torch.cat([out.image.detach(), target]),
            torch.cat([sketch, sketch]),
            torch.cat([kp, kp]),
        )
        loss_d = hinge_critic_loss(
            [[t[b:] for t in c] for c in scores], [[t[:b] for t in c] for c in scores]
        )
        check_finite(loss_d)
        optimizers["critics"].zero_grad(set_to_none=True)
        loss_d.backward()
        clip_gradients(optimizers["critics"], self.config.train.grad_clip)
        optimizers["critics"].step()
        with torch.no_grad():
            l1 = (out.image - target).abs().mean()
        return {**terms, "loss": loss_g.detach(), "critic": loss_d.detach(), "l1": l1}

    def validation_pairs(self) -> tuple[GeneratorPairs, list[tuple[FrameRef, list[FrameRef]]]]:
        """Fixed held-out pairs: each clip's first frame as the source, evenly spaced
        later frames of the same clip as targets."""
        frames = ClipFrames(self.dataset, "heldout")
        data = GeneratorPairs(frames, self.config.sources, augment=None)
        per_clip = max(1, self.config.validation_pairs // len(frames.clip_frames))
        pairs = []
        for clip, idx in frames.clip_frames.items():
            source = FrameRef(clip, int(idx[0]))
            for j in np.linspace(1, len(idx) - 1, per_clip).round().astype(int):
                pairs.append((FrameRef(clip, int(idx[j])), [source] * self.config.sources))
        return data, pairs

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """L1 and PSNR of G's output (and L1 of the warped source) against the target on
        fixed held-out pairs; a picture of them (source, target sketch, warped, output,
        target per row) goes to ``RUN/val/step_NNNNNNNN.png``."""
        assert isinstance(model, GeneratorTraining)
        data, pairs = self.validation_pairs()
        device = next(model.parameters()).device
        l1, psnr, warped_l1, tiles = [], [], [], []
        for target, sources in pairs:
            item = {k: v[None].to(device) for k, v in data.item(target, sources, None).items()}
            out = model.generator(
                item["source_image"], item["source_sketch"], item["target_sketch"]
            )
            diff = (out.image - item["target_image"]) / 2  # [0, 1] units
            l1.append(float(diff.abs().mean()))
            psnr.append(float(-10 * torch.log10(diff.pow(2).mean().clamp_min(1e-10))))
            warped_l1.append(float(((out.warped.image - item["target_image"]) / 2).abs().mean()))
            row = (item["source_image"][0, 0], item["target_sketch"][0], out.warped.image[0],
                   out.image[0], item["target_image"][0])  # fmt: skip
            tiles += [to_image(t) for t in row]
        if self.run_dir is not None:
            _write_png(self.run_dir / "val" / f"step_{step:08d}.png", grid(tiles, columns=5))
        return {"l1": float(np.mean(l1)), "psnr": float(np.mean(psnr)),
                "warped_l1": float(np.mean(warped_l1)), "pairs": len(pairs)}  # fmt: skip

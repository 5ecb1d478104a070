"""Training G on the shared loop: hinge GAN with D_I and D_M, feature matching and a
perceptual loss on the output and on the warped source (docs/generator.md, "Losses and
training").

Beyond the paper, for the eyes: in a 256² crop gaze lives in a few pixels of iris, which
whole-image losses barely see, so :class:`EyeLoss` adds L1 + SSIM on the eye patches
E_gaze reads and the angle between the gaze a frozen E_gaze reads from the output and
from the target (weights ``eye_detail`` and ``gaze``). Redirection samples ask G for the
target with another gaze, judged by the same E_gaze (``redirect_gaze``,
``redirect_stability``; docs/generator.md). A weight of zero turns a term off.

Pairs come from one clip (source and target frames of the same person); both sketches
are drawn from the pseudo-labels, so G learns from the labeller's keypoints and gaze,
and at inference E_can and E_gaze supply the same quantities (their held-out errors are
about 1% of the inter-ocular distance and 2.7°, docs/models.md), drawn by the same
``draw_sketch``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from freehead.data.frames import ClipFrames, FrameRef
from freehead.errors import FreeheadError
from freehead.geometry import gaze_from_angles, gaze_from_eye_mesh
from freehead.io_utils import atomic_path
from freehead.models.backbone import to_image
from freehead.models.critics import CriticConfig, Critics
from freehead.models.gaze import GazeEstimator, cut_eye_patches, eye_frames
from freehead.models.generator import Generator, GeneratorConfig, warp
from freehead.models.regions import GATE_SCALE, gate_regions
from freehead.perception.eyes import TEMPLATE
from freehead.training.data import AugmentConfig, GeneratorPairs, StillMotion
from freehead.training.gan_losses import (
    IDENTITY_KINDS,
    IdentityLoss,
    PerceptualLoss,
    correction_weights,
    default_identity,
    default_perceptual,
    feature_matching_loss,
    hinge_critic_loss,
    hinge_generator_loss,
    ssim_map,
)
from freehead.training.loop import Task, TrainConfig, descend
from freehead.training.losses import angular_error_deg
from freehead.visualize import grid

log = logging.getLogger("freehead.train")


@dataclass(frozen=True)
class GeneratorLossWeights:
    """HeadGAN's defaults: lambda_VGG = lambda_FM = 10 (the perceptual weight applies to
    whichever perceptual loss runs; see ``PerceptualLoss``). ``identity`` weighs FaceRes'
    cosine distance between the output and its sources (when the run has an identity loss;
    not yet tuned by a full run); ``l1`` the mean absolute difference to the target;
    ``flow_residual`` (G v2) the mean absolute residual G adds to the mesh warp's flow, in
    pixels, so that the flow leaves the geometry only where that pays (an iris turned),
    not everywhere a little; ``correction`` (G v2) the mean absolute change G's rendering
    makes to the warped image (in [0, 1] units), likewise: fill what the warp lacks (a
    mouth, a seam), leave the rest as the warp has it. Where the warp cannot be right (the
    mouth opening, the eyes, where the prior stretches or folds the source:
    :func:`~freehead.training.gan_losses.correction_weights`) the change is free of that
    charge and pays ``free_correction`` instead (0: nothing)."""

    adversarial: float = 1.0
    feature_matching: float = 10.0
    perceptual: float = 10.0
    warped_perceptual: float = 10.0
    eye_detail: float = 5.0
    gaze: float = 0.1
    redirect_gaze: float = 0.2
    redirect_stability: float = 1.0
    identity: float = 1.0
    l1: float = 0.0
    flow_residual: float = 0.0
    correction: float = 0.0
    free_correction: float = 0.0

    @property
    def uses_critics(self) -> bool:
        """Whether any term reaching G reads the critics (adversarial or feature
        matching); without, a run neither runs nor trains them."""
        return self.adversarial > 0 or self.feature_matching > 0


GAN_TRAINING = TrainConfig(lr=2e-4, weight_decay=0.0, warmup_steps=0, final_lr_fraction=1.0,
                           batch_size=4, validate_every=500)  # fmt: skip
"""HeadGAN's optimiser settings (Adam 2e-4, constant); a small batch for CPUs."""


@dataclass(frozen=True)
class GeneratorRunConfig:
    """Everything a ``freehead train generator`` run is made of. ``perceptual``: ``vgg19``,
    ``mobilenet_v2`` or ``l1_msssim`` (unset: a new run takes VGG19 when found, else
    MobileNetV2 when cached, else L1 + MS-SSIM, and records it; see ``default_perceptual``);
    ``identity``: ``faceres`` or ``none`` (unset: FaceRes when cached, recorded likewise);
    ``vgg_weights``: a path to torchvision's VGG19 ImageNet file (default: looked for in the
    torch hub cache);
    ``gaze_estimator``: the E_gaze file :class:`EyeLoss` uses (default: the shipped one);
    ``redirect_deg``: the range of the gaze asked for in redirection samples;
    ``stills``: pairs made from the split's still photos (:class:`StillMotion`);
    ``gaze_pairs``: the share of video pairs whose source's gaze in the head differs most
    from the target's (:class:`GeneratorPairs`);
    ``gaze_on_warp``: E_gaze's gaze and redirection terms judge the warped image (what the
    flow moved) instead of the output, so G cannot lower them by painting the eye patches
    (for a G v2, whose prior already turns the irises);
    ``bf16``: run G and the critics under bfloat16 autocast (CPUs with AVX512-BF16, GPUs);
    ``gate_in_training``: a gated G v2 (``model.correction_regions``) trains with its gate,
    changing the warp only where it cannot be right; without (the default), with the gate
    open everywhere, so G may change any pixel, charged by ``loss.correction``, and the gate
    holds only at inference and in validation."""

    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    critics: CriticConfig = field(default_factory=CriticConfig)
    loss: GeneratorLossWeights = field(default_factory=GeneratorLossWeights)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sources: int = 1
    critic_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    validation_pairs: int = 8
    vgg_weights: str | None = None
    perceptual: str | None = None
    identity: str | None = None
    gaze_estimator: str | None = None
    redirect_deg: float = 25.0
    stills: StillMotion = field(default_factory=StillMotion)
    gaze_pairs: float = 0.0
    gaze_on_warp: bool = False
    bf16: bool = False
    gate_in_training: bool = False
    train: TrainConfig = field(default_factory=lambda: GAN_TRAINING)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if ok:  # a validation picture: nothing to stop a run for
        with atomic_path(path, suffix=".png") as tmp:
            tmp.write_bytes(data.tobytes())


class EyeLoss(nn.Module):
    """Losses on the eyes of G's output, in the eye patches E_gaze reads (cut along the
    target's keypoints, so both images are sampled on the same grid).

    ``detail``: L1 + (1 - SSIM) of the patches, in [0, 1] units. ``gaze``: the mean angle
    in degrees between the per-eye gaze a frozen E_gaze reads from the output's patches
    and from the target's. Both are compared in the same eye frames, so no mapping back
    to the crop is needed.
    """

    def __init__(self, estimator: GazeEstimator):
        super().__init__()
        self.estimator = estimator.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> EyeLoss:
        return super().train(False)  # E_gaze stays in eval mode (batch-norm statistics)

    def forward(self, output: Tensor, target: Tensor, keypoints: Tensor) -> dict[str, Tensor]:
        """output, target ``(B, 3, S, S)`` in [-1, 1], target keypoints ``(B, 68, 3)``."""
        frames = eye_frames(keypoints)
        config = self.estimator.config
        out = (cut_eye_patches(output, frames, config) + 1) / 2
        ref = (cut_eye_patches(target, frames, config) + 1) / 2
        detail = (out - ref).abs().mean() + (1 - ssim_map(out, ref)).mean()
        meshes = self.estimator(torch.cat([out, ref]) * 2 - 1)
        gaze = gaze_from_eye_mesh(TEMPLATE, meshes)
        n = out.shape[0]
        angle = angular_error_deg(gaze[:n], gaze[n:].detach()).mean()
        return {"eye_detail": detail, "gaze": angle}

    def gaze_towards(
        self, output: Tensor, keypoints: Tensor, angles: Tensor, weight: Tensor
    ) -> Tensor:
        """The mean angle in degrees between the gaze E_gaze reads from each eye of
        ``output`` ``(B, 3, S, S)`` and the gaze asked for, (pitch, yaw) ``(B, 2)`` in
        degrees; faces weighted by ``weight`` ``(B,)`` (0 for closed eyes)."""
        read = self.estimator.predict(output, keypoints).eye_gaze  # (B, 2, 3)
        asked = gaze_from_angles(angles[:, 0], angles[:, 1])[:, None]  # (B, 1, 3)
        error = angular_error_deg(read, asked.expand_as(read)).mean(-1)
        return (error * weight).sum() / weight.sum().clamp_min(1.0)


_Judge = Callable[[Tensor], tuple[list[list[Tensor]], list[list[Tensor]]]]
"""The critics on a batch of images: (scores and features of the images, of the targets)."""


def _gate(generator: Any, keypoints: Tensor, prior: Tensor | None,
          open_gate: bool = False) -> Tensor | None:  # fmt: skip
    """The regions a ``correction_regions`` G v2 may change, ``(B', 1, S/4, S/4)``, for
    B' targets drawn from B target ``keypoints`` ``(B, 68, 3)`` (B' = B, or 2B with
    redirection) and their prior flows ``(B', M, 2, S, S)``, or with ``open_gate`` all of
    it (ones); None for other Gs."""
    if prior is None or not generator.config.correction_regions:
        return None
    if open_gate:
        s = prior.shape[-1] // GATE_SCALE
        return prior.new_ones(prior.shape[0], 1, s, s)
    return gate_regions(keypoints.repeat(prior.shape[0] // keypoints.shape[0], 1, 1), prior)


def _render(
    generator: Any, batch: dict[str, Tensor], open_gate: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """G's renderings of a batch's B targets: ``(B, 3, S, S)``, or with redirection
    ``(2B, 3, S, S)`` (each target, then each redirected one); the warped sources of
    each; the sketches the renderings were drawn from; and (G v2) the residual G added to
    each source's prior flow, ``(B or 2B, M, 2, S, S)`` in pixels (None for a plain G).
    ``open_gate``: a gated G v2's gate is open everywhere (``gate_in_training`` off)."""
    sketch = batch["target_sketch"]
    sources, source_sketches, sketches = (
        batch["source_image"], batch["source_sketch"], sketch)  # fmt: skip
    prior = batch.get("source_prior")  # G v2
    if "redirect_sketch" in batch:
        sources, source_sketches = torch.cat([sources] * 2), torch.cat([source_sketches] * 2)
        sketches = torch.cat([sketch, batch["redirect_sketch"]])
        if prior is not None:  # the redirected rendering's irises (and lids) moved by the mesh
            prior = torch.cat([prior, batch["redirect_prior"]])
    rendered = generator(sources, source_sketches, sketches, prior,
                         _gate(generator, batch["target_keypoints"], prior, open_gate))  # fmt: skip
    residual = None
    if prior is not None:  # grid units (2 / S per pixel) -> pixels
        residual = (rendered.warped.flow - prior) * (prior.shape[-1] / 2.0)
    return rendered.image, rendered.warped.image, sketches, residual


def _judge(critics: Any, batch: dict[str, Tensor], sketches: Tensor, n: int) -> _Judge:
    """The critics on ``n`` rendered images drawn from ``sketches``, each call judging them
    together with the batch's real targets."""
    target, sketch, kp = batch["target_image"], batch["target_sketch"], batch["target_keypoints"]
    fake_kp = kp.repeat(n // kp.shape[0], 1, 1)

    def judge(images: Tensor) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
        """Critic scores and features of (images, target): (fake part, real part)."""
        scores = critics(torch.cat([images, target]), torch.cat([sketches, sketch]),
                         torch.cat([fake_kp, kp]))  # fmt: skip
        return [[t[:n] for t in c] for c in scores], [[t[n:] for t in c] for c in scores]

    return judge


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
        self.perceptual = PerceptualLoss(config.vgg_weights, config.perceptual)
        log.info("perceptual loss: %s (%s)", self.perceptual.kind, self.perceptual.note)
        if config.identity not in (None, *IDENTITY_KINDS):
            raise FreeheadError(f"identity: {config.identity!r} is unknown; use one of "
                                f"{', '.join(IDENTITY_KINDS)}")  # fmt: skip
        wants_identity = config.identity == "faceres" and config.loss.identity > 0
        self.identity = IdentityLoss() if wants_identity else None
        self.eyes = EyeLoss(GazeEstimator.from_pretrained(config.gaze_estimator))

    @classmethod
    def resolve_config(
        cls, config: GeneratorRunConfig, started: GeneratorRunConfig | None = None
    ) -> GeneratorRunConfig:
        """Unset ``perceptual`` and ``identity`` made concrete: as the run being resumed
        has them (a run started before they were recorded keeps its unset values and its
        old behaviour), else from what this machine has."""
        if started is not None:
            return replace(config, perceptual=config.perceptual or started.perceptual,
                           identity=config.identity or started.identity)  # fmt: skip
        return replace(config, perceptual=config.perceptual or default_perceptual(
            config.vgg_weights), identity=config.identity or default_identity())  # fmt: skip

    def build_model(self) -> nn.Module:
        return GeneratorTraining(self.config)

    def run_info(self) -> dict[str, Any]:
        identity = "faceres (@vladmandic/human@3.3.6)" if self.identity is not None else "none"
        return {"perceptual_loss": self.perceptual.kind, "perceptual_note": self.perceptual.note,
                "identity_loss": identity,
                "eye_loss_gaze_estimator": self.config.gaze_estimator or "shipped"}  # fmt: skip

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
        c = self.config
        redirect = c.redirect_deg if c.loss.redirect_gaze > 0 else 0.0
        return GeneratorPairs(ClipFrames(self.dataset, "train"), c.sources, c.augment, redirect,
                              prior=c.model.uses_prior, stills=c.stills,
                              gaze_pairs=c.gaze_pairs)  # fmt: skip

    def train_step(self, wrapped: Any, batch: dict[str, Tensor], optimizers) -> dict[str, Tensor]:
        """One step of G, then one of the critics. With redirection on, G renders each
        target twice in one pass (its own sketch, then the redirected one); the critics
        judge both renderings, and feature matching pairs only the first with the real
        frame, which it is a picture of. When no term reaching G reads the critics
        (``loss.uses_critics``), they are neither run nor trained and read 0 in the log."""
        target = batch["target_image"]
        # the frozen networks live where the batch does
        for frozen in (self.perceptual, self.identity, self.eyes):
            if frozen is not None:
                frozen.to(target.device)
        critics_on = self.config.loss.uses_critics
        with self._autocast():
            fakes, warped, sketches, residual = _render(
                wrapped.generator, batch, open_gate=not self.config.gate_in_training
            )
            judge = _judge(wrapped.critics, batch, sketches, fakes.shape[0]) if critics_on else None
            terms = self._generator_terms(batch, fakes.float(), warped.float(), judge, residual)
            loss_g = sum(getattr(self.config.loss, k) * v for k, v in terms.items())
        descend(optimizers["generator"], loss_g, self.config.train.grad_clip)

        loss_d = fakes.new_zeros(()).float()
        if judge is not None:  # critic step
            with self._autocast():
                fake, real = judge(fakes.detach())
                loss_d = hinge_critic_loss(real, fake)
            descend(optimizers["critics"], loss_d, self.config.train.grad_clip)
        with torch.no_grad():
            l1 = (fakes[: target.shape[0]] - target).abs().mean()
        return {**terms, "loss": loss_g.detach(), "critic": loss_d.detach(), "l1": l1}

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast where the run config asks for it (``bf16``), else a no-op."""
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _generator_terms(self, batch: dict[str, Tensor], fakes: Tensor, warped: Tensor,
                         judge: _Judge | None, residual: Tensor | None = None) -> dict[str, Tensor]:  # fmt: skip
        """G's loss terms, unweighted (see :class:`GeneratorLossWeights`); without
        ``judge`` (no critics) the critics' two terms are 0."""
        target, kp = batch["target_image"], batch["target_keypoints"]
        b = target.shape[0]
        out = fakes[:b]
        terms = {"adversarial": fakes.new_zeros(()), "feature_matching": fakes.new_zeros(())}
        if judge is not None:
            fake, real = judge(fakes)
            terms["adversarial"] = hinge_generator_loss(fake)
            terms["feature_matching"] = feature_matching_loss(
                real, [[t[:b] for t in c] for c in fake]
            )
        terms |= {
            "perceptual": self.perceptual(out, target),
            "warped_perceptual": self.perceptual(warped[:b], target),
            **self.eyes(out, target, kp),
        }
        judged = warped if self.config.gaze_on_warp else fakes  # what E_gaze reads
        if self.config.gaze_on_warp:
            terms["gaze"] = self.eyes(warped[:b], target, kp)["gaze"]
        if self.identity is not None:
            terms["identity"] = self.identity(out, batch["source_image"])
        if self.config.loss.l1 > 0:
            terms["l1"] = (out - target).abs().mean()
        if residual is not None and self.config.loss.flow_residual > 0:
            terms["flow_residual"] = residual.float().abs().mean()
        if residual is not None and self.config.loss.correction > 0:
            prior = batch["source_prior"][:, 0]  # the first source's warp judges the pixels
            if "redirect_prior" in batch:
                prior = torch.cat([prior, batch["redirect_prior"][:, 0]])
            weight = correction_weights(kp.repeat(prior.shape[0] // b, 1, 1), prior)
            change = (fakes - warped).abs()
            terms["correction"] = (change * weight).mean() / 2
            if self.config.loss.free_correction > 0:
                terms["free_correction"] = (change * (1 - weight)).mean() / 2
        if "redirect_sketch" in batch:
            terms["redirect_gaze"] = self.eyes.gaze_towards(
                judged[b:], kp, batch["redirect_gaze"], batch["target_eyes_open"]
            )
            terms["redirect_stability"] = (fakes[b:] - out.detach()).abs().mean()
        for name, value in terms.items():
            if not torch.isfinite(value):
                raise FreeheadError(f"the {name} term became {float(value)}; lower the "
                                    "learning rate")  # fmt: skip
        return terms

    def validation_pairs(self) -> tuple[GeneratorPairs, list[tuple[FrameRef, list[FrameRef]]]]:
        """Fixed held-out pairs: each clip's first frame as the source, evenly spaced
        later frames of the same clip as targets (:func:`spread_targets`)."""
        frames = ClipFrames(self.dataset, "heldout")
        data = GeneratorPairs(frames, self.config.sources, augment=None,
                              prior=self.config.model.uses_prior)  # fmt: skip
        per_clip = max(1, self.config.validation_pairs // len(frames.clip_frames))
        pairs = []
        for clip, idx in frames.clip_frames.items():
            source = FrameRef(clip, int(idx[0]))
            for j in spread_targets(len(idx), per_clip):
                pairs.append((FrameRef(clip, int(idx[j])), [source] * self.config.sources))
        return data, pairs

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """L1 and PSNR of G's output (and L1 of the warped source, and for a G v2 of the
        source warped by the mesh prior alone, ``prior_l1``) against the target, and
        the gaze angle between them as E_gaze reads it (``gaze_deg``), on fixed held-out
        pairs; a picture of them (source, target sketch, warped, output,
        target per row) goes to ``RUN/val/step_NNNNNNNN.png``."""
        assert isinstance(model, GeneratorTraining)
        data, pairs = self.validation_pairs()
        device = next(model.parameters()).device
        self.eyes.to(device)
        l1, psnr, warped_l1, prior_l1, gaze, tiles = [], [], [], [], [], []
        for target, sources in pairs:
            item = {k: v[None].to(device) for k, v in data.item(target, sources, None).items()}
            prior = item.get("source_prior")
            gate = _gate(model.generator, item["target_keypoints"], prior)
            out = model.generator(item["source_image"], item["source_sketch"],
                                  item["target_sketch"], prior, gate)  # fmt: skip
            diff = (out.image - item["target_image"]) / 2  # [0, 1] units
            l1.append(float(diff.abs().mean()))
            psnr.append(float(-10 * torch.log10(diff.pow(2).mean().clamp_min(1e-10))))
            warped_l1.append(float(((out.warped.image - item["target_image"]) / 2).abs().mean()))
            if "source_prior" in item:  # the geometry alone: the first source by its prior
                alone = warp(item["source_image"][:, 0], item["source_prior"][:, 0])
                prior_l1.append(float(((alone - item["target_image"]) / 2).abs().mean()))
            eyes = self.eyes(out.image, item["target_image"], item["target_keypoints"])
            gaze.append(float(eyes["gaze"]))
            row = (item["source_image"][0, 0], item["target_sketch"][0], out.warped.image[0],
                   out.image[0], item["target_image"][0])  # fmt: skip
            tiles += [to_image(t) for t in row]
        if self.run_dir is not None:
            _write_png(self.run_dir / "val" / f"step_{step:08d}.png", grid(tiles, columns=5))
        figures = {"l1": float(np.mean(l1)), "psnr": float(np.mean(psnr)),
                   "warped_l1": float(np.mean(warped_l1)), "gaze_deg": float(np.mean(gaze)),
                   "pairs": len(pairs)}  # fmt: skip
        if prior_l1:
            figures["prior_l1"] = float(np.mean(prior_l1))
        return figures


def spread_targets(frames: int, count: int) -> np.ndarray:
    """Indices of ``count`` targets spread evenly over a clip of ``frames`` usable frames
    after its first (the source), the last one included: ``(count,)`` int, distinct when
    the clip is long enough. Until issue 16's run 11, one target per clip was the frame
    right after the source, so the held-out figures hardly saw any motion."""
    if frames < 2:
        return np.zeros(0, dtype=int)
    spread = np.linspace(0, frames - 1, count + 1)[1:].round().astype(int)
    return np.unique(np.maximum(spread, 1))

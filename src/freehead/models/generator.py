"""G = FlowNetwork + RenderNetwork (Free-HeadGAN §3.3, after HeadGAN), with the N-shot
extension: M source images are warped to the target and blended with per-pixel softmax
attention.

Data flow at image size S (default 256):

* per source (cached across frames): ``SourceEncoder`` on (source image, source sketch)
  -> features h1, h2, h3 at S/2, S/4, S/8;
* per frame: ``SketchEncoder`` on the target sketch -> t1, t2, t3 at S/2, S/4, S/8
  (one encoder serves both networks, which saves a third of the per-frame cost);
* FlowNetwork: (h3, t3) at S/8, then (up, h2, t2) at S/4 -> a dense flow w and an
  attention logit m per source, at S/4; w is resized to every scale;
* backward warping: out(p) = x(p + w(p)) of the source image and each feature scale;
  N-shot: x̄ = Σ_j softmax_j(m) w_j(x_j), the same for features;
* RenderNetwork: a decoder from t3 up to S/2, each block modulated (SPADE) by the warped
  features and the warped image at its scale; at S two light convolutions over the
  decoded features and the warped image give RGB and a mask that blends the rendered
  colours with the warped image (occlusion-aware output, as in FOMM); out in [-1, 1].

Flows are in crop coordinates (offsets of ``grid_sample``'s [-1, 1] grid), so a flow of
(2 k / S, 0) everywhere shifts the image left by k pixels.

**G v2** (``flow_prior="mesh"``): each source comes with a *prior flow* ``(2, S, S)``, the
backward map of the mesh warp from the source onto the target
(:meth:`freehead.perception.meshwarp.MeshWarp.flow`). The flow network reads it (at S/8 and
S/4, beside the features) and predicts a *residual*; a source is warped by the prior plus
the residual, at full resolution for the image. The rendering network's output is
``warped + sigmoid(z) · 2 tanh(c)``: a correction of the warped image, weighed per pixel.
The residual flow and the correction ``c`` start at exactly zero, so a fresh G v2 outputs
the mesh warp (of one source; M sources start as their mean), and learning adds only what
the warp lacks. Built with ``correction_regions``, it also takes per target a gate
``(B, 1, S/4, S/4)`` (:func:`freehead.models.regions.gate_regions`: the mouth, the eyes,
stretched or folded parts, what lies beyond the source's frame) that scales the residual
and the correction, so that elsewhere its output is the mesh warp. (An earlier learned
gate ``clamp(z, 0, 1)`` blending colours with the warped image, starting shut, died shut
within 500 steps of a run; passing its gradient straight through the clamp opened it onto
bad colours, and the run's losses rose.) With
``flow_prior="none"`` G is the paper's (and the shipped v1's) network.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freehead.checkpoint import load_model
from freehead.models.shipped import model_file

FLOW_PRIORS = ("none", "mesh")
"""What G's flow starts from: nothing (the paper's G) or the mesh warp (G v2)."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of G. ``encoder_channels``: features at S/2, S/4, S/8 (source and sketch
    encoders); ``render_channels``: decoder widths at S/8, S/4, S/2 and the full-size
    stage."""

    image_size: int = 256
    encoder_channels: tuple[int, int, int] = (16, 32, 64)
    flow_channels: int = 64
    render_channels: tuple[int, int, int, int] = (64, 32, 16, 8)
    modulation_channels: int = 16
    flow_prior: str = "none"
    """``"none"``: the paper's G; ``"mesh"``: G v2, which starts from the mesh warp."""
    correction_regions: bool = False
    """G v2 only: change the mesh warp (residual flow and correction) only inside the
    regions the warp cannot get right, given per target as a gate ``(B, 1, S/4, S/4)``
    (:func:`freehead.models.regions.gate_regions`); elsewhere the output is the warp."""

    def __post_init__(self) -> None:
        if self.flow_prior not in FLOW_PRIORS:
            raise ValueError(f"flow_prior {self.flow_prior!r}: use one of {FLOW_PRIORS}")
        if self.correction_regions and self.flow_prior != "mesh":
            raise ValueError("correction_regions needs a G v2 (flow_prior: mesh)")

    @property
    def uses_prior(self) -> bool:
        """Whether G takes a prior flow per source (G v2)."""
        return self.flow_prior == "mesh"


# ----------------------------------------------------------------------------- warping


def identity_grid(b: int, h: int, w: int, device, dtype) -> Tensor:
    """``(B, H, W, 2)`` pixel centres in [-1, 1] (align_corners=False)."""
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(b, h, w, 2)


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize to ``size`` x ``size`` (area averaging when shrinking)."""
    size = int(size)  # a traced shape is a tensor; sizes are fixed in an exported graph
    if int(x.shape[-1]) == size:
        return x
    side = int(x.shape[-1])
    if side > size:
        if side % size == 0:  # the usual case (S -> S/2, S/4, S/8); exports to ONNX
            return F.avg_pool2d(x, side // size)
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def pyramid(x: Tensor, sizes: list[int]) -> dict[int, Tensor]:
    """``x`` ``(B, C, S, S)`` resized to each of ``sizes``, by :func:`resize`; shrinking
    goes level by level, each from the nearest larger level it divides (the same means as
    shrinking at once, from a quarter of the reads), growing from ``x`` itself."""
    levels = {int(x.shape[-1]): x}
    for size in sorted(set(sizes), reverse=True):
        if size in levels:
            continue
        larger = [s for s in levels if s > size and s % size == 0]
        levels[size] = resize(levels[min(larger)] if larger else x, size)
    return levels


def warp(x: Tensor, flow: Tensor) -> Tensor:
    """Backward warping: ``out(p) = x(p + flow(p))``. x ``(B, C, H, W)``, flow ``(B, 2, h, w)``
    in [-1, 1] units, resized to (H, W); samples outside take the border value."""
    b, _, h, w = x.shape
    f = resize(flow, h) if flow.shape[-1] != w else flow
    grid = identity_grid(b, h, w, x.device, x.dtype) + f.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ------------------------------------------------------------------------------ blocks


def conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class DownEncoder(nn.Module):
    """Three stride-2 stages: ``(B, cin, S, S)`` -> features at S/2, S/4, S/8."""

    def __init__(self, cin: int, channels: tuple[int, int, int]):
        super().__init__()
        stages, prev = [], cin
        for c in channels:
            stages.append(nn.Sequential(conv(prev, c, 2), nn.LeakyReLU(0.2, True),
                                        conv(c, c), nn.LeakyReLU(0.2, True)))  # fmt: skip
            prev = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class SPADEBlock(nn.Module):
    """Residual block whose normalised activations are scaled and shifted per pixel by
    maps predicted from a modulation input (Park et al. 2019). The scale and shift come
    from one 1x1 convolution over a shared 3x3 embedding (9x cheaper than SPADE's 3x3
    pair, which matters at full resolution on a CPU)."""

    def __init__(self, cin: int, cout: int, cmod: int, hidden: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(cin, affine=False)
        self.shared = nn.Sequential(conv(cmod, hidden), nn.ReLU(True))
        self.scale_shift = nn.Conv2d(hidden, 2 * cin, 1)
        self.conv = conv(cin, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.scale_shift.weight)
        nn.init.zeros_(self.scale_shift.bias)

    def forward(self, x: Tensor, modulation: Tensor) -> Tensor:
        gamma, beta = self.scale_shift(self.shared(modulation)).chunk(2, dim=1)
        y = self.norm(x) * (1 + gamma) + beta
        return self.skip(x) + self.conv(F.leaky_relu(y, 0.2))


# ---------------------------------------------------------------------------- networks


@dataclass
class SourceFeatures:
    """A source's per-source work: image ``(N, 3, S, S)`` and features at S/2, S/4, S/8.
    N = B * M for M sources per target (source j of target b at index b * M + j)."""

    image: Tensor
    features: list[Tensor] = field(default_factory=list)


class FlowNetwork(nn.Module):
    """Encodes sources (image + sketch), predicts flow and attention logits from the
    source features and the target sketch's, and warps."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        _, c2, c3 = config.encoder_channels
        f = config.flow_channels
        p = 2 if config.uses_prior else 0
        self.size = config.image_size
        self.source_encoder = DownEncoder(6, config.encoder_channels)
        self.coarse = nn.Sequential(conv(2 * c3 + p, f), nn.LeakyReLU(0.2, True), conv(f, f),
                                    nn.LeakyReLU(0.2, True))  # fmt: skip
        self.fine = nn.Sequential(conv(f + 2 * c2 + p, f // 2), nn.LeakyReLU(0.2, True))
        self.out = conv(f // 2, 3)  # 2 flow channels + 1 attention logit
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.hint_padding = (0, 0)
        """Zero channels appended to the prior's hint at S/8 and S/4
        (:meth:`pad_hint_channels`)."""

    def pad_hint_channels(self, multiple: int = 16) -> None:
        """Append zero channels to the prior's hint, with zero weights, so that the two
        convolutions reading it take a multiple of ``multiple`` channels (130 -> 144 by
        default): the same function, but ONNX Runtime runs a convolution in its blocked
        layout only when its channels divide evenly, and about 3x slower otherwise."""
        if any(self.hint_padding):
            return
        pads = []
        for layer in (self.coarse[0], self.fine[0]):
            pad = -layer.in_channels % multiple
            w = layer.weight.data
            zeros = w.new_zeros(w.shape[0], pad, *w.shape[2:])
            layer.weight = nn.Parameter(torch.cat([w, zeros], 1))
            layer.in_channels += pad
            pads.append(pad)
        self.hint_padding = (pads[0], pads[1])

    def encode_source(self, image: Tensor, sketch: Tensor) -> SourceFeatures:
        """image, sketch ``(N, 3, S, S)`` in [-1, 1] -> :class:`SourceFeatures`."""
        return SourceFeatures(
            image=image, features=self.source_encoder(torch.cat([image, sketch], 1))
        )

    def flow(self, source: SourceFeatures, target: list[Tensor], m: int,
             prior: Tensor | None = None, gate: Tensor | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Flow ``(B * M, 2, S/4, S/4)`` and logits ``(B * M, 1, S/4, S/4)``; the target's
        sketch features (B, ...) are repeated for each of its M sources. With a ``prior``
        ``(B * M, 2, S, S)`` (G v2) the flow is the prior plus the predicted residual, at
        ``(B * M, 2, S, S)``; a ``gate`` ``(B, 1, S/4, S/4)`` scales the residual."""
        t2, t3 = (t.repeat_interleave(m, 0) for t in target[1:])
        h2, h3 = source.features[1:]
        coarse, fine = [h3, t3], [h2, t2]
        if prior is not None:  # in pixels of the full image / 16: about ±1 for a turn
            hint = prior * (self.size / 32.0)
            pad_coarse, pad_fine = self.hint_padding
            s2, s3 = int(h2.shape[-1]), int(h3.shape[-1])  # a traced shape is a tensor
            hints = pyramid(hint, [s2, s3])
            coarse.append(F.pad(hints[s3], (0, 0, 0, 0, 0, pad_coarse)))
            fine.append(F.pad(hints[s2], (0, 0, 0, 0, 0, pad_fine)))
        x = self.coarse(torch.cat(coarse, 1))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.out(self.fine(torch.cat([x, *fine], 1)))
        if prior is None:
            return out[:, :2], out[:, 2:]
        residual = out[:, :2]
        if gate is not None:
            residual = residual * gate.repeat_interleave(m, 0)
        return prior + resize(residual, prior.shape[-1]), out[:, 2:]

    def forward(self, source: SourceFeatures, target: list[Tensor], m: int,
                prior: Tensor | None = None, gate: Tensor | None = None) -> WarpResult:  # fmt: skip
        """Warp (and blend) the sources; ``prior`` ``(B * M, 2, S, S)`` for G v2, and the
        regions it may change, ``gate`` ``(B, 1, S/4, S/4)``, for a gated one."""
        flow, logits = self.flow(source, target, m, prior, gate)
        n = flow.shape[0] // m
        weights = torch.softmax(logits.view(n, m, 1, *logits.shape[-2:]), dim=1)

        flows = pyramid(flow, [int(x.shape[-1]) for x in (source.image, *source.features)])

        def blend(x: Tensor) -> Tensor:
            f = flows[int(x.shape[-1])]
            if m == 1:  # softmax over one source is 1: the plain path
                return warp(x, f)
            warped = warp(x, f).view(n, m, *x.shape[1:])
            return (
                warped
                * resize(weights.flatten(0, 1), x.shape[-1]).view(n, m, 1, x.shape[-2], x.shape[-1])
            ).sum(1)

        return WarpResult(
            image=blend(source.image),
            features=[blend(h) for h in source.features],
            flow=flow.view(n, m, *flow.shape[1:]),
            weights=weights,
        )


@dataclass
class WarpResult:
    """The warped (and, for M > 1, blended) source: image ``(B, 3, S, S)``, features at
    S/2, S/4, S/8; flows ``(B, M, 2, S/4, S/4)`` (G v2: ``(B, M, 2, S, S)``) and attention
    weights ``(B, M, 1, S/4, S/4)`` (softmax over M)."""

    image: Tensor
    features: list[Tensor]
    flow: Tensor
    weights: Tensor


class RenderNetwork(nn.Module):
    """From the target sketch's features up to an RGB image, each scale modulated by the
    warped source features and the warped image."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        c1, c2, c3 = config.encoder_channels
        r3, r2, r1, r0 = config.render_channels
        hid = config.modulation_channels
        self.head = conv(c3, r3)
        self.block3 = SPADEBlock(r3, r2, c3 + 3, hid * 2)
        self.block2 = SPADEBlock(r2 + c2, r1, c2 + 3, hid * 2)
        self.block1 = SPADEBlock(r1 + c1, r0, c1 + 3, hid)
        # full resolution: two light convolutions over the decoded features and the
        # warped image give colours and a blending mask; where the mask is high the output
        # is the warped source itself, which carries the fine detail. It starts high
        # (sigmoid(3) = 0.95), so a fresh G begins as "copy the warped source".
        self.full = nn.Sequential(conv(r0 + 3, r0), nn.LeakyReLU(0.2, True), conv(r0, 4))
        self.gated = config.uses_prior
        if self.gated:  # G v2: the correction starts at exactly zero (and its weight at 0.5)
            nn.init.zeros_(self.full[-1].weight)
            nn.init.zeros_(self.full[-1].bias)
        else:
            nn.init.constant_(self.full[-1].bias[3:], 3.0)

    def forward(self, target: list[Tensor], warped: WarpResult,
                gate: Tensor | None = None) -> Tensor:  # fmt: skip
        """The output ``(B, 3, S, S)``; a G v2's correction is scaled by ``gate``
        ``(B, 1, S/4, S/4)`` where given (enlarged to S)."""
        t1, t2, t3 = target
        w1, w2, w3 = warped.features
        img = warped.image
        s = img.shape[-1]

        def up(x: Tensor) -> Tensor:
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

        x = self.head(t3)
        x = up(self.block3(x, torch.cat([w3, resize(img, s // 8)], 1)))
        x = up(self.block2(torch.cat([x, t2], 1), torch.cat([w2, resize(img, s // 4)], 1)))
        x = up(self.block1(torch.cat([x, t1], 1), torch.cat([w1, resize(img, s // 2)], 1)))
        out = self.full(torch.cat([F.leaky_relu(x, 0.2), img], 1))
        if self.gated:  # a correction of the warped image, none at the start
            weight = torch.sigmoid(out[:, 3:])
            if gate is not None:
                weight = weight * resize(gate, s)
            return img + weight * 2.0 * torch.tanh(out[:, :3])
        mask = torch.sigmoid(out[:, 3:])
        return mask * img + (1 - mask) * torch.tanh(out[:, :3])


@dataclass
class GeneratorOutput:
    image: Tensor
    warped: WarpResult


class Generator(nn.Module):
    """G. Images and sketches are ``(.., 3, S, S)`` in [-1, 1]."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        self.sketch_encoder = DownEncoder(3, config.encoder_channels)
        self.flow = FlowNetwork(config)
        self.render = RenderNetwork(config)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> Generator:
        """Load a model file (or training checkpoint); None loads the shipped one."""
        return load_model(
            cls,
            GeneratorConfig,
            "generator",
            model_file("generator") if path is None else Path(path),
        )

    def with_gate(self) -> Generator:
        """This G v2 with ``correction_regions`` on and the same weights (itself if it is
        gated already): trained with the gate open, it changes the warp only where the
        gate lets it at inference."""
        if self.config.correction_regions:
            return self
        gated = Generator(replace(self.config, correction_regions=True))
        gated.load_state_dict(self.state_dict())
        return gated.train(self.training)

    def encode_sources(self, images: Tensor, sketches: Tensor) -> SourceFeatures:
        """Per-source work, done once: ``(B, M, 3, S, S)`` images and sketches."""
        return self.flow.encode_source(images.flatten(0, 1), sketches.flatten(0, 1))

    def render_frame(
        self,
        sources: SourceFeatures,
        target_sketch: Tensor,
        m: int,
        prior: Tensor | None = None,
        gate: Tensor | None = None,
    ) -> GeneratorOutput:
        """Per-frame work: target sketch ``(B, 3, S, S)`` with M sources per target; G v2
        also takes each source's prior flow, ``(B, M, 2, S, S)``, and a G v2 with
        ``correction_regions`` the regions it may change, ``gate`` ``(B, 1, S/4, S/4)``
        (:func:`freehead.models.regions.gate_regions`)."""
        if (prior is not None) != self.config.uses_prior:
            raise ValueError("G v2 (flow_prior: mesh) needs a prior flow per source, "
                             "and the plain G takes none")  # fmt: skip
        if (gate is not None) != self.config.correction_regions:
            raise ValueError("a G v2 with correction_regions needs a gate per target, "
                             "and other Gs take none")  # fmt: skip
        target = self.sketch_encoder(target_sketch)
        flat = None if prior is None else prior.flatten(0, 1)
        warped = self.flow(sources, target, m, flat, gate)
        return GeneratorOutput(image=self.render(target, warped, gate), warped=warped)

    def forward(self, images: Tensor, sketches: Tensor, target_sketch: Tensor,
                prior: Tensor | None = None, gate: Tensor | None = None) -> GeneratorOutput:  # fmt: skip
        """images, sketches ``(B, M, 3, S, S)``; target_sketch ``(B, 3, S, S)``; G v2:
        prior flows ``(B, M, 2, S, S)``; gated G v2: ``gate`` ``(B, 1, S/4, S/4)``."""
        return self.render_frame(
            self.encode_sources(images, sketches), target_sketch, images.shape[1], prior, gate
        )

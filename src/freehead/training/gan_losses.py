"""The generator's losses: hinge adversarial, feature matching, a perceptual loss
(MobileNetV2 or VGG19 on ImageNet features when their files are on the machine, otherwise
a documented fallback, L1 + multi-scale SSIM, never silently) and an identity loss (FaceRes).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from freehead.checkpoint import torch_hub_checkpoints
from freehead.errors import FreeheadError
from freehead.models.identity import FaceIdentity, identity_distance
from freehead.models.perceptual import PerceptualDistance, PerceptualFeatures
from freehead.models.pretrained import available
from freehead.models.regions import free_regions

log = logging.getLogger("freehead.train")

VGG19_WEIGHTS = "vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG19 file name, looked for in the torch hub cache."""


def hinge_critic_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Critic side: mean over critics of E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))]."""
    terms = [
        F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake, strict=True)
    ]
    return torch.stack(terms).mean()


def hinge_generator_loss(fake: list[list[Tensor]]) -> Tensor:
    """Generator side: mean over critics of -E[D(fake)]."""
    return torch.stack([-f[-1].mean() for f in fake]).mean()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """L1 between the critics' intermediate activations on real and generated images
    (real ones detached), averaged over critics and layers."""
    terms = [
        (f - r.detach()).abs().mean()
        for rs, fs in zip(real, fake, strict=True)
        for r, f in zip(rs[:-1], fs[:-1], strict=True)
    ]
    return torch.stack(terms).mean()


def correction_weights(keypoints: Tensor, prior: Tensor, margin: float = 0.5,
                       stretch: float = 1.5) -> Tensor:  # fmt: skip
    """Where G v2's rendering is charged for changing the warped image (1) and where it is
    free to (0), ``(B, 1, S, S)``: what the mesh warp cannot get right is free
    (:func:`freehead.models.regions.free_regions`: the mouth and eye ellipses, stretched or
    folded pixels, samples beyond the source's frame). ``keypoints`` ``(B, 68, 3)`` crop
    coordinates ([-1, 1]); ``prior`` ``(B, 2, S, S)`` in grid units."""
    return (~free_regions(keypoints, prior, margin, stretch)).to(prior.dtype)[:, None]


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_map(a: Tensor, b: Tensor) -> Tensor:
    """SSIM per pixel of images in [0, 1], ``(B, C, H, W)`` (Gaussian 11x11, sigma 1.5;
    computed inside the image, so the map is 10 pixels smaller each way)."""
    c = a.shape[1]
    w = _gaussian_window().to(a).expand(c, 1, -1, -1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, w, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    ma, mb = blur(a), blur(b)
    va, vb = blur(a * a) - ma * ma, blur(b * b) - mb * mb
    cov = blur(a * b) - ma * mb
    return ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))


def multiscale_ssim_loss(a: Tensor, b: Tensor, scales: int = 3) -> Tensor:
    """1 - the mean SSIM over ``scales`` halvings, images in [-1, 1]. (A mean of scales,
    not Wang et al.'s weighted product, which is unstable early in training.)"""
    a, b = (a + 1) / 2, (b + 1) / 2
    values = []
    for i in range(scales):
        if i:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        values.append(ssim_map(a, b).mean())
    return 1 - torch.stack(values).mean()


# VGG19's convolution layers ("M" = max-pool), in torchvision's numbering of `features`.
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_VGG_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
_VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # pix2pixHD's
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG19's convolutional part up to relu5_1, laid out like torchvision's ``features``
    so its state dict loads as it is."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = 3
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(prev, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                prev = int(v)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG_TAPS:
                out.append(x)
        return out


def find_vgg19_weights(path: str | Path | None = None) -> Path | None:
    """``path`` if given, else torchvision's cached VGG19 file, if it exists."""
    if path is not None:
        return Path(path) if Path(path).is_file() else None
    cached = torch_hub_checkpoints() / VGG19_WEIGHTS
    return cached if cached.is_file() else None


PERCEPTUAL_KINDS = ("vgg19", "mobilenet_v2", "l1_msssim")
"""The perceptual losses a run config may ask for (``perceptual:``)."""
IDENTITY_KINDS = ("faceres", "none")
"""The identity losses a run config may ask for (``identity:``)."""


def default_perceptual(vgg_weights: str | Path | None = None) -> str:
    """The perceptual loss a new run gets when its config leaves ``perceptual`` unset: VGG19
    when its file is found, else MobileNetV2 when its files are cached, else L1 + MS-SSIM
    (with a warning naming the fix)."""
    if find_vgg19_weights(vgg_weights) is not None:
        return "vgg19"
    if available("mobilenet_v2"):
        return "mobilenet_v2"
    log.warning("no VGG19 file (%s) and no MobileNetV2 files; the perceptual loss is L1 + "
                "multi-scale SSIM (freehead data fetch-models fetches MobileNetV2)",
                vgg_weights or VGG19_WEIGHTS)  # fmt: skip
    return "l1_msssim"


def default_identity() -> str:
    """The identity loss a new run gets when its config leaves ``identity`` unset: FaceRes
    when its files are cached, else none (with a warning naming the fix)."""
    if available("faceres"):
        return "faceres"
    log.warning("no FaceRes files; training without an identity loss "
                "(freehead data fetch-models fetches them)")  # fmt: skip
    return "none"


class PerceptualLoss(nn.Module):
    """The perceptual loss of a run. ``kind``: ``"vgg19"`` (VGG19 feature L1, pix2pixHD's
    layers and weights), ``"mobilenet_v2"`` (the LPIPS-style MobileNetV2 distance of
    :mod:`freehead.models.perceptual`) or ``"l1_msssim"`` (L1 + multi-scale SSIM).
    ``None`` is what runs started before the choice was recorded in their config get:
    VGG19 when its weights are found, else L1 + MS-SSIM with a warning (new runs resolve
    it with :func:`default_perceptual` and record the answer). ``self.kind`` says which
    runs (``"l1+ms-ssim"`` for the last), ``note`` why."""

    def __init__(self, weights: str | Path | None = None, kind: str | None = None):
        super().__init__()
        if kind is not None and kind not in PERCEPTUAL_KINDS:
            raise FreeheadError(f"perceptual: {kind!r} is unknown; use one of "
                                f"{', '.join(PERCEPTUAL_KINDS)}")  # fmt: skip
        self.vgg: VGG19Features | None = None
        self.mobilenet: PerceptualDistance | None = None
        if kind == "mobilenet_v2":
            self.mobilenet = PerceptualDistance(PerceptualFeatures())
            self.kind, self.note = "mobilenet_v2", "MobileNetV2 (nsfwjs@4.4.0) up to block_10"
            return
        found = find_vgg19_weights(weights) if kind != "l1_msssim" else None
        if kind == "vgg19" and found is None:
            raise FreeheadError(f"perceptual: vgg19 needs {weights or VGG19_WEIGHTS} (set "
                                "vgg_weights: PATH, or use perceptual: mobilenet_v2)")  # fmt: skip
        if found is None:
            self.kind = "l1+ms-ssim"
            if kind == "l1_msssim":
                self.note = "L1 + multi-scale SSIM (the run's config: perceptual: l1_msssim)"
            else:
                self.note = (
                    f"no VGG19 ImageNet weights ({weights or VGG19_WEIGHTS} not found); the "
                    "perceptual loss is L1 + multi-scale SSIM instead"
                )
                log.warning("%s", self.note)
            return
        self.vgg = _load_vgg19(found)
        self.kind = "vgg19"
        self.note = f"VGG19 ImageNet weights from {found}"

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        """Scalar loss between ``(B, 3, H, W)`` images in [-1, 1] (gradients reach ``output``)."""
        if self.mobilenet is not None:
            return self.mobilenet(output, target.detach()).mean()
        if self.vgg is None:
            return (output - target).abs().mean() + multiscale_ssim_loss(output, target)
        fo, ft = self.vgg(output), self.vgg(target)
        return sum(
            w * (a - b.detach()).abs().mean() for w, a, b in zip(_VGG_WEIGHTS, fo, ft, strict=True)
        )


class IdentityLoss(nn.Module):
    """The cosine distance between FaceRes' identity features of the output and of its
    sources, on the face region (:class:`~freehead.models.identity.FaceIdentity`); a frozen
    network, for training only (the evaluation measures identity with dlib's)."""

    def __init__(self, identity: FaceIdentity | None = None) -> None:
        super().__init__()
        self.identity = FaceIdentity() if identity is None else identity

    def forward(self, output: Tensor, sources: Tensor) -> Tensor:
        """``(B, 3, H, W)`` outputs, ``(B, N, 3, H, W)`` sources in [-1, 1] -> the mean
        distance to the sources' mean feature (gradients reach ``output`` only)."""
        b, n = sources.shape[:2]
        with torch.no_grad():
            wanted = self.identity(sources.flatten(0, 1)).view(b, n, -1).mean(1)
        return identity_distance(self.identity(output), wanted).mean()


def _load_vgg19(found: Path) -> VGG19Features:
    vgg = VGG19Features()
    state = torch.load(found, map_location="cpu", weights_only=True)  # no code runs
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    missing = vgg.features.load_state_dict(feats, strict=False).missing_keys
    if missing:
        raise ValueError(f"{found} is not torchvision's VGG19 (missing {missing[:3]})")
    return vgg.requires_grad_(False).eval()

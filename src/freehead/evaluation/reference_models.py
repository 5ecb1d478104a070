"""LPIPS and FID need networks trained on ImageNet (AlexNet/VGG for LPIPS, Inception-v3
for FID) that cannot be downloaded on the machines freehead is built on. These metrics
are reported only when their weights are present; otherwise they are null, with the
reason, and never estimated by anything else.

Where they are looked for: the ``lpips`` package (which carries its linear layers) with
torchvision's AlexNet weights in the torch hub cache, and ``pytorch_fid`` with its
Inception weights in the torch hub cache. Computing them from those packages is the next
step once a machine has them; until then the suite says they are missing.
"""

from __future__ import annotations

import importlib.util

from freehead.checkpoint import torch_hub_checkpoints

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def _why_missing(package: str, weights: str) -> str | None:
    if importlib.util.find_spec(package) is None:
        return f"the {package} package is not installed (and {weights} is needed in {torch_hub_checkpoints()})"
    if not (torch_hub_checkpoints() / weights).is_file():
        return f"no {weights} in {torch_hub_checkpoints()}; freehead never downloads weights"
    return None


def missing_reference_metrics() -> dict[str, str]:
    """``{"lpips": reason, "fid": reason}`` for each metric that cannot be computed here.

    Even with the packages and weights present the suite does not compute them yet (it has
    never run on a machine that has them), so then the reason says that instead of
    pretending."""
    out = {}
    for name, package, weights in (
        ("lpips", "lpips", ALEXNET_WEIGHTS),
        ("fid", "pytorch_fid", INCEPTION_WEIGHTS),
    ):
        reason = _why_missing(package, weights)
        out[name] = (
            reason
            or f"{package} and {weights} are present, but freehead does not compute {name} yet"
        )
    return out

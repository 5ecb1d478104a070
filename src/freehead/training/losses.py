"""The estimators' losses (Free-HeadGAN §3.1-3.2; docs/training.md, "What the estimators
learn").

Squared norms are summed over coordinates and averaged over keypoints and the batch, so
each term is "mean squared distance per keypoint"; L1 terms are averaged over every
element. Weights live in the configs, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from freehead.geometry import adapt, edge_lengths, gaze_from_eye_mesh
from freehead.models.keypoints import KeypointPrediction
from freehead.perception.eyes import TEMPLATE


def mean_squared_distance(a: Tensor, b: Tensor) -> Tensor:
    """Mean over points of the squared Euclidean distance. ``(..., N, 3)`` x2 -> ``()``."""
    return (a - b).pow(2).sum(-1).mean()


def angular_error_deg(a: Tensor, b: Tensor, eps: float = 1e-7) -> Tensor:
    """Angle between vectors in degrees, ``(..., 3)`` x2 -> ``(...)``; L^g = (180/pi) arccos(g.g*)
    for unit vectors, with a gradient that stays finite when the vectors agree."""
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    cross = torch.linalg.cross(a, b, dim=-1)
    sin = (cross.pow(2).sum(-1) + eps * eps).sqrt()
    return torch.rad2deg(torch.atan2(sin, (a * b).sum(-1)))


@dataclass(frozen=True)
class KeypointTargets:
    """Pseudo-labels of B frames: keypoints l ``(B, K, 3)``, rotation R* ``(B, 3, 3)``,
    translation t* ``(B, 3)``, scale s* ``(B,)`` (crop coordinates)."""

    keypoints: Tensor
    rotation: Tensor
    translation: Tensor
    scale: Tensor


@dataclass(frozen=True)
class KeypointLossWeights:
    """lambda_p, lambda_rec, lambda_R, lambda_d of the paper; lambda_t and lambda_s anchor
    t and s to the pseudo-label pose, which fixes the unit of p_can to the head model's."""

    keypoints: float = 100.0
    reconstruction: float = 100.0
    rotation: float = 1.0
    deformation: float = 10.0
    translation: float = 100.0
    scale: float = 100.0


def keypoint_losses(
    source: KeypointPrediction,
    target: KeypointPrediction,
    source_labels: KeypointTargets,
    target_labels: KeypointTargets,
    weights: KeypointLossWeights,
) -> dict[str, Tensor]:
    """E_can's loss on a pair of frames of the same clip (s and t). Returns each term and
    their weighted sum under ``"loss"``.

    L^p   = |p^s - l^s|^2 + |p^t - l^t|^2
    L^rec = |p^{s,rec} - l^s|^2 + |p^{t,rec} - l^t|^2 with
            p^{t,rec} = s_t R_t p^{s,can} + t_t + d_t (and s <-> t)
    L^R   = |R^s - R*^s|^2 + |R^t - R*^t|^2 (Frobenius)
    L^d   = |d^s|^2 + |d^t|^2
    L^t, L^s: squared errors of the translation and the scale.
    """
    pairs = ((source, source_labels), (target, target_labels))
    can_s, can_t = source.canonical, target.canonical
    rec_t = adapt(can_s, target.rotation, target.translation, target.scale, target.deformation)
    rec_s = adapt(can_t, source.rotation, source.translation, source.scale, source.deformation)
    terms = {
        "keypoints": sum(mean_squared_distance(p.keypoints, lab.keypoints) for p, lab in pairs),
        "reconstruction": mean_squared_distance(rec_t, target_labels.keypoints)
        + mean_squared_distance(rec_s, source_labels.keypoints),
        "rotation": sum(
            (p.rotation - lab.rotation).pow(2).sum((-1, -2)).mean() for p, lab in pairs
        ),
        "deformation": sum(p.deformation.pow(2).sum(-1).mean() for p, _ in pairs),
        "translation": sum(
            (p.translation - lab.translation).pow(2).sum(-1).mean() for p, lab in pairs
        ),
        "scale": sum((p.scale - lab.scale).pow(2).mean() for p, lab in pairs),
    }
    terms["loss"] = sum(getattr(weights, name) * value for name, value in terms.items())
    return terms


@dataclass(frozen=True)
class GazeLossWeights:
    """lambda_v, lambda_e, lambda_g of the paper. Vertices are in eye coordinates (unit =
    the inter-ocular distance), where a 1° gaze error moves the iris by ~0.002."""

    vertices: float = 10.0
    edges: float = 10.0
    gaze: float = 0.01


def gaze_losses(vertices: Tensor, targets: Tensor, weights: GazeLossWeights) -> dict[str, Tensor]:
    """E_gaze's loss on eye meshes ``(N, V, 3)`` against pseudo-label meshes ``(N, V, 3)``
    (same frame). L^v = |v - v*|_1, L^e = |e - e*|_1 over the template's edges,
    L^g = angle between the meshes' gaze vectors in degrees."""
    terms = {
        "vertices": (vertices - targets).abs().mean(),
        "edges": (edge_lengths(TEMPLATE, vertices) - edge_lengths(TEMPLATE, targets)).abs().mean(),
        "gaze": angular_error_deg(
            gaze_from_eye_mesh(TEMPLATE, vertices), gaze_from_eye_mesh(TEMPLATE, targets)
        ).mean(),
    }
    terms["loss"] = sum(getattr(weights, name) * value for name, value in terms.items())
    return terms

"""Does the MobileNetV2 distance rank a different person above degradations of the same crop?

    .venv/bin/python benchmarks/perceptual_check.py [--samples data/samples] [--threads 2]
        [--json FILE]

On the training people's still faces (``people/train``; never the benchmark people of
``portraits/unseen``), resized to 256²: each crop against its 3-px shift, Gaussian blur
(sigma 2), JPEG quality 10 and Gaussian noise (sigma 25/255), and against every crop of
every other person. A crop passes when its nearest other person is farther than all four
degradations, and the ordering passes when JPEG 10 and noise are both farther than the
shift. Plain L1 is printed beside it. Then forward + backward time at batch 8, 256², with
batch norm folded and not.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from freehead.data.people import training_faces
from freehead.io_utils import atomic_write_json
from freehead.models.perceptual import PerceptualFeatures, feature_distance, unit_normalise

SIZE = 256
DEGRADATIONS = ("shift3", "blur2", "jpeg10", "noise25")


def load(path: Path) -> np.ndarray:
    """A face crop as ``(SIZE, SIZE, 3)`` uint8."""
    image = Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def degrade(image: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """One degradation of a ``(H, W, 3)`` uint8 crop, same shape."""
    if kind == "shift3":
        padded = np.pad(image, ((3, 0), (3, 0), (0, 0)), mode="edge")
        return padded[:SIZE, :SIZE]
    if kind == "blur2":
        return _blur(image, 2.0)
    if kind == "jpeg10":
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=10)
        return np.asarray(Image.open(buffer).convert("RGB"))
    noise = np.random.default_rng(seed).normal(0.0, 25.0, image.shape)
    return np.clip(image + noise, 0, 255).round().astype(np.uint8)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).float()
    x = torch.from_numpy(image).permute(2, 0, 1)[:, None].float()
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return x[:, 0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()


def features(net: PerceptualFeatures, images: torch.Tensor) -> list[torch.Tensor]:
    """Unit-normalised features of ``(N, 3, H, W)``, in batches of 8."""
    parts = [net(images[i : i + 8]) for i in range(0, len(images), 8)]
    return [unit_normalise(torch.cat(layer)) for layer in zip(*parts, strict=True)]


def lpips(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Distance ``(N,)`` between already-normalised features (normalising again is a no-op)."""
    return feature_distance(a, b)


def pair_distances(clean, variants, people, distance) -> dict[str, np.ndarray]:
    """Per crop: the distance to each degradation and to the nearest other person."""
    n = len(people)
    out = {kind: distance(clean, variants[kind]).numpy() for kind in DEGRADATIONS}
    nearest = np.full(n, np.inf)
    for i in range(n):
        others = [j for j in range(n) if people[j] != people[i]]
        d = distance(_take(clean, [i] * len(others)), _take(clean, others)).numpy()
        nearest[i] = d.min()
    out["other_person"] = nearest
    return out


def _take(x, index: list[int]):
    return [f[index] for f in x] if isinstance(x, list) else x[index]


def summary(d: dict[str, np.ndarray]) -> dict[str, float]:
    """Medians, and the fractions of crops that pass each check."""
    worst = np.max([d[k] for k in DEGRADATIONS], axis=0)
    out = {f"median_{k}": float(np.median(v)) for k, v in d.items()}
    out["person_beyond_all_degradations"] = float(np.mean(d["other_person"] > worst))
    out["jpeg_and_noise_beyond_shift"] = float(
        np.mean((d["jpeg10"] > d["shift3"]) & (d["noise25"] > d["shift3"]))
    )
    for k in DEGRADATIONS:
        out[f"{k}_at_or_beyond_person"] = float(np.mean(d[k] >= d["other_person"]))
    out["min_margin_person_minus_worst"] = float(np.min(d["other_person"] - worst))
    return out


def timing(fold: bool, repeats: int = 3) -> float:
    """Median seconds of a loss step at batch 8, 256²: the target's features without
    gradients, the output's forward and backward."""
    net = PerceptualFeatures(fold=fold)
    x = torch.rand(8, 3, SIZE, SIZE) * 2 - 1
    times = []
    for _ in range(repeats + 1):
        y = x.clone().requires_grad_(True)
        start = time.perf_counter()
        with torch.no_grad():
            target = net(x)
        loss = feature_distance(net(y), target)
        loss.sum().backward()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main() -> None:
    """Print (and optionally write) the check's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="data/samples")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = training_faces(args.samples)
    people = [f.parent.name for f in files]
    crops = np.stack([load(f) for f in files])
    degraded = {k: np.stack([degrade(c, k, i) for i, c in enumerate(crops)]) for k in DEGRADATIONS}
    net = PerceptualFeatures()
    figures = {"crops": len(files), "people": len(set(people))}
    with torch.no_grad():
        clean = to_tensor(crops)
        variants = {k: to_tensor(v) for k, v in degraded.items()}
        fc, fv = features(net, clean), {k: features(net, v) for k, v in variants.items()}
        figures["mobilenet_v2"] = summary(pair_distances(fc, fv, people, lpips))
        l1 = lambda a, b: (a - b).abs().mean((1, 2, 3))  # noqa: E731
        figures["l1"] = summary(pair_distances(clean, variants, people, l1))
    figures["seconds_fwd_bwd_b8_256_folded"] = timing(True)
    figures["seconds_fwd_bwd_b8_256_unfolded"] = timing(False)
    for name in ("mobilenet_v2", "l1"):
        print(name)
        for key, value in figures[name].items():
            print(f"  {key:36s} {value:.4f}")
    print(f"crops {figures['crops']} of {figures['people']} people")
    folded, unfolded = (
        figures["seconds_fwd_bwd_b8_256_folded"],
        figures["seconds_fwd_bwd_b8_256_unfolded"],
    )
    print(f"fwd+bwd b8 256²: folded {folded:.3f} s, unfolded {unfolded:.3f} s "
          f"(ratio {folded / unfolded:.2f})")  # fmt: skip
    if args.json:
        atomic_write_json(Path(args.json), figures)


if __name__ == "__main__":
    main()

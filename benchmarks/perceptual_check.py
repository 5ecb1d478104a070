"""Does the MobileNetV2 distance rank a different person above degradations of the same crop?

    .venv/bin/python benchmarks/perceptual_check.py [--samples data/samples] [--threads 2]
        [--layers NAME,NAME,...] [--json FILE]

On the training people's still faces (``people/train``; never the benchmark people of
``portraits/unseen``), resized to 256²: each crop against its 3-px shift, Gaussian blur
(sigma 2), JPEG quality 10 and Gaussian noise (sigma 25/255), and against every crop of
every other person. The default layers were chosen on these crops, so a second set held
apart from that choice is measured too: frames of the filmed training people's videos
(``people.json``'s video faces, cut as the stills are), each against its degradations and
its nearest other person among the stills and the other videos' frames (stills that dlib
linked to a filmed person count as other people: they are, see ``docs/models.md``).
A crop passes when its nearest other person is farther than all four
degradations, and the ordering passes when JPEG 10 and noise are both farther than the
shift. Printed: the mean distance of each degradation and of the nearest other person, the
number of crops passing each check, the worst margin; plain L1 beside. Then forward +
backward time at batch 8, 256², with batch norm folded and not. ``--layers`` measures
another layer set (default: ``freehead.models.perceptual.LAYERS``; the set before it was
``Conv1_relu,block_3_expand_relu,block_6_expand_relu,block_10_expand_relu,block_10_project_BN``).
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

from freehead.data.people import cut_portrait, read_people, training_faces
from freehead.io_utils import atomic_write_json
from freehead.media import open_frames
from freehead.models.perceptual import LAYERS, PerceptualFeatures, feature_distance, unit_normalise

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


def pair_distances(clean, variants, people, distance, queries=None) -> dict[str, np.ndarray]:
    """Per query crop (default: all): the distance to each of its degradations (``variants``
    hold the queries' only) and to the nearest crop of another person."""
    n = len(people)
    queries = list(range(n)) if queries is None else list(queries)
    mine = _take(clean, queries)
    out = {kind: distance(mine, variants[kind]).numpy() for kind in DEGRADATIONS}
    nearest = np.full(len(queries), np.inf)
    for k, i in enumerate(queries):
        others = [j for j in range(n) if people[j] != people[i]]
        d = distance(_take(clean, [i] * len(others)), _take(clean, others)).numpy()
        nearest[k] = d.min()
    out["other_person"] = nearest
    return out


def video_faces(samples: Path) -> tuple[np.ndarray, list[str]]:
    """The filmed training people's video faces (``people.json``), cut as the stills are:
    ``(N, SIZE, SIZE, 3)`` uint8 and a label per face (``NAME@video``)."""
    crops, labels = [], []
    for person in read_people(samples):
        for face in person.faces if person.split == "train" else ():
            if face.frame is not None:
                source = open_frames(samples / face.source)
                image = next(iter(source.frames(limit=1, start=face.frame)))
                cut = Image.fromarray(cut_portrait(image, face.box)[0])
                crops.append(np.asarray(cut.resize((SIZE, SIZE), Image.BICUBIC)))
                labels.append(f"{person.name}@video")
    return np.stack(crops), labels


def measure(net, crops: np.ndarray, people: list[str], queries: list[int]) -> dict:
    """MobileNetV2's and L1's figures for the ``queries`` among ``crops``."""
    degraded = {k: np.stack([degrade(crops[i], k, i) for i in queries]) for k in DEGRADATIONS}
    with torch.no_grad():
        clean = to_tensor(crops)
        variants = {k: to_tensor(v) for k, v in degraded.items()}
        fc, fv = features(net, clean), {k: features(net, v) for k, v in variants.items()}
        l1 = lambda a, b: (a - b).abs().mean((1, 2, 3))  # noqa: E731
        return {
            "crops": len(queries),
            "mobilenet_v2": summary(pair_distances(fc, fv, people, lpips, queries)),
            "l1": summary(pair_distances(clean, variants, people, l1, queries)),
        }


def print_set(name: str, figures: dict) -> None:
    """One table: MobileNetV2 beside L1."""
    n = figures["crops"]
    print(f"{name}: {n} crops")
    print(f"  {'':36s} {'mobilenet_v2':>12s} {'l1':>8s}")
    for key, value in figures["mobilenet_v2"].items():
        other = figures["l1"][key]
        if key.startswith("crops_"):
            print(f"  {key:36s} {value:>9d}/{n:<2d} {other:>5d}/{n:<2d}")
        else:
            print(f"  {key:36s} {value:12.4f} {other:8.4f}")


def _take(x, index: list[int]):
    return [f[index] for f in x] if isinstance(x, list) else x[index]


def summary(d: dict[str, np.ndarray]) -> dict[str, float | int]:
    """Means and medians, and the numbers of crops that pass each check."""
    worst = np.max([d[k] for k in DEGRADATIONS], axis=0)
    out = {f"mean_{k}": float(np.mean(v)) for k, v in d.items()}
    out |= {f"median_{k}": float(np.median(v)) for k, v in d.items()}
    out["crops_person_beyond_all_degradations"] = int(np.sum(d["other_person"] > worst))
    out["crops_jpeg_and_noise_beyond_shift"] = int(
        np.sum((d["jpeg10"] > d["shift3"]) & (d["noise25"] > d["shift3"]))
    )
    for k in DEGRADATIONS:
        out[f"crops_{k}_at_or_beyond_person"] = int(np.sum(d[k] >= d["other_person"]))
    out["min_margin_person_minus_worst"] = float(np.min(d["other_person"] - worst))
    return out


def timing(fold: bool, layers: tuple[str, ...] = LAYERS, repeats: int = 3) -> float:
    """Median seconds of a loss step at batch 8, 256²: the target's features without
    gradients, the output's forward and backward."""
    net = PerceptualFeatures(layers=layers, fold=fold)
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
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layers = tuple(args.layers.split(","))
    samples = Path(args.samples)
    files = training_faces(samples)
    people = [f.parent.name for f in files]
    crops = np.stack([load(f) for f in files])
    net = PerceptualFeatures(layers=layers)
    figures = {"people": len(set(people)), "layers": list(layers)}
    figures["stills"] = measure(net, crops, people, list(range(len(crops))))
    frames, labels = video_faces(samples)
    everything = np.concatenate([crops, frames])
    held_out = list(range(len(crops), len(everything)))
    figures["video_frames"] = measure(net, everything, people + labels, held_out)
    figures["seconds_fwd_bwd_b8_256_folded"] = timing(True, layers)
    figures["seconds_fwd_bwd_b8_256_unfolded"] = timing(False, layers)
    print(f"layers {', '.join(layers)}")
    print_set(f"training stills ({figures['people']} people; the layers were chosen here)",
              figures["stills"])  # fmt: skip
    print_set("held apart: video frames of the filmed training people", figures["video_frames"])
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

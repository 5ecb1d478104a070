"""Validation people: faces no training reads and no benchmark holds, for choosing between
trained models (``freehead data fetch-validation``).

The ``unseen`` protocol's people must never guide a choice, and the training stills cannot
say how a G does on a face it never saw (it learned them). This step cuts the faces of
six group photos from an npm package the sample data does not use (``@vladmandic/face-api``'s
demo images), groups them into people by dlib descriptor as :mod:`freehead.data.people`
does, and drops every person within :data:`~freehead.perception.identity.SAME_PERSON` of
any face of the sample data (benchmark or training), so no one here is anyone there.

Written into the validation folder (``people.json``-style record last)::

    images/face-api/sample<k>.jpg   the package's photos, checked by sha256
    people/<person>/<k>.png         every face of a validation person, cut like a portrait
    validation.json                 people, their faces' sources and boxes; inputs' key

``benchmarks/gaze_transfer_check.py --stills DIR/people`` runs ``unseen``'s measurer on them.
"""

from __future__ import annotations

import hashlib
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
    _write_png,
    cut_portrait,
    face_box,
    face_descriptor,
    find_faces,
    group_faces,
    recorded_descriptors,
)
from freehead.data.samples import Package, SampleFile, fetch_package
from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_json
from freehead.media import read_image
from freehead.perception.identity import SAME_PERSON, IdentityEncoder
from freehead.perception.tracker import FaceTracker

log = logging.getLogger(__name__)

DEFAULT_DIR = Path("data/val")
RECORD_FILE = "validation.json"
PEOPLE_DIR = "people"

_DEMO = {
    "sample1.jpg": "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
    "sample2.jpg": "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
    "sample3.jpg": "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
    "sample4.jpg": "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
    "sample5.jpg": "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
    "sample6.jpg": "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
}
FACE_API = Package(
    spec="@vladmandic/face-api@1.7.15",
    registry="npm",
    archive="vladmandic-face-api-1.7.15.tgz",
    sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    licence="MIT",
    files=tuple(SampleFile(f"package/demo/{n}", f"images/face-api/{n}", d, "face_api_group")
                for n, d in _DEMO.items()),
)  # fmt: skip
"""The photos of the validation people: group photos of young women, 3-5 per photo,
faces about 100-250 px; several women appear in more than one."""


@dataclass(frozen=True)
class ValidationFace:
    """A face of a validation photo: its photo (inside the folder) and landmark box."""

    source: str
    box: tuple[int, int, int, int]


def validation_groups(
    descriptors: np.ndarray, known: np.ndarray, threshold: float = SAME_PERSON
) -> list[list[int]]:
    """Faces ``(N, 128)`` grouped into people (single linkage, as the sample data's), less
    every person with a face closer than ``threshold`` to any ``known`` ``(M, 128)`` face."""
    groups = group_faces(list(descriptors), threshold)
    if len(known) == 0:
        return groups
    dist = np.linalg.norm(descriptors[:, None] - known[None], axis=-1).min(axis=1)
    return [g for g in groups if bool((dist[g] >= threshold).all())]


def validation_key() -> str:
    """A hash of the inputs and settings; the step is skipped while the record holds it."""
    settings = (PEOPLE_FORMAT, SAME_PERSON, MIN_FACE_PX, MARGIN, DESCRIPTOR_CUT)
    parts = [*map(str, settings), FACE_API.sha256, *_DEMO.values()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _find(folder: Path) -> tuple[list[ValidationFace], np.ndarray]:
    """Every face of the package's photos and its ``(N, 128)`` descriptors."""
    faces: list[ValidationFace] = []
    descriptors: list[np.ndarray] = []
    encoder = IdentityEncoder()
    with FaceTracker(video=False, max_faces=4) as tracker:
        for f in FACE_API.files:
            image = read_image(folder / f.path)
            for landmarks in find_faces(tracker, image):
                box = face_box(landmarks)
                faces.append(ValidationFace(f.path, box))
                descriptors.append(face_descriptor(encoder, image, box))
    return faces, np.asarray(descriptors, np.float64).reshape(len(faces), -1)


def _write(folder: Path, faces: Sequence[ValidationFace], groups: list[list[int]]) -> dict:
    """Write the people's portraits (the folder's ``people/`` replaced as a whole) and
    return the record."""
    people = []
    with tempfile.TemporaryDirectory(prefix=".people-", dir=folder) as tmp:
        for k, group in enumerate(groups, 1):
            name = f"val_{k:02d}"
            records = []
            for i, face_index in enumerate(group):
                face = faces[face_index]
                rel = f"{PEOPLE_DIR}/{name}/{i}.png"
                cut, _, _ = cut_portrait(read_image(folder / face.source), face.box)
                digest = _write_png(Path(tmp) / rel, cut)
                records.append({"source": face.source, "box": list(face.box), "image": rel,
                                "sha256": digest})  # fmt: skip
            people.append({"name": name, "faces": records})
        out = folder / PEOPLE_DIR
        if out.exists():
            shutil.rmtree(out)
        Path(tmp, PEOPLE_DIR).mkdir(exist_ok=True)
        Path(tmp, PEOPLE_DIR).rename(out)
    return {"format": 1, "key": validation_key(), "package": FACE_API.spec,
            "faces": len(faces), "people": people}  # fmt: skip


def _up_to_date(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    images = [f["image"] for p in record.get("people", []) for f in p["faces"]]
    if record.get("key") != validation_key() or not all((folder / i).is_file() for i in images):
        return None
    return record


def build_validation(
    folder: str | Path = DEFAULT_DIR, samples: str | Path = "data/samples"
) -> dict:
    """Fetch the package's photos into ``folder``, cut their faces, keep the people the
    sample data (``samples``, whose ``people.json`` must exist) does not hold; the record.
    Skipped when the record is up to date."""
    known = recorded_descriptors(samples)  # FreeheadError, with the fix, when missing
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = _up_to_date(folder)
    if done is not None:
        return done
    fetch_package(folder, FACE_API)
    faces, descriptors = _find(folder)
    if not faces:
        raise FreeheadError(f"no face found in {FACE_API.spec}'s photos")
    groups = validation_groups(descriptors, known)
    dropped = len(group_faces(list(descriptors))) - len(groups)
    if dropped:
        log.info("%d person(s) left out: the sample data holds them", dropped)
    record = _write(folder, faces, groups)
    atomic_write_json(folder / RECORD_FILE, record)
    return record

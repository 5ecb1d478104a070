"""ONNX export: the graphs match PyTorch on real frames, take any batch, and run the whole
pipeline; bad export folders get one clear line."""

import json
from pathlib import Path

import numpy as np
import pytest

from freehead.media import read_image

from .test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def exported(samples, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "export"
    proc = run("export-onnx", "--out", str(out), "--samples", str(samples))
    assert proc.returncode == 0, proc.stderr
    assert "largest difference from PyTorch" in proc.stdout
    return out


def test_export_writes_the_graphs_and_matches_pytorch(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    for name in manifest["graphs"]:
        assert (exported / name).is_file()
    check = manifest["check"]
    assert check["frames"] >= 3
    assert set(check["max_abs_difference"]) == {
        "keypoint_estimator", "gaze_estimator", "generator_source", "generator_frame"
    }  # fmt: skip
    assert max(check["max_abs_difference"].values()) < 1e-3
    assert all(len(m["sha256"]) == 64 for m in manifest["models"].values())


def test_graphs_take_any_batch(exported):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    e_can = ort.InferenceSession(str(exported / "keypoint_estimator.onnx"))
    out = e_can.run(None, {"images": rng.uniform(-1, 1, (3, 3, 128, 128)).astype(np.float32)})
    assert out[0].shape == (3, 68, 3)
    source = ort.InferenceSession(str(exported / "generator_source.onnx"))
    x = rng.uniform(-1, 1, (2, 3, 256, 256)).astype(np.float32)
    h1, h2, h3 = source.run(None, {"image": x, "sketch": x})
    frame = ort.InferenceSession(str(exported / "generator_frame_m1.onnx"))
    feed = {"image": x, "h1": h1, "h2": h2, "h3": h3, "target_sketch": x}
    inputs = {i.name for i in frame.get_inputs()}
    if "prior" in inputs:  # G v2: each source's mesh flow (identity here), and its gate
        grid = np.linspace(-1, 1, 256, dtype=np.float32)
        feed["prior"] = np.broadcast_to(np.stack(np.meshgrid(grid, grid)), (2, 2, 256, 256)).copy()
    if "gate" in inputs:
        feed["gate"] = rng.uniform(0, 1, (2, 1, 64, 64)).astype(np.float32)
    assert inputs == set(feed), inputs
    (img,) = frame.run(None, feed)
    assert img.shape == (2, 3, 256, 256) and np.abs(img).max() <= 1.0


def test_onnx_runtime_runs_the_pipeline_n_shot(exported, samples, tmp_path):
    out = tmp_path / "o.mp4"
    stills = [str(samples / "stills" / f"franck_0{k}.jpg") for k in (1829, 3909)]
    proc = run("reenact", "--source", *stills, "--driving",
               str(samples / "videos/franck/franck.mp4"), "--start", "4000", "--max-frames", "4",
               "--out", str(out), "--runtime", "onnx", "--onnx-dir", str(exported))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (exported / "generator_frame_m2.onnx").is_file()  # exported when first needed


def test_onnx_and_torch_give_the_same_picture(exported, samples):
    from freehead import Reenactor

    torch_r = Reenactor.from_pretrained()
    onnx_r = Reenactor.from_pretrained(runtime="onnx", onnx_dir=exported)
    portrait = read_image(samples / "portraits/grace_hopper.jpg")
    driver = read_image(samples / "stills/franck_04117.jpg")
    a = torch_r.reenact(portrait, driver).astype(int)
    b = onnx_r.reenact(portrait, driver).astype(int)
    assert np.abs(a - b).mean() < 0.5  # grey levels; rounding may flip a sketch pixel


def test_bad_export_folders(samples, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["freeview", str(samples / "portraits/astronaut.png"), "--out", str(tmp_path / "f.png"),
            "--runtime", "onnx", "--onnx-dir"]  # fmt: skip
    assert_one_line_error(run(*base, str(empty)), "holds no exported models")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"image_size": 256}))
    for name in ("keypoint_estimator", "gaze_estimator", "generator_source", "generator_frame_m1"):
        (broken / f"{name}.onnx").write_bytes(b"not a graph")
    assert_one_line_error(run(*base, str(broken)), "not a loadable ONNX graph")
    assert_one_line_error(run("freeview", str(samples / "portraits/astronaut.png"), "--out",
                              str(tmp_path / "f.png"), "--onnx-dir", str(broken)),
                          "an ONNX folder is only used with the onnx runtime")  # fmt: skip

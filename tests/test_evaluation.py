"""The evaluation suite end to end on real frames: protocols, baselines, the grid, the
speed benchmark."""

import json

import cv2
import pytest

from .test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def scored(tiny_dataset, samples, tmp_path_factory):
    out = {}
    folder = tmp_path_factory.mktemp("evaluate")
    for method in ("copy-source", "oracle"):
        js, png = folder / f"{method}.json", folder / f"{method}.png"
        proc = run("evaluate", "--method", method, "--data", str(tiny_dataset), "--quick",
                   "--samples", str(samples), "--json", str(js), "--grid", str(png))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out[method] = (json.loads(js.read_text()), png, proc.stdout)
    return out


def test_results_hold_every_protocol_and_metric(scored):
    results, png, stdout = scored["oracle"]
    assert set(results) >= {"self_reenactment", "cross_identity", "gaze_redirection",
                            "ms_per_frame"}  # fmt: skip
    self_r = results["self_reenactment"]
    for key in ("l1", "psnr", "ssim", "akd_px", "gaze_error_deg", "pose_error_deg",
                "identity_distance", "csim", "sharpness_ratio"):  # fmt: skip
        assert isinstance(self_r[key], float), key
        assert self_r["counts"][key] > 0, key
    # no ImageNet weights here: said so, never estimated
    assert self_r["lpips"] is None and "lpips" in self_r["missing"]
    assert self_r["fid"] is None and "fid" in self_r["missing"]
    assert "lpips: missing" in stdout
    assert isinstance(results["gaze_redirection"]["outside_eye_change"], float)
    picture = cv2.imread(str(png))
    assert picture is not None and picture.shape[1] == 3 * 128


def test_the_oracle_shows_the_measurement_noise_and_beats_the_floor(scored):
    oracle = scored["oracle"][0]["self_reenactment"]
    floor = scored["copy-source"][0]["self_reenactment"]
    assert oracle["akd_px"] < 1.5 and oracle["pose_error_deg"] < 1.5
    assert oracle["psnr"] > floor["psnr"] and oracle["ssim"] > floor["ssim"]
    assert oracle["akd_px"] < floor["akd_px"]
    # copying the source keeps the identity exactly and changes nothing outside the eyes
    assert floor["identity_distance"] == 0.0
    assert scored["copy-source"][0]["gaze_redirection"]["outside_eye_change"] == 0.0


def test_evaluate_needs_held_out_clips(tiny_dataset, tmp_path):
    proc = run("evaluate", "--method", "oracle", "--data", str(tmp_path), "--quick")
    assert_one_line_error(proc, "not a freehead dataset")


def test_bench_prints_every_part(samples, tmp_path):
    out = tmp_path / "bench.json"
    proc = run("bench", "--samples", str(samples), "--frames", "5", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(out.read_text())
    parts = ("tracking_ms", "crop_ms", "keypoints_ms", "gaze_ms", "sketch_ms", "generator_ms")
    for key in (*parts, "source_ms", "end_to_end_ms", "peak_rss_mb"):
        assert figures[key] > 0, key
    assert figures["end_to_end_ms"] >= max(figures[p] for p in parts)
    assert figures["frames"] == 5 and figures["threads"] == 2


def test_the_freehead_method_runs_the_whole_path(tiny_dataset, samples, tmp_path):
    """E_can + E_gaze + sketch + G (an untrained tiny G at the dataset's 128²)."""
    from freehead.checkpoint import save_model
    from freehead.models.generator import Generator, GeneratorConfig

    config = GeneratorConfig(image_size=128, encoder_channels=(8, 8, 16), flow_channels=16,
                             render_channels=(16, 8, 8, 8), modulation_channels=8)  # fmt: skip
    g_file = tmp_path / "g.safetensors"
    save_model(g_file, Generator(config), "generator", config)
    out = tmp_path / "freehead.json"
    proc = run("evaluate", "--method", "freehead", "--generator", str(g_file), "--quick",
               "--data", str(tiny_dataset), "--samples", str(samples), "--json", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert results["method"] == "freehead"
    for name in ("self_reenactment", "cross_identity", "gaze_redirection"):
        assert results[name]["outputs"] > 0 and results[name]["ms_per_frame"] > 0
    # a fresh G shows the (unwarped) source: its identity is kept
    assert results["self_reenactment"]["identity_distance"] < 0.3
    # N-shot: two sources per clip
    out2 = tmp_path / "two.json"
    proc = run("evaluate", "--method", "freehead", "--generator", str(g_file), "--quick",
               "--sources", "2", "--data", str(tiny_dataset), "--samples", str(samples),
               "--json", str(out2))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    two = json.loads(out2.read_text())
    assert two["protocol"]["sources"] == 2 and two["self_reenactment"]["outputs"] > 0
    proc = run("evaluate", "--method", "oracle", "--generator", str(g_file), "--quick",
               "--data", str(tiny_dataset))  # fmt: skip
    assert_one_line_error(proc, "a generator file is only used by the freehead method")


def test_n_shot_sources_are_the_most_different_poses():
    import numpy as np

    from freehead.evaluation.protocol import ProtocolConfig

    angles = np.zeros((10, 3))
    angles[:, 0] = [0, 1, 2, 30, 3, 4, -25, 5, 6, 7]  # yaw
    frames = np.arange(2, 10)  # usable frames (indices into the clip)
    picked = ProtocolConfig(sources=3).source_frames(frames, angles)
    assert picked.tolist() == [2, 3, 6]  # the first, then yaw 30, then yaw -25
    assert ProtocolConfig().source_frames(frames, angles).tolist() == [2]


def test_evaluate_scores_exactly_what_the_reenactor_gives_users(tiny_dataset, samples, tmp_path):
    """Every output ``evaluate --method freehead`` scores equals, bit for bit, what a user
    gets from the Reenactor's public calls on the same crops: absolute motion for
    self-reenactment (a G v2's widened mouth filled with the cavity, not the driver's
    interior), motion relative to the driving clip's first frame for cross-identity,
    ``redirect_gaze`` for gaze redirection. (A G at the tiny dataset's 128², with the
    shipped E_can and E_gaze.)"""
    import numpy as np

    from freehead.checkpoint import save_model
    from freehead.evaluation.methods import FreeheadMethod
    from freehead.evaluation.protocol import ProtocolConfig, evaluate
    from freehead.inference.reenactor import Reenactor
    from freehead.models.generator import Generator, GeneratorConfig

    calls = []

    class Recording(FreeheadMethod):
        def reenact(self, sources, driver, reference=None):
            out = super().reenact(sources, driver, reference)
            calls.append(("reenact", (list(sources), driver, reference), out))
            return out

        def redirect_gaze(self, source, pitch, yaw):
            out = super().redirect_gaze(source, pitch, yaw)
            calls.append(("gaze", (source, pitch, yaw), out))
            return out

    config = GeneratorConfig(image_size=128, encoder_channels=(8, 8, 16), flow_channels=16,
                             render_channels=(16, 8, 8, 8), modulation_channels=8)  # fmt: skip
    g_file = tmp_path / "g.safetensors"
    save_model(g_file, Generator(config), "generator", config)
    evaluate(Recording(generator=str(g_file)), tiny_dataset, samples, ProtocolConfig.quick())
    kinds = {(kind, args[2] is None) for kind, args, _ in calls if kind == "reenact"}
    assert kinds == {("reenact", True), ("reenact", False)}  # self (absolute) and cross
    assert any(kind == "gaze" for kind, _, _ in calls)
    user = Reenactor.from_pretrained(generator=g_file)
    for kind, args, scored in calls:
        if kind == "reenact":
            sources, driver, reference = args
            relative = reference is not None
            mine = user.reenact(sources, driver, reference=reference, relative=relative,
                                crops=True, smoothing=0,
                                mouth="driver" if relative else "cavity")  # fmt: skip
        else:
            source, pitch, yaw = args
            mine = user.redirect_gaze(source, pitch=pitch, yaw=yaw, crops=True)
        assert mine.dtype == np.uint8 and np.array_equal(mine, scored), kind


def test_unseen_protocol_on_any_portrait_folder(tiny_dataset, samples, tmp_path):
    """``--protocol unseen --portraits DIR``: a still output (copy-source) scores exactly
    the driver's own motion and expression change as its error, and identity 0; a
    portrait without a face is left out with a warning; a folder with none is refused."""
    import shutil

    import numpy as np

    folder = tmp_path / "portraits"
    folder.mkdir()
    for name in ("astronaut.png", "grace_hopper.jpg"):
        shutil.copy(samples / "portraits" / name, folder / name)
    cv2.imwrite(str(folder / "a_wall.png"), np.full((300, 300, 3), 128, np.uint8))
    out, png = tmp_path / "u.json", tmp_path / "u.png"
    proc = run("evaluate", "--method", "copy-source", "--protocol", "unseen", "--quick",
               "--data", str(tiny_dataset), "--portraits", str(folder), "--json", str(out),
               "--grid", str(png))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "a_wall.png left out" in proc.stderr
    results = json.loads(out.read_text())
    assert set(results["portraits"]) == {"astronaut", "grace_hopper"}
    o = results["overall"]
    assert o["identity_distance"] == 0 and o["identity_same_share"] == 1
    assert o["head_motion_error_deg"] == o["driver_head_motion_deg"] > 0
    assert o["mouth_open_error"] == o["driver_mouth_open_change"]
    assert o["redirection_outside_eye_change"] == 0
    picture = cv2.imread(str(png))
    assert picture.shape[0] == 3 * picture.shape[1] // 3  # drivers, then a row per portrait
    empty = tmp_path / "empty"
    empty.mkdir()
    cv2.imwrite(str(empty / "wall.png"), np.full((300, 300, 3), 128, np.uint8))
    proc = run("evaluate", "--method", "copy-source", "--protocol", "unseen", "--quick",
               "--data", str(tiny_dataset), "--portraits", str(empty))  # fmt: skip
    lines = proc.stderr.strip().splitlines()  # the warning naming the image, then the error
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert lines[-1] == "freehead: error: none of the portraits holds a face", proc.stderr

"""The shared training loop: a killed run resumes, torchrun ranks agree, bad input gets a
one-line error; and ``freehead evaluate-estimators`` end to end."""

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from freehead.checkpoint import read_metadata
from freehead.data.dataset import Dataset
from freehead.models import KeypointEstimator
from freehead.training.loop import _weights_digest, checkpoint_paths, train
from freehead.training.tasks import GazeTask, KeypointTask

from .test_cli import assert_one_line_error, run

TINY_KEYPOINTS = """
model: {{input_size: 64, channels: [8, 16, 32], hidden: 32}}
train:
  steps: {steps}
  batch_size: 4
  warmup_steps: 2
  checkpoint_every: {every}
  validate_every: 100000
  validation_frames: 8
  log_every: 1
  workers: {workers}
"""


def tiny_config(tmp_path: Path, steps: int, every: int = 5, workers: int = 0) -> Path:
    path = tmp_path / f"tiny_{steps}_{every}_{workers}.yaml"
    path.write_text(TINY_KEYPOINTS.format(steps=steps, every=every, workers=workers))
    return path


def logged_steps(run_dir: Path, name: str = "train.csv") -> list[int]:
    with open(run_dir / name, newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["step"] and r["step"].isdigit()]


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny_dataset, tmp_path):
    config = tiny_config(tmp_path, steps=300, every=5, workers=1)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "freehead", "train", "keypoints", "--data", str(tiny_dataset),
           "--out", str(run_dir), "--config", str(config)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(step >= 20 for step, _ in checkpoint_paths(run_dir)):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its data-loader worker
    proc.wait()
    last_logged = max(logged_steps(run_dir))
    newest = checkpoint_paths(run_dir)[0][0]
    assert 20 <= newest < 300
    # what a kill during a checkpoint write leaves behind: a temporary file
    leftover = run_dir / "checkpoints" / f".step_{newest + 5:08d}.safetensors.x1.tmp.safetensors"
    leftover.write_bytes(b"half a checkpoint")

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0, again.stderr
    assert f"from step_{newest:08d}.safetensors (step {newest})" in again.stderr
    assert last_logged - newest <= 5  # at most one checkpoint interval lost
    assert not leftover.exists()
    steps = logged_steps(run_dir)
    assert steps == list(range(1, 301))  # no gap, no repeat: rows past the resume were dropped
    assert read_metadata(run_dir / "model.safetensors")["kind"] == "keypoints"
    assert [s for s, _ in checkpoint_paths(run_dir)] == [300, 295, 290]  # keeps 3


def test_an_unreadable_checkpoint_is_skipped_for_the_one_before(tiny_dataset, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="freehead")
    config = tiny_config(tmp_path, steps=10, every=5)
    run_dir = tmp_path / "run"
    train(KeypointTask, tiny_dataset, run_dir, config)
    newest = run_dir / "checkpoints" / "step_00000010.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a disk fault
    train(KeypointTask, tiny_dataset, run_dir, config)
    assert "skipping an unreadable checkpoint" in caplog.text
    assert "step_00000010.safetensors" in caplog.text
    assert "from step_00000005.safetensors (step 5)" in caplog.text
    assert read_metadata(newest)["step"] == "10"  # written again, whole
    assert logged_steps(run_dir) == list(range(1, 11))


def test_gaze_training_runs_and_validates(tiny_dataset, tmp_path):
    config = tmp_path / "gaze.yaml"
    config.write_text(
        "model: {channels: [8, 16], hidden: 32}\n"
        "train: {steps: 4, batch_size: 4, warmup_steps: 1, checkpoint_every: 2, "
        "validation_frames: 8, log_every: 1, workers: 0}\n"
    )
    final = train(GazeTask, tiny_dataset, tmp_path / "run", config)
    assert read_metadata(final)["kind"] == "gaze"
    with open(tmp_path / "run" / "val.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["gaze_error_deg"]) >= 0 and int(row["gaze_frames"]) > 0


def test_two_torchrun_ranks_end_with_identical_weights(tiny_dataset, tmp_path):
    config = tiny_config(tmp_path, steps=6, every=3)
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "freehead", "train", "keypoints", "--data", str(tiny_dataset), "--out",
           str(run_dir), "--config", str(config)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads((run_dir / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["step"] == 6
    assert len(ranks["digests"]) == 2 and ranks["digests"][0] == ranks["digests"][1]
    model = KeypointEstimator.from_pretrained(run_dir / "model.safetensors")
    assert _weights_digest(model) == ranks["digests"][0]
    # the weights moved from their start: the ranks agree because they trained together
    fresh = KeypointEstimator(model.config)
    assert not torch.equal(fresh.encoder.stem[0].weight, model.encoder.stem[0].weight)


def test_train_errors(tiny_dataset, tmp_path):
    proc = run("train", "keypoints", "--data", str(tmp_path / "nothing"), "--out",
               str(tmp_path / "r"))  # fmt: skip
    assert_one_line_error(proc, "not a freehead dataset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {stepz: 3}\n")
    proc = run("train", "gaze", "--data", str(tiny_dataset), "--out", str(tmp_path / "r"),
               "--config", str(bad))  # fmt: skip
    assert_one_line_error(proc, "stepz")
    first = tiny_config(tmp_path, steps=2, every=1)
    proc = run("train", "keypoints", "--data", str(tiny_dataset), "--out", str(tmp_path / "r2"),
               "--config", str(first))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    other = tiny_config(tmp_path, steps=3, every=1)
    proc = run("train", "keypoints", "--data", str(tiny_dataset), "--out", str(tmp_path / "r2"),
               "--config", str(other))  # fmt: skip
    assert_one_line_error(proc, "another config")
    proc = run("train", "gaze", "--data", str(tiny_dataset), "--out", str(tmp_path / "r2"))
    assert_one_line_error(proc, "keypoints")


def test_evaluate_estimators_with_the_shipped_models(tiny_dataset, tmp_path):
    out = tmp_path / "figures.json"
    proc = run("evaluate-estimators", "--data", str(tiny_dataset), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(out.read_text())
    for key in ("keypoint_nme_pct", "pose_error_deg", "gaze_error_deg",
                "canonical_identity_ratio", "ms_per_frame_keypoints", "ms_per_frame_gaze"):  # fmt: skip
        assert isinstance(figures[key], float) and figures[key] >= 0, key
    heldout = [c for c in Dataset(tiny_dataset).clips() if c.split == "heldout"]
    assert figures["frames"] == sum(c.frames_with_face for c in heldout)  # every one
    # the shipped models are not blind: far better than a constant answer
    assert figures["keypoint_nme_pct"] < 10 and figures["pose_error_deg"] < 5


def test_evaluate_estimators_bad_model_file(tiny_dataset, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    proc = run("evaluate-estimators", "--data", str(tiny_dataset), "--keypoints", str(broken))
    assert_one_line_error(proc, "broken.safetensors")


def test_training_state_keeps_the_newest_checkpoint_and_restores_it(tmp_path):
    """scripts/training_state.py: ``save`` keeps the newest checkpoint and the logs (the
    destination's own files stay); ``restore`` fills a new run folder and never goes back
    over a run that is further along."""
    from scripts.training_state import restore, save

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "val").mkdir()
    for step in (250, 500):
        (run / "checkpoints" / f"step_{step:08d}.safetensors").write_bytes(b"x" * step)
        (run / "val" / f"step_{step:08d}.png").write_bytes(b"png")
    (run / "checkpoints" / ".step_00000750.safetensors.tmp").write_bytes(b"half")
    for name in ("config.yaml", "train.csv", "val.csv", "run_info.json"):
        (run / name).write_text(name)
    dest = tmp_path / "state"
    dest.mkdir()
    (dest / "README.md").write_text("kept")
    (dest / "checkpoints").mkdir()
    (dest / "checkpoints" / "step_00000100.safetensors").write_bytes(b"old")
    save(run, dest)
    assert sorted(p.name for p in (dest / "checkpoints").iterdir()) == ["step_00000500.safetensors"]
    assert sorted(p.name for p in (dest / "val").iterdir()) == ["step_00000500.png"]
    assert (dest / "README.md").read_text() == "kept" and (dest / "train.csv").is_file()

    fresh = tmp_path / "fresh"
    restore(dest, fresh)
    assert (fresh / "checkpoints" / "step_00000500.safetensors").read_bytes() == b"x" * 500
    assert (fresh / "config.yaml").read_text() == "config.yaml"
    ahead = tmp_path / "ahead"
    (ahead / "checkpoints").mkdir(parents=True)
    (ahead / "checkpoints" / "step_00000900.safetensors").write_bytes(b"new")
    (ahead / "train.csv").write_text("mine")
    restore(dest, ahead)
    assert (ahead / "train.csv").read_text() == "mine"
    assert not (ahead / "checkpoints" / "step_00000500.safetensors").exists()

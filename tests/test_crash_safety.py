"""kill -9 in the middle of long commands, then the same command again: nothing half-made
is taken as finished, and the result is what an uninterrupted run makes."""

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .test_cli import run


def _kill_when(args: list[str], ready, timeout: float = 300.0) -> bool:
    """Start ``freehead ARGS`` and kill -9 it as soon as ``ready()`` holds; whether it
    was still running then."""
    proc = subprocess.Popen([sys.executable, "-m", "freehead", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
        return running
    finally:
        proc.wait()


def _same_tree(a: Path, b: Path, ignore: tuple[str, ...] = ()) -> None:
    """Every file under ``a`` is under ``b`` with the same bytes, and no other."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name not in ignore)
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name not in ignore)
    assert files_a == files_b
    for f in files_a:
        if f.suffix == ".npz":
            x, y = np.load(a / f), np.load(b / f)
            assert sorted(x.files) == sorted(y.files)
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k])
        else:
            assert filecmp.cmp(a / f, b / f, shallow=False), f


def test_preprocess_killed_then_rerun_equals_one_run(samples, tmp_path):
    video = str(samples / "videos/franck/franck.mp4")
    args = ["preprocess", video, "--max-frames", "60", "--clip-frames", "20"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run(*args, "--out", str(whole)).returncode == 0
    clips = killed / "clips"

    def writing() -> bool:  # the crops of the clips are being written
        return clips.is_dir() and any(p.name.startswith(".") for p in clips.rglob("*"))

    assert _kill_when([*args, "--out", str(killed)], writing)
    proc = run(*args, "--out", str(killed))
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in clips.rglob("*") if p.name.startswith(".")]  # no leftovers
    _same_tree(whole / "clips", clips, ignore=("clip.json",))
    for meta in whole.rglob("clip.json"):  # the same clips, labels and sources
        assert meta.read_text() == (clips / meta.relative_to(whole / "clips")).read_text()


def test_export_onnx_killed_then_rerun_equals_one_run(samples, tmp_path):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a user's file in the folder stays
    args = ["export-onnx", "--out", str(out), "--samples", str(samples)]

    def exporting() -> bool:  # some graphs written, in the hidden work folder
        return sum(1 for p in out.glob(".export-*/*.onnx")) >= 2

    assert _kill_when(args, exporting)
    assert not (out / "manifest.json").exists()  # not taken for a finished export
    assert (out / "notes.txt").read_text() == "mine"
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert (out / "manifest.json").is_file() and not list(out.glob(".export-*"))
    again = tmp_path / "again"
    assert run("export-onnx", "--out", str(again), "--samples", str(samples)).returncode == 0
    for graph in sorted(again.glob("*.onnx")):
        assert filecmp.cmp(graph, out / graph.name, shallow=False), graph.name

"""The acceptance figures of the sample data, end to end (slow: about a minute)."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_franck_whole_video(samples, tmp_path):
    out = tmp_path / "franck"
    summary_file = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "freehead", "preprocess", str(samples / "videos/franck/franck.mp4"),
         "--out", str(out), "--json", str(summary_file)],
        capture_output=True, text=True, check=False, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(summary_file.read_text())
    clip = summary["per_clip"]["franck"]
    assert summary["frames"] == 4800
    assert summary["frames_with_face"] >= 0.99 * 4800
    assert summary["frames_per_second"] >= 30
    assert clip["binocular_disagreement_deg"] <= 6.0
    assert clip["crop_jitter_px"] < 1.0
    # he mostly faces the camera and turns his head by a few tens of degrees at most
    assert -40 < clip["yaw_range"][0] < -10 and 5 < clip["yaw_range"][1] < 40
    assert clip["pitch_range"][1] - clip["pitch_range"][0] < 60

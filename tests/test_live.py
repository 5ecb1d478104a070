"""Live streaming: the bounded queue drops (never lags) for a live source, hands every
frame over otherwise; read-ahead gives the same outputs; the command and its errors."""

import json
import time

import numpy as np
import pytest

from freehead.apps.live import FrameFeeder, LiveStats
from freehead.inference.read_ahead import run_ahead

from .test_cli import assert_one_line_error, run
from .test_reenact import driving, franck  # noqa: F401 (fixtures)


def _counter(n: int):
    frames = iter(range(n))
    return lambda: next(frames, None)


def test_a_live_feed_drops_the_oldest_frames_when_the_consumer_is_slow():
    stats = LiveStats()
    feeder = FrameFeeder(_counter(60), fps=200.0, realtime=True, stats=stats, depth=2)
    got = []
    for item in feeder:
        got.append(item)
        time.sleep(0.02)  # 50 per second against 200 coming
    assert stats.input_frames == 60
    assert stats.dropped_frames > 20
    assert len(got) + stats.dropped_frames == 60
    assert got == sorted(got) and got[-1] == 59  # in order, and the newest is kept


def test_a_file_feed_hands_over_every_frame():
    stats = LiveStats()
    got = list(FrameFeeder(_counter(50), fps=25.0, realtime=False, stats=stats, depth=2))
    assert got == list(range(50)) and stats.dropped_frames == 0


def test_run_ahead_keeps_order_passes_errors_and_stops():
    assert list(run_ahead(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        list(run_ahead(failing(), depth=2))
    taken = []
    for x in run_ahead(iter(range(10**6)), depth=2):
        taken.append(x)
        if x == 5:
            break
    assert taken == list(range(6))


def test_stream_gives_the_same_frames_with_and_without_read_ahead(franck):  # noqa: F811
    from freehead import Reenactor

    r = Reenactor.from_pretrained()
    source = r.prepare_source(franck[0])
    a = list(r.stream(source, iter(franck[:5]), threaded=False))
    b = list(r.stream(source, iter(franck[:5]), threaded=True))
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_live_command_on_a_video(samples, driving, tmp_path):  # noqa: F811
    report, out = tmp_path / "live.json", tmp_path / "rec.mp4"
    proc = run("live", "--source", str(samples / "portraits/astronaut.png"), "--driving",
               str(driving), "--no-display", "--json", str(report), "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(report.read_text())
    assert figures["frames"] == 8 and figures["dropped_frames"] == 0 and figures["fps"] > 0
    assert not figures["realtime"] and out.is_file()
    proc = run("live", "--source", str(samples / "portraits/astronaut.png"), "--driving",
               str(driving), "--no-display", "--realtime", "--json", str(report))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report.read_text())["realtime"]


def test_live_errors(samples, driving, tmp_path, monkeypatch):  # noqa: F811
    portrait = str(samples / "portraits/astronaut.png")
    assert_one_line_error(run("live", "--source", portrait, "--camera", "7", "--no-display"),
                          "no camera 7")  # fmt: skip
    assert_one_line_error(run("live", "--source", portrait, "--camera", "0", "--realtime"),
                          "real-time pacing is for a driving video")  # fmt: skip
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert_one_line_error(run("live", "--source", portrait, "--driving", str(driving),
                              "--display"), "no display")  # fmt: skip
    headless = run("live", "--source", portrait, "--driving", str(driving))  # no desktop: logs
    assert headless.returncode == 0, headless.stderr
    assert "no display" in headless.stderr and "live: " in headless.stdout

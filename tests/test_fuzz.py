"""The fuzz harness (``tests/fuzz_cases.py``): over 300 malformed or unusual inputs, each
fed to an entry point (every CLI command, the Python API, the web page's handlers). Each
must end in a correct result or one clear line (``freehead: error: ...``, a
FreeheadError, a message on the page), never a traceback; a failed command leaves no
output (nor a temporary file) behind; every input is left as it was.

The default run takes a few cases of each kind; ``pytest -m fuzz tests/test_fuzz.py -s``
runs them all and prints the counts by category.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import signal
from pathlib import Path

import pytest

from . import fuzz_cases as fc

FAST = (
    "images/huge_header.png as reenact_source",
    "images/cmyk.jpg as gaze",
    "images/text.png as faces",
    "videos/half.mp4 as reenact",
    "videos/frames_changing_size as gaze",
    "model_files/header_bomb.safetensors as freeview's G",
    "model_files/pickle.pt as reenact's G",
    "configs/unknown_key.yaml for train generator",
    "gaze_paths/nan.csv for gaze --path",
    "gaze_paths/unsorted.csv for gaze --path",
    "paths/an existing output without --overwrite for gaze",
    "paths/the input as the output for gaze",
    "options/reenact --yaw abc",
    "api/reenact(source=NaN floats)",
    "api/reenact(driving frames=an empty generator)",
    "web/upload a missing file as the portrait",
)


@pytest.fixture(scope="module")
def fuzz_cases(samples, tiny_dataset, tmp_path_factory) -> dict[str, fc.Case]:
    from freehead import Reenactor
    from freehead.apps.web import PageJobs

    logging.basicConfig(level=logging.WARNING)  # before main() could bind it to a capture
    folder = tmp_path_factory.mktemp("fuzz")
    reenactor = Reenactor.from_pretrained()
    (folder / "web_work").mkdir()
    jobs = PageJobs(reenactor, folder / "web_work", samples, max_upload_mb=50.0, max_seconds=1.0)
    made = fc.cases(samples, folder, reenactor, tiny_dataset, (jobs, folder / "uploads"))
    by_id = {c.id: c for c in made}
    assert len(by_id) == len(made), "two cases share a name"
    return by_id


def _digest(path: Path) -> str:
    if not path.exists():
        return "missing"
    if path.is_dir():
        parts = sorted(p for p in path.rglob("*") if p.is_file())
        return hashlib.sha256(b"".join(_digest(p).encode() for p in parts)).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_cli(argv: tuple[str, ...]) -> tuple[str, str]:
    from freehead.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 1
    text = err.getvalue()
    if code == 0:
        return fc.OK, text
    assert "Traceback" not in text and code in (1, 2), f"exit {code}: {text}"
    errors = [ln for ln in text.splitlines() if ln.startswith("freehead: ")]
    assert len(errors) == 1 and errors[0].startswith("freehead: error: "), text
    assert "\n" not in errors[0].strip()
    return fc.ERROR, errors[0]


def _run_call(call) -> tuple[str, str]:
    import gradio as gr

    from freehead.errors import FreeheadError

    try:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    except (FreeheadError, gr.Error) as e:
        message = str(e)
        assert message and "\n" not in message.strip() and "Traceback" not in message, message
        return fc.ERROR, message
    return fc.OK, ""


CASE_SECONDS = 120
"""A case still running after this long fails (an input that started a long job)."""


def _too_long(signum, frame):
    raise TimeoutError(f"still running after {CASE_SECONDS} s")


def run_case(case: fc.Case) -> str:
    """Run one case and check it (see the module's text); its outcome."""
    digests = {p: _digest(p) for p in case.inputs}
    existed = {p: p.exists() for p in case.outputs}
    previous = signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(CASE_SECONDS)
    try:
        outcome, message = _run_cli(case.argv) if case.argv else _run_call(case.call)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if case.expect != fc.EITHER:
        assert outcome == case.expect, f"{case.id}: expected {case.expect}, got {outcome} {message}"
    for p, before in existed.items():
        if outcome == fc.ERROR and not before:
            assert not p.exists(), f"{case.id}: {p} left behind"
        if p.parent.is_dir():
            leftovers = [q.name for q in p.parent.glob(f".{p.name}*") if "tmp" in q.name]
            assert not leftovers, f"{case.id}: temporary files left: {leftovers}"
    for p, d in digests.items():
        assert _digest(p) == d, f"{case.id}: the input {p} changed"
    return outcome


@pytest.mark.parametrize("case_id", FAST)
def test_fuzz_subset(fuzz_cases, case_id):
    run_case(fuzz_cases[case_id])


@pytest.mark.fuzz
def test_every_fuzz_case(fuzz_cases):
    """Every case (``FREEHEAD_FUZZ=images,videos`` runs those categories only)."""
    only = set(filter(None, os.environ.get("FREEHEAD_FUZZ", "").split(",")))
    results, failures = [], []
    for case in fuzz_cases.values():
        if only and case.category not in only:
            continue
        try:
            results.append((case, run_case(case)))
        except AssertionError as e:
            failures.append(f"{case.id}: {str(e).splitlines()[0] if str(e) else 'failed'}")
            results.append((case, "FAILED"))
        except Exception as e:  # what the entry point let out instead of a clean error
            failures.append(f"{case.id}: raised {type(e).__name__}: {e}")
            results.append((case, "FAILED"))
    print("\n" + fc.summary(results))
    assert only or len(results) >= 300
    assert not failures, "\n".join(failures)


def test_native_libraries_add_nothing_to_the_one_line(fuzz_cases):
    """In a real process (native code prints to the stream itself, which the in-process
    runs do not see): OpenCV's AVI reader printed "Unexpected element" lines about a
    broken file around freehead's own line."""
    from .test_cli import assert_one_line_error, run

    for case_id in ("videos/text.avi as preprocess", "videos/random.mp4 as reenact",
                    "images/half.jpg as faces", "model_files/garbage_header.safetensors as freeview's G"):  # fmt: skip
        case = fuzz_cases[case_id]
        proc = run(*case.argv)
        if proc.returncode != 0:
            assert_one_line_error(proc)
            assert "Unexpected" not in proc.stderr, proc.stderr

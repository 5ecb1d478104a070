#!/usr/bin/env bash
# One-command set-up for a fresh machine: a virtual environment in .venv with freehead
# installed in editable mode. torch is pinned to 2.13.0, which resolves to the CPU wheel
# where one is on disk (and to PyPI's 2.13.0 elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "freehead needs Python 3.11 or newer"'
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[dev]"
# The web page's browser test drives Debian's chromium (Playwright cannot fetch its own
# browsers here). Best effort: without root or apt the test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1) \
        || echo "note: could not install chromium; the browser test will be skipped"
fi
.venv/bin/python -c 'import cv2, mediapipe, torch, freehead; print(f"freehead {freehead.__version__} ready (torch {torch.__version__}, mediapipe {mediapipe.__version__})")'

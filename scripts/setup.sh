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
.venv/bin/python -c 'import cv2, mediapipe, torch, freehead; print(f"freehead {freehead.__version__} ready (torch {torch.__version__}, mediapipe {mediapipe.__version__})")'

"""Keep a long training run's resumable state in the repository, and bring it back.

A run on this machine takes many sessions; each session ends at once. Before it ends,
``save`` copies what resuming needs from the run folder into a small folder that is
committed; the next session ``restore``s it and runs the same ``freehead train`` command,
which resumes from the checkpoint::

    .venv/bin/python scripts/training_state.py save runs/g_v2 training_state/g_v2
    .venv/bin/python scripts/training_state.py restore training_state/g_v2 runs/g_v2

Kept: the newest finished checkpoint (weights, optimiser state and step), ``config.yaml``,
``run_info.json``, ``train.csv``, ``val.csv`` and the newest validation picture. ``save``
replaces those files in the destination as a whole (other files there, such as its
README, stay); ``restore`` refuses to go backwards over a run that is further along.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from freehead.training.loop import checkpoint_paths

KEPT = ("config.yaml", "run_info.json", "train.csv", "val.csv")
LIMIT_BYTES = 50 * 1024 * 1024


def save(run: Path, dest: Path) -> Path:
    """Copy ``run``'s resumable state into ``dest``; returns the checkpoint kept."""
    found = checkpoint_paths(run)
    if not found:
        sys.exit(f"error: {run} has no finished checkpoint yet")
    step, newest = found[0]
    if newest.stat().st_size > LIMIT_BYTES:
        sys.exit(f"error: {newest} is over 50 MB; too large to commit")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        stage = Path(tmp)
        (stage / "checkpoints").mkdir()
        shutil.copy2(newest, stage / "checkpoints" / newest.name)
        for name in KEPT:
            if (run / name).is_file():
                shutil.copy2(run / name, stage / name)
        pictures = sorted((run / "val").glob("step_*.png"))
        if pictures:
            (stage / "val").mkdir()
            shutil.copy2(pictures[-1], stage / "val" / pictures[-1].name)
        for old in ("checkpoints", "val", *KEPT):  # replace the kept files as a whole
            target = dest / old
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for item in stage.iterdir():
            shutil.move(str(item), dest / item.name)
    print(f"saved step {step} of {run} into {dest}")
    return dest / "checkpoints" / newest.name


def restore(state: Path, run: Path) -> None:
    """Copy a saved state into the run folder ``run`` (created if missing)."""
    saved = checkpoint_paths(state)
    if not saved:
        sys.exit(f"error: {state} holds no checkpoint")
    have = checkpoint_paths(run)
    if have and have[0][0] >= saved[0][0]:
        print(f"{run} is at step {have[0][0]}, not behind the saved step {saved[0][0]}: kept")
        return
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copy2(saved[0][1], run / "checkpoints" / saved[0][1].name)
    for name in KEPT:
        if (state / name).is_file():
            shutil.copy2(state / name, run / name)
    print(f"restored step {saved[0][0]} into {run}")


def main() -> None:
    """``save RUN DEST`` or ``restore STATE RUN``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "restore"))
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    if args.action == "save":
        save(args.source, args.dest)
    else:
        restore(args.source, args.dest)


if __name__ == "__main__":
    main()

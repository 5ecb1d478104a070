"""The training loop every part shares (E_can, E_gaze and G).

One command per part, ``freehead train PART --data DATASET --out RUN [--config FILE]``,
runs on one process or under ``torchrun`` (DDP: gloo on CPU, nccl on GPU) unchanged.

The run folder::

    RUN/config.yaml                      the run's config (copied on the first start)
    RUN/checkpoints/step_00001000.safetensors   training states (weights, optimiser, step)
    RUN/train.csv, RUN/val.csv           losses every ``log_every`` steps; validation
    RUN/model.safetensors                the final weights with the network's config
    RUN/ranks.json                       under DDP: each rank's weight digest at the end
    RUN/run_info.json                    facts beyond the config (e.g. which perceptual loss)

Starting a command whose RUN exists resumes from its newest readable checkpoint; a
checkpoint is written under a temporary name and renamed, so a killed run never leaves a
half file under a checkpoint's name, and one that is unreadable anyway (a disk fault) is
skipped with a warning in favour of the one before.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm

from freehead.checkpoint import load_training_state, save_model, save_training_state
from freehead.config import config_to_yaml, load_config
from freehead.data.dataset import Dataset
from freehead.errors import FreeheadError
from freehead.io_utils import atomic_write_bytes, atomic_write_json
from freehead.training.data import InfiniteSampler

log = logging.getLogger("freehead.train")

CHECKPOINT_NAME = re.compile(r"^step_(\d{8})\.safetensors$")


@dataclass(frozen=True)
class TrainConfig:
    """How a part is trained. ``batch_size`` is per process; ``threads`` 0 keeps torch's
    default; ``workers`` are DataLoader processes per training process."""

    steps: int = 10000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    final_lr_fraction: float = 0.01
    grad_clip: float = 5.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    validate_every: int = 1000
    validation_frames: int = 400
    log_every: int = 10
    workers: int = 1
    threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        """ValueError (a config error, said with its field) for settings no run can use.
        (``steps: 0`` is one: with ``--init`` it turns a checkpoint into a model file.)"""
        at_least = {"steps": 0, "batch_size": 1, "checkpoint_every": 1, "keep_checkpoints": 1,
                    "validate_every": 1, "validation_frames": 1, "log_every": 1,
                    "warmup_steps": 0, "workers": 0, "threads": 0, "seed": 0}  # fmt: skip
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, not {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, not {self.lr}")
        for name in ("weight_decay", "final_lr_fraction", "grad_clip"):  # grad_clip 0: none
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, not {value}")

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then a cosine down to ``final_lr_fraction``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        f = self.final_lr_fraction
        return self.lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * t)))


class Task(ABC):
    """What a part supplies to the loop. ``config`` is its run config, a frozen dataclass
    with ``model`` (the network's config) and ``train`` (:class:`TrainConfig`)."""

    kind: str
    config_type: type

    def __init__(self, config: Any, dataset: Dataset):
        self.config = config
        self.dataset = dataset
        self.run_dir: Path | None = None  # set by the loop; where validate may write pictures

    @classmethod
    def resolve_config(cls, config: Any, started: Any | None = None) -> Any:
        """``config`` with the choices it leaves to the machine made: as ``started`` (the
        config a run being resumed was started with) made them, else from what this
        machine has. A new run records the answer in ``RUN/config.yaml``, so a resumed run
        keeps it wherever it resumes. The default leaves nothing open."""
        return config

    @abstractmethod
    def build_model(self) -> nn.Module:
        """Everything that trains (for a GAN: the generator and its critics)."""

    def build_optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        """One AdamW over the whole model (override for several, e.g. G and D)."""
        cfg: TrainConfig = self.config.train
        return {
            "model": torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        }

    def distribute(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module]) -> Any:
        """What :meth:`train_step` calls: the model with ``wrap`` (DDP, or nothing)
        applied to each part that runs a forward pass of its own."""
        return wrap(model)

    def train_step(
        self, wrapped: Any, batch: dict[str, Tensor], optimizers: dict[str, torch.optim.Optimizer]
    ) -> dict[str, Tensor]:
        """One optimisation step; returns the loss terms (detached or not). The default
        minimises :meth:`losses` with the one optimiser."""
        (optimizer,) = optimizers.values()
        terms = self.losses(wrapped, batch)
        descend(optimizer, terms["loss"], self.config.train.grad_clip)
        return terms

    def run_info(self) -> dict[str, Any]:
        """Facts about this run beyond its config (written to ``RUN/run_info.json``)."""
        return {}

    def export(self, model: nn.Module) -> tuple[nn.Module, str]:
        """The network to ship and where it sits in ``model``'s state dict (a prefix)."""
        return model, ""

    @abstractmethod
    def initialise(self, model: nn.Module) -> None:
        """Set up a fresh model from the training data (e.g. output biases)."""

    @abstractmethod
    def train_dataset(self) -> TorchDataset: ...

    def losses(self, model: Any, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Loss terms of a batch for the default :meth:`train_step`; ``"loss"`` is what is
        minimised. ``model`` may be the DDP wrapper: call it once per step."""
        raise NotImplementedError

    @abstractmethod
    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Held-out figures (model in eval mode, no grad) after ``step`` steps."""


def check_finite(loss: Tensor) -> None:
    if not torch.isfinite(loss):
        raise FreeheadError(f"the loss became {loss.item()}; lower the learning rate")


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    if max_norm > 0:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        nn.utils.clip_grad_norm_(params, max_norm)


def descend(optimizer: torch.optim.Optimizer, loss: Tensor, max_norm: float) -> None:
    """One step of ``optimizer`` down ``loss`` (checked finite), its gradients clipped to
    ``max_norm`` (0: not clipped)."""
    check_finite(loss)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(optimizer, max_norm)
    optimizer.step()


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        backend = "nccl"
    else:
        backend = "gloo"
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend=backend)
    return Distributed(rank=rank, world=world, local_rank=local)


def checkpoint_paths(run: Path) -> list[tuple[int, Path]]:
    """Finished checkpoints of a run, newest first."""
    folder = run / "checkpoints"
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = CHECKPOINT_NAME.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def resolve_run_config(task_type: type[Task], run: Path, config_file: str | Path | None) -> Any:
    """The run's config: RUN/config.yaml when resuming (a different --config is an error),
    else ``config_file`` (or the defaults) with its open choices made
    (:meth:`Task.resolve_config`)."""
    saved = run / "config.yaml"
    wanted = load_config(task_type.config_type, config_file) if config_file else None
    if saved.is_file():
        have = load_config(task_type.config_type, saved)
        if wanted is not None and task_type.resolve_config(wanted, have) != have:
            raise FreeheadError(
                f"{run} was started with another config ({saved}); resume with the same "
                "--config (or none), or train into a new --out"
            )
        return have
    return task_type.resolve_config(wanted if wanted is not None else task_type.config_type())


def _weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _sync_buffers(model: nn.Module, dist: Distributed) -> None:
    """Average floating buffers (batch-norm statistics) over ranks, so every rank saves
    and ends with the same model."""
    if not dist.enabled:
        return
    for b in model.buffers():
        if b.is_floating_point():
            torch_dist.all_reduce(b, op=torch_dist.ReduceOp.SUM)
            b.div_(dist.world)


class CsvLog:
    """A CSV log with a header. On resume the file is rewritten without the rows past the
    resumed step (and without a half row a killed run may have left)."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        self.fields: list[str] | None = None
        self.last: dict[str, str] = {}
        if path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                fields = list(reader.fieldnames or [])
                rows = [r for r in reader if self._complete(r, fields)]
            keep = [r for r in rows if int(r["step"]) <= resume_step]
            if fields and keep:
                self.fields = fields
                self.last = keep[-1]
                lines = [",".join(fields)] + [",".join(r[k] for k in fields) for r in keep]
                atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
            else:
                path.unlink()

    @staticmethod
    def _complete(row: dict[str, str | None], fields: list[str]) -> bool:
        if None in row or any(row.get(k) is None for k in fields):
            return False  # a row with missing or extra fields: a half-written line
        return bool(row["step"] and row["step"].isdigit())

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row.keys())
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def train(
    task_type: type[Task],
    data: str | Path,
    out: str | Path,
    config_file=None,
    init: str | Path | None = None,
) -> Path:
    """Train (or resume) one part. Returns the path of the final model file. ``init``: a
    training state of the same part and architecture that a new run starts from (its
    weights and optimiser state; the step count starts at 0)."""
    dist = setup_distributed()
    try:
        final = _train(task_type, Path(data), Path(out), config_file, dist, init)
        if dist.enabled:
            # Rank 0 writes the last files while the others are done; tearing the group
            # down on one rank while another still uses it can abort the process.
            torch_dist.barrier()
        return final
    finally:
        if dist.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _train(
    task_type: type[Task],
    data: Path,
    run: Path,
    config_file: Any,
    dist: Distributed,
    init: str | Path | None,
) -> Path:
    dataset = Dataset(data)
    dataset.settings()  # a clear error if DATA is not a dataset
    config = resolve_run_config(task_type, run, config_file)
    cfg: TrainConfig = config.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if dist.main:
        run.mkdir(parents=True, exist_ok=True)
        if not (run / "config.yaml").is_file():
            atomic_write_bytes(run / "config.yaml", config_to_yaml(config).encode())
    task = task_type(config, dataset)
    task.run_dir = run
    if dist.main:
        _write_run_info(run, task, dist, init)
    device = torch.device(f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu")

    torch.manual_seed(cfg.seed)
    model = task.build_model()
    optimizers = task.build_optimizers(model)
    base_lr = {name: [g["lr"] for g in opt.param_groups] for name, opt in optimizers.items()}
    step = _resume(run, task, model, optimizers, init, dist)
    _to_device(model, optimizers, device)
    state = _RunState(run, task, config, dist, device, model, optimizers)
    step = _train_steps(state, base_lr, step)
    return _finish(state, step)


def _write_run_info(run: Path, task: Task, dist: Distributed, init: str | Path | None) -> None:
    """``RUN/run_info.json``: the part, the processes, the device and the task's facts; a
    resumed run keeps the ``init`` it started from."""
    info = {"kind": task.kind, "world_size": dist.world, "device": str(torch.device(
        "cuda" if torch.cuda.is_available() else "cpu"))} | task.run_info()  # fmt: skip
    previous = run / "run_info.json"
    if previous.is_file():  # a resumed run keeps where it started from
        started_from = json.loads(previous.read_text()).get("init")
        if started_from:
            info["init"] = started_from
    if init is not None and not checkpoint_paths(run):
        info["init"] = str(init)
    atomic_write_json(run / "run_info.json", info)


def _resume(
    run: Path,
    task: Task,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    init: str | Path | None,
    dist: Distributed,
) -> int:
    """Load the newest readable checkpoint of ``run`` into ``model`` and ``optimizers`` and
    return its step; without one, start from ``init`` (or :meth:`Task.initialise`) at 0."""
    if dist.main:  # leftovers of a checkpoint whose writing was killed
        for tmp in (run / "checkpoints").glob(".step_*"):
            tmp.unlink(missing_ok=True)
    for _, path in checkpoint_paths(run):
        try:
            step = load_training_state(path, model, optimizers, task.kind)
            log.info("resuming %s from %s (step %d)", run, path.name, step)
            return step
        except FreeheadError as e:
            log.warning("skipping an unreadable checkpoint: %s", e)
    if init is not None:
        init_step = load_training_state(init, model, optimizers, task.kind)
        log.info("starting %s from %s (step %d of its run)", run, init, init_step)
    else:
        task.initialise(model)
    return 0


def _to_device(
    model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], device: torch.device
) -> None:
    """Move the model and its optimisers' state (but not their step counts) to ``device``."""
    model.to(device)
    for optimizer in optimizers.values():
        for state in optimizer.state.values():
            for k, v in state.items():
                if isinstance(v, Tensor) and k != "step":
                    state[k] = v.to(device)


@dataclass(frozen=True)
class _RunState:
    """What the steps of one process of a run share."""

    folder: Path
    task: Task
    config: Any
    dist: Distributed
    device: torch.device
    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` as the task's steps call it: in DDP under torchrun, else as it is."""
        if not self.dist.enabled:
            return module
        return DistributedDataParallel(
            module,
            device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None,
        )

    def loader(self, step: int) -> DataLoader:
        """The task's training samples in endless batches, this rank's share, continuing
        (by the sampler's seed) a run resumed at ``step``."""
        cfg: TrainConfig = self.config.train
        data_set = self.task.train_dataset()
        return DataLoader(
            data_set,
            batch_size=cfg.batch_size,
            sampler=InfiniteSampler(
                len(data_set),
                seed=cfg.seed * 100003 + step,
                rank=self.dist.rank,
                world=self.dist.world,
            ),
            num_workers=cfg.workers,
            persistent_workers=cfg.workers > 0,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
        )


class _LossSums:
    """The loss terms of the steps since the last row of ``train.csv``."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, terms: dict[str, Tensor]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach())
        self.count += 1

    def take(self, dist: Distributed) -> dict[str, float]:
        """The mean of each term over the steps and the ranks (every rank must call it);
        starts a new sum."""
        names = sorted(self.sums)
        means = torch.tensor([self.sums[k] / self.count for k in names], dtype=torch.float64)
        if dist.enabled:
            torch_dist.all_reduce(means)
            means /= dist.world
        self.sums, self.count = {}, 0
        return dict(zip(names, means.tolist(), strict=True))


def _train_steps(state: _RunState, base_lr: dict[str, list[float]], step: int) -> int:
    """Train from ``step`` to the configured number of steps, logging, checkpointing and
    validating on the way; returns the last step."""
    cfg: TrainConfig = state.config.train
    wrapped = state.task.distribute(state.model, state.wrap)
    train_log = CsvLog(state.folder / "train.csv", step) if state.dist.main else None
    val_log = CsvLog(state.folder / "val.csv", step) if state.dist.main else None
    loader = state.loader(step)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {state.task.kind}",
               disable=not state.dist.main, file=sys.stderr, dynamic_ncols=True, unit="step")  # fmt: skip
    # seconds of training so far, over every resumed part of the run
    started = time.time() - float(train_log.last.get("seconds", 0.0) if train_log else 0.0)
    losses = _LossSums()
    batches = iter(loader)
    while step < cfg.steps:
        batch = {k: v.to(state.device, non_blocking=True) for k, v in next(batches).items()}
        lr = cfg.lr_at(step)
        for name, optimizer in state.optimizers.items():
            for group, base in zip(optimizer.param_groups, base_lr[name], strict=True):
                group["lr"] = base * lr / cfg.lr
        state.model.train()
        losses.add(state.task.train_step(wrapped, batch, state.optimizers))
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = losses.take(state.dist)
            if train_log is not None:
                train_log.write({"step": step, "lr": lr, "seconds": time.time() - started} | row)
                bar.set_postfix(loss=f"{row['loss']:.4g}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            _sync_buffers(state.model, state.dist)
            if state.dist.main:
                _save_checkpoint(state.folder, state.model, state.optimizers, step, state.task, state.config,
                                 cfg.keep_checkpoints)  # fmt: skip
        if val_log is not None and (step % cfg.validate_every == 0 or step == cfg.steps):
            _validate(state, step, val_log)
    bar.close()
    return step


def _validate(state: _RunState, step: int, val_log: CsvLog) -> None:
    """The task's held-out figures after ``step`` steps, to the log and ``val.csv``."""
    state.model.eval()
    with torch.inference_mode():
        figures = state.task.validate(state.model, step)
    log.info("step %d validation: %s", step, _fmt(figures))
    val_log.write({"step": step} | figures)


def _finish(state: _RunState, step: int) -> Path:
    """Make the ranks' models agree (and check that they do), and write the final model
    file (rank 0); returns its path."""
    _sync_buffers(state.model, state.dist)
    final = state.folder / "model.safetensors"
    if state.dist.enabled:
        digests: list[Any] = [None] * state.dist.world
        torch_dist.all_gather_object(digests, _weights_digest(state.model))
        if state.dist.main:
            atomic_write_json(
                state.folder / "ranks.json",
                {
                    "world_size": state.dist.world,
                    "step": step,
                    "digests": digests,
                    "identical": len(set(digests)) == 1,
                },
            )
            if len(set(digests)) != 1:
                raise FreeheadError(f"ranks ended with different weights: {digests}")
    if state.dist.main:
        network, _ = state.task.export(state.model)
        save_model(final, network.cpu(), state.task.kind, state.config.model)
        log.info("wrote %s", final)
    return final


def _save_checkpoint(
    run: Path,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    step: int,
    task: Task,
    config: Any,
    keep: int,
) -> None:
    path = run / "checkpoints" / f"step_{step:08d}.safetensors"
    _, prefix = task.export(model)
    save_training_state(path, model, optimizers, step, task.kind, config, config.model, prefix)
    for _, old in checkpoint_paths(run)[max(1, keep) :]:
        old.unlink(missing_ok=True)


def _fmt(figures: dict[str, float]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )

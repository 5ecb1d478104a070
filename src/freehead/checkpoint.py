"""Model and training-state files: safetensors with a JSON header, never pickles.

A model file holds the weights and, in the safetensors metadata, ``freehead`` = "model",
``kind`` (which network) and ``config`` (the network's config as JSON), so a file is
enough to rebuild its network. A training state adds the optimiser (its tensors under
``optimizer/...``, the rest as JSON), the step and the whole run config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from freehead.config import config_from_dict, config_to_json
from freehead.errors import FreeheadError
from freehead.io_utils import atomic_path

FORMAT = "1"
M = TypeVar("M", bound=nn.Module)


def torch_hub_checkpoints() -> Path:
    """Where torch keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``); freehead
    only looks there, it never downloads."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(home) / "hub" / "checkpoints"


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(Path(path), suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors header metadata of ``path`` (a clear error if it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise FreeheadError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise FreeheadError(f"{path} is not a readable safetensors checkpoint ({e})") from e
    if "freehead" not in meta:
        raise FreeheadError(f"{path} is a safetensors file but not a freehead checkpoint")
    return meta


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise FreeheadError(f"{path} is not a readable safetensors checkpoint ({e})") from e


def save_model(path: str | Path, model: nn.Module, kind: str, config: Any) -> None:
    """Write ``model``'s weights and config (atomically)."""
    meta = {"freehead": "model", "format": FORMAT, "kind": kind, "config": config_to_json(config)}
    _write(Path(path), dict(model.state_dict()), meta)


def load_weights(path: str | Path, model: nn.Module, prefix: str = "") -> None:
    """Load the tensors under ``prefix`` of ``path`` into ``model`` (all must match)."""
    tensors = read_tensors(path)
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise FreeheadError(
            f"{path} does not fit this network (another architecture or config): "
            f"{first[1].strip() if len(first) > 1 else first[0]}"
        ) from e


def model_kind_and_config(path: str | Path, kind: str) -> dict[str, Any]:
    """The config dict of a model or training-state file of the given ``kind``."""
    meta = read_metadata(path)
    if meta.get("kind") != kind:
        raise FreeheadError(f"{path} holds a {meta.get('kind')!r} network, not a {kind!r} one")
    try:
        return json.loads(meta["model_config"] if "model_config" in meta else meta["config"])
    except (KeyError, json.JSONDecodeError) as e:
        raise FreeheadError(f"{path}: the checkpoint's config is missing or broken") from e


def load_model(model_type: type[M], config_type: type, kind: str, path: Path) -> M:
    """Build ``model_type(config)`` from the config stored in ``path`` (a model file or a
    training state of ``kind``) and load its weights."""
    config = config_from_dict(config_type, model_kind_and_config(path, kind), str(path))
    model = model_type(config)
    meta = read_metadata(path)
    prefix = meta.get("network_prefix", "model/") if meta["freehead"] == "training-state" else ""
    load_weights(path, model, prefix)
    return model


def save_training_state(
    path: str | Path,
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    step: int,
    kind: str,
    run_config: Any,
    model_config: Any,
    network_prefix: str = "",
) -> None:
    """Weights under ``model/``; each optimiser's tensors under
    ``optimizer/<name>/<param>/<key>`` and the rest as JSON. ``network_prefix`` is where the
    shipped network's weights sit inside ``model`` (e.g. ``generator.`` when the model
    also holds critics), so the file loads as that network too."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    plain: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        opt = optimizer.state_dict()
        plain_state: dict[str, dict[str, Any]] = {}
        for pid, state in opt["state"].items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer/{name}/{pid}/{key}"] = value
                else:
                    plain_state.setdefault(str(pid), {})[key] = value
        plain[name] = {"param_groups": opt["param_groups"], "state": plain_state}
    meta = {
        "freehead": "training-state",
        "format": FORMAT,
        "kind": kind,
        "step": str(step),
        "config": config_to_json(run_config),
        "model_config": config_to_json(model_config),
        "network_prefix": f"model/{network_prefix}",
        "optimizers": json.dumps(plain),
    }
    _write(Path(path), tensors, meta)


def load_training_state(
    path: str | Path, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], kind: str
) -> int:
    """Restore model and optimisers from ``path``; returns the step it was saved at."""
    meta = read_metadata(path)
    if meta.get("freehead") != "training-state" or meta.get("kind") != kind:
        raise FreeheadError(f"{path} is not a {kind} training state")
    load_weights(path, model, prefix="model/")
    tensors = read_tensors(path)
    try:
        saved = json.loads(meta["optimizers"])
        if set(saved) != set(optimizers):
            raise ValueError(f"optimisers {sorted(saved)} in the file, {sorted(optimizers)} here")
        for name, optimizer in optimizers.items():
            state: dict[int, dict[str, Any]] = {}
            prefix = f"optimizer/{name}/"
            for key, value in tensors.items():
                if key.startswith(prefix):
                    pid, k = key[len(prefix) :].split("/", 1)
                    state.setdefault(int(pid), {})[k] = value
            for pid, extra in saved[name]["state"].items():
                state.setdefault(int(pid), {}).update(extra)
            # JSON turned tuples (e.g. Adam's betas) into lists; "params" is a list of ids
            groups = [
                {
                    k: (tuple(v) if isinstance(v, list) and k != "params" else v)
                    for k, v in g.items()
                }
                for g in saved[name]["param_groups"]
            ]
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        return int(meta["step"])
    except (KeyError, ValueError, json.JSONDecodeError) as e:
        raise FreeheadError(f"{path}: the optimiser state does not fit this run ({e})") from e

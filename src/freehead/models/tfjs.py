"""A reader for TensorFlow.js model files, and PyTorch modules built from Keras layers models.

A TF.js model is a ``model.json`` (``modelTopology`` plus a ``weightsManifest``) and weight
shards. Some npm packages ship both inside JavaScript modules instead (nsfwjs: the JSON as a
JavaScript object literal in ``model.min.js``, each shard as one base64 string in a
``group*-shard*.min.js``); :func:`read_model_json` and :func:`read_shard` take either form.

:func:`read_weights` returns every weight as a named float32 numpy array, dequantised
(``uint8``/``uint16``: ``q * scale + min``; ``float16``). :class:`KerasGraph` runs a Keras
*layers* topology (the layer types MobileNetV2 needs) in PyTorch, with TF's 'same' padding
and, by default, batch norm folded into the convolution before it. Graph models (e.g. HSE
FaceRes) share the weight reader; no graph builder exists yet.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from freehead.errors import FreeheadError

_PLAIN_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANT_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


# ---------------------------------------------------------------------- model.json
class _JsLiteral:
    """A parser for the JSON-like JavaScript object literals minifiers write: unquoted keys,
    ``!0``/``!1`` for true/false, numbers such as ``.5`` or ``-.5``."""

    _NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
    _NAME = re.compile(r"[A-Za-z_$][\w$]*")
    _WORDS: ClassVar[dict[str, bool | None]] = {
        "true": True,
        "false": False,
        "null": None,
        "!0": True,
        "!1": False,
    }

    def __init__(self, text: str, pos: int) -> None:
        self.text, self.pos = text, pos

    def value(self) -> Any:
        c = self.text[self.pos]
        if c == "{":
            return self._items("}", self._pair, dict)
        if c == "[":
            return self._items("]", self.value, list)
        if c in "\"'":
            return self._string()
        for word, val in self._WORDS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return val
        m = self._NUMBER.match(self.text, self.pos)
        if m is None:
            raise ValueError(f"unexpected {self.text[self.pos : self.pos + 20]!r}")
        self.pos = m.end()
        number = float(m.group())
        return int(number) if re.fullmatch(r"-?\d+", m.group()) else number

    def _items(self, close: str, item, kind) -> Any:
        self.pos += 1
        out = []
        while self.text[self.pos] != close:
            out.append(item())
            if self.text[self.pos] == ",":
                self.pos += 1
        self.pos += 1
        return kind(out)

    def _pair(self) -> tuple[str, Any]:
        if self.text[self.pos] in "\"'":
            key = self._string()
        else:
            m = self._NAME.match(self.text, self.pos)
            if m is None:
                raise ValueError(f"bad key at {self.text[self.pos : self.pos + 20]!r}")
            key, self.pos = m.group(), m.end()
        if self.text[self.pos] != ":":
            raise ValueError(f"expected ':' after {key!r}")
        self.pos += 1
        return key, self.value()

    def _string(self) -> str:
        quote, start = self.text[self.pos], self.pos + 1
        end = start
        while self.text[end] != quote:
            end += 2 if self.text[end] == "\\" else 1
        self.pos = end + 1
        return json.loads('"' + self.text[start:end].replace('\\"', '"').replace('"', '\\"') + '"')


def parse_model_text(text: str) -> dict:
    """A ``model.json`` as a dict, from JSON or from a JavaScript module embedding it."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return json.loads(stripped)
    key = text.find("modelTopology")
    start = text.rfind("{", 0, key) if key >= 0 else -1
    if start < 0:
        raise ValueError("no modelTopology found")
    return _JsLiteral(text, start).value()


def read_model_json(path: Path) -> dict:
    """Read ``model.json`` (or a ``.js`` module embedding it); a FreeheadError if unreadable."""
    try:
        model = parse_model_text(Path(path).read_text())
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as e:
        raise FreeheadError(f"cannot read the TF.js model {path} ({e}); fetch it again") from e
    if "weightsManifest" not in model:
        raise FreeheadError(f"{path} has no weightsManifest; fetch it again")
    return model


# ---------------------------------------------------------------------- weights
def read_shard(path: Path) -> bytes:
    """A weight shard's bytes: a plain ``.bin`` or the base64 string of a ``.js`` module."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.suffix != ".js":
            return data
        strings = re.findall(rb"\"([A-Za-z0-9+/=]{64,})\"", data)
        if len(strings) != 1:
            raise ValueError(f"{len(strings)} base64 payloads, expected 1")
        return base64.b64decode(strings[0], validate=True)
    except (OSError, ValueError) as e:
        raise FreeheadError(f"cannot read the weight shard {path} ({e}); fetch it again") from e


def shard_file(folder: Path, name: str) -> Path:
    """The file of manifest path ``name`` in ``folder``: as named, or with ``.bin``/``.min.js``."""
    for candidate in (name, f"{name}.bin", f"{name}.min.js", f"{name}.js"):
        if (Path(folder) / candidate).is_file():
            return Path(folder) / candidate
    raise FreeheadError(f"the weight shard {name} is missing from {folder}; fetch it again")


def decode_weights(manifest: Sequence[Mapping], buffers: Sequence[bytes]) -> dict[str, np.ndarray]:
    """Named float32 (or int32/bool) arrays from a ``weightsManifest`` and each group's bytes
    (its shards concatenated), dequantised."""
    out = {}
    for group, buffer in zip(manifest, buffers, strict=True):
        offset = 0
        for spec in group["weights"]:
            array, offset = _decode_one(spec, buffer, offset)
            out[spec["name"]] = array
        if offset != len(buffer):
            raise FreeheadError(f"weight group {group['paths']} holds {len(buffer)} bytes, "
                                f"the manifest {offset}; fetch the model again")  # fmt: skip
    return out


def _decode_one(spec: Mapping, buffer: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = tuple(int(s) for s in spec["shape"])
    count = math.prod(shape)
    quant = spec.get("quantization")
    dtype = np.dtype(_QUANT_DTYPES[quant["dtype"]] if quant else _PLAIN_DTYPES[spec["dtype"]])
    end = offset + count * dtype.itemsize
    if end > len(buffer):
        raise FreeheadError(f"weight {spec['name']} runs past its shard; fetch the model again")
    raw = np.frombuffer(buffer, dtype=dtype.newbyteorder("<"), count=count, offset=offset)
    if quant and quant["dtype"] != "float16":
        values = raw.astype(np.float64) * quant["scale"] + quant["min"]
        raw = values.astype(np.float32)
    elif raw.dtype.kind == "f":
        raw = raw.astype(np.float32)
    return raw.reshape(shape).copy(), end


def read_weights(model: Mapping, folder: Path) -> dict[str, np.ndarray]:
    """Every weight of a TF.js ``model`` (from :func:`read_model_json`) whose shards lie in
    ``folder``, by name."""
    manifest = model["weightsManifest"]
    buffers = [b"".join(read_shard(shard_file(folder, p)) for p in g["paths"]) for g in manifest]
    return decode_weights(manifest, buffers)


# ---------------------------------------------------------------------- padding
def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's 'same' padding along one axis as (before, after): the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Conv(nn.Module):
    """A Keras Conv2D/DepthwiseConv2D, optionally with a batch norm folded in."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, config: Mapping,
                 groups: int) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.stride = tuple(config["strides"])
        self.dilation = tuple(config.get("dilation_rate", (1, 1)))
        self.same = config["padding"] == "same"
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C', H', W')``."""
        if self.same:
            kh, kw = self.weight.shape[-2:]
            top, bottom = same_padding(x.shape[-2], kh, self.stride[0], self.dilation[0])
            left, right = same_padding(x.shape[-1], kw, self.stride[1], self.dilation[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def fold(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Fold ``y * scale + shift`` (per output channel) into the weights."""
        bias = torch.zeros_like(shift) if self.bias is None else self.bias.data
        self.weight.data = self.weight.data * scale[:, None, None, None]
        self.bias = nn.Parameter(bias * scale + shift, requires_grad=False)


class _Affine(nn.Module):
    """An inference-mode batch norm: ``x * scale + shift`` per channel."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale[None, :, None, None])
        self.register_buffer("shift", shift[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        return x * self.scale + self.shift


class _Relu(nn.Module):
    def __init__(self, max_value: float | None) -> None:
        super().__init__()
        self.max_value = max_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> same, clipped to [0, max_value]."""
        return F.relu(x) if self.max_value is None else torch.clamp(x, 0.0, self.max_value)


class _Pad(nn.Module):
    def __init__(self, padding: Any) -> None:
        super().__init__()
        (top, bottom), (left, right) = _pairs(padding)
        self.pad = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H + top + bottom, W + left + right)``."""
        return F.pad(x, self.pad)


def _pairs(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    a, b = padding
    a = (a, a) if isinstance(a, int) else tuple(a)
    b = (b, b) if isinstance(b, int) else tuple(b)
    return a, b  # type: ignore[return-value]


class _Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        """The sum of same-shaped inputs."""
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` unchanged."""
        return x


# ---------------------------------------------------------------------- layers -> modules
def _tensor(weights: Mapping[str, np.ndarray], name: str) -> torch.Tensor:
    if name not in weights:
        raise FreeheadError(f"the TF.js weights lack {name}; fetch the model again")
    return torch.from_numpy(np.ascontiguousarray(weights[name], dtype=np.float32))


def _bias(weights: Mapping, name: str, config: Mapping) -> torch.Tensor | None:
    return _tensor(weights, f"{name}/bias") if config.get("use_bias", True) else None


def _conv(name: str, config: Mapping, weights: Mapping) -> _Conv:
    kernel = _tensor(weights, f"{name}/kernel")  # (kh, kw, in, out)
    return _Conv(kernel.permute(3, 2, 0, 1).contiguous(), _bias(weights, name, config), config, 1)


def _depthwise(name: str, config: Mapping, weights: Mapping) -> _Conv:
    kernel = _tensor(weights, f"{name}/depthwise_kernel")  # (kh, kw, C, mult)
    kh, kw, channels, mult = kernel.shape
    weight = kernel.permute(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw).contiguous()
    return _Conv(weight, _bias(weights, name, config), config, channels)


def batch_norm_affine(name: str, config: Mapping, weights: Mapping
                      ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """A Keras BatchNormalization as per-channel (scale, shift), both ``(C,)``."""
    mean = _tensor(weights, f"{name}/moving_mean")
    var = _tensor(weights, f"{name}/moving_variance")
    ones = torch.ones_like(mean)
    gamma = _tensor(weights, f"{name}/gamma") if config.get("scale", True) else ones
    beta = _tensor(weights, f"{name}/beta") if config.get("center", True) else 0 * ones
    scale = gamma / torch.sqrt(var + float(config.get("epsilon", 1e-3)))
    return scale, beta - mean * scale


def _activation(kind: str) -> nn.Module:
    if kind == "linear":
        return _Identity()
    if kind in ("relu", "relu6"):
        return _Relu(6.0 if kind == "relu6" else None)
    raise FreeheadError(f"the TF.js activation {kind!r} is not supported")


def layer_module(layer: Mapping, weights: Mapping) -> nn.Module:
    """The PyTorch module of one Keras layer (``class_name``, ``config``)."""
    kind, config, name = layer["class_name"], layer["config"], layer["config"]["name"]
    if kind in ("Conv2D", "DepthwiseConv2D"):
        conv = (_conv if kind == "Conv2D" else _depthwise)(name, config, weights)
        act = config.get("activation", "linear")
        return conv if act == "linear" else nn.Sequential(conv, _activation(act))
    if kind == "BatchNormalization":
        return _Affine(*batch_norm_affine(name, config, weights))
    if kind == "ReLU":
        if config.get("negative_slope", 0) or config.get("threshold", 0):
            raise FreeheadError(f"layer {name}: leaky/thresholded ReLU is not supported")
        return _Relu(config.get("max_value"))
    if kind == "Activation":
        return _activation(config["activation"])
    if kind == "ZeroPadding2D":
        return _Pad(config["padding"])
    if kind == "Add":
        return _Add()
    if kind in ("InputLayer", "Dropout"):
        return _Identity()
    raise FreeheadError(f"the Keras layer type {kind} ({name}) is not supported")


def _inputs(layer: Mapping) -> list[str]:
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise FreeheadError(f"layer {layer['name']} is shared; shared layers are not supported")
    return [inbound[0] for inbound in nodes[0]] if nodes else []


def keras_layers(model: Mapping) -> list[dict]:
    """The layer list of a TF.js Keras layers model (functional ``Model`` config)."""
    topology = model["modelTopology"]
    config = topology.get("model_config", topology)["config"]
    return list(config["layers"])


class KerasGraph(nn.Module):
    """A Keras functional model (up to ``last``) run in PyTorch, channels first.

    ``forward`` takes ``(B, C, H, W)`` and returns the outputs of the layers named in
    ``outputs``. With ``fold=True`` each BatchNormalization fed only by a convolution (whose
    own output is not asked for) is folded into it.
    """

    def __init__(self, model: Mapping, weights: Mapping[str, np.ndarray], last: str,
                 outputs: Iterable[str], fold: bool = True) -> None:  # fmt: skip
        super().__init__()
        layers = _up_to(keras_layers(model), last)
        self.outputs = tuple(outputs)
        names = {layer["name"] for layer in layers}
        missing = [o for o in self.outputs if o not in names]
        if missing:
            raise FreeheadError(f"the model has no layer {missing[0]} before {last}")
        self.layers = nn.ModuleDict()
        self.inputs: dict[str, list[str]] = {}
        alias: dict[str, str] = {}
        for layer in layers:
            ins = [alias.get(i, i) for i in _inputs(layer)]
            if fold and self._try_fold(layer, ins, layers, weights):
                alias[layer["name"]] = ins[0]
                continue
            self.layers[layer["name"]] = layer_module(layer, weights)
            self.inputs[layer["name"]] = ins
        self.alias = alias
        self.input_name = layers[0]["name"]

    def _try_fold(
        self, layer: Mapping, ins: list[str], layers: list[dict], weights: Mapping
    ) -> bool:
        if layer["class_name"] != "BatchNormalization" or len(ins) != 1:
            return False
        if ins[0] not in self.layers or ins[0] in self.outputs:
            return False
        conv = self.layers[ins[0]]
        if not isinstance(conv, _Conv):
            return False
        users = [x for x in layers if ins[0] in _inputs(x)]
        if len(users) != 1:
            return False
        conv.fold(*batch_norm_affine(layer["name"], layer["config"], weights))
        return True

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, C, H, W)`` -> ``{layer name: (B, C_l, H_l, W_l)}`` for the asked layers."""
        values: dict[str, torch.Tensor] = {}
        for name, module in self.layers.items():
            ins = self.inputs[name]
            values[name] = module(x) if not ins else module(*(values[i] for i in ins))
        return {o: values[self.alias.get(o, o)] for o in self.outputs}


def _up_to(layers: list[dict], last: str) -> list[dict]:
    names = [layer["name"] for layer in layers]
    if last not in names:
        raise FreeheadError(f"the model has no layer {last}")
    return layers[: names.index(last) + 1]

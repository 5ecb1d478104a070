"""PyTorch modules built from TF.js *graph* models (frozen TensorFlow graphs, e.g. HSE FaceRes).

A graph model's ``modelTopology`` is a list of TensorFlow nodes (``name``, ``op``, ``input``,
``attr``); every ``Const`` node's value is a weight of the manifest, read by
:func:`freehead.models.tfjs.read_weights`. :class:`GraphModule` runs the part of the graph
that the asked outputs need, channels first: 4-D values are ``(B, C, H, W)`` inside (the
graph's NHWC axes, constants and reductions are mapped), other values keep their layout.

With ``fold=True`` a per-channel ``Mul``/``Add``/``BiasAdd`` by a constant right after a
convolution is folded into its weights, and ``Relu`` → ``Minimum(c)`` → ``Maximum(≤ 0)``
(Keras' ReLU6 as TF writes it) becomes one clamp; both only where the intermediate value has
no other reader and is not asked for.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from freehead.errors import FreeheadError
from freehead.models.tfjs import _Conv

_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


# ---------------------------------------------------------------------- attributes
def _attr(node: Mapping, key: str, default: Any = None) -> Any:
    """A node attribute as a Python value: ints, floats, bools, strings and their lists."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "s" in items:
            return [base64.b64decode(v).decode() for v in items["s"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    return default


def _source(name: str) -> str:
    """A node name from an input reference (``name``, ``name:0``; ``^name`` is a control edge)."""
    return name.lstrip("^").split(":")[0]


# ---------------------------------------------------------------------- op modules
class _Binary(nn.Module):
    """An elementwise op of two values, or of one value and a stored constant."""

    _OPS: ClassVar[dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {
        "Add": torch.add,
        "AddV2": torch.add,
        "BiasAdd": torch.add,
        "Sub": torch.sub,
        "Mul": torch.mul,
        "Minimum": torch.minimum,
        "Maximum": torch.maximum,
    }

    def __init__(self, op: str, constant: torch.Tensor | None, constant_first: bool) -> None:
        super().__init__()
        self.fn = self._OPS[op]
        self.constant_first = constant_first
        self.register_buffer("constant", constant)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        """Two tensors, or one tensor and the constant, broadcast."""
        if self.constant is None:
            return self.fn(xs[0], xs[1])
        if self.constant_first:
            return self.fn(self.constant, xs[0])
        return self.fn(xs[0], self.constant)


class _Clamp(nn.Module):
    """ReLU (``high=None``), or a clamp to ``[0, high]``."""

    def __init__(self, high: float | None = None) -> None:
        super().__init__()
        self.high = high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape -> same."""
        return F.relu(x) if self.high is None else torch.clamp(x, 0.0, self.high)


class _Unary(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape -> same."""
        return self.fn(x)


class _Mean(nn.Module):
    def __init__(self, dims: tuple[int, ...], keepdim: bool) -> None:
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over the (channels-first) ``dims``."""
        return x.mean(self.dims, keepdim=self.keepdim)


class _MatMul(nn.Module):
    """``(B, I) @ (I, O)`` with an optional bias and ReLU (TF's ``_FusedMatMul``)."""

    def __init__(self, kernel: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(kernel.t().contiguous(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, I)`` -> ``(B, O)``."""
        y = F.linear(x, self.weight, self.bias)
        return F.relu(y) if self.relu else y


class _Input(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input, unchanged."""
        return x


_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Identity": lambda x: x,
    "Relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "Sigmoid": torch.sigmoid,
    "Softmax": lambda x: torch.softmax(x, -1),
    "Tanh": torch.tanh,
}


# ---------------------------------------------------------------------- the graph
class GraphModule(nn.Module):
    """A TF.js graph model (up to ``outputs``) run in PyTorch.

    ``forward`` takes the single input channels first, ``(B, C, H, W)``, and returns
    ``{output name: value}``; 4-D values are channels first, 2-D ones ``(B, D)``.
    """

    def __init__(self, model: Mapping, weights: Mapping[str, np.ndarray],
                 outputs: Sequence[str], fold: bool = True) -> None:  # fmt: skip
        super().__init__()
        nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
        self.outputs = tuple(_source(o) for o in outputs)
        order = _needed(nodes, self.outputs)
        readers = _readers(nodes, order)
        self.weights = weights
        self.fold = fold
        self.steps = nn.ModuleDict()
        self.inputs: dict[str, list[str]] = {}
        self.rank: dict[str, int] = {}
        self.alias: dict[str, str] = {}
        self._readers = readers
        for name in order:
            node = nodes[name]
            if node["op"] != "Const":
                self._add(node, nodes)
        del self.weights, self._readers

    # -- building
    def _const(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise FreeheadError(f"the TF.js weights lack {name}; fetch the model again")
        return self.weights[name]

    def _add(self, node: Mapping, nodes: Mapping) -> None:
        name, op = node["name"], node["op"]
        ins = [_source(i) for i in node.get("input", []) if not i.startswith("^")]
        originals = [i for i in ins if nodes[i]["op"] != "Const"]
        values = [self.alias.get(i, i) for i in originals]
        consts = [self._const(i) if nodes[i]["op"] == "Const" else None for i in ins]
        if self.fold and self._try_fold(name, op, values, consts, originals):
            return
        module, rank = self._module(node, values, consts, ins)
        self.steps[_key(name)] = module
        self.inputs[name] = values
        self.rank[name] = rank

    def _module(self, node: Mapping, values: list[str], consts: list, ins: list[str]
                ) -> tuple[nn.Module, int]:  # fmt: skip
        op, name = node["op"], node["name"]
        if op == "Placeholder":
            dims = node.get("attr", {}).get("shape", {}).get("shape", {}).get("dim", [])
            return _Input(), len(dims) or 4
        if op in ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative"):
            return _conv_module(node, ins, self.weights), 4
        if op in _Binary._OPS:
            return self._binary(node, values, consts)
        if op == "Relu":
            return _Clamp(), self.rank[values[0]]
        if op in _UNARY:
            return _Unary(_UNARY[op]), self.rank[values[0]]
        if op == "Mean":
            return self._mean(node, values, ins)
        if op in ("MatMul", "_FusedMatMul"):
            return _matmul_module(node, ins, self.weights), 2
        raise FreeheadError(f"the TF.js graph op {op} ({name}) is not supported")

    def _binary(self, node: Mapping, values: list[str], consts: list
                ) -> tuple[nn.Module, int]:  # fmt: skip
        rank = max(self.rank[v] for v in values)
        if len(values) == 2:
            return _Binary(node["op"], None, False), rank
        if len(values) != 1 or len(consts) != 2:
            raise FreeheadError(f"the TF.js graph node {node['name']} has odd inputs")
        first = consts[0] is not None
        constant = consts[0] if first else consts[1]
        return _Binary(node["op"], _layout(constant, rank), first), rank

    def _mean(self, node: Mapping, values: list[str], ins: list[str]) -> tuple[nn.Module, int]:
        rank = self.rank[values[0]]
        axes = [int(a) % rank for a in np.atleast_1d(self._const(ins[1]))]
        dims = tuple(sorted(_NHWC_TO_NCHW[a] if rank == 4 else a for a in axes))
        keep = bool(_attr(node, "keep_dims", False))
        return _Mean(dims, keep), rank if keep else rank - len(dims)

    def _try_fold(self, name: str, op: str, values: list[str], consts: list,
                  originals: list[str]) -> bool:  # fmt: skip
        if len(values) != 1 or len(consts) != 2:
            return False
        if values[0] in self.outputs or originals[0] in self.outputs:
            return False
        source = values[0]
        if len(self._readers.get(source, ())) != 1:
            return False
        key = _key(source)  # a ModuleDict has no get()
        step = self.steps[key] if key in self.steps else None  # noqa: SIM401
        constant = next((c for c in consts if c is not None), None)
        if constant is None:
            return False
        if isinstance(step, _Conv) and op in ("Mul", "Add", "AddV2", "BiasAdd"):
            channels = step.weight.shape[0]
            if constant.size not in (1, channels):
                return False
            c = torch.from_numpy(np.broadcast_to(constant.reshape(-1), (channels,)).copy())
            scale, shift = (c, torch.zeros_like(c)) if op == "Mul" else (torch.ones_like(c), c)
            step.fold(scale.float(), shift.float())
        elif isinstance(step, _Clamp) and constant.size == 1:
            value = float(constant.reshape(-1)[0])
            if op == "Minimum" and step.high is None and value >= 0:
                step.high = value
            elif not (op == "Maximum" and value <= 0):
                return False
        else:
            return False
        self.alias[name] = source
        self._readers[source] = self._readers.pop(name, [])
        return True

    # -- running
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, C, H, W)`` -> ``{output name: value}``."""
        values: dict[str, torch.Tensor] = {}
        for name, ins in self.inputs.items():
            module = self.steps[_key(name)]
            values[name] = module(x) if not ins else module(*(values[i] for i in ins))
        return {o: values[self.alias.get(o, o)] for o in self.outputs}


def _key(name: str) -> str:
    """A node name usable as a ModuleDict key (no dots)."""
    return name.replace(".", "·")


def _needed(nodes: Mapping[str, Mapping], outputs: Sequence[str]) -> list[str]:
    """The nodes ``outputs`` depend on, inputs before readers."""
    order: list[str] = []
    seen: set[str] = set()
    for out in outputs:
        if out not in nodes:
            raise FreeheadError(f"the TF.js graph has no node {out}")
        stack: list[tuple[str, bool]] = [(out, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                order.append(name)
                continue
            if name in seen:
                continue
            seen.add(name)
            stack.append((name, True))
            for i in reversed(nodes[name].get("input", [])):
                if not i.startswith("^") and _source(i) not in seen:
                    stack.append((_source(i), False))
    return order


def _readers(nodes: Mapping[str, Mapping], order: Sequence[str]) -> dict[str, list[str]]:
    """For each needed node, the needed nodes that read it."""
    out: dict[str, list[str]] = {}
    for name in order:
        for i in nodes[name].get("input", []):
            if not i.startswith("^"):
                out.setdefault(_source(i), []).append(name)
    return out


def _layout(constant: np.ndarray, rank: int) -> torch.Tensor:
    """A constant broadcastable against a channels-first value of ``rank``."""
    t = torch.from_numpy(np.ascontiguousarray(constant, dtype=np.float32))
    if rank == 4 and t.dim() == 1:
        return t.reshape(1, -1, 1, 1)
    if rank == 4 and t.dim() == 4:
        return t.permute(0, 3, 1, 2).contiguous()
    return t


def _conv_module(node: Mapping, ins: list[str], weights: Mapping) -> _Conv:
    op, name = node["op"], node["name"]
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise FreeheadError(f"{name}: only NHWC graphs are supported")
    padding = _attr(node, "padding", "VALID")
    if padding not in ("SAME", "VALID"):
        raise FreeheadError(f"{name}: padding {padding} is not supported")
    kernel = torch.from_numpy(np.ascontiguousarray(weights[ins[1]], dtype=np.float32))
    depthwise = "Depthwise" in op
    if depthwise:  # (kh, kw, C, mult)
        kh, kw, channels, mult = kernel.shape
        weight = kernel.permute(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw).contiguous()
        groups = channels
    else:  # (kh, kw, in, out)
        weight, groups = kernel.permute(3, 2, 0, 1).contiguous(), 1
    strides = _attr(node, "strides", [1, 1, 1, 1])
    dilations = _attr(node, "dilations", [1, 1, 1, 1])
    config = {"strides": strides[1:3], "dilation_rate": dilations[1:3], "padding": padding.lower()}
    conv = _Conv(weight, None, config, groups)
    fused = _attr(node, "fused_ops", [])
    if fused:
        if fused[0] != "BiasAdd" or any(f not in ("BiasAdd", "Relu", "Relu6") for f in fused):
            raise FreeheadError(f"{name}: fused ops {fused} are not supported")
        bias = torch.from_numpy(np.ascontiguousarray(weights[ins[2]], dtype=np.float32))
        conv.fold(torch.ones_like(bias), bias)
        if len(fused) > 1:
            return nn.Sequential(conv, _Clamp(6.0 if fused[1] == "Relu6" else None))  # type: ignore[return-value]
    return conv


def _matmul_module(node: Mapping, ins: list[str], weights: Mapping) -> _MatMul:
    name = node["name"]
    if _attr(node, "transpose_a", False):
        raise FreeheadError(f"{name}: transpose_a is not supported")
    kernel = torch.from_numpy(np.ascontiguousarray(weights[ins[1]], dtype=np.float32))
    if _attr(node, "transpose_b", False):
        kernel = kernel.t()
    fused = _attr(node, "fused_ops", []) if node["op"] == "_FusedMatMul" else []
    if any(f not in ("BiasAdd", "Relu") for f in fused):
        raise FreeheadError(f"{name}: fused ops {fused} are not supported")
    bias = None
    if "BiasAdd" in fused:
        bias = torch.from_numpy(np.ascontiguousarray(weights[ins[2]], dtype=np.float32))
    return _MatMul(kernel, bias, "Relu" in fused)

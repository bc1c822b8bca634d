"""`to-float32`: float64 / float16 exports (torch .double()/.half(), skl2onnx DoubleTensorType) through `normalize`."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx
import pytest

from normalize_helpers import load, ort_run, parse, rand, run_pass

from passes.check_supported import check_normal_form
from passes.normalize import Normalize
from passes.to_float32 import ToFloat32


def _all_float32(proto: onnx.ModelProto) -> None:
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
    for init in proto.graph.initializer:
        assert init.data_type not in floats - {onnx.TensorProto.FLOAT}, init.name
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        assert value.type.tensor_type.elem_type not in floats - {onnx.TensorProto.FLOAT}, value.name


@pytest.mark.parametrize("opset", [11, 17])
@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_torch_double_and_half_exports_become_float32(dtype: str, opset: int) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(4 * 3 * 4, 5)).eval()
    with torch.no_grad():
        module[1].running_var.uniform_(0.5, 1.5)
        module[1].running_mean.normal_(0, 0.3)
    typed = module.to(getattr(torch, dtype))
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(typed, (torch.zeros(1, 2, 6, 8, dtype=getattr(torch, dtype)),), buffer, dynamo=False,
                          opset_version=opset, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    assert proto.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT
    result = run_pass(Normalize, load(proto))
    assert check_normal_form(result.model) == [] and result.stats["to-float32"]["constants"] > 0
    after = result.model.to_proto()
    _all_float32(after)
    x = rand(3, 2, 6, 8, seed=1)
    with torch.no_grad():  # the typed module's own weights, computed in float64 (onnxruntime has no double Conv)
        want = typed.double()(torch.from_numpy(x.astype(np.float64))).numpy()
    got = np.concatenate([ort_run(after, {"input": row[None]})["output"] for row in x])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 if dtype == "float64" else 2e-2)


@pytest.mark.parametrize("zipmap", [False, True])
@pytest.mark.parametrize("kind", ["LogisticRegression", "MLPClassifier", "LinearRegression", "scaled"])
def test_skl2onnx_double_tensor_type_becomes_float32(kind: str, zipmap: bool) -> None:
    # skl2onnx writes linear models in double as MatMul/Add/Softmax with the ArgMax of the logits
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5)) * 2 + 1
    y = (x[:, 0] > 1).astype(int) + (x[:, 1] > 1)
    est: Any = {"LogisticRegression": lambda: LogisticRegression(max_iter=300),
                "MLPClassifier": lambda: MLPClassifier((8,), max_iter=300, random_state=0),
                "LinearRegression": LinearRegression,
                "scaled": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))}[kind]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x, x @ rng.normal(size=5) if kind == "LinearRegression" else y)
        protos = [to_onnx(est, initial_types=[("input", DoubleTensorType([None, 5]))],
                          target_opset={"": 13, "ai.onnx.ml": 1},
                          options={"zipmap": z} if kind != "LinearRegression" else None) for z in (False, zipmap)]
    # with zipmap, skl2onnx's double model is invalid (ZipMap takes no double): the reference is the
    # same estimator's export without it, whose scores are the last output
    reference, proto = protos
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    after = model.to_proto()
    _all_float32(after)
    assert len(after.graph.output) == 1
    for row in x[:6]:
        want = list(ort_run(reference, {"input": row[None]}).values())[-1]
        (got,) = ort_run(after, {"input": row[None].astype(np.float32)}).values()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_half_weights_cast_up_and_constant_nodes() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 3] y) {
        w = Cast <to = 1> (wh)
        b = Constant <value = double[3] {0.5, -0.25, 1.0}> ()
        bf = Cast <to = 1> (b)
        g = Gemm <transB = 1> (x, w, bf)
        d = Cast <to = 11> (g)
        y = Cast <to = 1> (d)
    }
    """, wh=rand(3, 4).astype(np.float16))
    result = run_pass(ToFloat32, load(proto))
    assert result.stats == {"tensors": 0, "constants": 1, "attributes": 2}  # no inferred dtypes yet
    after = result.model.to_proto()
    _all_float32(after)
    x = rand(1, 4, seed=3)
    np.testing.assert_allclose(ort_run(after, {"x": x})["y"], ort_run(proto, {"x": x})["y"], rtol=1e-6)
    model = run_pass(Normalize, load(proto)).model
    assert [n.op for n in model.graph.nodes] == ["Gemm"] and check_normal_form(model) == []


def test_bfloat16_inputs_and_casts_become_float32() -> None:
    """A bfloat16 graph input (onnx-graphsurgeon has no numpy type for it and keeps the raw ONNX
    element type) becomes float32, and the model computes x @ w in float32 with w as stored."""
    w = rand(4, 3, seed=2)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Cast", ["w"], ["wb"], to=onnx.TensorProto.BFLOAT16),
         onnx.helper.make_node("MatMul", ["x", "wb"], ["y"])], "bf16",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.BFLOAT16, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.BFLOAT16, [1, 3])],
        [onnx.numpy_helper.from_array(w, "w")])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    result = run_pass(Normalize, load(proto))
    assert check_normal_form(result.model) == []
    after = result.model.to_proto()
    _all_float32(after)
    assert after.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = rand(1, 4, seed=3)
    np.testing.assert_allclose(ort_run(after, {"x": x})["y"], x @ w, rtol=1e-5, atol=1e-5)

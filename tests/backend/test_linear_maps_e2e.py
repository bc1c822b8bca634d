"""Constant linear maps of the spatial axes end to end: linear Resize (resize-linear: every
coordinate transformation mode, factors 2 and 3, 1-D and 2-D) and torch dynamo's decomposed
adaptive average pooling with windows of different sizes (spatial-linear), each as two grouped
convs. The interpreter agrees with onnxruntime on the original model (top-1, and every output
within the error bound of its run, backends/lower_bounds.py); the C equals the interpreter bit
for bit (gcc, clang ASan + UBSan)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")


def resized_model(spatial: list[int], factor: int, mode: str) -> onnx.ModelProto:
    """conv (same padding) -> relu -> Resize{linear, mode} x factor -> flatten -> gemm."""
    rng = np.random.default_rng(factor + len(spatial))
    k = [3] * len(spatial)
    out = [n * factor for n in spatial]
    inits = {"W": rng.normal(0, 0.5, (3, 2, *k)), "B": rng.normal(0, 0.1, 3),
             "S": np.array([1, 1, *[factor] * len(spatial)], np.float32),
             "G": rng.normal(0, 0.3, (5, 3 * int(np.prod(out)))), "C": rng.normal(0, 0.1, 5)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1] * 2 * len(spatial), kernel_shape=k),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Resize", ["r", "", "S"], ["u"], name="resize", mode="linear",
                              coordinate_transformation_mode=mode),
             helper.make_node("Flatten", ["u"], ["f"]),
             helper.make_node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "resize",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


def _check(proto: onnx.ModelProto, xs: np.ndarray, tmp_path: Path, label: str, c: bool) -> dict[str, float]:
    """Compile; the program has the two grouped convs of each map; interpreter vs onnxruntime on the
    original; with ``c``, C == interpreter on 20 inputs."""
    name = proto.graph.input[0].name
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    grouped = [s for s in program.steps if s.op.startswith("conv") and int(s.attrs.get("group", 1)) > 1]
    assert len(grouped) >= 1, [s.op for s in program.steps]
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, name)
    assert figures["top1"] >= TOP1 and 0.0 < figures["bound"] < float("inf"), figures
    if c:
        inputs = [quantize_inputs(program, {name: x[None]}) for x in xs[:20]]
        check_c_equals_interpreter(program, tmp_path / "c", inputs, label)
    return figures


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("spatial", [[9], [5, 4]], ids=["1d", "2d"])
def test_linear_resize_agrees_with_onnxruntime_within_its_bound(mode: str, factor: int, spatial: list[int],
                                                                tmp_path: Path) -> None:
    proto = resized_model(spatial, factor, mode)
    xs = np.random.default_rng(1).standard_normal((60, 2, *spatial)).astype(np.float32)
    # C for one factor per mode and dimension (the conv kernels are the same code for all)
    _check(proto, xs, tmp_path, f"resize_{mode}_{factor}_{len(spatial)}d", c=factor == (2 if len(spatial) == 2 else 3))


def _dynamo(net: Any, shape: tuple[int, ...]) -> onnx.ModelProto:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.randn(*shape),), dynamo=True, verbose=False).save(buffer)
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize(("size", "out"), [(7, (3, 3)), (10, (3, 3)), (8, (3, 2))], ids=["3of7", "3of10", "3x2of8"])
def test_dynamo_adaptive_pool_with_uneven_windows(size: int, out: tuple[int, int], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(out), nn.Flatten(),
                        nn.Linear(4 * out[0] * out[1], 6))
    proto = _dynamo(net, (1, 1, size, size))
    assert "GatherND" in [n.op_type for n in proto.graph.node]       # torch.export's decomposition
    xs = np.random.default_rng(2).standard_normal((100, 1, size, size)).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert [n.op for n in normalized.graph.nodes].count("Conv") == 3
    name = proto.graph.input[0].name
    for x in xs[:10]:
        feed = {name: x[None]}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        expected = net(torch.from_numpy(xs[:10])).numpy()
    np.testing.assert_allclose(np.concatenate([ort.session(normalized).run(None, {name: x[None]})[0] for x in xs[:10]]),
                               expected, rtol=1e-4, atol=1e-5)
    _check(proto, xs, tmp_path, f"adaptive_{size}_{out[0]}x{out[1]}", c=True)


@pytest.mark.parametrize("align_corners", [False, True], ids=["half", "corners"])
def test_dynamo_linear_1d_interpolation(align_corners: bool, tmp_path: Path) -> None:
    """torch.export writes F.interpolate(mode='linear') as GatherNDs and ``a + (b - a) * w``."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv1d(2, 3, 3, padding=1)
            self.fc = nn.Linear(3 * 30, 4)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            up = nn.functional.interpolate(torch.relu(self.c(x)), scale_factor=3, mode="linear",
                                           align_corners=align_corners)
            return self.fc(up.flatten(1))

    proto = _dynamo(Net(), (1, 2, 10))
    xs = np.random.default_rng(3).standard_normal((100, 2, 10)).astype(np.float32)
    _check(proto, xs, tmp_path, f"dynamo_linear1d_{align_corners}", c=not align_corners)

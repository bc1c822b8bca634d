"""Pads fold-pad cannot absorb, end to end (pad-to-conv): reflect/replicate/constant padding of 1-D
and 2-D maps, a zero pad before MaxPool (folded into its pads after a ReLU, a conv otherwise), a pad
read by an Add and a pad as the graph's tail, from torch's legacy and dynamo exporters and
hand-built graphs. The interpreter agrees with onnxruntime on the original model (top-1, every
output within the error bound of its run, backends/lower_bounds.py); the C equals the interpreter
bit for bit (gcc, clang ASan + UBSan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program, export_torch

from transpiler.data import Dataset
from transpiler.lir.ir import Program
from transpiler.lir.qio import quantize_inputs
from transpiler.model import OnnxModel


def _torch_net(kind: str) -> tuple[object, tuple[int, ...]]:
    """A small conv net around one kind of padding, and its input shape."""
    torch = pytest.importorskip("torch")
    nn, fn = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            one_d = kind.endswith("1d")
            conv = nn.Conv1d if one_d else nn.Conv2d
            self.c1 = conv(2, 4, 3)
            self.c2 = conv(4, 3, 3)
            self.pad = {"reflect2d": nn.ReflectionPad2d((1, 2, 2, 1)), "replicate2d": nn.ReplicationPad2d(1),
                        "constant2d": nn.ConstantPad2d((2, 1, 0, 1), 0.5), "reflect1d": nn.ReflectionPad1d((2, 1)),
                        "replicate1d": nn.ReplicationPad1d(2), "maxpool2d": nn.Identity(),
                        "residual2d": nn.Identity()}[kind]
            self.fc = nn.LazyLinear(5)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            y = torch.relu(self.c1(x))
            if kind == "maxpool2d":          # F.pad + MaxPool ('same' pooling) after a ReLU and before
                y = fn.max_pool2d(fn.pad(y, (1, 1, 1, 1)), 3, stride=2)
                y = fn.max_pool2d(fn.pad(self.c2(y), (0, 1, 0, 1)), 2)
            elif kind == "residual2d":       # a zero pad read by an Add
                y = fn.pad(self.c2(y), (1, 1, 1, 1)) + y[:, :3]
            else:
                y = self.c2(self.pad(y))
            return self.fc(y.flatten(1))

    shape = (1, 2, 16) if kind.endswith("1d") else (1, 2, 9, 9)
    net = Net()
    torch.manual_seed(0)
    net(torch.randn(*shape))
    return net.eval(), shape


def torch_pad_model(kind: str, dynamo: bool) -> onnx.ModelProto:
    net, shape = _torch_net(kind)
    return export_torch(net, shape, dynamo)


def _check(proto: onnx.ModelProto, xs: np.ndarray, tmp_path: Path, label: str, c: bool,
           top1: bool = True) -> tuple[Program, dict[str, float]]:
    name = proto.graph.input[0].name
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, name)
    assert 0.0 < figures["bound"] < float("inf"), figures
    if top1:
        assert figures["top1"] >= TOP1, figures
    if c:
        inputs = [quantize_inputs(program, {name: x[None]}) for x in xs[:20]]
        check_c_equals_interpreter(program, tmp_path / "c", inputs, label)
    return program, figures


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("kind", ["reflect2d", "replicate2d", "constant2d", "reflect1d", "replicate1d",
                                  "maxpool2d", "residual2d"])
def test_torch_padding_agrees_with_onnxruntime_within_its_bound(kind: str, dynamo: bool, tmp_path: Path) -> None:
    proto = torch_pad_model(kind, dynamo)
    assert "Pad" in [n.op_type for n in proto.graph.node]
    shape = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    xs = np.random.default_rng(1).standard_normal((60, *shape[1:])).astype(np.float32)
    program, _ = _check(proto, xs, tmp_path, f"pad_{kind}_{int(dynamo)}", c=not dynamo)
    ops = [s.op for s in program.steps]
    if kind == "maxpool2d":    # after the ReLU into MaxPool's pads; after the conv (any sign) a 1x1 conv
        assert ops.count("maxpool") == 2 and len([o for o in ops if o.startswith("conv")]) == 3, ops


def test_pad_as_the_graph_tail(tmp_path: Path) -> None:
    """conv -> relu -> Pad{edge} is the output: the map itself is compared."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Pad", ["r", "pads"], ["y"], mode="edge")]
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.1, 3).astype(np.float32), "B"),
             numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 2, 3], np.int64), "pads")]
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 7, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    xs = np.random.default_rng(5).standard_normal((40, 2, 7, 7)).astype(np.float32)
    _check(proto, xs, tmp_path, "pad_tail", c=True, top1=False)

"""Element-wise Add and Mul of an activation and a constant map (not per-channel: a learned
positional embedding added to a sequence, a fixed mask multiplied in, a [1, 1, H, W] map shared by
every channel) end to end, from torch's legacy and dynamo exporters: `add`/`mul` steps with the
constant as an i16 FRAM buffer. The interpreter agrees with onnxruntime on the original model
(top-1, every output within the error bound of its run, backends/lower_bounds.py); the C equals
the interpreter bit for bit (gcc, clang ASan + UBSan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from test_activations_e2e import TOP1, against_onnxruntime, compile_program, export_torch

from transpiler.data import Dataset
from transpiler.lir.qio import quantize_inputs
from transpiler.model import OnnxModel

SHAPES = {"position": (1, 6, 4), "mask": (1, 2, 6, 6), "shared_mask": (1, 2, 6, 6), "divide": (1, 3, 10)}


def constant_map_model(kind: str, dynamo: bool) -> onnx.ModelProto:
    """A small net combining an activation with a constant map of ``kind``, exported by torch."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    nn = torch.nn
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if kind == "position":              # x + self.pos on a [1, T, D] sequence
                self.layer = nn.Linear(4, 8)
                self.pos = nn.Parameter(torch.randn(1, 6, 8))
            elif kind == "divide":              # a map of divisors on a 1-D map
                self.layer = nn.Conv1d(3, 4, 3, padding=1)
                self.register_buffer("k", torch.rand(1, 4, 10) + 0.5)
            else:                               # a fixed mask, per element or the same for every channel
                self.layer = nn.Conv2d(2, 3, 3, padding=1)
                shape = (1, 1, 6, 6) if kind == "shared_mask" else (1, 3, 6, 6)
                self.register_buffer("m", (torch.rand(*shape) > 0.4).float() * torch.rand(*shape) * 2)
            self.out = nn.LazyLinear(4)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            y = torch.relu(self.layer(x))
            y = y + self.pos if kind == "position" else y / self.k if kind == "divide" else y * self.m
            return self.out(y.flatten(1))

    net = Net()
    shape = SHAPES[kind]
    net(torch.randn(*shape))
    return export_torch(net.eval(), shape, dynamo)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_constant_map_agrees_with_onnxruntime_within_its_bound(kind: str, dynamo: bool, tmp_path: Path) -> None:
    proto = constant_map_model(kind, dynamo)
    name = proto.graph.input[0].name
    xs = np.random.default_rng(1).standard_normal((60, *SHAPES[kind][1:])).astype(np.float32)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    step = "add" if kind == "position" else "mul"
    with_map = [s for s in program.steps if s.op == step and program.buffers[s.inputs[1]].is_const]
    assert with_map, [s.op for s in program.steps]
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, name)
    assert figures["top1"] >= TOP1 and 0.0 < figures["bound"] < float("inf"), figures
    if not dynamo:
        inputs = [quantize_inputs(program, {name: x[None]}) for x in xs[:20]]
        check_c_equals_interpreter(program, tmp_path / "c", inputs, f"map_{kind}")


def test_a_constant_map_far_smaller_than_the_activation_is_added_in_a_format_near_its_own(tmp_path: Path) -> None:
    """timm's ViT class token is initialised at 1e-6: placed by constant-concat, it is a constant map
    2^18 times smaller than the patch tokens it is added to. Its format is capped at 15 bits past the
    activation's (the add aligns both to the finer one; lower refused an 18-bit gap), and the sum
    agrees with onnxruntime within its bound."""
    rng = np.random.default_rng(4)
    tiny = np.zeros((1, 5, 8), dtype=np.float32)
    tiny[0, 0] = rng.standard_normal(8) * 1e-6
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["r"]), onnx.helper.make_node("Add", ["r", "tiny"], ["y"])], "tiny_map",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 5, 8])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 5, 8])],
        [onnx.numpy_helper.from_array(tiny, "tiny")])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    proto.ir_version = 8
    xs = rng.standard_normal((32, 1, 5, 8)).astype(np.float32) * 4
    model = OnnxModel.from_proto(proto)
    program = compile_program(model, Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    add = next(s for s in program.steps if s.op == "add")
    assert max(int(add.attrs["shift_a"]), int(add.attrs["shift_b"])) <= 15
    figures = against_onnxruntime(program, model, xs, "x")
    assert figures["max_abs_error"] < 0.01, figures
    check_c_equals_interpreter(program, tmp_path / "c", [quantize_inputs(program, {"x": x}) for x in xs[:4]],
                               "constant_map/tiny")

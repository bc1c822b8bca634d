"""An inner Softmax over another axis than the last end to end (softmax-axis: Transpose ->
softmax step -> Transpose): over the channels of a [1, C, H, W] map, attention pooling's
``softmax(scores, dim=1)`` over the steps of a [1, T, 1] sequence (then ``bmm``), and over the
steps of a [1, T, D] sequence, from torch's legacy and dynamo exporters. The interpreter agrees
with onnxruntime on the original model (top-1, every output within the error bound of its run,
backends/lower_bounds.py); the C equals the interpreter bit for bit (gcc, clang ASan + UBSan)."""

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

SHAPES = {"channels": (1, 2, 6, 6), "pooling": (1, 6, 3), "steps": (1, 6, 3)}


def softmax_model(kind: str, dynamo: bool) -> onnx.ModelProto:
    """A small net with an inner softmax over a non-last axis of ``kind``, exported by torch."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Conv2d(2, 4, 3, padding=1) if kind == "channels" else nn.Linear(3, 8)
            self.score = nn.Linear(8, 1)
            self.fc = nn.LazyLinear(3)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            h = self.layer(x)
            if kind == "pooling":
                h = torch.tanh(h)
                w = torch.softmax(self.score(h), dim=1)              # [1, T, 1]
                return self.fc(torch.bmm(w.transpose(1, 2), h).flatten(1))
            return self.fc(torch.softmax(h * 2.0, dim=1).flatten(1))

    torch.manual_seed(0)
    net = Net()
    shape = SHAPES[kind]
    net(torch.randn(*shape))
    return export_torch(net.eval(), shape, dynamo)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_inner_softmax_over_another_axis_agrees_with_onnxruntime(kind: str, dynamo: bool, tmp_path: Path) -> None:
    proto = softmax_model(kind, dynamo)
    name = proto.graph.input[0].name
    xs = np.random.default_rng(1).standard_normal((100, *SHAPES[kind][1:])).astype(np.float32)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    ops = [s.op for s in program.steps]
    assert ops.count("softmax") == 1, ops
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, name)
    assert figures["top1"] >= TOP1 and 0.0 < figures["bound"] < float("inf"), figures
    if not dynamo:
        inputs = [quantize_inputs(program, {name: x[None]}) for x in xs[:20]]
        check_c_equals_interpreter(program, tmp_path / "c", inputs, f"softmax_{kind}")

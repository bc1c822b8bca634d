"""Element-wise functions defined on part of the line inside the network (Log, Sqrt, Reciprocal,
``c / x``) end to end, from torch's legacy and dynamo exporters: one `lut` step each, tabulated
over the calibrated range of its input (backends/lower_lut.py, ``domain_clamp``). The
interpreter agrees with onnxruntime on the original model (top-1, every output within the error
bound of its run, backends/lower_bounds.py); the C equals the interpreter bit for bit (gcc, clang
ASan + UBSan). A Log whose calibrated input range reaches below 0 is rejected naming the node,
the range and what to do."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from test_activations_e2e import TOP1, against_onnxruntime, compile_program, export_torch

from backends.lower_lut import domain_clamp
from transpiler.data import Dataset
from transpiler.errors import FreemlError
from transpiler.lir.qio import quantize_inputs
from transpiler.model import OnnxModel

KINDS = ("log", "sqrt", "reciprocal", "divide", "log_softplus")


def domain_model(kind: str, dynamo: bool) -> onnx.ModelProto:
    """Conv1d -> ReLU -> the function of ``kind`` -> Linear, exported by torch (``bad_log``: a Log
    of the conv's output, which is negative for some inputs)."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv1d(2, 4, 3, padding=1)
            self.fc = nn.Linear(40, 3)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            h = self.c(x)
            y = torch.relu(h)
            y = {"log": lambda: torch.log(y + 0.1), "sqrt": lambda: torch.sqrt(y),
                 "reciprocal": lambda: torch.reciprocal(y + 0.5), "divide": lambda: 2.0 / (y + 1.0),
                 "log_softplus": lambda: torch.log(nn.functional.softplus(h)),
                 "bad_log": lambda: torch.log(h)}[kind]()
            return self.fc(y.flatten(1))

    torch.manual_seed(0)
    return export_torch(Net().eval(), (1, 2, 10), dynamo)


def test_domain_clamp_halfway_to_the_edge_and_rejects_a_range_outside_the_domain() -> None:
    q = 12
    assert domain_clamp(np.tanh, q, (-1.0, 1.0)) is None
    low, high = domain_clamp(np.log, q, (0.5, 4.0))            # type: ignore[misc]
    assert abs(low - 0.25) <= 2.0 ** -q and high == math.inf
    low, high = domain_clamp(np.sqrt, q, (0.0, 3.0))           # type: ignore[misc]
    assert low == 0.0 and high == math.inf
    low, high = domain_clamp(lambda x: np.sqrt(1.0 - x), q, (-2.0, 0.5))         # type: ignore[misc]
    assert low == -math.inf and abs(high - 0.75) <= 2.0 ** -q
    with pytest.raises(ValueError, match=r"x = -0\.1.*\[-0\.1, 2\]"):
        domain_clamp(np.log, q, (-0.1, 2.0))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("kind", KINDS)
def test_domain_function_agrees_with_onnxruntime_within_its_bound(kind: str, dynamo: bool, tmp_path: Path) -> None:
    proto = domain_model(kind, dynamo)
    name = proto.graph.input[0].name
    xs = np.random.default_rng(1).standard_normal((100, 2, 10)).astype(np.float32)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    assert [s.op for s in program.steps].count("lut") == 1, [s.op for s in program.steps]
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, name)
    assert figures["top1"] >= TOP1 and 0.0 < figures["bound"] < float("inf"), figures
    if not dynamo:
        inputs = [quantize_inputs(program, {name: x[None]}) for x in xs[:20]]
        check_c_equals_interpreter(program, tmp_path / "c", inputs, f"domain_{kind}")


def test_log_of_a_range_reaching_below_zero_is_rejected_with_the_range(tmp_path: Path) -> None:
    proto = domain_model("bad_log", dynamo=False)
    name = proto.graph.input[0].name
    xs = np.random.default_rng(1).standard_normal((50, 2, 10)).astype(np.float32)
    with pytest.raises(FreemlError) as info:
        compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    text = info.value.render()
    for words in ("(Log)", "inside the calibrated input range [-", "log(x + eps)"):
        assert words in text, text

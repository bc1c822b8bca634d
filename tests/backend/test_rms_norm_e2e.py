"""RMS normalisation and negation end to end: torch's nn.RMSNorm (dynamo at its default opset:
the decomposed Pow/ReduceMean/Sqrt/Reciprocal form; opset 23: RMSNormalization) and a hand-written
LLaMA-style ``x * rsqrt(mean(x^2) + eps) * w`` (also from the legacy exporter: ``Div(1, Sqrt)``),
on a vector and on a sequence, and ``-x`` / ``1 - x``, become kernels the device has (`rms-norm`:
one `layernorm` step over ``[x, -x]``); the interpreter agrees with onnxruntime on the ORIGINAL model
within its error bound and the C equals the interpreter bit for bit."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from test_activations_e2e import TOP1, against_onnxruntime, compile_program, export_torch

from transpiler.data import Dataset
from transpiler.lir.qio import quantize_inputs
from transpiler.model import OnnxModel

torch = pytest.importorskip("torch")
nn = torch.nn


class RmsNet(nn.Module):
    """Linear -> ReLU -> RMS norm (``torch``: nn.RMSNorm; ``llama``: written out) -> Linear, on the
    last axis of a vector ``[1, 16]`` or a sequence ``[1, 5, 16]``; a mean over the steps for the
    sequence."""

    def __init__(self, form: str, seq: bool) -> None:
        super().__init__()
        self.form, self.seq = form, seq
        self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 4)
        self.norm = nn.RMSNorm(16, eps=1e-5)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)

    def forward(self, x: Any) -> Any:
        h = torch.relu(self.a(x))
        if self.form == "torch":
            h = self.norm(h)
        else:
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5) * self.norm.weight
        y = self.b(h)
        return y.mean(1) if self.seq else y


class Negated(nn.Module):
    """Linear -> ``-h`` or ``1 - h`` -> Linear."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.a, self.b = nn.Linear(12, 12), nn.Linear(12, 3)

    def forward(self, x: Any) -> Any:
        h = self.a(x)
        return self.b(-h if self.form == "neg" else 1.0 - h)


def _export_opset(net: Any, shape: tuple[int, ...], opset: int) -> onnx.ModelProto:
    """dynamo at an explicit opset (skipped without onnxscript)."""
    pytest.importorskip("onnxscript")
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(*shape),), dynamo=True, opset_version=opset, verbose=False).save(buffer)
    return onnx.load_from_string(buffer.getvalue())


def _check(proto: onnx.ModelProto, shape: tuple[int, ...], tmp_path: Path, label: str) -> Any:
    xs = np.random.default_rng(3).standard_normal((150, *shape[1:])).astype(np.float32)
    name = proto.graph.input[0].name
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({name: xs}), tmp_path / "gen")
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, name)     # the ORIGINAL model
    assert figures["top1"] >= TOP1, figures
    assert figures["bound"] > 0.0, figures
    inputs = [quantize_inputs(program, {name: x.reshape(shape)}) for x in xs[:20]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, label)
    return program


@pytest.mark.parametrize(("form", "export", "seq"), [
    ("torch", "dynamo", True), ("torch", "dynamo23", False),        # the legacy exporter has no aten::rms_norm
    ("llama", "legacy", False), ("llama", "legacy", True), ("llama", "dynamo", False)])
def test_rms_norm_c_equals_interpreter_and_agrees_with_onnxruntime(form: str, export: str, seq: bool,
                                                                   tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = RmsNet(form, seq).eval()
    shape = (1, 5, 16) if seq else (1, 16)
    proto = _export_opset(net, shape, 23) if export == "dynamo23" else export_torch(net, shape, export == "dynamo")
    assert ("RMSNormalization" in {n.op_type for n in proto.graph.node}) == (export == "dynamo23")
    program = _check(proto, shape, tmp_path, f"rms_{form}_{export}_{int(seq)}")
    assert [s.op for s in program.steps].count("layernorm") == 1


@pytest.mark.parametrize(("form", "dynamo"), [("neg", False), ("one_minus", True)])
def test_negation_c_equals_interpreter_and_agrees_with_onnxruntime(form: str, dynamo: bool,
                                                                  tmp_path: Path) -> None:
    torch.manual_seed(2)
    proto = export_torch(Negated(form).eval(), (1, 12), dynamo)
    assert {"Neg", "Sub"} & {n.op_type for n in proto.graph.node}
    _check(proto, (1, 12), tmp_path, f"negated_{form}_{int(dynamo)}")

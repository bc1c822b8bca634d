"""Regressions found by ``bench/torch_fuzz.py`` (random small torch nets through both exporters): each net
is the smallest form of a fuzz failure, exported with batch 1, compiled (normalize, quantize, lower,
plan-memory); the interpreter agrees with onnxruntime on the ORIGINAL model within its error bounds and
the C equals the interpreter."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler.data import Dataset
from transpiler.lir.qio import quantize_inputs
from transpiler.model import OnnxModel

torch = pytest.importorskip("torch")
nn = torch.nn


def export(net: Any, shape: tuple[int, ...], opset: int | None) -> onnx.ModelProto:
    """``net`` (seeded, eval) exported with batch 1 by the legacy exporter at ``opset``, or by dynamo
    (None; skipped without onnxscript); the input is named ``x``."""
    example = torch.randn(1, *shape)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if opset is None:
            pytest.importorskip("onnxscript")
            torch.onnx.export(net, (example,), dynamo=True, input_names=["x"], verbose=False).save(buffer)
        else:
            torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=opset, input_names=["x"])
    return onnx.load_from_string(buffer.getvalue())


def check_against_onnxruntime(net: Any, shape: tuple[int, ...], opset: int | None, tmp_path: Path,
                              label: str) -> None:
    """Export, compile, compare the interpreter with onnxruntime (bounds and top-1) and the C with the
    interpreter."""
    torch.manual_seed(0)
    proto = export(net.eval(), shape, opset)
    xs = np.random.default_rng(1).standard_normal((60, *shape)).astype(np.float32)
    model = OnnxModel.from_proto(proto)
    program = compile_program(model, Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:8]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, label)


@pytest.mark.parametrize("opset", [11, 17])
def test_circular_padding_of_zero(opset: int, tmp_path: Path) -> None:
    """A circular-mode Conv without padding: the legacy exporter writes its (empty) padding as a Concat
    of one input on a spatial axis (remove-noops drops it)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, (3, 5), stride=(2, 1), padding="valid", padding_mode="circular"),
                        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 5, 6))
    check_against_onnxruntime(net, (2, 9, 9), opset, tmp_path, f"circular0_{opset}")

"""Regressions found by ``bench/torch_fuzz.py`` (random small torch nets through both exporters): each net
is the smallest form of a fuzz failure, exported (batch 1, or dynamic), compiled (normalize, quantize, lower,
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


def export(net: Any, shape: tuple[int, ...], opset: int | None, dynamic: bool = False) -> onnx.ModelProto:
    """``net`` (seeded, eval) exported by the legacy exporter at ``opset``, or by dynamo (None; skipped
    without onnxscript), with batch 1 or ``dynamic`` (from an example batch of 2); the input is ``x``."""
    example = torch.randn(2 if dynamic else 1, *shape)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if opset is None:
            pytest.importorskip("onnxscript")
            dims = ({0: torch.export.Dim("batch", min=1, max=64)},) if dynamic else None
            torch.onnx.export(net, (example,), dynamo=True, input_names=["x"], dynamic_shapes=dims,
                              verbose=False).save(buffer)
        else:
            axes = {"x": {0: "batch"}} if dynamic else None
            torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=opset, input_names=["x"],
                              dynamic_axes=axes)
    return onnx.load_from_string(buffer.getvalue())


def check_against_onnxruntime(net: Any, shape: tuple[int, ...], opset: int | None, tmp_path: Path,
                              label: str, dynamic: bool = False) -> None:
    """Export, compile, compare the interpreter with onnxruntime (bounds and top-1) and the C with the
    interpreter."""
    torch.manual_seed(0)
    proto = export(net.eval(), shape, opset, dynamic)
    xs = np.random.default_rng(1).standard_normal((60, *shape)).astype(np.float32)
    model = OnnxModel.from_proto(proto)
    program = compile_program(model, Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    reference = onnx.ModelProto()
    reference.CopyFrom(proto)
    reference.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1     # onnxruntime fed one sample
    figures = against_onnxruntime(program, OnnxModel.from_proto(reference), xs, "x")
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


class Interpolate1d(nn.Module):
    """Conv1d, nearest interpolation to twice the length (``size=``), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 26, 5)

    def forward(self, x: Any) -> Any:
        y = nn.functional.interpolate(torch.relu(self.conv(x)), size=26, mode="nearest")
        return self.fc(y.flatten(1))


def test_dynamo_interpolation_sizes_of_a_sliced_shape(tmp_path: Path) -> None:
    """Dynamo with a dynamic batch writes the Resize sizes as ``Concat(Shape(x) {start=0, end=2}, [26])``:
    fold-constants folds that Shape to ``[1, 4]`` (onnx-graphsurgeon alone folds it to the whole shape, and
    shape inference then fails on four sizes for a rank-3 input)."""
    torch.manual_seed(0)
    check_against_onnxruntime(Interpolate1d(), (2, 13), None, tmp_path, "interp1d_dynamo", dynamic=True)


class RowMax(nn.Module):
    """Conv2d, the max over the last axis (``amax(dim=-1)``: ReduceMax over one spatial axis), Linear."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * (7 if dim == -1 else 6), 5)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.relu(self.conv(x)).amax(dim=self.dim).flatten(1))


@pytest.mark.parametrize("dim", [-1, 2])
@pytest.mark.parametrize("opset", [13, None], ids=["legacy13", "dynamo"])
def test_max_over_one_spatial_axis(dim: int, opset: int | None, tmp_path: Path) -> None:
    """ReduceMax over the rows or the columns of ``[1, C, H, W]`` (a MaxPool window of ``[H, 1]`` /
    ``[1, W]``, reshaped to ``[1, C, W]`` / ``[1, C, H]``; rejected by check-supported before)."""
    torch.manual_seed(0)
    check_against_onnxruntime(RowMax(dim), (1, 7, 6), opset, tmp_path, f"rowmax_{dim}_{opset}")


class ResizeTo(nn.Module):
    """Conv2d, nearest interpolation to a size that is not a multiple of the input's, Linear."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * size[0] * size[1], 4)

    def forward(self, x: Any) -> Any:
        y = nn.functional.interpolate(torch.tanh(self.conv(x)), size=self.size, mode="nearest")
        return self.fc(y.flatten(1))


@pytest.mark.parametrize("size", [(8, 9), (4, 6)], ids=["up", "down"])
@pytest.mark.parametrize("opset", [11, 17, None], ids=["legacy11", "legacy17", "dynamo"])
def test_nearest_resize_to_any_size(size: tuple[int, int], opset: int | None, tmp_path: Path) -> None:
    """Nearest resizing of a [1, 1, 5, 7] map to 8x9 (scales 8/5, 9/7) or down to 4x6: a 0/1 separable map
    (resize-linear; rejected before as "not an integer >= 1")."""
    torch.manual_seed(0)
    check_against_onnxruntime(ResizeTo(size), (1, 5, 7), opset, tmp_path, f"resize_{size[0]}x{size[1]}_{opset}")


def test_a_large_bias_after_a_tanh_keeps_its_value(tmp_path: Path) -> None:
    """A Linear after a Tanh (input Q15) with Q10 weights and a bias of ~100 (a BatchNorm folded into
    it): at the accumulator format Q25 the bias saturated int32 (at 64); the weight format is lowered
    until it fits."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8))
    with torch.no_grad():      # tanh near 1, W . tanh near the row sums, which the bias cancels
        net[0].weight.mul_(0.5)
        net[0].bias.fill_(1.5)
        net[2].weight.uniform_(5.0, 20.0)
        net[2].bias.copy_(-net[2].weight.sum(dim=1) + torch.randn(8))
    check_against_onnxruntime(net, (6,), 13, tmp_path, "large_bias")

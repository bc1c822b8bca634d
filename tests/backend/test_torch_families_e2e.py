"""Torch model families whose exported forms needed a rewrite, from the legacy and the dynamo
exporter: ShuffleNet's channel split (dynamo: a `Split`; split-to-slices) and channel shuffle (a
five-axis Transpose between Reshapes; merge-transpose-axes), and the mean over the pixels of a
channel-last map (``y.mean(dim=(1, 2))`` of NHWC; reduce-mean-to-gap), CBAM's spatial attention (the
mean and max over the channels, a one-channel gate on every channel; reduce-mean-to-gap,
global-max-pool, broadcast-activations). The interpreter agrees with
onnxruntime on the ORIGINAL model within its error bounds, and the C equals the interpreter."""

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
nn, F = torch.nn, torch.nn.functional


class ShuffleUnit(nn.Module):
    """Stem conv, ``chunk(2, dim=1)``, a 1x1 + depthwise 3x3 branch on one half, Concat, channel
    shuffle (view -> transpose -> view), Flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, groups=4))
        self.fc = nn.Linear(8 * 6 * 5, 5)

    def forward(self, x: Any) -> Any:
        y = F.relu(self.stem(x))
        a, b = y.chunk(2, dim=1)
        y = torch.cat([a, self.branch(b)], dim=1)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        return self.fc(y.flatten(1))


class PixelMean(nn.Module):
    """An NHWC input permuted to NCHW, Conv, permuted back, a Linear per pixel, mean over the pixels
    (``mean(dim=(1, 2))``), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 6, 3, padding=1)
        self.pix = nn.Linear(6, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: Any) -> Any:
        y = F.relu(self.c(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        return self.fc(F.relu(self.pix(y)).mean(dim=(1, 2)))


class SpatialAttention(nn.Module):
    """Conv, CBAM spatial attention (``cat(mean over channels, max over channels)`` -> conv 3x3 ->
    sigmoid, gating every channel), the channel mean subtracted, Flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 8, 3, padding=1)
        self.sa = nn.Conv2d(2, 1, 3, padding=1)
        self.fc = nn.Linear(8 * 7 * 6, 5)

    def forward(self, x: Any) -> Any:
        y = F.relu(self.c(x))
        pooled = torch.cat([y.mean(dim=1, keepdim=True), y.amax(dim=1, keepdim=True)], dim=1)
        y = y * torch.sigmoid(self.sa(pooled))
        return self.fc((y - y.mean(dim=1, keepdim=True)).flatten(1))


FAMILIES: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "shuffle": (ShuffleUnit, (2, 6, 5)), "pixel_mean": (PixelMean, (5, 6, 3)),
    "spatial_attention": (SpatialAttention, (1, 7, 6))}


def export(family: str, dynamo: bool) -> onnx.ModelProto:
    """The seeded net of ``family`` exported with batch 1 (legacy at opset 17, or dynamo)."""
    make, shape = FAMILIES[family]
    torch.manual_seed(0)
    net = make().eval()
    example = torch.randn(1, *shape)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript")
            torch.onnx.export(net, (example,), dynamo=True, input_names=["x"], verbose=False).save(buffer)
        else:
            torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=17, input_names=["x"],
                              output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy17", "dynamo"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_compiles_and_agrees_with_onnxruntime(family: str, dynamo: bool, tmp_path: Path) -> None:
    proto = export(family, dynamo)
    xs = np.random.default_rng(3).standard_normal((100, *FAMILIES[family][1])).astype(np.float32)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    assert "transpose" in [s.op for s in program.steps]
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:20]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"{family}_{'dynamo' if dynamo else 'legacy'}")

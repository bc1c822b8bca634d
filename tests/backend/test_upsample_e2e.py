"""Upsampling, transposed convolutions and PReLU end to end: torch models -> normalize -> C.

Four small torch models, each exported by the legacy exporter at opsets 11, 13 and 17 and by the
dynamo exporter: a conv autoencoder whose decoder is two ConvTranspose2d ending in a classifier, a
U-shaped net (nn.Upsample nearest + Concat skip + F.interpolate to a size), a 1-D ConvTranspose
regressor and a CNN with per-channel and single-slope nn.PReLU (slopes outside [0, 1) included).
For each: the lowered program has the expected `upsample` steps; the generated C (gcc -O2, clang
ASan + UBSan, -Wall -Wextra -Werror) equals the interpreter bit for bit on 200 random inputs; and
against onnxruntime on the *original* export top-1 agrees on >= 99.5 % of them (classifiers) with
every output within the error bound of its run (backends/lower_bounds.py).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes

from backends.lower_bounds import error_bounds
from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

torch = pytest.importorskip("torch")
nn = torch.nn
functional = torch.nn.functional

import_all_passes()

TOP1 = 0.995
SAMPLES = 200


class Autoencoder(nn.Module):
    """Conv encoder (stride 2 twice), ConvTranspose2d decoder, a linear classifier on the decoded map."""

    input_shape = (1, 1, 12, 12)
    classifier = True
    upsample_steps = 2

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(2 * 12 * 12, 10)

    def forward(self, x: Any) -> Any:
        return self.head(self.dec(self.enc(x)).flatten(1))


class UNet(nn.Module):
    """Encoder, nearest Upsample x2 and Concat with the skip, F.interpolate to twice the size, classifier."""

    input_shape = (1, 2, 8, 8)
    classifier = True
    upsample_steps = 2

    def __init__(self) -> None:
        super().__init__()
        self.e1 = nn.Conv2d(2, 4, 3, padding=1)
        self.e2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.d1 = nn.Conv2d(12, 4, 3, padding=1)
        self.d2 = nn.Conv2d(4, 2, 3, stride=2)
        self.head = nn.Linear(2 * 7 * 7, 6)

    def forward(self, x: Any) -> Any:
        a = torch.relu(self.e1(x))
        b = torch.relu(self.e2(a))
        c = torch.relu(self.d1(torch.cat([self.up(b), a], 1)))
        d = functional.interpolate(c, size=(16, 16), mode="nearest")
        return self.head(torch.relu(self.d2(d)).flatten(1))


class Regressor1d(nn.Module):
    """Conv1d encoder, ConvTranspose1d decoder, a per-position regression output [1, 1, 16]."""

    input_shape = (1, 2, 16)
    classifier = False
    upsample_steps = 1

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2, padding=2), nn.ReLU(),
                                 nn.ConvTranspose1d(4, 3, 4, stride=2, padding=1), nn.ReLU(),
                                 nn.ConvTranspose1d(3, 1, 3, padding=1))

    def forward(self, x: Any) -> Any:
        return self.net(x)


class PReluCnn(nn.Module):
    """PReLU with one slope per channel (some negative, one above 1), one shared, and after a Linear."""

    input_shape = (1, 1, 10, 10)
    classifier = True
    upsample_steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.p1 = nn.Conv2d(1, 4, 3), nn.PReLU(4)
        self.c2, self.p2 = nn.Conv2d(4, 6, 3), nn.PReLU()
        self.fc, self.p3 = nn.Linear(6 * 3 * 3, 12), nn.PReLU(12)
        self.out = nn.Linear(12, 5)
        with torch.no_grad():
            self.p1.weight.copy_(torch.tensor([0.1, -0.3, 1.4, 0.25]))
            self.p3.weight.uniform_(-0.5, 1.5)

    def forward(self, x: Any) -> Any:
        y = functional.max_pool2d(self.p2(self.c2(self.p1(self.c1(x)))), 2)
        return self.out(self.p3(self.fc(y.flatten(1))))


MODELS = {"autoencoder": Autoencoder, "unet": UNet, "regressor1d": Regressor1d, "prelu_cnn": PReluCnn}
EXPORTS = ["legacy11", "legacy13", "legacy17", "dynamo"]


def export(module: nn.Module, export_kind: str) -> onnx.ModelProto:
    example = torch.zeros(*module.input_shape)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if export_kind == "dynamo":
            pytest.importorskip("onnxscript")
            return torch.onnx.export(module, (example,), dynamo=True, input_names=["x"],
                                     output_names=["y"]).model_proto
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=int(export_kind[len("legacy"):]),
                          input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


def against_onnxruntime(program: Program, proto: onnx.ModelProto, xs: np.ndarray) -> dict[str, float]:
    """The interpreter (= the C, bit for bit) vs onnxruntime on the original export: top-1 agreement,
    largest error, largest bound; every sample within the bound of its run (when nothing saturated)."""
    out = program.outputs[0].onnx_name
    session = ort.session(proto)
    agree, worst, worst_bound, valid = 0, 0.0, 0.0, 0
    for x in xs:
        feed = {"x": x[None]}
        ref = session.run(None, feed)[0].reshape(-1).astype(np.float64)
        trace = run_program(program, quantize_inputs(program, feed), trace=True)
        got = dequantize_outputs(program, trace)[out].reshape(-1).astype(np.float64)
        bounds = error_bounds(program, trace)
        err = float(np.max(np.abs(got - ref)))
        if bounds.valid:
            valid += 1
            assert err <= bounds.outputs[out] * (1 + 1e-6) + 1e-6 * (1 + float(np.max(np.abs(ref)))), \
                (err, bounds.outputs[out])
            worst_bound = max(worst_bound, bounds.outputs[out])
        agree += int(np.argmax(got) == np.argmax(ref))
        worst = max(worst, err)
    return {"top1": agree / len(xs), "max_abs_error": worst, "bound": worst_bound, "valid": valid / len(xs),
            "largest_output": float(np.max(np.abs(ref)))}


@pytest.mark.parametrize("export_kind", EXPORTS)
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_torch_model_c_equals_interpreter_and_agrees_with_onnxruntime(model_name: str, export_kind: str,
                                                                      tmp_path: Path) -> None:
    cls = MODELS[model_name]
    torch.manual_seed(sorted(MODELS).index(model_name))
    module = cls().eval()
    proto = export(module, export_kind)
    rng = np.random.default_rng(7)
    xs = rng.standard_normal((SAMPLES, *cls.input_shape[1:])).astype(np.float32)
    ctx = PassContext(data=Dataset.from_arrays({"x": xs}), out_dir=str(tmp_path / "gen"), command_line="pytest")
    program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower,plan-memory", ctx, verify=False)
    assert isinstance(program, Program)
    assert [s.op for s in program.steps].count("upsample") == cls.upsample_steps
    figures = against_onnxruntime(program, proto, xs)
    print(f"{model_name} {export_kind}: {figures}")
    if cls.classifier:
        assert figures["top1"] >= TOP1, figures
    assert figures["valid"] >= 0.9, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"{model_name}_{export_kind}", onnx_model=proto)

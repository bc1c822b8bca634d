"""Activations inside the network, end to end: exporters' models -> lut steps -> C.

- torch models (a small CNN + MLP with the activation after every layer) exported by the legacy
  exporter at opset 17 (SiLU as Sigmoid + Mul, GELU as its Erf form or tanh approximation, HardSwish
  as the op) and by the dynamo exporter: the generated C equals the interpreter bit for bit (gcc -O2,
  clang ASan + UBSan), and against onnxruntime top-1 agrees on >= 99.5 % of 200 random inputs with
  every output within the worst-case error bound of the Q formats (backends/lower_bounds.py: the
  table's measured worst error times the downstream gains, the input and weight rounding);
- scikit-learn's MLPClassifier with tanh and logistic hidden layers (skl2onnx) on the digits data:
  the same, on all 1797 images;
- hypothesis: a Gemm -> activation -> Gemm model whose input scale spans 2^-6 .. 2^8 (so the lut's
  input format ranges over q = 2 .. 16): the table's claimed worst error is what the interpreter
  gives on every int16 input, and the interpreter stays within the error bound of onnxruntime;
- compression: a tanh MLP squeezed by SparseComp (which trains through Tanh) keeps its lut steps
  and verifies against onnxruntime.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from backends import lower_lut
from backends.lower_bounds import error_bounds
from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir import kernels
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

import_all_passes()

TOP1 = 0.995


def export_torch(net: Any, shape: tuple[int, ...], dynamo: bool) -> onnx.ModelProto:
    """``net`` (a torch module in eval mode) exported on a random input of ``shape`` by the legacy
    exporter (its default opset) or by dynamo (skipped without onnxscript)."""
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(net, (torch.randn(*shape),), dynamo=True, verbose=False).save(buffer)
        else:
            torch.onnx.export(net, (torch.randn(*shape),), buffer, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def compile_program(model: OnnxModel, data: Dataset, out: Path) -> Program:
    """normalize,quantize,lower,plan-memory."""
    ctx = PassContext(data=data, out_dir=str(out), command_line="pytest")
    program, _ = run_pipeline(model, "normalize,quantize,lower,plan-memory", ctx, verify=False)
    assert isinstance(program, Program)
    return program


def against_onnxruntime(program: Program, model: OnnxModel, xs: np.ndarray, name: str) -> dict[str, float]:
    """The interpreter vs onnxruntime on the normalized float model: top-1 agreement and max abs
    error, each output within the error bound of its run."""
    out = program.outputs[0].onnx_name
    sess = ort.session(ort.with_outputs(model, [out]))
    shape = [int(d) for d in model.graph.inputs[0].shape]
    agree, worst, worst_bound = 0, 0.0, 0.0
    for x in xs:
        feed = ort.cast_feeds(model, {name: x.reshape(shape)})      # float32, or the int64 of token ids
        ref = sess.run([out], feed)[0].reshape(-1)
        trace = run_program(program, quantize_inputs(program, feed), trace=True)
        got = dequantize_outputs(program, trace)[out].reshape(-1).astype(np.float64)
        bounds = error_bounds(program, trace)
        err = float(np.max(np.abs(got - ref)))
        if bounds.valid:
            assert err <= bounds.outputs[out] * (1 + 1e-6) + 1e-6 * (1 + float(np.max(np.abs(ref)))), \
                (err, bounds.outputs[out])
            worst_bound = max(worst_bound, bounds.outputs[out])
        agree += int(np.argmax(got) == np.argmax(ref))
        worst = max(worst, err)
    return {"top1": agree / len(xs), "max_abs_error": worst, "bound": worst_bound}


# -- torch ---------------------------------------------------------------------------------------

TORCH_ACTS = ("sigmoid", "tanh", "hardsigmoid", "hardswish", "silu", "gelu", "gelu_tanh", "softplus")


def torch_model(act: str, dynamo: bool, seed: int) -> onnx.ModelProto:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    make = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "hardsigmoid": nn.Hardsigmoid, "hardswish": nn.Hardswish,
            "silu": nn.SiLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
            # beta and threshold such that the linear branch is taken (dynamo writes it as a Where)
            "softplus": lambda: nn.Softplus(beta=2.0, threshold=3.0)}[act]
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), make(), nn.Conv2d(4, 6, 3, stride=2), make(),
                        nn.Flatten(), nn.Linear(54, 16), make(), nn.Linear(16, 5)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), dynamo=True, input_names=["x"],
                                     output_names=["y"], verbose=False)
            return prog.model_proto
        torch.onnx.export(net, (torch.zeros(1, 1, 8, 8),), buf, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buf.getvalue())


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy17", "dynamo"])
@pytest.mark.parametrize("act", TORCH_ACTS)
def test_torch_activation_c_equals_interpreter_and_agrees_with_onnxruntime(act: str, dynamo: bool,
                                                                          tmp_path: Path) -> None:
    if dynamo and act not in ("silu", "gelu", "tanh", "softplus"):
        pytest.skip("the dynamo exporter writes the same single ops as the legacy one at opset 20")
    proto = torch_model(act, dynamo, seed=TORCH_ACTS.index(act))
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((200, 1, 8, 8)).astype(np.float32)
    model = OnnxModel.from_proto(proto)
    program = compile_program(model, Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    assert [s.op for s in program.steps].count("lut") == 3
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    figures = against_onnxruntime(program, normalized, xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:40]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"torch_{act}_{'dynamo' if dynamo else 'legacy'}")


# -- scikit-learn --------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "logistic"])
def test_sklearn_mlp_hidden_activation(activation: str, tmp_path: Path) -> None:
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32, 16), activation=activation, max_iter=300, random_state=0).fit(x[:1200], digits.target[:1200])
    proto = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset={"": 13, "ai.onnx.ml": 1})
    ops = [n.op_type for n in proto.graph.node]
    assert ("Tanh" if activation == "tanh" else "Sigmoid") in ops
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"X": x}), tmp_path / "gen")
    assert sum(s.op == "lut" for s in program.steps) == 2
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    figures = against_onnxruntime(program, normalized, x, "X")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"X": v[None]}) for v in x[:60]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"sklearn_mlp_{activation}")


# -- hypothesis over input scales ------------------------------------------------------------------

FUNCTIONS = {
    "Sigmoid": [helper.make_node("Sigmoid", ["h"], ["a"])],
    "Tanh": [helper.make_node("Tanh", ["h"], ["a"])],
    "SiLU": [helper.make_node("Sigmoid", ["h"], ["s"]), helper.make_node("Mul", ["h", "s"], ["a"])],
    "HardSwish": [helper.make_node("HardSwish", ["h"], ["a"])],
    "GELU": [helper.make_node("Mul", ["h", "c"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["f"]), helper.make_node("Mul", ["h", "f"], ["g"]),
             helper.make_node("Mul", ["g", "half"], ["a"])],
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(function=st.sampled_from(sorted(FUNCTIONS)), log_scale=st.floats(-6.0, 8.0), seed=st.integers(0, 2**16))
def test_lut_over_input_scales(function: str, log_scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scale = 2.0 ** log_scale
    inits = {"W1": (rng.standard_normal((6, 4)) * scale).astype(np.float32), "B1": np.zeros(6, np.float32),
             "W2": (rng.standard_normal((3, 6)) / 3).astype(np.float32), "B2": rng.standard_normal(3).astype(np.float32),
             "c": np.float32(0.70710677), "one": np.float32(1.0), "half": np.float32(0.5)}
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1), *FUNCTIONS[function],
             helper.make_node("Gemm", ["a", "W2", "B2"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    xs = rng.standard_normal((40, 4)).astype(np.float32)
    ctx = PassContext(data=Dataset.from_arrays({"x": xs}))
    program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower", ctx, verify=False)
    (lut,) = [s for s in program.steps if s.op == "lut"]
    slope, claimed, first, last = json.loads(program.meta["lut"])[lut.name]
    # the claim is the interpreter's worst error over every int16 input, recomputed here
    q_in, q_out = program.buffers[lut.inputs[0]].q, program.buffers[lut.outputs[0]].q
    codes = np.arange(-32768, 32768)
    a = lut.attrs
    y = kernels.lut(codes, program.buffers[lut.inputs[1]].data, a["step"], a["base"], a["mirror"], a["center"],
                    a["gate"], a["shift"]).astype(np.float64) * 2.0 ** -q_out
    from passes.elementwise import find_regions

    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    (region,) = find_regions(normalized.graph)
    exact = region.function()(codes * 2.0 ** -q_in)
    valid = slice(first + 32768, last + 32769)
    assert np.all(np.abs(exact[valid]) * 2.0 ** q_out <= 32768)
    assert np.max(np.abs(y - exact)[valid]) == pytest.approx(claimed, rel=1e-9, abs=1e-12)
    assert claimed <= lower_lut.REJECT_FACTOR * lower_lut.tolerance(q_in, q_out, slope) * 2.0 ** -q_out
    figures = against_onnxruntime(program, normalized, xs, "x")      # each sample within its bound
    assert figures["bound"] > 0


def test_a_tanh_mlp_compresses_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SparseComp trains through the Tanh layers (passes/train): a 64-64-32-10 tanh MLP squeezed
    into 12 KiB of FRAM keeps its lut steps and agrees with onnxruntime on the compressed ONNX."""
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    from transpiler import hostrun
    from transpiler.cli import main

    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((64, 32), activation="tanh", max_iter=300, random_state=0).fit(x[:1300], y[:1300])
    model = tmp_path / "mlp_tanh.onnx"
    model.write_bytes(to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}},
                              target_opset={"": 13, "ai.onnx.ml": 1}).SerializeToString())
    data = tmp_path / "digits.npz"
    np.savez(data, X=x, y=y)
    out = tmp_path / "build"
    code = main([str(model), "-o", str(out), "--data", str(data), "--fram", "12KiB"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "sparsify" in hostrun.load_manifest(out)["generator"]["pipeline"], text
    assert (out / "final.lir").read_text().count("step lut ") == 2
    code = main(["verify", str(out), "--data", str(data), "--json"])
    text, err = capsys.readouterr()
    assert code == 0, text + err
    doc = json.loads(text)
    assert doc["pass"] and all(r["agreement"] >= TOP1 for r in doc["outputs"] if "agreement" in r)

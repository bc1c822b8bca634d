"""The `lower` pass: one test per lowering rule, the samples and random graphs against onnxruntime.

Every lowered program is checked three ways: the LIR verifier accepts it, its steps/attributes are
the ones the rule promises, and the interpreter's dequantised outputs stay within the error bound of
its Q formats (backends/lower_bounds.py) of onnxruntime's float outputs on the calibration inputs.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, note, settings
from onnx import TensorProto, helper, numpy_helper

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # for `import strategies_onnx` (tests/ has no __init__.py)
    sys.path.insert(0, str(TESTS))

from strategies_onnx import onnx_models, save_model  # noqa: E402

from backends.lower import (CLASS_PORT, Lower, LowerOptions, dequantize_outputs, lower_model,  # noqa: E402
                            quantize_inputs, sanitize_name)
from backends import lower_lut  # noqa: E402
from backends.lower_bounds import error_bounds  # noqa: E402
from passes.normalize import Normalize  # noqa: E402
from passes.quantize import Quantize, QuantizeOptions  # noqa: E402
from transpiler import ort  # noqa: E402
from transpiler.data import Dataset, input_specs, load_dataset  # noqa: E402
from transpiler.errors import PassError, UnsupportedError  # noqa: E402
from transpiler.lir.compare import programs_equal  # noqa: E402
from transpiler.lir.interp import run_program  # noqa: E402
from transpiler.lir.ir import Program  # noqa: E402
from transpiler.lir.text import parse_program, print_program  # noqa: E402
from transpiler.lir.verify import verify_program  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext  # noqa: E402

SAMPLES = TESTS.parent / "samples"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- helpers -----------------------------------------------------------------------------------

def make(nodes: Sequence[onnx.NodeProto], inputs: Mapping[str, list[int]], outputs: Sequence[str],
         inits: Mapping[str, np.ndarray] | None = None, opset: int = 17, name: str = "m") -> onnx.ModelProto:
    """A model from nodes; output shapes come from onnx shape inference."""
    graph = helper.make_graph(
        list(nodes), name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(_init(v), k) for k, v in (inits or {}).items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    known = {vi.name: vi for vi in [*inferred.graph.value_info, *inferred.graph.output]}
    del proto.graph.output[:]
    proto.graph.output.extend(known[o] for o in outputs)
    proto.graph.value_info.extend(vi for vi in inferred.graph.value_info if vi.name not in outputs)
    onnx.checker.check_model(proto)
    return proto


def _init(value: np.ndarray) -> np.ndarray:
    """Integer arrays keep int64 (shapes), everything else becomes float32."""
    a = np.asarray(value)
    return a.astype(np.int64) if a.dtype.kind in "iu" else a.astype(np.float32)


def node(op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, inputs, outputs, name=name, **attrs)


def samples_for(proto: onnx.ModelProto, n: int = 24, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """n standard-normal samples (times `scale`) per graph input, [n, *shape-without-batch]."""
    rng = np.random.default_rng(seed)
    out = {}
    for vi in proto.graph.input:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = (rng.standard_normal((n, *dims[1:])) * scale).astype(np.float32)
    return out


def lowered(proto: onnx.ModelProto, xs: Mapping[str, np.ndarray], normalize: bool = True,
            qopts: QuantizeOptions | None = None, lopts: LowerOptions | None = None,
            source: str | None = None) -> tuple[OnnxModel, Program]:
    """normalize (optional) -> quantize on `xs` -> lower -> verify."""
    model = OnnxModel.from_proto(proto, source=source)
    if normalize:
        model = Normalize(context=PassContext()).run(model).model
    ctx = PassContext(data=Dataset.from_arrays(xs))
    qmodel = Quantize(qopts, context=ctx).run(model).model
    program = Lower(lopts, context=ctx).run(qmodel).model
    verify_program(program)
    return qmodel, program


def check_numerics(qmodel: OnnxModel, program: Program, xs: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Interpreter vs onnxruntime on every sample of `xs`: within the worst-case bound and the
    statistical estimate of the Q formats; argmax equal to the reference's. Returns figures."""
    outs = [p.onnx_name for p in program.outputs if p.onnx_name != program.meta.get("class-output")]
    sess = ort.session(ort.with_outputs(qmodel, outs))
    shapes = {t.name: [int(d) for d in t.shape] for t in qmodel.graph.inputs}
    worst = {"err": 0.0, "bound": 0.0, "typical": 0.0}
    n = len(next(iter(xs.values())))
    for i in range(n):
        feed = {k: v[i].reshape(shapes[k]) for k, v in xs.items()}
        ref = dict(zip(outs, sess.run(outs, feed)))
        trace = run_program(program, quantize_inputs(program, feed), trace=True)
        got = dequantize_outputs(program, trace)
        bounds = error_bounds(program, trace)
        assert bounds.valid, f"sample {i}: saturated buffers {bounds.saturated}"
        for o in outs:
            assert got[o].shape == ref[o].shape, (o, got[o].shape, ref[o].shape)
            err = float(np.max(np.abs(got[o].astype(np.float64) - ref[o])))
            slack = 1e-6 * (1.0 + float(np.max(np.abs(ref[o]))))          # float32 reference
            assert err <= bounds.outputs[o] * (1 + 1e-6) + slack, (o, i, err, bounds.outputs[o])
            assert err <= bounds.typical[o] + slack, (o, i, err, bounds.typical[o])
            worst["err"] = max(worst["err"], err)
            worst["bound"] = max(worst["bound"], bounds.outputs[o])
            worst["typical"] = max(worst["typical"], bounds.typical[o])
        if "class-output" in program.meta:
            cls = int(got[program.meta["class-output"]][0])
            assert cls == int(np.argmax(got[outs[0]])), "argmax step disagrees with the logits it reads"
    return worst


def ops(program: Program) -> list[str]:
    return [s.op for s in program.steps]


def step(program: Program, name: str) -> Any:
    return next(s for s in program.steps if s.name == name)


def q_of(program: Program, buf: str) -> int:
    q = program.buffers[buf].q
    assert isinstance(q, int)
    return q


RNG = np.random.default_rng(42)


def w(*shape: int, scale: float = 1.0) -> np.ndarray:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return (RNG.standard_normal(shape) * scale / np.sqrt(fan_in)).astype(np.float32)


# -- Conv / Gemm with fused activations ---------------------------------------------------------

def test_conv_relu_fused_weights_and_bias_quantised_per_channel() -> None:
    W, B = w(4, 3, 3, 3), w(4, scale=0.3)
    proto = make([node("Conv", ["x", "W", "B"], ["c"], "conv", kernel_shape=[3, 3], strides=[2, 2],
                       pads=[1, 0, 2, 1], dilations=[1, 1], group=1),
                  node("Relu", ["c"], ["y"], "relu")], {"x": [1, 3, 10, 10]}, ["y"], {"W": W, "B": B})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["conv"]
    s = prog.steps[0]
    assert s.name == "conv" and s.origin == ["conv", "relu"]
    assert s.attrs["act"] == "relu" and s.attrs["stride"] == [2, 2] and s.attrs["pads"] == [1, 0, 2, 1]
    assert s.attrs["group"] == 1 and s.attrs["dilation"] == [1, 1]
    x, wb, bb = (prog.buffers[n] for n in s.inputs)
    y = prog.buffers[s.outputs[0]]
    assert x.shape == (3, 10, 10) and y.shape == (4, 6, 5) and wb.dtype == "i16" and bb.dtype == "i32"
    f_w = wb.q
    assert isinstance(f_w, list) and len(f_w) == 4
    scale = 2.0 ** np.array(f_w).reshape(4, 1, 1, 1)
    np.testing.assert_array_equal(wb.data, np.clip(np.floor(W * scale + 0.5), -32768, 32767))
    np.testing.assert_array_equal(bb.data, np.floor(B * 2.0 ** (np.array(f_w) + x.q) + 0.5))
    assert s.attrs["shift"] == [x.q + f - y.q for f in f_w]
    assert all(x.q + f - qmodel.annotations.get("c", "qformat") <= 15 for f in f_w)   # headroom
    assert y.q == qmodel.annotations.get("y", "qformat")
    check_numerics(qmodel, prog, xs)


CONV_CASES = {
    "grouped-dilated-clip": ([1, 4, 9, 9], (6, 2, 3, 3),
                             dict(group=2, dilations=[2, 2], pads=[2, 2, 2, 2], strides=[1, 1]), "Clip"),
    "depthwise-stride-leaky": ([1, 3, 8, 8], (3, 1, 3, 3),
                               dict(group=3, dilations=[1, 1], pads=[1, 1, 1, 1], strides=[2, 2]), "LeakyRelu"),
    "conv1d-leaky": ([1, 2, 16], (4, 2, 3), dict(group=1, dilations=[2], pads=[1, 2], strides=[2]), "LeakyRelu"),
    "conv1d-plain": ([1, 3, 11], (5, 3, 4), dict(group=1, dilations=[1], pads=[0, 0], strides=[1]), None),
    "pointwise": ([1, 5, 4, 4], (2, 5, 1, 1), dict(group=1, dilations=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1]),
                  "Relu"),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_variants(case: str) -> None:
    in_shape, w_shape, attrs, act = CONV_CASES[case]
    inits: dict[str, np.ndarray] = {"W": w(*w_shape), "B": w(w_shape[0], scale=0.5)}
    nodes = [node("Conv", ["x", "W", "B"], ["c"], "conv", kernel_shape=list(w_shape[2:]), **attrs)]
    out = "c"
    if act == "Clip":
        inits |= {"lo": np.array(0.0), "hi": np.array(0.75)}
        nodes.append(node("Clip", ["c", "lo", "hi"], ["y"], "act"))
        out = "y"
    elif act == "LeakyRelu":
        nodes.append(node("LeakyRelu", ["c"], ["y"], "act", alpha=0.1))
        out = "y"
    elif act == "Relu":
        nodes.append(node("Relu", ["c"], ["y"], "act"))
        out = "y"
    proto = make(nodes, {"x": in_shape}, [out], inits)
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["conv"]
    s = prog.steps[0]
    y = prog.buffers[s.outputs[0]]
    if len(in_shape) == 3:   # 1-D as 2-D with H = 1
        assert prog.buffers[s.inputs[0]].shape == (in_shape[1], 1, in_shape[2])
        assert prog.buffers[s.inputs[1]].shape == (w_shape[0], w_shape[1], 1, w_shape[2])
        assert s.attrs["stride"] == [1, attrs["strides"][0]] and s.attrs["dilation"] == [1, attrs["dilations"][0]]
        assert s.attrs["pads"] == [0, attrs["pads"][0], 0, attrs["pads"][1]]
        assert y.shape[1] == 1
    assert s.attrs["group"] == attrs["group"]
    if act == "Clip":
        assert s.attrs["act"] == "clip" and s.attrs["lo"] == 0 and s.attrs["hi"] == int(np.floor(0.75 * 2.0 ** y.q + 0.5))
    elif act == "LeakyRelu":
        assert s.attrs["act"] == "leaky" and s.attrs["alpha"] == round(0.1 * 32768)
        # the negative pre-activation range must fit: y takes the coarser of the two formats
        assert y.q == min(qmodel.annotations.get("c", "qformat"), qmodel.annotations.get("y", "qformat"))
    else:
        assert s.attrs["act"] == ("relu" if act else "none")
    check_numerics(qmodel, prog, xs)


def test_gemm_with_clip_and_flatten_alias() -> None:
    W, C = w(5, 32), w(5, scale=0.2)
    proto = make([node("Relu", ["x"], ["r"], "relu"),
                  node("Flatten", ["r"], ["f"], "flat", axis=1),
                  node("Gemm", ["f", "W", "C"], ["g"], "fc", transB=1),
                  node("Clip", ["g", "lo", "hi"], ["y"], "clip")],
                 {"x": [1, 2, 4, 4]}, ["y"], {"W": W, "C": C, "lo": np.array(-0.5), "hi": np.array(0.5)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["act", "fc"]
    fc = step(prog, "fc")
    x_buf = prog.buffers[fc.inputs[0]]
    assert x_buf.shape == (32,) and x_buf.alias == step(prog, "relu").outputs[0]
    y = prog.buffers[fc.outputs[0]]
    assert fc.attrs["act"] == "clip" and fc.origin == ["fc", "clip"]
    assert fc.attrs["lo"] == -int(0.5 * 2 ** y.q) and fc.attrs["hi"] == int(0.5 * 2 ** y.q)
    assert prog.buffers[fc.inputs[1]].shape == (5, 32)
    check_numerics(qmodel, prog, xs)


def test_an_input_beyond_its_format_voids_the_error_bound() -> None:
    """A sample outside the calibrated range is clipped by quantize_inputs: the bound of that run
    is not claimed (it assumes the input is the real one to half an LSB)."""
    proto = make([node("Gemm", ["x", "W", "C"], ["y"], "fc", transB=1)], {"x": [1, 8]}, ["y"],
                 {"W": w(3, 8), "C": w(3, scale=0.2)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    check_numerics(qmodel, prog, xs)
    q = prog.buffers[prog.inputs[0].buffer].q
    far = xs["x"][:1].copy()
    far[0, 3] = 2.0 ** (15 - q) * 1.5              # beyond the int16 range of the input's format
    trace = run_program(prog, quantize_inputs(prog, {"x": far}), trace=True)
    assert error_bounds(prog, trace).saturated == [prog.inputs[0].buffer]
    inside = run_program(prog, quantize_inputs(prog, {"x": xs["x"][:1]}), trace=True)
    assert error_bounds(prog, inside).valid


def test_per_channel_add_after_conv_and_gemm_folds_into_the_bias() -> None:
    # built directly in the normal form (normalize would fold these Adds itself)
    A, T = w(3, 1, 1, scale=2.0), w(1, 4, scale=2.0)
    proto = make([node("Conv", ["x", "W", "B"], ["c"], "conv", kernel_shape=[3, 3], strides=[1, 1],
                       pads=[1, 1, 1, 1], dilations=[1, 1], group=1),
                  node("Add", ["c", "A"], ["a"], "bias_add"),
                  node("Relu", ["a"], ["r"], "relu"),
                  node("Flatten", ["r"], ["f"], "flat", axis=1),
                  node("Gemm", ["f", "G"], ["g"], "fc", transB=1),
                  node("Add", ["T", "g"], ["h"], "fc_add"),        # constant first
                  node("LeakyRelu", ["h"], ["y"], "leaky", alpha=0.25)],
                 {"x": [1, 2, 5, 5]}, ["y"], {"W": w(3, 2, 3, 3), "B": w(3), "A": A, "G": w(4, 75), "T": T})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs, normalize=False)
    assert ops(prog) == ["conv", "fc"]
    conv, fc = prog.steps
    assert conv.origin == ["conv", "bias_add", "relu"] and fc.origin == ["fc", "fc_add", "leaky"]
    x_q = q_of(prog, conv.inputs[0])
    f_w = np.array(prog.buffers[conv.inputs[1]].q)
    b = onnx.numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name == "B"))
    expect = np.floor((b.astype(np.float64) + A.reshape(3).astype(np.float64)) * 2.0 ** (x_q + f_w) + 0.5)
    np.testing.assert_array_equal(prog.buffers[conv.inputs[2]].data, expect)
    check_numerics(qmodel, prog, xs)


# -- Mul / Add with constants -------------------------------------------------------------------

def test_mul_add_per_channel_becomes_one_depthwise_conv() -> None:
    S, T = np.array([0.5, -2.0, 3.0]).reshape(3, 1, 1), np.array([0.1, 0.2, -1.0]).reshape(3, 1, 1)
    proto = make([node("MaxPool", ["x"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
                  node("Mul", ["p", "S"], ["m"], "scale"),
                  node("Add", ["m", "T"], ["a"], "shift"),
                  node("Relu", ["a"], ["y"], "relu")],
                 {"x": [1, 3, 6, 6]}, ["y"], {"S": S, "T": T})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["maxpool", "conv"]
    dw = prog.steps[1]
    assert dw.attrs["group"] == 3 and dw.attrs["act"] == "relu" and dw.origin == ["scale", "shift", "relu"]
    wb = prog.buffers[dw.inputs[1]]
    assert wb.shape == (3, 1, 1, 1)
    np.testing.assert_array_equal(wb.data.reshape(3), np.floor(S.reshape(3) * 2.0 ** np.array(wb.q) + 0.5))
    check_numerics(qmodel, prog, xs)


def test_mul_on_a_vector_uses_views() -> None:
    proto = make([node("Relu", ["x"], ["r"], "relu"), node("Mul", ["r", "S"], ["y"], "scale")],
                 {"x": [1, 6]}, ["y"], {"S": np.linspace(-2, 2, 6).reshape(1, 6)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["act", "conv"]
    dw = prog.steps[1]
    assert prog.buffers[dw.inputs[0]].shape == (6, 1, 1) and prog.buffers[dw.inputs[0]].alias is not None
    out_port = prog.outputs[0]
    assert prog.buffers[out_port.buffer].shape == (6,)
    check_numerics(qmodel, prog, xs)


def test_per_channel_add_alone_is_a_unit_weight_depthwise_conv() -> None:
    T = np.array([1.5, -0.25]).reshape(2, 1, 1)
    proto = make([node("MaxPool", ["x"], ["p"], "pool", kernel_shape=[2, 2], strides=[1, 1]),
                  node("Add", ["p", "T"], ["y"], "add")], {"x": [1, 2, 5, 5]}, ["y"], {"T": T})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["maxpool", "conv"]
    dw = prog.steps[1]
    wb, bb = prog.buffers[dw.inputs[1]], prog.buffers[dw.inputs[2]]
    np.testing.assert_array_equal(wb.data.reshape(2), 2.0 ** np.array(wb.q))       # weight 1.0
    x_q = q_of(prog, dw.inputs[0])
    np.testing.assert_array_equal(bb.data, np.floor(T.reshape(2) * 2.0 ** (x_q + np.array(wb.q)) + 0.5))
    check_numerics(qmodel, prog, xs)


def test_per_element_add_uses_a_constant_buffer() -> None:
    E = (RNG.standard_normal((2, 4, 4)) * 3).astype(np.float32)
    proto = make([node("Relu", ["x"], ["r"], "relu"), node("Add", ["r", "E"], ["y"], "add")],
                 {"x": [1, 2, 4, 4]}, ["y"], {"E": E})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["act", "add"]
    add = prog.steps[1]
    kb = prog.buffers[add.inputs[1]]
    assert kb.is_const and kb.dtype == "i16" and kb.shape == (2, 4, 4) and isinstance(kb.q, int)
    np.testing.assert_array_equal(kb.data, np.clip(np.floor(E * 2.0 ** kb.q + 0.5), -32768, 32767))
    check_numerics(qmodel, prog, xs)


def test_residual_add_aligns_formats() -> None:
    proto = make([node("Conv", ["x", "Wa", "Ba"], ["a"], "conv_a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  node("Relu", ["a"], ["ra"], "relu_a"),
                  node("Conv", ["ra", "Wb", "Bb"], ["b"], "conv_b", kernel_shape=[1, 1]),
                  node("Add", ["ra", "b"], ["s"], "res"),
                  node("Relu", ["s"], ["y"], "relu_s")],
                 {"x": [1, 2, 6, 6]}, ["y"],
                 {"Wa": w(3, 2, 3, 3), "Ba": w(3), "Wb": w(3, 3, 1, 1, scale=40.0), "Bb": w(3)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["conv", "conv", "add"]
    add = step(prog, "res")
    qa, qb, qy = (q_of(prog, n) for n in (*add.inputs, add.outputs[0]))
    assert qa != qb, "the test wants operands in different formats"
    qc = max(qa, qb)
    assert (add.attrs["shift_a"], add.attrs["shift_b"], add.attrs["shift"]) == (qc - qa, qc - qb, qc - qy)
    assert add.attrs["act"] == "relu" and add.origin == ["res", "relu_s"]
    check_numerics(qmodel, prog, xs)


@pytest.mark.parametrize("act", ["none", "Relu", "Clip"])
def test_product_of_two_activations_is_a_mul(act: str) -> None:
    """Mul(a, b) of two activations of one shape [+ act] -> one ``mul`` step with shift q_a + q_b -
    q_y; the gated product (a conv times the sigmoid of another) stays within the error bound."""
    nodes = [node("Conv", ["x", "Wa", "Ba"], ["a"], "conv_a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             node("Conv", ["x", "Wb", "Bb"], ["b0"], "conv_b", kernel_shape=[1, 1]),
             node("Sigmoid", ["b0"], ["b"], "gate"),
             node("Mul", ["a", "b"], ["m" if act != "none" else "y"], "prod")]
    extra: dict[str, np.ndarray] = {}
    if act == "Relu":
        nodes.append(node("Relu", ["m"], ["y"], "act"))
    elif act == "Clip":
        nodes.append(node("Clip", ["m", "lo", "hi"], ["y"], "act"))
        extra = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.75, np.float32)}
    proto = make(nodes, {"x": [1, 2, 6, 6]}, ["y"],
                 {"Wa": w(3, 2, 3, 3), "Ba": w(3), "Wb": w(3, 2, 1, 1, scale=3.0), "Bb": w(3), **extra})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["conv", "conv", "lut", "mul"]
    mul = step(prog, "prod")
    qa, qb, qy = (q_of(prog, n) for n in (*mul.inputs, mul.outputs[0]))
    assert mul.attrs["shift"] == qa + qb - qy
    assert mul.attrs["act"] == {"none": "none", "Relu": "relu", "Clip": "clip"}[act]
    assert mul.origin == (["prod"] if act == "none" else ["prod", "act"])
    check_numerics(qmodel, prog, xs)


def test_broadcasting_product_is_rejected() -> None:
    proto = make([node("Relu", ["x"], ["a"], "relu"), node("Gemm", ["x", "W", "B"], ["s"], "fc", transB=1),
                  node("Mul", ["a", "s"], ["y"], "prod")],
                 {"x": [1, 4]}, ["y"], {"W": w(1, 4), "B": w(1)})
    with pytest.raises(UnsupportedError) as info:
        lowered(proto, samples_for(proto))
    assert "broadcasting Mul of [1,4] and [1,1]" in info.value.render()


# -- pools, lone activations, concat, reshape ----------------------------------------------------

POOL_CASES = {
    "maxpool-ceil-pad": ([1, 2, 7, 7], "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                       ceil_mode=1)),
    "maxpool-1d-dilated": ([1, 2, 12], "MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 1], dilations=[2])),
    "avgpool-ceil-include-pad": ([1, 2, 7, 7], "AveragePool",
                                 dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                                      count_include_pad=1)),
    "avgpool-exclude-pad": ([1, 3, 6, 5], "AveragePool",
                            dict(kernel_shape=[2, 3], strides=[2, 1], pads=[0, 1, 1, 1], count_include_pad=0)),
    "avgpool-1d": ([1, 2, 9], "AveragePool", dict(kernel_shape=[3], strides=[1], pads=[1, 1])),
    "gap-2d": ([1, 4, 5, 3], "GlobalAveragePool", {}),
    "gap-1d": ([1, 3, 10], "GlobalAveragePool", {}),
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pools(case: str) -> None:
    shape, op, attrs = POOL_CASES[case]
    proto = make([node(op, ["x"], ["y"], "pool", **attrs)], {"x": shape}, ["y"])
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    s = prog.steps[0]
    assert ops(prog) == ["maxpool" if op == "MaxPool" else "avgpool"]
    assert q_of(prog, s.outputs[0]) == q_of(prog, s.inputs[0])         # pools do not rescale
    if op == "GlobalAveragePool":
        x = prog.buffers[s.inputs[0]]
        assert s.attrs["kernel"] == [x.shape[1], x.shape[2]] and prog.buffers[s.outputs[0]].shape == (x.shape[0], 1, 1)
    if "count_include_pad" in attrs:
        assert s.attrs["count_include_pad"] == attrs["count_include_pad"]
    check_numerics(qmodel, prog, xs)


@pytest.mark.parametrize("act, attrs, extra", [
    ("Relu", {}, {}), ("LeakyRelu", {"alpha": 0.3}, {}),
    ("Clip", {}, {"lo": np.array(-0.5), "hi": np.array(0.25)}),
])
def test_activation_alone(act: str, attrs: dict[str, Any], extra: dict[str, np.ndarray]) -> None:
    proto = make([node("MaxPool", ["x"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
                  node(act, ["p", *extra], ["y"], "act", **attrs)], {"x": [1, 2, 6, 6]}, ["y"], extra)
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["maxpool", "act"]
    s = prog.steps[1]
    q = q_of(prog, s.inputs[0])
    assert q_of(prog, s.outputs[0]) == q
    if act == "Clip":
        assert (s.attrs["lo"], s.attrs["hi"]) == (-(2 ** (q - 1)), 2 ** (q - 2))
    check_numerics(qmodel, prog, xs)


def test_concat_requantises_each_input() -> None:
    proto = make([node("Conv", ["x", "Wa"], ["a"], "conv_a", kernel_shape=[1, 1]),
                  node("Conv", ["x", "Wb"], ["b"], "conv_b", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  node("Concat", ["a", "b", "x"], ["y"], "cat", axis=1)],
                 {"x": [1, 2, 5, 5]}, ["y"], {"Wa": w(3, 2, 1, 1, scale=0.05), "Wb": w(2, 2, 3, 3, scale=30.0)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["conv", "conv", "concat"]
    cat = step(prog, "cat")
    qs = [q_of(prog, n) for n in cat.inputs]
    qy = q_of(prog, cat.outputs[0])
    assert len(set(qs)) == 3 and cat.attrs["shifts"] == [q - qy for q in qs]
    assert prog.buffers[cat.outputs[0]].shape == (7, 5, 5)
    check_numerics(qmodel, prog, xs)


def test_reshape_is_an_alias() -> None:
    proto = make([node("Relu", ["x"], ["r"], "relu"),
                  node("Reshape", ["r", "shape"], ["f"], "reshape"),
                  node("Gemm", ["f", "W"], ["y"], "fc", transB=1)],
                 {"x": [1, 2, 3, 4]}, ["y"], {"shape": np.array([1, 24], dtype=np.int64), "W": w(3, 24)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["act", "fc"]
    flat = prog.buffers[prog.steps[1].inputs[0]]
    assert flat.alias == prog.steps[0].outputs[0] and flat.shape == (24,) and flat.q == q_of(prog, flat.alias)
    check_numerics(qmodel, prog, xs)


def test_no_fusion_when_the_tensor_is_shared_or_an_output() -> None:
    proto = make([node("Conv", ["x", "W"], ["c"], "conv", kernel_shape=[3, 3]),
                  node("Relu", ["c"], ["r"], "relu"),
                  node("Conv", ["r", "W2"], ["d"], "conv2", kernel_shape=[1, 1]),
                  node("LeakyRelu", ["d"], ["e"], "leaky", alpha=0.5),
                  node("Add", ["d", "e"], ["y"], "add")],
                 {"x": [1, 1, 6, 6]}, ["c", "y"], {"W": w(2, 1, 3, 3), "W2": w(2, 2, 1, 1)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["conv", "act", "conv", "act", "add"]
    assert [s.attrs.get("act") for s in prog.steps] == ["none", "relu", "none", "leaky", "none"]
    assert [p.onnx_name for p in prog.outputs] == ["c", "y"]
    check_numerics(qmodel, prog, xs)


# -- classifier tails ---------------------------------------------------------------------------

def test_final_softmax_dropped_and_argmax_added() -> None:
    proto = make([node("Gemm", ["x", "W", "C"], ["logits"], "fc", transB=1),
                  node("Softmax", ["logits"], ["probs"], "softmax", axis=-1)],
                 {"x": [1, 8]}, ["probs"], {"W": w(6, 8, scale=3.0), "C": w(6)})
    xs = samples_for(proto, n=40)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["fc", "argmax"]
    assert [p.onnx_name for p in prog.outputs] == ["logits", CLASS_PORT]
    arg = prog.steps[1]
    assert arg.origin == ["softmax"] and prog.buffers[arg.outputs[0]].shape == (1,)
    assert "pre-softmax logits" in prog.meta["scores"] and json.loads(prog.meta["softmax"]) == {"logits": "probs"}
    check_numerics(qmodel, prog, xs)
    for i in range(len(xs["x"])):
        probs = ort.run(qmodel, {"x": xs["x"][i:i + 1]})["probs"]
        out = dequantize_outputs(prog, run_program(prog, quantize_inputs(prog, {"x": xs["x"][i:i + 1]})))
        assert int(out[CLASS_PORT][0]) == int(np.argmax(probs))
        assert out["logits"].shape == (1, 6)
    no_argmax, _ = lower_model(qmodel, LowerOptions(argmax=False))
    assert ops(no_argmax) == ["fc"]


@pytest.mark.parametrize("op", ["Sigmoid", "LogSoftmax"])
def test_final_sigmoid_or_log_softmax_dropped_like_softmax(op: str) -> None:
    proto = make([node("Gemm", ["x", "W", "C"], ["logits"], "fc", transB=1),
                  node(op, ["logits"], ["scores"], "final", **({"axis": -1} if op == "LogSoftmax" else {}))],
                 {"x": [1, 8]}, ["scores"], {"W": w(5, 8, scale=3.0), "C": w(5)})
    xs = samples_for(proto, n=30)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["fc", "argmax"]
    assert [p.onnx_name for p in prog.outputs] == ["logits", CLASS_PORT]
    assert f"pre-{op.lower()} logits of 'scores'" in prog.meta["scores"] and "softmax" not in prog.meta
    check_numerics(qmodel, prog, xs)
    for i in range(len(xs["x"])):
        scores = ort.run(qmodel, {"x": xs["x"][i:i + 1]})["scores"]
        out = dequantize_outputs(prog, run_program(prog, quantize_inputs(prog, {"x": xs["x"][i:i + 1]})))
        assert int(out[CLASS_PORT][0]) == int(np.argmax(scores))


def test_sklearn_classifier_tail_labels_in_meta() -> None:
    model = OnnxModel.from_proto(onnx.load(str(SAMPLES / "mlp_digits_sklearn.onnx")))
    model = Normalize(context=PassContext()).run(model).model
    tail = model.annotations.get("graph", "classifier-tail")
    assert tail is not None
    ds = load_dataset(SAMPLES / "mlp_digits_sklearn.npz", input_specs(model.graph))
    qmodel = Quantize(context=PassContext(data=ds)).run(model).model
    prog, _ = lower_model(qmodel)
    assert prog.steps[-1].op == "argmax"
    assert json.loads(prog.meta["labels"]) == tail["labels"]
    assert prog.meta["class-output"] == CLASS_PORT


# -- errors, names, limits, meta ------------------------------------------------------------------

def test_every_unsupported_node_is_reported_once() -> None:
    proto = make([node("ThresholdedRelu", ["x"], ["s"], "thresholded"),
                  node("Relu", ["s"], ["y1"], "after_thresholded"),
                  node("LeakyRelu", ["x"], ["y2"], "steep", alpha=1.5),
                  node("Relu", ["x"], ["r"], "relu"), node("Log", ["r"], ["y3"], "log")],
                 {"x": [1, 4]}, ["y1", "y2", "y3"])
    model = OnnxModel.from_proto(proto)
    qmodel = Quantize(context=PassContext(data=Dataset.from_arrays(samples_for(proto)))).run(model).model
    with pytest.raises(UnsupportedError) as info:
        lower_model(qmodel)
    err = info.value
    assert len(err.details) == 3 and "3 node(s)" in err.message
    text = "\n".join(err.details)
    for name in ("thresholded (ThresholdedRelu)", "steep (LeakyRelu)", "log (Log)"):
        assert name in text
    assert "alpha=1.5" in text and "after_thresholded" not in text
    assert "outside" in text or "calibrated input range" in text      # log(relu(x)) of x < 0 has no value
    assert err.location.pass_name == "lower" and err.hint


def test_missing_formats_ask_for_quantize() -> None:
    proto = make([node("Relu", ["x"], ["y"], "relu")], {"x": [1, 4]}, ["y"])
    with pytest.raises(PassError, match="qformat") as info:
        lower_model(OnnxModel.from_proto(proto))
    assert "quantize" in (info.value.hint or "")


def test_names_are_sanitised_unique_and_origins_kept() -> None:
    proto = make([node("Relu", ["in/put:0"], ["a/b:0"], "block/relu:1"),
                  node("MaxPool", ["a/b:0"], ["a.b:0"], "block/pool", kernel_shape=[2, 2]),
                  node("Relu", ["a.b:0"], ["9out"], "last")],
                 {"in/put:0": [1, 2, 4, 4]}, ["9out"])
    model = OnnxModel.from_proto(proto)
    model.annotations.set("block/relu:1", "origin", ["/features/0/Relu", "/features/0/BN"])
    qmodel = Quantize(context=PassContext(data=Dataset.from_arrays(samples_for(proto)))).run(model).model
    prog, _ = lower_model(qmodel)
    assert all(NAME_RE.match(n) for n in prog.buffers)
    assert set(prog.buffers) == {"in_put_0", "a_b_0", "a_b_0_2", "t_9out"}
    assert [s.name for s in prog.steps] == ["block/relu:1", "block/pool", "last"]
    assert prog.steps[0].origin == ["/features/0/Relu", "/features/0/BN"]
    assert prog.inputs[0].onnx_name == "in/put:0" and prog.outputs[0].onnx_name == "9out"
    assert sanitize_name("") == "t" and sanitize_name("__x..y__") == "x_y"


def test_shift_limits_are_enforced() -> None:
    proto = make([node("Conv", ["x", "W"], ["c"], "conv", kernel_shape=[3, 3]), node("Relu", ["c"], ["y"], "relu")],
                 {"x": [1, 2, 6, 6]}, ["y"], {"W": w(3, 2, 3, 3)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs, lopts=LowerOptions(max_shift=10), qopts=QuantizeOptions(max_shift=31))
    s = prog.steps[0]
    x_q, f_w = q_of(prog, s.inputs[0]), prog.buffers[s.inputs[1]].q
    assert all(x_q + f - qmodel.annotations.get("c", "qformat") <= 10 for f in f_w)
    check_numerics(qmodel, prog, xs)
    # formats from elsewhere that would need a shift below -15: the output format is made coarser
    qmodel.annotations.set("W", "qformat", [0, 0, 0])
    qmodel.annotations.set("y", "qformat", 30)
    qmodel.annotations.set("c", "qformat", 30)
    prog2, _ = lower_model(qmodel)
    verify_program(prog2)
    s2 = prog2.steps[0]
    assert min(s2.attrs["shift"]) == -15 and q_of(prog2, s2.outputs[0]) == x_q + 0 + 15
    # ... and one above 31: the weight formats come down
    qmodel.annotations.set("W", "qformat", [30, 30, 30])
    qmodel.annotations.set("y", "qformat", -8)
    qmodel.annotations.set("c", "qformat", -8)
    prog3, _ = lower_model(qmodel, LowerOptions(max_shift=31))
    verify_program(prog3)
    assert max(prog3.steps[0].attrs["shift"]) == 31


def test_meta_source_hash_and_text_round_trip(tmp_path: Path) -> None:
    proto = make([node("Conv", ["x", "W", "B"], ["c"], "conv", kernel_shape=[3, 3]),
                  node("Relu", ["c"], ["r"], "relu"),
                  node("GlobalAveragePool", ["r"], ["g"], "gap"),
                  node("Flatten", ["g"], ["f"], "flat"),
                  node("Gemm", ["f", "G"], ["logits"], "fc", transB=1),
                  node("Softmax", ["logits"], ["p"], "sm", axis=1)],
                 {"x": [1, 1, 6, 6]}, ["p"], {"W": w(4, 1, 3, 3), "B": w(4), "G": w(3, 4)}, name="tiny-net")
    path = tmp_path / "tiny.onnx"
    onnx.save(proto, str(path))
    xs = samples_for(proto)
    qmodel, prog = lowered(onnx.load(str(path)), xs, source=str(path))
    assert prog.name == "tiny-net" and prog.meta["model"] == "tiny-net"
    assert prog.meta["source"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(prog.meta["onnx-shapes"]) == {"x": [1, 1, 6, 6], "logits": [1, 3], CLASS_PORT: [1]}
    again = parse_program(print_program(prog))
    assert programs_equal(again, prog)
    check_numerics(qmodel, prog, xs)


def test_quantize_and_dequantize_helpers() -> None:
    proto = make([node("Relu", ["x"], ["y"], "relu")], {"x": [1, 2, 3]}, ["y"])
    qmodel = Quantize(context=PassContext(data=Dataset.from_arrays({"x": np.full((2, 2, 3), 1.5)}))).run(
        OnnxModel.from_proto(proto)).model
    prog, _ = lower_model(qmodel)
    q = q_of(prog, prog.inputs[0].buffer)
    lsb = 2.0 ** -q
    x = np.array([[[0.5 * lsb, -0.5 * lsb, 1.5 * lsb], [-1.5 * lsb, 1e9, -1e9]]], dtype=np.float64)
    xq = quantize_inputs(prog, {"x": x})["x"]
    assert xq.dtype == np.int16 and xq.shape == (2, 1, 3)              # the 1-D map as [C, 1, L]
    np.testing.assert_array_equal(xq.reshape(-1), [1, 0, 2, -1, 32767, -32768])   # round half up
    y = dequantize_outputs(prog, run_program(prog, {"x": xq}))["y"]
    assert y.shape == (1, 2, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y.reshape(-1), np.array([1, 0, 2, 0, 32767, 0]) * lsb)


# -- samples and random graphs ------------------------------------------------------------------

SAMPLE_NAMES = ["lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual"]


@pytest.mark.parametrize("name, calibrate", [(n, True) for n in SAMPLE_NAMES]
                         + [("lenet5_mnist", False), ("cnn_digits", False)])
def test_samples_agree_with_onnxruntime(name: str, calibrate: bool) -> None:
    """Calibrate on the "train" part of the sample's split (or without data: synthetic inputs),
    compare on every held-out sample of the npz (all samples of files without split marks)."""
    path = SAMPLES / f"{name}.onnx"
    model = Normalize(context=PassContext()).run(OnnxModel.from_proto(onnx.load(str(path)), source=str(path))).model
    ds = load_dataset(SAMPLES / f"{name}.npz", input_specs(model.graph))
    if calibrate:
        qmodel = Quantize(context=PassContext(data=ds)).run(model).model
    else:
        with pytest.warns(UserWarning, match="no --data"):
            qmodel = Quantize(context=PassContext()).run(model).model
    prog, _ = lower_model(qmodel)
    verify_program(prog)
    outs = [p.onnx_name for p in prog.outputs if p.onnx_name != prog.meta.get("class-output")]
    sess = ort.session(ort.with_outputs(qmodel, outs))
    shape = [int(d) for d in qmodel.graph.inputs[0].shape]
    agree, worst, saturated = 0, 0.0, 0
    ds = ds.held_out()
    for i in range(len(ds)):
        feed = {qmodel.graph.inputs[0].name: ds.x[i].reshape(shape)}
        ref = sess.run(outs, feed)[0]
        trace = run_program(prog, quantize_inputs(prog, feed), trace=True)
        got = dequantize_outputs(prog, trace)[outs[0]]
        bounds = error_bounds(prog, trace)
        err = float(np.max(np.abs(got - ref)))
        if bounds.valid:
            assert err <= bounds.typical[outs[0]], (i, err, bounds.typical[outs[0]])
        saturated += not bounds.valid
        worst = max(worst, err)
        agree += int(np.argmax(got)) == int(np.argmax(ref))
    rate = agree / len(ds)
    print(f"{name} ({'data' if calibrate else 'no data'}): top-1 agreement {agree}/{len(ds)} = {100 * rate:.1f} %, max |error| {worst:.3g}, "
          f"saturated runs {saturated}")
    assert rate >= 0.995
    assert saturated <= 0.01 * len(ds)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(onnx_models(quirks=True, max_layers=4))
def test_random_graphs_within_the_error_bound(drawn: tuple[onnx.ModelProto, dict[str, np.ndarray]]) -> None:
    proto, inputs = drawn
    note(proto.doc_string)
    model = Normalize(context=PassContext()).run(OnnxModel.from_proto(proto)).model
    name = model.graph.inputs[0].name
    shape = [int(d) for d in model.graph.inputs[0].shape]
    rng = np.random.default_rng(0)
    xs = np.concatenate([inputs["x"].reshape(1, *shape[1:]),
                         rng.standard_normal((5, *shape[1:])).astype(np.float32)])
    try:
        ctx = PassContext(data=Dataset.from_arrays({name: xs}))
        qmodel = Quantize(context=ctx).run(model).model
        prog, _ = lower_model(qmodel)
        verify_program(prog)
        check_numerics(qmodel, prog, {name: xs})
    except Exception:
        note(f"model saved to {save_model(proto, 'lower-random')}")
        raise


# -- element-wise regions -> lut ----------------------------------------------------------------

def _act_nodes(form: str, x: str, y: str) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray], int]:
    """The nodes of one activation form (as exporters write it), its constants and opset."""
    c = {f"{form}_c{i}": np.array(v, dtype=np.float32) for i, v in enumerate((0.70710677, 1.0, 0.5, 0.044715,
                                                                              0.7978846, 3.0))}
    k = [f"{form}_c{i}" for i in range(6)]
    single = {"sigmoid": "Sigmoid", "tanh": "Tanh", "hardsigmoid": "HardSigmoid", "hardswish": "HardSwish",
              "elu": "Elu", "softsign": "Softsign", "mish": "Mish"}
    if form in single:
        return [node(single[form], [x], [y], form)], {}, 18 if form == "mish" else 17
    if form == "gelu_op":
        return [node("Gelu", [x], [y], form)], {}, 20
    if form == "gelu_tanh_op":
        return [node("Gelu", [x], [y], form, approximate="tanh")], {}, 20
    if form == "silu":        # torch: x * sigmoid(x)
        return [node("Sigmoid", [x], ["s"], "s"), node("Mul", [x, "s"], [y], form)], {}, 17
    if form == "gelu_erf":    # torch legacy: x * (erf(x / sqrt 2) + 1) * 0.5 (Div made Mul by normalize)
        return [node("Mul", [x, k[0]], ["d"], "d"),
                node("Erf", ["d"], ["e"], "e"), node("Add", ["e", k[1]], ["a"], "a"),
                node("Mul", [x, "a"], ["m"], "m"), node("Mul", ["m", k[2]], [y], form)], c, 17
    if form == "gelu_tanh":   # torch legacy, approximate='tanh'
        return [node("Mul", [x, x], ["p2"], "p2"), node("Mul", [x, "p2"], ["p3"], "p3"),
                node("Mul", [k[3], "p3"], ["q"], "q"), node("Add", [x, "q"], ["r"], "r"),
                node("Mul", [k[4], "r"], ["u"], "u"), node("Tanh", ["u"], ["t"], "t"),
                node("Add", [k[1], "t"], ["v"], "v"), node("Mul", [x, "v"], ["w"], "w"),
                node("Mul", [k[2], "w"], [y], form)], c, 17
    assert form == "hardswish_mul"   # HardSwish below opset 14: x * HardSigmoid(x)
    return [node("HardSigmoid", [x], ["hs"], "hs", alpha=1 / 6), node("Mul", [x, "hs"], [y], form)], {}, 13


ACT_FORMS = ("sigmoid", "tanh", "hardsigmoid", "hardswish", "hardswish_mul", "silu", "gelu_erf", "gelu_tanh",
             "gelu_op", "gelu_tanh_op", "elu", "softsign", "mish")


@pytest.mark.parametrize("form", ACT_FORMS)
def test_elementwise_activation_lowers_to_one_lut(form: str) -> None:
    """Gemm -> activation -> Gemm: the activation, in any of its exported forms, is one lut step
    whose table error was measured within its tolerance, and the interpreter stays within the error
    bound against onnxruntime."""
    act, consts, opset = _act_nodes(form, "h", "act_out")
    rng = np.random.default_rng(ACT_FORMS.index(form))
    proto = make([node("Gemm", ["x", "W1", "B1"], ["h"], "fc1", transB=1), *act,
                  node("Gemm", ["act_out", "W2", "B2"], ["y"], "fc2", transB=1)],
                 {"x": [1, 6]}, ["y"], {"W1": rng.standard_normal((8, 6)), "B1": rng.standard_normal(8),
                                        "W2": rng.standard_normal((3, 8)) / 3, "B2": rng.standard_normal(3), **consts},
                 opset=opset)
    xs = samples_for(proto, n=32)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["fc", "lut", "fc"]
    lut = prog.steps[1]
    assert lut.attrs["mirror"] in (0, 1) and prog.buffers[lut.inputs[1]].size <= lower_lut.MAX_SEGMENTS + 1
    slope, error, _, _ = json.loads(prog.meta["lut"])[lut.name]
    q_in, q_out = prog.buffers[lut.inputs[0]].q, prog.buffers[lut.outputs[0]].q
    tolerance = lower_lut.tolerance(q_in, q_out, slope) * 2.0 ** -q_out
    # functions with a kink in a derivative at 0 (Elu, Softsign) may miss the tolerance (lower
    # accepts up to REJECT_FACTOR times it); the smooth ones and the piecewise-linear ones meet it
    rough = form in ("elu", "softsign")
    assert slope > 0 and 0 <= error <= tolerance * (lower_lut.REJECT_FACTOR if rough else 1.0)
    worst = check_numerics(qmodel, prog, xs)
    assert worst["err"] <= worst["bound"]


def test_sigmoid_and_tanh_take_the_finest_format_their_range_allows() -> None:
    """Sigmoid and tanh are within [-1, 1] whatever their input: q = 15 even when calibration saw
    outputs near 1 (which would give q = 14 with the margin)."""
    proto = make([node("Gemm", ["x", "W", "B"], ["h"], "fc", transB=1), node("Tanh", ["h"], ["t"], "tanh"),
                  node("Sigmoid", ["h"], ["s"], "sig"), node("Concat", ["t", "s"], ["y"], "cat", axis=1)],
                 {"x": [1, 4]}, ["y"], {"W": 8 * w(5, 4), "B": w(5)})
    xs = samples_for(proto)
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["fc", "lut", "lut", "concat"]
    assert [prog.buffers[s.outputs[0]].q for s in prog.steps[1:3]] == [15, 15]
    assert [s.attrs["mirror"] for s in prog.steps[1:3]] == [1, 1]
    assert [s.attrs["center"] for s in prog.steps[1:3]] == [0, 32768]
    check_numerics(qmodel, prog, xs)


def test_lut_tables_are_shared_and_regions_claim_their_adds() -> None:
    """Two Tanh of inputs in the same format share one table; an Add of a constant before a Sigmoid
    belongs to the region (no depthwise step of its own), and a tensor read outside a region (the
    sigmoid, an output) gets its own step."""
    proto = make([node("Tanh", ["x1"], ["t1"], "tanh1"), node("Tanh", ["x2"], ["t2"], "tanh2"),
                  node("Add", ["x1", "k"], ["hk"], "shift"), node("Sigmoid", ["hk"], ["s"], "sig"),
                  node("Mul", ["hk", "s"], ["y"], "silu")],
                 {"x1": [1, 4], "x2": [1, 4]}, ["t1", "t2", "s", "y"], {"k": np.array(0.5)})
    rng = np.random.default_rng(3)
    same = rng.standard_normal((24, 4)).astype(np.float32)
    xs = {"x1": same, "x2": same.copy()}
    qmodel, prog = lowered(proto, xs)
    assert ops(prog) == ["lut", "lut", "lut", "lut"]
    tanh1, tanh2, sig, silu = prog.steps
    assert tanh1.inputs[1] == tanh2.inputs[1] and sig.inputs[1] != tanh1.inputs[1]
    assert sig.inputs[0] == silu.inputs[0] == tanh1.inputs[0]
    assert sig.origin == ["sig", "shift"] and set(silu.origin) == {"silu", "shift", "sig"}
    check_numerics(qmodel, prog, xs)


def test_an_elementwise_function_no_table_fits_is_reported() -> None:
    """|x - 0.30007| on inputs and outputs of q = 15 (no input saturates the output): linear on both
    sides of a kink between two grid points of any spacing, so no table of at most 1024 segments is
    within 4x the tolerance; lower says so, naming the node."""
    proto = make([node("Add", ["x", "k"], ["d"], "shift"), node("Abs", ["d"], ["y"], "abs")], {"x": [1, 4]}, ["y"],
                 {"k": np.array(-0.30007)})
    xs = samples_for(proto, scale=0.3)
    with pytest.raises(UnsupportedError) as info:
        lowered(proto, xs)
    assert "abs (Abs)" in info.value.details[0] and "no table" in info.value.details[0]

"""The LIR interpreter runs steps in order, through aliases, with the numpy kernels, and rejects
what it cannot run with a LirError that names the step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies_lir import programs

from transpiler.errors import LirError
from transpiler.lir import kernels as K
from transpiler.lir.interp import OPS, run_program
from transpiler.lir.ir import Buffer, Port, Program, Step


def lenet_like(seed: int = 0) -> Program:
    """conv(relu) -> maxpool -> flatten (alias) -> fc -> argmax, with random constants."""
    rng = np.random.default_rng(seed)
    p = Program("tiny")
    p.add(Buffer("x", "i16", (1, 6, 6), q=12))
    p.add(Buffer("w1", "i16", (2, 1, 3, 3), q=[14, 13],
                 data=rng.integers(-2**14, 2**14, size=(2, 1, 3, 3)).astype(np.int16)))
    p.add(Buffer("b1", "i32", (2,), data=rng.integers(-2**20, 2**20, size=2).astype(np.int32)))
    p.add(Buffer("t1", "i16", (2, 4, 4), q=11))
    p.add(Buffer("t2", "i16", (2, 2, 2), q=11))
    p.add(Buffer("t2f", "i16", (8,), q=11, alias="t2"))
    p.add(Buffer("w3", "i16", (3, 8), q=[15, 15, 15],
                 data=rng.integers(-2**15, 2**15, size=(3, 8)).astype(np.int16)))
    p.add(Buffer("b3", "i32", (3,), data=rng.integers(-2**20, 2**20, size=3).astype(np.int32)))
    p.add(Buffer("t3", "i16", (3,), q=9))
    p.add(Buffer("t4", "i16", (1,), q=0))
    p.steps = [
        Step("conv", "conv1", ["x", "w1", "b1"], ["t1"],
             {"act": "relu", "dilation": [1, 1], "group": 1, "pads": [0, 0, 0, 0],
              "shift": [15, 14], "stride": [1, 1]}),
        Step("maxpool", "pool1", ["t1"], ["t2"],
             {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0], "dilation": [1, 1]}),
        Step("fc", "fc1", ["t2f", "w3", "b3"], ["t3"], {"act": "none", "shift": [17, 17, 17]}),
        Step("argmax", "top", ["t3"], ["t4"]),
    ]
    p.inputs = [Port("input.1", "x")]
    p.outputs = [Port("logits", "t3"), Port("class", "t4")]
    return p


def test_runs_steps_in_order_through_aliases() -> None:
    p = lenet_like()
    x = np.random.default_rng(1).integers(-32768, 32768, size=(1, 6, 6)).astype(np.int16)
    out = run_program(p, {"input.1": x})
    assert set(out) == {"logits", "class"}
    b = p.buffers
    t1 = K.conv(x, b["w1"].data, b["b1"].data, (1, 1), (0, 0, 0, 0), (1, 1), 1, [15, 14], "relu")
    t2 = K.maxpool(t1, (2, 2), (2, 2), (0, 0, 0, 0))
    t3 = K.fc(t2.reshape(-1), b["w3"].data, b["b3"].data, [17, 17, 17])
    np.testing.assert_array_equal(out["logits"], t3)
    assert out["class"].tolist() == [int(np.argmax(t3))]
    assert out["logits"].dtype == np.int16


def test_trace_returns_every_buffer_by_percent_name() -> None:
    p = lenet_like()
    x = np.zeros((1, 6, 6), np.int16)
    out = run_program(p, {"input.1": x}, trace=True)
    assert {k for k in out if k.startswith("%")} == {"%" + n for n in p.buffers}
    np.testing.assert_array_equal(out["%t2f"], out["%t2"].reshape(-1))
    np.testing.assert_array_equal(out["%w1"], p.buffers["w1"].data)
    # Copies: changing the result does not touch the program's constants.
    out["%w1"][...] = 0
    assert p.buffers["w1"].data.any()


def test_accepts_a_leading_batch_axis() -> None:
    p = lenet_like()
    x = np.random.default_rng(2).integers(-99, 99, size=(1, 6, 6)).astype(np.int16)
    a = run_program(p, {"input.1": x})
    b = run_program(p, {"input.1": x[None]})
    np.testing.assert_array_equal(a["logits"], b["logits"])


def test_unknown_op_is_rejected_naming_the_step() -> None:
    p = lenet_like()
    p.steps.insert(1, Step("softmax", "the_softmax", ["t1"], ["t2"]))
    with pytest.raises(LirError) as e:
        run_program(p, {"input.1": np.zeros((1, 6, 6), np.int16)})
    assert "the_softmax" in e.value.message and "softmax" in e.value.message
    assert e.value.location.node == "the_softmax"


@pytest.mark.parametrize("inputs, words", [
    ({}, "not given"),
    ({"input.1": np.zeros((1, 6, 6), np.int16), "other": np.zeros(1, np.int16)}, "unknown"),
    ({"input.1": np.zeros((6, 6), np.int16)}, "shape"),
    ({"input.1": np.zeros((1, 6, 6), np.float32)}, "integer"),
    ({"input.1": np.full((1, 6, 6), 40000)}, "outside"),
])
def test_bad_inputs_are_rejected(inputs: dict[str, np.ndarray], words: str) -> None:
    with pytest.raises(LirError, match=words):
        run_program(lenet_like(), inputs)


def test_bad_attributes_name_the_step() -> None:
    p = lenet_like()
    p.steps[2].attrs["shift"] = [17, 17]
    with pytest.raises(LirError, match="fc1.*shift"):
        run_program(p, {"input.1": np.zeros((1, 6, 6), np.int16)})
    p = lenet_like()
    p.steps[0].attrs["act"] = "clip"  # without lo/hi
    with pytest.raises(LirError, match="conv1.*lo"):
        run_program(p, {"input.1": np.zeros((1, 6, 6), np.int16)})
    p = lenet_like()
    p.buffers["t3"].shape = (4,)  # the fc produces 3 values
    with pytest.raises(LirError, match="fc1.*shape"):
        run_program(p, {"input.1": np.zeros((1, 6, 6), np.int16)})


def _random_input(p: Program, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {port.onnx_name: rng.integers(-32768, 32768, size=p.buffers[port.buffer].shape)
            .astype(np.int16) for port in p.inputs}


@given(p=programs(max_steps=5))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_step_equals_its_kernel_on_the_traced_values(p: Program) -> None:
    """On random valid programs, each step's traced output is its kernel applied to the traced
    inputs (the interpreter wires buffers, aliases and attributes correctly), and runs repeat."""
    inputs = _random_input(p, 0)
    tr = run_program(p, inputs, trace=True)
    again = run_program(p, inputs)
    for port in p.outputs:
        np.testing.assert_array_equal(tr[port.onnx_name], again[port.onnx_name])
        np.testing.assert_array_equal(tr[port.onnx_name], tr["%" + port.buffer])
        assert tr[port.onnx_name].dtype == np.int16
    for step in p.steps:
        assert step.op in OPS
        ins = [tr["%" + n] for n in step.inputs]
        a = step.attrs
        act = K.Act.from_attrs(a) if "act" in a else K.Act()
        out_shape = p.buffers[step.outputs[0]].shape
        if step.op == "conv":
            want = K.conv(*ins, a["stride"], a["pads"], a["dilation"], a["group"], a["shift"], act)
        elif step.op == "fc":
            want = K.fc(*ins, a["shift"], act)
        elif step.op == "fc_sparse":   # the dense kernel on the decoded weights
            w = K.csr_to_dense(ins[1], ins[2], ins[3], ins[0].size)
            want = K.fc(ins[0], w, ins[4], a["shift"], act)
        elif step.op == "conv_sparse":
            w = K.conv_sparse_to_dense(ins[1], ins[2], ins[3], ins[0].shape[0] // a["group"], a["kernel"],
                                       ins[0].shape[1:], a["dilation"])
            want = K.conv(ins[0], w, ins[4], a["stride"], a["pads"], a["dilation"], a["group"], a["shift"],
                          act, out_shape=out_shape[1:])
        elif step.op == "maxpool":
            want = K.maxpool(ins[0], a["kernel"], a["stride"], a["pads"],
                             a.get("dilation", [1, 1]), out_shape=out_shape[1:])
        elif step.op == "avgpool":
            want = K.avgpool(ins[0], a["kernel"], a["stride"], a["pads"], a["count_include_pad"],
                             out_shape=out_shape[1:])
        elif step.op == "add":
            want = K.add(*ins, a["shift_a"], a["shift_b"], a["shift"], act)
        elif step.op == "act":
            want = K.activation(ins[0], act)
        elif step.op == "concat":
            want = K.concat(ins, a["shifts"])
        elif step.op == "upsample":
            want = K.upsample(ins[0], a["scale"], a["zeros"])
        elif step.op == "argmax":
            want = K.argmax(ins[0])
        else:
            raise AssertionError(f"no kernel check for the {step.op} steps the strategy draws")
        np.testing.assert_array_equal(tr["%" + step.outputs[0]], want, err_msg=step.name)

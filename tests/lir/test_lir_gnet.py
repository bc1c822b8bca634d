"""The gNet LIR ops: gnet_feature (partial writes of F) and the on-demand gnet_exit head --
verifier rules, liveness, text form, interpreter (run_program / run_exits / run_until)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from transpiler.errors import LirError
from transpiler.lir import kernels
from transpiler.lir.interp import run_exits, run_program, run_until
from transpiler.lir.ir import Buffer, Port, Program, Step
from transpiler.lir.liveness import liveness
from transpiler.lir.text import parse_program, print_program
from transpiler.lir.verify import check_program, verify_program

RNG = np.random.default_rng(11)
W1 = RNG.integers(-300, 300, (6, 8)).astype(np.int16)
B1 = RNG.integers(-500, 500, 6).astype(np.int32)
W2 = RNG.integers(-300, 300, (4, 6)).astype(np.int16)
B2 = RNG.integers(-500, 500, 4).astype(np.int32)
WH = RNG.integers(-2000, 2000, (3, 10)).astype(np.int16)
BH = RNG.integers(-500, 500, 3).astype(np.int32)


def program() -> Program:
    """x[8] -> fc(relu) h1[6] -> fc h2[4]; exit 1 = h1 (F[0:6]), exit 2 = h2 (F[6:10]); head 10 -> 3."""
    p = Program("g")
    p.add(Buffer("x", "i16", (8,), q=12))
    p.add(Buffer("w1", "i16", (6, 8), q=[14] * 6, data=W1))
    p.add(Buffer("b1", "i32", (6,), data=B1))
    p.add(Buffer("h1", "i16", (6,), q=11))
    p.add(Buffer("w2", "i16", (4, 6), q=[14] * 4, data=W2))
    p.add(Buffer("b2", "i32", (4,), data=B2))
    p.add(Buffer("h2", "i16", (4,), q=10))
    p.add(Buffer("F", "i16", (10,), q=10))
    p.add(Buffer("wh", "i16", (3, 10), q=[13] * 3, data=WH))
    p.add(Buffer("bh", "i32", (3,), data=BH))
    p.add(Buffer("scores", "i16", (3,), q=9))
    p.steps = [
        Step("fc", "fc1", ["x", "w1", "b1"], ["h1"], {"act": "relu", "shift": [15] * 6}),
        Step("gnet_feature", "feat1", ["h1"], ["F"], {"exit": 1, "features": 10, "offset": 0, "shift": 1}),
        Step("fc", "fc2", ["h1", "w2", "b2"], ["h2"], {"act": "none", "shift": [15] * 4}),
        Step("gnet_feature", "feat2", ["h2"], ["F"], {"exit": 2, "features": 10, "offset": 6, "shift": 0}),
        Step("gnet_exit", "head", ["F", "wh", "bh"], ["scores"], {"act": "none", "exits": 2, "shift": [11] * 3}),
    ]
    p.inputs = [Port("x", "x")]
    p.outputs = [Port("y", "h2")]
    return p


def problems(p: Program) -> list[str]:
    return [str(pr) for pr in check_program(p)]


def test_valid_and_text_round_trip() -> None:
    p = program()
    verify_program(p)
    text = print_program(p)
    assert "step gnet_feature \"feat2\" (%h2) -> (%F) {exit=2, features=10, offset=6, shift=0}" in text
    assert print_program(parse_program(text)) == text


def test_liveness_whole_program_for_features_and_head() -> None:
    live = liveness(program())
    assert live["F"] == (0, 4) and live["scores"] == (0, 4)
    assert live["h1"] == (0, 2)          # an ordinary buffer: first write to last read


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.steps[3].attrs.update(offset=4), "overlaps [0,6) written by step 1"),
    (lambda p: p.steps[3].attrs.update(exit=3), "has exit=3"),
    (lambda p: p.steps[3].attrs.update(offset=7), "does not fit the 10 features"),
    (lambda p: p.steps.insert(4, Step("act", "relu", ["F"], ["h1b"], {"act": "relu"})),
     "reads the gNet feature vector %F"),
    (lambda p: p.steps.insert(3, p.steps.pop(4)), "on-demand step before the in-sequence step"),
    (lambda p: p.steps[4].attrs.update(exits=3), "has exits=3 but 2 gnet_feature steps"),
    (lambda p: p.outputs.append(Port("s", "scores")), "written by the on-demand step"),
    (lambda p: p.steps.insert(2, Step("fc", "fc1b", ["x", "w1", "b1"], ["F"], {"act": "none", "shift": [15] * 6})),
     "already written by step"),
])
def test_rules(edit: object, message: str) -> None:
    p = program()
    if "h1b" not in p.buffers:
        p.add(Buffer("h1b", "i16", (10,), q=10))
    p.buffers["F"] = Buffer("F", "i16", (10,), q=10)
    edit(p)  # type: ignore[operator]
    found = problems(p)
    assert any(message in pr for pr in found), found


def test_interpreter_runs_the_head_only_on_demand() -> None:
    p = program()
    x = RNG.integers(-4000, 4000, 8).astype(np.int16)
    traced = run_program(p, {"x": x}, trace=True)
    h1 = kernels.fc(x, W1, B1, [15] * 6, "relu")
    h2 = kernels.fc(h1, W2, B2, [15] * 4)
    np.testing.assert_array_equal(traced["y"], h2)
    assert not traced["%scores"].any()                      # not run in sequence
    f = np.concatenate([kernels.requant(h1.astype(np.int64), 1), h2]).astype(np.int16)
    np.testing.assert_array_equal(traced["%F"], f)
    outputs, answers = run_exits(p, {"x": x})
    np.testing.assert_array_equal(outputs["y"], h2)
    assert [a.exit for a in answers] == [1, 2]
    f1 = f.copy()
    f1[6:] = 0                                               # exit 1: later features are zero
    for a, feats in zip(answers, (f1, f)):
        want = kernels.fc(feats, WH, BH, [11] * 3)
        np.testing.assert_array_equal(a.scores, want)
        assert a.cls == int(np.argmax(want))
    stopped = run_until(p, {"x": x}, 2)                     # before fc2: exit 1's answer
    assert (stopped.exit, stopped.cls) == (answers[0].exit, answers[0].cls)
    np.testing.assert_array_equal(stopped.scores, answers[0].scores)
    assert run_until(p, {"x": x}, 0).exit == 0              # nothing yet: the bias only
    np.testing.assert_array_equal(run_until(p, {"x": x}, 0).scores, kernels.fc(np.zeros(10), WH, BH, [11] * 3))


def test_run_exits_needs_a_head() -> None:
    p = copy.deepcopy(program())
    p.steps.pop()
    with pytest.raises(LirError, match="no on-demand gNet head"):
        run_exits(p, {"x": np.zeros(8, dtype=np.int16)})

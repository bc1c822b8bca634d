"""The LIR verifier, the op table's shape rules and liveness: one failing example per check."""

from __future__ import annotations

import base64
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies_lir import programs

from transpiler.errors import LirError
from transpiler.lir.ir import Buffer, Port, Program, Step, TilePlan
from transpiler.lir.liveness import liveness, overlaps
from transpiler.lir.ops import OPS, check_attrs, pool_out_sizes, window_problems
from transpiler.lir.interp import run_program
from transpiler.lir.text import parse_program, parse_program_with_positions, print_program
from transpiler.lir.verify import Problem, check_program, verify_program


def b64(arr: np.ndarray) -> str:
    return base64.b64encode(arr.tobytes()).decode("ascii")


_rng = np.random.default_rng(7)
W1 = _rng.integers(-300, 300, (4, 1, 3, 3)).astype("<i2")
B1 = _rng.integers(-1000, 1000, 4).astype("<i4")
W2 = _rng.integers(-300, 300, (3, 32)).astype("<i2")
B2 = _rng.integers(-1000, 1000, 3).astype("<i4")

# Every op, planned (with reuse: %p1 over the dead %x, %a1 over the dead %p2) and partly tiled.
BASE = f'''lir 1 "net"
meta "pipeline" "lower,plan-memory,tile"
input "in" %x
output "cls" %k
output "scores" %y
buffer %x : i16[2,6,6] q=12 sram @0
const %w1 : i16[4,1,3,3] q=[14,14,13,14] fram @0 = b64"{b64(W1)}"
const %b1 : i32[4] fram @72 = b64"{b64(B1)}"
buffer %c1 : i16[4,4,4] q=10 sram @144
buffer %p1 : i16[4,2,2] q=10 sram @0
buffer %p2 : i16[4,2,2] q=10 sram @32
buffer %s1 : i16[4,2,2] q=9 sram @64
buffer %a1 : i16[4,2,2] q=9 sram @32
buffer %cat : i16[8,2,2] q=9 sram @64
buffer %flat : i16[32] q=9 alias %cat
const %w2 : i16[3,32] q=[12,12,12] fram @88 = b64"{b64(W2)}"
const %b2 : i32[3] fram @280 = b64"{b64(B2)}"
buffer %y : i16[3] q=8 sram @128
buffer %k : i16[1] q=0 sram @136
step conv "conv1" (%x, %w1, %b1) -> (%c1) {{act="relu", dilation=[1,1], group=2, pads=[0,0,0,0], shift=[12,12,11,12], stride=[1,1]}} from ["/conv1/Conv"] tile [4,2,4] x2
step maxpool "pool1" (%c1) -> (%p1) {{dilation=[1,1], kernel=[2,2], pads=[0,0,0,0], stride=[2,2]}} tile [4,2,2] x1
step avgpool "pool2" (%c1) -> (%p2) {{count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[2,2]}}
step add "add1" (%p1, %p2) -> (%s1) {{act="none", shift=1, shift_a=0, shift_b=0}} tile [16] x4
step act "act1" (%s1) -> (%a1) {{act="leaky", alpha=3277}}
step concat "cat1" (%a1, %p1) -> (%cat) {{shifts=[0,1]}}
step fc "fc1" (%flat, %w2, %b2) -> (%y) {{act="clip", hi=100, lo=-100, shift=[13,13,13]}} tile [3] x1
step argmax "am" (%y) -> (%k) {{}}
'''

STEP_SUBJECTS = {"conv1": "step 0 conv 'conv1'", "pool1": "step 1 maxpool 'pool1'",
                 "pool2": "step 2 avgpool 'pool2'", "add1": "step 3 add 'add1'",
                 "act1": "step 4 act 'act1'", "cat1": "step 5 concat 'cat1'",
                 "fc1": "step 6 fc 'fc1'", "am": "step 7 argmax 'am'"}


def mutate(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def line_of(text: str, prefix: str) -> int:
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(prefix)]
    assert len(hits) == 1, (prefix, hits)
    return hits[0]


def find(problems: list[Problem], subject: str, fragment: str) -> Problem:
    for pr in problems:
        if pr.subject == subject and fragment in pr.message:
            return pr
    raise AssertionError(f"no problem {subject!r} ~ {fragment!r} in:\n" +
                         "\n".join(str(pr) for pr in problems))


def test_base_program_is_valid() -> None:
    p = parse_program(BASE, "v.lir")
    assert check_program(p) == []
    verify_program(p)


# (old text, new text, subject, message fragment, prefix of the line the problem points at)
CASES = [
    # buffers
    ("buffer %k : i16[1]", "buffer %k : i16[0]", "buffer %k", "shape (0,) must be a tuple of Python ints >= 1", "buffer %k "),
    ("q=0 sram @136", "q=0 @136", "buffer %k", "has offset @136 but no memory space", "buffer %k "),
    ("q=0 sram @136", "q=0 sram @-2", "buffer %k", "negative offset @-2", "buffer %k "),
    ("fram @280", "fram @282", "buffer %b2", "not aligned to its element size 4", "const %b2 "),
    ("alias %cat", "alias %nope", "buffer %flat", "alias of %nope, which does not exist",
     "buffer %flat "),
    ("buffer %flat : i16[32] q=9 alias %cat",
     "buffer %flat0 : i16[32] q=9 alias %cat\nbuffer %flat : i16[32] q=9 alias %flat0",
     "buffer %flat", "itself an alias of %cat", "buffer %flat "),
    ("buffer %flat : i16[32]", "buffer %flat : i16[31]", "buffer %flat",
     "alias has 31 elements [31], %cat has 32 [8, 2, 2]", "buffer %flat "),
    ("buffer %flat : i16[32]", "buffer %flat : u16[32]", "buffer %flat",
     "alias has dtype u16, %cat has i16", "buffer %flat "),
    ("alias %cat", "alias %w2", "buffer %flat", "alias of the constant %w2", "buffer %flat "),
    # ports
    ('output "cls" %k', 'output "cls" %nope', "output 'cls'", "names %nope, which does not exist",
     'output "cls"'),
    ('input "in" %x', 'input "in" %x\ninput "w" %w1', "input 'w'", "names the constant %w1",
     'input "w"'),
    ('output "scores" %y', 'output "scores" %y\noutput "cls" %y', "output 'cls'",
     "program output 'cls' listed twice", 'output "cls" %y'),
    # op, signature, attributes
    ('step conv "conv1"', 'step conv3d "conv1"', "step 0 conv3d 'conv1'", "unknown op 'conv3d'",
     'step conv3d'),
    ("(%x, %w1, %b1)", "(%x, %w9, %b1)", STEP_SUBJECTS["conv1"], "input %w9 does not exist",
     'step conv "conv1"'),
    ("-> (%k)", "-> (%nope)", STEP_SUBJECTS["am"], "output %nope does not exist", "step argmax"),
    ("(%p1, %p2) -> (%s1)", "(%p1) -> (%s1)", STEP_SUBJECTS["add1"], "takes 2 inputs (a, b), got 1",
     "step add"),
    ("(%y) -> (%k)", "(%y) -> (%k, %c9)", STEP_SUBJECTS["am"], "has 2 outputs, argmax has one",
     "step argmax"),
    ("(%a1, %p1) -> (%cat)", "() -> (%cat)", STEP_SUBJECTS["cat1"], "takes one or more inputs",
     "step concat"),
    ("group=2, ", "", STEP_SUBJECTS["conv1"], "missing attribute 'group' (int)", "step conv"),
    ("{shifts=[0,1]}", "{foo=1, shifts=[0,1]}", STEP_SUBJECTS["cat1"],
     "unknown attribute 'foo' for op concat", "step concat"),
    ("group=2", "group=[2]", STEP_SUBJECTS["conv1"], "group=[2] must be an integer", "step conv"),
    ("group=2", 'group="2"', STEP_SUBJECTS["conv1"], "group='2' must be an integer", "step conv"),
    ("stride=[1,1]}", "stride=[1]}", STEP_SUBJECTS["conv1"], "stride=[1] must have 2 entries",
     "step conv"),
    ("stride=[1,1]}", "stride=[1,0]}", STEP_SUBJECTS["conv1"], "stride=[1, 0] out of range [1, inf]",
     "step conv"),
    ("shift=[12,12,11,12]", "shift=[12,12,32,12]", STEP_SUBJECTS["conv1"],
     "shift=[12, 12, 32, 12] out of range [-15, 31]", "step conv"),
    ("shift=[12,12,11,12]", "shift=[12,12,-16,12]", STEP_SUBJECTS["conv1"], "out of range [-15, 31]",
     "step conv"),
    ("shift_a=0", "shift_a=16", STEP_SUBJECTS["add1"], "shift_a=16 out of range [0, 15]", "step add"),
    ("shift=1,", "shift=-16,", STEP_SUBJECTS["add1"], "shift=-16 out of range [-15, 31]", "step add"),
    ("count_include_pad=0", "count_include_pad=2", STEP_SUBJECTS["pool2"],
     "count_include_pad=2 out of range [0, 1]", "step avgpool"),
    ('act="none"', 'act="gelu"', STEP_SUBJECTS["add1"], "act='gelu' must be one of", "step add"),
    ("hi=100, lo=-100", "hi=-100, lo=100", STEP_SUBJECTS["fc1"], "clip needs lo <= hi", "step fc"),
    ("hi=100, lo=-100", "hi=40000, lo=-100", STEP_SUBJECTS["fc1"], "hi=40000 out of range",
     "step fc"),
    ('act="clip", hi=100, ', 'act="clip", ', STEP_SUBJECTS["fc1"], "missing attribute 'hi'",
     "step fc"),
    ("alpha=3277", "alpha=32768", STEP_SUBJECTS["act1"], "alpha=32768 out of range [0, 32767]",
     "step act"),
    ("alpha=3277", "alpha=-1", STEP_SUBJECTS["act1"], "alpha=-1 out of range", "step act"),
    ('act="relu", dilation', 'act="relu", alpha=5, dilation', STEP_SUBJECTS["conv1"],
     "unknown attribute 'alpha' for op conv with act='relu'", "step conv"),
    # dtypes and constants
    ("buffer %y : i16[3]", "buffer %y : i32[3]", STEP_SUBJECTS["fc1"],
     "output %y has dtype i32, needs i16", "step fc"),
    ("buffer %y : i16[3]", "buffer %y : i32[3]", STEP_SUBJECTS["am"],
     "input x %y has dtype i32, needs i16", "step argmax"),
    # shapes
    ("buffer %c1 : i16[4,4,4]", "buffer %c1 : i16[4,3,3]", STEP_SUBJECTS["conv1"],
     "output %c1 has shape [4, 3, 3], expected [4, 4, 4]", "step conv"),
    ("pads=[0,0,0,0], shift", "pads=[1,0,1,3], shift", STEP_SUBJECTS["conv1"],
     "expected [4, 6, 7]", "step conv"),
    ("dilation=[1,1], group", "dilation=[2,1], group", STEP_SUBJECTS["conv1"],
     "expected [4, 2, 4]", "step conv"),
    ("group=2", "group=3", STEP_SUBJECTS["conv1"], "group 3 must divide Cin 2 and Cout 4", "step conv"),
    ("group=2", "group=1", STEP_SUBJECTS["conv1"],
     "weight shape [4, 1, 3, 3] needs Cin/group = 2 input channels, has 1", "step conv"),
    ("shift=[12,12,11,12]", "shift=[12,12,11]", STEP_SUBJECTS["conv1"],
     "shift has 3 entries, Cout is 4", "step conv"),
    ("buffer %p1 : i16[4,2,2]", "buffer %p1 : i16[4,3,3]", STEP_SUBJECTS["pool1"],
     "output %p1 has shape [4, 3, 3], expected [4, 2, 2]", "step maxpool"),
    ("count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[2,2]",
     "count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[1,2]", STEP_SUBJECTS["pool2"],
     "output %p2 has shape [4, 2, 2], expected [4, 3, 2]", "step avgpool"),
    ("(%flat, %w2, %b2)", "(%a1, %w2, %b2)", STEP_SUBJECTS["fc1"],
     "input has 16 elements, weight [3, 32] needs K = 32", "step fc"),
    ("(%flat, %w2, %b2)", "(%flat, %w2, %b1)", STEP_SUBJECTS["fc1"], "bias shape [4] must be [3] (N)",
     "step fc"),
    ("shift=[13,13,13]", "shift=[13,13]", STEP_SUBJECTS["fc1"], "shift has 2 entries, N is 3",
     "step fc"),
    ("(%p1, %p2) -> (%s1)", "(%p1, %c1) -> (%s1)", STEP_SUBJECTS["add1"],
     "inputs have different shapes [4, 2, 2] and [4, 4, 4]", "step add"),
    ("buffer %a1 : i16[4,2,2]", "buffer %a1 : i16[16]", STEP_SUBJECTS["act1"],
     "output %a1 has shape [16], expected [4, 2, 2]", "step act"),
    ("{shifts=[0,1]}", "{shifts=[0]}", STEP_SUBJECTS["cat1"], "shifts has 1 entries for 2 inputs",
     "step concat"),
    ("(%a1, %p1) -> (%cat)", "(%a1, %c1) -> (%cat)", STEP_SUBJECTS["cat1"],
     "inputs [4, 2, 2] and [4, 4, 4] differ outside axis 0", "step concat"),
    ("buffer %cat : i16[8,2,2]", "buffer %cat : i16[8,2,1]", STEP_SUBJECTS["cat1"],
     "expected [8, 2, 2]", "step concat"),
    ("buffer %k : i16[1]", "buffer %k : i16[2]", STEP_SUBJECTS["am"], "expected [1]",
     "step argmax"),
    # q formats
    ("q=[14,14,13,14]", "q=[14,14,13]", STEP_SUBJECTS["conv1"], "weight %w1 has 3 q entries, Cout is 4",
     "step conv"),
    ("q=[12,12,12]", "q=[12,12,12,12]", STEP_SUBJECTS["fc1"], "weight %w2 has 4 q entries, Cout is 3",
     "step fc"),
    ("buffer %p1 : i16[4,2,2] q=10", "buffer %p1 : i16[4,2,2] q=11", STEP_SUBJECTS["pool1"],
     "output %p1 has q=11, must equal the input's q=10", "step maxpool"),
    ("buffer %a1 : i16[4,2,2] q=9", "buffer %a1 : i16[4,2,2] q=8", STEP_SUBJECTS["act1"],
     "must equal the input's q=9", "step act"),
    ("buffer %k : i16[1] q=0", "buffer %k : i16[1] q=1", STEP_SUBJECTS["am"],
     "must have q=0, has q=1", "step argmax"),
    ("buffer %k : i16[1] q=0", "buffer %k : i16[1]", STEP_SUBJECTS["am"],
     "must have q=0, has q=None", "step argmax"),
    # dataflow
    ("(%s1) -> (%a1)", "(%a1) -> (%a1)", STEP_SUBJECTS["act1"], "writes %a1, which it also reads",
     "step act"),
    ("(%a1, %p1) -> (%cat)", "(%a1, %flat) -> (%cat)", STEP_SUBJECTS["cat1"],
     "writes %cat, which it also reads", "step concat"),
    ("(%a1, %p1) -> (%cat)", "(%a1, %flat) -> (%cat)", STEP_SUBJECTS["cat1"],
     "reads %cat (through alias %flat) before any step writes it", "step concat"),
    ('step act "act1" (%s1) -> (%a1) {act="leaky", alpha=3277}',
     'step act "act1" (%s1) -> (%a1) {act="leaky", alpha=3277}\n'
     'step act "again" (%s1) -> (%a1) {act="none"}', "step 5 act 'again'",
     "writes %a1, already written by step 4 'act1'", 'step act "again"'),
    ('step argmax "am" (%y) -> (%k) {}', 'step argmax "am" (%y) -> (%k) {}\n'
     'step act "late" (%y) -> (%flat) {act="none"}', "step 8 act 'late'",
     "writes %cat (through alias %flat), already written by step 5 'cat1'", 'step act "late"'),
    ('step argmax "am" (%y) -> (%k) {}', 'step argmax "am" (%y) -> (%k) {}\n'
     'step argmax "w" (%y) -> (%w2) {}', "step 8 argmax 'w'", "writes the constant %w2",
     'step argmax "w"'),
    ('step argmax "am" (%y) -> (%k) {}', 'step argmax "am" (%y) -> (%k) {}\n'
     'step act "x" (%y) -> (%x) {act="none"}', "step 8 act 'x'", "writes the program input %x",
     'step act "x"'),
    ("buffer %k : i16[1] q=0 sram @136", "buffer %k : i16[1] q=0 sram @136\nbuffer %dead : i16[4]",
     "buffer %dead", "is never written by any step", "buffer %dead"),
    # tiles
    ("tile [4,2,4] x2", "tile [4,2] x2", STEP_SUBJECTS["conv1"],
     "tile [4, 2] must have 3 dims [channels, rows, cols]", "step conv"),
    ("tile [4,2,4] x2", "tile [4,0,4] x2", STEP_SUBJECTS["conv1"], "has a dimension < 1", "step conv"),
    ("tile [4,2,4] x2", "tile [5,2,4] x2", STEP_SUBJECTS["conv1"],
     "tile [5, 2, 4] exceeds the output extent [4, 4, 4]", "step conv"),
    ("tile [16] x4", "tile [17] x4", STEP_SUBJECTS["add1"], "exceeds the output extent [16]",
     "step add"),
    ("tile [3] x1", "tile [1,3] x1", STEP_SUBJECTS["fc1"], "must have 1 dims [elements]", "step fc"),
    ("tile [3] x1", "tile [3] x0", STEP_SUBJECTS["fc1"], "tile count x0 must be >= 1", "step fc"),
    # memory
    ("buffer %p2 : i16[4,2,2] q=10 sram @32", "buffer %p2 : i16[4,2,2] q=10 sram @16",
     "buffer %p2", "bytes [16,48) in sram overlap %p1 [0,32) while both are live (steps 2..3 and "
     "1..5)", "buffer %p2"),
    ("fram @88", "fram @70", "buffer %w2", "overlap %w1 [0,72) while both are live (steps 0..7",
     "const %w2"),
    ("buffer %y : i16[3] q=8 sram @128", "buffer %y : i16[3] q=8 sram @60", "buffer %cat",
     "bytes [64,128) in sram overlap %y [60,66) while both are live (steps 5..6 and 6..7)",
     "buffer %cat"),
]


@pytest.mark.parametrize("old, new, subject, fragment, prefix", CASES,
                         ids=[f"{c[2]}~{c[3][:40]}" for c in CASES])
def test_each_check_names_subject_and_position(old: str, new: str, subject: str, fragment: str,
                                               prefix: str) -> None:
    text = mutate(old, new)
    line = line_of(text, prefix)
    p = parse_program(text, "v.lir")
    problem = find(check_program(p), subject, fragment)
    assert (problem.location.file, problem.location.line, problem.location.column) == ("v.lir", line, 1)
    assert str(problem).startswith(f"v.lir:{line}:1: {subject}: ")
    with pytest.raises(LirError) as info:
        verify_program(p)
    assert str(problem) in info.value.details


def test_pool_ceil_mode_output_is_accepted() -> None:
    # 4x4, kernel 3, stride 2: floor gives 1, ceil gives 2 (the last window covers rows 2..3)
    text = mutate("kernel=[2,2], pads=[0,0,0,0], stride=[2,2]} tile",
                  "kernel=[3,3], pads=[0,0,0,0], stride=[2,2]} tile")
    assert check_program(parse_program(text)) == []
    text = mutate("count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[2,2]",
                  "count_include_pad=1, kernel=[3,3], pads=[1,1,0,0], stride=[3,3]")
    assert check_program(parse_program(text)) == []
    # 4x4, kernel 2, stride 3: floor 1, ceil 2 (the last window covers row 3)
    text = mutate("count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[2,2]",
                  "count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[3,3]")
    assert check_program(parse_program(text)) == []
    # stride 4: the ceil variant's second window starts at row 4, outside the input
    text = mutate("count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[2,2]",
                  "count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[4,4]")
    find(check_program(parse_program(text)), STEP_SUBJECTS["pool2"],
         "the pooling window of output row 1 covers no input position")


def test_pool_shape_message_lists_floor_and_ceil_variants() -> None:
    text = mutate("count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[2,2]",
                  "count_include_pad=0, kernel=[2,2], pads=[0,0,0,0], stride=[3,3]")
    text = text.replace("buffer %p2 : i16[4,2,2]", "buffer %p2 : i16[4,3,3]")
    find(check_program(parse_program(text)), STEP_SUBJECTS["pool2"],
         "expected [4, 1, 1] or [4, 1, 2] or [4, 2, 1] or [4, 2, 2]")


def test_unwritten_program_output_is_reported_at_the_port() -> None:
    text = mutate('output "scores" %y', 'output "scores" %y\noutput "nothing" %dead')
    text = text.replace("buffer %k : i16[1] q=0 sram @136",
                        "buffer %k : i16[1] q=0 sram @136\nbuffer %dead : i16[4]")
    problems = check_program(parse_program(text, "v.lir"))
    pr = find(problems, "output 'nothing'", "%dead is never written")
    assert (pr.location.line, pr.location.column) == (line_of(text, 'output "nothing"'), 1)
    assert not [q for q in problems if q.subject == "buffer %dead"]  # reported once, at the port


def test_pool_window_outside_the_input_is_rejected() -> None:
    # rows: 4 + 2 top padding, kernel 2 stride 2 -> 3 outputs; window 0 covers rows -2..-1 only
    text = mutate("kernel=[2,2], pads=[0,0,0,0], stride=[2,2]} tile",
                  "kernel=[2,2], pads=[2,0,0,0], stride=[2,2]} tile")
    text = text.replace("buffer %p1 : i16[4,2,2]", "buffer %p1 : i16[4,3,2]")
    problems = check_program(parse_program(text, "v.lir"))
    pr = find(problems, STEP_SUBJECTS["pool1"],
              "the pooling window of output row 0 covers no input position")
    assert pr.location.line == line_of(text, "step maxpool")


def test_in_memory_only_problems() -> None:
    p = parse_program(BASE)
    p.buffers["x"].dtype = "f32"
    p.buffers["k"].q = "zero"  # type: ignore[assignment]
    p.buffers["y"].space = "eeprom"
    p.buffers["w2"].data = np.zeros((96,), dtype=np.int16)
    p.buffers["b1"].data = B1.astype(np.int64)
    p.buffers["flat"].data = np.zeros(32, dtype=np.int16)
    p.steps[6].inputs[1] = "a1"
    problems = check_program(p)
    find(problems, "buffer %x", "unknown dtype 'f32'")
    find(problems, "buffer %k", "q='zero' must be absent, an integer or a list of integers")
    find(problems, "buffer %y", "unknown memory space 'eeprom'")
    find(problems, "buffer %w2", "constant data is int16[96], declared i16[3, 32]")
    find(problems, "buffer %b1", "constant data is int64[4], declared i32[4]")
    find(problems, "buffer %flat", "a constant cannot be an alias")
    find(problems, STEP_SUBJECTS["fc1"], "input w %a1 must be a constant")
    # a step that touches a malformed buffer skips its typed checks (the buffer is reported)
    assert not [pr for pr in problems if pr.subject == STEP_SUBJECTS["conv1"]]


def test_weight_and_bias_dtypes() -> None:
    p = parse_program(BASE)
    p.buffers["b2"] = Buffer("b2", "i16", (3,), data=np.zeros(3, dtype=np.int16), space="fram",
                             offset=280)
    find(check_program(p), STEP_SUBJECTS["fc1"], "input b %b2 has dtype i16, needs i32")


def test_dimensions_beyond_uint16_are_rejected() -> None:
    p = Program("wide")
    p.add(Buffer("x", "i16", (70000,), q=3))
    p.add(Buffer("y", "i16", (70000,), q=3))
    p.inputs.append(Port("x", "x"))
    p.outputs.append(Port("y", "y"))
    p.steps.append(Step("act", "a", ["x"], ["y"], {"act": "relu"}))
    problems = check_program(p)
    find(problems, "step 0 act 'a'", "%x has dimension 70000 > 65535")


def test_error_without_source_has_no_position_and_with_explicit_map_has_one() -> None:
    text = mutate("group=2", "group=3")
    p, source = parse_program_with_positions(text, "given.lir")
    copy_of = copy.deepcopy(p)  # a new object: the parser's positions do not apply
    with pytest.raises(LirError) as info:
        verify_program(copy_of)
    assert info.value.location.line is None and info.value.location.node == "conv1"
    assert info.value.details[0].startswith("step 0 conv 'conv1': group 3")
    with pytest.raises(LirError) as info:
        verify_program(p, source)
    line = line_of(text, "step conv")
    assert str(info.value.location).startswith(f"given.lir:{line}:1, node 'conv1', op conv")
    assert info.value.message == ("invalid LIR program 'net': step 0 conv 'conv1': group 3 must "
                                  "divide Cin 2 and Cout 4")


def test_all_problems_are_listed_in_one_error() -> None:
    text = mutate("group=2", "group=3").replace("alpha=3277", "alpha=-1")
    with pytest.raises(LirError) as info:
        verify_program(parse_program(text, "v.lir"))
    assert info.value.message == "invalid LIR program 'net': 2 problems"
    assert len(info.value.details) == 2
    assert info.value.render().count("v.lir:") == 3  # the location and two detail lines


def test_op_table_is_consistent() -> None:
    assert set(OPS) == {"conv", "fc", "fc_sparse", "conv_sparse", "maxpool", "avgpool", "add", "mul", "act", "lut",
                        "concat", "argmax", "transpose", "slice", "upsample", "trees", "tree_sum", "gnet_feature",
                        "gnet_exit", "layernorm", "matmul", "softmax", "embed"}
    for name, op in OPS.items():
        assert op.name == name
        assert op.tile_rank in (1, 3)
        assert len(op.input_dtypes) == (1 if op.variadic else len(op.inputs))
    assert check_attrs(OPS["argmax"], {}) == []
    assert check_attrs(OPS["avgpool"], {"kernel": [200, 200], "stride": [1, 1],
                                        "pads": [0, 0, 0, 0], "count_include_pad": 0}) == [
        "avgpool kernel 200x200 has more than 32767 positions"]


@pytest.mark.parametrize("n, k, s, p0, p1, d, expected", [
    (28, 5, 1, 0, 0, 1, [24]),
    (4, 3, 2, 0, 0, 1, [1, 2]),
    (5, 2, 2, 1, 1, 1, [3, 4]),
    (7, 3, 2, 1, 1, 2, [3]),
    (1, 1, 1, 0, 0, 1, [1]),
])
def test_pool_out_sizes(n: int, k: int, s: int, p0: int, p1: int, d: int,
                        expected: list[int]) -> None:
    assert pool_out_sizes(n, k, s, p0, p1, d) == expected


def test_window_problems() -> None:
    assert window_problems("row", 4, 2, 3, 2, 0, 0, 1, False) == []
    assert window_problems("row", 4, 3, 2, 2, 2, 0, 1, False) != []
    assert window_problems("row", 4, 3, 2, 2, 2, 0, 1, True) == []
    assert window_problems("col", 1, 1, 3, 1, 2, 2, 3, False) != []  # taps at -2, 1, 4


def test_liveness_of_the_base_program() -> None:
    live = liveness(parse_program(BASE))
    assert live == {"x": (0, 0), "w1": (0, 7), "b1": (0, 7), "c1": (0, 2), "p1": (1, 5),
                    "p2": (2, 3), "s1": (3, 4), "a1": (4, 5), "cat": (5, 6), "w2": (0, 7),
                    "b2": (0, 7), "y": (6, 7), "k": (7, 7)}


def test_liveness_edge_cases() -> None:
    p = Program("edge")
    for name in ("x", "unused", "out", "dead"):
        p.add(Buffer(name, "i16", (2,)))
    p.add(Buffer("view", "i16", (1, 2), alias="dead"))
    p.inputs.append(Port("x", "x"))
    p.outputs.append(Port("out", "out"))
    p.steps += [Step("act", "a", ["x"], ["dead"], {}), Step("act", "b", ["view"], ["out"], {}),
                Step("act", "c", ["out"], ["ghost"], {})]
    assert liveness(p) == {"x": (0, 0), "unused": (0, -1), "out": (1, 2), "dead": (0, 1)}
    assert overlaps((0, 2), (2, 3)) and not overlaps((0, 1), (2, 3))
    assert not overlaps((0, -1), (0, 5))
    empty = Program("empty")
    empty.add(Buffer("x", "i16", (1,)))
    empty.inputs.append(Port("x", "x"))
    empty.outputs.append(Port("x", "x"))
    assert liveness(empty) == {"x": (0, 0)}
    assert check_program(empty) == []


@settings(max_examples=60, deadline=None)
@given(programs())
def test_generated_programs_verify(p: Program) -> None:
    assert check_program(p) == []


@settings(max_examples=60, deadline=None)
@given(programs(max_steps=4), st.data())
def test_a_wrong_output_shape_is_always_caught(p: Program, data: st.DataObject) -> None:
    if not p.steps:
        return
    index = data.draw(st.integers(0, len(p.steps) - 1))
    step = p.steps[index]
    out = p.buffers[step.outputs[0]]
    out.shape = (out.shape[0] + 1,) + out.shape[1:]
    problems = check_program(p)
    subject = f"step {index} {step.op} {step.name!r}"
    assert any(pr.subject == subject and "shape" in pr.message for pr in problems), problems


@settings(max_examples=40, deadline=None)
@given(programs(max_steps=5, planned=True, odd_names=False), st.data())
def test_sharing_bytes_between_live_buffers_is_caught(p: Program, data: st.DataObject) -> None:
    live = liveness(p)
    pairs = [(a, b) for a in p.buffers.values() for b in p.buffers.values()
             if a.name < b.name and a.alias is None and b.alias is None
             and overlaps(live[a.name], live[b.name])]
    if not pairs:
        return
    a, b = data.draw(st.sampled_from(pairs))
    b.space, b.offset = a.space, a.offset
    reported = set()
    for pr in check_program(p):
        if "overlap %" in pr.message:
            other = pr.message.split("overlap %")[1].split(" ")[0]
            reported.add(frozenset((pr.subject.removeprefix("buffer %"), other)))
    assert frozenset((a.name, b.name)) in reported


_JUNK: list[object] = [None, 0, -1, 5, 70000, "x", "t1", "c2", [], [1], [0, 0], [1, 2, 3, 4],
                       (1,), (0,), (2, 3), (1, 1, 1), "sram", "f32", np.zeros(3, np.int16)]


@settings(max_examples=100, deadline=None)
@given(programs(max_steps=5, odd_names=False), st.data())
def test_verifier_reports_instead_of_crashing_on_corrupted_programs(p: Program,
                                                                    data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(1, 3))):
        if p.steps and data.draw(st.booleans()):
            s = data.draw(st.sampled_from(p.steps))
            kind = data.draw(st.sampled_from(["attr", "inputs", "outputs", "tile", "op"]))
            names = list(p.buffers) + ["nope"]
            if kind == "attr":
                key = data.draw(st.sampled_from(list(s.attrs) + ["group", "act", "lo", "kernel"]))
                s.attrs[key] = data.draw(st.sampled_from(_JUNK))  # type: ignore[assignment]
            elif kind == "inputs":
                s.inputs = data.draw(st.lists(st.sampled_from(names), max_size=4))
            elif kind == "outputs":
                s.outputs = data.draw(st.lists(st.sampled_from(names), max_size=2))
            elif kind == "tile":
                s.tile = TilePlan(data.draw(st.lists(st.integers(-2, 5), max_size=4)),
                                  data.draw(st.integers(-1, 3)))
            else:
                s.op = data.draw(st.sampled_from([*OPS, "zz"]))
        else:
            b = data.draw(st.sampled_from(list(p.buffers.values())))
            field = data.draw(st.sampled_from(["shape", "q", "space", "offset", "alias", "dtype"]))
            value = data.draw(st.sampled_from(_JUNK))
            if field == "shape" and not isinstance(value, tuple):
                continue
            if field == "alias" and value is not None and not isinstance(value, str):
                continue
            setattr(b, field, value)
    for pr in check_program(p):  # must not raise; every problem renders
        assert str(pr)


@pytest.mark.parametrize("perm", [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
def test_transpose_shapes_follow_the_permutation(perm: list[int]) -> None:
    from transpiler.lir.kernels import transpose

    x = np.arange(2 * 3 * 5, dtype=np.int16).reshape(2, 3, 5)
    (shape,) = OPS["transpose"].infer({"perm": perm}, [x.shape])
    y = transpose(x, perm)
    assert shape == y.shape == tuple(x.shape[p] for p in perm)
    assert np.array_equal(y, np.transpose(x, perm)) and y.flags.c_contiguous


def test_transpose_rejects_what_is_not_a_permutation() -> None:
    from transpiler.lir.ops import ShapeError

    with pytest.raises(ShapeError, match="not a permutation"):
        OPS["transpose"].infer({"perm": [0, 0, 2]}, [(2, 3, 5)])
    with pytest.raises(ShapeError, match="at most 65535"):
        OPS["transpose"].infer({"perm": [2, 1, 0]}, [(300, 300, 1)])


@pytest.mark.parametrize("scale", [[1, 1], [2, 2], [1, 3], [3, 2]])
@pytest.mark.parametrize("zeros", [0, 1])
def test_upsample_repeats_or_spreads_the_input(scale: list[int], zeros: int) -> None:
    from transpiler.lir.kernels import upsample

    x = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 7
    (shape,) = OPS["upsample"].infer({"scale": scale, "zeros": zeros}, [x.shape])
    y = upsample(x, scale, zeros)
    assert shape == y.shape and y.flags.c_contiguous
    sh, sw = scale
    for c, i, j in np.ndindex(*y.shape):
        if zeros:
            want = x[c, i // sh, j // sw] if i % sh == 0 and j % sw == 0 else 0
        else:
            want = x[c, i // sh, j // sw]
        assert y[c, i, j] == want, (c, i, j)
    assert shape == ((2, 3 * sh, 4 * sw) if not zeros else (2, 2 * sh + 1, 3 * sw + 1))


def test_upsample_limits_buffers_to_65535_elements() -> None:
    from transpiler.lir.ops import ShapeError

    with pytest.raises(ShapeError, match="at most 65535"):
        OPS["upsample"].infer({"scale": [2, 2], "zeros": 0}, [(16, 64, 32)])
    assert OPS["upsample"].infer({"scale": [2, 2], "zeros": 1}, [(16, 32, 32)]) == [(16, 63, 63)]


def _tree_program(children: list[list[int]], roots: list[int], first: list[int], width: int = 2) -> Program:
    """x[3] -> trees (two branches) -> tree_sum over leaves of ``width`` values into 2 outputs."""
    p = Program(name="t")
    p.add(Buffer("x", "i16", (3,), q=12))
    p.add(Buffer("feature", "u16", (2,), data=np.array([0, 2], dtype=np.uint16)))
    p.add(Buffer("threshold", "i16", (2,), q=12, data=np.array([100, -5], dtype=np.int16)))
    p.add(Buffer("children", "u16", (2, 2), data=np.array(children, dtype=np.uint16).reshape(2, 2)))
    p.add(Buffer("roots", "u16", (len(roots),), data=np.array(roots, dtype=np.uint16)))
    p.add(Buffer("leaves", "i16", (len(roots),), q=0))
    p.add(Buffer("values", "i16", (3, width), q=14, data=np.arange(3 * width, dtype=np.int16).reshape(3, width)))
    p.add(Buffer("first", "u16", (len(roots),), data=np.array(first, dtype=np.uint16)))
    p.add(Buffer("b", "i32", (2,), data=np.zeros(2, dtype=np.int32)))
    p.add(Buffer("y", "i16", (2,), q=10))
    p.inputs.append(Port("x", "x"))
    p.outputs.append(Port("y", "y"))
    p.steps.append(Step("trees", "walk", ["x", "feature", "threshold", "children", "roots"], ["leaves"],
                        {"values": 3 * width}))
    p.steps.append(Step("tree_sum", "sum", ["leaves", "values", "first", "b"], ["y"], {"shift": 4}))
    return p


def test_tree_tables() -> None:
    leaf = 0x8000
    good = _tree_program([[1, leaf | 2], [leaf | 0, leaf | 4]], [0, leaf | 2], [0, 0])
    verify_program(good)
    assert print_program(parse_program(print_program(good))) == print_program(good)
    out = run_program(good, {"x": np.array([100, 0, -6], dtype=np.int16)})
    # tree 0: x0 <= 100 -> branch 1: x2 = -6 <= -5 -> leaf offset 0; tree 1: its root leaf, offset 2
    assert out["y"].tolist() == [(0 + 2 + 8) >> 4, (1 + 3 + 8) >> 4]
    problems = {
        "a child names branch 0, which is not a branch after its parent": ([[0, leaf], [leaf, leaf]], [0, leaf], [0, 0]),
        "a root names leaf offset 6 of 6 values": ([[1, leaf], [leaf, leaf]], [0, leaf | 6], [0, 0]),
        "a tree adds outputs [1, 3) of 2": ([[1, leaf], [leaf, leaf]], [0, leaf], [0, 1]),
    }
    for text, args in problems.items():
        found = [pr.message for pr in check_program(_tree_program(*args))]
        assert any(text in m for m in found), (text, found)

"""The LIR text form: exact round trips both ways, errors with file:line:col, big constants."""

from __future__ import annotations

import base64
import gc
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from strategies_lir import programs

from transpiler.errors import LirError
from transpiler.lir import text as lirtext
from transpiler.lir.compare import program_diff, programs_equal
from transpiler.lir.ir import Buffer, Program, Step, TilePlan
from transpiler.lir.text import (load_lir, parse_program, parse_program_with_positions,
                                 print_program, save_lir, source_map_of)


def b64(arr: np.ndarray) -> str:
    return base64.b64encode(arr.tobytes()).decode("ascii")


W1 = (np.arange(150, dtype="<i2") * 217 - 16000).reshape(6, 1, 5, 5)
B1 = np.array([-(2**31), -1, 0, 1, 70000, 2**31 - 1], dtype="<i4")

LENET = f'''lir 1 "lenet5_mnist"
meta "pipeline" "normalize,quantize,lower"
input "input.1" %x
output "logits" %t1f
buffer %x : i16[1,28,28] q=12 sram @0
buffer %t1 : i16[6,24,24] q=10 fram @0
buffer %t1f : i16[3456] q=10 alias %t1
const %w1 : i16[6,1,5,5] q=[14,14,13,14,14,14] fram @6912 = b64"{b64(W1)}"
const %b1 : i32[6] fram @7212 = b64"{b64(B1)}"
step conv "conv1" (%x, %w1, %b1) -> (%t1) {{act="relu", dilation=[1,1], group=1, pads=[0,0,0,0], shift=[12,12,11,12,12,12], stride=[1,1]}} from ["/conv1/Conv", "/relu1/Relu"] tile [6,4,24] x2
'''


def test_docs_example_parses_to_the_expected_program() -> None:
    p = parse_program(LENET)
    assert p.name == "lenet5_mnist"
    assert p.meta == {"pipeline": "normalize,quantize,lower"}
    assert [(port.onnx_name, port.buffer) for port in p.inputs] == [("input.1", "x")]
    assert [(port.onnx_name, port.buffer) for port in p.outputs] == [("logits", "t1f")]
    x = p.buffers["x"]
    assert (x.dtype, x.shape, x.q, x.space, x.offset, x.alias, x.data) == (
        "i16", (1, 28, 28), 12, "sram", 0, None, None)
    assert p.buffers["t1f"].alias == "t1" and p.buffers["t1f"].space is None
    w = p.buffers["w1"]
    assert w.q == [14, 14, 13, 14, 14, 14]
    assert w.data is not None and w.data.dtype == np.int16 and w.data.shape == (6, 1, 5, 5)
    np.testing.assert_array_equal(w.data, W1)
    b = p.buffers["b1"]
    assert b.data is not None and b.data.dtype == np.int32
    np.testing.assert_array_equal(b.data, B1)
    w.data[0, 0, 0, 0] = 1  # parsed data is writable
    (step,) = p.steps
    assert step == Step("conv", "conv1", ["x", "w1", "b1"], ["t1"],
                        {"act": "relu", "dilation": [1, 1], "group": 1, "pads": [0, 0, 0, 0],
                         "shift": [12, 12, 11, 12, 12, 12], "stride": [1, 1]},
                        origin=["/conv1/Conv", "/relu1/Relu"], tile=TilePlan([6, 4, 24], 2))


def test_canonical_text_prints_back_identically() -> None:
    assert print_program(parse_program(LENET)) == LENET


@settings(max_examples=120, deadline=None)
@given(programs())
def test_print_parse_round_trip(p: Program) -> None:
    text = print_program(p)
    back = parse_program(text)
    assert program_diff(p, back) == []
    assert print_program(back) == text


def test_optional_parts_and_value_forms_round_trip() -> None:
    text = '''lir 1 ""
buffer %a : i16[3] q=-7
buffer %b : i16[3] q=[]
buffer %c : i16[3]
buffer %"we ird\\"name\\u00e9" : i16[3] hifram
const %d : u16[2] q=[1,-2] = b64"AQD//w=="
const %e : i8[2,1] sram @-4 = b64"gH8="
step mystery "" () -> () {}
step act "s" (%a, %a) -> (%b, %c) {alias="x\\ty", from=-2147483649, q=[], step=[-1,0,1], tile=0, x2=3} from [""] tile [] x0
'''
    p = parse_program(text)
    assert p.buffers["a"].q == -7 and p.buffers["b"].q == [] and p.buffers["c"].q is None
    assert p.buffers['we ird"name\u00e9'].space == "hifram"
    d = p.buffers["d"].data
    assert d is not None and d.dtype == np.uint16 and d.tolist() == [1, 65535]
    e = p.buffers["e"].data
    assert e is not None and e.dtype == np.int8 and e.tolist() == [[-128], [127]]
    assert p.buffers["e"].offset == -4
    assert p.steps[0].inputs == [] and p.steps[0].attrs == {} and p.steps[0].tile is None
    s = p.steps[1]
    assert s.attrs == {"alias": "x\ty", "from": -2147483649, "q": [], "step": [-1, 0, 1],
                       "tile": 0, "x2": 3}
    assert s.origin == [""] and s.tile == TilePlan([], 0)
    assert print_program(p) == text


def test_comments_whitespace_and_defaults_are_accepted() -> None:
    messy = '''# a dump
lir 1 "m"   # header
  meta "k" "v"
input "in" %x output "out" %y
buffer %x : i16 [ 2 , 3 ] q = 3
buffer %y : i16[2,3] q=3 # trailing
step act "r" ( %x ) -> ( %y ) { act = "relu" }
   tile [ 6 ]
'''
    p = parse_program(messy)
    assert p.steps[0].tile == TilePlan([6], 1)
    canonical = print_program(p)
    assert canonical.splitlines()[3] == 'output "out" %y'
    assert canonical.endswith('step act "r" (%x) -> (%y) {act="relu"} tile [6] x1\n')
    assert programs_equal(parse_program(canonical), p)


def test_declaration_order_is_enforced() -> None:
    with pytest.raises(LirError) as info:
        parse_program('lir 1 "m"\nbuffer %x : i16[1]\nmeta "k" "v"\n', "f.lir")
    assert (info.value.location.line, info.value.location.column) == (3, 1)
    assert "unexpected 'meta'" in info.value.message


@pytest.mark.parametrize("text, line, col, fragment", [
    ('lir 1 "m"\nbuffer %x : i16[1,2] q= sram\n', 2, 25, "expected one of: '[', an integer"),
    ('lir 1 "m"\nstep conv "a" (%x) (%y) {}\n', 2, 20, "expected '->'"),
    ('lir 1 "m"\nstep conv "a" (%x) -> (%y)\n', 2, 27, "unexpected end of input"),
    ('lir 1 "m"\nbuffer %x : i16[1] $\n', 2, 20, "unexpected character '$'"),
    ('lir 1 "m"\nbuffer x : i16[1]\n', 2, 8, "a buffer name (%name)"),
    ('lir 1 "m"\nstep act "a" (%x) -> (%y) {k=1.5}\n', 2, 31, "unexpected character '.'"),
    ('  # nothing\n\n', 1, 12, "expected 'lir'"),
    ('lir 1 "m"\nconst %w : i16[1] = "AAA="\n', 2, 21, 'constant data (b64"...")'),
])
def test_syntax_errors_have_line_column_and_caret(text: str, line: int, col: int,
                                                  fragment: str) -> None:
    with pytest.raises(LirError) as info:
        parse_program(text, "model.lir")
    err = info.value
    assert (err.location.file, err.location.line, err.location.column) == ("model.lir", line, col)
    assert err.message.startswith("syntax error: ")
    assert fragment in err.message
    rendered = err.render()
    assert rendered.startswith(f"error: model.lir:{line}:{col}: syntax error")
    src = text.splitlines()[line - 1]
    assert err.details == [src, " " * (col - 1) + "^"]


@pytest.mark.parametrize("text, line, col, fragment", [
    ('lir 2 "m"\n', 1, 5, "unsupported LIR version 2"),
    ('lir 1 "m"\nmeta "a" "1"\nmeta "a" "2"\n', 3, 6, "meta key 'a' given twice"),
    ('lir 1 "m"\nbuffer %x : i16[1]\nbuffer %x : i8[1]\n', 3, 8,
     "buffer %x declared twice (first declared at line 2)"),
    ('lir 1 "m"\nbuffer %x : f32[1]\n', 2, 13, "unknown dtype 'f32'"),
    ('lir 1 "m"\nbuffer %x : i16[2,-1]\n', 2, 16, "negative dimension"),
    ('lir 1 "m"\nconst %w : i16[3] = b64"AAAA"\n', 2, 21, "data has 3 bytes, i16[3] needs 6"),
    ('lir 1 "m"\nconst %w : i32[1] = b64"AAA"\n', 2, 21, "invalid base64"),
    ('lir 1 "m"\nstep act "a" () -> () {k=1, k=2}\n', 2, 29, "attribute 'k' given twice"),
    ('lir 1 "m\\x"\n', 1, 7, "invalid string"),
    ('lir 1 "m"\ninput "i" %"\\q"\n', 2, 11, "invalid quoted buffer name"),
])
def test_semantic_parse_errors_have_line_column(text: str, line: int, col: int,
                                                fragment: str) -> None:
    with pytest.raises(LirError) as info:
        parse_program(text, "m.lir")
    err = info.value
    assert (err.location.file, err.location.line, err.location.column) == ("m.lir", line, col)
    assert fragment in err.message
    assert err.details[1] == " " * (col - 1) + "^"


def test_all_semantic_parse_errors_are_reported() -> None:
    text = 'lir 1 "m"\nbuffer %x : f32[1]\nbuffer %y : f64[1]\n'
    with pytest.raises(LirError) as info:
        parse_program(text, "m.lir")
    assert "f32" in info.value.message
    assert any(d.startswith("also: m.lir:3:13: ") and "f64" in d for d in info.value.details)


def test_large_constant_parses_fast_enough() -> None:
    rng = np.random.default_rng(1)
    big = rng.integers(-32768, 32768, size=(300, 1000)).astype(np.int16)
    p = Program("big")
    p.add(Buffer("w", "i16", big.shape, q=[3] * 300, space="hifram", offset=0, data=big))
    t0 = time.perf_counter()
    text = print_program(p)
    t1 = time.perf_counter()
    back = parse_program(text)
    t2 = time.perf_counter()
    assert back.buffers["w"].data is not None
    np.testing.assert_array_equal(back.buffers["w"].data, big)
    assert print_program(back) == text
    print(f"300k int16: print {t1 - t0:.3f} s, parse {t2 - t1:.3f} s")


def test_printer_rejects_what_text_cannot_express() -> None:
    def prog(**step_kw: object) -> Program:
        p = Program("m")
        p.steps.append(Step(**{"op": "act", "name": "s", "inputs": [], "outputs": [],
                               **step_kw}))  # type: ignore[arg-type]
        return p

    with pytest.raises(LirError, match="expected an integer"):
        print_program(prog(attrs={"k": 1.5}))
    with pytest.raises(LirError, match="not a valid op name"):
        print_program(prog(op="my-op"))
    with pytest.raises(LirError, match="not a valid name"):
        print_program(prog(attrs={"bad key": 1}))
    p = Program("m")
    p.add(Buffer("w", "i16", (2,), data=np.array([1, 70000])))
    with pytest.raises(LirError, match="does not fit i16"):
        print_program(p)
    p = Program("m")
    p.add(Buffer("w", "i16", (2, 2), data=np.zeros(4, dtype=np.int16)))
    with pytest.raises(LirError, match="does not match the declared shape"):
        print_program(p)
    p = Program("m")
    p.add(Buffer("x", "f32", (2,)))
    with pytest.raises(LirError, match="unknown dtype"):
        print_program(p)


def test_printer_converts_integer_types() -> None:
    p = Program("m")
    p.add(Buffer("w", "i16", (3,), q=np.int64(4), data=np.array([1, -2, 3], dtype=np.int64)))
    p.steps.append(Step("act", "s", ["w"], [], {"k": np.int32(7), "l": (1, 2)}))
    back = parse_program(print_program(p))
    assert programs_equal(p, back) is False  # data dtype int64 != int16
    assert back.buffers["w"].data is not None and back.buffers["w"].data.dtype == np.int16
    assert back.buffers["w"].q == 4 and back.steps[0].attrs == {"k": 7, "l": [1, 2]}


def test_programs_equal_sees_every_difference() -> None:
    base = parse_program(LENET)
    assert programs_equal(base, parse_program(LENET))
    changes = [
        lambda p: setattr(p, "name", "other"),
        lambda p: p.meta.update(x="y"),
        lambda p: setattr(p.inputs[0], "buffer", "t1"),
        lambda p: setattr(p.buffers["x"], "q", [12]),
        lambda p: setattr(p.buffers["x"], "offset", None),
        lambda p: setattr(p.buffers["w1"], "data", p.buffers["w1"].data.astype(np.int32)),
        lambda p: p.buffers["b1"].data.__setitem__(0, 5),
        lambda p: p.steps[0].attrs.__setitem__("group", 2),
        lambda p: setattr(p.steps[0], "tile", TilePlan([6, 4, 24], 1)),
        lambda p: p.steps[0].origin.pop(),
        lambda p: setattr(p, "buffers", dict(reversed(p.buffers.items()))),
    ]
    for change in changes:
        other = parse_program(LENET)
        change(other)
        assert not programs_equal(base, other)
        assert program_diff(base, other)


def test_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "m.lir"
    save_lir(parse_program(LENET), path)
    assert path.read_text(encoding="utf-8") == LENET
    p = load_lir(path)
    assert print_program(p) == LENET
    source = source_map_of(p)
    assert source is not None and source.file == str(path)
    assert source.buffer_pos(p, "w1") == (8, 1)
    assert source.step_pos(p.steps[0]) == (10, 1)
    assert source.port_pos(p.outputs[0]) == (4, 1)
    bad = tmp_path / "bad.lir"
    bad.write_text('lir 1 "m"\nbuffer %x : i16[1\n', encoding="utf-8")
    with pytest.raises(LirError) as info:
        load_lir(bad)
    assert str(info.value.location) == f"{bad}:2:18"
    with pytest.raises(LirError, match="cannot read"):
        load_lir(tmp_path / "missing.lir")


def test_source_map_tracks_objects_not_names() -> None:
    p, source = parse_program_with_positions(LENET, "x.lir")
    assert source_map_of(p) is source
    assert source.step_pos(p.steps[0]) == (10, 1)
    p.steps[0] = Step("act", "new", ["x"], ["t1"], {"act": "none"})
    p.buffers["x"] = Buffer("x", "i16", (1, 28, 28))
    assert source.step_pos(p.steps[0]) is None
    assert source.buffer_pos(p, "x") is None
    assert source.buffer_pos(p, "t1") == (6, 1)
    assert source_map_of(Program("fresh")) is None
    key = id(p)
    assert key in lirtext._SOURCE_MAPS
    del p  # the registry forgets programs that die
    gc.collect()
    assert key not in lirtext._SOURCE_MAPS

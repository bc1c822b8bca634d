"""The `embed` op in the LIR: text form round trip, verifier rules (one failing example each) and the
interpreter's rows (ids outside the table give zeros)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from transpiler.lir.interp import run_program
from transpiler.lir.text import parse_program, print_program
from transpiler.lir.verify import check_program

TABLE = np.random.default_rng(3).integers(-3000, 3000, (5, 4)).astype("<i2")
TEXT = f'''lir 1 "tok"
input "ids" %ids
output "y" %y
buffer %ids : u16[6] sram @0
const %w : i16[5,4] q=13 fram @0 = b64"{base64.b64encode(TABLE.tobytes()).decode()}"
buffer %e : i16[6,4] q=13 sram @12
buffer %y : i16[6,1,4] q=13 alias %e
step embed "emb" (%ids, %w) -> (%e) {{}} from ["/emb/Gather"] tile [2] x1
'''


def test_text_round_trip_and_interpreter_rows() -> None:
    program = parse_program(TEXT)
    assert check_program(program) == []
    assert print_program(program) == TEXT
    ids = np.array([4, 0, 5, 65535, 2, 4], dtype=np.uint16)
    y = run_program(program, {"ids": ids})["y"].reshape(6, 4)
    want = np.stack([TABLE[i] if i < 5 else np.zeros(4, np.int16) for i in ids])
    assert np.array_equal(y, want)


@pytest.mark.parametrize("old, new, fragment", [
    ("buffer %ids : u16[6]", "buffer %ids : i16[6]", "input ids %ids has dtype i16, needs u16"),
    ("buffer %e : i16[6,4] q=13", "buffer %e : i16[6,4] q=12", "has q=12, must equal the table %w's per-tensor q=13"),
    ("const %w : i16[5,4] q=13", "const %w : i16[5,4] q=[13,13,13,13,13]",
     "must equal the table %w's per-tensor q=[13, 13, 13, 13, 13]"),
    ("buffer %e : i16[6,4] q=13 sram @12\nbuffer %y : i16[6,1,4]", "buffer %e : i16[6,5] q=13 sram @12\nbuffer %y : i16[6,1,5]",
     "expected [6, 4] or [6, 1, 4]"),
])
def test_verifier_rejects(old: str, new: str, fragment: str) -> None:
    assert old in TEXT
    problems = [p.message for p in check_program(parse_program(TEXT.replace(old, new)))]
    assert any(fragment in p for p in problems), problems


def test_the_table_must_be_a_constant() -> None:
    text = TEXT.replace(f'const %w : i16[5,4] q=13 fram @0 = b64"{base64.b64encode(TABLE.tobytes()).decode()}"',
                        "buffer %w : i16[5,4] q=13 sram @64")
    problems = [p.message for p in check_program(parse_program(text))]
    assert any("input w %w must be a constant" in p for p in problems), problems

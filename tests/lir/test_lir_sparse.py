"""fc_sparse / conv_sparse in the LIR: text round trip, verifier checks (one failing example each),
the interpreter (== the dense program with the same weights), the cost model."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from transpiler.errors import LirError
from transpiler.lir import kernels as K
from transpiler.lir.compare import programs_equal
from transpiler.lir.cost import COSTS, _ConvGeometry, sparse_conv_call, step_cycles, step_work, tile_unit_count
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Buffer, Port, Program, Step, TilePlan
from transpiler.lir.text import parse_program, print_program
from transpiler.lir.verify import check_program, verify_program


def _pruned(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    w = rng.integers(-2000, 2000, shape).astype(np.int16)
    return np.where(rng.random(shape) < density, w, 0).astype(np.int16)


def dense_and_sparse(seed: int = 3) -> tuple[Program, Program]:
    """x[2,7,7] -> conv 3x3 pad 1 (4 ch) -> flatten -> fc 196 -> 5, dense and sparse."""
    rng = np.random.default_rng(seed)
    wc = _pruned(rng, (4, 2, 3, 3), 0.3)
    wc[1] = 0                                    # an output channel with no weight
    wf = _pruned(rng, (5, 196), 0.1)
    bc = rng.integers(-5000, 5000, 4).astype(np.int32)
    bf = rng.integers(-5000, 5000, 5).astype(np.int32)
    conv_attrs = {"act": "relu", "dilation": [1, 1], "group": 1, "pads": [1, 1, 1, 1],
                  "shift": [10, 11, 10, 9], "stride": [1, 1]}
    fc_attrs = {"act": "none", "shift": [12, 12, 13, 12, 12]}
    programs = []
    for sparse in (False, True):
        p = Program("net")
        p.add(Buffer("x", "i16", (2, 7, 7), q=12))
        p.add(Buffer("c", "i16", (4, 7, 7), q=9))
        p.add(Buffer("flat", "i16", (196,), q=9, alias="c"))
        p.add(Buffer("y", "i16", (5,), q=7))
        p.add(Buffer("bc", "i32", (4,), data=bc))
        p.add(Buffer("bf", "i32", (5,), data=bf))
        if sparse:
            v, o, cp = K.conv_sparse_from_dense(wc, (7, 7))
            p.add(Buffer("wc_values", "i16", v.shape, q=[14, 13, 14, 14], data=v))
            p.add(Buffer("wc_offsets", "u16", o.shape, data=o))
            p.add(Buffer("wc_chanptr", "u16", cp.shape, data=cp))
            v, c, rp = K.csr_from_dense(wf)
            p.add(Buffer("wf_values", "i16", v.shape, q=[13] * 5, data=v))
            p.add(Buffer("wf_deltas", "u16", c.shape, data=c))
            p.add(Buffer("wf_rowptr", "u16", rp.shape, data=rp))
            p.steps.append(Step("conv_sparse", "conv1", ["x", "wc_values", "wc_offsets", "wc_chanptr", "bc"],
                                ["c"], {**conv_attrs, "kernel": [3, 3]}, ["/conv1/Conv"], TilePlan([2, 7, 7], 1)))
            p.steps.append(Step("fc_sparse", "fc1", ["flat", "wf_values", "wf_deltas", "wf_rowptr", "bf"], ["y"],
                                dict(fc_attrs), ["/fc1/Gemm"]))
        else:
            p.add(Buffer("wc", "i16", wc.shape, q=[14, 13, 14, 14], data=wc))
            p.add(Buffer("wf", "i16", wf.shape, q=[13] * 5, data=wf))
            p.steps.append(Step("conv", "conv1", ["x", "wc", "bc"], ["c"], dict(conv_attrs), ["/conv1/Conv"],
                                TilePlan([2, 7, 7], 1)))
            p.steps.append(Step("fc", "fc1", ["flat", "wf", "bf"], ["y"], dict(fc_attrs), ["/fc1/Gemm"]))
        p.inputs.append(Port("in", "x"))
        p.outputs.append(Port("out", "y"))
        programs.append(p)
    return programs[0], programs[1]


def test_sparse_program_verifies_and_round_trips() -> None:
    _, sparse = dense_and_sparse()
    verify_program(sparse)
    text = print_program(sparse)
    assert "step conv_sparse" in text and "step fc_sparse" in text and "kernel=[3,3]" in text
    back = parse_program(text)
    assert programs_equal(back, sparse)
    assert print_program(back) == text


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_interpreter_sparse_equals_dense(seed: int) -> None:
    dense, sparse = dense_and_sparse(seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        x = rng.integers(-32768, 32768, (2, 7, 7)).astype(np.int16)
        a = run_program(dense, {"in": x}, trace=True)
        b = run_program(sparse, {"in": x}, trace=True)
        assert np.array_equal(a["out"], b["out"]) and np.array_equal(a["%c"], b["%c"])


def _problems(p: Program) -> list[str]:
    return [str(pr) for pr in check_program(p)]


def _mutate(what: str) -> Program:
    _, p = dense_and_sparse()
    p = copy.deepcopy(p)
    b = p.buffers
    if what == "rowptr-decreasing":
        rp = b["wf_rowptr"].data.copy()
        rp[2], rp[3] = rp[3], rp[2]
        b["wf_rowptr"].data = rp
    elif what == "col-out-of-range":
        c = b["wf_deltas"].data.copy()
        c[-1] += 2 * 196    # the row's last column moves 196 to the right
        b["wf_deltas"].data = c
    elif what == "cols-not-increasing":
        rp = b["wf_rowptr"].data
        j = int(np.flatnonzero(np.diff(rp.astype(int)) >= 2)[0])
        c = b["wf_deltas"].data.copy()
        c[rp[j] + 1] = 0    # the row's second entry on its first column
        b["wf_deltas"].data = c
    elif what == "odd-step":
        c = b["wf_deltas"].data.copy()
        c[0] += 1
        b["wf_deltas"].data = c
    elif what == "offset-out-of-range":
        o = b["wc_offsets"].data.copy()
        o[-1] = 98          # 2 input channels of 7 x 7
        b["wc_offsets"].data = o
    elif what == "offset-not-a-tap":
        o = b["wc_offsets"].data.copy()
        o[-1] = 97          # channel 1, row 6, column 6: no tap of a 3x3 kernel
        b["wc_offsets"].data = o
    elif what == "q-per-nnz":
        b["wf_values"].q = [13] * b["wf_values"].size
    elif what == "index-dtype":
        b["wf_deltas"] = Buffer("wf_deltas", "i16", b["wf_deltas"].shape, data=b["wf_deltas"].data.astype(np.int16))
    elif what == "chanptr-length":
        cp = b["wc_chanptr"].data
        b["wc_chanptr"] = Buffer("wc_chanptr", "u16", (cp.size - 1,), data=cp[:-1].copy())
    elif what == "missing-kernel":
        del p.steps[0].attrs["kernel"]
    elif what == "values-not-const":
        v = b["wf_values"]
        b["wf_values"] = Buffer("wf_values", "i16", v.shape, q=v.q)
    elif what == "index-count":
        c = b["wf_deltas"].data
        b["wf_deltas"] = Buffer("wf_deltas", "u16", (c.size - 1,), data=c[:-1].copy())
    return p


@pytest.mark.parametrize("what, message", [
    ("rowptr-decreasing", "pointer decreases at row 2"),
    ("col-out-of-range", "is outside [0, 196)"),
    ("cols-not-increasing", "are not strictly increasing"),
    ("odd-step", "is odd"),
    ("offset-out-of-range", "offset index 98 at entry"),
    ("offset-not-a-tap", "offset 97 at entry"),
    ("q-per-nnz", "sparse values %wf_values has"),
    ("index-dtype", "input deltas %wf_deltas has dtype i16, needs u16"),
    ("chanptr-length", "pointer shape [4] must be [5]"),
    ("missing-kernel", "missing attribute 'kernel'"),
    ("values-not-const", "input values %wf_values must be a constant"),
    ("index-count", "values but"),
])
def test_verifier_rejects(what: str, message: str) -> None:
    problems = _problems(_mutate(what))
    assert any(message in pr for pr in problems), problems
    with pytest.raises(LirError):
        verify_program(_mutate(what))


def test_cost_model_counts_stored_weights() -> None:
    dense, sparse = dense_and_sparse()
    for i in range(2):
        d, s = step_work(dense, dense.steps[i]), step_work(sparse, sparse.steps[i])
        assert d.units == s.units
        assert tile_unit_count(dense, dense.steps[i]) == tile_unit_count(sparse, sparse.steps[i])
    nnz_rows = np.diff(sparse.buffers["wf_rowptr"].data.astype(int))
    assert step_work(sparse, sparse.steps[1]).macs_per_unit == nnz_rows.max()
    # a tenth of the weights: the sparse fc is predicted several times faster than the dense one
    assert step_cycles(sparse, sparse.steps[1]) < step_cycles(dense, dense.steps[1]) / 3
    # more stored weights cost more
    denser = copy.deepcopy(sparse)
    w = K.csr_to_dense(denser.buffers["wf_values"].data, denser.buffers["wf_deltas"].data,
                       denser.buffers["wf_rowptr"].data, 196)
    w[:, :50] = 7
    v, c, rp = K.csr_from_dense(w)
    denser.buffers["wf_values"] = Buffer("wf_values", "i16", v.shape, q=[13] * 5, data=v)
    denser.buffers["wf_deltas"] = Buffer("wf_deltas", "u16", c.shape, data=c)
    denser.buffers["wf_rowptr"] = Buffer("wf_rowptr", "u16", rp.shape, data=rp)
    assert step_cycles(denser, denser.steps[1]) > step_cycles(sparse, sparse.steps[1])


def test_sparse_conv_call_counts_classes_blocks_and_the_chunked_path() -> None:
    """A 3x3 pad 1 conv over 8x8: 2 border rows + interior, 2 border columns + interior; one row
    of the interior has one row class; a channel of more than SPARSE_RUN_TAPS taps takes groups
    of them (fx_sparse_long: 8 rows of 8 outputs are one band of SPARSE_ACC = 64) when its rows are
    at most SPARSE_ACC wide, else the chunked path."""
    g = _ConvGeometry(cg=4, ih=8, iw=8, oh=8, ow=8, kh=3, kw=3, sh=1, sw=1, dh=1, dw=1, pt=1, pl=1)
    whole = sparse_conv_call(g, [5, 40], range(8))
    # the fast channel, then the long one's band: its classes again, 2 groups per block and output
    assert (whole.classes, whole.channels, whole.taps, whole.blocks, whole.block_taps) == (12, 2, 45, 27, 405)
    assert (whole.outputs, whole.macs, whole.group_outputs, whole.chunk_taps) == (128, 45 * 64, 2 * 64, 0)
    wide = replace(g, iw=70, ow=70)     # rows wider than SPARSE_ACC: chunked
    chunked = sparse_conv_call(wide, [5, 40], range(8))
    assert (chunked.chunk_taps, chunked.chunk_macs, chunked.group_outputs) == (40, 40 * 560, 0)
    assert chunked.chunk_border_macs == 40 * (2 * 70 + 6 * 2)
    bands = sparse_conv_call(replace(g, iw=20, ow=20), [40], range(8))  # bands of 3, 3 and 2 rows
    assert (bands.channels, bands.taps, bands.group_outputs) == (3, 120, 2 * 160)
    row = sparse_conv_call(g, [5], range(3, 4))
    assert (row.classes, row.blocks, row.block_taps, row.outputs) == (4, 3, 15, 8)
    inside = sparse_conv_call(replace(g, pt=0, pl=0, oh=6, ow=6), [5], range(6))
    assert (inside.classes, inside.blocks, inside.block_taps) == (0, 1, 0)
    # a call's set-up is paid once; splitting a step into one-row calls costs more than one call
    c = COSTS["conv_sparse"]
    rows = sum(sparse_conv_call(g, [5], range(oy, oy + 1)).cycles(c) for oy in range(8))
    assert rows > sparse_conv_call(g, [5], range(8)).cycles(c) + 7 * c.call

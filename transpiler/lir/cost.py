"""Work units and the cycle cost model of LIR steps on the MSP430 (MPY32, no FRAM wait states).

A *work unit* is the smallest piece of a step the generated runtime schedules; the table matches
backends/c/printers.py (tests check they agree):

    conv      one output row of one output channel     Cout * OH units
              (or, when the tile pass splits rows, cw columns of it: Cout * OH * ceil(OW / cw))
    fc        one output                                N
    conv_sparse  as conv                                Cout * OH units
    fc_sparse    as fc                                  N
    maxpool   one output channel                        C
    avgpool   one output channel                        C
    add, mul, act, lut, concat, transpose, slice, upsample   a chunk of ELTWISE_CHUNK elements   ceil(n / 32)
    trees     one tree (one walk)                       T
    tree_sum  one output                                C
    embed     one output row (one token)               T
                       (lut: "MACs" are the elements a gate multiplies, ``mac`` cycles each)
    argmax    the whole step                            1
    gnet_feature  a chunk of ELTWISE_CHUNK elements of its slice   ceil(n / 32)
    gnet_exit     one output (on demand: the head)      N

The cost of a unit is ``base + mac * MACs + store * outputs`` cycles (pools: ``+ row`` per output
row of the channel; conv: ``+ (channel + column * border columns) / OH``, a channel's own work
shared by its rows) with per-op constants
(:data:`COSTS`) fitted to the simulator's counts of the kernels by ``bench/calibrate_cost.py``
(which prints the fit; re-run it when the kernels change). A commit and a boot have fixed costs.

Sparse steps: ``MACs`` are the stored weights of the unit (the sparse kernels skip the zeros);
conv_sparse counts what one call of runtime_c/fx_sparse.c does (:func:`sparse_conv_call`: its
set-up and border classes, per channel its table and blocks, the chunked path of channels with
many taps), a unit as a one-row call of the channel with the most taps; a sparse step whose input plan-memory put in HIFRAM
costs :data:`SPARSE_FAR` (the kernels' portable fallbacks). Where a buffer lives costs nothing else:
the MSP430X's cycles do not depend on the address, and the large memory model's code (20-bit
pointers, 5-15 % slower than the small model's; one set of constants for both) addresses every
pointer alike (bench/hifram.py). :func:`step_work` is per unit and must not
underestimate any unit (the tile pass sizes power cycles with it), so for sparse steps it counts
the unit with the most stored weights; :func:`step_cycles` predicts a whole step, with every unit's
own weights. The sparse constants come from bench/sparse_speed.py (per stored weight and per output,
relative to the dense kernels measured the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from transpiler.lir.ir import Program, Step
from transpiler.lir.kernels import TREE_LEAF

ELTWISE_CHUNK = 32


@dataclass(frozen=True)
class OpCost:
    """Cycles of one work unit: base + mac * multiply-accumulates + store * output elements."""

    base: float
    mac: float
    store: float
    index: float = 0.0
    """conv_sparse: cycles per stored weight to decode a channel's taps (once per kernel call)."""
    slow_mac: float = 0.0
    """conv: cycles per MAC of a window on the general path (image borders, dilation > 1); 0 = mac."""
    border: float = 0.0
    """conv: cycles per output on the general path (instead of ``store``); 0 = store."""
    slow_row: float = 0.0
    """conv: cycles per kernel row of an input channel of a window on the general path (its row
    loop: the edge runner's and fx_conv_dilated's pointer steps, a row of a few taps)."""
    call: float = 0.0
    """cycles of one kernel call (one tile): the run loop's dispatch, the step function, the kernel's
    set-up before its first unit (fx_conv: a few hundred, its geometry is in the descriptor)."""
    call_border: float = 0.0
    """conv: cycles per border column (:func:`conv_border_columns`) of a call that starts inside an
    output channel: fx_conv runs down each border column once per channel it touches, so splitting
    a channel between two calls starts those runs again (:func:`call_cycles`)."""
    row: float = 0.0
    """maxpool / avgpool: cycles per output row of a channel (fx_pool.c: the row's valid kernel rows,
    its bounds and the call of the row's interior run; a few hundred, against ~30 per 2x2 output)."""
    segment: float = 0.0
    """conv: cycles of one fx_conv_cols call beyond ``base`` (a unit of a row split into column
    ranges: the channel's bias and requantiser, the row's valid kernel rows, the runner's set-up);
    its border windows cost ``window`` each instead of ``border``."""
    window: float = 0.0
    """conv: cycles per border output of a column range (fx_conv_window: one window at a time)."""
    channel: float = 0.0
    """conv: cycles per output channel (fx_conv_units: bias, requantiser, the interior's set-up;
    what a depthwise conv, one input channel and few MACs per output, pays most)."""
    column: float = 0.0
    """conv: cycles per border column (:func:`conv_border_columns`) of each output channel: fx_conv
    runs down every border column once per channel (its taps, the edge runner's set-up)."""
    block: float = 0.0
    """conv_sparse: cycles per block (row class x column class) of a channel in a call with borders."""
    block_tap: float = 0.0
    """conv_sparse: cycles per stored tap and block of a channel in a call with borders (its table)."""
    chunk_index: float = 0.0
    """conv_sparse: cycles per stored tap and call of a channel on the chunked path (its decoding)."""
    chunk_border: float = 0.0
    """conv_sparse: cycles per stored tap of a border output on the chunked path (range checks)."""
    call_stride: float = 0.0
    """conv_sparse: cycles of a call with a stride > 1 (the set-up's multiplications)."""
    group_output: float = 0.0
    """conv_sparse: cycles per output and group of FX_SPARSE_RUN_TAPS taps of a channel with more
    taps (fx_sparse_long: the output's partial sum added and stored back, its image set up)."""


# Fitted with bench/calibrate_cost.py on the patched msp430-elf-run (-O2, MPY32).
COSTS: dict[str, OpCost] = {
    "conv": OpCost(base=268.19, mac=7.98, slow_mac=13.44, store=73.0, border=203.78, slow_row=10.43, channel=555.03, column=295.7, call=546, call_border=600.4),
    "fc": OpCost(base=188.27, mac=8.11, store=0.0, call=281),
    "maxpool": OpCost(base=311.86, mac=10.1, slow_mac=70.22, store=8.89, border=0.0, row=223.92, call=1409),
    "avgpool": OpCost(base=605.31, mac=14.01, slow_mac=327.03, store=78.17, border=0.0, row=0.0, call=1116),
    "add": OpCost(base=0.0, mac=0.0, store=182.11, call=316),
    "mul": OpCost(base=0.0, mac=0.0, store=59.6, call=318),
    # per row (base: the sum, the shift of the deviations, the 32-bit isqrt and one division), per
    # element of the deviations' maximum and squares (mac) and per output (store: the deviation
    # again, the normalising product and requantisation, the affine step); set by hand from two
    # simulator runs (a row of 16: 12,200 cycles, of 32: 22,200), rounded up
    "layernorm": OpCost(base=2500.0, mac=250.0, store=400.0, call=300),
    # matmul: per output row, per product (mac) and output (store); softmax: per row (base: the
    # 64-bit division for the reciprocal), per element (mac: the max and the exp for the sum)
    # and output (store: the exp again, the product and its variable rounding shift); set by hand
    # from a simulator run of a one-head transformer (T = 8, d = 16: Q K^T 2,260 cycles per row,
    # P V 3,060, softmax 11,450 per row of 8), rounded up
    "matmul": OpCost(base=200.0, mac=12.0, store=120.0, call=300),
    "softmax": OpCost(base=6000.0, mac=300.0, store=450.0, call=300),
    "act": OpCost(base=0.0, mac=0.0, store=36.97, call=208),
    "lut": OpCost(base=355.71, mac=51.42, store=105.97, call=473),
    "concat": OpCost(base=287.76, mac=83.9, store=0.0, call=302),
    "argmax": OpCost(base=0.0, mac=22.0, store=0.0, call=0),
    # Measured with bench/sparse_speed.py (its fit of cycles per output over densities <= 0.1):
    # fc_sparse 10.0-10.6 cycles per stored weight (dense fx_fc: 8.6 per weight) and ~57-66 per
    # output (rows of at most 64 stored weights jump into one chain, longer ones loop by eights);
    # conv_sparse: per call (sparse_conv_call) a set-up (call), per row / column class of a call
    # with borders (call_border), a stride > 1 (call_stride); per channel and call a set-up
    # (channel) and per stored tap its table (index; chunked path: chunk_index), per block (row
    # class x column class) and per tap and block; per output (store) and per tap and output (mac;
    # chunked: slow_mac, and chunk_border per tap of a border output). Fitted (relative least
    # squares) on 19 layers x {one call over the step, one call per output row of a channel}
    # (5x5 no pad, 3x3 pad 1, 5x5 pad 2, 1x5, depthwise 3x3, stride 2, 16-channel 5x5 on the
    # chunked path; densities 0.02-1.0; small model, ReLU, shift 14): 0.91-1.10x the simulator's
    # cycles; every constant then raised by 8 % (over-estimates are safe for the tile pass; the
    # large model is 5-15 % slower): 0.98-1.19x. A channel of more than 32 taps on fx_sparse_long
    # pays the same per band (its classes, set-up, decoding, blocks and tables) and group_output
    # per output and group of 32 taps: fitted on bench/sparse_speed.py's layers whose channels
    # take it (5x5 no pad at 0.2 and 1.0, 3x3 pad 1 16x16 at 1.0, 3x3 pad 1 64 -> 32 ch 8x8 at
    # 0.05-1.0): 26 cycles, raised to 48 so that none is under-predicted by more than 2 %:
    # 0.98-1.11x the simulator's cycles.
    "fc_sparse": OpCost(base=36.0, mac=10.2, store=27.0),
    "conv_sparse": OpCost(base=0.0, mac=10.5, store=29.8, index=27.2, call=671, call_border=518,
                          call_stride=1369, channel=671, block=163, block_tap=23.3, chunk_index=70.0,
                          slow_mac=22.1, chunk_border=19.8, group_output=48.0),
}
# Sparse steps whose input lies in HIFRAM (above 64 KiB; plan-memory puts activations there only
# when lower FRAM cannot hold them, inputs of sparse steps last) run runtime_c/fx_sparse.c's portable
# fallbacks: its fast paths walk the input with 16-bit adds (FX_SPARSE_NEAR). Fitted with
# bench/hifram.py (part 4: pruned samples with every activation in HIFRAM, per step; conv_sparse
# within -11..+13 %, fc_sparse within -4..+6 %): conv_sparse per output row of a channel (base),
# per output (store) and per stored tap of an output (mac), 1.0-6.2x the fast path's cycles;
# fc_sparse per output and per stored weight, 1.4-1.8x; each further kernel call (call: the
# chunked conv decodes its taps again, per channel and segment) from the same steps split in calls.
SPARSE_FAR: dict[str, OpCost] = {
    "conv_sparse": OpCost(base=870.8, mac=19.8, store=258.3, call=1549),
    "fc_sparse": OpCost(base=0.0, mac=14.0, store=169.8, call=160),
}
# gNet, fitted with bench/calibrate_cost.py (its part 5: gNet packages of the samples on the simulator):
# gnet_feature (fx_requant_copy of a slice into F, per chunk / requantised element / element) and an
# early answer = the head (gnet_exit: fx_fc over F, the fc constants) + argmax + GNET_ANSWER_CYCLES
# (the policy's last question, the scores into the outputs, the return).
COSTS["gnet_feature"] = OpCost(base=256.8, mac=72.58, store=3.18, call=302)
COSTS["gnet_exit"] = COSTS["fc"]
GNET_ANSWER_CYCLES = 234
# conv split into column ranges (fx_conv_cols, one call per range; passes/tile.py splits a row that
# does not fit the budget): not fitted by calibrate_cost (its layers fit whole rows). Set a little
# above the simulator's counts (see docs/intermittent.md, "Column units").
COSTS["conv"] = replace(COSTS["conv"], segment=860.0, window=560.0)
# transpose: the generated loop of backends/c/printers.py (no runtime kernel), not fitted by
# calibrate_cost: per chunk the output's multi-index (two divisions by constants), per element a
# load, a store and the index steps. Set a little above the simulator's counts (`freeml-tx report`
# of a [1,8,8,3] -> [1,3,8,8] permute: 3,919 cycles, predicted 4,108; [1,16,3] -> [1,3,16]: 989,
# predicted 1,132) so that tiles sized with it fit their power cycle.
COSTS["transpose"] = OpCost(base=60.0, mac=0.0, store=19.0, call=100)
# embed: runtime_c/fx_seq.c's fx_embed, per row (unit) the id's bounds test and the row address, per
# element a load and a store; not fitted by calibrate_cost. Set a little above the simulator's counts
# (`freeml-tx report`, MSP430_COUNTERS): 16 rows of 8 1,974 cycles (predicted 2,308), 32 rows of 24
# 7,878 (predicted 8,868): about 62 cycles per row and 7.7 per element.
COSTS["embed"] = OpCost(base=70.0, mac=0.0, store=8.5, call=100)
# slice: a generated copy loop like transpose's, without its index stepping; transpose's constants
# bound it from above.
COSTS["slice"] = COSTS["transpose"]
# upsample: the generated loop of backends/c/printers.py (no runtime kernel), not fitted by
# calibrate_cost: per chunk the output's index and phases (four divisions by constants), per element
# a load, a store and the counter steps; "MACs": the elements whose phases a zero insertion tests.
# Set a little above the simulator's counts (`freeml-tx report`, MSP430_COUNTERS): nearest x2 of
# [4,8,8] 21,626 cycles (671 per chunk of 32, predicted 682), of [1,8,8] 5,528; zero insertion x2
# of [4,8,8] -> [4,15,15] 22,997 (806 per chunk, predicted 810), of [1,8,8] 6,071.
COSTS["upsample"] = OpCost(base=90.0, mac=4.0, store=18.5, call=170)
# trees / tree_sum: runtime_c/fx_tree.c, not fitted by calibrate_cost. trees: per tree (unit) a
# set-up and the store, per level walked ("MACs": the deepest tree's depth, so no unit is
# underestimated) a feature load, a compare and a child load; tree_sum: per output (unit) the
# bias, requantisation and store, per tree ("MACs") the range test and the value's load and add.
# Set a little above the simulator's counts (`freeml-tx report`, MSP430_COUNTERS; skl2onnx models
# of tests/backend/test_trees_e2e.py): walks of 10 trees of depth 5 1,529 cycles (153 per tree,
# predicted 176), 30 of depth 3 2,956 (99, predicted 120); sums over 10 trees 1,241 cycles for 3
# outputs (414 per output, predicted 500), over 30 trees 1,913 for 3 (638, predicted 740), a
# one-output sum over 10 trees 490 (predicted 500).
COSTS["trees"] = OpCost(base=30.0, mac=28.0, store=6.0, call=120)
COSTS["tree_sum"] = OpCost(base=320.0, mac=12.0, store=60.0, call=120)
COMMIT_CYCLES = 252      # fx_progress_commit: find the older record, checksum, five FRAM stores
BOOT_CYCLES = 747        # reset to the first unit: crt0, .data/.bss setup, progress load, dispatch
# The intermittent run loop (backends/c/intermittent.py, transpiler/intermittent.py):
COPY_CYCLES_PER_ELEMENT = 10.1   # input copy into FRAM / output copy out, per int16 element
RUN_CYCLES = 0         # one fx_<m>_run call: progress load and the dispatch to the saved step
STEP_CYCLES = 48         # entering a step in the loop (table entry, group size)


@dataclass(frozen=True)
class StepWork:
    """How a step divides into units and what one unit costs."""

    units: int
    macs_per_unit: int
    stores_per_unit: int
    cycles_per_unit: float


def _prod(xs: tuple[int, ...] | list[int]) -> int:
    n = 1
    for x in xs:
        n *= x
    return n


def tree_depth(program: Program, step: Step) -> int:
    """The most branches one walk of a `trees` step passes (its deepest tree)."""
    children = program.buffers[step.inputs[3]].data
    roots = program.buffers[step.inputs[4]].data
    if children is None or roots is None:
        return 0
    kids = np.asarray(children, dtype=np.int64).reshape(-1, 2)
    depth = np.zeros(kids.shape[0], dtype=np.int64)   # children come after their branch: fill backwards
    for n in range(kids.shape[0] - 1, -1, -1):
        depth[n] = 1 + max(0 if k & TREE_LEAF else int(depth[k]) for k in kids[n])
    return max((0 if r & TREE_LEAF else int(depth[r]) for r in np.asarray(roots, dtype=np.int64).reshape(-1)),
               default=0)


def conv_unit_cols(program: Program, step: Step) -> int:
    """Output columns of a dense conv's work unit: the TilePlan's ``cols`` when they split the output
    row (passes/tile.py does so when one row does not fit the budget), else the whole row (OW)."""
    ow = program.buffers[step.outputs[0]].shape[-1]
    tile = step.tile
    if step.op == "conv" and tile is not None and len(tile.dims) == 3 and 1 <= tile.dims[2] < ow:
        return int(tile.dims[2])
    return int(ow)


def col_split(program: Program, step: Step) -> bool:
    """Whether the step is a dense conv whose work units are column ranges of a row."""
    return step.op == "conv" and conv_unit_cols(program, step) < program.buffers[step.outputs[0]].shape[-1]


def conv_segments(program: Program, step: Step, cols: int) -> list[list[ConvRow]]:
    """Per output row, the work of each range of ``cols`` output columns (the last one may be
    narrower) of one channel of a dense conv, as fx_conv_cols computes it: its interior columns
    as one run (fast), its border columns one window at a time (slow)."""
    g = _conv_geometry(program, step)
    interior = [g.interior_column(ox) for ox in range(g.ow)]
    taps = [_valid_taps(ox * g.sw - g.pl, g.kw, g.dw, g.iw) for ox in range(g.ow)]
    out: list[list[ConvRow]] = []
    for oy in range(g.oh):
        nky = _valid_taps(oy * g.sh - g.pt, g.kh, g.dh, g.ih)
        row = []
        for ox0 in range(0, g.ow, cols):
            span = range(ox0, min(ox0 + cols, g.ow))
            fast = sum(1 for ox in span if interior[ox])
            slow = [taps[ox] for ox in span if not interior[ox]]
            row.append(ConvRow(fast * g.cg * nky * g.kw, g.cg * nky * sum(slow), fast, len(slow),
                               g.cg * nky * sum(1 for n in slow if n)))
        out.append(row)
    return out


def _segment_cycles(c: OpCost, r: ConvRow) -> float:
    """Cycles of one fx_conv_cols call over a column range, its kernel call (``call``) excluded."""
    return (c.base + c.segment + c.mac * r.fast_macs + (c.slow_mac or c.mac) * r.slow_macs
            + c.store * r.fast_outputs + (c.window or c.border or c.store) * r.slow_outputs
            + c.slow_row * r.slow_rows)


def step_work(program: Program, step: Step, cols: int | None = None) -> StepWork:
    """Units, per-unit work and predicted cycles of one step. ``cols`` (dense conv): the output
    columns of a unit, instead of what the step's TilePlan says (:func:`conv_unit_cols`)."""
    bufs = program.buffers
    out = bufs[step.outputs[0]]
    op = step.op
    if op == "conv":
        cout, oh, ow = out.shape[-3:]
        w = bufs[step.inputs[1]]
        cw = conv_unit_cols(program, step) if cols is None else min(cols, ow)
        if cw < ow:                     # a row split into column ranges: one call per range
            segs = conv_segments(program, step, cw)
            worst = max(_segment_cycles(COSTS["conv"], r) for row in segs for r in row)
            return StepWork(cout * oh * -(-ow // cw), cw * _prod(w.shape[1:]), cw, worst)
        rows = conv_rows(program, step)
        worst = max(_conv_row_cycles(COSTS["conv"], r) for r in rows) if rows else COSTS["conv"].base
        # a channel's own work (set-up, runs down its border columns) shared by its rows; a call that
        # starts inside a channel starts the column runs again (call_cycles)
        return StepWork(cout * oh, ow * _prod(w.shape[1:]), ow, worst + _conv_channel_cycles(program, step) / oh)
    elif op == "fc":
        units, macs, stores = out.size, bufs[step.inputs[0]].size, 1
    elif op in ("maxpool", "avgpool"):    # "MACs": the window taps inside the input (padding is free)
        c, oh, ow = out.shape[-3:]
        win = pool_windows(program, step)
        cycles = _conv_row_cycles(COSTS[op], win) + COSTS[op].row * oh
        return StepWork(c, win.fast_macs + win.slow_macs, oh * ow, cycles)
    elif op in ("add", "mul", "act", "transpose", "slice"):
        units, macs, stores = -(-out.size // ELTWISE_CHUNK), 0, ELTWISE_CHUNK
    elif op in ("layernorm", "softmax"):    # a unit is a row; "MACs": its squares / exps for the sum
        n = out.shape[-1]
        units, macs, stores = out.size // n, n, n
    elif op == "embed":             # a unit is an output row (one token): a bounds test and D copies
        t, d = bufs[step.inputs[0]].size, bufs[step.inputs[1]].shape[1]
        units, macs, stores = t, 0, d
    elif op == "matmul":            # a unit is an output row
        m, n = out.shape
        units, macs, stores = m, n * bufs[step.inputs[0]].shape[1], n
    elif op == "upsample":          # "MACs": the elements of a chunk whose phases zero insertion tests
        units, stores = -(-out.size // ELTWISE_CHUNK), ELTWISE_CHUNK
        macs = ELTWISE_CHUNK if step.attrs.get("zeros") else 0
    elif op == "lut":               # "MACs": the elements of a chunk that a gate multiplies and requantises
        units, stores = -(-out.size // ELTWISE_CHUNK), ELTWISE_CHUNK
        macs = ELTWISE_CHUNK if step.attrs.get("gate") else 0
    elif op == "concat":            # "MACs": the elements of a chunk that are requantised (shift != 0)
        units, stores = -(-out.size // ELTWISE_CHUNK), ELTWISE_CHUNK
        macs = ELTWISE_CHUNK if _concat_requantised(program, step) else 0
    elif op == "gnet_feature":      # chunks of the slice it writes; "MACs" as for concat
        units, stores = -(-bufs[step.inputs[0]].size // ELTWISE_CHUNK), ELTWISE_CHUNK
        macs = ELTWISE_CHUNK if step.attrs.get("shift", 0) != 0 else 0
    elif op == "gnet_exit":
        units, macs, stores = out.size, bufs[step.inputs[0]].size, 1
    elif op == "argmax":
        units, macs, stores = 1, bufs[step.inputs[0]].size, 1
    elif op == "trees":
        units, macs, stores = out.size, tree_depth(program, step), 1
    elif op == "tree_sum":
        units, macs, stores = out.size, bufs[step.inputs[0]].size, 1
    elif op == "fc_sparse":
        units, macs, stores = out.size, max(per_output_nnz(program, step), default=0), 1
    elif op == "conv_sparse":
        cout, oh, ow = out.shape[-3:]
        units, stores = cout * oh, ow
        most = max(per_output_nnz(program, step), default=0)
        macs = ow * most
        c = op_cost(program, step)
        if _sparse_near(c):     # the worst one-row call of one channel but what a call pays once
            rows = [_sparse_row(program, step, most, oy) for oy in range(oh)]
            return StepWork(units, macs, stores, max(r.cycles(c) - r.call_cycles(c) for r in rows))
    else:
        raise KeyError(f"no cost model for LIR op {op!r} (step {step.name})")
    cost = op_cost(program, step)
    cycles = cost.base + cost.mac * macs + cost.store * stores
    if cost.index and stores:
        cycles += cost.index * (macs // stores)   # a one-row call decodes its channel's taps
    return StepWork(units, macs, stores, cycles)


def sparse_cost(program: Program, step: Step) -> OpCost:
    """The constants of a sparse step: :data:`SPARSE_FAR` when its input lies in HIFRAM (the
    kernels' portable fallbacks), else :data:`COSTS`."""
    x = program.storage_of(step.inputs[0]) if step.inputs else None
    return SPARSE_FAR[step.op] if x is not None and x.space == "hifram" else COSTS[step.op]


def op_cost(program: Program, step: Step) -> OpCost:
    """The constants of ``step``: :func:`sparse_cost` for the sparse ops, else ``COSTS[op]``."""
    return sparse_cost(program, step) if step.op in SPARSE_FAR else COSTS[step.op]


def per_output_nnz(program: Program, step: Step) -> list[int]:
    """Stored weights per output (fc_sparse) or per output channel (conv_sparse): the differences
    of the pointer array (input 3)."""
    ptr = program.buffers[step.inputs[3]].data
    if ptr is None:
        raise KeyError(f"step {step.name}: the pointer %{step.inputs[3]} is not a constant")
    return [int(v) for v in np.diff(np.asarray(ptr, dtype=np.int64).reshape(-1))]


@dataclass(frozen=True)
class ConvRow:
    """The work of one output row of one channel of a dense conv (fx_conv's three runs of columns).

    fast_macs/fast_outputs: the interior windows (all kw taps inside the input, dilation 1 along
    the width; every window of a pointwise conv), run by the specialised runners; slow_macs/
    slow_outputs: the border windows and every window of a width-dilated conv (the general path).
    MACs count the valid taps only (padding taps cost nothing). slow_rows (conv): the kernel rows
    x input channels the general path walks, summed over the border windows with a valid tap.
    """

    fast_macs: int
    slow_macs: int
    fast_outputs: int
    slow_outputs: int
    slow_rows: int = 0


def _valid_taps(i0: int, k: int, d: int, n: int) -> int:
    return sum(1 for t in range(k) if 0 <= i0 + t * d < n)


def pool_windows(program: Program, step: Step) -> ConvRow:
    """The work of one channel of a pooling step: the windows entirely inside the input (the
    kernels' fast path; dilation 1 along the width) and the others (valid tap range first), their
    taps inside the input (padding is free) and their outputs, in a ConvRow's fields."""
    x, y = program.buffers[step.inputs[0]], program.buffers[step.outputs[0]]
    _, ih, iw = x.shape[-3:]
    _, oh, ow = y.shape[-3:]

    def pair(key: str, default: int) -> list[int]:
        v = step.attrs.get(key, [default, default])
        return [int(a) for a in v] if isinstance(v, list) and len(v) >= 2 else [default, default]

    kh, kw = pair("kernel", 1)
    sh, sw = pair("stride", 1)
    dh, dw = pair("dilation", 1)
    pads = step.attrs.get("pads", [0, 0, 0, 0])
    pt, pl = (int(pads[0]), int(pads[1])) if isinstance(pads, list) and len(pads) >= 2 else (0, 0)
    rows = [(oy * sh - pt, _valid_taps(oy * sh - pt, kh, dh, ih)) for oy in range(oh)]
    cols = [(ox * sw - pl, _valid_taps(ox * sw - pl, kw, dw, iw)) for ox in range(ow)]
    row_in = [i0 >= 0 and i0 + (kh - 1) * dh < ih for i0, _ in rows]
    col_in = [dw == 1 and i0 >= 0 and i0 + kw - 1 < iw for i0, _ in cols]
    fast_taps = slow_taps = fast_out = slow_out = 0
    for (_, ny), rin in zip(rows, row_in):
        for (_, nx), cin in zip(cols, col_in):
            if rin and cin:
                fast_taps += ny * nx
                fast_out += 1
            else:
                slow_taps += ny * nx
                slow_out += 1
    return ConvRow(fast_taps, slow_taps, fast_out, slow_out)


@dataclass(frozen=True)
class _ConvGeometry:
    cg: int
    ih: int
    iw: int
    oh: int
    ow: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int

    @property
    def pointwise(self) -> bool:
        """fx_conv's pointwise path: 1x1, stride 1, no padding but on the right, ow == iw, oh <= ih."""
        return (self.kh == 1 and self.kw == 1 and self.sh == 1 and self.sw == 1 and self.pt == 0
                and self.pl == 0 and self.ow == self.iw and self.oh <= self.ih)

    def interior_column(self, ox: int) -> bool:
        i0 = ox * self.sw - self.pl
        return self.pointwise or (self.dw == 1 and i0 >= 0 and i0 + self.kw <= self.iw)


def _conv_geometry(program: Program, step: Step) -> _ConvGeometry:
    bufs = program.buffers
    x, w, y = bufs[step.inputs[0]], bufs[step.inputs[1]], bufs[step.outputs[0]]
    if step.op == "conv_sparse":        # its weights are the stored values: the kernel from attrs
        kh, kw = (int(k) for k in step.attrs["kernel"])
        cg = x.shape[-3] // int(step.attrs.get("group", 1))
    else:
        _, cg, kh, kw = w.shape
    _, ih, iw = x.shape[-3:]
    _, oh, ow = y.shape[-3:]

    def pair(key: str, default: int) -> list[int]:
        v = step.attrs.get(key, [default, default])
        return [int(a) for a in v] if isinstance(v, list) else [default, default]

    sh, sw = pair("stride", 1)
    dh, dw = pair("dilation", 1)
    pads = step.attrs.get("pads", [0, 0, 0, 0])
    pt, pl = (int(pads[0]), int(pads[1])) if isinstance(pads, list) and len(pads) >= 2 else (0, 0)
    return _ConvGeometry(cg, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl)


def conv_rows(program: Program, step: Step) -> list[ConvRow]:
    """Per output row (the same for every output channel): the work of a dense conv unit."""
    g = _conv_geometry(program, step)
    # columns: interior windows and the valid taps of each border window
    interior = 0
    border_taps: list[int] = []
    for ox in range(g.ow):
        if g.interior_column(ox):
            interior += 1
        else:
            border_taps.append(_valid_taps(ox * g.sw - g.pl, g.kw, g.dw, g.iw))
    rows = []
    for oy in range(g.oh):
        nky = _valid_taps(oy * g.sh - g.pt, g.kh, g.dh, g.ih)
        rows.append(ConvRow(interior * g.cg * nky * g.kw, g.cg * nky * sum(border_taps), interior, len(border_taps),
                            g.cg * nky * sum(1 for n in border_taps if n)))
    return rows


SPARSE_RUN_TAPS = 32    # runtime_c/fx_sparse.c: FX_SPARSE_RUN_TAPS, FX_SPARSE_CLASSES, FX_SPARSE_KMAX,
SPARSE_CLASSES = 8      # FX_SPARSE_ACC
SPARSE_KMAX = 16
SPARSE_ACC = 64


@dataclass(frozen=True)
class SparseConvCall:
    """The work of one fx_conv_sparse call (near input) that the cost model counts:
    ``cost = call + call_border * classes + call_stride * strided + channel * channels
    + index * taps + block * blocks + block_tap * block_taps + store * outputs + mac * macs
    + chunk_index * chunk_taps + slow_mac * chunk_macs + chunk_border * chunk_border_macs
    + group_output * group_outputs``."""

    classes: int = 0
    strided: int = 0
    channels: int = 0
    taps: int = 0
    blocks: int = 0
    block_taps: int = 0
    outputs: int = 0
    macs: int = 0
    chunk_taps: int = 0
    chunk_macs: int = 0
    chunk_border_macs: int = 0
    group_outputs: int = 0

    def call_cycles(self, c: OpCost) -> float:
        """The cycles paid once per call: ``call``, ``call_border`` per class, ``call_stride``."""
        return c.call + c.call_border * self.classes + c.call_stride * self.strided

    def cycles(self, c: OpCost) -> float:
        """Predicted cycles of the call with the constants ``c``."""
        return (self.call_cycles(c) + c.channel * self.channels + c.index * self.taps + c.block * self.blocks + c.block_tap * self.block_taps
                + c.store * self.outputs + c.mac * self.macs + c.chunk_index * self.chunk_taps
                + c.slow_mac * self.chunk_macs + c.chunk_border * self.chunk_border_macs
                + c.group_output * self.group_outputs)


def _inside(n_out: int, s: int, p: int, k: int, d: int, n_in: int) -> list[bool]:
    """Per output row / column: its window lies inside the input."""
    return [o * s - p >= 0 and o * s - p + (k - 1) * d < n_in for o in range(n_out)]


def _sparse_blocks(g: _ConvGeometry, row_in: list[bool], border_cols: int, rows: range) -> tuple[int, int, bool]:
    """The row classes + column classes, the blocks (row class x column class) of the output rows
    ``rows`` on the fast path, and whether every window of theirs lies inside the input."""
    col_classes = border_cols + (border_cols < g.ow)
    border_rows = sum(1 for oy in rows if not row_in[oy])
    row_classes = border_rows + (border_rows < len(rows))
    inside = border_rows == 0 and border_cols == 0
    return row_classes + col_classes, 1 if inside else row_classes * col_classes, inside


def sparse_conv_call(g: _ConvGeometry, taps: list[int], rows: range) -> SparseConvCall:
    """What one fx_conv_sparse call over the channels with ``taps`` stored taps each and the output
    rows ``rows`` does (runtime_c/fx_sparse.c, fx_conv_sparse): the fast path (a channel with at
    most SPARSE_RUN_TAPS taps) runs one block per channel when every window lies inside the input,
    else a block per row class x column class (the border rows and columns, one class each, and the
    interior). A channel with more taps takes the fast path's tables in groups of SPARSE_RUN_TAPS
    taps (fx_sparse_long) when rows are at most SPARSE_ACC outputs wide: band by band of
    SPARSE_ACC // ow rows, the band's classes once, per channel and band a set-up, its taps decoded
    and each group's tables per block, a partial sum per output and group; else the chunked path
    decodes the taps per channel and call and checks border taps. Which path is decided by the
    whole step's classes (a call of fewer rows has no more classes)."""
    row_in = _inside(g.oh, g.sh, g.pt, g.kh, g.dh, g.ih)
    col_in = _inside(g.ow, g.sw, g.pl, g.kw, g.dw, g.iw)
    border_cols = col_in.count(False)
    col_classes = border_cols + (border_cols < g.ow)
    step_rows = row_in.count(False) + (True in row_in)
    fits = (g.kh <= SPARSE_KMAX and (g.kw - 1) * g.dw < SPARSE_KMAX and step_rows <= SPARSE_CLASSES
            and col_classes <= SPARSE_CLASSES)
    classes, blocks, inside = _sparse_blocks(g, row_in, border_cols, rows)
    border_outputs = sum(g.ow if not row_in[oy] else border_cols for oy in rows)
    outputs = len(rows) * g.ow
    n_fast = [n for n in taps if fits and n <= SPARSE_RUN_TAPS]
    long_ok = fits and g.ow <= SPARSE_ACC and g.kh <= SPARSE_KMAX and (g.kw - 1) * g.dw < SPARSE_KMAX
    n_long = [n for n in taps if long_ok and n > SPARSE_RUN_TAPS]
    n_slow = [n for n in taps if n > SPARSE_RUN_TAPS and not long_ok]
    call = SparseConvCall(
        classes=0 if inside else classes, strided=int(g.sh > 1 or g.sw > 1),
        channels=len(taps), taps=sum(n_fast), blocks=blocks * len(n_fast),
        block_taps=0 if inside else blocks * sum(n_fast), outputs=outputs * len(taps),
        macs=outputs * sum(n_fast + n_long), chunk_taps=sum(n_slow), chunk_macs=outputs * sum(n_slow),
        chunk_border_macs=border_outputs * sum(n_slow))
    if not n_long:
        return call
    band = SPARSE_ACC // g.ow
    extra = {"classes": 0, "channels": -len(n_long), "taps": 0, "blocks": 0, "block_taps": 0,
             "group_outputs": 0}
    for oy in range(rows.start, rows.stop, band):
        part = range(oy, min(oy + band, rows.stop))
        b_classes, b_blocks, _ = _sparse_blocks(g, row_in, border_cols, part)
        groups = [-(-n // SPARSE_RUN_TAPS) for n in n_long]
        extra["classes"] += b_classes          # fx_sparse_long takes classes even inside
        extra["channels"] += len(n_long)
        extra["taps"] += sum(n_long)
        extra["blocks"] += b_blocks * sum(groups)
        extra["block_taps"] += b_blocks * sum(n_long)
        extra["group_outputs"] += len(part) * g.ow * sum(groups)
    return replace(call, **{k: getattr(call, k) + v for k, v in extra.items()})


def _sparse_near(cost: OpCost) -> bool:
    return cost is COSTS["conv_sparse"]


def conv_border_columns(program: Program, step: Step) -> int:
    """The border columns fx_conv runs down the interior rows of a dense conv, each run started once
    per output channel a call touches: the columns outside the interior when the width has
    dilation 1 and some output row has every kernel row inside the input; 0 otherwise."""
    if step.op != "conv":
        return 0
    g = _conv_geometry(program, step)
    if g.pointwise or g.dw != 1:
        return 0
    if not any(oy * g.sh - g.pt >= 0 and oy * g.sh - g.pt + (g.kh - 1) * g.dh < g.ih for oy in range(g.oh)):
        return 0
    return sum(1 for ox in range(g.ow) if not g.interior_column(ox))


def _sparse_row(program: Program, step: Step, taps: int, oy: int) -> SparseConvCall:
    """A conv_sparse call of output row ``oy`` of one channel with ``taps`` stored taps."""
    return sparse_conv_call(_conv_geometry(program, step), [taps], range(oy, oy + 1))


def _sparse_setup_cycles(program: Program, step: Step) -> float:
    """conv_sparse: the most cycles a call pays for a channel it starts inside (the channel's
    set-up, its table, its blocks), over one-row calls of the channel with the most taps."""
    c = COSTS["conv_sparse"]
    most = max(per_output_nnz(program, step), default=0)
    oh = program.buffers[step.outputs[0]].shape[-2]
    rows = [replace(_sparse_row(program, step, most, oy), outputs=0, macs=0, chunk_macs=0, chunk_border_macs=0)
            for oy in range(oh)]
    return max(r.cycles(c) - r.call_cycles(c) for r in rows)


def call_cycles(program: Program, step: Step, u0: int) -> float:
    """Cycles of one kernel call of ``step`` that starts at unit ``u0``: ``call``, and for a conv
    call that starts inside an output channel ``call_border`` per border column; a conv_sparse call
    its set-up (:func:`_sparse_setup_cycles`, the channel's part only when it starts inside one)."""
    c = op_cost(program, step)
    if step.op == "conv_sparse" and _sparse_near(c):
        g = _conv_geometry(program, step)
        whole = sparse_conv_call(g, [], range(g.oh))
        return whole.call_cycles(c) + (_sparse_setup_cycles(program, step) if u0 % g.oh else 0.0)
    if (step.op == "conv" and c.call_border and u0 % program.buffers[step.outputs[0]].shape[-2]
            and not col_split(program, step)):
        return c.call + c.call_border * conv_border_columns(program, step)
    return c.call


def worst_call_cycles(program: Program, step: Step) -> float:
    """The most cycles one kernel call of ``step`` costs wherever it starts (:func:`call_cycles`)."""
    c = op_cost(program, step)
    if step.op == "conv_sparse" and _sparse_near(c):   # (step_work's unit pays its channel's set-up)
        return call_cycles(program, step, 0)
    if step.op != "conv" or program.buffers[step.outputs[0]].shape[-2] == 1 or col_split(program, step):
        return c.call       # (one row: calls start at channels; column ranges run no border column)
    return c.call + c.call_border * conv_border_columns(program, step)


def _conv_row_cycles(c: OpCost, r: ConvRow) -> float:
    return (c.base + c.mac * r.fast_macs + (c.slow_mac or c.mac) * r.slow_macs
            + c.store * r.fast_outputs + (c.border or c.store) * r.slow_outputs + c.slow_row * r.slow_rows)


def _conv_channel_cycles(program: Program, step: Step) -> float:
    """The cycles of a dense conv paid once per output channel: ``channel`` and ``column`` per
    border column run down the interior rows."""
    c = COSTS["conv"]
    return c.channel + c.column * conv_border_columns(program, step)


def _concat_requantised(program: Program, step: Step) -> int:
    """Elements of a concat's output that fx_requant_copy requantises (their input's shift != 0)."""
    shifts = step.attrs.get("shifts", [])
    if not isinstance(shifts, list):
        return 0
    return sum(program.buffers[x].size for x, sh in zip(step.inputs, shifts) if sh != 0)


def step_cycles(program: Program, step: Step) -> float:
    """Predicted cycles of a whole step without commits: units x per-unit cost, except for conv,
    whose rows are summed with their own borders and padding, and the sparse ops, whose units are
    summed with their own stored weights (conv_sparse decoding each channel once, as whole-channel
    tiles do)."""
    if col_split(program, step):      # one fx_conv_cols call per range
        cout = program.buffers[step.outputs[0]].shape[-3]
        segs = conv_segments(program, step, conv_unit_cols(program, step))
        return cout * sum(_segment_cycles(COSTS["conv"], r) for row in segs for r in row)
    if step.op == "conv":
        cout = program.buffers[step.outputs[0]].shape[-3]
        return cout * (sum(_conv_row_cycles(COSTS["conv"], r) for r in conv_rows(program, step))
                       + _conv_channel_cycles(program, step))
    if step.op == "concat":
        c = COSTS["concat"]
        n = program.buffers[step.outputs[0]].size
        return -(-n // ELTWISE_CHUNK) * c.base + c.store * n + c.mac * _concat_requantised(program, step)
    if step.op == "lut":               # per chunk, per element, per gated element
        c = COSTS["lut"]
        n = program.buffers[step.outputs[0]].size
        return -(-n // ELTWISE_CHUNK) * c.base + c.store * n + (c.mac * n if step.attrs.get("gate") else 0.0)
    if step.op == "gnet_feature":      # as concat: per chunk, per element, per requantised element
        c = COSTS["gnet_feature"]
        n = program.buffers[step.inputs[0]].size
        return -(-n // ELTWISE_CHUNK) * c.base + c.store * n + (c.mac * n if step.attrs.get("shift", 0) else 0.0)
    if step.op not in ("fc_sparse", "conv_sparse"):
        work = step_work(program, step)
        return work.units * work.cycles_per_unit
    cost = sparse_cost(program, step)
    per = per_output_nnz(program, step)
    out = program.buffers[step.outputs[0]]
    if step.op == "fc_sparse":
        return len(per) * (cost.base + cost.store) + cost.mac * sum(per)
    _, oh, ow = out.shape[-3:]
    if _sparse_near(cost):              # one call over the whole step
        return sparse_conv_call(_conv_geometry(program, step), per, range(oh)).cycles(cost)
    return (len(per) * oh * (cost.base + cost.store * ow) + cost.mac * oh * ow * sum(per)
            + cost.index * sum(per))


def unit_stores(program: Program, step: Step, u0: int, u1: int) -> int:
    """Output elements that units ``[u0, u1)`` of a step store (at most, for the chunked ops; exact
    for column units, whose last range of a row may be narrower)."""
    work = step_work(program, step)
    if not col_split(program, step):
        return (u1 - u0) * work.stores_per_unit
    ow, cw = program.buffers[step.outputs[0]].shape[-1], work.stores_per_unit
    nc = -(-ow // cw)
    return sum(min(cw, ow - (u % nc) * cw) for u in range(u0, u1))


def tile_unit_count(program: Program, step: Step) -> int:
    """Units in one tile of the step's TilePlan (all units without one); matches the printers."""
    work = step_work(program, step)
    if step.tile is None:
        return max(work.units, 1)
    dims = step.tile.dims
    if col_split(program, step):      # a unit per tile: one range of columns
        per = 1
    elif step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[-2]
        per = dims[0] * oh if dims[1] >= oh else dims[1]
    elif step.op in ("add", "mul", "act", "lut", "concat", "gnet_feature", "transpose", "slice", "upsample"):
        per = -(-dims[0] // ELTWISE_CHUNK)
    elif step.op == "argmax":
        per = 1
    else:
        per = dims[0]
    return max(1, min(per, max(work.units, 1)))

"""Work units and the cycle cost model of LIR steps on the MSP430 (MPY32, no FRAM wait states).

A *work unit* is the smallest piece of a step the generated runtime schedules; the table matches
backends/c/printers.py (tests check they agree):

    conv      one output row of one output channel     Cout * OH units
    fc        one output                                N
    conv_sparse  as conv                                Cout * OH units
    fc_sparse    as fc                                  N
    maxpool   one output channel                        C
    avgpool   one output channel                        C
    add, act, concat   a chunk of ELTWISE_CHUNK elements   ceil(n / 32)
    argmax    the whole step                            1
    gnet_feature  a chunk of ELTWISE_CHUNK elements of its slice   ceil(n / 32)
    gnet_exit     one output (on demand: the head)      N

The cost of a unit is ``base + mac * MACs + store * outputs`` cycles with per-op constants
(:data:`COSTS`) fitted to the simulator's counts of the kernels by ``bench/calibrate_cost.py``
(which prints the fit; re-run it when the kernels change). A commit and a boot have fixed costs.

Sparse steps: ``MACs`` are the stored weights of the unit (the sparse kernels skip the zeros), and
``index`` cycles per stored weight of a conv_sparse channel are added once per kernel call for the
decoding of its taps (runtime_c/fx_sparse.c). :func:`step_work` is per unit and must not
underestimate any unit (the tile pass sizes power cycles with it), so for sparse steps it counts
the unit with the most stored weights; :func:`step_cycles` predicts a whole step, with every unit's
own weights. The sparse constants come from bench/sparse_speed.py (per stored weight and per output,
relative to the dense kernels measured the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transpiler.lir.ir import Program, Step

ELTWISE_CHUNK = 32


@dataclass(frozen=True)
class OpCost:
    """Cycles of one work unit: base + mac * multiply-accumulates + store * output elements."""

    base: float
    mac: float
    store: float
    index: float = 0.0
    """conv_sparse: cycles per stored weight to decode a channel's taps (once per kernel call)."""


# Fitted with bench/calibrate_cost.py on the patched msp430-elf-run (-O2, MPY32).
COSTS: dict[str, OpCost] = {
    "conv": OpCost(base=180.0, mac=9.0, store=40.0),
    "fc": OpCost(base=120.0, mac=8.0, store=30.0),
    "maxpool": OpCost(base=150.0, mac=7.0, store=30.0),
    "avgpool": OpCost(base=150.0, mac=7.0, store=120.0),
    "add": OpCost(base=100.0, mac=0.0, store=30.0),
    "act": OpCost(base=100.0, mac=0.0, store=20.0),
    "concat": OpCost(base=100.0, mac=0.0, store=25.0),
    "argmax": OpCost(base=100.0, mac=6.0, store=0.0),
    # Measured with bench/sparse_speed.py (its fit of cycles per output over densities <= 0.1):
    # fc_sparse 12.4 cycles per stored weight (dense fx_fc: 8.6 per weight) and ~150 per output;
    # conv_sparse ~14 per stored tap per output (16 with padded borders), ~180 per output
    # (requant, act, store, the row's geometry), ~25 per tap to decode a channel's taps.
    "fc_sparse": OpCost(base=120.0, mac=12.4, store=30.0),
    "conv_sparse": OpCost(base=200.0, mac=14.5, store=160.0, index=25.0),
    # gNet (not calibrated on the simulator yet: the fc and concat constants of the same kernels)
    "gnet_feature": OpCost(base=100.0, mac=0.0, store=25.0),    # fx_requant_copy, as concat
    "gnet_exit": OpCost(base=120.0, mac=8.0, store=30.0),       # fx_fc over the feature vector
}
COMMIT_CYCLES = 160      # fx_progress_commit: find the older record, checksum, five FRAM stores
BOOT_CYCLES = 600        # reset to the first unit: crt0, .data/.bss setup, progress load, dispatch
# The intermittent run loop (backends/c/intermittent.py, transpiler/intermittent.py):
COPY_CYCLES_PER_ELEMENT = 12.0   # input copy into FRAM / output copy out, per int16 element
RUN_CYCLES = 120         # one fx_<m>_run call: progress load and the dispatch to the saved step
STEP_CYCLES = 40         # entering a step in the loop (table entry, group size)
TILE_CALL_CYCLES = 60    # one step-function call for a tile (the call, descriptor, kernel set-up)


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


def step_work(program: Program, step: Step) -> StepWork:
    """Units, per-unit work and predicted cycles of one step."""
    bufs = program.buffers
    out = bufs[step.outputs[0]]
    op = step.op
    if op == "conv":
        cout, oh, ow = out.shape[-3:]
        w = bufs[step.inputs[1]]
        units, macs, stores = cout * oh, ow * _prod(w.shape[1:]), ow
    elif op == "fc":
        units, macs, stores = out.size, bufs[step.inputs[0]].size, 1
    elif op in ("maxpool", "avgpool"):
        c, oh, ow = out.shape[-3:]
        kernel = step.attrs.get("kernel", [1, 1])
        units, macs, stores = c, oh * ow * _prod(kernel if isinstance(kernel, list) else [kernel]), oh * ow
    elif op in ("add", "act", "concat"):
        units, macs, stores = -(-out.size // ELTWISE_CHUNK), 0, ELTWISE_CHUNK
    elif op == "gnet_feature":      # chunks of the slice it writes
        units, macs, stores = -(-bufs[step.inputs[0]].size // ELTWISE_CHUNK), 0, ELTWISE_CHUNK
    elif op == "gnet_exit":
        units, macs, stores = out.size, bufs[step.inputs[0]].size, 1
    elif op == "argmax":
        units, macs, stores = 1, bufs[step.inputs[0]].size, 1
    elif op == "fc_sparse":
        units, macs, stores = out.size, max(_per_output_nnz(program, step), default=0), 1
    elif op == "conv_sparse":
        cout, oh, ow = out.shape[-3:]
        units, stores = cout * oh, ow
        macs = ow * max(_per_output_nnz(program, step), default=0)
    else:
        raise KeyError(f"no cost model for LIR op {op!r} (step {step.name})")
    cost = COSTS[op]
    cycles = cost.base + cost.mac * macs + cost.store * stores
    if cost.index and stores:
        cycles += cost.index * (macs // stores)   # a one-row call decodes its channel's taps
    return StepWork(units, macs, stores, cycles)


def _per_output_nnz(program: Program, step: Step) -> list[int]:
    """Stored weights per output (fc_sparse) or per output channel (conv_sparse): the differences
    of the pointer array (input 3)."""
    ptr = program.buffers[step.inputs[3]].data
    if ptr is None:
        raise KeyError(f"step {step.name}: the pointer %{step.inputs[3]} is not a constant")
    return [int(v) for v in np.diff(np.asarray(ptr, dtype=np.int64).reshape(-1))]


def step_cycles(program: Program, step: Step) -> float:
    """Predicted cycles of a whole step without commits: units x per-unit cost, except for the
    sparse ops, whose units are summed with their own stored weights (conv_sparse decoding each
    channel once, as whole-channel tiles do)."""
    if step.op not in ("fc_sparse", "conv_sparse"):
        work = step_work(program, step)
        return work.units * work.cycles_per_unit
    cost = COSTS[step.op]
    per = _per_output_nnz(program, step)
    out = program.buffers[step.outputs[0]]
    if step.op == "fc_sparse":
        return len(per) * (cost.base + cost.store) + cost.mac * sum(per)
    _, oh, ow = out.shape[-3:]
    return (len(per) * oh * (cost.base + cost.store * ow) + cost.mac * oh * ow * sum(per)
            + cost.index * sum(per))


def tile_unit_count(program: Program, step: Step) -> int:
    """Units in one tile of the step's TilePlan (all units without one); matches the printers."""
    work = step_work(program, step)
    if step.tile is None:
        return max(work.units, 1)
    dims = step.tile.dims
    if step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[-2]
        per = dims[0] * oh if dims[1] >= oh else dims[1]
    elif step.op in ("add", "act", "concat", "gnet_feature"):
        per = -(-dims[0] // ELTWISE_CHUNK)
    elif step.op == "argmax":
        per = 1
    else:
        per = dims[0]
    return max(1, min(per, max(work.units, 1)))

"""Work units and the cycle cost model of LIR steps on the MSP430 (MPY32, no FRAM wait states).

A *work unit* is the smallest piece of a step the generated runtime schedules; the table matches
backends/c/printers.py (tests check they agree):

    conv      one output row of one output channel     Cout * OH units
    fc        one output                                N
    maxpool   one output channel                        C
    avgpool   one output channel                        C
    add, act, concat   a chunk of ELTWISE_CHUNK elements   ceil(n / 32)
    argmax    the whole step                            1

The cost of a unit is ``base + mac * MACs + store * outputs`` cycles with per-op constants
(:data:`COSTS`) fitted to the simulator's counts of the kernels by ``bench/calibrate_cost.py``
(which prints the fit; re-run it when the kernels change). A commit and a boot have fixed costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from transpiler.lir.ir import Program, Step

ELTWISE_CHUNK = 32


@dataclass(frozen=True)
class OpCost:
    """Cycles of one work unit: base + mac * multiply-accumulates + store * output elements."""

    base: float
    mac: float
    store: float


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
}
COMMIT_CYCLES = 160      # fx_progress_commit: find the older record, checksum, five FRAM stores
BOOT_CYCLES = 600        # reset to the first unit: crt0, .data/.bss setup, progress load, dispatch


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
    elif op == "argmax":
        units, macs, stores = 1, bufs[step.inputs[0]].size, 1
    else:
        raise KeyError(f"no cost model for LIR op {op!r} (step {step.name})")
    cost = COSTS[op]
    return StepWork(units, macs, stores, cost.base + cost.mac * macs + cost.store * stores)


def tile_unit_count(program: Program, step: Step) -> int:
    """Units in one tile of the step's TilePlan (all units without one); matches the printers."""
    work = step_work(program, step)
    if step.tile is None:
        return max(work.units, 1)
    dims = step.tile.dims
    if step.op == "conv":
        oh = program.buffers[step.outputs[0]].shape[-2]
        per = dims[0] * oh if dims[1] >= oh else dims[1]
    elif step.op in ("add", "act", "concat"):
        per = -(-dims[0] // ELTWISE_CHUNK)
    elif step.op == "argmax":
        per = 1
    else:
        per = dims[0]
    return max(1, min(per, max(work.units, 1)))

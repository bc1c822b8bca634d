"""Intermittent execution plans: what the `tile` pass decides and the C emitter needs, and the
end-to-end prediction of a run whose power fails every ``budget`` cycles.

The `tile` pass (passes/tile.py) records an :class:`IntermittentPlan` in the program's metadata
(``meta "intermittent" "{...}"`` in the LIR text form, so ``freeml-tx build-lir final.lir``
regenerates the same code). Its presence is what makes emit-c generate the intermittent run loop
(backends/c/intermittent.py); a program without it runs straight through (continuous power).

The commit schedule of an inference (DESIGN.md section 8)::

    progress step 0        input copy, in chunks of INPUT_CHUNK elements, input_per_commit per commit
    progress step 1..N     LIR step s-1, in groups of tile_units * per_commit work units, a commit
                           after each group (the last group's commit names the next step)
    progress step N+1      done: only the output copy is left (idempotent, after the last commit)

:func:`commit_pieces` lists the pieces of work between two commits with their predicted cycles
(transpiler.lir.cost); :func:`simulate_power_cycles` replays them under a failure every ``budget``
cycles after each boot, exactly as ``MSP430_SIM_POWER_FAIL=every:<budget>`` does: a piece that does
not fit in what is left of a power cycle is lost (its cycles count as re-executed work) and run
again after the next boot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from transpiler.errors import Location, PassError
from transpiler.lir.ir import Program

META_KEY = "intermittent"
INPUT_CHUNK = 32
"""Elements of the input copied per input-copy unit (progress step 0)."""
COMMIT_STORES = 5
"""FRAM stores of one progress commit (FX_PROGRESS_COMMIT_STORES in runtime_c/fx_progress.h)."""


@dataclass(frozen=True)
class IntermittentPlan:
    """The tile pass's decisions that are not per step.

    budget: cycles per power cycle the plan was sized for; margin: the reserve fraction;
    input_per_commit: input-copy chunks (INPUT_CHUNK elements each) between two commits.
    """

    budget: int
    margin: float
    input_per_commit: int

    def to_meta(self) -> str:
        """The JSON text stored in ``program.meta[META_KEY]`` (sorted keys: deterministic)."""
        return json.dumps({"budget": self.budget, "margin": self.margin,
                           "input_per_commit": self.input_per_commit}, sort_keys=True)

    @classmethod
    def from_meta(cls, text: str) -> IntermittentPlan:
        """Parse :meth:`to_meta`'s text.

        Raises:
            PassError: not a JSON object with a positive integer budget and input_per_commit and a
                margin in [0, 1).
        """
        try:
            data = json.loads(text)
            plan = cls(int(data["budget"]), float(data["margin"]), int(data["input_per_commit"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise PassError(f"meta {META_KEY!r} is not an intermittent plan: {text!r}",
                            location=Location(node=META_KEY),
                            hint='expected {"budget": N, "input_per_commit": K, "margin": M}; '
                                 "re-run the tile pass (tile{budget=...})") from exc
        if plan.budget <= 0 or plan.input_per_commit <= 0 or not 0.0 <= plan.margin < 1.0:
            raise PassError(f"meta {META_KEY!r} has out-of-range values: {text!r}",
                            location=Location(node=META_KEY),
                            hint="budget and input_per_commit must be positive, margin in [0, 1)")
        return plan


def plan_of(program: Program) -> IntermittentPlan | None:
    """The program's intermittent plan, or None (continuous power)."""
    text = program.meta.get(META_KEY)
    return None if text is None else IntermittentPlan.from_meta(text)


def input_size(program: Program) -> int:
    """Elements of all program inputs together (the concatenated ``in`` vector)."""
    return sum(program.buffers[p.buffer].size for p in program.inputs)


def output_size(program: Program) -> int:
    """Elements of all program outputs together."""
    return sum(program.buffers[p.buffer].size for p in program.outputs)


def input_chunks(program: Program) -> int:
    """Input-copy units of progress step 0."""
    return max(1, -(-input_size(program) // INPUT_CHUNK))


@dataclass(frozen=True)
class Piece:
    """Work between two commits: ``what`` (a step name, "input copy" or "output copy"), its
    progress step, its predicted cycles and its FRAM stores (at most), the commit that ends it
    included (the output copy has none)."""

    what: str
    step: int
    cycles: float
    stores: int = 0


def commit_pieces(program: Program, plan: IntermittentPlan) -> list[Piece]:
    """Every piece of work between two commits of one inference, in order (see the module doc)."""
    from transpiler.lir.cost import (COMMIT_CYCLES, COPY_CYCLES_PER_ELEMENT, RUN_CYCLES, STEP_CYCLES, call_cycles,
                                     step_cycles, step_work, tile_unit_count, unit_stores)

    pieces: list[Piece] = []
    n_in = input_size(program)
    chunks = input_chunks(program)
    c = 0
    first = RUN_CYCLES
    while c < chunks:
        end = min(c + plan.input_per_commit, chunks)
        elems = min(end * INPUT_CHUNK, n_in) - c * INPUT_CHUNK
        pieces.append(Piece("input copy", 0, first + elems * COPY_CYCLES_PER_ELEMENT + COMMIT_CYCLES,
                            elems + COMMIT_STORES))
        first = 0.0
        c = end
    from transpiler.lir.ops import ON_DEMAND_OPS

    for i, step in enumerate(program.steps):
        if step.op in ON_DEMAND_OPS:      # the gNet head runs on demand, outside the commit sequence
            continue
        work = step_work(program, step)
        per_unit = step_cycles(program, step) / max(work.units, 1)   # the average unit (the tile pass
        tile = tile_unit_count(program, step)                        # sizes groups by the worst one)
        per_commit = step.tile.per_commit if step.tile is not None else 1
        group = max(1, tile * per_commit)
        u = 0
        extra = STEP_CYCLES
        while u < work.units:
            n = min(group, work.units - u)
            # the step's first call is in step_cycles (fitted on one call per step); each further
            # call adds its set-up (cost.OpCost.call, fitted as split minus one-call cycles)
            calls = sum(call_cycles(program, step, start) for start in range(u, u + n, tile) if start > 0)
            pieces.append(Piece(step.name, i + 1, extra + n * per_unit + calls + COMMIT_CYCLES,
                                unit_stores(program, step, u, u + n) + COMMIT_STORES))
            extra = 0.0
            u += n
    pieces.append(Piece("output copy", len(program.steps) + 1,
                        output_size(program) * COPY_CYCLES_PER_ELEMENT, output_size(program)))
    return pieces


@dataclass(frozen=True)
class ScheduleEstimate:
    """A run under a failure every ``budget`` cycles after each boot.

    total_cycles: every cycle of every boot (boots, lost work and the useful work);
    power_failures: failures before the inference finished; lost_cycles: cycles of pieces cut by a
    failure (re-executed later); stuck: a piece (with a boot) does not fit one power cycle, so the
    run never finishes (the other figures then cover the run up to that piece).
    """

    total_cycles: float
    power_failures: int
    lost_cycles: float
    useful_cycles: float
    stuck: bool = False


def simulate_power_cycles(pieces: list[Piece], budget: float, boot_cycles: float) -> ScheduleEstimate:
    """Replay ``pieces`` with a power failure ``budget`` cycles after each boot (boot included).

    A budget <= 0 means continuous power: one boot, no failure.
    """
    useful = sum(p.cycles for p in pieces)
    if budget <= 0:
        return ScheduleEstimate(boot_cycles + useful, 0, 0.0, useful)
    total = 0.0
    lost = 0.0
    failures = 0
    t = boot_cycles                      # cycles since the current boot
    for piece in pieces:
        while t + piece.cycles > budget:
            if boot_cycles + piece.cycles > budget:
                return ScheduleEstimate(total + t, failures, lost, useful, stuck=True)
            lost += budget - t           # the part of the piece done before the failure
            total += budget
            failures += 1
            t = boot_cycles
        t += piece.cycles
    return ScheduleEstimate(total + t, failures, lost, useful)


__all__ = ["META_KEY", "INPUT_CHUNK", "COMMIT_STORES", "IntermittentPlan", "plan_of", "input_size", "output_size",
           "input_chunks", "Piece", "commit_pieces", "ScheduleEstimate", "simulate_power_cycles"]

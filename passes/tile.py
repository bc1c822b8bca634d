"""`tile`: size every step's tiles and commit groups to one power cycle's cycle budget.

Before -> after::

    step conv "conv2" (%t2, %w2, %b2) -> (%t3) {...}
      ->
    step conv "conv2" (%t2, %w2, %b2) -> (%t3) {...} tile [1,4,8] x3

The schedulability part of Zhang's accelerated intermittent inference (and iNAS): with a budget of
B cycles per power cycle and a safety margin m, one commit group (``per_commit`` tiles) plus its
progress commit must fit in ``B * (1 - m) - boot``, where ``boot`` is the cost of restarting after a
failure. A tile is a run of work units (transpiler.lir.cost): for conv, output rows of one channel or
whole channels; for fc, outputs; for pooling, channels; for element-wise steps, elements. Bigger
groups mean fewer commits ("hyper-tile batching"), smaller ones less work lost at a failure (about
half a group): the pass takes the largest group that fits, unless groups small enough that two of
them fill a power cycle (less the boot and half the margin) keep their call and commit within
``overhead`` (5 %) of their work; then it takes those (:func:`_lean_group`). A power cycle then
ends close to the end of a group instead of a margin and a started group after it.

A dense conv whose single output row does not fit gets *column units*: its rows split into
``nc`` ranges of ``cw = ceil(OW / nc)`` columns, ``nc`` the fewest that fit, one range a tile
(fx_conv_cols; ``tile [1,1,cw]``)::

    step conv "c" (%x, %w, %b) -> (%y) {...}          y: [16,32,32], one row ~37,000 cycles
      ->  (budget 30,000)
    step conv "c" (%x, %w, %b) -> (%y) {...} tile [1,1,16] x1     units (co * 32 + oy) * 2 + cx

Without a budget (continuous power) the pass leaves steps untiled: the runtime then commits only at
step ends. A step whose single unit plus a commit cannot fit is a BudgetError naming the layer, the
budget and the smallest need.

With a budget the pass also records an :class:`~transpiler.intermittent.IntermittentPlan` in
``program.meta["intermittent"]`` (budget, margin, input-copy chunks per commit): emit-c then generates
the intermittent run loop (backends/c/intermittent.py). The input copy (progress step 0) is sized like
a step, and the output copy (after the last commit, no commit of its own) must fit too.

Stats: per step the tile shape, tiles per commit, groups, predicted cycles per group, FRAM bytes for
progress; and the predicted end-to-end run under a failure every ``budget`` cycles
(transpiler.intermittent.simulate_power_cycles: boots, lost partial groups and re-executions
included), the same model's cycles under continuous power, and seconds with the recharge time
when the power supply (``context.extra["power"]``) has a harvest power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from transpiler.errors import BudgetError, Location
from transpiler.intermittent import (INPUT_CHUNK, META_KEY, IntermittentPlan, commit_pieces, input_chunks,
                                     output_size, simulate_power_cycles)
from transpiler.lir.cost import (BOOT_CYCLES, COMMIT_CYCLES, COPY_CYCLES_PER_ELEMENT, RUN_CYCLES, StepWork,
                                 col_split, op_cost, STEP_CYCLES, step_work, worst_call_cycles)
from transpiler.lir.ir import Program, Step, TilePlan
from transpiler.lir.ops import ON_DEMAND_OPS
from transpiler.pass_infra import Pass, PassResult, register

PROGRESS_FRAM_BYTES = 16     # two records of four uint16_t


@dataclass(frozen=True)
class TileOptions:
    """budget: cycles per power cycle (0 = continuous power; the CLI fills it from --power or
    --cycles-per-power-cycle); margin: fraction of the budget kept in reserve; overhead: see below."""

    budget: int = 0
    margin: float = 0.2
    overhead: float = 0.05
    """The most cycles a group's kernel call and commit may add per cycle of its work: groups that
    small or larger are sized to fill a power cycle in whole groups (a failure loses about half a
    group); 0 = always the largest group that fits."""


def _tile_dims(program: Program, step: Step, tile_units: int) -> list[int]:
    """The TilePlan dims of a tile of `tile_units` work units of whole rows (docs/lir.md: conv and
    pools ``[channels, rows, cols]``, the others ``[elements]``; never beyond the output extent);
    column units are ``[1, 1, cw]``."""
    out = program.buffers[step.outputs[0]]
    if step.op in ("conv", "conv_sparse"):
        _, oh, ow = out.shape[-3:]
        if tile_units >= oh:
            return [tile_units // oh, oh, ow]
        return [1, tile_units, ow]
    if step.op in ("maxpool", "avgpool"):
        _, oh, ow = out.shape[-3:]
        return [tile_units, oh, ow]
    if step.op in ("add", "mul", "act", "lut", "concat", "transpose", "slice", "upsample"):
        return [min(tile_units * 32, out.size)]
    return [tile_units]


def _natural_tile(program: Program, step: Step, group_units: int) -> int:
    """The tile (units per kernel call) for a group of `group_units`: the group itself, rounded
    down to whole channels for conv when it covers at least one (a conv tile is a run of rows of
    one channel or whole channels). One call per group: a kernel call costs hundreds of cycles of
    set-up (cost.OpCost.call), and the activations are in FRAM, so a bigger tile needs no SRAM."""
    if step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[-2]
        if group_units >= oh:
            return group_units // oh * oh
    return group_units


def _whole_channels(program: Program, step: Step, tile_units: int) -> bool:
    """Whether every tile of a conv starts at an output channel (tiles of whole channels)."""
    return step.op in ("conv", "conv_sparse") and tile_units % program.buffers[step.outputs[0]].shape[-2] == 0


def _largest_group(program: Program, step: Step, units: int, per_unit: float, room: float) -> int:
    """The most units one group may hold so that ``units * per_unit + calls * call <= room``.

    A group is one kernel call (a run of rows, outputs, channels or chunks; _natural_tile); 0 when
    not even one unit fits. A conv group of whole channels starts at a channel; a shorter one may
    start inside one and pay the worst call (cost.worst_call_cycles).
    """
    call, worst = op_cost(program, step).call, worst_call_cycles(program, step)
    one_call = int((room - worst) // per_unit) if room > worst else 0
    group = min(one_call, units)
    if step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[-2]
        group = min(group, oh - 1) if oh > 1 else group
        channels = int(room // (oh * per_unit + call)) if room > 0 else 0
        if channels >= 1:
            group = max(group, min(channels * oh, units))
    return max(group, 0)


PACKED_GROUPS = 2
"""Commit groups per power cycle when groups that small keep within the overhead: a power cycle then
ends within half the margin of the end of a group (not a whole margin and the next group's start),
and a failure loses about half a group; more groups would cost more commits for less."""


def _lean_group(program: Program, step: Step, work: StepWork, largest: int, overhead: float, pack: float) -> int:
    """The units of one group: at most `largest` (what fits), and when groups of fewer units keep
    their worst call and commit within `overhead` of their work, the most units such that ``k``
    such groups fill `pack` cycles (a power cycle less the boot and half the margin), ``k`` up to
    :data:`PACKED_GROUPS` as the overhead allows (a conv group of a channel or more: whole
    channels)."""
    per, calls = work.cycles_per_unit, worst_call_cycles(program, step) + COMMIT_CYCLES
    if overhead <= 0 or per <= 0:
        return largest
    fewest = math.ceil(calls / (overhead * per))
    if fewest >= largest:
        return largest
    k = max(1, min(PACKED_GROUPS, int(pack // (fewest * per + calls))))
    n = max(fewest, int((pack / k - calls) // per))
    if step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[-2]
        if n >= oh:
            n = n // oh * oh
    return max(1, min(largest, n))


def _smallest_work(program: Program, step: Step) -> StepWork:
    """The finest work units of a step: one output column of a dense conv (column units), else the
    step's units."""
    if step.op == "conv":
        return step_work(program, step, cols=1)
    return step_work(program, step)


def _unit_need(program: Program, step: Step, work: StepWork) -> float:
    """Cycles one unit of `work` needs in a power cycle: its call, the commit and the boot."""
    return work.cycles_per_unit + worst_call_cycles(program, step) + COMMIT_CYCLES + STEP_CYCLES + BOOT_CYCLES


def smallest_need(program: Program) -> float:
    """Cycles the largest piece of work that cannot be split further needs in one power cycle:
    the finest unit of the costliest step (with its call, commit and the boot), one input chunk,
    the output copy."""
    need = INPUT_CHUNK * COPY_CYCLES_PER_ELEMENT + COMMIT_CYCLES + RUN_CYCLES + BOOT_CYCLES
    need = max(need, output_size(program) * COPY_CYCLES_PER_ELEMENT + RUN_CYCLES + BOOT_CYCLES)
    for step in program.steps:
        if step.op in ON_DEMAND_OPS:      # the gNet head runs on demand, outside the commit sequence
            continue
        need = max(need, _unit_need(program, step, _smallest_work(program, step)))
    return need


def _column_units(program: Program, step: Step, room: float) -> int:
    """The columns of a dense conv's column unit: ``ceil(OW / nc)`` for the fewest ranges ``nc``
    whose widest range (with its call) fits `room`; 0 when not even one column fits."""
    ow = program.buffers[step.outputs[0]].shape[-1]
    call = op_cost(program, step).call       # a column range runs no border column (cost.call_cycles)
    for nc in range(2, ow + 1):
        cols = -(-ow // nc)
        if -(-ow // cols) != nc:          # the same width as a smaller nc (no narrower range)
            continue
        if step_work(program, step, cols=cols).cycles_per_unit + call <= room:
            return cols
    return 0


def needs_column_units(program: Program, step: Step, budget: int, margin: float = TileOptions.margin) -> bool:
    """Whether the tile pass gives `step` column units under `budget` cycles per power cycle: a
    dense conv whose output row (with its call) does not fit what one group may hold. plan-memory,
    which runs first, counts their kernel (fx_conv_col_units) in the code it places in lower FRAM."""
    if step.op != "conv" or budget <= 0:
        return False
    if col_split(program, step):
        return True
    room = budget * (1.0 - margin) - BOOT_CYCLES - COMMIT_CYCLES - STEP_CYCLES
    probe = replace(step, tile=None)
    work = step_work(program, probe)
    return _largest_group(program, probe, work.units, work.cycles_per_unit, room) < 1


def _unit_text(program: Program, step: Step, work: StepWork) -> str:
    """What one unit of `work` is, for a BudgetError: the op's unit and its work."""
    out = program.buffers[step.outputs[0]]
    op = step.op
    if op == "conv":
        return f"one output column of one channel ({work.macs_per_unit} MACs), the finest column unit"
    if op == "conv_sparse":
        return (f"one output row of one channel ({out.shape[-1]} outputs, {work.macs_per_unit} stored-weight "
                f"MACs; sparse rows are not split into columns)")
    if op in ("fc", "fc_sparse", "gnet_exit"):
        return f"one output ({work.macs_per_unit} MACs over its input row of {program.buffers[step.inputs[0]].size})"
    if op in ("maxpool", "avgpool"):
        return f"one channel ({out.shape[-2]}x{out.shape[-1]} windows, {work.macs_per_unit} taps)"
    if op == "matmul":
        return f"one output row ({out.shape[-1]} outputs, {work.macs_per_unit} MACs)"
    if op in ("layernorm", "softmax"):
        return f"one row of {out.shape[-1]} elements"
    return f"its smallest tile (one work unit, {work.macs_per_unit} MACs)"


_UNIT_HINTS = {
    "conv_sparse": "storing this layer dense (lower{sparse=never}), whose rows split into column units",
    "fc": "a shorter input row (split the layer: separate, or a smaller K)",
    "fc_sparse": "a shorter input row (split the layer: separate, or a smaller K)",
    "maxpool": "a smaller feature map per channel",
    "avgpool": "a smaller feature map per channel",
    "matmul": "shorter rows",
}


def _budget_error(program: Program, what: str, op: str, need: float, budget: int, margin: float,
                  usable: float, detail: str, hint_tail: str) -> BudgetError:
    enough = math.ceil(smallest_need(program) / (1 - margin))
    return BudgetError(
        f"layer '{what}' ({op}) cannot fit one power cycle: {detail} needs {need:.0f} cycles with its "
        f"commit and the boot, but the budget is {budget} cycles with a {margin:.0%} margin "
        f"({usable + BOOT_CYCLES:.0f} usable)",
        location=Location(pass_name="tile", node=what, op=op),
        hint=f"a budget of at least {enough} cycles, which fits every layer of the model (a larger "
             f"capacitor or lower active power), or {hint_tail}")


@register
class Tile(Pass):
    """Choose tile shapes and commit groups that fit one power cycle (intermittent execution)."""

    name = "tile"
    options_type = TileOptions
    level = "lir"
    ensures = frozenset({"tiled"})

    def run(self, program: Program) -> PassResult[Program]:
        budget = int(self.options.budget or self.context.extra.get("cycles_per_power_cycle", 0) or 0)
        margin = self.options.margin
        steps: list[dict[str, Any]] = []
        total = 0.0
        commits = 0
        if budget <= 0:
            for step in program.steps:
                if step.op in ON_DEMAND_OPS:
                    continue
                work = step_work(program, step)
                total += work.units * work.cycles_per_unit
                steps.append({"step": step.name, "op": step.op, "units": work.units, "tile": None,
                              "per_commit": None, "group_cycles": round(work.units * work.cycles_per_unit)})
            return PassResult(program, False, {"budget": 0, "steps": steps,
                                               "predicted_cycles": round(total)})
        # cycles of one power cycle left for work between two commits, after the boot
        usable = budget * (1.0 - margin) - BOOT_CYCLES
        changed = False
        # progress step 0: the input copy, in chunks of INPUT_CHUNK elements
        chunk_cycles = INPUT_CHUNK * COPY_CYCLES_PER_ELEMENT
        room = usable - COMMIT_CYCLES - RUN_CYCLES
        in_per_commit = int(room // chunk_cycles) if room > 0 else 0
        if in_per_commit < 1:
            need = chunk_cycles + COMMIT_CYCLES + RUN_CYCLES + BOOT_CYCLES
            raise _budget_error(program, "input copy", "copy", need, budget, margin, usable,
                                f"one chunk of {INPUT_CHUNK} input elements", "a smaller input")
        in_per_commit = min(in_per_commit, input_chunks(program))
        out_need = output_size(program) * COPY_CYCLES_PER_ELEMENT + RUN_CYCLES
        if out_need > usable:
            raise _budget_error(program, "output copy", "copy", out_need + BOOT_CYCLES, budget, margin, usable,
                                f"copying the {output_size(program)} output elements", "fewer outputs")
        for step in program.steps:
            if step.op in ON_DEMAND_OPS:   # the gNet head: run on demand, not tiled
                continue
            room = usable - COMMIT_CYCLES - STEP_CYCLES
            probe = replace(step, tile=None)      # row units first (whatever an earlier run chose)
            work = step_work(program, probe)
            group = _largest_group(program, probe, work.units, work.cycles_per_unit, room)
            cols = _column_units(program, probe, room) if group < 1 and step.op == "conv" else 0
            if cols:                       # one row does not fit: column units, one range a tile
                probe = replace(step, tile=TilePlan([1, 1, cols]))
                work = step_work(program, probe)
                call = worst_call_cycles(program, probe)
                group = min(work.units, int(room // (work.cycles_per_unit + call)))
                tile_units, per_commit = 1, group
                dims = [1, 1, cols]
            elif group < 1:
                smallest = _smallest_work(program, probe)
                raise _budget_error(program, step.name, step.op, _unit_need(program, probe, smallest), budget,
                                    margin, usable, _unit_text(program, probe, smallest),
                                    _UNIT_HINTS.get(step.op, "a smaller layer"))
            else:
                group = _lean_group(program, probe, work, group, self.options.overhead,
                                    budget * (1.0 - margin / 2) - BOOT_CYCLES - STEP_CYCLES)
                tile_units = _natural_tile(program, step, group)
                per_commit = max(1, group // tile_units)
                group = tile_units * per_commit
                whole = _whole_channels(program, step, tile_units)
                call = op_cost(program, step).call if whole else worst_call_cycles(program, probe)
                dims = _tile_dims(program, step, tile_units)
            plan = TilePlan(dims, per_commit)
            if step.tile != plan:
                step.tile = plan
                changed = True
            n_groups = math.ceil(work.units / group)
            group_cycles = group * work.cycles_per_unit + per_commit * call + COMMIT_CYCLES
            total += work.units * work.cycles_per_unit + n_groups * COMMIT_CYCLES
            commits += n_groups
            steps.append({"step": step.name, "op": step.op, "units": work.units, "tile": plan.dims,
                          "tile_units": tile_units, "per_commit": per_commit, "groups": n_groups,
                          "group_cycles": round(group_cycles)})
        iplan = IntermittentPlan(budget, margin, in_per_commit)
        meta = iplan.to_meta()
        if program.meta.get(META_KEY) != meta:
            program.meta[META_KEY] = meta
            changed = True
        pieces = commit_pieces(program, iplan)
        run = simulate_power_cycles(pieces, budget, BOOT_CYCLES)
        continuous = simulate_power_cycles(pieces, 0, BOOT_CYCLES)
        commits += sum(1 for p in pieces if p.step == 0)
        stats: dict[str, Any] = {"budget": budget, "margin": margin, "steps": steps,
                                 "input_copy": {"chunks": input_chunks(program), "per_commit": in_per_commit},
                                 "commits": commits, "predicted_cycles": round(run.total_cycles),
                                 "predicted_power_failures": run.power_failures,
                                 "predicted_power_cycles": run.power_failures + 1,
                                 "predicted_lost_cycles": round(run.lost_cycles),
                                 "predicted_continuous_cycles": round(continuous.total_cycles),
                                 "max_group_cycles": round(max(p.cycles for p in pieces)),
                                 "progress_fram_bytes": PROGRESS_FRAM_BYTES}
        power = self.context.extra.get("power")
        if power is not None:
            seconds = run.total_cycles / power.freq_hz
            if power.recharge_s is not None:
                seconds += run.power_failures * power.recharge_s
            stats["predicted_seconds"] = round(seconds, 6)
            stats["freq_hz"] = power.freq_hz
            stats["recharge_s"] = power.recharge_s
        self.context.extra["tile"] = stats
        return PassResult(program, changed, stats)

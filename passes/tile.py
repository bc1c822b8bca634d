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
groups mean fewer commits ("hyper-tile batching"); the pass takes the largest group that fits.

Without a budget (continuous power) the pass leaves steps untiled: the runtime then commits only at
step ends. A step whose single unit plus a commit cannot fit is a BudgetError naming the layer, the
budget and the smallest need.

Stats: per step the tile shape, tiles per commit, predicted cycles per group, FRAM bytes for progress;
and predicted end-to-end cycles including commits and re-boots (and seconds, with recharge time, when a
power supply with a harvest power is known).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from transpiler.errors import BudgetError, Location
from transpiler.lir.cost import BOOT_CYCLES, COMMIT_CYCLES, step_work
from transpiler.lir.ir import Program, Step, TilePlan
from transpiler.pass_infra import Pass, PassResult, register

PROGRESS_FRAM_BYTES = 16     # two records of four uint16_t


@dataclass(frozen=True)
class TileOptions:
    """budget: cycles per power cycle (0 = continuous power; the CLI fills it from --power or
    --cycles-per-power-cycle); margin: fraction of the budget kept in reserve."""

    budget: int = 0
    margin: float = 0.2


def _tile_dims(program: Program, step: Step, tile_units: int) -> list[int]:
    out = program.buffers[step.outputs[0]]
    if step.op in ("conv", "conv_sparse"):
        _, oh, ow = out.shape[-3:]
        if tile_units >= oh:
            return [tile_units // oh, oh, ow]
        return [1, tile_units, ow]
    if step.op in ("add", "act", "concat"):
        return [tile_units * 32]
    return [tile_units]


def _natural_tile(program: Program, step: Step, group_units: int) -> int:
    """The tile (units per kernel call) for a group of `group_units`: whole channels for conv when
    the group covers at least one channel, else the group itself."""
    if step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[-2]
        if group_units >= oh:
            return oh
    return group_units


@register
class Tile(Pass):
    """Choose tile shapes and commit groups that fit one power cycle (intermittent execution)."""

    name = "tile"
    options_type = TileOptions
    level = "lir"
    ensures = frozenset({"tiled"})

    def run(self, program: Program) -> PassResult[Program]:
        budget = int(self.options.budget or self.context.extra.get("cycles_per_power_cycle", 0) or 0)
        steps: list[dict[str, Any]] = []
        total = 0.0
        commits = 0
        if budget <= 0:
            for step in program.steps:
                work = step_work(program, step)
                total += work.units * work.cycles_per_unit
                steps.append({"step": step.name, "op": step.op, "units": work.units, "tile": None,
                              "per_commit": None, "group_cycles": round(work.units * work.cycles_per_unit)})
            return PassResult(program, False, {"budget": 0, "steps": steps,
                                               "predicted_cycles": round(total)})
        usable = budget * (1.0 - self.options.margin) - BOOT_CYCLES
        changed = False
        for step in program.steps:
            work = step_work(program, step)
            group = int((usable - COMMIT_CYCLES) // work.cycles_per_unit) if usable > COMMIT_CYCLES else 0
            if group < 1:
                need = work.cycles_per_unit + COMMIT_CYCLES + BOOT_CYCLES
                raise BudgetError(
                    f"layer '{step.name}' ({step.op}) cannot fit one power cycle: its smallest tile "
                    f"(one work unit, {work.macs_per_unit} MACs) needs {need:.0f} cycles with its commit "
                    f"and the boot, but the budget is {budget} cycles with a {self.options.margin:.0%} margin "
                    f"({usable:.0f} usable)",
                    location=Location(pass_name=self.name, node=step.name, op=step.op),
                    hint=f"a budget of at least {math.ceil(need / (1 - self.options.margin))} cycles "
                         f"(a larger capacitor or lower active power), or a smaller layer")
            group = min(group, work.units)
            tile_units = _natural_tile(program, step, group)
            per_commit = max(1, group // tile_units)
            group = tile_units * per_commit
            plan = TilePlan(_tile_dims(program, step, tile_units), per_commit)
            if step.tile != plan:
                step.tile = plan
                changed = True
            n_groups = math.ceil(work.units / group)
            group_cycles = group * work.cycles_per_unit + COMMIT_CYCLES
            total += work.units * work.cycles_per_unit + n_groups * COMMIT_CYCLES
            commits += n_groups
            steps.append({"step": step.name, "op": step.op, "units": work.units, "tile": plan.dims,
                          "per_commit": per_commit, "groups": n_groups,
                          "group_cycles": round(group_cycles)})
        power_cycles = math.ceil(total / max(usable, 1.0))
        predicted = total + power_cycles * BOOT_CYCLES
        stats: dict[str, Any] = {"budget": budget, "margin": self.options.margin, "steps": steps,
                                 "commits": commits, "predicted_cycles": round(predicted),
                                 "predicted_power_cycles": power_cycles,
                                 "progress_fram_bytes": PROGRESS_FRAM_BYTES}
        power = self.context.extra.get("power")
        if power is not None:
            seconds = predicted / power.freq_hz
            if power.recharge_s is not None:
                seconds += max(power_cycles - 1, 0) * power.recharge_s
            stats["predicted_seconds"] = round(seconds, 6)
        return PassResult(program, changed, stats)

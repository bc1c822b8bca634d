"""The compile command's intermittent-power flags: ``--power SPEC`` and ``--cycles-per-power-cycle N``.

    freeml-tx model.onnx -o build/ --data d.npz --power "cap=100uF,von=3.3V,voff=1.8V,active=1.5mW"
    freeml-tx model.onnx -o build/ --data d.npz --power "cap=47uF,von=3.3V,voff=1.8V,active=1.5mW,harvest=0.3mW"
    freeml-tx model.onnx -o build/ --data d.npz --cycles-per-power-cycle 50000

Either flag compiles for intermittent power: every activation goes to FRAM
(``plan-memory{persistent=true,budget=N}``; the budget tells it which convs get column units,
whose kernel is code in lower FRAM) and the `tile` pass runs after plan-memory with the budget
(``tile{budget=N}``): tiles and commit groups sized so that one group plus its commit and a boot
fit one power cycle, and the intermittent run loop in the generated C. ``--power`` derives the
budget from the capacitor, the voltage window and the active power (transpiler/power.py); with a
``harvest`` power the summary also gives the recharge time in the predicted latency.
``--cycles-per-power-cycle`` gives the same budget directly. :func:`with_power` edits the default
pipeline; :func:`apply_power` puts the budget and the supply into the pass context, so that a
``tile`` in an explicit ``--pipeline`` without a budget uses it too. The summary lines come from
:func:`power_summary` / :func:`format_power`.
"""

from __future__ import annotations

import argparse
from typing import Any

from transpiler.errors import InputError
from transpiler.power import PowerSupply, parse_power


def add_power_arguments(parser: argparse.ArgumentParser) -> None:
    """--power and --cycles-per-power-cycle."""
    parser.add_argument("--power", metavar="SPEC",
                        help="compile for intermittent power from this supply: "
                             "cap=100uF,von=3.3V,voff=1.8V,active=1.5mW[,freq=8MHz][,harvest=0.5mW] "
                             "(capacitor, turn-on and brown-out voltages, active power, clock, harvested power)")
    parser.add_argument("--cycles-per-power-cycle", type=int, metavar="N",
                        help="compile for intermittent power with N CPU cycles per power cycle "
                             "(the budget --power would derive)")


def power_budget(args: argparse.Namespace) -> tuple[int | None, PowerSupply | None]:
    """(cycles per power cycle, the supply) from the flags; (None, None) for continuous power.

    Raises:
        InputError: both flags, a non-positive N, or a supply too weak for any work.
        FreemlError: a malformed --power spec (transpiler.power.parse_power).
    """
    spec = getattr(args, "power", None)
    cycles = getattr(args, "cycles_per_power_cycle", None)
    if spec is not None and cycles is not None:
        raise InputError("--power and --cycles-per-power-cycle both give the budget",
                         hint="give one of them (--power derives the cycles from the supply)")
    if cycles is not None:
        if cycles <= 0:
            raise InputError(f"--cycles-per-power-cycle {cycles} is not a positive number of cycles")
        return cycles, None
    if spec is None:
        return None, None
    supply = parse_power(spec)
    budget = supply.cycles_per_power_cycle
    if budget < 1000:
        raise InputError(f"--power {spec!r} gives only {budget} cycles per power cycle",
                         hint="a larger capacitor, a wider voltage window or a lower active power; the "
                              "boot alone takes several hundred cycles")
    return budget, supply


def with_power(pipeline: str, args: argparse.Namespace) -> str:
    """The default pipeline with ``persistent=true`` for plan-memory and ``tile{budget=N}`` after it."""
    from transpiler.pipeline import format_pipeline, parse_pipeline

    budget, _supply = power_budget(args)
    if budget is None:
        return pipeline
    specs = list(parse_pipeline(pipeline))
    out = []
    for spec in specs:
        if spec.name == "plan-memory":
            spec = type(spec)(spec.name, {**dict(spec.options), "persistent": True, "budget": budget})
            out.append(spec)
            out.append(type(spec)("tile", {"budget": budget}))
        elif spec.name != "tile":
            out.append(spec)
    return format_pipeline(out)


def apply_power(context: Any, args: argparse.Namespace) -> None:
    """Put the budget and the supply where the `tile` pass looks (``context.extra``)."""
    budget, supply = power_budget(args)
    if budget is not None:
        context.extra["cycles_per_power_cycle"] = budget
    if supply is not None:
        context.extra["power"] = supply


def power_summary(context: Any) -> dict[str, Any] | None:
    """The tile pass's figures for the compile summary (None for continuous power)."""
    stats = context.extra.get("tile")
    if not stats or not stats.get("budget"):
        return None
    return {k: stats.get(k) for k in ("budget", "margin", "steps", "input_copy", "commits", "predicted_cycles",
                                      "predicted_power_failures", "predicted_lost_cycles",
                                      "predicted_continuous_cycles", "max_group_cycles", "progress_fram_bytes",
                                      "predicted_seconds", "freq_hz", "recharge_s")}


def format_power(s: dict[str, Any]) -> list[str]:
    """The summary lines: the budget, per layer its tiles and groups, the predicted latency."""
    lines = [f"  intermittent {s['budget']:,} cycles per power cycle ({s['margin']:.0%} margin), "
             f"{s['commits']} commits, progress {s['progress_fram_bytes']} B FRAM"]
    lines.append(f"    {'layer':26s} {'op':8s} {'units':>6} {'tile':>14} {'tiles/commit':>12} {'groups':>6} "
                 f"{'cycles/group':>12}")
    ic = s.get("input_copy") or {}
    if ic:
        lines.append(f"    {'(input copy)':26s} {'copy':8s} {ic['chunks']:>6} {'32 elements':>14} "
                     f"{ic['per_commit']:>12} {-(-ic['chunks'] // ic['per_commit']):>6} {'':>12}")
    for st in s["steps"]:
        tile = "x".join(str(d) for d in st["tile"]) if st.get("tile") else "-"
        lines.append(f"    {st['step'][:26]:26s} {st['op']:8s} {st['units']:>6} {tile:>14} {st['per_commit']:>12} "
                     f"{st['groups']:>6} {st['group_cycles']:>12,}")
    cont = s["predicted_continuous_cycles"]
    pred = s["predicted_cycles"]
    line = (f"    predicted: {pred:,} cycles with {s['predicted_power_failures']} power failures "
            f"({(pred - cont) / max(cont, 1):+.1%} vs {cont:,} uninterrupted; lost work "
            f"{s['predicted_lost_cycles']:,} cycles)")
    lines.append(line)
    if s.get("predicted_seconds") is not None:
        freq = s.get("freq_hz") or 0
        rech = s.get("recharge_s")
        lines.append(f"    latency:   {s['predicted_seconds']:.3f} s at {freq / 1e6:g} MHz"
                     + (f", recharge {rech * 1e3:.1f} ms per power failure included" if rech else
                        " (compute only: give harvest=... in --power for the recharge time)"))
    return lines


__all__ = ["add_power_arguments", "power_budget", "with_power", "apply_power", "power_summary", "format_power"]

"""``freeml-tx report DIR``: what a generated package costs on the MSP430FR5994, measured.

    freeml-tx report build/                       # sizes, per-layer cycles, planner agreement
    freeml-tx report build/ --input digit.npy     # cycles of a real sample (default: a random one)
    freeml-tx report build/ --no-run --json       # sizes only, as JSON

Needs the msp430-elf toolchain (MSP430_GCC_ROOT, PATH, /opt/msp430-elf). It builds the package's
simulator program twice (transpiler/simpackage.py):

* ``make msp430 MSP430_RUN_COUNTERS=1`` -> ``<m>.elf`` + ``<m>.map``: the model's code exactly as in a
  plain build; main_sim.c reads the simulator's counters around the inference (the ``run`` line:
  cycles and instructions of one whole inference). Its sections give the memory figures.
* ``make msp430 MSP430_COUNTERS=1`` -> ``<m>_steps.elf``: the step hooks print cycles and
  instructions per step (``step i cycles N`` lines): the per-layer table. The hooks themselves run
  between the steps, so the steps add up to a little less than the run line; the difference is the
  run loop, the input/output copies and the hooks.

Memory (transpiler/msp430_size.py): the ELF's sections (``objdump -h``: ``.text``, ``.rodata``,
``.upper.rodata``, ``.persistent``, ``.data``, ``.bss``, ...) with the memory each lives in, the FRAM
and SRAM totals and what is left for the stack; then the linker map splits every section into the
model's bytes and the simulator harness's (crt0, CIO, main_sim.c, the counters, sim_input.c, the
vectors), by kind. Only the model's columns are compared with the planner (manifest.json: ``sizes``
and ``plan``): code vs plan-memory's code estimate, constants vs the constants, descriptors and
tables vs its rodata estimate, ``.persistent`` vs the FRAM activation arena, SRAM vs the SRAM arena;
the FRAM and SRAM totals must agree within 5 % (or 64 bytes, for programs of a few hundred bytes;
``--strict`` makes a miss an error). The stack is not a section: the SRAM left after the static data
is shown next to the planner's stack reserve. When the runtime's sources differ from those the code
table was measured from (passes/msp430_code_sizes.py), the report says so: regenerate it with
``python tools/msp430_code_sizes.py --write``.

Per layer: cycles, instructions, MACs, cycles and instructions per MAC, share of the inference; and
per kernel (conv, fc, ...) the same summed over its layers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from transpiler.errors import BudgetError

#: Clock rates for the time column (the FR5994 runs up to 16 MHz; 8 MHz needs no FRAM wait states).
CLOCKS_MHZ = (8, 16)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report", help="FRAM/SRAM by section, per-layer cycles and the planner's accuracy on the MSP430",
        description="Build DIR for the MSP430FR5994 simulator, measure the ELF's sections and per-layer "
                    "cycles, and compare the memory with the planner's estimate (manifest.json).",
        epilog="example: freeml-tx report build/ --input digit.npy")
    parser.add_argument("dir", metavar="DIR", help="a folder written by `freeml-tx MODEL.onnx -o DIR`")
    parser.add_argument("--input", "-i", metavar="X.npy",
                        help="float input for the cycle counts (.npy/.npz, first sample); default: a "
                             "fixed pseudo-random input with values in [-1, 1]")
    parser.add_argument("--no-run", action="store_true", help="sizes only: build, do not simulate")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 2) when the planner's FRAM or SRAM misses the ELF's by more than 5 %%")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def default_input(man: dict[str, Any], seed: int = 0) -> np.ndarray:
    """One int16 input: uniform real values in [-1, 1] in each port's Q format, token ids uniform in
    [0, vocab) (deterministic)."""
    from transpiler.lir.qio import quantize_array

    rng = np.random.default_rng(seed)
    parts = [rng.integers(0, int(p["vocab"]), size=int(p["size"])) if p.get("vocab") is not None
             else quantize_array(rng.uniform(-1.0, 1.0, size=int(p["size"])), int(p["q"])) for p in man["inputs"]]
    return np.concatenate(parts).astype(np.int16).reshape(1, -1)


def _first_sample(man: dict[str, Any], path: str) -> np.ndarray:
    from transpiler import hostrun
    from transpiler.cli.run_cmd import load_inputs

    x = hostrun.quantize(man, load_inputs(path, man))
    return x[:1]


def layer_rows(man: dict[str, Any], steps: list[Any]) -> list[dict[str, Any]]:
    """Per step: op, name, MACs, cycles, instructions and the per-MAC figures."""
    rows = []
    total = sum(s.cycles for s in steps) or 1
    for st, c in zip(man["steps"], steps):
        macs = int(st.get("macs", 0))
        rows.append({"index": st["index"], "op": st["op"], "name": st["name"], "macs": macs,
                     "cycles": c.cycles, "instructions": c.instructions,
                     "cycles_per_mac": round(c.cycles / macs, 3) if macs else None,
                     "instructions_per_mac": round(c.instructions / macs, 3) if macs else None,
                     "share": round(c.cycles / total, 4)})
    return rows


def kernel_rows(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per op kind: layers, MACs, cycles, instructions and the per-MAC figures over all its layers."""
    kinds: dict[str, dict[str, Any]] = {}
    for r in layers:
        k = kinds.setdefault(r["op"], {"op": r["op"], "layers": 0, "macs": 0, "cycles": 0, "instructions": 0})
        k["layers"] += 1
        k["macs"] += r["macs"]
        k["cycles"] += r["cycles"]
        k["instructions"] += r["instructions"]
    for k in kinds.values():
        k["cycles_per_mac"] = round(k["cycles"] / k["macs"], 3) if k["macs"] else None
        k["instructions_per_mac"] = round(k["instructions"] / k["macs"], 3) if k["macs"] else None
    return sorted(kinds.values(), key=lambda k: -k["cycles"])


def make_report(out_dir: str | Path, *, x: np.ndarray | None = None, run: bool = True,
                input_note: str | None = None) -> dict[str, Any]:
    """Build, measure and (unless ``run`` is False) simulate; returns the report as a dict.

    ``x``: int16 ``[1, in_size]`` for the counts (default :func:`default_input`).

    Raises:
        ToolchainError: no toolchain, a failed build or simulation; InputError: not a package.
    """
    from transpiler import hostrun
    from transpiler.msp430_size import compare_with_plan, fits_part, measure_build, planner_figures
    from transpiler.sim import build_elf
    from transpiler.simpackage import make_vars_for, run_package
    from transpiler.toolchain import find_msp430_toolchain

    d = Path(out_dir)
    man = hostrun.load_manifest(d)
    tc = find_msp430_toolchain(require_sim=run)
    if x is None:
        x = default_input(man)
        input_note = input_note or "pseudo-random input (seed 0), real values in [-1, 1]"
    report: dict[str, Any] = {"dir": str(d), "model": man.get("model"), "c_name": man["c_name"],
                              "target": man.get("target"), "input": input_note or "given"}
    whole: Any = None
    if run:
        whole = run_package(d, x, counters="run", toolchain=tc)
    else:
        from transpiler.sim import write_sim_input

        write_sim_input(d / "sim_input.c", [[int(v) for v in x[0]]])
        mvars, _elf = make_vars_for("run", str(man["c_name"]))
        build_elf(d, toolchain=tc, make_vars=mvars)
    meas = measure_build(d, toolchain=tc)
    plan = planner_figures(man)
    rows = compare_with_plan(meas, man)
    fits, problems = fits_part(meas, plan["stack_reserve"])
    report["memory"] = {
        **meas.to_json(),
        "memory_model": "large" if meas.hifram_total else "small",
        "model_fram": meas.owner_fram("model"), "model_sram": meas.owner_sram("model"),
        "harness_fram": meas.owner_fram("harness"), "harness_sram": meas.owner_sram("harness"),
        "stack_reserve": plan["stack_reserve"],
        "fits_fr5994": fits, "problems": problems,
    }
    report["planner"] = [{"category": r.category, "elf": r.elf, "plan": r.plan, "difference": r.difference,
                          "relative": round(r.relative, 4), "agrees": r.agrees, "total": r.total, "note": r.note}
                         for r in rows]
    report["agrees"] = all(r.agrees for r in rows if r.total)
    from passes.plan_memory import code_table_stale

    report["code_table_stale"] = code_table_stale()
    if run:
        steps = run_package(d, x, counters="steps", toolchain=tc)
        layers = layer_rows(man, steps.steps[0])
        report["inference"] = {"cycles": whole.cycles[0], "instructions": whole.instructions[0],
                               "steps_cycles": sum(r["cycles"] for r in layers),
                               "steps_instructions": sum(r["instructions"] for r in layers),
                               "macs": sum(r["macs"] for r in layers),
                               "ms": {f"{mhz}MHz": round(whole.cycles[0] / (mhz * 1000.0), 2) for mhz in CLOCKS_MHZ},
                               "whole_program_cycles": whole.total_cycles,
                               "whole_program_instructions": whole.total_instructions}
        report["layers"] = layers
        report["kernels"] = kernel_rows(layers)
        report["outputs"] = whole.outputs[0].tolist()
    return report


def _b(n: int) -> str:
    return f"{n:,} B" if n < 10 * 1024 else f"{n:,} B ({n / 1024:.1f} KiB)"


def format_report(r: dict[str, Any]) -> str:
    """The text form of :func:`make_report`'s dict."""
    m = r["memory"]
    out = [f"report {r['dir']}  (fx_{r['c_name']}_run, {m['memory_model']} memory model, "
           f"target {r.get('target') or 'host'})", "", "ELF sections (msp430-elf-objdump -h)"]
    out.append(f"  {'section':20s} {'memory':8s} {'address':>9} {'bytes':>9}")
    for s in m["sections"]:
        load = f"  (load image at 0x{s['load_address']:05x} in FRAM)" if s["load_address"] is not None else ""
        out.append(f"  {s['name']:20s} {s['region']:8s} {'0x%05x' % s['address']:>9} {s['size']:>9,}{load}")
    out.append(f"  FRAM {_b(m['fram_total'])} of 256 KiB (lower {_b(m['lower_fram'])} of 48 KiB, HIFRAM "
               f"{_b(m['hifram'])}); SRAM {_b(m['sram_total'])} static of 8 KiB, {_b(m['sram_free'])} left "
               f"for the stack (the planner reserved {_b(m['stack_reserve'])})")
    out.append(f"  model {_b(m['model_fram'])} FRAM + {_b(m['model_sram'])} SRAM; simulator harness (crt0, CIO, "
               f"main_sim, sim_input, vectors) {_b(m['harness_fram'])} FRAM + {_b(m['harness_sram'])} SRAM")
    out.append("  fits the MSP430FR5994 (8 KiB SRAM with the stack reserve, 256 KiB FRAM): "
               + ("yes" if m["fits_fr5994"] else "NO: " + "; ".join(m["problems"])))
    out += ["", "planner (manifest.json) vs ELF, the model's bytes only (like with like)"]
    out.append(f"  {'category':52s} {'ELF':>9} {'planner':>9} {'diff':>7}")
    for p in r["planner"]:
        mark = ("ok" if p["agrees"] else "MISS > 5%") if p["total"] else ""
        rel = f"{100 * p['relative']:.1f}%" if p["relative"] != float("inf") else "inf"
        out.append(f"  {p['category'][:52]:52s} {p['elf']:>9,} {p['plan']:>9,} {rel:>7}  {mark}")
    if r.get("code_table_stale"):
        out.append("  note: the runtime's sources changed since passes/msp430_code_sizes.py was measured; "
                   "run python tools/msp430_code_sizes.py --write")
    if "inference" in r:
        inf = r["inference"]
        out += ["", f"inference ({r['input']})"]
        out.append(f"  {inf['cycles']:,} cycles, {inf['instructions']:,} instructions ("
                   + ", ".join(f"{v} ms at {k}" for k, v in inf["ms"].items()) + ")")
        if inf["macs"]:
            out.append(f"  {inf['macs']:,} MACs: {inf['cycles'] / inf['macs']:.2f} cycles, "
                       f"{inf['instructions'] / inf['macs']:.2f} instructions per MAC over the whole inference")
        out.append(f"  steps add up to {inf['steps_cycles']:,} cycles; run loop, copies and step hooks "
                   f"{inf['cycles'] - inf['steps_cycles']:,}")
        out += ["", "per layer (MSP430_COUNTERS=1 build)"]
        out.append(f"  {'#':>3} {'op':9s} {'name':24s} {'MACs':>9} {'cycles':>11} {'instr':>11} "
                   f"{'cyc/MAC':>8} {'ins/MAC':>8} {'share':>6}")
        for ly in r["layers"]:
            cpm = f"{ly['cycles_per_mac']:.2f}" if ly["cycles_per_mac"] is not None else "-"
            ipm = f"{ly['instructions_per_mac']:.2f}" if ly["instructions_per_mac"] is not None else "-"
            out.append(f"  {ly['index']:>3} {ly['op']:9s} {ly['name'][:24]:24s} {ly['macs']:>9,} {ly['cycles']:>11,} "
                       f"{ly['instructions']:>11,} {cpm:>8} {ipm:>8} {100 * ly['share']:>5.1f}%")
        out += ["", "per kernel"]
        for k in r["kernels"]:
            per = (f": {k['cycles_per_mac']:.2f} cycles, {k['instructions_per_mac']:.2f} instructions per MAC"
                   if k["macs"] else "")
            out.append(f"  {k['op']:9s} {k['layers']} layer(s), {k['cycles']:,} cycles, "
                       f"{k['instructions']:,} instructions{per}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from transpiler import hostrun

    man = hostrun.load_manifest(args.dir)
    x = _first_sample(man, args.input) if args.input else None
    note = f"first sample of {args.input}" if args.input else None
    report = make_report(args.dir, x=x, run=not args.no_run, input_note=note)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=float))
    else:
        print(format_report(report))
    if args.strict and not report["agrees"]:
        missed = [p for p in report["planner"] if p["total"] and not p["agrees"]]
        raise BudgetError("the planner's memory estimate misses the ELF by more than 5 %"
                          + (" (the code table is stale)" if report.get("code_table_stale") else ""),
                          details=[f"{p['category']}: ELF {p['elf']} B, planner {p['plan']} B" for p in missed],
                          hint="regenerate the runtime table (python tools/msp430_code_sizes.py --write) "
                               "or adjust GENERATED_CODE in passes/plan_memory.py")
    return 0


__all__ = ["add_parser", "run", "make_report", "format_report", "default_input", "layer_rows", "kernel_rows"]

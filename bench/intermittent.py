"""Intermittent execution on the MSP430 simulator: commit overhead, re-executed work, prediction.

    python bench/intermittent.py                    # every dense sample at 50,000 cycles per power cycle
    python bench/intermittent.py --budget 30000 --samples lenet5_mnist

Per sample (one input, msp430.mk's -O2 build, the patched msp430-elf-run):

1. Commit overhead without failures: fx_<m>_run's cycles (main_sim.c's run counters,
   MSP430_RUN_COUNTERS=1) of the package compiled for intermittent power at the budget, against the
   same model compiled for continuous power with the same placement (every activation in FRAM,
   plan-memory{persistent=true}) and with the default placement (SRAM where it fits). Target: at
   most 10 % extra cycles at a 50,000-cycle budget. FRAM writes: the host driver's count of FX_STORE
   calls of one inference (intermittent) and the same minus the commits' five stores each
   (continuous, same placement: the other stores are the same).
2. Re-executed work per failure: the simulator's total cycles with a failure every `budget` cycles
   and with random gaps in [budget, 2 * budget], minus the uninterrupted run's, per failure. Target:
   at most one commit group (the tile pass's largest predicted group).
3. Prediction: the tile pass's predicted end-to-end cycles under a failure every `budget` cycles
   (boots, lost partial groups and re-executions included) against the simulator's, after removing
   what main_sim.c does besides the inference (the output lines, once). Target: within 10 %.

Prints one table per measurement and the targets met or not. Never part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pipeline as P  # noqa: E402

from transpiler import hostrun, sim  # noqa: E402
from transpiler.intermittent import commit_pieces, plan_of  # noqa: E402
from transpiler.lir.cost import BOOT_CYCLES  # noqa: E402
from transpiler.powerfail import build_host_pf, run_host_pf  # noqa: E402

OVERHEAD_TARGET = 0.10
PREDICTION_TARGET = 0.10


def run_cycles(c: P.Compiled, x: list[int]) -> tuple[int, int]:
    """(fx_<m>_run cycles, whole simulation cycles) of one input without failures."""
    r = sim.run_model(c.out_dir, c.c_name, [x], make_vars={"MSP430_RUN_COUNTERS": "1"}).check()
    runs = r.output().runs
    if 0 not in runs:
        raise SystemExit("no 'run' line: this msp430.mk lacks MSP430_RUN_COUNTERS")
    return runs[0].cycles, r.cycles


def sim_total(c: P.Compiled, x: list[int], spec: str | None) -> tuple[int, int]:
    """(total cycles, power failures) of a plain build under `spec`."""
    r = sim.run_model(c.out_dir, c.c_name, [x], power_fail=spec, max_failures=20000).check()
    return r.cycles, r.power_failures


def measure(name: str, budget: int, work: Path) -> dict[str, Any]:
    model, ds = P.load_sample(name)
    pf = P.compile_model(model, ds, work / f"{name}_pf", budget, name=name)
    cont = P.compile_model(model, ds, work / f"{name}_cont", None, name=name)
    dflt = P.compile_model(model, ds, work / f"{name}_sram", None, persistent=False, name=name)
    xq = P.quantised(pf, ds, 1)
    x = [int(v) for v in xq[0]]
    run_pf, total_pf = run_cycles(pf, x)
    run_cont, _ = run_cycles(cont, x)
    run_dflt, _ = run_cycles(dflt, x)
    # FRAM writes (host driver, FX_STORE calls of one inference)
    man = hostrun.load_manifest(pf.out_dir)
    exe = build_host_pf(pf.out_dir, cc="gcc")
    host = run_host_pf(exe, man, xq).check()
    stores_pf = host.total["baseline_stores"]
    plan = plan_of(pf.program)
    assert plan is not None and pf.tile_stats is not None
    commits = int(pf.tile_stats["commits"])
    stores_cont = stores_pf - 5 * commits
    # failures
    plain_total, _ = sim_total(pf, x, None)
    every_total, every_fail = sim_total(pf, x, f"every:{budget}")
    rand_total, rand_fail = sim_total(pf, x, f"random:5:{budget}:{2 * budget}")
    pieces = commit_pieces(pf.program, plan)
    max_group = max(p.cycles for p in pieces)
    mean_group = sum(p.cycles for p in pieces) / len(pieces)
    # prediction: the simulation minus the harness's own work (output lines), measured without failures
    harness = total_pf - run_pf - BOOT_CYCLES
    predicted = float(pf.tile_stats["predicted_cycles"])
    return {
        "name": name, "steps": len(pf.program.steps), "commits": commits,
        "run_pf": run_pf, "run_cont": run_cont, "run_dflt": run_dflt,
        "overhead": run_pf / run_cont - 1.0, "overhead_dflt": run_pf / run_dflt - 1.0,
        "stores_pf": stores_pf, "stores_cont": stores_cont,
        "every_fail": every_fail, "every_re": (every_total - plain_total) / every_fail if every_fail else 0.0,
        "rand_fail": rand_fail, "rand_re": (rand_total - plain_total) / rand_fail if rand_fail else 0.0,
        "max_group": max_group, "mean_group": mean_group,
        "predicted": predicted, "simulated": every_total - harness,
        "predicted_cont": float(pf.tile_stats["predicted_continuous_cycles"]), "run_plain": run_pf,
        "predicted_failures": int(pf.tile_stats["predicted_power_failures"]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=50000, help="cycles per power cycle (default 50000)")
    ap.add_argument("--samples", nargs="*", default=list(P.SAMPLES), help="sample names")
    ap.add_argument("--keep", metavar="DIR", help="build in DIR (kept)")
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="fx-pf-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = [measure(n, args.budget, work) for n in args.samples]
    b = args.budget
    print(f"budget {b:,} cycles per power cycle, 20% margin; one input per sample\n")
    print("1. commit overhead without failures (fx_<m>_run cycles)")
    print(f"   {'sample':20s} {'commits':>7} {'intermittent':>12} {'cont. FRAM':>11} {'extra':>7} "
          f"{'cont. SRAM':>11} {'extra':>7}   {'FRAM writes':>11} {'cont.':>7} {'extra':>7}")
    for r in rows:
        print(f"   {r['name']:20s} {r['commits']:>7} {r['run_pf']:>12,} {r['run_cont']:>11,} {r['overhead']:>+7.1%} "
              f"{r['run_dflt']:>11,} {r['overhead_dflt']:>+7.1%}   {r['stores_pf']:>11,} {r['stores_cont']:>7,} "
              f"{r['stores_pf'] / r['stores_cont'] - 1:>+7.1%}")
    worst = max(r["overhead"] for r in rows)
    print(f"   target: at most {OVERHEAD_TARGET:.0%} extra cycles vs continuous (same placement): "
          f"{'met' if worst <= OVERHEAD_TARGET else 'NOT met'} (worst {worst:+.1%})\n")
    print("2. re-executed cycles per power failure (simulator total - uninterrupted, per failure)")
    print(f"   {'sample':20s} {'every:B fails':>13} {'per failure':>11} {'random fails':>12} {'per failure':>11} "
          f"{'largest group':>13} {'mean group':>10}")
    ok = True
    for r in rows:
        print(f"   {r['name']:20s} {r['every_fail']:>13} {r['every_re']:>11,.0f} {r['rand_fail']:>12} "
              f"{r['rand_re']:>11,.0f} {r['max_group']:>13,.0f} {r['mean_group']:>10,.0f}")
        ok = ok and r["every_re"] <= r["max_group"] + BOOT_CYCLES and r["rand_re"] <= r["max_group"] + BOOT_CYCLES
    print(f"   target: at most one commit group (+ the boot) per failure: {'met' if ok else 'NOT met'}\n")
    print(f"3. predicted vs simulated end-to-end cycles under every:{b}")
    print(f"   {'sample':20s} {'predicted':>11} {'simulated':>11} {'error':>7} {'fails pred/sim':>14}   "
          f"{'no failures: pred':>17} {'sim':>11} {'error':>7}")
    errs = []
    for r in rows:
        e = r["predicted"] / r["simulated"] - 1.0
        e0 = r["predicted_cont"] / (r["run_plain"] + BOOT_CYCLES) - 1.0
        errs.append(abs(e))
        print(f"   {r['name']:20s} {r['predicted']:>11,.0f} {r['simulated']:>11,.0f} {e:>+7.1%} "
              f"{r['predicted_failures']:>6} / {r['every_fail']:<6}   {r['predicted_cont']:>17,.0f} "
              f"{r['run_plain'] + BOOT_CYCLES:>11,} {e0:>+7.1%}")
    print(f"   target: within {PREDICTION_TARGET:.0%}: {'met' if max(errs) <= PREDICTION_TARGET else 'NOT met'} "
          f"(worst {max(errs):.1%})")
    print(f"\n(measured in {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

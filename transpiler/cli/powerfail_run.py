"""``freeml-tx run DIR --power-fail SPEC [--on host|sim]``: run an intermittent package under power failures.

    freeml-tx run build/ --input x.npy --power-fail random:seed=1,min=2000,max=40000
    freeml-tx run build/ --on sim --input x.npy --power-fail every:30000

On the host (``make host-intermittent``, main_intermittent.c) failures are counted in **FRAM
stores**: ``after:N`` (one failure before the N-th store), ``every:N`` (N stores after each boot),
``random:seed=S,min=A,max=B`` (a gap drawn from [A, B] after each boot). Re-executed work is the
stores done after the last commit before each failure. On the simulator (``--on sim``) they are
counted in **cycles** (``every:N``, ``at:N1,N2,...``, ``random:SEED:MIN:MAX``; the host's random
spelling is translated); re-executed work is the cycles beyond the uninterrupted run (boots
included). Either way each sample's output is compared with the uninterrupted run: the command
fails if one differs, and reports "cannot make progress" when the failures come faster than one
commit group (host: ``--max-failures`` boots of one sample; simulator: MSP430_SIM_MAX_FAILURES,
exit status 3).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

DEFAULT_HOST_MAX_FAILURES = 100000
DEFAULT_SIM_MAX_FAILURES = 2000


def add_power_fail_arguments(parser: argparse.ArgumentParser) -> None:
    """--power-fail and --max-failures."""
    parser.add_argument("--power-fail", metavar="SPEC",
                        help="inject power failures (intermittent packages): host, counted in FRAM stores: "
                             "after:N, every:N, random:seed=S,min=A,max=B; --on sim, counted in cycles: "
                             "every:N, at:N1,N2,..., random:SEED:MIN:MAX")
    parser.add_argument("--max-failures", type=int, metavar="N",
                        help="give up ('cannot make progress') after N power failures of one sample "
                             f"(default: host {DEFAULT_HOST_MAX_FAILURES}, sim {DEFAULT_SIM_MAX_FAILURES})")


def execute_power_fail(args: argparse.Namespace, inputs: dict[str, np.ndarray]
                       ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Run under ``args.power_fail``; returns (manifest, real outputs, the power-failure figures)."""
    from transpiler import hostrun, powerfail

    man = hostrun.load_manifest(args.dir)
    info = powerfail.require_intermittent(man, args.dir)
    x = hostrun.quantize(man, inputs)
    on = getattr(args, "on", "host")
    if on == "sim":
        limit = args.max_failures or DEFAULT_SIM_MAX_FAILURES
        r = powerfail.run_sim_pf(args.dir, man, x, power_fail=args.power_fail, max_failures=limit)
        y = r.outputs
        base = r.baseline_outputs
        figures: dict[str, Any] = {
            "on": "sim", "schedule": r.spec, "unit": "cycles", "power_failures": r.power_failures,
            "cycles": r.cycles, "uninterrupted_cycles": r.baseline_cycles,
            "reexecuted_cycles": r.reexecuted_cycles,
            "identical": base is not None and bool(np.array_equal(y, base)), "budget": info.get("budget")}
    else:
        limit = args.max_failures or DEFAULT_HOST_MAX_FAILURES
        exe = powerfail.build_host_pf(args.dir, cc=getattr(args, "cc", None),
                                      sanitize=getattr(args, "sanitize", False))
        hr = powerfail.run_host_pf(exe, man, x, schedule=args.power_fail, max_boots=limit + 1).check()
        assert hr.outputs is not None
        y = hr.outputs
        t = hr.total
        figures = {"on": "host", "schedule": hr.schedule, "unit": "FRAM stores", "power_failures": t["failures"],
                   "boots": t["boots"], "stores": t["stores"], "uninterrupted_stores": t["baseline_stores"],
                   "reexecuted_stores": t["reexecuted_stores"], "identical": t["mismatches"] == 0,
                   "budget": info.get("budget")}
    if not figures["identical"]:
        raise powerfail.PowerFailError(f"the output under {figures['schedule']} differs from the uninterrupted run",
                                       hint="a bug in the intermittent runtime: please report it with the package")
    raw = hostrun.split_outputs(man, y)
    return man, hostrun.dequantize(man, raw), figures


def format_power_fail(f: dict[str, Any], samples: int) -> list[str]:
    """The lines printed after the outputs."""
    per = f" over {samples} samples" if samples > 1 else ""
    if f["on"] == "sim":
        extra = f["reexecuted_cycles"]
        per_failure = f", {extra / f['power_failures']:,.0f} per failure" if f["power_failures"] else ""
        return [f"power failures (simulator, {f['schedule']}, counted in cycles): {f['power_failures']}{per}",
                f"  cycles {f['cycles']:,} (uninterrupted {f['uninterrupted_cycles']:,}); re-executed work "
                f"{extra:,} cycles{per_failure} (boots and lost partial groups)",
                "  output identical to the uninterrupted run: yes"]
    re_ = f["reexecuted_stores"]
    per_failure = f", {re_ / f['power_failures']:,.1f} per failure" if f["power_failures"] else ""
    return [f"power failures (host, {f['schedule']}, counted in FRAM stores): {f['power_failures']}{per}",
            f"  FRAM stores {f['stores']:,} (uninterrupted {f['uninterrupted_stores']:,}); re-executed work "
            f"{re_:,} stores{per_failure}",
            "  output identical to the uninterrupted run: yes"]


__all__ = ["add_power_fail_arguments", "execute_power_fail", "format_power_fail"]

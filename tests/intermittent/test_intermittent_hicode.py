"""Intermittent execution with the step functions in HIFRAM: a GRU(3, 16) unrolled over 40 time
steps (713 LIR steps, more code and descriptors than lower FRAM holds) compiled for SAMPLE_BUDGET
cycles per power cycle has its step functions in ``.upper.text`` (plan-memory's ``step-code``);
the step table holds their 20-bit addresses and the run loop dispatches through it after every
commit, so power failures give the uninterrupted output bit for bit: random host schedules, and
on the simulator (the large memory model) a failure every budget and at random, with random SRAM
after each.
"""

from __future__ import annotations

import numpy as np
import pytest
from intermittent_helpers import SAMPLE_BUDGET, Package, compile_intermittent, host_schedule_gaps, save_failure
from recurrent_models import seq_case

from transpiler import hostrun
from transpiler.powerfail import PowerFailError, build_host_pf, run_host_pf, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def gru40_package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    model, data, xs = seq_case("GRU", 3, 16, 40, seed=3)
    out = tmp_path_factory.mktemp("pf_gru40") / "gru40"
    program, stats = compile_intermittent(model, data, out, SAMPLE_BUDGET, "gru40")
    man = hostrun.load_manifest(out)
    return Package("gru40", out, program, man, hostrun.quantize(man, {"x": xs[:2]}), stats)


def test_the_step_functions_are_in_hifram(gru40_package: Package) -> None:
    pkg = gru40_package
    assert pkg.program.meta.get("step-code") == "hifram" and pkg.manifest["step_code"] == "hifram"
    assert pkg.manifest["plan"]["memory_model"] == "large" and pkg.manifest["needs_hifram"]
    assert "sram" not in {b["space"] for b in pkg.manifest["buffers"] if b["kind"] == "activation"}
    c = (pkg.out_dir / "gru40.c").read_text()
    assert c.count("static void FX_HICODE ") == len(pkg.program.steps)


def test_random_host_schedules(gru40_package: Package) -> None:
    pkg = gru40_package
    lo, hi = host_schedule_gaps(pkg.manifest)
    r = run_host_pf(build_host_pf(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs,
                    schedule=f"random:seed=11,min={lo},max={hi}", repeat=10)
    if not r.ok:
        where = save_failure("intermittent_hicode/host", pkg.out_dir, r.stderr)
        pytest.fail(f"exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    assert r.total["mismatches"] == 0 and r.total["stuck"] == 0
    assert r.total["failures"] >= 10 * len(pkg.inputs), r.total


def test_simulated_power_failures(gru40_package: Package) -> None:
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    pkg = gru40_package
    want = hostrun.run_raw(hostrun.build(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs)
    base = None
    for spec, fill in ((f"every:{SAMPLE_BUDGET}", None),
                       (f"random:7:{SAMPLE_BUDGET}:{2 * SAMPLE_BUDGET}", "random")):
        try:
            r = run_sim_pf(pkg.out_dir, pkg.manifest, pkg.inputs, power_fail=spec, baseline=base, sram_fill=fill,
                           max_failures=5000)
        except PowerFailError as exc:
            where = save_failure("intermittent_hicode/sim", pkg.out_dir, exc.render())
            pytest.fail(f"under {spec}: {exc.render()} (saved to {where})")
        if base is None:
            base = r.baseline_cycles
            assert r.baseline_outputs is not None and np.array_equal(r.baseline_outputs, want)
        assert np.array_equal(r.outputs, want), f"under {spec} (sram fill {fill}) the outputs differ from the host's"
        assert r.power_failures > base // (2 * SAMPLE_BUDGET), (spec, r.power_failures, base)
        print(f"{spec}: {r.power_failures} power failures, baseline {base} cycles per inference")

"""Validation link 4 for recurrent layers: a small unrolled GRU (torch nn.GRU, hidden 8, 6 steps)
compiled for a small power-cycle budget (many commits inside and between its time steps, the mul
and slice steps tiled like the other element-wise ops) gives the uninterrupted output bit for bit
under power failures: on the host before every FRAM store of an inference (exhaustive) and under
random schedules, and on the MSP430 simulator with ISA-level failures every budget and at random.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from intermittent_helpers import Package, compile_intermittent, host_schedule_gaps, save_failure
from recurrent_models import seq_case

from transpiler import hostrun
from transpiler.powerfail import PowerFailError, build_host_pf, run_host_pf, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none

pytest.importorskip("torch")

BUDGET = 12000


@pytest.fixture(scope="module")
def gru_package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    model, data, xs = seq_case("GRU", 3, 8, 6, seed=7)
    out = tmp_path_factory.mktemp("pf_gru") / "gru"
    program, stats = compile_intermittent(model, data, out, BUDGET, "gru")
    man = hostrun.load_manifest(out)
    assert {"mul", "slice"} <= {s.op for s in program.steps}
    return Package("gru", out, program, man, hostrun.quantize(man, {"x": xs[:2]}), stats)


def test_gru_power_failure_before_every_fram_store(gru_package: Package) -> None:
    pkg = gru_package
    exe = build_host_pf(pkg.out_dir, cc="gcc")
    r = run_host_pf(exe, pkg.manifest, pkg.inputs[:1], exhaustive=True)
    if not r.ok:
        pytest.fail(f"exit {r.returncode}: {r.stderr[-400:]} (saved to "
                    f"{save_failure('intermittent_recurrent/exhaustive', pkg.out_dir, r.stderr)})")
    total = r.total
    # the manifest's count is an upper bound (a chunk of an 8-element state counts as 32 stores)
    assert total["runs"] == total["baseline_stores"] <= pkg.manifest["intermittent"]["stores_per_inference"]
    assert total["runs"] > 1000
    assert total["mismatches"] == 0 and total["failures"] == total["runs"]
    assert pkg.manifest["intermittent"]["commits_per_inference"] > len(pkg.program.steps) // 4


def test_gru_random_power_failures_host_and_simulator(gru_package: Package) -> None:
    pkg = gru_package
    lo, hi = host_schedule_gaps(pkg.manifest)
    r = run_host_pf(build_host_pf(pkg.out_dir, cc="clang", sanitize=True), pkg.manifest, pkg.inputs,
                    schedule=f"random:seed=3,min={lo},max={hi}", repeat=50)
    assert r.ok and r.total["mismatches"] == 0 and r.total["failures"] >= 50 * len(pkg.inputs), r.total
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    want = hostrun.run_raw(hostrun.build(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs)
    base = None
    for spec in (f"every:{BUDGET}", f"random:5:{BUDGET}:{2 * BUDGET}"):
        try:
            sim = run_sim_pf(pkg.out_dir, pkg.manifest, pkg.inputs, power_fail=spec, baseline=base,
                             max_failures=5000)
        except PowerFailError as exc:
            pytest.fail(f"{spec}: {exc.render()}")
        base = sim.baseline_cycles if base is None else base
        assert np.array_equal(sim.outputs, want), spec
        assert sim.power_failures > 0, spec

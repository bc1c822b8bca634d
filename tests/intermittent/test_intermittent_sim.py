"""Validation link 4 on the MSP430 simulator: real ISA-level power failures (MSP430_SIM_POWER_FAIL,
counted in cycles; SRAM filled with a pattern or random words, registers cleared, crt0 runs again)
give the uninterrupted output bit for bit; failures faster than one commit group stop with the
simulator's "max failures" status (3), which becomes a clear "cannot make progress" error.

Every sample is compiled for SAMPLE_BUDGET cycles per power cycle; failing every SAMPLE_BUDGET cycles
(the budget the tile pass sized the groups for) must always make progress. Skipped, with the
reason, only when the msp430-elf toolchain is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from intermittent_helpers import SAMPLE_BUDGET, Package, save_failure

from transpiler import hostrun
from transpiler.powerfail import PowerFailError, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none


@pytest.fixture(scope="module")
def toolchain() -> object:
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    return tc


@pytest.mark.parametrize("name", ["tiny_residual", "tiny_conv1d", "mlp_digits_sklearn", "cnn_digits",
                                  "lenet5_mnist"])
def test_sample_under_simulated_power_failures(name: str, sample_packages: dict[str, Package],
                                               toolchain: object) -> None:
    if name not in sample_packages:
        pytest.skip(f"samples/{name} is absent")
    pkg = sample_packages[name]
    want = hostrun.run_raw(hostrun.build(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs)
    base = None
    schedules = [(f"every:{SAMPLE_BUDGET}", None),
                 (f"random:3:{SAMPLE_BUDGET}:{3 * SAMPLE_BUDGET}", "random"),
                 (f"random:11:{SAMPLE_BUDGET}:{2 * SAMPLE_BUDGET}", None)]
    for spec, fill in schedules:
        try:
            r = run_sim_pf(pkg.out_dir, pkg.manifest, pkg.inputs, power_fail=spec, baseline=base, sram_fill=fill,
                           max_failures=5000)
        except PowerFailError as exc:
            where = save_failure(f"intermittent_sim/{name}", pkg.out_dir, exc.render())
            pytest.fail(f"{name} under {spec}: {exc.render()} (saved to {where})")
        if base is None:
            base = r.baseline_cycles
            assert r.baseline_outputs is not None and np.array_equal(r.baseline_outputs, want)
        if not np.array_equal(r.outputs, want):
            where = save_failure(f"intermittent_sim/{name}", pkg.out_dir, f"{spec}: outputs differ")
            pytest.fail(f"{name} under {spec} (sram fill {fill}): outputs differ from the host's (saved to {where})")
        if base > 2 * SAMPLE_BUDGET:
            assert r.power_failures > 0, spec
        assert r.cycles >= base


def test_failures_faster_than_a_group_stop_the_simulator(sample_packages: dict[str, Package],
                                                         toolchain: object) -> None:
    pkg = sample_packages.get("tiny_residual") or next(iter(sample_packages.values()))
    with pytest.raises(PowerFailError, match="cannot make progress") as info:
        run_sim_pf(pkg.out_dir, pkg.manifest, pkg.inputs[:1], power_fail="every:2000", max_failures=40,
                   baseline=1)
    assert "MSP430_SIM_MAX_FAILURES" in info.value.message and "exit status 3" in info.value.message

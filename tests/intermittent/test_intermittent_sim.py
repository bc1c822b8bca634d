"""Validation link 4 on the MSP430 simulator: real ISA-level power failures (MSP430_SIM_POWER_FAIL,
counted in cycles; SRAM filled with a pattern or random words, registers cleared, crt0 runs again)
give the uninterrupted output bit for bit; failures faster than one commit group stop with the
simulator's "max failures" status (3), which becomes a clear "cannot make progress" error.

Every sample is compiled for SAMPLE_BUDGET cycles per power cycle; failing every SAMPLE_BUDGET cycles
(the budget the tile pass sized the groups for) must always make progress. Hypothesis models
(tests/strategies_onnx.py) are compiled for HYPOTHESIS_BUDGET and run under random schedules with
gaps of one to two budgets. Skipped, with the reason, only when the msp430-elf toolchain is not
installed.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from intermittent_helpers import SAMPLE_BUDGET, Package, compile_intermittent, save_failure
from strategies_onnx import onnx_models, save_model

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.errors import BudgetError, FreemlError
from transpiler.model import OnnxModel
from transpiler.powerfail import PowerFailError, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none

#: Cycles per power cycle of the hypothesis models: most of them need several power cycles.
HYPOTHESIS_BUDGET = 4000


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


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(drawn=onnx_models(dims=(1, 2), max_layers=3))
def test_hypothesis_models_under_simulated_power_failures(
        toolchain: object, tmp_path_factory: pytest.TempPathFactory,
        drawn: tuple[onnx.ModelProto, dict[str, np.ndarray]]) -> None:
    """Random op chains compiled for a small budget; two random schedules (one with random SRAM
    contents after each failure) give the uninterrupted simulator output, which is the host's."""
    proto, feeds = drawn
    digest = hashlib.sha256(proto.SerializeToString()).hexdigest()[:12]
    out = tmp_path_factory.mktemp("sim_pf_hyp") / "gen"
    x = feeds["x"]
    rng = np.random.default_rng(int(digest, 16) % 2**32)
    calib = np.concatenate([x, rng.standard_normal((7, *x.shape[1:])).astype(np.float32)])
    try:
        compile_intermittent(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": calib}), out,
                             budget=HYPOTHESIS_BUDGET, name="hyp")
    except BudgetError:
        assume(False)     # a unit larger than the small budget: not this test's subject
        return
    except FreemlError as exc:
        pytest.fail(f"compile failed: {exc.render()} (model saved to {save_model(proto, 'sim_pf_hyp_' + digest)})")
    man = hostrun.load_manifest(out)
    xs = hostrun.quantize(man, {"x": calib[:2]})
    want = hostrun.run_raw(hostrun.build(out, cc="gcc"), man, xs)
    base = None
    for spec, fill in ((f"random:{int(digest[:4], 16)}:{HYPOTHESIS_BUDGET}:{3 * HYPOTHESIS_BUDGET // 2}", None),
                       (f"random:{int(digest[4:8], 16)}:{HYPOTHESIS_BUDGET}:{3 * HYPOTHESIS_BUDGET}", "random")):
        try:
            r = run_sim_pf(out, man, xs, power_fail=spec, baseline=base, sram_fill=fill, max_failures=5000)
        except PowerFailError as exc:
            where = save_failure(f"intermittent_sim_hypothesis/{digest}", out, exc.render())
            pytest.fail(f"under {spec}: {exc.render()} (saved to {where})")
        if base is None:
            base = r.baseline_cycles
            assert r.baseline_outputs is not None and np.array_equal(r.baseline_outputs, want)
        if not np.array_equal(r.outputs, want):
            where = save_failure(f"intermittent_sim_hypothesis/{digest}", out, f"{spec}: outputs differ")
            pytest.fail(f"under {spec} (sram fill {fill}): outputs differ from the host's (saved to {where})")
        if base > 3 * HYPOTHESIS_BUDGET:
            assert r.power_failures > 0, spec

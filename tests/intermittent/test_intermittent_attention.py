"""A small transformer encoder (self-attention: `matmul` and `softmax` steps, `layernorm`)
under power failures: the output equals the uninterrupted one bit for bit.

torch's nn.TransformerEncoderLayer (d_model 16, one head, feed-forward 32, T = 8) + mean pooling +
Linear, exported by the dynamo exporter, compiled for a power-cycle budget that splits the
softmax, matmul and layernorm steps into tiles of rows with commits between them:

- host (``-DFX_HOST_POWER_FAIL``): a failure before every FRAM store of one inference (exhaustive),
  gcc and clang + ASan/UBSan, and 100 random schedules per input;
- the MSP430 simulator (real ISA-level failures in cycles, SRAM refilled with random words): random
  and periodic schedules give the host's outputs (skipped without the msp430-elf toolchain).
"""

from __future__ import annotations

import numpy as np
import pytest
from intermittent_helpers import Package, compile_intermittent, host_schedule_gaps, save_failure

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.model import OnnxModel
from transpiler.powerfail import PowerFailError, build_host_pf, run_host_pf, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none
from transformer_models import transformer

BUDGET = 90000


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("attention_pf") / "gen"
    proto, shape = transformer("d16h1", dynamo=True)
    calib = np.random.default_rng(0).standard_normal((16, *shape[1:])).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": calib}),
                                          out, budget=BUDGET, name="attention_pf")
    man = hostrun.load_manifest(out)
    return Package("attention_pf", out, program, man, hostrun.quantize(man, {"x": calib[:2]}), stats)


def test_attention_steps_are_split_into_committed_tiles(package: Package) -> None:
    steps = [s for s in package.program.steps if s.op in ("softmax", "matmul", "layernorm")]
    assert sorted({s.op for s in steps}) == ["layernorm", "matmul", "softmax"]
    split = [s for s in steps if s.tile is not None and s.tile.dims[0] < package.program.buffers[s.outputs[0]].shape[0]]
    assert {s.op for s in split} >= {"layernorm"}, [(s.name, s.tile) for s in steps]


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    exe = build_host_pf(package.out_dir, cc=cc, sanitize=sanitize)
    r = run_host_pf(exe, package.manifest, package.inputs[:1], exhaustive=True)
    if not r.ok:
        where = save_failure(f"intermittent_attention/{cc}", package.out_dir, r.stderr)
        pytest.fail(f"exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    total = r.total
    stores = total["baseline_stores"]
    assert stores <= package.manifest["intermittent"]["stores_per_inference"] <= stores + 32 * len(
        [s for s in package.program.steps if s.op in ("transpose", "act", "add", "concat", "upsample")])
    assert total["runs"] == stores and total["failures"] == stores and total["mismatches"] == 0


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    exe = build_host_pf(package.out_dir, cc="gcc")
    lo, hi = host_schedule_gaps(package.manifest)
    r = run_host_pf(exe, package.manifest, package.inputs, schedule=f"random:seed=3,min={lo},max={hi}", repeat=100)
    assert r.ok, r.stderr[-400:]
    assert r.total["mismatches"] == 0 and r.total["stuck"] == 0 and r.total["failures"] >= 100 * len(package.inputs)
    plain = hostrun.run_raw(hostrun.build(package.out_dir, cc="gcc"), package.manifest, package.inputs)
    one = run_host_pf(exe, package.manifest, package.inputs, schedule=f"random:seed=9,min={lo},max={hi}").check()
    assert one.outputs is not None and np.array_equal(one.outputs, plain)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    want = hostrun.run_raw(hostrun.build(package.out_dir, cc="gcc"), package.manifest, package.inputs)
    base = None
    for spec, fill in ((f"random:5:{BUDGET}:{2 * BUDGET}", "random"), (f"every:{BUDGET}", None)):
        try:
            r = run_sim_pf(package.out_dir, package.manifest, package.inputs, power_fail=spec, baseline=base,
                           sram_fill=fill, max_failures=5000)
        except PowerFailError as exc:
            where = save_failure("intermittent_attention/sim", package.out_dir, exc.render())
            pytest.fail(f"{spec}: {exc.render()} (saved to {where})")
        if base is None:
            base = r.baseline_cycles
            assert r.baseline_outputs is not None and np.array_equal(r.baseline_outputs, want)
        assert np.array_equal(r.outputs, want), spec
        assert r.power_failures > 0, spec

"""Intermittent execution with activations in HIFRAM: their stores go through FX_STORE and commit
with the progress record like those to lower FRAM, so power failures still give the uninterrupted
output bit for bit.

- A CIFAR-shaped CNN (3x32x32 input, conv 3->16: a 32 KiB feature map) compiled for
  SAMPLE_BUDGET cycles per power cycle has that map in HIFRAM (every activation is in FRAM, and
  lower FRAM cannot hold them beside the code): 50 random host schedules, and on the simulator
  (the large memory model) random power failures, with and without random SRAM after each.
- tiny_conv1d planned with every activation in HIFRAM (no lower FRAM left for activations): a
  failure before every single FRAM store of an inference, clang with ASan+UBSan.
- A pruned LeNet-5 compiled sparse with every activation in HIFRAM: the sparse kernels' slower
  fallbacks are in the tile pass's cost model, so a failure every budget cycles still progresses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from intermittent_helpers import REPO, SAMPLE_BUDGET, Package, compile_intermittent, host_schedule_gaps, save_failure
from tiny_models import cifar_like

from passes.plan_memory import LOWER_FRAM_BYTES, PlanMemoryOptions, estimate_rodata_bytes
from transpiler import hostrun
from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.lir.ir import Program
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext
from transpiler.powerfail import PowerFailError, build_host_pf, run_host_pf, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none


@pytest.fixture(scope="module")
def cifar_package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    proto, x = cifar_like(c1=16, c2=8, n=8, seed=3)
    out = tmp_path_factory.mktemp("pf_cifar") / "cifar"
    program, stats = compile_intermittent(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": x}), out,
                                          SAMPLE_BUDGET, "cifar_like")
    man = hostrun.load_manifest(out)
    return Package("cifar_like", out, program, man, hostrun.quantize(man, {"x": x[:1]}), stats)


def test_the_feature_map_is_in_hifram(cifar_package: Package) -> None:
    spaces = {b["name"]: b["space"] for b in cifar_package.manifest["buffers"] if b["kind"] == "activation"}
    assert spaces["r1"] == "hifram" and "sram" not in spaces.values()
    assert cifar_package.manifest["plan"]["memory_model"] == "large"
    c = (cifar_package.out_dir / "cifar_like.c").read_text()
    assert "fx_cifar_like_hifram[i] = " in c      # fx_<m>_wipe_fram covers the HIFRAM arena


def test_random_host_schedules(cifar_package: Package) -> None:
    pkg = cifar_package
    lo, hi = host_schedule_gaps(pkg.manifest)
    r = run_host_pf(build_host_pf(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs,
                    schedule=f"random:seed=5,min={lo},max={hi}", repeat=50)
    if not r.ok:
        where = save_failure("intermittent_hifram/host", pkg.out_dir, r.stderr)
        pytest.fail(f"exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    assert r.total["runs"] == 50 and r.total["mismatches"] == 0 and r.total["stuck"] == 0
    assert r.total["failures"] >= 50 * (r.total["baseline_stores"] // hi), r.total


def test_simulated_power_failures(cifar_package: Package) -> None:
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    pkg = cifar_package
    want = hostrun.run_raw(hostrun.build(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs)
    base = None
    for spec, fill in ((f"random:3:{SAMPLE_BUDGET}:{3 * SAMPLE_BUDGET}", None),
                       (f"random:17:{SAMPLE_BUDGET}:{2 * SAMPLE_BUDGET}", "random")):
        try:
            r = run_sim_pf(pkg.out_dir, pkg.manifest, pkg.inputs, power_fail=spec, baseline=base, sram_fill=fill,
                           max_failures=5000)
        except PowerFailError as exc:
            where = save_failure("intermittent_hifram/sim", pkg.out_dir, exc.render())
            pytest.fail(f"under {spec}: {exc.render()} (saved to {where})")
        if base is None:
            base = r.baseline_cycles
            assert r.baseline_outputs is not None and np.array_equal(r.baseline_outputs, want)
        assert np.array_equal(r.outputs, want), f"under {spec} (sram fill {fill}) the outputs differ from the host's"
        assert r.power_failures > base // (3 * SAMPLE_BUDGET), (spec, r.power_failures, base)


def compile_all_in_hifram(model_path: Path, data_path: Path, out: Path, budget: int,
                          lower: str = "lower") -> tuple[dict[str, object], Dataset]:
    """``model_path`` compiled for ``budget`` cycles per power cycle with every activation in HIFRAM
    (a code figure that leaves lower FRAM no room for them); returns the manifest and the data."""
    from transpiler.loader import load

    model = load(str(model_path))
    ds = load_dataset(data_path, input_specs(model.graph))
    lowered, _ = run_pipeline(model.copy(), f"normalize,quantize,{lower}", PassContext(data=ds), verify=False)
    assert isinstance(lowered, Program)
    code = LOWER_FRAM_BYTES - PlanMemoryOptions().app_reserve - estimate_rodata_bytes(lowered, large=True)
    text = f"normalize,quantize,{lower},plan-memory{{persistent=true,code={code}}},tile{{budget={budget}}},emit-c"
    ctx = PassContext(data=ds, out_dir=str(out), command_line="pytest", pipeline_text=text)
    run_pipeline(model, text, ctx, verify=False)
    man = hostrun.load_manifest(out)
    assert {b["space"] for b in man["buffers"] if b["kind"] == "activation"} == {"hifram"}
    return man, ds


def test_failure_before_every_store_with_every_activation_in_hifram(tmp_path: Path) -> None:
    name = "tiny_conv1d"
    model_path, data_path = REPO / "samples" / f"{name}.onnx", REPO / "samples" / f"{name}.npz"
    if not model_path.is_file() or not data_path.is_file():
        pytest.skip(f"samples/{name} is absent")
    out = tmp_path / name
    man, ds = compile_all_in_hifram(model_path, data_path, out, 20000)
    x = hostrun.quantize(man, {k: v[:1] for k, v in ds.inputs.items()})
    r = run_host_pf(build_host_pf(out, cc="clang", sanitize=True), man, x, exhaustive=True)
    if not r.ok:
        where = save_failure("intermittent_hifram/exhaustive", out, r.stderr)
        pytest.fail(f"exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    assert r.total["failures"] == r.total["baseline_stores"] == man["intermittent"]["stores_per_inference"]
    assert r.total["mismatches"] == 0


def test_sparse_steps_reading_hifram_are_tiled_for_their_fallbacks(tmp_path: Path) -> None:
    """A pruned LeNet-5 compiled sparse with every activation in HIFRAM: its sparse steps run
    fx_sparse.c's portable fallbacks (up to 5x the fast paths' cycles), which the tile pass sizes
    with cost.SPARSE_FAR; failing every budget cycles on the simulator, the inference still
    progresses and gives the host's output."""
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    src, data = REPO / "samples" / "lenet5_mnist.onnx", REPO / "samples" / "lenet5_mnist.npz"
    if not (src.is_file() and data.is_file()):
        pytest.skip("samples/lenet5_mnist is absent")
    from test_intermittent_sparse import prune

    out = tmp_path / "lenet_sparse"
    man, ds = compile_all_in_hifram(prune(src, 0.9, tmp_path), data, out, SAMPLE_BUDGET, "lower{sparse=always}")
    assert {"conv_sparse", "fc_sparse"} <= set(man["ops"])
    x = hostrun.quantize(man, {k: v[:1] for k, v in ds.inputs.items()})
    want = hostrun.run_raw(hostrun.build(out, cc="gcc"), man, x)
    try:
        r = run_sim_pf(out, man, x, power_fail=f"every:{SAMPLE_BUDGET}", max_failures=2000)
    except PowerFailError as exc:
        where = save_failure("intermittent_hifram/sparse", out, exc.render())
        pytest.fail(f"{exc.render()} (saved to {where})")
    assert np.array_equal(r.outputs, want) and r.power_failures > 0

"""Validation link 4 on the host (DESIGN.md section 9): the generated C under power failures gives the
uninterrupted output bit for bit.

The packages are built with -DFX_HOST_POWER_FAIL (``make host-intermittent``): FX_STORE counts every
FRAM store and fails before one by schedule; a failure wipes SRAM and calls fx_<m>_run again, which
resumes from its progress record. Every run starts a new inference on garbage FRAM, so a skipped
piece of work cannot hide behind the result of an earlier inference. The driver compares each run
with the uninterrupted one itself (exit status 4 on a difference) and counts the failures.

- every sample: 200 random schedules per input (one process), gaps drawn between the largest piece
  of work between two commits and four times that;
- tiny models: a failure before every single FRAM store of one inference (exhaustive), with gcc and
  with clang + ASan/UBSan;
- hypothesis models (tests/strategies_onnx.py): exhaustive;
- torn commits: a failure before every store of a run of commits (tests/c/progress_harness.c),
  across the 16-bit sequence number wrap-around;
- "cannot make progress" when failures come faster than one commit group.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from intermittent_helpers import (REPO, Package, compile_intermittent, host_schedule_gaps, save_failure)
from strategies_onnx import onnx_models

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.errors import BudgetError, FreemlError
from transpiler.model import OnnxModel
from transpiler.powerfail import PF_STUCK, PowerFailError, build_host_pf, run_host_pf

RUNTIME = REPO / "runtime_c"


def _check(pkg: Package, exe: Path, label: str, **kwargs: object) -> dict[str, int]:
    """Run the driver; on a difference or no progress keep the package and fail with its message."""
    r = run_host_pf(exe, pkg.manifest, pkg.inputs, **kwargs)  # type: ignore[arg-type]
    if not r.ok:
        where = save_failure(label, pkg.out_dir, r.stderr)
        pytest.fail(f"{label}: exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    return r.total


@pytest.mark.parametrize("name", ["tiny_residual", "tiny_conv1d", "mlp_digits_sklearn", "cnn_digits",
                                  "lenet5_mnist"])
def test_200_random_schedules_per_sample(name: str, sample_packages: dict[str, Package],
                                         host_pf_binaries: dict[str, Path]) -> None:
    if name not in sample_packages:
        pytest.skip(f"samples/{name} is absent")
    pkg = sample_packages[name]
    lo, hi = host_schedule_gaps(pkg.manifest)
    total = _check(pkg, host_pf_binaries[name], f"intermittent_random/{name}",
                   schedule=f"random:seed=1,min={lo},max={hi}", repeat=200)
    n = pkg.inputs.shape[0]
    assert total["runs"] == 200 * n and total["mismatches"] == 0 and total["stuck"] == 0
    # the schedules really interrupt: every run at least once, about once per `hi` stores
    per_run = total["baseline_stores"] // n
    assert hi < per_run and total["failures"] >= 200 * n * max(1, per_run // hi), total
    # and the output file holds the uninterrupted outputs, equal to the plain host build's
    plain = hostrun.run_raw(hostrun.build(pkg.out_dir, cc="gcc"), pkg.manifest, pkg.inputs)
    one = run_host_pf(host_pf_binaries[name], pkg.manifest, pkg.inputs,
                      schedule=f"random:seed=7,min={lo},max={hi}").check()
    assert one.outputs is not None and np.array_equal(one.outputs, plain)


@pytest.mark.parametrize("name,cc,sanitize", [("tiny_residual", "gcc", False), ("tiny_conv1d", "clang", True)])
def test_failure_before_every_fram_store(name: str, cc: str, sanitize: bool,
                                         sample_packages: dict[str, Package]) -> None:
    """Exhaustive: one run per store position of the inference, the failure right before it."""
    if name not in sample_packages:
        pytest.skip(f"samples/{name} is absent")
    pkg = sample_packages[name]
    exe = build_host_pf(pkg.out_dir, cc=cc, sanitize=sanitize)
    pkg1 = Package(pkg.name, pkg.out_dir, pkg.program, pkg.manifest, pkg.inputs[:1], pkg.tile_stats)
    total = _check(pkg1, exe, f"intermittent_exhaustive/{name}", exhaustive=True)
    stores = total["baseline_stores"]
    # the manifest's count of the stores of one inference is exact for dense steps
    assert stores == pkg.manifest["intermittent"]["stores_per_inference"]
    assert total["runs"] == stores and total["failures"] == stores and total["mismatches"] == 0
    # every position re-executes at most the piece it interrupted
    assert total["reexecuted_stores"] <= stores * pkg.manifest["intermittent"]["max_piece_stores"]


@settings(max_examples=8, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(drawn=onnx_models(max_layers=3))
def test_hypothesis_models_exhaustive(tmp_path_factory: pytest.TempPathFactory,
                                      drawn: tuple[onnx.ModelProto, dict[str, np.ndarray]]) -> None:
    """Random op chains compiled for a small budget (many commits), a failure before every store."""
    proto, feeds = drawn
    digest = hashlib.sha256(proto.SerializeToString()).hexdigest()[:12]
    out = tmp_path_factory.mktemp("pf_hyp") / "gen"
    x = feeds["x"]
    rng = np.random.default_rng(int(digest, 16) % 2**32)
    calib = np.concatenate([x, rng.standard_normal((7, *x.shape[1:])).astype(np.float32)])
    try:
        program, _stats = compile_intermittent(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": calib}),
                                               out, budget=6000, name="hyp")
    except BudgetError:
        assume(False)     # a unit larger than the small budget: not this test's subject
        return
    except FreemlError as exc:
        from strategies_onnx import save_model

        pytest.fail(f"compile failed: {exc.render()} (model saved to {save_model(proto, 'pf_hyp_' + digest)})")
    man = hostrun.load_manifest(out)
    xs = hostrun.quantize(man, {"x": calib[:2]})
    pkg = Package("hyp", out, program, man, xs, {})
    exe = build_host_pf(out, cc="gcc")
    total = _check(pkg, exe, f"intermittent_hypothesis/{digest}", exhaustive=True)
    assert total["failures"] == total["baseline_stores"] and total["mismatches"] == 0


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
@pytest.mark.parametrize("warmup", [3, 65530])
def test_torn_commit_leaves_a_valid_resume_point(tmp_path: Path, cc: str, sanitize: bool, warmup: int) -> None:
    """A failure before each store of 12 commits (each of the 5 stores inside fx_progress_commit):
    the next boot loads exactly the last completed commit; 65530 warm-up commits make the 16-bit
    sequence numbers wrap inside the window."""
    exe = tmp_path / "progress_harness"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-DFX_HOST_POWER_FAIL"]
    flags += ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else ["-O2"]
    subprocess.run([cc, *flags, f"-I{RUNTIME}", f"-I{RUNTIME / 'platform' / 'host'}",
                    str(REPO / "tests" / "c" / "progress_harness.c"), str(RUNTIME / "fx_progress.c"),
                    str(RUNTIME / "platform" / "host" / "fx_power_host.c"), "-o", str(exe)], check=True)
    r = subprocess.run([str(exe), str(warmup), "12"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:4] == ["positions", "61", "failures", "60"]


def test_failures_faster_than_a_group_cannot_make_progress(sample_packages: dict[str, Package],
                                                           host_pf_binaries: dict[str, Path]) -> None:
    name = next(iter(sample_packages))
    pkg = sample_packages[name]
    lo, _hi = host_schedule_gaps(pkg.manifest)
    r = run_host_pf(host_pf_binaries[name], pkg.manifest, pkg.inputs[:1], schedule=f"every:{lo // 4}",
                    max_boots=300)
    assert r.returncode == PF_STUCK and r.total["stuck"] == 1
    assert "cannot make progress" in r.stderr and "300 boots" in r.stderr
    with pytest.raises(PowerFailError, match="cannot make progress") as info:
        r.check()
    assert "max_piece_stores" in (info.value.hint or "")
    # just above the largest piece every boot commits at least once: it finishes
    ok = run_host_pf(host_pf_binaries[name], pkg.manifest, pkg.inputs[:1], schedule=f"every:{lo}").check()
    assert ok.total["failures"] > 0 and ok.total["mismatches"] == 0


def test_a_schedule_is_checked_by_the_driver(sample_packages: dict[str, Package],
                                             host_pf_binaries: dict[str, Path]) -> None:
    name = next(iter(sample_packages))
    exe = host_pf_binaries[name]
    r = subprocess.run([str(exe), "--schedule", "sometimes", "in.raw", "out.raw"], capture_output=True, text=True)
    assert r.returncode == 2 and "bad schedule" in r.stderr
    r = subprocess.run([str(exe), "--repeat", "3", "in.raw", "out.raw"], capture_output=True, text=True)
    assert r.returncode == 2 and "--repeat needs a random schedule" in r.stderr

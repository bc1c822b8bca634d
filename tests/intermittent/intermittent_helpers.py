"""Helpers of the intermittent-execution tests: compile a model for a power-cycle budget, build the
host power-failure driver, run schedules, and keep failing cases under tests/failures/.

Samples are compiled once per session (``compiled_sample``) and shared by the host and simulator
tests; each package is built once per compiler.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transpiler import hostrun
from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.lir.ir import Program
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext, registry
from transpiler.powerfail import PowerFailError, build_host_pf, run_host_pf, run_sim_pf
from transpiler.toolchain import find_msp430_toolchain_or_none

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
FAILURES = TESTS / "failures"
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

#: Samples that fit the FR5994 dense; mlp_mnist_big (> 256 KiB of dense weights) needs sparsify,
#: which this pipeline does not run.
SAMPLES = ("tiny_residual", "tiny_conv1d", "mlp_digits_sklearn", "cnn_digits", "lenet5_mnist")
#: Cycles per power cycle the samples are compiled for: small enough for many commits per layer,
#: large enough for one unit of every sample's largest layer (LeNet-5's conv2 rows).
SAMPLE_BUDGET = 40000


@dataclass
class Package:
    """A compiled intermittent package and the inputs to run through it."""

    name: str
    out_dir: Path
    program: Program
    manifest: dict[str, Any]
    inputs: np.ndarray            # int16 [N, in_size]
    tile_stats: dict[str, Any]


def compile_intermittent(model: OnnxModel, data: Dataset, out_dir: Path, budget: int, name: str,
                         margin: float | None = None, lower: str = "lower") -> tuple[Program, dict[str, Any]]:
    """normalize,quantize,<lower>,plan-memory{persistent=true,budget=...},tile{budget=...},emit-c into out_dir
    (``lower``: the lower pass with its options, e.g. ``lower{sparse=always}``)."""
    registry()
    ctx = PassContext(data=data, out_dir=str(out_dir), command_line="pytest", extra={"model_name": name})
    tile = f"tile{{budget={budget}" + (f",margin={margin}" if margin is not None else "") + "}"
    text = f"normalize,quantize,{lower},plan-memory{{persistent=true,budget={budget}}},{tile},emit-c"
    ctx.pipeline_text = text
    program, _report = run_pipeline(model, text, ctx, verify=False)
    assert isinstance(program, Program)
    return program, dict(ctx.extra.get("tile") or {})


def compile_sample(name: str, root: Path, budget: int = SAMPLE_BUDGET, n_inputs: int = 2) -> Package:
    """samples/<name> compiled for `budget` cycles per power cycle, with its first data samples."""
    from transpiler.loader import load

    model = load(str(REPO / "samples" / f"{name}.onnx"))
    ds = load_dataset(REPO / "samples" / f"{name}.npz", input_specs(model.graph))
    out = root / name
    program, stats = compile_intermittent(model, ds, out, budget, name)
    man = hostrun.load_manifest(out)
    x = hostrun.quantize(man, {k: v[:n_inputs] for k, v in ds.inputs.items()})
    return Package(name, out, program, man, x, stats)


def host_schedule_gaps(man: dict[str, Any]) -> tuple[int, int]:
    """(min, max) store gaps of random host schedules that always make progress (the smallest gap
    exceeds the largest piece of work between two commits) and interrupt every run at least once
    (the largest is below the stores of one inference, when the model has more than one piece)."""
    biggest = int(man["intermittent"]["max_piece_stores"])
    total = int(man["intermittent"]["stores_per_inference"])
    return biggest + 1, max(biggest + 1, min(4 * biggest + 8, total - 1))


def save_failure(label: str, out_dir: Path | None, note: str) -> str:
    """Keep a failing package under tests/failures/<label>/ and return the path."""
    folder = FAILURES / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if out_dir is not None and out_dir.is_dir():
        shutil.copytree(out_dir, folder / "generated", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.o", "msp430-obj*", "*_host*", "*.elf"))
    (folder / "note.txt").write_text(note + "\n", encoding="utf-8")
    return str(folder)


__all__ = ["SAMPLES", "SAMPLE_BUDGET", "Package", "compile_intermittent", "compile_sample",
           "host_schedule_gaps", "save_failure", "REPO"]


def check_failure_before_every_store(package: Package, cc: str, sanitize: bool, label: str,
                                     chunked_ops: tuple[str, ...]) -> None:
    """A power failure before every FRAM store of one inference (host build): each run gives the
    uninterrupted outputs; the manifest's store count is an upper bound (the ``chunked_ops`` steps
    store whole chunks of 32 elements)."""
    exe = build_host_pf(package.out_dir, cc=cc, sanitize=sanitize)
    r = run_host_pf(exe, package.manifest, package.inputs[:1], exhaustive=True)
    if not r.ok:
        where = save_failure(f"{label}/{cc}", package.out_dir, r.stderr)
        pytest.fail(f"exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    total = r.total
    stores = total["baseline_stores"]
    assert stores <= package.manifest["intermittent"]["stores_per_inference"] <= stores + 32 * len(
        [s for s in package.program.steps if s.op in chunked_ops])
    assert total["runs"] == stores and total["failures"] == stores and total["mismatches"] == 0


def check_random_schedules(package: Package) -> None:
    """100 random failure schedules on the host give the uninterrupted outputs, never stuck."""
    exe = build_host_pf(package.out_dir, cc="gcc")
    lo, hi = host_schedule_gaps(package.manifest)
    r = run_host_pf(exe, package.manifest, package.inputs, schedule=f"random:seed=3,min={lo},max={hi}", repeat=100)
    assert r.ok, r.stderr[-400:]
    assert r.total["mismatches"] == 0 and r.total["stuck"] == 0 and r.total["failures"] >= 100 * len(package.inputs)
    plain = hostrun.run_raw(hostrun.build(package.out_dir, cc="gcc"), package.manifest, package.inputs)
    one = run_host_pf(exe, package.manifest, package.inputs, schedule=f"random:seed=9,min={lo},max={hi}").check()
    assert one.outputs is not None and np.array_equal(one.outputs, plain)


def check_simulated_failures(package: Package, label: str, budget: int) -> None:
    """On the MSP430 simulator, random (SRAM scrambled) and periodic failures every ``budget``
    cycles give the host's outputs."""
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    want = hostrun.run_raw(hostrun.build(package.out_dir, cc="gcc"), package.manifest, package.inputs)
    base = None
    for spec, fill in ((f"random:5:{budget}:{2 * budget}", "random"), (f"every:{budget}", None)):
        try:
            r = run_sim_pf(package.out_dir, package.manifest, package.inputs, power_fail=spec, baseline=base,
                           sram_fill=fill, max_failures=5000)
        except PowerFailError as exc:
            where = save_failure(f"{label}/sim", package.out_dir, exc.render())
            pytest.fail(f"{spec}: {exc.render()} (saved to {where})")
        if base is None:
            base = r.baseline_cycles
            assert r.baseline_outputs is not None and np.array_equal(r.baseline_outputs, want)
        assert np.array_equal(r.outputs, want), spec
        assert r.power_failures > 0, spec

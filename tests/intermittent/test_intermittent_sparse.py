"""Intermittent execution of a model compiled sparse (conv_sparse, fc_sparse: runtime_c/fx_sparse.c)
on the host: the output under power failures is the uninterrupted one bit for bit.

cnn_digits (3x3 conv with padding, depthwise 3x3 stride 2, pointwise 1x1, global average pool, fc)
with the smallest 80 % of every Conv/Gemm weight set to zero, as sparsify would leave it, lowered
with ``lower{sparse=always}`` and tiled for a small budget (many commit groups per layer). Then:

- the uninterrupted C equals the interpreter;
- a failure before every single FRAM store of one inference (exhaustive), clang + ASan/UBSan;
- 200 random schedules per input, gcc -O2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from intermittent_helpers import REPO, Package, compile_intermittent, host_schedule_gaps, save_failure

from transpiler import hostrun
from transpiler.data import input_specs, load_dataset
from transpiler.lir.interp import run_program
from transpiler.loader import load
from transpiler.powerfail import build_host_pf, run_host_pf

#: Cycles per power cycle: every layer splits into several commit groups (a one-row call of the
#: first conv, 3x3 pad 1, costs about 4,000-5,000 cycles on the simulator with its set-up).
BUDGET = 10000
PRUNED = 0.8


def prune(src: Path, fraction: float, out: Path) -> Path:
    """The model with the smallest |w| `fraction` of every Conv/Gemm weight set to 0."""
    proto = onnx.load(str(src))
    weights = {n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 1}
    for init in proto.graph.initializer:
        if init.name in weights:
            w = onnx.numpy_helper.to_array(init).copy()
            k = int(round(fraction * w.size))
            w[np.abs(w) <= np.sort(np.abs(w).reshape(-1))[k - 1]] = 0.0
            init.CopyFrom(onnx.numpy_helper.from_array(w.astype(np.float32), init.name))
    path = out / f"{src.stem}_pruned.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def sparse_package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    src, data = REPO / "samples" / "cnn_digits.onnx", REPO / "samples" / "cnn_digits.npz"
    if not (src.is_file() and data.is_file()):
        pytest.skip("samples/cnn_digits is absent (python samples/make_all.py makes it)")
    root = tmp_path_factory.mktemp("intermittent_sparse")
    model = load(str(prune(src, PRUNED, root)))
    ds = load_dataset(data, input_specs(model.graph))
    out = root / "cnn_sparse"
    program, stats = compile_intermittent(model, ds, out, BUDGET, "cnn_sparse", lower="lower{sparse=always}")
    man = hostrun.load_manifest(out)
    x = hostrun.quantize(man, {k: v[:2] for k, v in ds.inputs.items()})
    return Package("cnn_sparse", out, program, man, x, stats)


def _check(pkg: Package, exe: Path, label: str, **kwargs: object) -> dict[str, int]:
    r = run_host_pf(exe, pkg.manifest, pkg.inputs, **kwargs)  # type: ignore[arg-type]
    if not r.ok:
        where = save_failure(label, pkg.out_dir, r.stderr)
        pytest.fail(f"{label}: exit status {r.returncode}: {r.stderr.strip()[-400:]} (saved to {where})")
    return r.total


def test_the_package_is_sparse_and_tiled(sparse_package: Package) -> None:
    ops = [s.op for s in sparse_package.program.steps]
    assert ops.count("conv_sparse") == 3 and ops.count("fc_sparse") == 1, ops
    groups = {s["step"]: s["groups"] for s in sparse_package.tile_stats["steps"]}
    convs = [s.name for s in sparse_package.program.steps if s.op == "conv_sparse"]
    assert all(groups[n] >= 2 for n in convs), groups


def test_uninterrupted_c_equals_the_interpreter(sparse_package: Package) -> None:
    pkg = sparse_package
    exe = build_host_pf(pkg.out_dir, cc="gcc")
    got = run_host_pf(exe, pkg.manifest, pkg.inputs).check().outputs
    (port,) = pkg.program.inputs
    shape = pkg.program.buffers[port.buffer].shape
    want = [np.concatenate([np.asarray(run_program(pkg.program, {port.onnx_name: x.reshape(shape)})[o.onnx_name])
                            .reshape(-1) for o in pkg.program.outputs]) for x in pkg.inputs]
    assert got is not None and np.array_equal(got, np.stack(want).astype(np.int16))


def test_failure_before_every_fram_store_sanitized(sparse_package: Package) -> None:
    pkg = sparse_package
    exe = build_host_pf(pkg.out_dir, cc="clang", sanitize=True)
    one = Package(pkg.name, pkg.out_dir, pkg.program, pkg.manifest, pkg.inputs[:1], pkg.tile_stats)
    total = _check(one, exe, "intermittent_sparse/exhaustive", exhaustive=True)
    stores = total["baseline_stores"]
    assert stores == pkg.manifest["intermittent"]["stores_per_inference"]
    assert total["runs"] == stores and total["failures"] == stores and total["mismatches"] == 0
    assert total["reexecuted_stores"] <= stores * pkg.manifest["intermittent"]["max_piece_stores"]


def test_200_random_schedules(sparse_package: Package) -> None:
    pkg = sparse_package
    lo, hi = host_schedule_gaps(pkg.manifest)
    total = _check(pkg, build_host_pf(pkg.out_dir, cc="gcc"), "intermittent_sparse/random",
                   schedule=f"random:seed=3,min={lo},max={hi}", repeat=200)
    n = pkg.inputs.shape[0]
    assert total["runs"] == 200 * n and total["mismatches"] == 0 and total["stuck"] == 0
    assert total["failures"] >= 200 * n * max(1, (total["baseline_stores"] // n) // hi), total

"""Sparse weights end to end: pruned sample models -> lower{sparse=...} -> plan-memory -> emit-c.

The fixtures set the smallest-magnitude 90 % (LeNet-5) / 95 % (the big MLP) of every Conv/Gemm
weight of a sample model to zero, as the sparsify pass would. Then:

- the program compiled with sparse=always (conv_sparse, fc_sparse) and the one compiled dense give
  the same bits in the interpreter, and the generated C of both (gcc -O2, clang + ASan/UBSan) gives
  the interpreter's bits on the test set and on full-range random inputs;
- mlp_mnist_big (537 KB of dense int16 weights) does not fit the 256 KiB FRAM budget dense, and
  with sparse=auto at ~5 % density it does, with every layer sparse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import build_all, emit, import_all_passes, interp_outputs, pack_inputs, random_inputs

from backends.lower_bounds import error_bounds
from transpiler import hostrun
from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.errors import BudgetError
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import quantize_inputs
from transpiler.lir.verify import verify_program
from transpiler.loader import load
from transpiler.manager import run_pipeline
from transpiler.pass_infra import PassContext
from transpiler.stats import PipelineReport

ROOT = Path(__file__).resolve().parents[2]
FRAM_256K = 256 * 1024

import_all_passes()


def prune_model(name: str, fraction: float, out: Path) -> Path:
    """samples/<name>.onnx with the smallest |w| `fraction` of every Conv/Gemm weight set to 0."""
    src = ROOT / "samples" / f"{name}.onnx"
    if not src.is_file():
        pytest.skip(f"samples/{name}.onnx is absent (python samples/make_all.py makes it)")
    proto = onnx.load(str(src))
    weights = {n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 1}
    for init in proto.graph.initializer:
        if init.name not in weights:
            continue
        w = onnx.numpy_helper.to_array(init).copy()
        k = int(round(fraction * w.size))
        cut = np.sort(np.abs(w).reshape(-1))[k - 1] if k else -1.0
        w[np.abs(w) <= cut] = 0.0
        init.CopyFrom(onnx.numpy_helper.from_array(w.astype(np.float32), init.name))
    path = out / f"{name}_pruned.onnx"
    onnx.save(proto, str(path))
    return path


def compile_lir(model_path: Path, data: Dataset, sparse: str, out: Path,
                fram_bytes: int = FRAM_256K) -> tuple[Program, PipelineReport]:
    """normalize,quantize,lower{sparse=...},plan-memory under a FRAM budget."""
    ctx = PassContext(data=data, out_dir=str(out), command_line="pytest", fram_bytes=fram_bytes)
    program, report = run_pipeline(load(str(model_path)), f"normalize,quantize,lower{{sparse={sparse}}},plan-memory",
                                   ctx, verify=False)
    assert isinstance(program, Program)
    verify_program(program)
    return program, report


def c_outputs(program: Program, out_dir: Path, inputs: list[dict[str, np.ndarray]],
              builds: tuple[tuple[str, bool], ...]) -> list[tuple[str, np.ndarray]]:
    """Emit the program, build it with each (compiler, sanitize) and run every input."""
    emit(program, out_dir)
    man = hostrun.load_manifest(out_dir)
    x = pack_inputs(program, inputs)
    return [(label, hostrun.run_raw(exe, man, x)) for label, exe in build_all(out_dir, builds)]


def dataset(name: str, model_path: Path) -> Dataset:
    data = ROOT / "samples" / f"{name}.npz"
    if not data.is_file():
        pytest.skip(f"samples/{name}.npz is absent")
    return load_dataset(data, input_specs(load(str(model_path)).graph))


def storage(report: PipelineReport) -> list[dict[str, Any]]:
    return report["lower"].pass_stats["weight_storage"]


def test_pruned_lenet_sparse_equals_dense_in_c(tmp_path: Path) -> None:
    model = prune_model("lenet5_mnist", 0.9, tmp_path)
    ds = dataset("lenet5_mnist", model)
    sparse, rep = compile_lir(model, ds, "always", tmp_path / "s")
    dense, _ = compile_lir(model, ds, "never", tmp_path / "d")
    assert [s.op for s in sparse.steps if "conv" in s.op or "fc" in s.op] == \
        ["conv_sparse", "conv_sparse", "fc_sparse", "fc_sparse", "fc_sparse"]
    assert all(r["storage"] == "sparse" and r["density"] <= 0.11 for r in storage(rep))
    inputs = [quantize_inputs(sparse, ds.inputs_for(i)) for i in range(min(len(ds), 200))]
    inputs += random_inputs(sparse, 8, seed=5)
    want = interp_outputs(sparse, inputs)
    assert np.array_equal(want, interp_outputs(dense, inputs)), "sparse and dense programs differ"
    results = c_outputs(sparse, tmp_path / "c_sparse", inputs, (("gcc", False), ("clang", True)))
    results += [(f"dense-{label}", y) for label, y in
                c_outputs(dense, tmp_path / "c_dense", inputs, (("gcc", False),))]
    for label, got in results:
        assert np.array_equal(got, want), f"{label}: C differs from the interpreter at " \
                                          f"{np.argwhere(got != want)[:5].tolist()}"


def test_a_sparse_program_has_the_dense_ones_error_bound(tmp_path: Path) -> None:
    """lower_bounds reads conv_sparse/fc_sparse through the weights they encode: the bound of every
    buffer equals the dense program's (it was infinite for sparse steps)."""
    model = prune_model("lenet5_mnist", 0.9, tmp_path)
    ds = dataset("lenet5_mnist", model)
    sparse, _ = compile_lir(model, ds, "always", tmp_path / "s")
    dense, _ = compile_lir(model, ds, "never", tmp_path / "d")
    for i in range(3):
        feed = quantize_inputs(sparse, ds.inputs_for(i))
        got = error_bounds(sparse, run_program(sparse, feed, trace=True))
        want = error_bounds(dense, run_program(dense, feed, trace=True))
        assert got.valid and want.valid
        for name, bound in want.outputs.items():
            assert np.isfinite(bound) and got.outputs[name] == pytest.approx(bound, rel=1e-12), (name, got.outputs)


def test_pruned_mlp_big_fits_256k_fram_only_sparse(tmp_path: Path) -> None:
    model = prune_model("mlp_mnist_big", 0.95, tmp_path)
    ds = dataset("mlp_mnist_big", model)
    with pytest.raises(BudgetError):
        compile_lir(model, ds, "never", tmp_path / "d")
    sparse, rep = compile_lir(model, ds, "auto", tmp_path / "s")
    records = storage(rep)
    assert [r["storage"] for r in records] == ["sparse"] * 3, records
    assert all(0.04 <= r["density"] <= 0.06 for r in records)
    saved = sum(r["dense_bytes"] - r["sparse_bytes"] for r in records)
    assert saved > 400_000
    plan = rep["plan-memory"].pass_stats
    assert plan["fram_constants"] < FRAM_256K // 4
    inputs = [quantize_inputs(sparse, ds.inputs_for(i)) for i in range(min(len(ds), 200))]
    inputs += random_inputs(sparse, 6, seed=9)
    want = interp_outputs(sparse, inputs)
    # the same model compiled dense (no FRAM limit on the host) computes the same bits
    dense, _ = compile_lir(model, ds, "never", tmp_path / "d2", fram_bytes=4 << 20)
    assert np.array_equal(want, interp_outputs(dense, inputs))
    for label, got in c_outputs(sparse, tmp_path / "c", inputs, (("gcc", False), ("clang", True))):
        assert np.array_equal(got, want), f"{label}: C differs from the interpreter"
    # the fixed-point program classifies the test set as well as the pruned float model does
    # (pruning 95 % without fine-tuning costs accuracy; that is sparsify's business, not ours)
    n = len(inputs) - 6
    if ds.labels is not None and len(sparse.outputs) == 1:
        import onnxruntime as ort

        session = ort.InferenceSession(str(model))
        name = session.get_inputs()[0].name
        xs = next(iter(ds.inputs.values()))[:n].astype(np.float32)
        ref = np.concatenate([session.run(None, {name: xs[i:i + 1]})[0] for i in range(n)])
        labels = np.asarray(ds.labels[:n]).reshape(-1)
        acc_c = float(np.mean(np.argmax(want[:n], axis=1) == labels))
        acc_float = float(np.mean(np.argmax(ref, axis=1) == labels))
        assert abs(acc_c - acc_float) <= 0.03, (acc_c, acc_float)


def test_auto_keeps_dense_layers_dense(tmp_path: Path) -> None:
    """Unpruned LeNet-5: no layer saves bytes sparse, so auto keeps every layer dense."""
    model = ROOT / "samples" / "lenet5_mnist.onnx"
    if not model.is_file():
        pytest.skip("samples/lenet5_mnist.onnx is absent")
    ds = dataset("lenet5_mnist", model)
    program, rep = compile_lir(model, ds, "auto", tmp_path)
    assert not any(s.op.endswith("_sparse") for s in program.steps)
    for r in storage(rep):
        assert r["storage"] == "dense" and "would not save bytes" in r["reason"], r
        assert r["sparse_bytes"] > r["dense_bytes"] and r["density"] > 0.9


def test_conv_sparse_printer_refuses_inputs_beyond_uint16() -> None:
    """fx_conv_sparse indexes one group's input with uint16: the printer says so instead of
    emitting wrong C (lower never produces such a step: it keeps the layer dense)."""
    from backends.c.printers import PRINTERS, StepEnv
    from transpiler.errors import UnsupportedError
    from transpiler.lir import kernels as K
    from transpiler.lir.ir import Buffer, Step

    p = Program("big")
    p.add(Buffer("x", "i16", (2, 200, 200), q=8))
    p.add(Buffer("y", "i16", (1, 200, 200), q=8))
    v, o, cp = np.ones(2, dtype=np.int16), np.array([0, 40000], dtype=np.uint16), np.array([0, 2], dtype=np.uint16)
    for name, arr, dtype in (("v", v, "i16"), ("o", o, "u16"), ("c", cp, "u16")):
        p.add(Buffer(name, dtype, arr.shape, data=arr))
    p.add(Buffer("b", "i32", (1,), data=np.zeros(1, dtype=np.int32)))
    step = Step("conv_sparse", "conv", ["x", "v", "o", "c", "b"], ["y"],
                {"kernel": [1, 1], "stride": [1, 1], "pads": [0, 0, 0, 0], "dilation": [1, 1], "group": 1,
                 "shift": [0], "act": "none"})
    p.steps.append(step)
    env = StepEnv(p, step, 0, "fx_big_", lambda n: n, lambda n: "FX_FRAM")
    with pytest.raises(UnsupportedError, match="80000 elements"):
        PRINTERS["conv_sparse"](env)
    p.buffers["x"].shape = (1, 200, 200)
    v, o, cp = K.conv_sparse_from_dense(np.ones((1, 1, 1, 1), dtype=np.int16), (200, 200))
    p.buffers["v"].data, p.buffers["o"].data, p.buffers["c"].data = v, o, cp
    p.buffers["v"].shape = p.buffers["o"].shape = v.shape
    assert "fx_conv_sparse_t" in PRINTERS["conv_sparse"](env).defs[-1].definition

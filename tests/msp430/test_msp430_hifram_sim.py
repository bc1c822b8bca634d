"""Activations in HIFRAM (above 64 KiB, -mlarge) on the MSP430 simulator: the kernels and the
generated code address them with 20-bit pointers, bit for bit as the host does.

- A CIFAR-shaped CNN whose first feature map is 64 KiB (3x32x32 input, conv 3->32: 32768 int16,
  more than a 16-bit byte offset reaches) compiles for the FR5994 with it in HIFRAM; the
  simulator's outputs equal the host build's, and the planner's memory figures the ELF's.
- A channel-last 64x64x8 input transposed by the generated loop (no kernel): both 64 KiB buffers in
  HIFRAM.
- The samples planned with every activation in HIFRAM (``persistent`` and no lower FRAM left for
  activations): every dense kernel and every piece of generated code (input and output copies,
  concat, add, argmax) reads and writes above 64 KiB.
- The sparse kernels with their input and output in HIFRAM: fx_sparse.c walks the input with
  16-bit adds on its fast paths, so an input above 64 KiB must take its portable fallbacks
  (fx_fc_sparse_far, the chunked conv path; FX_SPARSE_NEAR) and an output above 64 KiB is stored
  with MOVX.W; with the input below 64 KiB and the output above, the assembly paths run (a build
  whose FX_SPARSE_NEAR always says near faults on the first case). A pruned LeNet-5 compiled
  sparse with every activation in HIFRAM equals the interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from msp430_testlib import REPO, build_msp430, msp430_tc  # noqa: F401
from test_msp430_models_sim import check_memory_agrees, check_sim_equals_host, compile_package, make_inputs

from passes.plan_memory import LOWER_FRAM_BYTES, PlanMemoryOptions, estimate_rodata_bytes
from transpiler import hostrun
from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.lir import kernels as K
from transpiler.lir.ir import Program
from transpiler.lir.qio import quantize_inputs
from transpiler.loader import load
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext
from transpiler.sim import run_elf, run_model
from transpiler.toolchain import Msp430Toolchain

TESTS = REPO / "tests"
for sub in ("", "backend"):
    if str(TESTS / sub) not in sys.path:
        sys.path.append(str(TESTS / sub))
from emit_c_helpers import emit, interp_outputs, pack_inputs, random_inputs  # noqa: E402
from tiny_models import cifar_like  # noqa: E402

UPPER = '__attribute__((section(".upper.persistent")))'


def test_cifar_like_with_a_64k_feature_map_in_hifram_sim_equals_host(tmp_path: Path,
                                                                     msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    proto, x = cifar_like(c1=32, c2=8, n=8, seed=2)
    out = tmp_path / "cifar"
    man = compile_package(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": x}), out)
    spaces = {b["name"]: (b["space"], b["bytes"]) for b in man["buffers"] if b["kind"] == "activation"}
    assert spaces["r1"] == ("hifram", 65536) and man["plan"]["memory_model"] == "large"
    quantised = hostrun.quantize(man, {"x": x[:2]})
    check_sim_equals_host(out, man, make_inputs(man, quantised, 3, seed=4), msp430_tc)
    check_memory_agrees(out, man, msp430_tc)


def test_transpose_of_a_64k_channel_last_input_in_hifram_sim_equals_host(tmp_path: Path,
                                                                         msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    """A channel-last 64x64x8 input (32768 int16: element indices past 16-bit byte offsets) made
    channel-first by the generated transpose loop, both 64 KiB buffers in HIFRAM."""
    import onnx.helper as oh

    rng = np.random.default_rng(11)
    w = onnx.numpy_helper.from_array((rng.standard_normal((10, 8)) * 0.3).astype(np.float32), "W")
    b = onnx.numpy_helper.from_array(np.zeros(10, dtype=np.float32), "B")
    nodes = [oh.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             oh.make_node("MaxPool", ["t"], ["p"], kernel_shape=[4, 4], strides=[4, 4]),
             oh.make_node("GlobalAveragePool", ["p"], ["g"]),
             oh.make_node("Flatten", ["g"], ["f"]),
             oh.make_node("Gemm", ["f", "W", "B"], ["y"], transB=1)]
    graph = oh.make_graph(nodes, "nhwc", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64, 64, 8])],
                          [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])], [w, b])
    proto = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)], ir_version=8)
    x = rng.standard_normal((4, 64, 64, 8)).astype(np.float32)
    out = tmp_path / "nhwc"
    man = compile_package(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": x}), out)
    assert "transpose" in man["ops"]
    big = {b["space"] for b in man["buffers"] if b["kind"] == "activation" and b["bytes"] == 65536}
    assert big == {"hifram"}, man["buffers"]
    check_sim_equals_host(out, man, make_inputs(man, hostrun.quantize(man, {"x": x[:1]}), 2, seed=5), msp430_tc)


def all_in_hifram(program: Program, out: Path) -> dict[str, object]:
    """Emit ``program`` with every activation in HIFRAM: persistent (no SRAM arena) and a code
    figure that leaves lower FRAM no byte for activations (beside the application's reserve)."""
    info = emit(program, out, plan=True, persistent=True,
                code=LOWER_FRAM_BYTES - PlanMemoryOptions().app_reserve - estimate_rodata_bytes(program, large=True))
    man = hostrun.load_manifest(out)
    acts = [b for b in man["buffers"] if b["kind"] == "activation"]
    assert acts and all(b["space"] == "hifram" for b in acts), [(b["name"], b["space"]) for b in acts]
    return info


@pytest.mark.parametrize("name", ["tiny_residual", "tiny_conv1d", "cnn_digits", "mlp_digits_sklearn", "lenet5_mnist"])
def test_sample_with_every_activation_in_hifram_sim_equals_host(name: str, tmp_path: Path,
                                                                msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    model_path, data_path = REPO / "samples" / f"{name}.onnx", REPO / "samples" / f"{name}.npz"
    if not model_path.is_file() or not data_path.is_file():
        pytest.skip(f"samples/{name} is absent (python samples/make_all.py makes it)")
    model = load(str(model_path))
    ds = load_dataset(data_path, input_specs(model.graph))
    program, _ = run_pipeline(model, "normalize,quantize,lower", PassContext(data=ds), verify=False)
    assert isinstance(program, Program)
    out = tmp_path / name
    all_in_hifram(program, out)
    man = hostrun.load_manifest(out)
    rows = [hostrun.quantize(man, ds.inputs_for(i)) for i in range(2)]
    check_sim_equals_host(out, man, make_inputs(man, np.concatenate(rows), 3, seed=len(name)), msp430_tc)


def _arr(decl: str, name: str, a: np.ndarray, attr: str = "") -> str:
    flat = np.asarray(a).reshape(-1).astype(np.int64)
    return f"{decl} {name}[{flat.size}] {attr} = {{{', '.join(str(int(v)) for v in flat)}}};"


def _act(act: K.Act) -> str:
    kind = {"none": "FX_ACT_NONE", "relu": "FX_ACT_RELU", "clip": "FX_ACT_CLIP", "leaky": "FX_ACT_LEAKY"}[act.kind]
    return f"{{ {kind}, {act.lo}, {act.hi}, {act.alpha} }}"


def sparse_cases() -> str:
    """A C program that runs fx_fc_sparse and fx_conv_sparse with the input and the output in
    HIFRAM (and the input in lower FRAM, the output in HIFRAM) over tiles, and returns 1 + the index
    of the first case whose outputs differ from numpy's (0: all equal)."""
    rng = np.random.default_rng(7)
    decls = ["#include <stdint.h>", '#include "fx_kernels.h"',
             f"static int16_t y_hi[2048] {UPPER} = {{0}};",
             "static int check(const int16_t *want, uint16_t n)",
             "{", "    uint16_t i;", "    for (i = 0; i < n; ++i) {",
             "        if (y_hi[i] != want[i]) {", "            return 1;", "        }",
             "        y_hi[i] = 0;", "    }", "    return 0;", "}"]
    calls: list[str] = []
    # fc: ReLU with shifts in 1..16 (the assembly row loop when x is near), clip (the C loop)
    for i, (k, n, density, act, shifts) in enumerate([(200, 16, 0.1, K.Act("relu"), (1, 17)),
                                                       (60, 9, 0.4, K.Act("clip", lo=-900, hi=3000), (-2, 20))]):
        x = rng.integers(-32768, 32768, k).astype(np.int16)
        w = np.where(rng.random((n, k)) < density, rng.integers(-32768, 32768, (n, k)), 0).astype(np.int16)
        b = rng.integers(-2**31, 2**31, n, dtype=np.int64).astype(np.int32)
        s = rng.integers(shifts[0], shifts[1], n)
        want = K.fc(x, w, b, s, act)
        v, c, rp = K.csr_from_dense(w)
        p = f"f{i}"
        decls += [_arr("static int16_t", f"{p}x_hi", x, UPPER), _arr("static const int16_t", f"{p}x_lo", x),
                  _arr("static const int16_t", f"{p}v", v), _arr("static const uint16_t", f"{p}c", c),
                  _arr("static const uint16_t", f"{p}r", rp), _arr("static const int32_t", f"{p}b", b),
                  _arr("static const int8_t", f"{p}s", s), _arr("static const int16_t", f"{p}want", want),
                  f"static const fx_fc_sparse_t {p} = {{ {k}u, {n}u, {p}v, {p}c, {p}r, {p}b, {p}s, "
                  f"{int(s.min())}, {int(s.max())}, {_act(act)} }};"]
        for xs in ("x_hi", "x_lo"):
            calls += [f"    fx_fc_sparse(&{p}, {p}{xs}, y_hi, {n // 2}u, {n}u);",
                      f"    fx_fc_sparse(&{p}, {p}{xs}, y_hi, 0u, {n // 2}u);",
                      f"    if (check({p}want, {n}u)) return {len(calls) // 3 + 1};"]
    # conv: few taps per channel (the fast path when x is near), a padded 3x3 and a strided one
    for j, (cin, h, wd, cout, kh, kw, stride, pads, density, act) in enumerate([
            (4, 9, 11, 3, 3, 3, (1, 1), (1, 1, 1, 1), 0.3, K.Act("relu")),
            (6, 10, 10, 4, 5, 5, (2, 2), (2, 2, 2, 2), 0.15, K.Act("none"))]):
        x = rng.integers(-32768, 32768, (cin, h, wd)).astype(np.int16)
        w = np.where(rng.random((cout, cin, kh, kw)) < density,
                     rng.integers(-32768, 32768, (cout, cin, kh, kw)), 0).astype(np.int16)
        b = rng.integers(-2**20, 2**20, cout).astype(np.int32)
        s = rng.integers(1, 20, cout)
        want = K.conv(x, w, b, stride, pads, (1, 1), 1, s, act)
        oh, ow = want.shape[1:]
        v, o, cp = K.conv_sparse_from_dense(w, (h, wd))
        p = f"c{j}"
        decls += [_arr("static int16_t", f"{p}x_hi", x, UPPER), _arr("static const int16_t", f"{p}x_lo", x),
                  _arr("static const int16_t", f"{p}v", v), _arr("static const uint16_t", f"{p}o", o),
                  _arr("static const uint16_t", f"{p}c", cp), _arr("static const int32_t", f"{p}b", b),
                  _arr("static const int8_t", f"{p}s", s), _arr("static const int16_t", f"{p}want", want),
                  f"static const fx_conv_sparse_t {p} = {{ {cin}u, {h}u, {wd}u, {cout}u, {oh}u, {ow}u, {kh}u, "
                  f"{kw}u, {stride[0]}u, {stride[1]}u, 1u, 1u, {pads[0]}u, {pads[1]}u, 1u, "
                  f"{p}v, {p}o, {p}c, {p}b, {p}s, {_act(act)} }};"]
        for xs in ("x_hi", "x_lo"):
            calls += [f"    fx_conv_sparse(&{p}, {p}{xs}, y_hi, 0u, {cout}u, {oh // 2}u, {oh}u);",
                      f"    fx_conv_sparse(&{p}, {p}{xs}, y_hi, 0u, {cout}u, 0u, {oh // 2}u);",
                      f"    if (check({p}want, {cout * oh * ow}u)) return {len(calls) // 3 + 1};"]
    return "\n".join(decls) + "\n\nint main(void)\n{\n" + "\n".join(calls) + "\n    return 0;\n}\n"


def test_sparse_kernels_with_activations_in_hifram_match_numpy(tmp_path: Path,
                                                               msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    src = tmp_path / "sparse_hifram.c"
    src.write_text(sparse_cases())
    runtime = REPO / "runtime_c"
    elf = build_msp430(msp430_tc, [src, runtime / "fx_sparse.c", runtime / "fx_requant.c"],
                       tmp_path / "sparse_hifram.elf", flags=["-DFX_USE_MPY32", "-mlarge"])
    nm = subprocess.run([str(msp430_tc.tool("nm")), str(elf)], capture_output=True, text=True, check=True).stdout
    where = {ln.split()[-1]: int(ln.split()[0], 16) for ln in nm.splitlines() if len(ln.split()) == 3}
    for name in ("y_hi", "f0x_hi", "f1x_hi", "c0x_hi", "c1x_hi", "f0x_lo", "c0x_lo"):
        assert (where[name] >= 0x10000) == name.endswith("_hi"), (name, hex(where[name]))
    r = run_elf(elf, toolchain=msp430_tc, max_cycles=100_000_000, timeout=300)
    assert r.exit_reason == "halt" and r.returncode == 0, (
        f"case {r.returncode - 1}: a sparse kernel's output differs from numpy with activations in HIFRAM "
        f"({r.exit_reason}); stderr: {r.stderr[-500:]}")


def test_pruned_lenet_sparse_with_every_activation_in_hifram_equals_interpreter(
        tmp_path: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    from test_sparse_e2e import compile_lir, dataset, prune_model

    model = prune_model("lenet5_mnist", 0.9, tmp_path)
    ds = dataset("lenet5_mnist", model)
    program, _ = compile_lir(model, ds, "always", tmp_path / "lir")
    assert {s.op for s in program.steps} >= {"conv_sparse", "fc_sparse"}
    out = tmp_path / "c"
    info = all_in_hifram(program, out)
    inputs = [quantize_inputs(program, ds.inputs_for(i)) for i in range(2)] + random_inputs(program, 2, seed=3)
    want = interp_outputs(program, inputs)
    r = run_model(out, str(info["c_name"]), [row.tolist() for row in pack_inputs(program, inputs)],
                  toolchain=msp430_tc, max_cycles=500_000_000, timeout=600).check()
    got = r.output().outputs
    assert sorted(got) == list(range(len(inputs)))
    for i in range(len(inputs)):
        assert got[i] == want[i].tolist(), f"input {i}: the simulator differs from the interpreter"

"""The sparse kernels (runtime_c/fx_sparse.c) on the MSP430 simulator equal numpy, and so do whole
pruned models compiled with sparse weights.

The MSP430 build of fx_sparse.c uses its own inline-assembly multiply-accumulate (FX_SPARSE_MAC:
index load, address add, MACS/OP2) and ADDA with 20-bit pointers in the large model; the host
tests never run that code. Here:

- generated programs hold a layer's input, compressed weights, bias, shifts and numpy's expected
  output as constants, call the kernel over tiles (and again over the whole step) and fail (exit
  status 255) on the first wrong output; every case runs with MPY32 (small and large model, weights
  in HIFRAM) and with the portable C MAC;
- pruned LeNet-5 (sparse=always, small model) and the pruned big MLP (sparse=auto, large model)
  go through emit-c and `make msp430`; the simulator's outputs equal the interpreter's.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from msp430_testlib import REPO, build_msp430, msp430_tc  # noqa: F401

from transpiler.lir import kernels as K
from transpiler.sim import run_elf, run_model
from transpiler.toolchain import Msp430Toolchain

PLATFORM = REPO / "runtime_c" / "platform" / "msp430"
VARIANTS = {
    "mpy32": ["-DFX_USE_MPY32"],
    "portable": [],
    "mpy32-large": ["-DFX_USE_MPY32", "-mlarge"],
}


@dataclass(frozen=True)
class ConvCase:
    """conv geometry + density + activation: (cin, h, w, cout, kh, kw, stride, pads, dilation, group)."""

    name: str
    geo: tuple[int, int, int, int, int, int, tuple[int, int], tuple[int, int, int, int], tuple[int, int], int]
    density: float
    act: K.Act = K.Act("none")


# Shifts are drawn from [-2, 24): the assembly's fast requantisation covers 1..16 with act none
# and ReLU; the others (and clip, leaky) go through fx_sparse_slow. Full-range inputs and weights
# saturate many outputs both ways.
CONV_CASES = [
    ConvCase("interior-5x5", (6, 12, 12, 4, 5, 5, (1, 1), (0, 0, 0, 0), (1, 1), 1), 0.1, K.Act("relu")),
    ConvCase("padded-3x3", (4, 9, 11, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1), 0.3),
    ConvCase("chunked", (10, 6, 7, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1), 0.9, K.Act("clip", lo=-900, hi=3000)),
    ConvCase("strided-dilated-grouped", (4, 9, 9, 4, 3, 2, (2, 1), (2, 0, 1, 1), (2, 2), 2), 0.5,
             K.Act("leaky", alpha=3277)),
    ConvCase("depthwise-1d", (3, 1, 20, 3, 1, 5, (1, 2), (0, 2, 0, 2), (1, 1), 3), 0.6, K.Act("relu")),
    ConvCase("wide-padding", (2, 3, 4, 5, 3, 5, (1, 1), (2, 3, 2, 3), (1, 1), 1), 0.5, K.Act("relu")),
    # channels of more than FX_SPARSE_RUN_TAPS (32) taps: groups of 32 with partial sums
    # (fx_sparse_long), inside, in bands of rows with borders, strided, dilated, grouped; rows wider
    # than FX_SPARSE_ACC (64) outputs take the chunked path
    ConvCase("long-inside", (12, 4, 5, 2, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1), 0.6, K.Act("relu")),
    ConvCase("long-bands", (6, 10, 10, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1), 0.9, K.Act("relu")),
    ConvCase("long-strided-dilated-grouped", (12, 7, 7, 4, 3, 3, (2, 1), (2, 1, 1, 1), (2, 1), 2), 0.9),
    ConvCase("long-wide-rows-chunked", (5, 2, 66, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1), 0.9),
]
EDGE_SHIFTS = (1, 2, 9, 14, 15, 16)


def _act_init(act: K.Act) -> str:
    kind = {"none": "FX_ACT_NONE", "relu": "FX_ACT_RELU", "clip": "FX_ACT_CLIP", "leaky": "FX_ACT_LEAKY"}[act.kind]
    return f"{{ {kind}, {act.lo}, {act.hi}, {act.alpha} }}"


def edge_conv() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 1x1 conv whose accumulators (bias + x, one weight 1 per channel) sit at requant's edges:
    for each shift of EDGE_SHIFTS, channels around the positive and the negative saturation bound,
    around INT32_MIN and where acc + 2^(shift-1) wraps past INT32_MAX. Returns x, w, b, shift."""
    x = np.concatenate([np.arange(-40, 41), [-32768, -32767, 32766, 32767],
                        np.linspace(-32768, 32767, 43).astype(np.int64)]).astype(np.int16).reshape(1, 8, 16)
    biases, shifts = [], []
    for s in EDGE_SHIFTS:
        half = 1 << (s - 1)
        for edge in ((1 << (15 + s)) - half, -(1 << (15 + s)) - half, -2**31 + 40, 2**31 - half - 20):
            biases.append(edge)
            shifts.append(s)
    b = np.array([(v + 2**31) % 2**32 - 2**31 for v in biases], dtype=np.int64).astype(np.int32)
    w = np.ones((b.size, 1, 1, 1), dtype=np.int16)
    return x, w, b, np.array(shifts)


@dataclass(frozen=True)
class FcCase:
    """fc: k inputs, n outputs, density, activation and the range the shifts are drawn from. The
    assembly row loop takes ReLU with every shift in 1..16 and none with every shift in 1..15 (rows
    of up to 64 stored weights through its chain, longer ones by eights); the rest is C."""

    name: str
    k: int
    n: int
    density: float
    act: K.Act
    shifts: tuple[int, int]


FC_CASES = [
    FcCase("fc-40x9-out-of-range-shifts", 40, 9, 0.2, K.Act("relu"), (-3, 31)),
    FcCase("fc-200x16-relu", 200, 16, 0.05, K.Act("relu"), (1, 17)),
    FcCase("fc-17x5-dense-none", 17, 5, 1.0, K.Act("none"), (1, 16)),
    FcCase("fc-100x6-long-rows-relu", 100, 6, 0.7, K.Act("relu"), (9, 17)),
    FcCase("fc-90x4-long-rows-none", 90, 4, 0.8, K.Act("none"), (12, 16)),
    FcCase("fc-50x8-clip", 50, 8, 0.3, K.Act("clip", lo=-900, hi=3000), (1, 17)),
]


def edge_fc(shifts: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An fc whose accumulators (bias + x[c] * 1 + x[c + 1] * 1) sit at requant's edges, as in
    :func:`edge_conv`, with rows of 0, 1 and 2 stored weights. Returns x, w, b, shift."""
    x = np.array([1, -20, 32767, -32768, 7], dtype=np.int16)
    rows, biases, shifts_out = [], [], []
    for s in shifts:
        half = 1 << (s - 1)
        for edge in ((1 << (15 + s)) - half, -(1 << (15 + s)) - half, -2**31 + 40, 2**31 - half - 20):
            for c in range(x.size - 1):
                row = np.zeros(x.size, dtype=np.int16)
                row[c] = 1
                row[c + 1] = 1 if c % 2 else 0
                rows.append(row)
                biases.append(edge)
                shifts_out.append(s)
    b = np.array([(v + 2**31) % 2**32 - 2**31 for v in biases], dtype=np.int64).astype(np.int32)
    w = np.stack(rows)
    w[::7] = 0  # rows without a stored weight
    return x, w, b, np.array(shifts_out)


def _arr(qual: str, ctype: str, name: str, a: np.ndarray, attr: str = "") -> str:
    flat = np.asarray(a).reshape(-1).astype(np.int64)
    return f"{qual} {ctype} {name}[{flat.size}] {attr} = {{{', '.join(str(int(v)) for v in flat)}}};\n"


def _pruned(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    w = rng.integers(-32768, 32768, shape).astype(np.int16)
    w = np.where(rng.random(shape) < density, w, 0).astype(np.int16)
    w[0] = 0  # an output with no stored weight
    return w


def case_program(kernel: str) -> str:
    """One C program running every case of `kernel` ("fc" or "conv": both together do not fit the
    small model's lower FRAM); main returns 1 + the failing case's index."""
    rng = np.random.default_rng(2024)
    decls = ["#include <stdint.h>", '#include "fx_kernels.h"',
             "#ifdef __MSP430X_LARGE__", "#define HI __attribute__((upper))", "#else", "#define HI", "#endif",
             "static int16_t y[Y_SIZE] __attribute__((persistent)) = {0};",
             "static int check(const int16_t *want, uint16_t n)",
             "{", "    uint16_t i;", "    for (i = 0; i < n; ++i) {", "        if (y[i] != want[i]) {",
             "            return 1;", "        }", "        y[i] = 0;", "    }", "    return 0;", "}", ""]
    calls: list[str] = []
    fc_layers = [(f"{c.name}", c.act, rng.integers(-32768, 32768, c.k).astype(np.int16),
                  _pruned(rng, (c.n, c.k), c.density),
                  rng.integers(-2**31, 2**31, c.n, dtype=np.int64).astype(np.int32),
                  rng.integers(c.shifts[0], c.shifts[1], c.n)) for c in FC_CASES]
    fc_layers += [(f"requant edges, act {act}", K.Act(act), *edge_fc(shifts)) for act, shifts in
                  (("relu", EDGE_SHIFTS), ("none", EDGE_SHIFTS[:-1]))]
    if kernel != "fc":
        fc_layers = []
    for i, (name, act, x, w, b, shift) in enumerate(fc_layers):
        n, k = w.shape
        want = K.fc(x, w, b, shift, act)
        v, c, rp = K.csr_from_dense(w)
        p = f"f{i}"
        decls += [f"/* {name} */", _arr("static const", "int16_t", f"{p}x", x),
                  _arr("static const", "int16_t", f"{p}v", v, "HI"), _arr("static const", "uint16_t", f"{p}c", c, "HI"),
                  _arr("static const", "uint16_t", f"{p}r", rp, "HI"), _arr("static const", "int32_t", f"{p}b", b),
                  _arr("static const", "int8_t", f"{p}s", shift), _arr("static const", "int16_t", f"{p}want", want),
                  f"static const fx_fc_sparse_t {p} = {{ {k}u, {n}u, {p}v, {p}c, {p}r, {p}b, {p}s, "
                  f"{int(shift.min())}, {int(shift.max())}, {_act_init(act)} }};\n"]
        half = n // 2
        calls += [f"    fx_fc_sparse(&{p}, {p}x, y, {half}u, {n}u);",
                  f"    fx_fc_sparse(&{p}, {p}x, y, 0u, {half}u);",
                  f"    if (check({p}want, {n}u)) return {len(calls) // 3 + 1};"]
    for j, case in enumerate(CONV_CASES if kernel == "conv" else []):
        cin, h, wd, cout, kh, kw, stride, pads, dil, group = case.geo
        x = rng.integers(-32768, 32768, (cin, h, wd)).astype(np.int16)
        w = _pruned(rng, (cout, cin // group, kh, kw), case.density)
        b = rng.integers(-2**20, 2**20, cout).astype(np.int32)
        shift = rng.integers(-2, 24, cout)
        want = K.conv(x, w, b, stride, pads, dil, group, shift, case.act)
        oh, ow = want.shape[1:]
        v, o, cp = K.conv_sparse_from_dense(w, (h, wd), dil)
        p = f"c{j}"
        decls += [f"/* {case.name} */", _arr("static const", "int16_t", f"{p}x", x),
                  _arr("static const", "int16_t", f"{p}v", v, "HI"), _arr("static const", "uint16_t", f"{p}o", o, "HI"),
                  _arr("static const", "uint16_t", f"{p}c", cp, "HI"), _arr("static const", "int32_t", f"{p}b", b),
                  _arr("static const", "int8_t", f"{p}s", shift), _arr("static const", "int16_t", f"{p}want", want),
                  f"static const fx_conv_sparse_t {p} = {{ {cin}u, {h}u, {wd}u, {cout}u, {oh}u, {ow}u, {kh}u, "
                  f"{kw}u, {stride[0]}u, {stride[1]}u, {dil[0]}u, {dil[1]}u, {pads[0]}u, {pads[1]}u, {group}u, "
                  f"{p}v, {p}o, {p}c, {p}b, {p}s, {_act_init(case.act)} }};\n"]
        # rows in reverse, one call each, then the whole step again
        calls += [f"    {{ uint16_t r; for (r = {oh}u; r-- > 0u;) fx_conv_sparse(&{p}, {p}x, y, 0u, {cout}u, r, "
                  f"(uint16_t)(r + 1u)); }}",
                  f"    if (check({p}want, {cout * oh * ow}u)) return {len(calls) // 3 + 1};",
                  f"    fx_conv_sparse(&{p}, {p}x, y, 0u, {cout}u, 0u, {oh}u);",
                  f"    if (check({p}want, {cout * oh * ow}u)) return {len(calls) // 3 + 1};"]
    for act in ("none", "relu") if kernel == "conv" else ():
        x, w, b, shift = edge_conv()
        want = K.conv(x, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, shift, act)
        cout, oh, ow = want.shape
        v, o, cp = K.conv_sparse_from_dense(w, x.shape[1:])
        p = f"e{act}"
        decls += [f"/* requant edges, act {act} */", _arr("static const", "int16_t", f"{p}x", x),
                  _arr("static const", "int16_t", f"{p}v", v, "HI"), _arr("static const", "uint16_t", f"{p}o", o, "HI"),
                  _arr("static const", "uint16_t", f"{p}c", cp, "HI"), _arr("static const", "int32_t", f"{p}b", b),
                  _arr("static const", "int8_t", f"{p}s", shift), _arr("static const", "int16_t", f"{p}want", want),
                  f"static const fx_conv_sparse_t {p} = {{ 1u, {oh}u, {ow}u, {cout}u, {oh}u, {ow}u, 1u, 1u, 1u, 1u, "
                  f"1u, 1u, 0u, 0u, 1u, {p}v, {p}o, {p}c, {p}b, {p}s, {_act_init(K.Act(act))} }};\n"]
        calls += [f"    fx_conv_sparse(&{p}, {p}x, y, 0u, {cout}u, 0u, {oh}u);",
                  f"    if (check({p}want, {cout * oh * ow}u)) return {len(calls) // 3 + 1};"]
    y_size = max(int(m) for m in re.findall(r"check\(\w+, (\d+)u\)", "\n".join(calls)))
    return ("\n".join(decls).replace("Y_SIZE", str(y_size)) + "\nint main(void)\n{\n" + "\n".join(calls)
            + "\n    return 0;\n}\n")


@pytest.mark.parametrize("kernel", ["fc", "conv"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sparse_kernels_match_numpy_on_sim(variant: str, kernel: str,
                                           msp430_tc: Msp430Toolchain,  # noqa: F811
                                           tmp_path: Path) -> None:
    src = tmp_path / "sparse_cases.c"
    src.write_text(case_program(kernel))
    runtime = REPO / "runtime_c"
    elf = build_msp430(msp430_tc, [src, runtime / "fx_sparse.c", runtime / "fx_requant.c"],
                       tmp_path / f"sparse-{variant}.elf", flags=VARIANTS[variant])
    r = run_elf(elf, toolchain=msp430_tc, max_cycles=300_000_000, timeout=600)
    assert r.exit_reason == "halt" and r.returncode == 0, (
        f"{variant}, {kernel}: a sparse kernel's output differs from numpy (exit {r.returncode}, {r.exit_reason}); "
        f"stderr: {r.stderr[-500:]}")


@pytest.mark.parametrize("name, fraction, mode", [("lenet5_mnist", 0.9, "always"),
                                                   ("mlp_mnist_big", 0.95, "auto")])
def test_pruned_model_on_sim_equals_interpreter(name: str, fraction: float, mode: str,
                                                msp430_tc: Msp430Toolchain,  # noqa: F811
                                                tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "backend"))
    from emit_c_helpers import emit, interp_outputs, pack_inputs, random_inputs
    from test_sparse_e2e import compile_lir, dataset, prune_model

    from transpiler.lir.qio import quantize_inputs

    model = prune_model(name, fraction, tmp_path)
    ds = dataset(name, model)
    program, _ = compile_lir(model, ds, mode, tmp_path / "lir")
    assert any(s.op.endswith("_sparse") for s in program.steps)
    out = tmp_path / "c"
    info = emit(program, out)
    inputs = [quantize_inputs(program, ds.inputs_for(i)) for i in range(3)] + random_inputs(program, 2, seed=3)
    want = interp_outputs(program, inputs)
    r = run_model(out, info["c_name"], [row.tolist() for row in pack_inputs(program, inputs)],
                  toolchain=msp430_tc, max_cycles=2_000_000_000, timeout=900).check()
    got = r.output().outputs
    assert sorted(got) == list(range(len(inputs)))
    for i in range(len(inputs)):
        assert got[i] == want[i].tolist(), f"input {i}: the simulator differs from the interpreter"

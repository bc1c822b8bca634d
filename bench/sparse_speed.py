"""Sparse kernels vs dense kernels on the MSP430 simulator: speed-up and its share of 1/density.

    python bench/sparse_speed.py                  # every layer, densities 1.0 0.5 0.2 0.1 0.05 0.02
    python bench/sparse_speed.py --layers fc784 --densities 0.1 0.05

Each measurement is its own program (msp430-elf-gcc -O2, MPY32 MAC, the flags of msp430.mk): the
layer's input, weights (dense, or compressed as the LIR's fc_sparse / conv_sparse hold them), bias
and shifts are constant arrays, weights in HIFRAM with -mlarge for the big fc layers; the program
reads the simulator's cycle counter around one kernel call over the whole layer (or, for the
784-input fc, the first `rows` outputs: the dense table of all 256 does not fit the FR5994's
HIFRAM; per-output costs are the same for every row, so cycles scale with the row count), then
compares the outputs with numpy's reference (transpiler.lir.kernels) and fails on any difference.

The dense kernel is measured once (its cost does not depend on the values); the sparse kernel at
every density, with exactly round(density * size) non-zero weights at uniformly random positions.
Printed per layer and density: cycles, cycles per stored weight, speed-up = dense / sparse, the
ideal 1/density and the fraction of it reached (target: >= 70 % for density <= 10 %). Never part
of the tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from transpiler.errors import FreemlError  # noqa: E402
from transpiler.lir import kernels as K  # noqa: E402
from transpiler.sim import run_elf  # noqa: E402
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain  # noqa: E402

RUNTIME = REPO / "runtime_c"
PLATFORM = RUNTIME / "platform" / "msp430"
CFLAGS = ["-mmcu=msp430fr5994", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
          "--param=min-pagesize=0", "-ffunction-sections", "-fdata-sections", "-DFX_SIM_COUNTERS",
          "-DFX_USE_MPY32"]
LDFLAGS = ["-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments"]
DENSITIES = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)
TARGET = 0.70


@dataclass(frozen=True)
class Layer:
    """fc: dims (k, n, rows measured); conv: (cin, h, w, cout, kh, kw, pad)."""

    key: str
    label: str
    kind: str
    dims: tuple[int, ...]
    large: bool

    def weight_shape(self) -> tuple[int, ...]:
        if self.kind == "fc":
            k, _, rows = self.dims
            return (rows, k)
        cin, _, _, cout, kh, kw, _ = self.dims
        return (cout, cin, kh, kw)

    def outputs(self) -> int:
        """Outputs of one measured call."""
        if self.kind == "fc":
            return self.dims[2]
        cin, h, w, cout, kh, kw, pad = self.dims
        return cout * (h + 2 * pad - kh + 1) * (w + 2 * pad - kw + 1)

    def channels(self) -> int:
        """Rows of the compressed weights (fc outputs, conv output channels)."""
        return self.dims[2] if self.kind == "fc" else self.dims[3]

    def scale(self) -> float:
        """Measured outputs -> the whole layer (fc rows measured of n)."""
        if self.kind == "fc":
            _, n, rows = self.dims
            return n / rows
        return 1.0


LAYERS = [
    Layer("fc784", "fc 784 -> 256 (first 64 rows, -mlarge, HIFRAM)", "fc", (784, 256, 64), True),
    Layer("fc256", "fc 256 -> 256 (-mlarge, HIFRAM)", "fc", (256, 256, 256), True),
    Layer("conv5x5", "conv 5x5 6 -> 16 ch, 12x12 -> 8x8 (LeNet conv2)", "conv",
          (6, 12, 12, 16, 5, 5, 0), False),
    Layer("conv3x3", "conv 3x3 pad 1, 16 -> 16 ch, 16x16", "conv", (16, 16, 16, 16, 3, 3, 1), False),
    Layer("conv3x3w", "conv 3x3 pad 1, 64 -> 32 ch, 8x8 (576 weights per channel; -mlarge, HIFRAM)", "conv",
          (64, 8, 8, 32, 3, 3, 1), True),
]


def pruned(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    """int16 weights with exactly round(density * size) non-zero entries at random positions."""
    size = int(np.prod(shape))
    keep = int(round(density * size))
    w = np.zeros(size, dtype=np.int16)
    pos = rng.choice(size, size=keep, replace=False)
    mag = rng.integers(1, 4096, size=keep)
    w[pos] = np.where(rng.random(keep) < 0.5, -mag, mag)
    return w.reshape(shape)


def c_array(qual: str, ctype: str, name: str, values: np.ndarray, attr: str = "") -> str:
    flat = np.asarray(values).reshape(-1).astype(np.int64)
    body = ",".join(str(int(v)) for v in flat)
    return f"{qual} {ctype} {name}[{flat.size}] {attr} = {{{body}}};\n"


def program(layer: Layer, w: np.ndarray, sparse: bool, rng: np.random.Generator) -> str:
    """The C program measuring one kernel call; returns 1 (a fault) when y != numpy."""
    big = "BIG"
    decl = ["#include <stdint.h>", '#include "fx_kernels.h"', '#include "fx_platform_msp430.h"',
            "#ifdef __MSP430X_LARGE__", "#define BIG __attribute__((upper))",
            "#define OUT __attribute__((section(\".upper.persistent\")))",
            "#else", "#define BIG", "#define OUT __attribute__((persistent))", "#endif", ""]
    if layer.kind == "fc":
        k, _, rows = layer.dims
        x = rng.integers(-8192, 8192, size=k).astype(np.int16)
        b = rng.integers(-2**20, 2**20, size=rows).astype(np.int32)
        shift = np.full(rows, 14)
        want = K.fc(x, w, b, shift, "relu")
        decl.append(c_array("static const", "int16_t", "x", x))
        decl.append(c_array("static const", "int32_t", "bias", b))
        decl.append(c_array("static const", "int8_t", "shift", shift))
        decl.append(c_array("static const", "int16_t", "want", want))
        decl.append(f"static int16_t y[{rows}] OUT = {{0}};\n")
        if sparse:
            values, deltas, rowptr = K.csr_from_dense(w)
            decl.append(c_array("static const", "int16_t", "values", values, big))
            decl.append(c_array("static const", "uint16_t", "deltas", deltas, big))
            decl.append(c_array("static const", "uint16_t", "rowptr", rowptr, big))
            setup = (f"    static const fx_fc_sparse_t p = {{ {k}u, {rows}u, values, deltas, rowptr, bias, "
                     f"shift, 14, 14, {{ FX_ACT_RELU, 0, 0, 0 }} }};\n")
            call = f"fx_fc_sparse(&p, x, y, 0u, {rows}u);"
        else:
            decl.append(c_array("static const", "int16_t", "w", w, big))
            setup = (f"    static const fx_fc_t p = {{ {k}u, {rows}u, w, bias, shift, "
                     f"{{ FX_ACT_RELU, 0, 0, 0 }} }};\n")
            call = f"fx_fc(&p, x, y, 0u, {rows}u);"
        n_out = rows
    else:
        cin, h, wd, cout, kh, kw, pad = layer.dims
        oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
        x = rng.integers(-8192, 8192, size=(cin, h, wd)).astype(np.int16)
        b = rng.integers(-2**20, 2**20, size=cout).astype(np.int32)
        shift = np.full(cout, 14)
        want = K.conv(x, w, b, (1, 1), (pad, pad, pad, pad), (1, 1), 1, shift, "relu")
        decl.append(c_array("static const", "int16_t", "x", x))
        decl.append(c_array("static const", "int32_t", "bias", b))
        decl.append(c_array("static const", "int8_t", "shift", shift))
        decl.append(c_array("static const", "int16_t", "want", want))
        decl.append(f"static int16_t y[{cout * oh * ow}] OUT = {{0}};\n")
        geo = f"{cin}u, {h}u, {wd}u, {cout}u, {oh}u, {ow}u, {kh}u, {kw}u, 1u, 1u, 1u, 1u, {pad}u, {pad}u, 1u"
        if sparse:
            values, offsets, chanptr = K.conv_sparse_from_dense(w, (h, wd))
            decl.append(c_array("static const", "int16_t", "values", values, big))
            decl.append(c_array("static const", "uint16_t", "offsets", offsets, big))
            decl.append(c_array("static const", "uint16_t", "chanptr", chanptr, big))
            setup = (f"    static const fx_conv_sparse_t p = {{ {geo}, values, offsets, chanptr, bias, shift, "
                     f"{{ FX_ACT_RELU, 0, 0, 0 }} }};\n")
            call = f"fx_conv_sparse(&p, x, y, 0u, {cout}u, 0u, {oh}u);"
        else:
            decl.append(c_array("static const", "int16_t", "w", w, big))
            fields = ("cin", "ih", "iw", "cout", "oh", "ow", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl",
                      "group")
            named = ", ".join(f".{f} = {v}" for f, v in zip(fields, geo.split(", ")))
            # designated: the derived fields after act start at 0 for fx_conv_prepare, whatever they are
            setup = (f"    static fx_conv_t p = {{ {named}, .w = w, .bias = bias, .shift = shift, "
                     f".act = {{ FX_ACT_RELU, 0, 0, 0 }} }};\n"
                     "    fx_conv_prepare(&p);\n")
            call = f"fx_conv(&p, x, y, 0u, {cout}u, 0u, {oh}u);"
        n_out = cout * oh * ow
    return "\n".join(decl) + f"""
int main(void)
{{
{setup}    fx_sim_count_t t0, t1;
    uint16_t i;
    t0 = fx_sim_now();
    {call}
    t1 = fx_sim_now();
    fx_sim_report("step", 0, t0, t1);
    for (i = 0; i < {n_out}u; ++i) {{
        if (y[i] != want[i]) {{
            return 1;
        }}
    }}
    return 0;
}}
"""


def measure(tc: Msp430Toolchain, layer: Layer, w: np.ndarray, sparse: bool, work: Path, tag: str,
            seed: int) -> int:
    """Build and run one program; the cycles of the kernel call (raises when y != numpy)."""
    src = work / f"{tag}.c"
    src.write_text(program(layer, w, sparse, np.random.default_rng(seed)))
    elf = work / f"{tag}.elf"
    cmd = [str(tc.gcc), *CFLAGS, *(["-mlarge"] if layer.large else []), f"-I{RUNTIME}", f"-I{PLATFORM}",
           *LDFLAGS, "-T", str(PLATFORM / "fr5994.ld"), str(PLATFORM / "crt0.S"), str(PLATFORM / "cio.c"),
           str(PLATFORM / "fx_platform_msp430.c"), str(src), str(RUNTIME / "fx_sparse.c"),
           str(RUNTIME / "fx_fc.c"), str(RUNTIME / "fx_conv.c"), str(RUNTIME / "fx_requant.c"),
           "-lgcc", "-lmul_f5", "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"build of {tag} failed:\n{proc.stderr[-3000:]}")
    r = run_elf(elf, toolchain=tc, max_cycles=400_000_000, timeout=900)
    if not r.halted:
        raise SystemExit(f"{tag}: the kernel's output differs from numpy (or the run failed: "
                         f"{r.exit_reason}, status {r.returncode})")
    steps = r.output().steps
    if len(steps) != 1:
        raise SystemExit(f"{tag}: expected one measurement, got {r.stdout!r}")
    return steps[0].cycles


@dataclass(frozen=True)
class Row:
    layer: Layer
    density: float
    nnz: int
    cycles: int
    dense_cycles: int

    @property
    def speedup(self) -> float:
        return self.dense_cycles / self.cycles

    @property
    def fraction(self) -> float:
        return self.speedup * self.density


def explain(layer: Layer, rows: list[Row]) -> None:
    """What limits the layer: a least-squares fit, over the measured densities <= 0.1 (where every
    conv channel fits one tap table), of sparse cycles per output = F + c * (stored weights per
    output), against the dense kernel's cycles per output D; then speed-up = D / (F + c * d * T)
    with T weights per dense output, and its fraction of the ideal 1/d is d * D / (F + c * d * T):
    below D / (c * T) (about c_dense / c) at any density, and going to 0 with d because F stays."""
    pts = [r for r in rows if r.density <= 0.1]
    if len(pts) < 2:
        return
    t = np.array([r.nnz / layer.channels() for r in pts])        # stored weights per output
    y = np.array([r.cycles / layer.outputs() for r in pts])
    c, f = np.polyfit(t, y, 1)
    weights = int(np.prod(layer.weight_shape()[1:]))
    dense = pts[0].dense_cycles / layer.outputs()
    print(f"{layer.key}: sparse {f:.0f} + {c:.1f} x (stored weights per output) cycles per output; dense "
          f"{dense:.0f} per output ({dense / weights:.2f} per weight, per-output costs included); "
          f"best fraction of 1/density as density -> 1: {dense / (f + c * weights):.0%}, at 10 %: "
          f"{0.1 * dense / (f + c * 0.1 * weights):.0%}, at 2 %: {0.02 * dense / (f + c * 0.02 * weights):.0%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", nargs="*", default=[la.key for la in LAYERS],
                    help=f"which layers ({', '.join(la.key for la in LAYERS)})")
    ap.add_argument("--densities", nargs="*", type=float, default=list(DENSITIES))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        tc = find_msp430_toolchain()
    except FreemlError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    t_start = time.monotonic()
    layers = [la for la in LAYERS if la.key in args.layers]
    print(f"msp430-elf-gcc {tc.gcc_version()}; flags: {' '.join(CFLAGS)}\n")
    header = (f"{'layer':<48} {'density':>7} {'nnz':>7} {'cycles':>11} {'cyc/nnz':>8} "
              f"{'speed-up':>8} {'ideal':>6} {'of ideal':>8}")
    print(header)
    print("-" * len(header))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fx-sparse-bench-") as tmp:
        work = Path(tmp)
        for layer in layers:
            rng = np.random.default_rng(args.seed)
            dense_w = pruned(rng, layer.weight_shape(), 1.0)
            dense = measure(tc, layer, dense_w, False, work, f"{layer.key}-dense", args.seed)
            scale = layer.scale()
            print(f"{layer.label:<48} {'dense':>7} {dense_w.size:>7} {round(dense * scale):>11} "
                  f"{dense / dense_w.size:>8.2f} {1.0:>8.2f} {1.0:>6.1f} {'':>8}")
            for d in args.densities:
                w = pruned(np.random.default_rng(args.seed + 1000), layer.weight_shape(), d)
                nnz = int(np.count_nonzero(w))
                if nnz > K.SPARSE_INDEX_MAX:
                    print(f"{'':<48} {d:>7.2f} {nnz:>7}  (more than {K.SPARSE_INDEX_MAX} stored weights: "
                          f"dense only)")
                    continue
                cyc = measure(tc, layer, w, True, work, f"{layer.key}-{d}", args.seed)
                row = Row(layer, d, nnz, cyc, dense)
                rows.append(row)
                print(f"{'':<48} {d:>7.2f} {nnz:>7} {round(cyc * scale):>11} {cyc / max(nnz, 1):>8.2f} "
                      f"{row.speedup:>8.2f} {1 / d:>6.1f} {row.fraction:>7.0%}")
            sys.stdout.flush()
    print()
    for layer in layers:
        explain(layer, [r for r in rows if r.layer is layer])
    low = [r for r in rows if r.density <= 0.1]
    if low:
        worst = min(low, key=lambda r: r.fraction)
        verdict = "meets" if worst.fraction >= TARGET else "misses"
        print(f"\nworst fraction of the ideal 1/density speed-up at density <= 10 %: {worst.fraction:.0%} "
              f"({worst.layer.key} at {worst.density}) -> {verdict} the target of {TARGET:.0%}")
    print("cycles: the whole layer (fc784: 64 rows measured, scaled to 256); cyc/nnz: cycles per stored "
          "weight (dense: per weight); speed-up: dense cycles / sparse cycles")
    print(f"({time.monotonic() - t_start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

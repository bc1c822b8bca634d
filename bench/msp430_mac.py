"""Cycles and instructions per multiply-accumulate of the runtime's kernels on the MSP430 simulator.

    python bench/msp430_mac.py            # all layers, MPY32 and portable MAC
    python bench/msp430_mac.py --mpy32-only --disasm

Each layer is compiled into its own program (msp430-elf-gcc -O2, the flags of msp430.mk) that
fills its buffers from an LCG and reads the simulator's cycle/instruction counters around one
kernel call (FX_SIM_COUNTERS). Two sizes of each layer that differ only in the length of the
innermost reduction (fc: K; conv: input channels) give the cost of one more MAC with the per-output
overhead (bias, requant, activation, store, loop set-up) cancelled:

    per MAC = (count(large) - count(small)) / (MACs(large) - MACs(small))

and the "all-in" figure divides the large layer's whole count by its MACs. Activations and
weights live in FRAM (no wait states in the simulator's cycle model). Never part of the tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from transpiler.errors import FreemlError  # noqa: E402
from transpiler.sim import run_elf  # noqa: E402
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain  # noqa: E402

RUNTIME = REPO / "runtime_c"
PLATFORM = RUNTIME / "platform" / "msp430"
CFLAGS = ["-mmcu=msp430fr5994", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
          "--param=min-pagesize=0", "-ffunction-sections", "-fdata-sections", "-DFX_SIM_COUNTERS"]
LDFLAGS = ["-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments"]
TARGET_INSNS_PER_MAC = 4.5


@dataclass(frozen=True)
class Layer:
    """One kernel call: fc (k, n) or conv (cin, h, w, cout, kh, kw, pad, group).

    ``large``: build with -mlarge and the buffers in HIFRAM (needed for objects over 32 KiB,
    which the small memory model's 16-bit size_t cannot describe).
    """

    name: str
    kind: str
    dims: tuple[int, ...]
    large: bool = False

    def macs(self) -> int:
        if self.kind == "ppdot":
            k, n = self.dims
            return k * n
        if self.kind == "fc":
            k, n = self.dims
            return k * n
        cin, h, w, cout, kh, kw, pad, group = self.dims
        # exact count of taps inside the input (stride 1, symmetric padding)
        total = 0
        for oy in range(h + 2 * pad - kh + 1):
            for ox in range(w + 2 * pad - kw + 1):
                taps = sum(1 for ky in range(kh) for kx in range(kw)
                           if 0 <= oy - pad + ky < h and 0 <= ox - pad + kx < w)
                total += taps
        return total * cout * (cin // group)

    def c_setup(self) -> tuple[str, str]:
        """(buffer declarations, the code from filling to the measured call)."""
        if self.kind == "ppdot":
            k, n = self.dims
            decl = f"""
#include "fx_mac.h"
static int16_t bx[{k}] BIG = {{0}};
static int16_t bw[{k * n}] BIG = {{0}};
static int32_t by[{n}] BIG = {{0}};
/* what an fc row could cost: FX_MAC_PP unrolled four times (k a multiple of 4) */
static int32_t __attribute__((noinline)) dot(const int16_t *xp, const int16_t *wp)
{{
    const int16_t *end = xp + {k};
    FX_MAC_BEGIN(0);
    do {{ FX_MAC_PP(xp, wp); FX_MAC_PP(xp, wp); FX_MAC_PP(xp, wp); FX_MAC_PP(xp, wp); }}
    while (xp != end);
    return FX_MAC_END();
}}
"""
            code = f"""
    fill(bx, {k}); fill(bw, {k * n});
    t0 = fx_sim_now();
    for (i = 0; i < {n}; i++)
        by[i] = dot(bx, bw + (uint32_t)i * {k});
    t1 = fx_sim_now();
"""
            return decl, code
        if self.kind == "fc":
            k, n = self.dims
            decl = f"""
static int16_t bx[{k}] BIG = {{0}};
static int16_t bw[{k * n}] BIG = {{0}};
static int16_t by[{n}] BIG = {{0}};
static int32_t bb[{n}] BIG = {{0}};
static int8_t bs[{n}] BIG = {{0}};
"""
            code = f"""
    fx_fc_t p;
    fill(bx, {k}); fill(bw, {k * n});
    for (i = 0; i < {n}; i++) {{ bb[i] = (int32_t)rnd() << 4; bs[i] = 16; }}
    p.k = {k}; p.n = {n}; p.w = bw; p.bias = bb; p.shift = bs;
    p.act.kind = FX_ACT_RELU; p.act.lo = 0; p.act.hi = 0; p.act.alpha = 0;
    t0 = fx_sim_now();
    fx_fc(&p, bx, by, 0, {n});
    t1 = fx_sim_now();
"""
            return decl, code
        cin, h, w, cout, kh, kw, pad, group = self.dims
        oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
        nw = cout * (cin // group) * kh * kw
        decl = f"""
static int16_t bx[{cin * h * w}] BIG = {{0}};
static int16_t bw[{nw}] BIG = {{0}};
static int16_t by[{cout * oh * ow}] BIG = {{0}};
static int32_t bb[{cout}] BIG = {{0}};
static int8_t bs[{cout}] BIG = {{0}};
"""
        code = f"""
    fx_conv_t p;
    fill(bx, {cin * h * w}); fill(bw, {nw});
    for (i = 0; i < {cout}; i++) {{ bb[i] = (int32_t)rnd() << 4; bs[i] = 16; }}
    p.cin = {cin}; p.ih = {h}; p.iw = {w}; p.cout = {cout}; p.oh = {oh}; p.ow = {ow};
    p.kh = {kh}; p.kw = {kw}; p.sh = 1; p.sw = 1; p.dh = 1; p.dw = 1;
    p.pt = {pad}; p.pl = {pad}; p.group = {group};
    p.w = bw; p.bias = bb; p.shift = bs;
    p.act.kind = FX_ACT_RELU; p.act.lo = 0; p.act.hi = 0; p.act.alpha = 0;
    t0 = fx_sim_now();
    fx_conv(&p, bx, by, 0, {cout}, 0, {oh});
    t1 = fx_sim_now();
"""
        return decl, code


# (small, large): the same layer with a shorter and a longer innermost reduction.
PAIRS: list[tuple[str, Layer, Layer]] = [
    ("fc K=256 N=64 (-mlarge, weights in HIFRAM)",
     Layer("fc128x64L", "fc", (128, 64), large=True), Layer("fc256x64L", "fc", (256, 64), large=True)),
    ("fc K=256 N=32 (small model)", Layer("fc128x32", "fc", (128, 32)),
     Layer("fc256x32", "fc", (256, 32))),
    ("reference: FX_MAC_PP x4 dot, K=256 N=32", Layer("pp128x32", "ppdot", (128, 32)),
     Layer("pp256x32", "ppdot", (256, 32))),
    ("conv 3x3 pad 1, 16x16, cin 8->16, cout 16",
     Layer("conv3x3c8", "conv", (8, 16, 16, 16, 3, 3, 1, 1)),
     Layer("conv3x3c16", "conv", (16, 16, 16, 16, 3, 3, 1, 1))),
    ("conv 5x5 valid, 12x12, cin 3->6, cout 16",
     Layer("conv5x5c3", "conv", (3, 12, 12, 16, 5, 5, 0, 1)),
     Layer("conv5x5c6", "conv", (6, 12, 12, 16, 5, 5, 0, 1))),
    ("conv 1x1 (pointwise), 16x16, cin 16->32, cout 16",
     Layer("conv1x1c16", "conv", (16, 16, 16, 16, 1, 1, 0, 1)),
     Layer("conv1x1c32", "conv", (32, 16, 16, 16, 1, 1, 0, 1))),
]


def program(layer: Layer) -> str:
    decl, code = layer.c_setup()
    return f"""/* bench program: {layer.name} */
#include <stdint.h>
#ifdef __MSP430X_LARGE__
#define BIG __attribute__((section(".upper.persistent")))  /* HIFRAM */
#else
#define BIG __attribute__((persistent))
#endif
#include "fx_kernels.h"
#include "fx_platform_msp430.h"
{decl}
static uint32_t seed = 12345u;
static int16_t rnd(void) {{ seed = seed * 1664525u + 1013904223u; return (int16_t)(seed >> 16); }}
static void fill(int16_t *a, uint16_t n) {{ uint16_t i; for (i = 0; i < n; i++) a[i] = rnd(); }}

int main(void)
{{
    fx_sim_count_t t0, t1;
    uint16_t i;
{code}
    fx_sim_report("step", 0, t0, t1);
    return 0;
}}
"""


@dataclass(frozen=True)
class Count:
    cycles: int
    insns: int


def measure(tc: Msp430Toolchain, layer: Layer, mpy32: bool, work: Path) -> Count:
    """Build and run one layer; the counts of the kernel call."""
    tag = f"{layer.name}-{'mpy32' if mpy32 else 'portable'}"
    src = work / f"{tag}.c"
    src.write_text(program(layer))
    kernels = sorted(RUNTIME.glob("fx_*.c"))
    elf = work / f"{tag}.elf"
    cmd = [str(tc.gcc), *CFLAGS, *(["-DFX_USE_MPY32"] if mpy32 else []),
           *(["-mlarge"] if layer.large else []), f"-I{RUNTIME}",
           f"-I{PLATFORM}", *LDFLAGS, "-T", str(PLATFORM / "fr5994.ld"), str(PLATFORM / "crt0.S"),
           str(PLATFORM / "cio.c"), str(PLATFORM / "fx_platform_msp430.c"), str(src),
           *map(str, kernels), "-lgcc", "-lmul_f5", "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"build of {tag} failed:\n{proc.stderr}")
    r = run_elf(elf, toolchain=tc, max_cycles=500_000_000, timeout=600).check()
    steps = r.output().steps
    if len(steps) != 1:
        raise SystemExit(f"{tag}: expected one measurement, got {r.stdout!r}")
    return Count(steps[0].cycles, steps[0].instructions)


def inner_loop(tc: Msp430Toolchain, work: Path) -> str:
    """The disassembly of fx_fc with FX_USE_MPY32 (to read the inner loop)."""
    obj = work / "fx_fc.o"
    subprocess.run([str(tc.gcc), *CFLAGS, "-DFX_USE_MPY32", f"-I{RUNTIME}", "-c",
                    str(RUNTIME / "fx_fc.c"), "-o", str(obj)], check=True)
    return subprocess.run([str(tc.objdump), "-d", "-r", str(obj)], capture_output=True, text=True,
                          check=True).stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpy32-only", action="store_true", help="skip the portable MAC builds")
    ap.add_argument("--disasm", action="store_true", help="print fx_fc's code (FX_USE_MPY32)")
    args = ap.parse_args(argv)
    try:
        tc = find_msp430_toolchain()
    except FreemlError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    t_start = time.monotonic()
    variants = [True] if args.mpy32_only else [True, False]
    print(f"msp430-elf-gcc: {tc.gcc_version()}")
    print("flags: " + " ".join(CFLAGS) + " [-DFX_USE_MPY32]\n")
    header = (f"{'layer':<50} {'MAC':<9} {'MACs':>9} {'cyc/MAC':>8} {'ins/MAC':>8} "
              f"{'all-in cyc':>10} {'all-in ins':>10}")
    print(header)
    print("-" * len(header))
    worst_dense_ins = 0.0
    with tempfile.TemporaryDirectory(prefix="fx-bench-") as tmp:
        work = Path(tmp)
        for label, small, large in PAIRS:
            for mpy32 in (variants if small.kind != "ppdot" else [True]):
                a = measure(tc, small, mpy32, work)
                b = measure(tc, large, mpy32, work)
                dm = large.macs() - small.macs()
                cyc, ins = (b.cycles - a.cycles) / dm, (b.insns - a.insns) / dm
                if mpy32 and small.kind != "ppdot":
                    worst_dense_ins = max(worst_dense_ins, ins)
                print(f"{label:<50} {'MPY32' if mpy32 else 'portable':<9} {large.macs():>9} "
                      f"{cyc:>8.2f} {ins:>8.2f} {b.cycles / large.macs():>10.2f} "
                      f"{b.insns / large.macs():>10.2f}")
        if args.disasm:
            print("\n" + inner_loop(tc, work))
    verdict = "meets" if worst_dense_ins <= TARGET_INSNS_PER_MAC else "misses"
    print(f"\nworst MPY32 instructions per MAC (overhead cancelled): {worst_dense_ins:.2f} "
          f"-> {verdict} the target of <= {TARGET_INSNS_PER_MAC}")
    print("per MAC: the marginal cost of one more product; all-in: the large layer's whole count "
          "(bias, requant, activation, stores, loop set-up, border windows) over its MACs")
    print(f"({time.monotonic() - t_start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

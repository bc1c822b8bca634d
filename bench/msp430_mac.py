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

The second table gives per-call and per-output costs of the scalar and pooling kernels
(fx_requant at several shifts, maxpool/avgpool), measured the same way with the number of calls
or channels varied; the third, whole-layer counts of LeNet-5's layers (samples/lenet5_mnist).
Only the dense rows of the first table (fc and conv with cin / group > 1) count towards the
instructions-per-MAC target; depthwise rows show the all-in cost of 9-tap windows.
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
    """One kernel call: fc (k, n), conv (cin, h, w, cout, kh, kw, pad, group), requant (n, shift),
    maxpool/avgpool (c, h, w, k, stride, pad).

    ``large``: build with -mlarge and the buffers in HIFRAM (needed for objects over 32 KiB,
    which the small memory model's 16-bit size_t cannot describe).
    """

    name: str
    kind: str
    dims: tuple[int, ...]
    large: bool = False

    def macs(self) -> int:
        """MACs of the call (requant: calls; pooling: outputs)."""
        if self.kind == "requant":
            return self.dims[0]
        if self.kind in ("maxpool", "avgpool"):
            c, h, w, k, st, pad = self.dims
            return c * ((h + 2 * pad - k) // st + 1) * ((w + 2 * pad - k) // st + 1)
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
        if self.kind == "requant":
            n, shift = self.dims
            decl = f"""
static int32_t ba[{n}] BIG = {{0}};
static int16_t by[{n}] BIG = {{0}};
"""
            code = f"""
    fill(by, {n});  /* (fill is used by every program) */
    for (i = 0; i < {n}; i++) ba[i] = ((int32_t)rnd() << 8) ^ (int32_t)(uint16_t)rnd();
    t0 = fx_sim_now();
    for (i = 0; i < {n}; i++)
        by[i] = fx_requant(ba[i], {shift});
    t1 = fx_sim_now();
"""
            return decl, code
        if self.kind in ("maxpool", "avgpool"):
            c, h, w, k, st, pad = self.dims
            oh, ow = (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1
            decl = f"""
static int16_t bx[{c * h * w}] BIG = {{0}};
static int16_t by[{c * oh * ow}] BIG = {{0}};
"""
            code = f"""
    fx_pool_t p;
    i = 0; (void)i;
    fill(bx, {c * h * w});
    p.c = {c}; p.ih = {h}; p.iw = {w}; p.oh = {oh}; p.ow = {ow};
    p.kh = {k}; p.kw = {k}; p.sh = {st}; p.sw = {st}; p.dh = 1; p.dw = 1;
    p.pt = {pad}; p.pl = {pad}; p.pb = {pad}; p.pr = {pad}; p.count_include_pad = 0;
    t0 = fx_sim_now();
    fx_{self.kind}(&p, bx, by, 0, {c});
    t1 = fx_sim_now();
"""
            return decl, code
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
    fx_conv_prepare(&p);
    p.w = bw; p.bias = bb; p.shift = bs;
    p.act.kind = FX_ACT_RELU; p.act.lo = 0; p.act.hi = 0; p.act.alpha = 0;
    t0 = fx_sim_now();
    fx_conv(&p, bx, by, 0, {cout}, 0, {oh});
    t1 = fx_sim_now();
"""
        return decl, code


# (small, large): the same layer with a shorter and a longer innermost reduction.
# (The depthwise pair varies the channel count: its "per MAC" is the all-in cost.)
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
    ("conv 1-D k3 valid, L=64, cin 8->16, cout 16",
     Layer("conv1dk3c8", "conv", (8, 1, 64, 16, 1, 3, 0, 1)),
     Layer("conv1dk3c16", "conv", (16, 1, 64, 16, 1, 3, 0, 1))),
    ("conv 3x3 depthwise pad 1, 16x16, ch 8->16",
     Layer("dw3x3c8", "conv", (8, 16, 16, 8, 3, 3, 1, 8)),
     Layer("dw3x3c16", "conv", (16, 16, 16, 16, 3, 3, 1, 16))),
]

# Per call / per output: (label, small, large), the count varied.
PER_CALL: list[tuple[str, Layer, Layer]] = [
    *[(f"fx_requant, shift {sh} (with the calling loop)", Layer(f"rq{sh}a", "requant", (100, sh)),
       Layer(f"rq{sh}b", "requant", (200, sh))) for sh in (16, 15, 8, 24, 31, 0, -3)],
    ("maxpool 2x2 s2, 24x24, c 3->6 (per output)",
     Layer("mp24c3", "maxpool", (3, 24, 24, 2, 2, 0)), Layer("mp24c6", "maxpool", (6, 24, 24, 2, 2, 0))),
    ("maxpool 3x3 s2 pad 1, 16x16, c 3->6 (per output)",
     Layer("mp16c3", "maxpool", (3, 16, 16, 3, 2, 1)), Layer("mp16c6", "maxpool", (6, 16, 16, 3, 2, 1))),
    ("avgpool 2x2 s2, 24x24, c 3->6 (per output)",
     Layer("ap24c3", "avgpool", (3, 24, 24, 2, 2, 0)), Layer("ap24c6", "avgpool", (6, 24, 24, 2, 2, 0))),
]

# Whole layers of LeNet-5 (samples/lenet5_mnist: pads 2 on conv1; shift 16 here), -mlarge as its build.
LENET: list[tuple[str, Layer]] = [
    ("conv1 1x28x28 -> 6x28x28, 5x5 pad 2", Layer("lenet_c1", "conv", (1, 28, 28, 6, 5, 5, 2, 1), large=True)),
    ("pool1 6x28x28 -> 6x14x14, 2x2 s2", Layer("lenet_p1", "maxpool", (6, 28, 28, 2, 2, 0), large=True)),
    ("conv2 6x14x14 -> 16x10x10, 5x5", Layer("lenet_c2", "conv", (6, 14, 14, 16, 5, 5, 0, 1), large=True)),
    ("pool2 16x10x10 -> 16x5x5, 2x2 s2", Layer("lenet_p2", "maxpool", (16, 10, 10, 2, 2, 0), large=True)),
    ("fc1 400 -> 120", Layer("lenet_f1", "fc", (400, 120), large=True)),
    ("fc2 120 -> 84", Layer("lenet_f2", "fc", (120, 84), large=True)),
    ("fc3 84 -> 10", Layer("lenet_f3", "fc", (84, 10), large=True)),
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
    ap.add_argument("--quick", action="store_true",
                    help="only the first table (the MAC loops), MPY32 only")
    args = ap.parse_args(argv)
    try:
        tc = find_msp430_toolchain()
    except FreemlError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    t_start = time.monotonic()
    variants = [True] if args.mpy32_only or args.quick else [True, False]
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
                dense = small.kind == "fc" or (small.kind == "conv"
                                               and small.dims[0] // small.dims[7] > 1)
                if mpy32 and dense:
                    worst_dense_ins = max(worst_dense_ins, ins)
                print(f"{label:<50} {'MPY32' if mpy32 else 'portable':<9} {large.macs():>9} "
                      f"{cyc:>8.2f} {ins:>8.2f} {b.cycles / large.macs():>10.2f} "
                      f"{b.insns / large.macs():>10.2f}")
        if not args.quick:
            head2 = f"{'scalar / pooling kernel (MPY32 build)':<50} {'per call cyc':>12} {'ins':>6}"
            print("\n" + head2)
            print("-" * len(head2))
            for label, small, large in PER_CALL:
                a = measure(tc, small, True, work)
                b = measure(tc, large, True, work)
                dn = large.macs() - small.macs()
                print(f"{label:<50} {(b.cycles - a.cycles) / dn:>12.1f} "
                      f"{(b.insns - a.insns) / dn:>6.1f}")
            head3 = f"{'LeNet-5 layer (MPY32 build)':<50} {'cycles':>10} {'instructions':>12}"
            print("\n" + head3)
            print("-" * len(head3))
            tot = Count(0, 0)
            for label, layer in LENET:
                c = measure(tc, layer, True, work)
                tot = Count(tot.cycles + c.cycles, tot.insns + c.insns)
                print(f"{label:<50} {c.cycles:>10} {c.insns:>12}")
            print(f"{'total':<50} {tot.cycles:>10} {tot.insns:>12}")
        if args.disasm:
            print("\n" + inner_loop(tc, work))
    verdict = "meets" if worst_dense_ins <= TARGET_INSNS_PER_MAC else "misses"
    print(f"\nworst dense MPY32 instructions per MAC (overhead cancelled): {worst_dense_ins:.2f} "
          f"-> {verdict} the target of <= {TARGET_INSNS_PER_MAC}")
    print("per MAC: the marginal cost of one more product; all-in: the large layer's whole count "
          "(bias, requant, activation, stores, loop set-up, border windows) over its MACs")
    print(f"({time.monotonic() - t_start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

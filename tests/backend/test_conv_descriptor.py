"""The derived fx_conv_t fields the C printer emits (backends.c.printers.conv_derived) equal what
fx_conv_prepare (runtime_c/fx_conv.c) computes from the same geometry.

The generated packages carry the printer's values; the kernel tests' harnesses fill theirs with
fx_conv_prepare. One host program checks a few hundred geometries (borders wider than the kernel,
strides, dilations, groups, 1-D, pointwise, kernels wider than the input) in one build.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from backends.c.printers import conv_derived, inside_range
from transpiler import hostrun
from transpiler.errors import ToolchainError

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
GEOMETRY = ("cin", "ih", "iw", "cout", "oh", "ow", "kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl", "group")


def _out(size: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    return (size + lo + hi - (k - 1) * d - 1) // s + 1


def geometries(n: int, seed: int) -> list[dict[str, int]]:
    """`n` random valid conv geometries (at least one output row and column), fixed edge cases first."""
    fixed = [
        dict(cin=1, ih=28, iw=28, cout=6, kh=5, kw=5, sh=1, sw=1, dh=1, dw=1, pads=(2, 2, 2, 2), group=1),
        dict(cin=8, ih=7, iw=7, cout=8, kh=3, kw=3, sh=2, sw=2, dh=1, dw=1, pads=(1, 1, 1, 1), group=8),
        dict(cin=4, ih=1, iw=40, cout=6, kh=1, kw=5, sh=1, sw=2, dh=1, dw=3, pads=(0, 4, 0, 4), group=2),
        dict(cin=3, ih=6, iw=6, cout=3, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, pads=(0, 0, 2, 0), group=1),
        dict(cin=2, ih=3, iw=2, cout=2, kh=5, kw=7, sh=1, sw=1, dh=2, dw=1, pads=(4, 6, 4, 6), group=1),
        dict(cin=2, ih=1, iw=1, cout=2, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, pads=(2, 0, 0, 0), group=2),
    ]
    rng = np.random.default_rng(seed)
    cases: list[dict[str, int]] = []
    while len(cases) < n:
        if fixed:
            c = fixed.pop(0)
        else:
            group = int(rng.choice([1, 1, 2, 3]))
            c = dict(cin=group * int(rng.integers(1, 5)), ih=int(rng.integers(1, 30)), iw=int(rng.integers(1, 30)),
                     cout=group * int(rng.integers(1, 5)), kh=int(rng.integers(1, 8)), kw=int(rng.integers(1, 8)),
                     sh=int(rng.integers(1, 4)), sw=int(rng.integers(1, 4)), dh=int(rng.integers(1, 4)),
                     dw=int(rng.integers(1, 4)), pads=tuple(int(v) for v in rng.integers(0, 7, size=4)),
                     group=group)
        pt, pl, pb, pr = c.pop("pads")  # type: ignore[misc]
        oh = _out(c["ih"], c["kh"], c["sh"], c["dh"], pt, pb)
        ow = _out(c["iw"], c["kw"], c["sw"], c["dw"], pl, pr)
        if oh >= 1 and ow >= 1:
            cases.append({**c, "oh": oh, "ow": ow, "pt": pt, "pl": pl})
    return cases


PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "fx_kernels.h"

static const uint16_t G[][15] = {
%s
};

int main(void)
{
    size_t i;
    for (i = 0; i < sizeof G / sizeof G[0]; ++i) {
        fx_conv_t p;
        const uint16_t *g = G[i];
        memset(&p, 0xA5, sizeof p);
        p.cin = g[0]; p.ih = g[1]; p.iw = g[2]; p.cout = g[3]; p.oh = g[4]; p.ow = g[5];
        p.kh = g[6]; p.kw = g[7]; p.sh = g[8]; p.sw = g[9]; p.dh = g[10]; p.dw = g[11];
        p.pt = g[12]; p.pl = g[13]; p.group = g[14];
        fx_conv_prepare(&p);
        printf("%%u %%u %%u %%u %%u %%u %%u %%ld %%ld %%lu %%lu %%lu %%lu %%lu %%lu %%lu %%lu\n",
               p.cin_g, p.cout_g, p.oxa, p.oxb, p.oya, p.oyb, p.pointwise, (long)p.ixa, (long)p.ixb,
               (unsigned long)p.hw, (unsigned long)p.ohw, (unsigned long)p.ktaps, (unsigned long)p.wsize,
               (unsigned long)p.xdh, (unsigned long)p.xsh, (unsigned long)p.xkh, (unsigned long)p.xoya);
    }
    return 0;
}
"""


def test_inside_range_is_the_interior() -> None:
    """inside_range: exactly the positions whose taps are all inside, for small cases by brute force."""
    for size in range(0, 9):
        for taps in range(1, 5):
            for s in range(1, 4):
                for d in range(1, 3):
                    for pad in range(0, 4):
                        out = max(0, (size + 2 * pad - (taps - 1) * d - 1) // s + 1)
                        inside = [o for o in range(out)
                                  if all(0 <= o * s - pad + k * d < size for k in range(taps))]
                        lo, hi = inside_range(size, taps, s, d, pad, out)
                        assert list(range(lo, hi)) == inside, (size, taps, s, d, pad)


def test_printer_fields_equal_fx_conv_prepare(tmp_path: Path) -> None:
    try:
        cc = hostrun.find_cc()
    except ToolchainError as exc:
        pytest.skip(f"no host C compiler: {exc}")
    cases = geometries(300, seed=5)
    rows = ",\n".join("    { " + ", ".join(f"{c[k]}u" for k in GEOMETRY) + " }" for c in cases)
    src = tmp_path / "prepare.c"
    src.write_text(PROGRAM % rows)
    exe = tmp_path / "prepare"
    subprocess.run([cc, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME}", str(src),
                    str(RUNTIME / "fx_conv.c"), str(RUNTIME / "fx_requant.c"), "-o", str(exe)], check=True)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(lines) == len(cases)
    for c, line in zip(cases, lines):
        want = conv_derived(c)
        got = dict(zip(want, (int(v) for v in line.split())))
        assert got == want, c

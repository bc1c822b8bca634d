"""The C kernels (runtime_c/) equal the numpy reference (transpiler.lir.kernels) bit for bit.

One harness program (tests/c/kernel_harness.c) is built per host compiler (gcc, clang) with
AddressSanitizer and UndefinedBehaviorSanitizer, once per session; every hypothesis example streams
its cases through both builds. Each case also splits the step into tiles (sub-ranges, run in a
random order, some twice): the result must equal one whole-step call, and elements outside the
ranges must stay untouched.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transpiler.lir import kernels as K

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
HARNESS = ROOT / "tests" / "c" / "kernel_harness.c"
KERNEL_SOURCES = ["fx_requant.c", "fx_conv.c", "fx_fc.c", "fx_pool.c", "fx_eltwise.c"]
CFLAGS = ["-std=c99", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
          "-Wall", "-Wextra", "-Werror", "-pedantic"]
FILL = -21846  # what the harness writes into its output buffers before the calls
ACT_CODE = {"none": 0, "relu": 1, "clip": 2, "leaky": 3}
OP = {"conv": 1, "fc": 2, "maxpool": 3, "avgpool": 4, "add": 5, "act": 6, "requant_copy": 7,
      "argmax": 8, "requant": 9, "apply_act": 10, "lut": 11, "mul": 12}

EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Case:
    """One harness call sequence: an op, its parameters, arrays and tile ranges (the stream format of
    tests/c/harness.h; ``codes`` maps op names to the harness's op numbers)."""

    codes: ClassVar[Mapping[str, int]] = OP
    op: str
    params: list[int]
    arrays: list[np.ndarray]
    ranges: list[tuple[int, ...]] = field(default_factory=list)

    def encode(self) -> bytes:
        words: list[int] = [self.codes[self.op], len(self.params), *self.params, len(self.arrays)]
        for a in self.arrays:
            flat = np.asarray(a).reshape(-1).astype(np.int64)
            words.append(flat.size)
            words.extend(int(v) for v in flat)
        words.append(sum(len(r) for r in self.ranges))
        for r in self.ranges:
            words.extend(r)
        return struct.pack(f"<{len(words)}i", *words)


@dataclass
class Harness:
    """A built kernel_harness binary."""

    compiler: str
    path: Path

    def run(self, cases: Sequence[Case]) -> list[np.ndarray]:
        data = b"".join(c.encode() for c in cases) + struct.pack("<i", 0)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        proc = subprocess.run([str(self.path)], input=data, capture_output=True, env=env,
                              timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"{self.compiler} harness failed ({proc.returncode}):\n"
                                 f"{proc.stderr.decode(errors='replace')[-4000:]}")
        out = np.frombuffer(proc.stdout, dtype="<i4")
        results: list[np.ndarray] = []
        pos = 0
        for _ in cases:
            n = int(out[pos])
            results.append(out[pos + 1:pos + 1 + n].astype(np.int64))
            pos += 1 + n
        assert pos == out.size, "harness wrote more than the cases asked for"
        return results


def build_harnesses(out_dir: Path, source: Path, runtime_sources: Sequence[str]) -> list[Harness]:
    """The harness `source` with the runtime files `runtime_sources`, built with every available host
    compiler (gcc and clang, in parallel) into `out_dir`; skips the test without a compiler."""
    sources = [str(source)] + [str(RUNTIME / s) for s in runtime_sources]
    procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    for cc in ("gcc", "clang"):
        if shutil.which(cc) is None:
            continue
        exe = out_dir / f"{source.stem}_{cc}"
        cmd = [cc, *CFLAGS, f"-I{RUNTIME}", *sources, "-o", str(exe)]
        procs.append((cc, exe, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)))
    if not procs:
        pytest.skip("no host C compiler (gcc or clang)")
    built: list[Harness] = []
    for cc, exe, proc in procs:
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{cc} failed to build {source.name}:\n{log.decode()}"
        built.append(Harness(cc, exe))
    return built


@pytest.fixture(scope="session")
def harnesses(tmp_path_factory: pytest.TempPathFactory) -> list[Harness]:
    """kernel_harness built with gcc and clang (ASan + UBSan)."""
    return build_harnesses(tmp_path_factory.mktemp("kernel_harness"), HARNESS, KERNEL_SOURCES)


def check(harnesses: list[Harness], cases: Sequence[Case], expected: Sequence[np.ndarray]) -> None:
    """Every compiler's harness output equals the expected arrays exactly."""
    for h in harnesses:
        got = h.run(cases)
        for case, g, e in zip(cases, got, expected):
            e = np.asarray(e, dtype=np.int64).reshape(-1)
            if g.shape != e.shape or not np.array_equal(g, e):
                bad = np.flatnonzero(g != e) if g.shape == e.shape else np.array([], int)
                raise AssertionError(
                    f"{h.compiler}: {case.op} differs from numpy at {bad[:10].tolist()} "
                    f"(of {e.size}); params={case.params} ranges={case.ranges}\n"
                    f"C:     {g[bad[:10]].tolist() if bad.size else g[:20].tolist()}\n"
                    f"numpy: {e[bad[:10]].tolist() if bad.size else e[:20].tolist()}")


# ---------------------------------------------------------------------------------------------
# value strategies

INT16_EXTREMES = np.array([-32768, -32767, -1, 0, 1, 32766, 32767], dtype=np.int64)
INT32_EXTREMES = np.array([-2**31, -2**31 + 1, -1, 0, 1, 2**31 - 2, 2**31 - 1], dtype=np.int64)


def int16_array(rng: np.random.Generator, mode: str, shape: tuple[int, ...]) -> np.ndarray:
    """Random int16 values: full range, extremes only, small, or a mix."""
    if mode == "full":
        v = rng.integers(-32768, 32768, size=shape)
    elif mode == "extreme":
        v = rng.choice(INT16_EXTREMES, size=shape)
    elif mode == "small":
        v = rng.integers(-8, 9, size=shape)
    else:
        v = np.where(rng.random(shape) < 0.3, rng.choice(INT16_EXTREMES, size=shape),
                     rng.integers(-32768, 32768, size=shape))
    return np.asarray(v, dtype=np.int16)


def int32_array(rng: np.random.Generator, mode: str, n: int) -> np.ndarray:
    """Random int32 values (biases, accumulators) including the extremes."""
    if mode == "full":
        v = rng.integers(-2**31, 2**31, size=n)
    elif mode == "extreme":
        v = rng.choice(INT32_EXTREMES, size=n)
    elif mode == "small":
        v = rng.integers(-1000, 1001, size=n)
    else:
        v = np.where(rng.random(n) < 0.3, rng.choice(INT32_EXTREMES, size=n),
                     rng.integers(-2**20, 2**20, size=n))
    return np.asarray(v, dtype=np.int32)


modes = st.sampled_from(["full", "extreme", "small", "mix"])
seeds = st.integers(0, 2**32 - 1)


@st.composite
def acts(draw: st.DrawFn) -> K.Act:
    kind = draw(st.sampled_from(K.ACT_KINDS))
    if kind == "clip":
        lo = draw(st.integers(-32768, 32767))
        # hi < lo is legal: min(max(y, lo), hi) is then hi everywhere.
        hi = draw(st.one_of(st.integers(lo, 32767), st.integers(-32768, lo)))
        return K.Act("clip", lo=lo, hi=hi)
    if kind == "leaky":
        return K.Act("leaky", alpha=draw(st.sampled_from([0, 1, 3277, 16384, 32767])
                                         | st.integers(0, 32767)))
    return K.Act(kind)


def act_params(a: K.Act) -> list[int]:
    return [ACT_CODE[a.kind], a.lo, a.hi, a.alpha]


def split_points(draw: st.DrawFn, n: int) -> list[int]:
    """Sorted cut points 0 = c0 < c1 < ... = n splitting [0, n) into 1..4 pieces."""
    cuts = draw(st.lists(st.integers(1, max(1, n - 1)), max_size=3, unique=True)) if n > 1 else []
    return [0, *sorted(cuts), n]


@st.composite
def tiling_1d(draw: st.DrawFn, n: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Ranges over [0, n) and the mask of covered elements.

    Either a full partition (shuffled, with some tiles repeated: a tile run twice must give the
    same bytes) or one sub-range only (the rest must stay untouched)."""
    cuts = split_points(draw, n)
    tiles = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)]
    mask = np.ones(n, dtype=bool)
    if len(tiles) > 1 and draw(st.booleans()):
        keep = draw(st.sampled_from(tiles))
        mask[:] = False
        mask[keep[0]:keep[1]] = True
        return [keep], mask
    tiles = tiles + draw(st.lists(st.sampled_from(tiles), max_size=2))
    return draw(st.permutations(tiles)), mask


@st.composite
def tiling_conv(draw: st.DrawFn, y: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Tiles (co0, co1, oy0, oy1) over the output channels x output rows of a conv output y
    [cout, oh, ow], and what the harness must return: as tiling_1d, a shuffled partition with
    repeated tiles (y), or one tile alone (y inside it, FILL elsewhere)."""
    co_cuts, oy_cuts = split_points(draw, y.shape[0]), split_points(draw, y.shape[1])
    tiles = [(co_cuts[i], co_cuts[i + 1], oy_cuts[j], oy_cuts[j + 1])
             for i in range(len(co_cuts) - 1) for j in range(len(oy_cuts) - 1)]
    expected = y.astype(np.int64)
    if len(tiles) > 1 and draw(st.booleans()):
        keep = draw(st.sampled_from(tiles))
        mask = np.zeros_like(expected, dtype=bool)
        mask[keep[0]:keep[1], keep[2]:keep[3]] = True
        return [keep], np.where(mask, expected, FILL)
    return draw(st.permutations(tiles + draw(st.lists(st.sampled_from(tiles), max_size=2)))), expected


# ---------------------------------------------------------------------------------------------
# the kernels


@st.composite
def conv_cases(draw: st.DrawFn) -> tuple[Case, np.ndarray]:
    one_d = draw(st.booleans())
    depthwise = draw(st.booleans())
    if depthwise:
        group = draw(st.integers(1, 5))
        cin_g, cout_g = 1, draw(st.sampled_from([1, 1, 2]))
    else:
        group = draw(st.sampled_from([1, 1, 2, 3]))
        cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    cin, cout = group * cin_g, group * cout_g
    kw, sw, dw = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pl, pr = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if one_d:
        ih, kh, sh, dh, pt, pb = 1, 1, 1, 1, 0, 0
    else:
        ih, kh = draw(st.integers(1, 8)), draw(st.integers(1, 4))
        sh, dh = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        pt, pb = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    iw = draw(st.integers(1, 12 if one_d else 8))
    if draw(st.integers(0, 3)) == 0:
        # 1x1: the pointwise fast path, or the general path when padding adds rows/columns.
        kh = kw = sh = sw = 1
        pt = pl = 0
        pr = draw(st.sampled_from([0, 0, 0, 1]))
        pb = 0 if one_d else draw(st.sampled_from([0, 1, 2]))
    oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
    if oh < 1 or ow < 1:
        pb += (1 - oh) * sh if oh < 1 else 0
        pr += (1 - ow) * sw if ow < 1 else 0
        oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
    rng = np.random.default_rng(draw(seeds))
    x = int16_array(rng, draw(modes), (cin, ih, iw))
    w = int16_array(rng, draw(modes), (cout, cin_g, kh, kw))
    b = int32_array(rng, draw(modes), cout)
    shift = rng.integers(-15, 32, size=cout) if draw(st.booleans()) else \
        rng.integers(10, 20, size=cout)
    act = draw(acts())
    y = K.conv(x, w, b, (sh, sw), (pt, pl, pb, pr), (dh, dw), group, shift, act)
    assert y.shape == (cout, oh, ow)
    tiles, expected = draw(tiling_conv(y))
    params = [cin, ih, iw, cout, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, group, *act_params(act)]
    return Case("conv", params, [x, w, b, shift], tiles), expected


@given(cases=st.lists(conv_cases(), min_size=1, max_size=4))
@EXAMPLES
def test_conv(harnesses: list[Harness], cases: list[tuple[Case, np.ndarray]]) -> None:
    check(harnesses, [c for c, _ in cases], [e for _, e in cases])


CONV_EDGES = {
    # name: (cin, ih, iw, cout, kh, kw, stride, pads, dilation, group)
    "pointwise": (3, 4, 5, 2, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "pointwise-bottom-pad": (3, 4, 5, 2, 1, 1, (1, 1), (0, 0, 2, 0), (1, 1), 1),
    "pointwise-grouped": (4, 3, 3, 6, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 2),
    "all-padding-rows": (2, 1, 4, 2, 1, 3, (1, 1), (3, 1, 2, 1), (1, 1), 1),
    "kernel-wider-than-input": (1, 2, 2, 1, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),
    "depthwise-1d-dilated": (3, 1, 17, 3, 1, 3, (1, 2), (0, 3, 0, 1), (1, 3), 3),
    "depthwise-multiplier-2": (2, 5, 5, 4, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 2),
    "stride-above-kernel": (2, 7, 7, 3, 2, 2, (3, 3), (0, 0, 0, 0), (1, 1), 1),
}


@pytest.mark.parametrize("name", sorted(CONV_EDGES))
def test_conv_edge_cases(harnesses: list[Harness], name: str) -> None:
    """Shapes that select the fast paths or their limits, and windows entirely in padding."""
    cin, ih, iw, cout, kh, kw, stride, pads, dil, group = CONV_EDGES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x = int16_array(rng, "mix", (cin, ih, iw))
    w = int16_array(rng, "mix", (cout, cin // group, kh, kw))
    b = int32_array(rng, "mix", cout)
    shift = rng.integers(8, 20, size=cout)
    act = K.Act("none")
    y = K.conv(x, w, b, stride, pads, dil, group, shift, act)
    oh, ow = y.shape[1:]
    params = [cin, ih, iw, cout, oh, ow, kh, kw, *stride, *dil, pads[0], pads[1], group,
              *act_params(act)]
    whole = Case("conv", params, [x, w, b, shift], [(0, cout, 0, oh)])
    rows = Case("conv", params, [x, w, b, shift],
                [(0, cout, r, r + 1) for r in reversed(range(oh))])
    check(harnesses, [whole, rows], [y, y])


def test_pool_windows_entirely_in_padding(harnesses: list[Harness]) -> None:
    """maxpool gives -32768 and avgpool 0 where a window sees no input position."""
    x = np.array([[[5, -7, 3]]], dtype=np.int16)
    kernel, stride, pads = (1, 2), (1, 2), (2, 4, 1, 4)
    out = K.out_hw((1, 3), kernel, stride, pads)
    mx = K.maxpool(x, kernel, stride, pads, out_shape=out)
    av0 = K.avgpool(x, kernel, stride, pads, 0, out_shape=out)
    av1 = K.avgpool(x, kernel, stride, pads, 1, out_shape=out)
    assert (mx == -32768).any() and (av0 == 0).sum() > 1
    params = [1, 1, 3, *out, *kernel, *stride, 1, 1, *pads]
    check(harnesses, [Case("maxpool", params + [0], [x], [(0, 1)]),
                      Case("avgpool", params + [0], [x], [(0, 1)]),
                      Case("avgpool", params + [1], [x], [(0, 1)])], [mx, av0, av1])


@st.composite
def fc_cases(draw: st.DrawFn) -> tuple[Case, np.ndarray]:
    k, n = draw(st.integers(1, 40)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(seeds))
    x = int16_array(rng, draw(modes), (k,))
    w = int16_array(rng, draw(modes), (n, k))
    b = int32_array(rng, draw(modes), n)
    shift = rng.integers(-15, 32, size=n)
    act = draw(acts())
    ranges, mask = draw(tiling_1d(n))
    expected = np.where(mask, K.fc(x, w, b, shift, act), FILL)
    return Case("fc", [k, n, *act_params(act)], [x, w, b, shift], ranges), expected


@given(cases=st.lists(fc_cases(), min_size=1, max_size=4))
@EXAMPLES
def test_fc(harnesses: list[Harness], cases: list[tuple[Case, np.ndarray]]) -> None:
    check(harnesses, [c for c, _ in cases], [e for _, e in cases])


def test_fc_weight_table_above_64k_elements(harnesses: list[Harness]) -> None:
    """A 784 x 96 layer (75264 weights) indexes its table without 16-bit overflow."""
    rng = np.random.default_rng(7)
    k, n = 784, 96
    x = int16_array(rng, "full", (k,))
    w = int16_array(rng, "mix", (n, k))
    b = int32_array(rng, "small", n)
    shift = np.full(n, 20)
    act = K.Act("none")
    y = K.fc(x, w, b, shift, act)
    cases = [Case("fc", [k, n, *act_params(act)], [x, w, b, shift], [(0, n)]),
             Case("fc", [k, n, *act_params(act)], [x, w, b, shift], [(90, 96), (0, 90)])]
    check(harnesses, cases, [y, y])


@st.composite
def pool_cases(draw: st.DrawFn) -> tuple[Case, np.ndarray]:
    avg = draw(st.booleans())
    c = draw(st.integers(1, 4))
    one_d = draw(st.booleans())
    kw, sw, dw = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    pl, pr = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if one_d:
        ih, kh, sh, dh, pt, pb = 1, 1, 1, 1, 0, 0
    else:
        ih, kh = draw(st.integers(1, 8)), draw(st.integers(1, 4))
        sh, dh = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        pt, pb = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    iw = draw(st.integers(1, 10))
    oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
    if oh < 1 or ow < 1:
        pb += (1 - oh) * sh if oh < 1 else 0
        pr += (1 - ow) * sw if ow < 1 else 0
        oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
    # ceil_mode outputs: one more row/column whose window may reach past the padded extent.
    oh += draw(st.integers(0, 1))
    ow += draw(st.integers(0, 1))
    cip = draw(st.integers(0, 1))
    rng = np.random.default_rng(draw(seeds))
    x = int16_array(rng, draw(modes), (c, ih, iw))
    pads = (pt, pl, pb, pr)
    if avg:
        y = K.avgpool(x, (kh, kw), (sh, sw), pads, cip, (dh, dw), out_shape=(oh, ow))
    else:
        y = K.maxpool(x, (kh, kw), (sh, sw), pads, (dh, dw), out_shape=(oh, ow))
    ranges, mask = draw(tiling_1d(c))
    expected = np.where(mask[:, None, None], y, FILL)
    params = [c, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, cip]
    return Case("avgpool" if avg else "maxpool", params, [x], ranges), expected


@given(cases=st.lists(pool_cases(), min_size=1, max_size=6))
@EXAMPLES
def test_pool(harnesses: list[Harness], cases: list[tuple[Case, np.ndarray]]) -> None:
    check(harnesses, [c for c, _ in cases], [e for _, e in cases])


@st.composite
def eltwise_cases(draw: st.DrawFn) -> tuple[Case, np.ndarray]:
    kind = draw(st.sampled_from(["add", "mul", "act", "requant_copy"]))
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(seeds))
    x = int16_array(rng, draw(modes), (n,))
    ranges, mask = draw(tiling_1d(n))
    if kind == "add":
        other = int16_array(rng, draw(modes), (n,))
        sa, sb = draw(st.integers(0, 15)), draw(st.integers(0, 15))
        shift = draw(st.integers(-15, 31))
        act = draw(acts())
        y = K.add(x, other, sa, sb, shift, act)
        case = Case("add", [sa, sb, shift, *act_params(act)], [x, other], ranges)
    elif kind == "mul":
        other = int16_array(rng, draw(modes), (n,))
        shift = draw(st.integers(-15, 31))
        act = draw(acts())
        y = K.mul(x, other, shift, act)
        case = Case("mul", [shift, *act_params(act)], [x, other], ranges)
    elif kind == "act":
        act = draw(acts())
        y = K.activation(x, act)
        case = Case("act", act_params(act), [x], ranges)
    else:
        shift = draw(st.integers(-15, 31))
        y = K.concat([x], [shift])
        case = Case("requant_copy", [shift], [x], ranges)
    return case, np.where(mask, y, FILL)


@given(cases=st.lists(eltwise_cases(), min_size=1, max_size=6))
@EXAMPLES
def test_eltwise(harnesses: list[Harness], cases: list[tuple[Case, np.ndarray]]) -> None:
    check(harnesses, [c for c, _ in cases], [e for _, e in cases])


def lut_table(rng: np.random.Generator, mode: str, entries: int) -> np.ndarray:
    """A random lut table whose neighbours differ by at most 32767: a random walk with steps of
    one sign (monotone, as the compiler's tables mostly are), of both signs, or the largest steps."""
    if mode == "extreme":
        steps = rng.choice([-32767, 32767, 0], size=entries - 1)
    elif mode == "small":
        steps = rng.integers(0, 300, size=entries - 1)
    else:
        steps = rng.integers(-32767 if mode == "full" else 0, 32768, size=entries - 1)
    t = np.concatenate(([rng.integers(-32768, 32768)], steps)).cumsum()
    t = np.clip(t, -32768, 32767)              # clipping only shrinks the steps
    return t.astype(np.int16)


@st.composite
def lut_cases(draw: st.DrawFn) -> tuple[Case, np.ndarray]:
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(seeds))
    x = np.concatenate([INT16_EXTREMES, int16_array(rng, draw(modes), (n,))]).astype(np.int16)
    step = draw(st.integers(1, 15))
    mirror = draw(st.integers(0, 1))
    entries = draw(st.integers(2, 70))
    table = lut_table(rng, draw(modes), entries)
    base = 0 if mirror else draw(st.integers(-32768, 32767))
    center = draw(st.sampled_from([0, 32768, -32768, 65536, -65536]) | st.integers(-65536, 65536))
    gate = draw(st.integers(0, 1))
    shift = draw(st.integers(-15, 31))
    ranges, mask = draw(tiling_1d(x.size))
    y = K.lut(x, table, step, base, mirror, center, gate, shift)
    return Case("lut", [step, base, mirror, center, gate, shift], [x, table], ranges), np.where(mask, y, FILL)


@given(cases=st.lists(lut_cases(), min_size=1, max_size=6))
@EXAMPLES
def test_lut(harnesses: list[Harness], cases: list[tuple[Case, np.ndarray]]) -> None:
    check(harnesses, [c for c, _ in cases], [e for _, e in cases])


def test_lut_every_input(harnesses: list[Harness]) -> None:
    """Every int16 input through tables of the shapes the compiler makes (mirrored tanh, mirrored
    sigmoid gate, a plain table starting at the lowest input, one past the highest), tiled."""
    x = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)
    grid = np.arange(0, 66) * 2.0 ** 9 / 2 ** 12
    tanh = np.round(np.tanh(grid) * 32767).astype(np.int16)
    sig = np.round(32767 / (1 + np.exp(-grid))).astype(np.int16)
    plain = np.round(np.arange(0, 130) * 37.5 - 2000).astype(np.int16)
    cases = [([9, 0, 1, 0, 0, 0], tanh), ([9, 0, 1, 32768, 1, 15], sig), ([9, -32768, 0, 0, 0, 0], plain),
             ([15, -32768, 0, 0, 1, 20], plain[:3]), ([1, 100, 0, 0, 0, 0], plain)]
    built = [Case("lut", params, [x, t], [(0, 40000), (40000, 65536), (100, 200)]) for params, t in cases]
    check(harnesses, built, [K.lut(x, t, *params) for params, t in cases])


@given(seed=seeds, n=st.integers(1, 400), spread=st.sampled_from([1, 3, 100, 65536]))
@EXAMPLES
def test_argmax(harnesses: list[Harness], seed: int, n: int, spread: int) -> None:
    rng = np.random.default_rng(seed)
    # Small spreads force ties: the first maximum must win.
    offset = rng.choice([0, 32767 - spread])
    x = np.clip(rng.integers(-spread // 2, spread // 2 + 1, size=n) + offset,
                -32768, 32767).astype(np.int16)
    check(harnesses, [Case("argmax", [], [x])], [K.argmax(x)])


@given(seed=seeds, mode=modes)
@EXAMPLES
def test_requant_scalar(harnesses: list[Harness], seed: int, mode: str) -> None:
    rng = np.random.default_rng(seed)
    acc = int32_array(rng, mode, 256)
    shift = rng.integers(-15, 32, size=256)
    check(harnesses, [Case("requant", [], [acc, shift])], [K.requant(acc, shift)])


def test_requant_every_shift_at_the_extremes(harnesses: list[Harness]) -> None:
    """Every shift in [-15, 31] against int32 and int16 boundaries and the rounding ties."""
    shifts = np.arange(-15, 32)
    base = [-2**31, -2**31 + 1, 2**31 - 1, 2**31 - 2, -1, 0, 1, 32767, 32768, -32768, -32769,
            65535, -65536]
    accs, shs = [], []
    for s in shifts:
        ties = [] if s <= 0 else [(2 * k + 1) << (s - 1) for k in (-3, -2, -1, 0, 1, 2)]
        ties = [t for t in ties if -2**31 <= t < 2**31]
        vals = base + ties + [t + 1 for t in ties if t + 1 < 2**31] + \
            [t - 1 for t in ties if t - 1 >= -2**31]
        accs += vals
        shs += [int(s)] * len(vals)
    acc = np.array(accs, dtype=np.int64)
    sh = np.array(shs)
    check(harnesses, [Case("requant", [], [acc, sh])], [K.requant(acc, sh)])


@given(act=acts(), seed=seeds, mode=modes)
@EXAMPLES
def test_apply_act_scalar(harnesses: list[Harness], act: K.Act, seed: int, mode: str) -> None:
    y = np.concatenate([INT16_EXTREMES, int16_array(np.random.default_rng(seed), mode, (200,))])
    check(harnesses, [Case("apply_act", act_params(act), [y])], [K.apply_act(y, act)])


# ---------------------------------------------------------------------------------------------
# freestanding: the kernels compile cleanly alone and call nothing but each other


def _msp430_gcc() -> str | None:
    found = shutil.which("msp430-elf-gcc")
    if found is None and Path("/opt/msp430-elf/bin/msp430-elf-gcc").exists():
        found = "/opt/msp430-elf/bin/msp430-elf-gcc"
    return found


@pytest.mark.parametrize("cc", ["gcc", "clang", "msp430-elf-gcc"])
@pytest.mark.parametrize("opt", ["-O2", "-O3", "-Os"])
def test_kernels_are_freestanding(cc: str, opt: str, tmp_path: Path) -> None:
    """No warnings at -Wall -Wextra -pedantic, and no undefined symbol outside fx_ (no memcpy,
    memset or other libc call inserted by the compiler). On the MSP430 (small and large model,
    MPY32 MAC) libgcc's __mspabi_* helpers and the MPY32 registers are allowed too."""
    exe = _msp430_gcc() if cc == "msp430-elf-gcc" else shutil.which(cc)
    if exe is None:
        pytest.skip(f"{cc} not installed")
    variants: list[list[str]] = [[]]
    nm = "nm"
    allowed = ("fx_",)
    if cc == "msp430-elf-gcc":
        variants = [["-mmcu=msp430fr5994", "-DFX_USE_MPY32"],
                    ["-mmcu=msp430fr5994", "-mlarge", "-DFX_USE_MPY32"],
                    ["-mmcu=msp430fr5994"]]
        nm = str(Path(exe).with_name("msp430-elf-nm"))
        allowed = ("fx_", "__mspabi_", "MACS", "MPY", "OP2", "RESLO", "RESHI")
    undefined: set[str] = set()
    for flags in variants:
        for src in KERNEL_SOURCES:
            obj = tmp_path / (src + ".o")
            subprocess.run([exe, *flags, "-std=c99", opt, "-ffreestanding", "-Wall", "-Wextra",
                            "-Werror", "-pedantic", "-c", str(RUNTIME / src), "-o", str(obj)],
                           check=True)
            out = subprocess.run([nm, "-u", str(obj)], check=True, capture_output=True,
                                 text=True)
            undefined |= {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    assert {s for s in undefined if not s.startswith(allowed)} == set()

"""The sparse kernels: numpy semantics (== the dense ops on the encoded weights) and the C kernels
(runtime_c/fx_sparse.c) == numpy bit for bit.

tests/c/sparse_harness.c is built per host compiler (gcc, clang) with AddressSanitizer and
UndefinedBehaviorSanitizer once per session. Every hypothesis case runs the sparse C kernel over
tiles (shuffled, some twice, or one tile alone), and the dense C kernel on the same weights: both
must equal numpy's dense op exactly, so the sparse C output also equals the dense C output.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_kernels_c_vs_numpy import (EXAMPLES, FILL, Case, Harness, act_params, acts, build_harnesses,
                                     check, int16_array, int32_array, modes, seeds,
                                     tiling_1d, tiling_conv)

from transpiler.lir import kernels as K

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "runtime_c"
HARNESS = ROOT / "tests" / "c" / "sparse_harness.c"
SOURCES = ["fx_sparse.c", "fx_fc.c", "fx_conv.c", "fx_requant.c"]
OP = {"fc_sparse": 1, "conv_sparse": 2, "fc": 3, "conv": 4}
TAPS = 32  # FX_SPARSE_CONV_TAPS: channels with more stored taps take the chunked path


class SparseCase(Case):
    """One sparse_harness call sequence (same stream format as kernel_harness, its own op numbers)."""

    codes: ClassVar[Mapping[str, int]] = OP


@pytest.fixture(scope="session")
def sparse_harnesses(tmp_path_factory: pytest.TempPathFactory) -> list[Harness]:
    """sparse_harness built with gcc and clang (ASan + UBSan)."""
    return build_harnesses(tmp_path_factory.mktemp("sparse_harness"), HARNESS, SOURCES)


def prune(rng: np.random.Generator, w: np.ndarray, density: float) -> np.ndarray:
    """w with each entry kept with probability `density` (0 and 1 exact)."""
    if density >= 1.0:
        return w.copy()
    return np.where(rng.random(w.shape) < density, w, 0).astype(w.dtype)


densities = st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.5, 0.9, 1.0])


# ---------------------------------------------------------------------------------------------
# numpy semantics


def conv_sparse_by_taps(x: np.ndarray, values: np.ndarray, offsets: np.ndarray, chanptr: np.ndarray,
                        b: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                        pads: tuple[int, int, int, int], dilation: tuple[int, int], group: int,
                        shift: np.ndarray, act: K.Act, out: tuple[int, int]) -> np.ndarray:
    """docs/lir.md's conv_sparse formula, one stored tap at a time (independent of K.conv)."""
    kh, kw = kernel
    cin, h, w = x.shape
    hv, wv = max(h, (kh - 1) * dilation[0] + 1), max(w, (kw - 1) * dilation[1] + 1)
    cout = chanptr.size - 1
    cin_g, cout_g = cin // group, cout // group
    acc = np.zeros((cout, *out), dtype=np.int64) + np.asarray(b, dtype=np.int64).reshape(-1, 1, 1)
    oy = np.arange(out[0])[:, None]
    ox = np.arange(out[1])[None, :]
    for co in range(cout):
        for j in range(int(chanptr[co]), int(chanptr[co + 1])):
            ci_g, rest = divmod(int(offsets[j]), hv * wv)
            ky, kx = rest // wv // dilation[0], rest % wv // dilation[1]
            ci = co // cout_g * cin_g + ci_g
            iy = oy * stride[0] - pads[0] + ky * dilation[0]
            ix = ox * stride[1] - pads[1] + kx * dilation[1]
            inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            xv = np.where(inside, x[ci, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)], 0)
            acc[co] += xv.astype(np.int64) * int(values[j])
    return K.apply_act(K.requant(K.wrap32(acc), np.asarray(shift).reshape(-1, 1, 1)), act)


@given(seed=seeds, density=densities, k=st.integers(1, 50), n=st.integers(1, 10), act=acts())
@EXAMPLES
def test_fc_sparse_equals_dense_fc(seed: int, density: float, k: int, n: int, act: K.Act) -> None:
    rng = np.random.default_rng(seed)
    w = prune(rng, int16_array(rng, "mix", (n, k)), density)
    x, b = int16_array(rng, "full", (k,)), int32_array(rng, "mix", n)
    shift = rng.integers(-15, 32, size=n)
    values, deltas, rowptr = K.csr_from_dense(w)
    assert np.array_equal(K.csr_to_dense(values, deltas, rowptr, k), w)
    assert K.fc_sparse_problems(values.size, deltas, rowptr, n, k) == []
    rows, cols = np.nonzero(w)
    assert np.array_equal(K.cols_from_deltas(deltas, rowptr)[:cols.size], cols)
    assert np.array_equal(K.fc_sparse(x, values, deltas, rowptr, b, shift, act), K.fc(x, w, b, shift, act))


def test_deltas_are_byte_steps_from_each_rows_start() -> None:
    w = np.array([[0, 3, 0, 4], [0, 0, 0, 0], [5, 0, 0, 6]], dtype=np.int16)
    values, deltas, rowptr = K.csr_from_dense(w)
    assert values.tolist() == [3, 4, 5, 6] and rowptr.tolist() == [0, 2, 2, 4]
    assert deltas.tolist() == [2, 4, 0, 6]


@given(seed=seeds, density=densities, group=st.sampled_from([1, 2, 3]), act=acts(),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)))
@EXAMPLES
def test_conv_sparse_equals_dense_conv(seed: int, density: float, group: int, act: K.Act,
                                       kernel: tuple[int, int], stride: tuple[int, int],
                                       dilation: tuple[int, int], pads: tuple[int, int, int, int]) -> None:
    rng = np.random.default_rng(seed)
    cin, cout = group * int(rng.integers(1, 3)), group * int(rng.integers(1, 3))
    # sometimes an input smaller than the dilated kernel (the offsets' layout grows, Hv, Wv)
    h = max(1, (kernel[0] - 1) * dilation[0] + 1 + int(rng.integers(-2, 5)))
    w_ = max(1, (kernel[1] - 1) * dilation[1] + 1 + int(rng.integers(-2, 5)))
    if min(K.out_hw((h, w_), kernel, stride, pads, dilation)) < 1:
        pads = (pads[0], pads[1], pads[2] + kernel[0] * dilation[0], pads[3] + kernel[1] * dilation[1])
    x = int16_array(rng, "mix", (cin, h, w_))
    w = prune(rng, int16_array(rng, "mix", (cout, cin // group, *kernel)), density)
    b = int32_array(rng, "mix", cout)
    shift = rng.integers(0, 32, size=cout)
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (h, w_), dilation)
    assert K.conv_sparse_problems(values.size, offsets, chanptr, cout, cin // group, kernel, (h, w_), dilation) == []
    assert np.array_equal(K.conv_sparse_to_dense(values, offsets, chanptr, cin // group, kernel, (h, w_), dilation), w)
    out = K.out_hw((h, w_), kernel, stride, pads, dilation)
    dense = K.conv(x, w, b, stride, pads, dilation, group, shift, act)
    sparse = K.conv_sparse(x, values, offsets, chanptr, b, kernel, stride, pads, dilation, group, shift, act)
    by_taps = conv_sparse_by_taps(x, values, offsets, chanptr, b, kernel, stride, pads, dilation, group,
                                  shift, act, out)
    assert np.array_equal(sparse, dense) and np.array_equal(by_taps, dense)


def test_conv_offsets_are_input_offsets_from_the_window_origin() -> None:
    """ci' * H * W + ky * dh * W + kx * dw when the dilated kernel fits the input (the element
    offset in x), else in the input grown to the kernel: 3x3 dilated 2 over 4x6 counts in 5x6."""
    w = np.zeros((2, 2, 3, 3), dtype=np.int16)
    w[0, 0, 0, 1], w[0, 1, 2, 2], w[1, 0, 1, 0] = 5, -6, 7
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (7, 9))
    assert values.tolist() == [5, -6, 7] and chanptr.tolist() == [0, 2, 3]
    assert offsets.tolist() == [1, 63 + 2 * 9 + 2, 9]
    assert K.conv_sparse_layout((4, 6), (3, 3), (2, 2)) == (5, 6)
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (4, 6), (2, 2))
    assert offsets.tolist() == [2, 30 + 4 * 6 + 4, 2 * 6]
    assert np.array_equal(K.conv_sparse_to_dense(values, offsets, chanptr, 2, (3, 3), (4, 6), (2, 2)), w)


@pytest.mark.parametrize("offsets, message", [
    ([1, 3], "offset 3 at entry 1 is no tap's"),          # kx = 3 >= kw (the layout is 4 wide)
    ([1, 4 * 4 * 2], "outside [0, 32)"),
    ([5, 4], "not strictly increasing"),
])
def test_conv_offsets_that_are_no_taps_are_reported(offsets: list[int], message: str) -> None:
    problems = K.conv_sparse_problems(2, np.array(offsets), np.array([0, 2]), 1, 2, (2, 3), (4, 4), (1, 1))
    assert any(message in p for p in problems), problems
    with pytest.raises(ValueError, match="conv_sparse"):
        K.conv_sparse_to_dense(np.ones(2, np.int16), np.array(offsets), np.array([0, 2]), 2, (2, 3), (4, 4),
                               (1, 1))


def test_all_zero_weights_keep_one_explicit_zero() -> None:
    values, deltas, rowptr = K.csr_from_dense(np.zeros((3, 5), dtype=np.int16))
    assert values.tolist() == [0] and deltas.tolist() == [0] and rowptr.tolist() == [0, 1, 1, 1]
    x = np.arange(5, dtype=np.int16)
    b = np.array([7, -8, 9], dtype=np.int32)
    assert K.fc_sparse(x, values, deltas, rowptr, b, [0, 0, 0]).tolist() == [7, -8, 9]


@pytest.mark.parametrize("rowptr, cols, message", [
    ([1, 2, 3], [0, 1, 2], "starts at 1"),
    ([0, 2, 2], [0, 1, 2], "ends at 2"),
    ([0, 3, 2], [0, 1, 2], "decreases at row 1"),
    ([0, 2, 3], [0, 5, 2], "column index 5 at entry 1 is outside [0, 4)"),
    ([0, 2, 3], [1, 1, 2], "not strictly increasing"),
    ([0, 3], [0, 1, 2], "2 entries, needs 3"),
])
def test_index_problems_are_reported(rowptr: list[int], cols: list[int], message: str) -> None:
    problems = K.sparse_index_problems(3, np.array(cols), np.array(rowptr), 2, 4)
    assert any(message in p for p in problems), problems
    if len(rowptr) != 3:
        return  # the kernel takes the row count from the pointer: one row, a valid index
    deltas = K.deltas_from_cols(np.array(cols), np.array(rowptr))
    assert any(message in p for p in K.fc_sparse_problems(3, deltas, np.array(rowptr), 2, 4))
    with pytest.raises(ValueError):
        K.fc_sparse(np.zeros(4, np.int16), np.ones(3, np.int16), deltas, np.array(rowptr),
                    np.zeros(len(rowptr) - 1, np.int32), [0] * (len(rowptr) - 1))


def test_odd_byte_steps_are_reported() -> None:
    problems = K.fc_sparse_problems(3, np.array([2, 3, 2]), np.array([0, 1, 3]), 2, 4)
    assert problems == ["byte step 3 at entry 1 is odd (x is int16: steps are 2 x columns)"]


def test_more_than_32768_inputs_is_refused() -> None:
    with pytest.raises(ValueError, match="32768"):
        K.csr_from_dense(np.zeros((1, 32769), dtype=np.int16))


def test_more_than_65535_values_is_refused() -> None:
    with pytest.raises(ValueError, match="65535"):
        K.csr_from_dense(np.ones((3, 30000), dtype=np.int16))


# ---------------------------------------------------------------------------------------------
# C == numpy


@st.composite
def fc_sparse_cases(draw: st.DrawFn) -> list[tuple[SparseCase, np.ndarray]]:
    k, n = draw(st.integers(1, 60)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(seeds))
    x = int16_array(rng, draw(modes), (k,))
    w = prune(rng, int16_array(rng, draw(modes), (n, k)), draw(densities))
    if draw(st.booleans()):
        w[rng.integers(0, n)] = 0  # an empty row: act(requant(bias))
    b = int32_array(rng, draw(modes), n)
    shift = rng.integers(-15, 32, size=n)
    act = draw(acts())
    values, deltas, rowptr = K.csr_from_dense(w)
    y = K.fc_sparse(x, values, deltas, rowptr, b, shift, act)
    assert np.array_equal(y, K.fc(x, w, b, shift, act))
    ranges, mask = draw(tiling_1d(n))
    params = [k, n, *act_params(act)]
    return [(SparseCase("fc_sparse", params, [x, values, deltas, rowptr, b, shift], ranges),
             np.where(mask, y, FILL)),
            (SparseCase("fc", params, [x, w, b, shift], [(0, n)]), y)]


@given(cases=st.lists(fc_sparse_cases(), min_size=1, max_size=4))
@EXAMPLES
def test_fc_sparse_c(sparse_harnesses: list[Harness],
                     cases: list[list[tuple[SparseCase, np.ndarray]]]) -> None:
    flat = [c for group in cases for c in group]
    check(sparse_harnesses, [c for c, _ in flat], [e for _, e in flat])  # type: ignore[misc]


@st.composite
def conv_sparse_cases(draw: st.DrawFn) -> list[tuple[SparseCase, np.ndarray]]:
    """conv geometries as in test_kernels_c_vs_numpy.conv_cases, weights pruned to a density;
    sometimes wide channels (more than FX_SPARSE_CONV_TAPS stored taps: the chunked path) and
    wide rows (more than one FX_SPARSE_CONV_SEG segment)."""
    one_d = draw(st.booleans())
    depthwise = draw(st.booleans())
    wide = draw(st.integers(0, 3)) == 0
    if depthwise:
        group, cin_g, cout_g = draw(st.integers(1, 4)), 1, draw(st.sampled_from([1, 1, 2]))
    else:
        group = draw(st.sampled_from([1, 1, 2, 3]))
        cin_g = draw(st.integers(6, 12)) if wide else draw(st.integers(1, 3))
        cout_g = draw(st.integers(1, 3))
    cin, cout = group * cin_g, group * cout_g
    kw, sw, dw = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pl, pr = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if one_d:
        ih, kh, sh, dh, pt, pb = 1, 1, 1, 1, 0, 0
    else:
        ih, kh = draw(st.integers(1, 8)), draw(st.integers(1, 4))
        sh, dh = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        pt, pb = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    iw = draw(st.integers(1, 40 if one_d else 20))
    oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
    if oh < 1 or ow < 1:
        pb += (1 - oh) * sh if oh < 1 else 0
        pr += (1 - ow) * sw if ow < 1 else 0
        oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw))
    rng = np.random.default_rng(draw(seeds))
    x = int16_array(rng, draw(modes), (cin, ih, iw))
    w = prune(rng, int16_array(rng, draw(modes), (cout, cin_g, kh, kw)), draw(densities))
    if draw(st.booleans()):
        w[rng.integers(0, cout)] = 0
    b = int32_array(rng, draw(modes), cout)
    shift = rng.integers(-15, 32, size=cout) if draw(st.booleans()) else rng.integers(10, 20, size=cout)
    act = draw(acts())
    stride, pads, dil = (sh, sw), (pt, pl, pb, pr), (dh, dw)
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (ih, iw), dil)
    y = K.conv_sparse(x, values, offsets, chanptr, b, (kh, kw), stride, pads, dil, group, shift, act)
    assert y.shape == (cout, oh, ow)
    tiles, expected = draw(tiling_conv(y))
    params = [cin, ih, iw, cout, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl, group, *act_params(act)]
    return [(SparseCase("conv_sparse", params, [x, values, offsets, chanptr, b, shift], tiles), expected),
            (SparseCase("conv", params, [x, w, b, shift], [(0, cout, 0, oh)]), y)]


@given(cases=st.lists(conv_sparse_cases(), min_size=1, max_size=4))
@EXAMPLES
def test_conv_sparse_c(sparse_harnesses: list[Harness],
                       cases: list[list[tuple[SparseCase, np.ndarray]]]) -> None:
    flat = [c for group in cases for c in group]
    check(sparse_harnesses, [c for c, _ in flat], [e for _, e in flat])  # type: ignore[misc]


@st.composite
def long_channel_cases(draw: st.DrawFn) -> list[tuple[SparseCase, np.ndarray]]:
    """Convs whose channels keep 33..300 stored taps (more than FX_SPARSE_RUN_TAPS: groups of 32
    taps with partial sums per band of rows, fx_sparse_long; rows wider than FX_SPARSE_ACC = 64
    outputs: the chunked path): inside the input or with borders, strided, dilated, grouped."""
    group = draw(st.sampled_from([1, 1, 2, 3]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = (0, 0, 0, 0) if draw(st.booleans()) else tuple(draw(st.integers(0, 2)) for _ in range(4))
    taps = draw(st.lists(st.integers(33, 300), min_size=1, max_size=3))
    cin_g = -(-max(taps) // (kh * kw))
    cout_g = len(taps)
    ih = draw(st.integers((kh - 1) * dh + 1, (kh - 1) * dh + 9))
    wmax = min((kw - 1) * dw + 72, 32767 // (cin_g * ih))    # a group's offsets fit 16 bits
    iw = draw(st.integers(min((kw - 1) * dw + 1, wmax), wmax))
    oh, ow = K.out_hw((ih, iw), (kh, kw), (sh, sw), pads, (dh, dw))
    rng = np.random.default_rng(draw(seeds))
    cin, cout = group * cin_g, group * cout_g
    x = int16_array(rng, draw(modes), (cin, ih, iw))
    dense = int16_array(rng, "mix", (cout, cin_g * kh * kw))
    w = np.zeros_like(dense)
    for co in range(cout):      # exactly taps[co % cout_g] stored taps, none zero
        keep = rng.choice(cin_g * kh * kw, size=taps[co % cout_g], replace=False)
        w[co, keep] = np.where(dense[co, keep] == 0, 1, dense[co, keep])
    w = w.reshape(cout, cin_g, kh, kw)
    b = int32_array(rng, draw(modes), cout)
    shift = rng.integers(-2, 24, size=cout)
    act = draw(acts())
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (ih, iw), (dh, dw))
    assert np.diff(chanptr.astype(int)).min() > TAPS
    y = K.conv_sparse(x, values, offsets, chanptr, b, (kh, kw), (sh, sw), pads, (dh, dw), group, shift, act)
    tiles, expected = draw(tiling_conv(y))
    params = [cin, ih, iw, cout, oh, ow, kh, kw, sh, sw, dh, dw, pads[0], pads[1], group, *act_params(act)]
    return [(SparseCase("conv_sparse", params, [x, values, offsets, chanptr, b, shift], tiles), expected),
            (SparseCase("conv", params, [x, w, b, shift], [(0, cout, 0, oh)]), y)]


@given(cases=st.lists(long_channel_cases(), min_size=1, max_size=3))
@EXAMPLES
def test_conv_sparse_long_channels_c(sparse_harnesses: list[Harness],
                                     cases: list[list[tuple[SparseCase, np.ndarray]]]) -> None:
    flat = [c for group in cases for c in group]
    check(sparse_harnesses, [c for c, _ in flat], [e for _, e in flat])  # type: ignore[misc]


CONV_EDGES = {
    # name: (cin, ih, iw, cout, kh, kw, stride, pads, dilation, group, density)
    "chunked-wide-rows": (12, 6, 37, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1, 0.9),
    "chunked-exactly-two": (8, 5, 5, 2, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), 1, 1.0),
    "all-padding-rows": (2, 1, 4, 2, 1, 3, (1, 1), (3, 1, 2, 1), (1, 1), 1, 0.5),
    "kernel-wider-than-input": (1, 2, 2, 1, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1, 0.7),
    "depthwise-1d-dilated": (3, 1, 17, 3, 1, 3, (1, 2), (0, 3, 0, 1), (1, 3), 3, 0.6),
    "lenet-conv2-10pct": (6, 12, 12, 16, 5, 5, (1, 1), (0, 0, 0, 0), (1, 1), 1, 0.1),
    "pointwise": (8, 4, 5, 4, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1, 0.3),
    "all-zero": (2, 3, 3, 2, 2, 2, (1, 1), (1, 1, 1, 1), (1, 1), 1, 0.0),
}


@pytest.mark.parametrize("name", sorted(CONV_EDGES))
def test_conv_sparse_edge_cases(sparse_harnesses: list[Harness], name: str) -> None:
    """The chunked path (> FX_SPARSE_CONV_TAPS taps), windows in the padding, no stored weight;
    the whole step at once and row by row in reverse must both give numpy's bytes."""
    cin, ih, iw, cout, kh, kw, stride, pads, dil, group, density = CONV_EDGES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x = int16_array(rng, "mix", (cin, ih, iw))
    w = prune(rng, int16_array(rng, "mix", (cout, cin // group, kh, kw)), density)
    b = int32_array(rng, "mix", cout)
    shift = rng.integers(8, 20, size=cout)
    act = K.Act("relu")
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (ih, iw), dil)
    if name.startswith("chunked"):
        assert np.diff(chanptr.astype(int)).max() > TAPS
    y = K.conv(x, w, b, stride, pads, dil, group, shift, act)
    oh, ow = y.shape[1:]
    params = [cin, ih, iw, cout, oh, ow, kh, kw, *stride, *dil, pads[0], pads[1], group, *act_params(act)]
    arrays = [x, values, offsets, chanptr, b, shift]
    whole = SparseCase("conv_sparse", params, arrays, [(0, cout, 0, oh)])
    rows = SparseCase("conv_sparse", params, arrays, [(0, cout, r, r + 1) for r in reversed(range(oh))])
    check(sparse_harnesses, [whole, rows], [y, y])  # type: ignore[list-item]


def test_fc_sparse_large_layer(sparse_harnesses: list[Harness]) -> None:
    """784 x 256 at 10 %: about 20000 stored weights, tiles of 100 outputs."""
    rng = np.random.default_rng(11)
    k, n = 784, 256
    w = prune(rng, int16_array(rng, "full", (n, k)), 0.1)
    x, b = int16_array(rng, "full", (k,)), int32_array(rng, "small", n)
    shift = np.full(n, 20)
    act = K.Act("none")
    values, deltas, rowptr = K.csr_from_dense(w)
    y = K.fc(x, w, b, shift, act)
    case = SparseCase("fc_sparse", [k, n, *act_params(act)], [x, values, deltas, rowptr, b, shift],
                      [(200, 256), (0, 100), (100, 200)])
    check(sparse_harnesses, [case], [y])  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------
# freestanding


def _msp430_gcc() -> str | None:
    found = shutil.which("msp430-elf-gcc")
    if found is None and Path("/opt/msp430-elf/bin/msp430-elf-gcc").exists():
        found = "/opt/msp430-elf/bin/msp430-elf-gcc"
    return found


@pytest.mark.parametrize("cc", ["gcc", "clang", "msp430-elf-gcc"])
def test_fx_sparse_is_freestanding(cc: str, tmp_path: Path) -> None:
    """fx_sparse.c compiles warning-free at -O2/-Os and calls nothing outside fx_ (and libgcc's
    helpers / the MPY32 registers on the MSP430, small and large model)."""
    exe = _msp430_gcc() if cc == "msp430-elf-gcc" else shutil.which(cc)
    if exe is None:
        pytest.skip(f"{cc} not installed")
    variants: list[list[str]] = [[]]
    nm, allowed = "nm", ("fx_",)
    if cc == "msp430-elf-gcc":
        variants = [["-mmcu=msp430fr5994", "-DFX_USE_MPY32"],
                    ["-mmcu=msp430fr5994", "-mlarge", "-DFX_USE_MPY32"], ["-mmcu=msp430fr5994"]]
        nm = str(Path(exe).with_name("msp430-elf-nm"))
        allowed = ("fx_", "__mspabi_", "MPYS", "MACS", "OP2", "RESLO", "RESHI")
    undefined: set[str] = set()
    for flags in variants:
        for opt in ("-O2", "-Os"):
            obj = tmp_path / "fx_sparse.o"
            subprocess.run([exe, *flags, "-std=c99", opt, "-ffreestanding", "-Wall", "-Wextra", "-Werror",
                            "-pedantic", "-c", str(RUNTIME / "fx_sparse.c"), "-o", str(obj)], check=True)
            out = subprocess.run([nm, "-u", str(obj)], check=True, capture_output=True, text=True)
            undefined |= {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    assert {s for s in undefined if not s.startswith(allowed)} == set()

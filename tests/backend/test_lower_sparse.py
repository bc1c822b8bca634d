"""The dense/sparse choice of `lower` (backends/lower_sparse.py), layer by layer."""

from __future__ import annotations

import numpy as np
import pytest

from backends import lower_sparse as ls
from transpiler.lir import kernels as K

CONV_ATTRS = {"stride": [1, 1], "pads": [0, 0, 0, 0], "dilation": [1, 1], "group": 1, "act": "relu"}


def pruned(shape: tuple[int, ...], density: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    w = np.zeros(size, dtype=np.int16)
    keep = rng.choice(size, size=int(round(density * size)), replace=False)
    w[keep] = rng.integers(1, 1000, size=keep.size)
    return w.reshape(shape)


def fc_choice(w: np.ndarray, mode: str = "auto", tight: bool = False, slowdown: float = 1.5) -> ls.StorageChoice:
    n, k = w.shape
    return ls.choose(mode, slowdown, tight, "fc1", "fc", w, (k,), (n,), {"shift": [10] * n, "act": "none"})


def conv_choice(w: np.ndarray, x_shape: tuple[int, int, int], mode: str = "auto",
                tight: bool = False) -> ls.StorageChoice:
    cout, _, kh, kw = w.shape
    y = (cout, x_shape[1] - kh + 1, x_shape[2] - kw + 1)
    return ls.choose(mode, 1.5, tight, "conv1", "conv", w, x_shape, y, {**CONV_ATTRS, "shift": [10] * cout})


def test_bytes_formulas() -> None:
    w = pruned((256, 784), 0.05)
    nnz = int(np.count_nonzero(w))
    assert ls.dense_bytes(w) == 2 * 256 * 784
    assert ls.sparse_bytes(w) == 4 * nnz + 2 * 257
    values, deltas, rowptr = K.csr_from_dense(w)
    assert ls.sparse_bytes(w) == values.nbytes + deltas.nbytes + rowptr.nbytes
    assert ls.sparse_bytes(np.zeros((3, 4), np.int16)) == 4 + 2 * 4   # one explicit zero is kept


def test_auto_takes_sparse_fc_at_low_density() -> None:
    c = fc_choice(pruned((256, 784), 0.05))
    assert c.sparse and c.record["storage"] == "sparse" and c.record["density"] == pytest.approx(0.05, abs=1e-3)
    assert c.record["sparse_cycles"] < c.record["dense_cycles"] / 5
    assert c.record["bytes"] == c.record["sparse_bytes"] < c.record["dense_bytes"] / 9
    assert c.reason.startswith("saves")


def test_auto_keeps_dense_when_no_bytes_saved() -> None:
    c = fc_choice(pruned((32, 64), 0.55))
    assert not c.sparse and "would not save bytes" in c.reason
    assert c.record["sparse_bytes"] > c.record["dense_bytes"]


def test_auto_weighs_cycles_unless_fram_is_tight() -> None:
    """A 3x3 conv of 8 input channels over a 3x3 input (one output per channel) at 45 % density:
    decoding a channel's 32 taps costs more than its one output saves, so the sparse kernel is slower
    than dense though it stores fewer bytes; auto keeps it dense when that slowdown exceeds the
    allowed one (the limit is taken just below the predicted ratio, so the test holds whatever the
    calibrated cost constants are), unless the dense weights do not fit the budget."""
    w = pruned((4, 8, 3, 3), 0.45)
    probe = conv_choice(w, (8, 3, 3))
    ratio = probe.record["sparse_cycles"] / probe.record["dense_cycles"]
    assert probe.record["sparse_bytes"] < probe.record["dense_bytes"] and ratio > 1.0
    attrs = {**CONV_ATTRS, "shift": [10] * 4}
    relaxed = ls.choose("auto", ratio * 0.99, False, "conv1", "conv", w, (8, 3, 3), (4, 1, 1), attrs)
    assert not relaxed.sparse and "slower than dense" in relaxed.reason
    tight = ls.choose("auto", ratio * 0.99, True, "conv1", "conv", w, (8, 3, 3), (4, 1, 1), attrs)
    assert tight.sparse and "do not fit the FRAM budget" in tight.reason
    generous = ls.choose("auto", 100.0, False, "c", "conv", w, (8, 3, 3), (4, 1, 1), attrs)
    assert generous.sparse


def test_never_and_always() -> None:
    w = pruned((16, 6, 5, 5), 0.1)
    assert not conv_choice(w, (6, 12, 12), mode="never").sparse
    dense_w = pruned((16, 6, 5, 5), 1.0)
    always = conv_choice(dense_w, (6, 12, 12), mode="always")
    assert always.sparse and always.reason == "sparse=always"
    with pytest.raises(ValueError, match="sparse='sometimes'"):
        conv_choice(w, (6, 12, 12), mode="sometimes")


def test_limits_fall_back_to_dense() -> None:
    """More than 65535 stored weights (u16 pointers) or a group input beyond 65535 elements."""
    big = pruned((256, 784), 0.5)
    c = fc_choice(big, mode="always")
    assert not c.sparse and "exceed the 65535" in c.reason and c.record["sparse_cycles"] is None
    wide = pruned((2, 2, 3, 3), 0.2)
    c = conv_choice(wide, (2, 200, 200), mode="always")
    assert not c.sparse and "uint16" in c.reason


def test_fram_is_tight() -> None:
    assert ls.fram_is_tight(537_600, 256 * 1024)
    assert not ls.fram_is_tight(120_000, 256 * 1024)
    assert not ls.fram_is_tight(10**9, None)


def test_sparse_step_encodes_the_weights() -> None:
    w = pruned((4, 3, 2, 2), 0.3)
    op, arrays, attrs, roles = ls.sparse_step("conv", w, CONV_ATTRS, (3, 5, 6))
    assert op == "conv_sparse" and roles == ["values", "offsets", "chanptr"] and attrs["kernel"] == [2, 2]
    assert "kernel" not in CONV_ATTRS
    back = K.conv_sparse_to_dense(arrays["values"], arrays["offsets"], arrays["chanptr"], 3, (2, 2), (5, 6), (1, 1))
    assert np.array_equal(back, w)
    op, arrays, attrs, roles = ls.sparse_step("fc", w.reshape(4, 12), {"shift": [1] * 4}, (12,))
    assert op == "fc_sparse" and roles == ["values", "deltas", "rowptr"] and "kernel" not in attrs

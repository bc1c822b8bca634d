"""Lowering of the canonical TreeEnsembleRegressor (passes/tree_ensembles.py) to `trees` + `tree_sum`.

Before -> after (3 trees, 10 features, 2 output columns)::

    z = TreeEnsembleRegressor(x) {nodes_*, target_*, n_targets=2, base_values=b}
    =>
    step trees "..." (%x, %feature, %threshold, %children, %roots) -> (%z_leaves) {values=L*W}
    step tree_sum "..." (%z_leaves, %values, %first, %bias) -> (%z) {shift=q_v - q_z}

Tables (docs/lir.md, "trees"): branches numbered in preorder, tree after tree, so every child of
a branch comes after it; leaves numbered tree after tree in the model's order. A child entry is a
branch index, or ``0x8000 | leaf * W``, the offset of the leaf's values (so the sum needs no
multiply). Comparisons: the float branch ``x <= t`` becomes ``x_q <= floor(t * 2^q)`` with
``q`` the input's format, exactly the float comparison on the dequantised input ``x_q / 2^q``
(``x_q`` is an integer); ``x < t`` becomes ``x_q <= floor(t * 2^q + 1/2) - 1``: ``t`` quantised as
an input is, so that an input equal to ``t`` (XGBoost's thresholds are values of the data) takes
the float side (``ceil(t * 2^q) - 1`` would send it the other way for half of the thresholds);
``x >= t`` and ``x > t`` are the negations of those two (children swapped). ``x == t`` (BRANCH_EQ,
LightGBM's categorical splits) is two branches, ``x_q <= floor(t * 2^q)`` and then the ``<`` one,
which lead to the "unequal" child (one subtree, read from both) but for ``x_q = floor(t * 2^q)``;
a ``t`` off the input's grid at or above its half step is never equal (its branch is replaced by
the "unequal" child); BRANCH_NEQ swaps
the children. A threshold above the int16 range is 32767
(always true, as for the float input within range); a branch whose threshold lies below -32768 is
never taken and is replaced by its false child. The rest of the error is the input's rounding:
an input within half an input LSB of a threshold may take the other side (docs/lir.md). An input
with per-feature formats (`quantize`'s ``feature-shift``: feature ``c`` stored at ``q + s_c``) has
each threshold quantised in its feature's format ``q + s_c`` (tabular data: breast-cancer features
span 0.001 .. 4254, and one format for all of them rounds the small ones to a few steps).

Leaf values: ``values[l, j]`` is the weight of output ``first[t] + j`` at leaf ``l`` of tree
``t``; the width ``W`` is the widest span of outputs one tree writes (1 for gradient boosting's
one-class trees, ``C`` for random forests), so one-output trees store one value per leaf. Format:
``q_v`` from the largest leaf value (the weight rule), the bias ``round(base * 2^q_v)`` (i32),
``shift = q_v - q_out`` kept in [-15, 31].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from passes.quantize import round_half_up, weight_frac_bits
from passes.tree_ensembles import EQUALITY_MODES, Branch, Ensemble, output_spans

TREE_LEAF = 0x8000
INT16_MIN, INT16_MAX = -32768, 32767
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
SHIFT_MIN, SHIFT_MAX = -15, 31


@dataclass
class TreeTables:
    """The constant tables of one ensemble, quantised."""

    feature: np.ndarray     # u16 [N]
    threshold: np.ndarray   # i16 [N], the input's format
    children: np.ndarray    # u16 [N, 2]
    roots: np.ndarray       # u16 [T]
    values: np.ndarray      # i16 [L, W]
    first: np.ndarray       # u16 [T]
    bias: np.ndarray        # i32 [C]
    q_values: int
    shift: int
    pruned: int             # branches never taken (threshold below the int16 range)


def quantized_threshold(t: float, mode: str, q: int) -> tuple[int | None, bool]:
    """(``T`` with ``x_q <= T`` the branch's ``<=``/``<`` test, or None when that test is never
    true; whether the children swap: ``>=``/``>`` are the negations). ``<=``: ``floor(t 2^q)``,
    exact on every input on the grid; ``<``: ``t`` quantised as an input is, less one
    (``floor(t 2^q + 1/2) - 1``), so that an input equal to ``t`` (XGBoost's ``x < t`` with ``t`` a
    value of the data) goes the float model's way."""
    scaled = float(np.float32(t)) * 2.0 ** q
    bound = math.floor(scaled) if mode in ("BRANCH_LEQ", "BRANCH_GT") else math.floor(scaled + 0.5) - 1
    swap = mode in ("BRANCH_GT", "BRANCH_GTE")
    if bound < INT16_MIN:
        return None, swap
    return min(bound, INT16_MAX), swap


def build_tables(ens: Ensemble, leaves: list[dict[int, float]], base: list[float], q_in: int,
                 q_out: int, feature_shift: Sequence[int] | None = None) -> TreeTables:
    """The tables of ``ens`` (``leaves``: per tree and leaf, in ``ens``' order, the weights per
    output; ``base`` per output) for an input in format ``q_in`` and the output in ``q_out``.
    ``feature_shift``: the input's per-feature extra bits (`quantize`'s ``feature-shift``: feature
    ``c`` is stored in format ``q_in + s_c``), so its thresholds are quantised in that format."""
    firsts, width = output_spans(ens, leaves, len(base))
    leaf_row = {}
    start = 0
    for t, tree in enumerate(ens.trees):
        for k, nid in enumerate(tree.leaves):
            leaf_row[(t, nid)] = start + k
        start += len(tree.leaves)
    feature: list[int] = []
    threshold: list[int] = []
    children: list[list[int]] = []
    roots: list[int] = []
    pruned = 0

    def entry(t: int, nid: int) -> int:
        """The table entry of node ``nid`` of tree ``t`` (appending its branches in preorder)."""
        nonlocal pruned
        tree = ens.trees[t]
        while nid in tree.branches:
            b: Branch = tree.branches[nid]
            extra = feature_shift[b.feature] if feature_shift is not None and b.feature < len(feature_shift) else 0
            if b.mode in EQUALITY_MODES:
                equal, unequal = (b.true, b.false) if b.mode == "BRANCH_EQ" else (b.false, b.true)
                at_most, _ = quantized_threshold(b.threshold, "BRANCH_LEQ", q_in + extra)
                below, _ = quantized_threshold(b.threshold, "BRANCH_LT", q_in + extra)
                if at_most is None or at_most == below:     # t above its half step (or below the grid): never equal
                    pruned += 1
                    nid = unequal
                    continue
                index = len(feature)
                feature.append(b.feature)
                threshold.append(at_most)
                children.append([0, 0])
                if below is None:                           # x_q < t never holds: x_q <= T is x_q == T
                    children[index] = [entry(t, equal), entry(t, unequal)]
                    return index
                inner = len(feature)
                feature.append(b.feature)
                threshold.append(below)
                children.append([0, 0])
                other = entry(t, unequal)                   # both comparisons' "unequal" side
                children[index] = [inner, other]
                children[inner] = [other, entry(t, equal)]
                return index
            bound, swap = quantized_threshold(b.threshold, b.mode, q_in + extra)
            if bound is None:           # x_q <= bound never holds
                pruned += 1
                nid = b.true if swap else b.false
                continue
            index = len(feature)
            feature.append(b.feature)
            threshold.append(bound)
            children.append([0, 0])
            yes, no = (b.false, b.true) if swap else (b.true, b.false)
            children[index] = [entry(t, yes), entry(t, no)]
            return index
        return TREE_LEAF | leaf_row[(t, nid)] * width

    for t, tree in enumerate(ens.trees):
        roots.append(entry(t, tree.root))
    if not feature:                     # every tree a single leaf: one branch nothing reaches
        feature, threshold, children = [0], [0], [[TREE_LEAF, TREE_LEAF]]
    rows = np.zeros((len(leaves), width), dtype=np.float64)
    for t, tree in enumerate(ens.trees):
        for nid in tree.leaves:
            row = leaf_row[(t, nid)]
            for k, w in leaves[row].items():
                if w != 0.0:
                    rows[row, k - firsts[t]] = w
    biggest = float(np.max(np.abs(rows))) if rows.size else 0.0
    q_v = weight_frac_bits(biggest, lo=-16, hi=30)
    q_v = min(max(q_v, q_out + SHIFT_MIN), q_out + SHIFT_MAX)
    values = np.clip(round_half_up(rows * 2.0 ** q_v), INT16_MIN, INT16_MAX).astype(np.int16)
    bias = np.clip(round_half_up(np.asarray(base, dtype=np.float64) * 2.0 ** q_v), INT32_MIN, INT32_MAX)
    return TreeTables(np.asarray(feature, dtype=np.uint16), np.asarray(threshold, dtype=np.int16),
                      np.asarray(children, dtype=np.uint16).reshape(-1, 2), np.asarray(roots, dtype=np.uint16),
                      values, np.asarray(firsts, dtype=np.uint16), bias.astype(np.int32), q_v, q_v - q_out, pruned)

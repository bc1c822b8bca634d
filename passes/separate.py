"""`separate`: low-rank "layer separation" of oversized layers (FreeML SparseComp, step 1).

Before -> after (plain ONNX; onnxruntime runs both)::

    y = Gemm(x, W[N, K], b)                 h = Gemm(x, A[r, K])            A = sqrt(S_r) V_r^T
                                       =>   y = Gemm(h, B[N, r], b)         B = U_r sqrt(S_r)

    y = Conv(x, W[Co, Ci, kh, kw], b)       u = Conv(x, P[r1, Ci, 1, 1])               (1x1)
          {strides, pads, dilations}   =>   v = Conv(u, G[r2, r1, kh, kw]) {strides, pads, dilations}
                                            y = Conv(v, Q[Co, r2, 1, 1], b)            (1x1)

Gemm: truncated SVD ``W ~ U_r S_r V_r^T``; the rank is the smaller of the energy rank (the fewest
singular values whose squares hold ``energy`` of the total) and ``rank-share`` of the outputs
(FreeML: 10 %), at least 1. Conv (``group=1`` only; 1-D and 2-D): Tucker-2 by HOSVD of the
output- and input-channel unfoldings (``Q``, ``P^T`` their leading left singular vectors, the core
``G = W x_0 Q^T x_1 P``); each rank is estimated by empirical variational Bayesian matrix
factorisation (EVBMF, Nakajima et al. 2013, what FreeML uses) on that unfolding, capped by the
energy rank (EVBMF finding nothing falls back to the energy rank), at least 1.

Which layers: those whose float32 weights exceed ``threshold`` (default 80 KB, FreeML's), and those
whose Q15 bytes alone exceed ``budget`` when one is given. A factorisation is tried only when its
dense Q15 bytes (passes/compress_size.py) are smaller than the layer's. Each is then fine-tuned
(``epochs``, the whole network, Adam; passes/finetune.py: train part, cross-entropy with labels or
distillation from the original without; the fine-tuned weights replace the factors only if they do
not lose accuracy) and kept only if the accuracy drop on the val part against the original stays
within ``max-drop`` points; otherwise the layer is restored and the stats say why.

With a ``budget``, a factorisation is also skipped when its factors, stored dense, exceed the layer's
proportional share of the budget (``budget * layer bytes / model bytes``): they would have to be
pruned as well, and a low-rank approximation that sparsify then prunes far below its size compounds
two approximations. Measured on mlp_mnist_big at 95x (bench/sparsecomp.py): with the first layer
separated at rank 26 (55 KB of factors for an 8 KB share) sparsify could not reach the budget within
1 point; pruning the layer itself reached it. On lenet5_mnist at 12x, fc1's rank-12 factors (13 KB)
fit its 16 KB share and are kept.

Largest layers first; each kept separation is the starting point of the next.

The new nodes are named ``<node>_sep_a``/``_sep_b``(/``_sep_c``), carry ``split-from`` = the
original node's name and its ``origin``. Stats: per layer the ranks, bytes before/after, accuracy
and the decision.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx_graphsurgeon as gs

from passes.compress_size import float32_bytes, layer_size, model_size
from passes.finetune import DISTILL_TEMPERATURE, FineTune, finetune_setup
from passes.normalize_util import (FIXED_WEIGHTS, NameSource, consumers, new_constant, new_variable, origin_of,
                                   quiet_gs, set_origin, static_shape)
from passes.train import build_net
from passes.train.threads import blas_threads
from passes.tree_ensembles import reject_training
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

DEFAULT_THRESHOLD = 80 * 1024


@dataclass(frozen=True)
class SeparateOptions:
    """Options of `separate` (see the module docstring); sizes in bytes (``80KiB`` in pipeline text)."""

    threshold: int = DEFAULT_THRESHOLD
    budget: int | None = None
    energy: float = 0.9
    rank_share: float = 0.1
    max_drop: float = 1.0
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    loss: Literal["auto", "ce", "distill", "mse"] = "auto"
    task: Literal["auto", "classify", "regress"] = "auto"
    temperature: float = DISTILL_TEMPERATURE
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        checks = [(self.threshold > 0, "threshold must be > 0 bytes"),
                  (self.budget is None or self.budget > 0, "budget must be > 0 bytes"),
                  (0 < self.energy <= 1, "energy must be in (0, 1]"),
                  (0 < self.rank_share <= 1, "rank-share must be in (0, 1]"),
                  (self.max_drop >= 0 and self.epochs >= 0, "max-drop >= 0 and epochs >= 0"),
                  (self.lr > 0 and self.batch_size >= 1 and self.temperature > 0 and self.threads >= 1,
                   "lr > 0, batch-size >= 1, temperature > 0, threads >= 1")]
        bad = [text for ok, text in checks if not ok]
        if bad:
            raise ValueError("; ".join(bad))


# --------------------------------------------------------------------------- ranks
def energy_rank(singular: np.ndarray, energy: float) -> int:
    """The fewest leading singular values whose squares hold ``energy`` of the total (at least 1)."""
    power = np.asarray(singular, dtype=np.float64) ** 2
    total = float(power.sum())
    if total <= 0:
        return 1
    return max(1, int(np.searchsorted(np.cumsum(power) / total, energy - 1e-12) + 1))


def _minimize_bounded(f: Any, lo: float, hi: float, iters: int = 100) -> float:
    """Golden-section search for the minimum of a unimodal ``f`` on ``[lo, hi]``."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def evbmf_rank(matrix: np.ndarray) -> int:
    """The rank empirical VBMF (Nakajima, Sugiyama, Babacan, Tomioka, JMLR 2013) keeps for ``matrix``.

    The noise variance is estimated by minimising the EVB free energy over its analytic bounds; the
    rank is the number of singular values above the EVB threshold
    ``sqrt(M sigma^2 (1 + tau) (1 + alpha / tau))`` (``L <= M`` the matrix's sides,
    ``alpha = L / M``, ``tau = 2.5129 sqrt(alpha)``). 0 when nothing stands out of the noise.
    """
    y = np.asarray(matrix, dtype=np.float64)
    if y.shape[0] > y.shape[1]:
        y = y.T
    rows, cols = y.shape
    if rows < 2:
        return rows
    s = np.linalg.svd(y, compute_uv=False)
    alpha = rows / cols
    tau_bar = 2.5129 * math.sqrt(alpha)
    x_bar = (1 + tau_bar) * (1 + alpha / tau_bar)
    residual = max(float((y ** 2).sum() - (s ** 2).sum()), 0.0)
    h_ub = int(min(math.ceil(rows / (1 + alpha)) - 1, rows)) - 1
    h_ub = max(0, min(h_ub, rows - 2))
    upper = (float((s ** 2).sum()) + residual) / (rows * cols)
    lower = max(float(s[h_ub + 1] ** 2) / (cols * x_bar), float(np.mean(s[h_ub + 1:] ** 2)) / cols)
    if not upper > lower > 0:
        return 0

    def free_energy(sigma2: float) -> float:
        x = s ** 2 / (cols * sigma2)
        z1, z2 = x[x > x_bar], x[x <= x_bar]
        tau = 0.5 * (z1 - (1 + alpha) + np.sqrt(np.maximum((z1 - (1 + alpha)) ** 2 - 4 * alpha, 0.0)))
        return float(np.sum(z2 - np.log(z2)) + np.sum(z1 - tau) + np.sum(np.log((tau + 1) / z1))
                     + alpha * np.sum(np.log(tau / alpha + 1)) + residual / (cols * sigma2))

    sigma2 = _minimize_bounded(free_energy, lower, upper)
    threshold = math.sqrt(cols * sigma2 * (1 + tau_bar) * (1 + alpha / tau_bar))
    return int(np.sum(s > threshold))


# --------------------------------------------------------------------------- factorisations
@dataclass
class _Plan:
    """One candidate separation: the node, its new weights, ranks and byte counts."""

    node: gs.Node
    kind: str                       # "svd" or "tucker2"
    ranks: tuple[int, ...]
    factors: list[np.ndarray]       # in data-flow order
    bytes_before: int
    bytes_after: int


def gemm_factors(w: np.ndarray, energy: float, rank_share: float) -> tuple[int, list[np.ndarray]]:
    """Rank and ``[A[r, K], B[N, r]]`` with ``B @ A`` the rank-r SVD approximation of ``W[N, K]``."""
    u, s, vt = np.linalg.svd(np.asarray(w, dtype=np.float64), full_matrices=False)
    cap = max(1, int(math.ceil(rank_share * w.shape[0])))
    r = max(1, min(energy_rank(s, energy), cap, len(s)))
    root = np.sqrt(s[:r])
    a = root[:, None] * vt[:r]
    b = u[:, :r] * root[None, :]
    return r, [a.astype(w.dtype), b.astype(w.dtype)]


def conv_factors(w: np.ndarray, energy: float) -> tuple[tuple[int, int], list[np.ndarray]]:
    """Ranks ``(r1, r2)`` and ``[P[r1, Ci, 1.., 1], G[r2, r1, k..], Q[Co, r2, 1.., 1]]`` (Tucker-2 by HOSVD)."""
    w64 = np.asarray(w, dtype=np.float64)
    co, ci = w64.shape[:2]
    spatial = w64.shape[2:]
    out_unfold = w64.reshape(co, -1)                               # [Co, Ci * k]
    in_unfold = np.moveaxis(w64, 1, 0).reshape(ci, -1)             # [Ci, Co * k]
    ranks = []
    bases = []
    for unfold in (in_unfold, out_unfold):
        u, s, _ = np.linalg.svd(unfold, full_matrices=False)
        by_energy = energy_rank(s, energy)
        by_vbmf = evbmf_rank(unfold)
        r = max(1, min(by_vbmf if by_vbmf > 0 else by_energy, by_energy, len(s)))
        ranks.append(r)
        bases.append(u[:, :r])
    p, q = bases                                                   # [Ci, r1], [Co, r2]
    # core[r, s, k...] = sum_o,i W[o, i, k...] Q[o, r] P[i, s]: two products (einsum over the three
    # operands at once is one loop over o, i, r, s and k: 2.8 s for a 256x128x3x3 conv at ranks 96x64,
    # 3.7 ms as two products; the float32 factors came out the same to the bit in the measured cases)
    core = np.moveaxis(np.tensordot(np.tensordot(q, w64, axes=(0, 0)), p, axes=(1, 0)), -1, 1)   # [r2, r1, k...]
    ones = (1,) * len(spatial)
    factors = [p.T.reshape(ranks[0], ci, *ones), core, q.reshape(co, ranks[1], *ones)]
    return (ranks[0], ranks[1]), [f.astype(w.dtype) for f in factors]


def _dense_q15_bytes(shapes: list[tuple[int, ...]]) -> int:
    """Dense Q15 bytes of layers with these weight shapes: weights, int32 bias, shifts, descriptor."""
    total = 0
    for shape in shapes:
        n = int(shape[0])
        total += 2 * int(np.prod(shape)) + 4 * n + n + 24
    return total


def plan_for(node: gs.Node, energy: float, rank_share: float) -> _Plan | str:
    """The separation of one Gemm/Conv, or why there is none."""
    w = np.asarray(node.inputs[1].values)
    size = layer_size(node)
    assert size is not None
    if node.op == "Gemm":
        r, factors = gemm_factors(w, energy, rank_share)
        kind, ranks = "svd", (r,)
    else:
        if int(node.attrs.get("group", 1)) != 1:
            return f"group={node.attrs.get('group')} (Tucker-2 needs group=1)"
        if w.ndim not in (3, 4):
            return f"{w.ndim - 2}-D convolution"
        ranks, factors = conv_factors(w, energy)
        kind = "tucker2"
    after = _dense_q15_bytes([f.shape for f in factors])
    before = size.dense_bytes + size.bias_bytes + size.descriptor_dense
    if after >= before:
        return f"rank {ranks} would not save bytes ({after:,} B >= {before:,} B dense)"
    return _Plan(node, kind, tuple(ranks), factors, before, after)


def budget_share(layer_bytes: int, model_bytes: int, budget: int) -> int:
    """The layer's proportional share of ``budget``: ``budget * layer_bytes / model_bytes``."""
    return int(budget * layer_bytes / max(model_bytes, 1))


def _within_share(plan: _Plan, budget: int, model_bytes: int) -> _Plan | str:
    """``plan`` when its factors, stored dense, fit the layer's share of the budget; else why not."""
    share = budget_share(plan.bytes_before, model_bytes, budget)
    if plan.bytes_after <= share:
        return plan
    return (f"rank {'x'.join(map(str, plan.ranks))} factors ({plan.bytes_after:,} B dense) exceed the layer's "
            f"share of the budget ({share:,} B): sparsify prunes the layer itself")


def apply_plan(model: OnnxModel, plan: _Plan) -> list[gs.Node]:
    """Replace ``plan.node`` by its factors in ``model`` (see the module docstring); the new nodes."""
    graph = model.graph
    names = NameSource(graph)
    node = plan.node
    x, y = node.inputs[0], node.outputs[0]
    bias = node.inputs[2] if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant) else None
    out_shape = list(static_shape(y) or [])
    in_shape = list(static_shape(x) or [])
    tensors: list[gs.Tensor] = [x]
    new_nodes: list[gs.Node] = []
    suffixes = "abc"
    for i, weight in enumerate(plan.factors):
        last = i == len(plan.factors) - 1
        w = new_constant(names, f"{node.name}_sep_{suffixes[i]}_W", weight)
        inputs: list[gs.Tensor] = [tensors[-1], w]
        if last and bias is not None:
            inputs.append(bias)
        if last:
            out = y
        elif node.op == "Gemm":
            out = new_variable(names, f"{node.name}_sep_{suffixes[i]}_out", y.dtype or np.float32,
                               [1, weight.shape[0]])
        else:
            spatial = in_shape[2:] if i == 0 else out_shape[2:]
            out = new_variable(names, f"{node.name}_sep_{suffixes[i]}_out", y.dtype or np.float32,
                               [1, weight.shape[0], *spatial])
        attrs = dict(node.attrs)
        if node.op == "Conv":
            rank = weight.ndim - 2
            attrs["kernel_shape"] = [int(d) for d in weight.shape[2:]]
            if plan.kind == "tucker2" and i != 1:   # the 1x1 convs: no stride, no padding
                attrs.update({"strides": [1] * rank, "pads": [0] * (2 * rank), "dilations": [1] * rank})
        new = gs.Node(op=node.op, name=names.fresh(f"{node.name}_sep_{suffixes[i]}"), attrs=attrs,
                      inputs=inputs, outputs=[out])
        new_nodes.append(new)
        tensors.append(out)
    origin = origin_of(model, node)
    node.inputs.clear()
    node.outputs.clear()
    graph.nodes.extend(new_nodes)
    for new in new_nodes:
        set_origin(model, new, origin)
        model.annotations.set(new.name, "split-from", node.name)
    model.annotations.remove(node.name)
    with quiet_gs():
        graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return new_nodes


def _candidates(model: OnnxModel, opts: SeparateOptions) -> list[tuple[gs.Node, str]]:
    """The layers to try, largest first, each with why it qualifies."""
    found = []
    for node in model.graph.nodes:
        size = layer_size(node)
        if size is None or model.annotations.has(node.name, "split-from") \
                or model.annotations.get(node.inputs[1].name, FIXED_WEIGHTS):
            continue
        f32 = 4 * size.weights
        reasons = []
        if f32 > opts.threshold:
            reasons.append(f"{f32:,} B float32 > threshold {opts.threshold:,} B")
        if opts.budget is not None and size.total > opts.budget:
            reasons.append(f"{size.total:,} B Q15 alone > budget {opts.budget:,} B")
        if reasons and len(consumers(node.inputs[1])) == 1:
            found.append((node, "; ".join(reasons)))
    found.sort(key=lambda item: (-layer_size(item[0]).weights, item[0].name))  # type: ignore[union-attr]
    return found


@register
class Separate(Pass):
    """Factorise oversized Gemm (SVD) and Conv (Tucker-2) layers, fine-tune, keep what stays accurate.

    Before -> after::

        Gemm(x, W[N, K], b)        =>   Gemm(Gemm(x, A[r, K]), B[N, r], b)        (split-from)
        Conv(x, W[Co, Ci, k, k])   =>   Conv1x1(r2->Co, Conv kxk(r1->r2, Conv1x1(Ci->r1, x)))

    (see the module docstring)
    """

    name = "separate"
    options_type = SeparateOptions
    level = "onnx"
    requires = frozenset({"normal-form"})

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        opts: SeparateOptions = self.options
        start = time.perf_counter()
        reject_training(model, "separate")
        candidates = _candidates(model, opts)
        size_before = model_size(model).total
        stats: dict[str, Any] = {"size_before": size_before, "float32_bytes": float32_bytes(model),
                                 "threshold": opts.threshold, "budget": opts.budget, "layers": []}
        if not candidates:
            stats["size_after"] = size_before
            stats["note"] = "no layer over the threshold or the budget"
            return PassResult(model, False, stats)
        tune: FineTune | None = None
        changed = False
        for node, reason in candidates:
            with blas_threads(opts.threads):   # as the training: spinning BLAS threads stall on busy cores
                plan = plan_for(node, opts.energy, opts.rank_share)
            record: dict[str, Any] = {"node": node.name, "op": node.op, "reason": reason,
                                      "shape": list(np.asarray(node.inputs[1].values).shape)}
            if not isinstance(plan, str) and opts.budget is not None:
                plan = _within_share(plan, opts.budget, size_before)
            if isinstance(plan, str):
                record.update({"kept": False, "why": plan})
                stats["layers"].append(record)
                self.context.say(f"separate: '{node.name}' not separated: {plan}")
                continue
            if tune is None:
                tune = finetune_setup(model, self.context, self.name, loss=opts.loss, task=opts.task,
                                      epochs=opts.epochs, lr=opts.lr, batch_size=opts.batch_size,
                                      temperature=opts.temperature, threads=opts.threads)
            record.update({"kind": plan.kind, "ranks": list(plan.ranks), "bytes_before": plan.bytes_before,
                           "bytes_after": plan.bytes_after})
            kept = self._try(model, plan, tune, record)
            changed |= kept
            stats["layers"].append(record)
        stats["size_after"] = model_size(model).total
        stats["seconds"] = round(time.perf_counter() - start, 2)
        if tune is not None:
            stats.update({"loss": tune.loss, "measure": tune.measure, "max_drop": self.options.max_drop,
                          "accuracy_reference": round(tune.reference.accuracy, 6)})
        return PassResult(model, changed, stats)

    def _try(self, model: OnnxModel, plan: _Plan, tune: FineTune, record: dict[str, Any]) -> bool:
        """Separate one layer on a copy, fine-tune, keep it in ``model`` when within max-drop."""
        trial = model.copy()
        node = next(n for n in trial.graph.nodes if n.name == plan.node.name)
        new_nodes = apply_plan(trial, _Plan(node, plan.kind, plan.ranks, plan.factors, plan.bytes_before,
                                            plan.bytes_after))
        net = build_net(trial)
        untuned = accuracy = tune.accuracy(net)
        if self.options.epochs:
            factors = net.params(copy=True)
            tune.tune(net, seed=self.options.seed)
            accuracy = tune.accuracy(net)
            if accuracy < untuned:          # the factors alone did better: fine-tuning is not kept
                net.set_params(factors)
                accuracy = untuned
                record["tuning"] = "not kept (lost accuracy)"
        drop = tune.drop(accuracy)
        record.update({"accuracy_untuned": round(untuned, 6), "accuracy": round(accuracy, 6), "drop": round(drop, 3),
                       "new_nodes": [n.name for n in new_nodes]})
        ranks = "x".join(map(str, plan.ranks))
        if drop > self.options.max_drop + 1e-9:
            record.update({"kept": False, "why": f"accuracy drop {drop:.2f} > max-drop {self.options.max_drop} "
                                                  f"points ({tune.measure} on val)"})
            self.context.say(f"separate: '{plan.node.name}' {plan.kind} rank {ranks}: val {100 * accuracy:.2f} % "
                             f"(drop {drop:+.2f}) > max-drop: reverted")
            return False
        net.write_back(trial)
        model.graph = trial.graph
        model.annotations = trial.annotations
        record["kept"] = True
        self.context.say(f"separate: '{plan.node.name}' {plan.kind} rank {ranks}: {plan.bytes_before:,} B -> "
                         f"{plan.bytes_after:,} B dense, val {100 * untuned:.2f} % untuned, {100 * accuracy:.2f} % "
                         f"after {self.options.epochs} epochs (drop {drop:+.2f}): kept")
        return True


__all__ = ["Separate", "SeparateOptions", "apply_plan", "conv_factors", "energy_rank", "evbmf_rank",
           "gemm_factors", "plan_for"]

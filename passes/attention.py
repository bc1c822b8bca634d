"""`attention`: self-attention as exporters write it, rebuilt per head on ``[1, T, D]`` sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.embedding import is_embedding
from passes.normalize_util import (NameSource, add_node, const_value, drop_unused, is_const, is_empty, new_constant,
                                   new_variable, origin_of, producer, set_origin, static_shape)

#: Ops that only move values (or scale them all by constants), which the index tracing evaluates.
LAYOUT_OPS = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Slice", "Identity", "Mul", "Div")


class _NoMatch(Exception):
    """The subgraph around a Softmax is not a self-attention this pass rebuilds (the message: why)."""


def _default(node: gs.Node) -> bool:
    return node.domain in (None, "", "ai.onnx")


def _layout_step(node: gs.Node, idx: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One layout op applied to the index array (the flat source index of every element) and the
    scale array (the constant factor every element carries)."""
    out_shape = static_shape(node.outputs[0])
    if out_shape is None:
        raise _NoMatch(f"{node.name}: no static output shape")
    if node.op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"):
        if int(np.prod(out_shape)) != idx.size:
            raise _NoMatch(f"{node.name}: size changes")
        return idx.reshape(out_shape), scale.reshape(out_shape)
    if node.op == "Transpose":
        perm = [int(p) for p in node.attrs.get("perm", list(reversed(range(idx.ndim))))]
        return idx.transpose(perm), scale.transpose(perm)
    if node.op == "Slice":
        return _slice_step(node, idx, scale, tuple(out_shape))
    if node.op == "Gather":
        where = const_value(node.inputs[1])
        if where is None:
            raise _NoMatch(f"{node.name}: the indices are not constant")
        axis = int(node.attrs.get("axis", 0)) % idx.ndim
        pos = np.where(where < 0, where + idx.shape[axis], where).astype(np.int64)
        return np.take(idx, pos, axis=axis), np.take(scale, pos, axis=axis)
    # Mul / Div by a constant that does not change the shape (_is_layout: exactly one constant)
    data = _data_input(node)
    k = next(const_value(t) for t in node.inputs if t is not data)
    if k is None or tuple(out_shape) != tuple(idx.shape) or (node.op == "Div" and node.inputs[1] is data):
        raise _NoMatch(f"{node.name}: {node.op} by something other than a constant of the same shape")
    k = np.broadcast_to(np.asarray(k, dtype=np.float64), idx.shape)
    return idx, scale * (k if node.op == "Mul" else 1.0 / k)


def _slice_step(node: gs.Node, idx: np.ndarray, scale: np.ndarray,
                out_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A Slice (opset 10+: constant starts, ends, axes and positive steps; a packed q/k/v split, as
    `split-to-slices` writes torch's ``unbind``/``chunk``) applied to the index and scale arrays."""
    bounds = [const_value(t) if i < len(node.inputs) and not is_empty(t) else None
              for i, t in enumerate(node.inputs[1:5], 1)]
    starts, ends = bounds[0], bounds[1]
    if starts is None or ends is None:
        raise _NoMatch(f"{node.name}: a Slice without constant bounds")
    axes = bounds[2] if len(bounds) > 2 and bounds[2] is not None else np.arange(len(starts))
    steps = bounds[3] if len(bounds) > 3 and bounds[3] is not None else np.ones(len(starts), dtype=np.int64)
    where = [slice(None)] * idx.ndim
    for start, end, axis, step in zip(starts.reshape(-1), ends.reshape(-1), axes.reshape(-1), steps.reshape(-1)):
        if int(step) <= 0:
            raise _NoMatch(f"{node.name}: a Slice with a step that is not positive")
        where[int(axis) % idx.ndim] = slice(int(start), int(end), int(step))
    idx, scale = idx[tuple(where)], scale[tuple(where)]
    if tuple(idx.shape) != out_shape:
        raise _NoMatch(f"{node.name}: a Slice whose output shape is not its static one")
    return idx, scale


def _data_input(node: gs.Node) -> gs.Tensor:
    """The activation a layout op reads (the first non-constant input)."""
    for t in node.inputs:
        if not is_const(t):
            return t
    raise _NoMatch(f"{node.name}: no activation input")


def _is_layout(node: gs.Node | None) -> bool:
    if node is None or not _default(node) or node.op not in LAYOUT_OPS:
        return False
    if node.op in ("Mul", "Div"):
        return len(node.inputs) == 2 and sum(is_const(t) for t in node.inputs) == 1
    if node.op == "Slice":
        return len(node.inputs) >= 3 and all(is_const(t) or is_empty(t) for t in node.inputs[1:])
    return not is_embedding(node)       # an embedding makes the sequence, it does not move it


def _trace_back(t: gs.Tensor) -> tuple[gs.Tensor, list[gs.Node]]:
    """The tensor before the layout ops that end in `t`, and those ops in order."""
    chain: list[gs.Node] = []
    node = producer(t)
    while _is_layout(node):
        assert node is not None
        chain.insert(0, node)
        t = _data_input(node)
        node = producer(t)
    return t, chain


def _trace_forward(t: gs.Tensor, graph: gs.Graph) -> tuple[gs.Tensor, list[gs.Node]]:
    """Follow `t` through layout ops, each the sole reader of the one before, to the last one."""
    chain: list[gs.Node] = []
    while len(t.outputs) == 1 and _is_layout(t.outputs[0]) and not any(o is t for o in graph.outputs) \
            and _data_input(t.outputs[0]) is t:
        chain.append(t.outputs[0])
        t = chain[-1].outputs[0]
    return t, chain


def _evaluate(chain: list[gs.Node], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    scale = np.ones(shape, dtype=np.float64)
    for node in chain:
        idx, scale = _layout_step(node, idx, scale)
    return idx, scale


@dataclass
class _Projection:
    """``S = L W + b`` (a MatMul with a constant ``[D, F]`` weight, or a Gemm) whose input ``L`` is the
    sequence ``X [1, T, D]`` moved around: row ``r`` of ``S`` is token ``token[r]``."""

    x: gs.Tensor
    weight: np.ndarray          # [D, F]
    bias: np.ndarray            # [F]
    token: np.ndarray           # [rows of S]
    out: gs.Tensor
    nodes: list[gs.Node]


def _projection(s: gs.Tensor) -> _Projection:
    node = producer(s)
    nodes: list[gs.Node] = []
    bias: np.ndarray | None = None
    if node is not None and node.op == "Add" and _default(node):
        consts = [const_value(t) for t in node.inputs]
        acts = [t for t in node.inputs if not is_const(t)]
        if len(acts) != 1 or all(c is None for c in consts):
            raise _NoMatch("the projection's Add is not a bias add")
        bias = next(c for c in consts if c is not None)
        nodes.append(node)
        node = producer(acts[0])
    if node is None or node.op not in ("MatMul", "Gemm") or not _default(node) or not is_const(node.inputs[1]):
        raise _NoMatch("the queries, keys or values do not come from a projection with constant weights")
    w = np.asarray(const_value(node.inputs[1]), dtype=np.float64)
    if node.op == "Gemm":
        if float(node.attrs.get("alpha", 1.0)) != 1.0 or int(node.attrs.get("transA", 0)) != 0:
            raise _NoMatch("a Gemm projection with alpha or transA")
        w = w.T if int(node.attrs.get("transB", 0)) else w
        if len(node.inputs) > 2 and is_const(node.inputs[2]):
            extra = np.asarray(const_value(node.inputs[2]), dtype=np.float64) * float(node.attrs.get("beta", 1.0))
            bias = extra if bias is None else bias + extra
    nodes.insert(0, node)
    if w.ndim != 2:
        raise _NoMatch("a projection weight that is not a matrix")
    d, f = w.shape
    b = np.zeros(f) if bias is None else np.asarray(bias, dtype=np.float64)
    if b.size == 1:
        b = np.full(f, float(b.reshape(-1)[0]))
    if b.shape[-1] != f or b.size != f:
        raise _NoMatch("a projection bias that is not one value per output feature")
    x, chain = _trace_back(node.inputs[0])
    shape = static_shape(x)
    l_shape = static_shape(node.inputs[0])
    if shape is None or l_shape is None or len(shape) != 3 or shape[0] != 1 or shape[2] != d or l_shape[-1] != d:
        raise _NoMatch(f"the projection's input does not come from a [1, T, {d}] sequence")
    idx, scale = _evaluate(chain, shape)
    rows = idx.reshape(-1, d)
    if not np.all(scale == 1.0) or not np.array_equal(rows % d, np.broadcast_to(np.arange(d), rows.shape)) \
            or not np.all(rows // d == (rows[:, :1] // d)):
        raise _NoMatch("the projection's input rows are not the sequence's tokens")
    return _Projection(x, w, b.reshape(-1), rows[:, 0] // d, s, nodes + chain)


@dataclass
class _Operand:
    """One operand of the attention as ``[heads, T, features]`` of a projection's outputs: element
    ``[h, t, j]`` is feature ``feature[h, j]`` of token ``t``, times ``scale[h]``."""

    proj: _Projection
    feature: np.ndarray         # [H, J]
    scale: np.ndarray           # [H]
    direct: bool                # read straight from the projection (keys: through one Transpose)


def _operand(t: gs.Tensor, transposed: bool) -> _Operand:
    src, chain = _trace_back(t)
    proj = _projection(src)
    shape = static_shape(src)
    t_shape = static_shape(t)
    assert shape is not None
    if t_shape is None or len(t_shape) not in (3, 4) or (len(t_shape) == 4 and t_shape[0] != 1):
        raise _NoMatch(f"an attention operand of shape {t_shape}")
    idx, scale = _evaluate(chain, shape)
    idx, scale = idx.reshape(t_shape[-3:]), scale.reshape(t_shape[-3:])
    if transposed:
        idx, scale = idx.transpose(0, 2, 1), scale.transpose(0, 2, 1)
    f = proj.weight.shape[1]
    token = proj.token[idx // f]
    n_tokens = idx.shape[1]
    if not np.array_equal(token, np.broadcast_to(np.arange(n_tokens)[None, :, None], token.shape)):
        raise _NoMatch("an attention operand does not keep the tokens in order")
    feature = idx % f
    if not np.all(feature == feature[:, :1, :]) or not np.all(scale == scale[:, :1, :1]):
        raise _NoMatch("an attention operand mixes features or scales across tokens")
    direct = [n.op for n in chain] == (["Transpose"] if transposed else []) and len(t_shape) == 3
    return _Operand(proj, feature[:, 0, :], scale[:, 0, 0], direct)


@dataclass
class _Output:
    """The heads' outputs ``O [H, T, dv]`` through layout ops into an output projection ``Y = G Wo +
    bo`` and layout ops into ``Z [1, T, Dm]``; ``rows[h, j]`` the row of ``Wo`` that reads ``O[h, :, j]``."""

    weight: np.ndarray          # [H * dv, Dm] (rows in G's feature order)
    bias: np.ndarray            # [Dm]
    rows: np.ndarray            # [H, dv]
    z: gs.Tensor
    nodes: list[gs.Node]
    direct: bool                # the heads' output goes straight into the projection


def _output(o: gs.Tensor, graph: gs.Graph) -> _Output:
    o_shape = static_shape(o)
    assert o_shape is not None
    g, chain = _trace_forward(o, graph)
    idx, scale = _evaluate(chain, o_shape)
    if len(g.outputs) != 1 or not np.all(scale == 1.0):
        raise _NoMatch("the heads' outputs do not go into one output projection")
    node = g.outputs[0]
    if node.op not in ("MatMul", "Gemm") or not _default(node) or node.inputs[0] is not g or not is_const(node.inputs[1]):
        raise _NoMatch("the heads' outputs do not go into an output projection with constant weights")
    w = np.asarray(const_value(node.inputs[1]), dtype=np.float64)
    nodes = list(chain) + [node]
    if node.op == "Gemm":
        if float(node.attrs.get("alpha", 1.0)) != 1.0 or int(node.attrs.get("transA", 0)) != 0:
            raise _NoMatch("an output Gemm with alpha or transA")
        w = w.T if int(node.attrs.get("transB", 0)) else w
    bias = np.zeros(w.shape[1])
    if node.op == "Gemm" and len(node.inputs) > 2 and is_const(node.inputs[2]):
        bias = bias + np.asarray(const_value(node.inputs[2]), dtype=np.float64).reshape(-1) \
            * float(node.attrs.get("beta", 1.0))
    y = node.outputs[0]
    nxt = y.outputs[0] if len(y.outputs) == 1 else None
    if node.op == "MatMul" and nxt is not None and nxt.op == "Add" and _default(nxt) and \
            sum(is_const(t) for t in nxt.inputs) == 1:
        c = next(const_value(t) for t in nxt.inputs if is_const(t))
        assert c is not None
        if c.size not in (1, w.shape[1]):
            raise _NoMatch("an output bias that is not one value per feature")
        bias = bias + np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1), (w.shape[1],))
        nodes.append(nxt)
        y = nxt.outputs[0]
    dm = w.shape[1]
    h, t, dv = o_shape[-3:]
    g_rows = idx.reshape(-1, w.shape[0])
    if w.shape[0] != h * dv:
        raise _NoMatch("the output projection does not read every head's features")
    head, tok, j = g_rows // (t * dv), (g_rows // dv) % t, g_rows % dv
    if not np.all(tok == tok[:, :1]) or not np.all(head * dv + j == (head * dv + j)[:1]):
        raise _NoMatch("the output projection's input rows are not tokens")
    rows = np.zeros((h, dv), dtype=np.int64)
    rows[head[0], j[0]] = np.arange(w.shape[0])
    z, after = _trace_forward(y, graph)
    y_shape = static_shape(y)
    z_shape = static_shape(z)
    if y_shape is None or z_shape is None or tuple(z_shape) != (1, t, dm):
        raise _NoMatch(f"the attention's result is not a [1, {t}, {dm}] sequence")
    y_idx, y_scale = _evaluate(after, tuple(y_shape))
    y_rows = y_idx.reshape(t, dm)
    if not np.all(y_scale == 1.0) or not np.array_equal(y_rows % dm, np.broadcast_to(np.arange(dm), (t, dm))) \
            or not np.array_equal(tok[y_rows[:, 0] // dm, 0], np.arange(t)):
        raise _NoMatch("the attention's result rows are not the tokens in order")
    return _Output(w, bias, rows, z, nodes + after, not chain)


@dataclass
class _Attention:
    q: _Operand
    k: _Operand
    v: _Operand
    score_scale: float
    out: _Output
    core: list[gs.Node]

    @property
    def per_head(self) -> bool:
        """Already this pass's form: one head on [1, T, .] tensors, unscaled, no layout ops."""
        ops = (self.q, self.k, self.v)
        return self.q.feature.shape[0] == 1 and self.score_scale == 1.0 and self.out.direct \
            and all(o.direct and float(o.scale[0]) == 1.0 for o in ops)


def match(graph: gs.Graph, softmax: gs.Node) -> _Attention:
    """The self-attention around `softmax` (``MatMul(Q, K^T) [* c] -> Softmax(last axis) -> MatMul(., V)``
    with Q, K, V and the result reached through layout ops); raises :class:`_NoMatch` otherwise."""
    s_shape = static_shape(softmax.inputs[0])
    if s_shape is None or int(softmax.attrs.get("axis", -1)) % len(s_shape) != len(s_shape) - 1:
        raise _NoMatch("not a Softmax over the last axis")
    score = producer(softmax.inputs[0])
    core = [softmax]
    factor = 1.0
    while score is not None and _default(score) and (score.op == "Identity" or (
            score.op in ("Mul", "Div") and len(score.inputs) == 2 and is_const(score.inputs[1]))):
        if score.op == "Identity":
            core.insert(0, score)
            score = producer(score.inputs[0])
            continue
        k = np.asarray(const_value(score.inputs[1]), dtype=np.float64)
        if k.size != 1 or len(score.outputs[0].outputs) != 1:
            raise _NoMatch("the scores are scaled by more than one number")
        factor *= float(k.reshape(-1)[0]) if score.op == "Mul" else 1.0 / float(k.reshape(-1)[0])
        core.insert(0, score)
        score = producer(score.inputs[0])
    p = softmax.outputs[0]
    if score is None or score.op != "MatMul" or len(p.outputs) != 1 or p.outputs[0].op != "MatMul" \
            or p.outputs[0].inputs[0] is not p or len(score.outputs[0].outputs) != 1:
        raise _NoMatch("the Softmax is not between MatMul(Q, K^T) and MatMul(., V)")
    weighted = p.outputs[0]
    core = [score] + core + [weighted]
    q = _operand(score.inputs[0], transposed=False)
    k = _operand(score.inputs[1], transposed=True)
    v = _operand(weighted.inputs[1], transposed=False)
    if not (q.proj.x is k.proj.x is v.proj.x):
        raise _NoMatch("queries, keys and values come from different sequences (cross-attention)")
    out = _output(weighted.outputs[0], graph)
    if q.feature.shape[0] != out.rows.shape[0] or v.feature.shape != out.rows.shape:
        raise _NoMatch("the heads do not line up")
    return _Attention(q, k, v, factor, out, core)


@register
class Attention(Pass):
    """Rebuild self-attention over a ``[1, T, D]`` sequence, whatever layout ops the exporter put
    around it, as per-head ops on ``[1, T, .]`` tensors.

    Before -> after (torch's nn.MultiheadAttention, legacy and dynamo exporters: a packed
    projection on ``[T, 1, D]``, Reshape/Transpose/Gather into ``[1, H, T, d]`` heads, scaled
    scores, the heads merged and projected back)::

        S = X^T W_in + b_in -> (layout ops) -> Q, K^T, V [1, H, T, d]
        O = MatMul(Softmax(MatMul(Q * c, K^T * c)), V) -> (layout ops) -> Gemm(Wo, bo) -> (layout) -> Z
        ->
        for each head h:  Q_h = MatMul(X, c^2 W_q,h) + c^2 b_q,h     (the scores' scale folded in)
                          K_h = MatMul(X, W_k,h) + b_k,h;  V_h likewise       ([1, T, d])
                          O_h = MatMul(Softmax(MatMul(Q_h, Transpose(K_h))), V_h)
        Z = Add(... Add(MatMul(O_0, Wo_0) + bo, MatMul(O_1, Wo_1)) ...)        (Wo_h: head h's rows)

    Which elements the layout ops move where is found by running them on the indices of their
    source (no pattern of ops is assumed), so every exporter's arrangement of the same attention
    is recognised; the projections may be packed or separate (a packed one split by constant
    Slices: timm's ``qkv.unbind(0)``, a Split that `split-to-slices` made Slices). Left alone (check-supported names
    them): masks or other ops between the scores and the Softmax, cross-attention, operands that
    are not the sequence's tokens in order.
    """

    name = "attention"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        count, skipped = 0, []
        for node in list(graph.nodes):
            if node.op != "Softmax" or not _default(node) or not node.outputs or not node.outputs[0].outputs:
                continue
            try:
                found = match(graph, node)
            except _NoMatch as exc:
                skipped.append(f"{node.name}: {exc}")
                continue
            if found.per_head:
                continue
            self._rewrite(model, names, found)
            count += 1
        if count:
            drop_unused(graph, toposort=True)
        return PassResult(model, count > 0, {"rewritten": count, **({"left": skipped} if skipped else {})})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, att: _Attention) -> None:
        graph = model.graph
        x = att.q.proj.x
        _, t, _ = static_shape(x) or (1, 0, 0)
        dtype = x.dtype or np.float32
        spanned = att.core + att.out.nodes + att.q.proj.nodes + att.k.proj.nodes + att.v.proj.nodes
        origin = [o for n in spanned for o in origin_of(model, n)]
        base = att.core[0].name
        made: list[gs.Node] = []

        def emit(op: str, inputs: list[gs.Tensor], shape: list[int], attrs: dict[str, object] | None = None,
                 out: gs.Tensor | None = None) -> gs.Tensor:
            y = out if out is not None else new_variable(names, f"{base}_{op.lower()}", dtype, shape)
            made.append(add_node(graph, names, op, f"{base}_{op.lower()}", inputs, [y], attrs))
            return y

        def project(op: _Operand, h: int, factor: float) -> gs.Tensor:
            cols = op.feature[h]
            s = float(op.scale[h]) * factor
            w = new_constant(names, f"{base}_w", (op.proj.weight[:, cols] * s).astype(np.float32))
            b = new_constant(names, f"{base}_b", (op.proj.bias[cols] * s).astype(np.float32))
            return emit("Add", [emit("MatMul", [x, w], [1, t, cols.size]), b], [1, t, cols.size])

        result: gs.Tensor | None = None
        heads = att.q.feature.shape[0]
        dm = att.out.weight.shape[1]
        z = att.out.z
        z.inputs.clear()
        for h in range(heads):
            q = project(att.q, h, att.score_scale * float(att.k.scale[h]))
            k = project(att.k, h, 1.0 / float(att.k.scale[h]))
            v = project(att.v, h, 1.0)
            dk, dv = att.q.feature.shape[1], att.v.feature.shape[1]
            kt = emit("Transpose", [k], [1, dk, t], {"perm": [0, 2, 1]})
            scores = emit("MatMul", [q, kt], [1, t, t])
            probs = emit("Softmax", [scores], [1, t, t], {"axis": -1})
            o = emit("MatMul", [probs, v], [1, t, dv])
            wo = new_constant(names, f"{base}_wo", att.out.weight[att.out.rows[h]].astype(np.float32))
            u = emit("MatMul", [o, wo], [1, t, dm])
            if result is None:
                bo = new_constant(names, f"{base}_bo", att.out.bias.astype(np.float32))
                result = emit("Add", [u, bo], [1, t, dm], out=z if heads == 1 else None)
            else:
                result = emit("Add", [result, u], [1, t, dm], out=z if h == heads - 1 else None)
        for node in made:
            set_origin(model, node, origin)

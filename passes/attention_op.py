"""`attention-op`: ONNX's Attention op (opset 23) as the MatMul / Softmax / MatMul it computes, the
form `attention` rebuilds per head (torch's dynamo exporter writes the op from opset 23 on)."""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, detach, drop_unused, is_empty, is_read, new_constant,
                                   origin_of, set_origin, shape_text, static_shape)

#: Inputs after Q, K, V: attn_mask, past_key, past_value (opset 23), nonpad_kv_seqlen (opset 24).
OPTIONAL_INPUTS = ("attn_mask", "past_key", "past_value", "nonpad_kv_seqlen")


def _heads(node: gs.Node, shape: tuple[int, ...], attr: str) -> int:
    """Heads of a 4-D ``[B, H, S, d]`` operand, or the op's attribute for a 3-D ``[B, S, H * d]`` one."""
    return shape[1] if len(shape) == 4 else int(node.attrs.get(attr, 0))


def attention_problems(graph: gs.Graph, node: gs.Node) -> list[tuple[str, str]]:
    """Why an Attention op is not plain softmax(Q K^T * scale) V over static shapes (reason, what to
    do); empty when `attention-op` rewrites it."""
    shapes = [static_shape(t) for t in node.inputs[:3]] if len(node.inputs) >= 3 else []
    if len(shapes) != 3 or any(s is None or len(s) not in (3, 4) for s in shapes) \
            or len({len(s) for s in shapes if s is not None}) != 1:
        shown = ", ".join(shape_text(t) for t in node.inputs[:3])
        return [(f"Attention of {shown}", "Q, K and V of static shape, all [B, S, hidden] or all [B, H, S, d]; "
                 "fix the input shapes with --input-shape")]
    q, k, v = (s for s in shapes if s is not None)
    out: list[tuple[str, str]] = []
    for i, name in enumerate(OPTIONAL_INPUTS, start=3):
        if len(node.inputs) > i and not is_empty(node.inputs[i]):
            out.append((f"the Attention has a {name} input", "masked attention and key/value caches are not "
                        "supported; export self-attention without a mask (torch: attn_mask=None, is_causal=False)"))
    if int(node.attrs.get("is_causal", 0)):
        out.append(("is_causal=1", "causal (masked) attention is not supported; export without the mask"))
    if float(node.attrs.get("softcap", 0.0)):
        out.append((f"softcap={node.attrs.get('softcap')}", "export without soft-capping"))
    q_heads, kv_heads = _heads(node, q, "q_num_heads"), _heads(node, k, "kv_num_heads")
    if q_heads <= 0 or kv_heads <= 0 or q_heads != kv_heads or _heads(node, v, "kv_num_heads") != kv_heads:
        out.append((f"{q_heads} query heads and {kv_heads} key/value heads",
                    "grouped-query attention is not supported; use as many key/value heads as query heads"))
    elif len(q) == 3 and (q[2] % q_heads or k[2] % kv_heads or v[2] % kv_heads or q[2] // q_heads != k[2] // kv_heads):
        out.append((f"hidden sizes {q[2]}, {k[2]}, {v[2]} for {q_heads} heads", "the model is inconsistent; "
                    "re-export it"))
    if any(not is_empty(t) and is_read(graph, t) for t in node.outputs[1:]):
        out.append(("the present key/value or the scores output is read", "only the attention's result "
                    "is supported"))
    return out


@register
class AttentionOp(Pass):
    """Rewrite an ONNX Attention op without mask, cache, causality or soft-cap as its computation.

    Before -> after (``[B, H, S, d]`` operands; ``c`` the op's scale, ``1/sqrt(d)`` by default)::

        Y = Attention(Q, K, V) {scale=c}
        ->
        Y = MatMul(Softmax(Mul(MatMul(Q, Transpose(K, [0,1,3,2])), c), axis=-1), V)

    3-D operands ``[B, S, H * d]`` (``q_num_heads`` = ``kv_num_heads`` = H) are first reshaped to
    ``[B, S, H, d]`` and transposed to ``[B, H, S, d]``, and the result goes back the same way.
    Other Attention ops are left for `check-supported` (:func:`attention_problems` says why).
    """

    name = "attention-op"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        count = 0
        for node in list(graph.nodes):
            if node.op == "Attention" and node.domain in (None, "", "ai.onnx") and \
                    not attention_problems(graph, node):
                self._rewrite(model, names, node)
                count += 1
        if count:
            drop_unused(graph, toposort=True)
        return PassResult(model, count > 0, {"rewritten": count})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, node: gs.Node) -> None:
        graph = model.graph
        q, k, v = node.inputs[:3]
        y = node.outputs[0]
        shapes = [static_shape(t) for t in (q, k, v)]
        q_shape, k_shape, v_shape = (s for s in shapes if s is not None)
        base = node.name or "attention"
        origin = origin_of(model, node)
        dtype = np.float32
        detach(node)
        created: list[gs.Node] = []

        def step(op: str, suffix: str, inputs: list[gs.Tensor], shape: tuple[int, ...] | None,
                 attrs: dict[str, object] | None = None) -> gs.Tensor:
            out = y if shape is None else gs.Variable(names.fresh(f"{base}_{suffix}"), dtype=dtype, shape=list(shape))
            created.append(add_node(graph, names, op, f"{base}_{suffix}", inputs, [out], attrs))
            return out

        def ints(suffix: str, values: tuple[int, ...]) -> gs.Constant:
            return new_constant(names, f"{base}_{suffix}", np.array(values, np.int64))

        heads = _heads(node, q_shape, "q_num_heads")

        def to_heads(t: gs.Tensor, shape: tuple[int, ...], suffix: str) -> tuple[gs.Tensor, tuple[int, ...]]:
            if len(shape) == 4:
                return t, shape
            b, s, hidden = shape
            split = (b, s, heads, hidden // heads)
            t = step("Reshape", f"{suffix}_split", [t, ints(f"{suffix}_split_shape", split)], split)
            moved = (b, heads, s, hidden // heads)
            return step("Transpose", f"{suffix}_heads", [t], moved, {"perm": [0, 2, 1, 3]}), moved

        q4, q4_shape = to_heads(q, q_shape, "q")
        k4, k4_shape = to_heads(k, k_shape, "k")
        v4, v4_shape = to_heads(v, v_shape, "v")
        b, h, s_q, d = q4_shape
        s_kv, d_v = k4_shape[2], v4_shape[3]
        scale = float(node.attrs.get("scale", 1.0 / math.sqrt(d)))
        kt = step("Transpose", "keys_t", [k4], (b, h, d, s_kv), {"perm": [0, 1, 3, 2]})
        scores = step("MatMul", "scores", [q4, kt], (b, h, s_q, s_kv))
        scaled = step("Mul", "scaled", [scores, new_constant(names, f"{base}_scale", np.array(scale, dtype))],
                      (b, h, s_q, s_kv))
        weights = step("Softmax", "weights", [scaled], (b, h, s_q, s_kv), {"axis": -1})
        if len(q_shape) == 4:
            step("MatMul", "weighted", [weights, v4], None)
        else:
            o = step("MatMul", "weighted", [weights, v4], (b, h, s_q, d_v))
            o = step("Transpose", "merge", [o], (b, s_q, h, d_v), {"perm": [0, 2, 1, 3]})
            step("Reshape", "result", [o, ints("result_shape", (b, s_q, h * d_v))], None)
        for new in created:
            set_origin(model, new, origin)

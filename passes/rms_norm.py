"""`rms-norm`: RMS normalisation over the last axis as a LayerNormalization of ``[x, -x]``.

``[x, -x]`` has mean 0 and a variance equal to ``mean(x^2)``, so a layer normalisation of that
row of ``2N`` values, cut back to its first ``N``, is ``x / sqrt(mean(x^2) + eps)``: exactly the
RMS normalisation, computed by the LayerNormalization kernel the device already has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.lir.kernels import LAYERNORM_N_MAX
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.layer_norm import (last_axis_mean, only_reader, other_input, raise_opset, row_constant, scalar_value,
                               single)
from passes.normalize_util import (NameSource, add_node, detach, drop_unused, is_const, is_empty,
                                   is_read, new_constant, origin_of, producer, set_origin, shape_text,
                                   static_shape)


@dataclass
class _Match:
    """One RMS normalisation: its input, epsilon, per-position scale, the nodes it spans, its output."""

    x: gs.Tensor
    eps: float
    scale: np.ndarray
    nodes: list[gs.Node]
    out: gs.Tensor


def _is_square_of(node: gs.Node | None) -> gs.Tensor | None:
    """``x`` when `node` is ``Pow(x, 2)`` or ``Mul(x, x)``."""
    if single(node, "Pow") and node is not None and scalar_value(node.inputs[1]) == 2.0:
        return node.inputs[0]
    if single(node, "Mul") and node is not None and len(node.inputs) == 2 and node.inputs[0] is node.inputs[1]:
        return node.inputs[0]
    return None


def match_decomposed(graph: gs.Graph, mean: gs.Node) -> _Match | None:
    """The decomposed RMS normalisation whose ``mean(x^2)`` is `mean`, else None::

        v = ReduceMean(Pow(x, 2) | Mul(x, x), axes=[-1], keepdims=1); [v = Add(v, eps)]
        r = Reciprocal(Sqrt(v)) | Div(1, Sqrt(v)) | Pow(v, -0.5);  y = Mul(x, r)
        | y = Div(x, Sqrt(v))
        [y = Mul(y, gamma[N])]
    """
    square = producer(mean.inputs[0]) if mean.inputs else None
    x = _is_square_of(square)
    shape = static_shape(x)
    if x is None or square is None or shape is None or len(shape) < 2 or \
            last_axis_mean(mean, len(shape)) is not square.outputs[0] or \
            only_reader(graph, square.outputs[0]) is not mean:
        return None
    centre = producer(x)
    if single(centre, "Sub") and centre is not None and \
            last_axis_mean(producer(centre.inputs[1]), len(shape)) is centre.inputs[0]:
        return None                                     # x - mean(x): a layer normalisation, `layer-norm`'s
    nodes = [square, mean]
    eps = 0.0
    nxt = only_reader(graph, mean.outputs[0])
    if single(nxt, "Add") and nxt is not None:
        value = scalar_value(other_input(nxt, mean.outputs[0]))
        if value is None or value < 0:
            return None
        eps = value
        nodes.append(nxt)
        nxt = only_reader(graph, nxt.outputs[0])
    if nxt is None:
        return None
    last: gs.Node | None
    if single(nxt, "Pow") and scalar_value(nxt.inputs[1]) == -0.5:
        nodes.append(nxt)
        last = only_reader(graph, nxt.outputs[0])
        if not (single(last, "Mul") and last is not None and other_input(last, nxt.outputs[0]) is x):
            return None
    elif single(nxt, "Sqrt"):
        nodes.append(nxt)
        root = nxt.outputs[0]
        last = only_reader(graph, nxt.outputs[0])
        if last is None:
            return None
        if single(last, "Reciprocal") or (single(last, "Div") and last.inputs[1] is root
                                          and scalar_value(last.inputs[0]) == 1.0):
            nodes.append(last)
            inverse = last.outputs[0]
            last = only_reader(graph, last.outputs[0])
            if not (single(last, "Mul") and last is not None and other_input(last, inverse) is x):
                return None
        elif not (single(last, "Div") and last.inputs[0] is x and last.inputs[1] is root):
            return None
    else:
        return None
    nodes.append(last)
    n = shape[-1]
    scale = np.ones(n)
    out = last.outputs[0]
    affine = only_reader(graph, last.outputs[0])
    if single(affine, "Mul") and affine is not None and is_const(other_input(affine, out)):
        values = row_constant(other_input(affine, out), n)
        if values is not None and static_shape(affine.outputs[0]) == shape:
            scale = values
            nodes.append(affine)
            out = affine.outputs[0]
    return _Match(x, eps, scale, nodes, out)


def op_problems(graph: gs.Graph, node: gs.Node) -> list[tuple[str, str]]:
    """Why an ONNX RMSNormalization (opset 23) cannot be rewritten (reason, what to do); empty when
    `rms-norm` rewrites it."""
    x = node.inputs[0] if node.inputs else None
    shape = static_shape(x)
    if shape is None or len(shape) < 2:
        return [(f"RMSNormalization of {shape_text(x)}", "a static shape of rank 2 or more is needed; fix the "
                 "input shapes with --input-shape")]
    out: list[tuple[str, str]] = []
    if int(node.attrs.get("axis", -1)) % len(shape) != len(shape) - 1:
        out.append((f"axis={node.attrs.get('axis')} normalises over more than the last axis of {list(shape)}",
                    "normalise over the last axis only (torch: nn.RMSNorm(last dimension))"))
    scale = node.inputs[1] if len(node.inputs) > 1 and not is_empty(node.inputs[1]) else None
    if scale is None or row_constant(scale, shape[-1]) is None:
        out.append((f"the scale {shape_text(scale)} is not a constant of {shape[-1]} values",
                    "export with a constant weight (torch: elementwise_affine=True or False)"))
    if 2 * shape[-1] > LAYERNORM_N_MAX:
        out.append((f"rows of {shape[-1]} elements", f"at most {LAYERNORM_N_MAX // 2} elements per "
                    "RMS-normalised row are supported"))
    if any(not is_empty(t) and is_read(graph, t) for t in node.outputs[1:]):
        out.append(("RMSNormalization has more than one output read", "only the normalised output is supported"))
    return out


def _match_op(graph: gs.Graph, node: gs.Node) -> _Match | None:
    if not single(node, "RMSNormalization") or op_problems(graph, node):
        return None
    shape = static_shape(node.inputs[0])
    assert shape is not None
    scale = row_constant(node.inputs[1], shape[-1])
    assert scale is not None
    return _Match(node.inputs[0], float(node.attrs.get("epsilon", 1e-5)), scale, [node], node.outputs[0])


@register
class RmsNorm(Pass):
    """Rewrite an RMS normalisation over the last axis (ONNX RMSNormalization of opset 23, or its
    decomposed form from torch's exporters) as a LayerNormalization of ``[x, -x]``.

    Before -> after (x ``[1, ..., N]``; gamma a constant ``[N]``, 1 when absent)::

        y = Mul(Mul(x, Reciprocal(Sqrt(Add(ReduceMean(Pow(x, 2), [-1]), eps)))), gamma)
        y = RMSNormalization(x, gamma) {axis=-1, epsilon=eps}
        ->
        n = Mul(x, -1); c = Concat(x, n) {axis=-1}                         [1, ..., 2N]
        z = LayerNormalization(c, [gamma, 1...], 0[2N]) {axis=-1, epsilon=eps}
        y = Slice(z, [0], [N], [-1])

    The decomposed forms also match ``Mul(x, x)`` for the square, ``Div(1, Sqrt)`` or
    ``Pow(v, -0.5)`` for the inverse root, ``Div(x, Sqrt(v))``, and no epsilon; every intermediate
    tensor must have no other reader. Rows longer than half the layer-norm kernel's limit are left
    alone (`check-supported` says why for the ONNX op). A model below opset 17 moves to 17.
    """

    name = "rms-norm"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        count = 0
        for node in list(graph.nodes):
            if not node.inputs or not node.outputs:           # detached by an earlier rewrite
                continue
            found = _match_op(graph, node) if node.op == "RMSNormalization" else \
                match_decomposed(graph, node) if node.op == "ReduceMean" else None
            shape = static_shape(found.x) if found is not None else None
            if found is None or shape is None or 2 * shape[-1] > LAYERNORM_N_MAX:
                continue
            self._rewrite(model, names, found, shape)
            count += 1
        if count:
            drop_unused(graph, toposort=True)
            raise_opset(graph)
        return PassResult(model, count > 0, {"rewritten": count})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, found: _Match, shape: tuple[int, ...]) -> None:
        graph = model.graph
        n = shape[-1]
        wide = (*shape[:-1], 2 * n)
        dtype = np.float32
        base = found.nodes[-1].name or "rmsnorm"
        origin = [o for node in found.nodes for o in origin_of(model, node)]
        for node in found.nodes:
            detach(node)

        def variable(suffix: str, var_shape: tuple[int, ...]) -> gs.Variable:
            return gs.Variable(names.fresh(f"{base}_{suffix}"), dtype=dtype, shape=list(var_shape))

        def constant(suffix: str, values: np.ndarray) -> gs.Constant:
            return new_constant(names, f"{base}_{suffix}", np.ascontiguousarray(values))

        negated, joined, normed = variable("neg", shape), variable("pair", wide), variable("layernorm", wide)
        created = [
            add_node(graph, names, "Mul", f"{base}_neg", [found.x, constant("minus_one", np.array(-1.0, dtype))],
                     [negated]),
            add_node(graph, names, "Concat", f"{base}_pair", [found.x, negated], [joined], {"axis": -1}),
            add_node(graph, names, "LayerNormalization", f"{base}_layernorm",
                     [joined, constant("scale", np.concatenate([found.scale, np.ones(n)]).astype(dtype)),
                      constant("bias", np.zeros(2 * n, dtype))], [normed],
                     {"axis": -1, "epsilon": float(found.eps)}),
            add_node(graph, names, "Slice", f"{base}_half",
                     [normed, constant("starts", np.array([0], np.int64)), constant("ends", np.array([n], np.int64)),
                      constant("axes", np.array([-1], np.int64))], [found.out]),
        ]
        for node in created:
            set_origin(model, node, origin)

"""`fold-constants`: evaluate every subgraph that depends only on constants into one initializer."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import detach, drop_unused, is_const, quiet_gs, static_shape

# How each form of the Constant op's attribute becomes a numpy value (dtype as ONNX defines it).
_CONSTANT_ATTRS = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


def constant_node_value(node: gs.Node) -> np.ndarray | None:
    """The value of a ``Constant`` node, or None for a form we do not read (sparse, strings)."""
    for key, dtype in _CONSTANT_ATTRS.items():
        if key in node.attrs:
            return np.asarray(node.attrs[key], dtype=dtype)
    value = node.attrs.get("value")
    if isinstance(value, gs.Constant):
        return np.asarray(value.values)
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    return None


def constant_value(tensor: gs.Tensor) -> np.ndarray | None:
    """The value of an initializer or of a ``Constant`` node's output (for the passes that run before
    `fold-constants` lowers those nodes), else None."""
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    made = tensor.inputs[0] if len(tensor.inputs) == 1 else None
    if made is None or made.op != "Constant" or made.domain not in (None, "", "ai.onnx"):
        return None
    return constant_node_value(made)


def lower_constant_nodes(graph: gs.Graph) -> int:
    """Turn ``Constant`` nodes into initializers with the dtype ONNX gives them; return the count."""
    lowered = 0
    for node in list(graph.nodes):
        if node.op != "Constant" or node.domain not in (None, "", "ai.onnx") or len(node.outputs) != 1:
            continue
        value = constant_node_value(node)
        if value is None:
            continue
        out = node.outputs[0]
        detach(node)
        out.to_constant(value)
        lowered += 1
    return lowered


def fold_cast_like(graph: gs.Graph) -> int:
    """Replace each ``CastLike(c, x)`` of a constant ``c`` by ``c`` in ``x``'s element type (known from
    the graph's types); return the count. The reference tensor ``x`` is computed, so the generic
    folding never evaluates such a node."""
    folded = 0
    for node in list(graph.nodes):
        if node.op != "CastLike" or node.domain not in (None, "", "ai.onnx") or len(node.inputs) != 2:
            continue
        value = constant_value(node.inputs[0])
        like = node.inputs[1].dtype
        if value is None or like is None or node.outputs[0] in graph.outputs:
            continue
        out = node.outputs[0]
        detach(node)
        out.to_constant(value.astype(like))
        folded += 1
    return folded


def fold_sliced_shapes(graph: gs.Graph) -> int:
    """Replace each ``Shape(x) {start, end}`` of a static ``x`` by the constant ``shape(x)[start:end]``
    (ONNX clamps and counts negatives from the end as Python slices do); return the count. onnx-graphsurgeon
    folds a Shape to the whole shape whatever its ``start``/``end`` (opset 15; the dynamo exporter's
    ``Concat(Shape(x) {end=2}, [L])`` sizes of an interpolation), so these are folded first."""
    folded = 0
    for node in list(graph.nodes):
        if node.op != "Shape" or node.domain not in (None, "", "ai.onnx") or not ({"start", "end"} & set(node.attrs)):
            continue
        shape = static_shape(node.inputs[0])
        out = node.outputs[0]
        if shape is None or out in graph.outputs:
            continue
        start, end = node.attrs.get("start", 0), node.attrs.get("end", len(shape))
        detach(node)
        out.to_constant(np.array(shape[int(start):int(end)], dtype=np.int64))
        folded += 1
    return folded


@register
class FoldConstants(Pass):
    """Fold everything computable from initializers and Constant nodes into initializers.

    Before -> after::

        s = Shape(x); i = Gather(s, 0); u = Unsqueeze(i, [0])
        r = Reshape(h, Concat(u, [-1]))             ->  r = Reshape(h, [1, -1])   (x: [1,16,4,4])
        w = Mul(Constant(W), Constant(2.0))         ->  w = initializer W*2
        e = CastLike(Constant(1e-6), x)             ->  e = initializer 1e-6 in x's type (jax2onnx's RMSNorm)
        s = Shape(x) {end=2}                        ->  s = initializer [1, 16]          (x: [1,16,32])
        Constant nodes                              ->  initializers (float32/int64 as ONNX says)

    Runs onnx-graphsurgeon's ``fold_constants`` (onnxruntime evaluates, ``Shape`` of a static shape
    folds), then drops dead nodes. Initializers that old exporters also listed as graph inputs are
    constants, not inputs (the model loader already reads them so; any left are dropped here).
    Graph outputs are never turned into constants.
    """

    name = "fold-constants"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        nodes_before = len(graph.nodes)
        lowered = lower_constant_nodes(graph)
        cast = fold_cast_like(graph)
        shapes = fold_sliced_shapes(graph)
        kept = [t for t in graph.inputs if not is_const(t)]
        removed_inputs = len(graph.inputs) - len(kept)
        graph.inputs = kept
        outputs = list(graph.outputs)
        with quiet_gs():
            graph.fold_constants(fold_shapes=True, error_ok=True, flatten_subgraphs=False)
            graph.cleanup(remove_unused_graph_inputs=False)
        # fold_constants may have replaced a graph output by a constant; keep the output a tensor
        # the model computes (ONNX cannot make an initializer a graph output in every runtime).
        constant_outputs = [t.name for t in graph.outputs if is_const(t)]
        if constant_outputs:
            graph.outputs = outputs
        graph.toposort()
        lower_constant_nodes(graph)
        drop_unused(graph)
        folded = nodes_before - len(graph.nodes)
        stats = {"nodes-removed": folded, "constant-nodes": lowered, "initializer-inputs-removed": removed_inputs}
        if constant_outputs:
            stats["constant-outputs"] = constant_outputs
        return PassResult(model, bool(folded or lowered or cast or shapes or removed_inputs), stats)

"""`prelu`: PRelu as ops of the normal form (LeakyRelu, or two grouped 1x1 Convs around a Relu).

``PRelu(x, s) = relu(x) - s * relu(-x)`` per channel. One slope ``0 <= s < 1`` for every channel is
exactly ``LeakyRelu{alpha=s}`` (fused into the layer before it). Any other slope, one per channel
or outside ``[0, 1)``, becomes::

    u = Relu(Conv(x, [+1, -1] per channel) {group=C})     u[2c] = relu(x[c]), u[2c+1] = relu(-x[c])
    y = Conv(u, [1, -s_c] per channel) {group=C}          y[c] = u[2c] - s_c * u[2c+1]

two 1x1 convolutions with ``group = C`` (weights +-1 and 1 are exact in every weight format; the
only rounding is the second conv's, as for any layer). A ``[1, N]`` input (PReLU after a Linear)
is reshaped to ``[1, N, 1]`` around them.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.canonical_arith import channel_vector
from passes.normalize_util import (NameSource, add_node, const_value, drop_unused, new_constant, new_variable,
                                   origin_of, set_origin, set_tensors, static_shape)

PRELU_HINT = "nn.PReLU is supported with one slope or one slope per channel (num_parameters=C)"


def prelu_slopes(node: gs.Node) -> np.ndarray | None:
    """The per-channel slopes ``[C]`` of a PRelu on ``[1, C, ...]`` (None: not one per channel or constant)."""
    shape = static_shape(node.inputs[0])
    slope = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if shape is None or slope is None or len(shape) not in (2, 3, 4) or shape[0] != 1:
        return None
    return channel_vector(np.asarray(slope, dtype=np.float64), shape)


@register
class PReluToNormalForm(Pass):
    """Rewrite PRelu into LeakyRelu or grouped 1x1 Convs and a Relu (see the module docstring).

    Before -> after::

        y = PRelu(x[1,C,H,W], s[1,1,1]=0.25)       ->  y = LeakyRelu(x) {alpha=0.25}
        y = PRelu(x[1,C,H,W], s[C,1,1])            ->  v = Conv(x, W1[2C,1,1,1]) {group=C}
                                                       u = Relu(v)
                                                       y = Conv(u, W2[C,2,1,1]) {group=C}
        y = PRelu(x[1,N], s[N])                    ->  r = Reshape(x, [1,N,1]), the Convs (1-D) on r,
                                                       y = Reshape(., [1,N])

    A PRelu whose slope is computed or varies along a spatial axis stays (check-supported names it).
    """

    name = "prelu"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        leaky = convs = 0
        for node in list(graph.nodes):
            if node.op != "PRelu" or node.domain not in (None, "", "ai.onnx"):
                continue
            slopes = prelu_slopes(node)
            if slopes is None:
                continue
            if np.all(slopes == slopes[0]) and 0.0 <= slopes[0] < 1.0:
                node.op = "LeakyRelu"
                node.attrs.clear()
                node.attrs["alpha"] = float(slopes[0])
                set_tensors(node.inputs, [node.inputs[0]])
                leaky += 1
                continue
            self._convs(model, names, node, slopes)
            convs += 1
        if convs:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(leaky or convs), {"leaky-relu": leaky, "convs": convs})

    @staticmethod
    def _convs(model: OnnxModel, names: NameSource, node: gs.Node, slopes: np.ndarray) -> None:
        graph = model.graph
        x, y = node.inputs[0], node.outputs[0]
        shape = static_shape(x)
        assert shape is not None
        c = shape[1]
        origin = origin_of(model, node)
        spatial = list(shape[2:]) or [1]
        fmap = [1, c, *spatial]
        ones = [1] * len(spatial)
        created: list[gs.Node] = []
        source = x
        if len(shape) == 2:
            source = new_variable(names, f"{node.name}_map", x.dtype, fmap)
            target = new_constant(names, f"{node.name}_map_shape", np.array(fmap, dtype=np.int64))
            created.append(add_node(graph, names, "Reshape", f"{node.name}_map", [x, target], [source]))
        w1 = np.tile(np.array([1.0, -1.0], dtype=np.float32), c).reshape(2 * c, 1, *ones)
        w2 = np.stack([np.ones(c), -slopes], axis=1).astype(np.float32).reshape(c, 2, *ones)
        attrs = {"kernel_shape": ones, "strides": ones, "pads": [0] * 2 * len(ones), "dilations": ones, "group": c}
        both = new_variable(names, f"{node.name}_pm", x.dtype, [1, 2 * c, *spatial])
        parts = new_variable(names, f"{node.name}_parts", x.dtype, [1, 2 * c, *spatial])
        created.append(add_node(graph, names, "Conv", f"{node.name}_pm",
                                [source, new_constant(names, f"{node.name}_W1", w1)], [both], attrs))
        created.append(add_node(graph, names, "Relu", f"{node.name}_relu", [both], [parts]))
        result = y
        if len(shape) == 2:
            result = new_variable(names, f"{node.name}_out", x.dtype, fmap)
        node.op = "Conv"
        node.attrs.clear()
        node.attrs.update(dict(attrs))
        set_tensors(node.inputs, [parts, new_constant(names, f"{node.name}_W2", w2)])
        if len(shape) == 2:
            set_tensors(node.outputs, [result])
            target = new_constant(names, f"{node.name}_out_shape", np.array(shape, dtype=np.int64))
            created.append(add_node(graph, names, "Reshape", f"{node.name}_flat", [result, target], [y]))
        for made in created:
            set_origin(model, made, origin)

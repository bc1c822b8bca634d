"""`conv-transpose`: a transposed convolution becomes zero insertion and an ordinary Conv.

``ConvTranspose(x, W, B)`` with strides ``s``, pads ``p``, output_padding ``op``, dilations ``d`` and
``group`` ``g`` computes the same as a stride-1 Conv over ``x`` with ``s - 1`` zeros inserted between
neighbouring elements of each spatial axis, padded by ``d*(k-1) - p`` (begin) and
``d*(k-1) - p_end + op`` (end), with the kernel flipped along its spatial axes and its two channel
axes swapped within each group: ``W'[gi*M + o, i, a, b] = W[gi*C + i, o, kh-1-a, kw-1-b]`` for
``C = Cin/g`` input and ``M = Cout/g`` output channels per group.

The zero insertion stays a ConvTranspose, in the one form the normal form allows: weight all ones
``[Cin, 1, 1, 1]`` (``[Cin, 1, 1]`` for 1-D), ``group = Cin``, the strides, no bias, pads,
output_padding or dilation (:func:`is_zero_insertion`); `lower` makes it the ``upsample`` step with
``zeros=1`` (docs/lir.md). onnxruntime runs it as it is.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, attr, const_value, drop_unused, is_empty, new_constant,
                                   new_variable, origin_of, set_origin, set_tensors, static_shape)

CONV_TRANSPOSE_HINT = ("ConvTranspose1d/2d are supported with explicit padding (no output_size/auto_pad) of at most "
                       "dilation*(kernel-1) per side")


def _geometry(node: gs.Node, rank: int, kernel: list[int]) -> tuple[list[int], list[int], list[int], list[int]]:
    strides = [int(v) for v in node.attrs.get("strides", [1] * rank)]
    pads = [int(v) for v in node.attrs.get("pads", [0] * 2 * rank)]
    dilations = [int(v) for v in node.attrs.get("dilations", [1] * rank)]
    extra = [int(v) for v in node.attrs.get("output_padding", [0] * rank)]
    return strides, pads, dilations, extra


def is_zero_insertion(node: gs.Node) -> bool:
    """``node`` is the zero insertion ConvTranspose of the normal form (see the module docstring)."""
    if node.op != "ConvTranspose" or len(node.inputs) < 2 or (len(node.inputs) > 2 and not is_empty(node.inputs[2])):
        return False
    shape, w = static_shape(node.inputs[0]), const_value(node.inputs[1])
    if shape is None or len(shape) not in (3, 4) or w is None or w.ndim != len(shape):
        return False
    rank = len(shape) - 2
    strides, pads, dilations, extra = _geometry(node, rank, [1] * rank)
    return (w.shape == (shape[1], 1, *[1] * rank) and bool(np.all(w == 1.0))
            and int(node.attrs.get("group", 1)) == shape[1] and not any(pads) and not any(extra)
            and all(d == 1 for d in dilations) and str(attr(node, "auto_pad", "NOTSET")) == "NOTSET"
            and "output_shape" not in node.attrs and "strides" in node.attrs and len(strides) == rank)


def rewrite_problem(node: gs.Node) -> str | None:
    """Why the ConvTranspose ``node`` cannot become zero insertion + Conv (None: it can)."""
    shape, w = static_shape(node.inputs[0]), const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if shape is None or len(shape) not in (3, 4) or shape[0] != 1:
        return f"input of shape {list(shape) if shape else shape} is not [1, C, L] or [1, C, H, W]"
    if w is None or w.ndim != len(shape):
        return "the weight is not a constant of the input's rank"
    if len(node.inputs) > 2 and not is_empty(node.inputs[2]) and const_value(node.inputs[2]) is None:
        return "the bias is not a constant"
    if str(attr(node, "auto_pad", "NOTSET")) != "NOTSET" or "output_shape" in node.attrs:
        return "auto_pad or output_shape instead of explicit pads"
    rank = len(shape) - 2
    kernel = [int(k) for k in w.shape[2:]]
    strides, pads, dilations, extra = _geometry(node, rank, kernel)
    for a in range(rank):
        reach = dilations[a] * (kernel[a] - 1)
        if pads[a] > reach or pads[a + rank] > reach + extra[a]:
            return (f"pads {pads} exceed dilation*(kernel-1) = {reach} on spatial axis {a} "
                    "(the output would crop the input's own elements)")
    return None


@register
class ConvTransposeToConv(Pass):
    """Rewrite ConvTranspose as zero insertion (a stride-s ConvTranspose of ones) and a Conv.

    Before -> after (2-D, strides [2,2], kernel 3, pads [1,1,1,1], output_padding [1,1])::

        y = ConvTranspose(x[1,Cin,H,W], W[Cin,Cout/g,3,3], B) {strides=[2,2], pads=[1,1,1,1],
                                                                output_padding=[1,1], group=g}
        ->
        z = ConvTranspose(x, ones[Cin,1,1,1]) {strides=[2,2], kernel_shape=[1,1], group=Cin}
                                                                        z: [1,Cin,2H-1,2W-1]
        y = Conv(z, W'[Cout,Cin/g,3,3], B) {strides=[1,1], pads=[1,1,2,2], dilations=[1,1], group=g}

    With strides 1 the zero insertion is left out (``y = Conv(x, W', B)``). A ConvTranspose already
    in the zero insertion form stays; one :func:`rewrite_problem` rejects is left for
    `check-supported` to report.
    """

    name = "conv-transpose"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op != "ConvTranspose" or node.domain not in (None, "", "ai.onnx") or is_zero_insertion(node) \
                    or rewrite_problem(node) is not None:
                continue
            self._rewrite(model, names, node)
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, node: gs.Node) -> None:
        x = node.inputs[0]
        shape = static_shape(x)
        w = const_value(node.inputs[1])
        assert shape is not None and w is not None
        rank = len(shape) - 2
        kernel = [int(k) for k in w.shape[2:]]
        strides, pads, dilations, extra = _geometry(node, rank, kernel)
        group = int(node.attrs.get("group", 1))
        cin, per_out = int(w.shape[0]), int(w.shape[1])
        per_in = cin // group
        flipped = np.flip(w, axis=tuple(range(2, 2 + rank)))
        # [g, Cin/g, Cout/g, k...] -> [g, Cout/g, Cin/g, k...] -> [Cout, Cin/g, k...]
        conv_w = flipped.reshape(group, per_in, per_out, *kernel).swapaxes(1, 2).reshape(group * per_out, per_in,
                                                                                         *kernel)
        reach = [dilations[a] * (kernel[a] - 1) for a in range(rank)]
        conv_pads = [reach[a] - pads[a] for a in range(rank)] + \
            [reach[a] - pads[a + rank] + extra[a] for a in range(rank)]
        source = x
        origin = origin_of(model, node)
        if any(s != 1 for s in strides):
            grown = [1, cin, *[(shape[2 + a] - 1) * strides[a] + 1 for a in range(rank)]]
            source = new_variable(names, f"{node.name}_zeros", x.dtype, grown)
            ones = new_constant(names, f"{node.name}_ones", np.ones((cin, 1, *[1] * rank), dtype=np.float32))
            zeros = add_node(model.graph, names, "ConvTranspose", f"{node.name}_zeros", [x, ones], [source],
                             {"strides": strides, "kernel_shape": [1] * rank, "group": cin,
                              "pads": [0] * 2 * rank, "dilations": [1] * rank})
            set_origin(model, zeros, origin)
        weight = new_constant(names, f"{node.name}_W", np.ascontiguousarray(conv_w, dtype=np.float32))
        inputs: list[gs.Tensor] = [source, weight]
        if len(node.inputs) > 2 and not is_empty(node.inputs[2]):
            inputs.append(node.inputs[2])
        node.op = "Conv"
        node.attrs.clear()
        node.attrs.update({"kernel_shape": kernel, "strides": [1] * rank, "pads": conv_pads,
                           "dilations": dilations, "group": group})
        set_tensors(node.inputs, inputs)
        set_origin(model, node, origin)

"""From one ONNX node (onnx-graphsurgeon) to a training op and the tensors it reads.

:func:`node_op` resolves a node's attributes (and its constant-in-disguise inputs: Clip bounds,
Reshape shapes) into an :class:`~passes.train.ops.Op` and lists its run-time arguments as
:class:`Arg`\\ s, each marked trainable or not. The trainable ones are the float initializers of
Conv ``W``/``B`` and Gemm ``B``/``C`` and, with ``train_affine``, the constant operand of a Mul or
Add; an embedding table is a constant (never trained or pruned: its rows are selected, not
multiplied). A node outside the supported set raises :class:`NodeRejected` with a reason and a hint; the
network builder collects every rejection into one error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from passes.embedding import embedding_problems, is_embedding
from passes.normalize_util import attr, const_value, is_const, is_empty, shape_text, static_shape
from passes.train import ops

SUPPORTED_OPS = ("Conv", "Gemm", "Relu", "Clip", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool",
                 "Add", "Mul", "Concat", "Flatten", "Reshape", "Transpose", "Softmax", "LogSoftmax", "Sigmoid",
                 "Sub", "Div", "Pow", "Resize", "ConvTranspose", "Gather", "Slice", "LayerNormalization",
                 "MatMul", *ops.UNARY)


class NodeRejected(Exception):
    """A node the engine cannot train: why, and what to do about it."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


@dataclass(frozen=True)
class Arg:
    """One run-time argument of an op: the tensor it reads and whether it is a trained parameter."""

    tensor: gs.Tensor
    trainable: bool = False


@dataclass(frozen=True)
class NodeOp:
    """What a node becomes: the op and its arguments in ONNX input order."""

    op: ops.Op
    args: list[Arg]


Builder = Callable[[gs.Node, int, bool], NodeOp]


# --------------------------------------------------------------------------- helpers
def _ints(node: gs.Node, name: str, default: list[int]) -> list[int]:
    value = node.attrs.get(name)
    return default if value is None else [int(v) for v in value]


def _shape(tensor: gs.Tensor, what: str) -> tuple[int, ...]:
    shape = static_shape(tensor)
    if shape is None:
        raise NodeRejected(f"{what} '{tensor.name}' has no static shape ({shape_text(tensor)})",
                           "run `normalize` first: it records every tensor's static shape")
    return shape


def _feature_map(node: gs.Node) -> tuple[int, ...]:
    """The static input shape of a windowed op, checked to be [1, C, L] or [1, C, H, W]."""
    shape = _shape(node.inputs[0], "input")
    if len(shape) not in (3, 4) or shape[0] != 1:
        raise NodeRejected(f"input shape {list(shape)} is not [1,C,L] or [1,C,H,W]",
                           "only 1-D and 2-D feature maps with batch 1 in the ONNX graph are supported")
    return shape


def _recorded_out(node: gs.Node, rank: int) -> list[int] | None:
    out = static_shape(node.outputs[0])
    return list(out[2:]) if out is not None and len(out) == rank + 2 else None


def _activation(tensor: gs.Tensor, node: gs.Node) -> Arg:
    if is_empty(tensor):
        raise NodeRejected("a required input is missing", "the node needs all its inputs")
    return Arg(tensor, False)


def _axis(node: gs.Node, rank: int, default: int) -> int:
    axis = int(node.attrs.get("axis", default))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise NodeRejected(f"axis {node.attrs.get('axis')} is out of range for rank {rank}", "fix the model")
    return axis


# --------------------------------------------------------------------------- builders
def _conv(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    shape = _feature_map(node)
    if len(node.inputs) < 2 or not is_const(node.inputs[1]):
        raise NodeRejected("the weights are not a constant", "weights must be initializers")
    if attr(node, "auto_pad", "NOTSET") != "NOTSET":
        raise NodeRejected("auto_pad is not resolved", "run `normalize` first (it makes pads explicit)")
    weight = const_value(node.inputs[1])
    assert weight is not None
    rank = len(shape) - 2
    kernel = _ints(node, "kernel_shape", [int(d) for d in weight.shape[2:]])
    group = int(node.attrs.get("group", 1))
    if weight.ndim != rank + 2 or shape[1] % group or weight.shape[0] % group or weight.shape[1] * group != shape[1]:
        raise NodeRejected(f"weights {list(weight.shape)} do not fit input {list(shape)} with group {group}",
                           "fix the model")
    window = ops.Window.make(shape[2:], kernel, _ints(node, "strides", [1] * rank), _ints(node, "pads", [0] * 2 * rank),
                             _ints(node, "dilations", [1] * rank))
    args = [_activation(node.inputs[0], node), Arg(node.inputs[1], True)]
    if len(node.inputs) > 2 and not is_empty(node.inputs[2]):
        if not is_const(node.inputs[2]):
            raise NodeRejected("the bias is not a constant", "the bias must be an initializer")
        args.append(Arg(node.inputs[2], True))
    return NodeOp(ops.Conv(window, group), args)


def _gemm(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    if int(node.attrs.get("transA", 0)) != 0:
        raise NodeRejected("transA=1", "run `normalize` first (Gemm becomes transA=0, transB=1)")
    a = node.inputs[0]
    shape = static_shape(a)
    if shape is not None and len(shape) != 2:
        raise NodeRejected(f"A has shape {list(shape)}, not [1, K]", "flatten the features before the layer")
    args = [_activation(a, node), Arg(node.inputs[1], is_const(node.inputs[1]))]
    if len(node.inputs) > 2 and not is_empty(node.inputs[2]):
        args.append(Arg(node.inputs[2], is_const(node.inputs[2])))
    return NodeOp(ops.Gemm(float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0)),
                           bool(int(node.attrs.get("transB", 0)))), args)


def _relu(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    return NodeOp(ops.Relu(), [_activation(node.inputs[0], node)])


def _leaky(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    return NodeOp(ops.LeakyRelu(float(node.attrs.get("alpha", 0.01))), [_activation(node.inputs[0], node)])


def _clip(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    bounds: list[float | None] = []
    for index, name in ((1, "min"), (2, "max")):
        if name in node.attrs:
            bounds.append(float(node.attrs[name]))
            continue
        tensor = node.inputs[index] if len(node.inputs) > index else None
        if tensor is None or is_empty(tensor):
            bounds.append(None)
            continue
        value = const_value(tensor)
        if value is None or value.size != 1:
            raise NodeRejected(f"the {name} bound is not a constant scalar", "use constant clamp limits")
        bounds.append(float(value.reshape(-1)[0]))
    return NodeOp(ops.Clip(bounds[0], bounds[1]), [_activation(node.inputs[0], node)])


def _pool_window(node: gs.Node, dilated: bool) -> ops.Window:
    shape = _feature_map(node)
    rank = len(shape) - 2
    if "kernel_shape" not in node.attrs:
        raise NodeRejected("no kernel_shape", "run `normalize` first")
    if attr(node, "auto_pad", "NOTSET") != "NOTSET":
        raise NodeRejected("auto_pad is not resolved", "run `normalize` first (it makes pads explicit)")
    return ops.Window.make(shape[2:], _ints(node, "kernel_shape", []), _ints(node, "strides", [1] * rank),
                           _ints(node, "pads", [0] * 2 * rank),
                           _ints(node, "dilations", [1] * rank) if dilated else [1] * rank,
                           out=_recorded_out(node, rank), ceil=bool(int(node.attrs.get("ceil_mode", 0))))


def _maxpool(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    if len(node.outputs) > 1 and not is_empty(node.outputs[1]) and node.outputs[1].outputs:
        raise NodeRejected("the Indices output is used", "max-unpooling is not supported")
    return NodeOp(ops.MaxPool(_pool_window(node, True)), [_activation(node.inputs[0], node)])


def _avgpool(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    window = _pool_window(node, True)
    return NodeOp(ops.AveragePool(window, bool(int(node.attrs.get("count_include_pad", 0)))),
                  [_activation(node.inputs[0], node)])


def _gap(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    _feature_map(node)
    return NodeOp(ops.GlobalAveragePool(), [_activation(node.inputs[0], node)])


def _binary(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    if len(node.inputs) != 2:
        raise NodeRejected(f"{len(node.inputs)} inputs", "a binary op needs two")
    a, b = node.inputs
    if is_const(a) and is_const(b):
        raise NodeRejected("both operands are constants", "run `normalize` first (it folds constants)")
    out = static_shape(node.outputs[0])
    for tensor in (a, b):
        shape = static_shape(tensor)
        if out is not None and shape is not None and len(shape) == len(out) and shape[0] != 1:
            raise NodeRejected(f"operand {list(shape)} is not batch 1", "use [1, ...] activations")
        if not is_const(tensor) and out is not None and shape is not None and len(shape) != len(out):
            raise NodeRejected(f"activation {list(shape)} broadcast to {list(out)}",
                               "only constants may broadcast; activations need the output's rank")
    op = {"Add": ops.Add, "Mul": ops.Mul, "Sub": ops.Sub, "Div": ops.Div}[node.op]()
    return NodeOp(op, [Arg(t, train_affine and is_const(t) and node.op in ("Add", "Mul")) for t in (a, b)])


def _pow(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    exponent = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if exponent is None or exponent.size != 1:
        raise NodeRejected("the exponent is not a constant number", "use a constant exponent (x ** 3)")
    return NodeOp(ops.Pow(float(exponent.reshape(-1)[0])), [_activation(node.inputs[0], node)])


def _unary(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """The element-wise functions of element-wise regions (passes/elementwise.py) other than Sigmoid."""
    params: dict[str, object] = {}
    if node.op == "HardSigmoid":
        params = {"alpha": float(node.attrs.get("alpha", 0.2)), "beta": float(node.attrs.get("beta", 0.5))}
    elif node.op == "Elu":
        params = {"alpha": float(node.attrs.get("alpha", 1.0))}
    elif node.op == "Gelu":
        approx = node.attrs.get("approximate", "none")
        params = {"approximate": approx.decode() if isinstance(approx, bytes) else str(approx)}
    return NodeOp(ops.Unary(node.op, **params), [_activation(node.inputs[0], node)])


def _concat(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    rank = len(_shape(node.outputs[0], "output"))
    axis = _axis(node, rank, 1)
    if axis == 0:
        raise NodeRejected("Concat on the batch axis", "concatenate channels (axis 1)")
    if any(is_const(t) for t in node.inputs):
        raise NodeRejected("a constant is concatenated", "concatenate activations only")
    return NodeOp(ops.Concat(axis), [_activation(t, node) for t in node.inputs])


def _flatten(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    rank = len(_shape(node.inputs[0], "input"))
    if _axis(node, max(rank, 2), 1) != 1:
        raise NodeRejected(f"Flatten axis {node.attrs.get('axis')}", "flatten after the batch axis (axis=1)")
    return NodeOp(ops.Reshape((-1,)), [_activation(node.inputs[0], node)])


def _reshape(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    before = _shape(node.inputs[0], "input")
    target = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if target is None:
        raise NodeRejected("the target shape is computed at run time", "run `normalize` first")
    dims = [int(d) for d in target.reshape(-1)]
    if not int(node.attrs.get("allowzero", 0)):
        dims = [before[i] if d == 0 and i < len(before) else d for i, d in enumerate(dims)]
    if dims.count(-1) == 1:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(before)) // max(known, 1)
    if not dims or dims[0] != 1 or before[0] != 1 or int(np.prod(dims)) != int(np.prod(before)):
        raise NodeRejected(f"reshape of {list(before)} to {dims} does not keep the batch axis",
                           "reshape only after the batch axis (e.g. to [1, N])")
    return NodeOp(ops.Reshape(dims[1:]), [_activation(node.inputs[0], node)])


def _transpose(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    rank = len(_shape(node.inputs[0], "input"))
    perm = [int(p) for p in node.attrs.get("perm", list(reversed(range(rank))))]
    if not perm or perm[0] != 0:
        raise NodeRejected(f"Transpose {perm} moves the batch axis", "permute only the axes after the batch")
    return NodeOp(ops.Transpose(perm), [_activation(node.inputs[0], node)])


def _gather(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """A Gather of constant indices after the batch axis (a time step of a sequence: unroll-recurrent);
    an embedding (a constant table by token ids, passes/embedding.py), whose table is not trained."""
    if is_embedding(node):
        problems = embedding_problems(node)
        if problems:
            raise NodeRejected(*problems[0])
        return NodeOp(ops.Embedding(), [Arg(node.inputs[0], trainable=False), _activation(node.inputs[1], node)])
    shape = _shape(node.inputs[0], "input")
    axis = _axis(node, len(shape), 0)
    indices = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if axis == 0 or indices is None:
        raise NodeRejected("a Gather on the batch axis or of run-time indices",
                           "gather constant indices after the batch axis")
    indices = np.where(indices < 0, indices + shape[axis], indices).astype(np.int64)
    if np.any(indices < 0) or np.any(indices >= shape[axis]):
        raise NodeRejected(f"Gather indices outside [0, {shape[axis]})", "fix the model")
    taken = int(indices) if indices.ndim == 0 else indices
    return NodeOp(ops.Gather(axis, taken), [_activation(node.inputs[0], node)])


def _slice(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """A Slice with constant starts/ends/axes/steps that leaves the batch axis whole."""
    shape = _shape(node.inputs[0], "input")
    if opset < 10:
        starts, ends = node.attrs.get("starts"), node.attrs.get("ends")
        axes, steps = node.attrs.get("axes"), None
    else:
        values = [const_value(t) if i < len(node.inputs) and not is_empty(t) else None
                  for i, t in enumerate(node.inputs[1:5], start=1)]
        values += [None] * (4 - len(values))
        if any(v is None and i < len(node.inputs) and not is_empty(node.inputs[i])
               for i, v in enumerate(values, start=1)):
            raise NodeRejected("Slice bounds computed at run time", "slice with constant bounds")
        starts, ends, axes, steps = values
    if starts is None or ends is None:
        raise NodeRejected("a Slice without starts/ends", "fix the model")
    starts, ends = [int(v) for v in np.reshape(starts, -1)], [int(v) for v in np.reshape(ends, -1)]
    axes_list = list(range(len(starts))) if axes is None else [int(a) for a in np.reshape(axes, -1)]
    steps_list = [1] * len(starts) if steps is None else [int(v) for v in np.reshape(steps, -1)]
    per_axis = [slice(None)] * len(shape)
    for start, end, axis, step in zip(starts, ends, axes_list, steps_list):
        axis = axis + len(shape) if axis < 0 else axis
        per_axis[axis] = slice(start, end, step)
    if per_axis[0].indices(shape[0]) != (0, shape[0], 1):
        raise NodeRejected("a Slice of the batch axis", "slice only after the batch axis")
    return NodeOp(ops.Slice(per_axis[1:]), [_activation(node.inputs[0], node)])


def _resize(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """The canonical nearest Resize of passes/resize_nearest.py."""
    from passes.resize_nearest import Rejected, nearest_factors

    found = nearest_factors(node)
    if isinstance(found, Rejected):
        raise NodeRejected(found.reason, found.hint)
    return NodeOp(ops.Upsample(found.factors, zeros=False), [_activation(node.inputs[0], node)])


def _zero_insertion(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """The zero insertion ConvTranspose of passes/conv_transpose.py (its Conv trains as any Conv)."""
    from passes.conv_transpose import is_zero_insertion

    if not is_zero_insertion(node):
        raise NodeRejected("a ConvTranspose other than zero insertion", "run `normalize` first (it rewrites "
                           "ConvTranspose into zero insertion + Conv)")
    return NodeOp(ops.Upsample([int(s) for s in node.attrs["strides"]], zeros=True), [_activation(node.inputs[0], node)])


def _softmax(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """Softmax and LogSoftmax."""
    rank = len(_shape(node.inputs[0], "input"))
    axis = _axis(node, rank, -1 if opset >= 13 else 1)
    if axis == 0:
        raise NodeRejected(f"{node.op} over the batch axis", f"use {node.op} over the last axis")
    if opset < 13 and axis != rank - 1:
        raise NodeRejected(f"opset-{opset} {node.op} over axis {axis} of a rank-{rank} tensor",
                           f"use {node.op} over the last axis")
    op = ops.Softmax(axis) if node.op == "Softmax" else ops.LogSoftmax(axis)
    return NodeOp(op, [_activation(node.inputs[0], node)])


def _layer_norm(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """LayerNormalization over the last axis with constant scale and bias (the parameters)."""
    rank = len(_shape(node.inputs[0], "input"))
    if _axis(node, rank, -1) != rank - 1:
        raise NodeRejected(f"LayerNormalization over axes {node.attrs.get('axis')}.. of a rank-{rank} tensor",
                           "normalise over the last axis only")
    params = [t for t in node.inputs[1:3] if not is_empty(t)]
    if not all(is_const(t) for t in params):
        raise NodeRejected("the scale or bias is not a constant", "use constant (learned) scale and bias")
    return NodeOp(ops.LayerNorm(float(node.attrs.get("epsilon", 1e-5))),
                  [_activation(node.inputs[0], node), *(Arg(t, True) for t in params)])


def _matmul(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    """MatMul of two activations [1, M, K] x [1, K, N] (attention's scores and weighted values)."""
    a, b = node.inputs
    sa, sb = static_shape(a), static_shape(b)
    if is_const(a) or is_const(b):
        raise NodeRejected("a MatMul with a constant operand", "run `normalize` first (it becomes Gemm or Conv)")
    if sa is None or sb is None or len(sa) != 3 or len(sb) != 3:
        raise NodeRejected(f"MatMul of {shape_text(a)} and {shape_text(b)}", "use [1, M, K] x [1, K, N] activations")
    return NodeOp(ops.MatMul(), [_activation(a, node), _activation(b, node)])


def _sigmoid(node: gs.Node, opset: int, train_affine: bool) -> NodeOp:
    return NodeOp(ops.Sigmoid(), [_activation(node.inputs[0], node)])


BUILDERS: dict[str, Builder] = {
    "Conv": _conv, "Gemm": _gemm, "Relu": _relu, "Clip": _clip, "LeakyRelu": _leaky, "MaxPool": _maxpool,
    "AveragePool": _avgpool, "GlobalAveragePool": _gap, "Add": _binary, "Mul": _binary, "Concat": _concat,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Softmax": _softmax, "LogSoftmax": _softmax, "Sigmoid": _sigmoid,
    "Sub": _binary, "Div": _binary, "Pow": _pow, "Resize": _resize, "ConvTranspose": _zero_insertion,
    "Gather": _gather, "Slice": _slice, "LayerNormalization": _layer_norm, "MatMul": _matmul,
    **{op: _unary for op in ops.UNARY},
}
assert set(BUILDERS) == set(SUPPORTED_OPS)


def node_op(node: gs.Node, opset: int, train_affine: bool = False) -> NodeOp:
    """The op and arguments of ``node``; raises :class:`NodeRejected` for anything unsupported."""
    if (node.domain or "") not in ("", "ai.onnx"):
        raise NodeRejected(f"op from domain '{node.domain}'", "only default-domain ONNX ops can be trained")
    builder = BUILDERS.get(node.op)
    if builder is None:
        raise NodeRejected(f"{node.op} is not supported by the training engine",
                           f"run `normalize` first; trainable ops: {', '.join(SUPPORTED_OPS)}")
    return builder(node, opset, train_affine)

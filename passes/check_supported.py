"""`check-supported`: one error listing every node outside the normal form, and the checker itself.

:func:`node_findings` holds the rules of docs/normal-form.md section 3 for one node,
:func:`check_normal_form` adds the graph-wide points (static shapes, names, origins) and returns every
violation as text (tests use it), and the `check-supported` pass raises one
:class:`~transpiler.errors.UnsupportedError` that lists all offending nodes at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.errors import Location, UnsupportedError
from transpiler.lir.kernels import LAYERNORM_N_MAX, SOFTMAX_N_MAX
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.batch_one import ANNOTATION as BATCH_ANNOTATION, TARGET as BATCH_TARGET
from passes.canonical_arith import channel_shape, channel_vector
from passes.conv_transpose import CONV_TRANSPOSE_HINT, is_zero_insertion, rewrite_problem
from passes.elementwise import find_regions
from passes.embedding import embedding_problems, is_embedding, is_token_input
from passes.attention_op import attention_problems
from passes.group_norm import norm_problems
from passes.layer_norm import epsilon_problems
from passes.rms_norm import op_problems as rms_norm_problems
from passes.prelu import PRELU_HINT, prelu_slopes
from passes.resize_linear import is_linear, linear_maps
from passes.resize_nearest import Rejected, is_canonical, nearest_factors
from passes.tree_ensembles import (ML_DOMAIN, TREE_OPS, canonical_scores, is_canonical as is_canonical_trees,
                                   read_ensemble, tree_limits)
from passes.ml_ops import PROBLEM as ML_PROBLEM
from passes.unroll_recurrent import PROBLEM as RECURRENT_PROBLEM
from passes.normalize_util import (DEFAULT_DOMAINS, ORIGIN, const_value, consumers, contiguous_slice, domain_version,
                                   is_const, is_empty, is_graph_output, is_read, origin_of, shape_text, static_shape)

SUPPORTED_OPS = ("Conv", "Gemm", "Relu", "Clip", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool",
                 "Add", "Mul", "Concat", "Flatten", "Reshape", "Transpose", "Resize", "ConvTranspose", "Softmax",
                 "LogSoftmax", "Sigmoid", "Gather", "Slice", "LayerNormalization", "MatMul")

_ACTIVATIONS = ("Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Gelu", "Softplus", "Softsign",
                "Mish", "Celu", "ThresholdedRelu", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Pow", "Neg", "Abs")
_ELEMENTWISE_HINT = ("element-wise functions (Sigmoid, Tanh, HardSigmoid, HardSwish, GELU, SiLU, ...) are "
                     "supported when they read one activation of static shape and constant numbers "
                     "(docs/normal-form.md, element-wise regions); ThresholdedRelu is not")
_OP_HINTS: dict[str, str] = {
    **{op: "control flow is not supported; recurrent layers are supported as ONNX LSTM, GRU and RNN nodes "
           "(unrolled over a static sequence length), not as loops (Keras LSTM/GRU through tf2onnx or TFLite "
           "become a Loop: build them with unroll=True)"
       for op in ("Scan", "Loop", "If")},
    **{op: _ELEMENTWISE_HINT for op in _ACTIVATIONS},
    "Pad": "padding is supported for constant, non-negative amounts of the spatial axes of a [1, C, L] or "
           "[1, C, H, W] map (modes constant with a constant value, reflect, edge, wrap); pad the batch or "
           "channel axes in the model's input instead, and crop with a Slice",
    "MatMul": "a MatMul needs a constant [K, N] right operand and a [1, K] left operand (it then becomes "
              "Gemm; use nn.Linear on a flattened tensor), or two activations [1, M, K] x [1, K, N] "
              "(attention)",
    "Sub": "only subtraction of a constant (it becomes Add) or of a same-shape activation is supported",
    **{op: f"only {op} of an activation and one number (a clamp) or of two same-shape activations is supported"
       for op in ("Max", "Min")},
    "Div": "only division by a constant is supported (it becomes Mul)",
    **{op: f"only a {what} over all spatial axes of a [1, C, ...] map (global pooling), over the channels of a "
           f"[1, C, H, W] map, or over the middle axes of a [1, T, D] sequence or a [1, H, W, C] map is supported"
       for op, what in (("ReduceMean", "mean"), ("ReduceSum", "sum"), ("ReduceMax", "max"))},
    "BatchNormalization": "export the model in inference mode (model.eval()) so BatchNorm can be folded",
    "Dropout": "export the model in inference mode (model.eval()) so Dropout disappears",
    "Identity": "an Identity straight from an input to an output is not a model; remove it",
    **{op: "splitting activations, and gathers other than a constant linear map of a feature map's spatial "
           "axes (spatial-linear: adaptive pooling, linear interpolation), are not supported; restructure "
           "the model (e.g. use separate layers instead of slices)"
       for op in ("Split", "GatherElements")},
    **{op: "copying an activation is supported only as nearest upsampling by integer factors (every pixel "
           "repeated: nn.Upsample, Keras UpSampling2D); other tilings and broadcasts are not"
       for op in ("Tile", "Expand")},
    "Constant": "a Constant node left after constant folding: report this as a freeml-tx bug",
}


_ML_HINT = ("scikit-learn models are supported when their tail is ArgMax -> ArrayFeatureExtractor / ZipMap "
            "after the scores (e.g. MLPClassifier), and their Scaler, LinearClassifier and LinearRegressor")
_ML_HINTS: dict[str, str] = {
    "LinearClassifier": "a LinearClassifier is supported with post_transform NONE, SOFTMAX or LOGISTIC when its "
                        "scores are a graph output (or go to a ZipMap), or, binary with two rows and NONE, one "
                        "decision column of them is",
    "Normalizer": "the L2 and L1 Normalizers of features and the L1 Normalizer after a LinearClassifier's softmax "
                  "are supported (norm MAX is not)",
    "LinearRegressor": "a LinearRegressor is supported with post_transform NONE and coefficients of "
                       "targets x input width",
    "TreeEnsemble": "the ai.onnx.ml opset 5 TreeEnsemble is not supported; convert with ai.onnx.ml opset 3 "
                    "(skl2onnx's default): TreeEnsembleClassifier/TreeEnsembleRegressor are",
    "SVMClassifier": "kernel SVMs (SVC, NuSVC) are supported with kernels linear, rbf, poly (binary) and sigmoid, "
                     "probability=False (True: binary only) and decision_function_shape='ovr' (passes/svm.py)",
    "SVMRegressor": "kernel SVMs (SVR, NuSVR) are supported with kernels linear, rbf, poly and sigmoid "
                    "(passes/svm.py)",
}


@dataclass(frozen=True)
class Finding:
    """One node outside the normal form: where it is, why it is rejected and what to do."""

    node: str
    op: str
    domain: str
    opset: int | None
    inputs: str
    origin: tuple[str, ...]
    reason: str
    hint: str

    def render(self) -> str:
        """One line: where, what and what to do."""
        domain = self.domain or "ai.onnx"
        version = f" v{self.opset}" if self.opset is not None else ""
        origin = f"; from {', '.join(self.origin)}" if self.origin and list(self.origin) != [self.node] else ""
        return (f"'{self.node}' ({self.op}, {domain}{version}; inputs {self.inputs}{origin}): "
                f"{self.reason}; {self.hint}")


QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                           "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm", "QLinearAdd", "QLinearMul",
                           "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid",
                           "QLinearLeakyRelu", "QLinearSoftmax", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"})
"""Ops of integer-quantized models (default and com.microsoft domains) that `dequantize` leaves."""

_CUSTOM_HINTS: dict[str, str] = {
    "com.microsoft.nchwc": "onnxruntime saved this model at ORT_ENABLE_ALL, in the blocked NCHWc layout of the "
                           "CPU it ran on; give the original model, or save it at ORT_ENABLE_EXTENDED or lower",
    "com.microsoft": "an onnxruntime op that expand-contrib-ops does not expand (passes/contrib_ops.py lists "
                     "those it does); give the model as exported, before onnxruntime's optimizations",
}
"""What to do about an op of a custom domain, per domain."""

Rule = Callable[[OnnxModel, gs.Node], list[tuple[str, str]]]


def _need_explicit(node: gs.Node, names: tuple[str, ...]) -> list[tuple[str, str]]:
    missing = [n for n in names if n not in node.attrs]
    if not missing:
        return []
    return [(f"attribute(s) {', '.join(missing)} not explicit", "run the whole `normalize` pass")]


def _spatial_rank(node: gs.Node) -> list[tuple[str, str]]:
    shape = static_shape(node.inputs[0])
    if shape is None or len(shape) not in (3, 4):
        return [(f"input shape {shape_text(node.inputs[0])} is not [1,C,L] or [1,C,H,W]",
                 "only 1-D and 2-D feature maps are supported")]
    if shape[0] != 1:
        return [(f"batch size {shape[0]}", "export or fix the input with batch 1 (--input-shape)")]
    return []


def _conv(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    out = _spatial_rank(node)
    if len(node.inputs) < 2 or const_value(node.inputs[1]) is None:
        out.append(("weights are not a constant", "weights must be initializers (no computed weights)"))
    if len(node.inputs) > 2 and not is_empty(node.inputs[2]) and const_value(node.inputs[2]) is None:
        out.append(("bias is not a constant", "the bias must be an initializer"))
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        out.append(("auto_pad is not resolved", "run the whole `normalize` pass"))
    return out + _need_explicit(node, ("kernel_shape", "strides", "pads", "dilations", "group"))


def _gemm(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    attrs = node.attrs
    if int(attrs.get("transA", 0)) != 0:
        out.append(("transA=1 (transposed activations)", "feed the layer a [1, K] row; transA must be 0"))
    if float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0 or int(attrs.get("transB", 0)) != 1:
        out.append(("Gemm is not canonical (alpha=1, beta=1, transB=1)", "run the whole `normalize` pass"))
    weight = const_value(node.inputs[1])
    if weight is None or weight.ndim != 2:
        out.append(("B is not a constant matrix", "the weights must be an initializer [N, K]"))
    shape = static_shape(node.inputs[0])
    if shape is None or len(shape) != 2 or shape[0] != 1:
        out.append((f"A has shape {shape_text(node.inputs[0])}, not [1, K]", "flatten the features before the layer"))
    if len(node.inputs) > 2 and not is_empty(node.inputs[2]):
        bias = const_value(node.inputs[2])
        n = weight.shape[0] if weight is not None and weight.ndim == 2 else None
        if bias is None or bias.shape != (n,):
            out.append((f"C has shape {shape_text(node.inputs[2])}, not a constant [N]", "use a per-output bias"))
    return out


def _clip(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    if "min" in node.attrs or "max" in node.attrs:
        return [("Clip in attribute form (opset < 11)", "export with opset 13 or newer")]
    bounds = [node.inputs[i] if len(node.inputs) > i else None for i in (1, 2)]
    if any(b is None or is_empty(b) or const_value(b) is None or const_value(b).size != 1 for b in bounds):
        return [("Clip bounds are not constant scalars", "use constant clamp limits (e.g. ReLU6)")]
    return []


def _leaky(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    return _need_explicit(node, ("alpha",))


def _maxpool(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    out = _spatial_rank(node)
    if len(node.outputs) > 1 and is_read(model.graph, node.outputs[1]):
        out.append(("the Indices output is used", "max-unpooling is not supported; do not use return_indices"))
    return out + _need_explicit(node, ("kernel_shape", "strides", "pads", "dilations", "ceil_mode"))


def _avgpool(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    out = _spatial_rank(node)
    if any(int(d) != 1 for d in node.attrs.get("dilations", [])):
        out.append(("dilated average pooling", "use dilation 1"))
    return out + _need_explicit(node, ("kernel_shape", "strides", "pads", "count_include_pad", "ceil_mode"))


def _gap(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    return _spatial_rank(node)


def _allowed_constant(value: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Per-channel constants in their canonical shapes, and constant maps that broadcast to the
    activation's shape without enlarging it (a positional embedding, a mask: stored whole)."""
    if channel_vector(value, shape) is not None:
        canonical = channel_shape(shape)
        return value.shape in (canonical, (1, *canonical)) or (len(shape) == 2 and value.shape == (shape[1],))
    try:
        return np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        return False


def _binary(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    if len(node.inputs) != 2:
        return [("not a binary node", "")]
    a, b = node.inputs
    out_shape = static_shape(node.outputs[0])
    if is_const(a) and is_const(b):
        return [("both operands are constants", "run `fold-constants`")]
    if not is_const(a) and not is_const(b):
        if static_shape(a) != static_shape(b) or static_shape(a) != out_shape:
            what = "residual additions" if node.op == "Add" else "products of two activations"
            return [(f"broadcasting {node.op} of {shape_text(a)} and {shape_text(b)}",
                     f"{what} need two tensors of the same shape")]
        return []
    act, const = (b, a) if is_const(a) else (a, b)
    shape = static_shape(act)
    value = const_value(const)
    if shape is None or value is None or shape != out_shape:
        return [(f"the constant {shape_text(const)} enlarges {shape_text(act)} by broadcasting",
                 "use a per-channel or same-shape constant")]
    if not _allowed_constant(value, shape):
        return [(f"constant of shape {list(value.shape)} on {shape_text(act)} is neither per-channel nor "
                 f"a map of the activation's shape",
                 f"use a per-channel constant ({list(channel_shape(shape))}) or one of shape {list(shape)}")]
    return []


def _concat(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if node.attrs.get("axis") != 1:
        out.append((f"Concat on axis {node.attrs.get('axis')}", "only concatenation of channels (axis 1), or of "
                    "[1, C, L] / [1, C, H, W] activations along a spatial axis, is supported"))
    if any(is_const(t) for t in node.inputs):
        out.append(("a constant is concatenated", "concatenate activations only"))
    shapes = [static_shape(t) for t in node.inputs]
    if any(s is None or len(s) < 2 or s[0] != 1 for s in shapes):
        out.append(("inputs are not [1, C, ...] activations", "concatenate feature maps with batch 1"))
    return out


def _flatten(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    shape = static_shape(node.inputs[0])
    if int(node.attrs.get("axis", 1)) != 1 or shape is None or shape[0] != 1:
        return [(f"Flatten axis {node.attrs.get('axis', 1)} of {shape_text(node.inputs[0])}",
                 "flatten everything after the batch dimension (axis 1) with batch 1")]
    return []


def _reshape(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    target = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    after = static_shape(node.outputs[0])
    if target is None:
        return [("the target shape is computed at run time", "the shape must fold to a constant; fix the input "
                 "shapes with --input-shape")]
    dims = [int(d) for d in target.reshape(-1)]
    if any(d <= 0 for d in dims) or after is None or tuple(dims) != after:
        return [(f"target shape {dims} is not explicit", "run the whole `normalize` pass")]
    if (len(dims) not in (2, 3, 4) or dims[0] != 1) and not final_relabel(model, node):
        return [(f"reshape to {dims}", "only reshapes to [1, N], [1, C, L] or [1, C, H, W] keep the "
                 "channel-major layout the runtime uses; keep the batch dimension first")]
    return []


def final_relabel(model: OnnxModel, node: gs.Node) -> bool:
    """A Reshape of a one-sample tensor whose output only a graph output reads: it relabels the
    output's shape (its values keep their order), whatever that shape is (skl2onnx's multi-target
    MLPRegressor ends in ``Reshape(y[1, T], [-1, 1])``)."""
    out, before = node.outputs[0], static_shape(node.inputs[0])
    return before is not None and before[0] == 1 and is_graph_output(model.graph, out) and not consumers(out)


def _transpose(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """A permutation of the axes after the batch of a [1, C, L] or [1, C, H, W] activation (a
    channel-last input permuted in the model: torch ``x.permute(0, 3, 1, 2)``, ``x.transpose(1, 2)``)."""
    shape = static_shape(node.inputs[0])
    rank = len(shape) if shape is not None else None
    perm = [int(p) for p in node.attrs.get("perm", list(reversed(range(rank or 0))))]
    if shape is None or rank not in (3, 4) or shape[0] != 1 or not perm or perm[0] != 0:
        return [(f"Transpose {perm} of {shape_text(node.inputs[0])}", "only permutations of the axes after the "
                 "batch of a [1, C, L] or [1, C, H, W] tensor are supported; keep the batch axis first")]
    if int(np.prod(shape)) > 0xFFFF:
        return [(f"Transpose of {int(np.prod(shape))} elements", "at most 65535 elements")]
    return []


def _slice(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """A ``Gather`` of one constant index or a ``Slice`` of one axis with constant bounds whose
    result is one contiguous run of its input (a time step ``x[:, t]`` of a [1, T, F] sequence); a
    ``Gather`` of a constant table by token ids (an embedding, passes/embedding.py)."""
    if is_embedding(node):
        return embedding_problems(node)
    try:
        contiguous_slice(node)
    except ValueError as exc:
        return [(str(exc), "only one time step (or a run of steps) of a [1, T, F] sequence, x[:, t], "
                 "with a constant index, and crops of the spatial axes of a [1, C, H, W] / [1, C, L] map "
                 "with constant bounds and positive steps are supported")]
    if not is_const(node.inputs[0]) and (static_shape(node.outputs[0]) or (0,))[0] != 1:
        return [(f"output {shape_text(node.outputs[0])} has no batch axis 1 first", "keep the batch axis")]
    return []


def _recurrent(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """An LSTM/GRU/RNN that unroll-recurrent left: the reason it recorded."""
    found = model.annotations.get(node.name, RECURRENT_PROBLEM) or {
        "reason": "not unrolled", "hint": "run the whole `normalize` pass (unroll-recurrent)"}
    return [(str(found["reason"]), str(found["hint"]))]


def _resample(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """Resize/Upsample: only an exact nearest upsampling by integer factors, in the canonical form
    of passes/resize_nearest.py (resize-linear rewrote the linear and other nearest ones it could: the
    rest say why)."""
    found = linear_maps(node) if is_linear(node) else nearest_factors(node)
    if isinstance(found, Rejected):
        return [(found.reason, found.hint)]
    if not is_canonical(node):
        return [("nearest upsampling not in the canonical Resize form", "run the whole `normalize` pass")]
    return _upsample_size(node)


def _upsample_size(node: gs.Node) -> list[tuple[str, str]]:
    """The `upsample` step (generated loop with 16-bit indices) takes at most 65535 elements in and out."""
    sizes = [int(np.prod(s)) for s in (static_shape(node.inputs[0]), static_shape(node.outputs[0])) if s]
    if max(sizes, default=0) > 0xFFFF:
        return [(f"upsampling of {shape_text(node.inputs[0])} to {shape_text(node.outputs[0])}: more than 65535 "
                 "elements", "upsample maps of at most 65535 elements (fewer channels, or a smaller map)")]
    return []


def _conv_transpose(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """ConvTranspose only as zero insertion (passes/conv_transpose.py turns the others into it + Conv)."""
    if is_zero_insertion(node):
        return _upsample_size(node)
    problem = rewrite_problem(node)
    if problem is None:
        return [("ConvTranspose not rewritten to zero insertion + Conv", "run the whole `normalize` pass")]
    return [(problem, CONV_TRANSPOSE_HINT)]


def _prelu(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """PRelu never stays (passes/prelu.py rewrites every one with per-channel constant slopes)."""
    if prelu_slopes(node) is None:
        slope = shape_text(node.inputs[1]) if len(node.inputs) > 1 else "none"
        return [(f"slope {slope} on {shape_text(node.inputs[0])} is not a constant with one value or one per "
                 "channel", PRELU_HINT)]
    return [("PRelu not rewritten", "run the whole `normalize` pass")]


def layer_norm_problems(graph: gs.Graph, node: gs.Node) -> list[tuple[str, str]]:
    """A LayerNormalization over the last axis only, constant scale and bias of one value per position
    of that axis, rows of at most 1024, an epsilon of 0 or more and the Mean/InvStdDev outputs unused
    (what `lower` accepts)."""
    out = epsilon_problems(node)
    shape = static_shape(node.inputs[0])
    rank = len(shape) if shape is not None else 0
    axis = int(node.attrs.get("axis", -1))
    if shape is not None and axis % max(rank, 1) != rank - 1:
        out.append((f"normalisation over axes {axis}.. of {shape_text(node.inputs[0])}",
                    "only a layer normalisation over the last axis is supported (nn.LayerNorm(d) of [.., d])"))
    if shape is not None and shape[-1] > LAYERNORM_N_MAX:
        out.append((f"rows of {shape[-1]} elements", f"at most {LAYERNORM_N_MAX} per normalised row"))
    n = shape[-1] if shape is not None else None
    for k, role in ((1, "scale"), (2, "bias")):
        if len(node.inputs) > k and not is_empty(node.inputs[k]):
            value = const_value(node.inputs[k])
            if value is None or value.size != n:
                out.append((f"the {role} {shape_text(node.inputs[k])} is not a constant [{n}]",
                            "export with an elementwise-affine nn.LayerNorm (constant weight and bias)"))
    if any(not is_empty(t) and is_read(graph, t) for t in node.outputs[1:]):
        out.append(("the Mean or InvStdDev output is used", "only the normalised output is supported"))
    return out


def _layer_norm(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    return layer_norm_problems(model.graph, node)


def matmul_problems(node: gs.Node) -> list[tuple[str, str]]:
    """A MatMul of two activations ``[1, M, K] x [1, K, N]`` (attention's scores and weighted sum);
    empty when it is one."""
    a, b = (node.inputs + [None, None])[:2]
    sa, sb = static_shape(a), static_shape(b)
    if is_const(a) or is_const(b) or sa is None or sb is None:
        return [("MatMul is not supported", _OP_HINTS["MatMul"])]
    if len(sa) != 3 or len(sb) != 3 or sa[0] != 1 or sb[0] != 1 or sa[2] != sb[1]:
        return [(f"MatMul of {shape_text(a)} and {shape_text(b)}",
                 "a product of two activations needs [1, M, K] and [1, K, N] (one sequence, one head)")]
    if sa[1] > 0xFFFF or sa[2] > 0xFFFF or sb[2] > 0xFFFF:
        return [(f"MatMul of {shape_text(a)} and {shape_text(b)}", "dimensions of at most 65535")]
    return []


def _matmul(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    return matmul_problems(node)


def softmax_problems(node: gs.Node) -> list[tuple[str, str]]:
    """A Softmax inside the network over the last axis (attention weights), rows of at most 1024."""
    shape = static_shape(node.inputs[0])
    rank = len(shape) if shape is not None else 0
    axis = int(node.attrs.get("axis", -1))
    if node.op != "Softmax" or shape is None or axis % max(rank, 1) != rank - 1:
        return [(f"{node.op} inside the network over axis {axis} of {shape_text(node.inputs[0])}",
                 "only a Softmax over the last axis is supported inside the network (a final Softmax, "
                 "LogSoftmax or Sigmoid is dropped)")]
    if shape[-1] > SOFTMAX_N_MAX:
        return [(f"Softmax over rows of {shape[-1]}", f"at most {SOFTMAX_N_MAX} elements per row")]
    return []


def _final(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """Softmax, LogSoftmax (over the class axis) and Sigmoid as the final node (lower drops it); a
    Softmax over the last axis inside the network (lower makes it a softmax step)."""
    out = node.outputs[0]
    if node.op == "Softmax" and (not is_graph_output(model.graph, out) or consumers(out)):
        return softmax_problems(node)
    if not is_graph_output(model.graph, out) or consumers(out):
        hint = (f"{node.op} is only supported as the final node (it is dropped: the device returns logits "
                "and the class index)")
        return [(f"{node.op} inside the network", hint)]
    if node.op == "Sigmoid":
        return []
    shape = static_shape(node.inputs[0])
    rank = len(shape) if shape is not None else 0
    axis = int(node.attrs.get("axis", -1))
    if axis not in (-1, rank - 1) or (shape is not None and any(d != 1 for d in shape[1:-1])):
        return [(f"{node.op} over axis {axis} of {shape_text(node.inputs[0])}",
                 f"use {node.op} over the class axis of [1, classes] scores")]
    return []


RULES: dict[str, Rule] = {
    "Conv": _conv, "Gemm": _gemm, "Clip": _clip, "LeakyRelu": _leaky, "MaxPool": _maxpool,
    "AveragePool": _avgpool, "GlobalAveragePool": _gap, "Add": _binary, "Mul": _binary, "Concat": _concat,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Resize": _resample, "Upsample": _resample, "ConvTranspose": _conv_transpose, "PRelu": _prelu, "Softmax": _final, "LogSoftmax": _final, "Sigmoid": _final,
    "Relu": lambda m, n: [], "Gather": _slice, "Slice": _slice, "LSTM": _recurrent, "GRU": _recurrent,
    "RNN": _recurrent, "LayerNormalization": _layer_norm, "MatMul": _matmul,
    "InstanceNormalization": norm_problems, "GroupNormalization": norm_problems,
    "RMSNormalization": lambda m, n: rms_norm_problems(m.graph, n),
    "Attention": lambda m, n: attention_problems(m.graph, n),
}


def _trees(node: gs.Node) -> list[tuple[str, str]]:
    """A tree ensemble is supported in the canonical form `tree-ensembles` writes, on a ``[1, K]``
    input, with feature indices below ``K`` and tables within the kernel's limits."""
    hint = ("tree ensembles are supported with BRANCH_LEQ/LT/GTE/GT/EQ/NEQ nodes, SUM or AVERAGE, post_transform "
            "NONE, SOFTMAX or LOGISTIC, and as the TreeEnsembleClassifier/Regressor of ai.onnx.ml opsets 1-3")
    ens = read_ensemble(node)
    if ens.problems:
        return [(p, hint) for p in ens.problems]
    if not is_canonical_trees(node):
        why = canonical_scores(ens)[3] or "the scores are not a graph output (or a ZipMap's input)"
        return [(why, hint)]
    shape = static_shape(node.inputs[0])
    if shape is None or len(shape) != 2 or shape[0] != 1:
        return [(f"input of shape {shape_text(node.inputs[0])}", "a tree ensemble reads a [1, features] vector")]
    problems = [(f"tree {t} reads feature {b.feature} of {shape[1]}", "the model is inconsistent; re-export it")
                for t, tree in enumerate(ens.trees) for b in tree.branches.values() if not 0 <= b.feature < shape[1]]
    problems += [(p, "split the forest or train fewer/shallower trees") for p in tree_limits(ens)]
    return problems


def region_members(model: OnnxModel) -> set[int]:
    """id() of every node of an element-wise region (passes/elementwise.py): lower computes each
    region with one table, whatever its ops."""
    return {id(n) for r in find_regions(model.graph) for n in r.nodes}


def node_findings(model: OnnxModel, node: gs.Node, regions: set[int] | None = None) -> list[Finding]:
    """Everything wrong with ``node`` in the normal form (empty if it is fine); ``regions`` from
    :func:`region_members` (computed when None)."""
    domain = node.domain or ""
    problems: list[tuple[str, str]]
    if regions is None:
        regions = region_members(model)
    if id(node) in regions:
        problems = []
    elif domain == ML_DOMAIN and node.op in TREE_OPS:
        problems = _trees(node)
    elif domain not in DEFAULT_DOMAINS:
        hint = _ML_HINTS.get(node.op, _ML_HINT) if domain == "ai.onnx.ml" else _CUSTOM_HINTS.get(
            domain, "custom-domain ops are not supported; export with standard ONNX ops")
        found = model.annotations.get(node.name, ML_PROBLEM)
        problems = [(str(found["reason"]), str(found["hint"]))] if isinstance(found, dict) else \
            [(f"op from domain '{domain}'", hint)]
    elif isinstance(found := model.annotations.get(node.name, ML_PROBLEM), dict):   # knn-to-onnx's TopK
        problems = [(str(found["reason"]), str(found["hint"]))]
    elif node.op not in RULES:
        hint = _OP_HINTS.get(node.op, f"{node.op} is not in the supported op set (docs/normal-form.md)")
        problems = [(f"{node.op} is not supported", hint)]
    else:
        problems = RULES[node.op](model, node)
    open_shapes = [t.name for t in node.outputs if not is_empty(t) and static_shape(t) is None]
    # a shape is reported where it is lost; the nodes downstream of an open input that a node
    # computes would only repeat it
    lost_upstream = any(not is_empty(t) and t.inputs and static_shape(t) is None for t in node.inputs)
    explained = isinstance(model.annotations.get(node.name, ML_PROBLEM), dict)   # its shapes follow from it
    if open_shapes and not lost_upstream and not explained:
        problems = [(f"output {', '.join(open_shapes)} has no static shape",
                     "fix the input shapes with --input-shape; shapes that depend on the data are not "
                     "supported")] + problems
    if not problems:
        return []
    inputs = ", ".join(shape_text(t) for t in node.inputs if not is_empty(t)) or "none"
    version = domain_version(model, domain)
    return [Finding(node.name, node.op, domain, version, inputs, tuple(origin_of(model, node)), reason, hint)
            for reason, hint in problems]


def masked_softmax(tensor: gs.Tensor) -> gs.Node | None:
    """The first Softmax that ``tensor`` (a graph input) reaches through any nodes other than an
    embedding lookup: an input that masks attention scores (transformers' ``attention_mask``), or None."""
    seen: set[int] = set()
    frontier = [tensor]
    while frontier:
        for node in frontier.pop(0).outputs:
            if id(node) in seen or is_embedding(node):
                continue
            seen.add(id(node))
            if node.op == "Softmax":
                return node
            frontier.extend(node.outputs)
    return None


def graph_findings(model: OnnxModel) -> list[str]:
    """Graph-level problems a user can cause: non-float or non-batch-1 inputs, non-tensor outputs."""
    out = []
    kept = model.annotations.get(BATCH_TARGET, BATCH_ANNOTATION)
    why = f" (batch-one kept its batch of {kept['batch']}: {kept['problem']})" if isinstance(kept, dict) else ""
    for tensor in model.graph.inputs:
        shape = static_shape(tensor)
        softmax = masked_softmax(tensor)
        if softmax is not None and not (tensor.dtype is not None and np.dtype(tensor.dtype) == np.float32):
            out.append(f"input '{tensor.name}' is an attention mask (it reaches the scores of '{softmax.name}'): "
                       f"attention masked at run time is not supported, the device attends over every position "
                       f"of a fixed-length sequence; export the model without the mask input (transformers: "
                       f"call it with input_ids only) and give it sequences of that length")
            continue
        if tensor.dtype is not None and is_token_input(tensor):
            if not tensor.outputs or not all(is_embedding(n) and n.inputs[1] is tensor for n in tensor.outputs):
                readers = ", ".join(f"{n.name} ({n.op})" for n in tensor.outputs) or "none"
                out.append(f"input '{tensor.name}' has dtype {np.dtype(tensor.dtype)}; only float32 inputs are "
                           f"supported, and integer token ids read only by embedding tables (Gather(table [V, D], "
                           f"ids, axis=0): nn.Embedding); it is read by {readers}")
        elif tensor.dtype is None or np.dtype(tensor.dtype) != np.float32:
            out.append(f"input '{tensor.name}' has dtype {tensor.dtype}; only float32 inputs are supported "
                       f"(and integer token ids that index an embedding table)")
        if shape is not None and (len(shape) < 2 or shape[0] != 1):
            out.append(f"input '{tensor.name}' has shape {list(shape)}; inputs must be [1, ...] (batch 1, "
                       f"then features/channels){why}; give a dynamic batch 1 with --input-shape "
                       f"{tensor.name}=1x..., or export the model with batch 1 (torch: an example input of "
                       f"batch 1, or dynamic_axes={{'input': {{0: 'batch'}}}})")
    for node in model.graph.nodes:
        if _unrolled_sequence_projection(node):
            out.append(f"'{node.name}' projects a whole [T, 1, F] sequence that Slices then split into time "
                       "steps: a recurrent layer the exporter unrolled itself (torch dynamo writes nn.RNN so); "
                       "export it with torch's legacy exporter (dynamo=False), which writes an ONNX RNN node "
                       "that unroll-recurrent supports (dynamo's nn.LSTM and nn.GRU are supported)")
    quantized = sorted({n.op for n in model.graph.nodes if n.op in QUANTIZED_OPS})
    if quantized:
        out.append(f"the model is integer-quantized ({', '.join(quantized)}: onnxruntime.quantization's "
                   "QOperator format or dynamic quantization): compile the float model (freeml-tx quantizes "
                   "it to 16 bits itself from --data), or quantize it with quant_format=QuantFormat.QDQ, whose "
                   "int8 weights freeml-tx reads (passes/dequantize.py)")
    for tensor in model.graph.outputs:
        if getattr(tensor, "type", "tensor_type") != "tensor_type":
            out.append(f"output '{tensor.name}' is a {tensor.type}, not a tensor")
    return out


def _unrolled_sequence_projection(node: gs.Node) -> bool:
    """A MatMul of a [T, 1, F] activation (T > 1) whose result (through an Add) several Slices read."""
    shape = static_shape(node.inputs[0]) if node.op == "MatMul" and node.inputs else None
    if shape is None or len(shape) != 3 or shape[0] < 2 or shape[1] != 1:
        return False
    out = node.outputs[0]
    readers = consumers(out)
    if len(readers) == 1 and readers[0].op == "Add":
        readers = consumers(readers[0].outputs[0])
    return sum(1 for r in readers if r.op == "Slice") >= 2


def check_normal_form(model: OnnxModel) -> list[str]:
    """Every violation of docs/normal-form.md in ``model``, as text (empty: it is in normal form)."""
    graph = model.graph
    problems = list(graph_findings(model))
    for name, tensor in sorted(graph.tensors().items()):
        if isinstance(tensor, gs.Variable) and not tensor.is_empty():
            if static_shape(tensor) is None:
                problems.append(f"tensor '{name}' has no static shape ({shape_text(tensor)})")
            elif tensor.dtype is None:
                problems.append(f"tensor '{name}' has no dtype")
            elif np.dtype(tensor.dtype) != np.float32 and not is_token_input(tensor):
                problems.append(f"tensor '{name}' is {np.dtype(tensor.dtype)}, not float32")
    seen: set[str] = set()
    regions = region_members(model)
    for node in graph.nodes:
        if not node.name:
            problems.append(f"a {node.op} node has no name")
        elif node.name in seen:
            problems.append(f"node name '{node.name}' is used twice")
        seen.add(node.name)
        if node.name and not model.annotations.get(node.name, ORIGIN):
            problems.append(f"node '{node.name}' has no origin annotation")
        problems.extend(f.render() for f in node_findings(model, node, regions))
    return problems


@register
class CheckSupported(Pass):
    """Reject a model that is not in the normal form, listing every offending node in one error.

    Before -> after::

        model with Resize, LSTM, Transpose  ->  UnsupportedError: 3 nodes ... (one line each: name,
                                                op, domain/opset, input shapes, origin, reason, fix)
        model in normal form                ->  the same model (no change)
    """

    name = "check-supported"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        regions = region_members(model)
        findings = [f for node in model.graph.nodes for f in node_findings(model, node, regions)]
        general = graph_findings(model)
        if findings or general:
            # a scikit-learn node left with its reason comes first: the nodes after it only follow from it
            causes = [f for f in findings if isinstance(model.annotations.get(f.node, ML_PROBLEM), dict)]
            nodes = {f.node for f in findings}
            what = f"{len(nodes)} node(s)" if nodes else "the model's inputs/outputs"
            only = findings[0] if len(nodes) == 1 and not general else None
            raise UnsupportedError(
                f"{what} cannot be compiled" + (f" ({len(findings)} problems)" if len(findings) > len(nodes) else ""),
                location=Location(file=model.source, pass_name=self.name, node=only.node if only else None,
                                  op=only.op if only else None),
                details=[f.render() for f in causes] + general + [f.render() for f in findings if f not in causes],
                hint="see docs/normal-form.md for the supported ops and forms; each line says what to change")
        return PassResult(model, False, {"nodes": len(model.graph.nodes)})

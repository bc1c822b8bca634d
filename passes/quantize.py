"""The `quantize` pass: choose Q15 formats for activations and weights from calibration ranges.

The model stays plain float ONNX; only annotations change, so onnxruntime still runs it and `lower`
reads the formats from the annotation table. docs/lir.md defines what a format means: a real value
``v`` is stored as ``round(v * 2^f)`` saturated to int16, ``f`` = fractional bits.

Rules (one place; `lower` imports the helpers below so both sides agree):

- **Activations** (every graph input and every node output): ``f`` = the largest integer with
  ``max|v| * margin * 2^f <= 32767``, clamped to ``[-8, 30]``; a tensor that was 0 on every sample
  gets 15. ``margin`` defaults to 1.25: formats are powers of two, so the calibration maximum already
  lands anywhere in the upper half of the int16 range; the margin guarantees at least 25 % headroom
  above the largest value seen on (at most 256) calibration samples, which covers the growth of the
  maximum on unseen data: calibrating on the "train" part of each trained sample's data and
  measuring on all of it, the largest tensor maximum grew by 7 % (lenet5_mnist), 4 %
  (mlp_mnist_big), 8 % (mlp_digits_sklearn) and 24 % (cnn_digits, 216 calibration images). The cost
  is one bit on the ~32 % of tensors whose maximum lies within 1/1.25 of a power-of-two boundary.
  A tensor annotated ``reachable-range`` (the squares and squared norm of an RBF kernel,
  passes/svm.py: a square grows like the square of an input beyond its calibrated range) instead
  holds every value its inputs' formats can: see :func:`reachable_formats`.
- **Weights** of Conv / Gemm and the per-channel constant of a Mul: one ``f`` per output channel
  (axis 0 of W; the channel axis of the Mul constant): the largest ``f`` with
  ``round(max|w_c| * 2^f) <= 32767``, clamped to ``[0, 30]``; an all-zero channel gets 15.
- **Accumulator headroom**: the requant shift ``f_in + f_w[c] - f_out`` is limited to
  ``max_shift`` (default 15) by lowering ``f_w[c]``. Why: the 32-bit accumulator holds the
  pre-activation result at scale ``2^(f_in + f_w)`` = ``y_q * 2^shift`` with ``|y_q| <= 32767`` on
  calibration data. It wraps (modulo 2^32, a sign flip instead of saturation) once
  ``|y_q| * 2^shift >= 2^31``; with ``shift <= 15`` that happens only beyond twice the int16 range,
  i.e. at ``2 * margin = 2.5`` times the calibration maximum, while plain int16 saturation takes over
  between 1.25x and 2.5x. ``shift <= 16`` would leave no room between saturation and wrap-around;
  each step below 15 costs one bit of weight precision in wide layers (where the ideal shift is
  ``~15 + log2(sqrt(K))``). Measured on the samples (lenet5_mnist / mlp_mnist_big, 500 test images):
  max output error 0.014 / 0.035 at 13, 0.007 / 0.013 at 14, 0.003 / 0.008 at 15, 0.002 / 0.004
  at 16, all with 100 % top-1 agreement; without the limit (ideal shifts 17-20) the accumulators
  wrap and top-1 agreement falls to 88 % / 52 %. Intermediate sums may wrap: two's-complement addition is exact modulo
  2^32, only the final sum must fit. `lower` re-applies the limit with the formats of the fused step
  and also keeps the shift inside the op's range ``[-15, 31]``.
- **Products of two activations** (``Mul`` -> ``mul``): the output's calibrated format like any
  activation; the product ``a * b`` of two int16 is exact in 32 bits (at most 2^30), so there is no
  accumulator headroom to keep, only the shift ``f_a + f_b - f_out`` inside ``[-15, 31]`` (`lower`
  moves ``f_out`` when it would leave it). Error: ``|a'| e_b + |b'| e_a + e_a e_b`` plus the
  rounding (backends/lower_bounds.py): a product of two operands near 1 costs about two LSBs.
- **Embedding tables** (``Gather(table, ids, axis=0)``, passes/embedding.py): one per-tensor ``f``
  from the table's largest value (the weight rule clamped to ``[-8, 30]``), and the Gather's output
  takes the same ``f`` instead of its calibrated one: the ``embed`` step copies rows, and every row
  fits, including those calibration never selected. Token-id inputs get no format (they are ids).
- **Per-element constants** of an ``Add`` (stored as an i16 buffer): per-tensor ``f`` with the
  weight rule clamped to ``[-8, 30]``.

- **Feature scales of an input** (``feature-shift``): one Q format for a whole input loses the small
  features of tabular data (breast-cancer features span 0.001 .. 4254: at the input's q=3 the
  small ones round to 0, and a StandardScaler + LogisticRegression pipeline agreed with onnxruntime
  on 81 % of the samples). When every reader of a graph input is a Conv or Gemm reading it as its
  data operand (or a tree ensemble reads it: a threshold on feature ``c`` becomes ``t * 2^s_c``,
  backends/lower_trees.py), each feature (channel axis 1) gets its own format ``q + s_c`` (``s_c >= 0`` extra
  fractional bits: the activation rule applied to that feature's calibration maximum, less one bit
  of extra headroom, for features non-zero on at least half of the samples), recorded as
  ``{"axis": 1, "shifts": [s_c, ...]}`` on the input, applied only when some ``s_c >= 2``. The
  readers' weights are then those of the scaled input ``x'_c = x_c * 2^s_c`` (``W'[:, c] = W[:, c]
  * 2^-s_c``, :func:`scale_input_channels`; exact: powers of two), so the program still sees one
  format ``q`` while the caller stores feature ``c`` as ``round(x_c * 2^(q + s_c))`` (the port's
  ``feature_shift`` in manifest.json, ``FX_<M>_IN<i>_SHIFTS`` in the header; `freeml-tx run` and
  `verify` do it).

Without calibration data (``PassContext.data`` is None) the ranges come from synthetic inputs: a
mix of constant, noisy and uniform samples in ``[input_lo, input_hi]`` (default ``[-1, 1]``) run
through onnxruntime, with an extra ``no_data_margin`` (2: one more bit of headroom). That is a
weight-derived statistical bound, not a measurement; the pass warns (``PassContext.say`` and
``warnings.warn``) because accuracy may suffer.

Before -> after (annotations only)::

    Conv(x, W, B) -> y              Conv(x, W, B) -> y
                                    x: calib-range=[0.0, 1.0], qformat=14
                                    y: calib-range=[-3.1, 5.2], qformat=12
                                    W: qformat=[14, 15, 13, ...]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.annotations import REACHABLE_RANGE
from transpiler.data import Dataset, token_vocab
from transpiler.errors import DataError, Location, UnsupportedError
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.embedding import is_embedding
from passes.tree_ensembles import ML_DOMAIN

INT16_MAX = 32767
ACT_FRAC_RANGE = (-8, 30)
WEIGHT_FRAC_RANGE = (0, 30)
ZERO_FRAC = 15
DEFAULT_MAX_SHIFT = 15
NO_DATA_WARNING = ("no --data: Q formats from weight-derived ranges; accuracy may suffer; "
                   "pass --data d.npz")

# ops whose output is the channel-wise affine image of one activation input through constant weights
WEIGHTED_OPS = ("Conv", "Gemm", "Mul")
FEATURE_SHIFT = "feature-shift"
"""Annotation on a graph input: ``{"axis": 1, "shifts": [s_c, ...]}`` (see the module docstring)."""
MIN_FEATURE_SHIFT = 2
"""Per-feature formats are used when some feature gains at least this many bits."""
MAX_FEATURE_SHIFT = 15
FEATURE_HEADROOM = 1
"""Bits of headroom a feature's own format keeps beyond the activation rule's: the maximum of one
feature over the calibration samples is a less certain bound than that of the whole tensor."""
MIN_FEATURE_DENSITY = 0.5
"""A feature gets its own format only when it is non-zero on at least this share of the calibration
samples: a rarely lit pixel (digits' border) shows its range on too few samples to be trusted."""


def round_half_up(v: np.ndarray | float) -> np.ndarray:
    """``floor(v + 1/2)``: the rounding of constants and inputs, the same as requant's (docs/lir.md)."""
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5)


def act_frac_bits(max_abs: float, margin: float = 1.25) -> int:
    """Fractional bits of an activation: the largest f with max_abs * margin * 2^f <= 32767,
    clamped to [-8, 30]; 15 for an all-zero tensor."""
    if not math.isfinite(max_abs):
        return ACT_FRAC_RANGE[0]
    if max_abs <= 0.0:
        return ZERO_FRAC
    bound = max_abs * margin
    f = math.floor(math.log2(INT16_MAX / bound))
    while bound * 2.0 ** f > INT16_MAX:
        f -= 1
    while bound * 2.0 ** (f + 1) <= INT16_MAX:
        f += 1
    return int(min(max(f, ACT_FRAC_RANGE[0]), ACT_FRAC_RANGE[1]))


def reachable_formats(graph: gs.Graph, act_q: Mapping[str, int], ann: Any) -> dict[str, int]:
    """The formats of the tensors annotated ``reachable-range``, coarsened (never refined) so that they
    hold every value their inputs' formats can (``|x| < 2^(15 - f_x)``): ``Mul(x, x)`` up to
    ``2^(30 - 2 f_x)``, ``Gemm(x, W, b)`` up to ``max_n sum_k |W[n, k]| 2^(15 - f_x) + |b[n]|``; in graph
    order, so a chain of them (squares, their weighted sum) sees its inputs' new formats."""
    formats = dict(act_q)
    out: dict[str, int] = {}
    for node in graph.nodes:
        if not node.outputs or ann.get(node.outputs[0].name, REACHABLE_RANGE) is not True:
            continue
        name, x = node.outputs[0].name, node.inputs[0]
        if x.name not in formats or name not in formats:
            continue
        reach = 2.0 ** (15 - formats[x.name])
        if node.op == "Mul" and len(node.inputs) == 2 and node.inputs[1] is x:
            bound = reach * reach
        elif node.op == "Gemm" and isinstance(node.inputs[1], gs.Constant) and int(node.attrs.get("transB", 0)):
            weights = np.abs(np.asarray(node.inputs[1].values, dtype=np.float64))
            bias = np.zeros(weights.shape[0])
            if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant):
                bias = np.abs(np.asarray(node.inputs[2].values, dtype=np.float64)).reshape(-1)
            bound = float(np.max(weights.sum(axis=1) * reach + bias))
        else:
            continue
        out[name] = formats[name] = min(formats[name], act_frac_bits(bound, 1.0))
    return out


def weight_frac_bits(max_abs: float, lo: int = WEIGHT_FRAC_RANGE[0], hi: int = WEIGHT_FRAC_RANGE[1]) -> int:
    """Fractional bits of a weight channel: the largest f with round(max_abs * 2^f) <= 32767,
    clamped to [lo, hi]; 15 for an all-zero channel."""
    if max_abs <= 0.0 or not math.isfinite(max_abs):
        return ZERO_FRAC if max_abs <= 0.0 else lo
    f = math.floor(math.log2(INT16_MAX / max_abs))
    while float(round_half_up(max_abs * 2.0 ** f)) > INT16_MAX:
        f -= 1
    while float(round_half_up(max_abs * 2.0 ** (f + 1))) <= INT16_MAX:
        f += 1
    return int(min(max(f, lo), hi))


def channel_max_abs(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """max |w| per index of `axis` (float64)."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    if a.ndim == 0:
        return a.reshape(1)
    return np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1).max(axis=1)


def weight_formats(values: np.ndarray, axis: int = 0) -> list[int]:
    """Per-channel fractional bits of a weight tensor along `axis` (see :func:`weight_frac_bits`)."""
    return [weight_frac_bits(float(m)) for m in channel_max_abs(values, axis)]


def limit_weight_formats(f_w: Sequence[int], f_in: int, f_acc: int, max_shift: int = DEFAULT_MAX_SHIFT) -> list[int]:
    """Lower weight formats so that f_in + f_w[c] - f_acc <= max_shift (accumulator headroom).

    f_acc is the format of the pre-activation result that the accumulator holds.
    """
    cap = max_shift + f_acc - f_in
    return [int(min(f, cap)) for f in f_w]


def is_per_channel(const_shape: Sequence[int], act_shape: Sequence[int]) -> bool:
    """Does a constant of `const_shape` broadcast onto `act_shape` ([1, C, ...]) varying only along
    the channel axis 1 (a scalar counts)?"""
    cs = list(const_shape)
    if len(cs) > len(act_shape):
        return False
    aligned = [1] * (len(act_shape) - len(cs)) + cs
    for axis, (c, a) in enumerate(zip(aligned, act_shape)):
        if axis == 1 and len(act_shape) >= 2:
            if c not in (1, a):
                return False
        elif c != 1:
            return False
    return True


def per_channel_values(values: np.ndarray, act_shape: Sequence[int]) -> np.ndarray:
    """The per-channel vector [C] of a constant that :func:`is_per_channel` accepted."""
    channels = int(act_shape[1]) if len(act_shape) >= 2 else 1
    v = np.asarray(values, dtype=np.float64)
    aligned = v.reshape([1] * (len(act_shape) - v.ndim) + list(v.shape))
    full = np.broadcast_to(aligned, [1, channels] + [1] * (len(act_shape) - 2))
    return np.ascontiguousarray(full.reshape(channels))


def _variable_inputs(node: gs.Node) -> list[gs.Variable]:
    return [t for t in node.inputs if isinstance(t, gs.Variable) and t.name]


def _constant_inputs(node: gs.Node) -> list[gs.Constant]:
    return [t for t in node.inputs if isinstance(t, gs.Constant)]


def weighted_constant(node: gs.Node) -> tuple[gs.Constant, int] | None:
    """The constant whose per-channel formats this node needs and its channel axis, or None.

    Conv: W (axis 0); Gemm: B [N, K] (axis 0, canonical transB=1); Mul: its per-channel constant
    (one format per channel of the activation).
    """
    if node.op == "Conv" and len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant):
        return node.inputs[1], 0
    if node.op == "Gemm" and len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant):
        return node.inputs[1], 0
    if node.op == "Mul":
        consts = _constant_inputs(node)
        acts = _variable_inputs(node)
        if len(consts) == 1 and len(acts) == 1 and acts[0].shape is not None:
            if is_per_channel(consts[0].values.shape, acts[0].shape):
                return consts[0], -1
    return None


def scale_input_channels(op: str, weights: np.ndarray, shifts: Sequence[int], group: int = 1) -> np.ndarray:
    """``weights`` of a Gemm (``[N, K]``) or Conv (``[Cout, Cin / group, ...]``) reading an input whose
    channel ``c`` is stored scaled by ``2^shifts[c]``: each weight of input channel ``c`` times ``2^-shifts[c]``."""
    w = np.asarray(weights, dtype=np.float64)
    factor = np.power(2.0, -np.asarray(shifts, dtype=np.float64))
    if op == "Gemm":
        return w * factor[None, :]
    cout, cin_g = w.shape[0], w.shape[1]
    cout_g = cout // group
    channel = (np.arange(cout)[:, None] // cout_g) * cin_g + np.arange(cin_g)[None, :]
    return w * factor[channel].reshape(cout, cin_g, *([1] * (w.ndim - 2)))


def feature_shift_readers(graph: gs.Graph, tensor: gs.Tensor) -> list[gs.Node] | None:
    """The Conv/Gemm nodes reading graph input ``tensor`` as their data operand, or tree ensembles
    reading it (a ``[N, features]`` input), when those are all its readers (else None: per-feature
    formats cannot be folded into the readers)."""
    if any(out is tensor for out in graph.outputs) or tensor.shape is None or len(tensor.shape) < 2:
        return None
    readers = [n for n in graph.nodes if any(i is tensor for i in n.inputs)]
    for node in readers:
        if node.op == "TreeEnsembleRegressor" and node.domain == ML_DOMAIN and len(tensor.shape) == 2 \
                and len(node.inputs) == 1:
            continue            # thresholds scale with their feature (backends/lower_trees.py)
        if node.op not in ("Conv", "Gemm") or node.inputs[0] is not tensor \
                or any(i is tensor for i in node.inputs[1:]) or not isinstance(node.inputs[1], gs.Constant):
            return None
        if node.op == "Gemm" and (len(tensor.shape) != 2 or int(node.attrs.get("transB", 0)) != 1
                                  or int(node.attrs.get("transA", 0)) != 0):
            return None
    return readers or None


def embedding_formats(graph: gs.Graph) -> dict[str, int]:
    """The format of every embedding table (passes/embedding.py) and of its Gather's output: one
    per-tensor ``f`` from the table's values (the weight rule over ``[-8, 30]``), the same for both,
    since the ``embed`` step copies rows. Rows calibration never selected are covered too."""
    formats: dict[str, int] = {}
    gathers = [node for node in graph.nodes if is_embedding(node)]
    for node in gathers:
        values = np.asarray(node.inputs[0].values)
        formats[node.inputs[0].name] = weight_frac_bits(float(np.max(np.abs(values))) if values.size else 0.0,
                                                        *ACT_FRAC_RANGE)
    for node in gathers:
        formats[node.outputs[0].name] = formats[node.inputs[0].name]
    return formats


def float_tensors(graph: gs.Graph) -> list[str]:
    """Names of the float activations: graph inputs and node outputs, in graph order."""
    names: list[str] = []
    seen: set[str] = set()
    for tensor in [*graph.inputs, *(o for n in graph.nodes for o in n.outputs)]:
        if not isinstance(tensor, gs.Variable) or not tensor.name or tensor.name in seen:
            continue
        if tensor.dtype is not None and np.dtype(tensor.dtype).kind != "f":
            continue
        seen.add(tensor.name)
        names.append(tensor.name)
    return names


@dataclass
class TensorStats:
    """Running min / max of one tensor over the calibration samples."""

    lo: float = math.inf
    hi: float = -math.inf

    def update(self, v: np.ndarray) -> None:
        if v.size:
            self.lo = min(self.lo, float(np.min(v)))
            self.hi = max(self.hi, float(np.max(v)))

    @property
    def max_abs(self) -> float:
        if self.lo > self.hi:
            return 0.0
        return max(abs(self.lo), abs(self.hi))


def collect_ranges(model: OnnxModel, feeds: Iterable[Mapping[str, np.ndarray]],
                   names: Sequence[str] | None = None) -> dict[str, TensorStats]:
    """Run onnxruntime once per feed with every float tensor as an output; min/max per tensor."""
    names = list(names) if names is not None else float_tensors(model.graph)
    proto = ort.with_outputs(model, names)
    sess = ort.session(proto, source=model.source)
    inputs = {i.name for i in model.graph.inputs}
    wanted = [n for n in names if n not in inputs]
    stats = {n: TensorStats() for n in names}
    count = 0
    for feed in feeds:
        for name in inputs & set(names):
            stats[name].update(np.asarray(feed[name]))
        values = sess.run(wanted, dict(feed))
        for name, value in zip(wanted, values):
            stats[name].update(np.asarray(value))
        count += 1
    if count == 0:
        raise DataError("no calibration samples", hint="pass a --data file with at least one sample")
    return stats


def _model_input_shapes(model: OnnxModel) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for t in model.graph.inputs:
        shape = t.shape or []
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise UnsupportedError(f"graph input '{t.name}' has a dynamic shape {list(shape)}",
                                   location=Location(file=model.source, pass_name="quantize"),
                                   hint="run normalize first (with --input-shape if needed)")
        shapes[t.name] = tuple(int(d) for d in shape)
    return shapes


def _input_dtypes(model: OnnxModel) -> dict[str, np.dtype]:
    """Graph input -> its numpy dtype (float32, or the integer type of token ids)."""
    return {t.name: np.dtype(t.dtype if t.dtype is not None else np.float32) for t in model.graph.inputs}


def data_feeds(model: OnnxModel, data: Dataset, limit: int) -> list[dict[str, np.ndarray]]:
    """Up to `limit` onnxruntime feeds from a Dataset, each reshaped to the model's input shape."""
    shapes = _model_input_shapes(model)
    missing = [n for n in shapes if n not in data.inputs]
    if missing:
        raise DataError(f"the calibration data has no array for model input(s) {', '.join(missing)}",
                        location=Location(file=data.source, pass_name="quantize"),
                        details=[f"data inputs: {', '.join(data.inputs) or 'none'}"],
                        hint="name the arrays after the model inputs (or 'x' for a single input)")
    dtypes = _input_dtypes(model)
    feeds = []
    for i in range(min(limit, len(data))):
        sample = data.inputs_for(i)
        feed = {}
        for name, shape in shapes.items():
            v = sample[name]
            if v.size != int(np.prod(shape)):
                raise DataError(f"calibration sample for '{name}' has {v.size} values, the model input "
                                f"{list(shape)} needs {int(np.prod(shape))}",
                                location=Location(file=data.source, pass_name="quantize"))
            feed[name] = v.reshape(shape).astype(dtypes[name])
        feeds.append(feed)
    return feeds


def synthetic_feeds(model: OnnxModel, count: int, lo: float, hi: float, seed: int) -> list[dict[str, np.ndarray]]:
    """Inputs for data-free calibration: all-lo, all-hi, then per sample a random level plus noise of a
    random amplitude, clipped to [lo, hi] (covers smooth/correlated inputs as well as white noise)."""
    rng = np.random.default_rng(seed)
    shapes = _model_input_shapes(model)
    vocab = token_vocab(model.graph)
    dtypes = _input_dtypes(model)
    feeds = []
    for i in range(max(count, 2)):
        feed = {}
        for name, shape in shapes.items():
            if name in vocab:       # token ids: every id once in the first samples, then uniform
                ids = (np.arange(int(np.prod(shape))) + i * int(np.prod(shape))) % vocab[name]
                feed[name] = (ids.reshape(shape) if i * int(np.prod(shape)) < vocab[name]
                              else rng.integers(0, vocab[name], shape)).astype(dtypes[name])
                continue
            if i == 0:
                v = np.full(shape, lo)
            elif i == 1:
                v = np.full(shape, hi)
            else:
                level = rng.uniform(lo, hi)
                amp = rng.uniform(0.0, 1.0) * (hi - lo)
                v = np.clip(level + amp * rng.uniform(-1.0, 1.0, size=shape), lo, hi)
            feed[name] = v.astype(np.float32)
        feeds.append(feed)
    return feeds


@dataclass(frozen=True)
class QuantizeOptions:
    """Options of `quantize` (see the module docstring for the rules).

    margin: headroom factor on the calibration max of activations (>= 1).
    max_samples: calibration samples used at most (from the "train" part of the data's split).
    max_shift: upper limit of the requant shift f_in + f_w - f_out (accumulator headroom), <= 31.
    no_data_samples / no_data_margin / input_lo / input_hi: data-free calibration (synthetic inputs
    in [input_lo, input_hi], ranges times no_data_margin).
    """

    margin: float = 1.25
    max_samples: int = 256
    max_shift: int = DEFAULT_MAX_SHIFT
    no_data_samples: int = 64
    no_data_margin: float = 2.0
    input_lo: float = -1.0
    input_hi: float = 1.0


@register
class Quantize(Pass):
    """Choose Q formats (fractional bits) for every activation and weight from calibration ranges.

    Before -> after: the same float ONNX graph; annotations ``calib-range`` and ``qformat`` on every
    activation, per-output-channel ``qformat`` lists on Conv/Gemm weights and per-channel Mul
    constants, ``qformat`` on per-element Add and Mul constants::

        Conv(x, W) -> y      =>   x: qformat=14, calib-range=[0, 1]; y: qformat=12; W: qformat=[14, 13, ...]
    """

    name = "quantize"
    options_type = QuantizeOptions
    level = "onnx"
    preserves_semantics = True
    requires = frozenset({"normal-form"})
    ensures = frozenset({"quantized"})

    @staticmethod
    def _check_representable(model: OnnxModel, stats: Mapping[str, TensorStats]) -> None:
        """Refuse a graph input or output whose calibrated values exceed the coarsest format
        (``q = ACT_FRAC_RANGE[0]``: ``|v| <= 32767 * 2^8``, about 8.4e6): it would saturate on
        every such sample, and the answer with it (a diverged SGDClassifier's scores reach 1e14).
        Tensors inside the graph may saturate (an attention mask's -1e9 is meant to), and so may an
        infinite value (log(0), a division by zero): it has no finite format, saturating is its meaning,
        and lower judges the op that makes it."""
        largest = INT16_MAX * 2.0 ** -ACT_FRAC_RANGE[0]
        for tensor in [*model.graph.inputs, *model.graph.outputs]:
            st = stats.get(tensor.name)
            if st is None or not math.isfinite(st.max_abs) or not st.max_abs > largest:
                continue
            kind = "input" if tensor in model.graph.inputs else "output"
            raise UnsupportedError(
                f"graph {kind} '{tensor.name}' reaches |{st.max_abs:.3g}| on the calibration data: beyond the "
                f"16-bit fixed point's coarsest format (|v| <= {largest:.3g}, q = {ACT_FRAC_RANGE[0]}), "
                "every such value would saturate",
                location=Location(file=model.source, pass_name="quantize"),
                hint="scale the " + ("inputs (e.g. to their units / 1000)" if kind == "input" else
                                     "model so that its outputs stay below that: its weights are likely as "
                                     "large (a linear model whose training diverged, e.g. SGDClassifier on "
                                     "unscaled features: put a StandardScaler before it)"))

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        opts: QuantizeOptions = self.options
        where = Location(file=model.source, pass_name=self.name)
        if opts.margin < 1.0 or not math.isfinite(opts.margin):
            raise DataError(f"margin={opts.margin} must be a finite number >= 1", location=where)
        if not 0 <= opts.max_shift <= 31:
            raise DataError(f"max_shift={opts.max_shift} must lie in [0, 31]", location=where)
        if opts.input_hi <= opts.input_lo:
            raise DataError(f"input_lo={opts.input_lo} must be below input_hi={opts.input_hi}",
                            location=where)
        graph = model.graph
        names = float_tensors(graph)
        data = self.context.data
        margin = opts.margin
        if data is not None:
            if not isinstance(data, Dataset):
                raise DataError(f"calibration data must be a transpiler.data.Dataset, got {type(data).__name__}",
                                location=where)
            calib = data.calibration_part(seed=self.context.seed)
            feeds = data_feeds(model, calib, opts.max_samples)
            source = "data"
        else:
            self.context.say("warning: " + NO_DATA_WARNING)
            warnings.warn(NO_DATA_WARNING, stacklevel=2)
            feeds = synthetic_feeds(model, opts.no_data_samples, opts.input_lo, opts.input_hi,
                                    self.context.seed)
            margin = opts.margin * opts.no_data_margin
            source = f"synthetic inputs in [{opts.input_lo}, {opts.input_hi}]"
        stats = collect_ranges(model, feeds, names)

        ann = model.annotations
        act_q: dict[str, int] = {}
        worst_act = 0.0
        for name in names:
            st = stats[name]
            lo, hi = (st.lo, st.hi) if st.lo <= st.hi else (0.0, 0.0)
            f = act_frac_bits(st.max_abs, margin)
            act_q[name] = f
            ann.set(name, "calib-range", [float(lo), float(hi)])
            ann.set(name, "qformat", f)
            if st.max_abs > 0:
                worst_act = max(worst_act, 2.0 ** (-f - 1) / st.max_abs)

        if data is not None:        # synthetic inputs (no --data, or a size estimate) only guess the ranges
            self._check_representable(model, stats)
        for name, f in reachable_formats(graph, act_q, ann).items():
            act_q[name] = f
            ann.set(name, "qformat", f)
        for name, f in embedding_formats(graph).items():
            if name in act_q:
                act_q[name] = f
            ann.set(name, "qformat", f)
        shifts = self._feature_shifts(graph, feeds, act_q, margin) if data is not None else {}
        for tensor in graph.inputs:
            if tensor.name in shifts:
                ann.set(tensor.name, FEATURE_SHIFT, {"axis": 1, "shifts": shifts[tensor.name]})
            else:
                ann.remove(tensor.name, FEATURE_SHIFT)
        weight_q, limited, worst_w = self._weight_formats(graph, act_q, opts.max_shift, shifts)
        for name, fmt in weight_q.items():
            ann.set(name, "qformat", fmt)
        for name, f in self._eltwise_constants(graph).items():
            ann.set(name, "qformat", f)

        histogram: dict[str, int] = {}
        for f in act_q.values():
            histogram[str(f)] = histogram.get(str(f), 0) + 1
        result_stats: dict[str, Any] = {
            "calibration": source,
            "samples": len(feeds),
            "margin": margin,
            "tensors": len(act_q),
            "weights": len(weight_q),
            "formats": dict(act_q),
            "format_histogram": dict(sorted(histogram.items(), key=lambda kv: int(kv[0]))),
            "weight_channels_limited_by_shift": limited,
            "feature_shifts": shifts,
            "max_act_rounding_error_rel": worst_act,
            "max_weight_rounding_error_rel": worst_w,
        }
        self.context.say(f"quantize: {len(act_q)} activations, {len(weight_q)} weight tensors from "
                         f"{len(feeds)} samples ({source}); worst rounding error {worst_act:.2e} "
                         f"(activations) / {worst_w:.2e} (weights) of the range")
        return PassResult(model, True, result_stats)

    @staticmethod
    def _feature_shifts(graph: gs.Graph, feeds: Sequence[Mapping[str, np.ndarray]], act_q: Mapping[str, int],
                        margin: float) -> dict[str, list[int]]:
        """Per graph input whose readers can take them, the extra fractional bits of each feature
        (channel axis 1) over the input's format, when some feature gains MIN_FEATURE_SHIFT."""
        out: dict[str, list[int]] = {}
        for tensor in graph.inputs:
            if tensor.name not in act_q or not feeds or tensor.name not in feeds[0] \
                    or feature_shift_readers(graph, tensor) is None:
                continue
            values = np.concatenate([np.asarray(f[tensor.name]) for f in feeds], axis=0)
            axes = tuple(a for a in range(values.ndim) if a != 1)
            maxes = np.abs(values).max(axis=axes)
            dense = (values != 0).mean(axis=axes) >= MIN_FEATURE_DENSITY
            q = act_q[tensor.name]
            shift = [min(max(act_frac_bits(float(m), margin) - q - FEATURE_HEADROOM, 0), MAX_FEATURE_SHIFT)
                     if m > 0 and d else 0 for m, d in zip(maxes, dense)]
            if max(shift, default=0) >= MIN_FEATURE_SHIFT:
                out[tensor.name] = shift
        return out

    @staticmethod
    def _weight_formats(graph: gs.Graph, act_q: Mapping[str, int], max_shift: int,
                        feature_shifts: Mapping[str, list[int]]) -> tuple[dict[str, list[int]], int, float]:
        """Per-channel formats of every weighted constant, limited by the shift cap (the weights of
        a reader of a feature-shifted input as :func:`scale_input_channels` makes them)."""
        formats: dict[str, list[int]] = {}
        limited = 0
        worst = 0.0
        for node in graph.nodes:
            found = weighted_constant(node)
            if found is None:
                continue
            const, axis = found
            acts = _variable_inputs(node)
            if not acts or not node.outputs:
                continue
            x, y = acts[0], node.outputs[0]
            if node.op == "Mul":
                maxes = np.abs(per_channel_values(const.values, x.shape))
            elif x.name in feature_shifts:
                scaled = scale_input_channels(node.op, const.values, feature_shifts[x.name],
                                              int(node.attrs.get("group", 1)))
                maxes = channel_max_abs(scaled, axis)
            else:
                maxes = channel_max_abs(const.values, axis)
            ideal = [weight_frac_bits(float(m)) for m in maxes]
            if x.name in act_q and y.name in act_q:
                fmt = limit_weight_formats(ideal, act_q[x.name], act_q[y.name], max_shift)
            else:
                fmt = list(ideal)
            if const.name in formats:  # a shared constant: the tightest of its uses
                fmt = [min(a, b) for a, b in zip(formats[const.name], fmt)]
            limited += sum(1 for a, b in zip(ideal, fmt) if b < a)
            formats[const.name] = fmt
            for m, f in zip(maxes, fmt):
                if m > 0:
                    worst = max(worst, 2.0 ** (-f - 1) / float(m))
        return formats, limited, worst

    @staticmethod
    def _eltwise_constants(graph: gs.Graph) -> dict[str, int]:
        """Per-tensor formats of constants added to or multiplied with an activation element-wise
        (not per channel)."""
        formats: dict[str, int] = {}
        for node in graph.nodes:
            if node.op not in ("Add", "Mul"):
                continue
            consts = _constant_inputs(node)
            acts = _variable_inputs(node)
            if len(consts) != 1 or len(acts) != 1 or acts[0].shape is None:
                continue
            if is_per_channel(consts[0].values.shape, acts[0].shape):
                continue
            m = float(np.max(np.abs(consts[0].values))) if consts[0].values.size else 0.0
            formats[consts[0].name] = weight_frac_bits(m, *ACT_FRAC_RANGE)
        return formats

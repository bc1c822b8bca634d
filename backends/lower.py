"""The `lower` pass: a normalised, quantised ONNX model -> a LIR Program (docs/lir.md).

Input: the normal form (docs/normal-form.md) with the annotations of `quantize` (``qformat`` on
every activation, per-channel ``qformat`` lists on weights). Output: a
:class:`transpiler.lir.ir.Program` whose steps compute, in fixed point, what the ONNX graph computes
in float. Every rule lives in one handler below; the numbers follow docs/lir.md.

Layout: the batch axis (always 1) is dropped; ``[1, C, H, W] -> [C, H, W]``, a 1-D feature map
``[1, C, L] -> [C, 1, L]`` (1-D convolutions and pools become 2-D ones with ``H = 1``), a vector
``[1, N] -> [N]``. Flatten / Reshape produce an alias buffer (same bytes, other shape), no step.

Rules (node -> step):

- ``Conv`` [+ per-channel ``Add`` of a constant] [+ ``Relu``/``Clip``/``LeakyRelu``] -> ``conv``;
  the Add and the activation are fused when the tensor before them has that one consumer and is not
  a graph output. ``Gemm`` [+ Add] [+ act] -> ``fc``. ``Mul`` by a per-channel constant [+ Add]
  [+ act] -> depthwise 1x1 ``conv`` (``group = C``, weight = the scale). A per-channel constant
  ``Add`` alone -> depthwise 1x1 ``conv`` with weight 1 and the constant as bias; a per-element
  constant ``Add`` -> ``add`` with an i16 constant buffer. ``Add`` of two activations [+ act] ->
  ``add``; ``Mul`` of two activations of one shape [+ act] -> ``mul``. The canonical ``ai.onnx.ml``
  ``TreeEnsembleRegressor`` of `tree-ensembles` -> ``trees`` + ``tree_sum`` (backends/lower_trees.py). ``LayerNormalization`` over
  the last axis [+ act] -> ``layernorm``. ``MatMul`` of two activations ``[1, M, K] x [1, K, N]``
  [+ act] -> ``matmul``; a ``Softmax`` over the last axis inside the network -> ``softmax``. A nearest ``Resize`` by integer factors -> ``upsample``; the zero insertion
  ``ConvTranspose`` of a transposed convolution -> ``upsample`` with ``zeros=1``. A ``Gather``/``Slice`` of one
  time step -> ``slice``; an embedding ``Gather(table, ids, axis=0)`` -> ``embed`` (the token-id
  graph input is a ``u16`` buffer with no Q format, the table an i16 constant in its own format). ``MaxPool``/``AveragePool`` -> ``maxpool``/``avgpool`` (the output shape carries
  ceil_mode); ``GlobalAveragePool`` -> ``avgpool`` with kernel ``[H, W]``. A lone activation ->
  ``act``. ``Concat`` (axis 1) -> ``concat``. A final ``Softmax``, ``LogSoftmax`` or ``Sigmoid``
  is dropped (each keeps the argmax): the program output is the tensor before it, the logits
  (``meta["scores"]`` says so; ``meta["softmax"]`` maps the logits of a dropped Softmax to its
  output), and for classifiers (one dropped final activation or the ``classifier-tail``
  annotation) an ``argmax`` step writes the output port ``"class"``; it reads the graph output a
  ``class-scores`` annotation names instead, when there is one (that output is then no port).
- Q formats: a buffer takes the ``qformat`` of its ONNX tensor, except that the outputs of
  ``maxpool``/``avgpool``/``act``/aliases keep their input's format (the ops do not rescale), and a
  fused LeakyRelu output takes the coarser of the pre- and post-activation formats (the negative
  pre-activation range must fit before it is scaled by alpha).
- Dense or sparse: the weights of every ``Conv``/``Gemm`` are stored dense (``conv``/``fc``) or
  compressed (``conv_sparse``/``fc_sparse``: the non-zero quantised weights as ``<W>_values``,
  ``<W>_deltas``/``<W>_offsets``, ``<W>_rowptr``/``<W>_chanptr``), by the option ``sparse``
  (backends/lower_sparse.py: bytes, predicted cycles, the FRAM budget); both compute the same bits.
- Weights: ``w_q[c] = sat16(round(w[c] * 2^f_w[c]))``; ``f_w`` is the weight's annotation (or
  computed as in `quantize`), lowered so that ``shift[c] = f_in + f_w[c] - f_out`` stays
  ``<= max_shift`` with ``f_out`` the format of the pre-activation result (accumulator headroom, see
  passes/quantize.py) and ``<= 31``; when a shift would fall below ``-15`` (tiny weights feeding a
  very fine output format) the output format is made coarser to ``f_in + min(f_w) + 15`` instead,
  which loses nothing: the accumulator has no finer bits to give. Biases:
  ``b_q[c] = sat32(round(b[c] * 2^(f_in + f_w[c])))``, a fused per-channel Add folded in.
- ``add``: the inputs are aligned at ``q_c = max(q_a, q_b)`` (left shifts ``q_c - q_a``,
  ``q_c - q_b``, at most 15) and requantised by ``q_c - q_out``. ``mul``: ``shift = q_a + q_b -
  q_out`` (``q_out`` made coarser or finer only to keep it in [-15, 31]). ``concat``: ``shifts[i] = q_i -
  q_out``. Clip bounds: ``sat16(round(v * 2^f_out))``. Leaky slope: ``round(alpha * 2^15)``
  (``0 <= alpha < 1``).

- gNet (an ``attach-gnet`` annotation): the exits' pooling nodes lower as usual; each exit's
  features go into the feature vector with a ``gnet_feature`` step, the shared head becomes one
  on-demand ``gnet_exit`` step after everything else, and the ``gnet_exit_k`` outputs are no ports
  (backends/lower_gnet.py).

Names: buffers are the ONNX tensor / initializer names reduced to ``[A-Za-z0-9_]`` and made unique;
steps are named after their main ONNX node; ``origin`` lists the ONNX nodes of the step (fused ones
included), taken from the ``origin`` annotations of `normalize` where present. Every node that cannot
be lowered ends up in one :class:`UnsupportedError`.

Before -> after::

    Conv(x, W, B) -> Relu -> MaxPool -> Flatten -> Gemm -> Softmax
    =>
    step conv "conv1" (%x, %W, %B) -> (%relu_out) {act="relu", shift=[...], ...}
    step maxpool "pool" (%relu_out) -> (%pool_out) {...}
    buffer %flat : i16[N] alias %pool_out
    step fc "fc" (%flat, %fc_W, %fc_B) -> (%logits) {act="none", shift=[...]}
    step argmax "argmax" (%logits) -> (%class)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx_graphsurgeon as gs

from backends import lower_gnet, lower_lut, lower_sparse, lower_trees
from backends.lower_softmax import SOFTMAX_OUT_Q, exp_table
from passes.elementwise import Region, find_regions
from passes.conv_transpose import is_zero_insertion
from passes.embedding import embedding_problems, is_embedding, is_token_input
from passes.resize_nearest import upsample_factors
from passes.check_supported import layer_norm_problems, matmul_problems, softmax_problems
from passes.tree_ensembles import ML_DOMAIN, canonical_scores, is_canonical as is_canonical_trees, read_ensemble
from passes.normalize_util import contiguous_slice
from passes.quantize import (DEFAULT_MAX_SHIFT, FEATURE_SHIFT, is_per_channel, limit_weight_formats,
                             per_channel_values, round_half_up, scale_input_channels, weight_frac_bits)
from transpiler.annotations import Annotations
from transpiler.errors import Location, PassError, UnsupportedError
from transpiler.lir.ir import Buffer, Port, Program, Step
from transpiler.lir.kernels import LAYERNORM_EPS_MAX, LAYERNORM_Q, SOFTMAX_TABLE_Q
from transpiler.lir.qio import FEATURE_SHIFTS_META, ONNX_SHAPES_META, dequantize_outputs, quantize_inputs
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

__all__ = ["Lower", "LowerOptions", "lower_model", "quantize_inputs", "dequantize_outputs",
           "sanitize_name"]

SHIFT_MIN, SHIFT_MAX = -15, 31
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
ACTIVATIONS = ("Relu", "Clip", "LeakyRelu")
CLASS_PORT = "class"


def sanitize_name(name: str) -> str:
    """An ONNX name reduced to [A-Za-z0-9_] (runs of other characters -> one '_'), never empty and
    never starting with a digit."""
    s = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    s = re.sub(r"__+", "_", s)
    if not s or s[0].isdigit():
        s = "t_" + s if s else "t"
    return s


@dataclass(frozen=True)
class LowerOptions:
    """Options of `lower`.

    max_shift: the accumulator-headroom limit of the requant shift (see passes/quantize.py); keep
    it equal to quantize's.
    argmax: append the ``argmax`` step (port "class") for classifiers.
    sparse: weight storage of every Conv and Gemm: "auto" (sparse where it saves bytes and is at
    most ``sparse_max_slowdown`` times slower, or saves bytes when the dense weights do not fit the
    FRAM budget), "never" or "always" (backends/lower_sparse.py).
    """

    max_shift: int = DEFAULT_MAX_SHIFT
    argmax: bool = True
    sparse: Literal["auto", "never", "always"] = "auto"
    sparse_max_slowdown: float = 1.5


class _Skip(Exception):
    """A node cannot be lowered because one of its inputs came from a node that could not."""


class _Unsupported(Exception):
    """A node cannot be lowered; the message says why."""


@dataclass
class _Chain:
    """A main node plus what is fused into it: a per-channel constant Add and an activation."""

    node: gs.Node
    bias_add: gs.Node | None = None
    bias_const: gs.Constant | None = None
    act: gs.Node | None = None

    @property
    def nodes(self) -> list[gs.Node]:
        return [n for n in (self.node, self.bias_add, self.act) if n is not None]

    @property
    def pre_act(self) -> gs.Variable:
        """The tensor the accumulator holds (before the activation)."""
        return (self.bias_add or self.node).outputs[0]

    @property
    def output(self) -> gs.Variable:
        return (self.act or self.bias_add or self.node).outputs[0]


@dataclass
class _Lowerer:
    """The state of one lowering: the program so far and the ONNX tensor -> buffer map."""

    model: OnnxModel
    options: LowerOptions
    program: Program = field(init=False)
    graph: gs.Graph = field(init=False)
    ann: Annotations = field(init=False)
    graph_outputs: set[str] = field(init=False)
    buf_of: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    consumers: dict[str, list[gs.Node]] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    finals: list[tuple[gs.Node, str, str]] = field(default_factory=list)  # dropped (node, logits, probs)
    stats: dict[str, int] = field(default_factory=dict)
    fram_bytes: int | None = None
    storage: list[dict[str, Any]] = field(default_factory=list)  # dense/sparse per Conv/Gemm
    skip_outputs: set[str] = field(default_factory=set)          # graph outputs that are no ports (gNet)
    fram_tight: bool = field(init=False, default=False)
    regions: dict[int, Region] = field(default_factory=dict)    # id(output node) -> its region
    claimed: set[int] = field(default_factory=set)              # id(node) of every region node
    lut_tables: dict[tuple[bytes, int], str] = field(default_factory=dict)
    const_of: dict[tuple[str, str, tuple[int, ...], str], str] = field(default_factory=dict)  # _const's reuse
    luts: list[dict[str, Any]] = field(default_factory=list)    # one record per lut step

    def __post_init__(self) -> None:
        self.graph = self.model.graph
        self.ann = self.model.annotations
        self.program = Program(name=self.model.name)
        self.graph_outputs = {t.name for t in self.graph.outputs}
        for node in self.graph.nodes:
            for t in node.inputs:
                if isinstance(t, gs.Variable) and t.name:
                    self.consumers.setdefault(t.name, []).append(node)
        stored = {t.name: 2 * int(np.asarray(t.values).size) if k == 1 else 4 * int(np.asarray(t.values).size)
                  for node in self.graph.nodes if node.op in ("Conv", "Gemm")
                  for k, t in enumerate(node.inputs[1:3], start=1) if isinstance(t, gs.Constant)}
        dense = sum(stored.values())          # a constant read by many nodes is stored once
        self.fram_tight = lower_sparse.fram_is_tight(dense, self.fram_bytes)
        for region in find_regions(self.graph):
            self.regions[id(region.output.inputs[0])] = region
            self.claimed.update(id(n) for n in region.nodes)

    # -- entry ---------------------------------------------------------------------------------

    def run(self) -> Program:
        for tensor in self.graph.inputs:
            self._graph_input(tensor)
        gnet = lower_gnet.GnetLowering.attach(self)   # None without an attached gNet
        for node in _toposort(self.graph):
            if id(node) in self.done:
                continue
            try:
                self._lower_node(node)
            except _Skip:
                self._placeholder(node)
            except _Unsupported as exc:
                self.problems.append(f"{node.name} ({node.op}{_opset_note(node)}): {exc}; inputs "
                                     f"{_input_shapes(node)}{self._origin_note(node)}")
                self._placeholder(node)
            if gnet is not None and not self.problems:
                gnet.after_node()
        if self.problems:
            raise UnsupportedError(
                f"{len(self.problems)} node(s) cannot be lowered to the LIR",
                location=Location(file=self.model.source, pass_name="lower"),
                details=self.problems,
                hint="rewrite these nodes in the exporting framework or run normalize first; "
                     "docs/normal-form.md lists what lower accepts")
        self._ports()
        if gnet is not None:
            gnet.finish()
        self._meta()
        return self.program

    # -- naming and buffers --------------------------------------------------------------------

    def _name(self, base: str) -> str:
        s = sanitize_name(base)
        name, k = s, 2
        while name in self.used:
            name, k = f"{s}_{k}", k + 1
        self.used.add(name)
        return name

    def _q(self, tensor: str) -> int:
        q = self.ann.get(tensor, "qformat")
        if q is None:
            raise PassError(f"tensor '{tensor}' has no qformat annotation",
                            location=Location(file=self.model.source, pass_name="lower"),
                            hint="run quantize before lower")
        if not isinstance(q, int):
            raise PassError(f"tensor '{tensor}' has a per-channel qformat {q}; activations need one int",
                            location=Location(file=self.model.source, pass_name="lower"),
                            hint="re-run quantize")
        return q

    def _storage(self, tensor: gs.Variable, q: int, step_shape: tuple[int, ...] | None = None) -> str:
        """Create the buffer a step writes for `tensor` (shape `step_shape`, default its LIR shape)
        and map the tensor to it (or to an alias of it in the tensor's own LIR shape)."""
        natural = _lir_shape(tensor)
        shape = step_shape if step_shape is not None else natural
        name = self._name(tensor.name)
        self.program.add(Buffer(name=name, dtype="i16", shape=shape, q=q))
        self.buf_of[tensor.name] = name if shape == natural else self._view(name, natural)
        return name

    def _view(self, buf: str, shape: tuple[int, ...]) -> str:
        """`buf` read as `shape` (an alias of its storage; `buf` itself if the shape matches)."""
        b = self.program.buffers[buf]
        if b.shape == shape:
            return buf
        root = self.program.storage_of(buf)
        if _size(shape) != root.size:
            raise _Unsupported(f"cannot view %{buf} {list(b.shape)} as {list(shape)}")
        for other in self.program.buffers.values():
            if other.alias == root.name and other.shape == shape:
                return other.name
        name = self._name(f"{root.name}_{'x'.join(map(str, shape))}")
        self.program.add(Buffer(name=name, dtype="i16", shape=shape, q=root.q, alias=root.name))
        return name

    def _input(self, tensor: Any, shape: tuple[int, ...] | None = None) -> str:
        """The buffer holding activation `tensor` (viewed as `shape` if given)."""
        if isinstance(tensor, gs.Constant):
            raise _Unsupported(f"input '{tensor.name}' is a constant where an activation is expected")
        if tensor.name not in self.buf_of:
            raise _Skip()
        buf = self.buf_of[tensor.name]
        return buf if shape is None else self._view(buf, shape)

    def _qbuf(self, buf: str) -> int:
        q = self.program.buffers[buf].q
        assert isinstance(q, int)
        return q

    def _const(self, base: str, data: np.ndarray, dtype: str, q: int | list[int] | None) -> str:
        """A constant buffer; one with the same dtype, format, shape and bytes is reused (an
        initializer that many nodes read, such as a recurrent layer's weights in every time step,
        is stored once)."""
        data = np.ascontiguousarray(data)
        key = (dtype, json.dumps(q), tuple(int(d) for d in data.shape), hashlib.sha256(data.tobytes()).hexdigest())
        if key in self.const_of:
            self.stats["shared_constants"] = self.stats.get("shared_constants", 0) + 1
            return self.const_of[key]
        name = self._name(base)
        self.program.add(Buffer(name=name, dtype=dtype, shape=key[2], q=q, data=data))
        self.const_of[key] = name
        return name

    def _graph_input(self, tensor: gs.Variable) -> None:
        if is_token_input(tensor):      # token ids: a u16 buffer [T] with no Q format (embed reads it)
            try:
                shape = _lir_shape(tensor)
            except _Unsupported as exc:
                self.problems.append(f"graph input '{tensor.name}': {exc}")
                return
            name = self._name(tensor.name)
            self.program.add(Buffer(name=name, dtype="u16", shape=shape, q=None))
            self.buf_of[tensor.name] = name
            return
        try:
            self._storage(tensor, self._q(tensor.name))
        except _Unsupported as exc:
            self.problems.append(f"graph input '{tensor.name}': {exc}")

    def _placeholder(self, node: gs.Node) -> None:
        """Mark outputs of a node that was not lowered so dependants are skipped, not reported."""
        for t in node.outputs:
            self.buf_of.pop(t.name, None)

    def _origin(self, nodes: Sequence[gs.Node]) -> list[str]:
        out: list[str] = []
        for n in nodes:
            for name in self.ann.get(n.name, "origin") or [n.name]:
                if name not in out:
                    out.append(str(name))
        return out

    def _origin_note(self, node: gs.Node) -> str:
        origin = self.ann.get(node.name, "origin")
        return f"; from {', '.join(origin)}" if origin and origin != [node.name] else ""

    def _step(self, op: str, chain_nodes: Sequence[gs.Node], inputs: list[str], output: str,
              attrs: dict[str, Any]) -> None:
        main = chain_nodes[0]
        self.program.steps.append(Step(op=op, name=main.name, inputs=inputs, outputs=[output],
                                       attrs=attrs, origin=self._origin(chain_nodes)))
        for n in chain_nodes:
            self.done.add(id(n))
        self.stats[op] = self.stats.get(op, 0) + 1

    # -- fusion --------------------------------------------------------------------------------

    def _sole_consumer(self, tensor: gs.Variable) -> gs.Node | None:
        users = self.consumers.get(tensor.name, [])
        if len(users) != 1 or tensor.name in self.graph_outputs:
            return None
        return users[0]

    def _chain(self, node: gs.Node, allow_bias: bool) -> _Chain:
        chain = _Chain(node)
        out = node.outputs[0]
        nxt = self._sole_consumer(out)
        if nxt is not None and id(nxt) in self.claimed:
            return chain
        if allow_bias and nxt is not None and nxt.op == "Add":
            const = _per_channel_const_operand(nxt, out)
            if const is not None:
                chain.bias_add, chain.bias_const = nxt, const
                out = nxt.outputs[0]
                nxt = self._sole_consumer(out)
        if nxt is not None and nxt.op in ACTIVATIONS and _act_fusable(nxt) and id(nxt) not in self.claimed:
            chain.act = nxt
        return chain

    def _out_format(self, chain: _Chain) -> int:
        f = self._q(chain.output.name)
        if chain.act is not None and chain.act.op == "LeakyRelu":
            f = min(f, self._q(chain.pre_act.name))
        return f

    def _act_attrs(self, node: gs.Node | None, f_out: int) -> dict[str, Any]:
        """The `act` attributes of an activation node (None -> act="none")."""
        if node is None:
            return {"act": "none"}
        if node.op == "Relu":
            return {"act": "relu"}
        if node.op == "Clip":
            lo, hi = _clip_bounds(node)
            q_lo, q_hi = _q16(lo, f_out, -32768), _q16(hi, f_out, 32767)
            # ONNX Clip with min > max outputs max everywhere; min(max(y, hi), hi) does the same.
            return {"act": "clip", "lo": min(q_lo, q_hi), "hi": q_hi}
        if node.op == "LeakyRelu":
            alpha = float(node.attrs.get("alpha", 0.01))
            a = int(round_half_up(alpha * 32768.0))
            if not 0.0 <= alpha < 1.0 or a > 32767:
                raise _Unsupported(f"LeakyRelu alpha={alpha} is outside [0, 1) (Q15 slope)")
            return {"act": "leaky", "alpha": a}
        raise _Unsupported(f"{node.op} is not an activation")

    # -- weighted steps (conv, fc, depthwise) ----------------------------------------------------

    def _weight_formats(self, const_name: str | None, maxes: np.ndarray, f_in: int, f_acc: int,
                        f_out: int, bias: np.ndarray | None = None) -> tuple[list[int], int, list[int]]:
        """Per-channel weight formats, the (possibly coarser) output format and the shifts. With ``bias``
        (per channel), a channel's weight format is lowered until its bias fits the int32 accumulator
        format ``f_in + f_w`` (a bias of 124 after a Tanh (Q15) beside Q10 weights needs Q<=23, not 25:
        it saturated to 64 before)."""
        ann = self.ann.get(const_name, "qformat") if const_name else None
        if isinstance(ann, list) and len(ann) == len(maxes):
            f_w = [int(f) for f in ann]
        else:
            f_w = [weight_frac_bits(float(m)) for m in maxes]
        f_w = limit_weight_formats(f_w, f_in, f_acc, self.options.max_shift)
        if bias is not None:
            for c, b in enumerate(np.abs(bias.astype(np.float64)).reshape(-1)):
                while b * 2.0 ** (f_in + f_w[c]) > INT32_MAX:
                    f_w[c] -= 1
        f_w = [min(f, SHIFT_MAX + f_out - f_in) for f in f_w]
        if f_in + min(f_w) - f_out < SHIFT_MIN:
            f_out = f_in + min(f_w) - SHIFT_MIN
            self.stats["coarser_outputs"] = self.stats.get("coarser_outputs", 0) + 1
            f_w = [min(f, SHIFT_MAX + f_out - f_in) for f in f_w]
        shifts = [f_in + f - f_out for f in f_w]
        assert all(SHIFT_MIN <= s <= SHIFT_MAX for s in shifts), shifts
        return f_w, f_out, shifts

    def _affine(self, chain: _Chain, x_buf: str, weights: np.ndarray, bias: np.ndarray,
                weight_name: str | None, bias_name: str, op: str,
                step_shape: tuple[int, ...] | None, attrs: dict[str, Any],
                may_be_sparse: bool = False) -> None:
        """Quantise weights/bias of a conv or fc step (weights [Cout, ...]) and emit it; for an ONNX
        Conv or Gemm (``may_be_sparse``) as conv_sparse / fc_sparse when the ``sparse`` option
        chooses so (backends/lower_sparse.py)."""
        f_in = self._qbuf(x_buf)
        f_acc = self._q(chain.pre_act.name)
        maxes = np.abs(weights.astype(np.float64)).reshape(weights.shape[0], -1).max(axis=1)
        f_w, f_out, shifts = self._weight_formats(weight_name, maxes, f_in, f_acc,
                                                  self._out_format(chain), bias)
        scale = np.power(2.0, np.array(f_w, dtype=np.float64)).reshape((-1,) + (1,) * (weights.ndim - 1))
        w_r = round_half_up(weights.astype(np.float64) * scale)
        clipped = int(np.count_nonzero((w_r < -32768) | (w_r > 32767)))
        if clipped:
            self.stats["saturated_weights"] = self.stats.get("saturated_weights", 0) + clipped
        w_q = np.clip(w_r, -32768, 32767).astype(np.int16)
        b_scale = np.power(2.0, np.array(f_w, dtype=np.float64) + f_in)
        b_q = np.clip(round_half_up(bias.astype(np.float64) * b_scale), INT32_MIN, INT32_MAX).astype(np.int32)
        attrs = {**attrs, "shift": shifts, **self._act_attrs(chain.act, f_out)}
        base = weight_name or f"{chain.node.name}_w"
        choice = None
        if may_be_sparse:
            x_shape = self.program.buffers[x_buf].shape
            y_shape = step_shape if step_shape is not None else (int(w_q.shape[0]),)
            choice = lower_sparse.choose(self.options.sparse, self.options.sparse_max_slowdown,
                                         self.fram_tight, chain.node.name, op, w_q, x_shape, y_shape, attrs)
            self.storage.append(choice.record)
        if choice is not None and choice.sparse:
            sop, arrays, attrs, roles = lower_sparse.sparse_step(op, w_q, attrs,
                                                                 self.program.buffers[x_buf].shape)
            inputs = [x_buf]
            for role in roles:
                dtype, q = ("i16", list(f_w)) if role == "values" else ("u16", None)
                inputs.append(self._const(f"{base}_{role}", arrays[role], dtype, q))
            op = sop
        else:
            inputs = [x_buf, self._const(base, w_q, "i16", list(f_w))]
        inputs.append(self._const(bias_name, b_q, "i32", None))
        y_buf = self._storage(chain.output, f_out, step_shape)
        self._step(op, chain.nodes, inputs, y_buf, attrs)

    def _fold_bias(self, chain: _Chain, bias: np.ndarray, act_shape: Sequence[int]) -> tuple[np.ndarray, str]:
        """Add a fused per-channel constant to `bias`; the bias buffer's base name."""
        if chain.bias_const is None:
            return bias, f"{chain.node.name}_b"
        extra = per_channel_values(np.asarray(chain.bias_const.values), act_shape)
        return bias + extra, chain.bias_const.name

    # -- handlers --------------------------------------------------------------------------------

    def _lower_node(self, node: gs.Node) -> None:
        if id(node) in self.regions:
            self._region(self.regions[id(node)])
            return
        if id(node) in self.claimed:      # inside a region: computed by the region's lut step
            self.done.add(id(node))
            return
        if node.domain == ML_DOMAIN and is_canonical_trees(node):
            self._trees(node)
            return
        handler = getattr(self, f"_op_{node.op}", None)
        if node.domain not in ("", "ai.onnx", None) or handler is None:
            raise _Unsupported("op not in the normal form that lower accepts")
        for t in node.outputs:
            if t.dtype is not None and np.dtype(t.dtype).kind != "f":
                raise _Unsupported(f"output '{t.name}' is {np.dtype(t.dtype).name}, not float")
        handler(node)

    def _op_Conv(self, node: gs.Node) -> None:
        x = node.inputs[0]
        if len(node.inputs) < 2 or not isinstance(node.inputs[1], gs.Constant):
            raise _Unsupported("the weight W is not a constant")
        w = np.asarray(node.inputs[1].values, dtype=np.float64)
        rank = w.ndim - 2
        if rank not in (1, 2):
            raise _Unsupported(f"{rank}-D convolution (only 1-D and 2-D)")
        b_in = node.inputs[2] if len(node.inputs) > 2 else None
        if b_in is not None and not isinstance(b_in, gs.Constant) and b_in.name:
            raise _Unsupported("the bias B is not a constant")
        bias = (np.asarray(b_in.values, dtype=np.float64).reshape(-1) if isinstance(b_in, gs.Constant)
                else np.zeros(w.shape[0]))
        if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
            raise _Unsupported(f"auto_pad={node.attrs.get('auto_pad')} (normalize resolves it to pads)")
        kernel = [int(k) for k in node.attrs.get("kernel_shape", w.shape[2:])]
        strides = [int(s) for s in node.attrs.get("strides", [1] * rank)]
        dil = [int(d) for d in node.attrs.get("dilations", [1] * rank)]
        pads = [int(p) for p in node.attrs.get("pads", [0] * 2 * rank)]
        group = int(node.attrs.get("group", 1))
        w = self._feature_scaled(node, w, group)
        if list(w.shape[2:]) != kernel:
            raise _Unsupported(f"kernel_shape {kernel} does not match W {list(w.shape)}")
        if rank == 1:
            w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
            strides, dil, pads = [1, strides[0]], [1, dil[0]], [0, pads[0], 0, pads[1]]
        chain = self._chain(node, allow_bias=True)
        bias, bias_name = self._fold_bias(chain, bias, node.outputs[0].shape)
        if b_in is not None and isinstance(b_in, gs.Constant) and chain.bias_const is None:
            bias_name = b_in.name
        x_buf = self._input(x, _as_3d(_lir_shape(x)))
        out_shape = _as_3d(_lir_shape(node.outputs[0]))
        self._affine(chain, x_buf, w, bias, node.inputs[1].name, bias_name, "conv", out_shape,
                     {"stride": strides, "pads": pads, "dilation": dil, "group": group},
                     may_be_sparse=True)

    def _op_Gemm(self, node: gs.Node) -> None:
        a = node.attrs
        if (float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0
                or int(a.get("transA", 0)) != 0 or int(a.get("transB", 0)) != 1):
            raise _Unsupported("Gemm is not canonical (alpha=1, beta=1, transA=0, transB=1)")
        if len(node.inputs) < 2 or not isinstance(node.inputs[1], gs.Constant):
            raise _Unsupported("B is not a constant")
        w = self._feature_scaled(node, np.asarray(node.inputs[1].values, dtype=np.float64))
        if w.ndim != 2:
            raise _Unsupported(f"B has shape {list(w.shape)}, expected [N, K]")
        n_out = w.shape[0]
        c_in = node.inputs[2] if len(node.inputs) > 2 else None
        if c_in is not None and not isinstance(c_in, gs.Constant) and c_in.name:
            raise _Unsupported("C is not a constant")
        bias = (per_channel_values(np.asarray(c_in.values), [1, n_out])
                if isinstance(c_in, gs.Constant) else np.zeros(n_out))
        if isinstance(c_in, gs.Constant) and not is_per_channel(c_in.values.shape, [1, n_out]):
            raise _Unsupported(f"C has shape {list(c_in.values.shape)}, expected [N]")
        chain = self._chain(node, allow_bias=True)
        bias, bias_name = self._fold_bias(chain, bias, [1, n_out])
        if isinstance(c_in, gs.Constant) and chain.bias_const is None:
            bias_name = c_in.name
        x_buf = self._input(node.inputs[0], (w.shape[1],))
        self._affine(chain, x_buf, w, bias, node.inputs[1].name, bias_name, "fc", None, {},
                     may_be_sparse=True)

    def _feature_shift(self, tensor: str) -> list[int] | None:
        """The per-feature extra bits quantize gave graph input ``tensor`` (passes/quantize.py), if any."""
        record = self.ann.get(tensor, FEATURE_SHIFT)
        return [int(v) for v in record["shifts"]] if isinstance(record, dict) else None

    def _feature_scaled(self, node: gs.Node, w: np.ndarray, group: int = 1) -> np.ndarray:
        """The weights of a Conv/Gemm reading a feature-shifted input, for its scaled features."""
        shifts = self._feature_shift(node.inputs[0].name)
        return w if shifts is None else scale_input_channels(node.op, w, shifts, group)

    def _depthwise(self, chain: _Chain, x: gs.Variable, scale: np.ndarray, scale_name: str | None,
                   bias: np.ndarray, bias_name: str) -> None:
        shape3 = _as_3d(_lir_shape(x))
        x_buf = self._input(x, shape3)
        c = shape3[0]
        w = scale.reshape(c, 1, 1, 1)
        self._affine(chain, x_buf, w, bias, scale_name, bias_name, "conv", shape3,
                     {"stride": [1, 1], "pads": [0, 0, 0, 0], "dilation": [1, 1], "group": c})

    def _op_Mul(self, node: gs.Node) -> None:
        consts = [t for t in node.inputs if isinstance(t, gs.Constant)]
        acts = [t for t in node.inputs if isinstance(t, gs.Variable)]
        if len(acts) == 2:
            self._mul_two(node, acts[0], acts[1])
            return
        if len(consts) != 1 or len(acts) != 1:
            raise _Unsupported("Mul needs one activation and one per-channel constant")
        x, k = acts[0], consts[0]
        if not is_per_channel(k.values.shape, x.shape):
            self._mul_two(node, x, None, const_buf=self._map_constant(k, x))
            return
        scale = per_channel_values(np.asarray(k.values), x.shape)
        chain = self._chain(node, allow_bias=True)
        bias, bias_name = self._fold_bias(chain, np.zeros_like(scale), x.shape)
        self._depthwise(chain, x, scale, k.name, bias, bias_name)

    def _op_Add(self, node: gs.Node) -> None:
        consts = [t for t in node.inputs if isinstance(t, gs.Constant)]
        acts = [t for t in node.inputs if isinstance(t, gs.Variable)]
        if len(acts) == 2:
            self._add_two(node, acts[0], acts[1])
            return
        if len(consts) != 1 or len(acts) != 1:
            raise _Unsupported("Add of two constants (normalize folds these)")
        x, k = acts[0], consts[0]
        if is_per_channel(k.values.shape, x.shape):
            # Add alone: depthwise 1x1 conv with unit weight and the constant as bias.
            chain = self._chain(node, allow_bias=False)
            bias = per_channel_values(np.asarray(k.values), x.shape)
            self._depthwise(chain, x, np.ones_like(bias), None, bias, k.name)
            return
        # the map needs no finer format than 15 bits past x's: the add aligns both operands to the finer
        # one, and a constant far smaller than x (timm's class token, initialised at 1e-6) adds below it
        self._add_two(node, x, None, const_buf=self._map_constant(k, x, max_frac=self._qbuf(self._input(x)) + 15))

    def _map_constant(self, k: gs.Constant, x: gs.Variable, max_frac: int | None = None) -> str:
        """A constant that is not per-channel, broadcast to the activation ``x``'s shape, as an i16
        FRAM buffer in its quantize format (a positional embedding added, a mask multiplied in), at
        most ``max_frac`` fractional bits."""
        values = np.asarray(k.values, dtype=np.float64)
        try:
            full = np.broadcast_to(values, x.shape)
        except ValueError:
            raise _Unsupported(f"the constant {list(values.shape)} does not broadcast to {list(x.shape)}") from None
        if np.broadcast_shapes(values.shape, tuple(x.shape)) != tuple(x.shape):
            raise _Unsupported(f"the constant {list(values.shape)} enlarges the activation {list(x.shape)}")
        f = self.ann.get(k.name, "qformat")
        if not isinstance(f, int):
            f = weight_frac_bits(float(np.max(np.abs(values))) if values.size else 0.0, -8, 30)
        if max_frac is not None:
            f = min(f, max_frac)
        data = np.clip(round_half_up(full.reshape(_lir_shape(x)) * 2.0 ** f), -32768, 32767).astype(np.int16)
        return self._const(k.name, data, "i16", int(f))

    def _add_two(self, node: gs.Node, a: gs.Variable, b: gs.Variable | None, const_buf: str | None = None) -> None:
        if b is not None and tuple(a.shape) != tuple(b.shape):
            raise _Unsupported(f"Add with broadcasting {list(a.shape)} + {list(b.shape)}")
        a_buf = self._input(a)
        b_buf = const_buf if const_buf is not None else self._input(b)
        qa, qb = self._qbuf(a_buf), self._qbuf(b_buf)
        qc = max(qa, qb)
        if qc - min(qa, qb) > 15:
            raise _Unsupported(f"the operands' Q formats differ by {qc - min(qa, qb)} bits (> 15): "
                               f"their calibration ranges differ by more than 2^15 (a residual branch scaled "
                               f"nearly to zero, such as an untrained layer scale of 1e-6 in timm's ConvNeXt or "
                               f"MambaOut blocks, adds less than the output's Q15 resolution: train the model or "
                               f"set the scale before exporting)")
        chain = self._chain(node, allow_bias=False)
        f_out = self._out_format(chain)
        f_out = min(max(f_out, qc - SHIFT_MAX), qc - SHIFT_MIN)
        y_buf = self._storage(chain.output, f_out)
        attrs = {"shift_a": qc - qa, "shift_b": qc - qb, "shift": qc - f_out,
                 **self._act_attrs(chain.act, f_out)}
        self._step("add", chain.nodes, [a_buf, b_buf], y_buf, attrs)

    def _mul_two(self, node: gs.Node, a: gs.Variable, b: gs.Variable | None, const_buf: str | None = None) -> None:
        """Mul of two activations of one shape, or of an activation and a constant map buffer
        (``const_buf``, ``b`` None) [+ act] -> ``mul``: the int32 product has the format
        ``q_a + q_b``; the output keeps its calibrated format unless the shift would leave
        [-15, 31]."""
        if b is not None and tuple(a.shape) != tuple(b.shape):
            raise _Unsupported(f"Mul with broadcasting {list(a.shape)} * {list(b.shape)}")
        a_buf = self._input(a)
        b_buf = const_buf if const_buf is not None else self._input(b)
        qp = self._qbuf(a_buf) + self._qbuf(b_buf)
        chain = self._chain(node, allow_bias=False)
        f_out = min(max(self._out_format(chain), qp - SHIFT_MAX), qp - SHIFT_MIN)
        y_buf = self._storage(chain.output, f_out)
        self._step("mul", chain.nodes, [a_buf, b_buf], y_buf,
                   {"shift": qp - f_out, **self._act_attrs(chain.act, f_out)})

    def _op_LayerNormalization(self, node: gs.Node) -> None:
        """LayerNormalization over the last axis [+ act] -> ``layernorm`` (docs/lir.md): the op's
        ``Z = z / sqrt(N)`` in q = 15, so the scale ``g sqrt(N)`` in one per-tensor format ``q_g``
        that keeps ``Z * g + b`` inside int32 (one value each when the scale and the bias are the
        same at every position: a GroupNorm's rows); ``eps`` in units of the squared deviations
        ``sum d^2 = N^3 4^q_x var``."""
        problems = layer_norm_problems(self.graph, node)
        if problems:
            raise _Unsupported("; ".join(reason for reason, _ in problems))
        x = node.inputs[0]
        n = int(x.shape[-1])
        x_buf = self._input(x)
        q_x = self._qbuf(x_buf)
        scale = (np.asarray(node.inputs[1].values, dtype=np.float64).reshape(-1)
                 if len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant) else np.ones(n))
        beta = (np.asarray(node.inputs[2].values, dtype=np.float64).reshape(-1)
                if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant) else np.zeros(n))
        scale = scale * math.sqrt(n)
        qz = LAYERNORM_Q
        chain = self._chain(node, allow_bias=False)
        f_out = self._out_format(chain)
        q_g = weight_frac_bits(float(np.max(np.abs(scale))))
        peak = float(np.max(np.abs(scale) + np.abs(beta)))
        while q_g > -15 and (peak * 2.0 ** (qz + q_g) >= 2.0 ** 31 or qz + q_g - f_out > SHIFT_MAX):
            q_g -= 1
        f_out = min(f_out, qz + q_g - SHIFT_MIN)
        if (scale == scale[0]).all() and (beta == beta[0]).all():   # one value each (a group's rows)
            scale, beta = scale[:1], beta[:1]
        g_q = np.clip(round_half_up(scale * 2.0 ** q_g), -32768, 32767).astype(np.int16)
        b_q = np.clip(round_half_up(beta * 2.0 ** (qz + q_g)), INT32_MIN, INT32_MAX).astype(np.int32)
        eps = float(node.attrs.get("epsilon", 1e-5))
        e_q = min(int(round_half_up(np.float64(eps * float(n) ** 3 * 4.0 ** q_x))), LAYERNORM_EPS_MAX)
        inputs = [x_buf, self._const(f"{node.name}_scale", g_q, "i16", q_g),
                  self._const(f"{node.name}_bias", b_q, "i32", None)]
        y_buf = self._storage(chain.output, f_out)
        self._step("layernorm", chain.nodes, inputs, y_buf,
                   {"eps": e_q, "shift": qz + q_g - f_out, **self._act_attrs(chain.act, f_out)})

    def _trees(self, node: gs.Node) -> None:
        """The canonical TreeEnsembleRegressor -> ``trees`` (a walk per tree, the leaf indices) and
        ``tree_sum`` (the leaves' values per output) (backends/lower_trees.py)."""
        ens = read_ensemble(node)
        leaves, base, _, _ = canonical_scores(ens)
        x_buf = self._input(node.inputs[0])
        k = self.program.storage_of(x_buf).size
        out = node.outputs[0]
        q_out = self._q(out.name)
        tables = lower_trees.build_tables(ens, leaves, base, self._qbuf(x_buf), q_out,
                                          self._feature_shift(node.inputs[0].name))
        if tables.feature.size and int(tables.feature.max()) >= k:
            raise _Unsupported(f"a branch reads feature {int(tables.feature.max())} of {k}")
        base_name = sanitize_name(node.name)
        walk = [x_buf, self._const(f"{base_name}_feature", tables.feature, "u16", None),
                self._const(f"{base_name}_threshold", tables.threshold, "i16", self._qbuf(x_buf)),
                self._const(f"{base_name}_children", tables.children, "u16", None),
                self._const(f"{base_name}_roots", tables.roots, "u16", None)]
        leaf_buf = self._name(f"{out.name}_leaves")
        self.program.add(Buffer(name=leaf_buf, dtype="i16", shape=(len(ens.trees),), q=0))
        self._step("trees", [node], walk, leaf_buf, {"values": int(tables.values.size)})
        self.program.steps[-1].name = f"{node.name}_walk"
        sums = [leaf_buf, self._const(f"{base_name}_values", tables.values, "i16", tables.q_values),
                self._const(f"{base_name}_first", tables.first, "u16", None),
                self._const(f"{base_name}_bias", tables.bias, "i32", None)]
        y_buf = self._storage(out, q_out)
        self._step("tree_sum", [node], sums, y_buf, {"shift": tables.shift})
        if tables.pruned:
            self.stats["pruned_branches"] = self.stats.get("pruned_branches", 0) + tables.pruned

    def _region(self, region: Region) -> None:
        """An element-wise region (passes/elementwise.py) -> one ``lut`` step (backends/lower_lut.py)."""
        x_buf = self._input(region.base)
        f_in = self._qbuf(x_buf)
        g, key = region.function(), region.key
        calibrated = self.ann.get(region.base.name, "calib-range")
        try:
            clamp = lower_lut.domain_clamp(g, f_in, (float(calibrated[0]), float(calibrated[1]))) \
                if isinstance(calibrated, list) else None
        except ValueError as exc:
            ops = ", ".join(dict.fromkeys(n.op for n in region.nodes))
            raise _Unsupported(f"{ops} of '{region.base.name}': {exc}; keep its input inside the function's "
                               f"domain (e.g. log(x + eps), sqrt(relu(x) + eps), 1 / x.clamp(min=eps)) or "
                               f"calibrate with data that stays inside it") from None
        if clamp is not None:          # the table reads the input clamped to where g has values
            unclamped, low, high = g, clamp[0], clamp[1]

            def g(x: np.ndarray) -> np.ndarray:
                return unclamped(np.clip(x, low, high))

            key = f"{key} on [{low!r}, {high!r}]"
        try:
            fit = lower_lut.fit_lut(key, g, f_in, self._q(region.output.name))
        except ValueError as exc:
            raise _Unsupported(str(exc)) from None
        if fit.error_lsb > lower_lut.REJECT_FACTOR * fit.tolerance_lsb:
            raise _Unsupported(f"no table of at most {lower_lut.MAX_SEGMENTS} segments computes "
                               f"{key} on inputs of q={f_in} within {lower_lut.REJECT_FACTOR:g} x "
                               f"{fit.tolerance_lsb:.1f} output LSBs (best: {fit.error_lsb:.1f})")
        key = (fit.table.tobytes() + repr(sorted(fit.attrs.items())).encode(), fit.table_q)
        table = self.lut_tables.get(key)
        if table is None:
            table = self.lut_tables[key] = self._const(f"lut_{region.nodes[-1].op.lower()}", fit.table, "i16",
                                                       fit.table_q)
        out_node = region.output.inputs[0]
        y_buf = self._storage(region.output, fit.q_out)
        self._step("lut", [out_node, *(n for n in region.nodes if n is not out_node)], [x_buf, table], y_buf,
                   dict(fit.attrs))
        self.luts.append({"step": out_node.name, "function": key, "mode": fit.mode,
                          "entries": int(fit.table.size), "table": table, "q_in": f_in, "q_out": fit.q_out,
                          "max_error": fit.error, "max_error_lsb": round(fit.error_lsb, 3),
                          "tolerance_lsb": round(fit.tolerance_lsb, 3), "lipschitz": fit.lipschitz,
                          "valid_inputs": [fit.valid_lo, fit.valid_hi]})

    def _same_q(self, node: gs.Node, op: str, attrs: dict[str, Any], shape3: bool) -> None:
        x = node.inputs[0]
        x_buf = self._input(x, _as_3d(_lir_shape(x)) if shape3 else None)
        out = node.outputs[0]
        y_buf = self._storage(out, self._qbuf(x_buf), _as_3d(_lir_shape(out)) if shape3 else None)
        self._step(op, [node], [x_buf], y_buf, attrs)

    def _pool_geometry(self, node: gs.Node, rank: int) -> tuple[list[int], list[int], list[int], list[int]]:
        a = node.attrs
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
            raise _Unsupported(f"auto_pad={a.get('auto_pad')} (normalize resolves it to pads)")
        kernel = [int(k) for k in a["kernel_shape"]]
        strides = [int(s) for s in a.get("strides", [1] * rank)]
        pads = [int(p) for p in a.get("pads", [0] * 2 * rank)]
        dil = [int(d) for d in a.get("dilations", [1] * rank)]
        if len(kernel) != rank:
            raise _Unsupported(f"kernel_shape {kernel} does not fit a {rank}-D input")
        if rank == 1:
            return [1, kernel[0]], [1, strides[0]], [0, pads[0], 0, pads[1]], [1, dil[0]]
        return kernel, strides, pads, dil

    def _spatial_rank(self, node: gs.Node) -> int:
        shape = node.inputs[0].shape
        rank = len(shape) - 2 if shape is not None else -1
        if rank not in (1, 2):
            raise _Unsupported(f"input shape {shape}: only 1-D and 2-D feature maps")
        return rank

    def _op_MaxPool(self, node: gs.Node) -> None:
        if len([t for t in node.outputs if t.name]) > 1 and self.consumers.get(node.outputs[1].name):
            raise _Unsupported("the Indices output is used")
        if int(node.attrs.get("storage_order", 0)) != 0:
            raise _Unsupported("storage_order=1")
        kernel, strides, pads, dil = self._pool_geometry(node, self._spatial_rank(node))
        self._same_q(node, "maxpool", {"kernel": kernel, "stride": strides, "pads": pads,
                                       "dilation": dil}, True)

    def _op_AveragePool(self, node: gs.Node) -> None:
        kernel, strides, pads, dil = self._pool_geometry(node, self._spatial_rank(node))
        if any(d != 1 for d in dil):
            raise _Unsupported(f"AveragePool with dilations {dil}")
        if kernel[0] * kernel[1] > 32767:
            raise _Unsupported(f"kernel {kernel} has more than 32767 positions")
        self._same_q(node, "avgpool", {"kernel": kernel, "stride": strides, "pads": pads,
                                       "count_include_pad": int(node.attrs.get("count_include_pad", 0))},
                     True)

    def _op_GlobalAveragePool(self, node: gs.Node) -> None:
        self._spatial_rank(node)
        _, h, w = _as_3d(_lir_shape(node.inputs[0]))
        if h * w > 32767:
            raise _Unsupported(f"global pooling over {h}x{w} > 32767 positions")
        self._same_q(node, "avgpool", {"kernel": [h, w], "stride": [1, 1], "pads": [0, 0, 0, 0],
                                       "count_include_pad": 0}, True)

    def _act_alone(self, node: gs.Node) -> None:
        x_buf = self._input(node.inputs[0])
        f = self._qbuf(x_buf)
        y_buf = self._storage(node.outputs[0], f)
        self._step("act", [node], [x_buf], y_buf, self._act_attrs(node, f))

    _op_Relu = _act_alone
    _op_Clip = _act_alone
    _op_LeakyRelu = _act_alone

    def _op_Concat(self, node: gs.Node) -> None:
        out = node.outputs[0]
        rank = len(out.shape)
        axis = int(node.attrs.get("axis", 1))
        if axis < 0:
            axis += rank
        if axis != 1:
            raise _Unsupported(f"Concat on axis {node.attrs.get('axis')} (only the channel axis 1)")
        if any(isinstance(t, gs.Constant) for t in node.inputs):
            raise _Unsupported("Concat with a constant input")
        bufs = [self._input(t) for t in node.inputs]
        qs = [self._qbuf(b) for b in bufs]
        f_out = self._q(out.name)
        f_out = min(max(f_out, max(qs) - SHIFT_MAX), min(qs) - SHIFT_MIN)
        y_buf = self._storage(out, f_out)
        self._step("concat", [node], bufs, y_buf, {"shifts": [q - f_out for q in qs]})

    def _alias(self, node: gs.Node) -> None:
        x_buf = self._input(node.inputs[0])
        out = node.outputs[0]
        self.buf_of[out.name] = self._view(x_buf, _lir_shape(out))
        self.done.add(id(node))
        self.stats["alias"] = self.stats.get("alias", 0) + 1

    def _op_Flatten(self, node: gs.Node) -> None:
        if int(node.attrs.get("axis", 1)) != 1:
            raise _Unsupported(f"Flatten axis={node.attrs.get('axis')} (only 1)")
        self._alias(node)

    def _op_Reshape(self, node: gs.Node) -> None:
        if len(node.inputs) < 2 or not isinstance(node.inputs[1], gs.Constant):
            raise _Unsupported("the target shape is not a constant")
        out = node.outputs[0]
        if out.name in self.graph_outputs and not self.consumers.get(out.name) and out.shape is not None \
                and (len(out.shape) < 2 or out.shape[0] != 1):
            # a final relabelling (check_supported.final_relabel): the output port reads the input's
            # buffer, its ONNX shape is the Reshape's
            self.buf_of[out.name] = self._input(node.inputs[0])
            self.done.add(id(node))
            self.stats["alias"] = self.stats.get("alias", 0) + 1
            return
        if out.shape is None or out.shape[0] != 1:
            raise _Unsupported(f"output shape {out.shape} does not keep the batch axis 1")
        self._alias(node)

    def _op_Transpose(self, node: gs.Node) -> None:
        """A Transpose that keeps the batch axis first: the `transpose` step over the LIR shapes (a
        view when only size-1 axes move: the values keep their order)."""
        x, out = node.inputs[0], node.outputs[0]
        rank = len(x.shape)
        perm = [int(p) for p in node.attrs.get("perm", list(reversed(range(rank))))]
        if perm[0] != 0 or rank not in (3, 4):
            raise _Unsupported(f"perm {perm} of a rank-{rank} tensor (only ranks 3 and 4 with the batch axis first)")
        moved = [a for a in perm if int(x.shape[a]) != 1]
        if moved == sorted(moved):
            self._alias(node)
            return
        # the LIR axis of each ONNX axis after the batch: [1,C,H,W] -> [C,H,W]; [1,C,L] -> [C,1,L]
        lir_axis = {1: 0, 2: 1, 3: 2} if rank == 4 else {1: 0, 2: 2}
        lir_perm = [1, 1, 1] if rank == 3 else [0, 0, 0]
        for k in range(1, rank):
            lir_perm[lir_axis[k]] = lir_axis[perm[k]]
        x_buf = self._input(x)
        y_buf = self._storage(out, self._qbuf(x_buf))
        self._step("transpose", [node], [x_buf], y_buf, {"perm": lir_perm})

    def _op_Gather(self, node: gs.Node) -> None:
        """One step of a sequence (``x[:, t]``, a constant index on an axis after which the values of
        each index are contiguous) -> a ``slice`` step; an embedding (``Gather(table, ids, axis=0)``,
        passes/embedding.py) -> an ``embed`` step."""
        if is_embedding(node):
            self._embed(node)
            return
        try:
            offset, size = contiguous_slice(node)
        except ValueError as exc:
            raise _Unsupported(str(exc)) from None
        self._slice(node, offset, size)

    _op_Slice = _op_Gather

    def _embed(self, node: gs.Node) -> None:
        """``Gather(table [V, D], ids [1, T], axis=0) -> [1, T, D]`` -> ``embed``: the table as an i16
        constant in its per-tensor format (quantize's, also the output's: a copy of rows)."""
        problems = embedding_problems(node)
        if problems:
            raise _Unsupported("; ".join(reason for reason, _ in problems))
        table, ids, out = node.inputs[0], node.inputs[1], node.outputs[0]
        ids_buf = self._input(ids)
        q = self._q(table.name)
        values = np.asarray(table.values, dtype=np.float64)
        w_q = np.clip(round_half_up(values * 2.0 ** q), -32768, 32767).astype(np.int16)
        w_buf = self._const(table.name, w_q, "i16", q)
        t = self.program.buffers[ids_buf].size
        y_buf = self._storage(out, q, (t, values.shape[1]))
        self._step("embed", [node], [ids_buf, w_buf], y_buf, {})

    def _slice(self, node: gs.Node, offset: int, size: int) -> None:
        x_buf = self._input(node.inputs[0])
        if offset + size > 0xFFFF:
            raise _Unsupported(f"slice [{offset}, {offset + size}) beyond 65535 elements")
        y_buf = self._storage(node.outputs[0], self._qbuf(x_buf), (size,))
        self._step("slice", [node], [x_buf], y_buf, {"offset": offset, "size": size})

    def _op_Resize(self, node: gs.Node) -> None:
        """A nearest upsampling by integer factors (the canonical Resize of passes/resize_nearest.py):
        the `upsample` step with ``zeros=0`` (a 1-D map ``[C, 1, L]`` scales only its last axis)."""
        try:
            factors = list(upsample_factors(node))
        except ValueError as exc:
            raise _Unsupported(str(exc)) from None
        self._same_q(node, "upsample", {"scale": factors if len(factors) == 2 else [1, *factors], "zeros": 0},
                     True)

    def _op_ConvTranspose(self, node: gs.Node) -> None:
        """The zero insertion ConvTranspose of passes/conv_transpose.py: the `upsample` step with
        ``zeros=1`` and the strides as its scale (the transposed convolution is the Conv after it)."""
        if not is_zero_insertion(node):
            raise _Unsupported("a ConvTranspose other than zero insertion (normalize rewrites those into Conv)")
        strides = [int(s) for s in node.attrs["strides"]]
        self._same_q(node, "upsample", {"scale": strides if len(strides) == 2 else [1, *strides], "zeros": 1},
                     True)

    def _op_MatMul(self, node: gs.Node) -> None:
        """MatMul of two activations ``[1, M, K] x [1, K, N]`` -> ``matmul`` on the views ``[M, K]``,
        ``[K, N]``: the output keeps its calibrated format unless the shift would leave [-15, 31]."""
        problems = matmul_problems(node)
        if problems:
            raise _Unsupported("; ".join(reason for reason, _ in problems))
        a, b = node.inputs
        _, m, k = (int(d) for d in a.shape)
        n = int(b.shape[2])
        a_buf, b_buf = self._input(a, (m, k)), self._input(b, (k, n))
        qp = self._qbuf(a_buf) + self._qbuf(b_buf)
        chain = self._chain(node, allow_bias=False)
        f_out = min(max(self._out_format(chain), qp - SHIFT_MAX), qp - SHIFT_MIN)
        y_buf = self._storage(chain.output, f_out, (m, n))
        self._step("matmul", chain.nodes, [a_buf, b_buf], y_buf,
                   {"shift": qp - f_out, **self._act_attrs(chain.act, f_out)})

    def _softmax_inside(self, node: gs.Node) -> None:
        """A Softmax over the last axis inside the network -> ``softmax`` (docs/lir.md): the exp
        table (lower_softmax.exp_table) for the input's format, the output in q = 15."""
        problems = softmax_problems(node)
        if problems:
            raise _Unsupported("; ".join(reason for reason, _ in problems))
        x_buf = self._input(node.inputs[0])
        table, step = exp_table(self._qbuf(x_buf))
        key = (table.tobytes(), SOFTMAX_TABLE_Q)
        t_buf = self.lut_tables.get(key)
        if t_buf is None:
            t_buf = self.lut_tables[key] = self._const("softmax_exp", table, "i16", SOFTMAX_TABLE_Q)
        y_buf = self._storage(node.outputs[0], SOFTMAX_OUT_Q)
        self._step("softmax", [node], [x_buf, t_buf], y_buf, {"step": step, "out_shift": 15 - SOFTMAX_OUT_Q})

    def _op_Softmax(self, node: gs.Node) -> None:
        out = node.outputs[0]
        if node.op == "Softmax" and (out.name not in self.graph_outputs or self.consumers.get(out.name)):
            self._softmax_inside(node)
            return
        x = node.inputs[0]
        rank = len(x.shape)
        axis = int(node.attrs.get("axis", -1 if self.model.opset >= 13 else 1))
        if axis < 0:
            axis += rank
        if axis != rank - 1 or any(d != 1 for d in x.shape[1:-1]):
            raise _Unsupported(f"{node.op} over axis {axis} of {list(x.shape)} (only over the class axis)")
        self._drop_final(node)

    _op_LogSoftmax = _op_Softmax

    def _op_Sigmoid(self, node: gs.Node) -> None:
        self._drop_final(node)

    def _drop_final(self, node: gs.Node) -> None:
        """A final activation that keeps the argmax: its output is the buffer of its input."""
        out = node.outputs[0]
        if out.name not in self.graph_outputs or self.consumers.get(out.name):
            raise _Unsupported(f"{node.op} that is not the final output (only a final {node.op} is dropped)")
        self.buf_of[out.name] = self._input(node.inputs[0])
        self.finals.append((node, node.inputs[0].name, out.name))
        self.done.add(id(node))

    # -- ports and meta ----------------------------------------------------------------------------

    def _ports(self) -> None:
        prog = self.program
        shapes: dict[str, list[int]] = {}
        feature_shifts: dict[str, dict[str, Any]] = {}
        for t in self.graph.inputs:
            prog.inputs.append(_port(t.name, self.buf_of[t.name]))
            shapes[t.name] = [int(d) for d in t.shape]
            shift = self._feature_shift(t.name)
            if shift is not None:
                feature_shifts[t.name] = {"axis": 1, "shifts": shift}
        if feature_shifts:
            prog.meta[FEATURE_SHIFTS_META] = json.dumps(feature_shifts, sort_keys=True, separators=(",", ":"))
        dropped = {probs: logits for _, logits, probs in self.finals}
        seen: set[str] = set()
        class_scores = self._class_scores()
        for t in self.graph.outputs:
            name = dropped.get(t.name, t.name)
            if name in seen or name in self.skip_outputs or name == class_scores:
                continue
            seen.add(name)
            prog.outputs.append(_port(name, self.buf_of[t.name]))
            src = self.graph.tensors().get(name)
            shapes[name] = [int(d) for d in (src.shape if src is not None and src.shape else t.shape)]
        scores = class_scores or self._scores_output(dropped)
        if self.options.argmax and scores is not None:
            x_buf = self.buf_of[scores]
            size = prog.storage_of(x_buf).size
            x_vec = self._view(x_buf, (size,))
            port = CLASS_PORT
            while port in seen:
                port = "_" + port
            y = self._name(port)
            prog.add(Buffer(name=y, dtype="i16", shape=(1,), q=0))
            origin = [n.name for n, _, _ in self.finals] or [str(self._tail().get("label_output") or "argmax")]
            step_names = {s.name for s in prog.steps}
            name, k = "argmax", 2
            while name in step_names:
                name, k = f"argmax_{k}", k + 1
            prog.steps.append(Step(op="argmax", name=name, inputs=[x_vec], outputs=[y], origin=origin))
            prog.outputs.append(_port(port, y))
            prog.meta["class-output"] = port
            if class_scores:
                prog.meta["class-source"] = class_scores
            shapes[port] = [1]
            self.stats["argmax"] = 1
        prog.meta[ONNX_SHAPES_META] = json.dumps(shapes, sort_keys=True, separators=(",", ":"))

    def _tail(self) -> dict[str, Any]:
        tail = self.ann.get("graph", "classifier-tail")
        return tail if isinstance(tail, dict) else {}

    def _class_scores(self) -> str | None:
        """The graph output a ``class-scores`` annotation names (its argmax is the class; no port)."""
        name = self.ann.get("graph", "class-scores")
        return name if isinstance(name, str) and name in self.graph_outputs and name in self.buf_of else None

    def _scores_output(self, dropped: dict[str, str]) -> str | None:
        """The graph output an argmax reads (a dropped Softmax's or the classifier tail's scores)."""
        tail = self._tail()
        want = tail.get("scores_output")
        if isinstance(want, str) and want in self.buf_of:
            return want
        if tail and len(self.graph.outputs) == 1:
            return self.graph.outputs[0].name
        if len(self.finals) == 1:
            return self.finals[0][2]
        return None

    def _meta(self) -> None:
        meta = self.program.meta
        meta["model"] = self.model.name
        digest = _source_sha256(self.model)
        if digest:
            meta["source"] = digest
        if self.finals:
            notes = [f"output '{logits}' holds the pre-{node.op.lower()} logits of '{probs}' ({node.op} "
                     f"'{node.name}' dropped; apply {node.op.lower()} on the host for its values)"
                     for node, logits, probs in self.finals]
            meta["scores"] = "; ".join(notes)
            softmax = {logits: probs for node, logits, probs in self.finals if node.op == "Softmax"}
            if softmax:
                meta["softmax"] = json.dumps(softmax, sort_keys=True, separators=(",", ":"))
        if self.luts:
            meta[lower_lut.META_KEY] = json.dumps({r["step"]: [r["lipschitz"], r["max_error"], *r["valid_inputs"]]
                                                   for r in self.luts},
                                                  sort_keys=True, separators=(",", ":"))
        labels = self._tail().get("labels")
        if isinstance(labels, list):
            meta["labels"] = json.dumps(labels, separators=(",", ":"))


def _port(name: str, buf: str) -> Port:
    return Port(onnx_name=name, buffer=buf)


def _size(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _lir_shape(tensor: Any) -> tuple[int, ...]:
    """The LIR shape of an ONNX activation: batch axis dropped, 1-D maps as [C, 1, L]."""
    shape = tensor.shape
    if shape is None or any(not isinstance(d, int) or d < 0 for d in shape):
        raise _Unsupported(f"'{tensor.name}' has no static shape ({shape})")
    shape = [int(d) for d in shape]
    if len(shape) < 2 or shape[0] != 1:
        raise _Unsupported(f"'{tensor.name}' has shape {shape}; expected a batch axis of 1 first")
    if len(shape) == 2:
        return (shape[1],)
    if len(shape) == 3:
        return (shape[1], 1, shape[2])
    if len(shape) == 4:
        return tuple(shape[1:])
    raise _Unsupported(f"'{tensor.name}' has rank {len(shape)} (only [1,N], [1,C,L], [1,C,H,W])")


def _as_3d(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A vector [N] seen as a feature map [N, 1, 1]; a map as is."""
    return (shape[0], 1, 1) if len(shape) == 1 else shape


def _per_channel_const_operand(add: gs.Node, act: gs.Variable) -> gs.Constant | None:
    """The constant operand of Add(act, const) when it is per-channel for `act`, else None."""
    if len(add.inputs) != 2:
        return None
    others = [t for t in add.inputs if t is not act]
    if len(others) != 1 or not isinstance(others[0], gs.Constant) or act.shape is None:
        return None
    const = others[0]
    if not is_per_channel(const.values.shape, act.shape):
        return None
    return const


def _clip_bounds(node: gs.Node) -> tuple[float, float]:
    lo, hi = -np.inf, np.inf
    if "min" in node.attrs:
        lo = float(node.attrs["min"])
    if "max" in node.attrs:
        hi = float(node.attrs["max"])
    for i, default in ((1, lo), (2, hi)):
        if len(node.inputs) > i:
            t = node.inputs[i]
            if isinstance(t, gs.Constant):
                v = float(np.asarray(t.values).reshape(-1)[0])
                if i == 1:
                    lo = v
                else:
                    hi = v
            elif t.name:
                raise _Unsupported(f"Clip bound '{t.name}' is not a constant")
    return lo, hi


def _act_fusable(node: gs.Node) -> bool:
    """Can this activation node be fused (its parameters are lowerable)?"""
    try:
        if node.op == "Clip":
            _clip_bounds(node)
        if node.op == "LeakyRelu":
            alpha = float(node.attrs.get("alpha", 0.01))
            return 0.0 <= alpha < 1.0 and int(round_half_up(alpha * 32768.0)) <= 32767
    except _Unsupported:
        return False
    return True


def _q16(v: float, f: int, default: int) -> int:
    if not np.isfinite(v):
        return default if (v < 0) == (default < 0) else -default - 1
    return int(np.clip(round_half_up(v * 2.0 ** f), -32768, 32767))


def _input_shapes(node: gs.Node) -> str:
    return ", ".join(f"{t.name or '-'}{list(t.shape) if getattr(t, 'shape', None) is not None else '?'}"
                     for t in node.inputs)


def _opset_note(node: gs.Node) -> str:
    return f", domain {node.domain}" if node.domain not in ("", "ai.onnx", None) else ""


def _toposort(graph: gs.Graph) -> list[gs.Node]:
    """Nodes in a topological order that keeps the graph's order where it is already valid."""
    produced = {o.name: n for n in graph.nodes for o in n.outputs}
    order: list[gs.Node] = []
    state: dict[int, int] = {}

    def visit(node: gs.Node) -> None:
        stack = [(node, 0)]
        while stack:
            n, i = stack.pop()
            if i == 0:
                if state.get(id(n)) == 2:
                    continue
                state[id(n)] = 1
            deps = [produced[t.name] for t in n.inputs
                    if isinstance(t, gs.Variable) and t.name in produced]
            if i < len(deps):
                stack.append((n, i + 1))
                d = deps[i]
                if state.get(id(d)) is None:
                    stack.append((d, 0))
                continue
            state[id(n)] = 2
            order.append(n)

    for node in graph.nodes:
        if state.get(id(node)) is None:
            visit(node)
    return order


def _source_sha256(model: OnnxModel) -> str | None:
    src = model.source
    if src and os.path.isfile(src):
        h = hashlib.sha256()
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    return model.metadata.get("freeml_tx.source_sha256")


def lower_model(model: OnnxModel, options: LowerOptions | None = None,
                fram_bytes: int | None = None) -> tuple[Program, dict[str, Any]]:
    """Lower a normalised, quantised model; returns the Program and statistics.

    ``fram_bytes``: the FRAM budget, for ``sparse=auto`` (None: no budget). The stats hold, besides
    counts, ``weight_storage``: one record per Conv/Gemm (backends/lower_sparse.py: storage,
    density, bytes dense and sparse, predicted cycles, reason) and ``sparse_layers``.
    """
    lowerer = _Lowerer(model, options or LowerOptions(), fram_bytes=fram_bytes)
    program = lowerer.run()
    stats: dict[str, Any] = {"steps": len(program.steps), "buffers": len(program.buffers),
                             "ops": dict(sorted(lowerer.stats.items())),
                             "weight_bytes": sum(b.nbytes for b in program.buffers.values() if b.is_const),
                             "weight_storage": lowerer.storage, "lut": lowerer.luts,
                             "sparse_layers": sum(1 for r in lowerer.storage if r["storage"] == "sparse")}
    return program, stats


@register
class Lower(Pass):
    """Lower a normalised, quantised ONNX model to a fixed-point LIR Program.

    Before -> after: ``Conv -> Relu -> MaxPool -> Flatten -> Gemm -> Softmax`` (float ONNX with
    ``qformat`` annotations) -> ``conv{act=relu}, maxpool, alias, fc, argmax`` (LIR; see the module
    docstring for every rule).
    """

    name = "lower"
    options_type = LowerOptions
    level = "lower"
    requires = frozenset({"normal-form", "quantized"})
    ensures = frozenset({"lir"})

    def run(self, model: OnnxModel) -> PassResult[Program]:
        program, stats = lower_model(model, self.options, fram_bytes=self.context.fram_bytes)
        self.context.say(f"lower: {stats['steps']} steps, {stats['buffers']} buffers")
        return PassResult(program, True, stats)

"""`unroll-recurrent`: ONNX ``LSTM``, ``GRU`` and ``RNN`` unrolled over their static sequence length.

Every time step becomes ordinary normal-form nodes: per gate a ``Gemm`` of the step's input with the
gate's rows of ``W`` (with the gate's biases ``Wb + Rb``) and, after the first step, a ``Gemm`` of the
previous hidden state with the gate's rows of ``R`` and an ``Add``; ``Sigmoid``/``Tanh`` (one ``lut``
step each), the products of two activations as ``Mul`` (a ``mul`` step) and ``Add``. ``W``, ``R`` and
``B`` are split per gate once, at compile time, so no activation is sliced between gates, and each
gate's constants are one initializer read by the Gemms of all steps (stored once). The initial
state is zero (absent, or a constant 0): the first step has no ``R`` term, and its cell state is
``i * g`` (LSTM), its hidden state ``(1 - z) * n`` (GRU).

The step's input ``x_t`` is ``Gather(X', t, axis=1)`` of the sequence as ``X' [1, T, F]``: the
input itself when the layer reads ``Transpose(X', perm=[1, 0, 2])`` (torch's ``batch_first=True``,
legacy and dynamo), or the hidden states of the previous layer directly when ``X`` is another
recurrent layer's ``Y`` (stacked layers: no tensor in between is formed). ``lower`` makes each
``Gather`` a ``slice`` step (a copy of ``F`` contiguous elements).

The outputs keep ONNX's layout: ``Y [T, D, 1, H]``, ``Y_h``/``Y_c [D, 1, H]`` are sequences of
per-step tensors ``[1, D*H]`` (``Y``) or ``[1, H]`` (``Y_h``, ``Y_c``: one entry per direction).
Through ``Squeeze``/``Unsqueeze``/``Reshape`` and ``Transpose`` that keep the element order, a
``Gather`` (or a one-step ``Slice``) of one step with a constant index becomes a plain reference to
that step's tensor (a ``Reshape`` of it when the shapes differ). Where the whole sequence is read
(``Flatten`` -> ``Gemm``, a graph output) it is formed once: ``Concat`` of the steps on axis 1 and a
``Reshape`` to the tensor's shape, which must then keep the batch axis first.

Supported: the default activations (LSTM sigmoid/tanh/tanh, GRU sigmoid/tanh, RNN tanh or relu),
directions forward, reverse and bidirectional (the two directions of a step concatenated, as in
``Y``), GRU with either ``linear_before_reset``, batch 1 (after `batch-one`), ``layout=0``. Rejected
by check-supported, naming the node (this pass leaves such a node and records why in the
annotation ``recurrent-problem``): ``sequence_lens``, peepholes ``P``, ``clip``, ``input_forget``,
other activations, a non-zero or non-constant initial state, ``layout=1``.

Before -> after (GRU, T = 2, one direction; ``Gz`` = Gemm with the z rows of W/R)::

    X[1,2,3] -> Transpose -> GRU(W, R, B) -> Y[2,1,1,16] -> Squeeze -> Transpose -> Gather(-1) -> Gemm
    ->
    x0 = Gather(X, 0, axis=1); z0 = Sigmoid(Gz(x0)); r0 = Sigmoid(Gr(x0)); n0 = Tanh(Gn(x0) + r0 * Rbn)
    h0 = (1 - z0) * n0
    x1 = Gather(X, 1, axis=1); z1 = Sigmoid(Gz(x1) + Rz(h0)); ...; h1 = (1 - z1) * n1 + z1 * h0
    h1 -> Gemm
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.annotations import register_kind
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, consumers, drop_unused, is_empty,
                                   is_graph_output, origin_of, producer, replace_uses, set_origin,
                                   static_shape)

RECURRENT = ("LSTM", "GRU", "RNN")
GATES = {"LSTM": "iofc", "GRU": "zrh", "RNN": "h"}
DEFAULT_ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh"), "RNN": ("tanh",)}
LAYOUT_OPS = ("Squeeze", "Unsqueeze", "Reshape", "Transpose", "Identity")
PROBLEM = "recurrent-problem"
register_kind(PROBLEM, dict, "why unroll-recurrent left a LSTM/GRU/RNN node: {reason, hint} (check-supported reports it)")


class _NotUnrolled(Exception):
    """A recurrent node outside what the pass unrolls: ``reason`` and ``hint`` for check-supported."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint


@dataclass
class _Sequence:
    """A tensor that is the stack of ``steps`` (each ``[1, F]``) along ``axis`` (every axis before it
    has size 1, so step ``t`` is the ``t``-th contiguous run of ``F`` elements)."""

    steps: list[gs.Variable]
    axis: int


class _Builder:
    """Adds the nodes of one unrolled layer, all with the layer's origin."""

    def __init__(self, model: OnnxModel, names: NameSource, node: gs.Node) -> None:
        self.model, self.names, self.node = model, names, node
        self.origin = origin_of(model, node)
        self.dtype = np.float32
        self.consts: dict[str, gs.Constant] = {}

    def const(self, key: str, values: np.ndarray) -> gs.Constant:
        """One initializer per key (a gate's W rows are read by every step's Gemm)."""
        if key not in self.consts:
            self.consts[key] = gs.Constant(self.names.fresh(f"{self.node.name}_{key}"),
                                           np.ascontiguousarray(values, dtype=self.dtype))
        return self.consts[key]

    def op(self, op: str, base: str, inputs: list[gs.Tensor], shape: Sequence[int],
           attrs: dict[str, object] | None = None) -> gs.Variable:
        out = gs.Variable(self.names.fresh(f"{self.node.name}_{base}"), dtype=self.dtype, shape=list(shape))
        made = add_node(self.model.graph, self.names, op, f"{self.node.name}_{base}", inputs, [out], attrs)
        set_origin(self.model, made, self.origin)
        return out

    def gemm(self, base: str, x: gs.Variable, w: gs.Constant, b: gs.Constant | None) -> gs.Variable:
        inputs: list[gs.Tensor] = [x, w] + ([b] if b is not None else [])
        return self.op("Gemm", base, inputs, [1, int(w.values.shape[0])], {"transB": 1})


def _activations(node: gs.Node, dirs: int) -> tuple[str, ...]:
    given = node.attrs.get("activations")
    default = DEFAULT_ACTIVATIONS[node.op]
    if not given:
        return default
    names = tuple((a.decode() if isinstance(a, bytes) else str(a)).lower() for a in given)
    per = len(default)
    if len(names) != per * dirs or any(names[k * per:(k + 1) * per] != names[:per] for k in range(dirs)):
        raise ValueError(f"activations {list(names)}")
    if node.op == "RNN" and names[0] in ("tanh", "relu"):
        return names[:1]
    if names[:per] != default:
        raise ValueError(f"activations {list(names)} (only the defaults {list(default)})")
    return default


class _Unroller:
    """Unrolls the recurrent nodes of one graph; ``seqs`` maps tensor names to their per-step form."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.graph = model.graph
        self.names = NameSource(model.graph)
        self.seqs: dict[str, _Sequence] = {}
        self.stats = {"lstm": 0, "gru": 0, "rnn": 0, "steps": 0, "step-references": 0, "sequences-formed": 0}

    # -- the layer's input ---------------------------------------------------------------------

    def input_steps(self, node: gs.Node, length: int, features: int) -> list[gs.Variable]:
        x = node.inputs[0]
        if x.name in self.seqs:
            return list(self.seqs[x.name].steps)
        source, axis = x, None
        shape = static_shape(x)
        if shape == (1, length, features):
            axis = 1
        elif shape == (length, 1, features):
            writer = producer(x)
            perm = [int(p) for p in writer.attrs.get("perm", [])] if writer is not None and writer.op == "Transpose" else []
            if perm == [1, 0, 2] and static_shape(writer.inputs[0]) == (1, length, features):
                source, axis = writer.inputs[0], 1
        if axis is None:
            raise _NotUnrolled(f"input X {list(shape) if shape else '?'} is not a [T, 1, F] sequence read from a "
                            "[1, T, F] tensor", "give the model a [1, T, F] input and use batch_first=True (or "
                            "x.permute(1, 0, 2) into the layer), so each time step is a contiguous run")
        b = _Builder(self.model, self.names, node)
        steps = []
        for t in range(length):
            index = gs.Constant(self.names.fresh(f"{node.name}_t{t}"), np.array(t, dtype=np.int64))
            steps.append(b.op("Gather", f"x{t}", [source, index], [1, features], {"axis": axis}))
        return steps

    # -- one layer -----------------------------------------------------------------------------

    def unroll(self, node: gs.Node) -> None:
        op = node.op
        hint = "export the layer with the default settings (torch nn.LSTM/GRU/RNN, zero initial state)"
        x_shape = static_shape(node.inputs[0])
        w, r = const_value(node.inputs[1]), const_value(node.inputs[2]) if len(node.inputs) > 2 else None
        if x_shape is None or len(x_shape) != 3:
            raise _NotUnrolled(f"input X has no static [T, B, F] shape ({x_shape})", "fix the input shapes")
        if w is None or r is None:
            raise _NotUnrolled("W or R is not a constant", hint)
        if int(node.attrs.get("layout", 0)) != 0:
            raise _NotUnrolled("layout=1 (batch-major X)", "export with layout 0 (torch does)")
        length, batch, features = x_shape
        if batch != 1:
            raise _NotUnrolled(f"batch {batch}", "compile with batch 1 (--input-shape)")
        direction = node.attrs.get("direction", "forward")
        direction = direction.decode() if isinstance(direction, bytes) else str(direction)
        dirs = 2 if direction == "bidirectional" else 1
        hidden = int(node.attrs.get("hidden_size", r.shape[-1]))
        gates = GATES[op]
        optional = {4: "sequence_lens", 7: "peepholes P"}
        for k, what in optional.items():
            if len(node.inputs) > k and not is_empty(node.inputs[k]):
                raise _NotUnrolled(f"{what} given", "remove it (pack sequences to one length; no peepholes)")
        if node.attrs.get("clip") is not None:
            raise _NotUnrolled("cell clip", hint)
        if int(node.attrs.get("input_forget", 0)):
            raise _NotUnrolled("input_forget=1", hint)
        try:
            acts = _activations(node, dirs)
        except ValueError as exc:
            raise _NotUnrolled(str(exc), hint) from None
        if w.shape != (dirs, len(gates) * hidden, features) or r.shape != (dirs, len(gates) * hidden, hidden):
            raise _NotUnrolled(f"W {list(w.shape)} / R {list(r.shape)} do not fit {dirs} direction(s), "
                            f"hidden {hidden}, {features} features", hint)
        bias = np.zeros((dirs, 2 * len(gates) * hidden), np.float32)
        if len(node.inputs) > 3 and not is_empty(node.inputs[3]):
            given = const_value(node.inputs[3])
            if given is None:
                raise _NotUnrolled("B is not a constant", hint)
            bias = given.astype(np.float32).reshape(dirs, -1)
        states = [5, 6] if op == "LSTM" else [5]
        for k in states:
            if len(node.inputs) > k and not is_empty(node.inputs[k]):
                v = const_value(node.inputs[k])
                if v is None or np.any(v != 0):
                    raise _NotUnrolled(f"{'initial_h' if k == 5 else 'initial_c'} is not a constant zero",
                                    "start from the zero state (torch: call the layer without (h0, c0))")
        xs = self.input_steps(node, length, features)
        b = _Builder(self.model, self.names, node)
        hs_dirs, finals_h, finals_c = [], [], []
        for d in range(dirs):
            reverse = direction == "reverse" or d == 1
            hs, h, c = self.direction(b, node, xs, w[d], r[d], bias[d], hidden, acts, reverse, f"d{d}_" if dirs > 1 else "")
            hs_dirs.append(hs)
            finals_h.append(h)
            finals_c.append(c)
        if dirs == 1:
            per_step = hs_dirs[0]
        else:
            per_step = [b.op("Concat", f"y{t}", [hs_dirs[0][t], hs_dirs[1][t]], [1, dirs * hidden], {"axis": 1})
                        for t in range(length)]
        outs = list(node.outputs) + [None] * 3
        y, y_h, y_c = outs[0], outs[1], outs[2]
        for tensor, seq in ((y, _Sequence(per_step, 0)), (y_h, _Sequence(finals_h, 0)),
                            (y_c, _Sequence(finals_c, 0) if op == "LSTM" else None)):
            if tensor is not None and not is_empty(tensor) and seq is not None:
                self.seqs[tensor.name] = seq
        self.stats[op.lower()] += 1
        self.stats["steps"] += length * dirs

    def direction(self, b: _Builder, node: gs.Node, xs: list[gs.Variable], w: np.ndarray, r: np.ndarray,
                  bias: np.ndarray, hidden: int, acts: tuple[str, ...], reverse: bool,
                  tag: str) -> tuple[list[gs.Variable], gs.Variable, gs.Variable | None]:
        """One direction: the hidden state of every step (in sequence order), the last h and c."""
        op = node.op
        gates = GATES[op]
        n_g = len(gates)
        wb, rb = bias[:n_g * hidden], bias[n_g * hidden:]
        rows = {g: slice(k * hidden, (k + 1) * hidden) for k, g in enumerate(gates)}
        W = {g: b.const(f"{tag}W{g}", w[rows[g]]) for g in gates}
        R = {g: b.const(f"{tag}R{g}", r[rows[g]]) for g in gates}
        gru_lbr = op == "GRU" and int(node.attrs.get("linear_before_reset", 0)) == 1
        # biases folded per gate: Wb + Rb, except GRU's n gate with linear_before_reset, where Rbn
        # is inside r * (Rn h + Rbn)
        B = {}
        for g in gates:
            value = wb[rows[g]] + (rb[rows[g]] if not (gru_lbr and g == "h") else 0.0)
            B[g] = b.const(f"{tag}B{g}", value)
        rbn = b.const(f"{tag}Rbh", rb[rows["h"]]) if gru_lbr else None
        one = b.const("one", np.ones((1, hidden), np.float32)) if op == "GRU" else None
        order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
        hs: list[gs.Variable | None] = [None] * len(xs)
        h: gs.Variable | None = None
        c: gs.Variable | None = None
        shape = [1, hidden]

        def pre(g: str, t: int, x: gs.Variable, h_prev: gs.Variable | None) -> gs.Variable:
            a = b.gemm(f"{tag}{g}x{t}", x, W[g], B[g])
            if h_prev is None:
                return a
            return b.op("Add", f"{tag}{g}{t}", [a, b.gemm(f"{tag}{g}h{t}", h_prev, R[g], None)], shape)

        for t in order:
            x = xs[t]
            if op == "RNN":
                kind = "Tanh" if acts[0] == "tanh" else "Relu"
                h = b.op(kind, f"{tag}h{t}", [pre("h", t, x, h)], shape)
            elif op == "LSTM":
                i = b.op("Sigmoid", f"{tag}i{t}", [pre("i", t, x, h)], shape)
                f = b.op("Sigmoid", f"{tag}f{t}", [pre("f", t, x, h)], shape) if c is not None else None
                g_ = b.op("Tanh", f"{tag}g{t}", [pre("c", t, x, h)], shape)
                o = b.op("Sigmoid", f"{tag}o{t}", [pre("o", t, x, h)], shape)
                ig = b.op("Mul", f"{tag}ig{t}", [i, g_], shape)
                if c is not None and f is not None:
                    c = b.op("Add", f"{tag}c{t}", [b.op("Mul", f"{tag}fc{t}", [f, c], shape), ig], shape)
                else:
                    c = ig
                h = b.op("Mul", f"{tag}h{t}", [o, b.op("Tanh", f"{tag}tc{t}", [c], shape)], shape)
            else:                                                       # GRU
                zp = pre("z", t, x, h)
                z = b.op("Sigmoid", f"{tag}z{t}", [zp], shape)
                not_z = b.op("Sub", f"{tag}nz{t}", [one, z], shape)     # 1 - z: one table of zp
                xn = b.gemm(f"{tag}hx{t}", x, W["h"], B["h"])
                if h is None:
                    # r * (Rn 0 + Rbn) = r * Rbn (linear_before_reset), Rn (r * 0) = 0 (otherwise)
                    if gru_lbr:
                        rr = b.op("Sigmoid", f"{tag}r{t}", [pre("r", t, x, h)], shape)
                        xn = b.op("Add", f"{tag}hn{t}", [xn, b.op("Mul", f"{tag}rh{t}", [rr, rbn], shape)], shape)
                    n = b.op("Tanh", f"{tag}n{t}", [xn], shape)
                    h = b.op("Mul", f"{tag}h{t}", [not_z, n], shape)
                else:
                    rr = b.op("Sigmoid", f"{tag}r{t}", [pre("r", t, x, h)], shape)
                    if gru_lbr:
                        hn = b.gemm(f"{tag}hh{t}", h, R["h"], rbn)
                        rh = b.op("Mul", f"{tag}rh{t}", [rr, hn], shape)
                    else:
                        rh = b.gemm(f"{tag}hh{t}", b.op("Mul", f"{tag}rhp{t}", [rr, h], shape), R["h"], None)
                    n = b.op("Tanh", f"{tag}n{t}", [b.op("Add", f"{tag}hn{t}", [xn, rh], shape)], shape)
                    h = b.op("Add", f"{tag}h{t}", [b.op("Mul", f"{tag}nh{t}", [not_z, n], shape),
                                                    b.op("Mul", f"{tag}zh{t}", [z, h], shape)], shape)
            hs[t] = h
        assert h is not None and all(s is not None for s in hs)
        return [s for s in hs if s is not None], h, c

    # -- the outputs: references to steps, or the sequence formed once --------------------------

    def propagate(self) -> None:
        """Propagate the sequences through order-keeping layout nodes and turn one-step Gathers and
        Slices into references (run after each layer, so a stacked layer finds its input steps)."""
        pending = list(self.seqs)
        while pending:
            name = pending.pop()
            tensor = self.graph.tensors()[name]
            seq = self.seqs[name]
            for reader in list(consumers(tensor)):
                out = reader.outputs[0] if reader.outputs else None
                if out is None:
                    continue
                moved = self.follow(reader, tensor, seq)
                if moved is not None:
                    self.seqs[out.name] = moved
                    pending.append(out.name)
                    continue
                step = self.one_step(reader, tensor, seq)
                if step is not None:
                    self.reference(reader, step)

    def form_read(self) -> None:
        """Form the sequences that something other than a layout node or a step reference reads."""
        for name, seq in list(self.seqs.items()):
            tensor = self.graph.tensors().get(name)
            if tensor is None:
                continue
            readers = [n for n in consumers(tensor) if n.outputs and n.outputs[0].name not in self.seqs]
            if readers or is_graph_output(self.graph, tensor):
                self.form(tensor, seq)

    def follow(self, reader: gs.Node, tensor: gs.Variable, seq: _Sequence) -> _Sequence | None:
        """The sequence after a layout node that keeps the element order (None: not one)."""
        if reader.op not in LAYOUT_OPS or reader.inputs[0] is not tensor:
            return None
        before, after = static_shape(tensor), static_shape(reader.outputs[0])
        if before is None or after is None:
            return None
        if reader.op == "Transpose":
            perm = [int(p) for p in reader.attrs.get("perm", list(reversed(range(len(before)))))]
            moved = [a for a in perm if before[a] != 1]
            if moved != sorted(moved):
                return None
        length, size = len(seq.steps), int(np.prod(before)) // len(seq.steps)
        for axis, d in enumerate(after):
            if d == length and int(np.prod(after[:axis])) == 1 and int(np.prod(after[axis + 1:])) == size:
                return _Sequence(seq.steps, axis)
        return None

    def one_step(self, reader: gs.Node, tensor: gs.Variable, seq: _Sequence) -> gs.Variable | None:
        """The step a Gather of one constant index (or a one-step Slice) on the sequence axis takes."""
        shape = static_shape(tensor)
        if reader.inputs[0] is not tensor or shape is None:
            return None
        length = len(seq.steps)
        if reader.op == "Gather":
            index = const_value(reader.inputs[1])
            if index is None or index.size != 1 or int(reader.attrs.get("axis", 0)) % len(shape) != seq.axis:
                return None
            return seq.steps[int(index.reshape(-1)[0]) % length]
        if reader.op == "Slice":
            vals = [const_value(t) for t in reader.inputs[1:] if not is_empty(t)]
            if any(v is None for v in vals) or len(vals) < 2:
                return None
            starts, ends = (np.asarray(v).reshape(-1) for v in vals[:2])
            axes = np.asarray(vals[2]).reshape(-1) if len(vals) > 2 else np.arange(starts.size)
            steps = np.asarray(vals[3]).reshape(-1) if len(vals) > 3 else np.ones(starts.size)
            out = static_shape(reader.outputs[0])
            if starts.size != 1 or int(axes[0]) % len(shape) != seq.axis or int(steps[0]) != 1 or out is None \
                    or out[seq.axis] != 1:
                return None
            start = int(starts[0])
            return seq.steps[min(max(start + length if start < 0 else start, 0), length - 1)]
        return None

    def reference(self, reader: gs.Node, step: gs.Variable) -> None:
        """Readers of ``reader``'s output read ``step`` (reshaped to the output's shape)."""
        out = reader.outputs[0]
        value: gs.Variable = step
        if static_shape(out) != static_shape(step):
            b = _Builder(self.model, self.names, reader)
            shape = gs.Constant(self.names.fresh(f"{reader.name}_shape"),
                                np.array(static_shape(out), dtype=np.int64))
            value = b.op("Reshape", "step", [step, shape], list(static_shape(out) or ()))
        reader.outputs.clear()
        if is_graph_output(self.graph, out):           # keep the output's name; remove-noops folds it
            add_node(self.graph, self.names, "Identity", f"{reader.name}_step", [value], [out])
            set_origin(self.model, self.graph.nodes[-1], origin_of(self.model, reader))
        else:
            replace_uses(self.graph, out, value)
        self.stats["step-references"] += 1

    def form(self, tensor: gs.Variable, seq: _Sequence) -> None:
        """``tensor`` as Concat(steps, axis 1) -> Reshape (when something reads all of it)."""
        writer = producer(tensor)
        node = writer if writer is not None else self.graph.nodes[0]
        b = _Builder(self.model, self.names, node)
        shape = static_shape(tensor) or ()
        total = int(np.prod(shape))
        flat = seq.steps[0] if len(seq.steps) == 1 else b.op("Concat", "seq", list(seq.steps), [1, total], {"axis": 1})
        target = gs.Constant(self.names.fresh(f"{node.name}_seq_shape"), np.array(shape, dtype=np.int64))
        if writer is not None:                           # its writer (the layer, a layout node) goes
            writer.outputs[[o.name for o in writer.outputs].index(tensor.name)] = gs.Variable.empty()
        add_node(self.graph, self.names, "Reshape", f"{node.name}_seq", [flat, target], [tensor])
        set_origin(self.model, self.graph.nodes[-1], origin_of(self.model, node))
        self.stats["sequences-formed"] += 1


@register
class UnrollRecurrent(Pass):
    """Unroll ONNX LSTM / GRU / RNN over their static sequence length into supported ops (see the
    module docstring for the rules and the before -> after sketch)."""

    name = "unroll-recurrent"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        model.graph.toposort()
        layers = [n for n in model.graph.nodes if n.op in RECURRENT and (n.domain or "") in ("", "ai.onnx")]
        if not layers:
            return PassResult(model, False, {})
        unroller = _Unroller(model)
        done = []
        for node in layers:
            try:
                unroller.unroll(node)
            except _NotUnrolled as exc:       # left for check-supported's one list of every problem
                model.annotations.set(node.name, PROBLEM, {"reason": exc.reason, "hint": exc.hint})
                continue
            done.append(node)
            unroller.propagate()
        unroller.form_read()
        for node in done:
            node.outputs.clear()
            node.inputs.clear()
        drop_unused(model.graph, toposort=True)
        return PassResult(model, bool(done), {**unroller.stats, "left": len(layers) - len(done)})

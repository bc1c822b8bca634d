"""The LIR interpreter: runs a Program's steps in order with the numpy kernels.

This is the bit-exact reference for the generated C (docs/lir.md defines the semantics,
transpiler.lir.kernels implements them). Buffers live in a dict of arrays keyed by the name of
the buffer that owns the storage; an alias is a reshaped view of its owner, so writing a step's
output through an alias updates the owner.

    outputs = run_program(program, {"input.1": x_q})          # {"logits": int16 array}
    everything = run_program(program, {"input.1": x_q}, trace=True)
    everything["%t1"]                                           # one buffer, by "%" + name
    outputs, answers = run_exits(program, {"input.1": x_q})     # gNet: the head after every exit
    run_until(program, {"input.1": x_q}, stop=5)                # gNet: the answer if stopped there
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from transpiler.errors import LirError, Location
from transpiler.lir import kernels
from transpiler.lir.ir import DTYPES, Buffer, Program, Step
from transpiler.lir.ops import ON_DEMAND_OPS

Attrs = dict[str, object]


class _State:
    """The values of a program's buffers during one run."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.exits_present = 0            # gNet: exits whose features are in F (gnet_feature steps run)
        self.values: dict[str, np.ndarray] = {}
        for name, buf in program.buffers.items():
            if buf.alias is not None:
                continue
            dtype = DTYPES.get(buf.dtype)
            if dtype is None:
                raise LirError(f"buffer %{name} has unknown dtype {buf.dtype!r}")
            if buf.is_const:
                data = np.asarray(buf.data)
                if data.size != buf.size:
                    raise LirError(f"constant %{name} holds {data.size} values, its shape "
                                   f"{list(buf.shape)} needs {buf.size}")
                self.values[name] = data.astype(dtype).reshape(buf.shape)
            else:
                self.values[name] = np.zeros(buf.shape, dtype=dtype)

    def buffer(self, name: str) -> Buffer:
        try:
            return self.program.buffers[name]
        except KeyError:
            raise LirError(f"unknown buffer %{name}") from None

    def view(self, name: str) -> np.ndarray:
        """The array of buffer `name` in its own shape (a view of its storage for an alias)."""
        buf = self.buffer(name)
        try:
            owner = self.program.storage_of(name)
        except KeyError as e:
            raise LirError(f"buffer %{name} is an alias of the unknown buffer %{e.args[0]}") \
                from None
        store = self.values[owner.name]
        if store.size != buf.size:
            raise LirError(f"alias %{name} {list(buf.shape)} has {buf.size} elements, its storage "
                           f"%{owner.name} has {store.size}")
        return store.reshape(buf.shape)

    def write(self, name: str, value: np.ndarray) -> None:
        """Store a step result into buffer `name` (through its storage)."""
        buf = self.buffer(name)
        if buf.is_const:
            raise LirError(f"a step writes the constant %{name}")
        target = self.view(name)
        if tuple(value.shape) != tuple(buf.shape):
            raise LirError(f"the result has shape {list(value.shape)} but %{name} is "
                           f"{list(buf.shape)}")
        target[...] = value.astype(target.dtype)


def _int_list(attrs: Attrs, key: str, n: int | None = None, default: list[int] | None = None
              ) -> list[int]:
    v = attrs.get(key, default)
    if v is None:
        raise LirError(f"missing attribute {key}")
    if not isinstance(v, list) or not all(isinstance(e, int) and not isinstance(e, bool)
                                          for e in v):
        raise LirError(f"attribute {key} must be a list of ints, got {v!r}")
    if n is not None and len(v) != n:
        raise LirError(f"attribute {key} needs {n} values, got {len(v)}")
    return v


def _int(attrs: Attrs, key: str, default: int | None = None) -> int:
    v = attrs.get(key, default)
    if v is None:
        raise LirError(f"missing attribute {key}")
    if not isinstance(v, int) or isinstance(v, bool):
        raise LirError(f"attribute {key} must be an int, got {v!r}")
    return v


def _act(attrs: Attrs) -> kernels.Act:
    try:
        return kernels.Act.from_attrs(attrs)
    except ValueError as e:
        raise LirError(str(e)) from None


def _arity(step: Step, n_in: int | None, n_out: int = 1) -> None:
    if n_in is not None and len(step.inputs) != n_in:
        raise LirError(f"takes {n_in} inputs, got {len(step.inputs)}")
    if len(step.outputs) != n_out:
        raise LirError(f"writes {n_out} output(s), got {len(step.outputs)}")


def _out_hw(st: _State, step: Step) -> tuple[int, int]:
    shape = st.buffer(step.outputs[0]).shape
    if len(shape) != 3:
        raise LirError(f"output %{step.outputs[0]} must be [C, H, W], got {list(shape)}")
    return shape[1], shape[2]


def _run_conv(st: _State, step: Step) -> np.ndarray:
    _arity(step, 3)
    x, w, b = (st.view(n) for n in step.inputs)
    a = step.attrs
    return kernels.conv(x, w, b, _int_list(a, "stride", 2), _int_list(a, "pads", 4),
                        _int_list(a, "dilation", 2, [1, 1]), _int(a, "group", 1),
                        _int_list(a, "shift", w.shape[0]), _act(a), _out_hw(st, step))


def _run_fc(st: _State, step: Step) -> np.ndarray:
    _arity(step, 3)
    x, w, b = (st.view(n) for n in step.inputs)
    return kernels.fc(x, w, b, _int_list(step.attrs, "shift", w.shape[0]), _act(step.attrs))


def _run_fc_sparse(st: _State, step: Step) -> np.ndarray:
    _arity(step, 5)
    x, values, deltas, rowptr, b = (st.view(n) for n in step.inputs)
    return kernels.fc_sparse(x, values, deltas, rowptr, b,
                             _int_list(step.attrs, "shift", b.shape[0]), _act(step.attrs))


def _run_conv_sparse(st: _State, step: Step) -> np.ndarray:
    _arity(step, 5)
    x, values, offsets, chanptr, b = (st.view(n) for n in step.inputs)
    a = step.attrs
    return kernels.conv_sparse(x, values, offsets, chanptr, b, _int_list(a, "kernel", 2),
                               _int_list(a, "stride", 2), _int_list(a, "pads", 4),
                               _int_list(a, "dilation", 2, [1, 1]), _int(a, "group", 1),
                               _int_list(a, "shift", b.shape[0]), _act(a), _out_hw(st, step))


def _run_maxpool(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    a = step.attrs
    return kernels.maxpool(st.view(step.inputs[0]), _int_list(a, "kernel", 2),
                           _int_list(a, "stride", 2), _int_list(a, "pads", 4),
                           _int_list(a, "dilation", 2, [1, 1]), _out_hw(st, step))


def _run_avgpool(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    a = step.attrs
    return kernels.avgpool(st.view(step.inputs[0]), _int_list(a, "kernel", 2),
                           _int_list(a, "stride", 2), _int_list(a, "pads", 4),
                           _int(a, "count_include_pad", 0), _int_list(a, "dilation", 2, [1, 1]),
                           _out_hw(st, step))


def _run_add(st: _State, step: Step) -> np.ndarray:
    _arity(step, 2)
    a = step.attrs
    x, y = (st.view(n) for n in step.inputs)
    return kernels.add(x, y, _int(a, "shift_a", 0), _int(a, "shift_b", 0), _int(a, "shift"),
                       _act(a))


def _run_mul(st: _State, step: Step) -> np.ndarray:
    _arity(step, 2)
    x, y = (st.view(n) for n in step.inputs)
    return kernels.mul(x, y, _int(step.attrs, "shift"), _act(step.attrs))


def _run_layernorm(st: _State, step: Step) -> np.ndarray:
    _arity(step, 3)
    x, g, b = (st.view(n) for n in step.inputs)
    a = step.attrs
    return kernels.layernorm(x, g, b, _int(a, "eps"), _int(a, "shift"), _act(a))


def _run_matmul(st: _State, step: Step) -> np.ndarray:
    _arity(step, 2)
    a, b = (st.view(n) for n in step.inputs)
    return kernels.matmul(a, b, _int(step.attrs, "shift"), _act(step.attrs))


def _run_softmax(st: _State, step: Step) -> np.ndarray:
    _arity(step, 2)
    x, t = (st.view(n) for n in step.inputs)
    return kernels.softmax(x, t, _int(step.attrs, "step"), _int(step.attrs, "out_shift"))


def _run_act(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    return kernels.activation(st.view(step.inputs[0]), _act(step.attrs))


def _run_lut(st: _State, step: Step) -> np.ndarray:
    _arity(step, 2)
    a = step.attrs
    x, table = (st.view(n) for n in step.inputs)
    return kernels.lut(x, table, _int(a, "step"), _int(a, "base"), _int(a, "mirror"), _int(a, "center"),
                       _int(a, "gate"), _int(a, "shift"))


def _run_concat(st: _State, step: Step) -> np.ndarray:
    _arity(step, None)
    xs = [st.view(n) for n in step.inputs]
    return kernels.concat(xs, _int_list(step.attrs, "shifts", len(xs)))


def _run_slice(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    return kernels.slice_(st.view(step.inputs[0]), _int(step.attrs, "offset"), _int(step.attrs, "size"))


def _run_transpose(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    return kernels.transpose(st.view(step.inputs[0]), _int_list(step.attrs, "perm", 3))


def _run_upsample(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    zeros = step.attrs["zeros"]
    assert isinstance(zeros, int)
    return kernels.upsample(st.view(step.inputs[0]), _int_list(step.attrs, "scale", 2), zeros)


def _run_embed(st: _State, step: Step) -> np.ndarray:
    _arity(step, 2)
    out = kernels.embed(st.view(step.inputs[0]), st.view(step.inputs[1]))
    return out.reshape(st.buffer(step.outputs[0]).shape)


def _run_argmax(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    return kernels.argmax(st.view(step.inputs[0]))


def _run_trees(st: _State, step: Step) -> np.ndarray:
    _arity(step, 5)
    x, feature, threshold, children, roots = (st.view(n) for n in step.inputs)
    return kernels.trees(x, feature, threshold, children, roots)


def _run_tree_sum(st: _State, step: Step) -> np.ndarray:
    _arity(step, 4)
    leaves, values, first, b = (st.view(n) for n in step.inputs)
    return kernels.tree_sum(leaves, values, first, b, _int(step.attrs, "shift"))


def _run_gnet_feature(st: _State, step: Step) -> np.ndarray:
    _arity(step, 1)
    a = step.attrs
    result = kernels.gnet_feature(st.view(step.outputs[0]), st.view(step.inputs[0]), _int(a, "offset"),
                                  _int(a, "shift"))
    st.exits_present = _int(a, "exit")
    return result


def _run_gnet_exit(st: _State, step: Step) -> np.ndarray:
    return _run_fc(st, step)


OPS: dict[str, Callable[[_State, Step], np.ndarray]] = {
    "conv": _run_conv,
    "fc": _run_fc,
    "fc_sparse": _run_fc_sparse,
    "conv_sparse": _run_conv_sparse,
    "maxpool": _run_maxpool,
    "avgpool": _run_avgpool,
    "add": _run_add,
    "mul": _run_mul,
    "layernorm": _run_layernorm,
    "matmul": _run_matmul,
    "softmax": _run_softmax,
    "act": _run_act,
    "lut": _run_lut,
    "concat": _run_concat,
    "argmax": _run_argmax,
    "transpose": _run_transpose,
    "slice": _run_slice,
    "embed": _run_embed,
    "upsample": _run_upsample,
    "trees": _run_trees,
    "tree_sum": _run_tree_sum,
    "gnet_feature": _run_gnet_feature,
    "gnet_exit": _run_gnet_exit,
}
"""The ops the interpreter knows, by LIR op name."""


def _load_input(st: _State, name: str, buffer: str, value: np.ndarray) -> None:
    buf = st.buffer(buffer)
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.integer):
        raise LirError(f"input {name!r} must be an integer array already in its Q format "
                       f"(q={buf.q}), got dtype {arr.dtype}",
                       hint="quantize it first: round(v * 2**q), saturated to int16")
    shape = tuple(buf.shape)
    if arr.shape != shape:
        # Accept a leading batch axis of 1 ([1, C, H, W] for [C, H, W]).
        if arr.shape[:1] == (1,) and arr.shape[1:] == shape:
            arr = arr.reshape(shape)
        else:
            raise LirError(f"input {name!r} has shape {list(arr.shape)}, buffer %{buffer} "
                           f"expects {list(shape)}")
    info = np.iinfo(DTYPES[buf.dtype])
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise LirError(f"input {name!r} holds values outside {buf.dtype}")
    st.write(buffer, arr)


def _start(p: Program, inputs: dict[str, np.ndarray]) -> _State:
    """A fresh state with the program inputs loaded (every other buffer zero)."""
    st = _State(p)
    expected = {port.onnx_name for port in p.inputs}
    extra = sorted(set(inputs) - expected)
    if extra:
        raise LirError(f"unknown program input(s) {extra}; the program takes {sorted(expected)}")
    for port in p.inputs:
        if port.onnx_name not in inputs:
            raise LirError(f"program input {port.onnx_name!r} was not given")
        _load_input(st, port.onnx_name, port.buffer, inputs[port.onnx_name])
    return st


def _run_step(st: _State, i: int, step: Step) -> None:
    where = Location(node=step.name, op=step.op)
    run = OPS.get(step.op)
    if run is None:
        raise LirError(f"step {i} {step.name!r}: the interpreter does not know op "
                       f"{step.op!r}", location=where,
                       hint=f"known ops: {', '.join(sorted(OPS))}")
    try:
        result = run(st, step)
        st.write(step.outputs[0], result)
    except LirError as e:
        raise LirError(f"step {i} {step.name!r} ({step.op}): {e.message}", location=where,
                       hint=e.hint) from None
    except ValueError as e:
        raise LirError(f"step {i} {step.name!r} ({step.op}): {e}", location=where) from None


def _outputs(p: Program, st: _State, trace: bool) -> dict[str, np.ndarray]:
    out = {port.onnx_name: st.view(port.buffer).copy() for port in p.outputs}
    if trace:
        for name in p.buffers:
            out["%" + name] = st.view(name).copy()
    return out


def run_program(p: Program, inputs: dict[str, np.ndarray], trace: bool = False
                ) -> dict[str, np.ndarray]:
    """Execute the steps of `p` in order and return its outputs.

    inputs: int16 arrays keyed by the ONNX names of the program inputs, already in the Q formats
    of their buffers (a leading batch axis of 1 is accepted). Returns copies of the outputs keyed
    by their ONNX names; with trace=True also every buffer, keyed by "%" + buffer name.
    On-demand steps (the gNet head, ``ON_DEMAND_OPS``) are not run: see :func:`run_exits`.
    Raises LirError for a missing or extra input, an unknown op or malformed attributes (the
    error names the step).
    """
    st = _start(p, inputs)
    for i, step in enumerate(p.steps):
        if step.op not in ON_DEMAND_OPS:
            _run_step(st, i, step)
    return _outputs(p, st, trace)


@dataclass(frozen=True)
class ExitAnswer:
    """What the gNet head answers at one moment: the exit index (exits whose features were there),
    the head's int16 scores (in the head's Q format) and the class (first maximum)."""

    exit: int
    scores: np.ndarray
    cls: int


def _answer(p: Program, st: _State) -> ExitAnswer:
    """Run every on-demand step on the current state (the gNet head) and read its answer."""
    head = [(i, s) for i, s in enumerate(p.steps) if s.op in ON_DEMAND_OPS]
    if not head:
        raise LirError("the program has no on-demand gNet head (gnet_exit step)",
                       hint="attach a gNet (attach-gnet) before lowering")
    for i, step in head:
        _run_step(st, i, step)
    scores = st.view(head[-1][1].outputs[0]).copy()
    return ExitAnswer(st.exits_present, scores, int(kernels.argmax(scores)[0]))


def run_exits(p: Program, inputs: dict[str, np.ndarray], trace: bool = False
              ) -> tuple[dict[str, np.ndarray], list[ExitAnswer]]:
    """Run the program like :func:`run_program`, asking the gNet head after every `gnet_feature`
    step: returns the outputs and one :class:`ExitAnswer` per exit (exit 1, 2, ..., K in order).

    This is what the generated C's ``fx_<m>_exit()`` returns when called after exit k's step; the
    head's buffers are live for the whole program, so asking does not disturb the inference.
    """
    st = _start(p, inputs)
    answers: list[ExitAnswer] = []
    for i, step in enumerate(p.steps):
        if step.op in ON_DEMAND_OPS:
            continue
        _run_step(st, i, step)
        if step.op == "gnet_feature":
            answers.append(_answer(p, st))
    return _outputs(p, st, trace), answers


def run_until(p: Program, inputs: dict[str, np.ndarray], stop: int) -> ExitAnswer:
    """The head's answer when the run stops before in-sequence step index ``stop`` (what the
    generated C returns when its exit policy stops there)."""
    st = _start(p, inputs)
    for i, step in enumerate(p.steps[:stop]):
        if step.op not in ON_DEMAND_OPS:
            _run_step(st, i, step)
    return _answer(p, st)

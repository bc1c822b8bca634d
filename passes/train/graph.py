"""A trainable network built from a normalized :class:`~transpiler.model.OnnxModel`.

:func:`build_net` turns the graph (docs/normal-form.md) into a :class:`Net`: the nodes in topological
order, each an :class:`~passes.train.ops.Op` over named tensors, plus a parameter table (the float
initializers of Conv ``W``/``B`` and Gemm ``B``/``C``; with ``train_affine`` also the constant
operands of Mul/Add) held as copies, keyed by initializer name. The ONNX graph has batch 1; the
network treats axis 0 as the batch, so every method takes ``[N, *per-sample shape]`` arrays.

Typical use (what `sparsify` and `attach-gnet` do)::

    net = build_net(model)
    out = net.forward({"input": x})                       # graph outputs, caches kept for backward
    grads = net.backward({net.logits: dloss_dlogits})      # grads.params[name], grads.tensors[name]
    ...update net.params() in place or with set_params()...
    net.write_back(model)                                  # trained values into the gs.Constants

``forward(inputs, outputs=[...])`` returns any tensors (graph inputs, intermediates, outputs) and runs
only the layers they need. ``backward`` takes gradients at any tensors of the last kept forward (the
logits, or features where a gNet head reads them), accumulates them through the graph and returns
the gradients of every trainable parameter (zeros where no gradient reached it) and of the tensors
named in ``wrt``; layers whose inputs need no gradient are skipped, so a frozen backbone costs nothing.
A sub-network (``build_net(model, inputs=[feature tensors], outputs=[...])``) cuts the graph there:
the named tensors become inputs and only the nodes between them and the outputs are kept.

``logits`` is the tensor losses work on: the input of a final Softmax (or LogSoftmax, Sigmoid) when
the first output is one (the engine then trains on the logits the device returns), else the first
output.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs
from numpy.typing import DTypeLike

from transpiler.errors import DataError, Location, UnsupportedError
from transpiler.model import OnnxModel

from passes.normalize_util import FIXED_WEIGHTS, const_value, is_const, is_empty, opset_of, shape_text, static_shape
from passes.train import ops
from passes.train.errors import TrainError
from passes.train.nodes import Arg, NodeRejected, node_op


@dataclass(frozen=True)
class Layer:
    """One node of the network: the op, the tensor names it reads (in ONNX order) and writes."""

    name: str
    op_type: str
    op: ops.Op
    inputs: tuple[str, ...]
    output: str


@dataclass
class Gradients:
    """What :meth:`Net.backward` returns: gradients by parameter name and by tensor name."""

    params: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Tape:
    """What the last kept forward left for backward: the layers it ran, their caches, tensor shapes."""

    layers: list[Layer]
    caches: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]


class Net:
    """A network over named tensors; see the module docstring. Build it with :func:`build_net`."""

    def __init__(self, layers: Sequence[Layer], inputs: Mapping[str, tuple[int, ...]], outputs: Sequence[str],
                 params: Mapping[str, np.ndarray], constants: Mapping[str, np.ndarray], logits: str,
                 shapes: Mapping[str, tuple[int, ...] | None], dtype: DTypeLike, source: str | None = None) -> None:
        self._layers = tuple(layers)
        self._inputs = dict(inputs)
        self._outputs = list(outputs)
        self._params = dict(params)
        self._constants = dict(constants)
        self._shapes = dict(shapes)
        self._producer = {layer.output: i for i, layer in enumerate(self._layers)}
        self.logits = logits
        self.dtype = np.dtype(dtype)
        self.source = source
        self._plans: dict[tuple[str, ...], list[Layer]] = {}
        self._tape: _Tape | None = None

    # ------------------------------------------------------------------ structure
    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers in topological order."""
        return self._layers

    @property
    def inputs(self) -> dict[str, tuple[int, ...]]:
        """Input tensor names -> per-sample shapes (the ONNX shape without the batch axis)."""
        return dict(self._inputs)

    @property
    def outputs(self) -> list[str]:
        """The output tensor names (the graph outputs unless the network was cut)."""
        return list(self._outputs)

    @property
    def tensors(self) -> list[str]:
        """Every activation tensor: the inputs, then each layer's output in topological order."""
        return [*self._inputs, *(layer.output for layer in self._layers)]

    @property
    def param_names(self) -> list[str]:
        """The trainable parameter names, in the order the layers first read them."""
        return list(self._params)

    def shape(self, name: str) -> tuple[int, ...] | None:
        """The per-sample shape of a tensor (None if the ONNX graph did not record it)."""
        if name not in self._shapes:
            raise TrainError(f"no tensor '{name}' in the network", hint=f"tensors: {', '.join(self.tensors[:12])}")
        return self._shapes[name]

    # ------------------------------------------------------------------ parameters
    def params(self, copy: bool = False) -> dict[str, np.ndarray]:
        """Parameter name -> value. Without ``copy`` these are the live arrays the network computes
        with (update them in place); with ``copy`` a snapshot to restore later with set_params."""
        if copy:
            return {name: value.copy() for name, value in self._params.items()}
        return dict(self._params)

    def set_params(self, values: Mapping[str, np.ndarray]) -> None:
        """Copy ``values`` into the named parameters (same shapes; names must exist)."""
        unknown = [name for name in values if name not in self._params]
        if unknown:
            raise TrainError(f"no parameter named {', '.join(repr(n) for n in unknown)}",
                             hint=f"parameters: {', '.join(self.param_names[:12])}")
        for name, value in values.items():
            target = self._params[name]
            value = np.asarray(value)
            if value.shape != target.shape:
                raise TrainError(f"parameter '{name}' has shape {list(target.shape)}, got {list(value.shape)}")
            np.copyto(target, value, casting="unsafe")

    def write_back(self, model: OnnxModel) -> list[str]:
        """Store every parameter into ``model``'s initializer of that name (new arrays of the
        initializer's dtype, so copies of the model that share values are not touched).
        Returns the names written."""
        tensors = model.graph.tensors()
        missing = [name for name in self._params if not isinstance(tensors.get(name), gs.Constant)]
        if missing:
            raise TrainError(f"the model has no initializer {', '.join(repr(n) for n in missing)}",
                             location=Location(file=model.source),
                             hint="write back into the model the network was built from (or a copy of it)")
        for name, value in self._params.items():
            constant = tensors[name]
            assert isinstance(constant, gs.Constant)
            old = np.asarray(constant.values)
            if old.shape != value.shape:
                raise TrainError(f"initializer '{name}' has shape {list(old.shape)}, the network's {list(value.shape)}",
                                 location=Location(file=model.source))
            constant.values = np.ascontiguousarray(value.astype(old.dtype))
        return list(self._params)

    # ------------------------------------------------------------------ forward
    def _plan(self, wanted: tuple[str, ...]) -> list[Layer]:
        """The layers needed for the ``wanted`` tensors, in topological order."""
        plan = self._plans.get(wanted)
        if plan is not None:
            return plan
        needed: set[int] = set()
        stack = [self._producer[name] for name in wanted if name in self._producer]
        while stack:
            index = stack.pop()
            if index in needed:
                continue
            needed.add(index)
            stack.extend(self._producer[name] for name in self._layers[index].inputs if name in self._producer)
        plan = [self._layers[i] for i in sorted(needed)]
        self._plans[wanted] = plan
        return plan

    def _feeds(self, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        missing = [name for name in self._inputs if name not in inputs]
        unknown = [name for name in inputs if name not in self._inputs]
        if missing or unknown:
            raise DataError(f"the inputs do not match the network's inputs (missing: {', '.join(missing) or 'none'}; "
                            f"unknown: {', '.join(unknown) or 'none'})",
                            hint=f"the network's inputs are {', '.join(self._inputs)}")
        env: dict[str, np.ndarray] = {}
        batch: int | None = None
        for name, spec in self._inputs.items():
            value = np.asarray(inputs[name])
            if value.ndim < 1 or tuple(value.shape[1:]) != spec:
                raise DataError(f"input '{name}' has shape {list(value.shape)}, expected [N, "
                                f"{', '.join(map(str, spec))}]", hint="axis 0 is the batch; the rest is one sample")
            if batch is not None and value.shape[0] != batch:
                raise DataError(f"input '{name}' has {value.shape[0]} samples, another input {batch}")
            batch = int(value.shape[0])
            env[name] = value if value.dtype == self.dtype else value.astype(self.dtype)
        return env, int(batch or 0)

    def forward(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None, *,
                keep: bool = True) -> dict[str, np.ndarray]:
        """Run the network on a batch; returns the ``outputs`` tensors (default: the network outputs).

        With ``keep`` the caches backward needs are stored (replacing the previous ones); without,
        nothing is stored and the previous caches stay.
        """
        wanted = tuple(outputs) if outputs is not None else tuple(self._outputs)
        unknown = [name for name in wanted if name not in self._shapes]
        if unknown:
            raise TrainError(f"no tensor named {', '.join(repr(n) for n in unknown)} in the network",
                             hint=f"tensors: {', '.join(self.tensors[:16])}")
        env, _ = self._feeds(inputs)
        plan = self._plan(wanted)
        caches: dict[str, Any] = {}
        values = {**self._constants, **self._params}
        for layer in plan:
            args = [env[name] if name in env else values[name] for name in layer.inputs]
            env[layer.output], cache = layer.op.forward(args, keep)
            if keep:
                caches[layer.name] = cache
        if keep:
            self._tape = _Tape(plan, caches, {name: value.shape for name, value in env.items()})
        return {name: env[name] for name in wanted}

    # ------------------------------------------------------------------ backward
    def backward(self, grads: Mapping[str, np.ndarray], *, frozen: Collection[str] = (),
                 wrt: Sequence[str] = ()) -> Gradients:
        """Gradients of a loss given its gradients at some tensors of the last kept forward.

        ``grads``: tensor name -> dL/dtensor (same shape as the forward value). Returns the gradients
        of every parameter not in ``frozen`` and of the tensors in ``wrt`` (zeros where none flows).
        """
        tape = self._tape
        if tape is None:
            raise TrainError("backward before a forward with keep=True",
                             hint="call net.forward(inputs, keep=True) on the batch first")
        bad = [name for name in frozen if name not in self._params]
        if bad:
            raise TrainError(f"frozen names that are not parameters: {', '.join(repr(n) for n in bad)}",
                             hint=f"parameters: {', '.join(self.param_names[:12])}")
        for name in [*grads, *wrt]:
            if name not in tape.shapes:
                raise TrainError(f"tensor '{name}' was not computed by the last forward",
                                 hint="ask forward(..., outputs=[...]) for it (or for a tensor after it)")
        acc: dict[str, np.ndarray] = {}
        for name, value in grads.items():
            value = np.asarray(value, dtype=self.dtype)
            if value.shape != tape.shapes[name]:
                raise TrainError(f"gradient for '{name}' has shape {list(value.shape)}, the tensor "
                                 f"{list(tape.shapes[name])}")
            acc[name] = acc[name] + value if name in acc else value
        trainable = [name for name in self._params if name not in set(frozen)]
        needs = set(trainable) | set(wrt)
        for layer in tape.layers:
            if any(name in needs for name in layer.inputs):
                needs.add(layer.output)
        keep = set(wrt)
        for layer in reversed(tape.layers):
            dy = acc.get(layer.output)
            need = [name in needs for name in layer.inputs]
            if dy is None or not any(need):
                continue
            if layer.output not in keep:
                del acc[layer.output]
            parts = layer.op.backward(dy, tape.caches[layer.name], need)
            for name, part, wanted in zip(layer.inputs, parts, need):
                if wanted and part is not None:
                    acc[name] = acc[name] + part if name in acc else part
        params = {name: acc.get(name, np.zeros_like(self._params[name])) for name in trainable}
        tensors = {name: acc.get(name, np.zeros(tape.shapes[name], dtype=self.dtype)) for name in wrt}
        return Gradients(params, tensors)


# --------------------------------------------------------------------------- building
def _toposort(nodes: Sequence[gs.Node]) -> list[gs.Node]:
    """Kahn's algorithm, ties broken by the graph's node order (the model is not modified)."""
    produced = {id(t): i for i, node in enumerate(nodes) for t in node.outputs}
    deps = [{produced[id(t)] for t in node.inputs if id(t) in produced} - {i} for i, node in enumerate(nodes)]
    users: list[list[int]] = [[] for _ in nodes]
    for i, found in enumerate(deps):
        for j in found:
            users[j].append(i)
    remaining = [len(d) for d in deps]
    ready = sorted(i for i, count in enumerate(remaining) if count == 0)
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in users[i]:
            remaining[j] -= 1
            if remaining[j] == 0:
                ready.append(j)
                ready.sort()
    if len(order) != len(nodes):
        raise UnsupportedError("the graph has a cycle", hint="a model must be a directed acyclic graph")
    return [nodes[i] for i in order]


def _per_sample(tensor: gs.Tensor) -> tuple[int, ...] | None:
    shape = static_shape(tensor)
    return None if shape is None or not shape else tuple(shape[1:])


def build_net(model: OnnxModel, *, inputs: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
              logits: str | None = None, train_affine: bool = False, dtype: DTypeLike = np.float32) -> Net:
    """A :class:`Net` over ``model`` (normal form; see the module docstring).

    ``inputs``/``outputs`` cut a sub-network (default: the graph's inputs and outputs); ``logits``
    overrides the tensor losses work on; ``train_affine`` also trains Mul/Add constants; ``dtype``
    is the compute type (float32; float64 for gradient checks). Every unsupported node is listed in
    one :class:`~transpiler.errors.UnsupportedError`.
    """
    graph = model.graph
    tensors = graph.tensors()
    where = Location(file=model.source)
    input_names = list(inputs) if inputs is not None else [t.name for t in graph.inputs if not is_const(t)]
    output_names = list(outputs) if outputs is not None else [t.name for t in graph.outputs]
    for name in [*input_names, *output_names, *([logits] if logits is not None else [])]:
        if not isinstance(tensors.get(name), gs.Variable):
            raise TrainError(f"no activation tensor named '{name}' in the model", location=where,
                             hint="name a graph input, output or a node's output")
    if not output_names:
        raise TrainError("the network has no outputs", location=where)
    nodes = _needed_nodes(_toposort(list(graph.nodes)), [tensors[n] for n in output_names], set(input_names), where)
    layers: list[Layer] = []
    params: dict[str, np.ndarray] = {}
    constants: dict[str, np.ndarray] = {}
    problems: list[str] = []
    opset = opset_of(model)
    fixed = {node.inputs[1].name for node in nodes
             if len(node.inputs) > 1 and model.annotations.get(node.inputs[1].name, FIXED_WEIGHTS)}
    for node in nodes:
        try:
            built = node_op(node, opset, train_affine)
        except NodeRejected as exc:
            problems.append(f"'{node.name}' ({node.op}): {exc.reason}; {exc.hint}")
            continue
        problems.extend(_store_constants(node, built.args, params, constants, np.dtype(dtype), fixed))
        layers.append(Layer(node.name, node.op, built.op, tuple(a.tensor.name for a in built.args),
                            node.outputs[0].name))
    if problems:
        raise UnsupportedError(f"{len(problems)} node(s) cannot be trained", location=where, details=problems,
                               hint="the training engine runs the normal form (docs/normal-form.md); "
                                    "run `normalize` first")
    shapes = {name: _per_sample(t) for name, t in tensors.items() if isinstance(t, gs.Variable)}
    specs = {name: _input_spec(tensors[name], where) for name in input_names}
    if logits is None:
        logits = _default_logits(tensors[output_names[0]], set(input_names))
    return Net(layers, specs, output_names, params, constants, logits, shapes, np.dtype(dtype), model.source)


def _needed_nodes(nodes: list[gs.Node], outputs: list[gs.Tensor], cut: set[str], where: Location) -> list[gs.Node]:
    """The nodes (in the order of ``nodes``) that compute ``outputs`` from the ``cut`` tensors and constants."""
    producer = {id(t): node for node in nodes for t in node.outputs}
    needed: set[int] = set()
    stack = [t for t in outputs if t.name not in cut]
    dangling: set[str] = set()
    while stack:
        tensor = stack.pop()
        node = producer.get(id(tensor))
        if node is None:
            if not is_const(tensor) and not is_empty(tensor) and tensor.name not in cut:
                dangling.add(tensor.name)
            continue
        if id(node) not in needed:
            needed.add(id(node))
            stack.extend(t for t in node.inputs if t.name not in cut)
    if dangling:
        raise TrainError(f"the outputs depend on tensor(s) {', '.join(sorted(dangling))} that are not inputs",
                         location=where, hint="add them to `inputs` or cut the network later")
    return [node for node in nodes if id(node) in needed]


def _store_constants(node: gs.Node, args: Sequence[Arg], params: dict[str, np.ndarray],
                     constants: dict[str, np.ndarray], dtype: np.dtype, fixed: set[str]) -> list[str]:
    """Copy the node's constant arguments into the parameter or constant table (a ``fixed-weights``
    one stays constant); returns problems."""
    problems = []
    for arg in args:
        value = const_value(arg.tensor)
        if value is None:
            continue
        if value.dtype.kind != "f":
            problems.append(f"'{node.name}' ({node.op}): constant '{arg.tensor.name}' is {value.dtype}, not float")
            continue
        name = arg.tensor.name
        if (arg.trainable and name not in fixed) or name in params:  # trained anywhere: a parameter everywhere
            constants.pop(name, None)
            params[name] = np.array(value, dtype=dtype, copy=True)
        else:
            constants[name] = np.array(value, dtype=dtype, copy=True)
    return problems


def _input_spec(tensor: gs.Tensor, where: Location) -> tuple[int, ...]:
    """The per-sample shape of a network input, which must be a static ``[1, ...]``."""
    full = static_shape(tensor)
    if full is None or len(full) < 2 or full[0] != 1:
        raise UnsupportedError(f"input '{tensor.name}' has shape {shape_text(tensor)}; the engine needs a "
                               f"static [1, ...] shape", location=where,
                               hint="run `normalize` first (it fixes the batch to 1)")
    return tuple(full[1:])


def _default_logits(output: gs.Tensor, cut: set[str]) -> str:
    """The input of a final Softmax / LogSoftmax / Sigmoid that makes ``output`` (what lower keeps),
    else ``output`` itself."""
    node = output.inputs[0] if output.inputs else None
    if node is not None and node.op in ("Softmax", "LogSoftmax", "Sigmoid") and output.name not in cut:
        return str(node.inputs[0].name)
    return str(output.name)

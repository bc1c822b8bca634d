"""Element-wise regions: sub-graphs that compute one scalar function of one activation.

An activation such as SiLU, GELU or HardSwish reaches us as one node (``Sigmoid``, ``Tanh``,
``HardSwish``, ``Gelu`` ...) or as several (torch's ``x * sigmoid(x)`` is ``Sigmoid`` + ``Mul``;
its legacy GELU is ``Mul(x, 1/sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5``; the tanh
approximation has nine nodes; dynamo's Softplus selects with ``Where(x * beta > threshold, ...)``).
Whatever the arrangement, every node applies the same function to every element of one tensor ``x``, so the whole sub-graph is ``y = g(x)`` for a scalar ``g`` that
:meth:`Region.function` evaluates in float64 from the nodes themselves. `lower` turns each region
into one ``lut`` step (backends/lower_lut.py), check-supported accepts the nodes of a region, and
the byte models count its table.

:func:`find_regions` groups the element-wise nodes of a graph by the tensor they are a function of
(the *base*): a node is element-wise when its op is in :data:`UNARY` or :data:`BINARY`, its
constant inputs hold one value (any shape that does not enlarge the activation), and its output has
the shape of its activation inputs, all of which derive from the same base (a comparison's boolean
output is such a tensor too, for the ``Where`` that reads it; it never ends a region). A group
becomes a region for each of its tensors read outside the group (or a graph output), made of the group's
nodes that tensor depends on, when those nodes include one :data:`TABLE_OPS` op, a ``Pow`` (also of a
constant exponent: an SVC's polynomial kernel), a quotient with an activation as the divisor
(``c / x``), or a product (quotient, power, difference: :data:`TABLE_BINARY`) of two activations: a group of only ``Relu``/``Clip``/``LeakyRelu`` and constant ``Add``/``Mul`` is
left to the ordinary lowering, and so are a lone square ``Mul(x, x)`` (the exact ``mul`` step) and a
lone final ``Sigmoid`` (dropped, docs/normal-form.md).
Functions defined on part of the line only (``Log``, ``Sqrt``, ``Reciprocal``, ``c / x``) are
tabulated over the calibrated range of their input (backends/lower_lut.py, ``domain_clamp``).

Before -> after (what `lower` makes of a region; the ONNX graph itself is not changed)::

    h -> Sigmoid -> s;  Mul(h, s) -> y        region(base=h, output=y, nodes=[Sigmoid, Mul]): y = h * sigmoid(h)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from passes.normalize_util import const_value, is_empty, static_shape

Fn = Callable[[np.ndarray], np.ndarray]
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _attr(node: gs.Node, name: str, default: float) -> float:
    return float(node.attrs.get(name, default))


def _gelu(node: gs.Node, x: np.ndarray) -> np.ndarray:
    approx = node.attrs.get("approximate", "none")
    approx = approx.decode() if isinstance(approx, bytes) else str(approx)
    if approx == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _clip(node: gs.Node, x: np.ndarray) -> np.ndarray:
    lo, hi = -np.inf, np.inf
    for i, name in ((1, "min"), (2, "max")):
        value = None
        if name in node.attrs:
            value = float(node.attrs[name])
        elif len(node.inputs) > i and not is_empty(node.inputs[i]):
            v = const_value(node.inputs[i])
            value = None if v is None else float(v.reshape(-1)[0])
        if value is not None:
            lo, hi = (value, hi) if i == 1 else (lo, value)
    return np.minimum(np.maximum(x, lo), hi)


UNARY: dict[str, Callable[[gs.Node, np.ndarray], np.ndarray]] = {
    "Sigmoid": lambda n, x: _sigmoid(x),
    "Tanh": lambda n, x: np.tanh(x),
    "HardSigmoid": lambda n, x: np.clip(_attr(n, "alpha", 0.2) * x + _attr(n, "beta", 0.5), 0.0, 1.0),
    "HardSwish": lambda n, x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "Gelu": _gelu,
    "Erf": lambda n, x: _erf(x),
    "Elu": lambda n, x: np.where(x > 0, x, _attr(n, "alpha", 1.0) * np.expm1(np.minimum(x, 0.0))),
    "Celu": lambda n, x: np.maximum(x, 0.0) + np.minimum(
        0.0, _attr(n, "alpha", 1.0) * np.expm1(np.minimum(x, 0.0) / _attr(n, "alpha", 1.0))),
    "Selu": lambda n, x: _attr(n, "gamma", 1.0507009873554805) * np.where(
        x > 0, x, _attr(n, "alpha", 1.6732632423543772) * np.expm1(np.minimum(x, 0.0))),
    "Softplus": lambda n, x: np.logaddexp(0.0, x),
    "Softsign": lambda n, x: x / (1.0 + np.abs(x)),
    "Mish": lambda n, x: x * np.tanh(np.logaddexp(0.0, x)),
    "Exp": lambda n, x: np.exp(np.minimum(x, 700.0)),
    "Log": lambda n, x: np.log(x),
    "Sqrt": lambda n, x: np.sqrt(x),
    "Reciprocal": lambda n, x: 1.0 / x,
    "Neg": lambda n, x: -x,
    "Abs": lambda n, x: np.abs(x),
    "Relu": lambda n, x: np.maximum(x, 0.0),
    "LeakyRelu": lambda n, x: np.where(x >= 0, x, _attr(n, "alpha", 0.01) * x),
    "Clip": _clip,
}
"""Element-wise ops of one activation input (their other inputs, Clip's bounds, are constants)."""

BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
    "Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal,
}
"""Element-wise ops of two operands: two activations of the region, or one and a constant number."""

SELECT = "Where"
"""``Where(cond, a, b)`` with every operand in the region or a constant number: dynamo writes
``Softplus(beta, threshold)`` as ``Where(x * beta > threshold, x, Softplus(x * beta) / beta)``."""

TABLE_OPS = frozenset(UNARY) - {"Relu", "Clip", "LeakyRelu", "Neg"} | {SELECT}
"""Ops that only a table computes: a group with one of them is a region."""
TABLE_BINARY = frozenset({"Sub", "Mul", "Div", "Pow"})
"""Binary ops that only a table computes when both operands are activations (Add is an ``add``)."""


@dataclass(frozen=True)
class Region:
    """``output = g(base)`` element-wise, computed by ``nodes`` (in graph order)."""

    base: gs.Variable
    output: gs.Variable
    nodes: tuple[gs.Node, ...]

    def function(self) -> Fn:
        """``g`` as a float64 numpy function (the nodes evaluated on an array of base values)."""
        nodes, base, output = self.nodes, self.base.name, self.output.name

        def g(x: np.ndarray) -> np.ndarray:
            values: dict[str, np.ndarray] = {base: np.asarray(x, dtype=np.float64)}
            with np.errstate(all="ignore"):
                for node in nodes:
                    args = [values[t.name] if t.name in values else _scalar(t) for t in node.inputs
                            if not is_empty(t)]
                    if node.op == SELECT:
                        values[node.outputs[0].name] = np.where(np.asarray(args[0], dtype=bool), args[1], args[2])
                    elif node.op in BINARY:
                        values[node.outputs[0].name] = BINARY[node.op](args[0], args[1])
                    else:
                        values[node.outputs[0].name] = UNARY[node.op](node, args[0])
            return values[output]

        return g

    @property
    def key(self) -> str:
        """A text that identifies ``g`` (the ops, attributes and constants in order)."""
        parts = []
        names = {self.base.name: "x"}
        for i, node in enumerate(self.nodes):
            args = [names[t.name] if t.name in names else repr(float(_scalar(t))) for t in node.inputs
                    if not is_empty(t) and (t.name in names or const_value(t) is not None)]
            attrs = ",".join(f"{k}={v!r}" for k, v in sorted(node.attrs.items()))
            parts.append(f"{node.op}({','.join(args)}{';' + attrs if attrs else ''})")
            names[node.outputs[0].name] = f"t{i}"
        return " ".join(parts)


def _scalar(t: gs.Tensor) -> np.ndarray:
    v = const_value(t)
    assert v is not None and v.size >= 1
    return np.asarray(v.reshape(-1)[0], dtype=np.float64)


def _uniform_constant(t: gs.Tensor, shape: tuple[int, ...]) -> bool:
    v = const_value(t)
    if v is None or v.size == 0 or not np.issubdtype(v.dtype, np.floating) or v.ndim > len(shape):
        return False
    aligned = (1,) * (len(shape) - v.ndim) + v.shape
    if any(a not in (1, s) for a, s in zip(aligned, shape)):
        return False
    flat = v.reshape(-1)
    return bool(np.all(flat == flat[0]))


def _elementwise_inputs(node: gs.Node) -> list[gs.Variable] | None:
    """The activation inputs of an element-wise node (see the module docstring), or None."""
    if (node.domain or "") not in ("", "ai.onnx") or len(node.outputs) != 1:
        return None
    shape = static_shape(node.outputs[0])
    if shape is None:
        return None
    inputs = [t for t in node.inputs if not is_empty(t)]
    if node.op in UNARY:
        acts, consts = inputs[:1], inputs[1:]
    elif (node.op in BINARY and len(inputs) == 2) or (node.op == SELECT and len(inputs) == 3):
        acts = [t for t in inputs if const_value(t) is None]
        consts = [t for t in inputs if const_value(t) is not None]
    else:
        return None
    if not acts or any(not isinstance(t, gs.Variable) or static_shape(t) != shape for t in acts):
        return None
    if node.op == "Pow" and (len(consts) != 1 or consts[0] is not inputs[1]):
        return None
    if not all(_uniform_constant(t, shape) for t in consts):
        return None
    return acts


def find_regions(graph: gs.Graph) -> list[Region]:
    """The element-wise regions of ``graph`` (module docstring), in graph order of their outputs."""
    base_of: dict[str, gs.Variable] = {}        # tensor -> the base it is a function of
    group: dict[str, list[gs.Node]] = {}        # base name -> its element-wise nodes, in order
    for node in _toposorted(graph):
        acts = _elementwise_inputs(node)
        if acts is None:
            continue
        bases = {base_of.get(t.name, t).name: base_of.get(t.name, t) for t in acts}
        if len(bases) != 1:
            continue
        base = next(iter(bases.values()))
        base_of[node.outputs[0].name] = base
        group.setdefault(base.name, []).append(node)
    outputs = {t.name for t in graph.outputs}
    regions: list[Region] = []
    for base_name, nodes in group.items():
        inside = {id(n) for n in nodes}
        for node in nodes:
            y = node.outputs[0]
            external = y.name in outputs or any(id(c) not in inside for c in y.outputs)
            if not external:
                continue
            needed = _ancestors(node, nodes)
            if y.dtype == np.bool_ or not _needs_table(needed):    # a condition is not a number
                continue
            if len(needed) == 1 and needed[0].op == "Sigmoid" and y.name in outputs and not y.outputs:
                continue                                 # a final Sigmoid: lower drops it
            regions.append(Region(base_of[y.name], y, tuple(needed)))
    return regions


def _toposorted(graph: gs.Graph) -> list[gs.Node]:
    produced = {t.name: n for n in graph.nodes for t in n.outputs}
    order: list[gs.Node] = []
    seen: set[int] = set()

    def visit(node: gs.Node) -> None:
        stack = [(node, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            if id(n) in seen:
                continue
            seen.add(id(n))
            stack.append((n, True))
            for t in n.inputs:
                p = produced.get(t.name) if isinstance(t, gs.Variable) else None
                if p is not None and id(p) not in seen:
                    stack.append((p, False))

    for node in graph.nodes:
        visit(node)
    return order


def _ancestors(node: gs.Node, nodes: list[gs.Node]) -> list[gs.Node]:
    """The nodes of ``nodes`` that ``node`` depends on (itself included), in the order of ``nodes``."""
    by_output = {n.outputs[0].name: n for n in nodes}
    keep: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in keep:
            continue
        keep.add(id(n))
        stack.extend(by_output[t.name] for t in n.inputs if isinstance(t, gs.Variable) and t.name in by_output)
    return [n for n in nodes if id(n) in keep]


def _needs_table(nodes: list[gs.Node]) -> bool:
    if len(nodes) == 1 and nodes[0].op == "Mul" and len(nodes[0].inputs) == 2 \
            and nodes[0].inputs[0] is nodes[0].inputs[1]:
        return False     # a lone square x * x: the exact `mul` step, no interpolated table
    for n in nodes:
        if n.op in TABLE_OPS or n.op == "Pow":     # a power, even of a constant exponent, is a table
            return True
        if n.op in TABLE_BINARY and sum(1 for t in n.inputs if const_value(t) is None and not is_empty(t)) == 2:
            return True
        if n.op == "Div" and const_value(n.inputs[1]) is None:    # c / x: a reciprocal
            return True
    return False


def region_nodes(regions: list[Region]) -> dict[int, Region]:
    """id(node) -> the region it belongs to (a node in several regions maps to the last)."""
    return {id(n): r for r in regions for n in r.nodes}

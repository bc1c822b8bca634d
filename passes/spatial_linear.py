"""`spatial-linear`: a region of gathers and arithmetic that computes a constant linear map of
each channel's spatial axes (the torch dynamo exporter's decompositions of adaptive average pooling
with windows of different sizes, and of 1-D linear interpolation) as two grouped convolutions.

torch.export decomposes ``AdaptiveAvgPool2d((3, 2))`` of an 8x8 map into a ``Transpose``, a
``GatherND`` of every window (padded to the largest), a ``Where`` that zeroes the padding, one
``Gather`` per window offset, a chain of ``Add``s and a ``Div`` by the window sizes (windows of
one size, ``(3, 3)`` of 7x7: the ``GatherND`` and a ``ReduceMean``); and
``F.interpolate(mode='linear')`` into two ``GatherND``s and ``a + (b - a) * w``. None of these is
in the normal form, but each region is linear in its one input ``x`` and treats every channel the
same way: ``y[0, c] = M x[0, c]`` for one constant matrix ``M``. This pass finds such regions,
measures ``M`` in onnxruntime (each spatial position of ``x`` set to 1 in turn; then two random
inputs must give ``M x`` per channel, within float32 rounding), and when ``M`` is separable
(``M = A (x) B``, every row of the 2-D map computed as ``A X B^T``: pooling windows and
interpolation are) writes it with :func:`passes.normalize_util.separable_map`: two grouped Convs
and two Reshapes (views). The conv weights are ``M``'s factors, so the result is exact up to the
fixed-point rounding of those weights (``1/3`` and ``1/4`` at q = 14 or 15) and of the
intermediate map; windows that share no input keep their zero weights exactly zero.

A region starts at a node only such exports write (``GatherND``, ``GatherElements``, ``Where``),
reaches back through layout and selection nodes of one activation (``Transpose``, ``Reshape``,
``Squeeze``, ``Unsqueeze``, gathers, slices) to the nearest ``[1, C, H, W]`` / ``[1, C, L]``
tensor, and forward through every linear node whose activation inputs all come from the region:
layout nodes, gathers, slices, concatenations and sums or means over axes of a tensor that is not
a feature map, ``Add``/``Sub``/``Neg`` of region tensors, and ``Mul``/``Div`` by a constant that
is the same for every channel. It must end in one ``[1, C, M, N]`` / ``[1, C, N]`` tensor.
Anything else stays as it was (`check-supported` names the nodes).

Before -> after (torch dynamo, ``AdaptiveAvgPool2d((3, 2))`` of ``[1, 4, 8, 8]``)::

    t = Transpose(x); g = GatherND(t, idx); w = Where(mask, 0, Transpose(g))
    y = Div(Add(Add(Gather(Gather(w, 0), 0), ...), ...), counts)          (43 nodes)
    ->  y = Reshape(Conv(Reshape(Conv(x, Wc[4*2,1,1,8]) {group=4}), Wr[4*3,1,1,8]) {group=4})
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, consumers, const_value, data_inputs, drop_unused,
                                   is_const, is_graph_output, mark_fixed, origin_of, producer, separable_map,
                                   set_origin, set_tensors, static_shape)

SEEDS = frozenset({"GatherND", "GatherElements", "Where"})
LAYOUT = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze"})
SELECT = frozenset({"Gather", "GatherND", "GatherElements", "Slice", "Concat", "Where", "Expand", "ReduceSum",
                    "ReduceMean"})
ARITH = frozenset({"Add", "Sub", "Neg", "Mul", "Div"})
MAX_POSITIONS = 4096
"""Largest input map (positions per channel) measured: one onnxruntime run per position."""
RTOL = 1e-5


@dataclass
class Region:
    """A candidate: its nodes (graph order), its one input ``x`` and its one output ``y``."""

    nodes: list[gs.Node]
    x: gs.Variable
    y: gs.Variable


def _feature_map(tensor: gs.Tensor) -> bool:
    """A ``[1, C, L]`` or ``[1, C, H, W]`` float activation (not a boolean or integer one: a mask a
    ``Where`` reads is no linear map's input)."""
    shape = static_shape(tensor)
    return not is_const(tensor) and shape is not None and len(shape) in (3, 4) and shape[0] == 1 \
        and tensor.dtype is not None and np.issubdtype(np.dtype(tensor.dtype), np.floating)


def _same_for_every_channel(node: gs.Node) -> bool:
    """A Mul/Div of one activation by a constant; when the activation is a feature map, the
    constant must not vary along its channel axis (a per-channel scale after the region is a
    normal-form node of its own). Inside the region the measurement checks the channels."""
    consts = [const_value(t) for t in node.inputs if is_const(t)]
    inputs = data_inputs(node)
    if len(consts) != 1 or len(inputs) != 1 or (node.op == "Div" and not is_const(node.inputs[1])):
        return False
    shape, value = static_shape(inputs[0]), consts[0]
    if not _feature_map(inputs[0]) or shape is None:
        return True
    try:
        full = np.broadcast_to(value, shape)
    except ValueError:
        return False
    return bool(np.all(full == full[:, :1]))


def _joins(node: gs.Node, produced: set[str], x: gs.Variable | None) -> bool:
    """Whether ``node`` (a consumer of a region tensor) belongs to the region."""
    if (node.domain or "") not in DEFAULT_DOMAINS or len(node.outputs) != 1:
        return False
    inputs = data_inputs(node)
    if not inputs or any(t.name not in produced and (x is None or t.name != x.name) for t in inputs):
        return False
    fed_foreign = any(t.name in produced and not _feature_map(t) for t in inputs)
    if node.op in LAYOUT or node.op in SELECT:
        return fed_foreign and not (node.op == "Where" and not is_const(node.inputs[0]))
    if node.op in ("Add", "Sub", "Neg"):
        return True
    if node.op in ("Mul", "Div"):
        return _same_for_every_channel(node)
    return False


def find_region(graph: gs.Graph, seed: gs.Node) -> Region | None:
    """The region grown from ``seed`` (module docstring), or None when it is not one."""
    nodes: list[gs.Node] = [seed]
    members = {id(seed)}
    x: gs.Variable | None = None
    # back from the seed through layout nodes to a feature map
    frontier = data_inputs(seed)
    while frontier:
        tensor = frontier.pop()
        if _feature_map(tensor):
            if x is not None and x.name != tensor.name:
                return None
            x = tensor
            continue
        before = producer(tensor)
        if before is None or before.op not in LAYOUT | SELECT or len(data_inputs(before)) != 1 \
                or len(before.outputs) != 1:
            return None
        if id(before) not in members:
            members.add(id(before))
            nodes.append(before)
            frontier.extend(data_inputs(before))
    if x is None:
        return None
    produced = {t.name: t for n in nodes for t in n.outputs}
    grown = True
    while grown:
        grown = False
        for tensor in list(produced.values()):
            for user in consumers(tensor):
                if id(user) not in members and _joins(user, set(produced), x):
                    members.add(id(user))
                    nodes.append(user)
                    produced.update((t.name, t) for t in user.outputs)
                    grown = True
    exits = [t for n in nodes for t in n.outputs
             if is_graph_output(graph, t) or any(id(u) not in members for u in consumers(t))]
    if len(exits) != 1 or not _feature_map(exits[0]):
        return None
    x_shape, y_shape = static_shape(x), static_shape(exits[0])
    assert x_shape is not None and y_shape is not None
    if len(x_shape) != len(y_shape) or x_shape[1] != y_shape[1] or int(np.prod(x_shape[2:])) > MAX_POSITIONS:
        return None
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    return Region(sorted(nodes, key=lambda n: order[id(n)]), x, exits[0])


def measure(graph: gs.Graph, region: Region) -> np.ndarray | None:
    """``M`` ``[positions out, positions in]`` with ``y[0, c] = M x[0, c]`` for every channel, measured
    in onnxruntime; None when the region is not such a map (checked on two random inputs)."""
    sub = gs.Graph(nodes=region.nodes, inputs=[region.x], outputs=[region.y], opset=graph.opset)
    session = ort.session(gs.export_onnx(sub))
    x_shape, y_shape = static_shape(region.x), static_shape(region.y)
    assert x_shape is not None and y_shape is not None
    channels, n_in, n_out = x_shape[1], int(np.prod(x_shape[2:])), int(np.prod(y_shape[2:]))
    name = region.x.name

    def run(values: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: values.reshape(x_shape).astype(np.float32)})[0],
                          dtype=np.float64).reshape(channels, n_out)

    matrix = np.zeros((n_out, n_in))
    for k in range(n_in):
        unit = np.zeros((channels, n_in))
        unit[:, k] = 1.0
        column = run(unit)
        if not np.allclose(column, column[:1], rtol=RTOL, atol=RTOL):
            return None
        matrix[:, k] = column[0]
    rng = np.random.default_rng(0)
    for _ in range(2):
        values = rng.standard_normal((channels, n_in))
        expected = values @ matrix.T
        if not np.allclose(run(values), expected, rtol=RTOL, atol=RTOL * (1 + np.abs(expected).max())):
            return None
    return matrix


def separable(matrix: np.ndarray, x_shape: tuple[int, ...], y_shape: tuple[int, ...]
              ) -> tuple[np.ndarray | None, np.ndarray] | None:
    """``(rows, cols)`` with ``M[(i, j), (h, w)] = rows[i, h] * cols[j, w]`` (2-D), ``(None, M)``
    (1-D), or None when a 2-D ``M`` is not such a product. The factors are a column and a row of
    ``M`` rearranged, so weights that are zero in ``M`` stay exactly zero."""
    if len(x_shape) == 3:
        return None, matrix
    (h, w), (m, n) = x_shape[2:], y_shape[2:]
    r = matrix.reshape(m, n, h, w).transpose(0, 2, 1, 3).reshape(m * h, n * w)
    p, q = np.unravel_index(int(np.argmax(np.abs(r))), r.shape)
    if r[p, q] == 0.0:
        return None
    rows, cols = r[:, q], r[p, :] / r[p, q]
    if not np.allclose(np.outer(rows, cols), r, rtol=RTOL, atol=RTOL * np.abs(r).max()):
        return None
    return rows.reshape(m, h), cols.reshape(n, w)


@register
class SpatialLinear(Pass):
    """Rewrite linear gather regions over a feature map's spatial axes into grouped convs (module
    docstring)."""

    name = "spatial-linear"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        done: set[int] = set()
        for seed in list(graph.nodes):
            if seed.op not in SEEDS or (seed.domain or "") not in DEFAULT_DOMAINS or id(seed) in done:
                continue
            region = find_region(graph, seed)
            if region is None:
                continue
            done.update(id(n) for n in region.nodes)
            matrix = measure(graph, region)
            x_shape, y_shape = static_shape(region.x), static_shape(region.y)
            assert x_shape is not None and y_shape is not None
            factors = separable(matrix, x_shape, y_shape) if matrix is not None else None
            if factors is None:
                continue
            origin = [name for n in region.nodes for name in origin_of(model, n)]
            last = producer(region.y)
            assert last is not None
            set_tensors(last.outputs, [])
            for made in separable_map(graph, names, region.x, region.y, *factors, base=region.nodes[0].name):
                set_origin(model, made, origin)
                if made.op == "Conv":
                    mark_fixed(model, made)
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

"""Graph helpers shared by the `normalize` sub-passes (onnx-graphsurgeon graphs).

Nothing here is a pass. The helpers answer small questions about a gs graph (is this tensor a
constant, what is its static shape, who consumes it), make fresh unique names, rewire around a node
that is being removed, keep the ``origin`` annotations in step with node rewrites, and round-trip a
model through a ``ModelProto`` (for onnx shape inference and the version converter) without losing
the annotation table.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.errors import Location
from transpiler.model import OnnxModel

ORIGIN = "origin"
DEFAULT_DOMAINS = ("", "ai.onnx")


# --------------------------------------------------------------------------- gs logging
@contextlib.contextmanager
def quiet_gs() -> Iterator[None]:
    """Silence onnx-graphsurgeon's warnings (folding failures are expected and harmless)."""
    logger = gs.logger.G_LOGGER
    old = logger.severity
    logger.severity = logger.CRITICAL
    try:
        yield
    finally:
        logger.severity = old


def drop_unused(graph: gs.Graph, toposort: bool = False) -> None:
    """After a rewrite: (optionally topologically sort, then) remove the nodes and tensors nothing
    reads, keeping unused graph inputs (they are the model's interface), without gs's warnings."""
    if toposort:
        graph.toposort()
    with quiet_gs():
        graph.cleanup(remove_unused_graph_inputs=False)


# --------------------------------------------------------------------------- tensors
def is_const(tensor: gs.Tensor | None) -> bool:
    """True for an initializer (gs.Constant)."""
    return isinstance(tensor, gs.Constant)


def const_value(tensor: gs.Tensor | None) -> np.ndarray | None:
    """The numpy value of a gs.Constant, or None for anything else."""
    if not isinstance(tensor, gs.Constant):
        return None
    return np.asarray(tensor.values)


def is_empty(tensor: gs.Tensor | None) -> bool:
    """True for an omitted optional input/output (ONNX empty name)."""
    return tensor is None or (isinstance(tensor, gs.Variable) and tensor.is_empty())


def static_shape(tensor: gs.Tensor | None) -> tuple[int, ...] | None:
    """The shape as a tuple of positive ints, or None if unknown or partly dynamic."""
    if tensor is None:
        return None
    shape = tensor.shape
    if shape is None:
        return None
    dims = tuple(shape)
    if all(isinstance(d, (int, np.integer)) and int(d) >= 0 for d in dims):
        return tuple(int(d) for d in dims)
    return None


def shape_text(tensor: gs.Tensor | None) -> str:
    """A shape for messages: ``[1,8,28,28]``, ``[batch,784]`` or ``?``."""
    if tensor is None or tensor.shape is None:
        return "?"
    return "[" + ",".join("?" if d is None else str(d) for d in tensor.shape) + "]"


def data_inputs(node: gs.Node) -> list[gs.Tensor]:
    """The node's inputs that are not constants or empty."""
    return [t for t in node.inputs if not is_const(t) and not is_empty(t)]


def consumers(tensor: gs.Tensor) -> list[gs.Node]:
    """Nodes that read ``tensor``."""
    return list(tensor.outputs)


def producer(tensor: gs.Tensor) -> gs.Node | None:
    """The node that writes ``tensor`` (None for inputs and constants)."""
    return tensor.inputs[0] if tensor.inputs else None


def is_graph_output(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    """True if ``tensor`` is one of the graph's outputs."""
    return any(t is tensor for t in graph.outputs)


def is_graph_input(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    """True if ``tensor`` is one of the graph's inputs."""
    return any(t is tensor for t in graph.inputs)


def is_read(graph: gs.Graph, tensor: gs.Tensor | None) -> bool:
    """True if a node reads ``tensor`` or it is a graph output."""
    return tensor is not None and not is_empty(tensor) and (bool(tensor.outputs) or is_graph_output(graph, tensor))


def only_consumer(graph: gs.Graph, tensor: gs.Tensor, node: gs.Node) -> bool:
    """True when ``node`` is the only reader of ``tensor`` and it is not a graph output."""
    readers = consumers(tensor)
    return len(readers) == 1 and readers[0] is node and not is_graph_output(graph, tensor)


def opset_of(model: OnnxModel) -> int:
    """The default-domain opset of the model."""
    for domain, version in _imports(model.graph).items():
        if domain in DEFAULT_DOMAINS:
            return version
    return model.opset


def _imports(graph: gs.Graph) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in graph.import_domains or []:
        found[entry.domain] = int(entry.version)
    if "" not in found and "ai.onnx" not in found and graph.opset:
        found[""] = int(graph.opset)
    return found


def domain_version(model: OnnxModel, domain: str) -> int | None:
    """The imported version of ``domain`` (None if not imported)."""
    imports = _imports(model.graph)
    if domain in DEFAULT_DOMAINS:
        return imports.get("", imports.get("ai.onnx"))
    return imports.get(domain)


# --------------------------------------------------------------------------- names
class NameSource:
    """Fresh node and tensor names that collide with nothing in the graph."""

    def __init__(self, graph: gs.Graph) -> None:
        self.used: set[str] = {n.name for n in graph.nodes if n.name}
        self.used.update(graph.tensors().keys())

    def fresh(self, base: str) -> str:
        """``base`` if unused, else ``base_1``, ``base_2``, ...; the name is then taken."""
        base = base or "t"
        if base not in self.used:
            self.used.add(base)
            return base
        n = 1
        while f"{base}_{n}" in self.used:
            n += 1
        name = f"{base}_{n}"
        self.used.add(name)
        return name


def new_constant(names: NameSource, base: str, values: np.ndarray) -> gs.Constant:
    """A new initializer with a fresh name (C-contiguous; 0-d values stay 0-d)."""
    values = np.asarray(values)
    return gs.Constant(names.fresh(base), values if values.flags.c_contiguous else values.copy(order="C"))


def new_variable(names: NameSource, base: str, dtype: object = None,
                 shape: Sequence[int] | None = None) -> gs.Variable:
    """A new activation tensor with a fresh name."""
    return gs.Variable(names.fresh(base), dtype=dtype, shape=list(shape) if shape is not None else None)


# --------------------------------------------------------------------------- origins
def origin_of(model: OnnxModel, node: gs.Node) -> list[str]:
    """The input-model node names ``node`` came from (its own name if not annotated)."""
    value = model.annotations.get(node.name, ORIGIN)
    if value:
        return list(value)
    return [node.name] if node.name else []


def set_origin(model: OnnxModel, node: gs.Node, names: Sequence[str]) -> None:
    """Annotate ``node`` with the de-duplicated list ``names`` (order kept)."""
    unique: list[str] = []
    for name in names:
        if name and name not in unique:
            unique.append(name)
    if node.name and unique:
        model.annotations.set(node.name, ORIGIN, unique)


def merge_origin(model: OnnxModel, target: gs.Node, *sources: gs.Node) -> None:
    """``target`` now also stands for ``sources`` (e.g. a Conv that absorbed a BatchNormalization)."""
    names = origin_of(model, target)
    for src in sources:
        names.extend(origin_of(model, src))
    set_origin(model, target, names)


def prune_origins(model: OnnxModel) -> None:
    """Drop ``origin`` annotations whose node no longer exists."""
    alive = {n.name for n in model.graph.nodes}
    for target in model.annotations.targets(ORIGIN):
        if target not in alive:
            model.annotations.remove(target, ORIGIN)


def add_node(graph: gs.Graph, names: NameSource, op: str, base: str, inputs: list[gs.Tensor],
             outputs: list[gs.Tensor], attrs: dict[str, object] | None = None) -> gs.Node:
    """Append a new default-domain node with a fresh name."""
    node = gs.Node(op=op, name=names.fresh(base), attrs=dict(attrs or {}), inputs=inputs, outputs=outputs)
    graph.nodes.append(node)
    return node


# --------------------------------------------------------------------------- rewiring
def set_tensors(tensors: list[gs.Tensor], new: Sequence[gs.Tensor]) -> None:
    """Replace the contents of a node's ``inputs``/``outputs`` list, keeping gs's edges in sync.

    (gs's synchronized lists do not support slice assignment.)
    """
    tensors.clear()
    tensors.extend(list(new))


def detach(node: gs.Node) -> None:
    """Disconnect ``node`` from all tensors; ``graph.cleanup()`` then drops it."""
    node.inputs.clear()
    node.outputs.clear()


def replace_uses(graph: gs.Graph, old: gs.Tensor, new: gs.Tensor) -> None:
    """Every reader of ``old`` (nodes and graph outputs) reads ``new`` instead."""
    for reader in consumers(old):
        for i, t in enumerate(reader.inputs):
            if t is old:
                reader.inputs[i] = new
    for i, t in enumerate(graph.outputs):
        if t is old:
            graph.outputs[i] = new


def bypass(graph: gs.Graph, node: gs.Node, keep: int = 0) -> bool:
    """Remove a node that passes its input ``keep`` through unchanged; False if it cannot be removed.

    ``y = Op(x)`` with readers of ``y`` -> the readers read ``x``. When ``y`` is a graph output its
    name must survive: the producer of ``x`` then writes ``y`` directly (impossible when ``x`` is a
    graph input, a constant or itself a graph output; such a node is kept).
    """
    x, y = node.inputs[keep], node.outputs[0]
    if is_graph_output(graph, y):
        writer = producer(x)
        if writer is None or is_graph_output(graph, x) or is_graph_input(graph, x):
            return False
        if x.dtype is not None and y.dtype is not None and x.dtype != y.dtype:
            return False
        detach(node)
        readers = consumers(x)
        for i, t in enumerate(writer.outputs):
            if t is x:
                writer.outputs[i] = y
        for reader in readers:
            for i, t in enumerate(reader.inputs):
                if t is x:
                    reader.inputs[i] = y
        if y.shape is None:
            y.shape = x.shape
        return True
    detach(node)
    replace_uses(graph, y, x)
    return True


# --------------------------------------------------------------------------- proto round trip
def replace_graph(model: OnnxModel, proto: onnx.ModelProto) -> None:
    """Make ``model`` hold the graph of ``proto``; annotations and metadata stay."""
    with quiet_gs():
        model.graph = gs.import_onnx(proto)


def to_proto(model: OnnxModel) -> onnx.ModelProto:
    """Export without the type check (intermediate tensors may have no dtype yet)."""
    with quiet_gs():
        return model.to_proto()


def node_location(model: OnnxModel, node: gs.Node, pass_name: str | None = None) -> Location:
    """A Location naming the node, its op and its first input's shape."""
    first = node.inputs[0] if node.inputs else None
    return Location(file=model.source, node=node.name or None, op=node.op,
                    shape=shape_text(first) if first is not None else None, pass_name=pass_name)


def attr(node: gs.Node, name: str, default: object = None) -> object:
    """An attribute value, or ``default``."""
    value = node.attrs.get(name, default)
    if isinstance(value, bytes):
        return value.decode()
    return value


def contiguous_slice(node: gs.Node) -> tuple[int, int]:
    """(element offset, element count) of what a ``Gather`` with one constant index, or a ``Slice``
    of one axis with constant bounds and step 1, takes from its input, when that is one contiguous
    run (every axis before the sliced one has size 1); raises ValueError (the reason) otherwise."""
    x = node.inputs[0]
    shape = [int(d) for d in x.shape] if x.shape is not None and all(isinstance(d, int) for d in x.shape) else None
    if shape is None:
        raise ValueError(f"'{x.name}' has no static shape")
    consts = [t for t in node.inputs[1:] if not t.is_empty()]
    if isinstance(x, gs.Constant) or not all(isinstance(t, gs.Constant) for t in consts):
        raise ValueError(f"{node.op} needs an activation and constant indices")
    rank = len(shape)
    if node.op == "Gather":
        axis = int(node.attrs.get("axis", 0)) % rank
        index = np.asarray(node.inputs[1].values).reshape(-1)
        if index.size != 1:
            raise ValueError(f"Gather of {index.size} indices (only one)")
        start = int(index[0]) % shape[axis]
        stop = start + 1
    else:
        vals = [np.asarray(t.values).reshape(-1).astype(np.int64) for t in node.inputs[1:]]
        starts, ends = vals[0], vals[1]
        axes = vals[2] if len(vals) > 2 and not node.inputs[3].is_empty() else np.arange(starts.size)
        steps = vals[3] if len(vals) > 3 and not node.inputs[4].is_empty() else np.ones(starts.size, np.int64)
        ranges = {}
        for a, s, e, k in zip(axes, starts, ends, steps):
            a = int(a) % rank
            n = shape[a]
            s = min(max(int(s) + n if s < 0 else int(s), 0), n)
            e = min(max(int(e) + n if e < 0 else int(e), 0), n)
            if int(k) != 1:
                raise ValueError(f"Slice with step {int(k)} (only 1)")
            if (s, e) != (0, n):
                ranges[a] = (s, e)
        if len(ranges) > 1:
            raise ValueError(f"Slice of {len(ranges)} axes (only one)")
        axis, (start, stop) = next(iter(ranges.items())) if ranges else (0, (0, shape[0]))
    if stop <= start:
        raise ValueError(f"{node.op} takes nothing")
    if any(d != 1 for d in shape[:axis]):
        raise ValueError(f"{node.op} on axis {axis} of {shape} is not one contiguous run "
                           "(the axes before it must have size 1)")
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return start * inner, (stop - start) * inner


# --------------------------------------------------------------------------- separable spatial maps
FIXED_WEIGHTS = "fixed-weights"


def mark_fixed(model: OnnxModel, node: gs.Node) -> None:
    """Mark the weight of a Conv a rewrite built exactly (a crop, an interpolation): not a learned
    layer, so the training engine keeps it and separate/sparsify leave it alone."""
    model.annotations.set(node.inputs[1].name, FIXED_WEIGHTS, True)


def separable_map(graph: gs.Graph, names: NameSource, x: gs.Variable, y: gs.Variable,
                  rows: np.ndarray | None, cols: np.ndarray, base: str) -> list[gs.Node]:
    """Append the nodes that compute ``y[0, c] = rows @ x[0, c] @ cols.T`` for every channel ``c``
    of a ``[1, C, H, W]`` activation ``x`` (``rows`` ``[M, H]``, ``cols`` ``[N, W]``, ``y``
    ``[1, C, M, N]``), or ``y[0, c] = cols @ x[0, c]`` of a ``[1, C, L]`` one (``rows`` None, ``y``
    ``[1, C, N]``): a constant linear map of each channel's spatial axes that is separable (bilinear
    resizing, adaptive average pooling with windows of different sizes). Returns the new nodes.

    Each axis is one grouped Conv whose kernel spans the whole axis, ``group = C`` with one output
    channel per output position, followed by a Reshape that puts the new positions on a spatial
    axis (the values keep their order, so the Reshape is a view). The columns go first, and their
    result ``[1, C*N, H, 1]`` is read as ``[1, C, N, H]``: the rows then are its last axis, and the
    second conv's ``[1, C*M, N, 1]`` is ``y`` read as ``[1, C, M, N]``::

        t = Conv(x, Wc[C*N, 1, 1, W]) {group=C}     Wc[c*N + j, 0, 0, :] = cols[j]
        u = Reshape(t, [1, C, N, H])
        v = Conv(u, Wr[C*M, 1, 1, H]) {group=C}     Wr[c*M + i, 0, 0, :] = rows[i]
        y = Reshape(v, [1, C, M, N])

    Each conv row has the map's few non-zero taps per output (two for linear interpolation), so
    lowering stores it sparse when that is smaller.
    """
    shape = static_shape(x)
    assert shape is not None and shape[0] == 1 and len(shape) == (3 if rows is None else 4)
    c = shape[1]
    made: list[gs.Node] = []

    def axis_conv(source: gs.Tensor, matrix: np.ndarray, spatial: list[int], tag: str) -> gs.Variable:
        n_out, n_in = matrix.shape
        kernel = [1] * (len(spatial) - 1) + [n_in]
        weights = np.tile(matrix.astype(np.float32), (c, 1)).reshape(c * n_out, 1, *kernel)
        out = new_variable(names, f"{base}_{tag}", np.float32, [1, c * n_out, *spatial[:-1], 1])
        ones = [1] * len(kernel)
        made.append(add_node(graph, names, "Conv", f"{base}_{tag}",
                             [source, new_constant(names, f"{base}_{tag}_W", weights)], [out],
                             {"kernel_shape": kernel, "strides": ones, "pads": [0] * 2 * len(kernel),
                              "dilations": ones, "group": c}))
        return out

    def reshape(source: gs.Tensor, target: list[int], out: gs.Variable | None, tag: str) -> gs.Variable:
        result = out if out is not None else new_variable(names, f"{base}_{tag}", np.float32, target)
        made.append(add_node(graph, names, "Reshape", f"{base}_{tag}",
                             [source, new_constant(names, f"{base}_{tag}_shape", np.array(target, np.int64))],
                             [result]))
        return result

    n = cols.shape[0]
    if rows is None:
        reshape(axis_conv(x, cols, [shape[2]], "cols"), [1, c, n], y, "out")
        return made
    m, h = rows.shape[0], shape[2]
    across = reshape(axis_conv(x, cols, [h, shape[3]], "cols"), [1, c, n, h], None, "colsT")
    reshape(axis_conv(across, rows, [n, h], "rows"), [1, c, m, n], y, "out")
    return made

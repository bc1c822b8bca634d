"""`repeat-upsample`: a chain of reshapes, transposes and Tiles that repeats pixels becomes a nearest Resize."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, const_value, consumers, detach, drop_unused, is_graph_output,
                                   new_constant, origin_of, producer, set_origin, static_shape)
from passes.resize_nearest import CANONICAL

#: Ops that only move or copy elements.
MOVES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Tile", "Expand"})
COPIES = frozenset({"Tile", "Expand"})


def _is_move(node: gs.Node | None) -> bool:
    return node is not None and node.op in MOVES and node.domain in (None, "", "ai.onnx") and len(node.outputs) == 1


def _simulate(node: gs.Node, value: np.ndarray) -> np.ndarray | None:
    """What ``node`` does to ``value`` (indices of the chain's input), from its static output shape."""
    out_shape = static_shape(node.outputs[0])
    if out_shape is None:
        return None
    if node.op == "Transpose":
        perm = [int(p) for p in node.attrs.get("perm", list(reversed(range(value.ndim))))]
        result = np.transpose(value, perm)
    elif node.op == "Tile":
        reps = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
        if reps is None:
            return None
        result = np.tile(value, [int(r) for r in reps.reshape(-1)])
    elif node.op == "Expand":
        if const_value(node.inputs[1]) is None:
            return None
        try:
            result = np.broadcast_to(value, out_shape)
        except ValueError:
            return None
    else:
        if int(np.prod(out_shape)) != value.size:
            return None
        result = value.reshape(out_shape)
    return result if tuple(result.shape) == out_shape else None


def _nearest_factors(start: tuple[int, ...], end: tuple[int, ...]) -> list[int] | None:
    """Integer factors that upsample ``[1, C, ...]`` to ``end`` (same rank, batch and channels)."""
    if len(start) not in (3, 4) or len(end) != len(start) or start[0] != 1 or end[:2] != start[:2]:
        return None
    if any(e % s for s, e in zip(start[2:], end[2:])):
        return None
    return [e // s for s, e in zip(start[2:], end[2:])]


@register
class RepeatUpsample(Pass):
    """Rewrite nearest upsampling spelled as data movement into the canonical nearest Resize.

    Before -> after (Keras ``UpSampling2D(2)`` as tf2onnx writes it: ``repeat`` per axis, with the
    layout Transposes moved into the chain)::

        u = Unsqueeze(x: [1,C,H,W], [3]); t = Tile(u, [1,1,1,2,1]); p = Transpose(t) {perm=[0,2,3,4,1]}
        r = Reshape(p, [1,2H,W,C]); ...; y = Transpose(...) {perm=[0,3,1,2]}   (y: [1,C,2H,2W])
            ->  y = Resize(x, '', [1,1,2,2]) {mode=nearest, coordinate_transformation_mode=asymmetric,
                                              nearest_mode=floor}

    A chain is a run of Reshape/Flatten/Squeeze/Unsqueeze/Transpose/Tile/Expand nodes, each
    intermediate read only by the next, holding at least one Tile or Expand. The pass runs the chain
    on the indices of its input; when some output of the chain holds ``x[..., i // f, j // g]`` at
    every ``[..., i, j]`` (integer factors ``f``, ``g``) it becomes that Resize. Other copies (a
    Tile of the whole map, a broadcast of channels) are left for `check-supported` to report.
    """

    name = "repeat-upsample"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op not in COPIES or not _is_move(node) or not node.inputs or not node.outputs:
                continue
            chain = self._chain(graph, node)
            found = self._match(chain)
            if found is None:
                continue
            start, end, factors = found
            used = chain[start:end + 1]
            x, y = used[0].inputs[0], used[-1].outputs[0]
            origin = [name for n in used for name in origin_of(model, n)]
            for n in used:
                detach(n)
            scales = new_constant(names, f"{used[-1].name}_scales", np.array([1.0, 1.0, *factors], dtype=np.float32))
            resize = gs.Node(op="Resize", name=names.fresh(f"{node.name}_resize"), attrs=dict(CANONICAL),
                             inputs=[x, gs.Variable.empty(), scales], outputs=[y])
            graph.nodes.append(resize)
            set_origin(model, resize, origin)
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    @staticmethod
    def _chain(graph: gs.Graph, node: gs.Node) -> list[gs.Node]:
        """The run of move nodes through ``node`` (intermediates read only by the next node)."""
        chain = [node]
        while True:
            before = producer(chain[0].inputs[0])
            link = chain[0].inputs[0]
            if not _is_move(before) or len(consumers(link)) != 1 or is_graph_output(graph, link):
                break
            chain.insert(0, before)
        while True:
            link = chain[-1].outputs[0]
            readers = consumers(link)
            if len(readers) != 1 or is_graph_output(graph, link) or not _is_move(readers[0]) \
                    or readers[0].inputs[0] is not link:
                break
            chain.append(readers[0])
        return chain

    @staticmethod
    def _match(chain: list[gs.Node]) -> tuple[int, int, list[int]] | None:
        """``(first, last, factors)`` of the longest sub-chain that upsamples by repetition."""
        copies = [i for i, n in enumerate(chain) if n.op in COPIES]
        best: tuple[int, int, list[int]] | None = None
        for first in range(0, copies[0] + 1):
            shape = static_shape(chain[first].inputs[0])
            if shape is None or len(shape) not in (3, 4) or shape[0] != 1:
                continue
            value = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
            start = value
            for last in range(first, len(chain)):
                value = _simulate(chain[last], value)
                if value is None:
                    break
                factors = _nearest_factors(shape, tuple(value.shape)) if last >= copies[0] else None
                if factors is None or all(f == 1 for f in factors):
                    continue
                want = start
                for axis, f in enumerate(factors, start=2):
                    want = np.repeat(want, f, axis=axis)
                if np.array_equal(value, want) and (best is None or last - first > best[1] - best[0]):
                    best = (first, last, factors)
        return best

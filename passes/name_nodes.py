"""`name-nodes`: give every node a unique, non-empty name and an ``origin`` annotation."""

from __future__ import annotations

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import ORIGIN, NameSource, prune_origins


@register
class NameNodes(Pass):
    """Give every node a unique non-empty name and record where it came from.

    Before -> after::

        Conv ""  , Relu ""  , Relu "r"  , Add "r"        (anonymous and duplicate names)
        Conv "Conv_0", Relu "Relu_1", Relu "r", Add "r_1" (origin: [Conv_0], [Relu_1], [r], [r])

    A node without an ``origin`` annotation gets ``[its original name]`` (or the generated one when it
    had none), so every later rewrite can say which input-model nodes a node stands for. ``origin``
    annotations of nodes that no longer exist are dropped.
    """

    name = "name-nodes"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        seen: set[str] = set()
        generated = renamed = annotated = 0
        counter = 0
        for node in graph.nodes:
            old = node.name
            if old and old not in seen:
                seen.add(old)
                if not model.annotations.has(old, ORIGIN):
                    model.annotations.set(old, ORIGIN, [old])
                    annotated += 1
                continue
            if old:
                origin = model.annotations.get(old, ORIGIN, [old])
                node.name = names.fresh(old)
                renamed += 1
            else:
                while f"{node.op}_{counter}" in names.used:
                    counter += 1
                node.name = names.fresh(f"{node.op}_{counter}")
                counter += 1
                origin = [node.name]
                generated += 1
            seen.add(node.name)
            model.annotations.set(node.name, ORIGIN, origin)
            annotated += 1
        before = len(model.annotations)
        prune_origins(model)
        pruned = before - len(model.annotations)
        changed = bool(generated or renamed or annotated or pruned)
        return PassResult(model, changed, {"generated": generated, "renamed": renamed,
                                           "annotated": annotated, "pruned-origins": pruned})

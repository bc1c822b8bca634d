"""`tree-votes`: AdaBoost's SAMME vote of single trees (skl2onnx's AdaBoostClassifier) as one
canonical tree ensemble and a Softmax.

skl2onnx writes ``AdaBoostClassifier(algorithm='SAMME')`` as one TreeEnsembleClassifier per estimator,
the ArgMax of each (the class it predicts), a vote ``Where(Equal(argmax, classes), 1, -1/(K-1))``
weighted by the estimator's weight, their ``Sum``, scaled, and a softmax written as ``Exp`` /
``ReduceSum`` with a guard against a sum below 1. None of the ArgMax, Equal, Where or Sum is in the
normal form, but an estimator with one tree predicts one class per leaf, so its vote is a vector per
leaf, and the scores are

    J = base + sum_m v_m(the class of the leaf of tree m that x reaches)

one TreeEnsembleRegressor holding every estimator's tree, each leaf writing its vote.

The votes are read off the graph (after `tree-ensembles`, so each estimator is a canonical
TreeEnsembleRegressor): onnxruntime runs the part of the graph between the estimators' ArgMax outputs
and ``J`` (the input of the ``Exp``) with estimator m at each class and the others at class 0;
the rewrite happens only when that part is additive on random classes, every vote and the base sum
to 0 over the classes (then ``max J >= 0``, the sum of the exponentials is at least 1 and skl2onnx's
guard adds nothing), the part after ``J`` is a softmax on random zero-sum rows (onnxruntime on it
alone), and the new ensemble gives the graph's ``J`` on random inputs.

Before -> after (M estimators, K classes)::

    s_m = TreeEnsembleRegressor_m(x)   (one tree each)
    J = Mul(Div(Sum(Mul(Where(Equal(ArgMax(s_m), classes), 1, -1/(K-1)), w_m) ...), W), K-1)
    p = Div(Exp(J), Add(Reshape(ReduceSum(Exp(J))), Cast(Equal(Cast(...), 0))))
        ->
    J = TreeEnsembleRegressor(x) {the M trees; a leaf of tree m writes v_m(its class); base}
    p = Softmax(J) {axis=1}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, consumers, detach, drop_unused,
                                   is_graph_output, origin_of, producer, set_origin)
from passes.quadratic_scores import CHECK_ROWS, TOLERANCE, evaluator
from passes.tree_ensembles import ML_DOMAIN, Ensemble, Tree, is_canonical, read_ensemble, regressor_attrs


def _estimators(graph: gs.Graph) -> dict[str, tuple[gs.Node, gs.Node]]:
    """Estimator output name -> (its canonical one-tree TreeEnsembleRegressor, the one ArgMax over
    axis 1 that reads it), for those read by nothing else but Shape nodes."""
    found = {}
    for node in graph.nodes:
        if node.domain != ML_DOMAIN or not is_canonical(node) or len(read_ensemble(node).trees) != 1:
            continue
        readers = consumers(node.outputs[0])
        argmaxes = [r for r in readers if r.op == "ArgMax" and (r.domain or "") in DEFAULT_DOMAINS]
        if len(argmaxes) != 1 or any(r.op not in ("ArgMax", "Shape") for r in readers) \
                or is_graph_output(graph, node.outputs[0]):
            continue
        arg = argmaxes[0]
        if int(arg.attrs.get("axis", 0)) != 1 or int(arg.attrs.get("keepdims", 1)) != 1 \
                or int(arg.attrs.get("select_last_index", 0)):
            continue
        found[node.outputs[0].name] = (node, arg)
    return found


def _ancestors(scores: gs.Tensor, stops: set[str]) -> list[gs.Node] | None:
    """The default-domain nodes ``scores`` is computed by, back to constants and the ``stops``
    tensors; None when a path reaches anything else (a graph input, another domain)."""
    nodes: list[gs.Node] = []
    seen: set[int] = set()
    stack = [scores]
    while stack:
        tensor = stack.pop()
        if tensor.name in stops or isinstance(tensor, gs.Constant):
            continue
        node = producer(tensor)
        if node is None or (node.domain or "") not in DEFAULT_DOMAINS:
            return None
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node.inputs)
    return nodes


def _descendants(graph: gs.Graph, scores: gs.Tensor) -> tuple[list[gs.Node], gs.Tensor] | None:
    """The default-domain nodes computed from ``scores`` up to the one tensor that leaves them (a
    graph output or a ZipMap's input; an ArgMax reading it is the label path), or None."""
    nodes: list[gs.Node] = []
    seen: set[int] = set()
    exits: list[gs.Tensor] = []
    frontier = [scores]
    while frontier:
        tensor = frontier.pop()
        leaves = is_graph_output(graph, tensor) or any(r.op == "ZipMap" for r in consumers(tensor))
        if tensor is not scores and leaves:
            if tensor not in exits:
                exits.append(tensor)
            continue
        for node in consumers(tensor):
            if id(node) in seen:
                continue
            if (node.domain or "") not in DEFAULT_DOMAINS or len(node.outputs) != 1:
                return None
            seen.add(id(node))
            nodes.append(node)
            frontier.append(node.outputs[0])
    return (nodes, exits[0]) if len(exits) == 1 else None


def _session(nodes: list[gs.Node], inputs: list[tuple[gs.Tensor, int]], output: gs.Tensor, opset: int) -> Any:
    """An onnxruntime session of ``nodes`` alone, from ``inputs`` (tensor, ONNX element type; ``[N,
    K]``) to ``output``; None when onnxruntime cannot load it."""
    constants = {t.name: t for n in nodes for t in n.inputs if isinstance(t, gs.Constant)}
    made = [onnx.helper.make_node(n.op, [t.name for t in n.inputs], [t.name for t in n.outputs], name=n.name,
                                  domain=n.domain or "",
                                  **{k: onnx.numpy_helper.from_array(np.asarray(v.values)) if isinstance(v, gs.Constant)
                                     else v for k, v in n.attrs.items()}) for n in nodes]
    feeds = [onnx.helper.make_tensor_value_info(t.name, kind, [None, None]) for t, kind in inputs]
    graph = onnx.helper.make_graph(made, "part", feeds,
                                   [onnx.helper.make_tensor_value_info(output.name, onnx.TensorProto.FLOAT, None)],
                                   [onnx.numpy_helper.from_array(np.asarray(t.values), name)
                                    for name, t in constants.items()])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)], ir_version=8)
    try:
        return ort.session(proto)
    except Exception:    # onnxruntime's own exception types: a part we cannot evaluate
        return None


def leaf_classes(ens: Ensemble) -> dict[int, int]:
    """Leaf node id -> the class onnxruntime's ArgMax picks from a one-tree ensemble's scores there
    (the first largest of base + the leaf's weights)."""
    tree = ens.trees[0]
    out = {}
    for nid, leaf in tree.leaves.items():
        scores = np.zeros(ens.targets, dtype=np.float32)
        if ens.base:
            scores += np.asarray(ens.base, dtype=np.float32)
        for k, w in leaf.items():
            scores[k] += np.float32(w)
        out[nid] = int(np.argmax(scores))
    return out


@register
class TreeVotes(Pass):
    """Rewrite a softmax of summed per-estimator class votes of one-tree ensembles as one canonical
    TreeEnsembleRegressor and a Softmax (module docstring)."""

    name = "tree-votes"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        done = 0
        for node in list(graph.nodes):
            if node.op == "Exp" and (node.domain or "") in DEFAULT_DOMAINS and node.inputs \
                    and self._rewrite(model, node):     # (an Exp of a head rewritten before is detached)
                done += 1
        if done:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(done), {"rewritten": done})

    def _rewrite(self, model: OnnxModel, exp: gs.Node) -> bool:
        graph, scores = model.graph, exp.inputs[0]
        estimators = _estimators(graph)
        if not estimators:
            return False
        votes = {arg.outputs[0].name: out for out, (_, arg) in estimators.items()}
        nodes = _ancestors(scores, set(votes) | set(estimators))
        if not nodes:
            return False
        read = {t.name for n in nodes for t in n.inputs}
        used = [name for name in votes if name in read]
        shaped = [name for name in estimators if name in read]
        if not used or any(name not in {votes[u] for u in used} for name in shaped):
            return False
        head = _descendants(graph, scores)
        inside = {id(n) for n in nodes}
        if head is None or any(id(n) in inside for n in head[0]):
            return False
        members = [estimators[votes[name]] for name in used]
        for regressor, arg in members:     # an estimator's output and vote feed nothing else
            inside |= {id(arg)}
            if any(id(r) not in inside for r in consumers(regressor.outputs[0])):
                return False
        for node in [*nodes, *(arg for _, arg in members)]:     # nor does the votes' computation
            for t in node.outputs:
                if t is not scores and any(id(r) not in inside for r in consumers(t)):
                    return False
        classes = read_ensemble(members[0][0]).targets
        tensors = graph.tensors()
        if any(read_ensemble(regressor).targets != classes for regressor, _ in members):
            return False
        fitted = self._fit(nodes, [tensors[name] for name in used], [tensors[name] for name in shaped], scores,
                           classes, model.opset or 13)
        if fitted is None or not self._is_softmax(head[0], scores, head[1], classes, model.opset or 13):
            return False
        base, table = fitted
        trees, leaves = [], []
        for (regressor, _), vote in zip(members, table):
            ens = read_ensemble(regressor)
            picks = leaf_classes(ens)
            trees.append(ens.trees[0])
            leaves += [{c: float(vote[picks[nid]][c]) for c in range(classes)} for nid in ens.trees[0].leaves]
        x = members[0][0].inputs[0]
        if any(r.inputs[0] is not x for r, _ in members):
            return False
        ensemble = Ensemble(trees, classes, [float(v) for v in base], "NONE", "SUM", None)
        attrs = regressor_attrs(ensemble, leaves, ensemble.base)
        if not same_scores(graph, x, scores, attrs, trees, model.opset or 13):
            return False
        origin = [name for node in [*nodes, *head[0], *[m for pair in members for m in pair]]
                  for name in origin_of(model, node)]
        for node in [*nodes, *head[0], *[m for pair in members for m in pair]]:
            detach(node)
        names = NameSource(graph)
        made = add_node(graph, names, "TreeEnsembleRegressor", f"{exp.name}_votes", [x], [scores], attrs)
        made.domain = ML_DOMAIN
        softmax = add_node(graph, names, "Softmax", f"{exp.name}_softmax", [scores], [head[1]], {"axis": 1})
        for new in (made, softmax):
            set_origin(model, new, origin)
        return True

    @staticmethod
    def _fit(nodes: list[gs.Node], votes: list[gs.Tensor], shaped: list[gs.Tensor], scores: gs.Tensor,
             classes: int, opset: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(base [K], table [M, K, K])`` with ``scores = base + sum_m table[m, a_m]`` for the
        estimators' classes ``a_m`` (onnxruntime on ``nodes``), or None when it is not additive or a
        vote does not sum to 0 over the classes."""
        session = _session(nodes, [(t, onnx.TensorProto.INT64) for t in votes]
                           + [(t, onnx.TensorProto.FLOAT) for t in shaped], scores, opset)
        if session is None:
            return None
        rng = np.random.default_rng(0)

        def run(picks: np.ndarray) -> np.ndarray:
            feeds = {t.name: picks[m].reshape(1, 1).astype(np.int64) for m, t in enumerate(votes)}
            feeds.update({t.name: rng.normal(size=(1, classes)).astype(np.float32) for t in shaped})
            return np.asarray(session.run(None, feeds)[0], dtype=np.float64).reshape(-1)

        try:
            zero = np.zeros(len(votes), dtype=np.int64)
            base = run(zero)
            if base.shape != (classes,):
                return None
            table = np.zeros((len(votes), classes, classes))
            for m in range(len(votes)):
                for c in range(1, classes):
                    picks = zero.copy()
                    picks[m] = c
                    table[m, c] = run(picks) - base
            checks = [rng.integers(0, classes, len(votes)) for _ in range(CHECK_ROWS)]
            want = np.stack([run(p) for p in checks])
        except Exception:    # onnxruntime's own exception types: not a part we can evaluate
            return None
        got = np.stack([base + table[np.arange(len(votes)), p].sum(axis=0) for p in checks])
        scale = max(float(np.abs(want).max()), 1e-6)
        if float(np.abs(got - want).max()) > TOLERANCE * scale:
            return None
        if abs(float(base.sum())) > TOLERANCE * scale or float(np.abs(table.sum(axis=2)).max()) > TOLERANCE * scale:
            return None
        return base, table

    @staticmethod
    def _is_softmax(nodes: list[gs.Node], scores: gs.Tensor, out: gs.Tensor, classes: int, opset: int) -> bool:
        """Does onnxruntime, running ``nodes`` alone on random rows that sum to 0, compute their softmax?"""
        session = _session(nodes, [(scores, onnx.TensorProto.FLOAT)], out, opset)
        if session is None:
            return False
        rows = np.random.default_rng(1).normal(0.0, 2.0, (CHECK_ROWS, classes))
        rows = (rows - rows.mean(axis=1, keepdims=True)).astype(np.float32)
        try:
            got = np.asarray(session.run(None, {scores.name: rows})[0], dtype=np.float64)
        except Exception:    # onnxruntime's own exception types
            return False
        want = np.exp(rows - rows.max(axis=1, keepdims=True))
        want /= want.sum(axis=1, keepdims=True)
        return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=1e-6))


def same_scores(graph: gs.Graph, x: gs.Tensor, scores: gs.Tensor, attrs: dict[str, object],
                trees: list[Tree], opset: int) -> bool:
    """Does the TreeEnsembleRegressor of ``attrs`` (over ``trees``) give the graph's ``scores`` on random
    inputs ``x`` around the thresholds (onnxruntime on both, one row at a time)?"""
    run = evaluator(graph, x, scores)
    width = x.shape[1] if x.shape is not None and len(x.shape) == 2 else None
    if run is None or not isinstance(width, int):
        return False
    node = onnx.helper.make_node("TreeEnsembleRegressor", [x.name], [scores.name], domain=ML_DOMAIN, **attrs)
    proto = onnx.helper.make_model(
        onnx.helper.make_graph([node], "votes", [onnx.helper.make_tensor_value_info(x.name, onnx.TensorProto.FLOAT,
                                                                                    [None, width])],
                               [onnx.helper.make_tensor_value_info(scores.name, onnx.TensorProto.FLOAT, None)]),
        opset_imports=[onnx.helper.make_opsetid("", opset), onnx.helper.make_opsetid(ML_DOMAIN, 1)], ir_version=8)
    thresholds = [b.threshold for tree in trees for b in tree.branches.values()] or [0.0]
    rng = np.random.default_rng(2)
    rows = rng.choice(thresholds, (CHECK_ROWS * 4, width)) + rng.normal(0.0, 0.5, (CHECK_ROWS * 4, width))
    try:
        want = run(rows)
        got = np.asarray(ort.session(proto).run(None, {x.name: rows.astype(np.float32)})[0], dtype=np.float64)
    except Exception:    # onnxruntime's own exception types
        return False
    scale = max(float(np.abs(want).max()), 1e-6)
    return got.shape == want.shape and float(np.abs(got - want).max()) <= TOLERANCE * scale

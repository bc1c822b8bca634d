"""`tree-ensembles`: scikit-learn's ``ai.onnx.ml`` TreeEnsembleClassifier / TreeEnsembleRegressor
in one canonical form, a TreeEnsembleRegressor that sums raw scores.

skl2onnx writes DecisionTree*, RandomForest*, ExtraTrees* and GradientBoosting* models as one
TreeEnsembleClassifier (label + scores, then ZipMap) or TreeEnsembleRegressor node. Their
attributes describe the forest as flat lists (``nodes_*``: one entry per node; ``class_*`` /
``target_*``: one entry per leaf weight). This module reads them into :class:`Ensemble` (also used
by `lower`, backends/lower_trees.py) and rewrites every supported node as

    scores = TreeEnsembleRegressor(x) {n_targets=C, aggregate_function=SUM, post_transform=NONE,
                                       base_values=b (or none)}   [-> Softmax{axis=1} / Sigmoid]

so that what is left of a classifier is the label path `strip-classifier-tail` removes, and the
final Softmax/Sigmoid is dropped by `lower` like any classifier's (it keeps the argmax).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.errors import Location, UnsupportedError
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, attr, consumers, detach, drop_unused,
                                   is_graph_output, is_read, new_constant, new_variable, origin_of, producer,
                                   set_origin)

ML_DOMAIN = "ai.onnx.ml"
TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
#: Comparison modes: the branch takes its true child when ``x MODE threshold``.
BRANCH_MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
#: Modes the kernel tests with two comparisons (``x <= t`` and ``x < t``: backends/lower_trees.py).
EQUALITY_MODES = ("BRANCH_EQ", "BRANCH_NEQ")
POST_OPS: dict[str, str | None] = {"NONE": None, "SOFTMAX": "Softmax", "LOGISTIC": "Sigmoid"}
DEFAULT_OPSET = 13
#: The kernel's tables: branch indices and leaf value offsets are 15-bit (the top bit of a child
#: marks a leaf), and the offset a tree walk writes is a non-negative int16.
MAX_BRANCHES = 32767
MAX_VALUES = 32767


@dataclass(frozen=True)
class Branch:
    """An interior node: the true child when ``x[feature] MODE threshold`` (float32 compare)."""

    feature: int
    threshold: float
    mode: str
    true: int
    false: int


@dataclass
class Tree:
    """One tree: its root's node id, its branches and its leaves (node id -> target -> weight)."""

    root: int
    branches: dict[int, Branch] = field(default_factory=dict)
    leaves: dict[int, dict[int, float]] = field(default_factory=dict)


@dataclass
class Ensemble:
    """A forest as onnxruntime evaluates it: ``score[k] = base[k] + sum over trees of the weight
    for target k of the leaf the input reaches`` (AVERAGE divides the sum by the tree count), then
    ``post``. ``base`` is empty or one value per target; ``labels`` is None for a regressor.
    ``missing_tracked``: the branches whose ``nodes_missing_value_tracks_true`` is set (a NaN
    feature takes their true child). The device's fixed-point input is never NaN, and for any
    other value the flag changes nothing, so the compiler ignores it (the canonical form has none) (LightGBM's and XGBoost's
    converters set it wherever the model learnt a default direction for missing values)."""

    trees: list[Tree]
    targets: int
    base: list[float]
    post: str
    aggregate: str
    labels: list[object] | None
    problems: list[str] = field(default_factory=list)
    missing_tracked: int = 0


def _ints(node: gs.Node, name: str) -> list[int]:
    value = node.attrs.get(name)
    return [] if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


def _floats(node: gs.Node, name: str) -> list[float]:
    """A float list attribute, or its ``*_as_tensor`` twin."""
    value = node.attrs.get(name)
    if value is None:
        value = node.attrs.get(f"{name}_as_tensor")
        if isinstance(value, gs.Constant):
            value = value.values
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
    return [] if value is None else [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)]


def _strings(node: gs.Node, name: str) -> list[str]:
    value = node.attrs.get(name)
    return [] if value is None else [v.decode() if isinstance(v, bytes) else str(v) for v in value]


def read_ensemble(node: gs.Node) -> Ensemble:
    """The forest of a TreeEnsembleClassifier / TreeEnsembleRegressor; what the compiler cannot
    take is listed in ``problems`` (then the trees may be incomplete)."""
    classifier = node.op == "TreeEnsembleClassifier"
    problems: list[str] = []
    labels: list[object] | None = None
    if classifier:
        ints, strs = _ints(node, "classlabels_int64s"), _strings(node, "classlabels_strings")
        labels = list(ints) if ints else list(strs)
        targets = len(labels)
        prefix = "class"
    else:
        targets = int(attr(node, "n_targets", 1))
        prefix = "target"
    post = str(attr(node, "post_transform", "NONE"))
    aggregate = str(attr(node, "aggregate_function", "SUM"))
    if post not in POST_OPS:
        problems.append(f"post_transform={post} (supported: NONE, SOFTMAX, LOGISTIC)")
    if aggregate not in ("SUM", "AVERAGE"):
        problems.append(f"aggregate_function={aggregate} (supported: SUM, AVERAGE)")
    if targets <= 0:
        problems.append("no classes or targets")
    tree_ids, node_ids = _ints(node, "nodes_treeids"), _ints(node, "nodes_nodeids")
    features, values = _ints(node, "nodes_featureids"), _floats(node, "nodes_values")
    modes = _strings(node, "nodes_modes")
    trues, falses = _ints(node, "nodes_truenodeids"), _ints(node, "nodes_falsenodeids")
    missing = _ints(node, "nodes_missing_value_tracks_true")
    n = len(node_ids)
    if n == 0 or any(len(a) != n for a in (tree_ids, features, values, modes, trues, falses)) \
            or (missing and len(missing) != n):
        problems.append("the nodes_* attributes are missing or of different lengths")
        return Ensemble([], targets, [], post, aggregate, labels, problems)
    bad_modes = sorted({m for m in modes if m != "LEAF" and m not in BRANCH_MODES})
    if bad_modes:
        problems.append(f"nodes_modes {', '.join(bad_modes)} (supported: LEAF, {', '.join(BRANCH_MODES)})")
    trees: dict[int, Tree] = {}
    for i in range(n):
        tree = trees.setdefault(tree_ids[i], Tree(root=-1))
        if modes[i] == "LEAF":
            tree.leaves.setdefault(node_ids[i], {})
        else:
            tree.branches[node_ids[i]] = Branch(features[i], values[i], modes[i], trues[i], falses[i])
    w_trees, w_nodes = _ints(node, f"{prefix}_treeids"), _ints(node, f"{prefix}_nodeids")
    w_ids, w_values = _ints(node, f"{prefix}_ids"), _floats(node, f"{prefix}_weights")
    if any(len(a) != len(w_trees) for a in (w_nodes, w_ids, w_values)):
        problems.append(f"the {prefix}_* attributes are of different lengths")
    for t, nid, k, w in zip(w_trees, w_nodes, w_ids, w_values):
        leaf = trees[t].leaves.get(nid) if t in trees else None
        if leaf is None or not 0 <= k < max(targets, 1):
            problems.append(f"a {prefix} weight for tree {t} node {nid} {prefix} {k}, which is no leaf or no {prefix}")
            continue
        leaf[k] = leaf.get(k, 0.0) + w
    for t, tree in trees.items():
        children = {c for b in tree.branches.values() for c in (b.true, b.false)}
        roots = [i for i in [*tree.branches, *tree.leaves] if i not in children]
        missing_children = children - set(tree.branches) - set(tree.leaves)
        if len(roots) != 1 or missing_children:
            problems.append(f"tree {t} is not a tree ({len(roots)} roots, children {sorted(missing_children)} undefined)")
        else:
            tree.root = roots[0]
    base = _floats(node, "base_values")
    if base and len(base) != targets and not (classifier and targets == 2 and len(base) == 1):
        problems.append(f"{len(base)} base_values for {targets} {prefix}s")
    return Ensemble([trees[t] for t in sorted(trees)], targets, base, post, aggregate, labels, problems,
                    sum(1 for i in range(n) if missing and missing[i] and modes[i] != "LEAF"))


def output_spans(ens: Ensemble, leaves: list[dict[int, float]], outputs: int) -> tuple[list[int], int]:
    """(per tree the first output its leaves write, the width ``W``): every tree's non-zero weights
    lie in ``[first, first + W)``, ``W`` the widest span (1 when each tree writes one output, as
    gradient boosting's; the class count for random forests). ``leaves``: :func:`canonical_scores`'."""
    spans = []
    start = 0
    for tree in ens.trees:
        ks = [k for leaf in leaves[start:start + len(tree.leaves)] for k, w in leaf.items() if w != 0.0]
        spans.append((min(ks), max(ks) - min(ks) + 1) if ks else (0, 1))
        start += len(tree.leaves)
    width = max((span for _, span in spans), default=1)
    return [min(lo, outputs - width) for lo, _ in spans], width


def tree_limits(ens: Ensemble) -> list[str]:
    """What of ``ens`` exceeds the tables of the `trees` / `tree_sum` kernels (15-bit branch
    indices and leaf value offsets)."""
    branches = sum(2 if b.mode in EQUALITY_MODES else 1 for t in ens.trees for b in t.branches.values())
    leaves, base, _, _ = canonical_scores(ens)
    values = len(leaves) * output_spans(ens, leaves, len(base))[1]
    out = []
    if branches > MAX_BRANCHES:
        out.append(f"{branches} branch nodes (at most {MAX_BRANCHES})")
    if values > MAX_VALUES:
        out.append(f"{values} leaf values ({len(leaves)} leaves; at most {MAX_VALUES})")
    return out


def reject_training(model: OnnxModel, pass_name: str) -> None:
    """Raise a clear error when ``model`` holds a tree ensemble: gNet and SparseComp train Conv/Gemm
    weights with gradients, and a forest has none (its thresholds and leaves are not trained by
    gradient descent)."""
    trees = [n for n in model.graph.nodes if n.domain == ML_DOMAIN and n.op in (*TREE_OPS, "TreeEnsemble")]
    if trees:
        raise UnsupportedError(
            f"'{trees[0].name}' is a tree ensemble ({trees[0].op}): {pass_name} has nothing to train "
            "(it trains Conv/Gemm weights by gradient descent; a forest's thresholds and leaves are not)",
            location=Location(file=model.source, pass_name=pass_name, node=trees[0].name, op=trees[0].op),
            hint="compile without --gnet / --max-drop; to make a forest smaller, train fewer or shallower trees "
                 "(max_depth, n_estimators) in scikit-learn")


def _one_column(ens: Ensemble) -> bool:
    """A binary classifier whose leaves hold a weight for class 0 only (GradientBoostingClassifier)."""
    return ens.labels is not None and ens.targets == 2 and all(
        set(leaf) <= {0} for tree in ens.trees for leaf in tree.leaves.values())


def canonical_scores(ens: Ensemble) -> tuple[list[dict[int, float]], list[float], str | None, str | None]:
    """What onnxruntime's scores are, as sums: per tree and leaf the weights per output column (in
    ``ens.trees``' leaf order), the per-column base, the final op (None, "Softmax", "Sigmoid"),
    or a reason (the 4th item) why onnxruntime's scores are not of that form.

    A binary classifier with one weight column (class 0 holds ``z = base + sum w``) gives, in
    onnxruntime: LOGISTIC ``[1 - s(z), s(z)] = s([-z, z])``; NONE and SOFTMAX (no softmax is
    applied) ``[1 - z, z]`` when every weight is positive, else ``[-z, z]``. A two-class model with
    two columns must hold both at every leaf (onnxruntime drops the second column of a sample
    whose leaves hold none) and no base_values (onnxruntime then ignores class 1's weights).
    The device's class is the argmax of these scores; onnxruntime's label of a binary classifier
    is a threshold of one column, which is that argmax for the forms skl2onnx writes.
    skl2onnx writes both forms: one column for GradientBoostingClassifier, two without base values
    for decision trees and forests."""
    scale = 1.0 / len(ens.trees) if ens.aggregate == "AVERAGE" and ens.trees else 1.0
    post = POST_OPS.get(ens.post)
    leaves: list[dict[int, float]] = []
    if _one_column(ens):
        if len(ens.base) > 1:
            return [], [], None, "a binary classifier with one score column and two base_values"
        b = ens.base[0] if ens.base else 0.0
        weights = [w for tree in ens.trees for leaf in tree.leaves.values() for w in leaf.values()]
        positive = all(w >= 0 for w in weights)
        for tree in ens.trees:
            for leaf in tree.leaves.values():
                z = leaf.get(0, 0.0) * scale
                leaves.append({0: -z, 1: z})
        if ens.post == "LOGISTIC":
            return leaves, [-b, b], "Sigmoid", None
        return leaves, [1.0 - b if positive else -b, b], None, None
    if ens.labels is not None and ens.targets == 2:
        if any(set(leaf) != {0, 1} for tree in ens.trees for leaf in tree.leaves.values()):
            return [], [], None, "a binary classifier whose leaves hold a weight for class 1 but not for both classes"
        if ens.base:    # onnxruntime then scores [-(b1 + z0), b1 + z0]: class 1's weights are not read
            return [], [], None, "a binary classifier with two score columns and base_values"
    for tree in ens.trees:
        for leaf in tree.leaves.values():
            leaves.append({k: w * scale for k, w in leaf.items()})
    base = list(ens.base) if ens.base else [0.0] * ens.targets
    if ens.labels is None:
        # onnxruntime's regressor adds base[k] only when a reached leaf writes target k
        for k in range(ens.targets):
            if base[k] == 0.0 or any(all(k in leaf for leaf in tree.leaves.values()) for tree in ens.trees):
                continue
            if any(k in leaf for tree in ens.trees for leaf in tree.leaves.values()):
                return [], [], None, (f"a base value for target {k}, which only some leaves write (onnxruntime "
                                      "adds it only when a reached leaf does)")
            base[k] = 0.0
    else:
        # onnxruntime's classifier adds base[k] to every sample, its regressor (the canonical form)
        # only when a reached leaf writes target k: every leaf writes such a k, if only a 0
        for k in (k for k in range(ens.targets) if base[k] != 0.0):
            for leaf in leaves:
                leaf.setdefault(k, 0.0)
    return leaves, base, post, None


def is_canonical(node: gs.Node) -> bool:
    """Is ``node`` the canonical TreeEnsembleRegressor (SUM, NONE, no missing-value tracking, one
    output) that `lower` takes?"""
    if node.op != "TreeEnsembleRegressor" or node.domain != ML_DOMAIN or len(node.outputs) != 1:
        return False
    ens = read_ensemble(node)
    return not ens.problems and ens.post == "NONE" and ens.aggregate == "SUM"


def regressor_attrs(ens: Ensemble, leaves: list[dict[int, float]], base: list[float]) -> dict[str, object]:
    """The attributes of the canonical TreeEnsembleRegressor."""
    nodes: dict[str, list[object]] = {k: [] for k in ("treeids", "nodeids", "featureids", "values", "modes",
                                                       "truenodeids", "falsenodeids")}
    targets: dict[str, list[object]] = {k: [] for k in ("treeids", "nodeids", "ids", "weights")}
    it = iter(leaves)
    for t, tree in enumerate(ens.trees):
        for nid, b in tree.branches.items():
            for key, value in (("treeids", t), ("nodeids", nid), ("featureids", b.feature), ("values", b.threshold),
                               ("modes", b.mode), ("truenodeids", b.true), ("falsenodeids", b.false)):
                nodes[key].append(value)
        for nid in tree.leaves:
            for key, value in (("treeids", t), ("nodeids", nid), ("featureids", 0), ("values", 0.0),
                               ("modes", "LEAF"), ("truenodeids", 0), ("falsenodeids", 0)):
                nodes[key].append(value)
            for k, w in sorted(next(it).items()):
                for key, value in (("treeids", t), ("nodeids", nid), ("ids", k), ("weights", w)):
                    targets[key].append(value)
    attrs: dict[str, object] = {f"nodes_{k}": v for k, v in nodes.items()}
    attrs.update({f"target_{k}": v for k, v in targets.items()})
    attrs.update({"n_targets": len(base), "aggregate_function": "SUM", "post_transform": "NONE", "base_values": base})
    return attrs


@register
class TreeEnsembles(Pass):
    """Rewrite TreeEnsembleClassifier / TreeEnsembleRegressor as the canonical TreeEnsembleRegressor.

    Before -> after (a GradientBoostingClassifier with 3 classes)::

        label, p = TreeEnsembleClassifier(x) {class_*=..., base_values=b, post_transform=SOFTMAX}
            ->
        z = TreeEnsembleRegressor(x) {target_*=..., n_targets=3, base_values=b, post_transform=NONE}
        p = Softmax(z) {axis=1}
        label = Reshape(ArrayFeatureExtractor(L, ArgMax(p) {axis=1, keepdims=1}), [-1])

    A binary classifier with one weight column gets two columns (:func:`canonical_scores`); AVERAGE
    becomes SUM of weights divided by the tree count. A node with a problem (:func:`read_ensemble`)
    or scores of another form is left for `check-supported` to report.
    """

    name = "tree-ensembles"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"classifiers": 0, "regressors": 0, "trees": 0}
        for node in list(graph.nodes):
            if node.domain != ML_DOMAIN or node.op not in TREE_OPS or is_canonical(node):
                continue
            ens = read_ensemble(node)
            if ens.problems or len(node.outputs) != (2 if ens.labels is not None else 1):
                continue
            leaves, base, post_op, why = canonical_scores(ens)
            if why is not None:
                continue
            self._rewrite(model, names, node, ens, leaves, base, post_op)
            stats["classifiers" if ens.labels is not None else "regressors"] += 1
            stats["trees"] += len(ens.trees)
        changed = stats["classifiers"] + stats["regressors"] > 0
        if changed and not any(d.domain in DEFAULT_DOMAINS for d in graph.import_domains or []):
            graph.import_domains = [*(graph.import_domains or []), onnx.helper.make_opsetid("", DEFAULT_OPSET)]
            graph.opset = DEFAULT_OPSET
        if changed:
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, node: gs.Node, ens: Ensemble,
                 leaves: list[dict[int, float]], base: list[float], post_op: str | None) -> None:
        graph = model.graph
        origin = origin_of(model, node)
        x = node.inputs[0]
        scores = node.outputs[-1]
        label = node.outputs[0] if ens.labels is not None else None
        readers = consumers(scores)
        if len(readers) == 1 and readers[0].op == "Identity" and is_graph_output(graph, readers[0].outputs[0]):
            scores = readers[0].outputs[0]     # skl2onnx without ZipMap: Identity(scores) is the output
            detach(readers[0])
        detach(node)
        if scores.shape is None:    # onnxmltools leaves it out; an output needs it ([N, C])
            batch = x.shape[0] if x.shape else "N"
            scores.shape = [batch, len(base)]
            scores.dtype = scores.dtype or np.float32
        raw = new_variable(names, f"{node.name}_scores", np.float32) if post_op else scores
        made = [add_node(graph, names, "TreeEnsembleRegressor", f"{node.name}_trees", [x], [raw],
                         regressor_attrs(ens, leaves, base))]
        made[0].domain = ML_DOMAIN
        if post_op:
            made.append(add_node(graph, names, post_op, f"{node.name}_{post_op.lower()}", [raw], [scores],
                                 {"axis": 1} if post_op == "Softmax" else {}))
        if label is not None and is_read(graph, label):
            assert ens.labels is not None
            labels = np.asarray(ens.labels, dtype=np.int64 if all(isinstance(v, int) for v in ens.labels) else object)
            classes = new_constant(names, f"{node.name}_classes", labels)
            index = new_variable(names, f"{node.name}_argmax", np.int64)
            picked = new_variable(names, f"{node.name}_label", label.dtype)
            shape = new_constant(names, f"{node.name}_label_shape", np.array([-1], dtype=np.int64))
            made.append(add_node(graph, names, "ArgMax", f"{node.name}_argmax", [scores], [index],
                                 {"axis": 1, "keepdims": 1}))
            extract = gs.Node(op="ArrayFeatureExtractor", name=names.fresh(f"{node.name}_labels"),
                              domain=ML_DOMAIN, inputs=[classes, index], outputs=[picked])
            graph.nodes.append(extract)
            made.append(extract)
            made.append(add_node(graph, names, "Reshape", f"{node.name}_label_reshape", [picked, shape], [label]))
        for new in made:
            set_origin(model, new, origin)


#: The mode of ``x MODE t`` once both sides are multiplied by a negative number.
_FLIPPED = {"BRANCH_LEQ": "BRANCH_GTE", "BRANCH_LT": "BRANCH_GT", "BRANCH_GTE": "BRANCH_LEQ", "BRANCH_GT": "BRANCH_LT",
            "BRANCH_EQ": "BRANCH_EQ", "BRANCH_NEQ": "BRANCH_NEQ"}
#: A threshold beyond every float32 input: the branch of a feature scaled by 0 always goes one way.
_ALWAYS = 3.0e38


def _per_feature(value: np.ndarray, features: int) -> np.ndarray | None:
    """``value`` as one float per feature of a ``[N, features]`` tensor it broadcasts to, or None."""
    if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1) or value.size not in (1, features):
        return None
    return np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(-1), (features,)).copy()


def _affine_before(graph: gs.Graph, x: gs.Tensor, features: int) -> tuple[gs.Tensor, np.ndarray, np.ndarray, int]:
    """Walk back from ``x`` through Add/Sub/Mul/Div of per-feature constants, each read only by the
    next: (the tensor the chain starts from, ``s``, ``b`` with ``x = start * s + b`` per feature,
    the number of nodes)."""
    scale, bias = np.ones(features), np.zeros(features)
    count = 0
    while True:
        node = producer(x)
        if node is None or (node.domain or "") not in DEFAULT_DOMAINS or node.op not in ("Add", "Sub", "Mul", "Div") \
                or len(node.inputs) != 2 or len(consumers(x)) != 1 or is_graph_output(graph, x):
            break
        k = next((i for i in (1, 0) if isinstance(node.inputs[i], gs.Constant)), None)
        if k is None or isinstance(node.inputs[1 - k], gs.Constant) or (node.op in ("Sub", "Div") and k != 1):
            break
        c = _per_feature(np.asarray(node.inputs[k].values), features)
        if c is None or (node.op == "Div" and np.any(c == 0)):
            break
        # x = start' op c, and x = start * scale + bias: substitute
        if node.op == "Add":
            bias = bias + scale * c
        elif node.op == "Sub":
            bias = bias - scale * c
        elif node.op == "Mul":
            scale = scale * c
        else:
            scale = scale / c
        x = node.inputs[1 - k]
        count += 1
    return x, scale, bias, count


@register
class FoldAffineIntoTrees(Pass):
    """Fold a per-feature affine map (a StandardScaler / MinMaxScaler before a forest: `ml-to-onnx`'s
    ``Mul(Add(x, -o), s)``) into the thresholds of the canonical TreeEnsembleRegressor that reads it.

    Before -> after (``y = x * s + b`` per feature, only the trees read ``y``)::

        y = Mul(Add(x, -o), s);  z = TreeEnsembleRegressor(y) {nodes_values=t, nodes_modes=LEQ}
            ->
        z = TreeEnsembleRegressor(x) {nodes_values=(t - b) / s, nodes_modes=LEQ (GTE where s < 0)}

    ``y_f MODE t`` is ``x_f MODE' (t - b_f) / s_f`` (``MODE'`` the flipped comparison when ``s_f < 0``);
    a feature scaled by 0 is the constant ``b_f``, so its branches always take one side (threshold
    +-3e38). The device then compares the input itself, with no rounded intermediate before the
    thresholds; and a graph input read only by trees can have per-feature formats (`quantize`'s
    ``feature-shift``). Exact but for the float32 rounding of the new thresholds and of the float
    model's ``y`` (an input that close to a threshold lies within an input LSB of it anyway).
    """

    name = "fold-affine-into-trees"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        folded = 0
        for node in list(graph.nodes):
            if node.domain != ML_DOMAIN or node.op != "TreeEnsembleRegressor" or len(node.inputs) != 1 \
                    or not is_canonical(node):
                continue
            x = node.inputs[0]
            shape = x.shape
            readers = consumers(x)
            if shape is None or len(shape) != 2 or not isinstance(shape[1], int) or readers != [node]:
                continue
            start, scale, bias, count = _affine_before(graph, x, int(shape[1]))
            if count == 0:
                continue
            self._fold(node, scale, bias)
            node.inputs[0] = start
            folded += count
        if folded:
            drop_unused(graph)
        return PassResult(model, folded > 0, {"folded": folded})

    @staticmethod
    def _fold(node: gs.Node, scale: np.ndarray, bias: np.ndarray) -> None:
        """Rewrite ``node``'s thresholds and modes for ``y = x * scale + bias``."""
        values, modes, features = _floats(node, "nodes_values"), _strings(node, "nodes_modes"), \
            _ints(node, "nodes_featureids")
        for i, mode in enumerate(modes):
            if mode == "LEAF":
                continue
            f = features[i]
            s, b = float(scale[f]), float(bias[f])
            if s == 0.0:
                holds = {"BRANCH_LEQ": b <= values[i], "BRANCH_LT": b < values[i],
                         "BRANCH_GTE": b >= values[i], "BRANCH_GT": b > values[i],
                         "BRANCH_EQ": b == values[i], "BRANCH_NEQ": b != values[i]}[mode]
                modes[i], values[i] = "BRANCH_LEQ", _ALWAYS if holds else -_ALWAYS
                continue
            values[i] = (values[i] - b) / s
            if s < 0:
                modes[i] = _FLIPPED[mode]
        node.attrs.pop("nodes_values_as_tensor", None)
        node.attrs["nodes_values"] = [float(np.float32(v)) for v in values]
        node.attrs["nodes_modes"] = modes

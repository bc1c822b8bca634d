"""`hummingbird-trees`: hummingbird-ml's tree ensembles (its GEMM form, its tree_trav and perf_tree_trav walks) as
canonical TreeEnsembleRegressors.

hummingbird (``hummingbird.ml.convert(model, "onnx", X)``, ``tree_implementation="gemm"``, the
default for shallow trees) writes T trees of at most I branches and L leaves each as three matrix
products over the batch ``[N, F]``:

    c = LessOrEqual(Gemm(A, x) {transB=1}, B)        A [T*I, F]: one 1 per row, the branch's feature;
                                                     B [T*I, 1]: its threshold; c [T*I, N]: x[f] <= t
    p = MatMul(C, Cast(Reshape(c, [T, I, -1])))      C [T, L, I]: +1 where the leaf lies under the
                                                     branch's true child, -1 under its false child
    h = Equal(D, Reshape(p, [T*L, -1]))              D [T*L, 1]: the count of +1 on the leaf's path:
                                                     h is 1 at the one leaf of each tree x reaches
    y = Transpose(ReduceSum(Reshape(MatMul(E, Cast(Reshape(h, [T, L, -1]))), [T, K, -1]), [0])) {perm=[1, 0]}
                                                     E [T, K, L]: the leaves' values; y [N, K]

Each tree is read back from its rows of C: the branch every leaf of a subtree passes is the
subtree's root, the leaves with +1 there its true side. A padding leaf (a zero row of C) is reached
when its D is 0 (its values then add to every sample: the base) and never otherwise. The rewrite
happens only when every leaf's D is the count of its +1 (then ``p = D`` exactly on the leaf's
path), every used row of A selects one feature, and onnxruntime gives the same ``y`` from the new
node on random inputs around the thresholds; ``Less`` instead of ``LessOrEqual`` is a BRANCH_LT.

Before -> after (a RandomForestClassifier; its label is the ArgMax of ``y``, which
`strip-classifier-tail` removes)::

    y = Transpose(ReduceSum(... MatMul(E, ... Equal(D, ... MatMul(C, ... LessOrEqual(Gemm(A, x), B))))))
        ->
    y = TreeEnsembleRegressor(x) {n_targets=K, aggregate_function=SUM, post_transform=NONE,
                                  base_values=(the always-reached padding leaves' values)}

hummingbird's other two forms walk the trees one level per step over node tables (initializers
``_operators.N.<table>``), with Gather, GatherElements, Where, Add and Mul on int64 node indices, and
read each tree's leaf values with one ``g = Gather(values, index)`` ``[N*T, K]``, which the model then
sums over the trees (``ReduceSum``; gradient boosting adds its base and a Softmax / Sigmoid).
``tree_trav``: per tree N nodes, ``lefts`` / ``rights`` (a leaf's are its own id), ``features``,
``thresholds``, ``values`` ``[T*N, K]``, ``nodes_offset``; ``perf_tree_trav``: perfect trees of depth D,
``root_nodes`` / ``root_biases``, then per level ``nodes.k`` / ``biases.k``, node j going to 2j + 1 when
``x[f] <= t`` and to 2j otherwise, ``leaf_nodes`` ``[T * 2^D, K]``. Only ``g`` is replaced, by an
ensemble whose T*K outputs hold one span per tree::

    g = Gather(values, Reshape(Add(Cast(Where(LessOrEqual(GatherElements(x, ...), ...), ...)), offset)))
        ->
    g = Reshape(TreeEnsembleRegressor(x) {n_targets=T*K; tree t writes outputs t*K .. t*K+K-1}, [-1, K])

and the walk, read by nothing else, goes; the sum over the trees stays, a ReduceSum over the middle
axis of ``[1, T, K]``. The trees are taken when onnxruntime gives the same ``g`` from them on random
inputs around the thresholds (BRANCH_LEQ, else BRANCH_LT: scikit-learn's ``<=``, or ``<``). A walk
whose trees cannot be read so is rejected in one error naming the node that reads a table and
saying to convert with the GEMM form or with skl2onnx.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.errors import UnsupportedError
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.fold_constants import constant_value
from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, consumers, detach, drop_unused,
                                   is_graph_output, new_constant, new_variable, node_location, origin_of, producer,
                                   set_origin)
from passes.tree_ensembles import ML_DOMAIN, Branch, Ensemble, Tree, regressor_attrs, tree_limits
from passes.tree_votes import same_scores

#: Ops hummingbird puts between the products (they only reshape or retype).
_PLUMBING = ("Reshape", "Cast", "Identity")
#: The comparison of a branch -> the mode of its true child.
_COMPARISONS = {"LessOrEqual": "BRANCH_LEQ", "Less": "BRANCH_LT"}
#: Initializer names (after hummingbird's ``_operators.N.``) of its tree_trav / perf_tree_trav node tables.
WALK_TABLES = frozenset({"lefts", "rights", "nodes_offset", "root_nodes", "root_biases", "leaf_nodes", "tree_indices"})


def _default(node: gs.Node | None, *ops: str) -> bool:
    return node is not None and node.op in ops and (node.domain or "") in DEFAULT_DOMAINS


def _constant(tensor: gs.Tensor, nodes: list[gs.Node]) -> np.ndarray | None:
    """The value of an initializer or of a Constant node's output (the node joins ``nodes``)."""
    value = constant_value(tensor)
    if value is not None and not isinstance(tensor, gs.Constant):
        nodes.append(tensor.inputs[0])
    return value


def _back(tensor: gs.Tensor, nodes: list[gs.Node]) -> gs.Node | None:
    """The first producer up from ``tensor`` that is not a reshape or cast (those join ``nodes``)."""
    node = producer(tensor)
    while _default(node, *_PLUMBING) and node.inputs:
        nodes.append(node)
        if node.op == "Reshape" and _constant(node.inputs[1], nodes) is None:
            return None
        node = producer(node.inputs[0])
    return node


def _operands(node: gs.Node, const_at: int | None, nodes: list[gs.Node]) -> tuple[np.ndarray, gs.Tensor] | None:
    """(the constant operand, the other one) of a two-input node; ``const_at``: where the constant must
    be (None: either side)."""
    for at in (0, 1) if const_at is None else (const_at,):
        value = _constant(node.inputs[at], nodes)
        if value is not None and _constant(node.inputs[1 - at], []) is None:
            return value, node.inputs[1 - at]
    return None


def _matched(out: gs.Tensor) -> tuple[gs.Tensor, list[np.ndarray], str, list[gs.Node]] | None:
    """(x, [A, B, C, D, E], the branch mode, the nodes) of the GEMM form ending in ``out``
    (the module docstring), or None."""
    transpose = producer(out)
    if not _default(transpose, "Transpose") or list(transpose.attrs.get("perm", [])) != [1, 0]:
        return None
    nodes = [transpose]
    reduce = producer(transpose.inputs[0])
    if not _default(reduce, "ReduceSum") or int(reduce.attrs.get("keepdims", 1)):
        return None
    nodes.append(reduce)
    axes = reduce.attrs.get("axes") if len(reduce.inputs) < 2 else _constant(reduce.inputs[1], nodes)
    if axes is None or [int(a) for a in np.asarray(axes).reshape(-1)] != [0]:
        return None
    # (ops, where the constant operand is): E @ h, D == p, C @ c, s <= B
    chain: list[tuple[tuple[str, ...], int | None]] = [(("MatMul",), 0), (("Equal",), None), (("MatMul",), 0),
                                                      (tuple(_COMPARISONS), 1)]
    values: list[np.ndarray] = []
    tensor = reduce.inputs[0]
    mode = ""
    for ops, const_at in chain:
        node = _back(tensor, nodes)
        if not _default(node, *ops) or len(node.inputs) != 2:
            return None
        nodes.append(node)
        found = _operands(node, const_at, nodes)
        if found is None:
            return None
        values.append(found[0].astype(np.float64))
        tensor = found[1]
        mode = _COMPARISONS.get(node.op, mode)
    gemm = producer(tensor)
    if not _default(gemm, "Gemm") or int(gemm.attrs.get("transA", 0)) or not int(gemm.attrs.get("transB", 0)) \
            or float(gemm.attrs.get("alpha", 1.0)) != 1.0 or len(gemm.inputs) < 2:
        return None
    nodes.append(gemm)
    select = _constant(gemm.inputs[0], nodes)
    if select is None or isinstance(gemm.inputs[1], gs.Constant):
        return None
    if len(gemm.inputs) > 2 and float(gemm.attrs.get("beta", 1.0)) != 0.0 and not _zero(gemm.inputs[2], nodes):
        return None
    e, d, c, b = values
    return gemm.inputs[1], [select.astype(np.float64), b, c, d, e], mode, nodes


def _zero(tensor: gs.Tensor, nodes: list[gs.Node]) -> bool:
    value = _constant(tensor, nodes)
    return value is not None and not np.any(value)


def _tree(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray,
          mode: str) -> tuple[Tree, np.ndarray] | None:
    """One tree (A ``[I, F]``, B ``[I]``, C ``[L, I]``, D ``[L]``, E ``[K, L]``) and the values its
    always-reached padding leaves add, or None when the rows are not a tree's."""
    if not np.isin(c, (-1.0, 0.0, 1.0)).all():
        return None
    base = np.zeros(e.shape[0])
    leaves = []
    for leaf in range(c.shape[0]):
        if not c[leaf].any():       # padding: reached always (D = 0) or never
            base += e[:, leaf] if d[leaf] == 0 else 0.0
        elif d[leaf] != float((c[leaf] == 1.0).sum()):
            return None
        else:
            leaves.append(leaf)
    if not leaves:
        return None
    tree = Tree(root=0)

    def build(group: list[int], used: frozenset[int]) -> int | None:
        nid = len(tree.branches) + len(tree.leaves)
        shared = [i for i in range(c.shape[1]) if i not in used and all(c[leaf, i] != 0.0 for leaf in group)]
        if len(group) == 1 and not shared:
            if any(i not in used for i in np.flatnonzero(c[group[0]])):
                return None
            tree.leaves[nid] = {k: float(e[k, group[0]]) for k in range(e.shape[0])}
            return nid
        if len(shared) != 1:
            return None
        branch = shared[0]
        features = np.flatnonzero(a[branch])
        if len(features) != 1 or a[branch, features[0]] != 1.0:
            return None
        tree.branches[nid] = Branch(int(features[0]), float(np.float32(b[branch])), mode, -1, -1)
        sides = [[leaf for leaf in group if c[leaf, branch] == sign] for sign in (1.0, -1.0)]
        if not all(sides):
            return None
        children = [build(side, used | {branch}) for side in sides]
        if children[0] is None or children[1] is None:
            return None
        tree.branches[nid] = Branch(int(features[0]), float(np.float32(b[branch])), mode, children[0], children[1])
        return nid

    return (tree, base) if build(leaves, frozenset()) == 0 else None


def read_gemm_trees(matrices: list[np.ndarray], mode: str) -> tuple[list[Tree], np.ndarray] | None:
    """The trees of hummingbird's ``[A, B, C, D, E]`` (module docstring) and the base per output, or None."""
    a, b, c, d, e = matrices
    if c.ndim != 3 or e.ndim != 3 or c.shape[0] != e.shape[0] or e.shape[2] != c.shape[1]:
        return None
    count, leaves, branches = c.shape
    if a.ndim != 2 or a.shape[0] != count * branches or b.size != count * branches or d.size != count * leaves:
        return None
    b, d = b.reshape(count, branches), d.reshape(count, leaves)
    trees, base = [], np.zeros(e.shape[1])
    for t in range(count):
        read = _tree(a[t * branches:(t + 1) * branches], b[t], c[t], d[t], e[t], mode)
        if read is None:
            return None
        trees.append(read[0])
        base += read[1]
    return trees, base


def _tables(graph: gs.Graph) -> dict[str, dict[str, np.ndarray]]:
    """hummingbird's node tables by operator: ``_operators.N`` -> {``lefts``: ..., ``nodes.0``: ...}."""
    found: dict[str, dict[str, np.ndarray]] = {}
    for name, tensor in graph.tensors().items():
        if isinstance(tensor, gs.Constant) and name.startswith("_operators."):
            parts = name.split(".")
            prefix, rest = ".".join(parts[:2]), ".".join(parts[2:])
            found.setdefault(prefix, {})[rest] = np.asarray(tensor.values)
    return found


def _trav_trees(tables: dict[str, np.ndarray], mode: str) -> list[Tree] | None:
    """The trees of a tree_trav walk: per tree ``N`` nodes (``lefts``/``rights`` local ids, a leaf's
    both its own id; ``features``, ``thresholds``; ``values`` ``[T*N, K]``); each leaf writes its values
    at outputs ``t*K ..`` (one span per tree)."""
    lefts, rights = tables["lefts"].reshape(-1), tables["rights"].reshape(-1)
    features, thresholds = tables["features"].reshape(-1), tables["thresholds"].reshape(-1)
    values = tables["values"]
    count = tables["nodes_offset"].size
    if count == 0 or values.ndim != 2 or lefts.size % count or not lefts.size == rights.size == features.size \
            == thresholds.size == values.shape[0]:
        return None
    size, width = lefts.size // count, values.shape[1]
    trees = []
    for t in range(count):
        tree, stack = Tree(root=0), [0]
        while stack:
            node = stack.pop()
            at = t * size + node
            left, right = int(lefts[at]), int(rights[at])
            if left == node and right == node:
                tree.leaves[node] = {t * width + k: float(values[at, k]) for k in range(width)}
                continue
            if not (0 <= left < size and 0 <= right < size) or left in tree.branches or right in tree.branches \
                    or len(tree.branches) >= size:
                return None
            tree.branches[node] = Branch(int(features[at]), float(np.float32(thresholds[at])), mode, left, right)
            stack += [left, right]
        trees.append(tree)
    return trees


def _perfect_trees(tables: dict[str, np.ndarray], mode: str) -> list[Tree] | None:
    """The trees of a perf_tree_trav walk: perfect trees of depth D; level 0 from ``root_nodes`` /
    ``root_biases``, level k from ``nodes.{k-1}`` / ``biases.{k-1}`` (``[T * 2^k]``); a node j of a
    level goes to 2j + 1 when its comparison holds, else to 2j; ``leaf_nodes`` ``[T * 2^D, K]``."""
    levels = [(tables["root_nodes"].reshape(-1), tables["root_biases"].reshape(-1))]
    while f"nodes.{len(levels) - 1}" in tables and f"biases.{len(levels) - 1}" in tables:
        levels.append((tables[f"nodes.{len(levels) - 1}"].reshape(-1), tables[f"biases.{len(levels) - 1}"].reshape(-1)))
    leaves, count, depth = tables["leaf_nodes"], levels[0][0].size, len(levels)
    if leaves.ndim != 2 or leaves.shape[0] != count * 2 ** depth or any(
            f.size != count * 2 ** k or b.size != f.size for k, (f, b) in enumerate(levels)):
        return None
    width = leaves.shape[1]
    trees = []
    for t in range(count):
        tree = Tree(root=0)
        for k, (features, biases) in enumerate(levels):
            for j in range(2 ** k):
                at, child = t * 2 ** k + j, 2 ** (k + 1) - 1
                tree.branches[2 ** k - 1 + j] = Branch(int(features[at]), float(np.float32(biases[at])), mode,
                                                       child + 2 * j + 1, child + 2 * j)
        for j in range(2 ** depth):
            at = t * 2 ** depth + j
            tree.leaves[2 ** depth - 1 + j] = {t * width + k: float(leaves[at, k]) for k in range(width)}
        trees.append(tree)
    return trees


#: The walk forms: the tables each needs, the table its leaf values come from, how its trees are read.
WALKS = {"tree_trav": (("lefts", "rights", "features", "thresholds", "values", "nodes_offset"), "values", _trav_trees),
         "perf_tree_trav": (("root_nodes", "root_biases", "leaf_nodes"), "leaf_nodes", _perfect_trees)}


def reject_tree_walks(model: OnnxModel) -> None:
    """Raise one clear error when ``model`` still holds hummingbird's tree_trav / perf_tree_trav walk."""
    graph = model.graph
    for node in graph.nodes:
        tables = [t.name for t in node.inputs if isinstance(t, gs.Constant) and t.name.startswith("_operators.")
                  and t.name.rsplit(".", 1)[-1] in WALK_TABLES]
        if tables:
            raise UnsupportedError(
                f"'{node.name}' ({node.op}) reads '{tables[0]}', a node table of hummingbird-ml's tree_trav / "
                "perf_tree_trav tree walk (Gather/GatherElements/Where, one tree level per step), whose trees "
                "could not be read back (their leaf values are not read by one Gather, or the tables do not "
                "give the walk's values on random inputs)",
                location=node_location(model, node, HummingbirdTrees.name),
                hint="convert with hummingbird.ml.convert(model, 'onnx', X, extra_config={'tree_implementation': "
                     "'gemm'}), or with skl2onnx (its TreeEnsemble ops compile)")


@register
class HummingbirdTrees(Pass):
    """Rewrite hummingbird-ml's GEMM tree ensemble as a canonical TreeEnsembleRegressor (module docstring)."""

    name = "hummingbird-trees"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"ensembles": 0, "trees": 0, "walks": 0}
        for transpose in [n for n in graph.nodes if _default(n, "Transpose")]:
            out = transpose.outputs[0]
            matched = _matched(out)
            if matched is None:
                continue
            x, matrices, mode, nodes = matched
            inside = {id(n) for n in nodes}
            if any(id(r) not in inside for n in nodes if n is not transpose for t in n.outputs for r in consumers(t)) \
                    or any(is_graph_output(graph, t) for n in nodes if n is not transpose for t in n.outputs):
                continue
            read = read_gemm_trees(matrices, mode)
            if read is None:
                continue
            trees, base = read
            if self._replace(model, names, x, out, trees, [float(v) for v in base], nodes, transpose.name):
                stats["ensembles"] += 1
                stats["trees"] += len(trees)
        for tables in _tables(graph).values():
            for needs, leaf_table, read_trees in WALKS.values():
                if all(name in tables for name in needs) and self._walk(model, names, tables, leaf_table, read_trees):
                    stats["walks"] += 1
        if stats["ensembles"] or stats["walks"]:
            if not any(d.domain == ML_DOMAIN for d in graph.import_domains or []):
                graph.import_domains = [*(graph.import_domains or []), onnx.helper.make_opsetid(ML_DOMAIN, 1)]
            drop_unused(graph, toposort=True)
        reject_tree_walks(model)
        return PassResult(model, bool(stats["ensembles"] or stats["walks"]), stats)

    def _walk(self, model: OnnxModel, names: NameSource, tables: dict[str, np.ndarray], leaf_table: str,
              read_trees: Callable[[dict[str, np.ndarray], str], list[Tree] | None]) -> bool:
        """Replace the Gather of a walk's leaf values ``g [N*T, K]`` by ``Reshape(TreeEnsembleRegressor(x),
        [-1, K])``, the ensemble's ``T*K`` outputs one span per tree (module docstring); x is what the
        walk's GatherElements read (the graph input)."""
        graph = model.graph
        gathers = [n for n in graph.nodes if _default(n, "Gather") and isinstance(n.inputs[0], gs.Constant)
                   and n.inputs[0].name.endswith(f".{leaf_table}") and int(n.attrs.get("axis", 0)) == 0]
        read = {id(n.inputs[0]) for n in graph.nodes if _default(n, "GatherElements", "Gather")
                and not isinstance(n.inputs[0], gs.Constant)}
        sources = [t for t in graph.inputs if id(t) in read]
        if len(gathers) != 1 or len(sources) != 1:
            return False
        gather, x = gathers[0], sources[0]
        width = tables[leaf_table].shape[1]
        for mode in ("BRANCH_LEQ", "BRANCH_LT"):
            trees = read_trees(tables, mode)
            if trees is None:
                return False
            ens = Ensemble(trees, len(trees) * width, [], "NONE", "SUM", None)
            if tree_limits(ens):
                return False
            attrs = regressor_attrs(ens, [leaf for tree in trees for leaf in tree.leaves.values()],
                                    [0.0] * ens.targets)
            if not same_scores(graph, x, gather.outputs[0], attrs, trees, model.opset or 13):
                continue
            origin = origin_of(model, gather)
            raw = new_variable(names, f"{gather.name}_trees", np.float32)
            shape = new_constant(names, f"{gather.name}_shape", np.array([-1, width], np.int64))
            out = gather.outputs[0]
            detach(gather)
            made = [add_node(graph, names, "TreeEnsembleRegressor", f"{gather.name}_trees", [x], [raw], attrs),
                    add_node(graph, names, "Reshape", f"{gather.name}_per_tree", [raw, shape], [out])]
            made[0].domain = ML_DOMAIN
            for new in made:
                set_origin(model, new, origin)
            return True
        return False

    @staticmethod
    def _replace(model: OnnxModel, names: NameSource, x: gs.Tensor, out: gs.Tensor, trees: list[Tree],
                 base: list[float], nodes: list[gs.Node], base_name: str) -> bool:
        """Replace the GEMM form's ``nodes`` by one TreeEnsembleRegressor writing ``out`` when it is within
        the kernel's limits and gives the same ``out`` on random inputs."""
        graph = model.graph
        ens = Ensemble(trees, len(base), base, "NONE", "SUM", None)
        if tree_limits(ens):
            return False
        attrs = regressor_attrs(ens, [leaf for tree in trees for leaf in tree.leaves.values()], ens.base)
        if not same_scores(graph, x, out, attrs, trees, model.opset or 13):
            return False
        origin = [name for n in nodes for name in origin_of(model, n)]
        for dead in {id(n): n for n in nodes}.values():
            detach(dead)
        made = add_node(graph, names, "TreeEnsembleRegressor", f"{base_name}_trees", [x], [out], attrs)
        made.domain = ML_DOMAIN
        set_origin(model, made, origin)
        return True

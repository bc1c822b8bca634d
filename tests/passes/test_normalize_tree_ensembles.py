"""`tree-ensembles` and the tree ensembles' rules in check-supported and the training passes.

- hypothesis draws small forests (classifier or regressor, 1-4 trees of depth <= 4, every branch
  mode, SUM/AVERAGE, NONE/SOFTMAX/LOGISTIC, binary with one or two weight columns, base values):
  after normalize onnxruntime gives the original scores on every input; the LIR interpreter's
  leaves are the float model's on every input whose features lie more than half an input LSB from
  every threshold (the only place a comparison may flip, docs/lir.md "trees"), and its scores are
  onnxruntime's within the leaves' rounding;
- unsupported attributes (aggregate MAX, PROBIT) are one clear error naming the node and the
  attribute; BRANCH_EQ/NEQ follow onnxruntime on categories; missing-value tracking is dropped (the device's inputs are never NaN);
- a per-feature affine map before a forest (a Scaler) is folded into its thresholds;
- gNet and SparseComp on a tree model say that there is nothing to train.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from transpiler import ort
from transpiler.data import Dataset
from transpiler.errors import UnsupportedError
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext, registry

registry()

FEATURES = 4
MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT")


def forest_model(trees: list[dict[str, list]], targets: int, classifier: bool, post: str = "NONE",
                 aggregate: str = "SUM", base: list[float] | None = None,
                 extra: dict[str, object] | None = None) -> onnx.ModelProto:
    """A TreeEnsembleClassifier/Regressor over a [N, FEATURES] input from per-tree node lists
    (``nodes``: (mode, feature, threshold, true, false) or ("LEAF", {target: weight}))."""
    a: dict[str, list] = {k: [] for k in ("treeids", "nodeids", "featureids", "values", "modes", "truenodeids",
                                           "falsenodeids", "w_tree", "w_node", "w_id", "w")}
    def put(**values: object) -> None:
        for key, value in values.items():
            a[key].append(value)

    for t, tree in enumerate(trees):
        for nid, node in enumerate(tree["nodes"]):
            if node[0] == "LEAF":
                put(modes="LEAF", featureids=0, values=0.0, truenodeids=0, falsenodeids=0)
                for k, w in sorted(node[1].items()):
                    put(w_tree=t, w_node=nid, w_id=k, w=w)
            else:
                mode, f, thr, yes, no = node
                put(modes=mode, featureids=f, values=thr, truenodeids=yes, falsenodeids=no)
            put(treeids=t, nodeids=nid)
    prefix = "class" if classifier else "target"
    attrs: dict[str, object] = {f"nodes_{k}": a[k] for k in ("treeids", "nodeids", "featureids", "values", "modes",
                                                             "truenodeids", "falsenodeids")}
    attrs.update({f"{prefix}_treeids": a["w_tree"], f"{prefix}_nodeids": a["w_node"], f"{prefix}_ids": a["w_id"],
                  f"{prefix}_weights": a["w"], "post_transform": post})
    if base:
        attrs["base_values"] = base
    if classifier:
        attrs["classlabels_int64s"] = list(range(targets))
    else:
        attrs.update({"n_targets": targets, "aggregate_function": aggregate})
    attrs.update(extra or {})
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, FEATURES])
    if classifier:
        node = helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain="ai.onnx.ml",
                                **attrs)
        outs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, targets])]
    else:
        node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml", **attrs)
        outs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, targets])]
    graph = helper.make_graph([node], "forest", [x], outs)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    proto.ir_version = 8
    return proto


@st.composite
def forests(draw: st.DrawFn) -> tuple[onnx.ModelProto, bool]:
    """(model, classifier) of the module docstring."""
    classifier = draw(st.booleans())
    if classifier:
        form = draw(st.sampled_from(["multi", "two-columns", "one-column"]))
        targets = 2 if form != "multi" else draw(st.integers(3, 4))
        post = draw(st.sampled_from(["NONE", "SOFTMAX", "LOGISTIC"] if form != "one-column" else ["NONE", "LOGISTIC"]))
        aggregate = "SUM"
    else:
        form, targets = "regressor", draw(st.integers(1, 3))
        post, aggregate = "NONE", draw(st.sampled_from(["SUM", "AVERAGE"]))
    weight = st.floats(-4.0, 4.0, allow_nan=False, width=32)
    positive = form == "one-column" and draw(st.booleans())
    # a regressor's base value counts only where a reached leaf writes its target (onnxruntime):
    # with a base, every leaf writes every target
    has_base = form != "two-columns" and draw(st.booleans())
    trees = []
    n_trees = draw(st.integers(1, 4))
    for _ in range(n_trees):
        nodes: list[tuple] = []
        one_class = draw(st.integers(0, targets - 1)) if (form == "multi" or form == "regressor" and not has_base) \
            and draw(st.booleans()) else None

        def grow(depth: int) -> int:
            nid = len(nodes)
            nodes.append(())
            if depth == 0 or draw(st.integers(0, 3)) == 0:
                if form == "one-column":
                    w = draw(weight)
                    leaf = {0: abs(w) if positive else w}
                elif form == "two-columns":     # probabilities, as scikit-learn's forests
                    p = draw(st.floats(0.0, 1.0, width=32))
                    leaf = {0: p / n_trees, 1: (1.0 - p) / n_trees}
                elif one_class is not None:
                    leaf = {one_class: draw(weight)}
                else:
                    leaf = {k: draw(weight) for k in range(targets)}
                nodes[nid] = ("LEAF", leaf)
                return nid
            mode = draw(st.sampled_from(MODES))
            f = draw(st.integers(0, FEATURES - 1))
            thr = draw(st.floats(-3.0, 3.0, allow_nan=False, width=32))
            yes = grow(depth - 1)
            no = grow(depth - 1)
            nodes[nid] = (mode, f, thr, yes, no)
            return nid

        grow(draw(st.integers(0, 4)))
        trees.append({"nodes": nodes})
    base = None
    if has_base:
        base = [draw(weight)] * (1 if form == "one-column" else targets)
    return forest_model(trees, targets, classifier, post, aggregate, base), classifier


def _compile(proto: onnx.ModelProto, x: np.ndarray) -> tuple[OnnxModel, Program]:
    ctx = PassContext(data=Dataset.from_arrays({"input": x}), command_line="pytest")
    normalized, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(command_line="pytest"),
                                 verify=False)
    program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower", ctx, verify=False)
    assert isinstance(normalized, OnnxModel) and isinstance(program, Program)
    return normalized, program


def _near_threshold(proto: onnx.ModelProto, x: np.ndarray, q: int) -> np.ndarray:
    """Rows with a feature within half an input LSB (2^-(q+1)) of some threshold, or saturated."""
    attrs = {a.name: helper.get_attribute_value(a) for a in proto.graph.node[0].attribute}
    near = np.zeros(len(x), dtype=bool)
    for f, thr, mode in zip(attrs["nodes_featureids"], attrs["nodes_values"], attrs["nodes_modes"]):
        if mode != b"LEAF":
            near |= np.abs(x[:, f].astype(np.float64) - float(np.float32(thr))) <= 2.0 ** -(q + 1)
    near |= np.any(np.abs(x) * 2.0 ** q >= 32767, axis=1)
    return near


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests(), st.integers(0, 2 ** 16))
def test_random_forests_keep_onnxruntime_scores(case: tuple[onnx.ModelProto, bool], seed: int) -> None:
    proto, classifier = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((32, FEATURES)) * 1.5).astype(np.float32)
    x[:8] = np.round(x[:8], 1)        # on and next to the rounded thresholds
    original = ort.session(proto)
    normalized, program = _compile(proto, x)
    scores_name = proto.graph.output[-1].name
    out = program.outputs[0].onnx_name
    # normalize keeps onnxruntime's scores (the final Softmax/Sigmoid included)
    after = ort.session(ort.with_outputs(normalized, sorted({scores_name, out})))
    want = original.run([scores_name], {"input": x})[0]
    got = np.concatenate([after.run([scores_name], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the interpreter: exact leaves away from the thresholds, scores within the leaves' rounding
    logits = np.concatenate([after.run([out], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    q_in = program.buffers[program.inputs[0].buffer].q
    assert isinstance(q_in, int)
    far = ~_near_threshold(proto, x, q_in)
    values = next(b for b in program.buffers.values() if b.name.endswith("_values"))
    walk = next(s for s in program.steps if s.op == "trees")
    trees = program.buffers[walk.outputs[0]].size
    q_out = program.buffers[program.outputs[0].buffer].q
    assert isinstance(values.q, int) and isinstance(q_out, int)
    tolerance = (trees + 1) * 2.0 ** -(values.q + 1) + 2.0 ** -(q_out + 1) + 1e-6
    for row in np.flatnonzero(far):
        feed = {"input": x[row:row + 1]}
        res = dequantize_outputs(program, run_program(program, quantize_inputs(program, feed)))[out].reshape(-1)
        if np.all(np.abs(logits[row]) * 2.0 ** q_out < 32767):    # nothing saturated
            assert np.max(np.abs(res - logits[row])) <= tolerance, (row, res, logits[row])
        best = int(np.argmax(logits[row]))   # the class the device returns (but for near ties)
        assert int(np.argmax(res)) == best or logits[row][best] - logits[row][int(np.argmax(res))] <= 2 * tolerance


def _leaf(w: float) -> tuple[str, dict[int, float]]:
    return ("LEAF", {0: w, 1: -w})


def _stump(mode: str = "BRANCH_LEQ") -> dict[str, list]:
    return {"nodes": [(mode, 1, 0.25, 1, 2), _leaf(0.5), _leaf(-0.5)]}


def test_unsupported_post_transform_is_one_clear_error() -> None:
    proto = forest_model([_stump()], 2, True, extra={"post_transform": "PROBIT"})
    with pytest.raises(UnsupportedError) as info:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(command_line="pytest"), verify=False)
    text = info.value.render()
    assert "post_transform=PROBIT" in text and "TreeEnsembleClassifier" in text and "BRANCH_LEQ" in text  # the hint


def _normalized_and_original(proto: onnx.ModelProto, x: np.ndarray) -> tuple[OnnxModel, np.ndarray, np.ndarray]:
    """(the normalized model, the original's and the normalized model's first float output on ``x``)."""
    model, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(command_line="pytest"),
                            verify=False)
    assert isinstance(model, OnnxModel)
    before, after = ort.session(proto), ort.session(model.to_proto())
    name = proto.graph.output[-1].name
    want = np.concatenate([before.run([name], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    got = np.concatenate([after.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    return model, want, got


def test_missing_value_tracking_is_dropped_for_finite_inputs() -> None:
    """LightGBM's and XGBoost's converters set nodes_missing_value_tracks_true; the device's inputs
    are never NaN, and on any other input the flag changes nothing: the forest normalizes with
    onnxruntime's scores and lowers."""
    trees = [{"nodes": [("BRANCH_LEQ", 1, 0.25, 1, 2), ("BRANCH_LT", 2, -0.5, 3, 4), ("LEAF", {0: 0.75}),
                        ("LEAF", {0: -1.5}), ("LEAF", {0: 0.5})]}]
    proto = forest_model(trees, 1, False, extra={"nodes_missing_value_tracks_true": [1, 1, 0, 0, 0]})
    x = np.random.default_rng(0).uniform(-2, 2, (64, FEATURES)).astype(np.float32)
    model, want, got = _normalized_and_original(proto, x)
    assert np.array_equal(got, want)
    assert len(np.unique(want)) == 3    # every leaf reached
    program, _ = run_pipeline(model, "quantize,lower", PassContext(data=Dataset.from_arrays({"input": x}),
                                                                   command_line="pytest"), verify=False)
    assert isinstance(program, Program) and [s.op for s in program.steps] == ["trees", "tree_sum"]


@pytest.mark.parametrize("mode", MODES)
def test_inputs_on_the_threshold_grid_are_judged(mode: str) -> None:
    """An input on the grid point ``T`` of a branch (or ``T + 1``) takes the float model's side, so
    boundary_samples leaves it judged (LightGBM's ``x <= 1e-35`` on zero pixels); off the grid
    between ``T`` and ``T + 3/2`` it is marked. The device's leaf is onnxruntime's on the judged
    inputs. A ``<`` threshold off the grid less than half a step above ``T + 1`` (``x < 1e-35``,
    ``x < 0.3``) is the exception: ``<`` thresholds are quantised as inputs are (the next test), so
    an input on the grid just below one takes the other side; XGBoost's are values of the data,
    which an input on the grid meets on the grid."""
    from transpiler.lir.trees import boundary_samples

    for threshold in (0.25, -0.5) if mode in ("BRANCH_LT", "BRANCH_GTE") else (1e-35, 0.25, 0.3):
        proto = forest_model([{"nodes": [(mode, 1, threshold, 1, 2), _leaf(0.5), _leaf(-0.5)]}],
                             2, True)
        x = np.random.default_rng(2).uniform(-1, 1, (32, FEATURES)).astype(np.float32)
        program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower",
                                  PassContext(data=Dataset.from_arrays({"input": x}), command_line="pytest"),
                                  verify=False)
        assert isinstance(program, Program)
        walk = next(s for s in program.steps if s.op == "trees")
        q = program.buffers[walk.inputs[2]].q
        t = int(np.asarray(program.buffers[walk.inputs[2]].data).reshape(-1)[0])
        assert isinstance(q, int)
        rows = np.repeat(x[:1], 5, axis=0)
        rows[:, 1] = [(t + d) / 2.0 ** q for d in (0.0, 1.0, 0.5, 0.9, 0.1)]
        marks = boundary_samples(program, {"input": rows})
        assert marks is not None and marks.tolist() == [False, False, True, True, True], (threshold, t, q)
        far = rows[:1].copy()
        far[0, 1] = (t + 1.5) / 2.0 ** q                             # a step and a half above T: judged
        assert boundary_samples(program, {"input": far}).tolist() == [False]
        session = ort.session(proto)
        for row in rows[:2]:
            want = session.run(None, {"input": row[None, :]})[0][0]
            got = int(np.asarray(run_program(program, quantize_inputs(program, {"input": row[None, :]}))["class"])
                      .reshape(-1)[0])
            assert got == want, (threshold, mode, row[1], got, want)


@pytest.mark.parametrize("mode", ["BRANCH_LT", "BRANCH_GTE"])
def test_an_input_equal_to_the_threshold_takes_the_float_side(mode: str) -> None:
    """``x = t`` with ``t`` off the input's grid (XGBoost's ``x < t``, ``t`` a value of the data)
    goes onnxruntime's way whichever half of its step ``t`` lies in (``ceil(t 2^q) - 1`` sent it the
    other way when ``t 2^q`` was in the lower half)."""
    x = np.random.default_rng(3).uniform(-1, 1, (32, FEATURES)).astype(np.float32)
    wrong = []
    for threshold in x[:12, 1]:
        proto = forest_model([{"nodes": [(mode, 1, float(threshold), 1, 2), _leaf(0.5), _leaf(-0.5)]}], 2, True)
        program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower",
                                  PassContext(data=Dataset.from_arrays({"input": x}), command_line="pytest"),
                                  verify=False)
        assert isinstance(program, Program)
        row = x[12:13].copy()
        row[0, 1] = threshold
        want = ort.session(proto).run(None, {"input": row})[0][0]
        got = int(np.asarray(run_program(program, quantize_inputs(program, {"input": row}))["class"]).reshape(-1)[0])
        if got != want:
            wrong.append(float(threshold))
    assert not wrong, wrong


def test_affine_before_trees_is_folded_into_thresholds() -> None:
    """``Mul(Add(x, a), s)`` per feature before a forest (a Scaler) goes into its thresholds: negative
    scales flip the comparison, a zero scale decides its branches; onnxruntime's scores are kept."""
    trees = [{"nodes": [(mode, f, thr, 1, 2), ("LEAF", {0: 2.0 ** t}), ("LEAF", {0: 0.0})]}
             for t, (mode, f, thr) in enumerate( (("BRANCH_LEQ", 0, 0.3), ("BRANCH_LT", 1, -0.2), ("BRANCH_GTE", 2, 0.1),
                                  ("BRANCH_GT", 3, 0.05), ("BRANCH_LEQ", 3, -0.4)))]
    proto = forest_model(trees, 1, False)
    shift = helper.make_tensor("shift", TensorProto.FLOAT, [1, FEATURES], [0.5, -1.0, 0.25, 3.0])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [1, FEATURES], [2.0, -0.5, -4.0, 0.0])
    proto.graph.initializer.extend([shift, scale])
    proto.graph.node[0].input[0] = "scaled"
    proto.graph.node.insert(0, helper.make_node("Add", ["input", "shift"], ["shifted"]))
    proto.graph.node.insert(1, helper.make_node("Mul", ["shifted", "scale"], ["scaled"]))
    x = np.random.default_rng(1).uniform(-2, 2, (200, FEATURES)).astype(np.float32)
    model, want, got = _normalized_and_original(proto, x)
    assert [n.op for n in model.graph.nodes] == ["TreeEnsembleRegressor"]
    assert model.graph.nodes[0].inputs[0].name == "input"
    assert len(np.unique(want)) == 8    # the three trees on scaled features take both sides
    assert np.allclose(got, want, atol=1e-5)


def test_max_aggregate_is_rejected() -> None:
    proto = forest_model([_stump("BRANCH_EQ")], 2, False, aggregate="MAX")
    with pytest.raises(UnsupportedError) as info:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(command_line="pytest"), verify=False)
    text = info.value.render()
    assert "aggregate_function=MAX" in text and "BRANCH_EQ" not in text.split("hint")[0]


def test_equality_branches_follow_onnxruntime() -> None:
    """BRANCH_EQ/NEQ (LightGBM's categorical splits: ``x == 2.0``) are two comparisons on the
    device; an integer category is on the input's grid, so every row is judged and takes
    onnxruntime's leaves; a threshold off the grid (2.5) is never equal."""
    from transpiler.lir.trees import boundary_samples

    trees = [{"nodes": [("BRANCH_EQ", 0, 2.0, 1, 2), ("LEAF", {0: 1.0}),
                        ("BRANCH_NEQ", 0, 4.0, 3, 4), ("LEAF", {0: -0.5}), ("LEAF", {0: 0.25})]},
             {"nodes": [("BRANCH_EQ", 0, 2.5, 1, 2), ("LEAF", {0: 8.0}), ("BRANCH_LEQ", 1, 0.1, 3, 4),
                        ("LEAF", {0: 2.0}), ("BRANCH_EQ", 0, 0.0, 5, 6), ("LEAF", {0: 4.0}), ("LEAF", {0: 0.0})]}]
    proto = forest_model(trees, 1, False)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (120, FEATURES)).astype(np.float32)
    x[:, 0] = rng.integers(0, 6, 120)
    program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower",
                              PassContext(data=Dataset.from_arrays({"input": x}), command_line="pytest"),
                              verify=False)
    assert isinstance(program, Program)
    near = boundary_samples(program, {"input": x})
    assert near is not None and not near[np.abs(x[:, 1] - 0.1) > 2 ** -10].any()
    want = ort.session(proto).run(None, {"input": x})[0].reshape(-1)
    assert len(np.unique(want)) == 7 and want.max() < 8.0    # every reachable sum; 2.5 is never equal
    got = np.array([dequantize_outputs(program, run_program(program, quantize_inputs(program, {"input": x[i:i + 1]})))
                    ["variable"].reshape(-1)[0] for i in range(len(x))])
    assert np.allclose(got[~near], want[~near], atol=2 ** -8), np.flatnonzero(np.abs(got - want) > 2 ** -8)


def test_opset5_tree_ensemble_has_a_hint() -> None:
    node = helper.make_node(
        "TreeEnsemble", ["input"], ["y"], domain="ai.onnx.ml", n_targets=1, tree_roots=[0],
        nodes_modes=helper.make_tensor("modes", TensorProto.UINT8, [1], [0]), nodes_featureids=[0],
        nodes_splits=helper.make_tensor("splits", TensorProto.FLOAT, [1], [0.5]), nodes_truenodeids=[0],
        nodes_trueleafs=[1], nodes_falsenodeids=[1], nodes_falseleafs=[1], leaf_targetids=[0, 0],
        leaf_weights=helper.make_tensor("weights", TensorProto.FLOAT, [2], [1.0, -1.0]))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    with pytest.raises(UnsupportedError) as info:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(command_line="pytest"), verify=False)
    assert "ai.onnx.ml opset 3" in info.value.render()


@pytest.mark.parametrize("pipeline,name", [("normalize,attach-gnet", "attach-gnet"),
                                           ("normalize,sparsify{budget=16}", "sparsify"),
                                           ("normalize,separate{budget=16}", "separate")])
def test_training_passes_say_a_forest_has_nothing_to_train(pipeline: str, name: str) -> None:
    proto = forest_model([_stump(), _stump("BRANCH_GT")], 2, True)
    x = np.random.default_rng(0).standard_normal((64, FEATURES)).astype(np.float32)
    ctx = PassContext(data=Dataset.from_arrays({"input": x}, labels=(x[:, 1] > 0.25).astype(np.int64)),
                      command_line="pytest")
    with pytest.raises(UnsupportedError) as info:
        run_pipeline(OnnxModel.from_proto(proto), pipeline, ctx, verify=False)
    text = info.value.render()
    assert f"{name} has nothing to train" in text and "fewer or shallower trees" in text


@pytest.mark.parametrize("post", ["NONE", "SOFTMAX", "LOGISTIC"])
def test_a_classifiers_base_values_count_for_classes_no_reached_leaf_writes(post: str) -> None:
    # onnxruntime adds a classifier's base_values to every class of every sample; the canonical
    # regressor adds base[k] only where a reached leaf writes k, so every leaf writes a 0 there
    trees = [{"nodes": [("BRANCH_LEQ", 0, 0.0, 1, 2), ("LEAF", {0: 0.7}), ("LEAF", {1: -0.3})]},
             {"nodes": [("BRANCH_GT", 1, 0.5, 1, 2), ("LEAF", {0: 0.2}), ("LEAF", {0: -0.4})]}]
    proto = forest_model(trees, 3, True, post=post, base=[0.5, -0.2, 1.0])
    x = (np.random.default_rng(0).standard_normal((32, FEATURES)) * 1.5).astype(np.float32)
    normalized, program = _compile(proto, x)
    want = ort.session(proto).run(["probabilities"], {"input": x})[0]
    after = ort.session(normalized)
    got = np.concatenate([after.run(["probabilities"], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    out = program.outputs[0].onnx_name
    logits = np.concatenate([ort.session(ort.with_outputs(normalized, [out])).run([out], {"input": x[i:i + 1]})[0]
                             for i in range(len(x))])
    for row in range(len(x)):
        res = dequantize_outputs(program, run_program(program, quantize_inputs(program, {"input": x[row:row + 1]})))
        assert int(np.argmax(res[out].reshape(-1))) == int(np.argmax(logits[row]))

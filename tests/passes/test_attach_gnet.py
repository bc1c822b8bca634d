"""attach-gnet: graph structure and annotations, zero-padding semantics in onnxruntime, training
determinism and quality, exit selection and errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

from train_helpers import sample_data, sample_model  # noqa: E402

from passes.attach_gnet import (AttachGnet, AttachGnetOptions, adaptive_window, default_exits,  # noqa: E402
                                exit_output, gnet_record, parse_pool, resolve_exit)
from transpiler import ort  # noqa: E402
from transpiler.data import Dataset  # noqa: E402
from transpiler.errors import DataError, PassError  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext  # noqa: E402


def small_data(name: str, model: OnnxModel, limit: int = 600) -> Dataset:
    """samples/<name>.npz, every n-th sample so that at most ``limit`` remain (fast tests)."""
    data = sample_data(name, model)
    step = -(-len(data) // limit)
    return data.subset(np.arange(0, len(data), step))


def attached(name: str, seed: int = 0, data: Dataset | None = None, **options: Any) -> tuple[OnnxModel, dict[str, Any]]:
    """samples/<name> normalized, with a gNet attached (few epochs: the tests check structure)."""
    model = sample_model(name)
    ctx = PassContext(data=data if data is not None else small_data(name, model), seed=seed)
    opts = AttachGnetOptions(**{"epochs": 8, **options})
    result = AttachGnet(opts, ctx).run(model)
    return result.model, result.stats


@pytest.fixture(scope="module")
def lenet() -> tuple[OnnxModel, dict[str, Any]]:
    return attached("lenet5_mnist")


@pytest.fixture(scope="module")
def digits() -> tuple[OnnxModel, dict[str, Any]]:
    return attached("cnn_digits", epochs=40)


def ort_all(model: OnnxModel, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """onnxruntime outputs ``names`` for each sample of ``x`` (stacked)."""
    proto = ort.with_outputs(model, names)
    sess = ort.session(proto)
    rows = [sess.run(names, {"input": x[i:i + 1]}) for i in range(len(x))]
    return {n: np.concatenate([r[j] for r in rows], axis=0) for j, n in enumerate(names)}


def test_default_exits_are_the_blocks_before_the_classifier() -> None:
    model = sample_model("lenet5_mnist")
    assert [t.name for t in default_exits(model.graph)] == [
        "/Relu_output_0", "/relu/Relu_output_0", "/Relu_1_output_0", "/relu_1/Relu_output_0"]
    digits = sample_model("cnn_digits")
    assert [t.name for t in default_exits(digits.graph)] == [
        "/act/Clip_output_0", "/act_1/Clip_output_0", "/act_2/Clip_output_0"]


def test_exit_names_resolve_to_block_outputs() -> None:
    model = sample_model("lenet5_mnist")
    assert resolve_exit(model, "conv1").name == "/Relu_output_0"          # a path component
    assert resolve_exit(model, "/fc1/Gemm").name == "/Relu_1_output_0"    # a node name
    assert resolve_exit(model, "/conv2/Conv_output_0").name == "/relu/Relu_output_0"  # Conv output -> block
    assert resolve_exit(model, "/pool/MaxPool_output_0").name == "/pool/MaxPool_output_0"  # any tensor
    with pytest.raises(PassError, match="no node or tensor named 'conv9'") as err:
        resolve_exit(model, "conv9")
    assert err.value.hint and "/conv1/Conv" in err.value.hint


def test_pool_sizes_and_adaptive_windows() -> None:
    assert parse_pool("2x2") == (2, 2) and parse_pool("3") == (3, 3) and parse_pool("none") is None
    assert parse_pool("1x4") == (1, 4)
    with pytest.raises(PassError, match="not HxW"):
        parse_pool("2y2")
    for size in range(1, 40):
        for out in range(1, 6):
            kernel, stride = adaptive_window(size, out)
            n = min(out, size)
            starts = [i * stride for i in range(n)]
            assert starts[-1] + kernel == size and kernel >= stride >= 1      # covers every position


def test_graph_annotations_and_outputs(lenet: tuple[OnnxModel, dict[str, Any]]) -> None:
    model, stats = lenet
    rec = gnet_record(model)
    assert rec is not None
    exits = rec["exits"]
    assert [e["index"] for e in exits] == [1, 2, 3, 4]
    assert [e["length"] for e in exits] == [6 * 4, 16 * 4, 120, 84] == stats["feature_lengths"]
    assert [e["offset"] for e in exits] == [0, 24, 88, 208]
    assert rec["features"] == 292 and rec["classes"] == 10
    assert rec["outputs"] == [exit_output(k) for k in (1, 2, 3, 4)]
    assert [t.name for t in model.graph.outputs] == ["logits", *rec["outputs"]]
    for e in exits:
        assert model.annotations.get(e["tensor"], "exit-point") == e["index"]
    tensors = model.graph.tensors()
    assert tensors[rec["head"]["weight"]].values.shape == (10, 292)
    for name in rec["head"]["zeros"]:
        assert not np.any(tensors[name].values)
    assert len(rec["head"]["zeros"]) == 3
    for name, e in zip(rec["head"]["zeros"], exits[1:]):
        assert tensors[name].values.shape == (1, e["length"])
    for gemm in rec["head"]["gemm"]:  # one shared weight and bias
        node = next(n for n in model.graph.nodes if n.name == gemm)
        assert [t.name for t in node.inputs[1:]] == [rec["head"]["weight"], rec["head"]["bias"]]
    # pooling nodes follow their exit's producer in the node order (lower keeps this order)
    names = [n.name for n in model.graph.nodes]
    assert names.index(exits[0]["nodes"][0]) == names.index("/Relu") + 1
    # the annotations survive a save/load
    again = OnnxModel.from_proto(onnx.load_from_string(model.to_proto().SerializeToString()))
    assert gnet_record(again) == rec


def test_exits_in_onnxruntime_are_the_head_over_zero_padded_features(lenet: tuple[OnnxModel, dict[str, Any]]) -> None:
    model, _ = lenet
    rec = gnet_record(model)
    assert rec is not None
    x = sample_data("lenet5_mnist", model).x[:8]
    feats = [e["feature"] for e in rec["exits"]]
    got = ort_all(model, x, [*rec["outputs"], *feats, "logits"])
    tensors = model.graph.tensors()
    w = tensors[rec["head"]["weight"]].values
    b = tensors[rec["head"]["bias"]].values
    for k in range(1, 5):
        parts = [got[f] if j < k else np.zeros_like(got[f]) for j, f in enumerate(feats)]
        expect = np.concatenate(parts, axis=1) @ w.T + b
        np.testing.assert_allclose(got[exit_output(k)], expect, rtol=1e-4, atol=1e-4)
    # the backbone is unchanged
    plain = sample_model("lenet5_mnist")
    np.testing.assert_allclose(got["logits"], ort_all(plain, x, ["logits"])["logits"], rtol=1e-5, atol=1e-5)


def test_exit_k_ignores_later_layers(lenet: tuple[OnnxModel, dict[str, Any]]) -> None:
    """Perturb the weights after exit 2: exits 1-2 keep their outputs, exits 3-4 change."""
    model, _ = lenet
    x = sample_data("lenet5_mnist", model).x[:4]
    outs = [exit_output(k) for k in (1, 2, 3, 4)]
    before = ort_all(model, x, outs)
    changed = model.copy()
    fc1 = next(n for n in changed.graph.nodes if n.name == "/fc1/Gemm")
    w = fc1.inputs[1]
    assert isinstance(w, gs.Constant)
    w.values = (w.values * 1.5 + 0.01).astype(np.float32)
    after = ort_all(changed, x, outs)
    for k in (1, 2):
        np.testing.assert_array_equal(before[exit_output(k)], after[exit_output(k)])
    for k in (3, 4):
        assert np.abs(before[exit_output(k)] - after[exit_output(k)]).max() > 1e-3


def test_accuracy_stats_match_onnxruntime(digits: tuple[OnnxModel, dict[str, Any]]) -> None:
    """The per-exit accuracy the pass reports is what onnxruntime measures on the val part."""
    model, stats = digits
    data = small_data("cnn_digits", model)
    val = data.split(0)["val"]
    outs = ort_all(model, val.x, [exit_output(k) for k in (1, 2, 3)])
    for k in (1, 2, 3):
        acc = float((outs[exit_output(k)].argmax(axis=1) == val.labels).mean())
        assert acc == pytest.approx(stats["accuracy"]["val"]["gnet"][k - 1], abs=1e-9)
    acc = stats["accuracy"]["val"]
    assert acc["gnet"][-1] >= 0.9 and acc["gnet"][0] >= 0.6     # it learned (72 val images)
    assert len(acc["baseline"]) == 3 and min(acc["baseline"]) > 0.6
    assert stats["baseline"]["params"] > 4 * stats["gnet"]["params"]   # full maps vs one shared head


def test_training_is_deterministic() -> None:
    a, sa = attached("cnn_digits", seed=3, epochs=3, baseline="none")
    b, sb = attached("cnn_digits", seed=3, epochs=3, baseline="none")
    c, _ = attached("cnn_digits", seed=4, epochs=3, baseline="none")
    wa, wb, wc = (m.graph.tensors()["gnet_W"].values for m in (a, b, c))
    assert wa.tobytes() == wb.tobytes()
    assert sa["accuracy"] == sb["accuracy"] and sa["loss_history"] == sb["loss_history"]
    assert wa.tobytes() != wc.tobytes()


def test_options_pool_per_exit_conv1x1_avg_and_fc_pooling() -> None:
    model, stats = attached("lenet5_mnist", exits=["conv2", "conv1", "fc1"], pool=["1x1", "3x3", "none"],
                            pool_op="avg", conv1x1=4, fc_max=50, epochs=2, baseline="same")
    rec = gnet_record(model)
    assert rec is not None
    assert [e["tensor"] for e in rec["exits"]] == ["/Relu_output_0", "/relu/Relu_output_0", "/Relu_1_output_0"]
    # exit 1 (conv1, 6 ch -> 4): 1x1 -> global average; exit 2 (16 ch -> 4) 3x3; fc1: 120 -> max 50 -> k=3 -> 40
    assert [e["length"] for e in rec["exits"]] == [4, 36, 40]
    ops = {e["index"]: [n.op for n in model.graph.nodes if n.name in e["nodes"]] for e in rec["exits"]}
    assert ops[1] == ["Conv", "GlobalAveragePool", "Flatten"]
    assert ops[2] == ["Conv", "AveragePool", "Flatten"]
    assert ops[3] == ["Reshape", "AveragePool", "Flatten"]
    assert stats["gnet"]["params"] == 80 * 10 + 10 + 4 * 6 + 4 * 16
    assert stats["baseline"]["features_per_exit"] == [4, 36, 40]
    x = sample_data("lenet5_mnist", model).x[:2]
    ort_all(model, x, rec["outputs"])   # runs


def test_distillation_without_labels() -> None:
    model = sample_model("cnn_digits")
    data = small_data("cnn_digits", model)
    unlabeled = Dataset(inputs=data.inputs, labels=None, source=data.source)
    _, stats = attached("cnn_digits", data=unlabeled, epochs=20, baseline="none")
    assert stats["loss"] == "distill"
    assert stats["accuracy"]["val"]["backbone"] == 1.0          # agreement with itself
    assert stats["accuracy"]["val"]["gnet"][-1] >= 0.85


def test_errors() -> None:
    model = sample_model("cnn_digits")
    with pytest.raises(DataError, match="none was given") as err:
        AttachGnet(AttachGnetOptions(), PassContext()).run(model)
    assert err.value.hint and "--data" in err.value.hint
    with pytest.raises(PassError, match="2 pool sizes for 3 exits"):
        attached("cnn_digits", pool=["2x2", "1x1"])
    with pytest.raises(PassError, match="matches 3 nodes"):
        resolve_exit(sample_model("cnn_digits"), "Clip")
    twice, _ = attached("cnn_digits", epochs=1, baseline="none")
    with pytest.raises(PassError, match="has a gNet already"):
        AttachGnet(AttachGnetOptions(epochs=1), PassContext(data=sample_data("cnn_digits", twice))).run(twice)

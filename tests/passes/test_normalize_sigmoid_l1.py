"""`sigmoid-l1`: one-vs-rest sigmoids divided by their (guarded) sum become a final Sigmoid."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import load, ops, rand, run_pass

from passes.sigmoid_l1 import SigmoidL1


def _sgd(loss: str) -> onnx.ModelProto:
    """skl2onnx's SGDClassifier with ``loss`` on 3 classes and 4 features, without ZipMap."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import SGDClassifier

    x = rand(90, 4, seed=1)
    model = SGDClassifier(loss=loss, random_state=0).fit(x, np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5]))
    return to_onnx(model, initial_types=[("input", FloatTensorType([None, 4]))],
                   target_opset={"": 13, "ai.onnx.ml": 1}, options={id(model): {"zipmap": False}})


def _run(proto: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input": x})))


def test_log_loss_probabilities_become_a_sigmoid_of_the_logits() -> None:
    proto = _sgd("log_loss")
    assert {"Reciprocal", "ReduceSum", "Not"} <= {n.op_type for n in proto.graph.node}
    result = run_pass(SigmoidL1, load(proto))
    assert result.changed and "Sigmoid" in ops(result.model)
    assert not {"Reciprocal", "ReduceSum", "Not", "Div"} & set(ops(result.model))
    x = rand(64, 4, seed=5) * 2
    before, after = _run(proto, x), _run(result.model.to_proto(), x)
    share = after["probabilities"] / after["probabilities"].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(share, before["probabilities"], rtol=1e-4, atol=1e-5)
    assert np.array_equal(after["label"], before["label"])


def test_modified_huber_probabilities_become_their_clip() -> None:
    # (clip(z, -1, 1) + 1) / 2 divided by its guarded sum: the unnormalized Clip(z / 2 + 1/2, 0, 1),
    # whose share of the row sum (uniform when all are 0) is onnxruntime's, and whose argmax its label
    proto = _sgd("modified_huber")
    result = run_pass(SigmoidL1, load(proto))
    assert result.changed and "Clip" in ops(result.model)
    assert not {"ReduceSum", "Not", "Div"} & set(ops(result.model))
    x = np.concatenate([rand(64, 4, seed=5) * 2, np.full((1, 4), -40.0, np.float32)])
    before, after = _run(proto, x), _run(result.model.to_proto(), x)
    total = after["probabilities"].sum(axis=1, keepdims=True)
    share = np.where(total > 0, after["probabilities"] / np.where(total > 0, total, 1), 1 / 3)
    np.testing.assert_allclose(share, before["probabilities"], rtol=1e-4, atol=1e-5)
    assert np.array_equal(after["label"], before["label"])


def test_other_normalized_scores_are_left() -> None:
    # (clip(z, -1/2, 1) + 1) / 2 divided by its sum: neither a sigmoid nor modified_huber's scores
    proto = _sgd("modified_huber")
    clip = next(n for n in proto.graph.node if n.op_type == "Clip")
    low = next(i for i in proto.graph.initializer if i.name == clip.input[1])
    low.CopyFrom(onnx.numpy_helper.from_array(np.array(-0.5, np.float32), low.name))
    assert not run_pass(SigmoidL1, load(proto)).changed

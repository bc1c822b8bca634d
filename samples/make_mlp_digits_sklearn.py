#!/usr/bin/env python3
"""Train a scikit-learn MLPClassifier on the 8x8 digits; export mlp_digits_sklearn.onnx with skl2onnx.

Data: sklearn.datasets.load_digits(), pixels /16 -> [0,1], flat [n,64] float32.
Split: sklearn train_test_split(test_size=360, random_state=0, stratify=y) -> 1437 train / 360 test
(the same split as make_cnn_digits.py).
Model: MLPClassifier(hidden_layer_sizes=(64,), activation='relu', random_state=0).
Export: skl2onnx with options {'zipmap': False}: input 'input' float [None,64]; outputs
'label' int64 [None] (ArgMax -> ArrayFeatureExtractor over the class labels -> Cast/Reshape) and
'probabilities' float [None,10] (Softmax); batch dim unnamed (None). target_opset is
{'': 17, 'ai.onnx.ml': 3}; skl2onnx stamps the lowest opsets the graph needs (ai.onnx 16, ai.onnx.ml 1).
Writes mlp_digits_sklearn.onnx and mlp_digits_sklearn.npz (x float32 [1797,64], y int64 [1797], split:
the 360 held-out images first (180 "val" / 180 "test"), then the 1437 training images ("train")).
"""
import sys
import warnings
from pathlib import Path

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "mlp_digits_sklearn"
OPSET = {"": 17, "ai.onnx.ml": 3}
GRAPH_NAME = "ae730cfea6cd4384b51c36b5c536106d"   # fixed, so that re-running gives the same bytes


def main():
    C.seed_everything(0)
    xtr, xte, ytr, yte = C.digits_split()
    clf = MLPClassifier(hidden_layer_sizes=(64,), activation="relu", max_iter=1000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(xtr, ytr)
    n_params = sum(w.size for w in clf.coefs_) + sum(b.size for b in clf.intercepts_)

    # skl2onnx names the graph with a fresh uuid4 unless told; GRAPH_NAME is the one the committed file got
    onx = convert_sklearn(clf, name=GRAPH_NAME, initial_types=[("input", FloatTensorType([None, 64]))],
                          options={id(clf): {"zipmap": False}}, target_opset=OPSET)
    path = C.HERE / f"{NAME}.onnx"
    path.write_bytes(onx.SerializeToString())
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)

    sess = C.ort_session(path)
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"], sess.get_outputs()
    label, probs = sess.run(None, {"input": xte})
    sk_label, sk_probs = clf.predict(xte), clf.predict_proba(xte)
    assert label.dtype == np.int64, label.dtype
    assert np.array_equal(label, sk_label), "ORT and sklearn labels disagree"
    assert np.array_equal(probs.argmax(1), sk_label)
    assert np.allclose(probs, sk_probs, atol=1e-5), np.abs(probs - sk_probs).max()
    acc_sk = (sk_label == yte).mean()
    acc = (label == yte).mean()
    C.save_and_report(NAME, (xtr, xte, ytr, yte),
                      f"{NAME}: {n_params} sklearn parameters, {clf.n_iter_} iterations; sklearn test accuracy "
                      f"{acc_sk:.4f}; onnxruntime test accuracy {acc:.4f} ({len(yte)} held-out images)", acc, 0.95)


if __name__ == "__main__":
    main()

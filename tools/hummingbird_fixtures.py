#!/usr/bin/env python3
"""Write tests/fixtures/hummingbird/: small scikit-learn models as hummingbird-ml's ONNX tensor graphs.

Needs hummingbird-ml (and its torch), which is NOT a project dependency (CI does not install it; the tests
only read the files written here). Its pins would change the environment's onnx, so use a venv that sees
the system packages, with hummingbird's onnx pin removed::

    python -m venv --system-site-packages /tmp/venv-hb && /tmp/venv-hb/bin/pip install hummingbird-ml
    /tmp/venv-hb/bin/pip uninstall -y onnx      # keep the system's onnx
    /tmp/venv-hb/bin/python tools/hummingbird_fixtures.py      # rewrites tests/fixtures/hummingbird/

The models (``bench/exporter_cases/hummingbird_cases.py``'s data, 10 features, 3 classes unless said)
are fitted and converted here, each written as ``<name>.onnx`` beside ``<name>.npz`` (``x``: ``ROWS``
held-out rows):

- ``dt_gemm``: DecisionTreeClassifier (depth 3) with labels 1, 3, 5 (the label is ``Gather(classes,
  ArgMax(scores))``), ``tree_implementation="gemm"``;
- ``rf_gemm``: RandomForestClassifier (3 trees of depth 3; the label is the ArgMax itself);
- ``rfr_gemm``: RandomForestRegressor (3 trees of depth 3);
- ``dt_tree_trav``: DecisionTreeClassifier (depth 4) as the tree_trav walk; ``rf_perf_tree_trav``:
  RandomForestClassifier (3 trees of depth 3) as the perf_tree_trav walk; ``gb_tree_trav``:
  GradientBoostingClassifier (3 rounds of depth 2, 3 classes: one tree per class and round, a base and a
  Softmax after the sum) as the tree_trav walk;
- ``logreg``: LogisticRegression with labels 2, 4, 6 (sigmoids divided by their sum, the label through
  Gather); ``logreg_bin``: binary (``Greater(z, 0)`` label, ``Concat(1 - s, s)`` probabilities);
- ``pipe_std_logreg``: StandardScaler + LogisticRegression; ``mlpc``: MLPClassifier (8 relu units).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exporter_cases.hummingbird_cases import legacy_torch_export  # noqa: E402
from bench.exporter_cases.sklearn_cases import _data  # noqa: E402

FIXTURE_DIR = ROOT / "tests" / "fixtures" / "hummingbird"
ROWS = 80
"""Held-out rows per fixture."""


def _models() -> dict[str, tuple[Any, int, dict[int, int] | None, str | None]]:
    """name -> (estimator, classes (0: a regressor), label map or None, tree implementation)."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return {
        "dt_gemm": (DecisionTreeClassifier(max_depth=3, random_state=0), 3, {0: 1, 1: 3, 2: 5}, "gemm"),
        "rf_gemm": (RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0), 3, None, "gemm"),
        "rfr_gemm": (RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0), 0, None, "gemm"),
        "dt_tree_trav": (DecisionTreeClassifier(max_depth=4, random_state=0), 3, None, "tree_trav"),
        "rf_perf_tree_trav": (RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0), 3, None,
                              "perf_tree_trav"),
        "gb_tree_trav": (GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0), 3, None, "tree_trav"),
        "logreg": (LogisticRegression(max_iter=500), 3, {0: 2, 1: 4, 2: 6}, None),
        "logreg_bin": (LogisticRegression(max_iter=500), 2, None, None),
        "pipe_std_logreg": (make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), 3, None, None),
        "mlpc": (MLPClassifier((8,), max_iter=400, random_state=0), 3, None, None),
    }


def build(model: Any, classes: int, labels: dict[int, int] | None, implementation: str | None) -> tuple[
        onnx.ModelProto, np.ndarray]:
    """(hummingbird's ONNX of ``model`` fitted on the sweep's data, its held-out rows)."""
    import hummingbird.ml

    x_train, y_train, x_test = _data(max(classes, 1), classes == 0)
    if labels is not None:
        y_train = np.vectorize(labels.get)(y_train)
    extra = {"tree_implementation": implementation} if implementation else {}
    with warnings.catch_warnings(), legacy_torch_export():
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
        proto = hummingbird.ml.convert(model, "onnx", x_train[:8], extra_config=extra).model
    return proto, x_test[:ROWS]


def main() -> int:
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    for name, spec in _models().items():
        proto, x = build(*spec)
        onnx.save(proto, str(FIXTURE_DIR / f"{name}.onnx"))
        np.savez_compressed(FIXTURE_DIR / f"{name}.npz", x=x.astype(np.float32))
        print(f"{name}: {(FIXTURE_DIR / f'{name}.onnx').stat().st_size} bytes, {len(x)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

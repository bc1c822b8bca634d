#!/usr/bin/env python3
"""Write tests/fixtures/gbm/: small LightGBM / XGBoost / CatBoost models as their exporters write them.

Needs lightgbm, xgboost, onnxmltools (and catboost for the ``cat_*`` models), which are NOT project
dependencies (CI does not install them; the tests only read the files written here)::

    pip install lightgbm xgboost onnxmltools catboost
    python tools/gbm_fixtures.py            # rewrites tests/fixtures/gbm/

Each model has ``TREES`` trees of depth ``DEPTH`` (a few KB), fitted on a scikit-learn dataset by
``bench/exporter_cases/gbm_cases.py``'s helpers (the exporter sweep's data and converters), and is
written as ``<name>.onnx`` beside ``<name>.npz`` (``x``: held-out rows in the graph input's layout).
What each one holds of its exporter's forms:

- ``lgbm_bin_op12``: onnxmltools' LGBMClassifier on breast_cancer: opset 9 in the default domain,
  one score column with post_transform LOGISTIC, missing-value tracking on every branch, the label
  through Identity and Cast, ZipMap after an Identity;
- ``lgbm_iris_nozipmap_op15``: 3 classes, SOFTMAX, ``zipmap=False`` (``probabilities = Mul(Identity(p), 1)``);
- ``lgbm_reg_op15``: LGBMRegressor on diabetes;
- ``lgbm_categorical_op15``: a categorical feature (BRANCH_EQ splits), the sweep's synthetic data;
- ``xgb_bin_op12`` / ``xgb_iris_op15`` / ``xgb_reg_op15``: onnxmltools' XGBoost models: BRANCH_LT
  splits, ``base_values`` (the logit of base_score for the binary one), no ZipMap option;
- ``pipe_lgbm_bin_op17``: StandardScaler + LGBMClassifier through skl2onnx with the onnxmltools
  converter registered (ai.onnx.ml Scaler before the trees);
- ``cat_bin`` / ``cat_reg``: CatBoost's own export (``save_model(format="onnx")``).
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

from bench.exporter_cases.gbm_cases import (convert_gbm, convert_gbm_pipeline, fit_options, gbm_data,  # noqa: E402
                                            gbm_estimator)

FIXTURE_DIR = ROOT / "tests" / "fixtures" / "gbm"
TREES = 4
DEPTH = 3
ROWS = 60
"""Held-out rows per fixture."""
#: name -> (library, task, dataset, opset, zipmap, pipeline)
FIXTURES: dict[str, tuple[str, str, str, int, bool, bool]] = {
    "lgbm_bin_op12": ("lgbm", "clf", "breast_cancer", 12, True, False),
    "lgbm_iris_nozipmap_op15": ("lgbm", "clf", "iris", 15, False, False),
    "lgbm_reg_op15": ("lgbm", "reg", "diabetes", 15, True, False),
    "lgbm_categorical_op15": ("lgbm", "clf", "categorical", 15, True, False),
    "xgb_bin_op12": ("xgb", "clf", "breast_cancer", 12, True, False),
    "xgb_iris_op15": ("xgb", "clf", "iris", 15, True, False),
    "xgb_reg_op15": ("xgb", "reg", "diabetes", 15, True, False),
    "pipe_lgbm_bin_op17": ("lgbm", "clf", "breast_cancer", 17, True, True),
    "cat_bin": ("cat", "clf", "breast_cancer", 0, True, False),
    "cat_reg": ("cat", "reg", "diabetes", 0, True, False),
}


def build(library: str, task: str, dataset: str, opset: int, zipmap: bool, pipeline: bool) -> tuple[onnx.ModelProto,
                                                                                                      np.ndarray]:
    """(the exported model, its held-out rows)."""
    x_train, y_train, x_test = gbm_data(dataset)
    model: Any = gbm_estimator(library, task, TREES, DEPTH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pipeline:
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            model = make_pipeline(StandardScaler(), model)
            model.fit(x_train, y_train)
            return convert_gbm_pipeline(model, library, x_train.shape[1], opset), x_test[:ROWS]
        model.fit(x_train, y_train, **fit_options(library, dataset))
        return convert_gbm(model, library, x_train.shape[1], opset, zipmap), x_test[:ROWS]


def main() -> int:
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    for name, spec in FIXTURES.items():
        proto, x = build(*spec)
        onnx.save(proto, str(FIXTURE_DIR / f"{name}.onnx"))
        np.savez_compressed(FIXTURE_DIR / f"{name}.npz", x=x.astype(np.float32))
        print(f"{name}: {(FIXTURE_DIR / f'{name}.onnx').stat().st_size} bytes, {len(x)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

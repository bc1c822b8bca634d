"""Gradient-boosting libraries' exporters: LightGBM and XGBoost through onnxmltools, CatBoost's own.

- ``gbm_lgbm_*`` / ``gbm_xgb_*``: ``onnxmltools.convert_lightgbm`` / ``convert_xgboost`` of an
  LGBMClassifier / XGBClassifier (binary: one score column; multi-class: one per class) or an
  LGBMRegressor / XGBRegressor, at opsets 12, 13 and 15 (onnxmltools' highest; the ``ai.onnx.ml`` opset is the
  converter's: 1 or 3); ZipMap on (the default) and, for LightGBM (convert_xgboost has no such
  option), off (``zipmap=False``).
- ``gbm_pipe_*``: a StandardScaler + LightGBM / XGBoost Pipeline through skl2onnx with the
  onnxmltools converters registered (``update_registered_converter``), opset 17.
- ``gbm_lgbm_categorical-*``: an LGBMClassifier with a categorical feature (BRANCH_EQ splits) on
  synthetic data (a category 0..5 and three normal numbers), opsets 12 and 15;
- ``gbm_lgbm_poisson-op15`` / ``gbm_xgb_poisson-op15``: Poisson regressors on diabetes (``Exp``,
  and XGBoost's ``Mul``, after the trees);
- ``gbm_cat_*``: ``CatBoostClassifier.save_model(format="onnx")`` (binary, multi-class) and
  CatBoostRegressor, at the opset CatBoost writes.

The data are scikit-learn's: breast_cancer (binary, 30 features), iris (multi-class, 4), digits
(10 classes, 64 features; the multi-class LightGBM/XGBoost models) and diabetes (regression, 10):
shuffled once (seed 0), the first rows fit the model (few, shallow trees: 10-20 of depth 3-4) and
the next ``SAMPLES`` (or what is left) are the compared samples. The graph input is ``input``
``[None, F]`` float32 (CatBoost's: ``features``). A case whose package is missing is skipped by the bench.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from typing import Any

import numpy as np
import onnx

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel

OPSETS = (12, 13, 15)
"""onnxmltools 1.16 converts LightGBM / XGBoost models up to opset 15."""
TREES = 12
DEPTH = 3


def gbm_data(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training inputs, training targets, held-out inputs) of a scikit-learn dataset, float32."""
    from sklearn import datasets

    if dataset == "categorical":
        return _categorical_data()
    x, y = {"breast_cancer": datasets.load_breast_cancer, "iris": datasets.load_iris,
            "digits": datasets.load_digits, "diabetes": datasets.load_diabetes}[dataset](return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order]
    held = min(SAMPLES, len(x) // 3)
    return x[:-held], y[:-held], x[-held:]


def _categorical_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A category (0..5, feature 0) and three numbers; the class is the category being 2 or 4, or
    the first number above 0.5 (what LightGBM's categorical splits, BRANCH_EQ, learn)."""
    rng = np.random.default_rng(0)
    rows = 400 + SAMPLES
    x = np.column_stack([rng.integers(0, 6, rows), rng.normal(size=(rows, 3))]).astype(np.float32)
    y = (np.isin(x[:, 0], (2, 4)) | (x[:, 1] > 0.5)).astype(np.int64)
    return x[:400], y[:400], x[400:]


def gbm_estimator(library: str, task: str, trees: int = TREES, depth: int = DEPTH) -> Any:
    """A fresh ``library`` (lgbm, xgb, cat) classifier (``task`` "clf"), regressor ("reg") or
    Poisson regressor ("poisson": the converters write ``Exp`` after the trees)."""
    if library == "lgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if task == "clf" else lightgbm.LGBMRegressor
        extra: dict[str, Any] = {"objective": "poisson"} if task == "poisson" else {}
        return cls(n_estimators=trees, max_depth=depth, num_leaves=2 ** depth, min_child_samples=5,
                   random_state=0, verbose=-1, **extra)
    if library == "xgb":
        import xgboost

        cls = xgboost.XGBClassifier if task == "clf" else xgboost.XGBRegressor
        extra = {"objective": "count:poisson"} if task == "poisson" else {}
        return cls(n_estimators=trees, max_depth=depth, random_state=0, n_jobs=1, **extra)
    import catboost

    cls = catboost.CatBoostClassifier if task == "clf" else catboost.CatBoostRegressor
    return cls(iterations=trees, depth=depth, random_seed=0, verbose=False, thread_count=1,
               allow_writing_files=False)


def convert_gbm(model: Any, library: str, features: int, opset: int, zipmap: bool = True) -> onnx.ModelProto:
    """``model`` (fitted) as ONNX through its library's exporter (onnxmltools, CatBoost's own)."""
    if library == "cat":
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            model.save_model(path, format="onnx")
            return onnx.load(path)
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    convert = onnxmltools.convert_lightgbm if library == "lgbm" else onnxmltools.convert_xgboost
    kwargs: dict[str, Any] = {} if zipmap else {"zipmap": False}
    return convert(model, initial_types=[("input", FloatTensorType([None, features]))], target_opset=opset,
                   **kwargs)


def convert_gbm_pipeline(pipe: Any, library: str, features: int, opset: int) -> onnx.ModelProto:
    """A scikit-learn Pipeline ending in a LightGBM / XGBoost model through skl2onnx, the
    onnxmltools converters registered for the final estimator's class."""
    from skl2onnx import to_onnx, update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)

    final = pipe.steps[-1][1]
    classifier = hasattr(final, "predict_proba")
    shapes = calculate_linear_classifier_output_shapes if classifier else calculate_linear_regressor_output_shapes
    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]} if classifier else None
    if library == "lgbm":
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        alias, converter = ("LgbmClassifier" if classifier else "LgbmRegressor"), convert_lightgbm
    else:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        alias, converter = ("XGBClassifier" if classifier else "XGBRegressor"), convert_xgboost
    update_registered_converter(type(final), alias, shapes, converter, options=options)
    return to_onnx(pipe, initial_types=[("input", FloatTensorType([None, features]))],
                   target_opset={"": opset, "ai.onnx.ml": 3 if opset >= 17 else 1})


def fit_options(library: str, dataset: str) -> dict[str, Any]:
    """``fit`` keywords: LightGBM takes feature 0 of the categorical data as a category."""
    return {"categorical_feature": [0]} if library == "lgbm" and dataset == "categorical" else {}


def export_gbm(library: str, task: str, dataset: str, opset: int, zipmap: bool, pipeline: bool) -> ExportedModel:
    """Fit and convert one case's model (see the module docstring)."""
    x_train, y_train, x_test = gbm_data(dataset)
    model = gbm_estimator(library, task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pipeline:
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            model = make_pipeline(StandardScaler(), model)
            model.fit(x_train, y_train)
            proto = convert_gbm_pipeline(model, library, x_train.shape[1], opset)
        else:
            model.fit(x_train, y_train, **fit_options(library, dataset))
            proto = convert_gbm(model, library, x_train.shape[1], opset, zipmap)
    return ExportedModel(proto, {proto.graph.input[0].name: x_test}, regressor=task != "clf")


REQUIRES = {"lgbm": ("sklearn", "lightgbm", "onnxmltools"), "xgb": ("sklearn", "xgboost", "onnxmltools"),
            "cat": ("sklearn", "catboost")}
#: (name, task, dataset): binary, multi-class (two datasets), regression.
MODELS = (("bin", "clf", "breast_cancer"), ("iris", "clf", "iris"), ("digits", "clf", "digits"),
          ("reg", "reg", "diabetes"))


def _case(name: str, library: str, task: str, dataset: str, opset: int, zipmap: bool = True,
          pipeline: bool = False) -> Case:
    exporter = "skl2onnx+onnxmltools" if pipeline else ("catboost" if library == "cat" else "onnxmltools")
    requires = REQUIRES[library] + (("skl2onnx",) if pipeline else ())
    build = functools.partial(export_gbm, library, task, dataset, opset, zipmap, pipeline)
    return Case(f"{name}-op{opset}" if opset else name, exporter, opset, "dynamic", requires, build)


def gbm_cases() -> list[Case]:
    """The matrix of the module docstring."""
    cases = []
    for library in ("lgbm", "xgb"):
        for opset in OPSETS:
            for model, task, dataset in MODELS:
                cases.append(_case(f"gbm_{library}_{model}", library, task, dataset, opset))
                if library == "lgbm" and task == "clf" and opset == 15:
                    cases.append(_case(f"gbm_{library}_{model}-nozipmap", library, task, dataset, opset, zipmap=False))
        for model, task, dataset in (("bin", "clf", "breast_cancer"), ("iris", "clf", "iris"),
                                     ("reg", "reg", "diabetes")):
            cases.append(_case(f"gbm_pipe_{library}_{model}", library, task, dataset, 17, pipeline=True))
    cases += [_case("gbm_lgbm_categorical", "lgbm", "clf", "categorical", opset) for opset in (12, 15)]
    cases += [_case(f"gbm_{library}_poisson", library, "poisson", "diabetes", 15) for library in ("lgbm", "xgb")]
    for model, task, dataset in (("bin", "clf", "breast_cancer"), ("iris", "clf", "iris"), ("reg", "reg", "diabetes")):
        cases.append(_case(f"gbm_cat_{model}", "cat", task, dataset, 0))
    return cases

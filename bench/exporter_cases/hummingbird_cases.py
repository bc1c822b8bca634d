"""hummingbird-ml cases: scikit-learn models compiled to tensor graphs by ``hummingbird.ml.convert(model, "onnx", X)``.

hummingbird writes no ``ai.onnx.ml`` op: a tree ensemble becomes matrix products and comparisons
(``tree_implementation`` ``gemm``: the ``-gemm`` cases), or Gather/Where walks over node tables
(``tree_trav``, ``perf_tree_trav``); a linear model a Gemm then Sigmoid/Softmax, the class an
ArgMax then a Gather of the class labels. The models: DecisionTreeClassifier, RandomForestClassifier,
GradientBoostingClassifier (3 classes and binary), RandomForestRegressor, LogisticRegression (binary
and 3 classes), LinearSVC, MLPClassifier, a StandardScaler + LogisticRegression pipeline.

The data are ``sklearn_cases``' (``make_classification``/``make_regression``, 10 features, 400
training rows, ``SAMPLES`` compared rows). hummingbird exports through ``torch.onnx.export`` without
choosing the exporter; torch 2.9+ defaults to dynamo, which cannot trace hummingbird's modules, so
the legacy (TorchScript) exporter is chosen here, as a user of a recent torch must. The graph input is
``input_0`` ``[batch, 10]`` float32 (batch dynamic), the opset hummingbird's (13).
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from bench.exporter_cases.common import Case, ExportedModel
from bench.exporter_cases.sklearn_cases import _data

REQUIRES = ("sklearn", "torch", "hummingbird")
TREE_IMPLEMENTATIONS = ("gemm", "tree_trav", "perf_tree_trav")
OPSET = 13


def _estimator(kind: str) -> Any:
    """A fresh scikit-learn estimator by the short name the case names use."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    makers: dict[str, Callable[[], Any]] = {
        "dt": lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
        "rf": lambda: RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0),
        "gb": lambda: GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0),
        "rfr": lambda: RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0),
        "logreg": lambda: LogisticRegression(max_iter=500),
        "linearsvc": lambda: LinearSVC(),
        "mlpc": lambda: MLPClassifier((16,), max_iter=300, random_state=0),
        "pipe_std_logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    }
    return makers[kind]()


@contextlib.contextmanager
def legacy_torch_export() -> Iterator[None]:
    """``torch.onnx.export`` with ``dynamo=False`` while hummingbird converts (see the module docstring)."""
    import torch

    export = torch.onnx.export
    torch.onnx.export = functools.partial(export, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = export


def export_hummingbird(kind: str, classes: int, regressor: bool, tree_implementation: str | None) -> ExportedModel:
    """Fit ``kind`` on the sklearn cases' data and convert it with hummingbird to ONNX."""
    import hummingbird.ml

    x_train, y_train, x = _data(classes, regressor)
    model = _estimator(kind)
    extra = {"tree_implementation": tree_implementation} if tree_implementation else {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), legacy_torch_export():
        warnings.simplefilter("ignore")
        model.fit(x_train, y_train)
        proto = hummingbird.ml.convert(model, "onnx", x_train[:8], extra_config=extra).model
    return ExportedModel(proto, {proto.graph.input[0].name: x.astype(np.float32)}, regressor=regressor)


def _case(name: str, kind: str, classes: int, regressor: bool = False, tree_implementation: str | None = None) -> Case:
    """The case ``hb-NAME[-IMPLEMENTATION]``."""
    suffix = f"-{tree_implementation}" if tree_implementation else ""
    build = functools.partial(export_hummingbird, kind, classes, regressor, tree_implementation)
    return Case(f"hb-{name}{suffix}", "hummingbird", OPSET, "dynamic", REQUIRES, build)


def hummingbird_cases() -> list[Case]:
    """The matrix of the module docstring."""
    cases = []
    for implementation in TREE_IMPLEMENTATIONS:
        cases += [_case("dt", "dt", 3, tree_implementation=implementation),
                  _case("rf", "rf", 3, tree_implementation=implementation),
                  _case("gb", "gb", 3, tree_implementation=implementation),
                  _case("gb_bin", "gb", 2, tree_implementation=implementation),
                  _case("rfr", "rfr", 1, regressor=True, tree_implementation=implementation)]
    cases += [_case("logreg", "logreg", 3), _case("logreg_bin", "logreg", 2), _case("linearsvc", "linearsvc", 3),
              _case("mlpc", "mlpc", 3), _case("pipe_std_logreg", "pipe_std_logreg", 3)]
    return cases

"""skl2onnx cases: classifiers, regressors and pipelines at opsets 12 and 17 (``ai.onnx.ml`` 1 and 3).

Classifiers come with their ZipMap output (the default) and without (``-nozipmap``), except the
ones whose converter has no ZipMap (RidgeClassifier) or no such option (LinearSVC: its default and
``raw_scores``). Kernel SVMs (SVC with linear, rbf, poly and sigmoid kernels, binary and
multi-class, with ``probability=True`` too; SVR with linear and rbf kernels), MLPs with tanh, logistic and identity activations,
LinearDiscriminantAnalysis and GaussianNB are the models a microcontroller is likely to get.
Further estimators with their default export only: other linear models (RidgeClassifierCV, SGD with
log, modified_huber and squared_hinge losses), naive Bayes variants, CalibratedClassifierCV,
OneVsRest / OneVsOne wrappers, TruncatedSVD and other transforms in pipelines, k-nearest neighbours
(classifier, distance-weighted, regressor: rejected, the LIR has no top-k selection).

Each model is fitted on 400 rows of ``make_classification`` / ``make_regression`` (10 features,
seed 0, scaled by 1.5 and shifted by 0.7 so that the scalers have work) and compared on the next
``SAMPLES`` rows. The graph input is ``input`` ``[None, 10]`` float32: a dynamic batch.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel

FEATURES = 10
TRAINING_ROWS = 400
OPSETS = (12, 17)
REQUIRES = ("sklearn", "skl2onnx")


def _data(targets: int, regressor: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training inputs, training targets, the SAMPLES held-out inputs); ``targets``: classes or
    regression outputs."""
    from sklearn.datasets import make_classification, make_regression

    rows = TRAINING_ROWS + SAMPLES
    if regressor:
        x, y = make_regression(n_samples=rows, n_features=FEATURES, n_targets=targets, noise=0.5, random_state=0)
    else:
        x, y = make_classification(n_samples=rows, n_features=FEATURES, n_informative=6, n_classes=targets,
                                   n_clusters_per_class=1, random_state=0)
    x = (x * 1.5 + 0.7).astype(np.float32)
    return x[:TRAINING_ROWS], y[:TRAINING_ROWS], x[TRAINING_ROWS:]


def _estimator(kind: str) -> Any:
    """A fresh scikit-learn estimator or pipeline by the short name the case names use."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier, SGDClassifier
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler
    from sklearn.svm import SVC, SVR, LinearSVC

    makers: dict[str, Callable[[], Any]] = {
        "logreg": lambda: LogisticRegression(max_iter=500),
        "logreg_ovr": lambda: OneVsRestClassifier(LogisticRegression(max_iter=500)),
        "mlpc_relu": lambda: MLPClassifier((16,), max_iter=300, random_state=0),
        "mlpc_relu_2layer": lambda: MLPClassifier((12, 8), max_iter=300, random_state=0),
        **{f"mlpc_{act}": functools.partial(MLPClassifier, (16,), activation=act, max_iter=300, random_state=0)
           for act in ("tanh", "logistic", "identity")},
        **{f"mlpr_{act}": functools.partial(MLPRegressor, hidden_layer_sizes=(16,), activation=act, max_iter=500,
                                            random_state=0)
           for act in ("tanh", "logistic", "identity")},
        "lda": LinearDiscriminantAnalysis,
        "gnb": GaussianNB,
        "pipe_std_pca_logreg": lambda: make_pipeline(StandardScaler(), PCA(5), LogisticRegression(max_iter=500)),
        "pipe_minmax_logreg": lambda: make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=500)),
        "pipe_normalizer_logreg": lambda: make_pipeline(Normalizer(), LogisticRegression(max_iter=500)),
        "ridgeclf": RidgeClassifier,
        "sgd_hinge": lambda: SGDClassifier(random_state=0),
        **{f"svc_{kernel}": functools.partial(SVC, kernel=kernel) for kernel in ("linear", "rbf", "poly", "sigmoid")},
        **{f"svr_{kernel}": functools.partial(SVR, kernel=kernel) for kernel in ("linear", "rbf")},
        **{f"svc_{kernel}_proba": functools.partial(SVC, kernel=kernel, probability=True, random_state=0)
           for kernel in ("linear", "rbf")},
        "linearsvc": LinearSVC,
        "linreg": LinearRegression,
        "ridge": Ridge,
        "mlpr_relu": lambda: MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0),
        "pipe_std_linreg": lambda: make_pipeline(StandardScaler(), LinearRegression()),
        "pipe_std_pca_mlpr": lambda: make_pipeline(StandardScaler(), PCA(4), MLPRegressor(
            hidden_layer_sizes=(8,), max_iter=500, random_state=0)),
        **_tree_makers(),
        **_more_makers(),
    }
    return makers[kind]()


def _more_makers() -> dict[str, Callable[[], Any]]:
    """Further estimators a user may hand over: other linear models, naive Bayes variants, scalers
    and feature maps in pipelines, ensembles of linear models, neighbours."""
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier, VotingClassifier
    from sklearn.linear_model import (BayesianRidge, ElasticNet, HuberRegressor, Lasso, PassiveAggressiveClassifier,
                                      Perceptron, LogisticRegression, SGDClassifier)
    from sklearn.naive_bayes import BernoulliNB, GaussianNB, MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, MaxAbsScaler, MinMaxScaler, PolynomialFeatures, RobustScaler
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import TruncatedSVD
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier
    from sklearn.svm import SVC, LinearSVC, NuSVC
    from sklearn.tree import DecisionTreeClassifier

    return {"perceptron": lambda: Perceptron(random_state=0),
            "sgd_log": lambda: SGDClassifier(loss="log_loss", random_state=0),
            "passive_aggressive": lambda: PassiveAggressiveClassifier(random_state=0),
            "bnb": BernoulliNB,
            "pipe_minmax_mnb": lambda: make_pipeline(MinMaxScaler(), MultinomialNB()),
            "bnb_threshold": lambda: BernoulliNB(binarize=1.0),
            "pipe_binarizer_logreg": lambda: make_pipeline(Binarizer(threshold=0.5), LogisticRegression(max_iter=500)),
            "qda": lambda: QuadraticDiscriminantAnalysis(reg_param=0.1),
            "nusvc_rbf": NuSVC,
            "pipe_poly_logreg": lambda: make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=1000)),
            "pipe_robust_logreg": lambda: make_pipeline(RobustScaler(), LogisticRegression(max_iter=500)),
            "pipe_maxabs_logreg": lambda: make_pipeline(MaxAbsScaler(), LogisticRegression(max_iter=500)),
            "adaboost": lambda: AdaBoostClassifier(n_estimators=10, random_state=0),
            "adaboost_depth3": lambda: AdaBoostClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=10,
                                                          random_state=0),
            "bagging_logreg": lambda: BaggingClassifier(LogisticRegression(max_iter=500), n_estimators=4,
                                                        random_state=0),
            "voting_soft": lambda: VotingClassifier([("lr", LogisticRegression(max_iter=500)),
                                                     ("nb", GaussianNB())],
                                                    voting="soft", flatten_transform=False),
            "knn": lambda: KNeighborsClassifier(3),
            "knn_distance": lambda: KNeighborsClassifier(5, weights="distance"),
            "knnr": lambda: KNeighborsRegressor(3),
            "ridgeclf_cv": lambda: RidgeClassifierCV(),
            "calibrated_svc": lambda: CalibratedClassifierCV(LinearSVC(), cv=3),
            "pipe_svd_logreg": lambda: make_pipeline(TruncatedSVD(5, random_state=0), LogisticRegression(max_iter=500)),
            "sgd_modified_huber": lambda: SGDClassifier(loss="modified_huber", random_state=0),
            "sgd_squared_hinge": lambda: SGDClassifier(loss="squared_hinge", random_state=0),
            "ovr_svc": lambda: OneVsRestClassifier(SVC(kernel="rbf")),
            "ovo_logreg": lambda: OneVsOneClassifier(LogisticRegression(max_iter=500)),
            "lasso": lambda: Lasso(alpha=0.1),
            "elasticnet": lambda: ElasticNet(alpha=0.1),
            "bayesian_ridge": BayesianRidge,
            "huber": HuberRegressor}


def _tree_makers() -> dict[str, Callable[[], Any]]:
    """Tree ensembles (TreeEnsembleClassifier/Regressor): scikit-learn's defaults but the forests' size."""
    from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier, GradientBoostingRegressor,
                                  HistGradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    return {"dtc": lambda: DecisionTreeClassifier(random_state=0),
            "rfc": lambda: RandomForestClassifier(20, max_depth=8, random_state=0),
            "etc": lambda: ExtraTreesClassifier(20, max_depth=8, random_state=0),
            "gbc": lambda: GradientBoostingClassifier(random_state=0),
            "hgbc": lambda: HistGradientBoostingClassifier(max_iter=20),
            "pipe_std_rfc": lambda: make_pipeline(StandardScaler(), RandomForestClassifier(10, max_depth=6, random_state=0)),
            "dtr": lambda: DecisionTreeRegressor(max_depth=10, random_state=0),
            "rfr": lambda: RandomForestRegressor(20, max_depth=8, random_state=0),
            "gbr": lambda: GradientBoostingRegressor(random_state=0)}


def _tree_cases(opset: int) -> list[Case]:
    """Decision trees, forests and boosting (binary, multiclass, ZipMap on and off, regressors)."""
    classifiers = (("dtc", 3), ("dtc_bin", 2), ("rfc", 3), ("rfc_bin", 2), ("etc", 4), ("gbc", 3), ("gbc_bin", 2),
                   ("hgbc", 3), ("pipe_std_rfc", 3))
    cases = []
    for name, classes in classifiers:
        kind = name.removesuffix("_bin")
        cases += [_case(f"tree_{name}", kind, classes, opset)]
        if name in ("dtc", "rfc_bin", "gbc_bin"):
            cases += [_case(f"tree_{name}-nozipmap", kind, classes, opset, {"zipmap": False})]
    for name, targets in (("dtr", 1), ("rfr", 1), ("rfr_multi", 2), ("gbr", 1)):
        cases += [_case(f"tree_{name}", name.removesuffix("_multi"), targets, opset, regressor=True)]
    return cases


def export_sklearn(kind: str, targets: int, regressor: bool, opset: int, options: dict[str, Any]) -> ExportedModel:
    """Fit ``kind`` on ``targets`` classes (or regression targets) and convert it at ``opset`` with the
    converter ``options`` of its final estimator."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    x_train, y_train, x_test = _data(targets, regressor)
    model = _estimator(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning of the small MLPs, skl2onnx's deprecations
        model.fit(x_train, y_train)
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        proto = to_onnx(model, initial_types=[("input", FloatTensorType([None, FEATURES]))],
                        target_opset={"": opset, "ai.onnx.ml": 3 if opset >= 18 else 1},
                        options={id(final): options} if options else None)
    return ExportedModel(proto, {"input": x_test}, regressor=regressor)


def _case(name: str, kind: str, targets: int, opset: int, options: dict[str, Any] | None = None,
          regressor: bool = False) -> Case:
    """The case ``NAME-sklOPSET``."""
    build = functools.partial(export_sklearn, kind, targets, regressor, opset, options or {})
    return Case(f"{name}-skl{opset}", "skl2onnx", opset, "dynamic", REQUIRES, build)


def sklearn_cases() -> list[Case]:
    """The skl2onnx matrix of the module docstring."""
    classifiers = (("logreg_bin", "logreg", 2), ("logreg_multi", "logreg", 4), ("logreg_ovr", "logreg_ovr", 4),
                   ("mlpc_relu", "mlpc_relu", 3), ("mlpc_relu_bin", "mlpc_relu_2layer", 2),
                   ("pipe_std_pca_logreg", "pipe_std_pca_logreg", 3), ("pipe_minmax_logreg", "pipe_minmax_logreg", 3),
                   ("pipe_normalizer_logreg", "pipe_normalizer_logreg", 3), ("sgd_hinge", "sgd_hinge", 3),
                   ("svc_linear", "svc_linear", 3), ("svc_linear_bin", "svc_linear", 2),
                   ("svc_rbf", "svc_rbf", 3), ("svc_rbf_bin", "svc_rbf", 2), ("svc_poly", "svc_poly", 3),
                   ("svc_sigmoid", "svc_sigmoid", 3), ("svc_rbf_proba_bin", "svc_rbf_proba", 2),
                   ("svc_linear_proba_bin", "svc_linear_proba", 2), ("svc_rbf_proba", "svc_rbf_proba", 3), ("mlpc_tanh", "mlpc_tanh", 3),
                   ("mlpc_logistic", "mlpc_logistic", 3), ("mlpc_identity", "mlpc_identity", 3), ("lda", "lda", 3),
                   ("gnb", "gnb", 3))
    regressors = (("linreg", "linreg", 1), ("linreg_multi", "linreg", 3), ("ridge", "ridge", 1),
                  ("mlpr_relu", "mlpr_relu", 1), ("mlpr_relu_multi", "mlpr_relu", 2),
                  ("pipe_std_linreg", "pipe_std_linreg", 1), ("pipe_std_pca_mlpr", "pipe_std_pca_mlpr", 1),
                  ("mlpr_tanh", "mlpr_tanh", 1), ("mlpr_logistic", "mlpr_logistic", 1),
                  ("mlpr_identity", "mlpr_identity", 1), ("svr_rbf", "svr_rbf", 1), ("svr_linear", "svr_linear", 1))
    cases = []
    for opset in OPSETS:
        for name, kind, classes in classifiers:
            cases += [_case(name, kind, classes, opset),
                      _case(f"{name}-nozipmap", kind, classes, opset, {"zipmap": False})]
        cases += [_case("ridgeclf", "ridgeclf", 3, opset), _case("linearsvc_multi", "linearsvc", 3, opset),
                  _case("linearsvc_bin", "linearsvc", 2, opset),
                  _case("linearsvc_bin_raw", "linearsvc", 2, opset, {"raw_scores": True})]
        cases += [_case(name, kind, targets, opset, regressor=True) for name, kind, targets in regressors]
        cases += _tree_cases(opset)
        cases += [_case(name, name, 3, opset) for name in
                  ("perceptron", "sgd_log", "passive_aggressive", "bnb", "bnb_threshold", "pipe_binarizer_logreg",
                   "pipe_minmax_mnb", "qda", "nusvc_rbf", "pipe_poly_logreg", "pipe_robust_logreg",
                   "pipe_maxabs_logreg", "adaboost", "adaboost_depth3", "bagging_logreg", "voting_soft", "knn", "knn_distance",
                   "ridgeclf_cv", "calibrated_svc", "pipe_svd_logreg", "sgd_modified_huber", "sgd_squared_hinge",
                   "ovr_svc", "ovo_logreg")]
        cases += [_case("adaboost_bin", "adaboost", 2, opset)]
        cases += [_case(name, name, 1, opset, regressor=True)
                  for name in ("lasso", "elasticnet", "bayesian_ridge", "huber", "knnr")]
    return cases

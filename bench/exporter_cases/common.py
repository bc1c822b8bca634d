"""What every exporter case module shares: the :class:`Case` record, the exported model and the
number of samples each case draws."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

SAMPLES = 200
"""Samples per case: the calibration data of the compile and the inputs the outputs are compared on."""


@dataclass(frozen=True)
class ExportedModel:
    """An exported model and its samples (``[SAMPLES, ...]`` float32, or int64 token ids, per graph input name);
    ``regressor`` says its outputs are judged by their values rather than by top-1."""

    proto: onnx.ModelProto
    inputs: dict[str, np.ndarray]
    regressor: bool = False


@dataclass(frozen=True)
class Case:
    """One model of the bench: ``exporter`` (``torch-legacy``, ``torch-dynamo``, ``skl2onnx``,
    ``hand``), ``opset`` (of the default domain), ``batch`` (``dynamic``, or the fixed batch size of
    the graph input), the importable packages ``requires`` names and ``build``, which exports it."""

    name: str
    exporter: str
    opset: int
    batch: str
    requires: tuple[str, ...]
    build: Callable[[], ExportedModel]


LAYOUTS: dict[str, tuple[int, ...]] = {"flat": (64,), "nhwc": (8, 8, 1), "nchw": (1, 8, 8), "steps": (8, 8),
                                       "channels_steps": (8, 8), "diabetes": (10,)}
"""Per-sample shape of each layout of :func:`structured_data`: the digits as flat pixels, an NHWC or
NCHW image, rows as a sequence of 8 steps of 8 features (``steps``: [steps, features];
``channels_steps``: [features, steps]); the diabetes features."""


def structured_data(layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training inputs, training targets, ``SAMPLES`` held-out inputs), float32, of scikit-learn's
    digits (pixels / 16, labels 0..9) in ``layout``, or diabetes (standardized features, the target
    scaled to unit variance) for ``diabetes``; shuffled once (seed 0)."""
    from sklearn import datasets

    if layout == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        y = (y - y.mean()) / y.std()
    else:
        digits = datasets.load_digits()
        x, y = digits.images / 16.0, digits.target
        if layout == "channels_steps":
            x = x.transpose(0, 2, 1)
        x = x.reshape(len(x), *LAYOUTS[layout])
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order].astype(np.float32 if layout == "diabetes" else np.int64)
    held = min(SAMPLES, len(x) // 3)
    return x[:-held], y[:-held], x[-held:]

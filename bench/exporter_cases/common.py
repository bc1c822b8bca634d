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

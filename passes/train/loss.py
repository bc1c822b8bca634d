"""Losses on logits ``[N, K]``, each returning ``(mean loss, d loss / d logits)``.

- :func:`cross_entropy`: softmax cross-entropy against class indices.
- :func:`distillation`: ``T^2 * KL(softmax(t / T) || softmax(s / T))`` averaged over the batch, with
  the teacher's logits ``t`` and the student's ``s`` (Hinton et al.; the ``T^2`` keeps the gradient
  scale independent of ``T``). Its gradient is ``T * (softmax(s / T) - softmax(t / T)) / N``.

A teacher whose output is a probability vector (a model ending in Softmax, run by onnxruntime) is
turned into logits with :func:`logits_from_probabilities` (log-probabilities: softmax of them gives the
probabilities back, so the softened distributions are the same as for the pre-softmax logits).

A single logit (a binary classifier trained with a sigmoid) is the two-class logits ``[0, z]``
(:func:`class_scores`: softmax of them is ``[1 - sigmoid(z), sigmoid(z)]``), so both losses and the
argmax work on it unchanged; the gradient flows back to ``z`` only.

- :func:`mean_squared_error`: for regressors, the mean over samples and outputs of
  ``((y - t) / scale)^2`` against real-valued targets ``t``, each output column divided by its own
  ``scale`` (the targets' standard deviation on the training data) so that outputs of different
  units weigh the same.
"""

from __future__ import annotations

import numpy as np

from passes.train.errors import TrainError


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``log(softmax(logits / temperature))`` along the last axis, computed stably."""
    z = logits / logits.dtype.type(temperature) if temperature != 1.0 else logits
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _check_logits(logits: np.ndarray) -> None:
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise TrainError(f"logits of shape {list(logits.shape)}; the losses need [N, classes] with N > 0",
                         hint="train on a [1, K] output tensor (pass `logits=` to build_net)")


def class_scores(logits: np.ndarray) -> np.ndarray:
    """``logits [N, K]`` as class scores: unchanged for K >= 2, ``[0, z]`` for one logit ``z``."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        return np.concatenate([np.zeros_like(logits), logits], axis=1)
    return logits


def _one_logit(loss: tuple[float, np.ndarray], logits: np.ndarray) -> tuple[float, np.ndarray]:
    """The gradient of a loss computed on :func:`class_scores` back to the single logit."""
    value, grad = loss
    return value, np.ascontiguousarray(grad[:, 1:]) if logits.shape[1] == 1 else grad


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy of ``logits [N, K]`` against class indices ``labels [N]`` (one
    logit: the binary cross-entropy of its sigmoid, see :func:`class_scores`)."""
    _check_logits(logits)
    if logits.shape[1] == 1:
        return _one_logit(cross_entropy(class_scores(logits), labels), logits)
    labels = np.asarray(labels)
    n, k = logits.shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise TrainError(f"labels of shape {list(labels.shape)} and dtype {labels.dtype}; expected {n} class indices",
                         hint="store integer class indices as 'y' in the data file")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise TrainError(f"labels range over [{labels.min()}, {labels.max()}] but the model has {k} classes",
                         hint="labels must be class indices 0..K-1 of the model's output")
    logp = log_softmax(logits)
    rows = np.arange(n)
    loss = -float(logp[rows, labels].mean())
    grad = np.exp(logp)
    grad[rows, labels] -= 1
    grad /= grad.dtype.type(n)
    return loss, grad


def distillation(student: np.ndarray, teacher: np.ndarray, temperature: float = 2.0) -> tuple[float, np.ndarray]:
    """Mean ``T^2 * KL(teacher softened || student softened)`` and its gradient wrt ``student``."""
    _check_logits(student)
    if teacher.shape != student.shape:
        raise TrainError(f"teacher logits {list(teacher.shape)} do not match the student's {list(student.shape)}",
                         hint="compute the teacher's logits with predict_logits on the same samples")
    if student.shape[1] == 1:
        return _one_logit(distillation(class_scores(student), class_scores(teacher), temperature), student)
    if temperature <= 0:
        raise TrainError(f"temperature {temperature} must be positive")
    t = np.float64(temperature)
    log_s = log_softmax(student.astype(np.float64), temperature)
    log_t = log_softmax(teacher.astype(np.float64), temperature)
    p_t = np.exp(log_t)
    n = student.shape[0]
    loss = float(t * t * (p_t * (log_t - log_s)).sum() / n)
    grad = (t * (np.exp(log_s) - p_t) / n).astype(student.dtype)
    return loss, grad


def mean_squared_error(outputs: np.ndarray, targets: np.ndarray,
                       scale: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Mean of ``((outputs - targets) / scale)^2`` over ``[N, K]`` and its gradient wrt ``outputs``
    (``scale``: ``[K]`` positive, default 1)."""
    _check_logits(outputs)
    if targets.shape != outputs.shape:
        raise TrainError(f"regression targets {list(targets.shape)} do not match the outputs {list(outputs.shape)}",
                         hint="one row of real-valued targets per sample, one column per model output")
    s = np.ones(outputs.shape[1]) if scale is None else np.asarray(scale, dtype=np.float64)
    diff = (outputs.astype(np.float64) - targets.astype(np.float64)) / s
    loss = float((diff * diff).mean())
    grad = (2.0 * diff / s / diff.size).astype(outputs.dtype)
    return loss, grad


def logits_from_probabilities(probabilities: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Log-probabilities (``log(max(p, floor))``) usable as logits for :func:`distillation`."""
    p = np.asarray(probabilities)
    return np.log(np.maximum(p, p.dtype.type(floor) if p.dtype.kind == "f" else floor)).astype(
        p.dtype if p.dtype.kind == "f" else np.float32)

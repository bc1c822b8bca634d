"""Mini-batch training of a :class:`~passes.train.graph.Net` on a :class:`~transpiler.data.Dataset`.

:func:`fit` runs Adam over shuffled mini-batches. Each step: forward to ``net.logits``, the loss
(``"ce"``: cross-entropy on the dataset's labels; ``"distill"``: distillation towards
``teacher_logits``, one row per sample of the dataset; ``"mse"``, for regressors: mean squared
error towards ``teacher_logits`` when given, else towards the dataset's real-valued labels, each
output divided by ``target_scale``), backward, the optimizer step on every
parameter not in ``frozen``, then ``after_step(net)`` (where `sparsify` re-projects each layer to its
top-k magnitudes, so a pruned weight whose dense gradient grows it back can return). The order of the
samples comes from ``numpy.random.default_rng(seed)`` (one permutation per epoch), so the same seed,
data and starting weights give bitwise the same weights. With ``epoch_samples`` an epoch visits only
the first ``epoch_samples`` of its permutation: a fresh seeded draw each epoch, so an epoch's cost
stays bounded on a dataset much bigger than needed while every sample can still be drawn.

:func:`predict_logits` and :func:`evaluate` run the network without keeping caches, in batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from transpiler.data import Dataset
from transpiler.errors import DataError, Location

from passes.train import loss as losses
from passes.train.errors import TrainError
from passes.train.graph import Net
from passes.train.optim import Adam
from passes.train.threads import blas_threads

LossName = Literal["ce", "distill", "mse"]


@dataclass(frozen=True)
class EpochReport:
    """What ``progress`` receives after each epoch."""

    epoch: int          # 1-based
    epochs: int
    loss: float         # mean over the epoch's steps (weighted by batch size)
    seconds: float
    steps: int          # optimizer steps so far, all epochs


@dataclass
class FitResult:
    """The training history: per-epoch mean loss and wall time, and the number of steps."""

    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    steps: int = 0


def _check_data(net: Net, dataset: Dataset) -> None:
    if sorted(dataset.inputs) != sorted(net.inputs):
        raise DataError(f"the data feeds {', '.join(dataset.inputs)}, the network reads {', '.join(net.inputs)}",
                        location=Location(file=dataset.source),
                        hint="name the arrays after the model's inputs")
    for name, spec in net.inputs.items():
        got = tuple(dataset.inputs[name].shape[1:])
        if got != spec:
            raise DataError(f"input '{name}' has per-sample shape {list(got)}, the network {list(spec)}",
                            location=Location(file=dataset.source),
                            hint="load the data with transpiler.data.load_dataset against the model")
    if len(dataset) == 0:
        raise DataError("the dataset is empty", location=Location(file=dataset.source))


def fit(net: Net, dataset: Dataset, *, epochs: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
        loss: LossName = "ce", teacher_logits: np.ndarray | None = None, temperature: float = 2.0,
        weight_decay: float = 0.0, after_step: Callable[[Net], None] | None = None,
        frozen: Collection[str] = frozenset(), progress: Callable[[EpochReport], None] | None = None,
        optimizer: Adam | None = None, threads: int | None = 1,
        target_scale: np.ndarray | None = None, epoch_samples: int | None = None) -> FitResult:
    """Train ``net`` in place (see the module docstring); returns the per-epoch history.

    ``optimizer`` continues with an existing Adam's state (its ``lr``/``weight_decay`` win over the
    arguments); by default a fresh ``Adam(lr, weight_decay=weight_decay)``. ``threads`` caps the
    BLAS thread pool while training (:mod:`passes.train.threads`; None leaves it alone).
    """
    _check_data(net, dataset)
    if epochs < 0 or batch_size < 1 or (epoch_samples is not None and epoch_samples < 1):
        raise TrainError(f"epochs={epochs}, batch_size={batch_size}, epoch_samples={epoch_samples}",
                         hint="epochs >= 0, batch_size >= 1 and epoch_samples >= 1 (or None: every sample)")
    unknown = [name for name in frozen if name not in net.param_names]
    if unknown:
        raise TrainError(f"frozen names that are not parameters: {', '.join(map(repr, unknown))}",
                         hint=f"parameters: {', '.join(net.param_names[:12])}")
    if not [name for name in net.param_names if name not in set(frozen)]:
        raise TrainError("every parameter is frozen: nothing to train", hint="freeze fewer parameters")
    targets = _targets(net, dataset, loss, teacher_logits)
    opt = optimizer if optimizer is not None else Adam(lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    result = FitResult()
    n = len(dataset)
    visit = n if epoch_samples is None else min(n, epoch_samples)
    with blas_threads(threads):
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)[:visit]
            result.losses.append(_epoch(net, dataset, order, batch_size, loss, targets, temperature,
                                        opt, frozen, after_step, result, target_scale))
            if progress is not None:
                progress(EpochReport(epoch, epochs, result.losses[-1], result.seconds[-1], result.steps))
    return result


def _epoch(net: Net, dataset: Dataset, order: np.ndarray, batch_size: int, loss: str, targets: np.ndarray,
           temperature: float, opt: Adam, frozen: Collection[str], after_step: Callable[[Net], None] | None,
           result: FitResult, target_scale: np.ndarray | None = None) -> float:
    """One pass over ``dataset`` in ``order``; counts steps and time in ``result``; the mean loss."""
    start = time.perf_counter()
    total = 0.0
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        feeds = {name: values[rows] for name, values in dataset.inputs.items()}
        logits = net.forward(feeds, [net.logits], keep=True)[net.logits]
        if loss == "ce":
            value, grad = losses.cross_entropy(logits, targets[rows])
        elif loss == "mse":
            value, grad = losses.mean_squared_error(logits.reshape(len(rows), -1), targets[rows], target_scale)
            grad = grad.reshape(logits.shape)
        else:
            value, grad = losses.distillation(logits, targets[rows], temperature)
        grads = net.backward({net.logits: grad}, frozen=frozen)
        opt.step(net.params(), grads.params)
        result.steps += 1
        if after_step is not None:
            after_step(net)
        total += value * len(rows)
    result.seconds.append(time.perf_counter() - start)
    return total / len(order)


def _targets(net: Net, dataset: Dataset, loss: str, teacher_logits: np.ndarray | None) -> np.ndarray:
    """The per-sample targets: labels for "ce", teacher logits (net dtype) for "distill", for "mse"
    the teacher's outputs or else the labels, as ``[n, outputs]``."""
    if loss == "ce":
        if dataset.labels is None:
            raise TrainError("cross-entropy needs labels but the dataset has none",
                             location=Location(file=dataset.source),
                             hint="add 'y' (class indices) to the data file, or train with loss='distill'")
        return np.asarray(dataset.labels)
    if loss == "distill":
        if teacher_logits is None:
            raise TrainError("distillation needs the teacher's logits",
                             hint="compute them with predict_logits(net, dataset) before changing the weights")
        teacher = np.asarray(teacher_logits, dtype=net.dtype)
        if teacher.ndim != 2 or teacher.shape[0] != len(dataset):
            raise TrainError(f"teacher logits of shape {list(teacher.shape)} for {len(dataset)} samples",
                             hint="one row of logits per sample, in the dataset's order")
        return teacher
    if loss == "mse":
        source = teacher_logits if teacher_logits is not None else dataset.labels
        if source is None:
            raise TrainError("a regression loss needs real-valued labels or the original model's outputs",
                             location=Location(file=dataset.source),
                             hint="add 'y' (one row of targets per sample) to the data file")
        return np.asarray(source, dtype=net.dtype).reshape(len(dataset), -1)
    raise TrainError(f"unknown loss {loss!r}", hint="use 'ce', 'distill' or 'mse'")


def predict_logits(net: Net, dataset: Dataset, *, batch_size: int = 256, tensor: str | None = None,
                   threads: int | None = 1) -> np.ndarray:
    """``net.logits`` (or ``tensor``) for every sample, ``[n, *per-sample shape]``, without caches."""
    _check_data(net, dataset)
    name = tensor or net.logits
    with blas_threads(threads):
        parts = [net.forward(batch.inputs, [name], keep=False)[name] for batch in dataset.batches(batch_size)]
    return np.concatenate(parts, axis=0)


def predicted_classes(logits: np.ndarray) -> np.ndarray:
    """The class each sample's logits pick (one logit: 1 where it is positive, see
    :func:`passes.train.loss.class_scores`)."""
    return losses.class_scores(np.asarray(logits).reshape(len(logits), -1)).argmax(axis=1)


def evaluate(net: Net, dataset: Dataset, *, teacher_logits: np.ndarray | None = None,
             batch_size: int = 256, threads: int | None = 1) -> float:
    """Top-1 accuracy on the dataset's labels, or, with ``teacher_logits``, the fraction of samples
    whose argmax agrees with the teacher's."""
    logits = predict_logits(net, dataset, batch_size=batch_size, threads=threads)
    predicted = predicted_classes(logits)
    if teacher_logits is not None:
        teacher = np.asarray(teacher_logits)
        if teacher.shape[0] != len(dataset):
            raise TrainError(f"teacher logits for {teacher.shape[0]} samples, the dataset has {len(dataset)}")
        return float((predicted_classes(teacher) == predicted).mean())
    if dataset.labels is None:
        raise TrainError("evaluate needs labels or teacher logits", location=Location(file=dataset.source),
                         hint="pass teacher_logits=predict_logits(reference_net, dataset)")
    return float((np.asarray(dataset.labels) == predicted).mean())

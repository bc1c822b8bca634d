"""What `separate` and `sparsify` share: the data they fine-tune on and the accuracy they guard.

:func:`finetune_setup` turns ``PassContext.data`` into a :class:`FineTune`:

- the parts of :meth:`transpiler.data.Dataset.split` (seeded by ``PassContext.seed``, so every pass
  of a run sees the same parts): fine-tuning on ``train``, the accuracy drop measured on ``val``.
  The ``test`` part is never touched (the sample files mark their held-out images ``val``/``test``,
  see samples/README.md);
- the loss: cross-entropy when the data has labels, else distillation from the *reference* model's
  logits (KL at a temperature, :data:`DISTILL_TEMPERATURE` by default); ``loss=distill`` distils also
  when there are labels. The default temperature is low (0.25), not Hinton's 2-4: at 0.25 the
  softened targets are nearly the reference's own decisions (pseudo-labels), which is what the bound
  below measures (top-1), and on the training images of the reference those decisions are nearly the
  true labels. Measured with bench/sparsecomp.py on the MNIST samples without labels: at 2,
  mlp_mnist_big stopped at ~40x (the bound rejected every deeper cut) and lenet5 at 12x scored 1.0
  point below the labelled run; at 0.25 mlp_mnist_big reaches 95x and lenet5 is within 0.3 point of
  the labelled run;
- the measure: top-1 accuracy when the val part has labels; without labels the accuracy *estimated
  from the reference's probabilities*: the mean over val of ``p_ref(class the compressed model picks
  | x)``, against the reference's own ``mean max p_ref``. For a calibrated reference this is an
  unbiased accuracy estimate; where the reference is certain it is plain top-1 agreement, and a
  disagreement on a sample the reference itself was unsure about costs little (measured on the
  samples: mlp_mnist_big's reference claims 96.7 % where it scores 94.4 %, lenet5 96.8 % / 96.6 %).
  Plain agreement would bound the drop too, but 2-3x too tightly. Fine-tuning alone, with no
  compression at all, changes the prediction on a few samples (mlp_mnist_big: ~2 %) that such an
  estimate charges in full, so without labels the reference accuracy is the estimate of the
  reference model *after* the same fine-tuning (``epochs``, distillation, no compression) when that
  is lower than its own: the drop measured is then the drop the compression causes;
- the reference: the model the first compressing pass of the run received. It is kept in
  ``PassContext.extra["compress-reference"]`` so that `separate` and then `sparsify` are bounded
  against the same original model: their drops do not add up past ``max-drop``.

Regressors (``task``, :func:`infer_task`) are measured by R^2 instead of top-1: ``1 - SSE / SST`` over
val with each output column standardised by the training targets' spread, against the real-valued
labels ``y`` when the data has them, else against the reference's outputs (where the reference
itself scores 100 %); they are fine-tuned on the mean squared error towards the same targets
(``loss=mse``; ``loss=distill`` fits the reference's outputs even when there are labels). Without
this a regressor or an autoencoder would be bounded by the argmax of its outputs, which says
nothing about them, and compressed until its outputs are noise.

Accuracies are fractions in [0, 1] (R^2 can go below 0); drops and ``max-drop`` options are in points
(percent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from passes.classifier_tail import model_classes
from passes.train import Adam, Net, build_net, class_scores, evaluate, fit, predict_logits, predicted_classes
from transpiler.data import Dataset
from transpiler.errors import DataError, Location
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

LossChoice = Literal["auto", "ce", "distill", "mse"]
TaskChoice = Literal["auto", "classify", "regress"]
AUTOENCODER_MIN = 32
"""An output shaped like an input means an autoencoder from this many values (a classifier of 8
features into 8 classes is not one)."""
REFERENCE_KEY = "compress-reference"
MIN_VAL_SAMPLES = 20
DISTILL_TEMPERATURE = 0.25
"""The default distillation temperature of the compressing passes (see the module docstring)."""
EPOCH_SAMPLES = 8192
"""An epoch of fine-tuning visits at most this many training samples, a fresh seeded draw each epoch
(:func:`passes.train.fit`'s ``epoch_samples``): a data file much bigger than needed then costs one
forward pass over it for the reference's outputs, not 20x the time of every step (the samples' 3,500
training images are unaffected)."""


@dataclass(frozen=True)
class Task:
    """What the model's outputs are (``classify``: class scores, ``regress``: values) and why."""

    kind: Literal["classify", "regress"]
    why: str


def _vector_length(shape: tuple[int, ...]) -> int | None:
    """K when a per-sample shape is a vector (at most one axis longer than 1), else None."""
    long = [d for d in shape if d != 1]
    return long[0] if len(long) == 1 else (1 if not long else None)


def infer_task(choice: TaskChoice, labels: np.ndarray | None, output_shape: tuple[int, ...],
               input_shapes: list[tuple[int, ...]], ends_in_classifier: bool) -> Task:
    """Classification or regression (``choice`` auto): real-valued labels, whole-number labels that
    cannot index the model's scores (a target of 8..40 for one output: integral float targets load as
    integers, transpiler.data), an output that is not a vector, a single output value or one shaped
    like an input of at least AUTOENCODER_MIN values (an autoencoder) mean regression;
    class-index labels or a final Softmax/Sigmoid mean classification; a vector of scores with
    neither is assumed to be class scores (``task=regress`` says otherwise)."""
    if choice in ("classify", "regress"):
        return Task(choice, f"task={choice}")
    if labels is not None:
        values = np.asarray(labels)
        if values.dtype.kind == "f":
            return Task("regress", "the labels 'y' are real numbers")
        k = _vector_length(output_shape)
        scores = 2 if k == 1 else k          # one logit: the two-class scores [0, z]
        if (scores is not None and values.ndim == 1 and values.size and not ends_in_classifier
                and (int(values.min()) < 0 or int(values.max()) >= scores)):
            return Task("regress", f"the labels 'y' are whole numbers ({int(values.min())}..{int(values.max())}) "
                                   f"that cannot index its {k} output{'s' if k != 1 else ''}: regression targets "
                                   f"(task=classify, --task classify, says otherwise)")
        return Task("classify", "the labels 'y' are class indices")
    if ends_in_classifier:
        return Task("classify", "the model ends in a Softmax/Sigmoid")
    k = _vector_length(output_shape)
    if k is None:
        return Task("regress", f"its output {list(output_shape)} is a map, not a vector of class scores")
    if k == 1:
        return Task("regress", "it has a single output value")
    if k >= AUTOENCODER_MIN and tuple(output_shape) in {tuple(s) for s in input_shapes}:
        return Task("regress", f"its output has its input's shape {list(output_shape)} (an autoencoder)")
    return Task("classify", f"assumed: {k} class scores (task=regress, --task regress, for a regressor)")


def r2_score(outputs: np.ndarray, targets: np.ndarray, scale: np.ndarray) -> float:
    """``1 - SSE / SST`` over every output column standardised by ``scale``."""
    n = len(targets)
    y = np.asarray(outputs, dtype=np.float64).reshape(n, -1) / scale
    t = np.asarray(targets, dtype=np.float64).reshape(n, -1) / scale
    sst = float(((t - t.mean(axis=0)) ** 2).sum())
    sse = float(((y - t) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)


def target_scale(targets: np.ndarray) -> np.ndarray:
    """Per output column the standard deviation of ``targets`` (a column that does not vary: the
    targets' overall spread, or 1)."""
    t = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    std = t.std(axis=0)
    fallback = float(std.max()) if std.size and std.max() > 0 else 1.0
    return np.where(std > 1e-12 * max(fallback, 1e-30), std, fallback)


@dataclass
class Reference:
    """The original model's figures that every compressing pass of a run compares with."""

    accuracy: float                    # on val: top-1 accuracy, or the estimated one without labels
    own_accuracy: float                # the reference's own (before any fine-tuning)
    teacher_train: np.ndarray | None   # the original's logits on train (distillation targets)
    teacher_val: np.ndarray | None     # ... and on val (agreement measure)
    train_size: int
    val_size: int
    task: Task = Task("classify", "default")
    scale: np.ndarray | None = None    # regressors: the per-column spread of the targets on train


@dataclass
class FineTune:
    """Data, loss and measure for fine-tuning a compressed network (see the module docstring)."""

    train: Dataset
    val: Dataset
    loss: Literal["ce", "distill"]
    labelled: bool                     # the measure: accuracy (True) or agreement with the reference
    reference: Reference
    epochs: int
    lr: float = 1e-3
    batch_size: int = 64
    temperature: float = DISTILL_TEMPERATURE
    threads: int | None = 1
    task: Task = Task("classify", "default")
    scale: np.ndarray | None = None     # regression: the targets' per-column spread on train
    to_labels: bool = False             # regression: fitted to the labels (else to the reference's outputs)

    @property
    def measure(self) -> str:
        """What :meth:`accuracy` measures, for messages."""
        if self.task.kind == "regress":
            return "R^2 vs the labels" if self.labelled else "R^2 vs the original model's outputs (no labels)"
        return "top-1 accuracy" if self.labelled else "top-1 accuracy estimated by the original model (no labels)"

    def accuracy(self, net: Net) -> float:
        """Top-1 accuracy (labels), the reference-estimated accuracy (no labels) or R^2 (regressors) on val."""
        if self.task.kind == "regress":
            targets = self.val.labels if self.labelled else self.reference.teacher_val
            assert targets is not None and self.scale is not None
            return r2_score(predict_logits(net, self.val, threads=self.threads), targets, self.scale)
        if self.labelled:
            return evaluate(net, self.val, threads=self.threads)
        assert self.reference.teacher_val is not None
        logits = predict_logits(net, self.val, threads=self.threads)
        return estimated_accuracy(self.reference.teacher_val, predicted_classes(logits))

    def agreement(self, net: Net) -> float:
        """Top-1 agreement with the reference on val (regressors: R^2 against its outputs)."""
        if self.task.kind == "regress":
            assert self.reference.teacher_val is not None and self.scale is not None
            return r2_score(predict_logits(net, self.val, threads=self.threads), self.reference.teacher_val,
                            self.scale)
        return evaluate(net, self.val, teacher_logits=self.reference.teacher_val, threads=self.threads)

    def drop(self, accuracy: float) -> float:
        """Points lost against the reference (negative: better than the reference)."""
        return 100.0 * (self.reference.accuracy - accuracy)

    def tune(self, net: Net, epochs: int | None = None, seed: int = 0,
             after_step: Callable[[Net], None] | None = None, lr: float | None = None,
             optimizer: Adam | None = None) -> None:
        """Fine-tune ``net`` in place on train for ``epochs`` (default: the configured number) with
        ``optimizer`` (default: a fresh Adam at ``lr``, default the configured one)."""
        teacher = None if self.to_labels else self.reference.teacher_train
        fit(net, self.train, epochs=self.epochs if epochs is None else epochs, batch_size=self.batch_size,
            lr=self.lr if lr is None else lr, seed=seed, loss=self.loss, teacher_logits=teacher,
            temperature=self.temperature, after_step=after_step, threads=self.threads, optimizer=optimizer,
            target_scale=self.scale, epoch_samples=EPOCH_SAMPLES)


def estimated_accuracy(teacher_logits: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of the teacher's softmax probability of the ``predicted`` classes (see the module docstring)."""
    z = class_scores(np.asarray(teacher_logits, dtype=np.float64).reshape(len(teacher_logits), -1))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return float(p[np.arange(len(p)), np.asarray(predicted, dtype=np.int64)].mean())


def _parts(context: PassContext, pass_name: str) -> tuple[Dataset, Dataset]:
    data = context.data
    if data is None:
        raise DataError(f"'{pass_name}' fine-tunes the model and measures its accuracy, so it needs data",
                        location=Location(pass_name=pass_name),
                        hint="pass --data d.npz: inputs 'x' and, if you have them, labels 'y' (without labels "
                             "the compressed model learns from the original model's outputs)")
    if not isinstance(data, Dataset):
        raise DataError(f"the data must be a transpiler.data.Dataset, got {type(data).__name__}",
                        location=Location(pass_name=pass_name))
    parts = data.split(seed=context.seed)
    train, val = parts["train"], parts["val"]
    if len(val) < MIN_VAL_SAMPLES or len(train) < MIN_VAL_SAMPLES:
        raise DataError(f"'{pass_name}' got {len(train)} training and {len(val)} validation samples from "
                        f"{len(data)}; it needs at least {MIN_VAL_SAMPLES} of each",
                        location=Location(file=data.source, pass_name=pass_name),
                        hint="give more samples (the default split is 60 % train, 20 % val, 20 % test; a "
                             "'split' array in the file pins val/test, see transpiler/data.py)")
    return train, val


def model_task(net: Net, labels: np.ndarray | None, choice: TaskChoice = "auto") -> Task:
    """:func:`infer_task` for ``net`` (its logits' per-sample shape, its inputs, a final Softmax/Sigmoid)."""
    shape = net.shape(net.logits)
    return infer_task(choice, labels, shape if shape is not None else (), list(net.inputs.values()),
                      net.logits not in net.outputs)


def _check_regression_labels(labels: np.ndarray, outputs: int, data: Dataset, pass_name: str) -> None:
    per_sample = int(np.prod(labels.shape[1:], dtype=np.int64))
    if per_sample != outputs:
        raise DataError(f"the labels 'y' hold {per_sample} value{'s' if per_sample != 1 else ''} per sample but "
                        f"the model has {outputs} outputs", location=Location(file=data.source, pass_name=pass_name),
                        hint="a regressor's 'y' holds one target per model output and sample")


def finetune_setup(model: OnnxModel, context: PassContext, pass_name: str, *, loss: LossChoice = "auto",
                   task: TaskChoice = "auto", epochs: int = 3, lr: float = 1e-3, batch_size: int = 64,
                   temperature: float = DISTILL_TEMPERATURE, threads: int | None = 1) -> FineTune:
    """The :class:`FineTune` for ``model`` (see the module docstring); the reference is taken from
    ``context.extra`` when an earlier pass of the run set it, else from ``model`` (and stored)."""
    classes = model_classes(model)
    train, val = (part.with_classes(classes) for part in _parts(context, pass_name))
    has_labels = train.labels is not None and val.labels is not None
    where = Location(file=context.data.source, pass_name=pass_name)
    if loss not in ("auto", "ce", "distill", "mse"):
        raise DataError(f"unknown loss {loss!r}", location=Location(pass_name=pass_name),
                        hint="loss=auto, ce, distill or mse")
    net = build_net(model)
    kind = model_task(net, train.labels if has_labels else None, task)
    if kind.kind == "regress":
        if loss == "ce":
            raise DataError(f"'{pass_name}{{loss=ce}}' is for classifiers, but the model is taken as a regressor "
                            f"({kind.why})", location=where, hint="use loss=mse (or auto), or task=classify")
        if has_labels:
            _check_regression_labels(np.asarray(train.labels), int(np.prod(net.shape(net.logits) or (1,))), train,
                                     pass_name)
            train, val = (replace(part, labels=np.asarray(part.labels, dtype=np.float32)) for part in (train, val))
        train_loss: Literal["ce", "distill", "mse"] = "mse"
        to_labels = has_labels and loss != "distill"
    else:
        if loss == "mse":
            raise DataError(f"'{pass_name}{{loss=mse}}' is for regressors, but the model is taken as a classifier "
                            f"({kind.why})", location=where, hint="use loss=ce or distill, or task=regress")
        if has_labels and np.asarray(train.labels).dtype.kind == "f":
            raise DataError(f"the labels 'y' are real numbers but '{pass_name}' takes the model as a classifier "
                            f"({kind.why})", location=where, hint="store class indices as 'y', or drop task=classify")
        train_loss = ("ce" if has_labels else "distill") if loss == "auto" else loss
        if train_loss == "ce" and not has_labels:
            raise DataError(f"'{pass_name}{{loss=ce}}' needs labels but the data has none", location=where,
                            hint="add 'y' (class indices) to the data file, or use loss=distill (or auto)")
        to_labels = False
    reference = context.extra.get(REFERENCE_KEY)
    if not isinstance(reference, Reference) or reference.train_size != len(train) \
            or reference.val_size != len(val) or reference.task != kind:
        reference = _reference(net, train, val, kind, has_labels, epochs=epochs, batch_size=batch_size, lr=lr,
                               temperature=temperature, threads=threads)
        context.extra[REFERENCE_KEY] = reference
    return FineTune(train, val, train_loss, has_labels, reference, epochs, lr, batch_size, temperature, threads,
                    kind, reference.scale, to_labels)


def _reference(net: Net, train: Dataset, val: Dataset, task: Task, labelled: bool, *, epochs: int,
               batch_size: int, lr: float, temperature: float, threads: int | None) -> Reference:
    """The original model's figures (see the module docstring): its accuracy on val, and without
    labels the lower of that and the accuracy of the same model after fine-tuning alone."""
    teacher_train = predict_logits(net, train, threads=threads)
    teacher_val = predict_logits(net, val, threads=threads)
    if task.kind == "regress":
        targets_train = np.asarray(train.labels) if labelled else teacher_train
        targets_val = np.asarray(val.labels) if labelled else teacher_val
        scale = target_scale(targets_train)
        own = accuracy = r2_score(teacher_val, targets_val, scale)
        if not labelled:
            fit(net, train, epochs=epochs, batch_size=batch_size, lr=lr, seed=0, loss="mse",
                teacher_logits=teacher_train, threads=threads, target_scale=scale, epoch_samples=EPOCH_SAMPLES)
            accuracy = min(own, r2_score(predict_logits(net, val, threads=threads), teacher_val, scale))
        return Reference(accuracy, own, teacher_train, teacher_val, len(train), len(val), task, scale)
    if labelled:
        own = accuracy = evaluate(net, val, threads=threads)
    else:
        own = estimated_accuracy(teacher_val, predicted_classes(teacher_val))
        fit(net, train, epochs=epochs, batch_size=batch_size, lr=lr, seed=0, loss="distill",
            teacher_logits=teacher_train, temperature=temperature, threads=threads, epoch_samples=EPOCH_SAMPLES)
        accuracy = min(own, estimated_accuracy(teacher_val, predicted_classes(predict_logits(net, val, threads=threads))))
    return Reference(accuracy, own, teacher_train, teacher_val, len(train), len(val), task)


__all__ = ["DISTILL_TEMPERATURE", "EPOCH_SAMPLES", "FineTune", "LossChoice", "Reference", "Task", "TaskChoice", "estimated_accuracy",
           "finetune_setup", "infer_task", "model_task", "r2_score", "target_scale"]

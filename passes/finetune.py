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

Accuracies are fractions in [0, 1]; drops and ``max-drop`` options are in points (percent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from passes.train import Adam, Net, build_net, evaluate, fit, predict_logits
from transpiler.data import Dataset
from transpiler.errors import DataError, Location
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

LossChoice = Literal["auto", "ce", "distill"]
REFERENCE_KEY = "compress-reference"
MIN_VAL_SAMPLES = 20
DISTILL_TEMPERATURE = 0.25
"""The default distillation temperature of the compressing passes (see the module docstring)."""


@dataclass
class Reference:
    """The original model's figures that every compressing pass of a run compares with."""

    accuracy: float                    # on val: top-1 accuracy, or the estimated one without labels
    own_accuracy: float                # the reference's own (before any fine-tuning)
    teacher_train: np.ndarray | None   # the original's logits on train (distillation targets)
    teacher_val: np.ndarray | None     # ... and on val (agreement measure)
    train_size: int
    val_size: int


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

    @property
    def measure(self) -> str:
        """What :meth:`accuracy` measures, for messages."""
        return "top-1 accuracy" if self.labelled else "top-1 accuracy estimated by the original model (no labels)"

    def accuracy(self, net: Net) -> float:
        """Top-1 accuracy (labels) or the reference-estimated accuracy (no labels) on val."""
        if self.labelled:
            return evaluate(net, self.val, threads=self.threads)
        assert self.reference.teacher_val is not None
        logits = predict_logits(net, self.val, threads=self.threads)
        return estimated_accuracy(self.reference.teacher_val, logits.reshape(len(logits), -1).argmax(axis=1))

    def agreement(self, net: Net) -> float:
        """Top-1 agreement with the reference on val."""
        return evaluate(net, self.val, teacher_logits=self.reference.teacher_val, threads=self.threads)

    def drop(self, accuracy: float) -> float:
        """Points lost against the reference (negative: better than the reference)."""
        return 100.0 * (self.reference.accuracy - accuracy)

    def tune(self, net: Net, epochs: int | None = None, seed: int = 0,
             after_step: Callable[[Net], None] | None = None, lr: float | None = None,
             optimizer: Adam | None = None) -> None:
        """Fine-tune ``net`` in place on train for ``epochs`` (default: the configured number) with
        ``optimizer`` (default: a fresh Adam at ``lr``, default the configured one)."""
        fit(net, self.train, epochs=self.epochs if epochs is None else epochs, batch_size=self.batch_size,
            lr=self.lr if lr is None else lr, seed=seed, loss=self.loss, teacher_logits=self.reference.teacher_train,
            temperature=self.temperature, after_step=after_step, threads=self.threads, optimizer=optimizer)


def estimated_accuracy(teacher_logits: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of the teacher's softmax probability of the ``predicted`` classes (see the module docstring)."""
    z = np.asarray(teacher_logits, dtype=np.float64).reshape(len(teacher_logits), -1)
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


def finetune_setup(model: OnnxModel, context: PassContext, pass_name: str, *, loss: LossChoice = "auto",
                   epochs: int = 3, lr: float = 1e-3, batch_size: int = 64, temperature: float = DISTILL_TEMPERATURE,
                   threads: int | None = 1) -> FineTune:
    """The :class:`FineTune` for ``model`` (see the module docstring); the reference is taken from
    ``context.extra`` when an earlier pass of the run set it, else from ``model`` (and stored)."""
    train, val = _parts(context, pass_name)
    has_labels = train.labels is not None and val.labels is not None
    if loss == "auto":
        loss = "ce" if has_labels else "distill"
    if loss == "ce" and not has_labels:
        raise DataError(f"'{pass_name}{{loss=ce}}' needs labels but the data has none",
                        location=Location(file=context.data.source, pass_name=pass_name),
                        hint="add 'y' (class indices) to the data file, or use loss=distill (or auto)")
    if loss not in ("ce", "distill"):
        raise DataError(f"unknown loss {loss!r}", location=Location(pass_name=pass_name),
                        hint="loss=auto, ce or distill")
    reference = context.extra.get(REFERENCE_KEY)
    if not isinstance(reference, Reference) or reference.train_size != len(train) or reference.val_size != len(val):
        net = build_net(model)
        teacher_train = predict_logits(net, train, threads=threads)
        teacher_val = predict_logits(net, val, threads=threads)
        if has_labels:
            own = accuracy = evaluate(net, val, threads=threads)
        else:
            own = estimated_accuracy(teacher_val, teacher_val.reshape(len(teacher_val), -1).argmax(axis=1))
            fit(net, train, epochs=epochs, batch_size=batch_size, lr=lr, seed=0, loss="distill",
                teacher_logits=teacher_train, temperature=temperature, threads=threads)
            tuned = predict_logits(net, val, threads=threads)
            accuracy = min(own, estimated_accuracy(teacher_val, tuned.reshape(len(tuned), -1).argmax(axis=1)))
        reference = Reference(accuracy, own, teacher_train, teacher_val, len(train), len(val))
        context.extra[REFERENCE_KEY] = reference
    return FineTune(train, val, loss, has_labels, reference, epochs, lr, batch_size, temperature, threads)


__all__ = ["DISTILL_TEMPERATURE", "FineTune", "LossChoice", "Reference", "estimated_accuracy", "finetune_setup"]

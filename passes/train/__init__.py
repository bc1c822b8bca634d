"""The small numpy training engine that `separate`/`sparsify` (SparseComp) and `attach-gnet` share.

- :mod:`passes.train.graph`: :func:`build_net` turns a normalized OnnxModel into a :class:`Net`
  (forward over a batch, backward from gradients at any tensors, parameters keyed by initializer
  name, :meth:`Net.write_back` into the model);
- :mod:`passes.train.ops`: forward/backward of each op (im2col convolution, pooling, ...);
- :mod:`passes.train.loss`: cross-entropy and distillation on logits, mean squared error for regressors;
- :mod:`passes.train.optim`: Adam;
- :mod:`passes.train.trainer`: :func:`fit`, :func:`evaluate`, :func:`predict_logits`.

No torch: numpy only, float32 by default, deterministic for a given seed.
"""

from __future__ import annotations

from passes.train.errors import TrainError
from passes.train.graph import Gradients, Layer, Net, build_net
from passes.train.loss import class_scores, cross_entropy, distillation, logits_from_probabilities, mean_squared_error
from passes.train.optim import Adam
from passes.train.trainer import EpochReport, FitResult, evaluate, fit, predict_logits, predicted_classes

__all__ = ["Adam", "EpochReport", "FitResult", "Gradients", "Layer", "Net", "TrainError", "build_net",
           "class_scores", "cross_entropy", "distillation", "evaluate", "fit", "logits_from_probabilities",
           "mean_squared_error", "predict_logits", "predicted_classes"]

"""The cases of ``bench/exporters.py``: models from the exporters users have, each a :class:`Case`.

A case names its exporter, opset and batch form and the Python packages its export needs; its
``build`` exports the model and draws the samples the bench compiles, runs and compares with:

- ``torch_cases``: small torch networks (BatchNorm folded and not, 1-D and 2-D convolutions with
  stride and dilation, average/max/adaptive pools, depthwise + residual, concat, channel-last input,
  two heads, a final LogSoftmax, and blocks of known families: MobileNetV2, ShuffleNet, SqueezeNet,
  EfficientNet MBConv, ResNet downsampling, TCN, GhostNet, U-net, ConvNeXt, DS-CNN, ...; four of
  them also quantized to int8 QDQ by onnxruntime.quantization) through the legacy and the dynamo
  exporter at several opsets, with a dynamic, a fixed 1 and a fixed 8 batch, and in float16/float64;
- ``sklearn_cases``: skl2onnx classifiers (ZipMap on and off), regressors and pipelines at two opsets;
- ``gbm_cases``: LightGBM and XGBoost models through onnxmltools (alone and in a skl2onnx Pipeline),
  CatBoost's own ONNX export;
- ``keras_cases``: Keras nets of the MLPerf Tiny shapes (DS-CNN, ResNet-8, MobileNetV1, the dense
  autoencoder) and small Conv1D, MLP, LayerNormalization, LSTM and GRU nets through tf2onnx
  (NHWC and ``inputs_as_nchw`` inputs, opsets 13 and 17, and through TFLite);
- ``zoo_cases``: model-zoo architectures (timm, torchvision, transformers) scaled to the device;
- ``simplified_cases``: torch, skl2onnx and Keras exports rewritten by onnx-simplifier (``-sim``) and
  onnxslim (``-slim``);
- ``hummingbird_cases``: scikit-learn models as tensor graphs by hummingbird-ml (trees in its GEMM,
  tree_trav and perf_tree_trav forms, linear models, MLPs, scaler pipelines);
- ``jax_cases``: Flax ``nnx`` nets (MLPs with five activations, NHWC CNNs with BatchNorm and pools,
  depthwise-separable, Conv1D, residual, LayerNorm/RMSNorm/GroupNorm, a GRU scan, a regressor)
  through jax2onnx at opsets 17, 21 and 23, a symbolic and a fixed batch, ``inputs_as_nchw``;
- ``paddle_cases``: ``paddle.nn`` nets of the same shapes (and an NHWC input, InstanceNorm, GRU,
  LSTM, nearest upsampling) through paddle2onnx at opsets 11, 13 and 17;
- ``hand_cases``: ONNX graphs written node by node for the forms no exporter above emits (Gemm
  alpha/beta/transA, Constant nodes, shape arithmetic, old opsets, float16/float64 graphs, ...).

Nothing here imports torch, scikit-learn, tensorflow, jax or paddle at import time: a case whose packages are missing is
reported as skipped by the bench instead of failing it.
"""

from __future__ import annotations

from bench.exporter_cases.common import Case, ExportedModel
from bench.exporter_cases.gbm_cases import gbm_cases
from bench.exporter_cases.hand_cases import hand_cases
from bench.exporter_cases.hummingbird_cases import hummingbird_cases
from bench.exporter_cases.jax_cases import jax_cases
from bench.exporter_cases.keras_cases import keras_cases
from bench.exporter_cases.paddle_cases import paddle_cases
from bench.exporter_cases.simplified_cases import simplified_cases
from bench.exporter_cases.sklearn_cases import sklearn_cases
from bench.exporter_cases.torch_cases import torch_cases
from bench.exporter_cases.zoo_cases import zoo_cases

__all__ = ["Case", "ExportedModel", "all_cases"]


def all_cases() -> list[Case]:
    """Every case, torch first, then skl2onnx, the boosting libraries, Keras through tf2onnx, Flax through
    jax2onnx, Paddle through paddle2onnx, the hand-made graphs, the model zoos, the simplified exports and
    hummingbird's (names are unique)."""
    cases = (torch_cases() + sklearn_cases() + gbm_cases() + keras_cases() + jax_cases() + paddle_cases()
             + hand_cases() + zoo_cases() + simplified_cases() + hummingbird_cases())
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"case names used twice: {', '.join(duplicates)}")
    return cases

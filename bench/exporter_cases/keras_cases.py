"""Keras cases: the models users put on microcontrollers, built in Keras and exported by tf2onnx.

The nets (``KERAS_NETS``) are the MLPerf Tiny shapes at a small size and the layers around them:

- ``dscnn_kws``: DS-CNN keyword spotting on a 49x10x1 MFCC map (Conv2D, DepthwiseConv2D,
  BatchNormalization, ReLU, AveragePooling2D, Dense, Softmax);
- ``resnet8``: a ResNet-8-style CIFAR net on 32x32x3 (Conv2D + BatchNormalization, Add residuals,
  a strided 1x1 shortcut, 'same' padding with stride 2);
- ``mobilenet_v1``: MobileNetV1-0.25-style on 48x48x3 (ZeroPadding2D, DepthwiseConv2D and
  SeparableConv2D, ReLU6, GlobalAveragePooling2D, Dropout);
- ``autoencoder``: the anomaly-detection dense autoencoder 640 -> 128 -> 128 -> 8 -> 128 -> 128 ->
  640 (BatchNormalization, regression output, judged by value), trained (30 epochs) to reconstruct
  inputs near an 8-dimensional manifold, the samples drawn from the same;
- ``conv1d_gmp``: Conv1D + GlobalMaxPooling1D on a [32 steps, 6 features] sensor window;
- ``flatten_mlp``: Flatten + Dense + Dropout on a 12x12x1 map;
- ``rescale_cnn``: Rescaling(1/255) of raw pixels and a Normalization layer with adapted
  statistics before a strided 'same' conv;
- ``layernorm_mlp``: Dense + LayerNormalization;
- ``lstm``, ``gru``: one small recurrent layer over [16 steps, 8 features], Dense head; and the same
  with ``unroll=True`` (``lstm_unrolled``, ``gru_unrolled``).

Each net is trained for a few steps on random data (seeded) so that its weights and BatchNorm
statistics are not the initial ones, then exported by ``tf2onnx.convert.from_function`` (Keras 3
models: ``from_keras`` needs Keras 2) in the forms

- ``-op13-bdyn``: opset 13, dynamic batch, the Keras (NHWC / [steps, features]) input;
- ``-op17-b1``: opset 17, batch 1;
- ``-op13-b1-nchw``: opset 13, batch 1, ``inputs_as_nchw`` (the image nets: an NCHW graph input);
- ``-tflite13-b1``: the frozen function through ``tf.lite.TFLiteConverter`` (float, no quantization),
  then ``tf2onnx.convert.from_tflite``.

The samples are standard normal (seed 1), raw pixels 0..255 for ``rescale_cnn``. Cases need
``tensorflow`` and ``tf2onnx`` (not project dependencies: the bench reports them skipped without).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel

REQUIRES = ("tensorflow", "tf2onnx")
TRAINING_ROWS = 256
TRAINING_EPOCHS = 2
AUTOENCODER_CODE = 8
TRAINING_EPOCHS_AUTOENCODER = 30
IMAGE_NETS = ("dscnn_kws", "resnet8", "mobilenet_v1", "flatten_mlp", "rescale_cnn")
"""Nets with an image input (also exported with ``inputs_as_nchw``)."""


def _dscnn_kws(keras: Any) -> Any:
    L = keras.layers
    x = keras.Input((49, 10, 1))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, (10, 4), strides=2, padding="same")(x)))
    for _ in range(2):
        h = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(h)))
        h = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 1)(h)))
    h = L.AveragePooling2D((25, 5))(h)
    y = L.Dense(12, activation="softmax")(L.Flatten()(h))
    return keras.Model(x, y)


def _resnet8(keras: Any) -> Any:
    L = keras.layers
    x = keras.Input((32, 32, 3))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, padding="same")(x)))
    for filters, stride in ((8, 1), (16, 2)):
        r = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, strides=stride, padding="same")(h)))
        r = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(r))
        shortcut = h if stride == 1 else L.Conv2D(filters, 1, strides=stride)(h)
        h = L.ReLU()(L.Add()([shortcut, r]))
    h = L.AveragePooling2D(8)(h)
    y = L.Dense(10, activation="softmax")(L.Flatten()(h))
    return keras.Model(x, y)


def _mobilenet_v1(keras: Any) -> Any:
    L = keras.layers
    x = keras.Input((48, 48, 3))
    h = L.ZeroPadding2D(((0, 1), (0, 1)))(x)
    h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="valid", use_bias=False)(h)))
    for filters, stride in ((16, 1), (16, 2), (32, 1)):
        h = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, strides=stride, padding="same",
                                                                  use_bias=False)(h)))
        h = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(filters, 1, use_bias=False)(h)))
    h = L.ReLU(6.0)(L.SeparableConv2D(32, 3, strides=2, padding="same")(h))
    h = L.Dropout(0.2)(L.GlobalAveragePooling2D()(h))
    y = L.Dense(2, activation="softmax")(h)
    return keras.Model(x, y)


def _autoencoder(keras: Any) -> Any:
    L = keras.layers
    x = keras.Input((640,))
    h = x
    for units in (128, 128, 8, 128, 128):
        h = L.ReLU()(L.BatchNormalization()(L.Dense(units)(h)))
    return keras.Model(x, L.Dense(640)(h))


def _conv1d_gmp(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((32, 6)), L.Conv1D(16, 5, activation="relu"),
                             L.Conv1D(16, 3, strides=2, padding="same", activation="relu"),
                             L.GlobalMaxPooling1D(), L.Dense(5, activation="softmax")])


def _flatten_mlp(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((12, 12, 1)), L.Flatten(), L.Dense(32, activation="relu"),
                             L.Dropout(0.3), L.Dense(16, activation="relu"), L.Dense(4, activation="softmax")])


def _rescale_cnn(keras: Any) -> Any:
    L = keras.layers
    norm = L.Normalization(axis=-1)
    norm.adapt(np.random.default_rng(2).uniform(0, 1, (64, 16, 16, 3)).astype(np.float32) * [1.0, 0.5, 0.8])
    return keras.Sequential([keras.Input((16, 16, 3)), L.Rescaling(1.0 / 255), norm,
                             L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
                             L.MaxPooling2D(2), L.Flatten(), L.Dense(3, activation="softmax")])


def _layernorm_mlp(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((20,)), L.Dense(32, activation="relu"), L.LayerNormalization(),
                             L.Dense(4, activation="softmax")])


def _lstm(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((16, 8)), L.LSTM(12), L.Dense(4, activation="softmax")])


def _gru(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((16, 8)), L.GRU(12), L.Dense(4, activation="softmax")])


def _lstm_unrolled(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((16, 8)), L.LSTM(12, unroll=True), L.Dense(4, activation="softmax")])


def _gru_unrolled(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([keras.Input((16, 8)), L.GRU(12, unroll=True), L.Dense(4, activation="softmax")])


KERAS_NETS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "dscnn_kws": (_dscnn_kws, False), "resnet8": (_resnet8, False), "mobilenet_v1": (_mobilenet_v1, False),
    "autoencoder": (_autoencoder, True), "conv1d_gmp": (_conv1d_gmp, False), "flatten_mlp": (_flatten_mlp, False),
    "rescale_cnn": (_rescale_cnn, False), "layernorm_mlp": (_layernorm_mlp, False), "lstm": (_lstm, False),
    "gru": (_gru, False), "lstm_unrolled": (_lstm_unrolled, False), "gru_unrolled": (_gru_unrolled, False),
}
"""name -> (builder taking the keras module, regressor)."""


def _samples(net_name: str, shape: tuple[int, ...], rows: int, seed: int) -> np.ndarray:
    """``rows`` samples of ``shape``: raw pixels for ``rescale_cnn``, standard normal otherwise."""
    rng = np.random.default_rng(seed)
    if net_name == "rescale_cnn":
        return rng.uniform(0, 255, (rows, *shape)).astype(np.float32)
    if net_name == "autoencoder":    # spectra near an 8-dimensional manifold: what the code layer can learn
        mixing = np.random.default_rng(7).standard_normal((AUTOENCODER_CODE, *shape))
        return np.tanh(rng.standard_normal((rows, AUTOENCODER_CODE)) @ mixing / 3.0).astype(np.float32)
    return rng.standard_normal((rows, *shape)).astype(np.float32)


@functools.cache
def trained_keras_net(net_name: str) -> Any:
    """``net_name`` built and fitted for TRAINING_EPOCHS on random inputs and targets (seed 0)."""
    import keras

    builder, regressor = KERAS_NETS[net_name]
    keras.utils.set_random_seed(0)
    model = builder(keras)
    shape = tuple(model.inputs[0].shape[1:])
    x = _samples(net_name, shape, TRAINING_ROWS, 0)
    outputs = int(model.outputs[0].shape[-1])
    rng = np.random.default_rng(0)
    if regressor:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        model.fit(x, x, epochs=TRAINING_EPOCHS_AUTOENCODER, batch_size=32, verbose=0)
    else:
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
        model.fit(x, rng.integers(0, outputs, TRAINING_ROWS), epochs=TRAINING_EPOCHS, batch_size=32, verbose=0)
    return model


def export_keras(net_name: str, form: str, opset: int) -> ExportedModel:
    """Export the trained ``net_name`` in ``form`` (``bdyn``, ``b1``, ``b1-nchw``, ``tflite``; see the
    module docstring) at ``opset`` and draw its samples in the layout of the graph input."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    model = trained_keras_net(net_name)
    _, regressor = KERAS_NETS[net_name]
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    function = tf.function(lambda x: model(x, training=False))
    batch = None if form == "bdyn" else 1
    spec = (tf.TensorSpec((batch, *shape), tf.float32, name="x"),)
    if form == "tflite":
        # frozen first: a converter given the Keras model keeps its weights as variables (TFL_VAR_HANDLE),
        # which tf2onnx cannot convert
        frozen = convert_variables_to_constants_v2(function.get_concrete_function(*spec))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.tflite"
            path.write_bytes(converter.convert())
            proto, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
    else:
        nchw = ["x"] if form == "b1-nchw" else None
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset, inputs_as_nchw=nchw)
    samples = _samples(net_name, shape, SAMPLES, 1)
    if form == "b1-nchw":
        samples = np.ascontiguousarray(samples.transpose(0, 3, 1, 2))
    return ExportedModel(proto, {proto.graph.input[0].name: samples}, regressor=regressor)


def _case(net_name: str, form: str, opset: int) -> Case:
    """The case ``keras-NET-FORM`` (``FORM``: ``op13-bdyn``, ``op17-b1``, ``op13-b1-nchw``, ``tflite13-b1``)."""
    tag = f"tflite{opset}-b1" if form == "tflite" else f"op{opset}-{form}"
    batch = "dynamic" if form == "bdyn" else "1"
    exporter = "tf2onnx-tflite" if form == "tflite" else "tf2onnx"
    return Case(f"keras-{net_name}-{tag}", exporter, opset, batch, REQUIRES,
                functools.partial(export_keras, net_name, form, opset))


def keras_cases() -> list[Case]:
    """The matrix of the module docstring."""
    cases = []
    for net in KERAS_NETS:
        cases += [_case(net, "bdyn", 13), _case(net, "b1", 17)]
        if net in IMAGE_NETS:
            cases.append(_case(net, "b1-nchw", 13))
        cases.append(_case(net, "tflite", 13))
    return cases

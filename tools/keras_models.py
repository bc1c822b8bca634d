#!/usr/bin/env python3
"""Keras models exported with tf2onnx: the "other exporter" freeml-tx is judged on.

Needs TensorFlow and tf2onnx, which are NOT project dependencies; run it in a separate venv::

    python -m venv /work/tfenv && /work/tfenv/bin/pip install tensorflow-cpu tf2onnx scikit-learn
    /work/tfenv/bin/python tools/keras_models.py -o build/keras            # every model, opsets 13 and 17
    /work/tfenv/bin/python tools/keras_models.py --fixtures                # tests/fixtures/tf2onnx/

Each model is built in Keras, trained for a few epochs on scikit-learn's digits (8x8, 1797 images),
and exported by ``tf2onnx.convert.from_function`` (opset 13 and 17; batch 1 and a dynamic batch)
to ``<out>/<kind>_op<opset>_b<1|N>.onnx``. Beside each model, ``<kind>.npz`` holds the data in the
layout the exported input expects (``x``: NHWC images ``[n, 8, 8, 1]``, rows as a sequence
``[n, 8, 8]`` or flat pixels ``[n, 64]``; ``y`` the labels; ``split`` marking the images the model
was trained on ``train`` and the others ``test``), and ``<kind>.keras.npy`` the Keras model's own
outputs on ``x`` (what the export must reproduce). ``--fixtures`` writes the few small models the
tests ship (``FIXTURES``), each with a 64-sample npz, into tests/fixtures/tf2onnx/.
The models are checked with ``python tools/check_exports.py <out>`` in the main environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

keras = tf.keras
L = keras.layers
ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = ROOT / "tests" / "fixtures" / "tf2onnx"
#: (kind, opset, dynamic batch) of the models the tests ship.
FIXTURES: tuple[tuple[str, int, bool], ...] = (
    ("mlp_tanh", 13, True), ("cnn_same_maxpool", 13, True), ("cnn_bn_avgpool_same", 17, False),
    ("separable_gmp", 13, True), ("conv1d_gap", 17, True), ("residual_concat", 13, False),
    ("rescale_reshape_zeropad", 17, True), ("leaky_elu_relu6", 13, True), ("cnn_two_channel_dilated", 17, True),
    ("dense_on_maps", 13, True), ("conv1d_dense_gmp", 17, False), ("merge_layers", 13, True),
    ("normalization_input", 17, True), ("upsampling", 13, True), ("upsampling_bilinear", 17, True),
    ("cropping", 13, True), ("layer_norm", 13, True),
    ("lstm_unrolled", 17, False), ("gru_unrolled", 13, True))
FIXTURE_SAMPLES = 64


#: Per-sample shape of each data layout (NHWC for images, [steps, features] for sequences).
LAYOUTS: dict[str, tuple[int, ...]] = {"image": (8, 8, 1), "image2": (8, 8, 2), "sequence": (8, 8), "flat": (64,)}


def _image(layout: str) -> tuple[int, ...]:
    return LAYOUTS[layout]


def mlp(hidden: str) -> Callable[[], keras.Model]:
    """Dense layers on flat pixels with ``hidden`` activations; softmax (or sigmoid) output."""
    def build() -> keras.Model:
        out = "sigmoid" if hidden == "sigmoid" else "softmax"
        return keras.Sequential([keras.Input(_image("flat")), L.Dense(32, activation=hidden),
                                 L.Dense(16, activation=hidden), L.Dense(10, activation=out)])
    return build


def cnn_same_maxpool() -> keras.Model:
    """Conv2D 'same' + MaxPooling2D, Conv2D 'valid', Flatten (NHWC order), Dense."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 3, padding="same", activation="relu"),
                             L.MaxPooling2D(2), L.Conv2D(12, 3, padding="valid", activation="relu"),
                             L.Flatten(), L.Dense(10, activation="softmax")])


def cnn_strides_valid() -> keras.Model:
    """Strided Conv2D 'same' on an even map, strided 'valid' conv, Dropout, Dense."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 3, strides=2, padding="same",
                                                                     activation="relu"),
                             L.Conv2D(12, 2, strides=1, padding="valid", activation="relu"), L.Dropout(0.25),
                             L.Flatten(), L.Dense(10, activation="softmax")])


def cnn_pool_same() -> keras.Model:
    """'same' pools on odd maps (MaxPooling2D and AveragePooling2D pad at the end only)."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 2, padding="valid", activation="relu"),
                             L.MaxPooling2D(2, padding="same"), L.Conv2D(8, 3, padding="same", activation="relu"),
                             L.AveragePooling2D(3, strides=2, padding="same"), L.Flatten(),
                             L.Dense(10, activation="softmax")])


def cnn_bn_avgpool_same() -> keras.Model:
    """Conv2D without bias + BatchNormalization + ReLU, AveragePooling2D 'same' (odd map), Dropout."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 3, padding="valid", use_bias=False),
                             L.BatchNormalization(), L.ReLU(), L.AveragePooling2D(2, padding="same"),
                             L.Dropout(0.3), L.Flatten(), L.Dense(10, activation="softmax")])


def cnn_gap() -> keras.Model:
    """Conv2D, BatchNormalization, GlobalAveragePooling2D, Dense."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(16, 3, padding="same", activation="relu"),
                             L.BatchNormalization(), L.Conv2D(16, 3, padding="same", activation="relu"),
                             L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")])


def depthwise() -> keras.Model:
    """Conv2D, DepthwiseConv2D (multiplier 2), AveragePooling2D 'valid', Flatten, Dense."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(6, 3, padding="same", activation="relu"),
                             L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu"),
                             L.AveragePooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")])


def separable_gmp() -> keras.Model:
    """SeparableConv2D (depthwise + pointwise) and GlobalMaxPooling2D."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 3, padding="same", activation="relu"),
                             L.SeparableConv2D(16, 3, padding="same", activation="relu"),
                             L.GlobalMaxPooling2D(), L.Dense(10, activation="softmax")])


def conv1d_gap() -> keras.Model:
    """Conv1D over the rows of the image as a sequence [8 steps, 8 features], GlobalAveragePooling1D."""
    return keras.Sequential([keras.Input(_image("sequence")), L.Conv1D(16, 3, padding="same", activation="relu"),
                             L.Conv1D(16, 3, padding="valid", activation="relu"), L.GlobalAveragePooling1D(),
                             L.Dense(10, activation="softmax")])


def conv1d_flatten() -> keras.Model:
    """Conv1D with stride, MaxPooling1D, Flatten (step-major order), Dense."""
    return keras.Sequential([keras.Input(_image("sequence")), L.Conv1D(12, 2, strides=1, activation="relu"),
                             L.MaxPooling1D(2), L.Flatten(), L.Dense(10, activation="softmax")])


def leaky_elu_relu6() -> keras.Model:
    """ReLU6 (ReLU(max_value=6)), LeakyReLU and ELU activation layers between convolutions."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 3, padding="same"),
                             L.ReLU(max_value=6.0), L.Conv2D(8, 3, padding="same"), L.LeakyReLU(0.1),
                             L.MaxPooling2D(2), L.Conv2D(8, 3, padding="same"), L.ELU(),
                             L.Flatten(), L.Dense(16), L.LeakyReLU(0.2), L.Dense(10, activation="softmax")])


def residual_concat() -> keras.Model:
    """Functional: a residual Add around two convolutions, then a Concatenate of two branches."""
    x = keras.Input(_image("image"))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    r = L.Conv2D(8, 3, padding="same", activation="relu")(h)
    r = L.Conv2D(8, 3, padding="same")(r)
    h = L.ReLU()(L.Add()([h, r]))
    a = L.Conv2D(4, 1, activation="relu")(h)
    b = L.Conv2D(6, 3, padding="same", activation="relu")(h)
    h = L.Concatenate()([a, b])
    h = L.MaxPooling2D(2)(h)
    y = L.Dense(10, activation="softmax")(L.Flatten()(h))
    return keras.Model(x, y)


def rescale_reshape_zeropad() -> keras.Model:
    """Rescaling(1/255) of raw pixels (flat), Reshape to an image, ZeroPadding2D, Conv 'valid', Reshape."""
    return keras.Sequential([keras.Input(_image("flat")), L.Rescaling(1.0 / 255), L.Reshape((8, 8, 1)),
                             L.ZeroPadding2D(1), L.Conv2D(8, 3, padding="valid", activation="relu"),
                             L.ZeroPadding2D(((0, 1), (1, 0))), L.Conv2D(8, 2, strides=2, activation="relu"),
                             L.Reshape((-1,)), L.Dense(10, activation="softmax")])


def cnn_two_channel_dilated() -> keras.Model:
    """Two input channels (the image and its transpose: tf2onnx transposes the NHWC input), a
    dilated Conv2D, a strided 'same' Conv2D on an odd map (asymmetric padding), Flatten."""
    return keras.Sequential([keras.Input(_image("image2")),
                             L.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu"),
                             L.Conv2D(8, 2, padding="valid", activation="relu"),
                             L.Conv2D(12, 3, strides=2, padding="same", activation="relu"),
                             L.Flatten(), L.Dense(10, activation="softmax")])


def dense_on_maps() -> keras.Model:
    """Dense applied to every pixel of a feature map (MatMul over the channel axis of NHWC), Flatten."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(8, 3, padding="same", activation="relu"),
                             L.MaxPooling2D(2), L.Dense(6, activation="relu"), L.Flatten(),
                             L.Dense(10, activation="softmax")])


def conv1d_dense_gmp() -> keras.Model:
    """Conv1D, Dense on every step, AveragePooling1D 'same', GlobalMaxPooling1D."""
    return keras.Sequential([keras.Input(_image("sequence")), L.Conv1D(12, 3, padding="same", activation="relu"),
                             L.Dense(12, activation="relu"), L.AveragePooling1D(3, strides=2, padding="same"),
                             L.GlobalMaxPooling1D(), L.Dense(10, activation="softmax")])


def permute_reshape_1d() -> keras.Model:
    """Permute((2, 1)) of a sequence (a Transpose inside the model), Reshape to [16, 4], Conv1D."""
    return keras.Sequential([keras.Input(_image("sequence")), L.Permute((2, 1)),
                             L.Conv1D(8, 3, padding="same", activation="relu"), L.Reshape((16, 4)),
                             L.Conv1D(8, 3, activation="relu"), L.Flatten(), L.Dense(10, activation="softmax")])


def merge_layers() -> keras.Model:
    """Functional: Subtract, Maximum and Average of two convolution branches."""
    x = keras.Input(_image("image"))
    a = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    b = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    c = L.Conv2D(8, 1, activation="relu")(x)
    h = L.Average()([L.Subtract()([a, b]), L.Maximum()([b, c])])
    h = L.MaxPooling2D(2)(h)
    y = L.Dense(10, activation="softmax")(L.Flatten()(h))
    return keras.Model(x, y)


def multiply_gate() -> keras.Model:
    """Functional: a sigmoid gate multiplied into a feature map (Multiply of two activations)."""
    x = keras.Input(_image("image"))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    g = L.Conv2D(8, 1, activation="sigmoid")(h)
    h = L.Multiply()([h, g])
    y = L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(h))
    return keras.Model(x, y)


def activations_mix() -> keras.Model:
    """Dense layers with swish, gelu (tanh approximation: tf2onnx cannot convert the exact form's
    Erfc), hard_sigmoid, softplus, selu and softsign activations."""
    layers: list[object] = [keras.Input(_image("flat"))]
    for act in ("swish", "gelu", "hard_sigmoid", "softplus", "selu", "softsign"):
        layers.append(L.Dense(24, activation=act if act != "gelu" else None))
        if act == "gelu":
            layers.append(L.Activation(lambda t: keras.activations.gelu(t, approximate=True)))
    return keras.Sequential([*layers, L.Dense(10, activation="softmax")])


def dense_batchnorm() -> keras.Model:
    """Dense (no bias) + BatchNormalization + ReLU, Dropout, and a BatchNormalization before the output."""
    return keras.Sequential([keras.Input(_image("flat")), L.Dense(32, use_bias=False), L.BatchNormalization(),
                             L.ReLU(), L.Dropout(0.2), L.Dense(16, activation="relu"), L.BatchNormalization(),
                             L.Dense(10, activation="softmax")])


def normalization_input() -> keras.Model:
    """Per-channel standardisation of an NHWC input: Rescaling with a per-channel scale and offset
    (what Keras' Normalization computes; tf2onnx exports that layer's statistics, adapted or
    given, as extra graph inputs instead of constants, a model nobody can feed)."""
    x, _, _ = digits_data("image2", 16.0)
    mean, std = x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))
    norm = L.Rescaling(scale=(1.0 / std).tolist(), offset=(-mean / std).tolist())
    return keras.Sequential([keras.Input(_image("image2")), norm, L.Conv2D(8, 3, padding="same", activation="relu"),
                             L.AveragePooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")])


def layer_norm() -> keras.Model:
    """LayerNormalization after a Dense layer (mean and variance computed at run time)."""
    return keras.Sequential([keras.Input(_image("flat")), L.Dense(32, activation="relu"), L.LayerNormalization(),
                             L.Dense(10, activation="softmax")])


def upsampling() -> keras.Model:
    """UpSampling2D (nearest) between convolutions."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(4, 3, strides=2, padding="same",
                                                                     activation="relu"),
                             L.UpSampling2D(2), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                             L.Dense(10, activation="softmax")])


def upsampling_bilinear() -> keras.Model:
    """UpSampling2D(interpolation='bilinear') between convolutions (a linear Resize, half_pixel)."""
    return keras.Sequential([keras.Input(_image("image")), L.Conv2D(4, 3, strides=2, padding="same",
                                                                     activation="relu"),
                             L.UpSampling2D(2, interpolation="bilinear"), L.Conv2D(4, 3, activation="relu"),
                             L.Flatten(), L.Dense(10, activation="softmax")])


def cropping() -> keras.Model:
    """Cropping2D of the border pixels before a convolution."""
    return keras.Sequential([keras.Input(_image("image")), L.Cropping2D(1), L.Conv2D(8, 3, activation="relu"),
                             L.Flatten(), L.Dense(10, activation="softmax")])


def recurrent(layer: str) -> Callable[[], keras.Model]:
    """An unrolled ``layer`` (LSTM or GRU, ``unroll=True``: tf2onnx writes every step's cell; a
    rolled one becomes an ONNX Loop) over the rows of the image as a sequence, Dense head."""
    def build() -> keras.Model:
        return keras.Sequential([keras.Input(_image("sequence")), getattr(L, layer)(16, unroll=True),
                                 L.Dense(10, activation="softmax")])
    return build


#: kind -> (builder, input layout, pixel scale of the data: 16 = the digits' 0..16, 255 = raw bytes).
MODELS: dict[str, tuple[Callable[[], keras.Model], str, float]] = {
    "mlp_relu": (mlp("relu"), "flat", 16.0),
    "mlp_sigmoid": (mlp("sigmoid"), "flat", 16.0),
    "mlp_tanh": (mlp("tanh"), "flat", 16.0),
    "cnn_same_maxpool": (cnn_same_maxpool, "image", 16.0),
    "cnn_strides_valid": (cnn_strides_valid, "image", 16.0),
    "cnn_pool_same": (cnn_pool_same, "image", 16.0),
    "cnn_bn_avgpool_same": (cnn_bn_avgpool_same, "image", 16.0),
    "cnn_gap": (cnn_gap, "image", 16.0),
    "depthwise": (depthwise, "image", 16.0),
    "separable_gmp": (separable_gmp, "image", 16.0),
    "conv1d_gap": (conv1d_gap, "sequence", 16.0),
    "conv1d_flatten": (conv1d_flatten, "sequence", 16.0),
    "leaky_elu_relu6": (leaky_elu_relu6, "image", 16.0),
    "residual_concat": (residual_concat, "image", 16.0),
    "rescale_reshape_zeropad": (rescale_reshape_zeropad, "flat", 255.0),
    "cnn_two_channel_dilated": (cnn_two_channel_dilated, "image2", 16.0),
    "dense_on_maps": (dense_on_maps, "image", 16.0),
    "conv1d_dense_gmp": (conv1d_dense_gmp, "sequence", 16.0),
    "permute_reshape_1d": (permute_reshape_1d, "sequence", 16.0),
    "merge_layers": (merge_layers, "image", 16.0),
    "multiply_gate": (multiply_gate, "image", 16.0),
    "activations_mix": (activations_mix, "flat", 16.0),
    "dense_batchnorm": (dense_batchnorm, "flat", 16.0),
    "normalization_input": (normalization_input, "image2", 16.0),
    "layer_norm": (layer_norm, "flat", 16.0),
    "upsampling": (upsampling, "image", 16.0),
    "upsampling_bilinear": (upsampling_bilinear, "image", 16.0),
    "cropping": (cropping, "image", 16.0),
    "lstm_unrolled": (recurrent("LSTM"), "sequence", 16.0),
    "gru_unrolled": (recurrent("GRU"), "sequence", 16.0),
}


def digits_data(layout: str, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The digits in ``layout``, pixels 0..16 divided by 16 (or raw 0..255 when ``scale`` is 255),
    labels, and a ``split`` array (three quarters ``train``, the rest ``test``)."""
    digits = load_digits()
    pixels = digits.images.astype(np.float32)
    x = pixels / 16.0 if scale == 16.0 else np.round(pixels * (255.0 / 16.0))
    if layout == "image2":  # the image and its transpose as two channels
        x = np.stack([x, x.transpose(0, 2, 1)], axis=-1)
    x = x.reshape((len(x), *_image(layout))).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    split = np.full(len(x), "test", dtype="<U5")
    split[order[: 3 * len(x) // 4]] = "train"
    return x, y, split


def train(kind: str, epochs: int, seed: int = 0) -> tuple[keras.Model, np.ndarray, np.ndarray, np.ndarray]:
    """Build and train ``kind``; returns the model and its data (x, y, split)."""
    builder, layout, scale = MODELS[kind]
    keras.utils.set_random_seed(seed)
    model = builder()
    x, y, split = digits_data(layout, scale, seed)
    sigmoid_out = model.layers[-1].get_config().get("activation") == "sigmoid"
    loss = "binary_crossentropy" if sigmoid_out else "sparse_categorical_crossentropy"
    target = np.eye(10, dtype=np.float32)[y] if sigmoid_out else y
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"] if not sigmoid_out else [])
    train_rows = split == "train"
    model.fit(x[train_rows], target[train_rows], epochs=epochs, batch_size=32, verbose=0)
    return model, x, y, split


def export(model: keras.Model, path: Path, opset: int, dynamic: bool) -> None:
    """tf2onnx of the model's inference function, input ``x`` with batch None or 1."""
    shape = (None if dynamic else 1, *model.inputs[0].shape[1:])
    spec = (tf.TensorSpec(shape, tf.float32, name="x"),)
    function = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(function, input_signature=spec, opset=opset, output_path=str(path))


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    """Top-1 accuracy of the Keras model on ``rows``."""
    return float((model.predict(x[rows], verbose=0).argmax(axis=1) == y[rows]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "build" / "keras", help="output folder")
    parser.add_argument("--only", nargs="*", default=None, metavar="KIND",
                        help=f"some of {', '.join(MODELS)} (with --fixtures: some of the fixtures)")
    parser.add_argument("--opsets", default="13,17", help="comma-separated opsets (default 13,17)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per model (default 10)")
    parser.add_argument("--fixtures", action="store_true",
                        help=f"write the test fixtures ({len(FIXTURES)} models) into {FIXTURE_DIR.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.fixtures:
        plan = {kind: [(opset, dynamic)] for kind, opset, dynamic in FIXTURES if not args.only or kind in args.only}
        out = FIXTURE_DIR
    else:
        opsets = [int(o) for o in args.opsets.split(",")]
        kinds = args.only or list(MODELS)
        plan = {kind: [(o, d) for o in opsets for d in (False, True)] for kind in kinds}
        out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for kind, variants in plan.items():
        model, x, y, split = train(kind, args.epochs)
        test_rows = split == "test"
        if args.fixtures:
            # a fixed sample of held-out images keeps the files small
            rows = np.flatnonzero(test_rows)[:FIXTURE_SAMPLES]
            x, y, split = x[rows], y[rows], split[rows]
        np.savez_compressed(out / f"{kind}.npz", x=x, y=y, split=split)
        if not args.fixtures:
            np.save(out / f"{kind}.keras.npy", model.predict(x, verbose=0))
        for opset, dynamic in variants:
            path = out / f"{kind}_op{opset}_b{'N' if dynamic else '1'}.onnx"
            export(model, path, opset, dynamic)
            print(f"{path.name}: {path.stat().st_size} bytes, keras test accuracy "
                  f"{100 * accuracy(model, x, y, split == 'test'):.1f}%", flush=True)


if __name__ == "__main__":
    main()

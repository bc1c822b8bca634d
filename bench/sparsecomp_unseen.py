"""SparseComp through the CLI on models that are not samples: compile to a FRAM budget that needs pruning,
with and without labels, then make, verify and measure on a held-out test part.

    python bench/sparsecomp_unseen.py                        # every model, both modes
    python bench/sparsecomp_unseen.py --models seq_conv1d --modes label-free --keep /tmp/unseen

The models are trained here (deterministic seeds; torch 2.x legacy exporter, ``dynamo=False``, and
``torch.export`` (``dynamo=True``); skl2onnx; Keras 3 through tf2onnx when tensorflow is installed),
each with an npz of its inputs (``x``, or one array per input name), ``y`` and ``split`` (the samples a
model trained on are ``train``, the rest half ``val``, half ``test``) and the same without ``y``:

- ``bn_stride_cnn``: Conv+BatchNorm (no conv bias) and two stride-2 convs, then two Linear, on
  sklearn's digits upsampled to 1x16x16;
- ``seq_conv1d``: Conv1d, MaxPool1d, a dilated stride-2 Conv1d + BatchNorm1d, Conv1d, two Linear, on
  synthetic 3x64 sequences (6 classes: a sine of one of 3 frequencies on channel 0 or 1 in noise);
- ``res_cat``: a stride-2 stem, a residual block (Add), a Concat of a 1x1 and a 3x3 conv, MaxPool,
  two Linear, on 1x16x16 digits;
- ``skl_mlp``: scikit-learn MLPClassifier(128, 64, relu) on the 8x8 digits (ZipMap output);
- ``mlp_nobias``: Linear without bias, ReLU6, Dropout, LeakyReLU, a final Softmax, dynamic batch;
- ``sep_conv1d``: a depthwise-separable Conv1d block with BatchNorm1d and AdaptiveAvgPool1d;
- ``two_branch``: two Linear branches (ReLU, clamp) joined by Concat; exported with a fixed batch of 2;
- ``dynamo_cnn``: torch.export (``dynamo=True``, opset 18, weights in an external ``.onnx.data``
  file): Conv+BN, MaxPool, a bias-free Conv+BN, HardSwish, a stride-2 Conv, GELU, two Linear, on the
  digits as 3x16x16 colour images;
- ``keras_cnn``: a channel-last Keras CNN (Conv2D + BatchNormalization, DepthwiseConv2D, 1x1 and 3x3
  Conv2D, BatchNormalization, GlobalAveragePooling2D, Dense, softmax inside the model) on 16x16x1
  digits, tf2onnx ``from_function`` at opset 13;
- ``skl_mlpreg``: scikit-learn MLPRegressor(128, 96) on Friedman #1 (10 features, one target): a
  regressor, so the table's accuracy columns are R^2 (in percent) and the drop is in points of R^2;
- ``two_input``: two graph inputs (a 1x16x16 image through a conv, its 8x8 thumbnail through a tanh
  Linear), joined by Concat;
- ``har_conv1d``: HAR-like 3x128 accelerometer windows (6 activities: three gaits, three postures),
  Conv1d + BatchNorm1d and MaxPool1d three times, two Linear; legacy exporter at opset 13.

Data-file variants (``MODEL@VARIANT``, :func:`make_variant`): ``har_conv1d@onehot`` (one-hot ``y``),
``dynamo_cnn@floaty`` (``y`` as float class values), ``dynamo_cnn@nhwc`` (the images stored
channel-last: a clear error is the expected outcome), ``keras_cnn@nosplit`` (no ``split``: the default
seeded 60/20/20 split, whose test part then includes samples the original trained on) and
``har_conv1d@big`` (20x the samples, the extra ones marked ``train``).

Per run: ``freeml-tx MODEL -o DIR --data D --fram F --max-drop 1.0 --json``, ``make -C DIR``,
``freeml-tx verify DIR --data D-with-labels --json``, and the top-1 accuracy on the test part of the
original (float), the compressed model (float, ``DIR/normalized.onnx``) and its C build. Printed: the
budget, the Q15 parameter bytes of the original and of the compressed model, the ratio to float32,
the number of sparsify steps (0: `separate` alone met the budget), the accuracies, the drop, the
verify verdict and the time; a failed compile prints its error. Never part of the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from passes.compress_size import model_size  # noqa: E402
from passes.train import build_net, predict_logits  # noqa: E402
from transpiler.cli import main as cli  # noqa: E402
from transpiler.cli.run_cmd import execute  # noqa: E402
from transpiler.data import input_specs, load_dataset  # noqa: E402
from transpiler.manager import run_pipeline  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext, registry  # noqa: E402

MAX_DROP = 1.0
FRAM = {"bn_stride_cnn": "48KiB", "seq_conv1d": "32KiB", "res_cat": "48KiB", "skl_mlp": "16KiB",
        "mlp_nobias": "24KiB", "sep_conv1d": "40KiB", "two_branch": "24KiB", "dynamo_cnn": "64KiB",
        "keras_cnn": "80KiB", "skl_mlpreg": "12KiB", "two_input": "56KiB", "har_conv1d": "56KiB"}
VARIANTS = {"onehot": "har_conv1d", "floaty": "dynamo_cnn", "nhwc": "dynamo_cnn", "nosplit": "keras_cnn",
            "big": "har_conv1d"}
"""Data-file variants (run ``MODEL@VARIANT``): the model's data stored differently (:func:`make_variant`)."""
RUNS = list(FRAM) + [f"{model}@{variant}" for variant, model in VARIANTS.items()]


# --------------------------------------------------------------------------- data
def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits in [0, 1], [n, 1, size, size] (bilinear upsampling from 8x8), shuffled (seed 0)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images.astype(np.float32) / 16.0)[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    order = np.random.default_rng(0).permutation(len(d.target))
    return x.numpy()[order], d.target.astype(np.int64)[order]


def _sequences(n: int = 2400, length: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3, length] sequences, 6 classes: a sine (3 frequencies) on channel 0 or 1 in noise (sigma 1.2),
    a random ramp on channel 2."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, n)
    t = np.arange(length) / length
    freq = np.array([2.0, 4.0, 7.0])[y % 3]
    phase = rng.random(n) * 2 * np.pi
    x = rng.normal(0, 1.2, (n, 3, length))
    x[np.arange(n), y // 3] += np.sin(2 * np.pi * freq[:, None] * t[None] + phase[:, None])
    x[:, 2] += (rng.random(n) * 2 - 1)[:, None] * t[None]
    return x.astype(np.float32), y.astype(np.int64)


def _colour_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 16x16 digits as [n, 3, 16, 16] RGB: each digit in a random colour (seed 1) on a dim noisy
    background of another."""
    x, y = _digits(16)
    rng = np.random.default_rng(1)
    ink, paper = rng.uniform(0.3, 1.0, (len(x), 3, 1, 1)), rng.uniform(0.0, 0.3, (len(x), 3, 1, 1))
    rgb = x * ink + (1 - x) * paper + rng.normal(0, 0.05, (len(x), 3, 16, 16))
    return rgb.astype(np.float32), y


def _har(n: int = 3000, length: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3, length] accelerometer-like windows (x, y, z in g at 50 Hz), 6 HAR-style activities:
    walking, upstairs, downstairs (gait at 1.6-2.2 Hz with its harmonic, differing in amplitude, tilt
    and a vertical drift), sitting, standing, lying (gravity on a posture-dependent axis, small
    tremor); random sensor orientation jitter and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    t = np.arange(length) / 50.0
    gravity = np.array([[0.0, 0.0, 1.0], [0.0, 0.3, 0.95], [0.0, -0.3, 0.95],
                        [0.6, 0.0, 0.8], [0.0, 0.0, 1.0], [1.0, 0.0, 0.1]])[y]
    gravity = gravity + rng.normal(0, 0.12, (n, 3))
    x = np.repeat(gravity[:, :, None], length, axis=2)
    moving = y < 3
    freq = rng.uniform(1.6, 2.2, n) * np.where(y == 2, 1.15, 1.0)
    phase = rng.random(n) * 2 * np.pi
    amp = np.array([0.35, 0.45, 0.55, 0, 0, 0])[y] * rng.uniform(0.7, 1.3, n)
    gait = (np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])
            + 0.4 * np.sin(4 * np.pi * freq[:, None] * t + 2 * phase[:, None]))
    axis_mix = rng.normal([0.3, 0.3, 1.0], 0.2, (n, 3))
    x += moving[:, None, None] * amp[:, None, None] * axis_mix[:, :, None] * gait[:, None, :]
    x[:, 2] += np.array([0, 0.1, -0.1, 0, 0, 0])[y][:, None] * t / t[-1]
    x += rng.normal(0, 0.15, x.shape) + (~moving)[:, None, None] * rng.normal(0, 0.03, x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def _split(n: int, trained: int) -> np.ndarray:
    """``train`` for the first ``trained`` samples, then half ``val``, half ``test``."""
    rest = n - trained
    return np.array(["train"] * trained + ["val"] * (rest // 2) + ["test"] * (rest - rest // 2))


# --------------------------------------------------------------------------- models
def _torch_models() -> dict[str, Callable[[], Any]]:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class BnStrideCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
            self.c2, self.b2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32)
            self.c3, self.b3 = nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32)
            self.fc1, self.fc2 = nn.Linear(512, 96), nn.Linear(96, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.b1(self.c1(x)))
            x = F.relu(self.b2(self.c2(x)))
            x = F.relu(self.b3(self.c3(x)))
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    class SeqNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.p1 = nn.Conv1d(3, 16, 5, padding=2), nn.MaxPool1d(2)
            self.c2 = nn.Conv1d(16, 32, 5, stride=2, padding=4, dilation=2)
            self.b2, self.c3 = nn.BatchNorm1d(32), nn.Conv1d(32, 32, 3, padding=1)
            self.fc1, self.fc2 = nn.Linear(512, 64), nn.Linear(64, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.p1(F.relu(self.c1(x)))
            x = F.relu(self.c3(F.relu(self.b2(self.c2(x)))))
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    class ResCat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 16, 3, stride=2, padding=1)
            self.r1, self.r2 = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
            self.a, self.b = nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 3, padding=1)
            self.pool, self.fc1, self.fc2 = nn.MaxPool2d(2), nn.Linear(512, 64), nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.stem(x))
            x = F.relu(x + self.r2(F.relu(self.r1(x))))
            x = self.pool(torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1))
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    class MlpNoBias(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.drop = nn.Linear(256, 128, bias=False), nn.Dropout(0.2)
            self.l2, self.l3 = nn.Linear(128, 64), nn.Linear(64, 10)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            x = self.drop(F.relu6(self.l1(x.view(x.shape[0], -1))))
            return self.l3(F.leaky_relu(self.l2(x), 0.05))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.softmax(self.logits(x), dim=1)

    class SepConv1d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv1d(3, 24, 7, padding=3)
            self.dw, self.pw = nn.Conv1d(24, 24, 5, padding=2, groups=24, stride=2), nn.Conv1d(24, 48, 1)
            self.bn, self.c3 = nn.BatchNorm1d(48), nn.Conv1d(48, 48, 3, padding=1)
            self.gap, self.fc = nn.AdaptiveAvgPool1d(1), nn.Linear(48, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.c1(x))
            x = F.relu(self.bn(self.pw(F.relu(self.dw(x)))))
            return self.fc(torch.flatten(self.gap(F.relu(self.c3(x))), 1))

    class TwoBranch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(256, 96), nn.Linear(256, 32)
            self.h, self.o = nn.Linear(128, 64), nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.flatten(x, 1)
            z = torch.cat([F.relu(self.a(x)), torch.clamp(self.b(x), 0, 6)], dim=1)
            return self.o(F.relu(self.h(z)))

    class DynamoCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(3, 24, 3, padding=1), nn.BatchNorm2d(24)
            self.c2, self.b2 = nn.Conv2d(24, 48, 3, padding=1, bias=False), nn.BatchNorm2d(48)
            self.c3 = nn.Conv2d(48, 48, 3, stride=2, padding=1)
            self.fc1, self.fc2 = nn.Linear(48 * 4 * 4, 64), nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
            x = F.avg_pool2d(F.relu(self.c3(F.hardswish(self.b2(self.c2(x))))), 1)
            return self.fc2(F.gelu(self.fc1(x.flatten(1))))

    class TwoInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.pool = nn.Conv2d(1, 16, 3, padding=1), nn.MaxPool2d(2)
            self.img = nn.Linear(16 * 8 * 8, 96)
            self.side = nn.Linear(64, 32)
            self.head, self.out = nn.Linear(128, 64), nn.Linear(64, 10)

        def forward(self, image: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor:
            a = F.relu(self.img(self.pool(F.relu(self.conv(image))).flatten(1)))
            b = torch.tanh(self.side(thumb))
            return self.out(F.relu(self.head(torch.cat([a, b], dim=1))))

    class HarNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv1d(3, 32, 9, padding=4), nn.BatchNorm1d(32)
            self.c2, self.b2 = nn.Conv1d(32, 64, 5, padding=2), nn.BatchNorm1d(64)
            self.c3 = nn.Conv1d(64, 64, 5, padding=2)
            self.fc1, self.fc2 = nn.Linear(64 * 16, 64), nn.Linear(64, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.max_pool1d(F.relu(self.b1(self.c1(x))), 2)
            x = F.max_pool1d(F.relu(self.b2(self.c2(x))), 2)
            x = F.max_pool1d(F.relu(self.c3(x)), 2)
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    return {"bn_stride_cnn": BnStrideCNN, "seq_conv1d": SeqNet, "res_cat": ResCat, "mlp_nobias": MlpNoBias,
            "sep_conv1d": SepConv1d, "two_branch": TwoBranch, "dynamo_cnn": DynamoCNN, "two_input": TwoInput,
            "har_conv1d": HarNet}


def _train_torch(model: Any, x: np.ndarray | tuple[np.ndarray, ...], y: np.ndarray, trained: int,
                 epochs: int) -> None:
    """Adam (lr 3e-3, batch 64) on the first ``trained`` samples (``x``: one array per model input);
    cross-entropy on the logits (the model's ``logits`` method when its forward ends in a softmax)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xs = tuple(torch.tensor(a[:trained]) for a in (x if isinstance(x, tuple) else (x,)))
    yt = torch.tensor(y[:trained])
    logits = getattr(model, "logits", model)
    for _ in range(epochs):
        model.train()
        for rows in torch.randperm(trained).split(64):
            loss = F.cross_entropy(logits(*(a[rows] for a in xs)), yt[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def _keras_cnn(folder: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """A channel-last Keras CNN (Conv2D, BatchNormalization, DepthwiseConv2D, GlobalAveragePooling2D,
    Dense, softmax in the model) on [n, 16, 16, 1] digits, exported by tf2onnx (``from_function``:
    ``from_keras`` needs Keras 2) at opset 13 with a dynamic batch."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    import tf2onnx

    x, y = _digits(16)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    trained = int(0.8 * len(x))
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((16, 16, 1)), layers.Conv2D(32, 3, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=0.9), layers.ReLU(),
        layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(64, 1, activation="relu"), layers.Conv2D(96, 3, padding="same", activation="relu"),
        layers.BatchNormalization(momentum=0.9), layers.GlobalAveragePooling2D(), layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x[:trained], y[:trained], epochs=30, batch_size=32, verbose=0)
    spec = (tf.TensorSpec((None, 16, 16, 1), tf.float32, name="input"),)
    function = tf.function(lambda t: model(t, training=False))
    tf2onnx.convert.from_function(function, input_signature=spec, opset=13,
                                  output_path=str(folder / "keras_cnn.onnx"))
    return x, y, trained


def _friedman(n: int = 2400) -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1 regression (10 features, 5 informative; noise 0.5; seed 0), target centred and scaled."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=n, n_features=10, noise=0.5, random_state=0)
    return x.astype(np.float32), ((y - 14.4) / 5.0).astype(np.float32)


def make_model(name: str, folder: Path) -> None:
    """Train ``name``, write ``folder/name.onnx``, ``name.npz`` (inputs, y, split) and ``name_nolabels.npz``."""
    inputs: dict[str, np.ndarray]
    if name in ("skl_mlp", "skl_mlpreg"):
        from skl2onnx import to_onnx
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        if name == "skl_mlp":
            x, y = _digits(8)
            x = x.reshape(len(x), 64)
            trained = 1400
            est = MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", max_iter=300, random_state=0)
        else:
            x, y = _friedman()
            trained = 1600
            est = MLPRegressor(hidden_layer_sizes=(128, 96), activation="relu", max_iter=400, random_state=0)
        est.fit(x[:trained], y[:trained])
        (folder / f"{name}.onnx").write_bytes(to_onnx(est, x[:1], target_opset=13).SerializeToString())
        inputs = {"x": x}
    elif name == "keras_cnn":
        x, y, trained = _keras_cnn(folder)
        inputs = {"x": x}
    else:
        import torch

        torch.manual_seed(0)
        if name == "two_input":
            x, y = _digits(16)
            inputs = {"image": x, "thumb": _digits(8)[0].reshape(len(x), 64)}
        elif name == "dynamo_cnn":
            x, y = _colour_digits()
            inputs = {"input": x}
        elif name == "har_conv1d":
            x, y = _har()
            inputs = {"input": x}
        else:
            x, y = _sequences() if "conv1d" in name else _digits(16)
            inputs = {"input": x}
        trained = int(0.8 * len(x))
        model = _torch_models()[name]()
        _train_torch(model, tuple(inputs.values()), y, trained, 25 if "conv1d" in name else 30)
        names = list(inputs)
        example = tuple(torch.zeros(2, *a.shape[1:]) for a in inputs.values())
        dynamic = None if name == "two_branch" else {**{k: {0: "batch"} for k in names}, "out": {0: "batch"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)     # the legacy exporter, on purpose
            if name == "dynamo_cnn":
                with contextlib.redirect_stdout(io.StringIO()):
                    torch.onnx.export(model, example, str(folder / f"{name}.onnx"), dynamo=True, opset_version=18,
                                      input_names=names, output_names=["out"], dynamic_axes=dynamic)
            else:
                torch.onnx.export(model, example, str(folder / f"{name}.onnx"), dynamo=False, input_names=names,
                                  output_names=["out"], opset_version=13 if name == "har_conv1d" else 17,
                                  dynamic_axes=dynamic)
    split = _split(len(y), trained)
    np.savez(folder / f"{name}.npz", **inputs, y=y, split=split)
    np.savez(folder / f"{name}_nolabels.npz", **inputs, split=split)


def make_variant(run: str, folder: Path) -> None:
    """``folder/MODEL@VARIANT.npz`` and ``..._nolabels.npz`` from the model's data (see VARIANTS):

    - ``onehot``: ``y`` as one-hot float32 rows ``[n, classes]``;
    - ``floaty``: ``y`` as float64 class values (``3.0``);
    - ``nhwc``: images stored channel-last ``[n, H, W, C]`` for the channel-first model;
    - ``nosplit``: no ``split`` array (the default seeded 60/20/20 split applies);
    - ``big``: 20x the samples (fresh draws of the same generator), the extra ones marked ``train``.
    """
    model, variant = run.split("@")
    with np.load(folder / f"{model}.npz") as base:
        arrays = {k: base[k] for k in base.files}
    if variant == "onehot":
        arrays["y"] = np.eye(int(arrays["y"].max()) + 1, dtype=np.float32)[arrays["y"]]
    elif variant == "floaty":
        arrays["y"] = arrays["y"].astype(np.float64)
    elif variant == "nhwc":
        arrays["input"] = np.ascontiguousarray(np.moveaxis(arrays["input"], 1, -1))
    elif variant == "nosplit":
        del arrays["split"]
    elif variant == "big":
        extra_x, extra_y = _har(19 * len(arrays["y"]), seed=1)
        arrays = {"input": np.concatenate([arrays["input"], extra_x]), "y": np.concatenate([arrays["y"], extra_y]),
                  "split": np.concatenate([arrays["split"], np.full(len(extra_y), "train")])}
    np.savez(folder / f"{run}.npz", **arrays)
    np.savez(folder / f"{run}_nolabels.npz", **{k: v for k, v in arrays.items() if k != "y"})


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One compile + make + verify of one model in one mode (accuracies: fractions on the test part)."""

    model: str
    mode: str
    fram: str
    budget: int | None = None
    size_before: int | None = None
    size_after: int | None = None
    float32_bytes: int | None = None
    steps: int | None = None
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    accuracy_c: float | None = None
    verify: str | None = None
    seconds: float | None = None
    error: str | None = None


def _cli_json(argv: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    """Run the CLI in-process; its exit code, its --json document (None on failure) and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    try:
        doc = json.loads(out.getvalue())
    except json.JSONDecodeError:
        doc = None
    return code, doc, err.getvalue().strip()


def _score(outputs: np.ndarray, labels: np.ndarray, regressor: bool) -> float:
    """Top-1 accuracy of class scores, or a regressor's R^2, on ``labels``."""
    if regressor:
        t = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
        o = np.asarray(outputs, dtype=np.float64).reshape(len(labels), -1)
        return float(1 - ((o - t) ** 2).sum() / ((t - t.mean(axis=0)) ** 2).sum())
    return float((outputs.reshape(len(labels), -1).argmax(axis=1) == np.asarray(labels)).mean())


def run_once(name: str, mode: str, folder: Path) -> Run:
    """Compile ``name`` (a model, or ``MODEL@VARIANT``: its data stored otherwise) in ``mode`` to its
    FRAM budget, build, verify and measure (see the module docstring)."""
    model = name.split("@")[0]
    run = Run(name, mode, FRAM[model])
    labelled, data = folder / f"{name}.npz", folder / (f"{name}.npz" if mode == "labelled" else f"{name}_nolabels.npz")
    out = folder / f"build_{name}_{mode}"
    start = time.perf_counter()
    code, doc, err = _cli_json([str(folder / f"{model}.onnx"), "-o", str(out), "--data", str(data), "--fram",
                                FRAM[model], "--max-drop", f"{MAX_DROP:g}", "--json"])
    run.seconds = round(time.perf_counter() - start, 1)
    (folder / f"{name}_{mode}.log").write_text(err + "\n")
    if code != 0 or doc is None:
        run.error = " / ".join(line.strip() for line in err.splitlines()[:3]) if err else f"exit code {code}"
        return run
    comp = doc.get("compression") or {}
    run.budget, run.size_after = comp.get("budget"), comp.get("size_after")
    run.float32_bytes, run.steps = comp.get("float32_bytes"), comp.get("steps")
    made = subprocess.run(["make", "-s", "-C", str(out)], capture_output=True, text=True)
    if made.returncode != 0:
        run.error = "make failed: " + (made.stderr or made.stdout).strip().splitlines()[-1]
        return run
    code, verdict, err = _cli_json(["verify", str(out), "--data", str(labelled), "--json"])
    if verdict is None:
        run.verify = f"error: {err.splitlines()[0] if err else code}"
    else:
        rows = [row for row in verdict["outputs"] if "agreement" in row]
        worst = f"{100 * min(row['agreement'] for row in rows):.1f} %" if rows else "values"
        bad = [f"{row['output']} max abs error {row['max_abs_error']:.3g} > {row['error_bound']:.3g}"
               for row in verdict["outputs"] if row.get("error_bound") is not None
               and row["max_abs_error"] > row["error_bound"]]
        run.verify = f"{'PASS' if verdict['pass'] else 'FAIL'} {worst}" + (f" ({'; '.join(bad)})" if bad else "")
    registry()
    original = OnnxModel.from_proto(onnx.load(str(folder / f"{model}.onnx")), model)
    original, _ = run_pipeline(original, "normalize", PassContext(), verify=False)
    test = load_dataset(labelled, input_specs(original.graph)).split()["test"]
    regressor = np.asarray(test.labels).dtype.kind == "f"
    run.size_before = model_size(original).total
    run.accuracy_before = _score(predict_logits(build_net(original), test), test.labels, regressor)
    compressed = OnnxModel.from_proto(onnx.load(str(out / "normalized.onnx")), model)
    run.accuracy_after = _score(predict_logits(build_net(compressed), test), test.labels, regressor)
    manifest, _raw, real = execute(str(out), test.inputs)
    scores = next(pt["name"] for pt in manifest["outputs"] if pt["name"] != manifest.get("class_output"))
    run.accuracy_c = _score(real[scores], test.labels, regressor)
    return run


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_runs(runs: list[Run]) -> None:
    """One line per run."""
    print(f"{'model':<14} {'mode':<10} {'fram':>6} {'budget':>7} {'Q15 before':>10} {'after':>7} {'ratio':>6} "
          f"{'steps':>5} {'test before':>11} {'after':>6} {'C':>6} {'drop':>6} {'time s':>6}  verify")
    for r in runs:
        head = f"{r.model:<14} {r.mode:<10} {r.fram:>6}"
        if r.error:
            print(f"{head}  FAILED after {r.seconds} s: {r.error}")
            continue
        ratio = f"{r.float32_bytes / r.size_after:.1f}x" if r.float32_bytes and r.size_after else "-"
        drop = "-" if r.accuracy_before is None or r.accuracy_after is None else \
            f"{100 * (r.accuracy_before - r.accuracy_after):+.1f}"
        print(f"{head} {r.budget or 0:>7,} {r.size_before or 0:>10,} {r.size_after or 0:>7,} {ratio:>6} "
              f"{r.steps if r.steps is not None else '-':>5} {_pct(r.accuracy_before):>11} {_pct(r.accuracy_after):>6} "
              f"{_pct(r.accuracy_c):>6} {drop:>6} {r.seconds:>6.1f}  {r.verify}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=RUNS, choices=RUNS,
                        help="models, and MODEL@VARIANT for a data-file variant (VARIANTS)")
    parser.add_argument("--modes", nargs="+", default=["labelled", "label-free"], choices=["labelled", "label-free"])
    parser.add_argument("--keep", metavar="DIR",
                        help="write the models, data and builds here (default: a temporary folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            model = name.split("@")[0]
            if not (folder / f"{model}.onnx").exists():
                make_model(model, folder)
            if "@" in name and not (folder / f"{name}.npz").exists():
                make_variant(name, folder)
            for mode in args.modes:
                runs.append(run_once(name, mode, folder))
                print_runs(runs[-1:])
                sys.stdout.flush()
    print()
    print_runs(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

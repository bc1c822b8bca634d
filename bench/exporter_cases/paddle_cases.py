"""PaddlePaddle cases: ``paddle.nn`` layers of the shapes an MCU user deploys, exported by paddle2onnx.

The nets (``PADDLE_NETS``), each trained briefly (``TRAINING_STEPS`` full-batch Adam steps, seed 0)
on scikit-learn's digits (or diabetes for the regressor, see ``common.structured_data``):

- ``mlp_relu`` (with bias), ``mlp_gelu`` (Paddle's exact, erf GELU, a final Softmax),
  ``mlp_tanh_nobias`` (``bias_attr=False``), ``mlp_sigmoid``, ``mlp_leaky`` (LeakyReLU 0.1), on 64
  flat pixels;
- ``cnn``: an NCHW 1x8x8 image, Conv2D + BatchNorm2D + ReLU + MaxPool2D, Conv2D + ReLU + AvgPool2D,
  Flatten, Linear, Softmax; ``cnn_nhwc``: the same on an 8x8x1 NHWC image, transposed to NCHW in
  the model (paddle2onnx 2.0 aborts the process on ``data_format="NHWC"`` convolutions: "Cannot
  support input with NHWC format");
- ``dwsep``: a depthwise-separable CNN (``groups`` = channels, stride 2, then a 1x1 conv) and
  AdaptiveAvgPool2D(1);
- ``conv1d``: Conv1D on [8 features, 8 steps] (stride 2, then unpadded), AdaptiveAvgPool1D(1), Linear;
- ``residual``: a conv stem and a residual block (conv-BN-ReLU-conv-BN + the identity, ReLU),
  global average pool, Linear;
- ``layernorm``: Linear + ReLU + LayerNorm + Linear;
- ``regressor``: diabetes (10 features), Linear 16 + ReLU + Linear 1, judged by value;

and (``EXTRA_NETS``):

- ``mlp_bn_tanh_gelu``: Linear (no bias) + BatchNorm1D + tanh-approximated GELU + Linear + LogSoftmax;
- ``mlp_acts``: Silu, ELU, ReLU6, Hardtanh, SELU, Hardswish, Hardsigmoid and PReLU hidden layers
  (paddle2onnx aborts on Softplus: "Only support softplus with beta == 1.0 and threshold == 20.0");
- ``cnn_pools``: an unpadded conv, a concatenation of a 1x1 and a dilated 3x3 branch (padded by 2:
  paddle2onnx aborts on 'same' with a dilation), MaxPool2D 3/2 and AvgPool2D 3/1 padded
  (``exclusive``: the padding not counted), AdaptiveAvgPool2D from 3x3 to 2x2 (overlapping
  windows), Dropout;
- ``seq_norm``: Conv1D, a transpose to [steps, channels], LayerNorm, the mean over the steps;
- ``groupnorm_cnn``: Conv2D + GroupNorm (2 groups), a strided Conv2D + InstanceNorm2D;
- ``gru``, ``lstm``: ``nn.GRU`` / ``nn.LSTM`` over [8 steps, 8 features], the last step to a Linear head;
- ``binary``: one Sigmoid output (the digit is odd);
- ``upsample``: a strided conv, nearest Upsample x2, a conv, global average pool.

Each exported by ``paddle.onnx.export`` (paddle2onnx; input ``x``) in the forms ``-op13-bdyn``
(opset 13, batch ``None``) and ``-op17-b1`` (batch 1), and the first nets also ``-op11-b1``.

Cases need ``paddle`` and ``paddle2onnx`` (not project dependencies: skipped without);
tools/jax_paddle_models.py writes their models and samples to a folder or the test fixtures.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx

from bench.exporter_cases.common import LAYOUTS, Case, ExportedModel, structured_data

REQUIRES = ("paddle", "paddle2onnx", "sklearn")
TRAINING_STEPS = 150
LEARNING_RATE = 1e-2
FORMS = (("bdyn", 13), ("b1", 11), ("b1", 17))


def _mlp(activation: str, use_bias: bool = True, softmax: bool = False) -> Callable[[Any], Any]:
    """A builder of a 64 -> 32 -> 16 -> 10 MLP with ``activation`` (a layer name in ``paddle.nn``)."""

    def build(nn: Any) -> Any:
        act = (lambda: nn.LeakyReLU(0.1)) if activation == "LeakyReLU" else getattr(nn, activation)
        bias = None if use_bias else False
        layers = [nn.Linear(64, 32, bias_attr=bias), act(), nn.Linear(32, 16, bias_attr=bias), act(),
                  nn.Linear(16, 10, bias_attr=bias)]
        return nn.Sequential(*layers, *([nn.Softmax()] if softmax else []))

    return build


def _cnn(channel_last: bool) -> Callable[[Any], Any]:
    def build(nn: Any) -> Any:
        from bench.exporter_cases.paddle_layers import ChannelFirst

        return nn.Sequential(
            *([ChannelFirst()] if channel_last else []),
            nn.Conv2D(1, 8, 3, padding=1), nn.BatchNorm2D(8), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2D(2), nn.Flatten(), nn.Linear(2 * 2 * 16, 10),
            nn.Softmax())

    return build


def _dwsep(nn: Any) -> Any:
    return nn.Sequential(nn.Conv2D(1, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2D(8, 8, 3, stride=2, padding=1, groups=8), nn.ReLU(), nn.Conv2D(8, 16, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(16, 10))


def _conv1d(nn: Any) -> Any:
    return nn.Sequential(nn.Conv1D(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv1D(16, 16, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool1D(1), nn.Flatten(), nn.Linear(16, 10))


def _residual(nn: Any) -> Any:
    from bench.exporter_cases.paddle_layers import Residual

    return Residual()


def _layernorm(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.LayerNorm(32), nn.Linear(32, 10))


def _regressor(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1))


def _mlp_bn_tanh_gelu(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(64, 32, bias_attr=False), nn.BatchNorm1D(32), nn.GELU(approximate=True),
                         nn.Linear(32, 10), nn.LogSoftmax())


def _mlp_acts(nn: Any) -> Any:
    widths = (64, 32, 32, 24, 24, 16, 16, 16, 16)
    acts = (nn.Silu(), nn.ELU(), nn.ReLU6(), nn.Hardtanh(), nn.SELU(), nn.Hardswish(), nn.Hardsigmoid(),
            nn.PReLU())
    layers = [layer for (a, b), act in zip(zip(widths, widths[1:]), acts) for layer in (nn.Linear(a, b), act)]
    return nn.Sequential(*layers, nn.Linear(16, 10))


def _cnn_pools(nn: Any) -> Any:
    from bench.exporter_cases.paddle_layers import CnnPools

    return CnnPools()


def _seq_norm(nn: Any) -> Any:
    from bench.exporter_cases.paddle_layers import SequenceNorm

    return SequenceNorm()


def _groupnorm_cnn(nn: Any) -> Any:
    return nn.Sequential(nn.Conv2D(1, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                         nn.Conv2D(8, 8, 3, stride=2, padding=1), nn.InstanceNorm2D(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(8, 10))


def _recurrent(kind: str) -> Callable[[Any], Any]:
    def build(nn: Any) -> Any:
        from bench.exporter_cases.paddle_layers import Recurrent

        return Recurrent(kind)

    return build


def _binary(nn: Any) -> Any:
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())


def _upsample(nn: Any) -> Any:
    return nn.Sequential(nn.Conv2D(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
                         nn.Conv2D(4, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2D(1), nn.Flatten(),
                         nn.Linear(8, 10))


PADDLE_NETS: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    "mlp_relu": (_mlp("ReLU"), "flat", "logits"), "mlp_gelu": (_mlp("GELU", softmax=True), "flat", "probs"),
    "mlp_tanh_nobias": (_mlp("Tanh", use_bias=False), "flat", "logits"),
    "mlp_sigmoid": (_mlp("Sigmoid"), "flat", "logits"), "mlp_leaky": (_mlp("LeakyReLU"), "flat", "logits"),
    "cnn": (_cnn(False), "nchw", "probs"), "cnn_nhwc": (_cnn(True), "nhwc", "probs"),
    "dwsep": (_dwsep, "nchw", "logits"), "conv1d": (_conv1d, "channels_steps", "logits"),
    "residual": (_residual, "nchw", "logits"), "layernorm": (_layernorm, "flat", "logits"),
    "regressor": (_regressor, "diabetes", "value"),
    "mlp_bn_tanh_gelu": (_mlp_bn_tanh_gelu, "flat", "logprobs"), "mlp_acts": (_mlp_acts, "flat", "logits"),
    "cnn_pools": (_cnn_pools, "nchw", "logits"), "seq_norm": (_seq_norm, "channels_steps", "logits"),
    "groupnorm_cnn": (_groupnorm_cnn, "nchw", "logits"), "gru": (_recurrent("gru"), "steps", "logits"),
    "lstm": (_recurrent("lstm"), "steps", "logits"), "binary": (_binary, "flat", "binary"),
    "upsample": (_upsample, "nchw", "logits"),
}
"""name -> (builder taking ``paddle.nn``, layout of ``common.structured_data``, what it outputs: ``logits``,
``probs`` (a final Softmax), ``logprobs`` (LogSoftmax), ``binary`` (one Sigmoid: the digit is odd) or
``value`` (a regressor's))."""
EXTRA_NETS = ("mlp_bn_tanh_gelu", "mlp_acts", "cnn_pools", "seq_norm", "groupnorm_cnn", "gru", "lstm", "binary",
              "upsample")
"""Nets exported in two forms only (``-op13-bdyn``, ``-op17-b1``)."""


def training_loss(outputs: Any, targets: Any, task: str) -> Any:
    """The loss of a net's ``outputs`` on the targets (class labels or values), per ``task``."""
    import paddle

    if task == "value":
        return paddle.mean((outputs[:, 0] - targets) ** 2)
    if task == "binary":
        odd = (targets % 2).astype("float32")
        return paddle.nn.functional.binary_cross_entropy(outputs[:, 0], odd)
    if task == "logits":
        return paddle.nn.functional.cross_entropy(outputs, targets)
    logprobs = paddle.log(outputs + 1e-9) if task == "probs" else outputs
    return paddle.nn.functional.nll_loss(logprobs, targets)


@functools.cache
def trained_paddle_net(net_name: str) -> Any:
    """``net_name`` trained for TRAINING_STEPS full-batch Adam steps (seed 0), in eval mode."""
    import paddle

    builder, layout, task = PADDLE_NETS[net_name]
    paddle.seed(0)
    model = builder(paddle.nn)
    x, y, _ = structured_data(layout)
    inputs, targets = paddle.to_tensor(x), paddle.to_tensor(y)
    optimizer = paddle.optimizer.Adam(learning_rate=LEARNING_RATE, parameters=model.parameters())
    model.train()
    for _ in range(TRAINING_STEPS):
        loss = training_loss(model(inputs), targets, task)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    model.eval()
    return model


def export_paddle(net_name: str, form: str, opset: int) -> ExportedModel:
    """Export the trained ``net_name`` in ``form`` (``bdyn``, ``b1``) at ``opset``; the samples are
    the held-out rows."""
    import paddle

    model = trained_paddle_net(net_name)
    _, layout, task = PADDLE_NETS[net_name]
    spec = paddle.static.InputSpec([None if form == "bdyn" else 1, *LAYOUTS[layout]], "float32", "x")
    with tempfile.TemporaryDirectory() as folder:
        prefix = str(Path(folder) / "model")
        paddle.onnx.export(model, prefix, input_spec=[spec], opset_version=opset)
        if not Path(prefix + ".onnx").is_file():   # paddle2onnx logs its failure and returns
            raise RuntimeError(f"paddle2onnx wrote no model for {net_name} at opset {opset} (its log says why)")
        proto = onnx.load(prefix + ".onnx")
    return ExportedModel(proto, {proto.graph.input[0].name: structured_data(layout)[2]},
                         regressor=task == "value")


def _case(net_name: str, form: str, opset: int) -> Case:
    """The case ``paddle-NET-opOPSET-FORM``."""
    return Case(f"paddle-{net_name}-op{opset}-{form}", "paddle2onnx", opset, "dynamic" if form == "bdyn" else "1",
                REQUIRES, functools.partial(export_paddle, net_name, form, opset))


def paddle_cases() -> list[Case]:
    """The matrix of the module docstring."""
    return [_case(net, form, opset) for net in PADDLE_NETS for form, opset in FORMS
            if net not in EXTRA_NETS or (form, opset) != ("b1", 11)]

"""The ``paddle.nn.Layer`` subclasses of paddle_cases.py's nets, in a module of their own: Paddle's
dynamic-to-static conversion (what ``paddle.onnx.export`` runs) reads a ``forward`` from the source
of a module-level class and fails on one defined inside a function. Imported only by a case that
builds a Paddle net (it imports paddle)."""

from __future__ import annotations

from typing import Any

import paddle
from paddle import nn


class ChannelFirst(nn.Layer):
    """An NHWC image as the NCHW one Paddle's convolutions take."""

    def forward(self, x: Any) -> Any:
        return paddle.transpose(x, [0, 3, 1, 2])


class Residual(nn.Layer):
    """A conv stem, a residual block (conv-BN-ReLU-conv-BN + the identity, ReLU), a global average
    pool and a Linear head, on a 1x8x8 NCHW image."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2D(1, 8, 3, padding=1)
        self.a = nn.Conv2D(8, 8, 3, padding=1, bias_attr=False)
        self.bn_a = nn.BatchNorm2D(8)
        self.b = nn.Conv2D(8, 8, 3, padding=1, bias_attr=False)
        self.bn_b = nn.BatchNorm2D(8)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.head = nn.Linear(8, 10)

    def forward(self, x: Any) -> Any:
        h = nn.functional.relu(self.stem(x))
        r = self.bn_b(self.b(nn.functional.relu(self.bn_a(self.a(h)))))
        return self.head(paddle.flatten(self.pool(nn.functional.relu(h + r)), 1))


class CnnPools(nn.Layer):
    """An unpadded conv, two branches (1x1; 3x3 dilated by 2, padded by 2) concatenated on the channels,
    MaxPool2D 3/2 padded, AvgPool2D 3/1 padded (``exclusive``: the padding not counted), an
    AdaptiveAvgPool2D to 2x2 of the 3x3 map (overlapping windows), Dropout and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2D(1, 8, 3)
        self.pointwise = nn.Conv2D(8, 8, 1)
        self.dilated = nn.Conv2D(8, 8, 3, padding=2, dilation=2)
        self.max_pool = nn.MaxPool2D(3, stride=2, padding=1)
        self.avg_pool = nn.AvgPool2D(3, stride=1, padding=1)
        self.adaptive = nn.AdaptiveAvgPool2D(2)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(2 * 2 * 16, 10)

    def forward(self, x: Any) -> Any:
        h = nn.functional.relu(self.stem(x))
        h = paddle.concat([nn.functional.relu(self.pointwise(h)), nn.functional.relu(self.dilated(h))], axis=1)
        h = self.adaptive(self.avg_pool(self.max_pool(h)))
        return self.head(self.dropout(paddle.flatten(h, 1)))


class SequenceNorm(nn.Layer):
    """Conv1D on [features, steps], transposed to [steps, channels], LayerNorm, ReLU, the mean over
    the steps and a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1D(8, 16, 3, padding=1)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        h = nn.functional.relu(self.norm(paddle.transpose(self.conv(x), [0, 2, 1])))
        return self.head(paddle.mean(h, axis=1))


class Recurrent(nn.Layer):
    """A GRU or LSTM over [steps, features] (batch first), its last step's output to a Linear head."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 16) if kind == "gru" else nn.LSTM(8, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x: Any) -> Any:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])

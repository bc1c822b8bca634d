"""The torch networks of the exporter bench (imports torch: load it only to build a torch case).

:data:`NETS` maps a net's name to a function making it (untrained: weights from the global torch
seed, which the case sets). Each net is small and exercises one form an exporter writes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn


class BnUnfused(nn.Module):
    """Conv -> ReLU -> BatchNorm2d (after the ReLU: not foldable into the conv) -> MaxPool -> Linear ->
    BatchNorm1d -> ReLU -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(6 * 6 * 6, 16)
        self.bn1 = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.bn(F.relu(self.conv(x))))
        return self.fc2(F.relu(self.bn1(self.fc1(torch.flatten(y, 1)))))


class ConvBnStrideDilation(nn.Module):
    """Conv(stride 2) -> BN -> ReLU, Conv(dilation 2) -> BN -> ReLU, mean over H and W, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.b2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b1(self.c1(x)))
        y = F.relu(self.b2(self.c2(y)))
        return self.fc(y.mean(dim=(2, 3)))


class Seq1d(nn.Module):
    """Conv1d(stride 2) + BN1d, a dilated Conv1d, a padded MaxPool1d, AdaptiveAvgPool1d(1), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, stride=2, padding=2)
        self.b1 = nn.BatchNorm1d(8)
        self.c2 = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.b1(self.c1(x)))
        y = self.pool(F.relu(self.c2(y)))
        return self.fc(self.gap(y).squeeze(-1))


class NonSquare(nn.Module):
    """A 1x20x12 image, Conv(stride 2), a (3, 1) kernel, flattened by ``view``, Linear without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(4, 6, (3, 1), padding=(1, 0))
        self.fc = nn.Linear(6 * 10 * 6, 7, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(y.view(y.size(0), -1))


class RgbDilatedGap(nn.Module):
    """3x16x16, a dilated conv, MaxPool(3, 2, 1), AdaptiveAvgPool2d((1, 1)), ``reshape`` to Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=2, dilation=2)
        self.mp = nn.MaxPool2d(3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 12, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(12, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mp(F.relu(self.c1(x)))
        y = self.gap(F.relu(self.c2(y)))
        return self.fc(y.reshape(y.shape[0], -1))


class PaddedAvgPool(nn.Module):
    """Conv -> ReLU -> AvgPool(3, stride 2, pad 1) with ``count_include_pad`` and ``ceil_mode`` as given
    -> Linear (a LazyLinear, materialised by the factory)."""

    def __init__(self, count_include_pad: bool, ceil_mode: bool) -> None:
        super().__init__()
        self.c = nn.Conv2d(2, 4, 3)
        self.p = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=count_include_pad, ceil_mode=ceil_mode)
        self.fc = nn.LazyLinear(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.p(F.relu(self.c(x))), 1))


class AdaptivePool(nn.Module):
    """Conv -> ReLU -> AdaptiveAvgPool2d(``size``) -> Linear."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3, padding=1)
        self.p = nn.AdaptiveAvgPool2d(size)
        self.fc = nn.Linear(4 * size[0] * size[1], 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.p(F.relu(self.c(x))), 1))


class DepthwiseResidual(nn.Module):
    """A MobileNet block: stem conv + BN + ReLU6, depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN, a
    residual Add, then global pool, Flatten, Dropout, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.block = nn.Sequential(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6()),
            nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8)))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return self.head(y + self.block(y))


class InceptionConcat(nn.Module):
    """Concat of 1x1, 3x3, 5x5 and MaxPool(3, 1, 1) + 1x1 branches, global pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.c = nn.Conv2d(3, 2, 5, padding=2)
        self.d = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(3, 2, 1))
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x)), F.relu(self.c(x)), self.d(x)], dim=1)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


def mlp_no_bias() -> nn.Module:
    """Flatten, Linear without bias, ReLU, Identity, Dropout, Linear without bias."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32, bias=False), nn.ReLU(), nn.Identity(), nn.Dropout(0.5),
                         nn.Linear(32, 10, bias=False))


class MeanOverSpace(nn.Module):
    """Conv -> ReLU -> mean over H and W (``keepdim`` as given, then reshaped) -> Linear."""

    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim
        self.c = nn.Conv2d(1, 6, 3)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c(x)).mean(dim=(2, 3), keepdim=self.keepdim)
        return self.fc(y.reshape(-1, 6) if self.keepdim else y)


class ChannelLast(nn.Module):
    """An NHWC input permuted to NCHW inside the model, Conv, Flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c(x.permute(0, 3, 1, 2))).flatten(1))


class MatmulParameters(nn.Module):
    """``x @ W1``, ReLU, ``matmul(y, W2)`` and, with ``bias``, ``+ b``: MatMul and Add nodes, no Gemm."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(20, 16, generator=g) * 0.3)
        self.w2 = nn.Parameter(torch.randn(16, 4, generator=g) * 0.3)
        self.b = nn.Parameter(torch.randn(4, generator=g)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(torch.relu(x @ self.w1), self.w2)
        return y if self.b is None else y + self.b


class NearestUpsample(nn.Module):
    """Conv -> ReLU -> Upsample(x2, nearest): a Resize node -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fc = nn.Linear(2 * 16 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.up(F.relu(self.c(x))).flatten(1))


class StridedCrop(nn.Module):
    """Conv -> ReLU -> ``x[:, :, ::2, 1::2]`` (a Slice with steps) -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 5 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c(x))[:, :, ::2, 1::2].flatten(1))


class LinearUpsample(nn.Module):
    """Conv -> ReLU -> Upsample(``factor``, bilinear or, for a 1-D input, linear, ``align_corners``)
    -> Linear."""

    def __init__(self, factor: int, align_corners: bool, one_d: bool = False) -> None:
        super().__init__()
        self.c = nn.Conv1d(2, 3, 3, padding=1) if one_d else nn.Conv2d(1, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=factor, mode="linear" if one_d else "bilinear",
                              align_corners=align_corners)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.up(F.relu(self.c(x))).flatten(1))


class Padded(nn.Module):
    """Conv -> ReLU -> a padding no conv absorbs -> Conv -> Linear: ``reflect`` (ReflectionPad2d),
    ``replicate1d`` (ReplicationPad1d), ``maxpool`` (F.pad + MaxPool, a ConstantPad2d(0.5) and
    zero pads read by an Add)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        conv = nn.Conv1d if kind == "replicate1d" else nn.Conv2d
        self.c1 = conv(2, 4, 3)
        self.c2 = conv(4, 4, 3)
        self.pad = {"reflect": nn.ReflectionPad2d((1, 2, 2, 1)), "replicate1d": nn.ReplicationPad1d(2),
                    "maxpool": nn.ConstantPad2d(1, 0.5)}[kind]
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c1(x))
        if self.kind == "maxpool":
            y = F.max_pool2d(F.pad(y, (1, 1, 1, 1)), 3, stride=2)
            y = F.pad(self.c2(self.pad(y)), (1, 0, 1, 0)) + F.pad(y, (0, 1, 0, 1))
        else:
            y = self.c2(self.pad(y))
        return self.fc(y.flatten(1))


class ConstantMap(nn.Module):
    """An activation combined with a constant map: ``position`` (Linear on a ``[B, T, D]`` sequence +
    a learned positional embedding), ``mask`` (Conv -> ReLU times a fixed ``[1, C, H, W]`` mask,
    divided by a ``[1, 1, H, W]`` map) -> Linear."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        if kind == "position":
            self.layer: nn.Module = nn.Linear(4, 8)
            self.pos = nn.Parameter(torch.randn(1, 6, 8))
        else:
            self.layer = nn.Conv2d(2, 3, 3, padding=1)
            self.register_buffer("mask", (torch.rand(1, 3, 6, 6) > 0.4).float() * 1.5)
            self.register_buffer("div", torch.rand(1, 1, 6, 6) + 0.5)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.layer(x))
        y = y + self.pos if self.kind == "position" else y * self.mask / self.div
        return self.fc(y.flatten(1))


class DomainFunctions(nn.Module):
    """Conv1d -> ReLU -> log(y + 0.1), sqrt(y) and 2 / (y + 1) summed -> Linear: functions defined
    on part of the line, each a table over its calibrated input range."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv1d(2, 4, 3, padding=1)
        self.fc = nn.Linear(40, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c(x))
        return self.fc((torch.log(y + 0.1) + torch.sqrt(y) + 2.0 / (y + 1.0)).flatten(1))


class SoftmaxOverAxis(nn.Module):
    """An inner softmax over another axis than the last: ``channels`` (Conv -> softmax over the
    channels of the map), ``pooling`` (attention pooling: Linear -> tanh -> softmax of the scores over
    the steps of a ``[B, T, 1]`` sequence -> bmm) -> Linear."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.layer = nn.Conv2d(2, 4, 3, padding=1) if kind == "channels" else nn.Linear(3, 8)
        self.score = nn.Linear(8, 1)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer(x)
        if self.kind == "pooling":
            h = torch.tanh(h)
            w = torch.softmax(self.score(h), dim=1)
            return self.fc(torch.bmm(w.transpose(1, 2), h).flatten(1))
        return self.fc(torch.softmax(h, dim=1).flatten(1))


class TransposedConv(nn.Module):
    """ConvTranspose2d(kernel 2, stride 2) -> ReLU -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.ConvTranspose2d(1, 2, 2, stride=2)
        self.fc = nn.Linear(2 * 16 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c(x)).flatten(1))


class SequenceConv1d(nn.Module):
    """A ``[B, L, C]`` sequence transposed to ``[B, C, L]``, Conv1d, mean over time, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv1d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c(x.transpose(1, 2))).mean(dim=2))


class TwoHeads(nn.Module):
    """Conv -> ReLU -> Flatten shared by two Linear heads: two graph outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.Linear(4 * 8 * 8, 3)
        self.b = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.relu(self.c(x)).flatten(1)
        return self.a(y), self.b(y)


class LinearLogSoftmax(nn.Module):
    """Linear -> LogSoftmax: a final tail the compiler drops (its C output is the logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc(x), dim=1)


class NormalizeInside(nn.Module):
    """``(x - mean) / std`` per channel inside the model, Conv, global pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.3, 0.2]).view(1, 3, 1, 1))
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c((x - self.mean) / self.std))
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


class CeilModePools(nn.Module):
    """Conv, MaxPool(2, ceil_mode) and AvgPool(2, ceil_mode) on an odd map, Linear (lazy)."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 3, 3, padding=1)
        self.mp = nn.MaxPool2d(2, ceil_mode=True)
        self.ap = nn.AvgPool2d(2, ceil_mode=True)
        self.fc = nn.LazyLinear(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.ap(self.mp(F.relu(self.c(x)))), 1))


class LayerNormMlp(nn.Module):
    """Linear -> LayerNorm -> ReLU -> Linear (the legacy exporter below opset 17 decomposes the
    LayerNorm into ReduceMean/Sub/Pow/Sqrt/Div)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.ln, self.b = nn.Linear(20, 32), nn.LayerNorm(32), nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.ln(self.a(x))))


class GroupNormCnn(nn.Module):
    """Conv2d -> GroupNorm(2 groups of 4 channels) -> ReLU -> Conv2d -> global pool -> Linear (the
    exporters write Reshape -> InstanceNormalization -> Reshape -> Mul -> Add)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.gn, self.b, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.Conv2d(8, 6, 3), \
            nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.b(F.relu(self.gn(self.a(x)))), 1).flatten(1))


class InstanceNormCnn(nn.Module):
    """Conv -> InstanceNorm1d/2d (``affine`` or not) -> ReLU -> Flatten -> Linear."""

    def __init__(self, dims: int, affine: bool) -> None:
        super().__init__()
        conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if dims == 2 else (nn.Conv1d, nn.InstanceNorm1d)
        self.a, self.norm = conv(2, 5, 3), norm(5, affine=affine)
        self.fc = nn.Linear(5 * (6 * 6 if dims == 2 else 14), 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.norm(self.a(x))).flatten(1))


class LayerNormSequence(nn.Module):
    """A [T, F] sequence: Linear on every step -> LayerNorm -> GELU -> mean over the steps -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.ln, self.b = nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.gelu(self.ln(self.a(x))).mean(1))


class TinyTransformer(nn.Module):
    """A [T, F] sequence: Linear -> nn.TransformerEncoderLayer (batch_first, dropout 0) -> mean over the
    steps -> Linear."""

    def __init__(self, d_model: int, heads: int, feedforward: int) -> None:
        super().__init__()
        self.inp = nn.Linear(4, d_model)
        self.enc = nn.TransformerEncoderLayer(d_model, heads, feedforward, dropout=0.0, batch_first=True)
        self.out = nn.Linear(d_model, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.enc(self.inp(x)).mean(1))


class InvertedResidual(nn.Module):
    """MobileNetV2: a stride-2 stem, an inverted residual block (1x1 expand x4 + BN + ReLU6, depthwise
    3x3 + BN + ReLU6, 1x1 project + BN, residual Add), a stride-2 block without the Add, global pool,
    Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.block = self._block(8, 8, 1)
        self.down = self._block(8, 12, 2)
        self.fc = nn.Linear(12, 5)

    @staticmethod
    def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
        """Expand, depthwise (``stride``), project."""
        hidden = 4 * cin
        return nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = self.down(y + self.block(y))
        return self.fc(y.mean(dim=(2, 3)))


class ShuffleUnit(nn.Module):
    """ShuffleNetV2: a stem, a channel split (``chunk``), 1x1 / depthwise 3x3 / 1x1 on one half, Concat,
    a channel shuffle (view -> transpose -> view), global pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(
            nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4),
            nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.fc = nn.Linear(8 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.stem(x))
        a, b = y.chunk(2, dim=1)
        y = torch.cat([a, self.branch(b)], dim=1)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        return self.fc(y.flatten(1))


class Fire(nn.Module):
    """SqueezeNet: conv stem, MaxPool(3, 2, ceil_mode), a fire module (1x1 squeeze, Concat of 1x1 and 3x3
    expands), a 1x1 classifier conv, global pool, flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.e1 = nn.Conv2d(4, 8, 1)
        self.e3 = nn.Conv2d(4, 8, 3, padding=1)
        self.cls = nn.Conv2d(16, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(F.relu(self.stem(x)))
        s = F.relu(self.squeeze(y))
        y = torch.cat([F.relu(self.e1(s)), F.relu(self.e3(s))], 1)
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.cls(y)), 1), 1)


class MBConvSE(nn.Module):
    """EfficientNet MBConv: 1x1 expand + BN + SiLU, depthwise + BN + SiLU, squeeze-excitation (global
    pool, 1x1 conv, SiLU, 1x1 conv, Sigmoid, Mul), 1x1 project + BN, residual Add, pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.expand = nn.Sequential(nn.Conv2d(8, 24, 1, bias=False), nn.BatchNorm2d(24), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1, groups=24, bias=False), nn.BatchNorm2d(24), nn.SiLU())
        self.se_reduce = nn.Conv2d(24, 4, 1)
        self.se_expand = nn.Conv2d(4, 24, 1)
        self.project = nn.Sequential(nn.Conv2d(24, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = self.dw(self.expand(y))
        gate = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(F.adaptive_avg_pool2d(z, 1)))))
        y = y + self.project(z * gate)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


class ResNetDownsample(nn.Module):
    """ResNet: stem conv + BN + ReLU + MaxPool(3, 2, 1), a basic block with stride 2 whose shortcut is
    a strided 1x1 conv + BN, global pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.c1 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        self.short = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = F.relu(self.c2(self.c1(y)) + self.short(y))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, (1, 1)), 1))


class CausalTcn(nn.Module):
    """TCN: two dilated causal Conv1d (left ``F.pad``), a residual Add, the last step, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(2, 8, 3, dilation=1)
        self.c2 = nn.Conv1d(8, 8, 3, dilation=2)
        self.inp = nn.Conv1d(2, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c1(F.pad(x, (2, 0))))
        y = F.relu(self.c2(F.pad(y, (4, 0))) + self.inp(x))
        return self.fc(y[:, :, -1])


class GhostModule(nn.Module):
    """GhostNet: a primary 1x1 conv + BN + ReLU, a cheap depthwise 3x3 of it, their Concat, global
    pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.primary = nn.Sequential(nn.Conv2d(3, 6, 1, bias=False), nn.BatchNorm2d(6), nn.ReLU())
        self.cheap = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False), nn.BatchNorm2d(6), nn.ReLU())
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.primary(x)
        y = torch.cat([p, self.cheap(p)], dim=1)
        return self.fc(y.mean(dim=(2, 3)))


class MultiScalePool(nn.Module):
    """Three conv stages; the global average of stage 1, the global max (``amax``) of stage 2 and the
    flattened 2x2 average of stage 3 concatenated into a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.s1 = nn.Conv2d(1, 4, 3, padding=1)
        self.s2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.s3 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 + 6 + 8 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.s1(x))
        b = F.relu(self.s2(a))
        c = F.relu(self.s3(b))
        feats = [a.mean(dim=(2, 3)), b.amax(dim=(2, 3)), F.avg_pool2d(c, 2).view(c.size(0), -1)]
        return self.fc(torch.cat(feats, dim=1))


class HardActivations(nn.Module):
    """Conv + Hardswish, Conv + Hardsigmoid gate (Mul), MaxPool(3, 2, 1, ceil_mode), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 1)
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.fc = nn.LazyLinear(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardswish(self.c1(x))
        y = y * F.hardsigmoid(self.c2(y))
        return self.fc(self.pool(y).flatten(1))


class ClassifierRegressor(nn.Module):
    """A 1-D feature vector through Linear + BatchNorm1d + ReLU + Dropout, then a classifier head and
    a one-column regressor head (two outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Linear(24, 16), nn.ReLU())
        self.cls = nn.Linear(16, 4)
        self.reg = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        return self.cls(y), self.reg(y)


class RawAudio(nn.Module):
    """A ``[B, T]`` signal without a channel axis: unsqueeze to ``[B, 1, T]``, strided Conv1d, MaxPool1d,
    Conv1d, amax over time, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(1, 6, 9, stride=4, padding=4)
        self.p = nn.MaxPool1d(2)
        self.c2 = nn.Conv1d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.p(F.relu(self.c1(x.unsqueeze(1))))
        return self.fc(F.relu(self.c2(y)).amax(dim=-1))


class TinyUNet(nn.Module):
    """Encoder (conv, MaxPool, conv), nearest Upsample x2, skip Concat with the encoder map, conv, a
    1x1 head giving a 3-class map per pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.e1 = nn.Conv2d(1, 4, 3, padding=1)
        self.e2 = nn.Conv2d(4, 8, 3, padding=1)
        self.d1 = nn.Conv2d(12, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.e1(x))
        b = F.relu(self.e2(F.max_pool2d(a, 2)))
        y = torch.cat([F.interpolate(b, scale_factor=2, mode="nearest"), a], dim=1)
        return self.head(F.relu(self.d1(y)))


class ChannelLastPool(nn.Module):
    """An NHWC input: permute, a Conv, a permute back to NHWC and a Linear on the channels of every
    pixel, mean over the pixels, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 6, 3, padding=1)
        self.pix = nn.Linear(6, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        return self.fc(F.relu(self.pix(y)).mean(dim=(1, 2)))


class TokenNet(nn.Module):
    """Token ids ``[T]`` (int64) -> nn.Embedding (``padding_idx=0``) -> ``head`` over the ``[T, D]``
    sequence: ``mean`` (over the steps, then Linear: fastText), ``conv1d`` (permute, Conv1d, ReLU,
    MaxPool1d, mean, Linear), ``gru`` (batch_first, Linear on the last step) or ``transformer``
    (nn.TransformerEncoderLayer, batch_first, dropout 0, mean, Linear)."""

    def __init__(self, head: str, vocab: int, dim: int = 16) -> None:
        super().__init__()
        self.head = head
        self.emb = nn.Embedding(vocab, dim, padding_idx=0)
        width = {"mean": dim, "conv1d": 12, "gru": 12, "transformer": dim}[head]
        if head == "conv1d":
            self.conv = nn.Conv1d(dim, 12, 3, padding=1)
        elif head == "gru":
            self.rnn = nn.GRU(dim, 12, batch_first=True)
        elif head == "transformer":
            self.enc = nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.out = nn.Linear(width, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        if self.head == "conv1d":
            return self.out(F.max_pool1d(torch.relu(self.conv(e.permute(0, 2, 1))), 2).mean(-1))
        if self.head == "gru":
            return self.out(self.rnn(e)[0][:, -1])
        if self.head == "transformer":
            return self.out(self.enc(e).mean(1))
        return self.out(e.mean(1))


class SumPool(nn.Module):
    """Conv -> ReLU -> ``sum(dim=(2, 3))`` / 36 (a ReduceSum) -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 6, 3)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c(x)).sum(dim=(2, 3)) / 36.0)


class ClampOneSide(nn.Module):
    """Conv -> ``clamp(min=-0.1)`` -> Conv -> ``clamp(max=0.5)`` (Clips with one bound) -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(self.c1(x), min=-0.1)
        return self.fc(self.c2(y).clamp(max=0.5).flatten(1))


class AdaptiveMax(nn.Module):
    """Conv -> ReLU -> AdaptiveMaxPool2d((2, 2)) and AdaptiveMaxPool2d(1), concatenated -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 6, 3, padding=1)
        self.p = nn.AdaptiveMaxPool2d((2, 2))
        self.g = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(6 * 4 + 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.c(x))
        return self.fc(torch.cat([self.p(y).flatten(1), self.g(y).flatten(1)], 1))


class MobileNetV3SE(nn.Module):
    """MobileNetV3: conv + Hardswish, depthwise + Hardswish, squeeze-excitation gated by Hardsigmoid
    (a ``[1, C, 1, 1]`` gate times the map), global pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.se1 = nn.Conv2d(8, 4, 1)
        self.se2 = nn.Conv2d(4, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardswish(self.dw(F.hardswish(self.c(x))))
        gate = F.hardsigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(y, 1)))))
        return self.fc(F.adaptive_avg_pool2d(y * gate, 1).flatten(1))


class DsCnnKws(nn.Module):
    """A DS-CNN keyword spotter on 49x10 MFCCs: a (10, 4) stride-2 conv + BN + ReLU, a depthwise-
    separable block, AvgPool over the whole (25, 5) map, Linear to 12 keywords."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Sequential(nn.Conv2d(1, 16, (10, 4), stride=(2, 2), padding=(5, 1)), nn.BatchNorm2d(16),
                                nn.ReLU())
        self.ds = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
                                nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.AvgPool2d((25, 5))
        self.fc = nn.Linear(16, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.ds(self.c0(x))).flatten(1))


class ScaledResidual(nn.Module):
    """Residuals scaled by constants: ``x + 0.5 * relu(conv(x))``, ``y + conv(y) * 0.1``, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 3, 3, padding=1)
        self.c2 = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + 0.5 * F.relu(self.c1(x))
        return self.fc((y + self.c2(y) * 0.1).flatten(1))


class SequenceMax(nn.Module):
    """A ``[B, T, F]`` sequence: Linear on every step -> ReLU -> max over the steps
    (``max(dim=1).values``) -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 12)
        self.b = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x)).max(dim=1).values)


class CeilPools1d(nn.Module):
    """Conv1d -> ReLU -> MaxPool1d(3, 2, ceil_mode) -> AvgPool1d(2, ceil_mode) on odd lengths -> Linear
    (lazy)."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv1d(3, 6, 5, padding=2)
        self.mp = nn.MaxPool1d(3, 2, ceil_mode=True)
        self.ap = nn.AvgPool1d(2, ceil_mode=True)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.ap(self.mp(F.relu(self.c(x)))).flatten(1))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt: a 2x2 stride-2 stem, depthwise 7x7, permute to NHWC, LayerNorm over the channels,
    Linear x4 + GELU + Linear per pixel, permute back, residual Add, mean over H and W, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, stride=2)
        self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.ln = nn.LayerNorm(8)
        self.p1 = nn.Linear(8, 32)
        self.p2 = nn.Linear(32, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = self.p2(F.gelu(self.p1(self.ln(self.dw(y).permute(0, 2, 3, 1))))).permute(0, 3, 1, 2)
        return self.fc((y + z).mean(dim=(2, 3)))


class FlattenChannelLast(nn.Module):
    """Conv -> ReLU -> permute to NHWC -> ``reshape(n, -1)`` (a Keras-order flatten) -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.c(x)).permute(0, 2, 3, 1).reshape(x.size(0), -1))


class SpatialConcat(nn.Module):
    """Two conv branches concatenated side by side (``cat(dim=3)``), a conv with circular padding
    (the legacy exporter's Slices + Concat of the rows and columns), Linear (lazy)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular")
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=3)
        return self.fc(F.relu(self.c(y)).flatten(1))


class RmsNormSequence(nn.Module):
    """A [T, F] sequence: Linear on every step -> ReLU -> RMS norm (``torch``: nn.RMSNorm; ``llama``:
    ``x * rsqrt(mean(x^2) + eps) * w`` written out) -> mean over the steps -> Linear."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.a, self.norm, self.b = nn.Linear(6, 16), nn.RMSNorm(16, eps=1e-5), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        if self.form == "torch":
            h = self.norm(h)
        else:
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5) * self.norm.weight
        return self.b(h.mean(1))


class Negations(nn.Module):
    """Conv -> ``-h`` and ``1 - h`` on two branches -> Concat -> ReLU -> Flatten -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c, self.fc = nn.Conv2d(2, 3, 3), nn.Linear(6 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c(x)
        return self.fc(F.relu(torch.cat([-h, 1.0 - h], dim=1)).flatten(1))


# --------------------------------------------------------------------------- MLPerf Tiny reference models
class TinyKwsDsCnn(nn.Module):
    """MLPerf Tiny keyword spotting, DS-CNN at its reference size: 49x10 MFCCs -> Conv (10, 4) stride 2,
    64 channels + BN + ReLU -> 4 x [depthwise 3x3 + BN + ReLU, pointwise 1x1 64 + BN + ReLU] -> AvgPool over
    the whole (25, 5) map -> Linear to 12 keywords (dropout is the identity at inference)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, 64, (10, 4), stride=(2, 2), padding=(5, 1)), nn.BatchNorm2d(64),
                                   nn.ReLU()]
        for _ in range(4):
            layers += [nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.BatchNorm2d(64), nn.ReLU(),
                       nn.Conv2d(64, 64, 1), nn.BatchNorm2d(64), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d((25, 5))
        self.fc = nn.Linear(64, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class TinyResidualStack(nn.Module):
    """One stack of MLPerf Tiny's ResNet-8: conv 3x3 (stride s) + BN + ReLU, conv 3x3 + BN, plus the input
    (through a 1x1 stride-s conv when the shape changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                               nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout))
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.a(x) + self.shortcut(x))


class TinyResNet8(nn.Module):
    """MLPerf Tiny image classification, ResNet-8 for CIFAR-10 at its reference size: 3x32x32 -> conv 3x3
    16 + BN + ReLU -> stacks of 16, 32 (stride 2), 64 (stride 2) channels -> AvgPool 8x8 -> Linear 10."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stacks = nn.Sequential(TinyResidualStack(16, 16, 1), TinyResidualStack(16, 32, 2),
                                    TinyResidualStack(32, 64, 2))
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stacks(self.stem(x))).flatten(1))


class TinyVwwMobileNet(nn.Module):
    """MLPerf Tiny visual wake words, MobileNetV1 with alpha 0.25 at its reference size: 3x96x96 -> conv 3x3
    stride 2, 8 channels -> 13 depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise + BN + ReLU)
    up to 256 channels at 3x3 -> global AvgPool -> Linear to 2 classes (person / no person)."""

    BLOCKS = ((8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1),
              (128, 128, 1), (128, 128, 1), (128, 128, 1), (128, 128, 1), (128, 256, 2), (256, 256, 1))
    """(input channels, output channels, depthwise stride) per block: MobileNetV1's at alpha 0.25."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        for cin, cout, stride in self.BLOCKS:
            layers += [nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin), nn.BatchNorm2d(cin), nn.ReLU(),
                       nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class TinyAnomalyAutoencoder(nn.Module):
    """MLPerf Tiny anomaly detection, the dense autoencoder at its reference size: 640 (5 frames of 128
    log-mel bins) -> 4 x [Linear 128 + BN + ReLU] -> Linear 8 + BN + ReLU -> 4 x [Linear 128 + BN + ReLU] ->
    Linear 640 (the reconstruction: a regression output)."""

    def __init__(self) -> None:
        super().__init__()
        widths = (640, 128, 128, 128, 128, 8, 128, 128, 128, 128)
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(128, 640)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def materialized(net: nn.Module, sample_shape: tuple[int, ...]) -> nn.Module:
    """``net`` after one forward pass on zeros of ``[1, *sample_shape]`` (sizes its LazyLinear)."""
    with torch.no_grad():
        net(torch.zeros(1, *sample_shape))
    return net


NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "bn_unfused": (BnUnfused, (1, 12, 12)),
    "convbn_s2_dil": (ConvBnStrideDilation, (3, 16, 16)),
    "seq1d": (Seq1d, (4, 64)),
    "nonsquare": (NonSquare, (1, 20, 12)),
    "rgb_dil_gap": (RgbDilatedGap, (3, 16, 16)),
    "avg_cip_floor": (lambda: materialized(PaddedAvgPool(True, False), (2, 11, 11)), (2, 11, 11)),
    "avg_cip_ceil": (lambda: materialized(PaddedAvgPool(True, True), (2, 11, 11)), (2, 11, 11)),
    "avg_nocip_floor": (lambda: materialized(PaddedAvgPool(False, False), (2, 11, 11)), (2, 11, 11)),
    "avg_nocip_ceil": (lambda: materialized(PaddedAvgPool(False, True), (2, 11, 11)), (2, 11, 11)),
    "adaptive_2x2": (lambda: AdaptivePool((2, 2)), (1, 8, 8)),
    "adaptive_3x3of9": (lambda: AdaptivePool((3, 3)), (1, 9, 9)),
    "adaptive_3x2of8": (lambda: AdaptivePool((3, 2)), (1, 8, 8)),
    "adaptive_3x3of7": (lambda: AdaptivePool((3, 3)), (1, 7, 7)),
    "adaptive_3x3of10": (lambda: AdaptivePool((3, 3)), (1, 10, 10)),
    "dw_pw_residual": (DepthwiseResidual, (3, 10, 10)),
    "inception_cat": (InceptionConcat, (3, 8, 8)),
    "mlp_nobias_identity": (mlp_no_bias, (1, 8, 8)),
    "mean_keepdim": (lambda: MeanOverSpace(True), (1, 8, 8)),
    "mean_nokeep": (lambda: MeanOverSpace(False), (1, 8, 8)),
    "channel_last": (ChannelLast, (8, 8, 3)),
    "matmul_const_bias": (lambda: MatmulParameters(True), (20,)),
    "matmul_const_nobias": (lambda: MatmulParameters(False), (20,)),
    "upsample": (NearestUpsample, (1, 8, 8)),
    "strided_crop": (StridedCrop, (1, 9, 8)),
    "bilinear_x2": (lambda: materialized(LinearUpsample(2, False), (1, 6, 6)), (1, 6, 6)),
    "bilinear_ac_x3": (lambda: materialized(LinearUpsample(3, True), (1, 5, 4)), (1, 5, 4)),
    "linear1d_x2": (lambda: materialized(LinearUpsample(2, False, one_d=True), (2, 10)), (2, 10)),
    "convtranspose": (TransposedConv, (1, 8, 8)),
    "pad_reflect": (lambda: materialized(Padded("reflect"), (2, 9, 9)), (2, 9, 9)),
    "pad_replicate1d": (lambda: materialized(Padded("replicate1d"), (2, 16)), (2, 16)),
    "pad_maxpool": (lambda: materialized(Padded("maxpool"), (2, 11, 11)), (2, 11, 11)),
    "pos_embedding": (lambda: materialized(ConstantMap("position"), (6, 4)), (6, 4)),
    "mask_mul": (lambda: materialized(ConstantMap("mask"), (2, 6, 6)), (2, 6, 6)),
    "log_sqrt_recip": (DomainFunctions, (2, 10)),
    "softmax_channels": (lambda: materialized(SoftmaxOverAxis("channels"), (2, 6, 6)), (2, 6, 6)),
    "attention_pool": (lambda: materialized(SoftmaxOverAxis("pooling"), (6, 3)), (6, 3)),
    "seq_transpose_conv1d": (SequenceConv1d, (16, 3)),
    "two_outputs": (TwoHeads, (1, 8, 8)),
    "logsoftmax": (LinearLogSoftmax, (12,)),
    "norm_inside": (NormalizeInside, (3, 8, 8)),
    "pool_ceil_odd": (lambda: materialized(CeilModePools(), (1, 9, 9)), (1, 9, 9)),
    "layernorm_mlp": (LayerNormMlp, (20,)),
    "layernorm_seq": (LayerNormSequence, (6, 8)),
    "groupnorm_cnn": (GroupNormCnn, (3, 8, 8)),
    "instnorm2d_affine": (lambda: InstanceNormCnn(2, True), (2, 8, 8)),
    "instnorm2d_plain": (lambda: InstanceNormCnn(2, False), (2, 8, 8)),
    "instnorm1d_affine": (lambda: InstanceNormCnn(1, True), (2, 16)),
    "transformer_h1": (lambda: TinyTransformer(16, 1, 32), (8, 4)),
    "transformer_h2": (lambda: TinyTransformer(32, 2, 64), (12, 4)),
    "mbv2_inverted": (InvertedResidual, (3, 16, 16)),
    "shuffle_unit": (ShuffleUnit, (3, 8, 8)),
    "squeeze_fire": (Fire, (3, 17, 17)),
    "mbconv_se": (MBConvSE, (3, 8, 8)),
    "resnet_down": (ResNetDownsample, (3, 16, 16)),
    "tcn_causal": (CausalTcn, (2, 32)),
    "ghost": (GhostModule, (3, 8, 8)),
    "multiscale_cat": (MultiScalePool, (1, 16, 16)),
    "hard_acts": (lambda: materialized(HardActivations(), (3, 9, 9)), (3, 9, 9)),
    "cls_reg_heads": (ClassifierRegressor, (12,)),
    "raw_audio": (RawAudio, (256,)),
    "unet_skip": (TinyUNet, (1, 8, 8)),
    "nhwc_pixel_linear": (ChannelLastPool, (6, 6, 3)),
    "embed_mean": (lambda: TokenNet("mean", 50), (10,)),
    "embed_conv1d": (lambda: TokenNet("conv1d", 50), (10,)),
    "embed_gru": (lambda: TokenNet("gru", 50), (8,)),
    "embed_transformer": (lambda: TokenNet("transformer", 50), (8,)),
    "sum_pool": (SumPool, (1, 8, 8)),
    "clamp_one_side": (ClampOneSide, (1, 8, 8)),
    "adaptive_max": (AdaptiveMax, (1, 8, 8)),
    "mbv3_se": (MobileNetV3SE, (3, 8, 8)),
    "dscnn_kws": (DsCnnKws, (1, 49, 10)),
    "scaled_residual": (ScaledResidual, (3, 8, 8)),
    "seq_max": (SequenceMax, (10, 6)),
    "pool1d_ceil": (lambda: materialized(CeilPools1d(), (3, 21)), (3, 21)),
    "convnext": (ConvNeXtBlock, (3, 16, 16)),
    "flatten_nhwc": (FlattenChannelLast, (3, 6, 6)),
    "spatial_cat": (lambda: materialized(SpatialConcat(), (1, 6, 5)), (1, 6, 5)),
    "tiny_kws_dscnn": (TinyKwsDsCnn, (1, 49, 10)),
    "tiny_ic_resnet8": (TinyResNet8, (3, 32, 32)),
    "tiny_vww_mobilenet": (TinyVwwMobileNet, (3, 96, 96)),
    "tiny_ad_autoencoder": (TinyAnomalyAutoencoder, (640,)),
    "rmsnorm_torch": (lambda: RmsNormSequence("torch"), (5, 6)),
    "rmsnorm_llama": (lambda: RmsNormSequence("llama"), (5, 6)),
    "negations": (Negations, (2, 6, 6)),
}
"""Net name -> (factory, the shape of one sample without the batch axis)."""


def randomize_batchnorm(net: nn.Module) -> None:
    """Give every BatchNorm seeded running statistics and affine parameters, every LayerNorm a seeded
    scale and bias, every RMSNorm a seeded scale, every affine GroupNorm / InstanceNorm a seeded scale
    and bias per channel (fresh ones are the identity, which would hide a wrong fold)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                layer.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                layer.weight.copy_(torch.rand(n, generator=g) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=g) * 0.3)
            elif isinstance(layer, (nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)) and layer.weight is not None:
                n = layer.weight.shape[0]
                layer.weight.copy_(torch.rand(n, generator=g) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=g) * 0.3)
            elif isinstance(layer, nn.LayerNorm):
                shape = layer.normalized_shape
                layer.weight.copy_(torch.rand(shape, generator=g) + 0.5)
                layer.bias.copy_(torch.randn(shape, generator=g) * 0.3)
            elif isinstance(layer, nn.RMSNorm) and layer.weight is not None:
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=g) + 0.5)


def calibrate_batchnorm(net: nn.Module, samples: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to the batch statistics of its input on ``samples`` (one
    forward pass in training mode; affine parameters kept), so that a deep random net stays sensitive to
    its input: with made-up statistics the activations of a 30-layer MobileNet drift until every sample
    gets the same class."""
    norms = [layer for layer in net.modules() if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d))]
    training = net.training
    with torch.no_grad():
        for layer in norms:
            layer.reset_running_stats()
            layer.momentum = None          # a cumulative average: one batch gives its own statistics
        net.train()(samples)
    net.train(training)


def template_data(sample_shape: tuple[int, ...], classes: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of ``classes`` synthetic classes and their labels: a seeded standard-normal template per
    class (the same templates for every ``seed``) times 0.8 plus standard-normal noise times 0.6 (float32)."""
    templates = np.random.default_rng(12345).standard_normal((classes, *sample_shape))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = 0.8 * templates[labels] + 0.6 * rng.standard_normal((n, *sample_shape))
    return x.astype(np.float32), labels


def train_briefly(net: nn.Module, x: np.ndarray, target: np.ndarray, steps: int, seed: int = 0) -> None:
    """``steps`` Adam steps (batch 32, lr 3e-3) of ``net`` on ``x``: cross-entropy against the labels
    ``target`` (integers), or mean squared error against ``target`` (floats: a regressor, an autoencoder's
    input); leaves ``net`` in eval mode with the BatchNorm statistics of 200 of the training samples
    (:func:`calibrate_batchnorm`: after a few steps the running averages are still far from them)."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    inputs, wanted = torch.from_numpy(x), torch.from_numpy(target)
    loss_of = F.cross_entropy if target.dtype.kind in "iu" else F.mse_loss
    net.train()
    for _ in range(steps):
        batch = torch.randint(0, len(x), (32,))
        optimizer.zero_grad()
        loss_of(net(inputs[batch]), wanted[batch]).backward()
        optimizer.step()
    calibrate_batchnorm(net, inputs[:200])
    net.eval()

"""Torch fuzz: seeded random small PyTorch models through both torch exporters, compiled, built as C and
compared with onnxruntime by the machinery of ``bench/exporters.py``.

    python bench/torch_fuzz.py --seeds 0 200 --jobs 2            # seeds 0..199, one exporter each
    python bench/torch_fuzz.py --seeds 0 50 --every-exporter     # each seed through all four exporters
    python bench/torch_fuzz.py --show 17                         # print seed 17's net and shapes
    python bench/torch_fuzz.py --seeds 17 1 --keep /tmp/fz       # keep the case folder (model, data, build)

A seed draws (``random.Random(seed)``) an exporter (legacy ``dynamo=False`` at opset 11, 13 or 17,
or ``dynamo=True`` at its default opset; ``--every-exporter``: all four), a batch form (dynamic, or
fixed 1) and a net (:func:`random_net`, under MAX_PARAMETERS parameters and MAX_INPUT_ELEMENTS elements
per input sample):

- a 2-D image (non-square), a 1-D sequence (often an odd length) or a flat vector input; now and
  then two inputs (each through its own stem, then added or concatenated on channels);
- feature blocks: Conv1d/Conv2d (random and non-square kernels, stride, dilation, int / tuple /
  ``'same'`` / ``'valid'`` padding, ``zeros``/``reflect``/``replicate``/``circular`` padding modes,
  groups and depthwise, with or without bias) with BatchNorm and an activation; Max/AvgPool
  (padding, ``ceil_mode``, ``count_include_pad``); adaptive avg/max pools (sizes that do not divide);
  nearest / (bi)linear interpolation (scale or size, ``align_corners``); residual adds; a branch
  concatenated on channels; channel shuffle; a channel-last LayerNorm or pointwise Linear through
  permutes; GroupNorm; Dropout;
- a transition to a vector: flatten / view / reshape / an NHWC permute then reshape / a mean over
  the spatial dims / a global pool;
- dense blocks (Linear with or without bias, LayerNorm, an activation, Dropout) and one or two heads
  (occasionally also a feature output), with Softmax / LogSoftmax now and then.

Weights are the default init rescaled layer by layer so that each Conv/Linear output has unit
deviation on normal inputs; BatchNorm statistics are measured on those inputs, then the affine
parameters of every norm and PReLU are randomized (seeded). Each case is then run by
:func:`bench.exporters.run_case`: export (200 standard normal samples, seed 1), ``freeml-tx model.onnx
-o build --data data.npz``, ``make``, ``freeml-tx verify`` and ``freeml-tx run`` compared with
onnxruntime on the original model. A net whose outputs carry no Softmax is judged by value (max abs
error) every other seed, by top-1 otherwise.

Printed: a line per case, the table of ``bench/exporters.py`` and the not-ok cases grouped by their
reason with digits masked (the buckets). Exit status 1 when a case crashed or is WRONG. A
benchmark, run on demand: not part of the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import logging
import os
import random
import re
import sys
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel  # noqa: E402
from bench.exporters import FAILING, Outcome, run_case, summary  # noqa: E402

MAX_PARAMETERS = 60_000
"""A net has fewer parameters than this (a draw over it is redrawn)."""
MAX_INPUT_ELEMENTS = 3_000
"""Elements per sample of each input."""
EXPORTERS: tuple[tuple[str, int | None], ...] = (("legacy", 11), ("legacy", 13), ("legacy", 17), ("dynamo", None))
"""(exporter, opset) a seed draws from; None: the dynamo exporter's default opset."""
DYNAMIC_EXAMPLE_BATCH = 2
PROBE_BATCH = 7
"""The batch a drawn block is tried on (unlike any channel count, so that a block mixing the batch axis
up with another fails)."""
ACTIVATIONS = ("relu", "relu6", "leaky", "hardtanh", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "gelu",
               "elu", "softplus", "prelu")


# --------------------------------------------------------------------------- modules the nets are made of
def activation(kind: str, channels: int, rng: random.Random) -> Any:
    """The torch module of an activation ``kind`` (ACTIVATIONS); a PReLU has one slope or one per channel."""
    from torch import nn

    table: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU, "relu6": nn.ReLU6, "leaky": lambda: nn.LeakyReLU(rng.choice([0.01, 0.1, 0.3])),
        "hardtanh": lambda: nn.Hardtanh(*rng.choice([(-1.0, 1.0), (-0.5, 2.0), (0.0, 1.5)])),
        "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
        "silu": nn.SiLU, "gelu": lambda: nn.GELU(rng.choice(["none", "tanh"])),
        "elu": lambda: nn.ELU(rng.choice([1.0, 0.5])), "softplus": lambda: nn.Softplus(rng.choice([1.0, 2.0])),
        "prelu": lambda: nn.PReLU(rng.choice([1, channels])),
    }
    return table[kind]()


def _modules() -> dict[str, type]:
    """The net's own module classes (defined once torch is imported)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Residual(nn.Module):
        """``x + body(x)``."""

        def __init__(self, body: nn.Module) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.body(x)

    class CatBranch(nn.Module):
        """``cat([x, body(x)], channels)``."""

        def __init__(self, body: nn.Module) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, self.body(x)], 1)

    class Shuffle(nn.Module):
        """Channel shuffle of ``groups`` (reshape, transpose, reshape or flatten); ``style`` picks how the batch is named."""

        def __init__(self, groups: int, style: str) -> None:
            super().__init__()
            self.groups, self.style = groups, style

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, c = x.shape[0], x.shape[1]
            rest = list(x.shape[2:])
            lead = -1 if self.style == "minus1" else b
            y = x.reshape(lead, self.groups, c // self.groups, *rest).transpose(1, 2)
            return y.reshape(lead, c, *rest) if self.style != "flatten" else torch.flatten(y, 1, 2)

    class Interp(nn.Module):
        """F.interpolate by ``scale`` or to ``size``."""

        def __init__(self, mode: str, scale: Any, size: Any, align_corners: bool | None) -> None:
            super().__init__()
            self.mode, self.scale, self.size, self.align_corners = mode, scale, size, align_corners

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=self.scale, size=self.size, mode=self.mode,
                                 align_corners=self.align_corners)

    class ChannelLast(nn.Module):
        """``body`` over the channel axis moved last (a LayerNorm or a pointwise Linear), moved back."""

        def __init__(self, body: nn.Module, rank: int) -> None:
            super().__init__()
            self.body, self.rank = body, rank

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.rank == 3:
                return self.body(x.transpose(1, 2)).transpose(1, 2)
            return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class ToVector(nn.Module):
        """[N, C, ...] -> [N, F] by ``style``: flatten, view, reshape, an NHWC permute, a mean, a global pool."""

        def __init__(self, style: str, keepdim: bool) -> None:
            super().__init__()
            self.style, self.keepdim = style, keepdim

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.style == "flatten":
                return torch.flatten(x, 1)
            if self.style == "view":
                return x.contiguous().view(x.size(0), -1)
            if self.style == "reshape":
                return x.reshape(x.shape[0], -1)
            if self.style == "channel_last":
                return x.permute(0, *range(2, x.dim()), 1).reshape(x.size(0), -1)
            if self.style == "mean":
                y = x.mean(dim=tuple(range(2, x.dim())), keepdim=self.keepdim)
                return y.flatten(1) if self.keepdim else y
            if self.style == "amax":
                return x.amax(dim=-1).flatten(1)
            pool = F.adaptive_avg_pool2d if x.dim() == 4 else F.adaptive_avg_pool1d
            return pool(x, 1).flatten(1)

    class Head(nn.Module):
        """A Linear head and maybe a Softmax / LogSoftmax (``final``)."""

        def __init__(self, linear: nn.Module, final: str) -> None:
            super().__init__()
            self.linear, self.final = linear, final

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.linear(x)
            if self.final == "softmax":
                return torch.softmax(y, dim=-1)
            if self.final == "logsoftmax":
                return torch.log_softmax(y, dim=1)
            return y

    class FuzzNet(nn.Module):
        """Stems (one per input) merged (``add`` / ``cat``), a feature trunk, a vector trunk, heads; with
        ``feature_output`` the trunk's features are an output too."""

        def __init__(self, stems: list[nn.Module], merge: str, trunk: nn.Module, to_vector: nn.Module,
                     dense: nn.Module, heads: list[nn.Module], feature_output: bool) -> None:
            super().__init__()
            self.stems = nn.ModuleList(stems)
            self.merge, self.trunk, self.to_vector, self.dense = merge, trunk, to_vector, dense
            self.heads = nn.ModuleList(heads)
            self.feature_output = feature_output

        def forward(self, *xs: torch.Tensor) -> Any:
            ys = [stem(x) for stem, x in zip(self.stems, xs)]
            x = ys[0] if len(ys) == 1 else (ys[0] + ys[1] if self.merge == "add" else torch.cat(ys, 1))
            features = self.trunk(x)
            vector = self.dense(self.to_vector(features))
            outs = [head(vector) for head in self.heads]
            if self.feature_output:
                outs.append(features)
            return outs[0] if len(outs) == 1 else tuple(outs)

    return {"Residual": Residual, "CatBranch": CatBranch, "Shuffle": Shuffle, "Interp": Interp,
            "ChannelLast": ChannelLast, "ToVector": ToVector, "Head": Head, "FuzzNet": FuzzNet}


# --------------------------------------------------------------------------- the random net
@dataclass
class Drawn:
    """A drawn net: the module, the per-sample shape of each input, whether the outputs are judged by value,
    and a line per block (what ``--show`` prints)."""

    net: Any
    input_shapes: list[tuple[int, ...]]
    regressor: bool
    blocks: list[str] = field(default_factory=list)


class _Builder:
    """Draws blocks over a current per-sample shape, keeping a block only when a probe runs through it."""

    def __init__(self, rng: random.Random, legacy: bool) -> None:
        self.rng, self.legacy = rng, legacy
        self.m = _modules()
        self.blocks: list[str] = []

    def probe(self, module: Any, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The per-sample output shape of ``module`` on ``shape``; None when it fails or empties a dimension
        or the output grows past 4 x MAX_INPUT_ELEMENTS."""
        import torch

        try:
            with torch.no_grad():
                out = module.eval()(torch.randn(PROBE_BATCH, *shape))
        except (RuntimeError, ValueError, IndexError):
            return None
        if out.shape[0] != PROBE_BATCH or 0 in out.shape or out[0].numel() > 4 * MAX_INPUT_ELEMENTS:
            return None
        return tuple(out.shape[1:])

    # ----------------------------------------------------------------- feature blocks
    def conv(self, shape: tuple[int, ...], cout: int | None = None, same: bool = False, grouped: bool = True) -> Any:
        """A Conv (+ BatchNorm) (+ activation); ``same``: the output keeps the spatial shape; ``grouped``:
        groups (and a depthwise channel multiplier) may be drawn, else ``cout`` stays."""
        from torch import nn

        rng = self.rng
        rank = len(shape) - 1
        cin = shape[0]
        cout = cout or rng.choice([4, 6, 8, 12, 16])
        groups = 1
        style = rng.random() if grouped else 1.0
        if style < 0.2:
            groups, cout = cin, cin * rng.choice([1, 1, 2])
        elif style < 0.35:
            common = [g for g in (2, 3, 4) if cin % g == 0 and cout % g == 0]
            groups = rng.choice(common) if common else 1
        if rank == 2:
            kernel: Any = rng.choice([1, 2, 3, 3, 5, (1, 3), (3, 1), (1, 5), (2, 3), (3, 5)])
            stride: Any = 1 if same else rng.choice([1, 1, 1, 2, (1, 2), (2, 1)])
            dilation: Any = rng.choice([1, 1, 1, 2, (1, 2)])
        else:
            kernel = rng.choice([1, 2, 3, 3, 4, 5, 7])
            stride = 1 if same else rng.choice([1, 1, 2, 3])
            dilation = rng.choice([1, 1, 2, 3])
        padding: Any
        if same:
            padding = "same"
        else:
            kinds = rng.random()
            ks = kernel if isinstance(kernel, tuple) else (kernel,) * rank
            if kinds < 0.15 and stride == 1:
                padding = "same"
            elif kinds < 0.3:
                padding = "valid"
            elif kinds < 0.5 and rank == 2:
                padding = tuple(rng.randint(0, k // 2 + 1) for k in ks)
            else:
                padding = rng.randint(0, max(ks) // 2 + 1)
        if padding == "same" and self.legacy:   # exported as auto_pad SAME, which onnxruntime refuses dilated
            dilation = 1
        mode = rng.choice(["zeros"] * 5 + ["reflect", "replicate", "circular"])
        layer = nn.Conv1d if rank == 1 else nn.Conv2d
        conv = layer(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     bias=rng.random() < 0.7, padding_mode=mode)
        parts = [conv]
        if rng.random() < 0.5:
            parts.append((nn.BatchNorm1d if rank == 1 else nn.BatchNorm2d)(cout))
        if rng.random() < 0.8:
            parts.append(activation(rng.choice(ACTIVATIONS), cout, rng))
        self.blocks.append(f"conv{rank}d {cin}->{cout} k={kernel} s={stride} d={dilation} p={padding!r} "
                           f"mode={mode} g={groups} " + " ".join(type(p).__name__ for p in parts[1:]))
        return nn.Sequential(*parts)

    def pool(self, shape: tuple[int, ...]) -> Any:
        """A Max/AvgPool with padding, ceil_mode and count_include_pad."""
        from torch import nn

        rng = self.rng
        rank = len(shape) - 1
        k = rng.choice([2, 2, 3, 3, 4] if rank == 1 else [2, 2, 3, (2, 3), (3, 2)])
        ks = k if isinstance(k, tuple) else (k,) * rank
        stride = rng.choice([None, 1, 2, 2])
        padding = rng.choice([0, 0, 1]) if min(ks) >= 2 else 0
        ceil = rng.random() < 0.4
        if rng.random() < 0.5:
            layer: Any = (nn.MaxPool1d if rank == 1 else nn.MaxPool2d)(k, stride, padding, ceil_mode=ceil)
        else:
            cip = rng.random() < 0.5
            layer = (nn.AvgPool1d if rank == 1 else nn.AvgPool2d)(k, stride, padding, ceil_mode=ceil,
                                                                   count_include_pad=cip)
        self.blocks.append(f"{type(layer).__name__} k={k} s={stride} p={padding} ceil={ceil}"
                           + (f" cip={layer.count_include_pad}" if hasattr(layer, "count_include_pad") else ""))
        return layer

    def adaptive(self, shape: tuple[int, ...]) -> Any:
        """An adaptive avg/max pool, to sizes that divide the input or (mostly with dynamo) do not."""
        from torch import nn

        rng = self.rng
        rank = len(shape) - 1

        def size(n: int) -> int:
            divisors = [d for d in range(1, n) if n % d == 0 and d <= 6]
            others = [d for d in range(2, min(n, 7))]
            prefer_divisible = self.legacy and rng.random() < 0.8
            return rng.choice(divisors if prefer_divisible or not others else others)

        out: Any = size(shape[1]) if rank == 1 else (size(shape[1]), size(shape[2]))
        kind = rng.choice(["avg", "max"])
        layer = {("avg", 1): nn.AdaptiveAvgPool1d, ("avg", 2): nn.AdaptiveAvgPool2d, ("max", 1): nn.AdaptiveMaxPool1d,
                 ("max", 2): nn.AdaptiveMaxPool2d}[kind, rank](out)
        self.blocks.append(f"adaptive-{kind} {shape[1:]} -> {out}")
        return layer

    def interp(self, shape: tuple[int, ...]) -> Any:
        """Nearest or (bi)linear interpolation by a scale or to a size."""
        rng = self.rng
        rank = len(shape) - 1
        mode = rng.choice(["nearest", "nearest", "linear" if rank == 1 else "bilinear"])
        align = rng.choice([True, False]) if mode != "nearest" else None
        scale: Any = None
        size: Any = None
        if rng.random() < 0.6:
            scale = float(rng.choice([2, 2, 3])) if rank == 1 else rng.choice([2.0, (2.0, 1.0), (1.0, 2.0), 3.0])
        else:
            size = shape[1] + rng.randint(1, 5) if rank == 1 else (shape[1] + rng.randint(1, 4),
                                                                   shape[2] + rng.randint(0, 5))
        self.blocks.append(f"interpolate {mode} scale={scale} size={size} align={align}")
        return self.m["Interp"](mode, scale, size, align)

    def feature_block(self, shape: tuple[int, ...]) -> Any:
        """One block over an image or a sequence (kept when it runs; else another draw)."""
        from torch import nn

        rng = self.rng
        rank = len(shape) - 1
        while True:
            kind = rng.choice(["conv", "conv", "conv", "conv", "pool", "adaptive", "interp", "residual", "cat",
                               "shuffle", "channel_last", "groupnorm", "dropout", "act"])
            mark = len(self.blocks)
            if kind == "conv":
                block = self.conv(shape)
            elif kind == "pool":
                block = self.pool(shape)
            elif kind == "adaptive":
                block = self.adaptive(shape)
            elif kind == "interp":
                if int(np.prod(shape)) > MAX_INPUT_ELEMENTS:
                    continue
                block = self.interp(shape)
            elif kind == "residual":
                self.blocks.append("residual add of:")
                body = nn.Sequential(self.conv(shape, cout=shape[0], same=True),
                                     *([self.conv(shape, cout=shape[0], same=True)] if rng.random() < 0.4 else []))
                block = self.m["Residual"](body)
            elif kind == "cat":
                self.blocks.append("concat on channels with:")
                block = self.m["CatBranch"](self.conv(shape, cout=rng.choice([2, 4, 6]), same=True))
            elif kind == "shuffle":
                groups = [g for g in (2, 3, 4) if shape[0] % g == 0]
                if not groups:
                    continue
                style = rng.choice(["batch", "minus1", "flatten"])
                block = self.m["Shuffle"](rng.choice(groups), style)
                self.blocks.append(f"channel shuffle groups={block.groups} style={style}")
            elif kind == "channel_last":
                if rng.random() < 0.5:
                    body: Any = nn.LayerNorm(shape[0])
                else:
                    body = nn.Sequential(nn.Linear(shape[0], rng.choice([4, 8, 12]), bias=rng.random() < 0.7),
                                         activation(rng.choice(ACTIVATIONS), 1, rng))
                block = self.m["ChannelLast"](body, len(shape) + 1)
                self.blocks.append(f"channel-last {body}".replace("\n", " "))
            elif kind == "groupnorm":
                groups = [g for g in (1, 2, 4) if shape[0] % g == 0]
                block = nn.GroupNorm(rng.choice(groups), shape[0], affine=rng.random() < 0.8)
                self.blocks.append(str(block))
            elif kind == "dropout":
                block = nn.Dropout(0.3) if rank == 2 or rng.random() < 0.5 else nn.Dropout1d(0.2)
                self.blocks.append(str(block))
            else:
                block = activation(rng.choice(ACTIVATIONS), shape[0], rng)
                self.blocks.append(str(block))
            new_shape = self.probe(block, shape)
            if new_shape is not None:
                return block, new_shape
            self.blocks[mark:] = []

    # ----------------------------------------------------------------- dense blocks and heads
    def dense(self, width: int) -> tuple[Any, int]:
        """0-2 Linear layers (bias or not) with LayerNorm, an activation, Dropout."""
        from torch import nn

        rng = self.rng
        parts: list[Any] = []
        for _ in range(rng.choice([0, 1, 1, 2])):
            out = rng.choice([8, 16, 24, 32])
            parts.append(nn.Linear(width, out, bias=rng.random() < 0.7))
            if rng.random() < 0.2:
                parts.append(nn.LayerNorm(out))
            if rng.random() < 0.2:
                parts.append(nn.BatchNorm1d(out))
            parts.append(activation(rng.choice(ACTIVATIONS), out, rng))
            if rng.random() < 0.3:
                parts.append(nn.Dropout(0.25))
            width = out
        self.blocks += [str(p).replace("\n", " ") for p in parts]
        return nn.Sequential(*parts), width

    def head(self, width: int, final: str) -> Any:
        """A Linear head of 2-10 outputs (with or without bias) and ``final``."""
        from torch import nn

        linear = nn.Linear(width, self.rng.randint(2, 10), bias=self.rng.random() < 0.8)
        self.blocks.append(f"head {linear} {final}")
        return self.m["Head"](linear, final)


def _input_shape(rng: random.Random) -> tuple[int, ...]:
    """A per-sample input shape: an image (often non-square), a sequence (often odd) or a vector."""
    kind = rng.choice(["image", "image", "image", "sequence", "sequence", "vector"])
    while True:
        if kind == "image":
            shape: tuple[int, ...] = (rng.choice([1, 1, 2, 3, 4]), rng.randint(5, 32), rng.randint(5, 32))
        elif kind == "sequence":
            shape = (rng.choice([1, 2, 3, 4, 6, 8]), rng.choice([rng.randint(8, 200) | 1, rng.randint(8, 200)]))
        else:
            shape = (rng.randint(4, 200),)
        if int(np.prod(shape)) <= MAX_INPUT_ELEMENTS:
            return shape


def random_net(seed: int, legacy: bool) -> Drawn:
    """The net of ``seed`` (redrawn until under MAX_PARAMETERS), weights scaled and norms randomized
    (:func:`_scale_weights`); ``legacy`` steers adaptive pools toward sizes the legacy exporter takes."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)     # the modules' default init draws from torch's global generator
    while True:
        drawn = _draw(rng, legacy)
        if sum(p.numel() for p in drawn.net.parameters()) < MAX_PARAMETERS:
            break
    torch.manual_seed(seed)
    _scale_weights(drawn, seed)
    return drawn


def _draw(rng: random.Random, legacy: bool) -> Drawn:
    """One draw of :func:`random_net` (not yet checked against MAX_PARAMETERS)."""
    from torch import nn

    builder = _Builder(rng, legacy)
    shape = _input_shape(rng)
    inputs = [shape]
    merge = "none"
    stems: list[Any] = []
    if len(shape) > 1 and rng.random() < 0.15:      # two inputs: each its stem, then add or cat
        merge = rng.choice(["add", "cat"])
        second = (rng.choice([1, 2, 3]), *shape[1:])
        inputs.append(second)
        cout = rng.choice([4, 8])
        for s in inputs:
            builder.blocks.append(f"stem of input {s}:")
            stem = builder.conv(s, cout=cout, same=True, grouped=False)
            stems.append(stem)
        shape = builder.probe(stems[0], inputs[0])
        assert shape is not None
        shape = (shape[0] * (2 if merge == "cat" else 1), *shape[1:])
    else:
        stems.append(nn.Identity())
    blocks: list[Any] = []
    if len(shape) > 1:
        for _ in range(rng.randint(1, 6)):
            block, shape = builder.feature_block(shape)
            blocks.append(block)
    trunk = nn.Sequential(*blocks)
    features_shape = shape
    if len(shape) > 1:
        style = rng.choice(["flatten", "view", "reshape", "channel_last", "mean", "mean", "amax", "pool"])
        to_vector = builder.m["ToVector"](style, rng.random() < 0.5)
        width = builder.probe(to_vector, shape)
        assert width is not None
        builder.blocks.append(f"to vector: {style} -> {width[0]}")
        width = width[0]
    else:
        to_vector = nn.Identity()
        width = shape[0]
    dense, width = builder.dense(width)
    finals = ["none", "none", "softmax", "logsoftmax"]
    heads = [builder.head(width, rng.choice(finals)) for _ in range(1 if rng.random() < 0.8 else 2)]
    feature_output = len(features_shape) > 1 and rng.random() < 0.1
    if feature_output:
        builder.blocks.append(f"feature output {features_shape}")
    net = builder.m["FuzzNet"](stems, merge, trunk, to_vector, dense, heads, feature_output)
    softmaxed = any(h.final != "none" for h in heads)
    return Drawn(net, inputs, regressor=not softmaxed and rng.random() < 0.5, blocks=builder.blocks)


def _scale_weights(drawn: Drawn, seed: int) -> None:
    """Layer by layer in execution order, divide each Conv/Linear's weight and bias by its output's
    deviation on normal inputs; then BatchNorm statistics measured on those inputs, and every norm's and
    PReLU's affine parameters randomized (BatchNorm's running mean / variance shifted too)."""
    import torch
    from torch import nn

    net = drawn.net.eval()
    g = torch.Generator().manual_seed(seed)
    probe = [torch.randn(32, *s, generator=g) for s in drawn.input_shapes]
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in net.modules()
             if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(*probe)
        for h in hooks:
            h.remove()
        for layer in dict.fromkeys(order):
            seen: list[torch.Tensor] = []
            hook = layer.register_forward_hook(lambda m, i, o: seen.append(o))
            net(*probe)
            hook.remove()
            std = float(seen[0].std())
            if std > 1e-6:
                layer.weight /= std
                if layer.bias is not None:
                    layer.bias /= std
        norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        net(*probe)
        for bn in norms:
            bn.momentum = 0.1
            bn.eval()
            bn.running_mean += 0.2 * torch.randn(bn.num_features, generator=g)
            bn.running_var *= 0.7 + 0.6 * torch.rand(bn.num_features, generator=g)
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)) and m.weight is not None:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(0.5 * torch.rand(m.weight.shape, generator=g))


# --------------------------------------------------------------------------- export
def export_fuzz(seed: int, exporter: str, opset: int | None, batch: str) -> ExportedModel:
    """Seed ``seed``'s net exported by ``exporter`` at ``opset`` with ``batch`` and its samples."""
    import torch

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    drawn = random_net(seed, exporter == "legacy")
    example_batch = DYNAMIC_EXAMPLE_BATCH if batch == "dynamic" else int(batch)
    examples = tuple(torch.randn(example_batch, *s) for s in drawn.input_shapes)
    names = [f"input{i}" for i in range(len(examples))]
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            outputs = drawn.net(*examples)
            count = len(outputs) if isinstance(outputs, tuple) else 1
            output_names = [f"output{i}" for i in range(count)]
            axes = ({name: {0: "batch"} for name in names + output_names} if batch == "dynamic" else None)
            torch.onnx.export(drawn.net, examples, buffer, dynamo=False, opset_version=opset, input_names=names,
                              output_names=output_names, training=torch.onnx.TrainingMode.EVAL, dynamic_axes=axes)
        else:
            dim = torch.export.Dim("batch", min=1, max=64)
            dynamic = {"xs": tuple({0: dim} for _ in examples)} if batch == "dynamic" else None
            program = torch.onnx.export(drawn.net, examples, dynamo=True, opset_version=opset, verbose=False,
                                        dynamic_shapes=dynamic)
            program.save(buffer)
    proto = onnx.load_from_string(buffer.getvalue())
    rng = np.random.default_rng(1)
    samples = {vi.name: rng.standard_normal((SAMPLES, *s)).astype(np.float32)
               for vi, s in zip(proto.graph.input, drawn.input_shapes)}
    return ExportedModel(proto, samples, regressor=drawn.regressor)


def fuzz_case(seed: int, variant: int | None = None) -> Case:
    """The case of ``seed``: its exporter (drawn, or EXPORTERS[variant]) and batch form (drawn)."""
    rng = random.Random(f"case-{seed}")
    exporter, opset = EXPORTERS[rng.randrange(len(EXPORTERS)) if variant is None else variant]
    batch = rng.choice(["dynamic", "1"])
    name = f"fuzz{seed:04d}-{exporter}{opset or ''}-b{'dyn' if batch == 'dynamic' else batch}"
    requires = ("torch", "onnxscript") if exporter == "dynamo" else ("torch",)
    return Case(name, f"torch-{exporter}", opset or 0, batch, requires,
                functools.partial(export_fuzz, seed, exporter, opset, batch))


def _run_fuzz_case(seed: int, variant: int | None, folder: str) -> Outcome:
    """:func:`run_case` of :func:`fuzz_case` (what a worker process receives)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    return run_case(fuzz_case(seed, variant), Path(folder) / fuzz_case(seed, variant).name)


def run_fuzz(work: list[tuple[int, int | None]], root: Path, jobs: int) -> Iterator[Outcome]:
    """The outcome of every (seed, variant) as it finishes (``jobs`` worker processes)."""
    if jobs == 1:
        for seed, variant in work:
            yield _run_fuzz_case(seed, variant, str(root))
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_fuzz_case, seed, variant, str(root)) for seed, variant in work]
        for future in as_completed(futures):
            yield future.result()


def buckets(outcomes: list[Outcome]) -> list[str]:
    """The not-ok outcomes grouped by status and reason with digits and quoted names masked, largest first."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for o in outcomes:
        if o.status != "ok":
            key = re.sub(r"'[^']*'", "'*'", re.sub(r"\d+(\.\d+)?", "#", o.reason))[:160]
            groups[o.status, key].append(o.name.split("-")[0])
    ranked = sorted(groups.items(), key=lambda item: (FAILING.count(item[0][0]) == 0, -len(item[1])))
    return [f"{len(names):>4} {status:<13} {key}  [{' '.join(names[:6])}{' ...' if len(names) > 6 else ''}]"
            for (status, key), names in ranked]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs=2, type=int, default=(0, 100), metavar=("FIRST", "COUNT"))
    parser.add_argument("--every-exporter", action="store_true", help="each seed through all four exporters")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="cases run at once (default 1)")
    parser.add_argument("--keep", metavar="DIR", help="keep every case's folder and results.json here")
    parser.add_argument("--show", type=int, metavar="SEED", help="print the net of SEED and exit")
    args = parser.parse_args(argv)
    if args.show is not None:
        case = fuzz_case(args.show)
        drawn = random_net(args.show, case.exporter == "torch-legacy")
        params = sum(p.numel() for p in drawn.net.parameters())
        print(f"{case.name}: inputs {drawn.input_shapes}, {params} parameters, "
              f"{'by value' if drawn.regressor else 'top-1'}")
        print("\n".join("  " + line for line in drawn.blocks))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    first, count = args.seeds
    variants: list[int | None] = list(range(len(EXPORTERS))) if args.every_exporter else [None]
    work = [(seed, v) for seed in range(first, first + count) for v in variants]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="freeml-fuzz-") as scratch:
        root = Path(args.keep or scratch)
        root.mkdir(parents=True, exist_ok=True)
        for outcome in run_fuzz(work, root, max(1, args.jobs)):
            outcomes.append(outcome)
            print(f"[{len(outcomes):>3}/{len(work)}] {outcome.status:<13} {outcome.name} ({outcome.seconds} s)"
                  + (f" {outcome.reason[:200]}" if outcome.status != "ok" else ""), flush=True)
        if args.keep:
            (root / "results.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    print()
    print("\n".join(summary(outcomes)))
    print()
    print("buckets:")
    print("\n".join(buckets(outcomes)))
    return 1 if any(o.status in FAILING for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())

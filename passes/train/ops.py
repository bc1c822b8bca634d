"""Forward and backward of every op the training engine runs, vectorised with numpy.

Conventions
-----------
- Axis 0 is the batch: an ONNX tensor of shape ``[1, C, H, W]`` is ``[N, C, H, W]`` here.
- An op is an object built once per node (its attributes resolved to plain numbers) with::

      forward(args, keep)        -> (y, cache)        # cache is None unless keep
      backward(dy, cache, need)  -> [d arg_i or None]  # one entry per arg; None where not need[i]

  ``args`` are the node's inputs that are arrays at run time, in ONNX order (activations and
  weights alike: a weight is just an input whose value comes from the parameter table). Inputs that
  are fixed attributes in disguise (Clip bounds, Reshape shapes) are resolved when the op is built.
- Every op keeps the dtype of its inputs (float32 in training, float64 for gradient checks).
- 1-D feature maps ``[N, C, L]`` are run as 2-D maps ``[N, C, 1, L]``: :class:`Window` describes
  both (``rank`` says which one the node had).

Convolution is im2col + one matmul per group: the columns are gathered as ``[C, KH, KW, N, OH, OW]``
(one strided slice of the padded input per kernel position) so that they reshape without a copy to
``[G, Cg*KH*KW, N*OH*OW]``, which multiplies ``W`` seen as ``[G, Mg, Cg*KH*KW]``. Its backward
scatters the column gradients back with the same slices (col2im). A depthwise convolution (``group > 1``
with one input channel per group) is not: its products would be ``G`` matrices of one row each, and
its columns ``KH*KW`` copies of the input, so it is run directly on the input held as ``[H, W, N, C]``
(one multiply-add of a shifted window per kernel position, over ``N*C`` contiguous values), and
positions whose window sees only padding are skipped (their products are zeros). Measured at batch 64
(float32, one thread): forward + backward of a 3x3 depthwise layer over 48x16x16 35 -> 32 ms, 5x5 over
96x8x8 79 -> 31 ms, over 144x2x2 14 -> 1.1 ms, over 288x1x1 (one tap sees the input) 4 -> 0.2 ms; with
a channel multiplier (``M > C``) the repeated input made it slower than the columns, so that form
keeps them.
Max pooling keeps the index of the
winning kernel position (the first maximum on ties) and routes the gradient there; average pooling
divides by the count of positions inside the input (or inside the padded extent
``[-p_begin, n + p_end)`` with ``count_include_pad``), the same rule as onnxruntime.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Grads = list[np.ndarray | None]


# --------------------------------------------------------------------------- helpers
def out_size(n: int, k: int, s: int, p0: int, p1: int, d: int, ceil: bool = False) -> int:
    """Output extent of a sliding window along one axis (floor or ceil rounding)."""
    span = n + p0 + p1 - ((k - 1) * d + 1)
    return (-(-span // s) if ceil else span // s) + 1


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


@dataclass(frozen=True)
class Window:
    """The geometry of a 2-D sliding window over one static per-sample input size.

    ``pads`` is (top, left, bottom, right). A 1-D window is stored as 2-D with a height-1 axis
    (kernel 1, stride 1, no padding) and ``rank = 1``.
    """

    size: tuple[int, int]
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int, int, int]
    out: tuple[int, int]
    rank: int = 2

    @classmethod
    def make(cls, size: Sequence[int], kernel: Sequence[int], strides: Sequence[int] | None = None,
             pads: Sequence[int] | None = None, dilations: Sequence[int] | None = None,
             out: Sequence[int] | None = None, ceil: bool = False) -> "Window":
        """A window from ONNX-style attributes over a 1-D or 2-D ``size``.

        ``pads`` is ONNX order (all begins, then all ends). ``out`` overrides the computed output
        extent (the recorded output shape of a node, e.g. after ``ceil_mode``).
        """
        rank = len(size)
        if rank not in (1, 2) or len(kernel) != rank:
            raise ValueError(f"window over {list(size)} with kernel {list(kernel)}: need 1-D or 2-D")
        strides = list(strides or [1] * rank)
        dilations = list(dilations or [1] * rank)
        pads = list(pads or [0] * 2 * rank)
        outs = list(out) if out is not None else [
            out_size(size[i], kernel[i], strides[i], pads[i], pads[rank + i], dilations[i], ceil)
            for i in range(rank)]
        if rank == 1:
            return cls((1, int(size[0])), (1, int(kernel[0])), (1, int(strides[0])), (1, int(dilations[0])),
                       (0, int(pads[0]), 0, int(pads[1])), (1, int(outs[0])), rank=1)
        return cls((int(size[0]), int(size[1])), (int(kernel[0]), int(kernel[1])),
                   (int(strides[0]), int(strides[1])), (int(dilations[0]), int(dilations[1])),
                   (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])), (int(outs[0]), int(outs[1])))

    @property
    def padded(self) -> tuple[int, int]:
        """Extent of the padded input: the declared padding, or more when the windows need it."""
        ext = []
        for axis in range(2):
            n, k, s, d, o = self.size[axis], self.kernel[axis], self.strides[axis], self.dilations[axis], \
                self.out[axis]
            declared = n + self.pads[axis] + self.pads[axis + 2]
            ext.append(max(declared, (o - 1) * s + (k - 1) * d + 1, self.pads[axis] + n))
        return ext[0], ext[1]

    @property
    def positions(self) -> list[tuple[int, int]]:
        """Kernel positions (i, j) in row-major order."""
        return [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]

    def taps(self) -> list[tuple[int, tuple[int, int]]]:
        """``(k, (i, j))`` for the kernel positions (``k``: row-major index) whose windows see at least
        one input value; the others see only padding."""
        seen = []
        for axis in range(2):
            k, s, d, o, p0, n = self.kernel[axis], self.strides[axis], self.dilations[axis], self.out[axis], \
                self.pads[axis], self.size[axis]
            starts = np.arange(k)[:, None] * d + np.arange(o)[None, :] * s - p0
            seen.append(((starts >= 0) & (starts < n)).any(axis=1))
        return [(k, (i, j)) for k, (i, j) in enumerate(self.positions) if seen[0][i] and seen[1][j]]

    def slices(self, i: int, j: int) -> tuple[slice, slice]:
        """The strided slices of the padded input that kernel position (i, j) sees, one per output."""
        (sh, sw), (dh, dw), (oh, ow) = self.strides, self.dilations, self.out
        return (slice(i * dh, i * dh + (oh - 1) * sh + 1, sh), slice(j * dw, j * dw + (ow - 1) * sw + 1, sw))

    def to4d(self, x: np.ndarray) -> np.ndarray:
        """``[N, C, L]`` -> ``[N, C, 1, L]`` for a 1-D window; a 2-D input as is."""
        return x[:, :, None, :] if self.rank == 1 else x

    def from4d(self, y: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to4d` on an output."""
        return y[:, :, 0, :] if self.rank == 1 else y

    def pad(self, x4: np.ndarray, value: float) -> np.ndarray:
        """``x4`` placed into the padded extent filled with ``value``."""
        n, c, h, w = x4.shape
        hp, wp = self.padded
        top, left = self.pads[0], self.pads[1]
        if (hp, wp) == (h, w):
            return x4
        xp = np.full((n, c, hp, wp), value, dtype=x4.dtype)
        xp[:, :, top:top + h, left:left + w] = x4
        return xp

    def crop(self, dxp: np.ndarray) -> np.ndarray:
        """The part of a padded-extent gradient that lies on the input."""
        h, w = self.size
        top, left = self.pads[0], self.pads[1]
        if dxp.shape[2:] == (h, w):
            return dxp
        return dxp[:, :, top:top + h, left:left + w]

    def counts(self, include_pad: bool) -> np.ndarray:
        """``[OH, OW]`` number of window positions inside the input (or the padded extent)."""
        per_axis = []
        for axis in range(2):
            n, k, s, d, o = self.size[axis], self.kernel[axis], self.strides[axis], self.dilations[axis], \
                self.out[axis]
            p0, p1 = self.pads[axis], self.pads[axis + 2]
            lo, hi = (-p0, n + p1) if include_pad else (0, n)
            starts = np.arange(o)[:, None] * s - p0 + np.arange(k)[None, :] * d
            per_axis.append(((starts >= lo) & (starts < hi)).sum(axis=1))
        return per_axis[0][:, None] * per_axis[1][None, :]


# --------------------------------------------------------------------------- the op interface
class Op(ABC):
    """One node's computation; see the module docstring for the contract."""

    @abstractmethod
    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        """The output for ``args`` and, when ``keep``, what :meth:`backward` needs."""

    @abstractmethod
    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        """Gradients with respect to each arg (None where ``need`` is False)."""


# --------------------------------------------------------------------------- Conv and Gemm
class Conv(Op):
    """``Conv(x, W[, B])`` with strides, pads, dilations and groups (depthwise included), 1-D or 2-D."""

    def __init__(self, window: Window, group: int) -> None:
        self.window = window
        self.group = group
        self.taps = window.taps()

    def _columns(self, x: np.ndarray) -> np.ndarray:
        win = self.window
        xp = win.pad(win.to4d(x), 0.0)
        n, c = xp.shape[:2]
        kh, kw = win.kernel
        cols = np.empty((c, kh, kw, n, *win.out), dtype=x.dtype)
        for i, j in win.positions:
            rows, columns = win.slices(i, j)
            cols[:, i, j] = xp[:, :, rows, columns].transpose(1, 0, 2, 3)
        return cols

    def _depthwise(self, w: np.ndarray) -> bool:
        """Whether the layer is depthwise (one input and one output channel per group): run directly,
        not through columns (module docstring)."""
        return self.group > 1 and w.shape[1] == 1 and w.shape[0] == self.group

    def _depthwise_forward(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None,
                           keep: bool) -> tuple[np.ndarray, Any]:
        win = self.window
        x4 = win.to4d(x)
        n, c, h, wd = x4.shape
        m = w.shape[0]
        top, left = win.pads[0], win.pads[1]
        xt = np.zeros((*win.padded, n, c), dtype=x.dtype)                    # [Hp, Wp, N, C]
        xt[top:top + h, left:left + wd] = x4.transpose(2, 3, 0, 1)
        kernels = w.reshape(m, -1)
        acc = np.zeros((*win.out, n, m), dtype=x.dtype)
        term = np.empty_like(acc)
        for k, (i, j) in self.taps:
            rows, columns = win.slices(i, j)
            np.multiply(xt[rows, columns], kernels[:, k], out=term)
            acc += term
        out = np.empty((n, m, *win.out), dtype=x.dtype)
        if bias is not None:
            np.add(acc.transpose(2, 3, 0, 1), bias.reshape(1, m, 1, 1), out=out)
        else:
            out[...] = acc.transpose(2, 3, 0, 1)
        return win.from4d(out), ((xt, w) if keep else None)

    def _depthwise_backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        xt, w = cache
        win = self.window
        dy4 = win.to4d(dy)
        m = w.shape[0]
        dyt = np.ascontiguousarray(dy4.transpose(2, 3, 0, 1))              # [OH, OW, N, M]
        kernels = w.reshape(m, -1)
        grads: Grads = [None] * len(need)
        term = np.empty_like(dyt)
        if need[1]:
            dw = np.zeros(kernels.shape, dtype=dy.dtype)
            for k, (i, j) in self.taps:
                rows, columns = win.slices(i, j)
                np.multiply(dyt, xt[rows, columns], out=term)
                dw[:, k] = term.sum(axis=(0, 1, 2))
            grads[1] = dw.reshape(w.shape)
        if len(need) > 2 and need[2]:
            grads[2] = dy4.sum(axis=(0, 2, 3))
        if need[0]:
            dxt = np.zeros(xt.shape, dtype=dy.dtype)
            for k, (i, j) in self.taps:
                rows, columns = win.slices(i, j)
                np.multiply(dyt, kernels[:, k], out=term)
                dxt[rows, columns] += term
            h, wd = win.size
            top, left = win.pads[0], win.pads[1]
            grads[0] = win.from4d(dxt[top:top + h, left:left + wd].transpose(2, 3, 0, 1))
        return grads

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x, w = args[0], args[1]
        if self._depthwise(w):
            return self._depthwise_forward(x, w, args[2] if len(args) > 2 else None, keep)
        n = x.shape[0]
        g, m = self.group, w.shape[0]
        cols = self._columns(x).reshape(g, -1, n * self.window.out[0] * self.window.out[1])
        y = np.matmul(w.reshape(g, m // g, -1), cols)                       # [G, Mg, N*P]
        y4 = y.reshape(m, n, *self.window.out).transpose(1, 0, 2, 3)
        out = np.empty(y4.shape, dtype=y.dtype)
        if len(args) > 2:
            np.add(y4, args[2].reshape(1, m, 1, 1), out=out)
        else:
            out[...] = y4
        return self.window.from4d(out), ((cols, w, x.shape) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if self._depthwise(cache[1]):
            return self._depthwise_backward(dy, cache, need)
        cols, w, x_shape = cache
        win = self.window
        g, m = self.group, w.shape[0]
        dy4 = win.to4d(dy)
        n = dy4.shape[0]
        dym = np.ascontiguousarray(dy4.reshape(n, g, m // g, -1).transpose(1, 2, 0, 3)).reshape(g, m // g, -1)
        grads: Grads = [None] * len(need)
        if need[1]:
            grads[1] = np.matmul(dym, cols.transpose(0, 2, 1)).reshape(w.shape)
        if len(need) > 2 and need[2]:
            grads[2] = dy4.sum(axis=(0, 2, 3))
        if need[0]:
            dcols = np.matmul(w.reshape(g, m // g, -1).transpose(0, 2, 1), dym)
            c = x_shape[1]
            dcols = dcols.reshape(c, *win.kernel, n, *win.out)
            dxp = np.zeros((n, c, *win.padded), dtype=dy.dtype)
            for i, j in win.positions:
                rows, columns = win.slices(i, j)
                dxp[:, :, rows, columns] += dcols[:, i, j].transpose(1, 0, 2, 3)
            grads[0] = win.from4d(win.crop(dxp))
        return grads


class Gemm(Op):
    """``Gemm(A, B[, C]) = alpha * A @ op(B) + beta * C`` with ``transA = 0``, ``op(B) = B^T`` if transB."""

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, trans_b: bool = True) -> None:
        self.alpha = alpha
        self.beta = beta
        self.trans_b = trans_b

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        a, b = args[0], args[1]
        y = a @ (b.T if self.trans_b else b)
        if self.alpha != 1.0:
            y *= y.dtype.type(self.alpha)
        if len(args) > 2:
            c = args[2]
            y += c if self.beta == 1.0 else c * c.dtype.type(self.beta)
        return y, ((a, b, None if len(args) < 3 else args[2].shape) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        a, b, c_shape = cache
        grads: Grads = [None] * len(need)
        scaled = dy * dy.dtype.type(self.alpha) if self.alpha != 1.0 else dy
        if need[0]:
            grads[0] = scaled @ (b if self.trans_b else b.T)
        if need[1]:
            grads[1] = scaled.T @ a if self.trans_b else a.T @ scaled
        if len(need) > 2 and need[2]:
            grads[2] = unbroadcast(dy * dy.dtype.type(self.beta) if self.beta != 1.0 else dy, c_shape)
        return grads


# --------------------------------------------------------------------------- activations
class Relu(Op):
    """``max(x, 0)``."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        y = np.maximum(args[0], 0)
        return y, (y > 0 if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [dy * cache if need[0] else None]


class LeakyRelu(Op):
    """``x if x >= 0 else alpha * x``."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        positive = x >= 0
        y = np.where(positive, x, x * x.dtype.type(self.alpha))
        return y, (positive if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        return [np.where(cache, dy, dy * dy.dtype.type(self.alpha))]


class Clip(Op):
    """``min(max(x, low), high)`` with constant bounds (None: unbounded on that side)."""

    def __init__(self, low: float | None, high: float | None) -> None:
        self.low = low
        self.high = high

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        y = np.clip(x, self.low, self.high)
        if not keep:
            return y, None
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return y, inside

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [dy * cache if need[0] else None]


class Softmax(Op):
    """``exp(x) / sum(exp(x))`` along ``axis`` (not the batch axis)."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        y = e / e.sum(axis=self.axis, keepdims=True)
        return y, (y if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        y = cache
        return [y * (dy - (dy * y).sum(axis=self.axis, keepdims=True))]


class LayerNorm(Op):
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis (scale, bias ``[N]``;
    without a bias argument it is 0)."""

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x, scale = args[0], args[1]
        d = x - x.mean(axis=-1, keepdims=True)
        inv = 1.0 / np.sqrt((d * d).mean(axis=-1, keepdims=True) + self.eps)
        xhat = d * inv
        y = xhat * scale + (args[2] if len(args) > 2 else 0.0)
        return y, ((xhat, inv, scale) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        xhat, inv, scale = cache
        axes = tuple(range(dy.ndim - 1))
        dxhat = dy * scale
        dx = inv * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                    - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) if need[0] else None
        grads: Grads = [dx, (dy * xhat).sum(axis=axes) if need[1] else None]
        if len(need) > 2:
            grads.append(dy.sum(axis=axes) if need[2] else None)
        return grads


class MatMul(Op):
    """``a @ b`` of two activations (numpy's batched product over the leading axes)."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        a, b = args
        return np.matmul(a, b), ((a, b) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        a, b = cache
        return [np.matmul(dy, np.swapaxes(b, -1, -2)) if need[0] else None,
                np.matmul(np.swapaxes(a, -1, -2), dy) if need[1] else None]


class LogSoftmax(Op):
    """``x - log(sum(exp(x)))`` along ``axis`` (not the batch axis)."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        shifted = x - x.max(axis=self.axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))
        return y, (y if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        return [dy - np.exp(cache) * dy.sum(axis=self.axis, keepdims=True)]


class Sigmoid(Op):
    """``1 / (1 + exp(-x))`` element-wise."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        y = _sig(x).astype(x.dtype, copy=False)
        return y, (y if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [dy * cache * (1 - cache) if need[0] else None]


class Unary(Op):
    """An element-wise function ``y = f(x)`` with its derivative ``df(x, y)`` (Tanh, HardSigmoid,
    HardSwish, Erf, Gelu, Elu, Softplus, Softsign, Mish: :data:`UNARY`); ``params`` are the ONNX
    attributes it needs (alpha, beta, approximate). Computed in the input's dtype (float32 in training,
    as onnxruntime does; a float64 round trip made HardSwish 9x slower, measured at batch 64 over
    32x16x16, for differences of one float32 rounding)."""

    def __init__(self, op_type: str, **params: Any) -> None:
        self.op_type = op_type
        self.params = params
        self.f, self.df = UNARY[op_type]

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        y = np.asarray(self.f(x, **self.params)).astype(x.dtype, copy=False)
        return y, ((x, y) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        x, y = cache
        return [(dy * self.df(x, y, **self.params)).astype(dy.dtype, copy=False)]


_erf_exact = np.vectorize(math.erf, otypes=[np.float64])
_ERF_SERIES = (1.0, -1.0 / 3.0, 1.0 / 10.0, -1.0 / 42.0, 1.0 / 216.0, -1.0 / 1320.0)
"""erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)): the first six terms (relative error
below 3e-8 for |x| < 0.5)."""
_ERF_AS = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_ERF_AS_P = 0.3275911
"""Abramowitz & Stegun 7.1.26: erf(x) = 1 - t (a1 + t (a2 + ...)) exp(-x^2), t = 1 / (1 + p x), x >= 0,
absolute error below 1.5e-7."""


def _erf(x: np.ndarray) -> np.ndarray:
    """erf element-wise. float64 (gradient checks): ``math.erf`` per element. Narrower floats
    (training): vectorised, the series below 0.5 and Abramowitz & Stegun 7.1.26 above (measured in
    float32: relative error below 7e-7, a few roundings; ``math.erf`` per element was a Python call
    per value: over a 64x96x8x8 batch 54 -> 15 ms)."""
    x = np.asarray(x)
    if x.dtype == np.float64:
        return _erf_exact(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _ERF_AS_P * a)
    poly = _ERF_AS[-1]
    for coefficient in reversed(_ERF_AS[:-1]):
        poly = poly * t + coefficient
    large = 1.0 - poly * t * np.exp(-a * a)
    a2 = a * a
    series = _ERF_SERIES[-1]
    for coefficient in reversed(_ERF_SERIES[:-1]):
        series = series * a2 + coefficient
    small = (2.0 / math.sqrt(math.pi)) * a * series
    return np.copysign(np.where(a < 0.5, small, large), x).astype(x.dtype, copy=False)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _sig(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in the dtype of ``x``; below about -88 (float32) ``exp`` overflows to inf
    and the result is 0, the rounded value (measured: 13x faster than ``exp(-logaddexp(0, -x))``,
    within 2e-7 of it)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_PI * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _dgelu(x: np.ndarray, y: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_PI * (x + 0.044715 * x ** 3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_PI * (1.0 + 3 * 0.044715 * x * x)
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _mish_parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.tanh(np.logaddexp(0.0, x))
    return t, x * (1.0 - t * t) * _sig(x)


UNARY: dict[str, tuple[Any, Any]] = {
    "Tanh": (lambda x: np.tanh(x), lambda x, y: 1.0 - y * y),
    "HardSigmoid": (lambda x, alpha, beta: np.clip(alpha * x + beta, 0.0, 1.0),
                    lambda x, y, alpha, beta: np.where((alpha * x + beta > 0) & (alpha * x + beta < 1), alpha, 0.0)),
    "HardSwish": (lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
                  lambda x, y: np.where(x < -3.0, 0.0, np.where(x > 3.0, 1.0, x / 3.0 + 0.5))),
    "Erf": (lambda x: _erf(x), lambda x, y: 2.0 / math.sqrt(math.pi) * np.exp(-x * x)),
    "Gelu": (_gelu, _dgelu),
    "Elu": (lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
            lambda x, y, alpha: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))),
    "Softplus": (lambda x: np.logaddexp(0.0, x), lambda x, y: _sig(x)),
    "Softsign": (lambda x: x / (1.0 + np.abs(x)), lambda x, y: 1.0 / (1.0 + np.abs(x)) ** 2),
    "Mish": (lambda x: x * _mish_parts(x)[0], lambda x, y: sum(_mish_parts(x))),
}
"""f(x, **params) and df(x, y, **params) of each element-wise op :class:`Unary` runs."""


class Sub(Op):
    """``a - b`` with numpy broadcasting."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        a, b = args
        return a - b, ((a.shape, b.shape) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        sa, sb = cache
        return [unbroadcast(dy, sa) if need[0] else None, unbroadcast(-dy, sb) if need[1] else None]


class Div(Op):
    """``a / b`` with numpy broadcasting."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        a, b = args
        return a / b, ((a, b) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        a, b = cache
        return [unbroadcast(dy / b, a.shape) if need[0] else None,
                unbroadcast(-dy * a / (b * b), b.shape) if need[1] else None]


class Pow(Op):
    """``x ** p`` with a constant number ``p`` (resolved when the op is built)."""

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        return (x ** self.exponent).astype(x.dtype, copy=False), (x if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [dy * self.exponent * cache ** (self.exponent - 1) if need[0] else None]


# --------------------------------------------------------------------------- pooling
class MaxPool(Op):
    """Max over each window (padding never wins); the gradient goes to the first maximum."""

    def __init__(self, window: Window) -> None:
        self.window = window

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        win = self.window
        xp = win.pad(win.to4d(args[0]), -np.inf)
        out: np.ndarray | None = None
        arg = np.zeros((xp.shape[0], xp.shape[1], *win.out), dtype=np.int32) if keep else None
        for k, (i, j) in enumerate(win.positions):
            rows, columns = win.slices(i, j)
            view = xp[:, :, rows, columns]
            if out is None:
                out = view.copy()
                continue
            better = view > out
            np.copyto(out, view, where=better)
            if arg is not None:
                np.copyto(arg, k, where=better)
        assert out is not None
        return win.from4d(out), ((arg, args[0].shape) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        arg, x_shape = cache
        win = self.window
        dy4 = win.to4d(dy)
        dxp = np.zeros((dy4.shape[0], dy4.shape[1], *win.padded), dtype=dy.dtype)
        zero = dy.dtype.type(0)
        for k, (i, j) in enumerate(win.positions):
            rows, columns = win.slices(i, j)
            dxp[:, :, rows, columns] += np.where(arg == k, dy4, zero)
        return [win.from4d(win.crop(dxp))]


class AveragePool(Op):
    """Mean over each window; the divisor counts the positions inside the input (see module docs)."""

    def __init__(self, window: Window, count_include_pad: bool) -> None:
        self.window = window
        counts = window.counts(count_include_pad)
        self._divisor = np.where(counts > 0, counts, 1).astype(np.float64)

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        win = self.window
        x = args[0]
        xp = win.pad(win.to4d(x), 0.0)
        total = np.zeros((xp.shape[0], xp.shape[1], *win.out), dtype=x.dtype)
        for i, j in win.positions:
            rows, columns = win.slices(i, j)
            total += xp[:, :, rows, columns]
        total /= self._divisor.astype(x.dtype)
        return win.from4d(total), (x.shape if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        win = self.window
        dy4 = win.to4d(dy) / self._divisor.astype(dy.dtype)
        dxp = np.zeros((dy4.shape[0], dy4.shape[1], *win.padded), dtype=dy.dtype)
        for i, j in win.positions:
            rows, columns = win.slices(i, j)
            dxp[:, :, rows, columns] += dy4
        return [win.from4d(win.crop(dxp))]


class GlobalAveragePool(Op):
    """Mean over every spatial axis, keeping them as size 1."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        axes = tuple(range(2, x.ndim))
        return x.mean(axis=axes, keepdims=True), (x.shape if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        shape = cache
        count = int(np.prod(shape[2:]))
        return [np.broadcast_to(dy / dy.dtype.type(count), shape)]


# --------------------------------------------------------------------------- arithmetic and layout
class Add(Op):
    """``a + b`` with numpy broadcasting (activation + activation, or + a constant)."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        a, b = args
        return a + b, ((a.shape, b.shape) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [unbroadcast(dy, shape) if wanted else None for shape, wanted in zip(cache, need)]


class Mul(Op):
    """``a * b`` with numpy broadcasting (an activation times a per-channel constant)."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        a, b = args
        return a * b, ((a, b) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        a, b = cache
        return [unbroadcast(dy * b, a.shape) if need[0] else None,
                unbroadcast(dy * a, b.shape) if need[1] else None]


class Concat(Op):
    """Concatenation along ``axis`` (the channel axis in the normal form)."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        sizes = [a.shape[self.axis] for a in args]
        return np.concatenate(list(args), axis=self.axis), (sizes if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        parts = np.split(dy, np.cumsum(cache)[:-1].tolist(), axis=self.axis)
        return [p if wanted else None for p, wanted in zip(parts, need)]


class Transpose(Op):
    """Permute the axes of every sample: ``perm`` over the whole tensor with the batch axis first
    (``perm[0] == 0``); the backward pass applies the inverse permutation."""

    def __init__(self, perm: Sequence[int]) -> None:
        self.perm = tuple(int(p) for p in perm)
        self.inverse = tuple(int(i) for i in np.argsort(self.perm))

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        return np.ascontiguousarray(np.transpose(args[0], self.perm)), None

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [np.ascontiguousarray(np.transpose(dy, self.inverse)) if need[0] else None]


class Upsample(Op):
    """Grow the spatial axes of every sample by integer ``factors``: nearest (``zeros=False``:
    each element repeated, the backward pass sums each block of the gradient) or zero insertion
    (``zeros=True``: ``f - 1`` zeros between neighbours, the backward pass reads every ``f``-th
    gradient element)."""

    def __init__(self, factors: Sequence[int], zeros: bool) -> None:
        self.factors = tuple(int(f) for f in factors)
        self.zeros = zeros

    def _every(self) -> tuple[slice, ...]:
        return (slice(None), slice(None), *(slice(None, None, f) for f in self.factors))

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        if self.zeros:
            y = np.zeros((*x.shape[:2], *[(n - 1) * f + 1 for n, f in zip(x.shape[2:], self.factors)]), x.dtype)
            y[self._every()] = x
            return y, None
        for axis, f in enumerate(self.factors, start=2):
            x = np.repeat(x, f, axis=axis)
        return np.ascontiguousarray(x), None

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        if self.zeros:
            return [np.ascontiguousarray(dy[self._every()])]
        blocks = [d for n, f in zip(dy.shape[2:], self.factors) for d in (n // f, f)]
        summed = dy.reshape(*dy.shape[:2], *blocks).sum(axis=tuple(range(3, 3 + 2 * len(self.factors), 2)))
        return [np.ascontiguousarray(summed)]


class Gather(Op):
    """Constant ``indices`` along one ``axis`` after the batch (numpy's ``take``: a number drops the
    axis, an array keeps it); the backward pass adds the gradient back at those positions."""

    def __init__(self, axis: int, indices: int | np.ndarray) -> None:
        self.axis = axis
        self.indices = indices

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        return np.ascontiguousarray(np.take(x, self.indices, axis=self.axis)), (x.shape if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        dx = np.zeros(cache, dy.dtype)
        np.add.at(dx, (slice(None),) * self.axis + (self.indices,), dy)
        return [dx]


class Embedding(Op):
    """Rows of a table selected by token ids: ``args = [table [V, D], ids [N, *S]]`` -> ``[N, *S, D]``
    (ids arrive as floats, the Dataset's; they are whole numbers in ``[0, V)``, checked when the data
    was loaded). The backward pass adds the gradient into the selected rows (the ids get none)."""

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        table, ids = args
        index = np.rint(ids).astype(np.int64)
        return np.ascontiguousarray(table[index]), ((index, table.shape) if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None, None]
        index, shape = cache
        dtable = np.zeros(shape, dy.dtype)
        np.add.at(dtable, index.reshape(-1), dy.reshape(-1, shape[1]))
        return [dtable, None]


class Slice(Op):
    """Constant per-axis ``slices`` after the batch; the backward pass writes the gradient back into
    zeros at the sliced positions."""

    def __init__(self, slices: Sequence[slice]) -> None:
        self.key = (slice(None), *slices)

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        return np.ascontiguousarray(x[self.key]), (x.shape if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        if not need[0]:
            return [None]
        dx = np.zeros(cache, dy.dtype)
        dx[self.key] = dy
        return [dx]


class Reshape(Op):
    """Reshape every sample to ``shape`` (the per-sample target; Flatten is ``(-1,)``)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(d) for d in shape)

    def forward(self, args: Sequence[np.ndarray], keep: bool) -> tuple[np.ndarray, Any]:
        x = args[0]
        return x.reshape((x.shape[0], *self.shape)), (x.shape if keep else None)

    def backward(self, dy: np.ndarray, cache: Any, need: Sequence[bool]) -> Grads:
        return [dy.reshape(cache) if need[0] else None]

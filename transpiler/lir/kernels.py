"""The numpy reference kernels: the bit-exact definition of every LIR op (docs/lir.md).

Each function takes and returns numpy arrays in the LIR layout (activations ``int16`` ``[C, H, W]``
or ``[N]`` without a batch axis, weights ``int16`` ``[Cout, Cin/g, kh, kw]`` or ``[N, K]``, biases
``int32``) and computes in ``int64``, wrapping to 32 bits exactly where the C accumulator wraps, so
that the C kernels in ``runtime_c/`` can be compared with them bit for bit.

Rounding, in one place (see ``requant``): a right shift by ``s`` rounds half up
(``floor(acc / 2^s + 1/2)``); a left shift saturates; every int16 result saturates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INT16_MIN = -32768
INT16_MAX = 32767
ACT_KINDS = ("none", "relu", "clip", "leaky")

IntSeq = Sequence[int]


@dataclass(frozen=True)
class Act:
    """An activation applied to an int16 step result (docs/lir.md, "Activations").

    kind: "none", "relu", "clip" or "leaky"; lo/hi: clip bounds in the output's Q format;
    alpha: the leaky slope in Q15 (0 <= alpha < 32768).
    """

    kind: str = "none"
    lo: int = INT16_MIN
    hi: int = INT16_MAX
    alpha: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ACT_KINDS:
            raise ValueError(f"unknown activation {self.kind!r}; expected one of {ACT_KINDS}")
        for name in ("lo", "hi", "alpha"):
            v = getattr(self, name)
            if not INT16_MIN <= v <= INT16_MAX:
                raise ValueError(f"activation {name}={v} is outside int16")
        if self.kind == "leaky" and self.alpha < 0:
            raise ValueError(f"leaky alpha={self.alpha} must be >= 0")

    @staticmethod
    def from_attrs(attrs: dict[str, object]) -> Act:
        """The activation described by a step's attributes (`act`, `lo`, `hi`, `alpha`)."""
        kind = attrs.get("act", "none")
        if not isinstance(kind, str):
            raise ValueError(f"act must be a string, got {kind!r}")
        fields: dict[str, int] = {}
        for name in ("lo", "hi", "alpha"):
            if name in attrs:
                v = attrs[name]
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError(f"{name} must be an int, got {v!r}")
                fields[name] = v
        if kind == "clip" and not {"lo", "hi"} <= fields.keys():
            raise ValueError("act=\"clip\" needs the attributes lo and hi")
        if kind == "leaky" and "alpha" not in fields:
            raise ValueError("act=\"leaky\" needs the attribute alpha")
        return Act(kind, **fields)


def _as_act(act: Act | str) -> Act:
    return act if isinstance(act, Act) else Act(act)


def wrap32(v: np.ndarray) -> np.ndarray:
    """Wrap integers to int32 two's complement (modulo 2^32), returned as int64."""
    v = np.asarray(v, dtype=np.int64)
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


def sat16(v: np.ndarray) -> np.ndarray:
    """Saturate to the int16 range; returns int16."""
    return np.clip(np.asarray(v, dtype=np.int64), INT16_MIN, INT16_MAX).astype(np.int16)


def requant(acc: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """int32 accumulator(s) -> int16: a rounding right shift by `shift`, saturated.

    `shift` broadcasts against `acc` and lies in [-15, 31]. For s > 0 the result is
    floor(acc / 2^s + 1/2) (round half up, towards +inf); s == 0 keeps acc; s < 0 multiplies by
    2^-s. The result saturates to int16. `acc` must already be a 32-bit value (see wrap32).
    """
    a = np.asarray(acc, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if s.size and (s.min() < -15 or s.max() > 31):
        raise ValueError(f"requant shift out of [-15, 31]: {s.min()}..{s.max()}")
    a, s = np.broadcast_arrays(a, s)
    pos = np.maximum(s, 1)
    # t = acc >> (s - 1) (floor); r = (t >> 1) + (t & 1) = floor(acc / 2^s + 1/2).
    t = a >> (pos - 1)
    down = (t >> 1) + (t & 1)
    # For s <= 0: acc * 2^-s; an int32 times at most 2^15 cannot overflow int64.
    up = a << np.maximum(-s, 0)
    return sat16(np.where(s > 0, down, up))


def apply_act(y: np.ndarray, act: Act | str) -> np.ndarray:
    """The activation of a step applied to its int16 result `y`; returns int16."""
    a = _as_act(act)
    v = np.asarray(y, dtype=np.int64)
    if a.kind == "none":
        r = v
    elif a.kind == "relu":
        r = np.maximum(v, 0)
    elif a.kind == "clip":
        r = np.minimum(np.maximum(v, a.lo), a.hi)
    else:  # leaky
        r = np.where(v >= 0, v, requant(v * a.alpha, 15))
    return r.astype(np.int16)


def divround(total: np.ndarray, n: np.ndarray) -> np.ndarray:
    """floor((2 * total + n) / (2 * n)): the mean rounded half up; 0 where n == 0."""
    t = np.asarray(total, dtype=np.int64)
    c = np.asarray(n, dtype=np.int64)
    safe = np.maximum(c, 1)
    return np.where(c > 0, np.floor_divide(2 * t + safe, 2 * safe), 0)


def _out_len(size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dil: int) -> int:
    return (size + pad_lo + pad_hi - dil * (k - 1) - 1) // stride + 1


def out_hw(hw: tuple[int, int], kernel: IntSeq, stride: IntSeq, pads: IntSeq,
           dilation: IntSeq = (1, 1)) -> tuple[int, int]:
    """The output (OH, OW) of a window op in floor mode (the ONNX default)."""
    return (_out_len(hw[0], kernel[0], stride[0], pads[0], pads[2], dilation[0]),
            _out_len(hw[1], kernel[1], stride[1], pads[1], pads[3], dilation[1]))


def _windows(xp: np.ndarray, kernel: IntSeq, stride: IntSeq, dilation: IntSeq,
             out: tuple[int, int]) -> np.ndarray:
    """Strided window view of a padded [C, Hp, Wp] array: [C, kh, kw, OH, OW].

    Element [c, ky, kx, oy, ox] is xp[c, oy*sh + ky*dh, ox*sw + kx*dw].
    """
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    oh, ow = out
    c = xp.shape[0]
    s = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(c, kh, kw, oh, ow),
        strides=(s[0], s[1] * dh, s[2] * dw, s[1] * sh, s[2] * sw), writeable=False)


def _pad_for(x: np.ndarray, kernel: IntSeq, stride: IntSeq, pads: IntSeq, dilation: IntSeq,
             out: tuple[int, int], fill: int) -> np.ndarray:
    """x [C, H, W] as int64, padded with `fill` so that every window of `out` lies inside.

    The top/left padding is pads[0]/pads[1]; the bottom/right extent follows from the output size
    (a ceil-mode output may need more than pads[2]/pads[3]; extra rows/columns are never used when
    the output is smaller).
    """
    _, h, w = x.shape
    need_h = (out[0] - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    need_w = (out[1] - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1
    bot = max(0, need_h - pads[0] - h)
    right = max(0, need_w - pads[1] - w)
    return np.pad(x.astype(np.int64), ((0, 0), (pads[0], bot), (pads[1], right)),
                  constant_values=fill)


def _check_window_args(name: str, x: np.ndarray, kernel: IntSeq, stride: IntSeq, pads: IntSeq,
                       dilation: IntSeq) -> None:
    if x.ndim != 3:
        raise ValueError(f"{name}: input must be [C, H, W], got shape {x.shape}")
    if len(kernel) != 2 or len(stride) != 2 or len(dilation) != 2 or len(pads) != 4:
        raise ValueError(f"{name}: kernel/stride/dilation need 2 values and pads 4")
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(pads) < 0:
        raise ValueError(f"{name}: kernel, stride, dilation must be >= 1 and pads >= 0")


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: IntSeq, pads: IntSeq,
         dilation: IntSeq, group: int, shift: IntSeq | np.ndarray, act: Act | str = "none",
         out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The `conv` op: x [Cin, H, W] int16, w [Cout, Cin/g, kh, kw] int16, b [Cout] int32.

    acc = b[co] + sum x[ci, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw] * w[co, ci', ky, kx] (input
    outside [0, H) x [0, W) is 0), wrapped to 32 bits; y = act(requant(acc, shift[co])).
    out_shape (OH, OW) defaults to the floor-mode size. Returns int16 [Cout, OH, OW].
    """
    x = np.asarray(x)
    w = np.asarray(w)
    _check_window_args("conv", x, w.shape[2:], stride, pads, dilation)
    cin = x.shape[0]
    cout, cin_g, kh, kw = w.shape
    if group < 1 or cin % group or cout % group or cin // group != cin_g:
        raise ValueError(f"conv: group={group} does not fit cin={cin}, w {w.shape}")
    out = out_shape if out_shape is not None else out_hw(x.shape[1:], (kh, kw), stride, pads,
                                                          dilation)
    xp = _pad_for(x, (kh, kw), stride, pads, dilation, out, 0)
    win = _windows(xp, (kh, kw), stride, dilation, out)  # [Cin, kh, kw, OH, OW]
    cout_g = cout // group
    acc = np.empty((cout, out[0], out[1]), dtype=np.int64)
    w64 = w.astype(np.int64)
    for g in range(group):
        xs = win[g * cin_g:(g + 1) * cin_g]
        ws = w64[g * cout_g:(g + 1) * cout_g]
        # Exact: at most 2^30 per product, far fewer than 2^33 products per sum.
        acc[g * cout_g:(g + 1) * cout_g] = np.einsum("cjkyx,ocjk->oyx", xs, ws)
    acc += np.asarray(b, dtype=np.int64).reshape(cout, 1, 1)
    s = np.asarray(shift, dtype=np.int64).reshape(cout, 1, 1)
    return apply_act(requant(wrap32(acc), s), act)


def fc(x: np.ndarray, w: np.ndarray, b: np.ndarray, shift: IntSeq | np.ndarray,
       act: Act | str = "none") -> np.ndarray:
    """The `fc` op: y[n] = act(requant(wrap32(b[n] + sum_k x[k] * w[n, k]), shift[n]))."""
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    w = np.asarray(w, dtype=np.int64)
    if w.ndim != 2 or w.shape[1] != x.size:
        raise ValueError(f"fc: w {w.shape} does not match x of {x.size} elements")
    acc = w @ x + np.asarray(b, dtype=np.int64)
    return apply_act(requant(wrap32(acc), np.asarray(shift, dtype=np.int64)), act)


def maxpool(x: np.ndarray, kernel: IntSeq, stride: IntSeq, pads: IntSeq,
            dilation: IntSeq = (1, 1), out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The `maxpool` op: the max over the window positions inside the input.

    A window with no position inside the input gives -32768 (the max of nothing is -inf,
    saturated). Returns int16 [C, OH, OW].
    """
    x = np.asarray(x)
    _check_window_args("maxpool", x, kernel, stride, pads, dilation)
    out = out_shape if out_shape is not None else out_hw(x.shape[1:], kernel, stride, pads,
                                                          dilation)
    xp = _pad_for(x, kernel, stride, pads, dilation, out, INT16_MIN)
    win = _windows(xp, kernel, stride, dilation, out)
    return win.max(axis=(1, 2)).astype(np.int16)


def avgpool(x: np.ndarray, kernel: IntSeq, stride: IntSeq, pads: IntSeq,
            count_include_pad: int, dilation: IntSeq = (1, 1),
            out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The `avgpool` op: divround(sum, n) over each window.

    sum covers the positions inside the input; n is their count, or with count_include_pad=1 the
    count of positions inside the padded extent [-pt, H+pb) x [-pl, W+pr). n == 0 gives 0.
    Requires kh * kw <= 32767. Returns int16 [C, OH, OW].
    """
    x = np.asarray(x)
    _check_window_args("avgpool", x, kernel, stride, pads, dilation)
    if kernel[0] * kernel[1] > 32767:
        raise ValueError(f"avgpool: kernel {list(kernel)} has more than 32767 positions")
    out = out_shape if out_shape is not None else out_hw(x.shape[1:], kernel, stride, pads,
                                                          dilation)
    xp = _pad_for(x, kernel, stride, pads, dilation, out, 0)
    total = _windows(xp, kernel, stride, dilation, out).sum(axis=(1, 2))
    _, h, w = x.shape
    inside = np.zeros((1,) + xp.shape[1:], dtype=np.int64)
    if count_include_pad:
        inside[0, :pads[0] + h + pads[2], :pads[1] + w + pads[3]] = 1
    else:
        inside[0, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = 1
    n = _windows(inside, kernel, stride, dilation, out).sum(axis=(1, 2))
    return divround(total, n).astype(np.int16)


def add(a: np.ndarray, b: np.ndarray, shift_a: int, shift_b: int, shift: int,
        act: Act | str = "none") -> np.ndarray:
    """The `add` op: y = act(requant(a * 2^shift_a + b * 2^shift_b, shift)) (exact in int32)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"add: shapes {a.shape} and {b.shape} differ")
    if not (0 <= shift_a <= 15 and 0 <= shift_b <= 15):
        raise ValueError(f"add: shift_a={shift_a}, shift_b={shift_b} must be in [0, 15]")
    return apply_act(requant((a << shift_a) + (b << shift_b), shift), act)


def activation(x: np.ndarray, act: Act | str) -> np.ndarray:
    """The `act` op: y = act(x), same shape and Q format."""
    return apply_act(x, act)


def concat(xs: Sequence[np.ndarray], shifts: IntSeq) -> np.ndarray:
    """The `concat` op: axis-0 concatenation of requant(x_i, shifts[i])."""
    if len(xs) != len(shifts):
        raise ValueError(f"concat: {len(xs)} inputs but {len(shifts)} shifts")
    if not xs:
        raise ValueError("concat: no inputs")
    return np.concatenate([requant(np.asarray(x, dtype=np.int64), s)
                           for x, s in zip(xs, shifts)], axis=0)


def argmax(x: np.ndarray) -> np.ndarray:
    """The `argmax` op: the index of the first maximum of x, as int16 [1]."""
    x = np.asarray(x).reshape(-1)
    if x.size == 0:
        raise ValueError("argmax of an empty vector")
    if x.size > INT16_MAX + 1:
        raise ValueError(f"argmax: {x.size} elements do not fit an int16 index")
    return np.array([int(np.argmax(x))], dtype=np.int16)

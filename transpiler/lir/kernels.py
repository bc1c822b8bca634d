"""The numpy reference kernels: the bit-exact definition of every LIR op (docs/lir.md).

Each function takes and returns numpy arrays in the LIR layout (activations ``int16`` ``[C, H, W]``
or ``[N]`` without a batch axis, weights ``int16`` ``[Cout, Cin/g, kh, kw]`` or ``[N, K]``, biases
``int32``) and computes in ``int64``, wrapping to 32 bits exactly where the C accumulator wraps, so
that the C kernels in ``runtime_c/`` can be compared with them bit for bit.

Rounding, in one place (see ``requant``): a right shift by ``s`` rounds half up
(``floor(acc / 2^s + 1/2)``); a left shift saturates; every int16 result saturates.
"""

from __future__ import annotations

import math
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


def mul(a: np.ndarray, b: np.ndarray, shift: int, act: Act | str = "none") -> np.ndarray:
    """The `mul` op: y = act(requant(a * b, shift)) (the product of two int16 is exact in int32)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"mul: shapes {a.shape} and {b.shape} differ")
    return apply_act(requant(a * b, shift), act)


LAYERNORM_N_MAX = 16384
"""The longest row of a `layernorm` (``|N x - S| < N 2^16 <= 2^30``, an int32; the squares' sum
below ``N 2^30 <= 2^44``; docs/lir.md): a group of GroupNorm / InstanceNorm is one row."""
LAYERNORM_EPS_MAX = 2 ** 60 - 1
"""The largest ``eps`` (the variance sum then stays below 2^61: the normalising shift is at most 31)."""
LAYERNORM_Q = 15
"""The format of the normalised values ``Z = z / sqrt(N)`` (``|Z| < 1``)."""


def layernorm_rows(x: np.ndarray, eps: int) -> np.ndarray:
    """The normalised rows ``Z`` of the `layernorm` op (int16, the shape of `x`, q = 15): every run of
    ``N = x.shape[-1]`` elements scaled to mean 0 and root-mean-square ``1 / sqrt(N)`` with 16- and
    32-bit integer steps (docs/lir.md, "layernorm"): ``d = N x - S``, ``e = d >> u`` (15 bits),
    ``W = sum e^2 + (eps >> 2u)``, ``s = isqrt(W 4^-k)`` (16 bits), ``R = floor((2^31 - 1) / s)``,
    ``Z = sat16(round(e R 2^-(16 + k)))``."""
    x = np.asarray(x, dtype=np.int64)
    n = int(x.shape[-1])
    if not 1 <= n <= LAYERNORM_N_MAX:
        raise ValueError(f"layernorm: rows of {n} elements (1..{LAYERNORM_N_MAX})")
    rows = x.reshape(-1, n)
    z = np.zeros(rows.shape, dtype=np.int64)
    for r, row in enumerate(rows):
        d = n * row - int(row.sum())
        u = max(0, int(np.abs(d).max()).bit_length() - 15)
        e = d >> u
        w = int((e * e).sum()) + (int(eps) >> (2 * u))
        if w == 0:
            continue
        k = (w.bit_length() - 31) >> 1
        s = math.isqrt(w >> (2 * k) if k >= 0 else w << (-2 * k))
        z[r] = requant(e * (((1 << 31) - 1) // s), 16 + k)
    return sat16(z).reshape(x.shape)


def layernorm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: int, shift: int,
              act: Act | str = "none") -> np.ndarray:
    """The `layernorm` op: ``y = act(requant(Z * g + b, shift))`` per element, ``Z`` the normalised
    rows of `x` (:func:`layernorm_rows`), ``g``/``b`` per position of the last axis, or one value
    each (``[1]``) for every position."""
    z = layernorm_rows(x, eps).astype(np.int64)
    acc = wrap32(z * np.asarray(g, dtype=np.int64) + np.asarray(b, dtype=np.int64))
    return apply_act(requant(acc, shift), act)


def matmul(a: np.ndarray, b: np.ndarray, shift: int, act: Act | str = "none") -> np.ndarray:
    """The `matmul` op: ``y[m, n] = act(requant(sum_k a[m, k] * b[k, n], shift))`` for two activations
    ``a[M, K]``, ``b[K, N]`` (the accumulator wraps modulo 2^32 like fc's)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply")
    return apply_act(requant(wrap32(a @ b), shift), act)


SOFTMAX_TABLE_Q = 14
"""The format of a `softmax` step's exp table: ``t[0] = 2^14`` is exp(0) = 1."""
SOFTMAX_N_MAX = 1024
"""The longest row of a `softmax` (the sum of its exps stays below 2^25)."""


def softmax_exp(a: np.ndarray, table: np.ndarray, step: int) -> np.ndarray:
    """The exp table read at ``a = max - x >= 0`` (int64): ``t[M]`` from ``a >= M 2^step`` on, else
    ``t[i] + requant((t[i+1] - t[i]) r, step)`` with ``i = a >> step``, ``r = a - i 2^step``."""
    t = np.asarray(table, dtype=np.int64)
    m = t.size - 1
    i = np.minimum(a >> step, m)
    r = np.where(i < m, a - (i << step), 0)
    nxt = t[np.minimum(i + 1, m)]
    frac = requant((nxt - t[i]) * r, step).astype(np.int64) if step > 0 else 0
    return t[i] + frac


def softmax(x: np.ndarray, table: np.ndarray, step: int, out_shift: int) -> np.ndarray:
    """The `softmax` op over the last axis (docs/lir.md, "softmax"): per row ``e = exp_table(max - x)``,
    ``S = sum e``, ``L = bitlen(S)``, ``R = floor(2^(L+15) / S)``,
    ``y = sat16(floor(e R / 2^(L + out_shift) + 1/2))``; the output's q is ``15 - out_shift``."""
    x = np.asarray(x, dtype=np.int64)
    n = int(x.shape[-1])
    if not 1 <= n <= SOFTMAX_N_MAX:
        raise ValueError(f"softmax: rows of {n} elements (1..{SOFTMAX_N_MAX})")
    rows = x.reshape(-1, n)
    e = softmax_exp(rows.max(axis=1, keepdims=True) - rows, table, step)
    y = np.zeros(rows.shape, dtype=np.int64)
    for r in range(rows.shape[0]):
        total = int(e[r].sum())
        bits = total.bit_length()
        rcp = (1 << (bits + 15)) // total
        s = bits + out_shift
        t = (e[r] * rcp) >> (s - 1)
        y[r] = (t >> 1) + (t & 1)
    return sat16(y).reshape(x.shape)


def activation(x: np.ndarray, act: Act | str) -> np.ndarray:
    """The `act` op: y = act(x), same shape and Q format."""
    return apply_act(x, act)


LUT_STEP_RANGE = (1, 15)
"""``lut``'s table spacing: 2^step input units, step in [1, 15]."""
LUT_SEGMENTS_MAX = 65535
"""At most 65535 segments (65536 table entries): the index is a uint16."""
LUT_CENTER_RANGE = (-65536, 65536)


def lut_problems(table: np.ndarray, step: int) -> list[str]:
    """What is wrong with a ``lut`` table (nothing: []): at least two entries, at most
    LUT_SEGMENTS_MAX + 1, and neighbours at most 32767 apart (the kernel forms their difference in
    int16 and multiplies it by the position inside the segment, below 2^step <= 2^15)."""
    t = np.asarray(table, dtype=np.int64).reshape(-1)
    if t.size < 2 or t.size > LUT_SEGMENTS_MAX + 1:
        return [f"the table has {t.size} entries; it needs 2..{LUT_SEGMENTS_MAX + 1}"]
    d = np.abs(np.diff(t))
    if d.max() > 32767:
        j = int(np.argmax(d))
        return [f"table entries {j} and {j + 1} differ by {int(d[j])} (at most 32767)"]
    return []


def lut_value(x: np.ndarray, table: np.ndarray, step: int, base: int, mirror: int,
              center: int) -> np.ndarray:
    """The interpolated table value ``v`` of ``lut`` for every int16 input (int64 array).

    ``a = |x|`` (mirror) or ``x - base``; below 0 -> ``t[0]``, from ``N * 2^step`` on -> ``t[N]``
    (N = table entries - 1); else ``i = a >> step``, ``r = a - i * 2^step`` and
    ``v = t[i] + requant((t[i+1] - t[i]) * r, step)`` (between t[i] and t[i+1]). With mirror, a
    negative ``x`` gives ``sat16(center - v)``.
    """
    x64 = np.asarray(x, dtype=np.int64)
    t = np.asarray(table, dtype=np.int64).reshape(-1)
    problems = lut_problems(t, step)
    if problems:
        raise ValueError("lut: " + "; ".join(problems))
    if not LUT_STEP_RANGE[0] <= step <= LUT_STEP_RANGE[1]:
        raise ValueError(f"lut: step={step} is outside {list(LUT_STEP_RANGE)}")
    n = t.size - 1
    a = np.abs(x64) if mirror else x64 - base
    end = n << step
    ac = np.clip(a, 0, end - 1)
    i = ac >> step
    r = ac & ((1 << step) - 1)
    inner = t[i] + requant((t[i + 1] - t[i]) * r, step).astype(np.int64)
    v = np.where(a < 0, t[0], np.where(a >= end, t[n], inner))
    if mirror:
        v = np.where(x64 < 0, sat16(center - v).astype(np.int64), v)
    return v


def lut(x: np.ndarray, table: np.ndarray, step: int, base: int, mirror: int, center: int,
        gate: int, shift: int) -> np.ndarray:
    """The `lut` op: ``y = v`` or, with gate, ``y = requant(x * v, shift)``, where ``v`` is the
    table value of :func:`lut_value` (an element-wise function from a table with linear
    interpolation; docs/lir.md). Same shape as x, int16."""
    v = lut_value(x, table, step, base, mirror, center)
    if gate:
        return requant(np.asarray(x, dtype=np.int64) * v, shift)
    return v.astype(np.int16)


def concat(xs: Sequence[np.ndarray], shifts: IntSeq) -> np.ndarray:
    """The `concat` op: axis-0 concatenation of requant(x_i, shifts[i])."""
    if len(xs) != len(shifts):
        raise ValueError(f"concat: {len(xs)} inputs but {len(shifts)} shifts")
    if not xs:
        raise ValueError("concat: no inputs")
    return np.concatenate([requant(np.asarray(x, dtype=np.int64), s)
                           for x, s in zip(xs, shifts)], axis=0)


def slice_(x: np.ndarray, offset: int, size: int) -> np.ndarray:
    """The `slice` op: ``y[i] = x[offset + i]`` over the elements of ``x`` in C order; same Q."""
    flat = np.asarray(x).reshape(-1)
    if offset < 0 or offset + size > flat.size:
        raise ValueError(f"slice: [{offset}, {offset + size}) of {flat.size} elements")
    return flat[offset:offset + size].copy()


def embed(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The `embed` op: ``y[t, :] = table[ids[t], :]`` (rows of a constant table selected by token ids),
    in the table's Q format. An id outside ``[0, V)`` (V = the table's rows; the ids are uint16, so a
    caller's negative int16 is a large id) gives a row of zeros: nothing is read out of bounds."""
    w = np.asarray(table)
    i = np.asarray(ids).reshape(-1).astype(np.int64)
    ok = (i >= 0) & (i < w.shape[0])
    y = np.zeros((i.size, w.shape[1]), dtype=w.dtype)
    y[ok] = w[i[ok]]
    return y


def transpose(x: np.ndarray, perm: IntSeq) -> np.ndarray:
    """The `transpose` op: ``y[i0, i1, i2] = x[j]`` with ``j[perm[k]] = i[k]`` (numpy's transpose); same Q."""
    return np.ascontiguousarray(np.transpose(np.asarray(x), [int(p) for p in perm]))


def upsample(x: np.ndarray, scale: IntSeq, zeros: int) -> np.ndarray:
    """The `upsample` op on ``x[C, H, W]`` with ``scale = [sh, sw]``; same Q.

    ``zeros = 0`` (nearest): ``y[c, i, j] = x[c, i // sh, j // sw]``, ``y`` is ``[C, H*sh, W*sw]``.
    ``zeros = 1`` (zero insertion, the input of a transposed convolution):
    ``y[c, i*sh, j*sw] = x[c, i, j]`` and 0 elsewhere, ``y`` is ``[C, (H-1)*sh+1, (W-1)*sw+1]``."""
    x = np.asarray(x)
    sh, sw = (int(s) for s in scale)
    c, h, w = x.shape
    if zeros:
        y = np.zeros((c, (h - 1) * sh + 1, (w - 1) * sw + 1), dtype=x.dtype)
        y[:, ::sh, ::sw] = x
        return y
    return np.ascontiguousarray(np.repeat(np.repeat(x, sh, axis=1), sw, axis=2))


def argmax(x: np.ndarray) -> np.ndarray:
    """The `argmax` op: the index of the first maximum of x, as int16 [1]."""
    x = np.asarray(x).reshape(-1)
    if x.size == 0:
        raise ValueError("argmax of an empty vector")
    if x.size > INT16_MAX + 1:
        raise ValueError(f"argmax: {x.size} elements do not fit an int16 index")
    return np.array([int(np.argmax(x))], dtype=np.int16)


def gnet_feature(features: np.ndarray, x: np.ndarray, offset: int, shift: int) -> np.ndarray:
    """The `gnet_feature` op: ``features`` with ``[offset, offset + n)`` replaced by requant(x, shift)
    (x flattened, n elements); the other elements are kept. Returns a new int16 vector."""
    f = np.array(features, dtype=np.int16).reshape(-1)
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    if offset < 0 or offset + x.size > f.size:
        raise ValueError(f"gnet_feature: the slice [{offset},{offset + x.size}) does not fit {f.size} features")
    f[offset:offset + x.size] = requant(x, shift)
    return f


# ---------------------------------------------------------------------------------------------
# Decision trees (docs/lir.md, "trees"): a walk per tree writes the index of the leaf it reaches;
# tree_sum adds the leaves' values per output.

TREE_LEAF = 0x8000
"""A child (or root) entry with this bit set is a leaf: ``entry & 0x7FFF`` is the offset of its
values in the leaf table (``leaf * W``)."""


def tree_problems(feature: np.ndarray, children: np.ndarray, roots: np.ndarray, k: int,
                  values: int) -> list[str]:
    """What is wrong with a `trees` step's tables: every feature below ``k``, every child of branch
    ``n`` a branch after ``n`` (so a walk ends) or a leaf offset below ``values``, every root a
    branch or a leaf."""
    feature = np.asarray(feature, dtype=np.int64).reshape(-1)
    kids = np.asarray(children, dtype=np.int64).reshape(-1, 2)
    rts = np.asarray(roots, dtype=np.int64).reshape(-1)
    n = feature.size
    out = []
    if n and int(feature.max()) >= k:
        out.append(f"branch {int(np.argmax(feature >= k))} reads feature {int(feature.max())} of {k}")
    for what, entries, after in (("child", kids, np.arange(n)[:, None]), ("root", rts, -1)):
        leaf = (entries & TREE_LEAF) != 0
        idx = entries & (TREE_LEAF - 1)
        bad_leaf = leaf & (idx >= values)
        bad_branch = ~leaf & ((idx >= n) | (idx <= after))
        if bad_leaf.any():
            out.append(f"a {what} names leaf offset {int(idx[bad_leaf].max())} of {values} values")
        if bad_branch.any():
            out.append(f"a {what} names branch {int(idx[bad_branch].flat[0])}, which is not a branch after its parent "
                       f"(of {n})")
    return out


def trees(x: np.ndarray, feature: np.ndarray, threshold: np.ndarray, children: np.ndarray,
          roots: np.ndarray) -> np.ndarray:
    """The `trees` op: for each tree t the leaf reached from ``roots[t]``, going to ``children[n, 0]``
    when ``x[feature[n]] <= threshold[n]`` (int16 compare) and to ``children[n, 1]`` otherwise;
    int16 [T], the reached leaves' entries without the leaf bit (their values' offsets)."""
    xv = np.asarray(x, dtype=np.int64).reshape(-1)
    feat = np.asarray(feature, dtype=np.int64).reshape(-1)
    thr = np.asarray(threshold, dtype=np.int64).reshape(-1)
    kids = np.asarray(children, dtype=np.int64).reshape(-1, 2)
    out = np.zeros(np.asarray(roots).size, dtype=np.int16)
    for t, entry in enumerate(np.asarray(roots, dtype=np.int64).reshape(-1)):
        node = int(entry)
        while not node & TREE_LEAF:
            node = int(kids[node, 0 if xv[feat[node]] <= thr[node] else 1])
        out[t] = node & (TREE_LEAF - 1)
    return out


def tree_sum(leaves: np.ndarray, values: np.ndarray, first: np.ndarray, b: np.ndarray, shift: int) -> np.ndarray:
    """The `tree_sum` op: ``y[c] = requant(b[c] + sum over trees t with first[t] <= c < first[t] + W
    of v[leaves[t] + c - first[t]], shift)`` (int32 wrap-around sums), ``v`` the ``[L, W]`` values
    in C order and ``leaves[t]`` the offset of tree t's leaf (a multiple of ``W``)."""
    lv = np.asarray(leaves, dtype=np.int64).reshape(-1)
    vals = np.asarray(values, dtype=np.int64)
    w = vals.shape[1]
    flat = vals.reshape(-1)
    acc = np.asarray(b, dtype=np.int64).reshape(-1).copy()
    for t, c0 in enumerate(np.asarray(first, dtype=np.int64).reshape(-1)):
        if not 0 <= lv[t] <= flat.size - w:
            raise ValueError(f"tree_sum: tree {t} names leaf offset {lv[t]} of {flat.size} values (width {w})")
        if c0 + w > acc.size:
            raise ValueError(f"tree_sum: tree {t} adds outputs [{c0}, {c0 + w}) of {acc.size}")
        acc[c0:c0 + w] += flat[lv[t]:lv[t] + w]
    return requant(wrap32(acc), shift)


# ---------------------------------------------------------------------------------------------
# Sparse weights (docs/lir.md, "Sparse ops"): CSR for fc, per-channel (input offset, value) lists
# for conv. Both ops equal the dense op on the weights they encode, bit for bit: the accumulator wraps
# modulo 2^32, so skipping zero products and the order of the additions change nothing.

SPARSE_INDEX_MAX = 65535
"""Indices and pointers are uint16: at most 65535 stored values per layer."""
FC_SPARSE_K_MAX = 32768
"""fc_sparse steps through x in bytes (u16): at most 32768 inputs."""


def pointer_problems(values_len: int, index_len: int, ptr: np.ndarray, rows: int, row_word: str,
                     index_what: str) -> list[str]:
    """What is wrong with a compressed-row pointer (nothing: []): ``rows + 1`` entries, starting
    at 0, never decreasing, ending at ``values_len``; and ``index_len == values_len``."""
    ptr = np.asarray(ptr).reshape(-1).astype(np.int64)
    problems: list[str] = []
    if ptr.size != rows + 1:
        return [f"the {row_word} pointer has {ptr.size} entries, needs {rows + 1}"]
    if index_len != values_len:
        return [f"{values_len} values but {index_len} {index_what}"]
    if ptr[0] != 0:
        problems.append(f"the {row_word} pointer starts at {ptr[0]}, not 0")
    if ptr[-1] != values_len:
        problems.append(f"the {row_word} pointer ends at {ptr[-1]}, the values have {values_len} "
                        f"entries")
    steps = np.diff(ptr)
    if (steps < 0).any():
        r = int(np.flatnonzero(steps < 0)[0])
        problems.append(f"the {row_word} pointer decreases at {row_word} {r} "
                        f"({ptr[r]} -> {ptr[r + 1]})")
    return problems


def sparse_index_problems(values_len: int, index: np.ndarray, ptr: np.ndarray, rows: int,
                          limit: int, row_word: str = "row", index_word: str = "column") -> list[str]:
    """What is wrong with a compressed-row index (nothing: []).

    ``ptr`` has ``rows + 1`` entries, starts at 0, never decreases and ends at ``values_len``;
    ``index`` has ``values_len`` entries, each below ``limit`` and strictly increasing within a row
    (so every position is stored at most once and the encoding of a dense matrix is unique).
    """
    index = np.asarray(index).reshape(-1).astype(np.int64)
    ptr = np.asarray(ptr).reshape(-1).astype(np.int64)
    problems = pointer_problems(values_len, index.size, ptr, rows, row_word, f"{index_word} indices")
    if problems:
        return problems
    steps = np.diff(ptr)
    if index.size and (index.min() < 0 or index.max() >= limit):
        bad = int(np.flatnonzero((index < 0) | (index >= limit))[0])
        problems.append(f"{index_word} index {index[bad]} at entry {bad} is outside [0, {limit})")
    if index.size > 1:
        same_row = np.repeat(np.arange(rows), steps)
        rising = np.diff(index) > 0
        bad_pairs = ~rising & (same_row[1:] == same_row[:-1])
        if bad_pairs.any():
            j = int(np.flatnonzero(bad_pairs)[0])
            problems.append(f"{index_word} indices of {row_word} {same_row[j]} are not strictly "
                            f"increasing ({index[j]} then {index[j + 1]} at entries {j}, {j + 1})")
    return problems


def _compress_rows(w2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a 2-D int16 matrix -> (values, index, pointer). An all-zero matrix keeps one explicit
    zero (row 0, index 0) so that no array is empty."""
    rows, cols = np.nonzero(w2)
    if rows.size == 0:
        rows, cols = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    values = w2[rows, cols].astype(np.int16)
    ptr = np.zeros(w2.shape[0] + 1, dtype=np.int64)
    np.add.at(ptr, rows + 1, 1)
    ptr = np.cumsum(ptr)
    if values.size > SPARSE_INDEX_MAX:
        raise ValueError(f"{values.size} non-zero weights exceed the {SPARSE_INDEX_MAX} that uint16 "
                         f"pointers can address")
    return values, cols.astype(np.uint16), ptr.astype(np.uint16)


def deltas_from_cols(cols: np.ndarray, rowptr: np.ndarray) -> np.ndarray:
    """Column indices of a CSR matrix -> fc_sparse's byte steps: ``2 * cols[j]`` for the first entry
    of a row, ``2 * (cols[j] - cols[j-1])`` for the others (u16; the caller keeps ``2 * col`` below
    65536)."""
    cols = np.asarray(cols).reshape(-1).astype(np.int64)
    rowptr = np.asarray(rowptr).reshape(-1).astype(np.int64)
    prev = np.concatenate(([0], cols[:-1]))
    prev[rowptr[:-1][np.diff(rowptr) > 0]] = 0          # a row's first entry steps from x itself
    return (2 * (cols - prev)).astype(np.uint16)


def cols_from_deltas(deltas: np.ndarray, rowptr: np.ndarray) -> np.ndarray:
    """fc_sparse's byte steps -> the column of each entry (int64): the inverse of
    :func:`deltas_from_cols` for a valid row pointer (:func:`fc_sparse_problems`)."""
    d = np.asarray(deltas).reshape(-1).astype(np.int64)
    rowptr = np.asarray(rowptr).reshape(-1).astype(np.int64)
    total = np.concatenate(([0], np.cumsum(d)))            # total[j] = sum of the steps before j
    return (total[1:] - np.repeat(total[rowptr[:-1]], np.diff(rowptr))) // 2


def fc_sparse_problems(values_len: int, deltas: np.ndarray, rowptr: np.ndarray, rows: int,
                       k: int) -> list[str]:
    """What is wrong with fc_sparse's (deltas, rowptr) (nothing: []): the row pointer and the
    columns the steps reach as in :func:`sparse_index_problems` (strictly increasing within a row,
    below ``k``), and every step even (x is int16)."""
    d = np.asarray(deltas).reshape(-1).astype(np.int64)
    ptr = np.asarray(rowptr).reshape(-1).astype(np.int64)
    problems = pointer_problems(values_len, d.size, ptr, rows, "row", "byte steps")
    if problems:
        return problems
    if (d % 2).any():
        bad = int(np.flatnonzero(d % 2)[0])
        return [f"byte step {d[bad]} at entry {bad} is odd (x is int16: steps are 2 x columns)"]
    return sparse_index_problems(values_len, cols_from_deltas(d, ptr), ptr, rows, k)


def csr_from_dense(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fc weights [N, K] int16 -> (values i16[nnz], deltas u16[nnz], rowptr u16[N+1]), row-major.

    ``deltas`` are byte steps through x (:func:`deltas_from_cols`): the kernel adds each to a
    pointer that starts at x for every row. Zeros are dropped; an all-zero matrix keeps one
    explicit zero. Raises ValueError when more than 65535 values remain or K > 32768 (a byte
    offset past u16).
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"csr_from_dense: weights must be [N, K], got {w.shape}")
    if w.shape[1] > FC_SPARSE_K_MAX:
        raise ValueError(f"csr_from_dense: K = {w.shape[1]} inputs exceed the {FC_SPARSE_K_MAX} that "
                         f"u16 byte steps reach")
    values, cols, rowptr = _compress_rows(w)
    return values, deltas_from_cols(cols, rowptr), rowptr


def csr_to_dense(values: np.ndarray, deltas: np.ndarray, rowptr: np.ndarray, k: int) -> np.ndarray:
    """The dense int16 [N, K] matrix an fc_sparse triple encodes."""
    values = np.asarray(values).reshape(-1)
    rowptr = np.asarray(rowptr).reshape(-1).astype(np.int64)
    n = rowptr.size - 1
    problems = fc_sparse_problems(values.size, deltas, rowptr, n, k)
    if problems:
        raise ValueError("fc_sparse: " + "; ".join(problems))
    w = np.zeros((n, k), dtype=np.int16)
    w[np.repeat(np.arange(n), np.diff(rowptr)), cols_from_deltas(deltas, rowptr)] = values
    return w


def conv_sparse_layout(in_hw: IntSeq, kernel: IntSeq, dilation: IntSeq) -> tuple[int, int]:
    """The layout (Hv, Wv) in which conv_sparse's offsets count: the input's (H, W), each grown to
    the dilated kernel where that is larger, ``Hv = max(H, (kh-1)*dh + 1)``,
    ``Wv = max(W, (kw-1)*dw + 1)``, so that every tap (ci', ky, kx) has its own offset
    ``ci' * Hv * Wv + ky * dh * Wv + kx * dw``. When the dilated kernel fits the input (every layer
    with an output window inside the input) it is (H, W): the offset is the tap's element offset
    in x from the window's origin."""
    (h, w), (kh, kw), (dh, dw) = in_hw, kernel, dilation
    return max(int(h), (int(kh) - 1) * int(dh) + 1), max(int(w), (int(kw) - 1) * int(dw) + 1)


def conv_sparse_positions(cin_g: int, kernel: IntSeq, in_hw: IntSeq, dilation: IntSeq) -> int:
    """How many offsets conv_sparse's layout has for `cin_g` input channels: ``cin_g * Hv * Wv``."""
    hv, wv = conv_sparse_layout(in_hw, kernel, dilation)
    return int(cin_g) * hv * wv


def _conv_sparse_taps(offsets: np.ndarray, cin_g: int, kernel: IntSeq, in_hw: IntSeq,
                      dilation: IntSeq) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """conv_sparse offsets -> (ci', ky, kx, valid) (int64 arrays; valid: the offset is a tap's)."""
    (kh, kw), (dh, dw) = kernel, dilation
    hv, wv = conv_sparse_layout(in_hw, kernel, dilation)
    o = np.asarray(offsets).reshape(-1).astype(np.int64)
    ci, r = np.divmod(o, hv * wv)
    row, col = np.divmod(r, wv)
    ky, ry = np.divmod(row, dh)
    kx, rx = np.divmod(col, dw)
    valid = (o >= 0) & (ci < cin_g) & (ry == 0) & (ky < kh) & (rx == 0) & (kx < kw)
    return ci, ky, kx, valid


def conv_sparse_problems(values_len: int, offsets: np.ndarray, chanptr: np.ndarray, cout: int,
                         cin_g: int, kernel: IntSeq, in_hw: IntSeq, dilation: IntSeq) -> list[str]:
    """What is wrong with conv_sparse's (offsets, chanptr) (nothing: []): the channel pointer and
    increasing offsets below cin_g * Hv * Wv as in :func:`sparse_index_problems`, and every offset
    a tap's (:func:`conv_sparse_layout`)."""
    problems = sparse_index_problems(values_len, offsets, chanptr, cout,
                                     conv_sparse_positions(cin_g, kernel, in_hw, dilation),
                                     row_word="channel", index_word="offset")
    if problems:
        return problems
    *_, valid = _conv_sparse_taps(offsets, cin_g, kernel, in_hw, dilation)
    if not valid.all():
        bad = int(np.flatnonzero(~valid)[0])
        hv, wv = conv_sparse_layout(in_hw, kernel, dilation)
        problems.append(f"offset {int(np.asarray(offsets).reshape(-1)[bad])} at entry {bad} is no tap's "
                        f"(ci' * {hv * wv} + ky * {dilation[0]} * {wv} + kx * {dilation[1]}, "
                        f"ky < {kernel[0]}, kx < {kernel[1]})")
    return problems


def conv_sparse_from_dense(w: np.ndarray, in_hw: IntSeq, dilation: IntSeq = (1, 1)
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """conv weights [Cout, Cin/g, kh, kw] int16 over an input of spatial size `in_hw` -> (values
    i16[nnz], offsets u16[nnz], chanptr u16[Cout+1]); offset = ci' * Hv * Wv + ky * dh * Wv +
    kx * dw (:func:`conv_sparse_layout`), increasing within a channel.

    Channel-major order: the weights of output channels [c0, c1) are the contiguous entries
    [chanptr[c0], chanptr[c1]), one tile's weights in one run. Raises ValueError when an offset
    would pass uint16 (cin_g * Hv * Wv > 65536).
    """
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"conv_sparse_from_dense: weights must be [Cout, Cin/g, kh, kw], got {w.shape}")
    cout, cin_g, kh, kw = w.shape
    positions = conv_sparse_positions(cin_g, (kh, kw), in_hw, dilation)
    if positions > SPARSE_INDEX_MAX + 1:
        raise ValueError(f"conv_sparse_from_dense: {positions} input offsets (Cin/group * Hv * Wv) "
                         f"exceed uint16")
    values, index, ptr = _compress_rows(w.reshape(cout, -1))
    hv, wv = conv_sparse_layout(in_hw, (kh, kw), dilation)
    ci, rest = np.divmod(index.astype(np.int64), kh * kw)
    ky, kx = np.divmod(rest, kw)
    offsets = ci * hv * wv + ky * dilation[0] * wv + kx * dilation[1]
    return values, offsets.astype(np.uint16), ptr


def conv_sparse_to_dense(values: np.ndarray, offsets: np.ndarray, chanptr: np.ndarray,
                         cin_g: int, kernel: IntSeq, in_hw: IntSeq, dilation: IntSeq) -> np.ndarray:
    """The dense int16 [Cout, Cin/g, kh, kw] weights a conv_sparse triple encodes."""
    kh, kw = kernel
    values = np.asarray(values).reshape(-1)
    chanptr = np.asarray(chanptr).reshape(-1).astype(np.int64)
    n = chanptr.size - 1
    problems = conv_sparse_problems(values.size, offsets, chanptr, n, cin_g, kernel, in_hw, dilation)
    if problems:
        raise ValueError("conv_sparse: " + "; ".join(problems))
    ci, ky, kx, _ = _conv_sparse_taps(offsets, cin_g, kernel, in_hw, dilation)
    w = np.zeros((n, cin_g, kh, kw), dtype=np.int16)
    w[np.repeat(np.arange(n), np.diff(chanptr)), ci, ky, kx] = values
    return w


def fc_sparse(x: np.ndarray, values: np.ndarray, deltas: np.ndarray, rowptr: np.ndarray,
              b: np.ndarray, shift: IntSeq | np.ndarray, act: Act | str = "none") -> np.ndarray:
    """The `fc_sparse` op: acc[n] = b[n] + sum_{j in [rowptr[n], rowptr[n+1])} x[col[j]] * values[j]
    with col[j] = (deltas[rowptr[n]] + ... + deltas[j]) / 2 (byte steps through x from x[0]),
    wrapped to 32 bits; y[n] = act(requant(acc[n], shift[n])). Equals `fc` on csr_to_dense(...)."""
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    rowptr = np.asarray(rowptr).reshape(-1).astype(np.int64)
    n = rowptr.size - 1
    problems = fc_sparse_problems(values.size, deltas, rowptr, n, x.size)
    if problems:
        raise ValueError("fc_sparse: " + "; ".join(problems))
    b = np.asarray(b, dtype=np.int64).reshape(-1)
    if b.size != n:
        raise ValueError(f"fc_sparse: bias has {b.size} entries, the row pointer {n} rows")
    acc = b.copy()
    # Exact in int64: at most 65535 products of magnitude <= 2^30 per row.
    np.add.at(acc, np.repeat(np.arange(n), np.diff(rowptr)), values * x[cols_from_deltas(deltas, rowptr)])
    return apply_act(requant(wrap32(acc), np.asarray(shift, dtype=np.int64)), act)


def conv_sparse(x: np.ndarray, values: np.ndarray, offsets: np.ndarray, chanptr: np.ndarray,
                b: np.ndarray, kernel: IntSeq, stride: IntSeq, pads: IntSeq, dilation: IntSeq,
                group: int, shift: IntSeq | np.ndarray, act: Act | str = "none",
                out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The `conv_sparse` op: `conv` with the weights conv_sparse_to_dense(values, offsets, chanptr,
    ...).

    acc[co, oy, ox] = b[co] + sum_{j in [chanptr[co], chanptr[co+1])} values[j] * x[ci, iy, ix]
    with offsets[j] = ci' * Hv * Wv + ky * dh * Wv + kx * dw (ci = the group's first channel + ci';
    :func:`conv_sparse_layout`), iy/ix as in `conv`, out-of-range input = 0. Computed through the
    dense kernel: the wrapped sum of the stored products is the wrapped sum of all products, the
    zero ones included.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"conv_sparse: input must be [C, H, W], got shape {x.shape}")
    if group < 1 or x.shape[0] % group:
        raise ValueError(f"conv_sparse: group={group} does not divide cin={x.shape[0]}")
    w = conv_sparse_to_dense(values, offsets, chanptr, x.shape[0] // group, kernel, x.shape[1:], dilation)
    return conv(x, w, b, stride, pads, dilation, group, shift, act, out_shape)

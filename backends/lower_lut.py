"""Element-wise functions as ``lut`` steps: choose the table, its spacing, symmetry and formats.

`lower` calls :func:`fit_lut` for every activation it cannot express with the fused ``act`` kinds
(Sigmoid, Tanh, ...; see docs/lir.md, "lut"). The function ``g`` is known as a float64 numpy
function of the real input. Where ``g`` leaves the output format's range (inputs beyond the
calibrated ones) the output saturates, as every op's does; the error is measured on the others
(the inputs around 0 up to the first such one, less the table segment next to it, which
interpolates towards a clipped entry; `LutFit.valid_lo`/`valid_hi`).
A plain table covers only the run of inputs around 0 where ``g`` is representable (its clamped
ends are then the saturated values), so no entry inside it is clipped; a table that would need
one is no candidate. The input format ``q_in`` is the one of the buffer the step reads, so
the step sees exactly the 65536 int16 codes ``x = c * 2^-q_in``; for each candidate table this
module runs the reference kernel (transpiler.lir.kernels.lut) on every code and measures the error
against ``g`` exactly, so the chosen table's worst case over all inputs is a number, not an estimate.

Candidates, cheapest first:

- **plain**: ``y = T(x)``, ``T = g``, a table over ``[base, base + N * 2^k]`` of the input codes,
  clamped outside (``g`` is constant there within a quarter output LSB: sigmoid and tanh saturate),
  or over all codes when it is not.
- **mirrored**: when ``g(-x) = c - g(x)`` (tanh: ``c = 0``, sigmoid: ``c = 1``) the table covers
  ``|x|`` only and ``y(-x) = c - y(x)``: half the table for the same spacing.
- **gate**: when ``g(0) = 0`` and ``T = g(x) / x`` is smooth (SiLU: ``T`` is sigmoid, GELU: the
  normal CDF, HardSwish: HardSigmoid), ``y = requant(x * T(x))``: ``T`` saturates where ``g`` grows
  like ``x``, so a small table covers what a plain table of ``g`` could not; mirrored when ``T`` is.

A table's grid starts at the first input it must cover, or ends at the last, or passes through 0
(the kink of Elu-like functions, and a multiple of every spacing), whichever is most accurate.
For each candidate the spacing ``2^k`` (k = 15, 14, ..., 1) shrinks until the error is within
:func:`tolerance` (two output LSBs, plus what half an input LSB moves ``g``: the input itself is
only known to that) with at most :data:`MAX_SEGMENTS` segments; the candidate with the fewest
table bytes wins (a plain table over a gate on a tie: no multiplication), else the most accurate.

Output format: the calibrated ``q_out`` unless ``g``'s largest value over the reachable inputs
allows a finer one (at most one LSB saturated): sigmoid and tanh get q = 15 whatever the
calibration saw, since their range is known.

Before -> after (a Gemm's output ``h``, q = 11, into Tanh)::

    Tanh(h) -> t           lut(%h, %lut_tanh) -> %t {step=8, base=0, mirror=1, center=0, gate=0, shift=0}
                           const %lut_tanh : i16[55] q=15   (tanh at 0, 1/8, 2/8, ..., 54/8)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from backends.lower_bounds import LUT_META
from transpiler.lir import kernels

Fn = Callable[[np.ndarray], np.ndarray]

MAX_SEGMENTS = 1024
"""A table has at most 1025 entries (2 KiB; the tolerance is usually met with 20-260)."""
REJECT_FACTOR = 4.0
"""`lower` rejects a function whose best table misses the tolerance by more than this factor."""
META_KEY = LUT_META
"""Program meta: JSON ``{step name: [largest slope, worst table error, first, last]}`` (real units;
first/last: the input codes the error holds on) of every lut step, for the error bounds
(backends/lower_bounds.py)."""
Q_MAX = 30
CODES = np.arange(-32768, 32768, dtype=np.int64)


@dataclass(frozen=True)
class LutFit:
    """The chosen table: the step attributes, the table (i16, q = ``table_q``), the output format,
    and the measured worst error over every input code (in output LSBs and real units) against
    the tolerance, ``g``'s largest slope between neighbouring codes (the error bound's factor), and
    the input codes ``[valid_lo, valid_hi]`` the error holds on (all of them, unless ``g`` leaves
    the output range: then the output saturates beyond, the calibrated format's choice)."""

    attrs: dict[str, int]
    table: np.ndarray
    table_q: int
    q_out: int
    error_lsb: float
    tolerance_lsb: float
    lipschitz: float
    mode: str
    valid_lo: int
    valid_hi: int
    candidates: dict[str, float] = field(default_factory=dict)

    @property
    def error(self) -> float:
        return self.error_lsb * 2.0 ** -self.q_out


def bound_format(bound: float, limit: int = 32768) -> int:
    """The finest q (at most Q_MAX) with ``round(bound * 2^q) <= limit``; limit 32768 lets the
    extreme saturate by one LSB (sigmoid's and tanh's 1.0)."""
    if bound <= 0.0 or not math.isfinite(bound):
        return Q_MAX
    q = math.floor(math.log2(limit / bound))
    while round(bound * 2.0 ** q) > limit:
        q -= 1
    while q < Q_MAX and round(bound * 2.0 ** (q + 1)) <= limit:
        q += 1
    return min(q, Q_MAX)


def tolerance(q_in: int, q_out: int, lipschitz: float) -> float:
    """The accepted worst error in output LSBs: 2 (table rounding and interpolation rounding take
    one) plus half an input LSB times the function's largest slope."""
    return 2.0 + 0.5 * lipschitz * 2.0 ** (q_out - q_in)


def _symmetry(values: np.ndarray, scale: float) -> float | None:
    """``c`` with ``v(-x) = c - v(x)`` over the codes -32767..32767 (values indexed by code +
    32768), or None."""
    pos, neg = values[32769:], values[32767:0:-1]
    c = float(values[32768] * 2.0)
    if np.max(np.abs(pos + neg - c)) <= 1e-9 * max(scale, 1e-30):
        return c
    return None


@dataclass(frozen=True)
class _Mode:
    name: str
    table_fn: Fn              # T of the real input
    table_q: int
    mirror: bool
    center: int
    gate: bool
    shift: int


def _modes(g: Fn, q_in: int, q_out: int, target: np.ndarray) -> list[_Mode]:
    xs = CODES * 2.0 ** -q_in
    out: list[_Mode] = []
    bound = float(np.max(np.abs(target)))
    c = _symmetry(target, bound)
    out.append(_Mode("plain", g, q_out, False, 0, False, 0))
    if c is not None and abs(c * 2.0 ** q_out) <= 65536 and float(c * 2.0 ** q_out).is_integer():
        out.append(_Mode("mirrored", g, q_out, True, int(c * 2.0 ** q_out), False, 0))
    if abs(float(target[32768])) <= 1e-12 * max(bound, 1e-30):
        eps = 2.0 ** -q_in * 1e-3

        def gate_fn(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=np.float64)
            safe = np.where(x == 0.0, 1.0, x)
            slope0 = (g(np.array([eps])) - g(np.array([-eps])))[0] / (2 * eps)
            return np.where(x == 0.0, slope0, g(safe) / safe)

        gates = gate_fn(xs)
        t_bound = float(np.max(np.abs(gates)))
        t_q = min(bound_format(t_bound, 32767), q_out - q_in + 31, Q_MAX)
        shift = q_in + t_q - q_out
        if shift >= -15:
            out.append(_Mode("gate", gate_fn, t_q, False, 0, True, shift))
            tc = _symmetry(gates, t_bound)
            if tc is not None and abs(tc * 2.0 ** t_q) <= 65536 and float(tc * 2.0 ** t_q).is_integer():
                out.append(_Mode("mirrored gate", gate_fn, t_q, True, int(tc * 2.0 ** t_q), True, shift))
    return out


def _active(mode: _Mode, q_in: int, q_out: int) -> tuple[int, int]:
    """The codes [lo, hi] (of |x| when mirrored) outside which the table's end values change the
    output by less than a quarter output LSB (a gate's: times the largest |x|)."""
    codes = np.arange(0, 32769, dtype=np.int64) if mode.mirror else CODES
    xs = codes * 2.0 ** -q_in
    t = mode.table_fn(xs)
    # a gate's clamped end value is multiplied by inputs up to the largest |x|
    weight = 2.0 ** (15 - q_in) if mode.gate else 1.0
    quarter = 0.25 * 2.0 ** -q_out
    lo_dev = np.abs(t - t[0]) * weight > quarter
    hi_dev = np.abs(t - t[-1]) * weight > quarter
    lo = int(codes[np.argmax(lo_dev)]) if lo_dev.any() else int(codes[0])
    hi = int(codes[len(codes) - 1 - np.argmax(hi_dev[::-1])]) if hi_dev.any() else int(codes[-1])
    if not mode.gate:        # only where g is representable: the clamped ends are the saturation
        inside = np.abs(t) * 2.0 ** q_out <= 32767.5
        zero = int(np.argmin(np.abs(codes)))
        if inside[zero] and not inside.all():
            out_lo = np.flatnonzero(~inside[:zero])
            out_hi = np.flatnonzero(~inside[zero:])
            if out_lo.size:
                lo = max(lo, int(codes[out_lo[-1] + 1]))
            if out_hi.size:
                hi = min(hi, int(codes[zero + out_hi[0] - 1]))
    if mode.mirror:
        return 0, hi + 1
    return max(lo - 1, -32768), hi + 1


Tried = tuple[float, dict[str, int], np.ndarray, int, int]


def _valid_run(table: np.ndarray, raw: np.ndarray, k: int, base: int, mirror: bool,
               target_lsb: np.ndarray) -> tuple[int, int] | None:
    """The input codes [lo, hi] around 0 where the table's value comes from entries int16 holds
    and the function is representable (a segment next to a clipped entry interpolates towards
    it: the output saturates there, short of the range's end); None when code 0 is not."""
    clipped = np.abs(raw) > 32768      # (one LSB past the range is table error, as for the target)
    a = np.abs(CODES) if mirror else CODES - base
    n = table.size - 1
    i = np.clip(a >> k, 0, n - 1)
    bad = np.where(a < 0, clipped[0], np.where(a >= n << k, clipped[n], clipped[i] | clipped[i + 1]))
    ok = ~bad & ~np.isnan(target_lsb)
    zero = 32768
    if not ok[zero]:
        return None
    below = np.flatnonzero(~ok[:zero])
    above = np.flatnonzero(~ok[zero:])
    return (int(CODES[below[-1] + 1]) if below.size else -32768,
            int(CODES[zero + above[0] - 1]) if above.size else 32767)


def _try(mode: _Mode, k: int, lo: int, hi: int, q_in: int, q_out: int,
         target_lsb: np.ndarray) -> Tried | None:
    """The best table of spacing 2^k over [lo, hi] (its grid starting at lo, or for a table that is
    not mirrored also ending at hi, or passing through 0: a saturation boundary at either end, or
    the kink at 0 of Elu-like functions, is then a grid point): (worst error in output LSBs on the
    valid inputs, attributes, table, the valid inputs' first and last code: :func:`_valid_run`);
    None when it needs more than MAX_SEGMENTS segments, an entry inside [lo, hi] that int16
    cannot hold, or leaves out more than a sixteenth of the representable inputs."""
    step = 1 << k
    spans = [(lo, max(1, -(-(hi - lo) // step)))]
    if not mode.mirror:
        first = spans[0][1]
        spans.append((max(-32768, hi - first * step), first))
        through_zero = lo // step * step           # >= -32768, a multiple of every step
        spans.append((through_zero, max(1, -(-(hi - through_zero) // step))))
    best: Tried | None = None
    representable = int(np.count_nonzero(~np.isnan(target_lsb)))
    for base, segments in dict.fromkeys(spans):
        if segments > MAX_SEGMENTS:
            continue
        codes = base + np.arange(segments + 1, dtype=np.int64) * step
        raw = np.floor(mode.table_fn(codes * 2.0 ** -q_in) * 2.0 ** mode.table_q + 0.5)
        if np.any((np.abs(raw) > 32768) & (codes >= lo) & (codes <= hi)):
            continue
        table = np.clip(raw, -32768, 32767).astype(np.int64)
        if kernels.lut_problems(table, k):
            continue
        run = _valid_run(table, raw, k, int(base), mode.mirror, target_lsb)
        if run is None or 16 * (representable - (run[1] - run[0] + 1)) > representable:
            continue
        attrs = {"step": k, "base": 0 if mode.mirror else int(base), "mirror": int(mode.mirror),
                 "center": mode.center, "gate": int(mode.gate), "shift": mode.shift}
        y = kernels.lut(CODES, table, k, attrs["base"], attrs["mirror"], mode.center, attrs["gate"], mode.shift)
        inside = slice(run[0] + 32768, run[1] + 32769)
        err = float(np.max(np.abs(y.astype(np.float64) - target_lsb)[inside]))
        if best is None or err < best[0]:
            best = (err, attrs, table.astype(np.int16), run[0], run[1])
    return best


def domain_clamp(g: Fn, q_in: int, calibrated: tuple[float, float]) -> tuple[float, float] | None:
    """Where to clamp the input of a function that is not finite on every input code of format
    ``q_in`` (Log, Sqrt, Reciprocal: a domain that ends, or a pole), or None when it is finite on all.

    Every code of the calibrated range ``[lo, hi]`` must have a finite value (ValueError naming
    the first that has none). On a side where codes beyond the range have none, the table
    clamps its input halfway between the calibrated bound and the nearest code without a value
    (``log`` calibrated on ``[0.5, 4]``: inputs below 0.25 read ``log(0.25)``); a side that is
    finite throughout is not clamped (the output saturates there like every op's). Returns the
    real ``(low, high)`` clamp (``-inf``/``inf`` for an unclamped side)."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(np.asarray(g(CODES * 2.0 ** -q_in), dtype=np.float64))
    if finite.all():
        return None
    lo, hi = float(calibrated[0]), float(calibrated[1])
    c_lo = int(np.clip(math.floor(lo * 2.0 ** q_in), -32768, 32767))
    c_hi = int(np.clip(math.ceil(hi * 2.0 ** q_in), c_lo, 32767))
    inside = finite[c_lo + 32768:c_hi + 32769]
    if not inside.all():
        bad = (c_lo + int(np.argmin(inside))) * 2.0 ** -q_in
        raise ValueError(f"the function has no finite value at x = {bad:.6g}, inside the calibrated input range "
                         f"[{lo:.6g}, {hi:.6g}]")
    below = np.flatnonzero(~finite[:c_lo + 32768])
    above = np.flatnonzero(~finite[c_hi + 32769:])
    low, high = -math.inf, math.inf
    if below.size:                  # codes below[-1] + 1 .. c_lo have values: clamp in their middle
        first_good = int(below[-1]) - 32768 + 1
        low = (c_lo - (c_lo - first_good) // 2) * 2.0 ** -q_in
    if above.size:
        last_good = c_hi + int(above[0])
        high = (c_hi + (last_good - c_hi) // 2) * 2.0 ** -q_in
    return low, high


_CACHE: dict[tuple[str, int, int], LutFit] = {}


def _fit(key: str, g: Fn, q_in: int, q_hint: int) -> LutFit:
    xs = CODES * 2.0 ** -q_in
    target = np.asarray(g(xs), dtype=np.float64)
    if not np.all(np.isfinite(target)):
        raise ValueError(f"{key} is not finite on the inputs of format q={q_in}")
    q_out = max(q_hint, bound_format(float(np.max(np.abs(target)))))
    q_out = min(q_out, Q_MAX)
    lipschitz = float(np.max(np.abs(np.diff(target)))) * 2.0 ** q_in
    tol = tolerance(q_in, q_out, lipschitz)
    # values beyond the output range saturate (the calibrated format's choice, as for every op):
    # the error is measured where the value is representable, within one LSB of the range
    # (sigmoid's and tanh's 1.0 at q = 15 count, as table error)
    target_lsb = target * 2.0 ** q_out
    target_lsb = np.where(np.abs(target_lsb) <= 32768.0, target_lsb, np.nan)
    best: tuple[tuple[int, int, float], LutFit] | None = None
    seen: dict[str, float] = {}
    for mode in _modes(g, q_in, q_out, target):
        lo, hi = _active(mode, q_in, q_out)
        for k in range(15, 0, -1):
            tried = _try(mode, k, lo, hi, q_in, q_out, target_lsb)
            if tried is None:
                continue
            err, attrs, table, valid_lo, valid_hi = tried
            fit = LutFit(attrs, table, mode.table_q, q_out, err, tol, lipschitz, mode.name, valid_lo, valid_hi)
            ok = err <= tol
            rank = (0 if ok else 1, table.size if ok else 0, err if not ok else int(mode.gate))
            if best is None or rank < best[0]:
                best = (rank, fit)
            if ok:
                seen[mode.name] = err
                break
    if best is None:
        raise ValueError(f"no table of at most {MAX_SEGMENTS} segments represents {key} (q={q_in})")
    fit = best[1]
    return LutFit(fit.attrs, fit.table, fit.table_q, fit.q_out, fit.error_lsb, fit.tolerance_lsb, fit.lipschitz,
                  fit.mode, fit.valid_lo, fit.valid_hi, dict(seen))


def fit_lut(key: str, g: Fn, q_in: int, q_hint: int) -> LutFit:
    """The table of ``g`` (float64 numpy function of the real input; ``key`` names it, e.g.
    ``"tanh"`` or ``"hardsigmoid(0.2,0.5)"``, and identifies it in the cache) for inputs of format
    ``q_in`` and the calibrated output format ``q_hint``. Raises ValueError when ``g`` is not finite
    on the inputs."""
    cached = _CACHE.get((key, q_in, q_hint))
    if cached is None:
        cached = _CACHE[(key, q_in, q_hint)] = _fit(key, g, q_in, q_hint)
    return cached

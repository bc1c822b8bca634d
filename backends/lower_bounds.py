"""The error bound a lowered program's Q formats imply, for one run (used by tests and `verify`).

For a run of the interpreter (``run_program(program, inputs, trace=True)``) this propagates, step by
step, an upper bound ``e[buf]`` on ``max |dequantised value - float value|`` over the elements of each
buffer, where "float value" is what the float model computes from the same (unquantised) input:

- input ``x``: ``2^-(q+1)`` (input rounding); an i16 constant: ``2^-(q+1)``.
- ``conv``/``fc``, per output channel ``c`` with dequantised weights ``W'`` (``|W' - W| <= 2^-(f_w+1)``
  per element, unless a weight saturated), ``taps`` products per output and ``A_c`` the largest sum
  of ``|x'|`` over one output's window in this run (``sum |x'|`` for ``fc``; padding counts 0, so
  the zeros an ``upsample`` inserts cost nothing):
  ``e_c = sum|W'_c| * e_x + 2^-(f_w[c]+1) * (A_c + taps * e_x) + 2^-(f_in+f_w[c]+1)`` (bias
  rounding) ``+ 2^-(f_out+1)`` when the shift rounds (``shift > 0``). ``conv_sparse``/``fc_sparse``
  compute exactly what the dense op does on the weights they encode: the same bound on those.
- activations are 1-Lipschitz (leaky with ``alpha < 1``); a clip adds the rounding of its bounds
  (``2^-(f+1)``); a leaky adds ``2^-16 * max|x|`` (slope rounding) plus its requant rounding.
- ``lut``: ``L * e_x + e_t``, with ``L`` the function's largest slope and ``e_t`` the table's worst
  error over the input codes ``[first, last]`` it holds on, all measured when the table was made
  (``meta["lut"]``, backends/lower_lut.py); the noise estimate adds the table error as one uniform
  LSB-like term. An input outside ``[first, last]`` is a saturation (the function leaves the
  output range there); an extreme output value inside is the function's own (sigmoid's 1.0 at
  q = 15), within the table error.
- ``embed``: the table's rounding ``2^-(q+1)`` (token ids are exact; an id input has no bound);
  ``maxpool``, ``transpose``, ``upsample``, ``slice``: ``e_x`` (they move values; the zeros ``upsample``
  inserts are exact); ``avgpool``: ``e_x + 2^-(f+1)`` (divround); ``add``: ``e_a + e_b`` plus the
  requant rounding; ``mul``: ``max(|a'| e_b + |b'| e_a) + e_a e_b`` (per element, ``a'``, ``b'`` the
  dequantised operands) plus the requant rounding; ``concat``: the largest input bound plus its requant rounding;
  ``layernorm``: per row ``(2 + |z|) e_x / (sigma - e_x)`` through the scale plus the kernel's
  and the scale's rounding (:func:`_layernorm_bound`); ``matmul``: ``max(sum_k |a'| e_b + e_a sum_k |b'|)
  + K e_a e_b`` plus the rounding; ``softmax``: ``e_x / 2 + e_t (1 + N max y) + 2^-15 max y`` plus the
  rounding (``e_t`` the exp table's worst error, backends/lower_softmax.py).

It is a worst case for this input (errors of different elements are assumed to line up), so it is
loose but sound, provided nothing saturated: any int16 result at the end of its range (-32768 or
32767), or a program input quantised to one (clipped to its format), sets ``saturated`` and the
bound no longer holds (nor is it meant to). The 32-bit accumulator
never wraps while the result does not saturate when the shift is within the limit that `quantize`
documents.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
from dataclasses import dataclass, field

import numpy as np

from backends.lower_softmax import table_error
from transpiler.lir import kernels
from transpiler.lir.ir import Program, Step

LUT_META = "lut"
"""The program meta key backends/lower_lut.py fills (``{step: [largest slope, table error]}``)."""


@dataclass
class ErrorBounds:
    """Per-buffer and per-output-port bounds of one run, and which buffers saturated.

    ``buffers``/``outputs``: the worst-case bound; ``typical``: the statistical estimate
    (``sigmas`` standard deviations of the propagated rounding noise, see :func:`error_bounds`).
    """

    buffers: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, float] = field(default_factory=dict)
    typical: dict[str, float] = field(default_factory=dict)
    saturated: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.saturated


def _lsb_half(q: int) -> float:
    return 2.0 ** (-q - 1)


def _window_abs_sums(step_op: str, attrs: Mapping[str, object], x: np.ndarray, cout: int,
                     kernel: tuple[int, int]) -> np.ndarray:
    """Per output channel, the largest sum of ``|x|`` over the taps of one output's window (the
    positions in the padding count 0): what multiplies the weight rounding. ``fc``: ``sum |x|``."""
    a = np.abs(x)
    if step_op == "fc":
        return np.full(cout, float(a.sum()))
    stride, pads, dilation = attrs["stride"], attrs["pads"], attrs["dilation"]
    group = attrs["group"]
    assert isinstance(stride, list) and isinstance(pads, list) and isinstance(dilation, list)
    assert isinstance(group, int)
    cin, h, w = a.shape
    (sh, sw), (pt, pl, pb, pr), (dh, dw), (kh, kw) = stride, pads, dilation, kernel
    padded = np.zeros((cin, h + pt + pb, w + pl + pr))
    padded[:, pt:pt + h, pl:pl + w] = a
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    sums = np.zeros((cin, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            sums += padded[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
    per_group = sums.reshape(group, cin // group, oh, ow).sum(axis=1).reshape(group, -1).max(axis=1)
    return np.repeat(per_group, cout // group)


def _dense_weights(program: Program, step: Step) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The integer weights ``[N, taps]`` of a ``conv``/``fc`` step or the dense weights its sparse
    form (``conv_sparse``/``fc_sparse``, docs/lir.md "Sparse ops") encodes, their fractional bits
    per output, and the kernel (``(1, 1)`` for fc): a sparse step computes exactly what the dense
    one does, so it has the same bound."""
    x = program.buffers[step.inputs[0]]
    wbuf = program.buffers[step.inputs[1]]
    if step.op in ("conv", "fc"):
        dense = np.asarray(wbuf.data)
        kernel = (int(wbuf.shape[2]), int(wbuf.shape[3])) if step.op == "conv" else (1, 1)
    elif step.op == "fc_sparse":
        values, deltas, rowptr = (program.buffers[n].data for n in step.inputs[1:4])
        dense = kernels.csr_to_dense(values, deltas, rowptr, int(np.prod(x.shape)))
        kernel = (1, 1)
    else:
        values, offsets, chanptr = (program.buffers[n].data for n in step.inputs[1:4])
        k, group, dilation = step.attrs["kernel"], step.attrs["group"], step.attrs["dilation"]
        assert isinstance(k, list) and isinstance(group, int) and isinstance(dilation, list)
        kernel = (int(k[0]), int(k[1]))
        dense = kernels.conv_sparse_to_dense(values, offsets, chanptr, int(x.shape[0]) // group, kernel,
                                             (int(x.shape[1]), int(x.shape[2])), dilation)
    w_q = np.asarray(dense, dtype=np.float64).reshape(dense.shape[0], -1)
    f_w = np.broadcast_to(np.asarray(wbuf.q, dtype=np.float64), (w_q.shape[0],))
    return w_q, f_w, kernel


def _layernorm_bound(xr: np.ndarray, n: int, e_x: float, var_x: float, g: np.ndarray, q_g: int,
                     eps: object, q_x: object) -> tuple[float, float]:
    """The bound and noise variance of a `layernorm` output before its requantisation.

    Per row (``x'`` dequantised, ``sigma' = sqrt(var(x') + eps)``, ``z'`` its normalised values):
    the true ``sigma`` is at least ``sigma' - e_x`` (the deviation moves by at most ``e_x``), the
    deviation ``d`` by at most ``2 e_x``, so ``|z' - z| <= (2 + |z'|) e_x / (sigma' - e_x)``; the
    kernel's ``Z = z / sqrt(N)`` (q = 15) is within 2 LSB of ``z' / sqrt(N)`` (docs/lir.md); the
    scale ``g' = g sqrt(N)`` (``|g' - g sqrt(N)| <= 2^-(q_g+1)``) and the bias (``2^-(15+q_g+1)``)
    then give ``|g'| e_Z + |Z| 2^-(q_g+1) + 2^-(16+q_g)``. A row whose ``sigma' <= e_x`` has no
    bound (infinite). ``n`` is the row length, ``g`` one value per position or one for all."""
    assert isinstance(eps, int) and isinstance(q_x, int)
    rows = xr.reshape(-1, n)
    if rows.size == 0:
        return 0.0, 0.0
    d = rows - rows.mean(axis=1, keepdims=True)
    sigma = np.sqrt((d ** 2).mean(axis=1, keepdims=True) + eps / (float(n) ** 3 * 4.0 ** q_x))
    if float(np.min(sigma)) <= e_x:
        return float("inf"), float("inf")
    z = np.abs(d) / sigma
    e_z = ((2.0 + z) * e_x / (sigma - e_x)) / np.sqrt(n) + 2.0 * 2.0 ** -15
    ag = np.abs(g)[None, :]
    e_y = float(np.max(ag * e_z + z / np.sqrt(n) * 2.0 ** -(q_g + 1))) + 2.0 ** -(16 + q_g)
    gain = float(np.max(ag * (2.0 + z) / sigma)) / np.sqrt(n)
    return e_y, gain ** 2 * var_x + float(np.max(ag)) ** 2 * (2.0 ** -15) ** 2 / 3.0


def error_bounds(program: Program, trace: Mapping[str, np.ndarray], sigmas: float = 6.0) -> ErrorBounds:
    """Bounds for the run whose ``run_program(..., trace=True)`` result is `trace`.

    Besides the worst case it propagates the variance of the rounding noise, treating every rounding
    as an independent error uniform over one LSB (variance ``LSB^2 / 12``): a ``conv``/``fc``
    channel gets ``sum W'^2 * var_x + sum x^2 * LSB_w^2 / 12 + LSB_out^2 / 12`` (``sum x^2`` from
    this run: exact for ``fc``, ``taps * mean(x^2)`` for ``conv``), ``add`` sums the variances,
    activations and pools keep them (a conservative choice), and ``typical`` is ``sigmas`` standard
    deviations. That estimate is what a correct lowering stays under in practice; the worst case is
    what it can never exceed.
    """
    out = ErrorBounds()
    e = out.buffers
    var: dict[str, float] = {}
    luts = {k: (float(v[0]), float(v[1]), int(v[2]), int(v[3]))
            for k, v in json.loads(program.meta.get(LUT_META, "{}")).items()}

    def value(name: str) -> np.ndarray:
        buf = program.buffers[name]
        if buf.is_const:
            return np.asarray(buf.data)
        return np.asarray(trace["%" + name])

    def root(name: str) -> str:
        r = program.storage_of(name).name
        if r not in e:
            buf = program.buffers[r]
            q = buf.q if isinstance(buf.q, int) else None
            e[r] = _lsb_half(q) if q is not None else 0.0
            var[r] = (2.0 ** -q) ** 2 / 12.0 if q is not None else 0.0
        return r

    def err(name: str) -> float:
        return e[root(name)]

    def variance(name: str) -> float:
        return var[root(name)]

    def real(name: str) -> np.ndarray:
        buf = program.buffers[name]
        q = buf.q if isinstance(buf.q, int) else 0
        return value(name).astype(np.float64) * 2.0 ** -q

    def mag(name: str) -> float:
        v = real(name)
        return float(np.max(np.abs(v))) if v.size else 0.0

    def act_err(attrs: Mapping[str, object], q_out: int, m: float) -> float:
        kind = attrs.get("act", "none")
        if kind == "clip":
            return _lsb_half(q_out)
        if kind == "leaky":
            return 2.0 ** -16 * m + _lsb_half(q_out)
        return 0.0

    for port in program.inputs:
        root(port.buffer)
        codes = value(port.buffer)
        if program.buffers[port.buffer].dtype != "i16":
            continue                            # token ids: exact, nothing to clip
        if codes.size and (int(codes.min()) <= -32768 or int(codes.max()) >= 32767):
            out.saturated.append(port.buffer)   # the input was clipped to its format's range

    for step in program.steps:
        y = step.outputs[0]
        ybuf = program.buffers[y]
        q_out = ybuf.q if isinstance(ybuf.q, int) else 0
        lsb2 = (2.0 ** -q_out) ** 2 / 12.0
        if step.op in ("conv", "fc", "conv_sparse", "fc_sparse"):
            x = step.inputs[0]
            dense_op = "fc" if step.op.startswith("fc") else "conv"
            w_q, f_w, kernel = _dense_weights(program, step)
            taps = w_q.shape[1]
            scale = 2.0 ** -f_w
            l1 = np.abs(w_q).sum(axis=1) * scale
            l2 = (w_q ** 2).sum(axis=1) * scale ** 2
            e_x = err(x)
            xv = real(x)
            energy = float(np.sum(xv ** 2)) if dense_op == "fc" else taps * float(np.mean(xv ** 2))
            q_in = program.buffers[x].q
            assert isinstance(q_in, int)
            shifts = np.asarray(step.attrs["shift"], dtype=np.int64)
            rounds = np.where(shifts > 0, 1.0, 0.0)
            window = _window_abs_sums(dense_op, step.attrs, xv, w_q.shape[0], kernel)
            e_c = (l1 * e_x + 0.5 * scale * (window + taps * e_x) + 0.5 * 2.0 ** -(q_in + f_w)
                   + rounds * _lsb_half(q_out))
            v_c = l2 * variance(x) + energy * scale ** 2 / 12.0 + rounds * lsb2
            pre = float(np.max(e_c))
            e[y] = pre + act_err(step.attrs, q_out, mag(y) + pre)
            var[y] = float(np.max(v_c)) + (lsb2 if step.attrs.get("act") in ("clip", "leaky") else 0.0)
        elif step.op in ("maxpool", "transpose", "upsample", "slice"):   # copies of input elements
            e[y], var[y] = err(step.inputs[0]), variance(step.inputs[0])
        elif step.op == "embed":        # rows of the table: its rounding (the ids are exact)
            e[y], var[y] = err(step.inputs[1]), variance(step.inputs[1])
        elif step.op == "avgpool":
            e[y] = err(step.inputs[0]) + _lsb_half(q_out)
            var[y] = variance(step.inputs[0]) + lsb2
        elif step.op == "add":
            a, b = step.inputs
            shift = step.attrs["shift"]
            assert isinstance(shift, int)
            rounds = 1.0 if shift > 0 else 0.0
            pre = err(a) + err(b) + rounds * _lsb_half(q_out)
            e[y] = pre + act_err(step.attrs, q_out, mag(y) + pre)
            var[y] = variance(a) + variance(b) + rounds * lsb2
        elif step.op == "mul":
            # a*b - a'*b' = a'*(b - b') + b'*(a - a') - (a - a')*(b - b'), per element
            a, b = step.inputs
            shift = step.attrs["shift"]
            assert isinstance(shift, int)
            rounds = 1.0 if shift > 0 else 0.0
            ra, rb = np.abs(real(a)), np.abs(real(b))
            ea, eb = err(a), err(b)
            pre = float(np.max(ra * eb + rb * ea)) + ea * eb + rounds * _lsb_half(q_out)
            e[y] = pre + act_err(step.attrs, q_out, mag(y) + pre)
            var[y] = float(np.max(ra ** 2 * variance(b) + rb ** 2 * variance(a))) + rounds * lsb2
        elif step.op == "matmul":
            # sum_k a_k b_k - a'_k b'_k = sum_k a'_k (b_k - b'_k) + b'_k (a_k - a'_k) - (a-a')(b-b')
            a, b = step.inputs
            shift = step.attrs["shift"]
            assert isinstance(shift, int)
            rounds = 1.0 if shift > 0 else 0.0
            ra, rb = np.abs(real(a)), np.abs(real(b))
            ea, eb = err(a), err(b)
            k = ra.shape[1]
            pre = float(np.max(ra.sum(axis=1, keepdims=True) * eb + ea * rb.sum(axis=0, keepdims=True))) \
                + k * ea * eb + rounds * _lsb_half(q_out)
            e[y] = pre + act_err(step.attrs, q_out, mag(y) + pre)
            var[y] = float(np.max((ra ** 2).sum(axis=1, keepdims=True) * variance(b)
                                  + variance(a) * (rb ** 2).sum(axis=0, keepdims=True))) + rounds * lsb2
        elif step.op == "softmax":
            # softmax moves by at most 1/2 e_x (the Jacobian's row sums are 2 y (1 - y) <= 1/2); the
            # table error e_t on every exp moves y_j by e_t (1 + N y_j) (the sum of exps is >= 1);
            # the reciprocal's floor by y 2^-15; then the output rounding
            x, t = step.inputs
            tbuf = program.buffers[t]
            q_x = program.buffers[x].q
            assert isinstance(q_x, int) and isinstance(step.attrs["step"], int)
            e_t = table_error(np.asarray(tbuf.data), step.attrs["step"], q_x)
            n = program.buffers[x].shape[-1]
            e[y] = 0.5 * err(x) + e_t * (1.0 + n * mag(y)) + 2.0 ** -15 * mag(y) + _lsb_half(q_out)
            var[y] = 0.25 * variance(x) + e_t ** 2 / 3.0 + lsb2
        elif step.op == "layernorm":
            x, g, _ = step.inputs
            gbuf = program.buffers[g]
            q_g = gbuf.q
            shift = step.attrs["shift"]
            assert isinstance(q_g, int) and isinstance(shift, int)
            e_y, v_y = _layernorm_bound(real(x), program.buffers[x].shape[-1], err(x), variance(x),
                                        np.asarray(gbuf.data, dtype=np.float64) * 2.0 ** -q_g,
                                        q_g, step.attrs["eps"], program.buffers[x].q)
            rounds = 1.0 if shift > 0 else 0.0
            e[y] = e_y + rounds * _lsb_half(q_out) + act_err(step.attrs, q_out, mag(y) + e_y)
            var[y] = v_y + rounds * lsb2
        elif step.op == "act":
            x = step.inputs[0]
            e[y] = err(x) + act_err(step.attrs, q_out, mag(x))
            var[y] = variance(x) + (lsb2 if step.attrs.get("act") in ("clip", "leaky") else 0.0)
        elif step.op == "lut":
            x = step.inputs[0]
            slope, table_err, first, last = luts.get(step.name, (float("inf"), float("inf"), 0, -1))
            e[y] = slope * err(x) + table_err
            var[y] = slope ** 2 * variance(x) + table_err ** 2 / 3.0
            codes = value(x)
            # the table error holds on the inputs [first, last]; beyond, the output saturates (an
            # extreme value inside is the function's own, within the table error)
            if codes.size and (int(codes.min()) < first or int(codes.max()) > last):
                out.saturated.append(y)
            continue
        elif step.op == "concat":
            shifts = step.attrs["shifts"]
            assert isinstance(shifts, list)
            e[y] = max(err(x) + (_lsb_half(q_out) if s > 0 else 0.0) for x, s in zip(step.inputs, shifts))
            var[y] = max(variance(x) + (lsb2 if s > 0 else 0.0) for x, s in zip(step.inputs, shifts))
        elif step.op == "argmax":
            e[y] = var[y] = 0.0
            continue
        else:
            e[y] = var[y] = float("inf")
        v = value(y)
        if v.size and (int(v.min()) <= -32768 or int(v.max()) >= 32767):
            out.saturated.append(y)

    for port in program.outputs:
        out.outputs[port.onnx_name] = err(port.buffer)
        out.typical[port.onnx_name] = sigmas * float(np.sqrt(variance(port.buffer))) + _lsb_half(
            program.storage_of(port.buffer).q if isinstance(program.storage_of(port.buffer).q, int) else 0)
    return out

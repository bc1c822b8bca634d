"""One C printer per LIR op (a table, tinygrad style): LIR step -> descriptor + step function body.

Every step becomes ``static void fx_<m>_step_<i>_<name>(uint16_t u0, uint16_t u1)`` computing the
work units ``[u0, u1)`` of that step. A *work unit* is the smallest piece the runtime schedules (and
the intermittent runtime commits between); running a unit twice writes the same bytes:

==========  ========================================================  ============================
op          one work unit                                              units
==========  ========================================================  ============================
conv        one output row of one output channel, ``u = co*OH + oy``   ``Cout * OH``
            (column units, tile ``[1,1,cw]``: ``u = (co*OH + oy)*nc + cx``)  ``Cout * OH * nc``
conv_sparse as conv                                                    ``Cout * OH``
fc          one output                                                 ``N``
fc_sparse   one output                                                 ``N``
maxpool     one output channel                                         ``C``
layernorm   one row (the last axis)                                    ``size / N``
softmax     one row (the last axis)                                    ``size / N``
matmul      one output row                                             ``M``
embed       one output row (one token)                                 ``T``
avgpool     one output channel                                         ``C``
add, mul,   a chunk of ``ELTWISE_CHUNK`` output elements               ``ceil(n / ELTWISE_CHUNK)``
act, lut
transpose,  a chunk of ``ELTWISE_CHUNK`` output elements               ``ceil(n / ELTWISE_CHUNK)``
slice
upsample    a chunk of ``ELTWISE_CHUNK`` output elements               ``ceil(n / ELTWISE_CHUNK)``
concat      a chunk of ``ELTWISE_CHUNK`` output elements               ``ceil(n / ELTWISE_CHUNK)``
argmax      the whole step                                             ``1``
trees       one tree (one walk from its root to a leaf)                ``T``
tree_sum    one output                                                 ``C``
==========  ========================================================  ============================

A step's :class:`~transpiler.lir.ir.TilePlan` becomes ``tile_units``, the number of consecutive units
run between two scheduling points (see :func:`tile_units`). Printers check the shapes they rely
on and raise :class:`UnsupportedError` naming the step otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from backends.c.cnames import C_TYPES, c_array_init, c_comment_text, shape_text
from transpiler.errors import Location, UnsupportedError
from transpiler.lir.ir import Buffer, Program, Step
from transpiler.lir.kernels import LAYERNORM_EPS_MAX, LAYERNORM_N_MAX, conv_sparse_positions
from transpiler.lir.cost import col_split, conv_unit_cols

ELTWISE_CHUNK = 32
MAX_UNITS = 0xFFFF

ACT_KINDS = {"none": "FX_ACT_NONE", "relu": "FX_ACT_RELU", "clip": "FX_ACT_CLIP", "leaky": "FX_ACT_LEAKY"}


@dataclass
class CDef:
    """A constant object for ``<m>_weights.c``: its extern declaration and its definition."""

    decl: str
    definition: str


@dataclass
class StepEnv:
    """What a printer may use: the program, the step, and how to spell buffers in C."""

    program: Program
    step: Step
    index: int
    prefix: str                          # "fx_<m>_"
    ptr: Callable[[str], str]            # buffer name -> C pointer expression (activations and consts)
    placement: Callable[[str], str]      # const buffer name -> "FX_FRAM" / "FX_HIFRAM"

    def buf(self, name: str) -> Buffer:
        return self.program.buffers[name]

    def sym(self, what: str) -> str:
        """The name of a per-step object in weights.c, e.g. fx_m_s3_conv."""
        return f"{self.prefix}s{self.index}_{what}"

    def fail(self, message: str, hint: str | None = None) -> UnsupportedError:
        return UnsupportedError(message, location=Location(pass_name="emit-c", node=self.step.name,
                                                           op=self.step.op),
                                hint=hint or "this LIR is outside what emit-c supports; see docs/lir.md")


@dataclass
class StepCode:
    """A printed step: its work units, the function body and the constant objects it needs."""

    units: int
    unit_doc: str
    body: list[str]
    defs: list[CDef] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)   # model.c helpers it calls (HELPERS keys)
    kernels: set[str] = field(default_factory=set)


# --- helpers shared by printers -------------------------------------------------------------------

def _attr_list(env: StepEnv, key: str, n: int | None = None, default: list[int] | None = None) -> list[int]:
    value = env.step.attrs.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise env.fail(f"attribute {key} must be a list of ints, got {value!r}")
    if n is not None and len(value) != n:
        raise env.fail(f"attribute {key} must have {n} values, got {len(value)}")
    return list(value)


def _attr_int(env: StepEnv, key: str, default: int | None = None) -> int:
    value = env.step.attrs.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise env.fail(f"attribute {key} must be an int, got {value!r}")
    return value


def _u16(env: StepEnv, what: str, value: int) -> str:
    if not 0 <= value <= 0xFFFF:
        raise env.fail(f"{what} = {value} does not fit uint16_t")
    return f"{value}u"


def _act_init(env: StepEnv) -> str:
    kind = env.step.attrs.get("act", "none")
    if kind not in ACT_KINDS:
        raise env.fail(f"unknown activation {kind!r}", hint=f"one of {', '.join(ACT_KINDS)}")
    lo = _attr_int(env, "lo", 0) if kind == "clip" else 0
    hi = _attr_int(env, "hi", 0) if kind == "clip" else 0
    alpha = _attr_int(env, "alpha", 0) if kind == "leaky" else 0
    for what, v in (("lo", lo), ("hi", hi), ("alpha", alpha)):
        if not -32768 <= v <= 32767:
            raise env.fail(f"activation {what} = {v} does not fit int16")
    return f"{{ {ACT_KINDS[str(kind)]}, {lo}, {hi}, {alpha} }}"


def _shift_def(env: StepEnv, shifts: list[int], key: str = "shift") -> tuple[str, CDef]:
    for s in shifts:
        if not -128 <= s <= 127:
            raise env.fail(f"{key} value {s} does not fit int8")
    name = env.sym(key)
    decl = f"extern const int8_t {name}[{len(shifts)}] FX_FRAM;"
    init = c_array_init(np.asarray(shifts, dtype=np.int64), "i8", per_line=16)
    return name, CDef(decl, f"const int8_t {name}[{len(shifts)}] FX_FRAM = {init};")


def _struct_def(env: StepEnv, ctype: str, what: str, fields: list[tuple[str, str]]) -> tuple[str, CDef]:
    name = env.sym(what)
    body = ",\n".join(f"    .{k} = {v}" for k, v in fields)
    return name, CDef(f"extern const {ctype} {name} FX_FRAM;", f"const {ctype} {name} FX_FRAM = {{\n{body}\n}};")


def _shape(env: StepEnv, name: str, rank: int, role: str) -> tuple[int, ...]:
    b = env.buf(name)
    if len(b.shape) != rank:
        raise env.fail(f"{role} %{name} has shape {list(b.shape)}; expected rank {rank}")
    return b.shape


def _check_io(env: StepEnv, n_in: int | tuple[int, int], n_out: int = 1) -> None:
    lo, hi = (n_in, n_in) if isinstance(n_in, int) else n_in
    if not lo <= len(env.step.inputs) <= hi or len(env.step.outputs) != n_out:
        raise env.fail(f"expected {lo}..{hi} inputs and {n_out} output(s), got "
                       f"{len(env.step.inputs)} and {len(env.step.outputs)}")


def _pointer_lines(env: StepEnv, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> list[str]:
    """`const int16_t *x = ...;   /* %t1 i16[6,24,24] q=10 sram @0 */` lines for the body."""
    lines = []
    for role, names in (("const ", inputs), ("", outputs)):
        for var, name in names:
            b = env.buf(name)
            store = env.program.storage_of(name)
            where = f"{store.space} @{store.offset}" if store.space is not None else "unplanned"
            alias = f" (view of %{store.name})" if store is not b else ""
            ctype = C_TYPES[b.dtype] if store.is_const else "int16_t"     # the activation arenas are int16_t
            lines.append(f"{role}{ctype} *{var} = {env.ptr(name)};  "
                         f"/* %{c_comment_text(name)}{c_comment_text(alias)} {b.dtype}{shape_text(b.shape)} "
                         f"q={b.q if not isinstance(b.q, list) else 'per-channel'} {where} */")
    return lines


def _eltwise_range(n: int) -> list[str]:
    return [f"uint32_t i0 = (uint32_t)u0 * {ELTWISE_CHUNK}u;",
            f"uint32_t i1 = (uint32_t)u1 * {ELTWISE_CHUNK}u;",
            f"if (i1 > {n}u) {{",
            f"    i1 = {n}u;",
            "}"]


def _eltwise_units(env: StepEnv, n: int) -> int:
    units = -(-n // ELTWISE_CHUNK)
    if units > MAX_UNITS:
        raise env.fail(f"{n} elements are more than {MAX_UNITS} work units of {ELTWISE_CHUNK}")
    return units


# --- the printers -----------------------------------------------------------------------------

def _conv_geometry(env: StepEnv, x: str, y: str, kh: int, kw: int, cin_g: int | None) -> list[tuple[str, str]]:
    """The fx_conv_t / fx_conv_sparse_t geometry fields (shared by both printers)."""
    return [(k, _u16(env, k, v)) for k, v in _conv_dims(env, x, y, kh, kw, cin_g).items()]


def _conv_dims(env: StepEnv, x: str, y: str, kh: int, kw: int, cin_g: int | None) -> dict[str, int]:
    """The geometry fields of fx_conv_t / fx_conv_sparse_t (cin..group), checked."""
    cin, ih, iw = _shape(env, x, 3, "input")
    cout, oh, ow = _shape(env, y, 3, "output")
    group = _attr_int(env, "group", 1)
    sh, sw = _attr_list(env, "stride", 2, [1, 1])
    dh, dw = _attr_list(env, "dilation", 2, [1, 1])
    pt, pl, _pb, _pr = _attr_list(env, "pads", 4, [0, 0, 0, 0])
    if group < 1 or cin % group or cout % group or (cin_g is not None and cin_g * group != cin):
        raise env.fail(f"input channels {cin}, output channels {cout} and group {group} do not match"
                       + (f" the weights' {cin_g} input channels per group" if cin_g is not None else ""))
    if cout * oh > MAX_UNITS:
        raise env.fail(f"{cout} channels x {oh} rows = {cout * oh} work units exceed {MAX_UNITS}")
    return {"cin": cin, "ih": ih, "iw": iw, "cout": cout, "oh": oh, "ow": ow, "kh": kh, "kw": kw,
            "sh": sh, "sw": sw, "dh": dh, "dw": dw, "pt": pt, "pl": pl, "group": group}


def inside_range(size: int, taps: int, s: int, d: int, pad: int, out: int) -> tuple[int, int]:
    """fx_inside_range (runtime_c/fx_window.h): the output positions ``[lo, hi)`` in ``[0, out)``
    whose ``taps`` taps (step ``d``, stride ``s``, padding ``pad``) all lie inside ``[0, size)``."""
    span = (taps - 1) * d + 1
    if taps == 0 or span > size:
        return 0, 0
    last = size - span + pad
    lo, hi = pad, last + 1
    if s != 1:
        lo, hi = (pad + s - 1) // s, last // s + 1
    hi = min(hi, out)
    return min(lo, hi), hi


def conv_derived(g: dict[str, int]) -> dict[str, int]:
    """The derived fields of fx_conv_t (runtime_c/fx_kernels.h) from its geometry ``g`` (the
    fields cin..group): what fx_conv_prepare computes, in the struct's order."""
    cin_g, cout_g = g["cin"] // g["group"], g["cout"] // g["group"]
    oxa, oxb = inside_range(g["iw"], g["kw"], g["sw"], 1, g["pl"], g["ow"]) if g["dw"] == 1 else (0, 0)
    oya, oyb = inside_range(g["ih"], g["kh"], g["sh"], g["dh"], g["pt"], g["oh"])
    pointwise = (g["kh"] == 1 and g["kw"] == 1 and g["sh"] == 1 and g["sw"] == 1 and g["pt"] == 0
                 and g["pl"] == 0 and g["ow"] == g["iw"] and g["oh"] <= g["ih"])
    xdh = g["dh"] * g["iw"]
    return {"cin_g": cin_g, "cout_g": cout_g, "oxa": oxa, "oxb": oxb, "oya": oya, "oyb": oyb,
            "pointwise": int(pointwise), "ixa": oxa * g["sw"] - g["pl"], "ixb": oxb * g["sw"] - g["pl"],
            "hw": g["ih"] * g["iw"], "ohw": g["oh"] * g["ow"], "ktaps": g["kh"] * g["kw"],
            "wsize": cin_g * g["kh"] * g["kw"], "xdh": xdh, "xsh": g["sh"] * g["iw"],
            "xkh": (g["kh"] - 1) * xdh, "xoya": (oya * g["sh"] - g["pt"]) * g["iw"] if oya < oyb else 0}


def _conv_derived_init(name: str, v: int) -> str:
    """The C initializer of a derived fx_conv_t field: uint16_t, int32_t (ixa, ixb) or size_t (16
    bits in the MSP430's small memory model, where a value that does not fit is never used as a step:
    it would leave the 64 KiB; so it may wrap without a warning)."""
    if name in ("ixa", "ixb"):
        return f"{v}l" if v >= 0 else f"({v}l)"
    if name in ("cin_g", "cout_g", "oxa", "oxb", "oya", "oyb", "pointwise"):
        return f"{v}u"
    return f"{v}u" if v <= 0xFFFF else f"(size_t){v}ul"


def _check_dtypes(env: StepEnv, want: dict[int, str]) -> None:
    for pos, dtype in want.items():
        name = env.step.inputs[pos]
        if env.buf(name).dtype != dtype or not env.program.storage_of(name).is_const:
            raise env.fail(f"input {pos} %{name} must be a constant {dtype} (is {env.buf(name).dtype})")


def print_conv_sparse(env: StepEnv) -> StepCode:
    """conv_sparse -> fx_conv_sparse over output rows; descriptor fx_conv_sparse_t (values, offsets,
    chanptr: docs/lir.md "Sparse ops")."""
    _check_io(env, 5)
    x, values, offsets, chanptr, bias = env.step.inputs
    y = env.step.outputs[0]
    _check_dtypes(env, {1: "i16", 2: "u16", 3: "u16", 4: "i32"})
    cout, oh, _ow = _shape(env, y, 3, "output")
    kh, kw = _attr_list(env, "kernel", 2)
    if env.buf(chanptr).size != cout + 1 or env.buf(bias).size != cout:
        raise env.fail(f"chanptr needs {cout + 1} entries and the bias {cout}")
    geometry = _conv_geometry(env, x, y, kh, kw, None)
    cin, ih, iw = _shape(env, x, 3, "input")
    positions = conv_sparse_positions(cin // _attr_int(env, "group", 1), (kh, kw), (ih, iw),
                                      _attr_list(env, "dilation", 2, [1, 1]))
    if positions > 0xFFFF:
        raise env.fail(f"one group's input (grown to the dilated kernel) has {positions} elements; "
                       f"fx_conv_sparse indexes it with uint16 (at most 65535)",
                       hint="store this layer dense (lower{sparse=never}); lower does so by itself")
    shift_name, shift_def = _shift_def(env, _attr_list(env, "shift", cout))
    desc, desc_def = _struct_def(env, "fx_conv_sparse_t", "conv", [
        *geometry, ("values", env.ptr(values)), ("offsets", env.ptr(offsets)), ("chanptr", env.ptr(chanptr)),
        ("bias", env.ptr(bias)), ("shift", shift_name), ("act", _act_init(env))])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"{env.prefix}conv_sparse_units(&{desc}, x, y, u0, u1);")
    nnz = env.buf(values).size
    return StepCode(cout * oh, f"output rows: u = co * {oh} + oy ({cout} x {oh}); {nnz} stored weights",
                    body, [shift_def, desc_def], {"conv_sparse_units"}, {"fx_conv_sparse"})


def print_fc_sparse(env: StepEnv) -> StepCode:
    """fc_sparse -> fx_fc_sparse over outputs; descriptor fx_fc_sparse_t (CSR values, byte steps
    deltas, rowptr)."""
    _check_io(env, 5)
    x, values, deltas, rowptr, bias = env.step.inputs
    y = env.step.outputs[0]
    _check_dtypes(env, {1: "i16", 2: "u16", 3: "u16", 4: "i32"})
    k = env.buf(x).size
    (n,) = _shape(env, y, 1, "output")
    if env.buf(rowptr).size != n + 1 or env.buf(bias).size != n:
        raise env.fail(f"rowptr needs {n + 1} entries and the bias {n}")
    shifts = _attr_list(env, "shift", n)
    shift_name, shift_def = _shift_def(env, shifts)
    desc, desc_def = _struct_def(env, "fx_fc_sparse_t", "fc", [
        ("k", _u16(env, "k", k)), ("n", _u16(env, "n", n)), ("values", env.ptr(values)),
        ("deltas", env.ptr(deltas)), ("rowptr", env.ptr(rowptr)), ("bias", env.ptr(bias)),
        ("shift", shift_name), ("shift_min", str(min(shifts, default=0))),
        ("shift_max", str(max(shifts, default=0))), ("act", _act_init(env))])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"fx_fc_sparse(&{desc}, x, y, u0, u1);")
    return StepCode(n, f"outputs ({n}); {env.buf(values).size} stored weights", body, [shift_def, desc_def],
                    set(), {"fx_fc_sparse"})


def print_conv(env: StepEnv) -> StepCode:
    """conv -> fx_conv over output rows; descriptor fx_conv_t with the weights, bias and shifts."""
    _check_io(env, (2, 3))
    x, w = env.step.inputs[0], env.step.inputs[1]
    bias = env.step.inputs[2] if len(env.step.inputs) > 2 else None
    y = env.step.outputs[0]
    cout, oh, _ow = _shape(env, y, 3, "output")
    wc, wcin, kh, kw = _shape(env, w, 4, "weight")
    if wc != cout:
        raise env.fail(f"weight shape {[wc, wcin, kh, kw]} does not match {cout} output channels")
    if env.buf(w).dtype != "i16" or (bias is not None and env.buf(bias).dtype != "i32"):
        raise env.fail("conv needs i16 weights and an i32 bias")
    dims = _conv_dims(env, x, y, kh, kw, wcin)
    shifts = _attr_list(env, "shift", cout)
    defs = []
    bias_ptr = env.ptr(bias) if bias is not None else env.sym("bias")
    if bias is None:
        defs.append(CDef(f"extern const int32_t {bias_ptr}[{cout}] FX_FRAM;",
                         f"const int32_t {bias_ptr}[{cout}] FX_FRAM = "
                         f"{c_array_init(np.zeros(cout, dtype=np.int64), 'i32')};"))
    shift_name, shift_def = _shift_def(env, shifts)
    defs.append(shift_def)
    desc, desc_def = _struct_def(env, "fx_conv_t", "conv", [
        *((k, _u16(env, k, v)) for k, v in dims.items()), ("w", env.ptr(w)), ("bias", bias_ptr), ("shift", shift_name), ("act", _act_init(env)),
        *((k, _conv_derived_init(k, v)) for k, v in conv_derived(dims).items())])
    defs.append(desc_def)
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    cw = conv_unit_cols(env.program, env.step)
    if cw < _ow:                        # column units (the tile pass split rows that do not fit)
        nc = -(-_ow // cw)
        if cout * oh * nc > 0xFFFF:
            raise env.fail(f"{cout * oh * nc} column units ({cout} x {oh} x {nc}) exceed the 16-bit unit index",
                           hint="a larger --cycles-per-power-cycle (wider column units)")
        body.append(f"fx_conv_col_units(&{desc}, x, y, {cw}u, u0, u1);")
        return StepCode(cout * oh * nc, f"output columns: u = (co * {oh} + oy) * {nc} + cx, columns "
                        f"[cx * {cw}, cx * {cw} + {cw}) ({cout} x {oh} x {nc})", body, defs, set(),
                        {"fx_conv_col_units"})
    body.append(f"fx_conv_units(&{desc}, x, y, (uint16_t)(u0 / {oh}u), (uint16_t)(u0 % {oh}u), "
                "(uint16_t)(u1 - u0));")
    return StepCode(cout * oh, f"output rows: u = co * {oh} + oy ({cout} x {oh})", body, defs,
                    set(), {"fx_conv_units"})


def print_fc(env: StepEnv) -> StepCode:
    """fc -> fx_fc over outputs; descriptor fx_fc_t."""
    _check_io(env, 3)
    x, w, bias = env.step.inputs
    y = env.step.outputs[0]
    k = env.buf(x).size                       # fc reads any input shape as a vector of K elements
    (n,) = _shape(env, y, 1, "output")
    wn, wk = _shape(env, w, 2, "weight")
    if (wn, wk) != (n, k):
        raise env.fail(f"weight shape {[wn, wk]} does not match [{n}, {k}]")
    if env.buf(w).dtype != "i16" or env.buf(bias).dtype != "i32":
        raise env.fail("fc needs i16 weights and an i32 bias")
    shift_name, shift_def = _shift_def(env, _attr_list(env, "shift", n))
    desc, desc_def = _struct_def(env, "fx_fc_t", "fc", [
        ("k", _u16(env, "k", k)), ("n", _u16(env, "n", n)), ("w", env.ptr(w)), ("bias", env.ptr(bias)),
        ("shift", shift_name), ("act", _act_init(env))])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"fx_fc(&{desc}, x, y, u0, u1);")
    return StepCode(n, f"outputs ({n})", body, [shift_def, desc_def], set(), {"fx_fc"})


def _print_pool(env: StepEnv, kernel: str) -> StepCode:
    _check_io(env, 1)
    x, y = env.step.inputs[0], env.step.outputs[0]
    c, ih, iw = _shape(env, x, 3, "input")
    c2, oh, ow = _shape(env, y, 3, "output")
    if c2 != c:
        raise env.fail(f"pooling changes the channel count {c} -> {c2}")
    kh, kw = _attr_list(env, "kernel", 2)
    sh, sw = _attr_list(env, "stride", 2, [1, 1])
    dh, dw = _attr_list(env, "dilation", 2, [1, 1]) if kernel == "maxpool" else (1, 1)
    pt, pl, pb, pr = _attr_list(env, "pads", 4, [0, 0, 0, 0])
    cip = _attr_int(env, "count_include_pad", 0) if kernel == "avgpool" else 0
    if kernel == "avgpool" and kh * kw > 32767:
        raise env.fail(f"average pooling window {kh}x{kw} is larger than 32767 elements")
    desc, desc_def = _struct_def(env, "fx_pool_t", "pool", [
        ("c", _u16(env, "c", c)), ("ih", _u16(env, "ih", ih)), ("iw", _u16(env, "iw", iw)),
        ("oh", _u16(env, "oh", oh)), ("ow", _u16(env, "ow", ow)),
        ("kh", _u16(env, "kh", kh)), ("kw", _u16(env, "kw", kw)),
        ("sh", _u16(env, "sh", sh)), ("sw", _u16(env, "sw", sw)),
        ("dh", _u16(env, "dh", dh)), ("dw", _u16(env, "dw", dw)),
        ("pt", _u16(env, "pt", pt)), ("pl", _u16(env, "pl", pl)),
        ("pb", _u16(env, "pb", pb)), ("pr", _u16(env, "pr", pr)),
        ("count_include_pad", _u16(env, "count_include_pad", cip))])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"fx_{kernel}(&{desc}, x, y, u0, u1);")
    return StepCode(c, f"output channels ({c})", body, [desc_def], set(), {f"fx_{kernel}"})


def print_maxpool(env: StepEnv) -> StepCode:
    """maxpool -> fx_maxpool over channels; descriptor fx_pool_t."""
    return _print_pool(env, "maxpool")


def print_avgpool(env: StepEnv) -> StepCode:
    """avgpool -> fx_avgpool over channels; descriptor fx_pool_t."""
    return _print_pool(env, "avgpool")


def print_add(env: StepEnv) -> StepCode:
    """add -> fx_add over element chunks; descriptor fx_add_t."""
    _check_io(env, 2)
    a, b = env.step.inputs
    y = env.step.outputs[0]
    n = env.buf(y).size
    if env.buf(a).size != n or env.buf(b).size != n:
        raise env.fail(f"add operands have {env.buf(a).size} and {env.buf(b).size} elements, the output {n}")
    sa, sb, s = _attr_int(env, "shift_a", 0), _attr_int(env, "shift_b", 0), _attr_int(env, "shift", 0)
    if not (0 <= sa <= 15 and 0 <= sb <= 15 and -128 <= s <= 127):
        raise env.fail(f"add shifts out of range: shift_a={sa}, shift_b={sb}, shift={s}")
    desc, desc_def = _struct_def(env, "fx_add_t", "add", [
        ("shift_a", f"{sa}u"), ("shift_b", f"{sb}u"), ("shift", str(s)), ("act", _act_init(env))])
    body = _pointer_lines(env, [("a", a), ("b", b)], [("y", y)]) + _eltwise_range(n)
    body.append(f"fx_add(&{desc}, a, b, y, i0, i1);")
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} elements ({n})", body, [desc_def],
                    set(), {"fx_add"})


def print_mul(env: StepEnv) -> StepCode:
    """mul -> fx_mul over element chunks; descriptor fx_mul_t."""
    _check_io(env, 2)
    a, b = env.step.inputs
    y = env.step.outputs[0]
    n = env.buf(y).size
    if env.buf(a).size != n or env.buf(b).size != n:
        raise env.fail(f"mul operands have {env.buf(a).size} and {env.buf(b).size} elements, the output {n}")
    s = _attr_int(env, "shift", 0)
    if not -15 <= s <= 31:
        raise env.fail(f"mul shift {s} is outside [-15, 31]")
    desc, desc_def = _struct_def(env, "fx_mul_t", "mul", [("shift", str(s)), ("act", _act_init(env))])
    body = _pointer_lines(env, [("a", a), ("b", b)], [("y", y)]) + _eltwise_range(n)
    body.append(f"fx_mul(&{desc}, a, b, y, i0, i1);")
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} elements ({n})", body, [desc_def],
                    set(), {"fx_mul"})


def print_layernorm(env: StepEnv) -> StepCode:
    """layernorm -> fx_layernorm over rows (the last axis); descriptor fx_layernorm_t with the scale
    and the bias (``step`` 1: one per position, 0: one value for all)."""
    _check_io(env, 3)
    x, g, bias = env.step.inputs
    y = env.step.outputs[0]
    shape = env.buf(x).shape
    n = shape[-1]
    size = env.buf(y).size
    per = env.buf(g).size
    if env.buf(x).size != size or per not in (n, 1) or env.buf(bias).size != per:
        raise env.fail(f"layernorm shapes do not fit: x {list(shape)}, scale {list(env.buf(g).shape)}, "
                       f"bias {list(env.buf(bias).shape)}, output of {size} elements")
    _check_dtypes(env, {1: "i16", 2: "i32"})
    eps, s = _attr_int(env, "eps"), _attr_int(env, "shift")
    if not (1 <= n <= LAYERNORM_N_MAX and 0 <= eps <= LAYERNORM_EPS_MAX and -15 <= s <= 31):
        raise env.fail(f"layernorm attributes out of range: rows of {n}, eps={eps}, shift={s}")
    rows = size // n
    _u16(env, "rows", rows)
    desc, desc_def = _struct_def(env, "fx_layernorm_t", "layernorm", [
        ("g", env.ptr(g)), ("b", env.ptr(bias)), ("eps", f"{eps}ull"), ("n", _u16(env, "n", n)),
        ("step", "1" if per == n else "0"), ("shift", str(s)), ("act", _act_init(env))])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"fx_layernorm(&{desc}, x, y, u0, u1);")
    return StepCode(rows, f"rows of {n} ({rows})", body, [desc_def], set(),
                    {"fx_layernorm"})


def print_matmul(env: StepEnv) -> StepCode:
    """matmul -> fx_matmul over output rows; descriptor fx_matmul_t."""
    _check_io(env, 2)
    a, b = env.step.inputs
    y = env.step.outputs[0]
    m, k = _shape(env, a, 2, "input a")
    k2, n = _shape(env, b, 2, "input b")
    if k2 != k or env.buf(y).shape != (m, n):
        raise env.fail(f"matmul of {[m, k]} and {[k2, n]} does not give {list(env.buf(y).shape)}")
    s = _attr_int(env, "shift")
    if not -15 <= s <= 31:
        raise env.fail(f"matmul shift {s} is outside [-15, 31]")
    desc, desc_def = _struct_def(env, "fx_matmul_t", "matmul", [
        ("k", _u16(env, "k", k)), ("n", _u16(env, "n", n)), ("shift", str(s)), ("act", _act_init(env))])
    body = _pointer_lines(env, [("a", a), ("b", b)], [("y", y)])
    body.append(f"fx_matmul(&{desc}, a, b, y, u0, u1);")
    return StepCode(int(m), f"rows of {n} ({m})", body, [desc_def], set(), {"fx_matmul"})


def print_embed(env: StepEnv) -> StepCode:
    """embed -> fx_embed over output rows (one token each); descriptor fx_embed_t with the table."""
    _check_io(env, 2)
    ids, table = env.step.inputs
    y = env.step.outputs[0]
    (t,) = _shape(env, ids, 1, "ids")
    vocab, dim = _shape(env, table, 2, "table")
    _check_dtypes(env, {1: "i16"})
    if env.buf(ids).dtype != "u16":
        raise env.fail(f"embed ids %{ids} must be u16 (is {env.buf(ids).dtype})")
    if env.buf(y).size != t * dim:
        raise env.fail(f"embed of {t} ids into rows of {dim} does not give {list(env.buf(y).shape)}")
    desc, desc_def = _struct_def(env, "fx_embed_t", "embed", [
        ("table", env.ptr(table)), ("vocab", _u16(env, "vocab", vocab)), ("dim", _u16(env, "dim", dim))])
    body = _pointer_lines(env, [("ids", ids)], [("y", y)])
    body.append(f"fx_embed(&{desc}, ids, y, u0, u1);")
    return StepCode(int(t), f"rows of {dim} ({t}); table of {vocab}", body, [desc_def], set(), {"fx_embed"})


def print_softmax(env: StepEnv) -> StepCode:
    """softmax -> fx_softmax over rows (the last axis); descriptor fx_softmax_t with the exp table."""
    _check_io(env, 2)
    x, table = env.step.inputs
    y = env.step.outputs[0]
    n = env.buf(x).shape[-1]
    size = env.buf(y).size
    if env.buf(x).size != size:
        raise env.fail(f"softmax input has {env.buf(x).size} elements, the output {size}")
    _check_dtypes(env, {1: "i16"})
    step, out_shift = _attr_int(env, "step"), _attr_int(env, "out_shift")
    entries = env.buf(table).size
    if not (0 <= step <= 15 and 0 <= out_shift <= 6 and 1 <= n <= 1024 and entries >= 2):
        raise env.fail(f"softmax attributes out of range: step={step}, out_shift={out_shift}, rows of {n}, "
                       f"{entries} table entries")
    rows = size // n
    _u16(env, "rows", rows)
    desc, desc_def = _struct_def(env, "fx_softmax_t", "softmax", [
        ("table", env.ptr(table)), ("m", _u16(env, "m", entries - 1)), ("n", _u16(env, "n", n)),
        ("step", f"{step}u"), ("out_shift", f"{out_shift}u")])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"fx_softmax(&{desc}, x, y, u0, u1);")
    return StepCode(rows, f"rows of {n} ({rows}); table of {entries}", body, [desc_def], set(), {"fx_softmax"})


def print_act(env: StepEnv) -> StepCode:
    """act -> fx_act over element chunks; descriptor fx_act_t."""
    _check_io(env, 1)
    x, y = env.step.inputs[0], env.step.outputs[0]
    n = env.buf(y).size
    if env.buf(x).size != n:
        raise env.fail(f"act input has {env.buf(x).size} elements, the output {n}")
    name = env.sym("act")
    desc_def = CDef(f"extern const fx_act_t {name} FX_FRAM;", f"const fx_act_t {name} FX_FRAM = {_act_init(env)};")
    body = _pointer_lines(env, [("x", x)], [("y", y)]) + _eltwise_range(n)
    body.append(f"fx_act(&{name}, x, y, i0, i1);")
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} elements ({n})", body, [desc_def],
                    set(), {"fx_act"})


def print_lut(env: StepEnv) -> StepCode:
    """lut -> fx_lut over element chunks; descriptor fx_lut_t with the table (a constant buffer that
    steps of the same function and formats share)."""
    _check_io(env, 2)
    x, table = env.step.inputs
    y = env.step.outputs[0]
    n = env.buf(y).size
    if env.buf(x).size != n:
        raise env.fail(f"lut input has {env.buf(x).size} elements, the output {n}")
    _check_dtypes(env, {1: "i16"})
    segments = env.buf(table).size - 1
    step, base = _attr_int(env, "step"), _attr_int(env, "base")
    mirror, center, gate, shift = (_attr_int(env, k) for k in ("mirror", "center", "gate", "shift"))
    if not (1 <= step <= 15 and -32768 <= base <= 32767 and mirror in (0, 1) and gate in (0, 1)
            and -65536 <= center <= 65536 and -15 <= shift <= 31 and segments >= 1):
        raise env.fail(f"lut attributes out of range: step={step}, base={base}, mirror={mirror}, "
                       f"center={center}, gate={gate}, shift={shift}, {segments} segments")
    desc, desc_def = _struct_def(env, "fx_lut_t", "lut", [
        ("table", env.ptr(table)), ("center", f"{center}l" if center >= 0 else f"({center}l)"),
        ("n", _u16(env, "n", segments)), ("base", str(base)), ("step", f"{step}u"), ("mirror", f"{mirror}u"),
        ("gate", f"{gate}u"), ("shift", str(shift))])
    body = _pointer_lines(env, [("x", x)], [("y", y)]) + _eltwise_range(n)
    body.append(f"fx_lut(&{desc}, x, y, i0, i1);")
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} elements ({n}); table of {segments + 1}",
                    body, [desc_def], set(), {"fx_lut"})


def print_concat(env: StepEnv) -> StepCode:
    """concat -> fx_requant_copy of each input's part of an element chunk of the output."""
    if len(env.step.inputs) < 1 or len(env.step.outputs) != 1:
        raise env.fail("concat needs at least one input and one output")
    y = env.step.outputs[0]
    n = env.buf(y).size
    shifts = _attr_list(env, "shifts", len(env.step.inputs))
    sizes = [env.buf(x).size for x in env.step.inputs]
    if sum(sizes) != n:
        raise env.fail(f"concat inputs have {sum(sizes)} elements, the output {n}")
    for s in shifts:
        if not -128 <= s <= 127:
            raise env.fail(f"concat shift {s} does not fit int8")
    ins = [(f"x{i}", name) for i, name in enumerate(env.step.inputs)]
    body = _pointer_lines(env, ins, [("y", y)]) + _eltwise_range(n)
    off = 0
    for i, size in enumerate(sizes):
        body.append(f"{env.prefix}concat_part(x{i}, y, {shifts[i]}, {off}u, {size}u, i0, i1);")
        off += size
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} output elements ({n})", body, [],
                    {"concat_part"}, {"fx_requant_copy"})


def print_argmax(env: StepEnv) -> StepCode:
    """argmax -> fx_argmax; one unit."""
    _check_io(env, 1)
    x, y = env.step.inputs[0], env.step.outputs[0]
    n = env.buf(x).size
    if env.buf(y).size != 1:
        raise env.fail(f"argmax output has {env.buf(y).size} elements; expected 1")
    if n > 0xFFFF:
        raise env.fail(f"argmax over {n} elements exceeds uint16_t")
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    value = f"(int16_t)fx_argmax(x, {n}u)"
    store = (f"FX_STORE(y[0], {value});" if env.program.storage_of(y).space in ("fram", "hifram")
             else f"y[0] = {value};")
    body += ["if (u0 < u1) {", f"    {store}", "}"]
    return StepCode(1, "the whole step (1)", body, [], set(), {"fx_argmax"})


def print_transpose(env: StepEnv) -> StepCode:
    """transpose -> a generated loop (no runtime kernel) over element chunks of the output.

    A chunk finds its first element's output index ``(a, b, c)`` (two divisions by constants) and
    source offset; each element then steps the index and the offset by constants (uint16_t
    arithmetic, modulo 2^16 like the offsets)."""
    _check_io(env, 1)
    x, y = env.step.inputs[0], env.step.outputs[0]
    perm = _attr_list(env, "perm", 3)
    xs, ys = env.buf(x).shape, env.buf(y).shape
    if len(xs) != 3 or sorted(perm) != [0, 1, 2] or tuple(xs[i] for i in perm) != tuple(ys):
        raise env.fail(f"transpose of {list(xs)} by {perm} does not give {list(ys)}")
    n = env.buf(y).size
    if n > 0xFFFF:
        raise env.fail(f"transpose of {n} elements exceeds uint16_t")
    source_strides = (xs[1] * xs[2], xs[2], 1)
    s0, s1, s2 = (source_strides[i] for i in perm)
    _d0, d1, d2 = ys
    wrap1 = (s1 - d2 * s2) & 0xFFFF          # at the end of a row (c wraps)
    wrap0 = (s0 - d1 * s1) & 0xFFFF          # at the end of a plane (b wraps): the step past wrap1
    fram = env.program.storage_of(y).space in ("fram", "hifram")
    store = "FX_STORE(y[e], x[src]);" if fram else "y[e] = x[src];"
    body = _pointer_lines(env, [("x", x)], [("y", y)]) + _eltwise_range(n) + [
        "uint16_t e = (uint16_t)i0;",
        f"uint16_t a = (uint16_t)(e / {d1 * d2}u);",
        f"uint16_t r = (uint16_t)(e - (uint16_t)(a * {d1 * d2}u));",
        f"uint16_t b = (uint16_t)(r / {d2}u);",
        f"uint16_t c = (uint16_t)(r - (uint16_t)(b * {d2}u));",
        f"uint16_t src = (uint16_t)((uint16_t)(a * {s0}u) + (uint16_t)(b * {s1}u) + (uint16_t)(c * {s2}u));",
        "for (; e < (uint16_t)i1; ++e) {",
        f"    {store}",
        f"    src = (uint16_t)(src + {s2}u);",
        f"    if (++c == {d2}u) {{",
        "        c = 0u;",
        f"        src = (uint16_t)(src + {wrap1}u);",
        f"        if (++b == {d1}u) {{",
        "            b = 0u;",
        f"            src = (uint16_t)(src + {wrap0}u);",
        "        }",
        "    }",
        "}"]
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} output elements ({n})", body, [],
                    set(), set())


def print_upsample(env: StepEnv) -> StepCode:
    """upsample -> a generated loop (no runtime kernel) over element chunks of the output.

    A chunk finds its first element's output index ``(channel, row, col)`` (two divisions by
    constants), the phases ``row % sh``, ``col % sw`` and the source offset; each element then steps
    the counters: the source advances by one every ``sw`` columns, and at the end of a row it goes
    back to the row's start, or on to the next source row every ``sh`` rows (and after a channel's
    last row). With ``zeros=1`` an element whose phases are not both 0 is 0 (uint16_t arithmetic;
    both buffers have at most 65535 elements)."""
    _check_io(env, 1)
    x, y = env.step.inputs[0], env.step.outputs[0]
    sh, sw = _attr_list(env, "scale", 2)
    zeros = env.step.attrs.get("zeros")
    xs, ys = env.buf(x).shape, env.buf(y).shape
    if len(xs) != 3 or zeros not in (0, 1):
        raise env.fail(f"upsample of {list(xs)} with zeros={zeros!r}")
    c, h, w = xs
    want = (c, (h - 1) * sh + 1, (w - 1) * sw + 1) if zeros else (c, h * sh, w * sw)
    if tuple(ys) != want:
        raise env.fail(f"upsample of {list(xs)} by {[sh, sw]} gives {list(want)}, not {list(ys)}")
    n = env.buf(y).size
    if n > 0xFFFF or env.buf(x).size > 0xFFFF:
        raise env.fail(f"upsample of {list(xs)} to {list(ys)} exceeds uint16_t")
    _, oh, ow = ys
    fram = env.program.storage_of(y).space in ("fram", "hifram")
    value = "(rsub | csub) != 0u ? (int16_t)0 : x[src]" if zeros else "x[src]"
    store = f"FX_STORE(y[e], {value});" if fram else f"y[e] = {value};"
    body = _pointer_lines(env, [("x", x)], [("y", y)]) + _eltwise_range(n) + [
        "uint16_t e = (uint16_t)i0;",
        f"uint16_t ch = (uint16_t)(e / {oh * ow}u);",
        f"uint16_t r = (uint16_t)(e - (uint16_t)(ch * {oh * ow}u));",
        f"uint16_t row = (uint16_t)(r / {ow}u);",
        f"uint16_t col = (uint16_t)(r - (uint16_t)(row * {ow}u));",
        f"uint16_t rsub = (uint16_t)(row % {sh}u);",
        f"uint16_t csub = (uint16_t)(col % {sw}u);",
        f"uint16_t rowsrc = (uint16_t)((uint16_t)(ch * {h * w}u) + (uint16_t)((row / {sh}u) * {w}u));",
        f"uint16_t src = (uint16_t)(rowsrc + col / {sw}u);",
        "for (; e < (uint16_t)i1; ++e) {",
        f"    {store}",
        f"    if (++col == {ow}u) {{",
        "        col = 0u;",
        "        csub = 0u;",
        f"        if (++row == {oh}u) {{",
        "            row = 0u;",
        "            rsub = 0u;",
        f"            rowsrc = (uint16_t)(rowsrc + {w}u);",
        f"        }} else if (++rsub == {sh}u) {{",
        "            rsub = 0u;",
        f"            rowsrc = (uint16_t)(rowsrc + {w}u);",
        "        }",
        "        src = rowsrc;",
        f"    }} else if (++csub == {sw}u) {{",
        "        csub = 0u;",
        "        ++src;",
        "    }",
        "}"]
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} output elements ({n})", body, [],
                    set(), set())


def print_slice(env: StepEnv) -> StepCode:
    """slice -> a generated copy loop (no runtime kernel) over element chunks of the output."""
    _check_io(env, 1)
    x, y = env.step.inputs[0], env.step.outputs[0]
    offset, size = _attr_int(env, "offset", 0), _attr_int(env, "size", 0)
    n = env.buf(y).size
    if size != n or offset < 0 or offset + n > env.buf(x).size or offset + n > 0xFFFF:
        raise env.fail(f"slice [{offset}, {offset + size}) of {env.buf(x).size} elements into {n}")
    fram = env.program.storage_of(y).space in ("fram", "hifram")
    store = f"FX_STORE(y[e], x[e + {offset}u]);" if fram else f"y[e] = x[e + {offset}u];"
    body = _pointer_lines(env, [("x", x)], [("y", y)]) + _eltwise_range(n) + [
        "uint16_t e;",
        "for (e = (uint16_t)i0; e < (uint16_t)i1; ++e) {",
        f"    {store}",
        "}"]
    return StepCode(_eltwise_units(env, n), f"chunks of {ELTWISE_CHUNK} output elements ({n})", body, [],
                    set(), set())


def print_trees(env: StepEnv) -> StepCode:
    """trees -> fx_trees over trees (one walk each); descriptor fx_trees_t."""
    _check_io(env, 5)
    x, feature, threshold, children, roots = env.step.inputs
    y = env.step.outputs[0]
    (t,) = _shape(env, y, 1, "output")
    if _shape(env, roots, 1, "roots") != (t,) or env.buf(threshold).q != env.buf(x).q:
        raise env.fail(f"trees needs one root per output ({t}) and thresholds in the input's format")
    desc, desc_def = _struct_def(env, "fx_trees_t", "trees", [
        ("feature", env.ptr(feature)), ("threshold", env.ptr(threshold)), ("children", env.ptr(children)),
        ("roots", env.ptr(roots))])
    body = _pointer_lines(env, [("x", x)], [("y", y)])
    body.append(f"fx_trees(&{desc}, x, y, u0, u1);")
    return StepCode(t, f"trees ({t})", body, [desc_def], set(), {"fx_trees"})


def print_tree_sum(env: StepEnv) -> StepCode:
    """tree_sum -> fx_tree_sum over outputs; descriptor fx_tree_sum_t."""
    _check_io(env, 4)
    leaves, values, first, bias = env.step.inputs
    y = env.step.outputs[0]
    (c,) = _shape(env, y, 1, "output")
    (t,) = _shape(env, leaves, 1, "leaves")
    _, width = _shape(env, values, 2, "values")
    s = _attr_int(env, "shift", 0)
    if not -15 <= s <= 31:
        raise env.fail(f"tree_sum shift {s} is outside [-15, 31]")
    desc, desc_def = _struct_def(env, "fx_tree_sum_t", "tree_sum", [
        ("trees", _u16(env, "trees", t)), ("width", _u16(env, "width", width)), ("shift", str(s)),
        ("values", env.ptr(values)), ("first", env.ptr(first)), ("bias", env.ptr(bias))])
    body = _pointer_lines(env, [("leaves", leaves)], [("y", y)])
    body.append(f"fx_tree_sum(&{desc}, leaves, y, u0, u1);")
    return StepCode(c, f"outputs ({c})", body, [desc_def], set(), {"fx_tree_sum"})


PRINTERS: dict[str, Callable[[StepEnv], StepCode]] = {
    "conv": print_conv,
    "conv_sparse": print_conv_sparse,
    "fc": print_fc,
    "fc_sparse": print_fc_sparse,
    "maxpool": print_maxpool,
    "avgpool": print_avgpool,
    "add": print_add,
    "mul": print_mul,
    "layernorm": print_layernorm,
    "matmul": print_matmul,
    "softmax": print_softmax,
    "embed": print_embed,
    "slice": print_slice,
    "act": print_act,
    "lut": print_lut,
    "concat": print_concat,
    "argmax": print_argmax,
    "transpose": print_transpose,
    "upsample": print_upsample,
    "trees": print_trees,
    "tree_sum": print_tree_sum,
}


# model.c helpers that several steps share; emitted once, only when some step needs them.
HELPERS: dict[str, str] = {
    "conv_sparse_units": """\
/* {kernel} work units are output rows, u = co * oh + oy. Runs [u0, u1) as whole channels where it
 * can and as partial channels at the ends ({kernel} computes channels x rows). */
static void {p}{key}(const {ctype} *p, const int16_t *x, int16_t *y, uint16_t u0, uint16_t u1)
{{
    const uint16_t oh = p->oh;
    while (u0 < u1) {{
        uint16_t co = (uint16_t)(u0 / oh);
        uint16_t oy = (uint16_t)(u0 - (uint16_t)(co * oh));
        uint16_t left = (uint16_t)(u1 - u0);
        if (oy == 0u && left >= oh) {{
            uint16_t nc = (uint16_t)(left / oh);
            {kernel}(p, x, y, co, (uint16_t)(co + nc), 0u, oh);
            u0 = (uint16_t)(u0 + (uint16_t)(nc * oh));
        }} else {{
            uint16_t oy1 = (uint16_t)((uint16_t)(oh - oy) <= left ? oh : (uint16_t)(oy + left));
            {kernel}(p, x, y, co, (uint16_t)(co + 1u), oy, oy1);
            u0 = (uint16_t)(u0 + (uint16_t)(oy1 - oy));
        }}
    }}
}}
""",
    "concat_part": """\
/* The part of output elements [i0, i1) that comes from one concat input: y[off + i] =
 * requant(x[i], shift) for the i in [0, n) with off + i in [i0, i1). */
static void {p}concat_part(const int16_t *x, int16_t *y, int8_t shift, uint32_t off, uint32_t n,
{pad}uint32_t i0, uint32_t i1)
{{
    uint32_t lo, hi;
    if (i1 <= off || i0 >= off + n) {{
        return;
    }}
    lo = i0 > off ? i0 - off : 0u;
    hi = i1 < off + n ? i1 - off : n;
    fx_requant_copy(x, y + off, shift, lo, hi);
}}
""",
}


_CONV_HELPERS = {"conv_sparse_units": ("fx_conv_sparse", "fx_conv_sparse_t")}


def render_helper(key: str, prefix: str) -> str:
    """The C text of a model.c helper (HELPERS)."""
    if key in _CONV_HELPERS:
        kernel, ctype = _CONV_HELPERS[key]
        return HELPERS[key].format(p=prefix, key=key, kernel=kernel, ctype=ctype)
    pad = " " * len(f"static void {prefix}concat_part(")
    return HELPERS[key].format(p=prefix, pad=pad)


def tile_units(step: Step, code: StepCode, program: Program) -> int:
    """Units per tile from the step's TilePlan (all units when there is none).

    conv ``dims=[channels, rows, cols]``: whole channels (``channels * OH`` units) when ``rows``
    covers OH, else ``rows`` units (a tile is a run of rows); ``cols`` below OW: column units, one a
    tile (transpiler.lir.cost.conv_unit_cols). pool
    ``[channels]``, fc ``[outputs]``: ``dims[0]`` units. add/act/lut/concat/transpose/upsample ``[elements]``:
    ``ceil(elements / ELTWISE_CHUNK)`` units. argmax: 1.
    """
    if step.tile is None or not step.tile.dims:
        return max(code.units, 1)
    dims = step.tile.dims
    if col_split(program, step):      # column units: one range a tile
        per = 1
    elif step.op in ("conv", "conv_sparse"):
        oh = program.buffers[step.outputs[0]].shape[1]
        rows = dims[1] if len(dims) > 1 else oh
        per = dims[0] * oh if rows >= oh else rows
    elif step.op in ("add", "mul", "act", "lut", "concat", "gnet_feature", "transpose", "slice", "upsample"):
        per = -(-dims[0] // ELTWISE_CHUNK)
    elif step.op == "argmax":
        per = 1
    else:
        per = dims[0]
    return max(1, min(per, max(code.units, 1)))

"""The LIR op table: one entry per op with its inputs, attributes, shape rule and tile rank.

docs/lir.md defines what each op computes; this table is what the verifier (and any tool that needs
an op's signature) reads. Everything op-specific that is not arithmetic lives here:

- ``inputs``: the roles of the inputs (``("x", "w", "b")``); ``variadic`` ops (concat) take one or
  more inputs of the first role. Every op has one output.
- ``attrs``: name -> :class:`AttrSpec` (kind ``int``, ``ints`` or ``str``, required or not, fixed
  list length, value range, allowed strings). Ops with ``has_act`` also take ``act`` and, depending
  on it, ``lo``/``hi`` (clip) or ``alpha`` (leaky); see :func:`act_attr_specs`.
- ``infer(attrs, input_shapes) -> [output shape, ...]``: the acceptable output shapes, canonical
  first (pools accept the floor and the ceil variant of the output size). Raises :class:`ShapeError`
  when the inputs or shape-dependent attributes (``shift`` length = Cout, ...) do not fit.
  ``infer`` may assume that every attribute passed :func:`check_attrs`.
- ``check_output(attrs, input_shapes, output_shape) -> [problem, ...]``: checks that need the chosen
  output shape (every pooling window must see at least one input position).
- ``tile_rank``: the length of a step's ``tile`` dims (``[channels, rows, cols]`` for conv and the
  pools, ``[elements]`` otherwise).
- ``check_data(attrs, input_shapes, input_data) -> [problem, ...]``: checks of constant contents
  (the index arrays of ``fc_sparse``/``conv_sparse``: pointers, ranges, order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from transpiler.lir.ir import AttrValue
from transpiler.lir.kernels import (FC_SPARSE_K_MAX, LAYERNORM_EPS_MAX, LAYERNORM_N_MAX, LUT_CENTER_RANGE,
                                    LUT_STEP_RANGE, SOFTMAX_N_MAX, SOFTMAX_TABLE_Q, SPARSE_INDEX_MAX,
                                    conv_sparse_positions, conv_sparse_problems, fc_sparse_problems, lut_problems,
                                    tree_problems)

Shape = tuple[int, ...]

ACT_KINDS = ("none", "relu", "clip", "leaky")
SHIFT_MIN, SHIFT_MAX = -15, 31
INT16_MIN, INT16_MAX = -32768, 32767
DIM_MAX = 65535
"""The C kernels take dimensions as uint16_t."""


class ShapeError(Exception):
    """The inputs of a step, or its shape-dependent attributes, do not fit the op."""


@dataclass(frozen=True)
class AttrSpec:
    """One attribute: kind ("int", "ints", "str"), whether it is required, and its constraints.

    length: the exact list length for "ints" (None: any). lo/hi: inclusive bounds for an "int" or
    for every element of "ints". choices: the allowed values of a "str".
    """

    kind: str
    required: bool = True
    length: int | None = None
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OpSpec:
    """Everything the verifier knows about one op (see the module docstring)."""

    name: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, AttrSpec]
    infer: Callable[[Mapping[str, AttrValue], Sequence[Shape]], list[Shape]]
    tile_rank: int
    has_act: bool = False
    variadic: bool = False
    weights: tuple[int, ...] = ()
    """Input positions that must be constants (conv/fc weights and bias)."""
    input_dtypes: tuple[str, ...] = ()
    """dtype per input position (the last one repeats for variadic ops)."""
    check_output: Callable[[Mapping[str, AttrValue], Sequence[Shape], Shape], list[str]] = field(
        default=lambda attrs, shapes, out: [])
    check_data: Callable[[Mapping[str, AttrValue], Sequence[Shape], Sequence[np.ndarray | None]],
                         list[str]] = field(default=lambda attrs, shapes, data: [])
    """Checks of constant inputs' contents (sparse index arrays); data[k] is None for activations.
    May assume that the shapes passed ``infer``."""


def _size(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise ShapeError(f"{what} must have rank {rank}, got shape {list(shape)}")


def _ints(attrs: Mapping[str, AttrValue], key: str) -> list[int]:
    value = attrs[key]
    assert isinstance(value, list)
    return value


def _int(attrs: Mapping[str, AttrValue], key: str) -> int:
    value = attrs[key]
    assert isinstance(value, int)
    return value


def conv_out_size(n: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    """Convolution output extent: floor((n + p0 + p1 - d*(k-1) - 1) / s) + 1."""
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def pool_out_sizes(n: int, k: int, s: int, p0: int, p1: int, d: int) -> list[int]:
    """Pooling output extents: [floor variant, ceil variant] (equal when the division is exact)."""
    span = n + p0 + p1 - d * (k - 1) - 1
    floor = span // s + 1
    ceil = -(-span // s) + 1
    return [floor] if ceil == floor else [floor, ceil]


def window_problems(axis: str, n: int, out: int, k: int, s: int, p0: int, p1: int, d: int,
                    inside_padding: bool) -> list[str]:
    """Output positions along one axis whose window sees no position it may count.

    The counted positions are those inside ``[0, n)``, or with ``inside_padding`` inside
    ``[-p0, n + p1)`` (average pooling with count_include_pad=1).
    """
    lo, hi = (-p0, n + p1) if inside_padding else (0, n)
    for o in range(out):
        start = o * s - p0
        if not any(lo <= start + j * d < hi for j in range(k)):
            return [f"the pooling window of output {axis} {o} covers no input position "
                    f"(window starts at {start}, input {axis}s [0,{n}))"]
    return []


# ----------------------------------------------------------------------------------------------
# Shape rules


def _infer_conv(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, w, b = shapes
    _rank(x, 3, "conv input x [Cin,H,W]")
    _rank(w, 4, "conv weight w [Cout,Cin/group,kh,kw]")
    _rank(b, 1, "conv bias b [Cout]")
    cin, h, wd = x
    cout, cpg, kh, kw = w
    g = _int(attrs, "group")
    if cin % g or cout % g:
        raise ShapeError(f"group {g} must divide Cin {cin} and Cout {cout}")
    if cpg * g != cin:
        raise ShapeError(f"weight shape {list(w)} needs Cin/group = {cin // g} input channels, "
                         f"has {cpg}")
    if b != (cout,):
        raise ShapeError(f"bias shape {list(b)} must be [{cout}] (Cout)")
    if len(_ints(attrs, "shift")) != cout:
        raise ShapeError(f"shift has {len(_ints(attrs, 'shift'))} entries, Cout is {cout}")
    sh, sw = _ints(attrs, "stride")
    pt, pl, pb, pr = _ints(attrs, "pads")
    dh, dw = _ints(attrs, "dilation")
    oh = conv_out_size(h, kh, sh, pt, pb, dh)
    ow = conv_out_size(wd, kw, sw, pl, pr, dw)
    if oh < 1 or ow < 1:
        raise ShapeError(f"the kernel {kh}x{kw} (dilation {dh},{dw}) is larger than the padded "
                         f"input {h + pt + pb}x{wd + pl + pr}")
    return [(cout, oh, ow)]


def _infer_fc(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, w, b = shapes
    _rank(w, 2, "fc weight w [N,K]")
    n, k = w
    if _size(x) != k:
        raise ShapeError(f"input has {_size(x)} elements, weight {list(w)} needs K = {k}")
    if b != (n,):
        raise ShapeError(f"bias shape {list(b)} must be [{n}] (N)")
    if len(_ints(attrs, "shift")) != n:
        raise ShapeError(f"shift has {len(_ints(attrs, 'shift'))} entries, N is {n}")
    return [(n,)]


def _pool_geometry(attrs: Mapping[str, AttrValue]) -> tuple[list[int], list[int], list[int], list[int]]:
    kernel = _ints(attrs, "kernel")
    stride = _ints(attrs, "stride")
    pads = _ints(attrs, "pads")
    dilation = _ints(attrs, "dilation") if "dilation" in attrs else [1, 1]
    return kernel, stride, pads, dilation


def _infer_pool(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    (x,) = shapes
    _rank(x, 3, "pool input x [C,H,W]")
    c, h, w = x
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = _pool_geometry(attrs)
    if h + pt + pb < dh * (kh - 1) + 1 or w + pl + pr < dw * (kw - 1) + 1:
        raise ShapeError(f"the window {kh}x{kw} (dilation {dh},{dw}) is larger than the padded "
                         f"input {h + pt + pb}x{w + pl + pr}")
    return [(c, oh, ow) for oh in pool_out_sizes(h, kh, sh, pt, pb, dh)
            for ow in pool_out_sizes(w, kw, sw, pl, pr, dw)]


def _check_pool_output(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                       out: Shape) -> list[str]:
    (_, h, w), (_, oh, ow) = shapes[0], out
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = _pool_geometry(attrs)
    padded = attrs.get("count_include_pad") == 1
    return (window_problems("row", h, oh, kh, sh, pt, pb, dh, padded)
            + window_problems("column", w, ow, kw, sw, pl, pr, dw, padded))


def _infer_add(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    a, b = shapes
    if a != b:
        raise ShapeError(f"inputs have different shapes {list(a)} and {list(b)}")
    return [a]


def _infer_same(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    return [shapes[0]]


def _infer_concat(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    if len(_ints(attrs, "shifts")) != len(shapes):
        raise ShapeError(f"shifts has {len(_ints(attrs, 'shifts'))} entries for {len(shapes)} inputs")
    first = shapes[0]
    if len(first) not in (1, 3):
        raise ShapeError(f"concat inputs must be [C,H,W] or [N], got {list(first)}")
    for s in shapes[1:]:
        if len(s) != len(first) or s[1:] != first[1:]:
            raise ShapeError(f"inputs {list(first)} and {list(s)} differ outside axis 0")
    return [(sum(s[0] for s in shapes),) + tuple(first[1:])]


def _infer_argmax(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    return [(1,)]


def _infer_slice(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    offset, size = _int(attrs, "offset"), _int(attrs, "size")
    n = int(np.prod(shapes[0]))
    if offset + size > n:
        raise ShapeError(f"slice [{offset}, {offset + size}) of {n} elements")
    return [(size,)]


def _infer_transpose(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    perm = _ints(attrs, "perm")
    x = shapes[0]
    _rank(x, 3, "transpose input [d0,d1,d2]")
    if sorted(perm) != [0, 1, 2]:
        raise ShapeError(f"perm {list(perm)} is not a permutation of 0, 1, 2")
    if int(np.prod(x)) > DIM_MAX:
        raise ShapeError(f"transpose of {int(np.prod(x))} elements: at most {DIM_MAX}")
    return [tuple(x[i] for i in perm)]


def _infer_embed(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    ids, w = shapes
    _rank(ids, 1, "embed ids [T]")
    _rank(w, 2, "embed table w [V, D]")
    if w[0] > DIM_MAX:
        raise ShapeError(f"embed table of {w[0]} rows: at most {DIM_MAX} (the ids are uint16)")
    return [(ids[0], w[1]), (ids[0], 1, w[1])]


def _infer_upsample(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    (x,) = shapes
    _rank(x, 3, "upsample input x [C,H,W]")
    c, h, w = x
    sh, sw = _ints(attrs, "scale")
    zeros = _int(attrs, "zeros")
    out = (c, (h - 1) * sh + 1, (w - 1) * sw + 1) if zeros else (c, h * sh, w * sw)
    for shape in (x, out):
        if _size(shape) > DIM_MAX:
            raise ShapeError(f"upsample of {list(x)} to {list(out)}: at most {DIM_MAX} elements per buffer")
    return [out]


def _sparse_common(shapes: Sequence[Shape], rows: int, what: str) -> None:
    """values [nnz], index [nnz], pointer [rows + 1], bias [rows]."""
    _, values, index, ptr, b = shapes
    _rank(values, 1, f"{what} values [nnz]")
    _rank(index, 1, f"{what} indices [nnz]")
    _rank(ptr, 1, f"{what} pointer [{rows}+1]")
    if index != values:
        raise ShapeError(f"{values[0]} values but {index[0]} indices")
    if values[0] > SPARSE_INDEX_MAX:
        raise ShapeError(f"{values[0]} stored weights exceed {SPARSE_INDEX_MAX} (uint16 pointers)")
    if ptr != (rows + 1,):
        raise ShapeError(f"pointer shape {list(ptr)} must be [{rows + 1}] (outputs + 1)")
    if b != (rows,):
        raise ShapeError(f"bias shape {list(b)} must be [{rows}]")


def _infer_fc_sparse(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, _, _, _, b = shapes
    _rank(b, 1, "fc_sparse bias b [N]")
    n = b[0]
    _sparse_common(shapes, n, "fc_sparse")
    if _size(x) > FC_SPARSE_K_MAX:
        raise ShapeError(f"input has {_size(x)} elements; the byte steps through it are uint16 "
                         f"(K <= {FC_SPARSE_K_MAX})")
    if len(_ints(attrs, "shift")) != n:
        raise ShapeError(f"shift has {len(_ints(attrs, 'shift'))} entries, N is {n}")
    return [(n,)]


def _check_fc_sparse_data(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                          data: Sequence[np.ndarray | None]) -> list[str]:
    _, values, deltas, rowptr, _ = data
    if values is None or deltas is None or rowptr is None:
        return []
    return fc_sparse_problems(values.size, deltas, rowptr, shapes[4][0], _size(shapes[0]))


def _infer_conv_sparse(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, _, _, _, b = shapes
    _rank(x, 3, "conv_sparse input x [Cin,H,W]")
    _rank(b, 1, "conv_sparse bias b [Cout]")
    cin, h, wd = x
    cout = b[0]
    _sparse_common(shapes, cout, "conv_sparse")
    g = _int(attrs, "group")
    if cin % g or cout % g:
        raise ShapeError(f"group {g} must divide Cin {cin} and Cout {cout}")
    kh, kw = _ints(attrs, "kernel")
    dh, dw = _ints(attrs, "dilation")
    positions = conv_sparse_positions(cin // g, (kh, kw), (h, wd), (dh, dw))
    if positions > DIM_MAX + 1:
        raise ShapeError(f"Cin/group * Hv * Wv = {positions} input offsets (the input grown to the "
                         f"dilated kernel); offsets are uint16")
    if len(_ints(attrs, "shift")) != cout:
        raise ShapeError(f"shift has {len(_ints(attrs, 'shift'))} entries, Cout is {cout}")
    sh, sw = _ints(attrs, "stride")
    pt, pl, pb, pr = _ints(attrs, "pads")
    oh = conv_out_size(h, kh, sh, pt, pb, dh)
    ow = conv_out_size(wd, kw, sw, pl, pr, dw)
    if oh < 1 or ow < 1:
        raise ShapeError(f"the kernel {kh}x{kw} (dilation {dh},{dw}) is larger than the padded "
                         f"input {h + pt + pb}x{wd + pl + pr}")
    return [(cout, oh, ow)]


def _check_conv_sparse_data(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                            data: Sequence[np.ndarray | None]) -> list[str]:
    _, values, offsets, chanptr, _ = data
    if values is None or offsets is None or chanptr is None:
        return []
    cin, h, w = shapes[0]
    return conv_sparse_problems(values.size, offsets, chanptr, shapes[4][0], cin // _int(attrs, "group"),
                                _ints(attrs, "kernel"), (h, w), _ints(attrs, "dilation"))


def _infer_lut(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, t = shapes
    _rank(t, 1, "lut table [N+1]")
    if attrs.get("mirror") == 1 and attrs.get("base") != 0:
        raise ShapeError(f"a mirrored table starts at input 0 (base={attrs.get('base')})")
    return [x]


def _check_lut_data(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                    data: Sequence[np.ndarray | None]) -> list[str]:
    table = data[1]
    return [] if table is None else lut_problems(table, _int(attrs, "step"))


def _infer_layernorm(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, g, b = shapes
    n = x[-1]
    if n > LAYERNORM_N_MAX:
        raise ShapeError(f"layernorm rows of {n} elements (at most {LAYERNORM_N_MAX})")
    if tuple(g) != tuple(b) or tuple(g) not in ((n,), (1,)):
        raise ShapeError(f"layernorm scale {list(g)} and bias {list(b)} must both be [{n}] (the last axis of "
                         f"{list(x)}) or both [1] (one value for every position)")
    return [x]

def _infer_trees(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    _, feature, threshold, children, roots = shapes
    _rank(feature, 1, "trees feature [N]")
    _rank(roots, 1, "trees roots [T]")
    if threshold != feature or children != (feature[0], 2):
        raise ShapeError(f"threshold {list(threshold)} and children {list(children)} must be [N] and [N, 2] "
                         f"with N = {feature[0]}")
    return [roots]


def _check_trees_data(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                      data: Sequence[np.ndarray | None]) -> list[str]:
    _, feature, _, children, roots = data
    if feature is None or children is None or roots is None:
        return []
    return tree_problems(feature, children, roots, _size(shapes[0]), _int(attrs, "values"))


def _infer_tree_sum(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    leaves, values, first, b = shapes
    _rank(leaves, 1, "tree_sum leaves [T]")
    _rank(values, 2, "tree_sum values [L, W]")
    _rank(b, 1, "tree_sum bias b [C]")
    if first != leaves:
        raise ShapeError(f"first {list(first)} must be [T] with T = {leaves[0]}")
    if values[1] > b[0]:
        raise ShapeError(f"leaves of {values[1]} values for {b[0]} outputs")
    if values[0] * values[1] > INT16_MAX:
        raise ShapeError(f"{values[0] * values[1]} leaf values: at most {INT16_MAX} (15-bit offsets)")
    return [b]


def _check_tree_sum_data(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                         data: Sequence[np.ndarray | None]) -> list[str]:
    first = data[2]
    if first is None or not first.size:
        return []
    width, outputs = shapes[1][1], shapes[3][0]
    last = int(np.asarray(first, dtype=np.int64).max())
    return [f"a tree adds outputs [{last}, {last + width}) of {outputs}"] if last + width > outputs else []


def _infer_matmul(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    a, b = shapes
    _rank(a, 2, "matmul a [M, K]")
    _rank(b, 2, "matmul b [K, N]")
    if a[1] != b[0]:
        raise ShapeError(f"matmul of {list(a)} and {list(b)}: K differs")
    return [(a[0], b[1])]


def _infer_softmax(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    x, t = shapes
    _rank(t, 1, "softmax exp table [M+1]")
    if x[-1] > SOFTMAX_N_MAX:
        raise ShapeError(f"softmax rows of {x[-1]} elements (at most {SOFTMAX_N_MAX})")
    if t[0] < 2:
        raise ShapeError("the softmax exp table needs at least two entries")
    return [x]


def _check_softmax_data(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape],
                        data: Sequence[np.ndarray | None]) -> list[str]:
    table = data[1]
    if table is None:
        return []
    t = np.asarray(table, dtype=np.int64)
    problems = []
    if int(t[0]) != 1 << SOFTMAX_TABLE_Q:
        problems.append(f"the exp table starts at {int(t[0])}, not 2^{SOFTMAX_TABLE_Q} (exp(0) = 1)")
    if t.min() < 0 or np.any(np.diff(t) > 0):
        problems.append("the exp table must be non-negative and non-increasing")
    return problems


def _infer_gnet_feature(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    (x,) = shapes
    n, offset, features = _size(x), _int(attrs, "offset"), _int(attrs, "features")
    if offset + n > features:
        raise ShapeError(f"the slice [{offset},{offset + n}) of {n} features does not fit the "
                         f"{features} features of the vector")
    return [(features,)]


def _infer_gnet_exit(attrs: Mapping[str, AttrValue], shapes: Sequence[Shape]) -> list[Shape]:
    _rank(shapes[0], 1, "gnet_exit features F [NF]")
    return _infer_fc(attrs, shapes)


# ----------------------------------------------------------------------------------------------
# The table

_SHIFT = AttrSpec("int", lo=SHIFT_MIN, hi=SHIFT_MAX)
_SHIFTS = AttrSpec("ints", lo=SHIFT_MIN, hi=SHIFT_MAX)
_STRIDE = AttrSpec("ints", length=2, lo=1)
_PADS = AttrSpec("ints", length=4, lo=0)
_DILATION = AttrSpec("ints", length=2, lo=1)
_KERNEL = AttrSpec("ints", length=2, lo=1)

OPS: dict[str, OpSpec] = {
    "conv": OpSpec("conv", ("x", "w", "b"), {
        "stride": _STRIDE, "pads": _PADS, "dilation": _DILATION,
        "group": AttrSpec("int", lo=1), "shift": _SHIFTS,
    }, _infer_conv, tile_rank=3, has_act=True, weights=(1, 2), input_dtypes=("i16", "i16", "i32")),
    "fc": OpSpec("fc", ("x", "w", "b"), {"shift": _SHIFTS}, _infer_fc, tile_rank=1, has_act=True,
                 weights=(1, 2), input_dtypes=("i16", "i16", "i32")),
    "fc_sparse": OpSpec("fc_sparse", ("x", "values", "deltas", "rowptr", "b"), {"shift": _SHIFTS},
                        _infer_fc_sparse, tile_rank=1, has_act=True, weights=(1, 2, 3, 4),
                        input_dtypes=("i16", "i16", "u16", "u16", "i32"),
                        check_data=_check_fc_sparse_data),
    "conv_sparse": OpSpec("conv_sparse", ("x", "values", "offsets", "chanptr", "b"), {
        "kernel": _KERNEL, "stride": _STRIDE, "pads": _PADS, "dilation": _DILATION,
        "group": AttrSpec("int", lo=1), "shift": _SHIFTS,
    }, _infer_conv_sparse, tile_rank=3, has_act=True, weights=(1, 2, 3, 4),
        input_dtypes=("i16", "i16", "u16", "u16", "i32"), check_data=_check_conv_sparse_data),
    "maxpool": OpSpec("maxpool", ("x",), {
        "kernel": _KERNEL, "stride": _STRIDE, "pads": _PADS, "dilation": _DILATION,
    }, _infer_pool, tile_rank=3, input_dtypes=("i16",), check_output=_check_pool_output),
    "avgpool": OpSpec("avgpool", ("x",), {
        "kernel": _KERNEL, "stride": _STRIDE, "pads": _PADS,
        "count_include_pad": AttrSpec("int", lo=0, hi=1),
    }, _infer_pool, tile_rank=3, input_dtypes=("i16",), check_output=_check_pool_output),
    "add": OpSpec("add", ("a", "b"), {
        "shift_a": AttrSpec("int", lo=0, hi=15), "shift_b": AttrSpec("int", lo=0, hi=15),
        "shift": _SHIFT,
    }, _infer_add, tile_rank=1, has_act=True, input_dtypes=("i16", "i16")),
    "mul": OpSpec("mul", ("a", "b"), {"shift": _SHIFT}, _infer_add, tile_rank=1, has_act=True,
                  input_dtypes=("i16", "i16")),
    "layernorm": OpSpec("layernorm", ("x", "g", "b"), {
        "eps": AttrSpec("int", lo=0, hi=LAYERNORM_EPS_MAX), "shift": _SHIFT,
    }, _infer_layernorm, tile_rank=1, has_act=True, weights=(1, 2), input_dtypes=("i16", "i16", "i32")),
    "matmul": OpSpec("matmul", ("a", "b"), {"shift": _SHIFT}, _infer_matmul, tile_rank=1, has_act=True,
                     input_dtypes=("i16", "i16")),
    "softmax": OpSpec("softmax", ("x", "t"), {"step": AttrSpec("int", lo=0, hi=15),
                                              "out_shift": AttrSpec("int", lo=0, hi=6)},
                      _infer_softmax, tile_rank=1, weights=(1,), input_dtypes=("i16", "i16"),
                      check_data=_check_softmax_data),
    "act": OpSpec("act", ("x",), {}, _infer_same, tile_rank=1, has_act=True, input_dtypes=("i16",)),
    "concat": OpSpec("concat", ("x",), {"shifts": _SHIFTS}, _infer_concat, tile_rank=1,
                     variadic=True, input_dtypes=("i16",)),
    "argmax": OpSpec("argmax", ("x",), {}, _infer_argmax, tile_rank=1, input_dtypes=("i16",)),
    "lut": OpSpec("lut", ("x", "t"), {
        "step": AttrSpec("int", lo=LUT_STEP_RANGE[0], hi=LUT_STEP_RANGE[1]),
        "base": AttrSpec("int", lo=INT16_MIN, hi=INT16_MAX),
        "mirror": AttrSpec("int", lo=0, hi=1),
        "center": AttrSpec("int", lo=LUT_CENTER_RANGE[0], hi=LUT_CENTER_RANGE[1]),
        "gate": AttrSpec("int", lo=0, hi=1),
        "shift": _SHIFT,
    }, _infer_lut, tile_rank=1, weights=(1,), input_dtypes=("i16", "i16"), check_data=_check_lut_data),
    "slice": OpSpec("slice", ("x",), {"offset": AttrSpec("int", lo=0, hi=DIM_MAX - 1),
                                      "size": AttrSpec("int", lo=1, hi=DIM_MAX)}, _infer_slice,
                    tile_rank=1, input_dtypes=("i16",)),
    "transpose": OpSpec("transpose", ("x",), {"perm": AttrSpec("ints", length=3, lo=0, hi=2)}, _infer_transpose,
                        tile_rank=1, input_dtypes=("i16",)),
    "upsample": OpSpec("upsample", ("x",), {"scale": AttrSpec("ints", length=2, lo=1, hi=DIM_MAX),
                                            "zeros": AttrSpec("int", lo=0, hi=1)}, _infer_upsample,
                       tile_rank=1, input_dtypes=("i16",)),
    "embed": OpSpec("embed", ("ids", "w"), {}, _infer_embed, tile_rank=1, weights=(1,),
                    input_dtypes=("u16", "i16")),
    "trees": OpSpec("trees", ("x", "feature", "threshold", "children", "roots"), {
        "values": AttrSpec("int", lo=1, hi=INT16_MAX)}, _infer_trees, tile_rank=1, weights=(1, 2, 3, 4),
        input_dtypes=("i16", "u16", "i16", "u16", "u16"), check_data=_check_trees_data),
    "tree_sum": OpSpec("tree_sum", ("leaves", "values", "first", "b"), {"shift": _SHIFT}, _infer_tree_sum,
                       tile_rank=1, weights=(1, 2, 3), input_dtypes=("i16", "i16", "u16", "i32"),
                       check_data=_check_tree_sum_data),
    "gnet_feature": OpSpec("gnet_feature", ("x",), {
        "offset": AttrSpec("int", lo=0, hi=DIM_MAX), "features": AttrSpec("int", lo=1, hi=DIM_MAX),
        "shift": _SHIFT, "exit": AttrSpec("int", lo=1, hi=DIM_MAX),
    }, _infer_gnet_feature, tile_rank=1, input_dtypes=("i16",)),
    "gnet_exit": OpSpec("gnet_exit", ("x", "w", "b"), {"shift": _SHIFTS, "exits": AttrSpec("int", lo=1, hi=DIM_MAX)},
                        _infer_gnet_exit, tile_rank=1, has_act=True, weights=(1, 2),
                        input_dtypes=("i16", "i16", "i32")),
}
"""Every LIR op. Output dtype is i16 for all of them."""

SAME_Q_OPS = ("maxpool", "avgpool", "act", "transpose", "slice", "upsample")
"""Ops whose output has the input's Q format (docs/lir.md)."""

ON_DEMAND_OPS = ("gnet_exit",)
"""Ops that do not run in the step sequence but when the runtime asks (the gNet head, on the
features so far); they come after every other step and their buffers are live for the whole
program (docs/lir.md, "gNet")."""

PARTIAL_WRITE_OPS = ("gnet_feature",)
"""Ops that write one slice of their output and keep the rest: several steps may write one buffer
(disjoint slices); it is zero when an inference starts and live for the whole program."""

SPARSE_OPS = ("fc_sparse", "conv_sparse")
"""Ops with compressed weights: ``values`` (q = one entry per output channel), an index array and a
pointer array (docs/lir.md, "Sparse ops")."""


def act_attr_specs(act: object) -> dict[str, AttrSpec]:
    """The activation attributes an op with ``has_act`` takes for the given ``act`` value."""
    specs = {"act": AttrSpec("str", choices=ACT_KINDS)}
    if not isinstance(act, str):
        return specs
    if act == "clip":
        specs["lo"] = AttrSpec("int", lo=INT16_MIN, hi=INT16_MAX)
        specs["hi"] = AttrSpec("int", lo=INT16_MIN, hi=INT16_MAX)
    elif act == "leaky":
        specs["alpha"] = AttrSpec("int", lo=0, hi=INT16_MAX)
    return specs


def attr_specs(op: OpSpec, attrs: Mapping[str, AttrValue]) -> dict[str, AttrSpec]:
    """All attributes `op` takes given the step's attributes (act-dependent ones included)."""
    specs = dict(op.attrs)
    if op.has_act:
        specs.update(act_attr_specs(attrs.get("act")))
    return specs


def _kind_of(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "ints"
    return None


def check_attrs(op: OpSpec, attrs: Mapping[str, AttrValue]) -> list[str]:
    """Problems with a step's attributes that do not depend on shapes (missing, unknown, kind,
    list length, range, choices, clip's lo <= hi)."""
    problems: list[str] = []
    specs = attr_specs(op, attrs)
    for key in attrs:
        if key not in specs:
            why = ""
            if op.has_act and key in ("lo", "hi", "alpha"):
                why = f" with act={attrs.get('act')!r}"
            problems.append(f"unknown attribute {key!r} for op {op.name}{why} "
                            f"(takes: {', '.join(sorted(specs)) or 'none'})")
    for key, spec in specs.items():
        if key not in attrs:
            if spec.required:
                problems.append(f"missing attribute {key!r} ({spec.kind})")
            continue
        value = attrs[key]
        kind = _kind_of(value)
        if kind != spec.kind:
            problems.append(f"attribute {key}={value!r} must be {_KIND_NAMES[spec.kind]}")
            continue
        if spec.kind == "ints":
            assert isinstance(value, list)
            if spec.length is not None and len(value) != spec.length:
                problems.append(f"attribute {key}={value} must have {spec.length} entries")
            values = value
        elif spec.kind == "int":
            assert isinstance(value, int)
            values = [value]
        else:
            if spec.choices is not None and value not in spec.choices:
                problems.append(f"attribute {key}={value!r} must be one of "
                                f"{', '.join(repr(c) for c in spec.choices)}")
            continue
        bad = [v for v in values if (spec.lo is not None and v < spec.lo)
               or (spec.hi is not None and v > spec.hi)]
        if bad:
            lo = "-inf" if spec.lo is None else spec.lo
            hi = "inf" if spec.hi is None else spec.hi
            problems.append(f"attribute {key}={value} out of range [{lo}, {hi}]")
    lo, hi = attrs.get("lo"), attrs.get("hi")
    act = attrs.get("act")
    if (isinstance(act, str) and act == "clip" and isinstance(lo, int) and isinstance(hi, int)
            and lo > hi):
        problems.append(f"clip needs lo <= hi, got lo={lo}, hi={hi}")
    if op.name == "avgpool" and not problems:
        kh, kw = _ints(attrs, "kernel")
        if kh * kw > INT16_MAX:
            problems.append(f"avgpool kernel {kh}x{kw} has more than {INT16_MAX} positions")
    return problems


_KIND_NAMES = {"int": "an integer", "ints": "a list of integers", "str": "a string"}

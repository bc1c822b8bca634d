/* fx_kernels.h - freeml-tx fixed-point kernels (Q15 activations, per-channel Q15 weights).
 *
 * Freestanding C99: no malloc, no float, no libc beyond <stdint.h>/<stddef.h>.
 * The exact semantics (rounding, saturation, wrapping) are defined in docs/lir.md; the numpy
 * interpreter (transpiler/lir/kernels.py) is the reference these kernels must equal bit for bit.
 *
 * Every kernel computes a sub-range of its outputs (a tile) so the intermittent runtime can run
 * a step tile by tile: running the same range twice writes the same bytes (idempotent), and a
 * kernel never writes memory it reads. A kernel writes exactly the outputs of its range, each
 * through FX_STORE (fx_store.h), so host power-failure injection can fail between any two.
 * Ranges are half-open, [lo, hi) with lo <= hi <= the extent; an empty range does nothing.
 * Shifts: requant shifts in [-15, 31], add's shift_a/shift_b in [0, 15] (docs/lir.md).
 * Dot products go through FX_MAC_* (fx_mac.h); see README.md for the rules that keeps.
 */
#ifndef FX_KERNELS_H
#define FX_KERNELS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Activation applied to the int16 result of a step (docs/lir.md, "Activations"). */
enum { FX_ACT_NONE = 0, FX_ACT_RELU = 1, FX_ACT_CLIP = 2, FX_ACT_LEAKY = 3 };

typedef struct {
    uint8_t kind;      /* FX_ACT_* */
    int16_t lo, hi;    /* clip bounds in the output's Q format */
    int16_t alpha;     /* leaky slope in Q15, 0 <= alpha */
} fx_act_t;

/* conv: 1-D (ih = 1, kh = 1) and 2-D, stride, padding, dilation, groups (depthwise when
 * group == cin == cout). x is [cin][ih][iw], y is [cout][oh][ow], w is [cout][cin/group][kh][kw].
 * Input positions outside [0, ih) x [0, iw) count as 0; an output whose window lies entirely in
 * the padding is act(requant(bias)). 1x1 kernels with stride 1, no top/left padding and
 * ow == iw take a pointwise fast path; depthwise runs the general loops with one input channel.
 *
 * The fields after `act' follow from the ones before: the layer's geometry, computed once so that
 * a call (an intermittent build calls the kernel once per commit group) costs no divisions and
 * few multiplications before its first output. The compiler emits them as constants
 * (backends/c/printers.py); a descriptor filled at run time gets them from fx_conv_prepare(). */
typedef struct {
    uint16_t cin, ih, iw;
    uint16_t cout, oh, ow;
    uint16_t kh, kw;
    uint16_t sh, sw, dh, dw;
    uint16_t pt, pl;            /* top/left padding; bottom/right follow from oh/ow */
    uint16_t group;
    const int16_t *w;
    const int32_t *bias;        /* [cout], accumulator scale; never NULL */
    const int8_t *shift;        /* [cout] requant shifts */
    fx_act_t act;
    /* derived */
    uint16_t cin_g, cout_g;     /* cin / group, cout / group */
    uint16_t oxa, oxb;          /* interior columns: every kernel column inside the input (dw == 1;
                                 * else 0, 0) */
    uint16_t oya, oyb;          /* interior rows: every kernel row inside the input */
    uint16_t pointwise;         /* 1x1, stride 1, no padding but on the right, ow == iw,
                                 * oh <= ih: the pointwise path */
    int32_t ixa, ixb;           /* oxa * sw - pl, oxb * sw - pl: input column of those windows */
    size_t hw;                  /* ih * iw: input step between channels */
    size_t ohw;                 /* oh * ow: output step between channels */
    size_t ktaps;               /* kh * kw: weight step between input channels */
    size_t wsize;               /* cin_g * kh * kw: the weights of one output channel */
    size_t xdh;                 /* dh * iw: input step between kernel rows */
    size_t xsh;                 /* sh * iw: input step between output rows */
    size_t xkh;                 /* (kh - 1) * dh * iw: from a window's first kernel row to its last */
    size_t xoya;                /* (oya * sh - pt) * iw: the first window of row oya (0 without
                                 * interior rows) */
} fx_conv_t;

/* Output channels [co0, co1) x output rows [oy0, oy1), all columns. */
void fx_conv(const fx_conv_t *p, const int16_t *x, int16_t *y,
             uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1);

/* n work units (output rows, channel after channel: unit co * oh + oy) from row oy of output
 * channel co: what the generated code calls per tile, with one set-up for all of them. */
void fx_conv_units(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t co, uint16_t oy, uint16_t n);

/* Output columns [ox0, ox1) of output row oy of channel co (a row split into column ranges: an
 * intermittent build whose budget one output row does not fit). */
void fx_conv_cols(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t co, uint16_t oy, uint16_t ox0,
                  uint16_t ox1);

/* Work units [u0, u1) of cw output columns each (u = (co * oh + oy) * nc + cx, nc = ceil(ow / cw);
 * the last chunk of a row may be narrower): the chunks of one row in one call of fx_conv_cols. */
void fx_conv_col_units(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t cw, uint16_t u0, uint16_t u1);

/* Sets the derived fields of *p from the others (for descriptors built at run time). */
void fx_conv_prepare(fx_conv_t *p);

/* fc: y[n] = act(requant(bias[n] + sum_k x[k] * w[n][k], shift[n])). */
typedef struct {
    uint16_t k, n;
    const int16_t *w;           /* [n][k] */
    const int32_t *bias;        /* [n] */
    const int8_t *shift;        /* [n] */
    fx_act_t act;
} fx_fc_t;

/* Outputs [n0, n1). */
void fx_fc(const fx_fc_t *p, const int16_t *x, int16_t *y, uint16_t n0, uint16_t n1);

/* Sparse weights (docs/lir.md, "Sparse ops"; fx_sparse.c). Both equal the dense kernel on the
 * weights they encode, bit for bit. Index arrays are uint16: at most 65535 stored values. */

/* fc_sparse (CSR with byte steps): the weights of output n are values[j], j in
 * [rowptr[n], rowptr[n+1]), at the columns reached by stepping from x[0] deltas[rowptr[n]],
 * ..., deltas[j] bytes (2 per column; columns strictly increase within a row, so K <= 32768). */
typedef struct {
    uint16_t k, n;
    const int16_t *values;      /* [nnz] */
    const uint16_t *deltas;     /* [nnz], even: byte steps through x */
    const uint16_t *rowptr;     /* [n + 1], rowptr[0] = 0, rowptr[n] = nnz */
    const int32_t *bias;        /* [n] */
    const int8_t *shift;        /* [n] */
    int8_t shift_min, shift_max;    /* the least and greatest of the n shifts */
    fx_act_t act;
} fx_fc_sparse_t;

/* Outputs [n0, n1). */
void fx_fc_sparse(const fx_fc_sparse_t *p, const int16_t *x, int16_t *y, uint16_t n0, uint16_t n1);

/* conv_sparse: the geometry of fx_conv_t; the weights of output channel co are values[j] at
 * offsets[j] = ci' * Hv * Wv + ky * dh * Wv + kx * dw (increasing), j in [chanptr[co],
 * chanptr[co+1]): the tap's input offset from the window origin, in the input grown to the
 * dilated kernel (Hv = max(ih, (kh - 1) * dh + 1), Wv = max(iw, (kw - 1) * dw + 1); docs/lir.md).
 * Channel-major, so a tile of channels [c0, c1) reads the one run [chanptr[c0], chanptr[c1]).
 * Needs cin / group * Hv * Wv <= 65535. Uses up to about 450 bytes of stack for its tap list
 * and table (FX_SPARSE_RUN_TAPS), or its partial sums (FX_SPARSE_CONV_TAPS, FX_SPARSE_CONV_SEG in
 * fx_sparse.c). */
typedef struct {
    uint16_t cin, ih, iw;
    uint16_t cout, oh, ow;
    uint16_t kh, kw;
    uint16_t sh, sw, dh, dw;
    uint16_t pt, pl;            /* top/left padding; bottom/right follow from oh/ow */
    uint16_t group;
    const int16_t *values;      /* [nnz] */
    const uint16_t *offsets;    /* [nnz], < cin / group * kh * kw */
    const uint16_t *chanptr;    /* [cout + 1], chanptr[0] = 0, chanptr[cout] = nnz */
    const int32_t *bias;        /* [cout] */
    const int8_t *shift;        /* [cout] */
    fx_act_t act;
} fx_conv_sparse_t;

/* Output channels [co0, co1) x output rows [oy0, oy1), all columns. */
void fx_conv_sparse(const fx_conv_sparse_t *p, const int16_t *x, int16_t *y,
                    uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1);

/* max / average pooling over [c][ih][iw] -> [c][oh][ow]. oh/ow are the caller's (floor or ceil
 * mode); dh/dw apply to both (1 for avgpool, whose LIR op has no dilation). A window with no
 * input position gives INT16_MIN (maxpool) or 0 (avgpool). avgpool needs kh * kw <= 32767. */
typedef struct {
    uint16_t c, ih, iw, oh, ow;
    uint16_t kh, kw, sh, sw, dh, dw;
    uint16_t pt, pl, pb, pr;
    uint16_t count_include_pad;  /* avgpool only */
} fx_pool_t;

/* Channels [c0, c1). */
void fx_maxpool(const fx_pool_t *p, const int16_t *x, int16_t *y, uint16_t c0, uint16_t c1);
void fx_avgpool(const fx_pool_t *p, const int16_t *x, int16_t *y, uint16_t c0, uint16_t c1);

/* add: y = act(requant((a << shift_a) + (b << shift_b), shift)). */
typedef struct {
    uint8_t shift_a, shift_b;
    int8_t shift;
    fx_act_t act;
} fx_add_t;

/* Elements [i0, i1). */
void fx_add(const fx_add_t *p, const int16_t *a, const int16_t *b, int16_t *y, uint32_t i0, uint32_t i1);

/* mul: y = act(requant(a * b, shift)), the element-wise product of two activations. */
typedef struct {
    int8_t shift;
    fx_act_t act;
} fx_mul_t;

/* Elements [i0, i1). */
void fx_mul(const fx_mul_t *p, const int16_t *a, const int16_t *b, int16_t *y, uint32_t i0, uint32_t i1);

/* layernorm (docs/lir.md, "layernorm"): every row of n elements normalised to mean 0 and
 * root-mean-square 1 / sqrt(n) (Z, q = 15: d = n x - sum, e = d >> u in 15 bits, w = sum(e^2) +
 * (eps >> 2u), Z = round(e / sqrt(w)) through a 16-bit square root and reciprocal), then
 * y = act(requant(Z g[j] + b[j], shift)) (g holds the scale times sqrt(n); with step 0, g[0] and b[0]
 * for every j). */
typedef struct {
    const int16_t *g;           /* [n] (step 1) or [1] (step 0), the scale times sqrt(n) */
    const int32_t *b;           /* like g, the bias at the scale of Z * g */
    uint64_t eps;               /* epsilon in units of sum(d^2), < 2^60 */
    uint16_t n;                 /* row length, 1..16384 */
    uint8_t step;               /* 1: g and b per position, 0: one value each */
    int8_t shift;
    fx_act_t act;
} fx_layernorm_t;

/* Rows [r0, r1). */
void fx_layernorm(const fx_layernorm_t *p, const int16_t *x, int16_t *y, uint16_t r0, uint16_t r1);

/* matmul (docs/lir.md, "matmul"): y[m][j] = act(requant(sum_i a[m][i] * b[i][j], shift)) for two
 * activations a [rows][k], b [k][n]. */
typedef struct {
    uint16_t k, n;
    int8_t shift;
    fx_act_t act;
} fx_matmul_t;

/* Rows [r0, r1) of y. */
void fx_matmul(const fx_matmul_t *p, const int16_t *a, const int16_t *b, int16_t *y, uint16_t r0, uint16_t r1);

/* embed (docs/lir.md, "embed"): row t of y [rows][dim] = table row ids[t] (copied; same Q) for an
 * id in [0, vocab), a row of zeros for any other id (ids read as uint16: nothing out of bounds). */
typedef struct {
    const int16_t *table;       /* [vocab][dim] */
    uint16_t vocab;
    uint16_t dim;
} fx_embed_t;

/* Rows [r0, r1) of y. */
void fx_embed(const fx_embed_t *p, const int16_t *ids, int16_t *y, uint16_t r0, uint16_t r1);

/* softmax over rows of n (docs/lir.md, "softmax"): e = table(max - x) (q = 14, interpolated between
 * entries 2^step input units apart, table[m] beyond), S = sum e, R = 2^(bitlen(S) + 15) / S,
 * y = round(e R / 2^(bitlen(S) + out_shift)) (q = 15 - out_shift). */
typedef struct {
    const int16_t *table;       /* [m + 1], table[0] = 2^14, non-increasing, >= 0 */
    uint16_t m;
    uint16_t n;                 /* row length, 1..1024 */
    uint8_t step;               /* 0..15 */
    uint8_t out_shift;          /* 0..6 */
} fx_softmax_t;

/* Rows [r0, r1). */
void fx_softmax(const fx_softmax_t *p, const int16_t *x, int16_t *y, uint16_t r0, uint16_t r1);

/* Stand-alone activation, elements [i0, i1). */
void fx_act(const fx_act_t *a, const int16_t *x, int16_t *y, uint32_t i0, uint32_t i1);

/* lut: an element-wise function from a table with linear interpolation (docs/lir.md, "lut").
 * The table value v of x: a = |x| (mirror) or x - base; a < 0 gives table[0], a >= n << step
 * gives table[n], else table[i] + requant((table[i+1] - table[i]) * r, step) with i = a >> step,
 * r = a mod 2^step; with mirror a negative x gives sat16(center - v). Then y = v, or with gate
 * y = requant(x * v, shift). Neighbouring table entries differ by at most 32767. */
typedef struct {
    const int16_t *table;       /* [n + 1] */
    int32_t center;             /* mirror: v(-a) = center - v(a) */
    uint16_t n;                 /* segments, >= 1 */
    int16_t base;               /* the input of table[0] (0 with mirror) */
    uint8_t step;               /* 1..15: 2^step input units per segment */
    uint8_t mirror;             /* 1: the table covers |x| */
    uint8_t gate;               /* 1: y = requant(x * v, shift) */
    int8_t shift;
} fx_lut_t;

/* Elements [i0, i1). */
void fx_lut(const fx_lut_t *p, const int16_t *x, int16_t *y, uint32_t i0, uint32_t i1);

/* y[i] = requant(x[i], shift) for i in [i0, i1): one input of a concat (the caller offsets y). */
void fx_requant_copy(const int16_t *x, int16_t *y, int8_t shift, uint32_t i0, uint32_t i1);

/* trees: y[t] = the leaf tree t reaches (docs/lir.md, "trees"). A children/roots entry with
 * FX_TREE_LEAF set is a leaf (entry & 0x7FFF: the offset of its values), else a branch index. */
#define FX_TREE_LEAF 0x8000u
typedef struct {
    const uint16_t *feature;    /* [N] */
    const int16_t *threshold;   /* [N], the input's format */
    const uint16_t *children;   /* [N][2]: the child when x <= threshold, the other one */
    const uint16_t *roots;      /* [T] */
} fx_trees_t;

/* Trees [t0, t1). */
void fx_trees(const fx_trees_t *p, const int16_t *x, int16_t *y, uint16_t t0, uint16_t t1);

/* tree_sum: y[c] = requant(bias[c] + the values of the leaves that write output c, shift). */
typedef struct {
    uint16_t trees, width;
    int8_t shift;
    const int16_t *values;      /* [L][width], at most 32767 */
    const uint16_t *first;      /* [trees]: the first output of each tree's values */
    const int32_t *bias;        /* [C] */
} fx_tree_sum_t;

/* Outputs [c0, c1). */
void fx_tree_sum(const fx_tree_sum_t *p, const int16_t *leaves, int16_t *y, uint16_t c0, uint16_t c1);

/* Index of the first maximum of x[0..n); 0 when n == 0. The LIR stores it as int16 (n <= 32768). */
uint16_t fx_argmax(const int16_t *x, uint16_t n);

/* The scalar helpers, exposed for tests and generated code. */
int16_t fx_requant(int32_t acc, int8_t shift);
int16_t fx_apply_act(const fx_act_t *a, int16_t y);

#ifdef __cplusplus
}
#endif
#endif /* FX_KERNELS_H */

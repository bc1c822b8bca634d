/* fx_conv.c - dense fixed-point convolution (1-D and 2-D, stride, padding, dilation, groups).
 *
 *   y[co, oy, ox] = act(requant(bias[co] + sum_{ci, ky, kx} x[ci, iy, ix] * w[co, ci', ky, kx],
 *                               shift[co]))
 *   iy = oy * sh - pt + ky * dh,  ix = ox * sw - pl + kx * dw  (outside the input: 0)
 *
 * With dilation 1 along the width every row of a window is a run of contiguous inputs, and the
 * valid taps of a window are the same for all outputs of a "run": a stretch of one output row
 * between the left and right borders, or a stretch of one border column between the top and
 * bottom borders. A window is then nch channels x nky rows x nkx taps, and its dot product is a
 * walk of two pointers with FX_MAC_PP (on the MSP430 two auto-increment moves into MACS/OP2 per
 * product) plus one pointer step between rows. A runner computes all outputs of a run (set-up,
 * requantisation and activation chosen once); runners are specialised by the kernel width
 * (kw = 2, 3, 5 unrolled; 3x3 and 5x5 windows fully unrolled per channel; 1x1 kernels unrolled
 * over the input channels). A tile is a run of output rows, channel after channel
 * (fx_conv_units; fx_conv's channels x rows are such runs); per channel its rows are covered as:
 *   - interior rows [oya, oyb) (every kernel row inside the input): the interior columns
 *     [oxa, oxb) as one run per row with the specialised runners, then the border columns,
 *     column by column, as runs down the column (the window's valid columns [kx0, kx1) are the
 *     same all the way); with dilation > 1 along the width every window one at a time;
 *   - rows cut by the top or bottom edge: their interior columns as one run of the kernel rows
 *     inside, their border columns one window at a time (a plain strided loop when dilated);
 *     rows whose windows lie entirely in the padding give act(requant(bias)).
 * A row too long for one power cycle is split into ranges of columns (fx_conv_cols,
 * fx_conv_col_units): a range's interior columns are one run, its border columns one window each.
 * The geometry of the layer (interior rows and columns, steps, group sizes) is in the descriptor
 * (fx_kernels.h), so a call costs no division (unless it starts past the first group of a grouped
 * conv) and a handful of multiplications before its first output: an intermittent build calls
 * the kernel once per commit group.
 *
 * Depthwise convolution (cin / group == 1) runs the same code with one input channel; 1-D
 * convolutions (kh == 1) treat the input channels as the rows of one window. Pointwise 1x1
 * convolutions without padding or stride walk each output row as one run.
 *
 * Between FX_MAC_BEGIN and FX_MAC_END the code only adds to pointers and compares: on the MSP430
 * the accumulator lives in the MPY32 result registers, which a compiled `*' would clobber. Loops
 * advance a pointer only when another product follows, so no pointer ever moves more than one
 * element past its array.
 */
#include <stddef.h>

#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"
#include "fx_window.h"

/* fx_apply_act(a, y) with kind == a->kind kept in a register by the caller; ReLU inline. */
static inline int16_t fx_act_fast(uint8_t kind, const fx_act_t *a, int16_t y)
{
    if (kind == FX_ACT_RELU) {
        return y < 0 ? 0 : y;
    }
    return kind == FX_ACT_NONE ? y : fx_apply_act(a, y);
}

/* One run of outputs whose windows have the same valid taps: nch channels x nky rows x kw taps,
 * each row contiguous in x. The weights start at w, the inputs at the window origin xo, which
 * moves by xstep from one output to the next (the output by ystep). In the interior a channel's
 * weights are contiguous (wrow == 0); a border window uses part of each weight row. */
typedef struct {
    const int16_t *w;       /* weight of the window's first tap */
    size_t wlen;            /* w + wlen is one past the window's last weight */
    size_t rowlen;          /* from a channel's first weight to one past its last */
    size_t xrow;            /* x step from one past a row's last tap to the next row's first */
    size_t wrow;            /* the same for w (the border runner only) */
    size_t xch;             /* x step from one past a channel's last tap to the next channel's first */
    size_t wch;             /* the same for w */
    size_t xstep;           /* x step between the window origins of consecutive outputs */
    size_t ystep;           /* y step between consecutive outputs */
    uint16_t kw;            /* taps per row (the generic runners) */
    uint16_t nrem;          /* (taps - 1) mod 4 (the strided runner: single-tap rows) */
    int32_t bias;
    fx_requant_fn_t *rq;    /* requant by the channel's shift */
    const fx_act_t *act;
} fx_conv_run_t;

typedef void fx_conv_runner_t(const fx_conv_run_t *r, const int16_t *xo, int16_t *yp, uint16_t n);

/* ---- window bodies: the products of one window, between FX_MAC_BEGIN and FX_MAC_END ---------
 * They use the runner's locals: xp, wp (window origin, first weight), wend, wq, rowlen, xrow,
 * wrow, xch, wch, kw, nrem. */
#define FX_PP FX_MAC_PP(xp, wp)
#define FX_ROW2 FX_PP; FX_PP
#define FX_ROW3 FX_PP; FX_PP; FX_PP
#define FX_ROW4 FX_PP; FX_PP; FX_PP; FX_PP
#define FX_ROW5 FX_PP; FX_PP; FX_PP; FX_PP; FX_PP
#define FX_ROWK                                                              \
    do {                                                                     \
        const int16_t *const ke_ = wp + kw;                                  \
        do {                                                                 \
            FX_PP;                                                           \
        } while (wp != ke_);                                                 \
    } while (0)

/* nch channels of nky rows; ROW does one row's taps. Each loop does its first row (channel)
 * before the test, so every pointer step is followed by products. */
#define FX_WIN_ROWS(ROW)                                                     \
    for (;;) {                                                               \
        const int16_t *const re_ = wp + rowlen;                              \
        ROW;                                                                 \
        while (wp != re_) {                                                  \
            xp += xrow;                                                      \
            ROW;                                                             \
        }                                                                    \
        if (wp == wend) {                                                    \
            break;                                                           \
        }                                                                    \
        xp += xch;                                                           \
        wp += wch;                                                           \
    }

/* Border windows: rows of kw taps out of wider weight rows. */
#define FX_WIN_EDGE(ROW)                                                     \
    for (;;) {                                                               \
        const int16_t *const re_ = wp + rowlen;                              \
        ROW;                                                                 \
        while (wp != re_) {                                                  \
            xp += xrow;                                                      \
            wp += wrow;                                                      \
            ROW;                                                             \
        }                                                                    \
        if (wp == wend) {                                                    \
            break;                                                           \
        }                                                                    \
        xp += xch;                                                           \
        wp += wch;                                                           \
    }

/* kh x kw = 3x3 and 5x5 with every row valid (wch == 0): one channel fully unrolled. */
#define FX_WIN_33                                                            \
    for (;;) {                                                               \
        FX_ROW3;                                                             \
        xp += xrow;                                                          \
        FX_ROW3;                                                             \
        xp += xrow;                                                          \
        FX_ROW3;                                                             \
        if (wp == wend) {                                                    \
            break;                                                           \
        }                                                                    \
        xp += xch;                                                           \
    }
#define FX_WIN_55                                                            \
    for (;;) {                                                               \
        FX_ROW5;                                                             \
        xp += xrow;                                                          \
        FX_ROW5;                                                             \
        xp += xrow;                                                          \
        FX_ROW5;                                                             \
        xp += xrow;                                                          \
        FX_ROW5;                                                             \
        xp += xrow;                                                          \
        FX_ROW5;                                                             \
        if (wp == wend) {                                                    \
            break;                                                           \
        }                                                                    \
        xp += xch;                                                           \
    }

/* Single-tap rows with one step xrow between all of them (1x1 kernels: the input channels):
 * the first product, then four at a time up to wq = wend - (taps - 1) mod 4, then the rest. */
#define FX_WIN_STRIDED                                                       \
    FX_PP;                                                                   \
    if (wp != wq) {                                                          \
        for (;;) {                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            if (wp == wq) {                                                  \
                break;                                                       \
            }                                                                \
        }                                                                    \
    }                                                                        \
    if (nrem & 1u) {                                                         \
        xp += xrow;                                                          \
        FX_PP;                                                               \
    }                                                                        \
    if (nrem & 2u) {                                                         \
        xp += xrow;                                                          \
        FX_PP;                                                               \
        xp += xrow;                                                          \
        FX_PP;                                                               \
    }

/* A runner: n >= 1 outputs, the first window at xo, written at yp, yp + ystep, ... */
#define FX_CONV_RUNNER(name, WINDOW)                                         \
    static void name(const fx_conv_run_t *r, const int16_t *xo, int16_t *yp, uint16_t n) \
    {                                                                        \
        const int16_t *const w0 = r->w;                                      \
        const int16_t *const wend = w0 + r->wlen;                            \
        const int16_t *const wq = wend - r->nrem;                            \
        const size_t rowlen = r->rowlen, xrow = r->xrow, wrow = r->wrow;     \
        const size_t xch = r->xch, wch = r->wch;                             \
        const size_t xstep = r->xstep, ystep = r->ystep;                     \
        const uint16_t kw = r->kw, nrem = r->nrem;                           \
        const int32_t bias = r->bias;                                        \
        fx_requant_fn_t *const rq = r->rq;                                   \
        const fx_act_t *const act = r->act;                                  \
        const uint8_t kind = act->kind;                                      \
        (void)rowlen;                                                        \
        (void)wrow;                                                          \
        (void)xch;                                                           \
        (void)wch;                                                           \
        (void)kw;                                                            \
        (void)nrem;                                                          \
        (void)wq;                                                            \
        for (;;) {                                                           \
            const int16_t *xp = xo, *wp = w0;                                \
            int32_t acc;                                                     \
            {                                                                \
                FX_MAC_BEGIN(bias);                                          \
                WINDOW;                                                      \
                acc = FX_MAC_END();                                          \
            }                                                                \
            FX_STORE(*yp, fx_act_fast(kind, act, rq(acc)));                  \
            if (--n == 0u) {                                                 \
                break;                                                       \
            }                                                                \
            yp += ystep;                                                     \
            xo += xstep;                                                     \
        }                                                                    \
    }

FX_CONV_RUNNER(fx_conv_run_strided, FX_WIN_STRIDED)
FX_CONV_RUNNER(fx_conv_run_k2, FX_WIN_ROWS(FX_ROW2))
FX_CONV_RUNNER(fx_conv_run_k3, FX_WIN_ROWS(FX_ROW3))
FX_CONV_RUNNER(fx_conv_run_k5, FX_WIN_ROWS(FX_ROW5))
FX_CONV_RUNNER(fx_conv_run_kn, FX_WIN_ROWS(FX_ROWK))
FX_CONV_RUNNER(fx_conv_run_33, FX_WIN_33)
FX_CONV_RUNNER(fx_conv_run_55, FX_WIN_55)
FX_CONV_RUNNER(fx_conv_run_edge2, FX_WIN_EDGE(FX_ROW2))
FX_CONV_RUNNER(fx_conv_run_edge3, FX_WIN_EDGE(FX_ROW3))
FX_CONV_RUNNER(fx_conv_run_edge4, FX_WIN_EDGE(FX_ROW4))
FX_CONV_RUNNER(fx_conv_run_edgen, FX_WIN_EDGE(FX_ROWK))

/* Rows of kw taps, any number of them per channel (the common widths unrolled). */
static fx_conv_runner_t *fx_conv_rows_runner(uint16_t kw)
{
    switch (kw) {
    case 2:
        return fx_conv_run_k2;
    case 3:
        return fx_conv_run_k3;
    case 5:
        return fx_conv_run_k5;
    default:
        return fx_conv_run_kn;
    }
}

/* Border windows with rows of nkx taps (the widths of 3x3 and 5x5 kernels' borders unrolled). */
static fx_conv_runner_t *fx_conv_edge_runner(uint16_t nkx)
{
    switch (nkx) {
    case 2:
        return fx_conv_run_edge2;
    case 3:
        return fx_conv_run_edge3;
    case 4:
        return fx_conv_run_edge4;
    default:
        return fx_conv_run_edgen;
    }
}

/* The state of one call: the descriptor, the current output channel's pointers, the run
 * templates, and the kernel rows that rw / rx are set for. */
typedef struct {
    const fx_conv_t *p;
    const int16_t *xg;      /* the input channels of the current output channel's group */
    const int16_t *wc;      /* the current output channel's weights */
    int16_t *yr;            /* the output row being computed */
    fx_conv_run_t r;        /* interior rows: runs along a row over the interior columns */
    fx_conv_run_t e;        /* border rows' runs, border windows, runs down a border column */
    size_t rw;              /* (nky - 1) * kw: weight distance from the first valid row to the last */
    size_t rx;              /* (nky - 1) * dh * iw: the same in x */
    uint16_t nky;           /* valid kernel rows */
} fx_conv_ctx_t;

/* The input channels of output channel co's group, and co's index in the group (*k): one
 * division only when co lies beyond the first group of several channels. */
static const int16_t *fx_conv_group(const fx_conv_t *p, const int16_t *x, uint16_t co, uint16_t *k)
{
    const uint16_t cg = p->cout_g;
    uint16_t gi;
    if (co < cg) {
        *k = co;
        return x;
    }
    if (cg == 1u) {
        gi = co;
        *k = 0u;
    } else {
        gi = (uint16_t)(co / cg);
        *k = (uint16_t)(co - (uint16_t)(gi * cg));
    }
    return x + (size_t)((uint32_t)gi * p->cin_g) * p->hw;
}

/* rw / rx for windows of nky kernel rows; all kh of them without a multiplication. */
static void fx_conv_set_rows(fx_conv_ctx_t *c, uint16_t nky)
{
    const fx_conv_t *p = c->p;
    c->nky = nky;
    if (nky == p->kh) {
        c->rw = p->ktaps - p->kw;
        c->rx = p->xkh;
    } else {
        c->rw = (size_t)((uint32_t)(nky - 1u) * p->kw);
        c->rx = (size_t)(nky - 1u) * p->xdh;
    }
}

/* e: windows of c->nky rows of nkx taps from weight column kx0 (dilation 1). */
static void fx_conv_set_cols(fx_conv_run_t *e, const fx_conv_ctx_t *c, uint16_t nkx)
{
    const fx_conv_t *p = c->p;
    e->kw = nkx;
    e->rowlen = c->rw + nkx;
    e->wlen = p->wsize - p->ktaps + e->rowlen;
    e->xrow = p->xdh - nkx;
    e->wrow = (size_t)(p->kw - nkx);
    e->xch = p->hw - c->rx - nkx;
    e->wch = p->ktaps - e->rowlen;
}

/* r: runs of windows of all kw taps of c->nky rows; returns the runner for them. */
static fx_conv_runner_t *fx_conv_set_row_run(fx_conv_run_t *r, const fx_conv_ctx_t *c)
{
    const fx_conv_t *p = c->p;
    const uint16_t kh = p->kh, kw = p->kw;
    r->kw = kw;
    r->wrow = 0u;
    if (kh == 1u) {
        /* 1-D: the channels are the rows of one window */
        r->wlen = p->wsize;
        r->rowlen = p->wsize;
        r->xrow = p->hw - kw;
        r->xch = 0u;
        r->wch = 0u;
        return kw == 1u ? fx_conv_run_strided : fx_conv_rows_runner(kw);
    }
    r->rowlen = c->rw + kw;
    r->wlen = p->wsize - p->ktaps + r->rowlen;
    r->xrow = p->xdh - kw;
    r->xch = p->hw - c->rx - kw;
    r->wch = p->ktaps - r->rowlen;
    if (c->nky == 3u && kh == 3u && kw == 3u) {
        return fx_conv_run_33;
    }
    if (c->nky == 5u && kh == 5u && kw == 5u) {
        return fx_conv_run_55;
    }
    return fx_conv_rows_runner(kw);
}

/* Dilated along the width (dw > 1): one window of c->nky rows of nkx taps, dw apart. */
static int32_t fx_conv_dilated(const fx_conv_ctx_t *c, const int16_t *xs, const int16_t *ws,
                               uint16_t nkx, int32_t bias)
{
    const fx_conv_t *p = c->p;
    const uint16_t kw = p->kw, dw = p->dw;
    const size_t hw = p->hw, ktaps = p->ktaps, xdh = p->xdh;
    uint16_t ci = p->cin_g;
    int32_t acc;
    FX_MAC_BEGIN(bias);
    for (;;) {
        const int16_t *xr = xs, *wr = ws;
        uint16_t ky = c->nky;
        for (;;) {
            const int16_t *xp = xr, *wp = wr;
            const int16_t *const wend = wr + nkx;
            for (;;) {
                FX_MAC(*xp, *wp);
                if (++wp == wend) {
                    break;
                }
                xp += dw;
            }
            if (--ky == 0u) {
                break;
            }
            xr += xdh;
            wr += kw;
        }
        if (--ci == 0u) {
            break;
        }
        xs += hw;
        ws += ktaps;
    }
    acc = FX_MAC_END();
    return acc;
}

/* One output (at yp) whose window may be cut by the input's edges: c->nky kernel rows from the
 * input row xrow and the weight row wrow, ix0 the input column of tap 0. */
static void fx_conv_window(fx_conv_ctx_t *c, const int16_t *xrow, const int16_t *wrow, int32_t ix0,
                           int16_t *yp)
{
    const fx_conv_t *p = c->p;
    fx_conv_run_t *const e = &c->e;
    uint16_t kx0, kx1;
    fx_tap_range(ix0, p->kw, p->dw, (int32_t)p->iw, &kx0, &kx1);
    if (kx0 >= kx1) {
        /* the window lies entirely in the padding */
        FX_STORE(*yp, fx_apply_act(e->act, e->rq(e->bias)));
    } else if (p->dw != 1u) {
        const int16_t *xs = xrow + (ix0 + (int32_t)((uint32_t)kx0 * p->dw));
        const int32_t acc = fx_conv_dilated(c, xs, wrow + kx0, (uint16_t)(kx1 - kx0), e->bias);
        FX_STORE(*yp, fx_apply_act(e->act, e->rq(acc)));
    } else {
        fx_conv_set_cols(e, c, (uint16_t)(kx1 - kx0));
        e->w = wrow + kx0;
        fx_conv_edge_runner(e->kw)(e, xrow + (ix0 + kx0), yp, 1u);
    }
}

/* The border columns of one output row, one window at a time (c->nky rows from xrow / wrow). */
static void fx_conv_border_windows(fx_conv_ctx_t *c, const int16_t *xrow, const int16_t *wrow, int16_t *yp)
{
    const fx_conv_t *p = c->p;
    const uint16_t ow = p->ow, oxa = p->oxa, sw = p->sw;
    int32_t ix0 = -(int32_t)p->pl;
    uint16_t ox;
    for (ox = 0; ox < oxa; ++ox, ix0 += sw) {
        fx_conv_window(c, xrow, wrow, ix0, yp + ox);
    }
    for (ox = p->oxb, ix0 = p->ixb; ox < ow; ++ox, ix0 += sw) {
        fx_conv_window(c, xrow, wrow, ix0, yp + ox);
    }
}

/* Output row oy (at c->yr) of the current channel when kernel rows fall outside the input (the
 * rows of the top and bottom borders): the interior columns as one run over the rows inside, the
 * border columns one window at a time; all padding gives act(requant(bias)). */
static FX_NOINLINE void fx_conv_edge_row(fx_conv_ctx_t *c, uint16_t oy)
{
    const fx_conv_t *p = c->p;
    const int32_t iy0 = (int32_t)((uint32_t)oy * p->sh) - p->pt;
    int16_t *const yp = c->yr;
    const int16_t *xrow, *wrow;
    uint16_t ky0, ky1;
    fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
    if (ky0 >= ky1) {
        /* every window of the row lies entirely in the padding */
        const int16_t v = fx_apply_act(&p->act, c->e.rq(c->e.bias));
        uint16_t ox;
        for (ox = 0; ox < p->ow; ++ox) {
            FX_STORE(yp[ox], v);
        }
        return;
    }
    fx_conv_set_rows(c, (uint16_t)(ky1 - ky0));
    xrow = c->xg + (size_t)(uint32_t)(iy0 + (int32_t)((uint32_t)ky0 * p->dh)) * p->iw;
    wrow = c->wc + (size_t)((uint32_t)ky0 * p->kw);
    if (p->oxa < p->oxb) {
        fx_conv_run_t *const e = &c->e;
        fx_conv_runner_t *const run = fx_conv_set_row_run(e, c);
        e->w = wrow;
        e->xstep = p->sw;
        e->ystep = 1u;
        run(e, xrow + p->ixa, yp + p->oxa, (uint16_t)(p->oxb - p->oxa));
    }
    fx_conv_border_windows(c, xrow, wrow, yp);
}

/* Output rows [oya, oyb) of the current channel (the first at c->yr; c->yr ends at row oyb), every
 * kernel row inside the input: the interior columns as one run per row (c->r, run), the border
 * columns as runs down each column (one window at a time when dilated along the width). */
static FX_NOINLINE void fx_conv_interior(fx_conv_ctx_t *c, fx_conv_runner_t *run, uint16_t oya, uint16_t oyb)
{
    const fx_conv_t *p = c->p;
    const uint16_t ow = p->ow, oxa = p->oxa, oxb = p->oxb;
    const size_t xsh = p->xsh;
    const uint16_t n = (uint16_t)(oyb - oya);
    const int16_t *xtop = c->xg + p->xoya;    /* row oya's first window */
    int16_t *const ytop = c->yr;
    uint16_t ox, i;
    int32_t ix0;
    if (oya != p->oya) {
        xtop += (size_t)(oya - p->oya) * xsh;
    }
    c->yr = ytop + (size_t)((uint32_t)n * ow);
    if (oxa < oxb) {
        const int16_t *xr = xtop + p->ixa;
        int16_t *yr = ytop + oxa;
        c->r.w = c->wc;
        for (i = n;;) {
            run(&c->r, xr, yr, (uint16_t)(oxb - oxa));
            if (--i == 0u) {
                break;
            }
            xr += xsh;
            yr += ow;
        }
        if (oxa == 0u && oxb == ow) {
            return;
        }
    }
    if (c->nky != p->kh) {
        fx_conv_set_rows(c, p->kh);
    }
    if (p->dw != 1u) {
        const int16_t *xr = xtop;
        int16_t *yr = ytop;
        for (i = n;;) {
            fx_conv_border_windows(c, xr, c->wc, yr);
            if (--i == 0u) {
                break;
            }
            xr += xsh;
            yr += ow;
        }
        return;
    }
    /* the border columns, each as a run down the column */
    c->e.xstep = xsh;
    c->e.ystep = ow;
    ix0 = -(int32_t)p->pl;
    for (ox = 0; ox < ow; ++ox, ix0 += p->sw) {
        uint16_t kx0, kx1;
        if (ox == oxa && oxa < oxb) {
            ox = oxb;    /* (the interior columns are done) */
            ix0 = p->ixb;
            if (ox == ow) {
                break;
            }
        }
        fx_tap_range(ix0, p->kw, 1u, (int32_t)p->iw, &kx0, &kx1);
        if (kx0 >= kx1) {
            /* the windows lie entirely in the padding */
            const int16_t v = fx_apply_act(&p->act, c->e.rq(c->e.bias));
            int16_t *yq = ytop + ox;
            for (i = n;;) {
                FX_STORE(*yq, v);
                if (--i == 0u) {
                    break;
                }
                yq += ow;
            }
        } else {
            fx_conv_set_cols(&c->e, c, (uint16_t)(kx1 - kx0));
            c->e.w = c->wc + kx0;
            fx_conv_edge_runner(c->e.kw)(&c->e, xtop + (ix0 + kx0), ytop + ox, n);
        }
    }
}

/* 1x1, stride 1, no padding at the top, left or bottom, ow == iw: output pixel i of a channel
 * reads input pixel i of every input channel of its group. n rows from row oy of channel co. */
static void fx_conv_pointwise(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t co, uint16_t oy,
                              uint16_t n)
{
    const uint16_t cin_g = p->cin_g, cout_g = p->cout_g, ow = p->ow, oh = p->oh;
    size_t pix = (size_t)((uint32_t)oy * ow);
    const int16_t *xg, *wc;
    int16_t *yp;
    fx_conv_run_t r;
    uint16_t k;

    r.wlen = cin_g;
    r.rowlen = 1u;
    r.xrow = p->hw - 1u;    /* from one past pixel i of a channel to pixel i of the next */
    r.wrow = 0u;
    r.xch = 0u;
    r.wch = 0u;
    r.xstep = 1u;
    r.ystep = 1u;
    r.kw = 1u;
    r.nrem = (uint16_t)((cin_g - 1u) & 3u);
    r.act = &p->act;
    xg = fx_conv_group(p, x, co, &k);
    wc = p->w + (size_t)((uint32_t)co * cin_g);
    yp = y + (size_t)co * p->ohw + pix;
    for (;;) {
        const uint16_t rows = (uint16_t)(oh - oy) < n ? (uint16_t)(oh - oy) : n;
        const int16_t *xp = xg + pix;
        uint16_t i;
        r.w = wc;
        r.bias = p->bias[co];
        r.rq = fx_requant_fn(p->shift[co]);
        for (i = rows;;) {
            fx_conv_run_strided(&r, xp, yp, ow);
            yp += ow;
            if (--i == 0u) {
                break;
            }
            xp += ow;
        }
        n = (uint16_t)(n - rows);
        if (n == 0u) {
            break;
        }
        ++co;
        oy = 0u;
        pix = 0u;
        wc += cin_g;
        if (++k == cout_g) {
            k = 0u;
            xg += (size_t)cin_g * p->hw;
        }
    }
}

/* The context of a call that starts at output row oy of channel co: its input group, weights and
 * first output row, and the run fields every row shares (*k: co's index inside its group). */
static inline void fx_conv_start(fx_conv_ctx_t *c, const fx_conv_t *p, const int16_t *x, int16_t *y,
                                 uint16_t co, uint16_t oy, uint16_t *k)
{
    c->p = p;
    c->xg = fx_conv_group(p, x, co, k);
    c->wc = p->w + (size_t)co * p->wsize;
    c->yr = y + (size_t)co * p->ohw;
    if (oy != 0u) {
        c->yr += (size_t)((uint32_t)oy * p->ow);
    }
    c->r.nrem = (uint16_t)((p->cin_g - 1u) & 3u);
    c->r.xstep = p->sw;
    c->r.ystep = 1u;
    c->r.act = &p->act;
    c->e.nrem = 0u;
    c->e.act = &p->act;
}

void fx_conv_units(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t co, uint16_t oy, uint16_t n)
{
    const uint16_t oh = p->oh, ow = p->ow, cout_g = p->cout_g;
    fx_conv_runner_t *run;
    fx_conv_ctx_t c;
    uint16_t k;

    if (n == 0u || ow == 0u) {
        return;
    }
    if (p->pointwise) {
        fx_conv_pointwise(p, x, y, co, oy, n);
        return;
    }
    fx_conv_start(&c, p, x, y, co, oy, &k);
    fx_conv_set_rows(&c, p->kh);
    run = fx_conv_set_row_run(&c.r, &c);
    for (;;) {
        /* rows [oy, rb) of channel co; the output rows follow each other across channels */
        const uint16_t rb = (uint16_t)(oh - oy) < n ? oh : (uint16_t)(oy + n);
        uint16_t oya = p->oya, oyb = p->oyb, r;
        if (oya < oy) {
            oya = oy;
        } else if (oya > rb) {
            oya = rb;
        }
        if (oyb > rb) {
            oyb = rb;
        } else if (oyb < oya) {
            oyb = oya;
        }
        c.r.bias = c.e.bias = p->bias[co];
        c.r.rq = c.e.rq = fx_requant_fn(p->shift[co]);
        for (r = oy; r < oya; ++r) {
            fx_conv_edge_row(&c, r);
            c.yr += ow;
        }
        if (oya < oyb) {
            fx_conv_interior(&c, run, oya, oyb);
        }
        for (r = oyb; r < rb; ++r) {
            fx_conv_edge_row(&c, r);
            c.yr += ow;
        }
        n = (uint16_t)(n - (rb - oy));
        if (n == 0u) {
            break;
        }
        ++co;
        oy = 0u;
        c.wc += p->wsize;
        if (++k == cout_g) {
            k = 0u;
            c.xg += (size_t)p->cin_g * p->hw;
        }
    }
}

/* Output columns [ox0, ox1) of row oy of the current channel (c->yr at the row's start): the
 * interior columns among them as one run over the valid kernel rows (c->r), the others one window
 * at a time; a row whose windows lie entirely in the padding gives act(requant(bias)). */
static void fx_conv_row_cols(fx_conv_ctx_t *c, uint16_t oy, uint16_t ox0, uint16_t ox1)
{
    const fx_conv_t *p = c->p;
    const int32_t iy0 = (int32_t)((uint32_t)oy * p->sh) - p->pt;
    int16_t *const yp = c->yr;
    const int16_t *xrow, *wrow;
    uint16_t ky0, ky1, a, b, ox;
    int32_t ix0;
    fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
    if (ky0 >= ky1) {
        const int16_t v = fx_apply_act(&p->act, c->e.rq(c->e.bias));
        for (ox = ox0; ox < ox1; ++ox) {
            FX_STORE(yp[ox], v);
        }
        return;
    }
    fx_conv_set_rows(c, (uint16_t)(ky1 - ky0));
    xrow = c->xg + (size_t)(uint32_t)(iy0 + (int32_t)((uint32_t)ky0 * p->dh)) * p->iw;
    wrow = c->wc + (size_t)((uint32_t)ky0 * p->kw);
    a = p->oxa > ox0 ? p->oxa : ox0;
    b = p->oxb < ox1 ? p->oxb : ox1;
    if (a < b) {
        fx_conv_runner_t *const run = fx_conv_set_row_run(&c->r, c);
        c->r.w = wrow;
        run(&c->r, xrow + (p->ixa + (int32_t)((uint32_t)(a - p->oxa) * p->sw)), yp + a, (uint16_t)(b - a));
    } else {
        a = b = ox1;    /* no interior column in [ox0, ox1): every column one window at a time */
    }
    ix0 = (int32_t)((uint32_t)ox0 * p->sw) - p->pl;
    for (ox = ox0; ox < a; ++ox, ix0 += p->sw) {
        fx_conv_window(c, xrow, wrow, ix0, yp + ox);
    }
    ix0 = (int32_t)((uint32_t)b * p->sw) - p->pl;
    for (ox = b; ox < ox1; ++ox, ix0 += p->sw) {
        fx_conv_window(c, xrow, wrow, ix0, yp + ox);
    }
}

void fx_conv_cols(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t co, uint16_t oy, uint16_t ox0,
                  uint16_t ox1)
{
    fx_conv_ctx_t c;
    uint16_t k;
    if (ox1 > p->ow) {
        ox1 = p->ow;
    }
    if (ox0 >= ox1) {
        return;
    }
    fx_conv_start(&c, p, x, y, co, oy, &k);
    c.r.bias = c.e.bias = p->bias[co];
    c.r.rq = c.e.rq = fx_requant_fn(p->shift[co]);
    fx_conv_row_cols(&c, oy, ox0, ox1);
}

void fx_conv_col_units(const fx_conv_t *p, const int16_t *x, int16_t *y, uint16_t cw, uint16_t u0, uint16_t u1)
{
    const uint16_t oh = p->oh, nc = (uint16_t)((uint16_t)(p->ow + cw - 1u) / cw);
    uint16_t r, cx, co, oy;
    if (u0 >= u1) {
        return;
    }
    r = (uint16_t)(u0 / nc);
    cx = (uint16_t)(u0 - (uint16_t)(r * nc));
    co = (uint16_t)(r / oh);
    oy = (uint16_t)(r - (uint16_t)(co * oh));
    for (;;) {
        /* chunks [cx, cx + n) of row oy of channel co: one call */
        const uint16_t n = (uint16_t)(u1 - u0) < (uint16_t)(nc - cx) ? (uint16_t)(u1 - u0) : (uint16_t)(nc - cx);
        const uint32_t end = (uint32_t)(cx + n) * cw;
        fx_conv_cols(p, x, y, co, oy, (uint16_t)(cx * cw), end < p->ow ? (uint16_t)end : p->ow);
        u0 = (uint16_t)(u0 + n);
        if (u0 >= u1) {
            break;
        }
        cx = 0u;
        if (++oy == oh) {
            oy = 0u;
            ++co;
        }
    }
}

void fx_conv(const fx_conv_t *p, const int16_t *x, int16_t *y,
             uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    uint16_t co;
    if (co0 >= co1 || oy0 >= oy1) {
        return;
    }
    if (oy0 == 0u && oy1 == p->oh && (uint32_t)(co1 - co0) * p->oh <= 0xFFFFu) {
        fx_conv_units(p, x, y, co0, 0u, (uint16_t)((co1 - co0) * p->oh));
        return;
    }
    for (co = co0; co < co1; ++co) {
        fx_conv_units(p, x, y, co, oy0, (uint16_t)(oy1 - oy0));
    }
}

void fx_conv_prepare(fx_conv_t *p)
{
    uint16_t a = 0u, b = 0u;
    p->cin_g = (uint16_t)(p->cin / p->group);
    p->cout_g = (uint16_t)(p->cout / p->group);
    if (p->dw == 1u) {
        fx_inside_range(p->iw, p->kw, p->sw, 1u, p->pl, p->ow, &a, &b);
    }
    p->oxa = a;
    p->oxb = b;
    fx_inside_range(p->ih, p->kh, p->sh, p->dh, p->pt, p->oh, &a, &b);
    p->oya = a;
    p->oyb = b;
    p->pointwise = (uint16_t)(p->kh == 1u && p->kw == 1u && p->sh == 1u && p->sw == 1u && p->pt == 0u
                              && p->pl == 0u && p->ow == p->iw && p->oh <= p->ih);
    p->ixa = (int32_t)((uint32_t)p->oxa * p->sw) - p->pl;
    p->ixb = (int32_t)((uint32_t)p->oxb * p->sw) - p->pl;
    p->hw = (size_t)((uint32_t)p->ih * p->iw);
    p->ohw = (size_t)((uint32_t)p->oh * p->ow);
    p->ktaps = (size_t)((uint32_t)p->kh * p->kw);
    p->wsize = (size_t)p->cin_g * p->ktaps;
    p->xdh = (size_t)((uint32_t)p->dh * p->iw);
    p->xsh = (size_t)((uint32_t)p->sh * p->iw);
    p->xkh = (size_t)(uint32_t)(p->kh - 1u) * p->xdh;
    p->xoya = p->oya < p->oyb ? (size_t)((uint32_t)p->oya * p->sh - p->pt) * p->iw : 0u;
}

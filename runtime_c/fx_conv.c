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
 * over the input channels). The output of a tile is
 * covered as:
 *   - every output row: its interior columns [oxa, oxb) as one run (all kernel rows that are
 *     inside the input; full rows take the specialised runners);
 *   - rows cut by the top or bottom edge: their border columns one window at a time;
 *   - rows with every kernel row inside: their border columns, column by column, as runs down
 *     the column (the window's valid columns [kx0, kx1) are the same all the way);
 *   - dilation > 1 along the width: every window through a plain strided loop.
 * Rows whose windows lie entirely in the padding give act(requant(bias)).
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

/* 1x1, stride 1, no top/left padding, one output row = one input row: output pixel i of a
 * channel reads input pixel i of every input channel of its group. */
static void fx_conv_pointwise(const fx_conv_t *p, const int16_t *x, int16_t *y,
                              uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    const uint16_t cin_g = (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = (uint16_t)(p->cout / p->group);
    const uint16_t ow = p->ow;
    const uint32_t hw = (uint32_t)p->ih * p->iw;
    const uint32_t ohw = (uint32_t)p->oh * ow;
    const uint32_t pix0 = (uint32_t)oy0 * ow;
    fx_conv_run_t r;
    uint16_t co;

    r.wlen = cin_g;
    r.rowlen = 1u;
    r.xrow = (size_t)(hw - 1u);    /* from one past pixel i of a channel to pixel i of the next */
    r.wrow = 0u;
    r.xch = 0u;
    r.wch = 0u;
    r.xstep = 1u;
    r.ystep = 1u;
    r.kw = 1u;
    r.nrem = (uint16_t)((cin_g - 1u) & 3u);
    r.act = &p->act;
    for (co = co0; co < co1; ++co) {
        const int16_t *xp = x + (uint32_t)(co / cout_g) * cin_g * hw + pix0;
        int16_t *yp = y + (uint32_t)co * ohw + pix0;
        uint16_t oy = oy0;
        r.w = p->w + (uint32_t)co * cin_g;
        r.bias = p->bias[co];
        r.rq = fx_requant_fn(p->shift[co]);
        for (;;) {
            fx_conv_run_strided(&r, xp, yp, ow);
            if (++oy == oy1) {
                break;
            }
            xp += ow;
            yp += ow;
        }
    }
}

/* The geometry of one call, and of the kernel rows in use (nky and what follows from it). */
typedef struct {
    size_t hw;              /* ih * iw: input step between channels */
    size_t ktaps;           /* kh * kw: weight step between channels */
    size_t wsize;           /* cin_g * ktaps: the weights of one output channel */
    size_t xrow_step;       /* dh * iw: input step between kernel rows */
    uint16_t cin_g, kw, dw, iw;
    uint16_t nky;           /* valid kernel rows */
    size_t rw;              /* (nky - 1) * kw: weight distance from the first valid row to the last */
    size_t rx;              /* (nky - 1) * xrow_step: the same in x */
} fx_conv_geo_t;

static void fx_conv_set_rows(fx_conv_geo_t *g, uint16_t nky)
{
    g->nky = nky;
    g->rw = (size_t)((uint32_t)(nky - 1u) * g->kw);
    g->rx = (size_t)((uint32_t)(nky - 1u) * g->xrow_step);
}

/* e: windows of g->nky rows of nkx taps from weight column kx0 (dilation 1). */
static void fx_conv_set_cols(fx_conv_run_t *e, const fx_conv_geo_t *g, uint16_t nkx)
{
    e->kw = nkx;
    e->rowlen = g->rw + nkx;
    e->wlen = g->wsize - g->ktaps + e->rowlen;
    e->xrow = g->xrow_step - nkx;
    e->wrow = g->kw - nkx;
    e->xch = g->hw - g->rx - nkx;
    e->wch = g->ktaps - e->rowlen;
}

/* Dilated along the width (dw > 1): one window of g->nky rows of nkx taps, dw apart. */
static int32_t fx_conv_dilated(const fx_conv_geo_t *g, const int16_t *xs, const int16_t *ws,
                               uint16_t nkx, int32_t bias)
{
    const uint16_t kw = g->kw, dw = g->dw;
    const size_t hw = g->hw, ktaps = g->ktaps, xrow_step = g->xrow_step;
    uint16_t ci = g->cin_g;
    int32_t acc;
    FX_MAC_BEGIN(bias);
    for (;;) {
        const int16_t *xr = xs, *wr = ws;
        uint16_t ky = g->nky;
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
            xr += xrow_step;
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

/* One output (at yp) whose window may be cut by the input's edges: g->nky kernel rows from the
 * input row xrow and the weight row wrow, ix0 the input column of tap 0. e holds the bias, the
 * requantisation and the activation. */
static void fx_conv_window(fx_conv_run_t *e, const fx_conv_geo_t *g, const int16_t *xrow,
                           const int16_t *wrow, int32_t ix0, int16_t *yp)
{
    uint16_t kx0, kx1;
    fx_tap_range(ix0, g->kw, g->dw, (int32_t)g->iw, &kx0, &kx1);
    if (kx0 >= kx1) {
        /* the window lies entirely in the padding */
        FX_STORE(*yp, fx_apply_act(e->act, e->rq(e->bias)));
    } else if (g->dw != 1u) {
        const int16_t *xs = xrow + (ix0 + (int32_t)((uint32_t)kx0 * g->dw));
        const int32_t acc = fx_conv_dilated(g, xs, wrow + kx0, (uint16_t)(kx1 - kx0), e->bias);
        FX_STORE(*yp, fx_apply_act(e->act, e->rq(acc)));
    } else {
        fx_conv_set_cols(e, g, (uint16_t)(kx1 - kx0));
        e->w = wrow + kx0;
        fx_conv_edge_runner(e->kw)(e, xrow + (ix0 + kx0), yp, 1u);
    }
}

void fx_conv(const fx_conv_t *p, const int16_t *x, int16_t *y,
             uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    const uint16_t cin_g = (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = (uint16_t)(p->cout / p->group);
    const uint16_t kh = p->kh, kw = p->kw, ow = p->ow, iw = p->iw, sw = p->sw, sh = p->sh;
    const uint16_t dense_w = p->dw == 1u;
    const uint32_t hw = (uint32_t)p->ih * iw;
    const uint32_t ktaps = (uint32_t)kh * kw;
    const uint32_t wsize = (uint32_t)cin_g * ktaps;        /* weights of one output channel */
    const uint32_t ohw = (uint32_t)p->oh * ow;
    const uint32_t xrow_step = (uint32_t)p->dh * iw;       /* input step from tap ky to ky + 1 */
    uint16_t oxa = 0, oxb = 0;    /* interior columns (every kernel column inside the input) */
    uint16_t oya, oyb;            /* interior rows of the tile (every kernel row inside) */
    int32_t ixa, ixb;             /* input columns of the windows of oxa and oxb */
    fx_conv_geo_t g;
    fx_conv_run_t r;    /* runs along a row */
    fx_conv_run_t e;    /* border windows and runs down a border column */
    uint16_t co;

    if (co0 >= co1 || oy0 >= oy1 || ow == 0u) {
        return;
    }
    if (kh == 1u && kw == 1u && sh == 1u && sw == 1u && p->pt == 0u && p->pl == 0u
        && ow == iw && oy1 <= p->ih) {
        fx_conv_pointwise(p, x, y, co0, co1, oy0, oy1);
        return;
    }

    if (dense_w) {
        fx_inside_range(iw, kw, sw, 1u, p->pl, ow, &oxa, &oxb);
    }
    ixa = (int32_t)((uint32_t)oxa * sw) - p->pl;
    ixb = (int32_t)((uint32_t)oxb * sw) - p->pl;
    fx_inside_range(p->ih, kh, sh, p->dh, p->pt, p->oh, &oya, &oyb);
    if (oya < oy0) {
        oya = oy0;
    }
    if (oyb > oy1) {
        oyb = oy1;
    }
    if (oyb < oya) {
        oyb = oya;
    }
    g.hw = (size_t)hw;
    g.ktaps = (size_t)ktaps;
    g.wsize = (size_t)wsize;
    g.xrow_step = (size_t)xrow_step;
    g.cin_g = cin_g;
    g.kw = kw;
    g.dw = p->dw;
    g.iw = iw;
    r.kw = kw;
    r.wrow = 0u;
    r.nrem = (uint16_t)((cin_g - 1u) & 3u);
    r.xstep = sw;
    r.ystep = 1u;
    r.act = &p->act;
    e.nrem = 0u;
    e.xstep = (size_t)((uint32_t)sh * iw);
    e.ystep = ow;
    e.act = &p->act;

    for (co = co0; co < co1; ++co) {
        const int16_t *const wc = p->w + (uint32_t)co * wsize;
        const int16_t *const xg = x + (uint32_t)(co / cout_g) * cin_g * hw;
        int16_t *const yc = y + (uint32_t)co * ohw;
        int16_t *yp = yc + (uint32_t)oy0 * ow;
        int32_t iy0 = (int32_t)((uint32_t)oy0 * sh) - p->pt;
        uint16_t oy, ox;
        r.bias = e.bias = p->bias[co];
        r.rq = e.rq = fx_requant_fn(p->shift[co]);
        g.nky = 0u;
        for (oy = oy0; oy < oy1; ++oy, iy0 += sh, yp += ow) {
            const int16_t *xrow, *wrow;
            uint16_t ky0, ky1;
            const uint16_t full = oy >= oya && oy < oyb;
            fx_tap_range(iy0, kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
            if (ky0 >= ky1) {
                /* every window of the row lies entirely in the padding */
                const int16_t v = fx_apply_act(&p->act, r.rq(r.bias));
                for (ox = 0; ox < ow; ++ox) {
                    FX_STORE(yp[ox], v);
                }
                continue;
            }
            if (ky1 - ky0 != g.nky) {
                fx_conv_set_rows(&g, (uint16_t)(ky1 - ky0));
            }
            xrow = xg + (uint32_t)(iy0 + (int32_t)((uint32_t)ky0 * p->dh)) * iw;
            wrow = wc + (uint32_t)ky0 * kw;
            if (oxa < oxb) {
                fx_conv_runner_t *run;
                r.w = wrow;
                if (kh == 1u) {
                    /* 1-D: the channels are the rows of one window */
                    r.wlen = g.wsize;
                    r.rowlen = g.wsize;
                    r.xrow = g.hw - kw;
                    r.xch = 0u;
                    r.wch = 0u;
                    run = kw == 1u ? fx_conv_run_strided : fx_conv_rows_runner(kw);
                } else {
                    r.rowlen = g.rw + kw;
                    r.wlen = g.wsize - g.ktaps + r.rowlen;
                    r.xrow = g.xrow_step - kw;
                    r.xch = g.hw - g.rx - kw;
                    r.wch = g.ktaps - r.rowlen;
                    if (g.nky == 3u && kh == 3u && kw == 3u) {
                        run = fx_conv_run_33;
                    } else if (g.nky == 5u && kh == 5u && kw == 5u) {
                        run = fx_conv_run_55;
                    } else {
                        run = fx_conv_rows_runner(kw);
                    }
                }
                run(&r, xrow + ixa, yp + oxa, (uint16_t)(oxb - oxa));
            }
            if (!full || !dense_w) {
                /* the border columns of this row, one window at a time */
                int32_t ix0 = -(int32_t)p->pl;
                for (ox = 0; ox < oxa; ++ox, ix0 += sw) {
                    fx_conv_window(&e, &g, xrow, wrow, ix0, yp + ox);
                }
                for (ox = oxb, ix0 = ixb; ox < ow; ++ox, ix0 += sw) {
                    fx_conv_window(&e, &g, xrow, wrow, ix0, yp + ox);
                }
            }
        }
        if (dense_w && oya < oyb && (oxa > 0u || oxb < ow)) {
            /* the border columns of the interior rows, each as a run down the column */
            const int16_t *const xtop = xg + (uint32_t)((int32_t)((uint32_t)oya * sh) - p->pt) * iw;
            int16_t *const ytop = yc + (uint32_t)oya * ow;
            const uint16_t n = (uint16_t)(oyb - oya);
            int32_t ix0 = -(int32_t)p->pl;
            fx_conv_set_rows(&g, kh);
            for (ox = 0; ox < ow; ++ox, ix0 += sw) {
                uint16_t kx0, kx1;
                if (ox == oxa && oxa < oxb) {
                    ox = oxb;    /* (the interior columns are done) */
                    ix0 = ixb;
                    if (ox == ow) {
                        break;
                    }
                }
                fx_tap_range(ix0, kw, 1u, (int32_t)iw, &kx0, &kx1);
                if (kx0 >= kx1) {
                    /* the windows lie entirely in the padding */
                    const int16_t v = fx_apply_act(&p->act, e.rq(e.bias));
                    int16_t *yq = ytop + ox;
                    uint16_t i = n;
                    for (;;) {
                        FX_STORE(*yq, v);
                        if (--i == 0u) {
                            break;
                        }
                        yq += ow;
                    }
                } else {
                    fx_conv_set_cols(&e, &g, (uint16_t)(kx1 - kx0));
                    e.w = wc + kx0;
                    fx_conv_edge_runner(e.kw)(&e, xtop + (ix0 + kx0), ytop + ox, n);
                }
            }
        }
    }
}

/* fx_conv.c - dense fixed-point convolution (1-D and 2-D, stride, padding, dilation, groups).
 *
 *   y[co, oy, ox] = act(requant(bias[co] + sum_{ci, ky, kx} x[ci, iy, ix] * w[co, ci', ky, kx],
 *                               shift[co]))
 *   iy = oy * sh - pt + ky * dh,  ix = ox * sw - pl + kx * dw  (outside the input: 0)
 *
 * Output rows are computed in three runs of columns: the left border, the interior and the right
 * border. In the interior (dilation 1 along the width) every window row holds all kw taps, so a
 * window is nch channels x nky rows of kw contiguous inputs, and one output channel's weights are
 * contiguous: the dot product is a walk of two pointers with FX_MAC_PP (on the MSP430 two
 * auto-increment moves into MACS/OP2 per product) and one pointer step between rows. Those runs go
 * through runners specialised by the kernel width (kw = 1..5 unrolled; 3x3 and 5x5 windows fully
 * unrolled per channel), which loop over the run's outputs themselves. Border windows (and every
 * window when dw > 1) take the general path: the valid tap range of the window, then row loops.
 * Rows whose window lies entirely in the padding give act(requant(bias)).
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

/* One run of interior outputs of an output row (consecutive columns, one output channel).
 * A window is nch channels x nky rows x kw taps; the weights it uses start at w, the inputs at
 * the window origin, which moves by sw inputs from one output to the next. */
typedef struct {
    const int16_t *w;       /* weight of the window's first tap */
    size_t wlen;            /* w + wlen is one past the window's last weight */
    size_t rowlen;          /* weights of one channel's nky rows (nky * kw) */
    size_t xrow;            /* x step from one past a row's last tap to the next row's first */
    size_t xch;             /* the same from a channel's last row to the next channel's first */
    size_t wch;             /* w step from one past a channel's last row to the next channel's */
    uint16_t kw;            /* taps per row (the generic runner) */
    uint16_t nrem;          /* (taps - 1) mod 4 (the strided runner: single-tap rows) */
    uint16_t sw;            /* x step between the window origins of consecutive outputs */
    int8_t shift;
    int32_t bias;
    const fx_act_t *act;
} fx_conv_run_t;

typedef void fx_conv_runner_t(const fx_conv_run_t *r, const int16_t *xo, int16_t *yp, uint16_t n);

/* ---- window bodies: the products of one window, between FX_MAC_BEGIN and FX_MAC_END ---------
 * They use the runner's locals: xp, wp (window origin, first weight), wend, rowlen, xrow, xch,
 * wch, kw, nrem. */
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

/* Single-tap rows with one step xrow between all of them (1x1 kernels: the input channels),
 * unrolled four times after the (taps - 1) mod 4 first steps. */
#define FX_WIN_STRIDED                                                       \
    FX_PP;                                                                   \
    if (nrem & 1u) {                                                         \
        xp += xrow;                                                          \
        FX_PP;                                                               \
    }                                                                        \
    if (nrem & 2u) {                                                         \
        xp += xrow;                                                          \
        FX_PP;                                                               \
        xp += xrow;                                                          \
        FX_PP;                                                               \
    }                                                                        \
    if (wp != wend) {                                                        \
        for (;;) {                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            xp += xrow;                                                      \
            FX_PP;                                                           \
            if (wp == wend) {                                                \
                break;                                                       \
            }                                                                \
        }                                                                    \
    }

/* A runner: n >= 1 consecutive outputs of one row, the first window at xo, written from yp on. */
#define FX_CONV_RUNNER(name, WINDOW)                                         \
    static void name(const fx_conv_run_t *r, const int16_t *xo, int16_t *yp, uint16_t n) \
    {                                                                        \
        const int16_t *const w0 = r->w;                                      \
        const int16_t *const wend = w0 + r->wlen;                            \
        const size_t rowlen = r->rowlen, xrow = r->xrow, xch = r->xch, wch = r->wch; \
        const uint16_t kw = r->kw, nrem = r->nrem, sw = r->sw;               \
        const int32_t bias = r->bias;                                        \
        const int8_t shift = r->shift;                                       \
        (void)rowlen;                                                        \
        (void)xch;                                                           \
        (void)wch;                                                           \
        (void)kw;                                                            \
        (void)nrem;                                                          \
        for (;;) {                                                           \
            const int16_t *xp = xo, *wp = w0;                                \
            int32_t acc;                                                     \
            {                                                                \
                FX_MAC_BEGIN(bias);                                          \
                WINDOW;                                                      \
                acc = FX_MAC_END();                                          \
            }                                                                \
            FX_STORE(*yp, fx_apply_act(r->act, fx_requant(acc, shift)));     \
            if (--n == 0u) {                                                 \
                break;                                                       \
            }                                                                \
            ++yp;                                                            \
            xo += sw;                                                        \
        }                                                                    \
    }

FX_CONV_RUNNER(fx_conv_run_strided, FX_WIN_STRIDED)
FX_CONV_RUNNER(fx_conv_run_k1, FX_WIN_ROWS(FX_PP))
FX_CONV_RUNNER(fx_conv_run_k2, FX_WIN_ROWS(FX_ROW2))
FX_CONV_RUNNER(fx_conv_run_k3, FX_WIN_ROWS(FX_ROW3))
FX_CONV_RUNNER(fx_conv_run_k4, FX_WIN_ROWS(FX_ROW4))
FX_CONV_RUNNER(fx_conv_run_k5, FX_WIN_ROWS(FX_ROW5))
FX_CONV_RUNNER(fx_conv_run_kn, FX_WIN_ROWS(FX_ROWK))
FX_CONV_RUNNER(fx_conv_run_33, FX_WIN_33)
FX_CONV_RUNNER(fx_conv_run_55, FX_WIN_55)

/* Rows of kw taps, any number of them per channel. */
static fx_conv_runner_t *fx_conv_rows_runner(uint16_t kw)
{
    switch (kw) {
    case 1:
        return fx_conv_run_k1;
    case 2:
        return fx_conv_run_k2;
    case 3:
        return fx_conv_run_k3;
    case 4:
        return fx_conv_run_k4;
    case 5:
        return fx_conv_run_k5;
    default:
        return fx_conv_run_kn;
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
    r.xch = 0u;
    r.wch = 0u;
    r.kw = 1u;
    r.nrem = (uint16_t)((cin_g - 1u) & 3u);
    r.sw = 1u;
    r.act = &p->act;
    for (co = co0; co < co1; ++co) {
        const int16_t *xp = x + (uint32_t)(co / cout_g) * cin_g * hw + pix0;
        int16_t *yp = y + (uint32_t)co * ohw + pix0;
        uint16_t oy = oy0;
        r.w = p->w + (uint32_t)co * cin_g;
        r.bias = p->bias[co];
        r.shift = p->shift[co];
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

/* What the general path needs, computed once per call. */
typedef struct {
    size_t hw;              /* ih * iw: input step between channels */
    size_t ktaps;           /* kh * kw: weight step between channels */
    size_t xrow_step;       /* dh * iw: input step between kernel rows */
    uint16_t cin_g, kw, dw, iw;
} fx_conv_geo_t;

/* The general path: one output whose window may be cut by the input's edges. xrow is the input
 * row of tap ky0 (nky >= 1 valid rows from there), wrow the weights of that row, ix0 the input
 * column of tap 0. */
static int32_t fx_conv_window(const fx_conv_geo_t *g, const int16_t *xrow, const int16_t *wrow,
                              uint16_t nky, int32_t ix0, int32_t bias)
{
    const uint16_t kw = g->kw, dw = g->dw;
    const size_t hw = g->hw, ktaps = g->ktaps, xrow_step = g->xrow_step;
    uint16_t kx0, kx1, nkx, ci;
    const int16_t *xs, *ws;
    int32_t acc;

    fx_tap_range(ix0, kw, dw, (int32_t)g->iw, &kx0, &kx1);
    if (kx0 >= kx1) {
        return bias;    /* the window lies entirely in the padding */
    }
    nkx = (uint16_t)(kx1 - kx0);
    xs = xrow + (ix0 + (int32_t)((uint32_t)kx0 * dw));
    ws = wrow + kx0;
    ci = g->cin_g;
    {
        FX_MAC_BEGIN(bias);
        for (;;) {
            const int16_t *xr = xs, *wr = ws;
            uint16_t ky = nky;
            for (;;) {
                const int16_t *xp = xr, *wp = wr;
                const int16_t *const wend = wr + nkx;
                if (dw == 1u) {
                    do {
                        FX_PP;
                    } while (wp != wend);
                } else {
                    for (;;) {
                        FX_MAC(*xp, *wp);
                        if (++wp == wend) {
                            break;
                        }
                        xp += dw;
                    }
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
    }
    return acc;
}

void fx_conv(const fx_conv_t *p, const int16_t *x, int16_t *y,
             uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    const uint16_t cin_g = (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = (uint16_t)(p->cout / p->group);
    const uint16_t kh = p->kh, kw = p->kw, ow = p->ow, iw = p->iw, sw = p->sw;
    const uint32_t hw = (uint32_t)p->ih * iw;
    const uint32_t ktaps = (uint32_t)kh * kw;
    const uint32_t wsize = (uint32_t)cin_g * ktaps;        /* weights of one output channel */
    const uint32_t ohw = (uint32_t)p->oh * ow;
    const uint32_t xrow_step = (uint32_t)p->dh * iw;       /* input step from tap ky to ky + 1 */
    uint16_t oxa = 0, oxb = 0;                             /* interior columns [oxa, oxb) */
    int32_t ixa = 0, ixb = 0;                              /* input columns of their tap 0 */
    fx_conv_geo_t g;
    fx_conv_run_t r;
    uint16_t co;

    if (co0 >= co1 || oy0 >= oy1 || ow == 0u) {
        return;
    }
    if (kh == 1u && kw == 1u && p->sh == 1u && sw == 1u && p->pt == 0u && p->pl == 0u
        && ow == iw && oy1 <= p->ih) {
        fx_conv_pointwise(p, x, y, co0, co1, oy0, oy1);
        return;
    }

    /* Interior columns: ix0 = ox * sw - pl with 0 <= ix0 and ix0 + kw <= iw (dilation 1). */
    if (p->dw == 1u && kw <= iw) {
        const uint32_t last = (uint32_t)iw - kw + p->pl;   /* largest ox * sw of the interior */
        uint32_t a = p->pl, b = last + 1u;                 /* ox * sw in [a, b) */
        if (sw != 1u) {
            a = (a + sw - 1u) / sw;
            b = last / sw + 1u;
        }
        if (b > ow) {
            b = ow;
        }
        if (a < b) {
            oxa = (uint16_t)a;
            oxb = (uint16_t)b;
            ixa = (int32_t)((uint32_t)oxa * sw) - p->pl;
            ixb = (int32_t)((uint32_t)oxb * sw) - p->pl;
        }
    }
    g.hw = (size_t)hw;
    g.ktaps = (size_t)ktaps;
    g.xrow_step = (size_t)xrow_step;
    g.cin_g = cin_g;
    g.kw = kw;
    g.dw = p->dw;
    g.iw = iw;
    r.kw = kw;
    r.nrem = (uint16_t)((cin_g - 1u) & 3u);
    r.sw = sw;
    r.act = &p->act;

    for (co = co0; co < co1; ++co) {
        const int16_t *const wc = p->w + (uint32_t)co * wsize;
        const int16_t *const xg = x + (uint32_t)(co / cout_g) * cin_g * hw;
        int16_t *yp = y + (uint32_t)co * ohw + (uint32_t)oy0 * ow;
        const int32_t bias = p->bias[co];
        const int8_t shift = p->shift[co];
        int32_t iy0 = (int32_t)((uint32_t)oy0 * p->sh) - p->pt;
        uint16_t oy;
        r.bias = bias;
        r.shift = shift;
        for (oy = oy0; oy < oy1; ++oy, iy0 += p->sh) {
            uint16_t ky0, ky1, nky, ox;
            const int16_t *xrow, *wrow;
            int32_t ix0;
            fx_tap_range(iy0, kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
            if (ky0 >= ky1) {
                /* every window of the row lies entirely in the padding */
                const int16_t v = fx_apply_act(&p->act, fx_requant(bias, shift));
                for (ox = 0; ox < ow; ++ox) {
                    FX_STORE(yp[ox], v);
                }
                yp += ow;
                continue;
            }
            nky = (uint16_t)(ky1 - ky0);
            xrow = xg + (uint32_t)(iy0 + (int32_t)((uint32_t)ky0 * p->dh)) * iw;
            wrow = wc + (uint32_t)ky0 * kw;
            /* left border */
            ix0 = -(int32_t)p->pl;
            for (ox = 0; ox < oxa; ++ox, ix0 += sw) {
                FX_STORE(yp[ox], fx_apply_act(&p->act,
                                              fx_requant(fx_conv_window(&g, xrow, wrow, nky, ix0,
                                                                        bias), shift)));
            }
            /* interior */
            if (oxa < oxb) {
                fx_conv_runner_t *run;
                r.w = wrow;
                if (kh == 1u) {
                    /* 1-D: the channels are the rows of one window */
                    r.wlen = (size_t)wsize;
                    r.rowlen = (size_t)wsize;
                    r.xrow = (size_t)(hw - kw);
                    r.xch = 0u;
                    r.wch = 0u;
                    run = kw == 1u ? fx_conv_run_strided : fx_conv_rows_runner(kw);
                } else {
                    r.wlen = (size_t)(wsize - ktaps + (uint32_t)nky * kw);
                    r.rowlen = (size_t)((uint32_t)nky * kw);
                    r.xrow = (size_t)(xrow_step - kw);
                    r.xch = (size_t)(hw - (uint32_t)(nky - 1u) * xrow_step - kw);
                    r.wch = (size_t)(ktaps - r.rowlen);
                    if (nky == 3u && kh == 3u && kw == 3u) {
                        run = fx_conv_run_33;
                    } else if (nky == 5u && kh == 5u && kw == 5u) {
                        run = fx_conv_run_55;
                    } else {
                        run = fx_conv_rows_runner(kw);
                    }
                }
                run(&r, xrow + ixa, yp + oxa, (uint16_t)(oxb - oxa));
                ox = oxb;
                ix0 = ixb;
            }
            /* right border */
            for (; ox < ow; ++ox, ix0 += sw) {
                FX_STORE(yp[ox], fx_apply_act(&p->act,
                                              fx_requant(fx_conv_window(&g, xrow, wrow, nky, ix0,
                                                                        bias), shift)));
            }
            yp += ow;
        }
    }
}

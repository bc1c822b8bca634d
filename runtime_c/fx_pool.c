/* fx_pool.c - max and average pooling over [c][ih][iw] -> [c][oh][ow].
 *
 * Window positions outside the input are skipped (maxpool) or count as zeros only through the
 * divisor (avgpool, count_include_pad = 1). The output shape comes from the caller (oh, ow), so
 * ceil_mode windows that reach past the padded extent are handled like any other window.
 * A window with no position inside the input gives INT16_MIN (maxpool; the max of an empty set is
 * -inf, saturated) and 0 (avgpool, whose sum is then 0).
 *
 * Windows that lie entirely inside the input (the interior rows and columns, fx_inside_range;
 * dilation 1 along the width) take a fast path: plain pointer walks, 2x2 windows unrolled, and
 * for avgpool the divisor kh * kw known in advance (a power of two divides by a rounding shift,
 * fx_requant). The other windows compute their valid tap range first (fx_tap_range).
 */
#include <stddef.h>

#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"
#include "fx_window.h"

/* floor((2 * sum + n) / (2 * n)): the mean rounded half up, with floor division. Needs n >= 1
 * and |sum| <= 32768 * n, n <= 32767, so 2 * sum + n fits in int32_t. */
static int16_t fx_divround(int32_t sum, int32_t n)
{
    const int32_t num = 2 * sum + n;
    const int32_t d = 2 * n;
    int32_t q;
    if (num >= 0) {
        q = num / d;
    } else {
        q = -((-num + d - 1) / d);
    }
    return (int16_t)q;
}

/* log2(n) when n is a power of two (n >= 1), else -1. */
static int8_t fx_log2_exact(uint32_t n)
{
    int8_t k = 0;
    while (n > 1u && (n & 1u) == 0u) {
        n >>= 1;
        ++k;
    }
    return n == 1u ? k : (int8_t)-1;
}

/* What both pooling kernels need about one call. */
typedef struct {
    size_t hw, ohw;
    size_t xrow_step;                  /* dh * iw: input step between window rows */
    uint16_t iw;
    uint16_t oxa, oxb, oya, oyb;       /* the interior: every window position inside the input */
    int32_t ixa, ixb;                  /* input columns of tap 0 of oxa and oxb */
} fx_pool_geo_t;

static void fx_pool_geo(const fx_pool_t *p, fx_pool_geo_t *g)
{
    g->hw = (size_t)((uint32_t)p->ih * p->iw);
    g->ohw = (size_t)((uint32_t)p->oh * p->ow);
    g->xrow_step = (size_t)((uint32_t)p->dh * p->iw);
    g->iw = p->iw;
    g->oxa = g->oxb = 0u;
    if (p->dw == 1u) {
        fx_inside_range(p->iw, p->kw, p->sw, 1u, p->pl, p->ow, &g->oxa, &g->oxb);
    }
    g->ixa = (int32_t)((uint32_t)g->oxa * p->sw) - p->pl;
    g->ixb = (int32_t)((uint32_t)g->oxb * p->sw) - p->pl;
    fx_inside_range(p->ih, p->kh, p->sh, p->dh, p->pt, p->oh, &g->oya, &g->oyb);
}

/* ---- maxpool ---- */

/* n >= 1 interior outputs of one row: windows of kh rows of kw contiguous inputs from xo,
 * sw apart. */
static FX_NOINLINE void fx_maxpool_run(const fx_pool_t *p, const fx_pool_geo_t *g, const int16_t *xo,
                           int16_t *yp, uint16_t n)
{
    const uint16_t kh = p->kh, kw = p->kw, sw = p->sw;
    const size_t xrow_step = g->xrow_step;
    if (kh == 2u && kw == 2u) {
        const int16_t *x1 = xo + xrow_step;
        for (;;) {
            int16_t m = xo[0], v = xo[1];
            if (v > m) {
                m = v;
            }
            v = x1[0];
            if (v > m) {
                m = v;
            }
            v = x1[1];
            if (v > m) {
                m = v;
            }
            FX_STORE(*yp, m);
            if (--n == 0u) {
                break;
            }
            ++yp;
            xo += sw;
            x1 += sw;
        }
        return;
    }
    for (;;) {
        const int16_t *xr = xo;
        int16_t m = INT16_MIN;
        uint16_t ky = kh;
        for (;;) {
            const int16_t *xp = xr;
            const int16_t *const xe = xr + kw;
            do {
                const int16_t v = *xp;
                if (v > m) {
                    m = v;
                }
            } while (++xp != xe);
            if (--ky == 0u) {
                break;
            }
            xr += xrow_step;
        }
        FX_STORE(*yp, m);
        if (--n == 0u) {
            break;
        }
        ++yp;
        xo += sw;
    }
}

/* The valid kernel rows of an output row: nky rows from the input row xrow (the first valid one);
 * nky == 0 when the row's windows lie entirely outside the input. */
static const int16_t *fx_pool_rows(const fx_pool_t *p, const fx_pool_geo_t *g, const int16_t *xc,
                                   int32_t iy0, uint16_t *nky)
{
    uint16_t ky0, ky1;
    fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
    if (ky0 >= ky1) {
        *nky = 0u;
        return xc;
    }
    *nky = (uint16_t)(ky1 - ky0);
    return xc + (uint32_t)(iy0 + (int32_t)((uint32_t)ky0 * p->dh)) * g->iw;
}

/* The valid taps of one window along x: kx0 (its input column at *xs) and their count
 * (0 when none is inside the input). */
static uint16_t fx_pool_cols(const fx_pool_t *p, const int16_t *xrow, int32_t ix0,
                             const int16_t **xs)
{
    uint16_t kx0, kx1;
    fx_tap_range(ix0, p->kw, p->dw, (int32_t)p->iw, &kx0, &kx1);
    if (kx0 >= kx1) {
        return 0u;
    }
    *xs = xrow + (ix0 + (p->dw == 1u ? (int32_t)kx0 : (int32_t)((uint32_t)kx0 * p->dw)));
    return (uint16_t)(kx1 - kx0);
}

/* One window that may be cut by the input's edges: nky rows from xrow, tap 0 at column ix0. */
static FX_NOINLINE int16_t fx_maxpool_window(const fx_pool_t *p, const fx_pool_geo_t *g, const int16_t *xrow,
                                 uint16_t nky, int32_t ix0)
{
    const uint16_t dw = p->dw;
    const int16_t *xr = xrow;
    int16_t m = INT16_MIN;
    uint16_t nkx;
    if (nky == 0u || (nkx = fx_pool_cols(p, xrow, ix0, &xr)) == 0u) {
        return m;
    }
    for (;;) {
        const int16_t *xp = xr;
        uint16_t kx = nkx;
        for (;;) {
            if (*xp > m) {
                m = *xp;
            }
            if (--kx == 0u) {
                break;
            }
            xp += dw;
        }
        if (--nky == 0u) {
            break;
        }
        xr += g->xrow_step;
    }
    return m;
}

void fx_maxpool(const fx_pool_t *p, const int16_t *x, int16_t *y, uint16_t c0, uint16_t c1)
{
    fx_pool_geo_t g;
    uint16_t c;

    if (c0 >= c1 || p->ow == 0u) {
        return;
    }
    fx_pool_geo(p, &g);
    for (c = c0; c < c1; ++c) {
        const int16_t *const xc = x + (uint32_t)c * g.hw;
        int16_t *yp = y + (uint32_t)c * g.ohw;
        int32_t iy0 = -(int32_t)p->pt;
        uint16_t oy;
        for (oy = 0; oy < p->oh; ++oy, iy0 += p->sh, yp += p->ow) {
            uint16_t nky, ox = 0;
            int32_t ix0 = -(int32_t)p->pl;
            const int16_t *const xrow = fx_pool_rows(p, &g, xc, iy0, &nky);
            if (oy >= g.oya && oy < g.oyb && g.oxa < g.oxb) {
                for (; ox < g.oxa; ++ox, ix0 += p->sw) {
                    FX_STORE(yp[ox], fx_maxpool_window(p, &g, xrow, nky, ix0));
                }
                fx_maxpool_run(p, &g, xrow + g.ixa, yp + g.oxa, (uint16_t)(g.oxb - g.oxa));
                ox = g.oxb;
                ix0 = g.ixb;
            }
            for (; ox < p->ow; ++ox, ix0 += p->sw) {
                FX_STORE(yp[ox], fx_maxpool_window(p, &g, xrow, nky, ix0));
            }
        }
    }
}

/* ---- avgpool ---- */

/* n >= 1 interior outputs of one row (windows of kh x kw positions, all inside the input).
 * The sums run over x + 32768 (unsigned: a zero-extended add per input, no sign extension) and
 * drop n * 32768 at the end. */
static FX_NOINLINE void fx_avgpool_run(const fx_pool_t *p, const fx_pool_geo_t *g, const int16_t *xo,
                           int16_t *yp, uint16_t n)
{
    const uint16_t kh = p->kh, kw = p->kw, sw = p->sw;
    const size_t xrow_step = g->xrow_step;
    int32_t count, offset;
    int8_t log2n;
    fx_requant_fn_t *rq;
    if (kh == 2u && kw == 2u) {
        /* floor((sum + 2) / 4) = floor((su + 2) / 4) - 32768, su = sum + 4 * 32768 < 2^18 */
        const int16_t *x1 = xo + xrow_step;
        for (;;) {
            uint32_t su = (uint16_t)((uint16_t)xo[0] ^ 0x8000u);
            su += (uint16_t)((uint16_t)xo[1] ^ 0x8000u);
            su += (uint16_t)((uint16_t)x1[0] ^ 0x8000u);
            su += (uint16_t)((uint16_t)x1[1] ^ 0x8000u);
            FX_STORE(*yp, (int16_t)((int32_t)((su + 2u) >> 2) - 32768));
            if (--n == 0u) {
                break;
            }
            ++yp;
            xo += sw;
            x1 += sw;
        }
        return;
    }
    count = (int32_t)((uint32_t)kh * kw);
    offset = count * 32768;
    log2n = fx_log2_exact((uint32_t)count);
    rq = fx_requant_fn(log2n < 0 ? 0 : log2n);
    for (;;) {
        const int16_t *xr = xo;
        uint32_t su = 0;
        int32_t sum;
        uint16_t ky = kh;
        for (;;) {
            const int16_t *xp = xr;
            const int16_t *const xe = xr + kw;
            do {
                su += (uint16_t)((uint16_t)*xp ^ 0x8000u);
            } while (++xp != xe);
            if (--ky == 0u) {
                break;
            }
            xr += xrow_step;
        }
        sum = (int32_t)su - offset;
        /* divround(sum, 2^k) == requant(sum, k): floor(sum / 2^k + 1/2) */
        FX_STORE(*yp, log2n >= 0 ? rq(sum) : fx_divround(sum, count));
        if (--n == 0u) {
            break;
        }
        ++yp;
        xo += sw;
    }
}

/* One window that may be cut by the input's edges (or by the padded extent, for the count). */
static FX_NOINLINE int16_t fx_avgpool_window(const fx_pool_t *p, const fx_pool_geo_t *g, const int16_t *xrow,
                                 uint16_t nky, uint16_t pny, int32_t ix0)
{
    const uint16_t dw = p->dw;
    const int16_t *xr = xrow;
    int32_t sum = 0, n;
    const uint16_t nkx = nky == 0u ? 0u : fx_pool_cols(p, xrow, ix0, &xr);
    if (nkx != 0u) {
        uint16_t ky = nky;
        for (;;) {
            const int16_t *xp = xr;
            uint16_t kx = nkx;
            for (;;) {
                sum += *xp;
                if (--kx == 0u) {
                    break;
                }
                xp += dw;
            }
            if (--ky == 0u) {
                break;
            }
            xr += g->xrow_step;
        }
    }
    if (p->count_include_pad) {
        /* the positions inside the padded extent [-pl, iw + pr), shifted to start at 0 */
        uint16_t pkx0, pkx1;
        fx_tap_range(ix0 + p->pl, p->kw, dw, (int32_t)p->iw + p->pl + p->pr, &pkx0, &pkx1);
        n = (int32_t)pny * (int32_t)(pkx1 - pkx0);
    } else {
        n = (int32_t)nky * (int32_t)nkx;
    }
    return n > 0 ? fx_divround(sum, n) : 0;
}

void fx_avgpool(const fx_pool_t *p, const int16_t *x, int16_t *y, uint16_t c0, uint16_t c1)
{
    /* The padded extent along y, [-pt, ih + pb), shifted to start at 0. */
    const int32_t ph = (int32_t)p->ih + p->pt + p->pb;
    fx_pool_geo_t g;
    uint16_t c;

    if (c0 >= c1 || p->ow == 0u) {
        return;
    }
    fx_pool_geo(p, &g);
    for (c = c0; c < c1; ++c) {
        const int16_t *const xc = x + (uint32_t)c * g.hw;
        int16_t *yp = y + (uint32_t)c * g.ohw;
        int32_t iy0 = -(int32_t)p->pt;
        uint16_t oy;
        for (oy = 0; oy < p->oh; ++oy, iy0 += p->sh, yp += p->ow) {
            uint16_t nky, pky0, pky1, pny, ox = 0;
            int32_t ix0 = -(int32_t)p->pl;
            const int16_t *const xrow = fx_pool_rows(p, &g, xc, iy0, &nky);
            fx_tap_range(iy0 + p->pt, p->kh, p->dh, ph, &pky0, &pky1);
            pny = (uint16_t)(pky1 - pky0);
            if (oy >= g.oya && oy < g.oyb && g.oxa < g.oxb) {
                for (; ox < g.oxa; ++ox, ix0 += p->sw) {
                    FX_STORE(yp[ox], fx_avgpool_window(p, &g, xrow, nky, pny, ix0));
                }
                fx_avgpool_run(p, &g, xrow + g.ixa, yp + g.oxa, (uint16_t)(g.oxb - g.oxa));
                ox = g.oxb;
                ix0 = g.ixb;
            }
            for (; ox < p->ow; ++ox, ix0 += p->sw) {
                FX_STORE(yp[ox], fx_avgpool_window(p, &g, xrow, nky, pny, ix0));
            }
        }
    }
}

/* fx_pool.c - max and average pooling over [c][ih][iw] -> [c][oh][ow].
 *
 * Window positions outside the input are skipped (maxpool) or count as zeros only through the
 * divisor (avgpool, count_include_pad = 1). The output shape comes from the caller (oh, ow), so
 * ceil_mode windows that reach past the padded extent are handled like any other window.
 * A window with no position inside the input gives INT16_MIN (maxpool; the max of an empty set is
 * -inf, saturated) and 0 (avgpool, whose sum is then 0).
 */
#include "fx_kernels.h"
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

void fx_maxpool(const fx_pool_t *p, const int16_t *x, int16_t *y, uint16_t c0, uint16_t c1)
{
    const uint32_t hw = (uint32_t)p->ih * p->iw;
    const uint32_t ohw = (uint32_t)p->oh * p->ow;
    const uint32_t xrow_step = (uint32_t)p->dh * p->iw;
    uint16_t c;

    for (c = c0; c < c1; ++c) {
        const int16_t *xc = x + (uint32_t)c * hw;
        int16_t *yp = y + (uint32_t)c * ohw;
        uint16_t oy;
        for (oy = 0; oy < p->oh; ++oy) {
            const int32_t iy0 = (int32_t)oy * p->sh - p->pt;
            uint16_t ky0, ky1, ox;
            fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
            for (ox = 0; ox < p->ow; ++ox) {
                const int32_t ix0 = (int32_t)ox * p->sw - p->pl;
                uint16_t kx0, kx1;
                int16_t m = INT16_MIN;
                fx_tap_range(ix0, p->kw, p->dw, (int32_t)p->iw, &kx0, &kx1);
                if (ky0 < ky1 && kx0 < kx1) {
                    const int16_t *xr = xc + (uint32_t)(iy0 + (int32_t)ky0 * p->dh) * p->iw
                                        + (ix0 + (int32_t)kx0 * p->dw);
                    uint16_t ky = (uint16_t)(ky1 - ky0);
                    for (;;) {
                        const int16_t *xp = xr;
                        uint16_t kx = (uint16_t)(kx1 - kx0);
                        for (;;) {
                            if (*xp > m) {
                                m = *xp;
                            }
                            if (--kx == 0u) {
                                break;
                            }
                            xp += p->dw;
                        }
                        if (--ky == 0u) {
                            break;
                        }
                        xr += xrow_step;
                    }
                }
                FX_STORE(*yp, m);
                ++yp;
            }
        }
    }
}

void fx_avgpool(const fx_pool_t *p, const int16_t *x, int16_t *y, uint16_t c0, uint16_t c1)
{
    const uint32_t hw = (uint32_t)p->ih * p->iw;
    const uint32_t ohw = (uint32_t)p->oh * p->ow;
    const uint32_t xrow_step = (uint32_t)p->dh * p->iw;
    /* The padded extent [-pt, ih + pb) x [-pl, iw + pr), shifted to start at 0. */
    const int32_t ph = (int32_t)p->ih + p->pt + p->pb;
    const int32_t pw = (int32_t)p->iw + p->pl + p->pr;
    uint16_t c;

    for (c = c0; c < c1; ++c) {
        const int16_t *xc = x + (uint32_t)c * hw;
        int16_t *yp = y + (uint32_t)c * ohw;
        uint16_t oy;
        for (oy = 0; oy < p->oh; ++oy) {
            const int32_t iy0 = (int32_t)oy * p->sh - p->pt;
            uint16_t ky0, ky1, pky0, pky1, ox;
            fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
            fx_tap_range(iy0 + p->pt, p->kh, p->dh, ph, &pky0, &pky1);
            for (ox = 0; ox < p->ow; ++ox) {
                const int32_t ix0 = (int32_t)ox * p->sw - p->pl;
                uint16_t kx0, kx1;
                int32_t sum = 0, n;
                int16_t v = 0;
                fx_tap_range(ix0, p->kw, p->dw, (int32_t)p->iw, &kx0, &kx1);
                if (ky0 < ky1 && kx0 < kx1) {
                    const int16_t *xr = xc + (uint32_t)(iy0 + (int32_t)ky0 * p->dh) * p->iw
                                        + (ix0 + (int32_t)kx0 * p->dw);
                    uint16_t ky = (uint16_t)(ky1 - ky0);
                    for (;;) {
                        const int16_t *xp = xr;
                        uint16_t kx = (uint16_t)(kx1 - kx0);
                        for (;;) {
                            sum += *xp;
                            if (--kx == 0u) {
                                break;
                            }
                            xp += p->dw;
                        }
                        if (--ky == 0u) {
                            break;
                        }
                        xr += xrow_step;
                    }
                }
                if (p->count_include_pad) {
                    uint16_t pkx0, pkx1;
                    fx_tap_range(ix0 + p->pl, p->kw, p->dw, pw, &pkx0, &pkx1);
                    n = (int32_t)(pky1 - pky0) * (int32_t)(pkx1 - pkx0);
                } else {
                    n = (int32_t)(ky1 - ky0) * (int32_t)(kx1 - kx0);
                }
                if (n > 0) {
                    v = fx_divround(sum, n);
                }
                FX_STORE(*yp, v);
                ++yp;
            }
        }
    }
}

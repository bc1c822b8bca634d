/* fx_conv.c - dense fixed-point convolution (1-D and 2-D, stride, padding, dilation, groups).
 *
 *   y[co, oy, ox] = act(requant(bias[co] + sum_{ci, ky, kx} x[ci, iy, ix] * w[co, ci', ky, kx],
 *                               shift[co]))
 *   iy = oy * sh - pt + ky * dh,  ix = ox * sw - pl + kx * dw  (outside the input: 0)
 *
 * Bounds are handled once per output position: the valid tap range [ky0, ky1) x [kx0, kx1) is
 * computed before the accumulation, so the inner loop is a plain pointer walk (with dilation 1
 * along the width: two auto-increment moves into MACS/OP2, compare with the end, branch). Depthwise convolution (cin / group == 1) runs the same loops with one
 * input channel; pointwise 1x1 convolutions without padding or stride take a shorter path.
 *
 * Between FX_MAC_BEGIN and FX_MAC_END the code only adds to pointers and counts down: on the
 * MSP430 the accumulator lives in the MPY32 result registers, which a compiled `*` would clobber.
 * Loops advance a pointer only when another iteration follows, so no pointer ever leaves its
 * array (not even "one past the end" by more than one element).
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"
#include "fx_window.h"

/* 1x1, stride 1, no top/left padding, one output row = one input row: output pixel i of a
 * channel reads input pixel i of every input channel of its group. */
static void fx_conv_pointwise(const fx_conv_t *p, const int16_t *x, int16_t *y,
                              uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    const uint16_t cin_g = (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = (uint16_t)(p->cout / p->group);
    const uint32_t hw = (uint32_t)p->ih * p->iw;
    const uint32_t ohw = (uint32_t)p->oh * p->ow;
    const uint32_t pix0 = (uint32_t)oy0 * p->ow;
    const uint32_t npix = (uint32_t)(oy1 - oy0) * p->ow;
    uint16_t co;

    for (co = co0; co < co1; ++co) {
        const int16_t *wc = p->w + (uint32_t)co * cin_g;
        const int16_t *xg = x + (uint32_t)(co / cout_g) * cin_g * hw + pix0;
        int16_t *yp = y + (uint32_t)co * ohw + pix0;
        const int32_t bias = p->bias[co];
        const int8_t shift = p->shift[co];
        uint32_t i;
        for (i = 0; i < npix; ++i) {
            int32_t acc;
            const int16_t *xp = xg + i;
            const int16_t *wp = wc;
            const int16_t *const wend = wc + cin_g;
            {
                FX_MAC_BEGIN(bias);
                FX_MAC(*xp, *wp);
                ++wp;
                while (wp != wend) {    /* next input channel: the same pixel, hw further */
                    xp += hw;
                    FX_MAC(*xp, *wp);
                    ++wp;
                }
                acc = FX_MAC_END();
            }
            FX_STORE(yp[i], fx_apply_act(&p->act, fx_requant(acc, shift)));
        }
    }
}

void fx_conv(const fx_conv_t *p, const int16_t *x, int16_t *y,
             uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    const uint16_t cin_g = (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = (uint16_t)(p->cout / p->group);
    const uint32_t hw = (uint32_t)p->ih * p->iw;
    const uint32_t ktaps = (uint32_t)p->kh * p->kw;
    const uint32_t wsize = (uint32_t)cin_g * ktaps;        /* weights of one output channel */
    const uint32_t ohw = (uint32_t)p->oh * p->ow;
    const uint32_t xrow_step = (uint32_t)p->dh * p->iw;    /* input step from tap ky to ky + 1 */
    const uint16_t kw = p->kw, dw = p->dw;
    uint16_t co;

    if (co0 >= co1 || oy0 >= oy1 || p->ow == 0u) {
        return;
    }
    if (p->kh == 1u && p->kw == 1u && p->sh == 1u && p->sw == 1u && p->pt == 0u && p->pl == 0u
        && p->ow == p->iw && oy1 <= p->ih) {
        fx_conv_pointwise(p, x, y, co0, co1, oy0, oy1);
        return;
    }

    for (co = co0; co < co1; ++co) {
        const int16_t *wc = p->w + (uint32_t)co * wsize;
        const int16_t *xg = x + (uint32_t)(co / cout_g) * cin_g * hw;
        int16_t *yp = y + (uint32_t)co * ohw + (uint32_t)oy0 * p->ow;
        const int32_t bias = p->bias[co];
        const int8_t shift = p->shift[co];
        uint16_t oy;
        for (oy = oy0; oy < oy1; ++oy) {
            const int32_t iy0 = (int32_t)oy * p->sh - p->pt;
            uint16_t ky0, ky1, ox;
            const int16_t *xrow = xg;    /* input row of tap ky0 (valid when ky0 < ky1) */
            const int16_t *wrow = wc;    /* weight row of tap ky0 */
            fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &ky0, &ky1);
            if (ky0 < ky1) {
                xrow = xg + (uint32_t)(iy0 + (int32_t)ky0 * p->dh) * p->iw;
                wrow = wc + (uint32_t)ky0 * kw;
            }
            for (ox = 0; ox < p->ow; ++ox) {
                const int32_t ix0 = (int32_t)ox * p->sw - p->pl;
                uint16_t kx0, kx1;
                int32_t acc;
                fx_tap_range(ix0, kw, dw, (int32_t)p->iw, &kx0, &kx1);
                if (ky0 < ky1 && kx0 < kx1) {
                    const uint16_t nky = (uint16_t)(ky1 - ky0), nkx = (uint16_t)(kx1 - kx0);
                    const int16_t *xs = xrow + (ix0 + (int32_t)kx0 * dw);
                    const int16_t *ws = wrow + kx0;
                    uint16_t ci = cin_g;
                    FX_MAC_BEGIN(bias);
                    for (;;) {
                        const int16_t *xr = xs, *wr = ws;
                        uint16_t ky = nky;
                        for (;;) {
                            const int16_t *xp = xr, *wp = wr;
                            const int16_t *const wend = wr + nkx;
                            if (dw == 1u) {
                                /* 4 instructions per MAC on the MSP430 (two auto-increment
                                 * moves, compare, branch). */
                                do {
                                    FX_MAC(*xp, *wp);
                                    ++xp;
                                    ++wp;
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
                } else {
                    acc = bias;    /* the window lies entirely in the padding */
                }
                FX_STORE(*yp, fx_apply_act(&p->act, fx_requant(acc, shift)));
                ++yp;
            }
        }
    }
}

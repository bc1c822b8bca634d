/* fx_fc.c - dense fully connected layer.
 *
 *   y[n] = act(requant(bias[n] + sum_k x[k] * w[n][k], shift[n]))
 *
 * The weight table may exceed 65535 elements (784 x 256): it is walked by one pointer that
 * runs through the rows of the tile, so no index into it is ever formed in 16-bit arithmetic.
 *
 * The dot product is FX_MAC_PP unrolled eight times: on the MSP430 two auto-increment moves per
 * product into MACS/OP2, plus a compare and a branch per eight (2.25 instructions per MAC). The
 * k mod 8 remaining products follow the unrolled loop, which ends on a pointer compare.
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"

void fx_fc(const fx_fc_t *p, const int16_t *x, int16_t *y, uint16_t n0, uint16_t n1)
{
    const uint16_t k = p->k;
    const uint16_t rem = (uint16_t)(k & 7u);
    const int16_t *const xend = x + (k - rem);    /* end of the unrolled part */
    const int16_t *wp;
    uint16_t n;

    if (n0 >= n1) {
        return;
    }
    wp = p->w + (uint32_t)n0 * k;
    for (n = n0; n < n1; ++n) {
        int32_t acc;
        const int16_t *xp = x;
        FX_MAC_BEGIN(p->bias[n]);
        if (xp != xend) {
            for (;;) {    /* the test at the bottom: one compare and branch per eight */
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                FX_MAC_PP(xp, wp);
                if (xp == xend) {
                    break;
                }
            }
        }
        if (rem & 1u) {
            FX_MAC_PP(xp, wp);
        }
        if (rem & 2u) {
            FX_MAC_PP(xp, wp);
            FX_MAC_PP(xp, wp);
        }
        if (rem & 4u) {
            FX_MAC_PP(xp, wp);
            FX_MAC_PP(xp, wp);
            FX_MAC_PP(xp, wp);
            FX_MAC_PP(xp, wp);
        }
        acc = FX_MAC_END();
        FX_STORE(y[n], fx_apply_act(&p->act, fx_requant(acc, p->shift[n])));
    }
}

/* fx_fc.c - dense fully connected layer.
 *
 *   y[n] = act(requant(bias[n] + sum_k x[k] * w[n][k], shift[n]))
 *
 * The weight table may exceed 65535 elements (784 x 256): it is walked by one pointer that
 * runs through the rows of the tile, so no index into it is ever formed in 16-bit arithmetic.
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"

void fx_fc(const fx_fc_t *p, const int16_t *x, int16_t *y, uint16_t n0, uint16_t n1)
{
    const uint16_t k = p->k;
    const int16_t *wp;
    uint16_t n;

    if (n0 >= n1) {
        return;
    }
    wp = p->w + (uint32_t)n0 * k;
    for (n = n0; n < n1; ++n) {
        int32_t acc;
        if (k != 0u) {
            const int16_t *xp = x;
            const int16_t *const wend = wp + k;    /* the next row starts here */
            FX_MAC_BEGIN(p->bias[n]);
            do {
                FX_MAC(*xp, *wp);
                ++xp;
                ++wp;
            } while (wp != wend);
            acc = FX_MAC_END();
        } else {
            acc = p->bias[n];
        }
        FX_STORE(y[n], fx_apply_act(&p->act, fx_requant(acc, p->shift[n])));
    }
}

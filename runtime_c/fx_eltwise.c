/* fx_eltwise.c - element-wise kernels: add, stand-alone activation, requantising copy (one input
 * of a concat) and argmax. Each element-wise kernel computes the elements [i0, i1).
 */
#include "fx_kernels.h"
#include "fx_store.h"

void fx_add(const fx_add_t *p, const int16_t *a, const int16_t *b, int16_t *y, uint32_t i0, uint32_t i1)
{
    /* a * 2^shift_a + b * 2^shift_b is exact in int32_t for shifts <= 15 (|sum| <= 2^31). */
    const int32_t ma = (int32_t)1 << p->shift_a;
    const int32_t mb = (int32_t)1 << p->shift_b;
    uint32_t i;
    for (i = i0; i < i1; ++i) {
        const int32_t acc = (int32_t)a[i] * ma + (int32_t)b[i] * mb;
        FX_STORE(y[i], fx_apply_act(&p->act, fx_requant(acc, p->shift)));
    }
}

void fx_act(const fx_act_t *a, const int16_t *x, int16_t *y, uint32_t i0, uint32_t i1)
{
    uint32_t i;
    for (i = i0; i < i1; ++i) {
        FX_STORE(y[i], fx_apply_act(a, x[i]));
    }
}

void fx_requant_copy(const int16_t *x, int16_t *y, int8_t shift, uint32_t i0, uint32_t i1)
{
    uint32_t i;
    if (shift == 0) {
        for (i = i0; i < i1; ++i) {
            FX_STORE(y[i], x[i]);
        }
        return;
    }
    for (i = i0; i < i1; ++i) {
        FX_STORE(y[i], fx_requant(x[i], shift));
    }
}

uint16_t fx_argmax(const int16_t *x, uint16_t n)
{
    uint16_t i, best = 0;
    for (i = 1; i < n; ++i) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}

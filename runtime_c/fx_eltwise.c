/* fx_eltwise.c - element-wise kernels: add, stand-alone activation, table function (lut),
 * requantising copy (one input of a concat) and argmax. Each element-wise kernel computes the
 * elements [i0, i1).
 */
#include "fx_kernels.h"
#include "fx_mac.h"
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

void fx_lut(const fx_lut_t *p, const int16_t *x, int16_t *y, uint32_t i0, uint32_t i1)
{
    const int16_t *const t = p->table;
    const uint8_t k = p->step;
    const uint16_t mask = (uint16_t)((1u << k) - 1u);
    const uint32_t end = (uint32_t)p->n << k;          /* a >= end: past the last segment */
    fx_requant_fn_t *const frac = fx_requant_fn((int8_t)k);
    fx_requant_fn_t *const out = fx_requant_fn(p->shift);
    uint32_t i;
    for (i = i0; i < i1; ++i) {
        const int16_t xi = x[i];
        /* |x| <= 32768 and x - base in [-65535, 65535]: a fits 17 bits */
        const int32_t a = p->mirror ? (xi < 0 ? -(int32_t)xi : (int32_t)xi) : (int32_t)xi - p->base;
        int16_t v;
        if (a < 0) {
            v = t[0];
        } else if ((uint32_t)a >= end) {
            v = t[p->n];
        } else {
            /* 0 <= a < 2^16 and a < end here; the difference of neighbours fits int16 and r < 2^15, so the
             * product fits 31 bits and the interpolated value lies between t[i] and t[i+1] */
            const uint16_t u = (uint16_t)a;
            const int16_t *const ti = t + (u >> k);
            const int16_t d = (int16_t)(ti[1] - ti[0]);
            v = (int16_t)(ti[0] + frac((int32_t)d * (int16_t)(u & mask)));
        }
        if (p->mirror && xi < 0) {
            const int32_t m = p->center - v;
            v = (int16_t)(m > INT16_MAX ? INT16_MAX : (m < INT16_MIN ? INT16_MIN : m));
        }
        FX_STORE(y[i], p->gate ? out((int32_t)xi * v) : v);
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

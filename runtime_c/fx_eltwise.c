/* fx_eltwise.c - element-wise kernels: add, mul, stand-alone activation, table function (lut),
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

void fx_mul(const fx_mul_t *p, const int16_t *a, const int16_t *b, int16_t *y, uint32_t i0, uint32_t i1)
{
    /* the product of two int16 is exact in int32 (at most 2^30); MPY32's MPYS forms it */
    fx_requant_fn_t *const out = fx_requant_fn(p->shift);
    const uint8_t kind = p->act.kind;
    uint32_t i;
    for (i = i0; i < i1; ++i) {
        int32_t acc;
        int16_t v;
        {
            FX_MAC_BEGIN(0);
            FX_MAC(a[i], b[i]);
            acc = FX_MAC_END();
        }
        v = out(acc);
        if (kind == FX_ACT_RELU) {          /* inline: the common case after a gate */
            v = v < 0 ? 0 : v;
        } else if (kind != FX_ACT_NONE) {
            v = fx_apply_act(&p->act, v);
        }
        FX_STORE(y[i], v);
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
    /* a * 2^(16 - step) = (i, r * 2^(16 - step)): the segment in the high half, the position in
     * the low one (one multiply instead of two variable shifts); with f = r * 2^(15 - step),
     * t[i] + requant(d * r, step) = t[i] + floor((2 * d * f + 2^15) / 2^16), the high half of
     * two multiply-accumulates */
    const uint16_t scale = (uint16_t)(1u << (16u - p->step));
    const uint32_t end = (uint32_t)p->n << p->step;                 /* a >= end: past the last segment */
    const uint16_t last = end > 0xFFFFu ? 0xFFFFu : (uint16_t)(end - 1u);  /* a > last: likewise */
    fx_requant_fn_t *const out = fx_requant_fn(p->shift);
    const uint8_t mirror = p->mirror, gate = p->gate;
    uint32_t i;
    for (i = i0; i < i1; ++i) {
        const int16_t xi = x[i];
        int16_t v;
        /* a = |x| (at most 32768) or x - base (below 0 when x < base, else at most 65535), in
         * 16-bit arithmetic */
        const uint16_t a = mirror ? (xi < 0 ? (uint16_t)(0u - (uint16_t)xi) : (uint16_t)xi)
                                  : (uint16_t)((uint16_t)xi - (uint16_t)p->base);
        if (!mirror && xi < p->base) {
            v = t[0];
        } else if (a > last) {
            v = t[p->n];
        } else {
            /* neighbours differ by at most 32767 and f < 2^15: 2 * d * f + 2^15 fits 32 bits and
             * its high half lies between 0 and d, so v lies between t[i] and t[i+1] */
            const int16_t *ti;
            int16_t f;
            uint16_t lo, hi;
            FX_UMUL16(a, scale, lo, hi);
            ti = t + hi;
            f = (int16_t)(lo >> 1);
            {
                const int16_t d = (int16_t)(ti[1] - ti[0]);
                FX_MAC_BEGIN(32768);
                FX_MAC(d, f);
                FX_MAC(d, f);
                FX_MAC_END_HALVES(lo, hi);
            }
            v = (int16_t)(ti[0] + (int16_t)hi);
        }
        if (mirror && xi < 0) {
            const int32_t m = p->center - v;
            v = (int16_t)(m > INT16_MAX ? INT16_MAX : (m < INT16_MIN ? INT16_MIN : m));
        }
        if (gate) {
            int32_t acc;
            {
                FX_MAC_BEGIN(0);
                FX_MAC(xi, v);
                acc = FX_MAC_END();
            }
            v = out(acc);
        }
        FX_STORE(y[i], v);
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

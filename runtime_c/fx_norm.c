/* fx_norm.c - normalisation over the last axis: layernorm (docs/lir.md, "layernorm").
 * Each call computes the rows [r0, r1); a row reads only its own input elements, so running it
 * twice writes the same bytes.
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"

/* floor(sqrt(v)), bit by bit */
static uint16_t fx_isqrt32(uint32_t v)
{
    uint32_t root = 0;
    uint32_t bit = (uint32_t)1 << 30;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (uint16_t)root;
}

static uint8_t fx_bitlen64(uint64_t v)
{
    uint8_t bits = 0;
    while (v >= ((uint64_t)1 << 16)) {
        v >>= 16;
        bits += 16;
    }
    while (v != 0) {
        v >>= 1;
        ++bits;
    }
    return bits;
}

/* d = n x - sum, |d| < n 2^16 <= 2^30: through the multiplier (n <= 16384 and x are int16) */
static int32_t fx_deviation(int16_t n, int16_t x, int32_t sum)
{
    int32_t d;
    {
        FX_MAC_BEGIN(-sum);
        FX_MAC(n, x);
        d = FX_MAC_END();
    }
    return d;
}

void fx_layernorm(const fx_layernorm_t *p, const int16_t *x, int16_t *y, uint16_t r0, uint16_t r1)
{
    const int16_t n = (int16_t)p->n;
    fx_requant_fn_t *const out = fx_requant_fn(p->shift);
    uint16_t r, j;
    for (r = r0; r < r1; ++r) {
        const int16_t *const xr = x + (uint32_t)r * p->n;
        int16_t *const yr = y + (uint32_t)r * p->n;
        int32_t sum = 0;
        uint32_t most = 0;
        uint64_t w = 0;
        uint8_t u = 0;
        int16_t rlow = 0;
        fx_requant_fn_t *norm = fx_requant_fn(0);
        for (j = 0; j < p->n; ++j) {
            sum += xr[j];
        }
        for (j = 0; j < p->n; ++j) {
            const int32_t d = fx_deviation(n, xr[j], sum);
            const uint32_t a = d < 0 ? (uint32_t)-d : (uint32_t)d;
            most = a > most ? a : most;
        }
        while ((most >> u) >= 0x8000u) {                             /* |d >> u| <= 2^15 */
            ++u;
        }
        for (j = 0; j < p->n; ++j) {
            const int16_t e = (int16_t)(fx_deviation(n, xr[j], sum) >> u);
            int32_t sq;
            {
                FX_MAC_BEGIN(0);
                FX_MAC(e, e);
                sq = FX_MAC_END();
            }
            w += (uint32_t)sq;                                       /* < n 2^30 <= 2^44 */
        }
        w += p->eps >> (2u * u);
        if (w != 0) {
            /* w 4^-k in [2^30, 2^32): s = its isqrt in [2^15, 2^16), 1/sqrt(w) ~ R 2^-(31 + k) with
             * R = (2^31 - 1) / s in [2^15, 2^16), kept as R - 2^15 (an int16 for the multiplier) */
            const int8_t k = (int8_t)(((int8_t)fx_bitlen64(w) - 31) >> 1);
            const uint32_t w32 = k >= 0 ? (uint32_t)(w >> (2 * k)) : (uint32_t)(w << (-2 * k));
            rlow = (int16_t)((((uint32_t)0x7FFFFFFF) / fx_isqrt32(w32)) - 0x8000u);
            norm = fx_requant_fn((int8_t)(16 + k));
        }
        const int16_t *g = p->g;
        const int32_t *b = p->b;
        for (j = 0; j < p->n; ++j) {
            const int16_t e = (int16_t)(fx_deviation(n, xr[j], sum) >> u);
            int16_t z = 0;
            int32_t acc;
            if (w != 0) {
                /* e R = e 2^15 + e (R - 2^15), |e R| < 2^31 */
                FX_MAC_BEGIN((int32_t)((uint32_t)(int32_t)e << 15));
                FX_MAC(e, rlow);
                z = norm(FX_MAC_END());                              /* z / sqrt(n), q15 */
            }
            {
                FX_MAC_BEGIN(*b);
                FX_MAC(z, *g);
                acc = FX_MAC_END();
            }
            g += p->step;
            b += p->step;
            FX_STORE(yr[j], fx_apply_act(&p->act, out(acc)));
        }
    }
}

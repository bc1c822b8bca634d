/* fx_norm.c - normalisation over the last axis: layernorm (docs/lir.md, "layernorm").
 * Each call computes the rows [r0, r1); a row reads only its own input elements, so running it
 * twice writes the same bytes.
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"

/* floor(sqrt(v)), bit by bit (exact for every uint64_t) */
static uint32_t fx_isqrt64(uint64_t v)
{
    uint64_t root = 0;
    uint64_t bit = (uint64_t)1 << 62;
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
    return (uint32_t)root;
}

/* floor(v / 2^s + 1/2) saturated to int16, s in [1, 62]; v >> (s - 1) is an arithmetic shift */
static int16_t fx_round_shift64(int64_t v, uint8_t s)
{
    const int64_t t = v >> (s - 1u);
    const int64_t r = (t >> 1) + (t & 1);
    return r > 32767 ? (int16_t)32767 : r < -32768 ? (int16_t)-32768 : (int16_t)r;
}

void fx_layernorm(const fx_layernorm_t *p, const int16_t *x, int16_t *y, uint16_t r0, uint16_t r1)
{
    const uint16_t n = p->n;
    fx_requant_fn_t *const out = fx_requant_fn(p->shift);
    uint16_t r, j;
    for (r = r0; r < r1; ++r) {
        const int16_t *const xr = x + (uint32_t)r * n;
        int16_t *const yr = y + (uint32_t)r * n;
        int32_t sum = 0;
        uint64_t v = 0;
        uint64_t w;
        uint32_t rcp = 0;
        uint8_t sh = 0;
        for (j = 0; j < n; ++j) {
            sum += xr[j];
        }
        for (j = 0; j < n; ++j) {
            const int32_t d = (int32_t)n * xr[j] - sum;    /* |d| < 2^27 */
            v += (uint64_t)((int64_t)d * d);                /* < 2^62 for n <= 1024 */
        }
        w = v / n + p->eps;
        if (w != 0) {
            uint8_t bits = 0;
            uint8_t k;
            uint64_t t = w;
            while (t != 0) {
                ++bits;
                t >>= 1;
            }
            k = (uint8_t)((63u - bits) >> 1);
            /* s = isqrt(w 4^k) in [2^30.5, 2^31.5): 31 bits of the row's deviation */
            rcp = (uint32_t)(((uint64_t)1 << 62) / fx_isqrt64(w << (2u * k)));
            sh = (uint8_t)(62u - k - p->qz);
        }
        for (j = 0; j < n; ++j) {
            int16_t z = 0;
            int32_t acc;
            if (w != 0) {
                const int32_t d = (int32_t)n * xr[j] - sum;
                z = fx_round_shift64((int64_t)d * rcp, sh);
            }
            acc = (int32_t)((uint32_t)((int32_t)z * p->g[j]) + (uint32_t)p->b[j]);
            FX_STORE(yr[j], fx_apply_act(&p->act, out(acc)));
        }
    }
}

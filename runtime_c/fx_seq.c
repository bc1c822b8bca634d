/* fx_seq.c - kernels of sequences: the product of two activations (matmul) and softmax over the
 * last axis of attention, and the rows of an embedding table selected by token ids (docs/lir.md,
 * "matmul", "softmax", "embed"). Each call computes whole rows
 * [r0, r1) from inputs the step does not write, so running it twice writes the same bytes.
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"

void fx_matmul(const fx_matmul_t *p, const int16_t *a, const int16_t *b, int16_t *y, uint16_t r0, uint16_t r1)
{
    const uint16_t k = p->k;
    const uint16_t n = p->n;
    fx_requant_fn_t *const out = fx_requant_fn(p->shift);
    uint16_t r, j, i;
    for (r = r0; r < r1; ++r) {
        const int16_t *const ar = a + (uint32_t)r * k;
        int16_t *const yr = y + (uint32_t)r * n;
        for (j = 0; j < n; ++j) {
            int32_t acc;
            {
                FX_MAC_BEGIN(0);
                for (i = 0; i < k; ++i) {
                    FX_MAC(ar[i], b[(uint32_t)i * n + j]);
                }
                acc = FX_MAC_END();
            }
            FX_STORE(yr[j], fx_apply_act(&p->act, out(acc)));
        }
    }
}

/* the exp table at a = max - x >= 0 (docs/lir.md, "softmax") */
static int16_t fx_softmax_exp(const fx_softmax_t *p, int32_t a)
{
    const uint32_t i = (uint32_t)a >> p->step;
    int32_t d;
    uint32_t r;
    if (i >= p->m) {
        return p->table[p->m];
    }
    if (p->step == 0) {
        return p->table[i];
    }
    r = (uint32_t)a - (i << p->step);
    d = (int32_t)p->table[i + 1] - p->table[i];
    return (int16_t)(p->table[i] + fx_requant(d * (int32_t)r, (int8_t)p->step));
}

void fx_softmax(const fx_softmax_t *p, const int16_t *x, int16_t *y, uint16_t r0, uint16_t r1)
{
    const uint16_t n = p->n;
    uint16_t r, j;
    for (r = r0; r < r1; ++r) {
        const int16_t *const xr = x + (uint32_t)r * n;
        int16_t *const yr = y + (uint32_t)r * n;
        int16_t m = xr[0];
        uint32_t sum = 0;
        uint32_t rcp;
        uint8_t bits = 0;
        uint8_t s;
        uint32_t t;
        for (j = 1; j < n; ++j) {
            m = xr[j] > m ? xr[j] : m;
        }
        j = 0;
        do {    /* n >= 1: a do-while, so that no path divides by a sum of nothing */
            sum += (uint32_t)fx_softmax_exp(p, (int32_t)m - xr[j]);     /* >= 2^14: the max's */
        } while (++j < n);
        for (t = sum; t != 0; t >>= 1) {
            ++bits;
        }
        rcp = (uint32_t)(((uint64_t)1 << (bits + 15u)) / sum);         /* (2^15, 2^16] */
        s = (uint8_t)(bits + p->out_shift);                             /* 15..31 */
        for (j = 0; j < n; ++j) {
            const uint32_t v = (uint32_t)fx_softmax_exp(p, (int32_t)m - xr[j]) * rcp;   /* < 2^31 */
            const uint32_t q = v >> (s - 1u);
            const uint32_t o = (q >> 1) + (q & 1u);
            FX_STORE(yr[j], (int16_t)(o > 32767u ? 32767u : o));
        }
    }
}

void fx_embed(const fx_embed_t *p, const int16_t *ids, int16_t *y, uint16_t r0, uint16_t r1)
{
    const uint16_t dim = p->dim;
    uint16_t r, j;
    for (r = r0; r < r1; ++r) {
        const uint16_t id = (uint16_t)ids[r];
        int16_t *const yr = y + (uint32_t)r * dim;
        if (id < p->vocab) {
            const int16_t *const row = p->table + (uint32_t)id * dim;
            for (j = 0; j < dim; ++j) {
                FX_STORE(yr[j], row[j]);
            }
        } else {
            for (j = 0; j < dim; ++j) {
                FX_STORE(yr[j], 0);
            }
        }
    }
}

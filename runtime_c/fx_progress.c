/* fx_progress.c - two-record progress commit; see fx_progress.h for the protocol. */
#include "fx_progress.h"
#include "fx_store.h"

static uint16_t fx_record_check(uint16_t step, uint16_t unit, uint16_t seq)
{
    /* Fletcher-style sum over the three words with a non-zero start, so that an all-zero or
     * all-ones record never checks out. */
    uint16_t a = 0x5A17u, b = 0x3C5Du;
    a = (uint16_t)(a + step);  b = (uint16_t)(b + a);
    a = (uint16_t)(a + unit);  b = (uint16_t)(b + a);
    a = (uint16_t)(a + seq);   b = (uint16_t)(b + a);
    return (uint16_t)(a ^ (uint16_t)((uint16_t)(b << 8) | (uint16_t)(b >> 8)));
}

static int fx_record_valid(const fx_record_t *r)
{
    uint16_t seq = r->seq;
    return seq != 0u && r->check == fx_record_check(r->step, r->unit, seq);
}

/* a is newer than b, modulo 2^16. */
static int fx_seq_newer(uint16_t a, uint16_t b)
{
    uint16_t d = (uint16_t)(a - b);
    return d != 0u && d < 0x8000u;
}

static int fx_progress_current(const fx_progress_t *p)
{
    int v0 = fx_record_valid(&p->rec[0]);
    int v1 = fx_record_valid(&p->rec[1]);
    if (v0 && v1)
        return fx_seq_newer(p->rec[1].seq, p->rec[0].seq) ? 1 : 0;
    if (v0)
        return 0;
    if (v1)
        return 1;
    return -1;
}

uint16_t fx_progress_load(const fx_progress_t *p, uint16_t *step, uint16_t *unit)
{
    int cur = fx_progress_current(p);
    if (cur < 0) {
        *step = 0u;
        *unit = 0u;
        return 0u;
    }
    *step = p->rec[cur].step;
    *unit = p->rec[cur].unit;
    return p->rec[cur].seq;
}

void fx_progress_commit(fx_progress_t *p, uint16_t step, uint16_t unit)
{
    int cur = fx_progress_current(p);
    uint16_t seq = cur < 0 ? 1u : (uint16_t)(p->rec[cur].seq + 1u);
    fx_record_t *r = &p->rec[cur == 0 ? 1 : 0];
    if (seq == 0u)
        seq = 1u;
    FX_STORE(r->seq, 0u);
    FX_STORE(r->step, step);
    FX_STORE(r->unit, unit);
    FX_STORE(r->check, fx_record_check(step, unit, seq));
    FX_STORE(r->seq, seq);
    FX_COMMITTED();
}

void fx_progress_reset(fx_progress_t *p)
{
    FX_STORE(p->rec[0].seq, 0u);
    FX_STORE(p->rec[1].seq, 0u);
}

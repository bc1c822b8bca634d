/* fx_power_host.c - see fx_power_host.h. Hosted C99 (setjmp, string parsing). */
#include "fx_power_host.h"
#include "../../fx_store.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf fx_reboot;
static int fx_armed;                 /* a failure is scheduled in this boot */
static uint64_t fx_countdown;        /* stores left before the failure */
static uint64_t fx_stores_total;
static uint64_t fx_stores_since_commit;
static uint32_t fx_rng;

void fx_host_before_store(void)
{
    if (fx_armed) {
        if (fx_countdown == 0u)
            longjmp(fx_reboot, 1);
        fx_countdown--;
    }
    fx_stores_total++;
    fx_stores_since_commit++;
}

void fx_host_committed(void)
{
    fx_stores_since_commit = 0u;
}

static uint32_t fx_next_random(void)
{
    /* xorshift32: deterministic for a seed, the same on every host. */
    fx_rng ^= fx_rng << 13;
    fx_rng ^= fx_rng >> 17;
    fx_rng ^= fx_rng << 5;
    return fx_rng;
}

static int fx_parse_u32(const char *s, const char **end, uint32_t *out)
{
    char *e;
    unsigned long v;
    if (*s < '0' || *s > '9')
        return -1;
    v = strtoul(s, &e, 10);
    if (v > 0xFFFFFFFFul)
        return -1;
    *out = (uint32_t)v;
    *end = e;
    return 0;
}

int fx_parse_schedule(const char *spec, fx_fail_schedule_t *s)
{
    fx_fail_schedule_t r;
    const char *p;
    memset(&r, 0, sizeof r);
    if (strcmp(spec, "none") == 0) {
        r.kind = FX_FAIL_NONE;
    } else if (strncmp(spec, "after:", 6) == 0 || strncmp(spec, "every:", 6) == 0) {
        r.kind = spec[0] == 'a' ? FX_FAIL_AFTER : FX_FAIL_EVERY;
        if (fx_parse_u32(spec + 6, &p, &r.n) != 0 || *p != '\0')
            return -1;
        if (r.kind == FX_FAIL_EVERY && r.n == 0u)
            return -1;
    } else if (strncmp(spec, "random:", 7) == 0) {
        int have = 0;
        r.kind = FX_FAIL_RANDOM;
        p = spec + 7;
        while (*p) {
            uint32_t *field;
            if (strncmp(p, "seed=", 5) == 0) { field = &r.seed; p += 5; have |= 1; }
            else if (strncmp(p, "min=", 4) == 0) { field = &r.min; p += 4; have |= 2; }
            else if (strncmp(p, "max=", 4) == 0) { field = &r.max; p += 4; have |= 4; }
            else return -1;
            if (fx_parse_u32(p, &p, field) != 0)
                return -1;
            if (*p == ',')
                p++;
            else if (*p != '\0')
                return -1;
        }
        if (have != 7 || r.min == 0u || r.min > r.max)
            return -1;
    } else {
        return -1;
    }
    *s = r;
    return 0;
}

static void fx_arm(const fx_fail_schedule_t *s, uint32_t boot)
{
    switch (s->kind) {
    case FX_FAIL_AFTER:
        fx_armed = boot == 0u;
        fx_countdown = s->n;
        break;
    case FX_FAIL_EVERY:
        fx_armed = 1;
        fx_countdown = s->n;
        break;
    case FX_FAIL_RANDOM:
        fx_armed = 1;
        fx_countdown = s->min + fx_next_random() % (s->max - s->min + 1u);
        break;
    default:
        fx_armed = 0;
        break;
    }
}

int fx_run_intermittent(fx_run_fn run, fx_wipe_fn wipe, const int16_t *in, int16_t *out,
                        const fx_fail_schedule_t *s, uint32_t max_boots, fx_power_stats_t *stats)
{
    volatile uint32_t boot = 0u;
    memset(stats, 0, sizeof *stats);
    fx_stores_total = 0u;
    fx_stores_since_commit = 0u;
    fx_rng = s->seed != 0u ? s->seed : 0x9E3779B9u;
    if (setjmp(fx_reboot) != 0) {
        /* A power failure: SRAM and registers are gone; FRAM (static memory) stays. */
        stats->failures++;
        stats->reexecuted_stores += fx_stores_since_commit;
        fx_stores_since_commit = 0u;
        boot++;
        if (wipe != 0)
            wipe();
    }
    if (boot >= max_boots) {
        fx_armed = 0;
        stats->boots = boot;
        stats->stores = fx_stores_total;
        return 1;
    }
    fx_arm(s, boot);
    (void)run(in, out);
    fx_armed = 0;
    stats->boots = boot + 1u;
    stats->stores = fx_stores_total;
    return 0;
}

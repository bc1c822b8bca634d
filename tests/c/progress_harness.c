/* progress_harness.c - torn progress commits (runtime_c/fx_progress.c) under host power failures.
 *
 * Built with -DFX_HOST_POWER_FAIL and runtime_c/platform/host/fx_power_host.c: FX_STORE fails
 * before the n-th FRAM store. The "program" commits (k, k + 1) for k = first .. first + N - 1 and
 * resumes after a failure from whatever fx_progress_load returns. For every store position of the
 * whole sequence (five per commit, so every store inside every commit) it checks, at each boot:
 *   - the loaded record is exactly the last commit that completed before the failure (a torn
 *     commit leaves the previous record valid and never shows a half-written one),
 *   - the sequence finishes with the last commit current.
 * WARMUP commits run first without failures (the window then starts at sequence number WARMUP + 1;
 * WARMUP = 65530 makes the 16-bit sequence numbers wrap around inside the checked window).
 *
 * Usage: progress_harness WARMUP N     exit 0 = all positions passed; prints a summary line.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx_power_host.h"
#include "fx_progress.h"

static fx_progress_t rec;           /* "FRAM": survives the simulated reboots */
static uint16_t first_k, n_commits;
static long completed;              /* the last commit whose fx_progress_commit returned (-1: none) */
static long boots_checked;
static int bad;

static int program(const int16_t *in, int16_t *out)
{
    uint16_t s, u, k;
    (void)in;
    (void)out;
    (void)fx_progress_load(&rec, &s, &u);
    boots_checked++;
    if (completed < 0) {
        if (!(s == first_k && u == (uint16_t)(first_k + 1u))) {
            /* before any commit of the window the warm-up's last record (first_k, first_k + 1) is current */
            fprintf(stderr, "boot before the window: loaded (%u, %u), expected (%u, %u)\n", s, u, first_k,
                    (unsigned)(first_k + 1u));
            bad = 1;
        }
    } else if (!(s == (uint16_t)completed && u == (uint16_t)(completed + 1))) {
        fprintf(stderr, "loaded (%u, %u) after commit %ld completed\n", s, u, completed);
        bad = 1;
    }
    for (k = (uint16_t)(s + 1u); k != (uint16_t)(first_k + n_commits + 1u); ++k) {
        fx_progress_commit(&rec, k, (uint16_t)(k + 1u));
        completed = k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long warmup, n, pos, total_stores;
    fx_fail_schedule_t none, one;
    fx_power_stats_t st;
    uint16_t s, u, k;
    long failures = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s WARMUP N\n", argv[0]);
        return 2;
    }
    warmup = strtoul(argv[1], NULL, 10);
    n = strtoul(argv[2], NULL, 10);
    memset(&none, 0, sizeof none);
    /* an empty record: nothing valid, load gives (0, 0) */
    fx_progress_reset(&rec);
    if (fx_progress_load(&rec, &s, &u) != 0u || s != 0u || u != 0u) {
        fprintf(stderr, "a reset record is not empty\n");
        return 1;
    }
    total_stores = 5ul * n;
    for (pos = 0; pos <= total_stores; ++pos) {
        /* warm up: `warmup` commits without failures; the last one is (warmup - 1, warmup) */
        fx_progress_reset(&rec);
        for (k = 0u; k < (uint16_t)warmup; ++k) {
            fx_progress_commit(&rec, k, (uint16_t)(k + 1u));
        }
        first_k = (uint16_t)(warmup - 1u);
        n_commits = (uint16_t)n;
        completed = -1;
        memset(&one, 0, sizeof one);
        one.kind = FX_FAIL_AFTER;
        one.n = (uint32_t)pos;
        if (fx_run_intermittent(program, NULL, NULL, NULL, pos < total_stores ? &one : &none, 10u, &st) != 0) {
            fprintf(stderr, "failure before store %lu: no progress\n", pos);
            return 1;
        }
        failures += (long)st.failures;
        (void)fx_progress_load(&rec, &s, &u);
        if (s != (uint16_t)(first_k + n) || u != (uint16_t)(first_k + n + 1u)) {
            fprintf(stderr, "failure before store %lu: finished at (%u, %u)\n", pos, s, u);
            return 1;
        }
        if (bad) {
            fprintf(stderr, "failure before store %lu: an inconsistent record was loaded\n", pos);
            return 1;
        }
    }
    printf("positions %lu failures %ld boots %ld\n", total_stores + 1ul, failures, boots_checked);
    return failures == (long)total_stores ? 0 : 1;
}

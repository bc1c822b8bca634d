/* fx_power_host.h - power-failure injection for host builds (compile with -DFX_HOST_POWER_FAIL).
 *
 * "FRAM" is ordinary static memory, which survives a simulated reboot because the reboot is a
 * longjmp back into the driver, not a process exit. At each failure the driver calls the program's
 * SRAM wipe (fills volatile buffers with a garbage pattern), then calls the run function again,
 * which resumes from its progress records. The failure clock counts FRAM stores (FX_STORE).
 *
 * Schedules (text form, also accepted by main_host):
 *   none                    no failures
 *   after:N                 one failure before the N-th store (0-based) of the run
 *   every:N                 a failure N stores after each boot
 *   random:seed=S,min=A,max=B   after each boot a gap drawn uniformly from [A, B] stores
 */
#ifndef FX_POWER_HOST_H
#define FX_POWER_HOST_H

#include <stdint.h>

enum { FX_FAIL_NONE = 0, FX_FAIL_AFTER = 1, FX_FAIL_EVERY = 2, FX_FAIL_RANDOM = 3 };

typedef struct {
    int kind;
    uint32_t n;          /* after:N, every:N */
    uint32_t seed, min, max;
} fx_fail_schedule_t;

typedef struct {
    uint32_t failures;           /* simulated power failures */
    uint32_t boots;              /* calls of the run function (failures + 1 when it finished) */
    uint64_t stores;             /* FRAM stores over all boots */
    uint64_t reexecuted_stores;  /* stores done after the last commit before each failure */
} fx_power_stats_t;

typedef int (*fx_run_fn)(const int16_t *in, int16_t *out);
typedef void (*fx_wipe_fn)(void);

/* Parse a schedule; returns 0 on success, -1 (and leaves *s unchanged) on a malformed spec. */
int fx_parse_schedule(const char *spec, fx_fail_schedule_t *s);

/* Run until the inference completes under the schedule. Returns 0 when it completed, 1 when it
 * could not make progress within max_boots boots ("cannot make progress"). */
int fx_run_intermittent(fx_run_fn run, fx_wipe_fn wipe, const int16_t *in, int16_t *out,
                        const fx_fail_schedule_t *s, uint32_t max_boots, fx_power_stats_t *stats);

#endif /* FX_POWER_HOST_H */

/* main_gnet_sim.c - a gNet package on harvested power in the simulator (msp430-elf-run, CIO).
 *
 * Built by msp430.mk with MSP430_GNET=1 (transpiler/gnet_sim.py: run_energy_sim), in place of
 * main_sim.c and with the same -D settings (FX_MODEL_HEADER, FX_RUN, FX_INPUT_LEN, FX_OUTPUT_LEN,
 * FX_SIM_NEW_INPUT) plus FX_RECOVER (the model's fx_<m>_recover), and -DFX_SIM_COUNTERS for this
 * file; the model is compiled with -DFX_ENERGY_WAIT_HOOK and (unless MSP430_GNET_LEVEL= is empty)
 * -DFX_ENERGY_LEVEL_HOOK, so its run loop asks fx_energy_level() (the exit policy) and
 * fx_energy_wait() (before an inference), which this file defines.
 *
 * The energy model is transpiler/gnet_energy.py's, in integers, operation by operation as its
 * EnergyModel: time in cycles, energy in units of 1/65536 of an active cycle's. The capacitor
 * holds fx_energy_full units, full at cycle 0. Row j of the trace (fx_energy_times[j],
 * fx_energy_powers[j]: from that cycle on, that many units a cycle; the first row at cycle 0, the
 * last forever) charges it, never above full. While the CPU runs it draws 65536 units a cycle and
 * the time is the simulator's cycle counter: an instruction costs its cycles of energy. Asleep
 * (waiting for a request every fx_energy_period cycles, or in fx_energy_wait until the capacitor
 * pays for the cycles asked) it only charges and no cycles pass. The simulation's own work (this
 * file's arithmetic and the CIO output) happens with the clock stopped (fx_gsim_pause ...
 * fx_gsim_resume), so only the model's cycles cost energy. The state is a sync point {t, e, c}:
 * time, energy and the boot's cycle counter when the clock restarted; from there the CPU runs, so
 * at counter c' the time is t + (c' - c) and the energy follows the trace and the drain.
 * Sync points live in FRAM (two records, a one-word switch) and are logged, so that the host
 * finds the cycle at which the capacitor is empty and schedules a power failure there
 * (MSP430_SIM_POWER_FAIL=at:...). After the failure the device is off until the capacitor is full
 * again: the next boot computes the failure's time from the last sync point and the time it is
 * full again (charging from 0), then answers the interrupted inference with FX_RECOVER (from the
 * features its exits saved; no answer if it had not reached exit 1, or if the power fails again
 * during that answer: fx_<m>_recover tries once), and goes on with the next sample.
 *
 * The data come from two generated files: sim_input.c (transpiler/sim.py) and sim_energy.c
 * (transpiler/gnet_sim.py: the trace rows, fx_energy_full and fx_energy_period; HIFRAM in the
 * large memory model).
 *
 * Output (CIO), per line:
 *   e <boot> <i> <from> <at> <t> <e> <why>   the clock stopped at counter <at> of boot <boot>
 *                                     (1, 2, ...), next sample <i>; it had run since counter <from>
 *                                     (the previous sync point's) and restarts at (t, e), as 16 hex
 *                                     digits each; why: b boot, r request, w fx_energy_wait,
 *                                     l fx_energy_level, a answered, h halt
 *   y <i> <offset> <v> ...            the outputs of sample i (main_sim.c's form), exactly once
 *   g <i> <status> <boot> <cycles>    sample i: -1 no answer, 0 the whole model, k gNet exit k;
 *                                     exactly once, after its y lines; the boot and its counter
 *   done <count> / error <text>       as main_sim.c
 */
#include <stdint.h>

#include "cio.h"
#include "fx_platform_msp430.h"

#ifndef FX_SIM_COUNTERS
#error "main_gnet_sim.c: compile with -DFX_SIM_COUNTERS (the energy model reads the cycle counter)"
#endif
#if !defined(FX_MODEL_HEADER) || !defined(FX_RUN) || !defined(FX_INPUT_LEN) || !defined(FX_OUTPUT_LEN) \
    || !defined(FX_RECOVER)
#error "main_gnet_sim.c: compile with main_sim.c's -D settings and FX_RECOVER (msp430.mk MSP430_MAIN_DEFS)"
#endif
#include FX_MODEL_HEADER

#ifdef __MSP430X_LARGE__
#define FX_ENERGY_PLACE __attribute__((upper))   /* the trace tables are in HIFRAM */
#else
#define FX_ENERGY_PLACE
#endif

#define FX_GSIM_PER_LINE 8u
#define FX_GSIM_Y_LINES (((uint32_t)(FX_OUTPUT_LEN) + FX_GSIM_PER_LINE - 1u) / FX_GSIM_PER_LINE)
#define FX_GSIM_LINES_PER_INPUT (FX_GSIM_Y_LINES + 1u)
#define FX_GSIM_ONE 65536u                       /* energy units per active cycle */

extern const uint16_t fx_sim_input_count;
extern const uint16_t fx_sim_input_len;
extern const int16_t fx_sim_inputs[];
extern const uint16_t fx_energy_rows;
extern const uint64_t fx_energy_times[] FX_ENERGY_PLACE;
extern const uint32_t fx_energy_powers[] FX_ENERGY_PLACE;
extern const uint64_t fx_energy_full;
extern const uint64_t fx_energy_period;

typedef struct {
    uint64_t t;
    uint64_t e;
    uint32_t c;
} fx_gsim_sync_t;

/* In FRAM: survive power failures, initialised when the ELF is loaded. */
static volatile fx_gsim_sync_t fx_gsim_rec[2] __attribute__((persistent)) = {{0u, 0u, 0u}, {0u, 0u, 0u}};
static volatile uint16_t fx_gsim_cur __attribute__((persistent)) = 0u;    /* the valid record */
static volatile uint16_t fx_gsim_boots __attribute__((persistent)) = 0u;
static volatile uint16_t fx_gsim_cursor __attribute__((persistent)) = 0u; /* the next sample */
static volatile uint16_t fx_gsim_running __attribute__((persistent)) = 0u; /* 1 + the sample in FX_RUN */
static int16_t fx_gsim_output[FX_OUTPUT_LEN] __attribute__((persistent)) = {0};

/* ------------------------------------------------------------------------------ the trace */
/* a / b rounded up (a < 2^62, 0 < b < 2^32: no overflow) */
static uint64_t fx_gsim_ceil_div(uint64_t a, uint64_t b)
{
    return (a + b - 1u) / b;
}

/* The row whose power holds at cycle t (fx_energy_times[0] == 0). */
static uint16_t fx_gsim_row(uint64_t t)
{
    uint16_t lo = 0u, hi = fx_energy_rows;
    while (hi - lo > 1u) {
        uint16_t mid = (uint16_t)(lo + (uint16_t)((hi - lo) >> 1));
        if (fx_energy_times[mid] <= t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Does row j end (at *nxt), or hold forever? */
static int fx_gsim_next(uint16_t j, uint64_t *nxt)
{
    if ((uint16_t)(j + 1u) < fx_energy_rows) {
        *nxt = fx_energy_times[j + 1u];
        return 1;
    }
    return 0;
}

/* The energy at t1 of a device asleep (only charging) from (t0, e). */
static uint64_t fx_gsim_asleep(uint64_t e, uint64_t t0, uint64_t t1)
{
    uint64_t t = t0;
    while (t < t1 && e < fx_energy_full) {
        uint16_t j = fx_gsim_row(t);
        uint64_t nxt, end;
        uint32_t p = fx_energy_powers[j];
        end = (fx_gsim_next(j, &nxt) && nxt < t1) ? nxt : t1;
        if (p > 0u) {
            uint64_t need = fx_gsim_ceil_div(fx_energy_full - e, p);
            e = end - t >= need ? fx_energy_full : e + (uint64_t)p * (end - t);
        }
        t = end;
    }
    return e;
}

/* The energy at t1 of a CPU running from (t0, e); 0 once the capacitor is empty (that run is
 * replaced by one with a power failure there). */
static uint64_t fx_gsim_running_to(uint64_t e, uint64_t t0, uint64_t t1)
{
    uint64_t t = t0;
    while (t < t1) {
        uint16_t j = fx_gsim_row(t);
        uint64_t nxt, end, dt;
        uint32_t p = fx_energy_powers[j];
        end = (fx_gsim_next(j, &nxt) && nxt < t1) ? nxt : t1;
        dt = end - t;
        if (p >= FX_GSIM_ONE) {
            uint64_t gain = (uint64_t)(p - FX_GSIM_ONE);
            if (gain > 0u) {
                uint64_t need = fx_gsim_ceil_div(fx_energy_full - e, gain);
                e = dt >= need ? fx_energy_full : e + gain * dt;
            }
        } else {
            uint64_t d = (uint64_t)(FX_GSIM_ONE - p);
            if (dt > e / d) {
                return 0u;
            }
            e -= d * dt;
        }
        t = end;
    }
    return e;
}

/* The cycle a CPU running from (t, e) empties the capacitor (*when); 0 if it never does. */
static int fx_gsim_crossing(uint64_t e, uint64_t t, uint64_t *when)
{
    for (;;) {
        uint16_t j = fx_gsim_row(t);
        uint64_t nxt;
        uint32_t p = fx_energy_powers[j];
        int ends = fx_gsim_next(j, &nxt);
        if (p < FX_GSIM_ONE) {
            uint64_t d = (uint64_t)(FX_GSIM_ONE - p);
            uint64_t dt = e / d + 1u;
            if (!ends || t + dt <= nxt) {
                *when = t + dt;
                return 1;
            }
            e -= d * (nxt - t);
        } else if (!ends) {
            return 0;
        } else if (p > FX_GSIM_ONE) {
            uint64_t gain = (uint64_t)(p - FX_GSIM_ONE);
            uint64_t need = fx_gsim_ceil_div(fx_energy_full - e, gain);
            e = nxt - t >= need ? fx_energy_full : e + gain * (nxt - t);
        }
        t = nxt;
    }
}

/* Asleep from (*t, e) until the capacitor holds target units: *t becomes that cycle; 0 if the
 * trace never gives them. */
static int fx_gsim_charge_to(uint64_t target, uint64_t e, uint64_t *t)
{
    while (e < target) {
        uint16_t j = fx_gsim_row(*t);
        uint64_t nxt;
        uint32_t p = fx_energy_powers[j];
        int ends = fx_gsim_next(j, &nxt);
        if (p > 0u) {
            uint64_t need = fx_gsim_ceil_div(target - e, p);
            if (!ends || *t + need <= nxt) {
                *t += need;
                return 1;
            }
        } else if (!ends) {
            return 0;
        }
        e += (uint64_t)p * (nxt - *t);
        *t = nxt;
    }
    return 1;
}

/* ------------------------------------------------------------------------------ sync points */
static char *fx_gsim_fmt_u64(char *p, uint64_t v)
{
    *p++ = ' ';
    p = fx_fmt_hex(p, (uint16_t)(v >> 48), 4);
    p = fx_fmt_hex(p, (uint16_t)(v >> 32), 4);
    p = fx_fmt_hex(p, (uint16_t)(v >> 16), 4);
    return fx_fmt_hex(p, (uint16_t)v, 4);
}

/* Stop the clock: the time and energy at the counter now (*c), the CPU having run since the sync
 * point. What follows until fx_gsim_resume() (this model's own arithmetic, the output) costs no
 * time and no energy: it is the simulation's, not the device's. */
static void fx_gsim_pause(uint64_t *t, uint64_t *e, uint32_t *c)
{
    const volatile fx_gsim_sync_t *s = &fx_gsim_rec[fx_gsim_cur];
    *c = fx_sim_cycles();
    *t = s->t + (uint64_t)(*c - s->c);
    *e = fx_gsim_running_to(s->e, s->t, *t);
}

/* Restart the clock at (t, e): log the line (the previous sync point's counter, the pause's
 * counter c, t, e) and make (t, e) at the counter now the sync point (FRAM, one-word switch). */
static void fx_gsim_resume(uint64_t t, uint64_t e, uint32_t c, char why)
{
    uint16_t next = (uint16_t)(1u - fx_gsim_cur);
    char *p = fx_fmt_str(fx_cio_line(), "e ");
    p = fx_fmt_udec(p, fx_gsim_boots);
    *p++ = ' ';
    p = fx_fmt_udec(p, fx_gsim_cursor);
    *p++ = ' ';
    p = fx_fmt_udec(p, fx_gsim_rec[fx_gsim_cur].c);
    *p++ = ' ';
    p = fx_fmt_udec(p, c);
    fx_cio_send(FX_CIO_STDOUT, p);                          /* one line in two requests */
    p = fx_gsim_fmt_u64(fx_cio_line(), t);
    p = fx_gsim_fmt_u64(p, e);
    *p++ = ' ';
    *p++ = why;
    *p++ = '\n';
    fx_cio_send(FX_CIO_STDOUT, p);
    fx_gsim_rec[next].t = t;
    fx_gsim_rec[next].e = e;
    fx_gsim_rec[next].c = fx_sim_cycles();
    fx_gsim_cur = next;
}

/* ------------------------------------------------------------------------------ output */
static void fx_gsim_error(const char *what, int32_t value)
{
    char *p = fx_fmt_str(fx_cio_line(), "error ");
    p = fx_fmt_str(p, what);
    p = fx_fmt_sdec(p, value);
    *p++ = '\n';
    fx_cio_send(FX_CIO_STDERR, p);
}

static void fx_gsim_print_status(uint16_t i, int status)
{
    uint16_t seq = (uint16_t)((uint32_t)i * FX_GSIM_LINES_PER_INPUT + FX_GSIM_Y_LINES);
    char *p;
    if (seq < fx_cio_done()) {
        return;
    }
    p = fx_fmt_str(fx_cio_line(), "g ");
    p = fx_fmt_udec(p, i);
    *p++ = ' ';
    p = fx_fmt_sdec(p, status);
    *p++ = ' ';
    p = fx_fmt_udec(p, fx_gsim_boots);
    *p++ = ' ';
    p = fx_fmt_udec(p, fx_sim_cycles());
    *p++ = '\n';
    fx_cio_send_seq(seq, FX_CIO_STDOUT, p);
}


static void fx_gsim_print_done(void)
{
    uint16_t seq = (uint16_t)((uint32_t)fx_sim_input_count * FX_GSIM_LINES_PER_INPUT);
    char *p;
    if (seq < fx_cio_done()) {
        return;
    }
    p = fx_fmt_str(fx_cio_line(), "done ");
    p = fx_fmt_udec(p, fx_sim_input_count);
    *p++ = '\n';
    fx_cio_send_seq(seq, FX_CIO_STDOUT, p);
}

/* The harvester never gives the energy asked: no answer from sample `from` on; the program ends
 * here (a jump to itself: the simulator's halt). */
__attribute__((noreturn)) static void fx_gsim_starved(uint16_t from)
{
    uint16_t i;
    for (i = from; i < fx_sim_input_count; i++) {
        fx_gsim_print_status(i, -1);
    }
    fx_gsim_cursor = fx_sim_input_count;
    fx_gsim_print_done();
    for (;;) {
        __asm__ volatile("1: jmp 1b");
    }
}

/* Sample i has answered (status k >= 0, its outputs in fx_gsim_output) or not (-1). */
static void fx_gsim_finish(uint16_t i, int status)
{
    if (status >= 0) {
        fx_cio_print_values(i, (uint16_t)((uint32_t)i * FX_GSIM_LINES_PER_INPUT), fx_gsim_output,
                            (uint16_t)(FX_OUTPUT_LEN), FX_GSIM_PER_LINE);
    }
    fx_gsim_print_status(i, status);
    fx_gsim_cursor = (uint16_t)(i + 1u);                    /* one 16-bit store: the sample is done */
    fx_gsim_running = 0u;
}

/* ------------------------------------------------------------------------------ the hooks */
/* The energy left, in cycles at the active power. */
uint32_t fx_energy_level(void)
{
    uint64_t t, e, cycles;
    uint32_t c;
    fx_gsim_pause(&t, &e, &c);
    cycles = e >> 16;
    fx_gsim_resume(t, e, c, 'l');
    return cycles >= 0xFFFFFFFFu ? 0xFFFFFFFFul : (uint32_t)cycles;
}

/* Sleep until the capacitor pays for `cycles` (at most a full capacitor). */
void fx_energy_wait(uint32_t cycles)
{
    uint64_t t, e, target = (uint64_t)cycles * FX_GSIM_ONE;
    uint32_t c;
    fx_gsim_pause(&t, &e, &c);
    if (target > fx_energy_full) {
        target = fx_energy_full;
    }
    if (e < target) {
        if (!fx_gsim_charge_to(target, e, &t)) {
            fx_gsim_starved(fx_gsim_cursor);
        }
        e = target;
    }
    fx_gsim_resume(t, e, c, 'w');
}

/* ------------------------------------------------------------------------------ the program */
int main(void)
{
    uint16_t count = fx_sim_input_count;
    uint16_t i;
    uint64_t t, e;
    uint32_t c;

    fx_gsim_boots = (uint16_t)(fx_gsim_boots + 1u);
    c = fx_sim_cycles();                                    /* crt0 is not the device's work */
    if (fx_sim_input_len != (uint16_t)(FX_INPUT_LEN)) {
        fx_gsim_error("sim_input.c has inputs of length ", (int32_t)fx_sim_input_len);
        return 1;
    }
    if ((uint32_t)count * FX_GSIM_LINES_PER_INPUT >= 0xFFFFul || fx_energy_rows == 0u) {
        fx_gsim_error("too many inputs for 16-bit output sequence numbers, or no trace: ", (int32_t)count);
        return 1;
    }
    if (fx_gsim_boots == 1u) {
        t = 0u;                                             /* full at cycle 0 */
    } else {
        /* a power failure: the capacitor emptied after the last sync point; off until full again */
        const volatile fx_gsim_sync_t *s = &fx_gsim_rec[fx_gsim_cur];
        if (!fx_gsim_crossing(s->e, s->t, &t)) {
            fx_gsim_error("a reboot that the energy model does not explain, boot ", (int32_t)fx_gsim_boots);
            return 1;
        }
        if (!fx_gsim_charge_to(fx_energy_full, 0u, &t)) {
            fx_gsim_starved(fx_gsim_cursor);
        }
    }
    fx_gsim_resume(t, fx_energy_full, c, 'b');
    if (fx_gsim_running == (uint16_t)(fx_gsim_cursor + 1u)) {
        /* the inference the failure cut short: answer it from the exits it saved (FX_RECOVER tries
         * once: after a failure during it, it returns 0) */
        int k = FX_RECOVER(fx_gsim_output);
        fx_gsim_pause(&t, &e, &c);
        fx_gsim_finish(fx_gsim_cursor, k > 0 ? k : -1);
        fx_gsim_resume(t, e, c, 'a');
    }
    for (i = fx_gsim_cursor; i < count; i = fx_gsim_cursor) {
        const int16_t *x = fx_sim_inputs + (uint32_t)i * (uint16_t)(FX_INPUT_LEN);
        uint64_t t_req = (uint64_t)i * fx_energy_period;
        int rc;
        fx_gsim_pause(&t, &e, &c);
        if (t < t_req) {                                    /* asleep until the request */
            e = fx_gsim_asleep(e, t, t_req);
            t = t_req;
        }
        fx_gsim_running = (uint16_t)(i + 1u);
        fx_gsim_resume(t, e, c, 'r');
#ifdef FX_SIM_NEW_INPUT
        FX_SIM_NEW_INPUT();
#endif
        rc = FX_RUN(x, fx_gsim_output);
        fx_gsim_pause(&t, &e, &c);
        if (rc < 0) {
            fx_gsim_error("run returned ", (int32_t)rc);
            return 2;
        }
        fx_gsim_finish(i, rc);
        fx_gsim_resume(t, e, c, 'a');
    }
    fx_gsim_pause(&t, &e, &c);
    fx_gsim_resume(t, e, c, 'h');
    fx_gsim_print_done();
    return 0;
}

/* main_gnet_sim.c - a gNet package on harvested power in the simulator (msp430-elf-run, CIO).
 *
 * Built by msp430.mk with MSP430_GNET=1 (transpiler/gnet_sim.py: run_energy_sim), in place of
 * main_sim.c and with the same -D settings (FX_MODEL_HEADER, FX_RUN, FX_INPUT_LEN, FX_OUTPUT_LEN,
 * FX_SIM_NEW_INPUT), plus -DFX_SIM_COUNTERS for this file; the model is compiled with
 * -DFX_ENERGY_LEVEL_HOOK -DFX_ENERGY_WAIT_HOOK, so its run loop asks fx_energy_level() (the exit
 * policy) and fx_energy_wait() (before an inference), which this file defines.
 *
 * The energy model (the same arithmetic, operation by operation, as transpiler/gnet_sim.py):
 * a capacitor holding E joules, full (fx_energy_full) at time 0. The harvested power of the trace
 * (fx_energy_times / fx_energy_powers: powers[j] watts from times[j] to times[j+1], the first
 * row's power before times[0], the last row's forever) charges it, never above full. While the
 * CPU runs it draws fx_energy_active watts, and the time is the simulator's cycle counter over
 * fx_energy_freq: an instruction costs its cycles of energy. Asleep (waiting for a request every
 * fx_energy_period seconds, or in fx_energy_wait until the capacitor pays for the cycles asked),
 * it only charges and no cycles pass. The simulation's own work (this file's soft-float arithmetic
 * and the CIO output) happens with the clock stopped (fx_gsim_pause ... fx_gsim_resume), so only
 * the model's cycles cost energy. The state is a sync point {t, e, c}: time, energy and the boot's
 * cycle counter when the clock restarted; from there the CPU runs, so at counter c' the time is
 * t + (c' - c) / freq and the energy follows dE/dt = P(t) - active (exact per trace row).
 * Sync points live in FRAM (two records, a one-word switch) and are logged, so that the host
 * finds when E reaches 0 and schedules a power failure there (MSP430_SIM_POWER_FAIL=at:...).
 * After the failure the device is off until the capacitor is full again; the inference that ran
 * gives no answer, and the next boot computes the time of the failure from the last sync point
 * (when E reached 0) and the time it is full again (charging from 0), and goes on with the next
 * sample.
 *
 * The data come from two generated files: sim_input.c (transpiler/sim.py) and sim_energy.c
 * (transpiler/gnet_sim.py: the trace rows, fx_energy_full / _active / _freq / _period).
 *
 * Output (CIO), per line:
 *   e <boot> <i> <from> <at> <t> <e> <why>   the clock stopped at counter <at> of boot <boot>
 *                                     (1, 2, ...), next sample <i>; it had run since counter <from>
 *                                     (the previous sync point's) and restarts at (t, e), the time
 *                                     and energy as the 16 hex digits of the doubles' bits; why:
 *                                     b boot, r request, w fx_energy_wait, l fx_energy_level,
 *                                     a answered, h halt
 *   y <i> <offset> <v> ...            the outputs of sample i (main_sim.c's form), exactly once
 *   g <i> <status> <boot> <cycles>    sample i: -1 no answer, 0 the whole model, k gNet exit k;
 *                                     exactly once, after its y lines; the boot and its counter
 *   done <count> / error <text>       as main_sim.c
 */
#include <stddef.h>
#include <stdint.h>

#include "cio.h"
#include "fx_platform_msp430.h"

#ifndef FX_SIM_COUNTERS
#error "main_gnet_sim.c: compile with -DFX_SIM_COUNTERS (the energy model reads the cycle counter)"
#endif
#if !defined(FX_MODEL_HEADER) || !defined(FX_RUN) || !defined(FX_INPUT_LEN) || !defined(FX_OUTPUT_LEN)
#error "main_gnet_sim.c: compile with main_sim.c's -D settings (msp430.mk MSP430_MAIN_DEFS)"
#endif
#include FX_MODEL_HEADER

#define FX_GSIM_PER_LINE 8u
#define FX_GSIM_Y_LINES (((uint32_t)(FX_OUTPUT_LEN) + FX_GSIM_PER_LINE - 1u) / FX_GSIM_PER_LINE)
#define FX_GSIM_LINES_PER_INPUT (FX_GSIM_Y_LINES + 1u)

extern const uint16_t fx_sim_input_count;
extern const uint16_t fx_sim_input_len;
extern const int16_t fx_sim_inputs[];
extern const uint16_t fx_energy_rows;
extern const double fx_energy_times[];
extern const double fx_energy_powers[];
extern const double fx_energy_full;
extern const double fx_energy_active;
extern const double fx_energy_freq;
extern const double fx_energy_period;

typedef struct {
    double t;
    double e;
    uint32_t c;
} fx_gsim_sync_t;

/* In FRAM: survive power failures, initialised when the ELF is loaded. */
static volatile fx_gsim_sync_t fx_gsim_rec[2] __attribute__((persistent)) = {{0.0, 0.0, 0u}, {0.0, 0.0, 0u}};
static volatile uint16_t fx_gsim_cur __attribute__((persistent)) = 0u;    /* the valid record */
static volatile uint16_t fx_gsim_boots __attribute__((persistent)) = 0u;
static volatile uint16_t fx_gsim_cursor __attribute__((persistent)) = 0u; /* the next sample */
static volatile uint16_t fx_gsim_running __attribute__((persistent)) = 0u; /* 1 + the sample in FX_RUN */
static int16_t fx_gsim_output[FX_OUTPUT_LEN] __attribute__((persistent)) = {0};

/* libgcc's soft-float (fp-bit) copies its unpacked numbers with memcpy; there is no C library. */
void *memcpy(void *dst, const void *src, size_t n);
void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n-- > 0u) {
        *d++ = *s++;
    }
    return dst;
}

/* ------------------------------------------------------------------------------ the trace */
/* The row whose power holds at time t: the last j with times[j] <= t (0 before the first row). */
static uint16_t fx_gsim_row(double t)
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

/* When the power of row j (holding at t) changes: times[0] before the first row, else times[j+1],
 * or -1 when row j is the last (it holds forever). */
static double fx_gsim_next(double t, uint16_t j)
{
    if (t < fx_energy_times[0]) {
        return fx_energy_times[0];
    }
    return (uint16_t)(j + 1u) < fx_energy_rows ? fx_energy_times[j + 1u] : -1.0;
}

/* Joules harvested over [t0, t1] (asleep: nothing drawn). */
static double fx_gsim_harvest(double t0, double t1)
{
    double h = 0.0, t = t0;
    while (t < t1) {
        uint16_t j = fx_gsim_row(t);
        double nxt = fx_gsim_next(t, j);
        double end = (nxt < 0.0 || nxt > t1) ? t1 : nxt;
        if (end <= t) {
            end = t1;
        }
        h += fx_energy_powers[j] * (end - t);
        t = end;
    }
    return h;
}

/* The energy at t1 of a CPU running from (t0, e): per row, e += (P - active) * dt, capped at full. */
static double fx_gsim_active(double e, double t0, double t1)
{
    double t = t0;
    while (t < t1) {
        uint16_t j = fx_gsim_row(t);
        double nxt = fx_gsim_next(t, j);
        double end = (nxt < 0.0 || nxt > t1) ? t1 : nxt;
        if (end <= t) {
            end = t1;
        }
        e += (fx_energy_powers[j] - fx_energy_active) * (end - t);
        if (e > fx_energy_full) {
            e = fx_energy_full;
        }
        t = end;
    }
    return e;
}

/* The time a running CPU, from (t, e), empties the capacitor; 0 if it never does. */
static int fx_gsim_crossing(double e, double t, double *when)
{
    if (e <= 0.0) {
        *when = t;
        return 1;
    }
    for (;;) {
        uint16_t j = fx_gsim_row(t);
        double nxt = fx_gsim_next(t, j);
        double net = fx_energy_powers[j] - fx_energy_active;
        if (net < 0.0) {
            double dt = e / (fx_energy_active - fx_energy_powers[j]);
            if (nxt < 0.0 || t + dt <= nxt) {
                *when = t + dt;
                return 1;
            }
        } else if (nxt < 0.0) {
            return 0;
        }
        e += net * (nxt - t);
        if (e > fx_energy_full) {
            e = fx_energy_full;
        }
        t = nxt;
    }
}

/* Asleep from (*t, e) until the capacitor holds target J: *t becomes that time; 0 if the trace
 * never gives it (transpiler/gnet_energy.py's _charge_to). */
static int fx_gsim_charge_to(double target, double e, double *t)
{
    while (e < target) {
        uint16_t j = fx_gsim_row(*t);
        double p = fx_energy_powers[j];
        double nxt = fx_gsim_next(*t, j);
        if (nxt < 0.0) {
            if (p <= 0.0) {
                return 0;
            }
            *t = *t + (target - e) / p;
            return 1;
        }
        if (p > 0.0 && e + p * (nxt - *t) >= target) {
            *t = *t + (target - e) / p;
            return 1;
        }
        e += p * (nxt - *t);
        *t = nxt;
    }
    return 1;
}

/* ------------------------------------------------------------------------------ sync points */
typedef union {
    double d;
    uint16_t w[4];
} fx_gsim_bits_t;

static char *fx_gsim_fmt_double(char *p, double v)
{
    fx_gsim_bits_t b;
    int k;
    b.d = v;
    *p++ = ' ';
    for (k = 3; k >= 0; k--) {
        p = fx_fmt_hex(p, b.w[k], 4);
    }
    return p;
}

/* Stop the clock: the time and energy at the counter now (*c), the CPU having run since the sync
 * point. What follows until fx_gsim_resume() (this model's own arithmetic, the output) costs no
 * time and no energy: it is the simulation's, not the device's. */
static void fx_gsim_pause(double *t, double *e, uint32_t *c)
{
    const volatile fx_gsim_sync_t *s = &fx_gsim_rec[fx_gsim_cur];
    *c = fx_sim_cycles();
    *t = s->t + (double)(*c - s->c) / fx_energy_freq;
    *e = fx_gsim_active(s->e, s->t, *t);
}

/* Restart the clock at (t, e): log the line (the previous sync point's counter, the pause's
 * counter c, t, e) and make (t, e) at the counter now the sync point (FRAM, one-word switch). */
static void fx_gsim_resume(double t, double e, uint32_t c, char why)
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
    p = fx_gsim_fmt_double(fx_cio_line(), t);
    p = fx_gsim_fmt_double(p, e);
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

static void fx_gsim_print_output(uint16_t i)
{
    uint16_t seq = (uint16_t)((uint32_t)i * FX_GSIM_LINES_PER_INPUT);
    uint16_t off;
    for (off = 0; off < (uint16_t)(FX_OUTPUT_LEN); off = (uint16_t)(off + FX_GSIM_PER_LINE), seq++) {
        uint16_t k, n = (uint16_t)(FX_OUTPUT_LEN) - off;
        char *p;
        if (seq < fx_cio_done()) {
            continue;
        }
        if (n > FX_GSIM_PER_LINE) {
            n = FX_GSIM_PER_LINE;
        }
        p = fx_fmt_str(fx_cio_line(), "y ");
        p = fx_fmt_udec(p, i);
        *p++ = ' ';
        p = fx_fmt_udec(p, off);
        for (k = 0; k < n; k++) {
            *p++ = ' ';
            p = fx_fmt_hex(p, (uint16_t)fx_gsim_output[off + k], 4);
        }
        *p++ = '\n';
        fx_cio_send_seq(seq, FX_CIO_STDOUT, p);
    }
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

/* ------------------------------------------------------------------------------ the hooks */
/* The energy left, in cycles at the active power (the host driver's conversion). */
uint32_t fx_energy_level(void)
{
    double t, e, cycles;
    uint32_t c, level;
    fx_gsim_pause(&t, &e, &c);
    cycles = e > 0.0 ? e * fx_energy_freq / fx_energy_active : 0.0;
    level = cycles >= 4294967295.0 ? 0xFFFFFFFFul : (uint32_t)cycles;
    fx_gsim_resume(t, e, c, 'l');
    return level;
}

/* Sleep until the capacitor pays for `cycles` (at most a full capacitor). */
void fx_energy_wait(uint32_t cycles)
{
    double t, e, target;
    uint32_t c;
    fx_gsim_pause(&t, &e, &c);
    target = (double)cycles * fx_energy_active / fx_energy_freq;
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
    double t, e;
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
        t = 0.0;                                            /* full at time 0 */
    } else {
        /* a power failure: E reached 0 after the last sync point; off until full again */
        const volatile fx_gsim_sync_t *s = &fx_gsim_rec[fx_gsim_cur];
        if (!fx_gsim_crossing(s->e, s->t, &t)) {
            fx_gsim_error("a reboot that the energy model does not explain, boot ", (int32_t)fx_gsim_boots);
            return 1;
        }
        if (fx_gsim_running == (uint16_t)(fx_gsim_cursor + 1u)) {
            fx_gsim_print_status(fx_gsim_cursor, -1);        /* the inference that ran: no answer */
            fx_gsim_cursor = (uint16_t)(fx_gsim_cursor + 1u);
        }
        fx_gsim_running = 0u;
        if (!fx_gsim_charge_to(fx_energy_full, 0.0, &t)) {
            fx_gsim_starved(fx_gsim_cursor);
        }
    }
    fx_gsim_resume(t, fx_energy_full, c, 'b');
    for (i = fx_gsim_cursor; i < count; i = fx_gsim_cursor) {
        const int16_t *x = fx_sim_inputs + (uint32_t)i * (uint16_t)(FX_INPUT_LEN);
        double t_req;
        int rc;
        fx_gsim_pause(&t, &e, &c);
        t_req = (double)i * fx_energy_period;
        if (t < t_req) {                                    /* asleep until the request */
            e = e + fx_gsim_harvest(t, t_req);
            if (e > fx_energy_full) {
                e = fx_energy_full;
            }
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
        fx_gsim_print_output(i);
        fx_gsim_print_status(i, rc);
        fx_gsim_cursor = (uint16_t)(i + 1u);                /* one 16-bit store: the sample is done */
        fx_gsim_running = 0u;
        fx_gsim_resume(t, e, c, 'a');
    }
    fx_gsim_pause(&t, &e, &c);
    fx_gsim_resume(t, e, c, 'h');
    fx_gsim_print_done();
    return 0;
}

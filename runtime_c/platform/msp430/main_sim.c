/* main_sim.c - the simulator program around a generated model (msp430-elf-run, CIO output).
 *
 * Compile with (msp430.mk passes these):
 *   -DFX_MODEL_HEADER='"<model>.h"'   the generated header
 *   -DFX_RUN=fx_<model>_run           int FX_RUN(const int16_t *in, int16_t *out); 0 = success
 *   -DFX_INPUT_LEN=<n>                int16 elements of one input  (a number or a header macro)
 *   -DFX_OUTPUT_LEN=<m>               int16 elements of one output
 * optionally -DFX_SIM_COUNTERS (cycle and instruction counts) and -DFX_SIM_NEW_INPUT=<fn> (a
 * void fn(void) called before an input's first run, e.g. to reset the model's progress).
 *
 * The inputs come from a generated file sim_input.c (transpiler/sim.py: write_sim_input):
 *   const uint16_t fx_sim_input_count;          number of inputs
 *   const uint16_t fx_sim_input_len;            int16 elements per input (checked: FX_INPUT_LEN)
 *   const int16_t  fx_sim_inputs[count * len];  the inputs, one after the other
 * Changing the input means rewriting sim_input.c and relinking (make msp430).
 *
 * Output, one line per CIO request (transpiler/sim.py: parse_cio_output):
 *   y <input> <offset> <v> <v> ...       up to 8 output values from <offset>, 4 hex digits each
 *                                        (int16 two's complement)
 *   run <input> cycles <N> instructions <M>     with FX_SIM_COUNTERS: the whole FX_RUN call
 *   step <i> cycles <N> instructions <M>        with FX_SIM_COUNTERS: from FX_STEP_BEGIN/END
 *   done <count>                         all inputs finished
 *   error <text>                         and main returns non-zero (the simulator: fault)
 *
 * Intermittent runs: the index of the current input lives in FRAM (fx_sim_cursor) and every
 * y/run/done line is sent exactly once (fx_cio_send_seq, sequence numbers derived from the input
 * index), so the output is the same with and without power failures as long as FX_RUN resumes
 * from its own progress records after a reboot, and a call after a completed inference computes
 * that input again (or leaves the output as it was). The output buffer is in FRAM for the same
 * reason. step lines are at-least-once and only meaningful without power failures.
 */
#include <stdint.h>

#include "cio.h"
#include "fx_platform_msp430.h"

#ifndef FX_MODEL_HEADER
#error "main_sim.c: compile with -DFX_MODEL_HEADER='\"<model>.h\"'"
#endif
#ifndef FX_RUN
#error "main_sim.c: compile with -DFX_RUN=<the model's run function>"
#endif
#include FX_MODEL_HEADER
#if !defined(FX_INPUT_LEN) || !defined(FX_OUTPUT_LEN)
#error "main_sim.c: compile with -DFX_INPUT_LEN=<n> -DFX_OUTPUT_LEN=<m>"
#endif

#define FX_SIM_PER_LINE 8u
#define FX_SIM_Y_LINES (((uint32_t)(FX_OUTPUT_LEN) + FX_SIM_PER_LINE - 1u) / FX_SIM_PER_LINE)
#ifdef FX_SIM_COUNTERS
#define FX_SIM_LINES_PER_INPUT (FX_SIM_Y_LINES + 1u)
#else
#define FX_SIM_LINES_PER_INPUT FX_SIM_Y_LINES
#endif

extern const uint16_t fx_sim_input_count;
extern const uint16_t fx_sim_input_len;
extern const int16_t fx_sim_inputs[];

/* In FRAM: survives power failures, initialised when the ELF is loaded. */
static volatile uint16_t fx_sim_cursor __attribute__((persistent)) = 0;
#ifdef FX_SIM_NEW_INPUT
/* 1 + the index of the input whose first FX_RUN call has begun (0: none). */
static volatile uint16_t fx_sim_started __attribute__((persistent)) = 0;
#endif
static int16_t fx_sim_output[FX_OUTPUT_LEN] __attribute__((persistent)) = {0};

static void fx_sim_error(const char *what, int32_t value)
{
    char *p = fx_fmt_str(fx_cio_line(), "error ");
    p = fx_fmt_str(p, what);
    p = fx_fmt_sdec(p, value);
    *p++ = '\n';
    fx_cio_send(FX_CIO_STDERR, p);
}


#ifdef FX_SIM_COUNTERS
static void fx_sim_print_run(uint16_t i, uint16_t seq, fx_sim_count_t t0, fx_sim_count_t t1)
{
    char *p;
    if (seq < fx_cio_done())
        return;
    p = fx_fmt_str(fx_cio_line(), "run ");
    p = fx_fmt_udec(p, i);
    p = fx_fmt_str(p, " cycles ");
    p = fx_fmt_udec(p, t1.cycles - t0.cycles);
    p = fx_fmt_str(p, " instructions ");
    p = fx_fmt_udec(p, t1.insns - t0.insns);
    *p++ = '\n';
    fx_cio_send_seq(seq, FX_CIO_STDOUT, p);
}
#endif

int main(void)
{
    uint16_t count = fx_sim_input_count;
    uint16_t i;
    uint16_t seq;
    char *p;

    if (fx_sim_input_len != (uint16_t)(FX_INPUT_LEN)) {
        fx_sim_error("sim_input.c has inputs of length ", (int32_t)fx_sim_input_len);
        return 1;
    }
    if ((uint32_t)count * FX_SIM_LINES_PER_INPUT >= 0xFFFFul) {
        fx_sim_error("too many inputs for 16-bit output sequence numbers: ", (int32_t)count);
        return 1;
    }
    for (i = fx_sim_cursor; i < count; i = fx_sim_cursor) {
        const int16_t *x = fx_sim_inputs + (uint32_t)i * (uint16_t)(FX_INPUT_LEN);
        int rc;
#ifdef FX_SIM_COUNTERS
        fx_sim_count_t t0, t1;
#endif
        seq = (uint16_t)((uint32_t)i * FX_SIM_LINES_PER_INPUT);
#ifdef FX_SIM_NEW_INPUT
        if (fx_sim_started != (uint16_t)(i + 1u)) { /* not resumed: a new input */
            FX_SIM_NEW_INPUT();                     /* idempotent: may run twice after a failure */
            fx_sim_started = (uint16_t)(i + 1u);
        }
#endif
#ifdef FX_SIM_COUNTERS
        t0 = fx_sim_now();
#endif
        rc = FX_RUN(x, fx_sim_output);
#ifdef FX_SIM_COUNTERS
        t1 = fx_sim_now();
#endif
        if (rc != 0) {
            fx_sim_error("run returned ", (int32_t)rc);
            return 2;
        }
        fx_cio_print_values(i, seq, fx_sim_output, (uint16_t)(FX_OUTPUT_LEN), FX_SIM_PER_LINE);
#ifdef FX_SIM_COUNTERS
        fx_sim_print_run(i, (uint16_t)(seq + FX_SIM_Y_LINES), t0, t1);
#endif
        fx_sim_cursor = (uint16_t)(i + 1u); /* one 16-bit store: the input is done */
    }
    seq = (uint16_t)((uint32_t)count * FX_SIM_LINES_PER_INPUT);
    if (seq >= fx_cio_done()) {
        p = fx_fmt_str(fx_cio_line(), "done ");
        p = fx_fmt_udec(p, count);
        *p++ = '\n';
        fx_cio_send_seq(seq, FX_CIO_STDOUT, p);
    }
    return 0;
}

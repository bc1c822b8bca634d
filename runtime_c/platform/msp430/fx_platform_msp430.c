/* fx_platform_msp430.c - MSP430FR5994 platform layer: counter reports and the step hooks.
 * Needs cio.c; the include path must reach runtime_c/ (fx_platform.h) and this directory. */
#include "fx_platform_msp430.h"
#include "fx_platform.h"
#include "cio.h"

void fx_sim_report(const char *label, uint16_t index, fx_sim_count_t begin, fx_sim_count_t end)
{
    char *p = fx_fmt_str(fx_cio_line(), label);
    *p++ = ' ';
    p = fx_fmt_udec(p, index);
    p = fx_fmt_str(p, " cycles ");
    p = fx_fmt_udec(p, end.cycles - begin.cycles);
    p = fx_fmt_str(p, " instructions ");
    p = fx_fmt_udec(p, end.insns - begin.insns);
    *p++ = '\n';
    fx_cio_send(FX_CIO_STDOUT, p);
}

#if defined(FX_SIM_COUNTERS) && !defined(FX_STEP_HOOKS)
/* Counters at the start of the open step. In SRAM: after a power failure crt0 zeroes it, and a
 * step finished in a later boot reports its cycles since that boot. */
static fx_sim_count_t fx_step_start;

void fx_step_begin(uint16_t step)
{
    (void)step;
    fx_step_start = fx_sim_now();
}

void fx_step_end(uint16_t step)
{
    fx_sim_count_t end = fx_sim_now();
    fx_sim_report("step", step, fx_step_start, end);
}
#endif

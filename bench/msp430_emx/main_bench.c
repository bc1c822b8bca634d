/* main_bench.c - one inference of a C model in the MSP430 simulator, with its cost and its stack peak
 * (bench/msp430_models.py: emx-onnx-cgen's float C and freeml-tx's fixed-point C, measured alike).
 *
 * Compile with
 *   -DBENCH_ENTRY=<entry function>   BENCH_RET BENCH_ENTRY(const BENCH_T *in, BENCH_T *out)
 *   -DBENCH_T=float|int16_t -DBENCH_RET=void|int -DBENCH_IN=<elements in> -DBENCH_OUT=<elements out>
 *   -DBENCH_STACK_LO=<symbol> -DBENCH_STACK_TOP=<symbol>   the stack's region (linker symbols)
 *   -DFX_SIM_COUNTERS
 * and link with bench_input.c (const BENCH_T bench_input[BENCH_IN]), cio.c and a crt0. Prints through
 * CIO:
 *   y <i> <hex>                      the outputs' bits (8 hex digits for float, 4 for int16_t)
 *   run cycles <N> instructions <M>  the entry function's cost (the simulator's counters)
 *   stack <bytes>                    the stack's high-water mark: the region below main's frame is
 *                                    painted with 0xA5A5 before the call and scanned after it
 */
#include <stdint.h>

#include "cio.h"
#include "fx_platform_msp430.h"

#if !defined(BENCH_ENTRY) || !defined(BENCH_T) || !defined(BENCH_RET) || !defined(BENCH_IN) || \
    !defined(BENCH_OUT) || !defined(BENCH_STACK_LO) || !defined(BENCH_STACK_TOP)
#error "main_bench.c: compile with -DBENCH_ENTRY= -DBENCH_T= -DBENCH_RET= -DBENCH_IN= -DBENCH_OUT= -DBENCH_STACK_LO= -DBENCH_STACK_TOP="
#endif

/* emx-onnx-cgen's entry takes arrays (const float input[1][...], float output[1][...]), which are
 * passed as pointers: this declaration has the same calling convention. */
BENCH_RET BENCH_ENTRY(const BENCH_T *input, BENCH_T *output);
extern const BENCH_T bench_input[BENCH_IN];
extern uint16_t BENCH_STACK_LO[];
extern uint16_t BENCH_STACK_TOP[];

static BENCH_T bench_output[BENCH_OUT] __attribute__((lower));

typedef union {
    BENCH_T v;
    uint32_t u;
} bench_bits_t;

static void bench_line(const char *label, uint32_t a, const char *label2, uint32_t b)
{
    char *p = fx_fmt_str(fx_cio_line(), label);
    p = fx_fmt_udec(p, a);
    if (label2 != 0) {
        p = fx_fmt_str(p, label2);
        p = fx_fmt_udec(p, b);
    }
    *p++ = '\n';
    fx_cio_send(FX_CIO_STDOUT, p);
}

int main(void)
{
    volatile uint16_t *w = BENCH_STACK_LO;
    volatile uint16_t *limit = (volatile uint16_t *)__builtin_frame_address(0) - 64;
    fx_sim_count_t t0, t1;
    uint16_t i;

    while (w < limit) /* paint the stack below main's frame */
        *w++ = 0xA5A5u;
    t0 = fx_sim_now();
    BENCH_ENTRY(bench_input, bench_output);
    t1 = fx_sim_now();
    for (i = 0; i < (uint16_t)(BENCH_OUT); i++) {
        bench_bits_t b;
        char *p = fx_fmt_str(fx_cio_line(), "y ");
        b.u = 0;
        b.v = bench_output[i];
        p = fx_fmt_udec(p, i);
        *p++ = ' ';
        p = fx_fmt_hex(p, b.u & (sizeof(BENCH_T) == 2 ? 0xFFFFul : 0xFFFFFFFFul), (int)(2 * sizeof(BENCH_T)));
        *p++ = '\n';
        fx_cio_send(FX_CIO_STDOUT, p);
    }
    bench_line("run cycles ", t1.cycles - t0.cycles, " instructions ", t1.insns - t0.insns);
    for (w = BENCH_STACK_LO; w < limit && *w == 0xA5A5u; w++)
        ;
    bench_line("stack ", (uint32_t)((uintptr_t)BENCH_STACK_TOP - (uintptr_t)w), 0, 0);
    return 0;
}

/* fx_platform_msp430.h - MSP430FR5994 platform layer: the simulator's counters.
 *
 * The patched msp430-elf-run maps two read-only 64-bit counters at 0x0580-0x058F (cycles and
 * executed instructions since the last boot; shared/toolchains/msp430/README.md). fr5994.ld
 * defines the window as the symbol fx_sim_counters. Reading word 0 latches all eight words, so
 * fx_sim_cycles() must come first and fx_sim_insns_latched() then returns the instructions at the
 * same moment. On real hardware the window reads 0; without -DFX_SIM_COUNTERS both functions
 * return 0 and touch nothing.
 */
#ifndef FX_PLATFORM_MSP430_H
#define FX_PLATFORM_MSP430_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Cycles and instructions of one measured interval. */
typedef struct {
    uint32_t cycles;
    uint32_t insns;
} fx_sim_count_t;

#ifdef FX_SIM_COUNTERS
extern volatile const uint16_t fx_sim_counters[8];

/* Two 16-bit halves -> 32 bits. A union, because msp430-elf-gcc 12 compiles
 * ((uint32_t)hi << 16) | lo into a call of libgcc's shift helper (MSP430 is little-endian). */
typedef union {
    uint32_t u;
    uint16_t h[2];
} fx_sim_u32_t;

/* Cycles since the last boot, bits 0-31; latches the instruction count too. */
static inline uint32_t fx_sim_cycles(void)
{
    fx_sim_u32_t v;
    v.h[0] = fx_sim_counters[0]; /* latch; bits 0-15 */
    v.h[1] = fx_sim_counters[1];
    return v.u;
}

/* Instructions since the last boot, bits 0-31, as latched by the last fx_sim_cycles(). */
static inline uint32_t fx_sim_insns_latched(void)
{
    fx_sim_u32_t v;
    v.h[0] = fx_sim_counters[4];
    v.h[1] = fx_sim_counters[5];
    return v.u;
}
#else
static inline uint32_t fx_sim_cycles(void) { return 0u; }
static inline uint32_t fx_sim_insns_latched(void) { return 0u; }
#endif

/* Both counters now (cycles first: it latches). */
static inline fx_sim_count_t fx_sim_now(void)
{
    fx_sim_count_t c;
    c.cycles = fx_sim_cycles();
    c.insns = fx_sim_insns_latched();
    return c;
}

/* Print "<label> <index> cycles <N> instructions <M>\n" at-least-once through CIO. */
void fx_sim_report(const char *label, uint16_t index, fx_sim_count_t begin, fx_sim_count_t end);

#ifdef __cplusplus
}
#endif
#endif /* FX_PLATFORM_MSP430_H */

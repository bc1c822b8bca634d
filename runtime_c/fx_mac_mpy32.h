/* fx_mac_mpy32.h - FX_MAC_BEGIN / FX_MAC / FX_MAC_END on the MSP430's MPY32 multiplier.
 *
 * Included by fx_mac.h when FX_USE_MPY32 is defined (the msp430.mk build does that). Same
 * contract as the portable version in fx_mac.h: a 32-bit accumulator that wraps modulo 2^32,
 * started at a bias, plus signed 16x16 products:
 *
 *   FX_MAC_BEGIN(bias)  RESLO = bias bits 0-15, RESHI = bias bits 16-31 (preload)
 *   FX_MAC(a, b)        MACS = a; OP2 = b      (RESHI:RESLO += a * b, signed, wraps)
 *   FX_MAC_END()        (int32_t)(RESHI << 16 | RESLO)
 *
 * The chain is always started by preloading RESLO/RESHI, never by MPYS: one code path for every
 * bias, no special first product, and a chain of zero products gives the bias.
 *
 * The registers are `extern volatile' objects whose addresses come from the linker script
 * (platform/msp430/fr5994.ld; TI's linker scripts define the same names), so no cast constant
 * address trips GCC 12's -Warray-bounds. Volatile keeps the stores in program order: MACS before
 * OP2, every product before the result is read.
 *
 * Rules for code between FX_MAC_BEGIN and FX_MAC_END (the multiplier has ONE result register):
 *   - no multiplication of two non-constant integers: msp430-elf-gcc turns it into a call of a
 *     libgcc helper (__mspabi_mpyi_f5hw, ...) that uses the same MPY32 registers and destroys the
 *     accumulator; compute indices by additions (strength reduction) before or outside the chain;
 *   - no function calls that might multiply, no nested FX_MAC_BEGIN;
 *   - no interrupt handler that uses the multiplier may run (freeml-tx code runs with interrupts
 *     off; an application that enables them must save and restore MPY32 in its handlers).
 * The portable version does not have these limits, so tests must run the kernels on the
 * simulator (tests/msp430/) to catch a violation.
 */
#ifndef FX_MAC_MPY32_H
#define FX_MAC_MPY32_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern volatile int16_t MACS, OP2;
extern volatile uint16_t MPY;
extern volatile uint16_t RESLO, RESHI;

#ifdef __cplusplus
}
#endif

/* The 32-bit value as two 16-bit halves through a union (the MSP430 is little-endian):
 * msp430-elf-gcc 12 compiles `x >> 16` and `(uint32_t)hi << 16` of 32-bit values into calls of
 * libgcc's shift helpers (__mspabi_srll, __mspabi_slll), the union into plain moves. */
typedef union {
    uint32_t u;
    uint16_t h[2];
} fx_mac_u32_t;

#define FX_MAC_BEGIN(bias)                                                   \
    do {                                                                     \
        fx_mac_u32_t fx_mac_bias_;                                           \
        fx_mac_bias_.u = (uint32_t)(int32_t)(bias);                          \
        RESLO = fx_mac_bias_.h[0];                                           \
        RESHI = fx_mac_bias_.h[1];                                           \
    } while (0)

#define FX_MAC(a, b) (MACS = (int16_t)(a), OP2 = (int16_t)(b))

#define FX_MAC_END() fx_mac_mpy32_result_()

/* RESLO before RESHI, as fx_mac_mpy32_result_. */
#define FX_MAC_END_HALVES(lo, hi) ((lo) = RESLO, (hi) = RESHI)

/* The unsigned 16x16 multiply (MPY, then OP2 starts it); OP2 takes b's 16 bits (the conversion
 * to int16_t wraps in GCC). */
#define FX_UMUL16(a, b, lo, hi)                                              \
    do {                                                                     \
        MPY = (uint16_t)(a);                                                 \
        OP2 = (int16_t)(b);                                                  \
        (lo) = RESLO;                                                        \
        (hi) = RESHI;                                                        \
    } while (0)

/* FX_MAC_PP(xp, wp): acc += *xp * *wp, then ++xp, ++wp (xp, wp: `const int16_t *' variables).
 * Two instructions, `mov @xp+, &MACS' and `mov @wp+, &OP2' (4 + 4 cycles), which GCC does not
 * generate from FX_MAC in unrolled loops (it switches to indexed operands, 5-6 cycles each).
 * A dot product unrolled four times with it costs 2.5 instructions and 8.75 cycles per MAC in
 * the small model (bench/msp430_mac.py), against 4 and 11 for the plain FX_MAC loop.
 * Portable equivalent (what fx_mac.h should define without FX_USE_MPY32):
 *   #define FX_MAC_PP(xp, wp) (FX_MAC(*(xp), *(wp)), ++(xp), ++(wp)) */
#define FX_MAC_PP(xp, wp)                                                    \
    __asm__ volatile("mov @%0+, &MACS\n\tmov @%1+, &OP2"                     \
                     : "+r"(xp), "+r"(wp)                                    \
                     :                                                       \
                     : "memory")

/* Reads RESLO before RESHI (one statement each, so the order is fixed). */
static inline int32_t fx_mac_mpy32_result_(void)
{
    fx_mac_u32_t r;
    r.h[0] = RESLO;
    r.h[1] = RESHI;
    return (int32_t)r.u;
}

#endif /* FX_MAC_MPY32_H */

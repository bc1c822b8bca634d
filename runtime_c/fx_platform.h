/* fx_platform.h - platform hooks the generated code calls (host: empty; MSP430: see below).
 *
 *   FX_STEP_BEGIN(i);   the emitter places these around step i of an inference (i: integer
 *   FX_STEP_END(i);     constant, the LIR step index).
 *
 * They cost nothing unless a build asks for them:
 *   -DFX_SIM_COUNTERS on the MSP430 (msp430.mk: make msp430 MSP430_COUNTERS=1): FX_STEP_BEGIN
 *       reads the simulator's cycle/instruction counters, FX_STEP_END reads them again and prints
 *       "step <i> cycles <N> instructions <M>" through CIO (platform/msp430/fx_platform_msp430.c).
 *       The counters restart at each boot, so the figures are meaningful for runs without power
 *       failures; the line is printed at-least-once (again if the step is re-executed).
 *   -DFX_STEP_HOOKS on any platform: the macros call fx_step_begin(i) / fx_step_end(i), which the
 *       application defines (e.g. a host profiler).
 */
#ifndef FX_PLATFORM_H
#define FX_PLATFORM_H

#include <stdint.h>

#if (defined(FX_SIM_COUNTERS) && defined(__MSP430__)) || defined(FX_STEP_HOOKS)
#ifdef __cplusplus
extern "C" {
#endif
void fx_step_begin(uint16_t step);
void fx_step_end(uint16_t step);
#ifdef __cplusplus
}
#endif
#define FX_STEP_BEGIN(i) fx_step_begin((uint16_t)(i))
#define FX_STEP_END(i) fx_step_end((uint16_t)(i))
#else
#define FX_STEP_BEGIN(i) ((void)0)
#define FX_STEP_END(i) ((void)0)
#endif

#endif /* FX_PLATFORM_H */

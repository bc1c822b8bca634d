/* fx_mac.h - the multiply-accumulate primitive every dot product in the kernels goes through.
 *
 *   FX_MAC_BEGIN(bias);    start a 32-bit wrapping accumulator at bias (int32_t)
 *   FX_MAC(a, b);          acc += (int32_t)a * b   (a, b int16_t)
 *   FX_MAC_END()           the accumulator as int32_t
 *   FX_MAC_PP(xp, wp);     acc += *xp * *wp, then ++xp, ++wp (xp, wp: `const int16_t *'
 *                          variables); on the MSP430 two auto-increment moves into MACS/OP2
 *   FX_MAC_END_HALVES(lo, hi);  the accumulator's low and high 16 bits into two uint16_t (ends
 *                          the accumulation like FX_MAC_END; no 32-bit shift on the MSP430)
 *   FX_UMUL16(a, b, lo, hi);    the unsigned product a * b (uint16_t a, b) as two uint16_t
 *                          halves; outside an accumulation (it uses the same multiplier)
 *
 * Only one accumulation may be open at a time (MPY32 has one result register). The portable
 * version below is used on the host and wherever FX_USE_MPY32 is not defined; the MSP430 platform
 * provides the MPY32 version (RESLO/RESHI preloaded with the bias, then MACS/OP2 per product).
 */
#ifndef FX_MAC_H
#define FX_MAC_H

#include <stdint.h>

#if defined(FX_USE_MPY32)
#include "fx_mac_mpy32.h"
#else
#define FX_MAC_BEGIN(bias) uint32_t fx_mac_acc_ = (uint32_t)(int32_t)(bias)
#define FX_MAC(a, b) (fx_mac_acc_ += (uint32_t)((int32_t)(a) * (int32_t)(b)))
#define FX_MAC_END() ((int32_t)fx_mac_acc_)
#define FX_MAC_END_HALVES(lo, hi) ((lo) = (uint16_t)fx_mac_acc_, (hi) = (uint16_t)(fx_mac_acc_ >> 16))
#define FX_UMUL16(a, b, lo, hi)                                              \
    do {                                                                     \
        const uint32_t fx_umul_ = (uint32_t)(uint16_t)(a) * (uint16_t)(b);   \
        (lo) = (uint16_t)fx_umul_;                                           \
        (hi) = (uint16_t)(fx_umul_ >> 16);                                   \
    } while (0)
#endif

#ifndef FX_MAC_PP
#define FX_MAC_PP(xp, wp) (FX_MAC(*(xp), *(wp)), ++(xp), ++(wp))
#endif

/* After FX_MAC_END, for kernels that produce many outputs per channel: fx_requant specialised
 * for one shift (fx_requant.c), chosen once per output channel. fx_requant_fn(s)(acc) ==
 * fx_requant(acc, s), without the per-call dispatch on s. */
typedef int16_t fx_requant_fn_t(int32_t acc);
fx_requant_fn_t *fx_requant_fn(int8_t shift);

#endif /* FX_MAC_H */

/* fx_requant.c - the scalar fixed-point helpers: requantisation and activations.
 *
 * The rounding mode is defined in docs/lir.md ("Arithmetic"); this file is its C form.
 * Right shifts of negative int32_t values are implementation-defined in C99; GCC, Clang and
 * msp430-elf-gcc define them as arithmetic (sign-propagating) shifts, which is what we rely on.
 * Left shifts of negative values (undefined) are never used: scaling up multiplies instead.
 */
#include "fx_kernels.h"

int16_t fx_requant(int32_t acc, int8_t shift)
{
    int32_t r;
    if (shift > 0) {
        /* floor(acc / 2^s + 1/2) without overflow: t = floor(acc / 2^(s-1)), r = ceil(t / 2). */
        int32_t t = acc >> (shift - 1);
        r = (t >> 1) + (int32_t)((uint32_t)t & 1u);
    } else if (shift == 0) {
        r = acc;
    } else {
        /* acc * 2^k saturated: compare first so the product never overflows. */
        int k = -shift;
        if (acc > ((int32_t)INT16_MAX >> k)) {
            return INT16_MAX;
        }
        if (acc < ((int32_t)INT16_MIN >> k)) {
            return INT16_MIN;
        }
        return (int16_t)(acc * ((int32_t)1 << k));
    }
    if (r > INT16_MAX) {
        return INT16_MAX;
    }
    if (r < INT16_MIN) {
        return INT16_MIN;
    }
    return (int16_t)r;
}

int16_t fx_apply_act(const fx_act_t *a, int16_t y)
{
    switch (a->kind) {
    case FX_ACT_RELU:
        return y < 0 ? 0 : y;
    case FX_ACT_CLIP: {
        /* min(max(y, lo), hi), in this order (hi wins when lo > hi). */
        int16_t t = y < a->lo ? a->lo : y;
        return t > a->hi ? a->hi : t;
    }
    case FX_ACT_LEAKY:
        return y >= 0 ? y : fx_requant((int32_t)y * a->alpha, 15);
    default:
        return y;
    }
}

/* fx_requant.c - the scalar fixed-point helpers: requantisation and activations.
 *
 * The rounding mode is defined in docs/lir.md ("Arithmetic"); this file is its C form.
 * Right shifts of negative integers are implementation-defined in C99, and so is the conversion
 * of an out-of-range unsigned value to a signed type; GCC, Clang and msp430-elf-gcc define them
 * as arithmetic (sign-propagating) shifts and modulo 2^N, which is what we rely on.
 * Left shifts of negative values (undefined) are never used.
 *
 * fx_requant runs once per output of every layer, and on a 16-bit CPU a variable shift of a
 * 32-bit value is a libgcc loop (__mspabi_sral: 270-300 cycles per output at shift 16). So the
 * accumulator is handled as two 16-bit halves, and the shift goes through a switch whose cases
 * shift by constants (msp430-elf-gcc: `rpt #n { rrax.w', n + 1 cycles). No 32-bit shift,
 * multiplication or division is left: about 40-60 cycles for any shift.
 */
#include "fx_kernels.h"
#include "fx_mac.h"

/* The 16-bit halves of a 32-bit value. msp430-elf-gcc 12 turns even `(uint32_t)v >> 16' into a
 * libgcc call, the union into nothing (the MSP430 is little-endian; the halves are registers). */
#if defined(__MSP430__)
typedef union {
    uint32_t u;
    uint16_t h[2];
} fx_rq_halves_t;

static inline uint16_t fx_rq_hi(uint32_t v)
{
    fx_rq_halves_t x;
    x.u = v;
    return x.h[1];
}
#else
static inline uint16_t fx_rq_hi(uint32_t v) { return (uint16_t)(v >> 16); }
#endif

/* requant(acc, s) for a constant s (every call below has a literal s, so each case of the switch
 * in fx_requant compiles to straight-line code with constant shifts: 32-bit shifts by constants
 * are inline two-instruction steps, 16-bit ones `rpt #n { rrax.w'). */
static inline int16_t fx_requant_by(int32_t acc, const int s)
{
    if (s > 16) {
        /* floor(acc / 2^s + 1/2) = floor((hi + 2^(k-1)) / 2^k) with hi = floor(acc / 2^16) and
         * k = s - 16: the low half cannot carry over a multiple of 2^k. No saturation needed. */
        const int16_t t = (int16_t)((int16_t)fx_rq_hi((uint32_t)acc) >> (s - 17));
        return (int16_t)((t >> 1) + (int16_t)((uint16_t)t & 1u));
    }
    if (s > 0) {
        /* a = acc + 2^(s-1) modulo 2^32, r = floor(a / 2^s) (the high half of a << (16 - s)).
         * r fits int16 iff a is in [-2^(15+s), 2^(15+s)), i.e. iff the high half of a is in
         * [-2^(s-1), 2^(s-1)); when acc + 2^(s-1) wraps past INT32_MAX the high half is 0x8000,
         * which the same test rejects, and the sign of acc gives the saturation. */
        const uint32_t a = (uint32_t)acc + ((uint32_t)1 << (s - 1));
        const uint16_t ahi = fx_rq_hi(a);
        if (s == 16) {
            if (ahi == 0x8000u && acc >= 0) {
                return INT16_MAX;
            }
            return (int16_t)ahi;
        }
        if (((uint16_t)(ahi + (1u << (s - 1))) & (uint16_t)(0xFFFFu << s)) != 0u) {
            return acc < 0 ? INT16_MIN : INT16_MAX;
        }
        if (s >= 9) {
            return (int16_t)fx_rq_hi(a << (16 - s));        /* 2 (16 - s) instructions */
        }
        if (s >= 5) {                                        /* two `rpt' shifts of the halves */
            return (int16_t)(uint16_t)(((uint16_t)a >> s) | (uint16_t)((unsigned)ahi << (16 - s)));
        }
        return (int16_t)(uint16_t)(a >> s);                 /* 3 s instructions */
    }
    /* s <= 0: acc * 2^-s, saturated (compare first, so nothing overflows) */
    if (acc > (INT16_MAX >> -s)) {
        return INT16_MAX;
    }
    if (acc < (INT16_MIN >> -s)) {
        return INT16_MIN;
    }
    return (int16_t)(uint16_t)((uint16_t)acc << -s);
}

/* One function per shift (index = shift + 15), called through a table: each is a few
 * straight-line instructions with its own registers (a 47-case switch in one function compiles to
 * a tree of compares and a large stack frame). */
#define FX_RQ_FN(i)                                                          \
    static int16_t fx_rq_##i(int32_t acc) { return fx_requant_by(acc, (i) - 15); }

FX_RQ_FN(0)
FX_RQ_FN(1)
FX_RQ_FN(2)
FX_RQ_FN(3)
FX_RQ_FN(4)
FX_RQ_FN(5)
FX_RQ_FN(6)
FX_RQ_FN(7)
FX_RQ_FN(8)
FX_RQ_FN(9)
FX_RQ_FN(10)
FX_RQ_FN(11)
FX_RQ_FN(12)
FX_RQ_FN(13)
FX_RQ_FN(14)
FX_RQ_FN(15)
FX_RQ_FN(16)
FX_RQ_FN(17)
FX_RQ_FN(18)
FX_RQ_FN(19)
FX_RQ_FN(20)
FX_RQ_FN(21)
FX_RQ_FN(22)
FX_RQ_FN(23)
FX_RQ_FN(24)
FX_RQ_FN(25)
FX_RQ_FN(26)
FX_RQ_FN(27)
FX_RQ_FN(28)
FX_RQ_FN(29)
FX_RQ_FN(30)
FX_RQ_FN(31)
FX_RQ_FN(32)
FX_RQ_FN(33)
FX_RQ_FN(34)
FX_RQ_FN(35)
FX_RQ_FN(36)
FX_RQ_FN(37)
FX_RQ_FN(38)
FX_RQ_FN(39)
FX_RQ_FN(40)
FX_RQ_FN(41)
FX_RQ_FN(42)
FX_RQ_FN(43)
FX_RQ_FN(44)
FX_RQ_FN(45)
FX_RQ_FN(46)

static fx_requant_fn_t *const fx_rq_table[47] = {
    fx_rq_0, fx_rq_1, fx_rq_2, fx_rq_3, fx_rq_4, fx_rq_5,
    fx_rq_6, fx_rq_7, fx_rq_8, fx_rq_9, fx_rq_10, fx_rq_11,
    fx_rq_12, fx_rq_13, fx_rq_14, fx_rq_15, fx_rq_16, fx_rq_17,
    fx_rq_18, fx_rq_19, fx_rq_20, fx_rq_21, fx_rq_22, fx_rq_23,
    fx_rq_24, fx_rq_25, fx_rq_26, fx_rq_27, fx_rq_28, fx_rq_29,
    fx_rq_30, fx_rq_31, fx_rq_32, fx_rq_33, fx_rq_34, fx_rq_35,
    fx_rq_36, fx_rq_37, fx_rq_38, fx_rq_39, fx_rq_40, fx_rq_41,
    fx_rq_42, fx_rq_43, fx_rq_44, fx_rq_45, fx_rq_46,
};

fx_requant_fn_t *fx_requant_fn(int8_t shift)
{
    const uint16_t i = (uint16_t)(shift + 15);
    /* shifts outside [-15, 31] (which the LIR never has) act as 0 */
    return fx_rq_table[i <= 46u ? i : 15u];
}

int16_t fx_requant(int32_t acc, int8_t shift)
{
    return fx_requant_fn(shift)(acc);
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

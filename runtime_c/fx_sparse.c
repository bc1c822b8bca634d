/* fx_sparse.c - fully connected and convolution layers with compressed (sparse) weights.
 *
 * Both kernels compute exactly what fx_fc / fx_conv compute on the dense weights they encode
 * (docs/lir.md, "Sparse ops"): the accumulator wraps modulo 2^32, so skipping the zero products
 * changes no bit.
 *
 * fx_fc_sparse: CSR rows with byte steps, y[n] = act(requant(bias[n] + sum_j x[c_j] * values[j],
 * shift[n])) over j in [rowptr[n], rowptr[n+1]), where a pointer that starts at x for every row
 * advances deltas[j] bytes before product j: three instructions per stored weight on the MSP430
 * (add the step to the pointer, move x[c_j] into MACS, move the value into OP2; FX_SPARSE_STEP).
 * With MPY32 and act ReLU or none (every shift in 1..16, none: 1..15; the descriptor's
 * shift_min/shift_max), fx_fc_sparse_asm runs the rows in one assembly loop that requantises with
 * each row's own shift: 10.0 cycles per stored weight and about 66 per row (rows of more than
 * FX_SPARSE_FC_CHAIN weights: 10.6 and 57), against 8.6 per weight of the dense fx_fc
 * (bench/sparse_speed.py); other activations and shifts take the C loop.
 * In the large model the pointer arithmetic is 16 bits wide, so an x that reaches past 64 KiB
 * takes a portable loop (fx_fc_sparse_far).
 *
 * fx_conv_sparse: per output channel the pairs (offset, value), offset = ci' * Hv * Wv + ky * dh
 * * Wv + kx * dw the tap's input offset from its window's origin (docs/lir.md; Hv x Wv is the
 * input grown to the dilated kernel, ih x iw unless the kernel is larger). A channel with at most
 * FX_SPARSE_RUN_TAPS taps takes the fast path:
 *   - a call whose windows all lie inside the input (fx_sparse_inside): one block per channel,
 *     its table of (byte step, value) pairs straight from the offsets' differences (2 (d_i -
 *     d_i-1)), two taps per assembly loop, 14 cycles per tap;
 *   - a call with borders (fx_sparse_borders): its rows and columns are cut once per call into
 *     classes whose windows see the same kernel rows / columns (the interior rows, each border
 *     row; the interior columns, each border column), at most FX_SPARSE_CLASSES each; a channel's
 *     taps are decoded once (an assembly walk without division, whole channels skipped: 31 cycles
 *     per tap) into a list of (classes that do not see it, d, value), and each block (row class x
 *     column class) gets its table by one bit test per tap (21 cycles per tap taken, 8 left); a
 *     border column runs as one line down the rows of its class, a one-output block (a corner)
 *     is computed straight from the list.
 * fx_sparse_run computes a block without bounds checks: on the MSP430 an assembly loop that reads
 * its set-up from the table, per output tap 0 through MPYS and a jump into an unrolled chain of
 * `add @p+, xr; mov @xr, &MACS; mov @p+, &OP2' (10 cycles per tap; the pointer runs on from one
 * output's last tap to the next output's first), then the bias added in registers and a
 * requantisation on 16-bit halves specialised for ReLU and none (with ReLU 25 + 2 (16 - shift)
 * cycles per output besides the taps, about 10 more with none; bench/sparse_speed.py: 70-71 % of
 * the ideal speed-up at 10 % density).
 * A channel with more taps (fx_sparse_long), in a call the fast path takes with rows of at most
 * FX_SPARSE_ACC (64) outputs and a kernel within FX_SPARSE_KMAX, runs band by band of
 * FX_SPARSE_ACC / ow output rows (the band's classes once for its channels): its taps pass in
 * groups of FX_SPARSE_RUN_TAPS through fx_sparse_list, the blocks' tables and fx_sparse_run, each
 * output keeping its 32-bit partial sum in the band's image between the groups (fx_sparse_run adds
 * it into RESLO/RESHI after tap 0 and stores it back, or requantises after the last group: about
 * 26 cycles per output and group besides the taps; the fast path's own code and cycles are
 * unchanged). bench/sparse_speed.py, conv 3x3 pad 1 64 -> 32 ch at 8x8 (576 weights per channel):
 * 44 + 15.8 cycles per stored weight per output (its fit over densities <= 10 %; the chunked
 * path: 43.5 per weight), 51 % of the ideal speed-up at 10 % density (was 22 %), 49 % at 5 % (was
 * 34 %); its geometry (64 outputs per channel, 28 of them on the border, tables and corners per
 * channel) keeps the fast path itself at 42 % at 2 %. A channel with more taps in rows wider
 * than FX_SPARSE_ACC, an x above 64 KiB in the large model, or a call with more classes or a
 * kernel row longer than FX_SPARSE_KMAX takes the chunked path: taps decoded FX_SPARSE_CONV_TAPS
 * at a time, segments of FX_SPARSE_CONV_SEG outputs with 32-bit partial sums, interior windows
 * without checks and border taps checked against their valid ranges (about 44 cycles per stored
 * weight and output).
 * Stack (-fstack-usage, small / large model): fx_conv_sparse 68 / 90 bytes + fx_sparse_borders
 * 578 / 636 (the list and table; its callee fx_sparse_classes 66 / 94) or fx_sparse_inside 216 /
 * 242 or fx_sparse_chunked 432 / 460 or fx_sparse_long 888 / 962 (a band's partial sums, the
 * list, classes and table): plan-memory reserves SPARSE_LONG_STACK more for a program with a
 * channel of more than FX_SPARSE_RUN_TAPS taps.
 *
 * Offsets and d are uint16: the offsets' layout of one group must have at most 65535 elements
 * (cin / group * Hv * Wv <= 65535; d is computed modulo 2^16 and every valid tap's input index
 * fits). The printer (backends/c/printers.py, print_conv_sparse) checks it; lower keeps such a
 * layer dense.
 *
 * The rules of fx_mac.h hold: between FX_MAC_BEGIN and FX_MAC_END only additions, compares and
 * loads; no pointer moves more than one element past its array.
 */
#include "fx_kernels.h"
#include "fx_mac.h"
#include "fx_store.h"
#include "fx_window.h"

/* FX_SPARSE_STEP(xr, dp, vp): xr advances by *dp bytes, acc += *xr * *vp, then ++dp, ++vp
 * (xr, vp: `const int16_t *', dp: `const uint16_t *' variables). On the MSP430 with MPY32 three
 * instructions, 10 cycles: `add @dp+, xr; mov @xr, &MACS; mov @vp+, &OP2'. The add is 16 bits
 * wide (the MSP430X clears bits 19-16 of its destination), so in the large model the caller makes
 * sure that xr stays below 64 KiB (FX_SPARSE_NEAR). */
#if defined(FX_USE_MPY32) && defined(__MSP430__)
#define FX_SPARSE_ASM 1
#define FX_SPARSE_STEP(xr, dp, vp)                                                       \
    __asm__ volatile("add @%1+, %0\n\tmov @%0, &MACS\n\tmov @%2+, &OP2"                 \
                     : "+r"(xr), "+r"(dp), "+r"(vp)                                      \
                     :                                                                   \
                     : "memory")
#else
#define FX_SPARSE_ASM 0
#define FX_SPARSE_STEP(xr, dp, vp) FX_SPARSE_STEP_C(xr, dp, vp)
#endif

/* The portable form of FX_SPARSE_STEP, for any address. */
#define FX_SPARSE_STEP_C(xr, dp, vp)                                                     \
    do {                                                                                 \
        (xr) = (const int16_t *)(const void *)((const uint8_t *)(xr) + *(dp));           \
        FX_MAC(*(xr), *(vp));                                                            \
        ++(dp);                                                                          \
        ++(vp);                                                                          \
    } while (0)

/* Whether FX_SPARSE_STEP may walk the `bytes' bytes from x: always, except in the MSP430's large
 * model, where x + bytes must not pass 64 KiB (the generated code's activations never do: they
 * are in SRAM or lower FRAM). */
#if defined(FX_USE_MPY32) && defined(__MSP430X_LARGE__)
#define FX_SPARSE_NEAR(x, bytes) ((uint32_t)(uintptr_t)(x) + (uint32_t)(bytes) <= 0x10000ul)
#else
#define FX_SPARSE_NEAR(x, bytes) 1
#endif

/* acc += the n products of FX_SPARSE_STEP(xr, dp, vp), inside an open FX_MAC chain. The n mod 8
 * first (a jump into an unrolled run), then eight at a time with the test at the bottom. */
#define FX_SPARSE_DOT(xr, dp, vp, n)                                                     \
    do {                                                                                 \
        uint16_t fx_sp_g_ = (uint16_t)((n) >> 3);                                        \
        switch ((n) & 7u) {                                                              \
        case 7u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        case 6u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        case 5u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        case 4u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        case 3u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        case 2u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        case 1u: FX_SPARSE_STEP(xr, dp, vp); /* fall through */                          \
        default: break;                                                                  \
        }                                                                                \
        while (fx_sp_g_ != 0u) {                                                         \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            FX_SPARSE_STEP(xr, dp, vp);                                                  \
            --fx_sp_g_;                                                                  \
        }                                                                                \
    } while (0)

#ifndef FX_SPARSE_CONV_TAPS
#define FX_SPARSE_CONV_TAPS 32
#endif
#ifndef FX_SPARSE_CONV_SEG
#define FX_SPARSE_CONV_SEG 32
#endif

/* Mnemonics of the assembly loops for the memory model (FX_SPARSE_ASM). */
#if FX_SPARSE_ASM
#if defined(__MSP430X_LARGE__)
#define FX_SP_A_ "a"            /* mova, adda, suba, bra, calla: 20-bit addresses */
#define FX_SP_X_ "x.a"          /* incdx.a, addx.a, pushx.a, popx.a */
#define FX_SP_XW_ "x.w"         /* movx.w: a 16-bit store through a 20-bit pointer */
#define FX_SP_M_ ".a"           /* pushm.a, popm.a */
#define FX_SP_FRAME_ "48"       /* bytes of pushm.a #12 */
#else
#define FX_SP_A_ ""
#define FX_SP_X_ ""
#define FX_SP_XW_ ""
#define FX_SP_M_ ".w"
#define FX_SP_FRAME_ "24"
#endif
#define FX_SP_STR2_(v) #v
#define FX_SP_STR_(v) FX_SP_STR2_(v)
#define FX_SP_STEP_ "add @%[dp]+, %[xr]\n\tmov @%[xr], &MACS\n\tmov @%[vp]+, &OP2\n\t"
/* The same for a row's first product: MPYS, which starts RES afresh. */
#define FX_SP_FIRST_ "add @%[dp]+, %[xr]\n\tmov @%[xr], &MPYS\n\tmov @%[vp]+, &OP2\n\t"
#endif

/* act(y) with ReLU and "none" inline (a call of fx_apply_act costs more than the rest of an
 * output's bookkeeping); the others through fx_apply_act. */
static inline int16_t fx_sparse_act(const fx_act_t *a, int16_t y)
{
    if (a->kind == FX_ACT_RELU) {
        return y < 0 ? 0 : y;
    }
    return a->kind == FX_ACT_NONE ? y : fx_apply_act(a, y);
}

/* Rows [n0, n1) with x anywhere: FX_SPARSE_STEP_C one product at a time (the large model's
 * fallback when x lies above 64 KiB). */
static void fx_fc_sparse_far(const fx_fc_sparse_t *p, const int16_t *x, int16_t *y, uint16_t n0,
                             uint16_t n1)
{
    uint16_t n;
    for (n = n0; n < n1; ++n) {
        const uint16_t j0 = p->rowptr[n], j1 = p->rowptr[n + 1u];
        const uint16_t *dp = p->deltas + j0;
        const int16_t *vp = p->values + j0;
        const int16_t *xr = x;
        uint16_t j;
        int32_t acc;
        FX_MAC_BEGIN(p->bias[n]);
        for (j = j0; j < j1; ++j) {
            FX_SPARSE_STEP_C(xr, dp, vp);
        }
        acc = FX_MAC_END();
        FX_STORE(y[n], fx_sparse_act(&p->act, fx_requant(acc, p->shift[n])));
    }
}

#if FX_SPARSE_ASM
/* fx_sp_pow2[s] = 2^(s-1) for s in 1..16 (and 2^s = fx_sp_pow2[s + 1] up to s = 15): the
 * rounding term and the range limits of the assembly's requantisation, read at 2s bytes from
 * the table's start (so it must lie below 64 KiB in the large model). */
#if defined(__MSP430X_LARGE__)
#define FX_SP_LOWER_ __attribute__((lower))
#else
#define FX_SP_LOWER_
#endif
static const uint16_t fx_sp_pow2[17] FX_SP_LOWER_ = {
    0u, 0x1u, 0x2u, 0x4u, 0x8u, 0x10u, 0x20u, 0x40u, 0x80u,
    0x100u, 0x200u, 0x400u, 0x800u, 0x1000u, 0x2000u, 0x4000u, 0x8000u};

/* Rows with at most FX_SPARSE_FC_CHAIN stored weights jump into one unrolled chain of steps
 * (at the entry that leaves their count); longer ones take the steps eight at a time. */
#define FX_SPARSE_FC_CHAIN 64

/* The row loop of fx_fc_sparse_asm; RANGE_ tests the rounded accumulator (lo, hi) for a result
 * in range (flags: jhs when it is out), CLIP_ turns a negative out-of-range one into the result. */
#define FX_SP_FC_LOOP_(RANGE_, CLIP_)                                                        \
    __asm__ volatile(                                                                        \
        ".Lrow%=:\n\t"                                                                       \
        "mov @%[rp]+, %[lo]\n\t"                                                             \
        "mov @%[rp], %[g]\n\t"                                                               \
        "sub %[lo], %[g]\n\t"                                                                \
        "mov" FX_SP_A_ " %[x], %[xr]\n\t"                                                    \
        "dec %[g]\n\t"                              /* g = stored weights - 1 (-1: none) */  \
        "cmp #" FX_SP_STR_(FX_SPARSE_FC_CHAIN) ", %[g]\n\t"                                  \
        "jhs .Lbig%=\n\t"                                                                    \
        FX_SP_FIRST_                                /* product 0: RES = x * w */             \
        "mov %[g], %[lo]\n\t"                       /* the chain's entry: .Lend - 10 g */    \
        "add %[lo], %[lo]\n\t"                                                               \
        "add %[lo], %[lo]\n\t"                                                               \
        "add %[g], %[lo]\n\t"                                                                \
        "add %[lo], %[lo]\n\t"                                                               \
        "mov" FX_SP_A_ " #.Lend%=, %[hi]\n\t"                                                \
        "sub" FX_SP_A_ " %[lo], %[hi]\n\t"                                                   \
        "br" FX_SP_A_ " %[hi]\n"                                                             \
        ".Lbig%=:\n\t"                                                                       \
        "cmp #-1, %[g]\n\t"                                                                  \
        "jeq .Lnone%=\n\t"                                                                   \
        FX_SP_FIRST_                                                                         \
        "bit #1, %[g]\n\t"                          /* g mod 8 by bits, then eights */       \
        "jz 1f\n\t"                                                                          \
        FX_SP_STEP_                                                                          \
        "1:\n\t"                                                                             \
        "bit #2, %[g]\n\t"                                                                   \
        "jz 2f\n\t"                                                                          \
        ".rept 2\n\t" FX_SP_STEP_ ".endr\n"                                                  \
        "2:\n\t"                                                                             \
        "bit #4, %[g]\n\t"                                                                   \
        "jz 3f\n\t"                                                                          \
        ".rept 4\n\t" FX_SP_STEP_ ".endr\n"                                                  \
        "3:\n\t"                                                                             \
        "rrum #3, %[g]\n"                           /* >= 8: g >= FX_SPARSE_FC_CHAIN */      \
        "4:\n\t"                                                                             \
        ".rept 8\n\t" FX_SP_STEP_ ".endr\n\t"                                                \
        "dec %[g]\n\t"                                                                       \
        "jnz 4b\n\t"                                                                         \
        "jmp .Lend%=\n"                                                                      \
        ".Lnone%=:\n\t"                             /* no stored weight: acc = bias */       \
        "clr %[lo]\n\t"                                                                      \
        "clr %[hi]\n\t"                                                                      \
        "jmp .Lbias%=\n"                                                                     \
        ".Lchain%=:\n\t"                                                                     \
        ".rept " FX_SP_STR_(FX_SPARSE_FC_CHAIN) "\n\t" FX_SP_STEP_ ".endr\n"                 \
        ".Lend%=:\n\t"                                                                       \
        "mov &RESLO, %[lo]\n\t"                                                              \
        "mov &RESHI, %[hi]\n"                                                                \
        ".Lbias%=:\n\t"                                                                      \
        "add @%[bp]+, %[lo]\n\t"                    /* acc = the products + bias */          \
        "addc @%[bp]+, %[hi]\n\t"                                                            \
        "mov.b @%[sp]+, %[g]\n\t"                                                            \
        "add %[g], %[g]\n\t"                        /* g = 2 shift */                        \
        "add %c[pow](%[g]), %[lo]\n\t"              /* a = acc + 2^(shift-1) */              \
        "adc %[hi]\n\t"                                                                      \
        RANGE_                                                                               \
        "jhs .Lclip%=\n\t"                                                                   \
        "add %[g], %[g]\n\t"                        /* the ladder's entry: 4 (shift - 1) */  \
        "add" FX_SP_A_ " #.Lladder%= - 4, %[g]\n\t"                                          \
        "br" FX_SP_A_ " %[g]\n"                                                              \
        ".Lladder%=:\n\t"                           /* a << (16 - shift): hi is the result */ \
        ".rept 15\n\t"                                                                       \
        "rla %[lo]\n\t"                                                                      \
        "rlc %[hi]\n\t"                                                                      \
        ".endr\n"                                                                            \
        ".Lstore%=:\n\t"                                                                     \
        "mov" FX_SP_XW_ " %[hi], 0(%[yp])\n\t"                                               \
        "incd" FX_SP_X_ " %[yp]\n\t"                                                         \
        "cmp" FX_SP_A_ " %[yend], %[yp]\n\t"                                                 \
        "jne .Lrow%=\n\t"                                                                    \
        "clr %[g]\n\t"                                                                       \
        "jmp .Lexit%=\n"                                                                     \
        ".Lclip%=:\n\t"                             /* out of range, or 0x8000: exact in C */ \
        "cmp #0x8000, %[hi]\n\t"                                                             \
        "jeq .Lslow%=\n\t"                                                                   \
        "tst %[hi]\n\t"                                                                      \
        "mov #0x7FFF, %[hi]\n\t"                                                             \
        "jge .Lstore%=\n\t"                                                                  \
        CLIP_                                                                                \
        "jmp .Lstore%=\n"                                                                    \
        ".Lslow%=:\n\t"                                                                      \
        "mov #1, %[g]\n"                                                                     \
        ".Lexit%=:\n\t"                                                                      \
        ".ifne (.Lstore%= - .Lladder%=) - 60\n\t"                                            \
        ".error \"fx_fc_sparse_asm: a ladder step is not 4 bytes\"\n\t"                      \
        ".endif\n\t"                                                                         \
        ".ifne (.Lend%= - .Lchain%=) - 10 * " FX_SP_STR_(FX_SPARSE_FC_CHAIN) "\n\t"          \
        ".error \"fx_fc_sparse_asm: a chain step is not 10 bytes\"\n\t"                      \
        ".endif"                                                                             \
        : [dp] "+r"(dp), [vp] "+r"(vp), [rp] "+r"(rp), [bp] "+r"(bp), [sp] "+r"(sp),         \
          [yp] "+r"(yp), [xr] "=&r"(xr), [lo] "=&r"(lo), [hi] "=&r"(hi), [g] "=&r"(g)        \
        : [x] "r"(x), [yend] "r"(yend), [pow] "i"(fx_sp_pow2)                                \
        : "memory")

/* Rows [n0, n1) on the MSP430 with MPY32, act ReLU (relu != 0, every shift in 1..16) or none
 * (every shift in 1..15), x and y below 64 KiB: one assembly loop over the rows. Per row: the
 * count from rowptr, the products (FX_SPARSE_STEP's three instructions; the first with MPYS, so
 * no bias preload: the bias is added to the result in registers; the others by a jump into an
 * unrolled chain when at most FX_SPARSE_FC_CHAIN remain, else by bit tests and eights), the
 * requantisation of the row's own shift s: a = acc +
 * 2^(s-1) (fx_sp_pow2), the range test on the high half (ReLU: hi < 2^(s-1) unsigned takes
 * every negative a out too; none: hi + 2^(s-1) < 2^s), a jump into the ladder of `rla lo;
 * rlc hi' pairs that shifts a left by 16 - s (hi is the result), the store. Out of range: a
 * high half of 0x8000 (acc near -2^31, or acc + 2^(s-1) wrapped) leaves the loop with a, and C
 * finishes that row (fx_requant); else ReLU gives 0 or 0x7FFF and none 0x8000 or 0x7FFF. */
FX_NOINLINE static void fx_fc_sparse_asm(const fx_fc_sparse_t *p, const int16_t *x, int16_t *y,
                                         uint16_t n0, uint16_t n1, uint8_t relu)
{
    const uint16_t *rp = p->rowptr + n0;
    const uint16_t *dp = p->deltas + *rp;
    const int16_t *vp = p->values + *rp;
    const int32_t *bp = p->bias + n0;
    const int8_t *sp = p->shift + n0;
    int16_t *yp = y + n0;
    int16_t *const yend = y + n1;
    const int16_t *xr;
    uint16_t lo, hi, g;

    for (;;) {
        if (relu) {
            FX_SP_FC_LOOP_("cmp %c[pow](%[g]), %[hi]\n\t", "clr %[hi]\n\t");
        } else {
            FX_SP_FC_LOOP_("mov %[hi], %[xr]\n\tadd %c[pow](%[g]), %[xr]\n\t"
                           "cmp %c[pow] + 2(%[g]), %[xr]\n\t", "inc %[hi]\n\t");
        }
        (void)xr;
        if (g == 0u) {
            return;
        }
        {
            const int8_t s = sp[-1];
            fx_mac_u32_t a;
            a.h[0] = lo;
            a.h[1] = hi;
            a.u -= (uint32_t)fx_sp_pow2[s];
            FX_STORE(*yp, fx_sparse_act(&p->act, fx_requant((int32_t)a.u, s)));
        }
        if (++yp == yend) {
            return;
        }
    }
}
#endif

void fx_fc_sparse(const fx_fc_sparse_t *p, const int16_t *x, int16_t *y, uint16_t n0, uint16_t n1)
{
    const uint16_t *rp;
    const uint16_t *dp;
    const int16_t *vp;
    const int32_t *bp;
    const int8_t *sp;
    int16_t *yp;
    int16_t *yend;
    fx_requant_fn_t *rq;
    int8_t shift;
    uint16_t start;
    uint8_t relu;

    if (n0 >= n1) {
        return;
    }
    if (!FX_SPARSE_NEAR(x, (uint32_t)p->k * 2u)) {
        fx_fc_sparse_far(p, x, y, n0, n1);
        return;
    }
#if FX_SPARSE_ASM
    if (p->shift_min >= 1 && ((p->act.kind == FX_ACT_RELU && p->shift_max <= 16)
                              || (p->act.kind == FX_ACT_NONE && p->shift_max <= 15))) {
        fx_fc_sparse_asm(p, x, y, n0, n1, (uint8_t)(p->act.kind == FX_ACT_RELU));
        return;
    }
#endif
    rp = p->rowptr + n0;
    start = *rp;
    dp = p->deltas + start;
    vp = p->values + start;
    bp = p->bias + n0;
    sp = p->shift + n0;
    yp = y + n0;
    yend = y + n1;
    shift = *sp;
    rq = fx_requant_fn(shift);
    relu = (uint8_t)(p->act.kind == FX_ACT_RELU);
    do {
        const uint16_t end = *++rp;
        const uint16_t cnt = (uint16_t)(end - start);
        const int16_t *xr = x;
        int32_t acc;
        int16_t v;
        start = end;
        FX_MAC_BEGIN(*bp);
        FX_SPARSE_DOT(xr, dp, vp, cnt);
        acc = FX_MAC_END();
        ++bp;
        if (*sp != shift) {
            shift = *sp;
            rq = fx_requant_fn(shift);
        }
        ++sp;
        v = rq(acc);
        if (relu) {
            v = v < 0 ? 0 : v;
        } else if (p->act.kind != FX_ACT_NONE) {
            v = fx_apply_act(&p->act, v);
        }
        FX_STORE(*yp, v);
    } while (++yp != yend);
}

/* FX_SPARSE_TAP(xb, ip, vp): acc += xb[*ip] * *vp, then ++ip, ++vp (xb: `const int16_t *',
 * ip: `const uint16_t *' element offsets, vp: `const int16_t *'): the conv taps' form. On the
 * MSP430 with MPY32 five instructions, 12 cycles: `mov @ip+, r; rla r; add(a) xb, r;
 * mov @r, &MACS; mov @vp+, &OP2' (ADDA in the large model, where pointers are 20 bits; the
 * offset is below 32768, so rla keeps 16 bits). */
#if defined(FX_USE_MPY32) && defined(__MSP430__)
#if defined(__MSP430X_LARGE__)
#define FX_SPARSE_ADD_ "adda"
#else
#define FX_SPARSE_ADD_ "add"
#endif
#define FX_SPARSE_TAP(xb, ip, vp)                                                        \
    do {                                                                                 \
        const int16_t *fx_sp_a_;                                                         \
        __asm__ volatile("mov @%1+, %0\n\trla %0\n\t" FX_SPARSE_ADD_ " %3, %0\n\t"         \
                         "mov @%0, &MACS\n\tmov @%2+, &OP2"                                \
                         : "=&r"(fx_sp_a_), "+r"(ip), "+r"(vp)                            \
                         : "r"(xb)                                                        \
                         : "memory");                                                     \
    } while (0)
#else
#define FX_SPARSE_TAP(xb, ip, vp)                                                        \
    do {                                                                                 \
        FX_MAC((xb)[*(ip)], *(vp));                                                      \
        ++(ip);                                                                          \
        ++(vp);                                                                          \
    } while (0)
#endif

/* acc += sum_{i < n} xb[ip[i]] * vp[i]; advances ip and vp by n. Inside an open FX_MAC chain.
 * Unrolled eight times; the loop ends on a pointer compare, the n mod 8 rest follows by bits. */
#define FX_SPARSE_TAPS(xb, ip, vp, n)                                                    \
    do {                                                                                 \
        const uint16_t fx_sp_n_ = (n);                                                   \
        const uint16_t *const fx_sp_end8_ = (ip) + (fx_sp_n_ & ~7u);                     \
        while ((ip) != fx_sp_end8_) {                                                    \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
        }                                                                                \
        if (fx_sp_n_ & 4u) {                                                             \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
        }                                                                                \
        if (fx_sp_n_ & 2u) {                                                             \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
        }                                                                                \
        if (fx_sp_n_ & 1u) {                                                             \
            FX_SPARSE_TAP(xb, ip, vp);                                                   \
        }                                                                                \
    } while (0)

/* The decoded taps of (part of) one output channel. */
typedef struct {
    uint16_t n;
    uint16_t d[FX_SPARSE_CONV_TAPS];    /* input offset from the window origin, mod 2^16 */
    uint16_t ky[FX_SPARSE_CONV_TAPS];
    uint16_t kx[FX_SPARSE_CONV_TAPS];
} fx_sparse_taps_t;

/* The geometry of a call's taps: how the offsets count (the layout Hv x Wv, the input grown to
 * the dilated kernel: docs/lir.md) and the real input. All mod 2^16. */
typedef struct {
    uint16_t kh, dw;
    uint16_t vrow, vchan;       /* dh * Wv, Hv * Wv: a kernel row's, a channel's step in offsets */
    uint16_t rrow, rchan;       /* dh * iw, ih * iw: the same in the input */
} fx_sparse_geo_t;

/* The layout of p's offsets (the printer keeps Cin/group * Hv * Wv <= 65535). */
static void fx_sparse_geo(const fx_conv_sparse_t *p, fx_sparse_geo_t *g)
{
    const uint32_t kspan = (uint32_t)(p->kw - 1u) * p->dw + 1u;
    const uint32_t hspan = (uint32_t)(p->kh - 1u) * p->dh + 1u;
    const uint16_t wv = (uint16_t)(kspan > p->iw ? kspan : p->iw);
    const uint16_t hv = (uint16_t)(hspan > p->ih ? hspan : p->ih);
    g->kh = p->kh;
    g->dw = p->dw;
    g->vrow = (uint16_t)(p->dh * wv);
    g->vchan = (uint16_t)(hv * wv);
    g->rrow = (uint16_t)(p->dh * p->iw);
    g->rchan = (uint16_t)(p->ih * p->iw);
}

/* The walk that decodes a channel's increasing offsets without division: the current kernel
 * row (ci', ky), where it and the next one start in offsets, where it starts in the input, and
 * the last decoded tap's column. 16-bit arithmetic: every row start up to the last offset fits
 * (the printer keeps Cin/group * Hv * Wv <= 65535). */
typedef struct {
    const fx_sparse_geo_t *g;
    uint16_t vchan, vrow, vnext;        /* offsets of channel ci', of its row ky, of the next row */
    uint16_t rchan, rrow;               /* input offsets of channel ci' and of its row ky */
    uint16_t ky, kx, kxo;               /* the last tap's kernel row and column, kx * dw */
} fx_sparse_walk_t;

static void fx_sparse_walk_init(fx_sparse_walk_t *w, const fx_sparse_geo_t *g)
{
    w->g = g;
    w->vchan = w->vrow = w->rchan = w->rrow = 0;
    w->vnext = g->kh == 1u ? g->vchan : g->vrow;
    w->ky = w->kx = w->kxo = 0;
}

/* The input offset from the window origin of the tap at offset o (>= the previous one); sets
 * w->ky, w->kx. */
static inline uint16_t fx_sparse_walk(fx_sparse_walk_t *w, uint16_t o)
{
    const fx_sparse_geo_t *const g = w->g;
    uint16_t rel;
    if (o >= w->vnext) {        /* a later kernel row: walk to it */
        do {
            if (++w->ky == g->kh) {
                w->ky = 0;
                w->vchan = (uint16_t)(w->vchan + g->vchan);
                w->rchan = (uint16_t)(w->rchan + g->rchan);
                w->vrow = w->vchan;
                w->rrow = w->rchan;
            } else {
                w->vrow = (uint16_t)(w->vrow + g->vrow);
                w->rrow = (uint16_t)(w->rrow + g->rrow);
            }
            w->vnext = (uint16_t)(w->ky + 1u == g->kh ? w->vchan + g->vchan : w->vrow + g->vrow);
        } while (o >= w->vnext);
        w->kx = 0;
        w->kxo = 0;
    }
    rel = (uint16_t)(o - w->vrow);      /* kx * dw */
    if (g->dw == 1u) {
        w->kx = rel;
    } else {
        while (w->kxo < rel) {          /* offsets increase within a row */
            ++w->kx;
            w->kxo = (uint16_t)(w->kxo + g->dw);
        }
    }
    return (uint16_t)(w->rrow + rel);
}

/* Decode n (<= FX_SPARSE_CONV_TAPS) increasing offsets from a channel's first: O(n + cin/group *
 * kh) steps of the walk. */
static void fx_sparse_decode(const fx_sparse_geo_t *g, const uint16_t *off, uint16_t n,
                             fx_sparse_taps_t *t)
{
    fx_sparse_walk_t w;
    uint16_t i;
    fx_sparse_walk_init(&w, g);
    t->n = n;
    for (i = 0; i < n; ++i) {
        t->d[i] = fx_sparse_walk(&w, off[i]);
        t->ky[i] = w.ky;
        t->kx[i] = w.kx;
    }
}

/* acc + sum over all taps of xw[d] * v: an output whose window lies inside the input.
 * Not inlined on purpose: in its own function GCC keeps every pointer of the unrolled loop in a
 * register (inlined into the row loop, the value pointer spills: 1.75 more cycles per tap). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int32_t fx_sparse_dot(const int16_t *xw, const fx_sparse_taps_t *t, const int16_t *v,
                             int32_t acc)
{
    const uint16_t *dp = t->d;
    if (t->n == 0u) {
        return acc;
    }
    {
        FX_MAC_BEGIN(acc);
        FX_SPARSE_TAPS(xw, dp, v, t->n);
        return FX_MAC_END();
    }
}

/* The same over the taps with ky in [ky0, ky0 + nky) and kx in [kx0, kx0 + nkx) (the others
 * fall into the padding). base: the window origin's index into xg, mod 2^16 (may be
 * "negative"); base + d is the input index of a valid tap. */
static int32_t fx_sparse_dot_checked(const int16_t *xg, uint16_t base, uint16_t ky0,
                                     uint16_t nky, uint16_t kx0, uint16_t nkx,
                                     const fx_sparse_taps_t *t, const int16_t *v, int32_t acc)
{
    uint16_t i;
    if (nky == 0u || nkx == 0u || t->n == 0u) {
        return acc;
    }
    {
        FX_MAC_BEGIN(acc);
        for (i = 0; i < t->n; ++i) {
            if ((uint16_t)(t->ky[i] - ky0) < nky && (uint16_t)(t->kx[i] - kx0) < nkx) {
                FX_MAC(xg[(uint16_t)(base + t->d[i])], v[i]);
            }
        }
        return FX_MAC_END();
    }
}

/* One output row: where its windows start and which kernel rows see the input. */
typedef struct {
    int32_t row;        /* index of input row iy0 = oy * sh - pt (times iw; may be negative) */
    uint16_t ky0, nky;  /* valid kernel rows [ky0, ky0 + nky) */
    uint16_t full;      /* every kernel row is valid */
} fx_sparse_row_t;

static void fx_sparse_row_geometry(const fx_conv_sparse_t *p, uint16_t oy, fx_sparse_row_t *r)
{
    const int32_t iy0 = (int32_t)oy * p->sh - p->pt;
    uint16_t ky1;
    fx_tap_range(iy0, p->kh, p->dh, (int32_t)p->ih, &r->ky0, &ky1);
    r->nky = (uint16_t)(ky1 - r->ky0);
    r->full = (uint16_t)(r->ky0 == 0u && ky1 == p->kh);
    r->row = iy0 * (int32_t)p->iw;
}

/* acc + the taps of t for output (row r, column ox), interior or border. */
static int32_t fx_sparse_pixel(const fx_conv_sparse_t *p, const int16_t *xg,
                               const fx_sparse_row_t *r, uint16_t ox, uint16_t in_lo,
                               uint16_t in_hi, const fx_sparse_taps_t *t, const int16_t *v,
                               int32_t acc)
{
    /* no multiplication for stride 1 (on the MSP430 it is a libgcc call) */
    const int32_t ix0 = (p->sw == 1u ? (int32_t)ox : (int32_t)ox * p->sw) - p->pl;
    uint16_t kx0, kx1;
    if (r->full && ox >= in_lo && ox < in_hi) {
        return fx_sparse_dot(xg + (r->row + ix0), t, v, acc);
    }
    fx_tap_range(ix0, p->kw, p->dw, (int32_t)p->iw, &kx0, &kx1);
    return fx_sparse_dot_checked(xg, (uint16_t)(r->row + ix0), r->ky0, r->nky, kx0,
                                 (uint16_t)(kx1 - kx0), t, v, acc);
}

/* acc[i] += the taps of t for output (oy, ox0 + i), i < ox1 - ox0: one row piece of a segment
 * of the chunked path (interior columns without checks, as in fx_sparse_rows). */
static void fx_sparse_piece(const fx_conv_sparse_t *p, const int16_t *xg, uint16_t oy,
                            uint16_t ox0, uint16_t ox1, uint16_t in_lo, uint16_t in_hi,
                            const fx_sparse_taps_t *t, const int16_t *v, int32_t *acc)
{
    fx_sparse_row_t r;
    uint16_t ox = ox0;
    fx_sparse_row_geometry(p, oy, &r);
    if (r.full) {
        const uint16_t a = in_lo > ox0 ? in_lo : ox0;
        const uint16_t b = in_hi < ox1 ? in_hi : ox1;
        if (a < b) {
            const int16_t *xw;
            for (; ox < a; ++ox, ++acc) {
                *acc = fx_sparse_pixel(p, xg, &r, ox, in_lo, in_hi, t, v, *acc);
            }
            xw = xg + (r.row + (int32_t)a * p->sw - p->pl);
            for (;;) {
                *acc = fx_sparse_dot(xw, t, v, *acc);
                ++acc;
                if (++ox == b) {
                    break;
                }
                xw += p->sw;
            }
        }
    }
    for (; ox < ox1; ++ox, ++acc) {
        *acc = fx_sparse_pixel(p, xg, &r, ox, in_lo, in_hi, t, v, *acc);
    }
}

/* ---- conv: channels with at most FX_SPARSE_RUN_TAPS taps -----------------------------------
 *
 * The outputs of a call are cut into blocks whose windows see the same taps: the rows with the
 * same valid kernel rows [ky0, ky1) (the interior rows, and each top or bottom border row: a row
 * class) times the columns with the same valid kernel columns (the interior run, and each left or
 * right border column: a column class). A block's valid taps go into one table, and fx_sparse_run
 * computes the block: ncols x nrows outputs whose window origins step by cstep elements along a
 * line and rstep from line to line, all from that table, with no bounds checks. A call inside the
 * input is one block per channel; otherwise each channel's taps are decoded once into a list that
 * marks the classes seeing each tap (fx_sparse_list), and the blocks' tables filter it. */

#ifndef FX_SPARSE_RUN_TAPS
#define FX_SPARSE_RUN_TAPS 32
#endif

#ifndef FX_SPARSE_CLASSES
#define FX_SPARSE_CLASSES 8     /* row classes, and column classes, of a call on the fast path */
#endif
#ifndef FX_SPARSE_KMAX
#define FX_SPARSE_KMAX 16       /* kernel rows, and (kw - 1) dw + 1, of a call with borders */
#endif

/* Row classes (half[0], bit r) and column classes (half[1], bit c): one word tests both. */
typedef union {
    uint16_t both;
    uint8_t half[2];
} fx_sparse_mask_t;

/* One decoded tap of a call with borders (fx_sparse_table's assembly reads the fields in order). */
typedef struct {
    fx_sparse_mask_t nm;        /* the classes whose blocks do NOT see it (inverted: one `bit') */
    uint16_t d;                 /* input offset from the window origin, elements, mod 2^16 */
    int16_t v;
} fx_sparse_tap_t;

/* The blocks of a call with borders: its rows cut into classes whose windows see the same kernel
 * rows (the interior rows, each border row), its columns likewise; block (r, c) is row class r x
 * column class c. */
typedef struct {
    uint8_t nr, nc;
    uint16_t rows[FX_SPARSE_CLASSES];       /* rows of row class r (a border row: 1) */
    uint16_t cols[FX_SPARSE_CLASSES];       /* columns of column class c (a border column: 1) */
    uint16_t in_org;                        /* the interior rows' in_rows * sh * iw (mod 2^16) */
    uint32_t in_y;                          /* and in_rows * ow */
    uint16_t in_ix;                         /* the interior columns' (in_hi - in_lo) * sw */
    fx_sparse_mask_t rmask[FX_SPARSE_KMAX]; /* kernel row ky -> the row classes that see it */
    fx_sparse_mask_t cmask[FX_SPARSE_KMAX]; /* kx * dw -> the column classes that see column kx */
} fx_sparse_classes_t;

/* A block's table, its channel's requantisation and (MSP430 with MPY32) the walk of the block it
 * runs, which the assembly reads at fixed offsets from pairs (fx_sparse_run).
 * FX_SPARSE_ASM: pairs[2i] is the byte step from tap i-1 to tap i (from the previous output's last
 * tap to tap 0, the window having moved by cstep meanwhile), pairs[2i+1] the value; bias includes
 * the rounding of requant, lim/half/e2 steer the assembly's requantisation (fx_sparse_rq).
 * Elsewhere pairs[2i] is the offset d of tap i. */
typedef struct {
    uint32_t round;     /* 2^(shift-1) when the assembly requantises, else 0 (fx_sparse_slow) */
    int32_t bias0;      /* the channel's bias */
    const fx_act_t *act;
    int8_t shift;
    uint16_t n;
    uint16_t dlast;     /* d of the last tap (asm: where the input pointer ends an output) */
    /* read by the assembly: */
    uint16_t bias[2];   /* bias + round (+ 2^(shift-1) * 2^16 with act none), low and high half */
    uint16_t lim;       /* ReLU: the high half h of the rounded sum fits when h <= lim */
    uint16_t e2;        /* the requantisation's entry, bytes after .Lbase; 0xFFFF: fx_sparse_slow */
    uint16_t e1;        /* 10 (n - 1): bytes of the chain's steps the outputs skip (a group of a
                         * channel's taps: FX_SP_PRE_) */
    uint16_t e1x;       /* a group: 10 (n - 1) */
    uint16_t acck;      /* a group: the band's image of partial sums - 2 ybase, mod 2^16 */
    int16_t *yp;        /* the block's first output */
    uint16_t xr;        /* the input pointer before output 0: xg + 2 (org - cstep + dlast) */
    uint16_t ys;        /* bytes between the outputs of a line */
    uint16_t ncols;     /* outputs per line */
    uint16_t nrows;     /* lines (counted down) */
    uint16_t radj;      /* bytes from a line's last window + cstep to the next line's first */
    uint32_t yadj;      /* bytes from a line's last output + ys to the next line's first */
    uint16_t half;      /* act none: 2^(shift-1) */
    uint16_t pairs[2 * FX_SPARSE_RUN_TAPS];
} fx_sparse_table_t;

/* The offset of field f from pairs (the assembly's operands). */
#define FX_SP_AT_(f) ((int)offsetof(fx_sparse_table_t, f) - (int)offsetof(fx_sparse_table_t, pairs))

/* A block of outputs computed from one table: nrows lines of ncols outputs. Along a line the
 * window origin moves by cstep elements and the output by ycol, from line to line by rstep and
 * yrow (a block of rows: ycol = 1, yrow = ow; a border column runs down its rows as one line:
 * cstep = sh * iw, ycol = ow). */
typedef struct {
    const int16_t *xg;  /* the group's input */
    uint16_t org;       /* window origin of the first output: index into xg, mod 2^16 */
    uint16_t cstep, rstep;
    uint16_t ncols, nrows;
    uint16_t span;      /* ncols * cstep mod 2^16, when nrows > 1 (the callers know it) */
    int16_t *yp;        /* the first output */
    uint16_t ycol, yrow;
} fx_sparse_block_t;

/* A channel with more than FX_SPARSE_RUN_TAPS taps runs its taps in groups of at most that many
 * (fx_sparse_long), band by band of output rows; each output of the band keeps its 32-bit partial
 * sum in img between the groups (row-major, ow per row, as y: output yp's sum is
 * img[yp - ybase]). The sums start at init: the bias (with the assembly's requantisation, its
 * bias words t->bias, rounding included); the last group requantises and stores. */
typedef struct {
    uint32_t *img;
    int16_t *ybase;
    uint32_t init;
    uint16_t e2, lim;   /* the channel's requantisation (fx_sparse_rq), for its last group */
    uint8_t last;
} fx_sparse_acc_t;

#if FX_SPARSE_ASM
/* fx_sparse_list's walk in memory (its assembly: at the offsets FX_SP_LW_). */
typedef struct {
    uint16_t vrs, rrs, vcs, rcs;        /* fx_sparse_geo_t's vrow, rrow, vchan, rchan */
    uint16_t rchan;                     /* the input offset of the current channel */
    uint16_t rp;                        /* the address of the current kernel row's mask */
    uint16_t rlast, r0;                 /* the addresses of the last and the first row's masks */
} fx_sparse_lw_t;
#define FX_SP_LW_(f) ((int)offsetof(fx_sparse_lw_t, f))
#endif

/* The helpers of fx_sparse_inside, fx_sparse_borders and fx_sparse_long: inlined into each
 * caller, so that the fast path's calls (acc NULL) keep their code and cycles. */
#if defined(__GNUC__)
#define FX_SP_INLINE_ static inline __attribute__((always_inline))
#else
#define FX_SP_INLINE_ static inline
#endif

/* Decode the n (<= FX_SPARSE_RUN_TAPS) taps of a channel into list (a call with borders): the walk
 * of fx_sparse_walk, whole channels skipped at once; each tap's classes from its kernel row's
 * mask and its column's (indexed by kx * dw, the offset in the row). On the MSP430 with MPY32 an
 * assembly loop: 31 cycles per tap, about 15 per kernel row or channel passed. */
FX_SP_INLINE_ void fx_sparse_list(const fx_sparse_geo_t *g, const fx_sparse_classes_t *k,
                                  const uint16_t *off, const int16_t *val, uint16_t n,
                                  fx_sparse_tap_t *list)
{
    const fx_sparse_tap_t *const end = list + n;
    const uint16_t kh = g->kh, vrs = g->vrow, vcs = g->vchan;
    uint16_t vrow = 0, rrow = 0, nchan = vcs;
    uint16_t vnext = kh == 1u ? vcs : vrs;
    uint16_t rm = k->rmask[0].both;
#if FX_SPARSE_ASM
    fx_sparse_lw_t w;
    const fx_sparse_mask_t *cm = k->cmask;
    uint16_t o;
    if (n == 0u) {
        return;
    }
    w.vrs = vrs;
    w.rrs = g->rrow;
    w.vcs = vcs;
    w.rcs = g->rchan;
    w.rchan = 0;
    w.r0 = (uint16_t)(uintptr_t)&k->rmask[0];
    w.rp = w.r0;
    w.rlast = (uint16_t)(uintptr_t)&k->rmask[kh - 1u];
    __asm__ volatile(
        ".Ltap%=:\n\t"
        "mov @%[op]+, %[o]\n\t"
        "cmp %[vnext], %[o]\n\t"
        "jhs .Ladv%=\n"
        ".Lin%=:\n\t"
        "sub %[vrow], %[o]\n\t"               /* kx * dw */
        "mov %[rrow], 2(%[l])\n\t"
        "add %[o], 2(%[l])\n\t"               /* d */
        "rla %[o]\n\t"
        "add %[cm], %[o]\n\t"
        "mov @%[o], %[o]\n\t"
        "bis %[rm], %[o]\n\t"
        "inv %[o]\n\t"
        "mov %[o], 0(%[l])\n\t"               /* nm */
        "mov @%[vp]+, 4(%[l])\n\t"
        "add" FX_SP_A_ " #6, %[l]\n\t"
        "cmp" FX_SP_A_ " %[end], %[l]\n\t"
        "jne .Ltap%=\n\t"
        "jmp .Ldone%=\n"
        ".Ladv%=:\n\t"                        /* a later kernel row */
        "cmp %[nchan], %[o]\n\t"
        "jhs .Lchan%=\n"
        ".Lrow%=:\n\t"                        /* the next row of the channel */
        "add %c[vrs](%[w]), %[vrow]\n\t"
        "add %c[rrs](%[w]), %[rrow]\n\t"
        "incd %c[rp](%[w])\n\t"
        "mov %[nchan], %[vnext]\n\t"
        "cmp %c[rlast](%[w]), %c[rp](%[w])\n\t"
        "jeq 1f\n\t"
        "mov %[vrow], %[vnext]\n\t"
        "add %c[vrs](%[w]), %[vnext]\n"
        "1:\n\t"
        "cmp %[vnext], %[o]\n\t"
        "jhs .Lrow%=\n\t"
        "mov %c[rp](%[w]), %[rm]\n\t"
        "mov @%[rm], %[rm]\n\t"
        "jmp .Lin%=\n"
        ".Lchan%=:\n\t"                       /* later channels: to the one holding o */
        "mov %[nchan], %[vrow]\n\t"
        "add %c[vcs](%[w]), %[nchan]\n\t"
        "add %c[rcs](%[w]), %c[rchan](%[w])\n\t"
        "cmp %[nchan], %[o]\n\t"
        "jhs .Lchan%=\n\t"
        "mov %c[rchan](%[w]), %[rrow]\n\t"
        "mov %c[r0](%[w]), %c[rp](%[w])\n\t"
        "mov %[nchan], %[vnext]\n\t"
        "cmp %c[rlast](%[w]), %c[rp](%[w])\n\t"      /* kh = 1: the channel's end ends the row */
        "jeq 2f\n\t"
        "mov %[vrow], %[vnext]\n\t"
        "add %c[vrs](%[w]), %[vnext]\n"
        "2:\n\t"
        "cmp %[vnext], %[o]\n\t"
        "jhs .Lrow%=\n\t"
        "mov %c[rp](%[w]), %[rm]\n\t"
        "mov @%[rm], %[rm]\n\t"
        "jmp .Lin%=\n"
        ".Ldone%=:"
        : [op] "+r"(off), [vp] "+r"(val), [l] "+r"(list), [o] "=&r"(o), [vnext] "+r"(vnext),
          [vrow] "+r"(vrow), [rrow] "+r"(rrow), [nchan] "+r"(nchan), [rm] "+r"(rm)
        : [cm] "r"(cm), [end] "r"(end), [w] "r"(&w), [vrs] "i"(FX_SP_LW_(vrs)),
          [rrs] "i"(FX_SP_LW_(rrs)), [vcs] "i"(FX_SP_LW_(vcs)), [rcs] "i"(FX_SP_LW_(rcs)),
          [rchan] "i"(FX_SP_LW_(rchan)), [rp] "i"(FX_SP_LW_(rp)), [rlast] "i"(FX_SP_LW_(rlast)),
          [r0] "i"(FX_SP_LW_(r0))
        : "memory");
#else
    uint16_t vchan = 0, rchan = 0, ky = 0;
    for (; list != end; ++list, ++off, ++val) {
        const uint16_t o = *off;
        uint16_t rel;
        if (o >= vnext) {       /* a later kernel row */
            if (o >= nchan) {   /* of a later channel */
                do {
                    vchan = nchan;
                    nchan = (uint16_t)(nchan + vcs);
                    rchan = (uint16_t)(rchan + g->rchan);
                } while (o >= nchan);
                vrow = vchan;
                rrow = rchan;
                ky = 0;
                vnext = kh == 1u ? nchan : (uint16_t)(vrow + vrs);
            }
            while (o >= vnext) {
                ++ky;
                vrow = (uint16_t)(vrow + vrs);
                rrow = (uint16_t)(rrow + g->rrow);
                vnext = ky + 1u == kh ? nchan : (uint16_t)(vrow + vrs);
            }
            rm = k->rmask[ky].both;
        }
        rel = (uint16_t)(o - vrow);     /* kx * dw */
        list->d = (uint16_t)(rrow + rel);
        list->v = *val;
        list->nm.both = (uint16_t)~(rm | k->cmask[rel].both);
    }
#endif
}/* t's taps: those of list seen by the blocks of need (a row class bit and a column class bit), in
 * the form fx_sparse_run reads (for a block whose origin moves by cstep elements per column). On
 * the MSP430 with MPY32 an assembly loop: 21 cycles per tap taken, 8 per tap left. */
FX_SP_INLINE_ void fx_sparse_table(fx_sparse_table_t *t, const fx_sparse_tap_t *list, uint16_t n,
                                   uint16_t need, uint16_t cstep)
{
    const fx_sparse_tap_t *const end = list + n;
    uint16_t *q = t->pairs;
    uint16_t prev = 0;
#if FX_SPARSE_ASM
    if (n != 0u) {
        uint16_t d, tmp;
        __asm__ volatile(
            "1:\n\t"
            "bit @%[l]+, %[need]\n\t"
            "jnz 2f\n\t"
            "mov @%[l]+, %[d]\n\t"
            "mov %[d], %[t]\n\t"
            "sub %[prev], %[t]\n\t"
            "mov %[d], %[prev]\n\t"
            "rla %[t]\n\t"
            "mov %[t], 0(%[q])\n\t"
            "mov @%[l]+, 2(%[q])\n\t"
            "add" FX_SP_A_ " #4, %[q]\n\t"
            "cmp" FX_SP_A_ " %[end], %[l]\n\t"
            "jne 1b\n\t"
            "jmp 3f\n"
            "2:\n\t"
            "add" FX_SP_A_ " #4, %[l]\n\t"
            "cmp" FX_SP_A_ " %[end], %[l]\n\t"
            "jne 1b\n"
            "3:"
            : [l] "+r"(list), [q] "+r"(q), [prev] "+r"(prev), [d] "=&r"(d), [t] "=&r"(tmp)
            : [need] "r"(need), [end] "r"(end)
            : "memory");
    }
#else
    for (; list != end; ++list) {
        if ((list->nm.both & need) == 0u) {
            q[0] = list->d;
            q[1] = (uint16_t)list->v;
            q += 2;
            prev = list->d;
        }
    }
#endif
    t->n = (uint16_t)((uint16_t)(q - t->pairs) >> 1);
    t->dlast = prev;
#if FX_SPARSE_ASM
    if (t->n != 0u) {      /* tap 0 steps from the previous output's last tap */
        t->pairs[0] = (uint16_t)(t->pairs[0] + 2u * (uint16_t)(cstep - prev));
    }
#else
    (void)cstep;
#endif
}

/* t's taps: all n of a channel, straight from its offsets, for a block whose windows lie inside
 * the input (the offsets are then the taps' input offsets) and move by cstep elements per
 * column. On the MSP430 with MPY32 two taps per loop, 14 cycles per tap. */
FX_SP_INLINE_ void fx_sparse_direct(const uint16_t *off, const int16_t *val, uint16_t n,
                                    uint16_t cstep, fx_sparse_table_t *t)
{
    uint16_t prev = 0;
#if FX_SPARSE_ASM
    if (n != 0u) {
        uint16_t *q = t->pairs;
        uint16_t a = 0, tmp, cnt = (uint16_t)((n + 1u) >> 1);
        if (n & 1u) {
            q -= 2;     /* the loop's second half stores at 4(q) */
        }
        __asm__ volatile(
            "bit #1, %[n]\n\t"
            "jnz 2f\n"
            "1:\n\t"
            "mov @%[o]+, %[a]\n\t"
            "mov %[a], %[t]\n\t"
            "sub %[b], %[t]\n\t"
            "rla %[t]\n\t"
            "mov %[t], 0(%[q])\n\t"
            "mov @%[v]+, 2(%[q])\n"
            "2:\n\t"
            "mov @%[o]+, %[b]\n\t"
            "mov %[b], %[t]\n\t"
            "sub %[a], %[t]\n\t"
            "rla %[t]\n\t"
            "mov %[t], 4(%[q])\n\t"
            "mov @%[v]+, 6(%[q])\n\t"
            "add" FX_SP_A_ " #8, %[q]\n\t"
            "dec %[cnt]\n\t"
            "jnz 1b"
            : [o] "+r"(off), [v] "+r"(val), [q] "+r"(q), [a] "+r"(a), [b] "+r"(prev),
              [t] "=&r"(tmp), [cnt] "+r"(cnt)
            : [n] "r"(n)
            : "memory");
        t->pairs[0] = (uint16_t)(t->pairs[0] + 2u * (uint16_t)(cstep - prev));
    }
#else
    uint16_t *q = t->pairs;
    uint16_t *const end = q + 2u * n;
    for (; q != end; q += 2, ++off, ++val) {
        q[0] = *off;
        q[1] = (uint16_t)*val;
        prev = *off;
    }
    (void)cstep;
#endif
    t->n = n;
    t->dlast = prev;
}

/* The requantisation of t's channel: bias, shift, activation. The assembly's entries (e2, bytes
 * after .Lbase = .Lrq - 2): act none, shift s: a range test at .Lrq + 8 (16 - s), then 16 - s
 * pairs of the ladder at .Lnl; ReLU: 16 - s pairs of the ladder at .Lrl = .Lrq + 194 (its range
 * test is lim). */
static void fx_sparse_rq(fx_sparse_table_t *t, int32_t bias, int8_t shift, const fx_act_t *act)
{
#if FX_SPARSE_ASM
    fx_mac_u32_t b;
    b.u = (uint32_t)bias;
#endif
    t->shift = shift;
    t->act = act;
    t->bias0 = bias;
    t->round = 0;
    t->lim = 0xFFFFu;   /* never the ReLU saturation branch */
    t->e2 = 0xFFFFu;    /* every output through fx_sparse_slow */
#if FX_SPARSE_ASM
    if (shift >= 1 && shift <= 16 && (act->kind == FX_ACT_RELU || act->kind == FX_ACT_NONE)) {
        const uint16_t half = fx_sp_pow2[shift];
        t->round = half;
        b.u += half;
        if (act->kind == FX_ACT_RELU) {
            t->lim = (uint16_t)(half - 1u);
            t->e2 = (uint16_t)(192u + 4u * (uint16_t)shift);        /* .Lrl + 4 (15 - k) */
        } else {
            t->half = half;
            t->e2 = (uint16_t)(2u + 8u * (uint16_t)(16 - shift));   /* .Lrq + 8 k */
            b.h[1] = (uint16_t)(b.h[1] + half);
        }
    }
    t->bias[0] = b.h[0];
    t->bias[1] = b.h[1];
#endif
}

#if FX_SPARSE_ASM

/* act(requant(a - t->round, t->shift)): an output the assembly does not requantise itself
 * (shift outside [1, 16], an activation other than none and ReLU). tab is t->pairs (the
 * assembly calls it with the MSP430 ABI: a in R12 (low) and R13, tab in R14). */
static int16_t fx_sparse_slow(uint16_t lo, uint16_t hi, const uint16_t *tab)
{
    const fx_sparse_table_t *t = (const fx_sparse_table_t *)(const void *)
        ((const uint8_t *)tab - offsetof(fx_sparse_table_t, pairs));
    const uint32_t a = ((uint32_t)hi << 16) | lo;
    return fx_sparse_act(t->act, fx_requant((int32_t)(a - t->round), t->shift));
}

/* Table values of a group of a channel's taps (fx_sparse_long): e1 = the partial sum's stub
 * .Lpre (bytes before .Lend: the chain and the stub), e2 = .Lsave (a group before the last). */
#define FX_SP_PRE_ (10 * (FX_SPARSE_RUN_TAPS - 1) + 30)
#define FX_SP_SAVE_ 0

/* The block b from table t (t->n >= 1), on the MSP430 with MPY32. Per output: tap 0 through
 * MPYS (the product replaces the previous output's sum), a jump into an unrolled chain of
 * FX_SPARSE_RUN_TAPS - 1 steps at the entry that leaves t->n - 1 of them (10 cycles each:
 * add @p+, xr; mov @xr, &MACS; mov @p+, &OP2), the bias added to RESLO/RESHI in registers, then
 * the requantisation on the high half h (the result, if it fits, is the high half of the sum
 * shifted left by k = 16 - shift: a jump into a ladder of `rla lo; rlc h' pairs):
 *   ReLU: h <= lim = 2^(shift-1) - 1 fits; above, the sum is negative (0), too large (0x7FFF),
 *   or h = 0x8000 with lo < 2^(shift-1): acc + 2^(shift-1) wrapped past INT32_MAX (0x7FFF);
 *   none: the bias holds another 2^(shift-1) * 2^16, so h + 2^(shift-1) fits when below 2^shift
 *   (one `bit' at the shift's entry); the ladder's result then has its sign bit flipped back;
 *   outside, the same cases with -32768 for negative sums;
 *   other shifts and activations: fx_sparse_slow.
 * ReLU costs 25 + 2k cycles per output besides the taps. The input pointer xr runs on from one
 * output's last tap to the next output's first (the table's first step includes the move of the
 * window); at the end of a line it gets radj, the output pointer yadj. 16-bit address arithmetic
 * on the input: x lies below 64 KiB (FX_SPARSE_NEAR); y is stored with movx.w in the large
 * model.
 * A group of a channel's taps (fx_sparse_long) runs the same code from other table values, so the
 * fast path pays nothing for it: the bias words are 0, e1 = FX_SP_PRE_ enters .Lpre after tap 0,
 * which adds the output's partial sum (at 2 yp + t->acck, mod 2^16: the band's image in SRAM, 4
 * bytes per output where y has 2) to RESLO/RESHI and jumps into the chain at .Lend - t->e1x; the
 * last group then requantises as above, a group before it (e2 = FX_SP_SAVE_: .Lsave, lim 0xFFFF)
 * stores the sum back. About 26 cycles per output and group besides the taps. */
FX_NOINLINE static void fx_sparse_run(fx_sparse_table_t *t)
{
    const uint16_t *tab = t->pairs;
    const void *e1, *e2;
    int16_t *yp;
    uint16_t p, hi, xr, g, lim, ys, blo, bhi;

    __asm__ volatile(
        /* set-up: e1 = the chain's entry for n - 1 steps, e2 = the requantisation's entry */
        "mov %c[o_e1](%[tab]), %[p]\n\t"
        "mov" FX_SP_A_ " #.Lend%=, %[e1]\n\t"
        "sub" FX_SP_A_ " %[p], %[e1]\n\t"
        "mov %c[o_e2](%[tab]), %[e2]\n\t"
        "cmp #-1, %[e2]\n\t"
        "jeq .Lforce%=\n\t"
        "mov" FX_SP_A_ " #.Lbase%=, %[p]\n\t"
        "add" FX_SP_A_ " %[p], %[e2]\n\t"
        "jmp .Lgo%=\n"
        ".Lforce%=:\n\t"
        "mov" FX_SP_A_ " #.Lslow%=, %[e2]\n"
        ".Lgo%=:\n\t"
        "mov %c[o_lim](%[tab]), %[lim]\n\t"
        "mov %c[o_blo](%[tab]), %[blo]\n\t"
        "mov %c[o_bhi](%[tab]), %[bhi]\n\t"
        "mov %c[o_xr](%[tab]), %[xr]\n\t"
        "mov" FX_SP_A_ " %c[o_yp](%[tab]), %[yp]\n\t"
        "mov %c[o_ys](%[tab]), %[ys]\n\t"
        "mov %c[o_ncols](%[tab]), %[g]\n"
        /* one output */
        ".Lout%=:\n\t"
        "mov" FX_SP_A_ " %[tab], %[p]\n\t"
        "add @%[p]+, %[xr]\n\t"
        "mov @%[xr], &MPYS\n\t"
        "mov @%[p]+, &OP2\n\t"
        "br" FX_SP_A_ " %[e1]\n"
        ".Lpre%=:\n\t"                      /* a group: RES += the output's partial sum */
        "mov %[yp], %[blo]\n\t"
        "rla %[blo]\n\t"
        "add %c[o_acck](%[tab]), %[blo]\n\t"
        "add @%[blo]+, &RESLO\n\t"
        "addc @%[blo], &RESHI\n\t"
        "mov %c[o_e1x](%[tab]), %[blo]\n\t"
        "mov" FX_SP_A_ " #.Lend%=, %[hi]\n\t"
        "sub" FX_SP_A_ " %[blo], %[hi]\n\t"
        "clr %[blo]\n\t"
        "br" FX_SP_A_ " %[hi]\n"
        ".Lchain%=:\n\t"
        ".rept " FX_SP_STR_(FX_SPARSE_RUN_TAPS) " - 1\n\t"
        "add @%[p]+, %[xr]\n\t"
        "mov @%[xr], &MACS\n\t"
        "mov @%[p]+, &OP2\n\t"
        ".endr\n"
        ".Lend%=:\n\t"
        "mov &RESLO, %[p]\n\t"
        "mov &RESHI, %[hi]\n\t"
        "add %[blo], %[p]\n\t"
        "addc %[bhi], %[hi]\n\t"
        "cmp %[hi], %[lim]\n\t"
        "jlo .Lbig%=\n\t"
        "br" FX_SP_A_ " %[e2]\n"
        ".Lbase%=:\n\t"                     /* e2 = FX_SP_SAVE_ */
        "jmp .Lsave%=\n"
        /* act none: the range tests, 8 bytes each; shift 16 (h + 2^15 = 0 only for h = 0x8000) */
        ".Lrq%=:\n\t"
        "cmp #1, %[hi]\n\t"
        "jlo .Lsatn%=\n\t"
        "jmp .Lnl%= + 60\n\t"
        "nop\n\t"
        ".irp k, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15\n\t"
        "bit #-(1 << (16 - \\k)), %[hi]\n\t"
        "jnz .Lsatn%=\n\t"
        "jmp .Lnl%= + 4 * (15 - \\k)\n\t"
        ".endr\n"
        ".Lnl%=:\n\t"                       /* act none: k pairs, the sign bit back */
        ".rept 15\n\t"
        "rla %[p]\n\t"
        "rlc %[hi]\n\t"
        ".endr\n\t"
        "xor #0x8000, %[hi]\n\t"
        "jmp .Lstore%=\n"
        ".Lrl%=:\n\t"                       /* ReLU: k pairs */
        ".rept 15\n\t"
        "rla %[p]\n\t"
        "rlc %[hi]\n\t"
        ".endr\n"
        ".Lstore%=:\n\t"
        "mov" FX_SP_XW_ " %[hi], 0(%[yp])\n"
        ".Lnext%=:\n\t"
        "add" FX_SP_A_ " %[ys], %[yp]\n\t"
        "dec %[g]\n\t"
        "jnz .Lout%=\n\t"
        "sub #1, %c[o_nrows](%[tab])\n\t"
        "jz .Ldone%=\n\t"
        "add %c[o_radj](%[tab]), %[xr]\n\t"
        "add" FX_SP_X_ " %c[o_yadj](%[tab]), %[yp]\n\t"
        "mov %c[o_ncols](%[tab]), %[g]\n\t"
        "jmp .Lout%=\n"
        /* ReLU, h > lim: negative, too large, or h = 0x8000 (wrapped when lo <= lim) */
        ".Lbig%=:\n\t"
        "cmp #0x8001, %[hi]\n\t"
        "jhs .Lzero%=\n\t"
        "cmp #0x8000, %[hi]\n\t"
        "jne .Lmax%=\n\t"
        "cmp %[p], %[lim]\n\t"
        "jhs .Lmax%=\n"
        ".Lzero%=:\n\t"
        "clr %[hi]\n\t"
        "jmp .Lstore%=\n"
        ".Lmax%=:\n\t"
        "mov #0x7FFF, %[hi]\n\t"
        "jmp .Lstore%=\n"
        /* act none, outside: h = h' - 2^(shift-1); 0x8000 wrapped when lo < 2^(shift-1) */
        ".Lsatn%=:\n\t"
        "sub %c[o_half](%[tab]), %[hi]\n\t"
        "cmp #0x8000, %[hi]\n\t"
        "jeq .Lwrapn%=\n\t"
        "tst %[hi]\n\t"
        "jge .Lmax%=\n\t"
        "mov #0x8000, %[hi]\n\t"
        "jmp .Lstore%=\n"
        ".Lwrapn%=:\n\t"
        "cmp %c[o_half](%[tab]), %[p]\n\t"
        "jlo .Lmax%=\n\t"
        "jmp .Lstore%=\n"
        ".Lslow%=:\n\t"                     /* hi = fx_sparse_slow(lo, hi, tab) */
        "sub" FX_SP_A_ " #2, r1\n\t"        /* a slot for the result */
        "pushm" FX_SP_M_ " #12, r15\n\t"
        "push %[hi]\n\t"
        "push %[p]\n\t"
        "push" FX_SP_X_ " %[tab]\n\t"
        "pop" FX_SP_X_ " r14\n\t"
        "pop r12\n\t"
        "pop r13\n\t"
        "call" FX_SP_A_ " %[slow]\n\t"
        "mov r12, " FX_SP_FRAME_ "(r1)\n\t"
        "popm" FX_SP_M_ " #12, r15\n\t"
        "pop %[hi]\n\t"
        "jmp .Lstore%=\n"
        ".Lsave%=:\n\t"                     /* a group before the last: the partial sum back */
        "mov %[yp], %[blo]\n\t"
        "rla %[blo]\n\t"
        "add %c[o_acck](%[tab]), %[blo]\n\t"
        "mov %[p], 0(%[blo])\n\t"
        "mov %[hi], 2(%[blo])\n\t"
        "clr %[blo]\n\t"
        "jmp .Lnext%=\n"
        ".Ldone%=:\n\t"
        ".ifne (.Lend%= - .Lchain%=) - 10 * (" FX_SP_STR_(FX_SPARSE_RUN_TAPS) " - 1)\n\t"
        ".error \"fx_sparse_run: a chain step is not 10 bytes\"\n\t"
        ".endif\n\t"
        ".ifne (.Lend%= - .Lpre%=) - " FX_SP_STR_(FX_SP_PRE_) "\n\t"
        ".error \"fx_sparse_run: .Lpre is not FX_SP_PRE_ bytes before .Lend\"\n\t"
        ".endif\n\t"
        ".ifne (.Lrq%= - .Lbase%=) - 2\n\t"
        ".error \"fx_sparse_run: .Lsave's jump is not 2 bytes\"\n\t"
        ".endif\n\t"
        ".ifne (.Lnl%= - .Lrq%=) - 128\n\t"
        ".error \"fx_sparse_run: a range test of act none is not 8 bytes\"\n\t"
        ".endif\n\t"
        ".ifne (.Lrl%= - .Lrq%=) - 194\n\t"
        ".error \"fx_sparse_run: the ladders' layout differs from fx_sparse_rq's entries\"\n\t"
        ".endif\n\t"
        ".ifne (.Lstore%= - .Lrl%=) - 60\n\t"
        ".error \"fx_sparse_run: a ladder pair is not 4 bytes\"\n\t"
        ".endif"
        : [p] "=&r"(p), [hi] "=&r"(hi), [xr] "=&r"(xr), [e1] "=&r"(e1), [e2] "=&r"(e2),
          [yp] "=&r"(yp), [g] "=&r"(g), [lim] "=&r"(lim), [ys] "=&r"(ys), [blo] "=&r"(blo),
          [bhi] "=&r"(bhi)
        : [tab] "r"(tab), [slow] "i"(fx_sparse_slow), [o_e1] "i"(FX_SP_AT_(e1)),
          [o_e2] "i"(FX_SP_AT_(e2)), [o_lim] "i"(FX_SP_AT_(lim)), [o_blo] "i"(FX_SP_AT_(bias[0])),
          [o_bhi] "i"(FX_SP_AT_(bias[1])), [o_xr] "i"(FX_SP_AT_(xr)), [o_yp] "i"(FX_SP_AT_(yp)),
          [o_ys] "i"(FX_SP_AT_(ys)), [o_ncols] "i"(FX_SP_AT_(ncols)),
          [o_nrows] "i"(FX_SP_AT_(nrows)), [o_radj] "i"(FX_SP_AT_(radj)),
          [o_yadj] "i"(FX_SP_AT_(yadj)), [o_half] "i"(FX_SP_AT_(half)),
          [o_acck] "i"(FX_SP_AT_(acck)), [o_e1x] "i"(FX_SP_AT_(e1x))
        : "memory");
}
#else
/* The block b from table t, portable C: per output bias + the products of the table's taps,
 * read at the window origin + d (mod 2^16, as every valid tap's index fits). With acc (a group
 * of a channel's taps, fx_sparse_long) each output starts from its partial sum in acc->img and,
 * unless the group is the channel's last, stores the sum back there. */
static void fx_sparse_run(const fx_sparse_table_t *t, const fx_sparse_block_t *b,
                          const fx_sparse_acc_t *acc)
{
    fx_requant_fn_t *const rq = fx_requant_fn(t->shift);
    int16_t *yline = b->yp;
    uint16_t line_org = b->org, r, c, i;
    for (r = 0; r < b->nrows; ++r) {
        uint16_t org = line_org;
        int16_t *yp = yline;
        for (c = 0; c < b->ncols; ++c) {
            const uint16_t *q = t->pairs;
            uint32_t *const slot = acc == NULL ? NULL : acc->img + (yp - acc->ybase);
            int32_t sum;
            FX_MAC_BEGIN(slot == NULL ? t->bias0 : (int32_t)*slot);
            for (i = 0; i < t->n; ++i, q += 2) {
                FX_MAC(b->xg[(uint16_t)(org + q[0])], (int16_t)q[1]);
            }
            sum = FX_MAC_END();
            if (slot != NULL && !acc->last) {
                *slot = (uint32_t)sum;
            } else {
                FX_STORE(*yp, fx_sparse_act(t->act, rq(sum)));
            }
            yp += b->ycol;
            org = (uint16_t)(org + b->cstep);
        }
        yline += b->yrow;
        line_org = (uint16_t)(line_org + b->rstep);
    }
}
#endif

#if FX_SPARSE_ASM
/* The lines of block b as fx_sparse_run walks them, into t. */
static void fx_sparse_lines(fx_sparse_table_t *t, const fx_sparse_block_t *b)
{
    t->ys = (uint16_t)(2u * b->ycol);
    t->ncols = b->ncols;
    t->nrows = b->nrows;
    if (b->nrows > 1u) {    /* lines of a block of rows: ycol = 1 */
        t->radj = (uint16_t)(2u * (uint16_t)(b->rstep - b->span));
        t->yadj = (uint16_t)(2u * (uint16_t)(b->yrow - b->ncols));
    }
}
#endif

/* The output of the partial sum s of a channel with groups: act(requant(the sum without init +
 * the bias)). */
static int16_t fx_sparse_acc_out(const fx_sparse_table_t *t, const fx_sparse_acc_t *acc,
                                 uint32_t s)
{
    return fx_sparse_act(t->act, fx_requant((int32_t)(s - acc->init + (uint32_t)t->bias0),
                                            t->shift));
}

/* The block b from table t: act(requant(bias)) everywhere when no tap is valid, else
 * fx_sparse_run (on the MSP430 with MPY32 after the block's walk is stored in t). With acc (a
 * group of a channel's taps): the partial sums of the band's image, stored by the last group. */
FX_SP_INLINE_ void fx_sparse_block(fx_sparse_table_t *t, const fx_sparse_block_t *b,
                                   const fx_sparse_acc_t *acc)
{
    if (t->n == 0u) {
        int16_t *yline = b->yp;
        uint16_t r, c;
        int16_t v = 0;
        if (acc == NULL) {
            v = fx_sparse_act(t->act, fx_requant(t->bias0, t->shift));
        } else if (!acc->last) {
            return;
        }
        for (r = 0; r < b->nrows; ++r) {
            int16_t *yp = yline;
            for (c = 0; c < b->ncols; ++c) {
                FX_STORE(*yp, acc == NULL ? v
                                          : fx_sparse_acc_out(t, acc, acc->img[yp - acc->ybase]));
                yp += b->ycol;
            }
            yline += b->yrow;
        }
        return;
    }
#if FX_SPARSE_ASM
    fx_sparse_lines(t, b);
    t->e1 = (uint16_t)(10u * (uint16_t)(t->n - 1u));
    t->xr = (uint16_t)((uint16_t)(uintptr_t)b->xg + 2u * (uint16_t)(b->org - b->cstep + t->dlast));
    t->yp = b->yp;
    if (acc != NULL) {      /* a group: fx_sparse_run's partial sums (the bias words are 0) */
        t->e1x = t->e1;
        t->e1 = FX_SP_PRE_;
        t->acck = (uint16_t)((uint16_t)(uintptr_t)acc->img - 2u * (uint16_t)(uintptr_t)acc->ybase);
        t->e2 = acc->last ? acc->e2 : (uint16_t)FX_SP_SAVE_;
        t->lim = acc->last ? acc->lim : 0xFFFFu;
    }
    fx_sparse_run(t);
#else
    fx_sparse_run(t, b, acc);
#endif
}

/* What the channels of a call share: the interior (fx_inside_range) and the steps that walk its
 * blocks by additions (a multiplication is a libgcc call on the MSP430). */
typedef struct {
    uint16_t oy0, oy1;
    uint16_t ry_lo, ry_hi;      /* rows whose windows lie inside the input vertically */
    uint16_t in_lo, in_hi;      /* columns whose windows lie inside the input horizontally */
    int32_t iy0;                /* oy0 * sh - pt: the top input row of row oy0's windows */
    uint16_t org0;              /* iy0 * iw - pl mod 2^16: the window origin of output (oy0, 0) */
    uint16_t rstep;             /* sh * iw: the origin's step from row to row */
    uint32_t y0;                /* oy0 * ow */
    uint16_t in_rows;           /* the call's interior rows [max(ry_lo, oy0), min(ry_hi, oy1)) */
    uint8_t inside;             /* every window of the call lies inside the input */
    uint8_t near;               /* x lies where the fast path can walk it (FX_SPARSE_NEAR) */
    uint16_t cout_g;            /* output channels per group */
    uint32_t ohw, ghw;          /* elements of an output channel, of a group's input */
} fx_sparse_call_t;

/* Where the channel loop is: the channel's group input, its output, its index in the group. */
typedef struct {
    const int16_t *xg;
    int16_t *ych;
    uint16_t gi;
} fx_sparse_pos_t;

/* To the next output channel. */
static void fx_sparse_next(const fx_sparse_call_t *c, fx_sparse_pos_t *pos)
{
    pos->ych += c->ohw;
    if (++pos->gi == c->cout_g) {
        pos->gi = 0;
        pos->xg += c->ghw;
    }
}

/* Whether the fast path can take a call: every window inside the input, or at most
 * FX_SPARSE_CLASSES row classes and column classes, at most FX_SPARSE_KMAX kernel rows and a
 * dilated kernel row (kw - 1) dw + 1 of at most FX_SPARSE_KMAX (otherwise the chunked path takes
 * it). */
static int fx_sparse_fits(const fx_conv_sparse_t *p, const fx_sparse_call_t *c)
{
    const uint16_t in_cols = (uint16_t)(c->in_hi - c->in_lo);
    const uint16_t rows = (uint16_t)(c->oy1 - c->oy0 - c->in_rows + (c->in_rows != 0u));
    const uint16_t cols = (uint16_t)(p->ow - in_cols + (in_cols != 0u));
    return c->inside || (p->kh <= FX_SPARSE_KMAX
                         && (uint32_t)(p->kw - 1u) * p->dw < FX_SPARSE_KMAX
                         && rows <= FX_SPARSE_CLASSES && cols <= FX_SPARSE_CLASSES);
}

/* The classes of a call with borders that fx_sparse_fits (fx_sparse_classes_t). */
static void fx_sparse_classes(const fx_conv_sparse_t *p, const fx_sparse_call_t *c,
                              fx_sparse_classes_t *k)
{
    const uint16_t in_cols = (uint16_t)(c->in_hi - c->in_lo);
    const int32_t in_iy = (int32_t)c->in_rows * p->sh;
    uint16_t i, o, a, b;
    uint8_t bit;
    int32_t start;
    k->in_org = (uint16_t)(c->in_rows * c->rstep);
    k->in_y = (uint32_t)c->in_rows * p->ow;
    k->in_ix = (uint16_t)(in_cols * p->sw);
    for (i = 0; i < FX_SPARSE_KMAX; ++i) {
        k->rmask[i].both = 0;
        k->cmask[i].both = 0;
    }
    k->nr = 0;
    start = c->iy0;
    bit = 1;
    for (o = c->oy0; o < c->oy1; o = (uint16_t)(o + k->rows[k->nr++]), bit = (uint8_t)(bit << 1)) {
        if (o >= c->ry_lo && o < c->ry_hi) {
            a = 0;
            b = p->kh;
            k->rows[k->nr] = c->in_rows;
            start += in_iy;
        } else {
            fx_tap_range(start, p->kh, p->dh, (int32_t)p->ih, &a, &b);
            k->rows[k->nr] = 1;
            start += p->sh;
        }
        for (i = a; i < b; ++i) {
            k->rmask[i].half[0] = (uint8_t)(k->rmask[i].half[0] | bit);
        }
    }
    k->nc = 0;
    start = -(int32_t)p->pl;
    bit = 1;
    for (o = 0; o < p->ow; o = (uint16_t)(o + k->cols[k->nc++]), bit = (uint8_t)(bit << 1)) {
        if (o >= c->in_lo && o < c->in_hi) {
            a = 0;
            b = p->kw;
            k->cols[k->nc] = in_cols;
            start += k->in_ix;
        } else {
            fx_tap_range(start, p->kw, p->dw, (int32_t)p->iw, &a, &b);
            k->cols[k->nc] = 1;
            start += p->sw;
        }
        for (i = a; i < b; ++i) {       /* at kx * dw */
            fx_sparse_mask_t *const m = &k->cmask[(uint16_t)(i * p->dw)];
            m->half[1] = (uint8_t)(m->half[1] | bit);
        }
    }
}

/* A block of one output (a corner) straight from list, with no table: bias + the products of the
 * taps whose mask has every bit of need, read at the window origin org + d of xg (mod 2^16).
 * With acc: from and (unless the last group) back to the output's partial sum. */
FX_SP_INLINE_ void fx_sparse_one(const fx_sparse_table_t *t, const fx_sparse_tap_t *list,
                                 uint16_t n, uint16_t need, const int16_t *xg, uint16_t org,
                                 int16_t *y, const fx_sparse_acc_t *acc)
{
    const fx_sparse_tap_t *const end = list + n;
    uint32_t *const slot = acc == NULL ? NULL : acc->img + (y - acc->ybase);
    int32_t sum;
    FX_MAC_BEGIN(slot == NULL ? t->bias0 : (int32_t)*slot);
    for (; list != end; ++list) {
        if ((list->nm.both & need) == 0u) {
            FX_MAC(xg[(uint16_t)(org + list->d)], list->v);
        }
    }
    sum = FX_MAC_END();
    if (slot == NULL) {
        FX_STORE(*y, fx_sparse_act(t->act, fx_requant(sum, t->shift)));
    } else if (acc->last) {
        FX_STORE(*y, fx_sparse_acc_out(t, acc, (uint32_t)sum));
    } else {
        *slot = (uint32_t)sum;
    }
}

/* One channel of a call with borders, its n <= FX_SPARSE_RUN_TAPS taps in list (or a group of
 * them, with acc), block by block; a border column runs as one line down the rows of its row
 * class. */
FX_SP_INLINE_ void fx_sparse_channel(const fx_conv_sparse_t *p, const fx_sparse_call_t *c,
                                     const fx_sparse_classes_t *k, const int16_t *xg, int16_t *ych,
                                     const fx_sparse_tap_t *list, uint16_t n, fx_sparse_table_t *t,
                                     const fx_sparse_acc_t *acc)
{
    fx_sparse_block_t b;
    fx_sparse_mask_t need;      /* the block's row and column class */
    uint16_t r, cc, rorg = c->org0;
    uint8_t rbit, cbit;
    int16_t *yrow = ych + c->y0;
    b.xg = xg;
    b.rstep = c->rstep;
    b.yrow = p->ow;
    for (r = 0, rbit = 1; r < k->nr; ++r, rbit = (uint8_t)(rbit << 1)) {
        const uint16_t nrows = k->rows[r];
        uint16_t org = rorg;
        int16_t *yp = yrow;
        for (cc = 0, cbit = 1; cc < k->nc; ++cc, cbit = (uint8_t)(cbit << 1)) {
            const uint16_t ncols = k->cols[cc];
            b.org = org;
            b.yp = yp;
            if (ncols == 1u && nrows > 1u) {    /* a border column: one line down the rows */
                b.cstep = c->rstep;
                b.ncols = nrows;
                b.nrows = 1;
                b.ycol = p->ow;
            } else {
                b.cstep = p->sw;
                b.ncols = ncols;
                b.nrows = nrows;
                b.span = ncols == 1u ? p->sw : k->in_ix;
                b.ycol = 1;
            }
            need.half[0] = rbit;
            need.half[1] = cbit;
            if (ncols == 1u && nrows == 1u) {
                fx_sparse_one(t, list, n, need.both, xg, org, yp, acc);
            } else {
                fx_sparse_table(t, list, n, need.both, b.cstep);
                fx_sparse_block(t, &b, acc);
            }
            org = (uint16_t)(org + (ncols == 1u ? p->sw : k->in_ix));
            yp += ncols;
        }
        if (nrows == 1u) {
            rorg = (uint16_t)(rorg + c->rstep);
            yrow += p->ow;
        } else {
            rorg = (uint16_t)(rorg + k->in_org);
            yrow += k->in_y;
        }
    }
}

/* The fast path: channels co, co + 1, ... while they have at most FX_SPARSE_RUN_TAPS taps, up to
 * co1, of a call whose windows all lie inside the input: one block per channel, whose table comes
 * straight from the offsets. Returns the first channel it leaves. */
FX_NOINLINE static uint16_t fx_sparse_inside(const fx_conv_sparse_t *p, const fx_sparse_call_t *c,
                                             uint16_t co, uint16_t co1, fx_sparse_pos_t *pos)
{
    const uint16_t *cp = p->chanptr + co;
    const int32_t *bp = p->bias + co;
    const int8_t *sp = p->shift + co;
    fx_sparse_table_t t;
    fx_sparse_block_t b;
    b.org = c->org0;
    b.cstep = p->sw;
    b.rstep = c->rstep;
    b.ncols = p->ow;
    b.nrows = (uint16_t)(c->oy1 - c->oy0);
    b.span = (uint16_t)(p->ow * p->sw);
    b.ycol = 1;
    b.yrow = p->ow;
#if FX_SPARSE_ASM
    fx_sparse_lines(&t, &b);
#endif
    for (; co < co1; ++co, ++cp, fx_sparse_next(c, pos)) {
        const uint16_t j0 = cp[0];
        const uint16_t n = (uint16_t)(cp[1] - j0);
        if (n > FX_SPARSE_RUN_TAPS) {
            break;
        }
        fx_sparse_rq(&t, *bp++, *sp++, &p->act);
        fx_sparse_direct(p->offsets + j0, p->values + j0, n, p->sw, &t);
        b.xg = pos->xg;
        b.yp = pos->ych + c->y0;
#if FX_SPARSE_ASM
        if (n != 0u) {      /* fx_sparse_block, the lines set up before the loop */
            t.e1 = (uint16_t)(10u * (uint16_t)(n - 1u));
            t.xr = (uint16_t)((uint16_t)(uintptr_t)b.xg
                              + 2u * (uint16_t)(b.org - b.cstep + t.dlast));
            t.yp = b.yp;
            t.nrows = b.nrows;
            fx_sparse_run(&t);
            continue;
        }
#endif
        fx_sparse_block(&t, &b, NULL);
    }
    return co;
}

/* The fast path of a call with borders that fx_sparse_fits: channels co, co + 1, ... while they
 * have at most FX_SPARSE_RUN_TAPS taps, up to co1; each channel's taps are decoded into a list and
 * fx_sparse_channel runs its blocks. Returns the first channel it leaves. */
FX_NOINLINE static uint16_t fx_sparse_borders(const fx_conv_sparse_t *p,
                                              const fx_sparse_call_t *c, uint16_t co,
                                              uint16_t co1, fx_sparse_pos_t *pos)
{
    fx_sparse_tap_t list[FX_SPARSE_RUN_TAPS];
    fx_sparse_classes_t k;
    fx_sparse_table_t t;
    fx_sparse_geo_t g;
    fx_sparse_geo(p, &g);
    fx_sparse_classes(p, c, &k);
    for (; co < co1; ++co, fx_sparse_next(c, pos)) {
        const uint16_t j0 = p->chanptr[co];
        const uint16_t n = (uint16_t)(p->chanptr[co + 1u] - j0);
        if (n > FX_SPARSE_RUN_TAPS) {
            break;
        }
        fx_sparse_rq(&t, p->bias[co], p->shift[co], &p->act);
        fx_sparse_list(&g, &k, p->offsets + j0, p->values + j0, n, list);
        fx_sparse_channel(p, c, &k, pos->xg, pos->ych, list, n, &t, NULL);
    }
    return co;
}

#ifndef FX_SPARSE_ACC
#define FX_SPARSE_ACC 64        /* outputs of a band of fx_sparse_long: its partial sums */
#endif

/* The call c cut to its output rows [a, b), a band of fx_sparse_long, from the whole call's rows
 * (oy0, and in w its iy0, org0): the fields that change (its interior and the classes follow). */
typedef struct {
    uint16_t oy0, oy1, org0, in_rows;
    int32_t iy0;
    uint32_t y0;
    uint8_t inside;
} fx_sparse_rows_t;

static void fx_sparse_rows(fx_sparse_call_t *c, const fx_sparse_rows_t *r)
{
    c->oy0 = r->oy0;
    c->oy1 = r->oy1;
    c->org0 = r->org0;
    c->in_rows = r->in_rows;
    c->iy0 = r->iy0;
    c->y0 = r->y0;
    c->inside = r->inside;
}

static void fx_sparse_band(const fx_conv_sparse_t *p, fx_sparse_call_t *c,
                           const fx_sparse_rows_t *w, uint16_t a, uint16_t b)
{
    const uint16_t skip = (uint16_t)(a - w->oy0);
    const uint16_t lo = c->ry_lo > a ? c->ry_lo : a;
    const uint16_t hi = c->ry_hi < b ? c->ry_hi : b;
    c->oy0 = a;
    c->oy1 = b;
    c->iy0 = w->iy0 + (int32_t)skip * p->sh;
    c->org0 = (uint16_t)(w->org0 + (uint16_t)(skip * c->rstep));
    c->y0 = (uint32_t)a * p->ow;
    c->in_rows = lo < hi ? (uint16_t)(hi - lo) : 0u;
    c->inside = (uint8_t)(c->in_rows == b - a && c->in_lo == 0u && c->in_hi == p->ow);
}

/* Channels co, co + 1, ... while they have more than FX_SPARSE_RUN_TAPS taps, up to co1, of a call
 * the fast path takes (near, fx_sparse_fits) with at most FX_SPARSE_ACC outputs per row and a
 * kernel whose rows and dilated row fit FX_SPARSE_KMAX (every band gets classes). Band by
 * band of FX_SPARSE_ACC / ow output rows (a band's classes once for all its channels), a channel's
 * taps pass in groups of FX_SPARSE_RUN_TAPS through the fast path's tables and runs
 * (fx_sparse_direct, or fx_sparse_list and fx_sparse_channel), each output of the band keeping its
 * partial sum in img between the groups (fx_sparse_acc_t). c is cut to each band meanwhile
 * (fx_sparse_band) and restored. Returns the first channel it leaves. */
FX_NOINLINE static uint16_t fx_sparse_long(const fx_conv_sparse_t *p, fx_sparse_call_t *c,
                                           uint16_t co, uint16_t co1, fx_sparse_pos_t *pos)
{
    uint32_t img[FX_SPARSE_ACC];
    fx_sparse_tap_t list[FX_SPARSE_RUN_TAPS];
    fx_sparse_classes_t k;
    fx_sparse_table_t t;
    fx_sparse_geo_t g;
    fx_sparse_acc_t acc;
    fx_sparse_rows_t whole;
    fx_sparse_pos_t at;
    const uint16_t band = (uint16_t)(FX_SPARSE_ACC / p->ow);
    uint16_t ce = co, oy;
    while (ce < co1 && (uint16_t)(p->chanptr[ce + 1u] - p->chanptr[ce]) > FX_SPARSE_RUN_TAPS) {
        ++ce;
    }
    whole.oy0 = c->oy0;
    whole.oy1 = c->oy1;
    whole.org0 = c->org0;
    whole.in_rows = c->in_rows;
    whole.iy0 = c->iy0;
    whole.y0 = c->y0;
    whole.inside = c->inside;
    at.xg = pos->xg;
    at.ych = pos->ych;
    at.gi = pos->gi;
    fx_sparse_geo(p, &g);
    acc.img = img;
    for (oy = whole.oy0; oy < whole.oy1; oy = c->oy1) {
        const uint16_t oy1 = (uint16_t)(whole.oy1 - oy > band ? oy + band : whole.oy1);
        const uint16_t cnt = (uint16_t)((oy1 - oy) * p->ow);
        uint16_t ch;
        fx_sparse_band(p, c, &whole, oy, oy1);
        fx_sparse_classes(p, c, &k);
        at.xg = pos->xg;        /* field by field: a struct copy may be a memcpy call */
        at.ych = pos->ych;
        at.gi = pos->gi;
        for (ch = co; ch < ce; ++ch, fx_sparse_next(c, &at)) {
            const uint16_t j1 = p->chanptr[ch + 1u];
            uint16_t j = p->chanptr[ch], i;
            fx_sparse_rq(&t, p->bias[ch], p->shift[ch], &p->act);
#if FX_SPARSE_ASM
            acc.init = ((uint32_t)t.bias[1] << 16) | t.bias[0];
            acc.e2 = t.e2;
            acc.lim = t.lim;
            t.bias[0] = 0;
            t.bias[1] = 0;
#else
            acc.init = (uint32_t)t.bias0;
#endif
            acc.ybase = at.ych + c->y0;
            for (i = 0; i < cnt; ++i) {
                img[i] = acc.init;
            }
            while (j < j1) {
                const uint16_t m = (uint16_t)(j1 - j > FX_SPARSE_RUN_TAPS ? FX_SPARSE_RUN_TAPS
                                                                          : j1 - j);
                acc.last = (uint8_t)(j + m == j1);
                fx_sparse_list(&g, &k, p->offsets + j, p->values + j, m, list);
                fx_sparse_channel(p, c, &k, at.xg, at.ych, list, m, &t, &acc);
                j = (uint16_t)(j + m);
            }
        }
    }
    fx_sparse_rows(c, &whole);
    pos->xg = at.xg;
    pos->ych = at.ych;
    pos->gi = at.gi;
    return ce;
}

/* Channel co, rows [oy0, oy1), any number of taps: segments of up to FX_SPARSE_CONV_SEG outputs
 * (in row order across rows) keep 32-bit partial sums while the taps pass in chunks of up to
 * FX_SPARSE_CONV_TAPS. */
FX_NOINLINE static void fx_sparse_chunked(const fx_conv_sparse_t *p, const int16_t *xg,
                                          int16_t *ych, uint16_t co, uint16_t oy0, uint16_t oy1,
                                          uint16_t in_lo, uint16_t in_hi)
{
    fx_sparse_geo_t geo;
    const uint16_t ow = p->ow;
    const uint16_t j0 = p->chanptr[co], j1 = p->chanptr[co + 1u];
    const int32_t bias = p->bias[co];
    const int8_t shift = p->shift[co];
    int16_t *yp = ych + (uint32_t)oy0 * ow;
    int32_t acc[FX_SPARSE_CONV_SEG];
    fx_sparse_taps_t t;
    uint16_t oy = oy0, ox = 0;
    fx_sparse_geo(p, &geo);
    while (oy < oy1) {
        const uint16_t soy = oy, sox = ox;
        uint16_t cnt = 0, j = j0, i;
        while (cnt < FX_SPARSE_CONV_SEG && oy < oy1) {
            acc[cnt++] = bias;
            if (++ox == ow) {
                ox = 0;
                ++oy;
            }
        }
        while (j < j1) {
            const uint16_t m = (uint16_t)(j1 - j > FX_SPARSE_CONV_TAPS ? FX_SPARSE_CONV_TAPS : j1 - j);
            uint16_t py = soy, px = sox, done = 0;
            fx_sparse_decode(&geo, p->offsets + j, m, &t);  /* offsets are absolute */
            while (done < cnt) {    /* the segment, one row piece at a time */
                const uint16_t len = (uint16_t)(ow - px < cnt - done ? ow - px : cnt - done);
                fx_sparse_piece(p, xg, py, px, (uint16_t)(px + len), in_lo, in_hi, &t,
                                p->values + j, acc + done);
                done = (uint16_t)(done + len);
                px = 0;
                ++py;
            }
            j = (uint16_t)(j + m);
        }
        for (i = 0; i < cnt; ++i) {
            FX_STORE(*yp, fx_sparse_act(&p->act, fx_requant(acc[i], shift)));
            ++yp;
        }
    }
}

/* Channel co of more than FX_SPARSE_RUN_TAPS taps and the ones after it: fx_sparse_long when the
 * fast path takes the call (fast), its rows are at most FX_SPARSE_ACC wide and its kernel fits
 * the classes, else channel co on the chunked path. Returns the first channel it leaves. */
FX_NOINLINE static uint16_t fx_sparse_wide(const fx_conv_sparse_t *p, fx_sparse_call_t *c,
                                           uint16_t co, uint16_t co1, fx_sparse_pos_t *pos,
                                           int fast)
{
    if (fast && p->ow <= FX_SPARSE_ACC && p->kh <= FX_SPARSE_KMAX
        && (uint32_t)(p->kw - 1u) * p->dw < FX_SPARSE_KMAX) {
        return fx_sparse_long(p, c, co, co1, pos);
    }
    fx_sparse_chunked(p, pos->xg, pos->ych, co, c->oy0, c->oy1, c->in_lo, c->in_hi);
    fx_sparse_next(c, pos);
    return (uint16_t)(co + 1u);
}

/* What the channels of the call [co0, co1) x [oy0, oy1) share (c), and where its first channel
 * is (pos). Not inlined: its temporaries stay out of fx_conv_sparse's frame, which the fast path's
 * adds to. */
FX_NOINLINE static void fx_sparse_setup(const fx_conv_sparse_t *p, const int16_t *x, int16_t *y,
                                        uint16_t co0, uint16_t oy0, uint16_t oy1,
                                        fx_sparse_call_t *c, fx_sparse_pos_t *pos)
{
    /* 16-bit sizes: the printer keeps one group's input below 65536 elements */
    const uint16_t cin_g = p->group == 1u ? p->cin : (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = p->group == 1u ? p->cout : (uint16_t)(p->cout / p->group);
    const uint16_t hw = (uint16_t)(p->ih * p->iw);
    const uint16_t ghw = cin_g == 1u ? hw : (uint16_t)(cin_g * hw);  /* one group's input */
    uint16_t a, b;
    fx_inside_range(p->iw, p->kw, p->sw, p->dw, p->pl, p->ow, &c->in_lo, &c->in_hi);
    fx_inside_range(p->ih, p->kh, p->sh, p->dh, p->pt, p->oh, &c->ry_lo, &c->ry_hi);
    c->oy0 = oy0;
    c->oy1 = oy1;
    c->iy0 = (int32_t)(p->sh == 1u ? oy0 : (uint16_t)(oy0 * p->sh)) - p->pt;
    c->rstep = p->sh == 1u ? p->iw : (uint16_t)(p->sh * p->iw);       /* mod 2^16 */
    c->org0 = (uint16_t)((uint16_t)c->iy0 * p->iw - p->pl);
    c->y0 = (uint32_t)oy0 * p->ow;
    a = c->ry_lo > oy0 ? c->ry_lo : oy0;
    b = c->ry_hi < oy1 ? c->ry_hi : oy1;
    c->in_rows = a < b ? (uint16_t)(b - a) : 0u;
    c->inside = (uint8_t)(c->in_rows == oy1 - oy0 && c->in_lo == 0u && c->in_hi == p->ow);
    c->cout_g = cout_g;
    c->ohw = (uint32_t)p->oh * p->ow;
    c->ghw = ghw;
    c->near = (uint8_t)FX_SPARSE_NEAR(x, 2u * (uint32_t)ghw * p->group);
    if (p->group == 1u) {
        pos->gi = co0;
        pos->xg = x;
    } else {
        pos->gi = (uint16_t)(co0 % cout_g);               /* co's index inside its group */
        pos->xg = x + (uint32_t)(co0 / cout_g) * ghw;
    }
    pos->ych = y + (uint32_t)co0 * c->ohw;
}

void fx_conv_sparse(const fx_conv_sparse_t *p, const int16_t *x, int16_t *y,
                    uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    fx_sparse_call_t c;
    fx_sparse_pos_t pos;
    uint16_t co;
    int fast;

    if (co0 >= co1 || oy0 >= oy1 || p->ow == 0u) {
        return;
    }
    fx_sparse_setup(p, x, y, co0, oy0, oy1, &c, &pos);
    fast = c.near && fx_sparse_fits(p, &c);
    co = co0;
    while (co < co1) {
        if (fast && (uint16_t)(p->chanptr[co + 1u] - p->chanptr[co]) <= FX_SPARSE_RUN_TAPS) {
            co = c.inside ? fx_sparse_inside(p, &c, co, co1, &pos)
                          : fx_sparse_borders(p, &c, co, co1, &pos);
        } else {
            co = fx_sparse_wide(p, &c, co, co1, &pos, fast);
        }
    }
}

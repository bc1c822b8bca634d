/* fx_sparse.c - fully connected and convolution layers with compressed (sparse) weights.
 *
 * Both kernels compute exactly what fx_fc / fx_conv compute on the dense weights they encode
 * (docs/lir.md, "Sparse ops"): the accumulator wraps modulo 2^32, so skipping the zero products
 * changes no bit.
 *
 * fx_fc_sparse: CSR rows with byte steps, y[n] = act(requant(bias[n] + sum_j x[c_j] * values[j],
 * shift[n])) over j in [rowptr[n], rowptr[n+1]), where a pointer that starts at x for every row
 * advances deltas[j] bytes before product j. The inner loop (FX_SPARSE_DOT) is three
 * instructions per stored weight on the MSP430 (add the step to the pointer, move x[c_j] into
 * MACS, move the value into OP2): 10.5 cycles per stored weight against 8.6 per weight of the
 * dense fx_fc (bench/sparse_speed.py). In the large model the pointer arithmetic is 16 bits wide,
 * so an x that reaches past 64 KiB takes a portable loop (fx_fc_sparse_far).
 *
 * fx_conv_sparse: per output channel the pairs (offset, value), offset = ci' * kh * kw + ky * kw
 * + kx. Before the outputs of a channel are computed its taps are decoded (without division:
 * the offsets increase within a channel) into a table on the stack: the input offset of each tap
 * from the window origin, d = ci' * ih * iw + ky * dh * iw + kx * dw, and (ky, kx). An output
 * whose window lies inside the input (the interior) then costs one table read, one indexed load
 * into MACS and one load into OP2 per tap, with no bounds check; a border output checks each tap
 * against its valid ranges [ky0, ky1) x [kx0, kx1) (taps in the padding are skipped, as the
 * dense kernel reads 0 there). A channel with more than FX_SPARSE_CONV_TAPS taps is done in
 * chunks of taps over segments of FX_SPARSE_CONV_SEG outputs with 32-bit partial sums, so the
 * stack use is bounded: (3 * FX_SPARSE_CONV_TAPS + 1) * 2 + 4 * FX_SPARSE_CONV_SEG bytes (322
 * with the defaults, 32 and 32).
 *
 * Offsets and d are uint16: the input of one group must have at most 65535 elements
 * (cin / group * ih * iw <= 65535; d is computed modulo 2^16 and every valid tap's input index
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
#define FX_SPARSE_STEP(xr, dp, vp)                                                       \
    __asm__ volatile("add @%1+, %0\n\tmov @%0, &MACS\n\tmov @%2+, &OP2"                 \
                     : "+r"(xr), "+r"(dp), "+r"(vp)                                      \
                     :                                                                   \
                     : "memory")
#else
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

/* Decode n (<= FX_SPARSE_CONV_TAPS) increasing offsets. Walks channel and row starts forward
 * instead of dividing: O(n + cin/group * kh) steps, in 16-bit arithmetic (offsets are uint16, so
 * every start up to the last offset fits; kh * kw > 65535 only with one input channel per group,
 * whose taps never leave channel 0). */
static void fx_sparse_decode(const fx_conv_sparse_t *p, const uint16_t *off, uint16_t n,
                             fx_sparse_taps_t *t)
{
    const uint32_t ktaps32 = (uint32_t)p->kh * p->kw;
    const uint16_t ktaps = (uint16_t)ktaps32;                          /* used when <= 65535 */
    const int one_channel = ktaps32 > 0xFFFFu;
    const uint16_t kw = p->kw;
    const uint16_t hw = (uint16_t)((uint32_t)p->ih * p->iw);          /* mod 2^16 */
    const uint16_t rowstep = (uint16_t)((uint32_t)p->dh * p->iw);     /* mod 2^16 */
    const uint16_t dw = p->dw;
    uint16_t chan_base = 0, row_base = 0, dchan = 0, drow = 0, ky = 0, i;

    t->n = n;
    for (i = 0; i < n; ++i) {
        const uint16_t o = off[i];
        uint16_t rel, kx;
        if (!one_channel) {
            while ((uint16_t)(o - chan_base) >= ktaps) {
                chan_base = (uint16_t)(chan_base + ktaps);
                dchan = (uint16_t)(dchan + hw);
                row_base = chan_base;
                ky = 0;
                drow = 0;
            }
        }
        rel = (uint16_t)(o - row_base);
        while (rel >= kw) {
            rel = (uint16_t)(rel - kw);
            row_base = (uint16_t)(row_base + kw);
            ++ky;
            drow = (uint16_t)(drow + rowstep);
        }
        kx = rel;
        t->d[i] = (uint16_t)(dchan + drow + (dw == 1u ? kx : (uint16_t)((uint32_t)kx * dw)));
        t->ky[i] = ky;
        t->kx[i] = kx;
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

/* count interior outputs of one row: y[i] = act(requant(bias + sum_taps xw[d] * v, shift)),
 * the window origin moving by sw. Its own function, so that GCC keeps the tap loop's pointers in
 * registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fx_sparse_interior(const int16_t *xw, uint16_t sw, uint16_t count,
                               const fx_sparse_taps_t *t, const int16_t *v, int32_t bias,
                               int8_t shift, const fx_act_t *act, int16_t *yp)
{
    const uint16_t n = t->n;
    for (;;) {
        int32_t acc = bias;
        if (n != 0u) {
            const uint16_t *dp = t->d;
            const int16_t *vp = v;
            FX_MAC_BEGIN(bias);
            FX_SPARSE_TAPS(xw, dp, vp, n);
            acc = FX_MAC_END();
        }
        FX_STORE(*yp, fx_sparse_act(act, fx_requant(acc, shift)));
        if (--count == 0u) {
            break;
        }
        ++yp;
        xw += sw;
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

/* Output columns [*lo, *hi) whose window lies inside [0, iw) (a contiguous run, maybe empty). */
static void fx_sparse_inner_cols(const fx_conv_sparse_t *p, uint16_t *lo, uint16_t *hi)
{
    const int32_t span = (int32_t)(p->kw - 1u) * p->dw;
    uint16_t ox = 0;
    int32_t ix0 = -(int32_t)p->pl;
    while (ox < p->ow && ix0 < 0) {
        ++ox;
        ix0 += p->sw;
    }
    *lo = ox;
    while (ox < p->ow && ix0 + span < (int32_t)p->iw) {
        ++ox;
        ix0 += p->sw;
    }
    *hi = ox;
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

/* Rows [oy0, oy1) of one channel whose taps all fit one table (decoded in t): interior outputs
 * straight from the table, border outputs with the checks. */
static void fx_sparse_rows(const fx_conv_sparse_t *p, const int16_t *xg, int16_t *yp,
                           uint16_t oy0, uint16_t oy1, uint16_t in_lo, uint16_t in_hi,
                           const fx_sparse_taps_t *t, const int16_t *v, int32_t bias,
                           int8_t shift)
{
    const uint16_t ow = p->ow;
    uint16_t oy;
    for (oy = oy0; oy < oy1; ++oy) {
        fx_sparse_row_t r;
        uint16_t ox = 0;
        fx_sparse_row_geometry(p, oy, &r);
        if (r.full && in_lo < in_hi) {
            const int16_t *xw;
            for (; ox < in_lo; ++ox) {
                FX_STORE(*yp, fx_sparse_act(&p->act, fx_requant(
                    fx_sparse_pixel(p, xg, &r, ox, in_lo, in_hi, t, v, bias), shift)));
                ++yp;
            }
            xw = xg + (r.row + (int32_t)in_lo * p->sw - p->pl);
            fx_sparse_interior(xw, p->sw, (uint16_t)(in_hi - in_lo), t, v, bias, shift, &p->act, yp);
            yp += in_hi - in_lo;
            ox = in_hi;
        }
        for (; ox < ow; ++ox) {
            FX_STORE(*yp, fx_sparse_act(&p->act, fx_requant(
                fx_sparse_pixel(p, xg, &r, ox, in_lo, in_hi, t, v, bias), shift)));
            ++yp;
        }
    }
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

void fx_conv_sparse(const fx_conv_sparse_t *p, const int16_t *x, int16_t *y,
                    uint16_t co0, uint16_t co1, uint16_t oy0, uint16_t oy1)
{
    const uint16_t cin_g = (uint16_t)(p->cin / p->group);
    const uint16_t cout_g = (uint16_t)(p->cout / p->group);
    const uint32_t hw = (uint32_t)p->ih * p->iw;
    const uint32_t ohw = (uint32_t)p->oh * p->ow;
    const uint16_t ow = p->ow;
    uint16_t in_lo, in_hi, co;
    fx_sparse_taps_t t;

    if (co0 >= co1 || oy0 >= oy1 || ow == 0u) {
        return;
    }
    fx_sparse_inner_cols(p, &in_lo, &in_hi);
    for (co = co0; co < co1; ++co) {
        const int16_t *xg = x + (uint32_t)(co / cout_g) * cin_g * hw;
        const uint16_t j0 = p->chanptr[co], j1 = p->chanptr[co + 1u];
        const int32_t bias = p->bias[co];
        const int8_t shift = p->shift[co];
        int16_t *yp = y + (uint32_t)co * ohw + (uint32_t)oy0 * ow;
        if ((uint16_t)(j1 - j0) <= FX_SPARSE_CONV_TAPS) {
            fx_sparse_decode(p, p->offsets + j0, (uint16_t)(j1 - j0), &t);
            fx_sparse_rows(p, xg, yp, oy0, oy1, in_lo, in_hi, &t, p->values + j0, bias, shift);
        } else {
            /* More taps than one table: segments of up to FX_SPARSE_CONV_SEG outputs (in row
             * order across rows) keep 32-bit partial sums while the taps pass chunk by chunk. */
            int32_t acc[FX_SPARSE_CONV_SEG];
            uint16_t oy = oy0, ox = 0;
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
                    const uint16_t m = (uint16_t)(j1 - j > FX_SPARSE_CONV_TAPS
                                                  ? FX_SPARSE_CONV_TAPS : j1 - j);
                    uint16_t py = soy, px = sox, done = 0;
                    fx_sparse_decode(p, p->offsets + j, m, &t);  /* offsets are absolute */
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
    }
}

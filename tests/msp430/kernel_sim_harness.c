/* kernel_sim_harness.c - runs every fixed-point kernel of runtime_c/ on deterministic pseudo-random
 * cases and prints one line per case: its name, the element count, a 32-bit checksum of the
 * outputs and the first outputs. Built for the host (gcc/clang, portable FX_MAC) and for the
 * MSP430 (msp430-elf-gcc; FX_USE_MPY32 or portable; small or -mlarge) by
 * tests/msp430/test_msp430_kernels_sim.py, which requires all outputs to be identical.
 *
 * The test vectors come from one 32-bit LCG, so host and target see the same numbers. Every case
 * is also computed tile by tile (output-channel and row ranges) and compared with the whole
 * computation on the spot ("tiles ok" / "tiles DIFFER"), which checks that a tile writes exactly
 * its own outputs and the same bytes as the untiled call.
 *
 * On the MSP430 the buffers are in FRAM (persistent) and the output goes through CIO; with
 * -DH_HIFRAM (-mlarge) the inputs, weights and outputs are in HIFRAM (above 64 KiB, where the
 * generated code puts activations that do not fit lower FRAM), the biases and shifts stay below.
 */
#include <stdint.h>

#include "fx_kernels.h"

#ifdef __MSP430__
#include "cio.h"
#define H_FRAM __attribute__((persistent))
#if defined(H_HIFRAM)
#define H_BUF __attribute__((section(".upper.persistent")))
#else
#define H_BUF H_FRAM
#endif
static void h_write(const char *s, uint16_t n) { fx_cio_write(FX_CIO_STDOUT, s, n); }
#else
#include <stdio.h>
#define H_FRAM
#define H_BUF
static void h_write(const char *s, uint16_t n) { fwrite(s, 1, n, stdout); }
#endif

#define H_X 1200
#define H_W 1200
#define H_Y 1200
#define H_C 64

static int16_t hx[H_X] H_BUF = {0};
static int16_t hx2[H_X] H_BUF = {0};
static int16_t hw[H_W] H_BUF = {0};
static int16_t hy[H_Y] H_BUF = {0};
static int16_t hy2[H_Y] H_BUF = {0};
static int32_t hbias[H_C] H_FRAM = {0};
static int8_t hshift[H_C] H_FRAM = {0};

/* ---- deterministic numbers ---- */
static uint32_t h_rng;

static void h_seed(uint32_t s) { h_rng = s * 2654435761u + 12345u; }

static uint16_t h_next(void)
{
    h_rng = h_rng * 1664525u + 1013904223u;
    return (uint16_t)(h_rng >> 16);
}

/* Uniform-ish in [-m, m] for m in 1..32767 (32768: the full int16 range). Division-free:
 * rejection on a power-of-two mask. */
static int16_t h_val(uint16_t m)
{
    uint16_t mask = 1, span = (uint16_t)(2u * m), v;
    if (m >= 32768u - 1u)
        return (int16_t)h_next();
    while (mask < span)
        mask = (uint16_t)((mask << 1) | 1u);
    do {
        v = (uint16_t)(h_next() & mask);
    } while (v > span);
    return (int16_t)((int32_t)v - (int32_t)m);
}

static void h_fill(int16_t *a, uint16_t n, uint16_t m)
{
    uint16_t i;
    for (i = 0; i < n; i++)
        a[i] = h_val(m);
}

static void h_fill_params(uint16_t nc, uint16_t bias_m, int8_t shift_lo, int8_t shift_hi)
{
    uint16_t c;
    uint16_t range = (uint16_t)(shift_hi - shift_lo + 1);
    for (c = 0; c < nc; c++) {
        hbias[c] = (int32_t)h_val(bias_m) * (int32_t)(h_next() & 0xffu);
        hshift[c] = (int8_t)(shift_lo + (int8_t)(h_next() % range));
    }
}

/* ---- output ---- */
static char h_buf[128]; /* longer than one CIO request: fx_cio_write splits it */

static char *h_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *h_hex(char *p, uint32_t v, int digits)
{
    static const char xd[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    int i;
    for (i = digits - 1; i >= 0; i--) {
        p[i] = xd[(uint16_t)v & 15u];
        v >>= 4;
    }
    return p + digits;
}

static uint32_t h_checksum(const int16_t *y, uint32_t n)
{
    uint32_t h = 0x811C9DC5u, i;
    for (i = 0; i < n; i++)
        h = (h ^ (uint16_t)y[i]) * 16777619u;
    return h;
}

static uint16_t h_cases, h_tile_failures;

/* "<name> n=<n> sum=<checksum> y=<first 4> tiles ok|DIFFER" */
static void h_report(const char *name, const int16_t *y, const int16_t *y_tiled, uint32_t n)
{
    char *p = h_str(h_buf, name);
    uint32_t i;
    int same = 1;
    for (i = 0; i < n; i++)
        if (y[i] != y_tiled[i])
            same = 0;
    p = h_str(p, " n=");
    p = h_hex(p, n, 4);
    p = h_str(p, " sum=");
    p = h_hex(p, h_checksum(y, n), 8);
    p = h_str(p, " y=");
    for (i = 0; i < 4 && i < n; i++) {
        p = h_hex(p, (uint16_t)y[i], 4);
        *p++ = i + 1 < 4 && i + 1 < n ? ',' : ' ';
    }
    p = h_str(p, same ? "tiles ok\n" : "tiles DIFFER\n");
    h_write(h_buf, (uint16_t)(p - h_buf));
    h_cases++;
    if (!same)
        h_tile_failures++;
}

static void h_line(const char *s, uint32_t v)
{
    char *p = h_str(h_buf, s);
    p = h_hex(p, v, 8);
    *p++ = '\n';
    h_write(h_buf, (uint16_t)(p - h_buf));
}

static void h_clear(int16_t *a, uint16_t n, int16_t v)
{
    uint16_t i;
    for (i = 0; i < n; i++)
        a[i] = v;
}

static fx_act_t h_act(uint16_t kind)
{
    fx_act_t a;
    a.kind = (uint8_t)(kind & 3u);
    a.lo = -9000;
    a.hi = 12000;
    a.alpha = 3277; /* 0.1 in Q15 */
    return a;
}

/* ---- fc ---- */
static void h_fc_case(const char *name, uint32_t seed, uint16_t k, uint16_t n, uint16_t xm,
                      uint16_t wm, int8_t s_lo, int8_t s_hi, uint16_t act)
{
    fx_fc_t p;
    h_seed(seed);
    h_fill(hx, k, xm);
    h_fill(hw, (uint16_t)(k * n), wm);
    h_fill_params(n, 20000, s_lo, s_hi);
    p.k = k;
    p.n = n;
    p.w = hw;
    p.bias = hbias;
    p.shift = hshift;
    p.act = h_act(act);
    h_clear(hy, n, 0x5555);
    fx_fc(&p, hx, hy, 0, n);
    h_clear(hy2, n, 0x2222);
    fx_fc(&p, hx, hy2, 0, (uint16_t)(n / 3));
    fx_fc(&p, hx, hy2, (uint16_t)(n / 3), n);
    fx_fc(&p, hx, hy2, (uint16_t)(n / 3), (uint16_t)(n / 3)); /* empty range */
    h_report(name, hy, hy2, n);
}

/* ---- conv ---- */
static uint16_t h_out_size(uint16_t in, uint16_t k, uint16_t s, uint16_t d, uint16_t p0, uint16_t p1)
{
    uint16_t span = (uint16_t)(d * (k - 1u) + 1u), total = (uint16_t)(in + p0 + p1), o = 0;
    uint16_t pos = 0;
    while ((uint16_t)(pos + span) <= total) { /* (total - span) / s + 1 without division */
        o++;
        pos = (uint16_t)(pos + s);
    }
    return o;
}

static void h_conv_case(const char *name, uint32_t seed, uint16_t cin, uint16_t ih, uint16_t iw,
                        uint16_t cout, uint16_t kh, uint16_t kw, uint16_t sh, uint16_t sw,
                        uint16_t dh, uint16_t dw, uint16_t pt, uint16_t pl, uint16_t pb,
                        uint16_t pr, uint16_t group, uint16_t act)
{
    fx_conv_t p;
    uint16_t nw, ny, co_mid, oy_mid;
    p.cin = cin; p.ih = ih; p.iw = iw;
    p.cout = cout; p.kh = kh; p.kw = kw;
    p.sh = sh; p.sw = sw; p.dh = dh; p.dw = dw;
    p.pt = pt; p.pl = pl; p.group = group;
    p.oh = h_out_size(ih, kh, sh, dh, pt, pb);
    p.ow = h_out_size(iw, kw, sw, dw, pl, pr);
    fx_conv_prepare(&p);
    nw = (uint16_t)(cout * (cin / group) * kh * kw);
    ny = (uint16_t)(cout * p.oh * p.ow);
    h_seed(seed);
    h_fill(hx, (uint16_t)(cin * ih * iw), 32767);
    h_fill(hw, nw, 32767);
    h_fill_params(cout, 30000, 15, 22);
    p.w = hw;
    p.bias = hbias;
    p.shift = hshift;
    p.act = h_act(act);
    h_clear(hy, ny, 0x5555);
    fx_conv(&p, hx, hy, 0, cout, 0, p.oh);
    /* four tiles: output channels split at co_mid, rows at oy_mid */
    co_mid = (uint16_t)(cout / 2u);
    oy_mid = (uint16_t)(p.oh / 2u);
    h_clear(hy2, ny, 0x2222);
    fx_conv(&p, hx, hy2, 0, co_mid, 0, oy_mid);
    fx_conv(&p, hx, hy2, 0, co_mid, oy_mid, p.oh);
    fx_conv(&p, hx, hy2, co_mid, cout, oy_mid, p.oh);
    fx_conv(&p, hx, hy2, co_mid, cout, 0, oy_mid);
    h_report(name, hy, hy2, ny);
}

/* ---- pooling ---- */
static void h_pool_case(const char *name, uint32_t seed, int avg, uint16_t c, uint16_t ih,
                        uint16_t iw, uint16_t kh, uint16_t kw, uint16_t sh, uint16_t sw,
                        uint16_t dh, uint16_t dw, uint16_t pt, uint16_t pl, uint16_t pb,
                        uint16_t pr, uint16_t include_pad)
{
    fx_pool_t p;
    uint16_t ny;
    p.c = c; p.ih = ih; p.iw = iw;
    p.kh = kh; p.kw = kw; p.sh = sh; p.sw = sw; p.dh = dh; p.dw = dw;
    p.pt = pt; p.pl = pl; p.pb = pb; p.pr = pr;
    p.count_include_pad = include_pad;
    p.oh = h_out_size(ih, kh, sh, dh, pt, pb);
    p.ow = h_out_size(iw, kw, sw, dw, pl, pr);
    ny = (uint16_t)(c * p.oh * p.ow);
    h_seed(seed);
    h_fill(hx, (uint16_t)(c * ih * iw), 32767);
    h_clear(hy, ny, 0x5555);
    h_clear(hy2, ny, 0x2222);
    if (avg) {
        fx_avgpool(&p, hx, hy, 0, c);
        fx_avgpool(&p, hx, hy2, 0, (uint16_t)(c / 2u));
        fx_avgpool(&p, hx, hy2, (uint16_t)(c / 2u), c);
    } else {
        fx_maxpool(&p, hx, hy, 0, c);
        fx_maxpool(&p, hx, hy2, 0, (uint16_t)(c / 2u));
        fx_maxpool(&p, hx, hy2, (uint16_t)(c / 2u), c);
    }
    h_report(name, hy, hy2, ny);
}

/* ---- element-wise ---- */
static void h_add_case(const char *name, uint32_t seed, uint16_t n, uint8_t sa, uint8_t sb,
                       int8_t s, uint16_t act)
{
    fx_add_t p;
    h_seed(seed);
    h_fill(hx, n, 32767);
    h_fill(hx2, n, 32767);
    p.shift_a = sa;
    p.shift_b = sb;
    p.shift = s;
    p.act = h_act(act);
    h_clear(hy, n, 0x5555);
    h_clear(hy2, n, 0x2222);
    fx_add(&p, hx, hx2, hy, 0, n);
    fx_add(&p, hx, hx2, hy2, 0, 7);
    fx_add(&p, hx, hx2, hy2, 7, n);
    h_report(name, hy, hy2, n);
}

static void h_mul_case(const char *name, uint32_t seed, uint16_t n, uint16_t m, int8_t s, uint16_t act)
{
    fx_mul_t p;
    h_seed(seed);
    h_fill(hx, n, m);
    h_fill(hx2, n, m);
    hx[0] = -32768;             /* the largest product, 2^30, and its neighbours */
    hx2[0] = -32768;
    hx[1] = 32767;
    hx2[1] = -32768;
    p.shift = s;
    p.act = h_act(act);
    h_clear(hy, n, 0x5555);
    h_clear(hy2, n, 0x2222);
    fx_mul(&p, hx, hx2, hy, 0, n);
    fx_mul(&p, hx, hx2, hy2, 0, 5);
    fx_mul(&p, hx, hx2, hy2, 5, n);
    h_report(name, hy, hy2, n);
}

static void h_misc_cases(void)
{
    fx_act_t a;
    uint16_t n = 300, i;
    int8_t s;

    h_seed(77);
    h_fill(hx, n, 32767);
    for (i = 0; i < 4; i++) {
        static const char *const names[4] = {"act.none", "act.relu", "act.clip", "act.leaky"};
        a = h_act(i);
        h_clear(hy, n, 0x5555);
        h_clear(hy2, n, 0x2222);
        fx_act(&a, hx, hy, 0, n);
        fx_act(&a, hx, hy2, 0, 100);
        fx_act(&a, hx, hy2, 100, n);
        h_report(names[i], hy, hy2, n);
    }
    for (s = -3; s <= 3; s = (int8_t)(s + 3)) {
        static const char *const names[3] = {"requant_copy.-3", "requant_copy.0", "requant_copy.3"};
        h_clear(hy, n, 0x5555);
        h_clear(hy2, n, 0x2222);
        fx_requant_copy(hx, hy, s, 0, n);
        fx_requant_copy(hx, hy2, s, 0, 150);
        fx_requant_copy(hx, hy2, s, 150, n);
        h_report(names[(s + 3) / 3], hy, hy2, n);
    }
    /* lut: a table of 17 random entries (neighbours differ by less than 32767) over the int16
     * range, a mirrored one over |x| with a short range (both ends), a gated one */
    {
        static const char *const names[3] = {"lut.plain", "lut.mirror", "lut.gate"};
        fx_lut_t t;
        h_fill(hw, 17, 16000);
        for (i = 0; i < 3; i++) {
            t.table = hw;
            t.n = (uint16_t)(i == 1 ? 8u : 16u);
            t.step = (uint8_t)(i == 1 ? 9u : 12u);
            t.base = (int16_t)(i == 1 ? 0 : -32768);
            t.mirror = (uint8_t)(i == 1);
            t.center = i == 1 ? 3000 : 0;
            t.gate = (uint8_t)(i == 2);
            t.shift = (int8_t)(i == 2 ? 14 : 0);
            h_clear(hy, n, 0x5555);
            h_clear(hy2, n, 0x2222);
            fx_lut(&t, hx, hy, 0, n);
            fx_lut(&t, hx, hy2, 0, 120);
            fx_lut(&t, hx, hy2, 120, n);
            h_report(names[i], hy, hy2, n);
        }
    }
    /* requant of the accumulator edge cases, every shift in [-15, 31] */
    {
        static const int32_t accs[8] = {0, 1, -1, 0x7FFFFFFF, (-0x7FFFFFFF - 1), 98304, -98305,
                                        (int32_t)0x00012345};
        uint16_t k = 0;
        for (s = -15; s <= 31; s++)
            for (i = 0; i < 8; i++)
                hy[k++] = fx_requant(accs[i], s);
        h_report("requant.edges", hy, hy, k);
    }
    /* argmax: random, ties (first maximum wins), all equal, a single element */
    h_seed(91);
    h_fill(hx, 200, 50);
    hy[0] = (int16_t)fx_argmax(hx, 200);
    for (i = 0; i < 10; i++)
        hx[i] = (int16_t)(i == 3 || i == 8 ? 7 : -2);
    hy[1] = (int16_t)fx_argmax(hx, 10);
    h_clear(hx, 10, -32768);
    hy[2] = (int16_t)fx_argmax(hx, 10);
    hy[3] = (int16_t)fx_argmax(hx, 1);
    h_report("argmax", hy, hy, 4);
}

int main(void)
{
    /* fc: odd sizes, a single input, long rows whose sums wrap modulo 2^32, every activation,
     * negative and zero shifts. */
    h_fc_case("fc.37x13", 1, 37, 13, 32767, 32767, 15, 24, 0);
    h_fc_case("fc.1x3", 2, 1, 3, 32767, 32767, -4, 3, 1);
    h_fc_case("fc.256x4.wrap", 3, 256, 4, 32767, 32767, 20, 31, 2);
    h_fc_case("fc.64x16.small", 4, 64, 16, 300, 2000, 0, 12, 3);
    h_fc_case("fc.100x9.relu", 5, 100, 9, 32767, 32767, 14, 20, 1);
    /* conv: plain, stride/pad/dilation, groups, depthwise, 1-D, pointwise, windows entirely in
     * the padding, asymmetric padding. */
    h_conv_case("conv.3x9x11.k3.p1", 11, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
    h_conv_case("conv.s2.d2.k3x2", 12, 2, 13, 12, 3, 3, 2, 2, 2, 2, 2, 1, 2, 1, 2, 1, 1);
    h_conv_case("conv.groups2", 13, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2);
    h_conv_case("conv.depthwise", 14, 5, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 3);
    h_conv_case("conv.1d.k5.s2", 15, 3, 1, 40, 4, 1, 5, 1, 2, 1, 1, 0, 2, 0, 2, 1, 1);
    h_conv_case("conv.pointwise", 16, 6, 7, 7, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0);
    h_conv_case("conv.padonly", 17, 2, 3, 3, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3, 1, 0);
    h_conv_case("conv.asym.s3", 18, 3, 10, 9, 2, 4, 3, 3, 2, 1, 1, 0, 2, 3, 1, 1, 1);
    h_conv_case("conv.5x5.lenet", 19, 1, 16, 16, 6, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1);
    /* pooling */
    h_pool_case("maxpool.2x2.s2", 21, 0, 4, 10, 10, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0);
    h_pool_case("maxpool.3x3.s2.p1", 22, 0, 3, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0);
    h_pool_case("maxpool.d2", 23, 0, 2, 9, 9, 2, 3, 1, 2, 2, 1, 0, 1, 0, 1, 0);
    h_pool_case("avgpool.2x2.s2", 24, 1, 4, 10, 10, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0);
    h_pool_case("avgpool.3x3.p1.excl", 25, 1, 3, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0);
    h_pool_case("avgpool.3x3.p1.incl", 26, 1, 3, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    h_pool_case("avgpool.global", 27, 1, 5, 6, 6, 6, 6, 1, 1, 1, 1, 0, 0, 0, 0, 0);
    /* add and the rest */
    h_add_case("add.0.0.0", 31, 200, 0, 0, 0, 0);
    h_add_case("add.shifts.relu", 32, 200, 3, 0, 4, 1);
    h_add_case("add.15.15.clip", 33, 200, 15, 15, 16, 2);
    h_add_case("add.neg.leaky", 34, 200, 0, 2, -2, 3);
    h_mul_case("mul.15.none", 35, 200, 32767, 15, 0);
    h_mul_case("mul.14.relu", 36, 200, 32767, 14, 1);
    h_mul_case("mul.31.clip", 37, 64, 32767, 31, 2);
    h_mul_case("mul.neg.leaky", 38, 100, 300, -6, 3);
    h_mul_case("mul.0.none", 39, 33, 181, 0, 0);
    h_mul_case("mul.20.none", 40, 150, 32767, 20, 0);
    h_misc_cases();
    h_line("cases=", h_cases);
    h_line("tile_failures=", h_tile_failures);
    return 0;
}

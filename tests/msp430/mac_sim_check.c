/* mac_sim_check.c - FX_MAC_BEGIN / FX_MAC / FX_MAC_END (fx_mac.h) on fixed vectors: a small
 * program independent of the kernels. Built for the host (portable accumulator) and for the
 * MSP430 with and without FX_USE_MPY32 (fx_mac_mpy32.h: RESLO/RESHI preload + MACS/OP2) by
 * tests/msp430/test_msp430_mac_sim.py, which requires identical output.
 *
 * Cases: a 64-element dot product from a zero and from a negative bias, a chain of no products
 * (gives the bias), one product, sums that wrap modulo 2^32 in both directions, two chains
 * back to back (the second must not see the first's result), FX_MAC_PP dot products, and the
 * halves of FX_MAC_END_HALVES and FX_UMUL16 (fx_lut's multiplies: unsigned 16x16 products up to
 * 65535 * 32768, a chain of two products read as two halves).
 */
#include <stdint.h>

#include "fx_mac.h"

#ifdef __MSP430__
#include "cio.h"
static void m_write(const char *s, uint16_t n) { fx_cio_write(FX_CIO_STDOUT, s, n); }
#else
#include <stdio.h>
static void m_write(const char *s, uint16_t n) { fwrite(s, 1, n, stdout); }
#endif

#define M_N 64

static int16_t ma[M_N], mb[M_N];

static void m_put(const char *label, int32_t v)
{
    static const char xd[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    char buf[48];
    uint16_t n = 0;
    uint32_t u = (uint32_t)v;
    int i;
    while (*label)
        buf[n++] = *label++;
    buf[n++] = '=';
    for (i = 7; i >= 0; i--)
        buf[n++] = xd[(u >> (4 * i)) & 15u];
    buf[n++] = '\n';
    m_write(buf, n);
}

/* The kernels' loop shape: pointer walk, count down. */
static int32_t __attribute__((noinline)) m_dot(int32_t bias, const int16_t *a, const int16_t *b,
                                               uint16_t n)
{
    FX_MAC_BEGIN(bias);
    while (n-- > 0u) {
        FX_MAC(*a, *b);
        ++a;
        ++b;
    }
    return FX_MAC_END();
}

/* The same through FX_MAC_PP (inline assembly with FX_USE_MPY32), unrolled by four as the
 * kernels would use it. */
#ifndef FX_MAC_PP
#define FX_MAC_PP(xp, wp) (FX_MAC(*(xp), *(wp)), ++(xp), ++(wp))
#endif
static int32_t __attribute__((noinline)) m_dot_pp(int32_t bias, const int16_t *a, const int16_t *b,
                                                  uint16_t n)
{
    const int16_t *end = a + n;
    FX_MAC_BEGIN(bias);
    while ((uint16_t)(end - a) & 3u)
        FX_MAC_PP(a, b);
    while (a != end) {
        FX_MAC_PP(a, b);
        FX_MAC_PP(a, b);
        FX_MAC_PP(a, b);
        FX_MAC_PP(a, b);
    }
    return FX_MAC_END();
}

static int32_t __attribute__((noinline)) m_umul(uint16_t a, uint16_t b)
{
    uint16_t lo, hi;
    FX_UMUL16(a, b, lo, hi);
    return (int32_t)(((uint32_t)hi << 16) | lo);
}

static int32_t __attribute__((noinline)) m_halves(int32_t bias, int16_t a, int16_t b)
{
    uint16_t lo, hi;
    FX_MAC_BEGIN(bias);
    FX_MAC(a, b);
    FX_MAC(a, b);
    FX_MAC_END_HALVES(lo, hi);
    return (int32_t)(((uint32_t)hi << 16) | lo);
}

int main(void)
{
    static const int16_t extremes[4] = {-32768, -32768, -32768, -32768};
    static const int16_t maxes[4] = {32767, 32767, 32767, 32767};
    uint16_t i;
    uint32_t r = 0x12345678u;

    for (i = 0; i < M_N; i++) {
        r = r * 1103515245u + 12345u;
        ma[i] = (int16_t)(r >> 16);
        r = r * 1103515245u + 12345u;
        mb[i] = (int16_t)(r >> 8);
    }
    m_put("dot64.bias0", m_dot(0, ma, mb, M_N));
    m_put("dot64.biasneg", m_dot((int32_t)0xC0001234u, ma, mb, M_N));
    m_put("empty.bias", m_dot(-123456789, ma, mb, 0));
    m_put("one", m_dot(7, ma + 5, mb + 9, 1));
    m_put("wrap.up", m_dot(0x7FFFFFFF, maxes, maxes, 4));
    m_put("wrap.minmin", m_dot(5, extremes, extremes, 4));   /* 4 * 2^30 = 2^32: back to 5 */
    m_put("wrap.down", m_dot((-0x7FFFFFFF - 1), extremes, maxes, 3));
    m_put("chain.a", m_dot(1, ma, ma, M_N));
    m_put("chain.b", m_dot(-1, mb, mb, 17));
    m_put("pp.dot64", m_dot_pp((int32_t)0xC0001234u, ma, mb, M_N));
    m_put("pp.dot63", m_dot_pp(3, ma + 1, mb, 63));
    m_put("pp.dot2", m_dot_pp(-3, ma + 7, mb + 2, 2));
    m_put("pp.empty", m_dot_pp(99, ma, mb, 0));
    m_put("umul.max", m_umul(65535u, 32768u));
    m_put("umul.mid", m_umul(40000u, 3u));
    m_put("halves.neg", m_halves(32768, -32767, 32767));
    m_put("halves.pos", m_halves(32768, 12345, 30000));
    return 0;
}

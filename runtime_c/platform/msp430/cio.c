/* cio.c - console output for the GNU msp430 simulator (see cio.h).
 * Adapted from the toolchain bundle's example/cio.c (shared/toolchains/msp430/example). */
#include "cio.h"

/* The simulator finds these two by name in the ELF symbol table. The buffer layout is TI's:
 * length (2 bytes), command, parameters (8 bytes), then the data. */
unsigned char __CIOBUF__[11 + FX_CIO_MAX];
void fx_cio_breakpoint(void) __asm__("C$$IO$$");

/* In FRAM: the number of exactly-once outputs done, and the value it takes when the pending
 * request completes. Below 64 KB (`lower' in the large model) because C$$IO$$ addresses them
 * with 16-bit absolute addresses. */
#ifdef __MSP430X_LARGE__
#define FX_CIO_LOWER __attribute__((lower))
#define FX_CIO_RET "reta"
#else
#define FX_CIO_LOWER
#define FX_CIO_RET "ret"
#endif
volatile uint16_t fx_cio_done_count __attribute__((persistent)) FX_CIO_LOWER = 0;
volatile uint16_t fx_cio_pending __attribute__((persistent)) FX_CIO_LOWER = 0;

/* C$$IO$$: the simulator performs the request when the PC gets here and executes the first
 * instruction in the same step (atomically with respect to simulated power failures): publish
 * the completed count. */
__asm__("\t.section .text.fx_cio_breakpoint,\"ax\",@progbits\n"
        "\t.global C$$IO$$\n"
        "\t.type C$$IO$$, @function\n"
        "C$$IO$$:\n"
        "\tmov\t&fx_cio_pending, &fx_cio_done_count\n"
        "\t" FX_CIO_RET "\n"
        "\t.size C$$IO$$, . - C$$IO$$\n");

#define FX_CIO_WRITE 0xF3

/* Send the N data bytes already at __CIOBUF__ + 11. */
static void fx_cio_request(int fd, uint16_t n)
{
    __CIOBUF__[0] = (unsigned char)(n & 0xffu); /* length of the data part */
    __CIOBUF__[1] = (unsigned char)(n >> 8);
    __CIOBUF__[2] = FX_CIO_WRITE;               /* command */
    __CIOBUF__[3] = (unsigned char)((unsigned)fd & 0xffu); /* parameter 0: file descriptor */
    __CIOBUF__[4] = (unsigned char)(((unsigned)fd >> 8) & 0xffu);
    __CIOBUF__[5] = (unsigned char)(n & 0xffu); /* parameter 1: byte count */
    __CIOBUF__[6] = (unsigned char)(n >> 8);
    fx_cio_breakpoint();
}

char *fx_cio_line(void)
{
    return (char *)__CIOBUF__ + 11;
}

static uint16_t fx_cio_line_length(const char *end)
{
    uint16_t n = (uint16_t)(end - fx_cio_line());
    return n > FX_CIO_MAX ? (uint16_t)FX_CIO_MAX : n;
}

uint16_t fx_cio_write(int fd, const void *buf, uint16_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint16_t left = len;

    while (left > 0u) {
        uint16_t n = left > FX_CIO_MAX ? (uint16_t)FX_CIO_MAX : left, i;
        for (i = 0; i < n; i++)
            __CIOBUF__[11 + i] = p[i];
        fx_cio_pending = fx_cio_done_count; /* plain writes do not count */
        fx_cio_request(fd, n);
        p += n;
        left = (uint16_t)(left - n);
    }
    return len;
}

void fx_cio_puts(int fd, const char *s)
{
    uint16_t n = 0;
    while (s[n] != '\0')
        n++;
    fx_cio_write(fd, s, n);
}

void fx_cio_send(int fd, const char *end)
{
    fx_cio_pending = fx_cio_done_count;
    fx_cio_request(fd, fx_cio_line_length(end));
}

int fx_cio_send_seq(uint16_t seq, int fd, const char *end)
{
    if (seq < fx_cio_done_count)
        return 0;
    fx_cio_pending = (uint16_t)(seq + 1u);
    fx_cio_request(fd, fx_cio_line_length(end));
    return 1;
}

uint16_t fx_cio_done(void)
{
    return fx_cio_done_count;
}

char *fx_fmt_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

/* Decimal by repeated subtraction: no 32-bit division, so a line costs a few hundred cycles. */
char *fx_fmt_udec(char *p, uint32_t v)
{
    static const uint32_t pow10[10] = {
        1000000000ul, 100000000ul, 10000000ul, 1000000ul, 100000ul,
        10000ul, 1000ul, 100ul, 10ul, 1ul
    };
    uint16_t k = 0;
    int started = 0;

    while (k < 9u && pow10[k] > v)
        k++;
    for (; k < 10u; k++) {
        char d = '0';
        while (v >= pow10[k]) {
            v -= pow10[k];
            d++;
        }
        if (d != '0' || started || k == 9u) {
            *p++ = d;
            started = 1;
        }
    }
    return p;
}

char *fx_fmt_sdec(char *p, int32_t v)
{
    if (v < 0) {
        *p++ = '-';
        return fx_fmt_udec(p, 0ul - (uint32_t)v);
    }
    return fx_fmt_udec(p, (uint32_t)v);
}

char *fx_fmt_hex(char *p, uint32_t v, int digits)
{
    static const char hex[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                 '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    int i;

    for (i = digits - 1; i >= 0; i--) {
        p[i] = hex[(uint16_t)v & 0xfu];
        v >>= 4;
    }
    return p + (digits > 0 ? digits : 0);
}

void fx_cio_print_values(uint16_t i, uint16_t seq, const int16_t *y, uint16_t len, uint16_t per_line)
{
    uint16_t off;

    for (off = 0; off < len; off = (uint16_t)(off + per_line), seq++) {
        uint16_t k, n = (uint16_t)(len - off);
        char *p;
        if (seq < fx_cio_done())
            continue; /* sent before a power failure */
        if (n > per_line)
            n = per_line;
        p = fx_fmt_str(fx_cio_line(), "y ");
        p = fx_fmt_udec(p, i);
        *p++ = ' ';
        p = fx_fmt_udec(p, off);
        for (k = 0; k < n; k++) {
            *p++ = ' ';
            p = fx_fmt_hex(p, (uint16_t)y[off + k], 4);
        }
        *p++ = '\n';
        fx_cio_send_seq(seq, FX_CIO_STDOUT, p);
    }
}

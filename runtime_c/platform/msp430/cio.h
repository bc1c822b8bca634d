/* cio.h - console output through the GNU msp430 simulator's CIO protocol (freeml-tx).
 *
 * Adapted from the toolchain bundle's example/cio.h (shared/toolchains/msp430/example).
 * The program fills the buffer __CIOBUF__ and calls C$$IO$$; when the simulator's PC reaches
 * C$$IO$$ it performs the request on the host (write(fd, data, len)). On a real device nothing
 * happens (the call returns at once).
 *
 * Two ways to write:
 *   fx_cio_write(fd, buf, len)   copies BUF into the CIO buffer (any length, split into pieces);
 *   p = fx_cio_line(); ...format at p with fx_fmt_*...; fx_cio_send(fd, p) or
 *   fx_cio_send_seq(seq, fd, p)  formats in place (no copy), at most FX_CIO_MAX bytes per line.
 *
 * Output across power failures: fx_cio_write() and fx_cio_send() are at-least-once (a line sent
 * before a failure is sent again if the program re-executes it). fx_cio_send_seq() is
 * exactly-once: it writes only if output number SEQ has not been written yet
 * (SEQ >= fx_cio_done()). The count of completed outputs lives in FRAM and is updated by the
 * first instruction of C$$IO$$, which the simulator executes in the same step as the host write,
 * so no failure can fall between the two. SEQ must follow from the program's persistent progress
 * (e.g. "line k of the result of input i"), not from a counter that restarts at boot. Test
 * SEQ < fx_cio_done() before formatting so that lines finished before a reboot cost nothing.
 * Sequence numbers are 16-bit: at most 65535 exactly-once lines per loaded image.
 */
#ifndef FX_CIO_H
#define FX_CIO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FX_CIO_STDOUT 1
#define FX_CIO_STDERR 2
#define FX_CIO_MAX 64 /* bytes per request; longer writes are split */

/* Write LEN bytes to host file descriptor FD (at-least-once); returns LEN. */
uint16_t fx_cio_write(int fd, const void *buf, uint16_t len);

/* Write a NUL-terminated string (at-least-once). */
void fx_cio_puts(int fd, const char *s);

/* The data area of the CIO buffer (FX_CIO_MAX bytes): format a line here. */
char *fx_cio_line(void);

/* Send the bytes from fx_cio_line() up to END (at most FX_CIO_MAX) to FD (at-least-once). */
void fx_cio_send(int fd, const char *end);

/* Exactly-once send: only if SEQ >= fx_cio_done(); afterwards fx_cio_done() == SEQ + 1.
 * Returns 1 if it wrote, 0 if output SEQ was already done. */
int fx_cio_send_seq(uint16_t seq, int fd, const char *end);

/* The "y I OFF v v ..." lines of input I: the LEN values at Y, PER_LINE (at most 8) to a line, in
 * 4-digit hex, each line exactly-once with sequence numbers SEQ, SEQ + 1, ... (lines already sent
 * before a power failure are skipped). */
void fx_cio_print_values(uint16_t i, uint16_t seq, const int16_t *y, uint16_t len, uint16_t per_line);

/* Number of exactly-once outputs completed so far (kept in FRAM). */
uint16_t fx_cio_done(void);

/* Freestanding formatting helpers: each writes at P and returns the end. No division (32-bit
 * division is a libgcc call of hundreds of cycles). */
char *fx_fmt_str(char *p, const char *s);
char *fx_fmt_udec(char *p, uint32_t v);
char *fx_fmt_sdec(char *p, int32_t v);
/* Exactly DIGITS lowercase hex digits of V (1..8), with a cost that does not depend on V. */
char *fx_fmt_hex(char *p, uint32_t v, int digits);

#ifdef __cplusplus
}
#endif
#endif /* FX_CIO_H */

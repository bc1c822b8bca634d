/* fx_host_io.h - file I/O of the generated host drivers (main_host.c, main_intermittent.c,
 * main_gnet.c): raw little-endian int16 files, counts on the command line, error messages.
 *
 * Hosted C99 (stdio, stdlib). Host builds only: the Makefile links fx_host_io.c into the host
 * binaries (make, make asan, make host-intermittent, make gnet), never into FX_SRCS, so the device
 * build (msp430.mk) does not see it.
 */
#ifndef FX_HOST_IO_H
#define FX_HOST_IO_H

#include <stddef.h>
#include <stdint.h>

/* Read a whole file of little-endian int16 values. Returns a new array of *bytes / 2 values
 * (release it with free()) and sets *bytes to the file's size in bytes (an odd last byte is not
 * decoded; callers check the size); NULL when the file cannot be read or memory runs out. */
int16_t *fx_host_read_int16(const char *path, size_t *bytes);

/* Write n int16 values little-endian to path (created or truncated). Returns 0, or -1 when the
 * file cannot be opened or written completely. */
int fx_host_write_int16(const char *path, const int16_t *v, size_t n);

/* Parse a positive decimal integer: digits only (no sign, no blanks), no overflow. Returns 0 and
 * sets *v, or -1 (and leaves *v unchanged). */
int fx_host_parse_count(const char *text, unsigned long *v);

/* Print "PROG: PATH: WHAT" on stderr. Returns 1, the drivers' exit status for an I/O error. */
int fx_host_fail(const char *prog, const char *path, const char *what);

#endif /* FX_HOST_IO_H */

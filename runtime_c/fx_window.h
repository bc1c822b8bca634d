/* fx_window.h - internal helpers shared by the windowed kernels (conv, pooling); not public API.
 *
 * Along one axis, kernel tap k of output position o reads input coordinate o * s - pad + k * d.
 * The valid taps are those with 0 <= o * s - pad + k * d < size; they form one contiguous run
 * [lo, hi) (fx_tap_range). The output positions whose taps are all valid form one contiguous run
 * too, the interior (fx_inside_range): the pooling kernels compute it once per call, fx_conv
 * finds it in its descriptor (fx_conv_prepare, or the compiler's copy in backends/c/printers.py);
 * the kernels take fast paths there, with bounds checks only for the border positions.
 */
#ifndef FX_WINDOW_H
#define FX_WINDOW_H

#include <stdint.h>

/* Keeps a function out of line: the per-run loops stay small enough for the MSP430's twelve
 * registers instead of being merged into their caller's frame. */
#if defined(__GNUC__)
#define FX_NOINLINE __attribute__((noinline))
#else
#define FX_NOINLINE
#endif

/* Sets [*lo, *hi) to the valid taps of `taps` taps with step d >= 1 from `start` inside
 * [0, size); *lo == *hi when none is valid. Divides nothing: a dilation above 1 walks the taps. */
static inline void fx_tap_range(int32_t start, uint16_t taps, uint16_t d, int32_t size,
                                uint16_t *lo, uint16_t *hi)
{
    uint16_t a = 0, b = taps;
    if (d == 1u) {
        int32_t end = size - start;          /* taps k < end are below size */
        if (start < 0) {
            a = (-start >= (int32_t)taps) ? taps : (uint16_t)(-start);
        }
        if (end < (int32_t)b) {
            b = end <= 0 ? 0u : (uint16_t)end;
        }
    } else {
        int32_t pos = start;
        while (a < taps && pos < 0) {
            ++a;
            pos += d;
        }
        b = a;
        while (b < taps && pos < size) {
            ++b;
            pos += d;
        }
    }
    *lo = a;
    *hi = b < a ? a : b;
}

/* Sets [*lo, *hi) to the output positions o in [0, out) whose window o * s - pad + k * d,
 * k in [0, taps), lies inside [0, size): o * s >= pad and o * s + (taps - 1) * d < size + pad,
 * i.e. lo = ceil(pad / s), hi = floor((size - span + pad) / s) + 1 (span = (taps - 1) * d + 1),
 * clipped to out; *lo == *hi when there is none. Needs s >= 1 (divides only when s > 1). */
static inline void fx_inside_range(uint16_t size, uint16_t taps, uint16_t s, uint16_t d,
                                   uint16_t pad, uint16_t out, uint16_t *lo, uint16_t *hi)
{
    const uint32_t span = (uint32_t)(taps - 1u) * d + 1u;
    uint32_t a = 0, b = 0;
    if (taps != 0u && span <= size) {
        const uint32_t last = size - span + pad;    /* largest o * s of a window inside */
        a = pad;
        b = last + 1u;
        if (s != 1u) {
            a = (a + s - 1u) / s;
            b = last / s + 1u;
        }
        if (b > out) {
            b = out;
        }
        if (a > b) {
            a = b;
        }
    }
    *lo = (uint16_t)a;
    *hi = (uint16_t)b;
}

#endif /* FX_WINDOW_H */

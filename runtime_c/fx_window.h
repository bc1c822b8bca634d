/* fx_window.h - internal helper shared by the windowed kernels (conv, pooling); not public API.
 *
 * Along one axis, kernel tap k of an output position reads input coordinate start + k * d. The
 * valid taps are those with 0 <= start + k * d < size; they form one contiguous run [lo, hi).
 * Computing that run once per output position keeps bounds checks out of the inner loops.
 */
#ifndef FX_WINDOW_H
#define FX_WINDOW_H

#include <stdint.h>

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

#endif /* FX_WINDOW_H */

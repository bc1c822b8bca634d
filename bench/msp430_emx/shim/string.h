/* string.h - memcpy/memset/memmove for emx-onnx-cgen's C without a C library (emx_libc.c). */
#ifndef EMX_SHIM_STRING_H
#define EMX_SHIM_STRING_H
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
#endif

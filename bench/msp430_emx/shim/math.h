/* math.h - the part of <math.h> emx-onnx-cgen's C uses, for msp430-elf-gcc without a C library
 * (bench/msp430_models.py). Soft-float through libgcc. */
#ifndef EMX_SHIM_MATH_H
#define EMX_SHIM_MATH_H
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
static inline float fmaxf(float a, float b) { return a != a ? b : (b != b ? a : (a > b ? a : b)); }
static inline float fminf(float a, float b) { return a != a ? b : (b != b ? a : (a < b ? a : b)); }
static inline float fabsf(float a) { return a < 0.0f ? -a : a; }
#endif

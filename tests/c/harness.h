/* harness.h - what the kernel test harnesses share (kernel_harness.c, sparse_harness.c; host only):
 * the case stream, output buffers, and the dense fc and conv runners both of them call.
 *
 * Everything is little-endian int32 (tests/kernels/test_kernels_c_vs_numpy.py writes and reads it):
 *
 *   case   := op nparams param* narrays array* nranges range*      (op 0 ends the stream)
 *   array  := len value*                 (converted to the kernel's element type)
 *   result := len value*                 (one per case, on stdout)
 *
 * Every array is a heap block of exactly its size, so AddressSanitizer reports any read or write
 * past it; outputs are prefilled with FX_HARNESS_FILL. A harness defines HARNESS_NAME (for its
 * error messages) before including this file, once, and calls harness_main() with its dispatcher.
 */
#ifndef FX_TEST_HARNESS_H
#define FX_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fx_kernels.h"

#ifndef HARNESS_NAME
#error "define HARNESS_NAME before including harness.h"
#endif

#define FX_HARNESS_FILL (-21846) /* 0xAAAA: marks output elements no call wrote */
#define MAX_PARAMS 32
#define MAX_ARRAYS 8

static void die(const char *msg)
{
    fprintf(stderr, HARNESS_NAME ": %s\n", msg);
    exit(2);
}

static int32_t read_i32(void)
{
    unsigned char b[4];
    if (fread(b, 1, 4, stdin) != 4) {
        die("truncated input");
    }
    return (int32_t)((uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16)
                     | ((uint32_t)b[3] << 24));
}

static void write_i32(int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char b[4];
    b[0] = (unsigned char)(u & 0xFFu);
    b[1] = (unsigned char)((u >> 8) & 0xFFu);
    b[2] = (unsigned char)((u >> 16) & 0xFFu);
    b[3] = (unsigned char)((u >> 24) & 0xFFu);
    if (fwrite(b, 1, 4, stdout) != 4) {
        die("write failed");
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

typedef struct {
    int32_t len;
    int32_t *v;
} array_t;

typedef struct {
    int32_t params[MAX_PARAMS];
    int32_t nparams;
    array_t arrays[MAX_ARRAYS];
    int32_t narrays;
    int32_t *ranges;
    int32_t nranges;
} case_t;

static int16_t *as_i16(const array_t *a)
{
    int16_t *p = (int16_t *)xmalloc((size_t)a->len * sizeof(int16_t));
    int32_t i;
    for (i = 0; i < a->len; ++i) {
        p[i] = (int16_t)a->v[i];
    }
    return p;
}

static int8_t *as_i8(const array_t *a)
{
    int8_t *p = (int8_t *)xmalloc((size_t)a->len);
    int32_t i;
    for (i = 0; i < a->len; ++i) {
        p[i] = (int8_t)a->v[i];
    }
    return p;
}

static int16_t *new_output(int32_t n)
{
    int16_t *y = (int16_t *)xmalloc((size_t)n * sizeof(int16_t));
    int32_t i;
    for (i = 0; i < n; ++i) {
        y[i] = (int16_t)FX_HARNESS_FILL;
    }
    return y;
}

static void emit_i16(const int16_t *y, int32_t n)
{
    int32_t i;
    write_i32(n);
    for (i = 0; i < n; ++i) {
        write_i32(y[i]);
    }
}

static fx_act_t act_from(const int32_t *q)
{
    fx_act_t a;
    a.kind = (uint8_t)q[0];
    a.lo = (int16_t)q[1];
    a.hi = (int16_t)q[2];
    a.alpha = (int16_t)q[3];
    return a;
}

/* Die unless the case has nparams params, narrays arrays and ranges of range_arity ints (0: none). */
static void need(const case_t *c, int32_t nparams, int32_t narrays, int32_t range_arity)
{
    if (c->nparams != nparams || c->narrays != narrays) {
        die("wrong number of params or arrays for op");
    }
    if (range_arity == 0 ? c->nranges != 0 : c->nranges % range_arity != 0) {
        die("ranges do not match the op's arity");
    }
}

/* The geometry of fx_conv_t and fx_conv_sparse_t from params q[0..19):
 * cin ih iw cout oh ow kh kw sh sw dh dw pt pl group act[4]. */
#define SET_CONV_GEOMETRY(p, q)                                                              \
    do {                                                                                     \
        (p).cin = (uint16_t)(q)[0]; (p).ih = (uint16_t)(q)[1]; (p).iw = (uint16_t)(q)[2];     \
        (p).cout = (uint16_t)(q)[3]; (p).oh = (uint16_t)(q)[4]; (p).ow = (uint16_t)(q)[5];    \
        (p).kh = (uint16_t)(q)[6]; (p).kw = (uint16_t)(q)[7];                                 \
        (p).sh = (uint16_t)(q)[8]; (p).sw = (uint16_t)(q)[9];                                 \
        (p).dh = (uint16_t)(q)[10]; (p).dw = (uint16_t)(q)[11];                               \
        (p).pt = (uint16_t)(q)[12]; (p).pl = (uint16_t)(q)[13]; (p).group = (uint16_t)(q)[14]; \
        (p).act = act_from((q) + 15);                                                         \
    } while (0)

/* fx_conv: params as SET_CONV_GEOMETRY; arrays x w bias shift; ranges co0 co1 oy0 oy1. */
static void run_conv(const case_t *c)
{
    fx_conv_t p;
    int16_t *x, *w, *y;
    int8_t *shift;
    int32_t i, n;
    need(c, 19, 4, 4);
    SET_CONV_GEOMETRY(p, c->params);
    fx_conv_prepare(&p);
    x = as_i16(&c->arrays[0]);
    w = as_i16(&c->arrays[1]);
    shift = as_i8(&c->arrays[3]);
    p.w = w;
    p.bias = c->arrays[2].v;
    p.shift = shift;
    n = (int32_t)p.cout * p.oh * p.ow;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 4) {
        fx_conv(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1],
                (uint16_t)c->ranges[i + 2], (uint16_t)c->ranges[i + 3]);
    }
    emit_i16(y, n);
    free(x); free(w); free(shift); free(y);
}

/* fx_fc: params k n act[4]; arrays x w bias shift; ranges lo hi. */
static void run_fc(const case_t *c)
{
    const int32_t *q = c->params;
    fx_fc_t p;
    int16_t *x, *w, *y;
    int8_t *shift;
    int32_t i;
    need(c, 6, 4, 2);
    p.k = (uint16_t)q[0];
    p.n = (uint16_t)q[1];
    p.act = act_from(q + 2);
    x = as_i16(&c->arrays[0]);
    w = as_i16(&c->arrays[1]);
    shift = as_i8(&c->arrays[3]);
    p.w = w;
    p.bias = c->arrays[2].v;
    p.shift = shift;
    y = new_output(p.n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_fc(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1]);
    }
    emit_i16(y, p.n);
    free(x); free(w); free(shift); free(y);
}

/* Read the next case into *c (0 at the end of the stream). */
static int read_case(case_t *c, int32_t *op)
{
    int32_t i, k;
    *op = read_i32();
    if (*op == 0) {
        return 0;
    }
    c->nparams = read_i32();
    if (c->nparams < 0 || c->nparams > MAX_PARAMS) {
        die("bad parameter count");
    }
    for (i = 0; i < c->nparams; ++i) {
        c->params[i] = read_i32();
    }
    c->narrays = read_i32();
    if (c->narrays < 0 || c->narrays > MAX_ARRAYS) {
        die("bad array count");
    }
    for (i = 0; i < c->narrays; ++i) {
        int32_t len = read_i32();
        if (len < 0) {
            die("bad array length");
        }
        c->arrays[i].len = len;
        c->arrays[i].v = (int32_t *)xmalloc((size_t)len * sizeof(int32_t));
        for (k = 0; k < len; ++k) {
            c->arrays[i].v[k] = read_i32();
        }
    }
    c->nranges = read_i32();
    if (c->nranges < 0) {
        die("bad range count");
    }
    c->ranges = (int32_t *)xmalloc((size_t)c->nranges * sizeof(int32_t));
    for (i = 0; i < c->nranges; ++i) {
        c->ranges[i] = read_i32();
    }
    return 1;
}

static void free_case(case_t *c)
{
    int32_t i;
    for (i = 0; i < c->narrays; ++i) {
        free(c->arrays[i].v);
    }
    free(c->ranges);
}

/* The harness's main loop: every case of stdin to run(op, case) (which dies on an unknown op),
 * then flush stdout. Returns main's exit status. */
static int harness_main(void (*run)(int32_t op, const case_t *c))
{
    case_t c;
    int32_t op;
    while (read_case(&c, &op)) {
        run(op, &c);
        free_case(&c);
    }
    if (fflush(stdout) != 0) {
        die("write failed");
    }
    return 0;
}

#endif /* FX_TEST_HARNESS_H */

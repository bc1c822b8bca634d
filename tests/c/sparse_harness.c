/* sparse_harness.c - runs the sparse kernels (runtime_c/fx_sparse.c) and, on the same weights,
 * the dense ones, on test cases read from stdin (host only).
 *
 * Same stream format as kernel_harness.c (tests/kernels/test_sparse_kernels.py builds it with
 * gcc and clang under ASan+UBSan):
 *
 *   case   := op nparams param* narrays array* nranges range*      (op 0 ends the stream)
 *   array  := len value*                 (converted to the kernel's element type)
 *   range  := 2 or 4 ints (conv: co0 co1 oy0 oy1; fc: lo hi)
 *
 * ops: 1 fc_sparse   params k n act[4]; arrays x values cols rowptr bias shift
 *      2 conv_sparse params cin ih iw cout oh ow kh kw sh sw dh dw pt pl group act[4];
 *                    arrays x values offsets chanptr bias shift
 *      3 fc          params k n act[4]; arrays x w bias shift
 *      4 conv        params as conv_sparse; arrays x w bias shift
 * Every array is a heap block of exactly its size (ASan sees any access past it); outputs are
 * prefilled with FX_HARNESS_FILL and written as "len value*".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fx_kernels.h"

#define FX_HARNESS_FILL (-21846) /* 0xAAAA: marks output elements no call wrote */
#define MAX_PARAMS 32
#define MAX_ARRAYS 8

static void die(const char *msg)
{
    fprintf(stderr, "sparse_harness: %s\n", msg);
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

static void need(const case_t *c, int32_t nparams, int32_t narrays, int32_t range_arity)
{
    if (c->nparams != nparams || c->narrays != narrays) {
        die("wrong number of params or arrays for op");
    }
    if (range_arity == 0 ? c->nranges != 0 : c->nranges % range_arity != 0) {
        die("ranges do not match the op's arity");
    }
}


static uint16_t *as_u16(const array_t *a)
{
    uint16_t *p = (uint16_t *)xmalloc((size_t)a->len * sizeof(uint16_t));
    int32_t i;
    for (i = 0; i < a->len; ++i) {
        p[i] = (uint16_t)a->v[i];
    }
    return p;
}

static void run_fc_sparse(const case_t *c)
{
    const int32_t *q = c->params;
    fx_fc_sparse_t p;
    int16_t *x, *values, *y;
    uint16_t *cols, *rowptr;
    int8_t *shift;
    int32_t i;
    need(c, 6, 6, 2);
    p.k = (uint16_t)q[0];
    p.n = (uint16_t)q[1];
    p.act = act_from(q + 2);
    x = as_i16(&c->arrays[0]);
    values = as_i16(&c->arrays[1]);
    cols = as_u16(&c->arrays[2]);
    rowptr = as_u16(&c->arrays[3]);
    shift = as_i8(&c->arrays[5]);
    p.values = values;
    p.cols = cols;
    p.rowptr = rowptr;
    p.bias = c->arrays[4].v;
    p.shift = shift;
    y = new_output(p.n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_fc_sparse(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1]);
    }
    emit_i16(y, p.n);
    free(x); free(values); free(cols); free(rowptr); free(shift); free(y);
}

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

/* The geometry shared by fx_conv_t and fx_conv_sparse_t, from params[0..15). */
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

static void run_conv_sparse(const case_t *c)
{
    fx_conv_sparse_t p;
    int16_t *x, *values, *y;
    uint16_t *offsets, *chanptr;
    int8_t *shift;
    int32_t i, n;
    need(c, 19, 6, 4);
    SET_CONV_GEOMETRY(p, c->params);
    x = as_i16(&c->arrays[0]);
    values = as_i16(&c->arrays[1]);
    offsets = as_u16(&c->arrays[2]);
    chanptr = as_u16(&c->arrays[3]);
    shift = as_i8(&c->arrays[5]);
    p.values = values;
    p.offsets = offsets;
    p.chanptr = chanptr;
    p.bias = c->arrays[4].v;
    p.shift = shift;
    n = (int32_t)p.cout * p.oh * p.ow;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 4) {
        fx_conv_sparse(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1],
                       (uint16_t)c->ranges[i + 2], (uint16_t)c->ranges[i + 3]);
    }
    emit_i16(y, n);
    free(x); free(values); free(offsets); free(chanptr); free(shift); free(y);
}

static void run_conv(const case_t *c)
{
    fx_conv_t p;
    int16_t *x, *w, *y;
    int8_t *shift;
    int32_t i, n;
    need(c, 19, 4, 4);
    SET_CONV_GEOMETRY(p, c->params);
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

int main(void)
{
    case_t c;
    int32_t op;
    while (read_case(&c, &op)) {
        switch (op) {
        case 1: run_fc_sparse(&c); break;
        case 2: run_conv_sparse(&c); break;
        case 3: run_fc(&c); break;
        case 4: run_conv(&c); break;
        default: die("unknown op");
        }
        free_case(&c);
    }
    if (fflush(stdout) != 0) {
        die("write failed");
    }
    return 0;
}

/* sparse_harness.c - runs the sparse kernels (runtime_c/fx_sparse.c) and, on the same weights,
 * the dense ones, on test cases read from stdin (host only).
 *
 * Same stream format as kernel_harness.c (harness.h; tests/kernels/test_sparse_kernels.py builds
 * it with gcc and clang under ASan+UBSan); ranges: conv co0 co1 oy0 oy1, fc lo hi.
 *
 * ops: 1 fc_sparse   params k n act[4]; arrays x values deltas rowptr bias shift
 *      2 conv_sparse params cin ih iw cout oh ow kh kw sh sw dh dw pt pl group act[4];
 *                    arrays x values offsets chanptr bias shift
 *      3 fc          params k n act[4]; arrays x w bias shift
 *      4 conv        params as conv_sparse; arrays x w bias shift
 */
#define HARNESS_NAME "sparse_harness"
#include "harness.h"

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
    uint16_t *deltas, *rowptr;
    int8_t *shift;
    int32_t i;
    need(c, 6, 6, 2);
    p.k = (uint16_t)q[0];
    p.n = (uint16_t)q[1];
    p.act = act_from(q + 2);
    x = as_i16(&c->arrays[0]);
    values = as_i16(&c->arrays[1]);
    deltas = as_u16(&c->arrays[2]);
    rowptr = as_u16(&c->arrays[3]);
    shift = as_i8(&c->arrays[5]);
    p.values = values;
    p.deltas = deltas;
    p.rowptr = rowptr;
    p.bias = c->arrays[4].v;
    p.shift = shift;
    p.shift_min = p.shift_max = p.n != 0u ? shift[0] : 0;
    for (i = 1; i < (int32_t)p.n; ++i) {
        p.shift_min = shift[i] < p.shift_min ? shift[i] : p.shift_min;
        p.shift_max = shift[i] > p.shift_max ? shift[i] : p.shift_max;
    }
    y = new_output(p.n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_fc_sparse(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1]);
    }
    emit_i16(y, p.n);
    free(x); free(values); free(deltas); free(rowptr); free(shift); free(y);
}

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

static void run_op(int32_t op, const case_t *c)
{
    switch (op) {
    case 1: run_fc_sparse(c); break;
    case 2: run_conv_sparse(c); break;
    case 3: run_fc(c); break;
    case 4: run_conv(c); break;
    default: die("unknown op");
    }
}

int main(void)
{
    return harness_main(run_op);
}

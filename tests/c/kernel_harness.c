/* kernel_harness.c - runs the runtime_c kernels on test cases read from stdin (host only).
 *
 * The tests (tests/kernels/test_kernels_c_vs_numpy.py) build this once per compiler with the
 * sanitizers on and stream many cases through one process, in the format of harness.h:
 *
 *   case   := op nparams param* narrays array* nranges range*      (op 0 ends the stream)
 *   range  := 2 or 4 ints (conv: co0 co1 oy0 oy1; others: lo hi)
 *
 * For each case the kernel is called once per range, in the order given, on an output buffer
 * prefilled with FX_HARNESS_FILL; then "len value*" of the output goes to stdout.
 *
 * ops: 1 conv, 2 fc, 3 maxpool, 4 avgpool, 5 add, 6 act, 7 requant_copy, 8 argmax,
 *      9 requant (element-wise fx_requant of acc[i] by shift[i]), 10 apply_act (fx_apply_act),
 *      11 lut (params step base mirror center gate shift; arrays x, table),
 *      12 mul (params shift act...; arrays a, b).
 */
#define HARNESS_NAME "kernel_harness"
#include "harness.h"

static void run_pool(const case_t *c, int avg)
{
    const int32_t *q = c->params;
    fx_pool_t p;
    int16_t *x, *y;
    int32_t i, n;
    need(c, 16, 1, 2);
    p.c = (uint16_t)q[0]; p.ih = (uint16_t)q[1]; p.iw = (uint16_t)q[2];
    p.oh = (uint16_t)q[3]; p.ow = (uint16_t)q[4];
    p.kh = (uint16_t)q[5]; p.kw = (uint16_t)q[6];
    p.sh = (uint16_t)q[7]; p.sw = (uint16_t)q[8]; p.dh = (uint16_t)q[9]; p.dw = (uint16_t)q[10];
    p.pt = (uint16_t)q[11]; p.pl = (uint16_t)q[12]; p.pb = (uint16_t)q[13]; p.pr = (uint16_t)q[14];
    p.count_include_pad = (uint16_t)q[15];
    x = as_i16(&c->arrays[0]);
    n = (int32_t)p.c * p.oh * p.ow;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 2) {
        if (avg) {
            fx_avgpool(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1]);
        } else {
            fx_maxpool(&p, x, y, (uint16_t)c->ranges[i], (uint16_t)c->ranges[i + 1]);
        }
    }
    emit_i16(y, n);
    free(x); free(y);
}

static void run_add(const case_t *c)
{
    const int32_t *q = c->params;
    fx_add_t p;
    int16_t *a, *b, *y;
    int32_t i, n;
    need(c, 7, 2, 2);
    p.shift_a = (uint8_t)q[0];
    p.shift_b = (uint8_t)q[1];
    p.shift = (int8_t)q[2];
    p.act = act_from(q + 3);
    if (c->arrays[0].len != c->arrays[1].len) {
        die("add: operand lengths differ");
    }
    a = as_i16(&c->arrays[0]);
    b = as_i16(&c->arrays[1]);
    n = c->arrays[0].len;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_add(&p, a, b, y, (uint32_t)c->ranges[i], (uint32_t)c->ranges[i + 1]);
    }
    emit_i16(y, n);
    free(a); free(b); free(y);
}

static void run_mul(const case_t *c)
{
    const int32_t *q = c->params;
    fx_mul_t p;
    int16_t *a, *b, *y;
    int32_t i, n;
    need(c, 5, 2, 2);
    p.shift = (int8_t)q[0];
    p.act = act_from(q + 1);
    if (c->arrays[0].len != c->arrays[1].len) {
        die("mul: operand lengths differ");
    }
    a = as_i16(&c->arrays[0]);
    b = as_i16(&c->arrays[1]);
    n = c->arrays[0].len;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_mul(&p, a, b, y, (uint32_t)c->ranges[i], (uint32_t)c->ranges[i + 1]);
    }
    emit_i16(y, n);
    free(a); free(b); free(y);
}

static void run_act(const case_t *c)
{
    fx_act_t a;
    int16_t *x, *y;
    int32_t i, n;
    need(c, 4, 1, 2);
    a = act_from(c->params);
    x = as_i16(&c->arrays[0]);
    n = c->arrays[0].len;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_act(&a, x, y, (uint32_t)c->ranges[i], (uint32_t)c->ranges[i + 1]);
    }
    emit_i16(y, n);
    free(x); free(y);
}

static void run_requant_copy(const case_t *c)
{
    int16_t *x, *y;
    int32_t i, n;
    need(c, 1, 1, 2);
    x = as_i16(&c->arrays[0]);
    n = c->arrays[0].len;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_requant_copy(x, y, (int8_t)c->params[0], (uint32_t)c->ranges[i],
                        (uint32_t)c->ranges[i + 1]);
    }
    emit_i16(y, n);
    free(x); free(y);
}

static void run_argmax(const case_t *c)
{
    int16_t *x;
    need(c, 0, 1, 0);
    x = as_i16(&c->arrays[0]);
    write_i32(1);
    write_i32((int32_t)fx_argmax(x, (uint16_t)c->arrays[0].len));
    free(x);
}

static void run_requant(const case_t *c)
{
    int32_t i, n;
    need(c, 0, 2, 0);
    n = c->arrays[0].len;
    if (c->arrays[1].len != n) {
        die("requant: acc and shift lengths differ");
    }
    write_i32(n);
    for (i = 0; i < n; ++i) {
        write_i32(fx_requant(c->arrays[0].v[i], (int8_t)c->arrays[1].v[i]));
    }
}

static void run_apply_act(const case_t *c)
{
    fx_act_t a;
    int32_t i, n;
    need(c, 4, 1, 0);
    a = act_from(c->params);
    n = c->arrays[0].len;
    write_i32(n);
    for (i = 0; i < n; ++i) {
        write_i32(fx_apply_act(&a, (int16_t)c->arrays[0].v[i]));
    }
}

static void run_lut(const case_t *c)
{
    const int32_t *q = c->params;
    fx_lut_t p;
    int16_t *x, *t, *y;
    int32_t i, n;
    need(c, 6, 2, 2);
    t = as_i16(&c->arrays[1]);
    p.table = t;
    p.n = (uint16_t)(c->arrays[1].len - 1);
    p.step = (uint8_t)q[0];
    p.base = (int16_t)q[1];
    p.mirror = (uint8_t)q[2];
    p.center = q[3];
    p.gate = (uint8_t)q[4];
    p.shift = (int8_t)q[5];
    x = as_i16(&c->arrays[0]);
    n = c->arrays[0].len;
    y = new_output(n);
    for (i = 0; i < c->nranges; i += 2) {
        fx_lut(&p, x, y, (uint32_t)c->ranges[i], (uint32_t)c->ranges[i + 1]);
    }
    emit_i16(y, n);
    free(x); free(t); free(y);
}

static void run_op(int32_t op, const case_t *c)
{
    switch (op) {
    case 1: run_conv(c); break;
    case 2: run_fc(c); break;
    case 3: run_pool(c, 0); break;
    case 4: run_pool(c, 1); break;
    case 5: run_add(c); break;
    case 6: run_act(c); break;
    case 7: run_requant_copy(c); break;
    case 8: run_argmax(c); break;
    case 9: run_requant(c); break;
    case 10: run_apply_act(c); break;
    case 11: run_lut(c); break;
    case 12: run_mul(c); break;
    default: die("unknown op");
    }
}

int main(void)
{
    return harness_main(run_op);
}

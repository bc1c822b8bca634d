/* recover_harness.c - tests/gnet/test_gnet_c.py: a power failure before every FRAM store of one
 * inference of a gNet package (the straight run loop, built with -DFX_HOST_POWER_FAIL), then the
 * reboot's fx_<m>_recover.
 *
 *   recover_harness IN.raw OUT.raw      IN: one sample (M_IN_SIZE int16)
 *
 * The model's names come from -D: FX_MODEL_HEADER, M_RUN, M_WIPE_SRAM, M_RECOVER, M_EXIT, M_IN_SIZE,
 * M_OUT_SIZE, M_CLASSES. It first runs the inference without a failure to count its stores S; then
 * for n = 0 .. S-1 it runs it again with a failure before store n (SRAM wiped), calls M_RECOVER
 * and records: the exit it answered from (k), M_RECOVER again (0: it tries once), the head's class
 * and scores on the features it left (M_EXIT), and the outputs it wrote. OUT: S records of
 * 3 + M_CLASSES + M_OUT_SIZE int16. Exit status 0, 1 on an I/O error, 3 if an inference finished
 * despite the failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include FX_MODEL_HEADER
#include "fx_host_io.h"
#include "fx_power_host.h"

#define REC (3u + (M_CLASSES) + (M_OUT_SIZE))

int main(int argc, char **argv)
{
    static int16_t out[M_OUT_SIZE];
    fx_fail_schedule_t none = {FX_FAIL_NONE, 0u, 0u, 0u, 0u}, after = {FX_FAIL_AFTER, 0u, 0u, 0u, 0u};
    fx_power_stats_t stats;
    int16_t *in, *res;
    size_t len = 0u;
    uint32_t n, stores, i;
    int rc = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.raw OUT.raw\n", argv[0]);
        return 1;
    }
    in = fx_host_read_int16(argv[1], &len);
    if (in == NULL || len != 2u * (M_IN_SIZE)) {
        free(in);
        fprintf(stderr, "recover_harness: %s: expected one sample\n", argv[1]);
        return 1;
    }
    (void)fx_run_intermittent(M_RUN, M_WIPE_SRAM, in, out, &none, 1u, &stats);
    stores = (uint32_t)stats.stores;
    res = (int16_t *)calloc((size_t)stores * REC, sizeof(int16_t));
    if (res == NULL) {
        free(in);
        return 1;
    }
    for (n = 0u; n < stores && rc == 0; ++n) {
        int16_t *r = res + (size_t)n * REC;
        uint16_t cls = 0u;
        after.n = n;
        if (fx_run_intermittent(M_RUN, M_WIPE_SRAM, in, out, &after, 1u, &stats) == 0) {
            rc = 3;
            break;
        }
        for (i = 0u; i < (M_OUT_SIZE); ++i) {
            out[i] = (int16_t)0x5A5A;
        }
        r[0] = (int16_t)M_RECOVER(out);
        r[1] = (int16_t)M_RECOVER(out);
        (void)M_EXIT(r + 3, &cls);
        r[2] = (int16_t)cls;
        for (i = 0u; i < (M_OUT_SIZE); ++i) {
            r[3u + (M_CLASSES) + i] = out[i];
        }
    }
    if (rc == 0 && fx_host_write_int16(argv[2], res, (size_t)stores * REC) != 0) {
        rc = 1;
    }
    free(in);
    free(res);
    return rc;
}

/* fx_host_io.c - see fx_host_io.h. Hosted C99. */
#include "fx_host_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The whole file as bytes (a new buffer, at least one byte long); NULL on a read or memory error. */
static unsigned char *fx_read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0u, n = 0u;
    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            unsigned char *bigger;
            cap = cap ? 2u * cap : 65536u;
            bigger = (unsigned char *)realloc(buf, cap);
            if (bigger == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        got = fread(buf + n, 1u, cap - n, f);
        n += got;
        if (got == 0u) {
            break;
        }
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int16_t *fx_host_read_int16(const char *path, size_t *bytes)
{
    size_t len = 0u, k;
    unsigned char *raw = fx_read_bytes(path, &len);
    int16_t *v;
    if (raw == NULL) {
        return NULL;
    }
    v = (int16_t *)malloc((len / 2u + 1u) * sizeof(int16_t));
    if (v == NULL) {
        free(raw);
        return NULL;
    }
    for (k = 0u; k < len / 2u; ++k) {
        long u = (long)raw[2u * k] | ((long)raw[2u * k + 1u] << 8);
        v[k] = (int16_t)(u >= 32768L ? u - 65536L : u);
    }
    free(raw);
    *bytes = len;
    return v;
}

int fx_host_write_int16(const char *path, const int16_t *v, size_t n)
{
    unsigned char chunk[4096];
    FILE *f = fopen(path, "wb");
    size_t k = 0u;
    int ok = f != NULL;
    while (ok && k < n) {
        size_t m = 0u;
        for (; k < n && m < sizeof chunk; ++k) {
            uint16_t u = (uint16_t)v[k];
            chunk[m++] = (unsigned char)(u & 0xFFu);
            chunk[m++] = (unsigned char)(u >> 8);
        }
        ok = fwrite(chunk, 1u, m, f) == m;
    }
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

int fx_host_parse_count(const char *text, unsigned long *v)
{
    char *end = NULL;
    unsigned long r;
    if (text == NULL || *text < '0' || *text > '9') {
        return -1;
    }
    errno = 0;
    r = strtoul(text, &end, 10);
    if (errno == ERANGE || *end != '\0' || r == 0ul) {
        return -1;
    }
    *v = r;
    return 0;
}

int fx_host_fail(const char *prog, const char *path, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, path, what);
    return 1;
}

"""The intermittent run loop, the host power-failure driver and their build rules (emit-c).

A program that carries an :class:`~transpiler.intermittent.IntermittentPlan` (the `tile` pass with a
budget) gets this ``fx_<m>_run`` instead of the straight loop (backends/c/writer.py)::

    load progress (s, u)                       newest valid record of fx_<m>_progress (FRAM)
    s == 0:     copy input chunks [u, ..)      INPUT_CHUNK elements a chunk, input_per_commit chunks
                                               a group, commit (0, next chunk) after each group and
                                               (1, 0) after the last one
    s = 1..N:   step s-1 from unit u           groups of tile_units * per_commit units, each run as
                                               tiles of tile_units; commit (s, next unit) after a
                                               group, (s+1, 0) after the step's last group
    s == N+1:   copy the outputs out           after the last commit; a failure here copies again
    return 0

Every piece between two commits is idempotent: the input copy reads the caller's input, which does
not change while the inference runs; a step reads buffers no step after it overwrites before it
completes (plan-memory keeps the inputs and outputs of a step apart; the verifier checks it) and
writes complete output elements; so re-running a piece after a power failure rewrites the same
bytes. All activations must be in FRAM (plan-memory{persistent=true}): SRAM is lost at a failure.
``fx_<m>_reset()`` forgets the progress so that the next call starts a new inference; a call after
a finished inference only copies the outputs again.

Continuous power (no plan) keeps the straight loop with no progress record and no commit; there
``fx_<m>_reset()`` does nothing (the API is the same in both builds).

The host driver ``main_intermittent.c`` (``make host-intermittent`` -> ``<m>_host_pf``) builds the
model with ``-DFX_HOST_POWER_FAIL``: FX_STORE then counts every FRAM store and fails before one by
schedule (runtime_c/platform/host/fx_power_host.c); a failure is a longjmp back into the driver,
which wipes SRAM and calls ``fx_<m>_run`` again. Failure schedules are counted in FRAM stores, not
cycles (the MSP430 simulator counts cycles).
"""

from __future__ import annotations

from typing import Any, Callable

from backends.c.cnames import c_comment_text
from transpiler.errors import Location, PassError
from transpiler.intermittent import INPUT_CHUNK, IntermittentPlan, input_chunks
from transpiler.lir.ir import Program

HOST_PF_SOURCES = ("runtime/platform/host/fx_power_host.c",)
HOST_PF_HEADERS = ("runtime/platform/host/fx_power_host.h",)
#: runtime_c files (relative) an intermittent package copies besides the portable runtime.
HOST_PF_RUNTIME = ("platform/host/fx_power_host.c", "platform/host/fx_power_host.h")
DEFAULT_MAX_BOOTS = 100000


def check_persistent(program: Program) -> None:
    """Refuse an intermittent program with SRAM activations (they would not survive a failure).

    Raises:
        PassError: naming the SRAM-resident buffers.
    """
    sram = sorted(b.name for b in program.buffers.values()
                  if b.alias is None and not b.is_const and b.space == "sram")
    if sram:
        raise PassError(f"intermittent execution needs every activation in FRAM, but "
                        f"{len(sram)} are in SRAM: " + ", ".join(f"%{n}" for n in sram[:6])
                        + (" ..." if len(sram) > 6 else ""),
                        location=Location(pass_name="emit-c", node=sram[0]),
                        hint="run plan-memory{persistent=true} before tile{budget=...} "
                             "(the CLI does this for --power / --cycles-per-power-cycle)")


def header_lines(m: str, M: str, plan: IntermittentPlan | None, n_steps: int, in_chunks: int) -> list[str]:
    """Declarations for ``<m>.h``: reset, FRAM wipe, and the intermittent constants."""
    lines = [
        "/* Start a new inference at the next fx_{m}_run call (intermittent builds: forget the",
        " * progress record; continuous builds: nothing to do). */",
        f"void fx_{m}_reset(void);",
        "/* Fill the FRAM activations with a pattern derived from `seed` (tests: no stale result of an",
        " * earlier inference can hide a skipped piece of work). */",
        f"void fx_{m}_wipe_fram(uint16_t seed);",
        "",
    ]
    if plan is None:
        lines += [f"#define FX_{M}_INTERMITTENT 0", ""]
        return lines
    lines += [
        "/* Intermittent execution (tile pass): progress step 0 copies the input in chunks, steps",
        f" * 1..N run the LIR steps, N+1 = done; see {m}.c. */",
        f"#define FX_{M}_INTERMITTENT 1",
        f"#define FX_{M}_BUDGET_CYCLES {plan.budget}ul",
        f"#define FX_{M}_IN_CHUNK {INPUT_CHUNK}u",
        f"#define FX_{M}_IN_CHUNKS {in_chunks}u",
        f"#define FX_{M}_IN_PER_COMMIT {plan.input_per_commit}u",
        f"#define FX_{M}_PROGRESS_DONE {n_steps + 1}u",
        "/* The progress record (step, unit) of the current inference: 0 <= step <= PROGRESS_DONE. */",
        f"void fx_{m}_progress(uint16_t *step, uint16_t *unit);",
        "",
    ]
    return lines


def wipe_fram_lines(prefix: str, arenas: dict[str, int]) -> list[str]:
    """``fx_<m>_wipe_fram(seed)``: a test helper, plain stores (not part of an inference) into the
    non-volatile activation arenas ``fx_<m>_<space>[]`` (``arenas``: space -> int16 elements, 0
    for an arena the package does not have)."""
    out = [f"void {prefix}wipe_fram(uint16_t seed)", "{"]
    present = {space: n for space, n in arenas.items() if n}
    for space, n in present.items():
        t = "uint16_t" if n <= 0xFFFF else "uint32_t"
        out += ["    {",
                f"        {t} i;",
                f"        for (i = 0u; i < {n}u; ++i) {{",
                f"            {prefix}{space}[i] = (int16_t)(uint16_t)(seed ^ (uint16_t)(0x6B3Du + (uint16_t)i * 0x9E37u));",
                "        }",
                "    }"]
    if not present:
        out.append("    (void)seed;")
    out += ["}", ""]
    return out


def run_lines(p: Program, m: str, M: str, plan: IntermittentPlan | None, ptr: Callable[[str], str],
              in_ports: list[Any], in_offsets: list[int], out_ports: list[Any],
              out_offsets: list[int], gnet: Any = None) -> list[str]:
    """``fx_<m>_reset`` and, for an intermittent plan, the input/output copies and ``fx_<m>_run``.

    ``gnet`` (backends/c/printers_gnet.GnetC): a new inference zeroes the gNet features (with the
    first input chunk), before each step the exit policy may answer early (after zeroing the later
    exits' features: the loop may have resumed after a failure inside the next exit's feature step),
    and the inference is marked answered when the outputs are out (``fx_<m>_recover``).

    Returns the reset function only (the writer prints its straight loop) when `plan` is None.
    """
    prefix = f"fx_{m}_"
    if plan is None:
        return [f"void {prefix}reset(void)", "{", "}", ""]
    n = len(p.steps)
    in_size = sum(b.size for _, b in in_ports)
    # 16-bit indices when every chunk bound fits them (the MSP430's native width: 3x faster copies)
    it = "uint16_t" if input_chunks(p) * INPUT_CHUNK <= 0xFFFF else "uint32_t"
    out: list[str] = [
        "/* --- intermittent execution (DESIGN.md section 8) ----------------------------------------",
        f" * Sized for {plan.budget} cycles per power cycle ({plan.margin:.0%} margin). Progress (s, u) in",
        " * FRAM: s = 0 copies input chunk u on, s = 1..N runs step s-1 from unit u, s = N+1: done.",
        " * Commits: after each group of tiles (step, next unit) and at each step end (step+1, 0). */",
        f"static fx_progress_t {prefix}progress_rec FX_PERSISTENT = "
        "{ { { 0u, 0u, 0u, 0u }, { 0u, 0u, 0u, 0u } } };",
        "",
        f"void {prefix}reset(void)",
        "{",
        f"    fx_progress_reset(&{prefix}progress_rec);",
        "}",
        "",
        f"void {prefix}progress(uint16_t *step, uint16_t *unit)",
        "{",
        f"    (void)fx_progress_load(&{prefix}progress_rec, step, unit);",
        "}",
        "",
        f"/* Input chunks [c0, c1): elements [c0 * {INPUT_CHUNK}, min(c1 * {INPUT_CHUNK}, {in_size})) of `in`. */",
        f"static void {prefix}copy_input_chunks(const int16_t *in, uint16_t c0, uint16_t c1)",
        "{",
        f"    {it} i0 = ({it})(({it})c0 * {INPUT_CHUNK}u), i1 = ({it})(({it})c1 * {INPUT_CHUNK}u);",
        f"    if (i1 > {in_size}u) {{",
        f"        i1 = {in_size}u;",
        "    }",
    ]
    for i, ((port, b), o) in enumerate(zip(in_ports, in_offsets)):
        lo = f"(i0 > {o}u ? i0 : {o}u)" if o else "i0"
        hi = f"(i1 < {o + b.size}u ? i1 : {o + b.size}u)"
        out += [f"    {{   /* input {i} '{c_comment_text(port.onnx_name)}' -> %{c_comment_text(b.name)}: "
                f"in[{o}, {o + b.size}) */",
                f"        int16_t *dst = {ptr(b.name)};",
                f"        {it} i, hi = {hi};",
                f"        for (i = {lo}; i < hi; ++i) {{",
                f"            FX_STORE(dst[i - {o}u], in[i]);" if o else "            FX_STORE(dst[i], in[i]);",
                "        }",
                "    }"]
    out += ["}", "",
            "/* The outputs, through FX_STORE: `out` is FRAM on the device, and a failure during the copy",
            " * only repeats it. */",
            f"static void {prefix}copy_outputs(int16_t *out)", "{"]
    if not out_ports:
        out.append("    (void)out;")
    for i, ((port, b), o) in enumerate(zip(out_ports, out_offsets)):
        t = "uint16_t" if b.size <= 0xFFFF else "uint32_t"
        from backends.c.cnames import C_TYPES

        out += [f"    {{   /* output {i} '{c_comment_text(port.onnx_name)}' <- %{c_comment_text(b.name)} */",
                f"        const {C_TYPES[b.dtype]} *src = {ptr(b.name)};",
                f"        {t} i;",
                f"        for (i = 0u; i < {b.size}u; ++i) {{",
                f"            FX_STORE(out[{o}u + i], (int16_t)src[i]);",
                "        }",
                "    }"]
    out += ["}", "",
            f"int {prefix}run(const int16_t *in, int16_t *out)", "{",
            "    uint16_t s, u;",
            f"    (void)fx_progress_load(&{prefix}progress_rec, &s, &u);",
            f"    if (s > FX_{M}_PROGRESS_DONE) {{   /* not a record of this program: start over */",
            "        s = 0u;",
            "        u = 0u;",
            "    }",
            "    if (s == 0u) {",
            *([f"        if (u == 0u) {{", *gnet.begin_lines(prefix, "            "), "        }"]
              if gnet is not None else []),
            f"        while (u < FX_{M}_IN_CHUNKS) {{",
            f"            uint16_t end = (uint16_t)(FX_{M}_IN_CHUNKS - u > FX_{M}_IN_PER_COMMIT"
            f" ? u + FX_{M}_IN_PER_COMMIT : FX_{M}_IN_CHUNKS);",
            f"            {prefix}copy_input_chunks(in, u, end);",
            "            u = end;",
            f"            if (u < FX_{M}_IN_CHUNKS) {{",
            f"                fx_progress_commit(&{prefix}progress_rec, 0u, u);",
            "            }",
            "        }",
            f"        fx_progress_commit(&{prefix}progress_rec, 1u, 0u);",
            "        s = 1u;",
            "        u = 0u;",
            "    }"]
    if n:
        out += [f"    for (; s <= FX_{M}_N_STEPS; ++s, u = 0u) {{",
                f"        const fx_{m}_step_t *st = &{prefix}steps[s - 1u];",
                "        const uint32_t group = (uint32_t)st->tile_units * st->per_commit;",
                *(gnet.stop_lines(prefix, "(uint16_t)(s - 1u)", resumed=True) if gnet is not None else []),
                "        FX_STEP_BEGIN(s - 1u);",
                "        while (u < st->units) {",
                "            const uint16_t gend = (uint16_t)((uint32_t)(st->units - u) > group"
                " ? (uint32_t)u + group : st->units);",
                "            while (u < gend) {",
                "                const uint16_t end = (uint16_t)(gend - u > st->tile_units"
                " ? u + st->tile_units : gend);",
                "                st->fn(u, end);",
                "                u = end;",
                "            }",
                "            if (u < st->units) {",
                f"                fx_progress_commit(&{prefix}progress_rec, s, u);",
                "            } else {",
                f"                fx_progress_commit(&{prefix}progress_rec, (uint16_t)(s + 1u), 0u);",
                "            }",
                "        }",
                "        FX_STEP_END(s - 1u);",
                "    }"]
    out += [f"    {prefix}copy_outputs(out);",
            *(gnet.end_lines(prefix) if gnet is not None else []),
            "    return 0;",
            "}", ""]
    return out


def main_intermittent_c(header: str, m: str, M: str) -> str:
    """The host power-failure driver (compiled with -DFX_HOST_POWER_FAIL by ``make host-intermittent``)."""
    return header + f"""\
/* Host power-failure driver: {m}_host_pf [OPTIONS] INPUT OUTPUT [COUNT]
 *   INPUT, OUTPUT, COUNT  as for {m}_host (raw little-endian int16, COUNT x FX_{M}_IN_SIZE values)
 *   --schedule SPEC   failures by FRAM store count: none, after:N (one failure before the N-th store,
 *                     0-based), every:N (N stores after each boot), random:seed=S,min=A,max=B
 *                     (default none)
 *   --repeat N        with a random schedule: N schedules per sample, seeds S, S+1, ..., S+N-1
 *   --exhaustive      per sample, one run with a failure before each FRAM store of the
 *                     uninterrupted inference (after:0, after:1, ...)
 *   --max-boots K     give up ("cannot make progress") after K boots of one run (default {DEFAULT_MAX_BOOTS})
 * Every sample first runs without failures (the reference); every run under failures starts from
 * a new inference on garbage FRAM and must give the reference's output bit for bit. OUTPUT gets
 * the outputs of the (last) run under failures for --schedule, the reference for --repeat and
 * --exhaustive. stdout: one JSON object per sample and one for the total:
 *   {{"sample": k, "runs": r, "failures": f, "boots": b, "stores": s, "reexecuted_stores": x,
 *    "baseline_stores": s0, "mismatches": m, "stuck": c}}
 * Exit status: 0 all runs finished with the reference output, 1 I/O error, 2 usage error,
 * 3 a run could not make progress (max boots), 4 a run's output differed from the reference.
 * File I/O: runtime/platform/host/fx_host_io.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "{m}.h"
#include "fx_host_io.h"
#include "fx_power_host.h"

#define PF_USAGE "usage: %s [--schedule SPEC] [--repeat N] [--exhaustive] [--max-boots K] INPUT OUTPUT [COUNT]\\n"

typedef struct {{
    unsigned long runs, failures, boots, mismatches, stuck;
    unsigned long long stores, reexecuted, baseline;
}} pf_totals_t;

/* One run from a new inference on garbage FRAM and a garbage output. */
static int one_run(const int16_t *x, int16_t *y, const fx_fail_schedule_t *s, uint32_t max_boots,
                   uint32_t salt, fx_power_stats_t *st)
{{
    size_t k;
    fx_{m}_wipe_fram((uint16_t)(0xC3A5u ^ (uint16_t)(salt * 0x2F1Bu)));
    fx_{m}_wipe_sram();
    fx_{m}_reset();
    for (k = 0; k < (size_t)FX_{M}_OUT_SIZE; ++k) {{
        y[k] = (int16_t)(uint16_t)(0x5AA5u + (uint16_t)(k * 0x3B1u) + (uint16_t)salt);
    }}
    return fx_run_intermittent(fx_{m}_run, fx_{m}_wipe_sram, x, y, s, max_boots, st);
}}

static void describe(const fx_fail_schedule_t *s, char *buf, size_t n)
{{
    switch (s->kind) {{
    case FX_FAIL_AFTER:
        snprintf(buf, n, "after:%lu", (unsigned long)s->n);
        break;
    case FX_FAIL_EVERY:
        snprintf(buf, n, "every:%lu", (unsigned long)s->n);
        break;
    case FX_FAIL_RANDOM:
        snprintf(buf, n, "random:seed=%lu,min=%lu,max=%lu", (unsigned long)s->seed,
                 (unsigned long)s->min, (unsigned long)s->max);
        break;
    default:
        snprintf(buf, n, "none");
        break;
    }}
}}

/* Run x under s, compare with ref; returns 0 ok, 3 stuck, 4 mismatch. */
static int checked_run(size_t sample, const int16_t *x, const int16_t *ref, int16_t *y,
                       const fx_fail_schedule_t *s, uint32_t max_boots, uint32_t salt, pf_totals_t *t)
{{
    fx_power_stats_t st;
    char what[96];
    size_t k;
    int rc = one_run(x, y, s, max_boots, salt, &st);
    t->runs++;
    t->failures += st.failures;
    t->boots += st.boots;
    t->stores += st.stores;
    t->reexecuted += st.reexecuted_stores;
    if (rc != 0) {{
        describe(s, what, sizeof what);
        t->stuck++;
        fprintf(stderr, "{m}_host_pf: cannot make progress: sample %lu under %s: no progress commit "
                "within one power cycle after %lu boots (the failures come faster than one commit group)\\n",
                (unsigned long)sample, what, (unsigned long)st.boots);
        return 3;
    }}
    for (k = 0; k < (size_t)FX_{M}_OUT_SIZE; ++k) {{
        if (y[k] != ref[k]) {{
            describe(s, what, sizeof what);
            t->mismatches++;
            fprintf(stderr, "{m}_host_pf: mismatch: sample %lu under %s (%lu failures): output[%lu] = %d, "
                    "uninterrupted %d\\n", (unsigned long)sample, what, (unsigned long)st.failures,
                    (unsigned long)k, (int)y[k], (int)ref[k]);
            return 4;
        }}
    }}
    return 0;
}}

static void print_totals(const char *key, unsigned long index, const pf_totals_t *t)
{{
    printf("{{\\"%s\\": %lu, \\"runs\\": %lu, \\"failures\\": %lu, \\"boots\\": %lu, \\"stores\\": %llu, "
           "\\"reexecuted_stores\\": %llu, \\"baseline_stores\\": %llu, \\"mismatches\\": %lu, \\"stuck\\": %lu}}\\n",
           key, index, t->runs, t->failures, t->boots, t->stores, t->reexecuted, t->baseline, t->mismatches,
           t->stuck);
}}

int main(int argc, char **argv)
{{
    const size_t in_bytes = 2u * (size_t)FX_{M}_IN_SIZE;
    const char *paths[3] = {{ NULL, NULL, NULL }};
    fx_fail_schedule_t sched, none;
    unsigned long repeat = 0ul, max_boots = {DEFAULT_MAX_BOOTS}ul, count_arg = 0ul;
    int exhaustive = 0, npaths = 0, status = 0, a;
    int16_t *in, *out, *ref;
    size_t len = 0, count, k;
    pf_totals_t total;

    memset(&sched, 0, sizeof sched);
    memset(&none, 0, sizeof none);
    memset(&total, 0, sizeof total);
    for (a = 1; a < argc; ++a) {{
        if (strcmp(argv[a], "--schedule") == 0 && a + 1 < argc) {{
            if (fx_parse_schedule(argv[++a], &sched) != 0) {{
                fprintf(stderr, "{m}_host_pf: bad schedule '%s' (none, after:N, every:N, "
                        "random:seed=S,min=A,max=B)\\n", argv[a]);
                return 2;
            }}
        }} else if (strcmp(argv[a], "--repeat") == 0 && a + 1 < argc) {{
            if (fx_host_parse_count(argv[++a], &repeat) != 0) {{
                fprintf(stderr, "{m}_host_pf: --repeat needs a positive integer, got '%s'\\n", argv[a]);
                return 2;
            }}
        }} else if (strcmp(argv[a], "--max-boots") == 0 && a + 1 < argc) {{
            if (fx_host_parse_count(argv[++a], &max_boots) != 0 || max_boots > 0xFFFFFFFFul) {{
                fprintf(stderr, "{m}_host_pf: --max-boots needs a positive integer, got '%s'\\n", argv[a]);
                return 2;
            }}
        }} else if (strcmp(argv[a], "--exhaustive") == 0) {{
            exhaustive = 1;
        }} else if (argv[a][0] == '-' && argv[a][1] != '\\0') {{
            fprintf(stderr, PF_USAGE, argv[0]);
            return 2;
        }} else if (npaths < 3) {{
            paths[npaths++] = argv[a];
        }} else {{
            fprintf(stderr, PF_USAGE, argv[0]);
            return 2;
        }}
    }}
    if (npaths < 2 || (repeat && sched.kind != FX_FAIL_RANDOM) || (exhaustive && (repeat || sched.kind != FX_FAIL_NONE))) {{
        fprintf(stderr, PF_USAGE, argv[0]);
        fprintf(stderr, "  (--repeat needs a random schedule; --exhaustive takes no schedule)\\n");
        return 2;
    }}
    if (npaths == 3 && fx_host_parse_count(paths[2], &count_arg) != 0) {{
        fprintf(stderr, "{m}_host_pf: COUNT must be a positive integer, got '%s'\\n", paths[2]);
        return 2;
    }}
    in = fx_host_read_int16(paths[0], &len);
    if (in == NULL) {{
        return fx_host_fail("{m}_host_pf", paths[0], "cannot read the input file");
    }}
    count = count_arg ? (size_t)count_arg : (in_bytes ? len / in_bytes : 0u);
    if (count == 0u || len != count * in_bytes) {{
        fprintf(stderr, "{m}_host_pf: %s: %lu bytes is not %s samples of %u int16\\n", paths[0],
                (unsigned long)len, count_arg ? "COUNT" : "a positive number of", (unsigned)FX_{M}_IN_SIZE);
        free(in);
        return 1;
    }}
    out = (int16_t *)malloc(count * 2u * (size_t)FX_{M}_OUT_SIZE);
    ref = (int16_t *)malloc(2u * (size_t)FX_{M}_OUT_SIZE + 2u);
    if (out == NULL || ref == NULL) {{
        free(in);
        free(out);
        free(ref);
        fprintf(stderr, "{m}_host_pf: out of memory\\n");
        return 1;
    }}
    for (k = 0; k < count && status == 0; ++k) {{
        const int16_t *x = in + k * (size_t)FX_{M}_IN_SIZE;
        int16_t *y = out + k * (size_t)FX_{M}_OUT_SIZE;
        pf_totals_t t;
        fx_power_stats_t st;
        memset(&t, 0, sizeof t);
        if (one_run(x, ref, &none, 1u, 0u, &st) != 0) {{
            fprintf(stderr, "{m}_host_pf: the uninterrupted run of sample %lu did not finish\\n", (unsigned long)k);
            status = 3;
            break;
        }}
        t.baseline = st.stores;
        if (exhaustive) {{
            unsigned long long pos;
            for (pos = 0u; pos < st.stores && status == 0; ++pos) {{
                fx_fail_schedule_t s1;
                memset(&s1, 0, sizeof s1);
                s1.kind = FX_FAIL_AFTER;
                s1.n = (uint32_t)pos;
                status = checked_run(k, x, ref, y, &s1, (uint32_t)max_boots, (uint32_t)pos + 1u, &t);
            }}
            memcpy(y, ref, 2u * (size_t)FX_{M}_OUT_SIZE);
        }} else if (repeat) {{
            unsigned long r;
            for (r = 0ul; r < repeat && status == 0; ++r) {{
                fx_fail_schedule_t s1 = sched;
                s1.seed = sched.seed + (uint32_t)r;
                status = checked_run(k, x, ref, y, &s1, (uint32_t)max_boots, (uint32_t)r + 1u, &t);
            }}
            memcpy(y, ref, 2u * (size_t)FX_{M}_OUT_SIZE);
        }} else {{
            status = checked_run(k, x, ref, y, &sched, (uint32_t)max_boots, 1u, &t);
        }}
        print_totals("sample", (unsigned long)k, &t);
        total.runs += t.runs;
        total.failures += t.failures;
        total.boots += t.boots;
        total.stores += t.stores;
        total.reexecuted += t.reexecuted;
        total.baseline += t.baseline;
        total.mismatches += t.mismatches;
        total.stuck += t.stuck;
    }}
    print_totals("total", (unsigned long)count, &total);
    if (status == 0 && fx_host_write_int16(paths[1], out, count * (size_t)FX_{M}_OUT_SIZE) != 0) {{
        status = fx_host_fail("{m}_host_pf", paths[1], "cannot write the output file");
    }}
    free(in);
    free(out);
    free(ref);
    return status;
}}
"""


def makefile_rules(m: str) -> str:
    """Make targets of an intermittent package: ``host-intermittent`` (and its sanitizer build)."""
    hdrs = " ".join(HOST_PF_HEADERS)
    srcs = " ".join(HOST_PF_SOURCES)
    return f"""
# Intermittent execution (tile pass): the host build with power-failure injection.
# make host-intermittent        build {m}_host_pf (main_intermittent.c, -DFX_HOST_POWER_FAIL:
#                               FX_STORE counts FRAM stores, failures by schedule, counted in stores)
# make host-intermittent-asan   the same with AddressSanitizer + UndefinedBehaviorSanitizer
PF_BIN ?= $(MODEL)_host_pf
PF_ASAN_BIN ?= $(MODEL)_host_pf_asan
PF_SRCS := main_intermittent.c {srcs} $(HOST_IO_SRCS)
PF_HDRS := {hdrs} $(HOST_IO_HDRS)

host-intermittent: $(PF_BIN)

$(PF_BIN): $(FX_SRCS) $(PF_SRCS) $(FX_HDRS) $(PF_HDRS)
\t$(CC) $(CFLAGS) -DFX_HOST_POWER_FAIL $(HOST_INCLUDES) -o $@ $(FX_SRCS) $(PF_SRCS) $(LDFLAGS)

host-intermittent-asan: $(PF_ASAN_BIN)

$(PF_ASAN_BIN): $(FX_SRCS) $(PF_SRCS) $(FX_HDRS) $(PF_HDRS)
\t$(CC) $(ASAN_CFLAGS) -DFX_HOST_POWER_FAIL $(HOST_INCLUDES) -o $@ $(FX_SRCS) $(PF_SRCS) $(LDFLAGS)

clean-intermittent:
\trm -f $(PF_BIN) $(PF_ASAN_BIN)

.PHONY: host-intermittent host-intermittent-asan clean-intermittent
"""


def store_counts(p: Program, plan: IntermittentPlan) -> dict[str, Any]:
    """FRAM stores of one uninterrupted inference and of its largest piece between two commits
    (upper bounds from the cost model's stores per unit: a host schedule whose gaps are below
    ``max_piece_stores`` may never make progress), and the predicted cycles: per step its largest
    commit group, the run under a failure every ``budget`` cycles and without failures."""
    from transpiler.intermittent import commit_pieces

    from transpiler.intermittent import simulate_power_cycles
    from transpiler.lir.cost import BOOT_CYCLES

    pieces = commit_pieces(p, plan)
    run = simulate_power_cycles(pieces, plan.budget, BOOT_CYCLES)
    cont = simulate_power_cycles(pieces, 0, BOOT_CYCLES)
    group_cycles = [round(max((pc.cycles for pc in pieces if pc.step == i + 1), default=0.0))
                    for i in range(len(p.steps))]
    return {"max_piece_stores": max(pc.stores for pc in pieces),
            "stores_per_inference": sum(pc.stores for pc in pieces),
            "commits_per_inference": sum(1 for pc in pieces if pc.step <= len(p.steps)),
            # the cost model's prediction (transpiler.intermittent): a failure every `budget` cycles
            "group_cycles": group_cycles, "max_group_cycles": round(max(pc.cycles for pc in pieces)),
            "predicted_cycles": round(run.total_cycles), "predicted_power_failures": run.power_failures,
            "predicted_lost_cycles": round(run.lost_cycles),
            "predicted_continuous_cycles": round(cont.total_cycles)}


def report_lines(plan: IntermittentPlan, steps: list[dict[str, Any]], in_chunks: int,
                 figures: dict[str, Any] | None = None) -> list[str]:
    """The report's intermittent section: per step units, tile, tiles per commit, commits and
    predicted cycles per group; the predicted run (`figures`: the manifest's intermittent section)."""
    figures = figures or {}
    group_cycles = list(figures.get("group_cycles") or [])
    lines = ["intermittent execution",
             f"  budget {plan.budget} cycles per power cycle, {plan.margin:.0%} margin; progress: two "
             f"records in FRAM (16 B)",
             f"  input copy: {in_chunks} chunk(s) of {INPUT_CHUNK} elements, {plan.input_per_commit} per commit",
             f"  {'#':>3} {'name':24s} {'units':>6} {'tile':>6} {'x/commit':>8} {'commits':>7} {'cycles/group':>12}"]
    for st in steps:
        group = max(1, int(st["tile_units"]) * int(st["per_commit"]))
        commits = -(-int(st["units"]) // group)
        gc = group_cycles[st["index"]] if st["index"] < len(group_cycles) else None
        lines.append(f"  {st['index']:>3} {st['name'][:24]:24s} {st['units']:>6} {st['tile_units']:>6} "
                     f"{st['per_commit']:>8} {commits:>7} {gc if gc is not None else '-':>12}")
    if "predicted_cycles" in figures:
        lines.append(f"  predicted: {figures['predicted_cycles']} cycles with {figures['predicted_power_failures']} "
                     f"power failures (a failure every {plan.budget} cycles; "
                     f"{figures['predicted_continuous_cycles']} without failures); "
                     f"{figures['stores_per_inference']} FRAM stores per inference")
    lines.append("")
    return lines


__all__ = ["IntermittentPlan", "check_persistent", "header_lines", "wipe_fram_lines", "run_lines", "main_intermittent_c",
           "makefile_rules", "report_lines", "store_counts", "HOST_PF_RUNTIME", "DEFAULT_MAX_BOOTS", "input_chunks"]

"""The gNet runtime in the generated C: feature steps, the on-demand head, the exit policy and the
host driver (``main_gnet.c``). docs/lir.md ("gNet") defines the ops; DESIGN.md section 8 the idea.

What a program with a gNet gets, besides the ordinary steps (``<m>`` = the C name, ``<M>`` upper)::

    <m>.h   FX_<M>_GNET_EXITS / _FEATURES / _CLASSES / _SCORES_Q, FX_<M>_GNET_EXIT_CYCLES
            int  fx_<m>_exit(int16_t *scores, uint16_t *cls);  head on the features present;
                                                               returns k = exits present (0..K)
            void fx_<m>_gnet_begin(void);                      zero F and the exit count
            int  fx_<m>_recover(int16_t *out);                 at boot, after a power failure:
                                                               answer from the saved exits (k, or 0)
            int  fx_<m>_policy(uint32_t next_cycles, uint32_t energy);   nonzero: answer now
            uint32_t fx_energy_level(void);                    platform hook (-DFX_ENERGY_LEVEL_HOOK)
            void fx_energy_wait(uint32_t cycles);              platform hook (-DFX_ENERGY_WAIT_HOOK):
                                                               sleep until the energy pays for cycles
            FX_<M>_STEP_CYCLES[s], FX_<M>_GNET_STEP_EXIT[s]    predicted cycles; k after step s (or 0)
    <m>.c   (an inference starts with fx_<m>_gnet_begin() and a wait until exit 1 is affordable)
            gnet_feature steps: fx_requant_copy of the slice into F (FRAM), the count k stored with
            the slice's last chunk (it commits with the step); the head (fc over F) as a function
            outside the step table; fx_<m>_exit, fx_<m>_gnet_begin, the default policy; and in the
            run loop: fx_<m>_gnet_begin() when an inference starts, and before every step s
                if (fx_<m>_gnet_stop(s)) return fx_<m>_gnet_answer(out);
            where gnet_stop asks the policy only once some exit is present, with next_cycles = the
            step's predicted cycles plus the head's (transpiler/lir/cost.py), energy =
            fx_energy_level() (without the hook: 0xFFFFFFFF, so the whole model always runs).
            gnet_answer writes the exit's class into the class output and its scores, requantised
            to the port's Q, into the scores output; fx_<m>_run then returns k (0: the whole model ran).
            A FRAM flag (gnet_running) marks an inference from gnet_begin until it answers;
            fx_<m>_recover clears it (one try), zeroes the slices of the exits after k
            (gnet_forget: a feature step cut short may have written part of its slice) and answers.
    main_gnet.c   host driver (``make gnet`` -> <m>_host_gnet, built with -DFX_STEP_HOOKS
            -DFX_ENERGY_WAIT_HOOK and, unless GNET_LEVEL=, -DFX_ENERGY_LEVEL_HOOK): ``exits`` mode
            records every exit's answer after its feature step (the bit-exact comparison with the
            interpreter's run_exits); ``energy`` mode runs the samples under a harvested-power trace
            and a capacitor (transpiler/gnet_energy.py's integer model, which drives it), with
            fx_<m>_recover after each power failure, and reports which exit answered each one.

Replacing the policy: build with ``-DFX_<M>_POLICY`` and link your own ``fx_<m>_policy``. The
platform provides ``fx_energy_level()`` (energy left, in CPU cycles at the active power) and builds
with ``-DFX_ENERGY_LEVEL_HOOK``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from backends.c.cnames import c_array_init, c_comment_text
from backends.c.printers import HELPERS, PRINTERS, StepCode, StepEnv, _attr_int, _check_io, _eltwise_range, \
    _eltwise_units, _pointer_lines, print_fc
from transpiler.lir import cost
from transpiler.lir.ir import Program, Step
from transpiler.lir.ops import ON_DEMAND_OPS

EXIT_FULL = 0
"""fx_<m>_run's return value when the whole model ran (k >= 1: gNet exit k answered)."""


def print_gnet_feature(env: StepEnv) -> StepCode:
    """gnet_feature -> fx_requant_copy of chunks of the slice into F; the exit count with the last chunk."""
    _check_io(env, 1)
    x, f = env.step.inputs[0], env.step.outputs[0]
    n = env.buf(x).size
    offset, features = _attr_int(env, "offset"), env.buf(f).size
    shift, k = _attr_int(env, "shift"), _attr_int(env, "exit")
    if offset + n > features or not -128 <= shift <= 127:
        raise env.fail(f"slice [{offset},{offset + n}) of {features} features, shift {shift}")
    units = _eltwise_units(env, n)
    body = _pointer_lines(env, [("x", x)], [("f", f)]) + _eltwise_range(n)
    body += [f"fx_requant_copy(x, f + {offset}u, {shift}, i0, i1);",
             f"if (u1 == {units}u) {{   /* the slice is complete: {k} exit(s) present */",
             f"    FX_STORE({env.prefix}gnet_present, (uint16_t){k}u);",
             "}"]
    return StepCode(units, f"chunks of 32 features of exit {k} ({n} -> F[{offset}:{offset + n}])", body, [],
                    {"gnet_state"}, {"fx_requant_copy"})


PRINTERS["gnet_feature"] = print_gnet_feature
PRINTERS["gnet_exit"] = print_fc          # the head is an fc over F (printed outside the step table)
HELPERS["gnet_state"] = """\
/* gNet: the number of exits whose features are in F (FRAM; 0 when an inference starts). */
static uint16_t {p}gnet_present FX_PERSISTENT = 0u;
/* 1 from an inference's start until it answers (FRAM): a power failure in between leaves it set,
 * and {p}recover() answers that inference from the features its exits saved. */
static uint16_t {p}gnet_running FX_PERSISTENT = 0u;
"""


@dataclass
class GnetC:
    """The gNet parts of one generated package (see the module docstring)."""

    full: Program                       # the program with the on-demand head
    seq: Program                        # the same without on-demand steps (the writer's steps)
    head: list[tuple[int, Step]]        # (index in `full`, step) of the on-demand steps
    meta: dict[str, Any]
    exit_steps: list[int]               # in-sequence index of exit k's gnet_feature step, k = 1..K

    @property
    def exits(self) -> int:
        return len(self.exit_steps)

    @property
    def features_buffer(self) -> str:
        return next(s for _, s in self.head if s.op == "gnet_exit").inputs[0]

    @property
    def scores_buffer(self) -> str:
        return self.head[-1][1].outputs[0]

    @property
    def classes(self) -> int:
        return self.full.buffers[self.scores_buffer].size

    def step_cycles(self) -> list[int]:
        """Predicted cycles of every in-sequence step (transpiler/lir/cost.py)."""
        return [int(round(cost.step_cycles(self.seq, s))) for s in self.seq.steps]

    def start_cycles(self) -> int:
        """Predicted cycles from the start to exit 1's answer (what an inference waits for)."""
        return int(sum(self.step_cycles()[:self.exit_steps[0] + 1]) + self.exit_cycles())

    def exit_cycles(self) -> int:
        """Predicted cycles of an early answer: the head, the argmax and the copies."""
        head = sum(cost.step_cycles(self.full, s) for _, s in self.head)
        arg = cost.COSTS["argmax"]
        return int(round(head + arg.base + arg.mac * self.classes + cost.GNET_ANSWER_CYCLES))

    # --- <m>.h --------------------------------------------------------------------------------
    def header_lines(self, m: str, M: str) -> list[str]:
        q = self.full.buffers[self.scores_buffer].q
        return [
            "/* gNet: one shared early exit (docs/lir.md \"gNet\"). Exit k = the head over the features of",
            " * exits 1..k (the rest zero). fx_<m>_run returns the exit that answered: 0 = the whole model,",
            " * k >= 1 = gNet exit k (its class and scores are then in the outputs). */".replace("<m>", m),
            f"#define FX_{M}_GNET_EXITS {self.exits}u",
            f"#define FX_{M}_GNET_FEATURES {self.full.buffers[self.features_buffer].size}u",
            f"#define FX_{M}_GNET_CLASSES {self.classes}u",
            f"#define FX_{M}_GNET_SCORES_Q ({q})",
            f"#define FX_{M}_GNET_EXIT_CYCLES {self.exit_cycles()}ul",
            f"#ifndef FX_{M}_GNET_START_CYCLES   /* what an inference waits to afford (-D to wait for more) */",
            f"#define FX_{M}_GNET_START_CYCLES {self.start_cycles()}ul   /* up to exit 1's answer */",
            "#endif",
            "/* Run the head on the features present: scores[FX_<M>_GNET_CLASSES] (Q FX_<M>_GNET_SCORES_Q),"
            .replace("<M>", M),
            " * *cls = the class (first maximum). Returns k, the exits present (0: none yet). */",
            f"int fx_{m}_exit(int16_t *scores, uint16_t *cls);",
            "/* Zero the feature vector and the exit count (the run function does it when an inference starts). */",
            f"void fx_{m}_gnet_begin(void);",
            "/* After a power failure (at boot): answer the inference that was running from the features its",
            " * exits 1..k saved (committed with their feature steps; the later exits' features are zeroed",
            " * first). Writes the class and scores into out as an early answer does and returns k; returns",
            " * 0 (out untouched) when no inference was interrupted or none had reached exit 1. One try: the",
            " * inference is forgotten first, so a failure during this answer leaves it without one. */",
            f"int fx_{m}_recover(int16_t *out);",
            "/* The exit policy, asked before every step once an exit is present: nonzero = answer now.",
            " * next_cycles: the step's predicted cycles plus the head's; energy: fx_energy_level().",
            f" * Default: energy < next_cycles. Build with -DFX_{M}_POLICY and link your own to replace it. */",
            f"int fx_{m}_policy(uint32_t next_cycles, uint32_t energy);",
            "/* Platform hook (build with -DFX_ENERGY_LEVEL_HOOK and define it): the energy left, in CPU cycles",
            " * at the active power. Without the hook the runtime assumes plenty (the whole model runs). */",
            "uint32_t fx_energy_level(void);",
            "/* Platform hook (build with -DFX_ENERGY_WAIT_HOOK and define it): sleep until fx_energy_level() >= cycles",
            " * (or the capacitor is full). An inference waits so before its first step until it can reach exit 1. */",
            "void fx_energy_wait(uint32_t cycles);",
            f"extern const uint32_t FX_{M}_STEP_CYCLES[FX_{M}_N_STEPS];     /* predicted cycles per step */",
            f"extern const uint8_t FX_{M}_GNET_STEP_EXIT[FX_{M}_N_STEPS];   /* k after exit k's feature step, else 0 */",
            "",
        ]

    # --- <m>.c --------------------------------------------------------------------------------
    def model_c_lines(self, m: str, M: str, ptr: Callable[[str], str], placement: Callable[[str], str],
                      out_ports: list[Any], out_offsets: list[int]) -> list[str]:
        prefix = f"fx_{m}_"
        index, step = next((i, s) for i, s in self.head if s.op == "gnet_exit")
        code = print_fc(StepEnv(self.full, step, index, prefix, ptr, placement))
        nf = self.full.buffers[self.features_buffer].size
        c = self.classes
        exit_of = [0] * len(self.seq.steps)
        for k, s in enumerate(self.exit_steps, 1):
            exit_of[s] = k
        out = ["/* --- gNet (backends/c/printers_gnet.py) ------------------------------------------------- */",
               "#ifdef FX_ENERGY_LEVEL_HOOK",
               f"#define {prefix.upper()}ENERGY() fx_energy_level()",
               "#else",
               f"#define {prefix.upper()}ENERGY() ((uint32_t)0xFFFFFFFFul)   /* unknown: never stop early */",
               "#endif",
               "#ifdef FX_ENERGY_WAIT_HOOK",
               f"#define {prefix.upper()}ENERGY_WAIT(c) fx_energy_wait(c)",
               "#else",
               f"#define {prefix.upper()}ENERGY_WAIT(c) ((void)0)",
               "#endif",
               "",
               f"const uint32_t FX_{M}_STEP_CYCLES[FX_{M}_N_STEPS] = "
               + c_array_init(np.asarray(self.step_cycles(), dtype=np.int64), "i32", per_line=8) + ";",
               f"const uint8_t FX_{M}_GNET_STEP_EXIT[FX_{M}_N_STEPS] = "
               + "{ " + ", ".join(f"{k}u" for k in exit_of) + " };",
               ""]
        for d in code.defs:
            out.append(d.definition)
        out += ["",
                f"/* the head: {c_comment_text(step.name)} from ONNX {c_comment_text(', '.join(step.origin))}; "
                f"work units: {c_comment_text(code.unit_doc)} */",
                f"static void {prefix}gnet_head(uint16_t u0, uint16_t u1)", "{"]
        out += [f"    {line}" for line in code.body]
        out += ["}", "",
                f"void {prefix}gnet_begin(void)", "{",
                f"    int16_t *f = {ptr(self.features_buffer)};",
                "    uint16_t i;",
                f"    FX_STORE({prefix}gnet_present, (uint16_t)0u);   /* first: nothing to recover from */",
                f"    for (i = 0u; i < {nf}u; ++i) {{",
                "        FX_STORE(f[i], 0);",
                "    }",
                f"    FX_STORE({prefix}gnet_running, (uint16_t)1u);",
                "}", "",
                *self._forget_lines(prefix, ptr),
                f"int {prefix}exit(int16_t *scores, uint16_t *cls)", "{",
                f"    const int16_t *y = {ptr(self.scores_buffer)};",
                "    uint16_t i;",
                f"    {prefix}gnet_head(0u, {c}u);",
                f"    for (i = 0u; i < {c}u; ++i) {{",
                "        scores[i] = y[i];",
                "    }",
                f"    *cls = fx_argmax(y, {c}u);",
                f"    return (int){prefix}gnet_present;",
                "}", "",
                f"#ifndef FX_{M}_POLICY",
                f"int {prefix}policy(uint32_t next_cycles, uint32_t energy)", "{",
                "    return energy < next_cycles;",
                "}",
                "#endif", "",
                f"/* Before step s: answer now? Only once an exit is present (else there is nothing to answer). */",
                f"static int {prefix}gnet_stop(uint16_t s)", "{",
                f"    if ({prefix}gnet_present == 0u) {{",
                "        return 0;",
                "    }",
                f"    return {prefix}policy(FX_{M}_STEP_CYCLES[s] + FX_{M}_GNET_EXIT_CYCLES, {prefix.upper()}ENERGY());",
                "}", ""]
        out += self._answer_lines(prefix, out_ports, out_offsets)
        out += [f"int {prefix}recover(int16_t *out)", "{",
                f"    const uint16_t k = {prefix}gnet_present, was = {prefix}gnet_running;",
                f"    FX_STORE({prefix}gnet_running, (uint16_t)0u);   /* one try: no answer if the power fails again */",
                "    if (was == 0u || k == 0u) {   /* nothing interrupted, or before exit 1 */",
                "        return 0;",
                "    }",
                f"    {prefix}gnet_forget(k);",
                f"    return {prefix}gnet_answer(out);",
                "}", ""]
        return out

    def _forget_lines(self, prefix: str, ptr: Callable[[str], str]) -> list[str]:
        """gnet_forget(k): zero the slices of F of the exits after k (see :meth:`slices`)."""
        rows = ", ".join(f"{{ {o}u, {n}u }}" for o, n in self.slices())
        return [f"/* Zero the features of the exits after k: a feature step that a power failure cut short may",
                " * have written part of its slice, but not yet its exit count. Idempotent. */",
                f"static void {prefix}gnet_forget(uint16_t k)", "{",
                f"    static const uint16_t slice[{self.exits}][2] = {{ {rows} }};   /* offset, length */",
                f"    int16_t *f = {ptr(self.features_buffer)};",
                "    uint16_t j, i;",
                f"    for (j = k; j < {self.exits}u; ++j) {{",
                "        for (i = slice[j][0]; i < slice[j][0] + slice[j][1]; ++i) {",
                "            FX_STORE(f[i], 0);",
                "        }",
                "    }",
                "}", ""]

    def slices(self) -> list[tuple[int, int]]:
        """(offset, length) of exit k's slice of F, k = 1..K."""
        out = []
        for s in self.exit_steps:
            step = self.seq.steps[s]
            out.append((int(step.attrs["offset"]), int(self.seq.buffers[step.inputs[0]].size)))
        return out

    def _answer_lines(self, prefix: str, out_ports: list[Any], out_offsets: list[int]) -> list[str]:
        """fx_<m>_gnet_answer(out): the exit's class and scores into the class / scores outputs."""
        c = self.classes
        q_head = self.full.buffers[self.scores_buffer].q
        lines = [f"/* An early answer: run the head, write its class and scores into `out`; returns the exit k. */",
                 f"static int {prefix}gnet_answer(int16_t *out)", "{",
                 f"    int16_t scores[{c}];",
                 "    uint16_t cls;",
                 f"    int k = {prefix}exit(scores, &cls);",
                 "    uint16_t i;"]
        used = False
        for (port, b), off in zip(out_ports, out_offsets):
            if port.onnx_name == self.full.meta.get("class-output"):
                lines.append(f"    FX_STORE(out[{off}u], (int16_t)cls);   /* '{c_comment_text(port.onnx_name)}' */")
            elif port.onnx_name == self.meta.get("scores_port") and b.size == c and isinstance(b.q, int):
                shift = int(q_head) - int(b.q)  # type: ignore[arg-type]
                value = "scores[i]" if shift == 0 else f"fx_requant((int32_t)scores[i], {shift})"
                lines += [f"    for (i = 0u; i < {c}u; ++i) {{   /* '{c_comment_text(port.onnx_name)}' q={b.q} */",
                          f"        FX_STORE(out[{off}u + i], {value});",
                          "    }"]
                used = True
        if not used:
            lines.append("    (void)scores;")
        lines += ["    (void)i;", f"    FX_STORE({prefix}gnet_running, (uint16_t)0u);   /* answered */", "    return k;",
                  "}", ""]
        return lines

    # --- the run loop hooks ---------------------------------------------------------------------
    @staticmethod
    def begin_lines(prefix: str, indent: str = "    ") -> list[str]:
        """A new inference: zero the features, then (platform hook) wait until exit 1 is affordable."""
        return [f"{indent}{prefix}gnet_begin();",
                f"{indent}{prefix.upper()}ENERGY_WAIT(FX_{prefix[3:-1].upper()}_GNET_START_CYCLES);"]

    @staticmethod
    def stop_lines(prefix: str, step: str, indent: str = "        ", resumed: bool = False) -> list[str]:
        """Before step ``step``: answer now if the policy says so. ``resumed``: the intermittent loop,
        which may resume after a failure inside the next exit's feature step, so the answer first
        zeroes the later exits' features (gnet_forget)."""
        return [f"{indent}if ({prefix}gnet_stop({step})) {{",
                *([f"{indent}    {prefix}gnet_forget({prefix}gnet_present);"] if resumed else []),
                f"{indent}    return {prefix}gnet_answer(out);",
                f"{indent}}}"]

    @staticmethod
    def end_lines(prefix: str, indent: str = "    ") -> list[str]:
        """The whole model ran: the inference has answered."""
        return [f"{indent}FX_STORE({prefix}gnet_running, (uint16_t)0u);"]

    # --- build files, manifest, report ------------------------------------------------------------
    @staticmethod
    def makefile_rules(m: str) -> str:
        return f"""
# gNet host driver (main_gnet.c): every exit's answer, or runs under an energy trace
GNET_BIN ?= $(MODEL)_host_gnet
GNET_ASAN_BIN ?= $(MODEL)_host_gnet_asan
# GNET_LEVEL= builds it for a device that cannot read its energy level (no early answer)
GNET_LEVEL ?= -DFX_ENERGY_LEVEL_HOOK
GNET_FLAGS := -DFX_STEP_HOOKS $(GNET_LEVEL) -DFX_ENERGY_WAIT_HOOK
GNET_DEFS ?=

gnet: $(GNET_BIN)

$(GNET_BIN): $(FX_SRCS) main_gnet.c $(HOST_IO_SRCS) $(FX_HDRS) $(HOST_IO_HDRS)
\t$(CC) $(CFLAGS) $(GNET_FLAGS) $(GNET_DEFS) $(HOST_INCLUDES) -o $@ $(FX_SRCS) main_gnet.c $(HOST_IO_SRCS) $(LDFLAGS)

gnet-asan: $(GNET_ASAN_BIN)

$(GNET_ASAN_BIN): $(FX_SRCS) main_gnet.c $(HOST_IO_SRCS) $(FX_HDRS) $(HOST_IO_HDRS)
\t$(CC) $(ASAN_CFLAGS) $(GNET_FLAGS) $(GNET_DEFS) $(HOST_INCLUDES) -o $@ $(FX_SRCS) main_gnet.c $(HOST_IO_SRCS) $(LDFLAGS)

.PHONY: gnet gnet-asan
"""

    def manifest(self, m: str) -> dict[str, Any]:
        return {"exits": self.exits, "features": self.full.buffers[self.features_buffer].size,
                "classes": self.classes, "scores_q": self.full.buffers[self.scores_buffer].q,
                "exit_steps": list(self.exit_steps), "step_cycles": self.step_cycles(),
                "exit_cycles": self.exit_cycles(), "start_cycles": self.start_cycles(), "onnx_outputs": list(self.meta.get("outputs", [])),
                "exit_tensors": [e["tensor"] for e in self.meta.get("exits", [])],
                "scores_port": self.meta.get("scores_port"), "class_port": self.full.meta.get("class-output"),
                "binary": f"{m}_host_gnet", "asan_binary": f"{m}_host_gnet_asan", "function": f"fx_{m}_exit",
                "feature_bytes": 2 * self.full.buffers[self.features_buffer].size + 2}


def prepare(program: Program) -> tuple[Program, GnetC | None]:
    """(the program the writer prints, without on-demand steps; the gNet parts or None)."""
    head = [(i, s) for i, s in enumerate(program.steps) if s.op in ON_DEMAND_OPS]
    if not head:
        return program, None
    seq = dataclasses.replace(program, steps=[s for s in program.steps if s.op not in ON_DEMAND_OPS])
    meta = json.loads(program.meta.get("gnet", "{}") or "{}")
    exit_steps = [i for i, s in enumerate(seq.steps) if s.op == "gnet_feature"]
    return seq, GnetC(program, seq, head, meta, exit_steps)


def has_gnet(program: Program) -> bool:
    """Does the program carry a gNet head (an on-demand step)?"""
    return any(s.op in ON_DEMAND_OPS for s in program.steps)


def report_lines(g: dict[str, Any], steps: list[dict[str, Any]]) -> list[str]:
    """The report.txt section of the manifest's ``gnet`` record."""
    where = ", ".join(f"{k}: after step {s} '{steps[s]['name']}'" for k, s in enumerate(g["exit_steps"], 1))
    return ["gNet (one shared early exit)",
            f"  exits {g['exits']}: {where}",
            f"  feature vector: {g['features']} features in FRAM ({g['feature_bytes']} B with the exit count); "
            f"head: {g['classes']} classes, scores q={g['scores_q']}, ~{g['exit_cycles']} cycles an answer",
            f"  {g['function']}() asks the head; the run function returns the exit that answered (0 = the whole "
            f"model); host driver: make gnet -> {g['binary']}", ""]


def main_gnet_c(header: str, m: str, M: str) -> str:
    """The host gNet driver (see the module docstring); hosted C99 (stdio, setjmp)."""
    return header + f"""\
/* Host gNet driver: {m}_host_gnet MODE ...   (make gnet; built with -DFX_STEP_HOOKS
 * -DFX_ENERGY_WAIT_HOOK and, unless make GNET_LEVEL=, -DFX_ENERGY_LEVEL_HOOK)
 *
 *   exits IN.raw OUT.raw COUNT
 *       Runs the whole model on each sample and asks the head right after each exit's feature step.
 *       OUT per sample: the outputs (FX_{M}_OUT_SIZE int16), then for k = 1..FX_{M}_GNET_EXITS:
 *       k, the class, the scores (FX_{M}_GNET_CLASSES int16, Q FX_{M}_GNET_SCORES_Q).
 *   energy IN.raw OUT.raw COUNT TRACE FULL PERIOD
 *       Runs the samples one after the other on a capacitor charged by a harvested power trace, in
 *       the integer energy model of transpiler/gnet_energy.py (which writes the arguments): time in
 *       cycles, energy in units of 1/65536 of an active cycle's. TRACE: lines "cycle units_per_cycle"
 *       (the first at cycle 0, cycles increasing; a row's power holds until the next one, the last
 *       forever). FULL: the capacitor's usable units, full at cycle 0. A running step costs its
 *       predicted cycles (FX_{M}_STEP_CYCLES, charged as it begins), an early answer
 *       FX_{M}_GNET_EXIT_CYCLES. Sample i is requested at cycle i * PERIOD (later if the previous
 *       one still runs). The power fails at the first cycle the energy would go below 0: the
 *       device is off until the capacitor is full again, then fx_{m}_recover() answers the
 *       interrupted inference from its saved exits (one try; none: no answer).
 *       fx_energy_level() reports the energy in cycles; the exit policy stops early when the next
 *       step plus the head do not fit.
 *       OUT per sample: the status (-1: no answer; 0: the whole model; k: gNet exit k), then the
 *       outputs. stdout, per sample: "sample I status S start C0 end C1 energy E0 E1 cycles C"
 *       (cycles and units).
 * Exit status 0 on success, 1 on an I/O error, 2 on a usage error.
 * File I/O: runtime/platform/host/fx_host_io.c. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "{m}.h"
#include "fx_host_io.h"

#define ENERGY_ONE 65536u                /* energy units per active cycle */

enum {{ MODE_EXITS = 1, MODE_ENERGY = 2 }};
static int mode;
static int16_t *exits_rec;               /* exits mode: where the current sample's answers go */
static uint64_t *tr_t;                   /* the trace: row j from cycle tr_t[j], tr_p[j] units a cycle */
static uint32_t *tr_p;
static size_t tr_n;
static uint64_t e_now, e_full, t_now, fail_at;
static uint64_t cycles_run;
static jmp_buf power_fail;

/* a / b rounded up (a < 2^62, 0 < b < 2^32: no overflow) */
static uint64_t ceil_div(uint64_t a, uint64_t b)
{{
    return (a + b - 1u) / b;
}}

/* The row whose power holds at cycle t (tr_t[0] == 0). */
static size_t row(uint64_t t)
{{
    size_t lo = 0u, hi = tr_n;
    while (hi - lo > 1u) {{
        size_t mid = lo + (hi - lo) / 2u;
        if (tr_t[mid] <= t) {{
            lo = mid;
        }} else {{
            hi = mid;
        }}
    }}
    return lo;
}}

/* The end of row j's stretch that starts at t, at most t1. */
static uint64_t piece_end(size_t j, uint64_t t1)
{{
    return (j + 1u < tr_n && tr_t[j + 1u] < t1) ? tr_t[j + 1u] : t1;
}}

/* Asleep (only charging) from t_now to t1. */
static void sleep_until(uint64_t t1)
{{
    while (t_now < t1 && e_now < e_full) {{
        size_t j = row(t_now);
        uint64_t end = piece_end(j, t1);
        if (tr_p[j] > 0u) {{
            uint64_t need = ceil_div(e_full - e_now, tr_p[j]);
            e_now = end - t_now >= need ? e_full : e_now + (uint64_t)tr_p[j] * (end - t_now);
        }}
        t_now = end;
    }}
    if (t_now < t1) {{
        t_now = t1;
    }}
}}

/* Running for `cycles`: the energy follows the trace; longjmp at the cycle the capacitor empties. */
static void spend(uint64_t cycles)
{{
    uint64_t t1 = t_now + cycles;
    cycles_run += cycles;
    while (t_now < t1) {{
        size_t j = row(t_now);
        uint64_t end = piece_end(j, t1), dt = end - t_now;
        if (tr_p[j] >= ENERGY_ONE) {{
            uint64_t gain = tr_p[j] - ENERGY_ONE;
            if (gain > 0u) {{
                uint64_t need = ceil_div(e_full - e_now, gain);
                e_now = dt >= need ? e_full : e_now + gain * dt;
            }}
        }} else {{
            uint64_t d = ENERGY_ONE - tr_p[j];
            if (dt > e_now / d) {{
                fail_at = t_now + e_now / d + 1u;
                longjmp(power_fail, 1);
            }}
            e_now -= d * dt;
        }}
        t_now = end;
    }}
}}

/* Asleep from t_now until the capacitor holds `target` units; 0 if the trace never gives them. */
static int charge_to(uint64_t target)
{{
    while (e_now < target) {{
        size_t j = row(t_now);
        int last = j + 1u >= tr_n;
        if (tr_p[j] > 0u) {{
            uint64_t need = ceil_div(target - e_now, tr_p[j]);
            if (last || t_now + need <= tr_t[j + 1u]) {{
                t_now += need;
                e_now = target;
                return 1;
            }}
        }} else if (last) {{
            return 0;
        }}
        e_now += (uint64_t)tr_p[j] * (tr_t[j + 1u] - t_now);
        t_now = tr_t[j + 1u];
    }}
    return 1;
}}

void fx_step_begin(uint16_t step)
{{
    if (mode == MODE_ENERGY) {{
        spend(FX_{M}_STEP_CYCLES[step]);          /* a step that cannot be paid for does not run */
    }}
}}

void fx_step_end(uint16_t step)
{{
    if (mode == MODE_EXITS) {{
        uint8_t k = FX_{M}_GNET_STEP_EXIT[step];
        if (k != 0u) {{
            int16_t *r = exits_rec + (size_t)(k - 1u) * (2u + FX_{M}_GNET_CLASSES);
            uint16_t cls = 0u;
            r[0] = (int16_t)fx_{m}_exit(r + 2, &cls);
            r[1] = (int16_t)cls;
        }}
    }}
}}

/* The platform's sleep: until the energy pays for `cycles` (at most a full capacitor). */
void fx_energy_wait(uint32_t cycles)
{{
    uint64_t target = (uint64_t)cycles * ENERGY_ONE;
    if (mode != MODE_ENERGY) {{
        return;
    }}
    if (target > e_full) {{
        target = e_full;
    }}
    if (e_now < target && !charge_to(target)) {{
        fail_at = 0u;                            /* the harvester never gives it */
        longjmp(power_fail, 2);
    }}
}}

uint32_t fx_energy_level(void)
{{
    uint64_t cycles = e_now >> 16;
    if (mode != MODE_ENERGY) {{
        return 0xFFFFFFFFul;
    }}
    return cycles >= 0xFFFFFFFFu ? 0xFFFFFFFFul : (uint32_t)cycles;
}}

static int read_trace(const char *path)
{{
    FILE *f = fopen(path, "r");
    size_t cap = 0u;
    unsigned long long t, p;
    if (f == NULL) {{
        return -1;
    }}
    while (fscanf(f, "%llu %llu", &t, &p) == 2) {{
        if (tr_n == cap) {{
            uint64_t *nt;
            uint32_t *np;
            cap = cap ? 2u * cap : 256u;
            nt = (uint64_t *)realloc(tr_t, cap * sizeof(uint64_t));
            if (nt != NULL) {{
                tr_t = nt;
            }}
            np = (uint32_t *)realloc(tr_p, cap * sizeof(uint32_t));
            if (np != NULL) {{
                tr_p = np;
            }}
            if (nt == NULL || np == NULL) {{
                fclose(f);
                return -1;
            }}
        }}
        if ((tr_n == 0u && t != 0u) || (tr_n > 0u && t <= tr_t[tr_n - 1u]) || p > 0xFFFFFFFFull) {{
            fclose(f);
            return -1;
        }}
        tr_t[tr_n] = (uint64_t)t;
        tr_p[tr_n] = (uint32_t)p;
        ++tr_n;
    }}
    fclose(f);
    return tr_n > 0u ? 0 : -1;
}}

/* After a power failure at fail_at: off until full (0: never again), then the reboot. */
static int reboot(void)
{{
    t_now = fail_at;
    e_now = 0u;
    return charge_to(e_full);
}}

/* One inference under the energy model: 0 (whole model), k (gNet exit k), -1 (no answer) or -2
 * (no answer, and the harvester never gives the energy again). */
static int run_guarded(const int16_t *in, int16_t *out)
{{
    volatile int stage = 0, answer = 0;
    cycles_run = 0u;
    switch (setjmp(power_fail)) {{
    case 0:
        break;
    case 2:                                      /* fx_energy_wait: the harvester never gives it */
        return -2;
    default:                                     /* the power failed at fail_at */
        if (!reboot()) {{
            return -2;
        }}
        if (stage == 2) {{                        /* during the answer after the reboot: give up */
            return -1;
        }}
        if (stage == 1) {{                        /* during the run: the exits it saved */
            answer = fx_{m}_recover(out);
        }}
        /* stage 3, while paying for an early answer (here the head ran before it was paid for): the
         * reboot answers again from the same features, the same head */
        stage = 2;
        if (answer <= 0) {{
            return -1;
        }}
        spend(FX_{M}_GNET_EXIT_CYCLES);
        return answer;
    }}
    stage = 1;
    answer = fx_{m}_run(in, out);
    if (answer > 0) {{
        stage = 3;
        spend(FX_{M}_GNET_EXIT_CYCLES);
    }}
    return answer;
}}

int main(int argc, char **argv)
{{
    const size_t in_size = FX_{M}_IN_SIZE, out_size = FX_{M}_OUT_SIZE;
    const size_t rec = FX_{M}_GNET_EXITS * (2u + FX_{M}_GNET_CLASSES);
    int16_t *in, *res;
    size_t len = 0u, count, k, per;
    unsigned long count_arg = 0ul;
    unsigned long long period = 0u;
    int rc = 0, starved = 0;
    if (argc >= 2 && strcmp(argv[1], "exits") == 0 && argc == 5) {{
        mode = MODE_EXITS;
    }} else if (argc >= 2 && strcmp(argv[1], "energy") == 0 && argc == 8) {{
        char *end1, *end2;
        unsigned long long full = strtoull(argv[6], &end1, 10);
        mode = MODE_ENERGY;
        period = strtoull(argv[7], &end2, 10);
        e_full = (uint64_t)full;
        if (*end1 != '\\0' || *end2 != '\\0' || full == 0u || full >= (1ull << 62)) {{
            fprintf(stderr, "{m}_host_gnet: FULL and PERIOD must be integers, 0 < FULL < 2^62\\n");
            return 2;
        }}
        if (read_trace(argv[5]) != 0) {{
            fprintf(stderr, "{m}_host_gnet: %s: not a trace of 'cycle units' lines from cycle 0\\n", argv[5]);
            free(tr_t);
            free(tr_p);
            return 1;
        }}
    }} else {{
        fprintf(stderr, "usage: %s exits IN OUT COUNT | energy IN OUT COUNT TRACE FULL PERIOD\\n", argv[0]);
        return 2;
    }}
    if (fx_host_parse_count(argv[4], &count_arg) != 0) {{
        fprintf(stderr, "{m}_host_gnet: COUNT must be a positive integer\\n");
        free(tr_t);
        free(tr_p);
        return 2;
    }}
    count = (size_t)count_arg;
    in = fx_host_read_int16(argv[2], &len);
    if (in == NULL || len != count * 2u * in_size) {{
        free(in);
        free(tr_t);
        free(tr_p);
        fprintf(stderr, "{m}_host_gnet: %s: expected %lu samples of %lu int16\\n", argv[2],
                (unsigned long)count, (unsigned long)in_size);
        return 1;
    }}
    per = mode == MODE_EXITS ? out_size + rec : 1u + out_size;
    res = (int16_t *)calloc(count * per, sizeof(int16_t));
    if (res == NULL) {{
        free(in);
        free(tr_t);
        free(tr_p);
        return 1;
    }}
    e_now = e_full;
    for (k = 0u; k < count; ++k) {{
        int16_t *r = res + k * per;
        if (mode == MODE_EXITS) {{
            exits_rec = r + out_size;
            if (fx_{m}_run(in + k * in_size, r) != 0) {{
                fprintf(stderr, "{m}_host_gnet: the run stopped early without an energy hook\\n");
                rc = 1;
                break;
            }}
        }} else {{
            int status = -1;
            uint64_t t0, e0;
            if (!starved) {{
                sleep_until((uint64_t)k * period);
                t0 = t_now;
                e0 = e_now;
                status = run_guarded(in + k * in_size, r + 1);
                starved = status == -2;
            }} else {{
                t0 = t_now;
                e0 = 0u;
                cycles_run = 0u;
            }}
            r[0] = (int16_t)(status < 0 ? -1 : status);
            printf("sample %lu status %d start %llu end %llu energy %llu %llu cycles %llu\\n", (unsigned long)k,
                   status < 0 ? -1 : status, (unsigned long long)t0, (unsigned long long)t_now,
                   (unsigned long long)e0, (unsigned long long)e_now, (unsigned long long)cycles_run);
        }}
    }}
    if (rc == 0 && fx_host_write_int16(argv[3], res, count * per) != 0) {{
        rc = fx_host_fail("{m}_host_gnet", argv[3], "cannot write");
    }}
    free(in);
    free(res);
    free(tr_t);
    free(tr_p);
    return rc;
}}
"""

"""Fit the cycle cost model (transpiler/lir/cost.py) to the MSP430 simulator's counts.

    python bench/calibrate_cost.py             # measure, fit, print the table
    python bench/calibrate_cost.py --write     # ... and rewrite the constants in cost.py

Three measurements, all on the patched msp430-elf-run (msp430.mk's flags: -O2, MPY32):

1. Per-op constants. Synthetic models (bench/_pipeline.py: convs with strides, pads, dilation,
   groups, 1-D; pools; residual adds; concats; fully connected chains) and the samples are compiled
   for continuous power with every activation in FRAM and built with FX_SIM_COUNTERS, which prints
   the cycles of every step. A step is one kernel call over all its units, so per op

       cycles(step) = base * units + mac * MACs + store * outputs

   is fitted by non-negative least squares (weighted by 1/cycles: relative errors) over all steps
   of that op; for conv the MACs and outputs are split into the interior windows (the specialised
   runners) and the border / dilated windows (the general path, ``slow_mac`` and ``border``), from
   the layer's geometry (transpiler.lir.cost.conv_rows), plus conv's ``slow_row`` per kernel row of
   an input channel of a border / dilated window, ``channel`` per output channel
   and ``column`` per border column run of a channel (fx_conv_units / fx_conv_interior), and the
   pools' ``row`` per output row of a channel (fx_pool.c's per-row work: a few hundred cycles, an
   interior 2x2 output ~30). The per-call set-up is left to the loop constants below.
2. COMMIT_CYCLES: a small program times 64 calls of fx_progress_commit (runtime_c/fx_progress.c)
   with the simulator's counters.
3. Per-call and loop constants. Each model is compiled again with every step split by hand into
   GROUPS groups of one kernel call and one commit each (a TilePlan per step and an intermittent
   plan in the program's metadata) and built with FX_SIM_COUNTERS. Per step,

       cycles(split) - cycles(continuous) = call[op] * (calls - 1) + COMMIT * commits

   gives the cost of one more kernel call of that step (``call``: the run loop's dispatch, the step
   function and the kernel's set-up); call[op] is the median over the op's steps. For conv, a call
   that starts inside an output channel also starts its runs down the border columns again
   (cost.call_cycles), so call and call_border are fitted over the conv steps (non-negative least
   squares) from

       cycles(split) - cycles(continuous) - COMMIT * commits
           = call * (calls - 1) + call_border * border columns * calls starting inside a channel.

   The same split
   build with only main_sim.c's counters (MSP430_RUN_COUNTERS=1) gives fx_<m>_run's cycles; what
   the measured steps do not cover is fitted as COPY * (in + out elements) + STEP * steps + RUN.
4. BOOT: the cycles from a reset to the first unit after a power failure. A
   failure at cycle X in the middle of a run, then failures 50, 100, 150, ... cycles after each
   reboot (one ``at:`` list, a single simulator run: the boots are shorter than the first piece of
   work, so every boot resumes at the same point); the first failure whose PC lies in the model's
   compute code (step functions and kernels, not crt0, main_sim.c, the run loop or the progress
   records) bounds the boot cost, then a second list refines it to 2 cycles.

5. gNet (``--gnet-only`` runs just this part): the GNET_SAMPLES compiled with ``--gnet``;
   the steps build gives every gnet_feature step's cycles (fitted like the other ops:
   ``gnet_feature`` base / mac / store), and the energy-trace program on the simulator
   (transpiler/gnet_sim.py) on a weak harvester, where the policy answers early, gives each early
   answer's cycles (from the policy's stop to the answer): GNET_ANSWER_CYCLES is their median
   minus the head (the fc constants) and argmax. Prints predicted vs simulated per step and answer.

Run it again whenever the kernels change; it prints every fit's relative errors.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pipeline as P  # noqa: E402

from transpiler import sim  # noqa: E402
from transpiler.intermittent import input_chunks, input_size, output_size, plan_of  # noqa: E402
from transpiler.lir import cost  # noqa: E402
from transpiler.lir.cost import step_work, tile_unit_count  # noqa: E402
from transpiler.lir.ir import Program  # noqa: E402
from transpiler.toolchain import find_msp430_toolchain  # noqa: E402

DENSE_OPS = ("conv", "fc", "maxpool", "avgpool", "add", "mul", "act", "lut", "concat", "argmax")


@dataclass
class StepSample:
    """One measured step: its op, the cost model's features and the simulator's cycles.

    features: conv and pools [units, interior MACs (taps), border MACs, interior outputs, border
    outputs], then conv [general-path kernel rows (ConvRow.slow_rows), output channels, border column
    runs (channels x border columns)] and pools
    [output rows (channels x OH)], concat
    [units, requantised elements, elements], lut [units, gated elements, elements], the other ops
    [units, MACs, outputs] (whole step).
    """

    model: str
    step: str
    op: str
    features: list[float]
    cycles: int


FEATURES = {"conv": ("base", "mac", "slow_mac", "store", "border", "slow_row", "channel", "column"),
            "maxpool": ("base", "mac", "slow_mac", "store", "border", "row"),
            "avgpool": ("base", "mac", "slow_mac", "store", "border", "row")}
PLAIN = ("base", "mac", "store")


def step_features(p: Program, s: Any) -> list[float]:
    """The whole step's features in the order of its op's OpCost fields (FEATURES / PLAIN)."""
    w = step_work(p, s)
    if s.op == "conv":
        cout = p.buffers[s.outputs[0]].shape[-3]
        rows = cost.conv_rows(p, s)
        return [float(w.units), float(cout * sum(r.fast_macs for r in rows)),
                float(cout * sum(r.slow_macs for r in rows)), float(cout * sum(r.fast_outputs for r in rows)),
                float(cout * sum(r.slow_outputs for r in rows)), float(cout * sum(r.slow_rows for r in rows)), float(cout),
                float(cout * cost.conv_border_columns(p, s))]
    if s.op in ("maxpool", "avgpool"):
        c = p.buffers[s.outputs[0]].shape[-3]
        win = cost.pool_windows(p, s)
        return [float(c), float(c * win.fast_macs), float(c * win.slow_macs), float(c * win.fast_outputs),
                float(c * win.slow_outputs), float(c * p.buffers[s.outputs[0]].shape[-2])]
    if s.op == "concat":       # MACs: requantised elements (cost._concat_requantised)
        return [float(w.units), float(cost._concat_requantised(p, s)), float(p.buffers[s.outputs[0]].size)]
    if s.op == "lut":           # MACs: the gated elements (cost.step_cycles), exact for short last chunks
        n = p.buffers[s.outputs[0]].size
        return [float(w.units), float(n if s.attrs.get("gate") else 0), float(n)]
    if s.op == "gnet_feature":  # MACs: the slice's elements when requantised (cost.step_cycles)
        n = p.buffers[s.inputs[0]].size
        return [float(w.units), float(n if s.attrs.get("shift", 0) else 0), float(n)]
    return [float(w.units), float(w.units * w.macs_per_unit), float(w.units * w.stores_per_unit)]


def models(quick: bool) -> list[tuple[str, Any, Any]]:
    """(name, model, dataset) of the synthetic models and the samples."""
    out: list[tuple[str, Any, Any]] = []
    for name, proto in P.calibration_models():
        out.append((name, proto, P.random_data(proto)))
    for name in (P.SAMPLES[:2] if quick else P.SAMPLES):
        model, ds = P.load_sample(name)
        out.append((name, model, ds))
    return out


def measure_steps(name: str, model: Any, ds: Any, work: Path) -> tuple[list[StepSample], P.Compiled]:
    """Per-step cycles of a continuous-power build (one kernel call per step)."""
    c = P.compile_model(model, ds, work / f"{name}_cont", None, name=name)
    x = P.quantised(c, ds, 1)
    r = sim.run_model(c.out_dir, c.c_name, [list(map(int, x[0]))], counters=True).check()
    cycles = r.output().step_cycles()
    samples = []
    for i, s in enumerate(c.program.steps):
        samples.append(StepSample(name, s.name, s.op, step_features(c.program, s), cycles[i]))
    return samples, c


def fit_ops(samples: list[StepSample]) -> dict[str, tuple[cost.OpCost, float]]:
    """op -> (fitted OpCost, max relative error over its steps)."""
    fits: dict[str, tuple[cost.OpCost, float]] = {}
    for op in DENSE_OPS:
        rows = [s for s in samples if s.op == op]
        if not rows:
            continue
        names = FEATURES.get(op, PLAIN)
        a = np.array([s.features for s in rows], dtype=np.float64)
        y = np.array([s.cycles for s in rows], dtype=np.float64)
        wts = 1.0 / np.maximum(y, 1.0)      # relative errors matter, not the big layers' absolute ones
        keep = [j for j in range(len(names)) if a[:, j].any()]
        coef, _ = nnls(a[:, keep] * wts[:, None], y * wts)
        full = np.zeros(len(names))
        full[keep] = coef
        err = float(np.max(np.abs(a @ full - y) / y))
        fits[op] = (cost.OpCost(**{k: round(float(v), 2) for k, v in zip(names, full)}), err)
    return fits


def predict(oc: cost.OpCost, op: str, features: list[float]) -> float:
    """A step's cycles from its features under OpCost `oc`."""
    names = FEATURES.get(op, PLAIN)
    return sum(getattr(oc, k) * f for k, f in zip(names, features))


GROUPS = 8


def split_program(c: P.Compiled, work: Path) -> P.Compiled:
    """The continuous build's program with every step split into GROUPS groups of one call each,
    emitted as an intermittent package (tile pass bypassed: the plan is set by hand)."""
    from backends.emit_c import EmitC, EmitCOptions
    from transpiler.intermittent import META_KEY, IntermittentPlan, input_chunks
    from transpiler.lir.ir import TilePlan
    from transpiler.lir.text import parse_program, print_program
    from transpiler.pass_infra import PassContext

    p = parse_program(print_program(c.program))
    for s in p.steps:
        units = step_work(p, s).units
        g = max(1, -(-units // GROUPS))
        out = p.buffers[s.outputs[0]]
        if s.op in ("conv", "conv_sparse"):
            oh, ow = out.shape[-2], out.shape[-1]
            g = g // oh * oh if g >= oh else g
            dims = [g // oh, oh, ow] if g >= oh else [1, g, ow]
        elif s.op in ("maxpool", "avgpool"):
            dims = [g, out.shape[-2], out.shape[-1]]
        elif s.op in ("add", "mul", "act", "lut", "concat"):
            dims = [min(g * 32, out.size)]
        else:
            dims = [g]
        s.tile = TilePlan(dims, 1)
    p.meta[META_KEY] = IntermittentPlan(10**6, 0.2, max(1, -(-input_chunks(p) // 2))).to_meta()
    out_dir = work / f"{c.c_name}_split"
    ctx = PassContext(out_dir=str(out_dir), command_line="bench", pipeline_text="(split by hand),emit-c")
    EmitC(EmitCOptions(name=c.c_name), ctx).run(p)
    return P.Compiled(out_dir, p, None, c.c_name)


def split_counts(p: Program) -> list[tuple[int, int, int]]:
    """Per step (kernel calls, commits, conv calls that start inside an output channel) of a split
    program (one call per group)."""
    out = []
    for s in p.steps:
        units = step_work(p, s).units
        tile = tile_unit_count(p, s)
        calls = math.ceil(units / tile)
        inside = 0
        if s.op == "conv":
            oh = p.buffers[s.outputs[0]].shape[-2]
            inside = sum(1 for start in range(0, units, tile) if start % oh)
        out.append((calls, calls, inside))
    return out


def fit_conv_calls(rows: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(call, call_border, max absolute error) of conv from (calls - 1, border columns x calls starting
    inside a channel, extra cycles) per split step."""
    a = np.array([[r[0], r[1]] for r in rows], dtype=np.float64)
    y = np.array([r[2] for r in rows], dtype=np.float64)
    coef, _ = nnls(a, y)
    return float(coef[0]), float(coef[1]), float(np.max(np.abs(a @ coef - y)))


def run_cycles(c: P.Compiled, x: np.ndarray) -> int:
    """fx_<m>_run's cycles from main_sim.c's run counters (MSP430_RUN_COUNTERS=1)."""
    r = sim.run_model(c.out_dir, c.c_name, [list(map(int, x[0]))],
                      make_vars={"MSP430_RUN_COUNTERS": "1"}).check()
    runs = r.output().runs
    if 0 not in runs:
        raise SystemExit("no 'run' line: this msp430.mk lacks MSP430_RUN_COUNTERS (update backends/c/msp430_mk.py)")
    return runs[0].cycles


COMMIT_PROGRAM = r"""
#include <stdint.h>
#include "cio.h"
#include "fx_platform_msp430.h"
#include "fx_progress.h"

static fx_progress_t rec __attribute__((section(".persistent"))) = { { { 0u, 0u, 0u, 0u }, { 0u, 0u, 0u, 0u } } };

int main(void)
{
    fx_sim_count_t t0, t1;
    uint16_t i, s, u;
    char *p;
    fx_progress_reset(&rec);
    t0 = fx_sim_now();
    for (i = 0u; i < 64u; ++i) {
        fx_progress_commit(&rec, i, (uint16_t)(i + 1u));
    }
    t1 = fx_sim_now();
    p = fx_fmt_str(fx_cio_line(), "commit64 ");
    p = fx_fmt_udec(p, t1.cycles - t0.cycles);
    t0 = fx_sim_now();
    (void)fx_progress_load(&rec, &s, &u);
    t1 = fx_sim_now();
    p = fx_fmt_str(p, " load ");
    p = fx_fmt_udec(p, t1.cycles - t0.cycles);
    *p++ = '\n';
    fx_cio_send(FX_CIO_STDOUT, p);
    return (s == 63u && u == 64u) ? 0 : 1;
}
"""


def commit_cycles(work: Path) -> tuple[float, float]:
    """(cycles of one fx_progress_commit, of one fx_progress_load) on the simulator."""
    tc = find_msp430_toolchain()
    rt = P.REPO / "runtime_c"
    plat = rt / "platform" / "msp430"
    d = work / "commit_bench"
    d.mkdir(parents=True, exist_ok=True)
    (d / "main.c").write_text(COMMIT_PROGRAM)
    cflags = ["-mmcu=msp430fr5994", "-O2", "-ffreestanding", "-DFX_USE_MPY32", "-DFX_SIM_COUNTERS",
              "-Wall", "-Wextra", "-Werror", "--param=min-pagesize=0", "-ffunction-sections", "-fdata-sections",
              f"-I{rt}", f"-I{plat}"]
    objs = []
    for src in (d / "main.c", rt / "fx_progress.c", plat / "cio.c", plat / "fx_platform_msp430.c"):
        obj = d / (src.stem + ".o")
        subprocess.run([str(tc.gcc), *cflags, "-c", str(src), "-o", str(obj)], check=True, env=tc.environ())
        objs.append(str(obj))
    subprocess.run([str(tc.gcc), "-mmcu=msp430fr5994", "-c", str(plat / "crt0.S"), "-o", str(d / "crt0.o")],
                   check=True, env=tc.environ())
    elf = d / "commit.elf"
    subprocess.run([str(tc.gcc), "-mmcu=msp430fr5994", "-nostdlib", "-nostartfiles", "-Wl,--gc-sections",
                    "-Wl,--no-warn-rwx-segments", "-T", str(plat / "fr5994.ld"), str(d / "crt0.o"), *objs,
                    "-lgcc", "-lmul_f5", "-o", str(elf)], check=True, env=tc.environ())
    r = sim.run_elf(elf).check()
    m = re.search(r"commit64 (\d+) load (\d+)", r.stdout)
    if not m:
        raise SystemExit(f"commit benchmark printed {r.stdout!r}")
    return int(m.group(1)) / 64.0, float(m.group(2))


BOOT_SYMBOLS = ("main", "_start", "crt0", "fx_progress", "fx_cio", "cio_", "fx_sim", "fx_fmt", "__mspabi",
                "__mul", "__umul", "C$$IO$$", "__fail")


def boot_cycles(c: P.Compiled, x: np.ndarray) -> int:
    """Cycles from the reset after a failure to the first instruction of the model's compute code."""
    tc = find_msp430_toolchain()
    r0 = sim.run_model(c.out_dir, c.c_name, [list(map(int, x[0]))]).check()
    elf = c.out_dir / f"{c.c_name}.elf"
    nm = subprocess.run([str(tc.tool("nm")), "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    compute: list[tuple[int, int]] = []
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT" and parts[3].startswith("fx_") \
                and parts[3] != f"fx_{c.c_name}_run" and not any(b in parts[3] for b in BOOT_SYMBOLS):
            lo = int(parts[0], 16)
            compute.append((lo, lo + int(parts[1], 16)))
    x_fail = r0.cycles // 2

    def first_in_compute(gaps: list[int]) -> int | None:
        points, t = [x_fail], x_fail
        for g in gaps:
            t += g
            points.append(t)
        r = sim.run_elf(elf, power_fail="at:" + ",".join(map(str, points)), verbose=True,
                        max_failures=len(points) + 1)
        for m in re.finditer(r"power failure (\d+) at cycle \d+ \((\d+) cycles after boot, pc (0x[0-9a-f]+)\)",
                             r.stderr):
            k, since, pc = int(m.group(1)), int(m.group(2)), int(m.group(3), 16)
            if k >= 2 and any(lo <= pc < hi for lo, hi in compute):
                return since
        return None

    coarse = first_in_compute(list(range(50, 20001, 50)))
    if coarse is None:
        raise SystemExit(f"{c.c_name}: no compute code within 20000 cycles of a reboot")
    fine = first_in_compute(list(range(max(2, coarse - 50), coarse + 1, 2)))
    return fine if fine is not None else coarse


#: The gNet packages measured (small and quick: lenet5_mnist's energy program builds too, but its
#: MNIST compile would dominate the calibration's time and adds no new kind of feature step).
GNET_SAMPLES = ("cnn_digits", "mlp_digits_sklearn", "tiny_residual", "tiny_conv1d")


@dataclass
class GnetMeasure:
    """gNet figures of one package: gnet_feature steps and early answers (predicted parts, measured)."""

    model: str
    features: list[StepSample]
    answers: list[int]            # simulated cycles of each early answer
    head: float                   # predicted: the head (fc constants) + argmax
    answer_predicted: int         # the manifest's exit_cycles


def measure_gnet(work: Path) -> list[GnetMeasure]:
    """Compile the GNET_SAMPLES with --gnet and measure them on the simulator (part 5)."""
    from transpiler import hostrun
    from transpiler.cli import main as cli
    from transpiler.gnet_energy import EnergyTrace
    from transpiler.gnet_sim import run_energy_sim, running_segments
    from transpiler.lir.text import parse_program
    from transpiler.power import parse_power
    from transpiler.simpackage import run_package

    out: list[GnetMeasure] = []
    for name in GNET_SAMPLES:
        with np.load(P.REPO / "samples" / f"{name}.npz") as d:     # every 10th sample (all of a tiny set)
            x_all = d["x"]
            step = 10 if len(x_all) > 200 else 1
            np.savez(work / f"{name}_gnet.npz", x=x_all[::step], **({"y": d["y"][::step]} if "y" in d.files else {}))
        d_out = work / f"{name}_gnet"
        if cli([str(P.REPO / "samples" / f"{name}.onnx"), "-o", str(d_out), "--data", str(work / f"{name}_gnet.npz"),
                "--gnet", "epochs=2,baseline=none"]) != 0:
            raise SystemExit(f"compiling {name} --gnet failed")
        man = hostrun.load_manifest(d_out)
        g = man["gnet"]
        p = parse_program((d_out / "final.lir").read_text())
        seq = [s for s in p.steps if s.op != "gnet_exit"]
        xq = hostrun.quantize(man, {man["inputs"][0]["name"]: x_all[-6:]})
        steps = run_package(d_out, xq[:1], counters="steps").steps[0]
        feats = [StepSample(name, s.name, s.op, step_features(p, s), steps[i].cycles)
                 for i, s in enumerate(seq) if s.op == "gnet_feature"]
        # a full charge pays for 1.2x the cycles up to exit 2's answer; 1/15 of the load harvested
        need = 1.2 * (sum(g["step_cycles"][:g["exit_steps"][min(1, g["exits"] - 1)] + 1]) + g["exit_cycles"])
        cap = 2 * need * 1.5e-3 / 8e6 / (3.3 ** 2 - 1.8 ** 2)
        run = run_energy_sim(d_out, xq, EnergyTrace(np.array([0.0]), np.array([1e-4])),
                             parse_power(f"cap={cap * 1e6:.4f}uF,von=3.3V,voff=1.8V,active=1.5mW"), 0.05)
        answers = []
        for boot in sorted({s.boot for s in run.syncs}):
            segs = running_segments(run.syncs, boot)
            mine = [s for s in run.syncs if s.boot == boot]
            for (sy, first, last), nxt in zip(segs, mine[1:]):
                if sy.why == "l" and nxt.why == "a" and run.status[sy.sample] > 0:
                    answers.append(last - first)
        head_step = next(s for s in p.steps if s.op == "gnet_exit")
        arg = cost.COSTS["argmax"]
        head = cost.step_cycles(p, head_step) + arg.base + arg.mac * g["classes"]
        out.append(GnetMeasure(name, feats, answers, head, int(g["exit_cycles"])))
    return out


def fit_gnet(measures: list[GnetMeasure]) -> tuple[cost.OpCost, float, int]:
    """(gnet_feature OpCost, its max relative error, GNET_ANSWER_CYCLES)."""
    rows = [s for m in measures for s in m.features]
    a = np.array([s.features for s in rows], dtype=np.float64)
    y = np.array([s.cycles for s in rows], dtype=np.float64)
    wts = 1.0 / np.maximum(y, 1.0)
    keep = [j for j in range(3) if a[:, j].any()]
    coef, _ = nnls(a[:, keep] * wts[:, None], y * wts)
    full = np.zeros(3)
    full[keep] = coef
    err = float(np.max(np.abs(a @ full - y) / y))
    extra = [c - m.head for m in measures for c in m.answers]
    if not extra:
        raise SystemExit("no early answer on the simulator: the gNet measurement found nothing to time")
    oc = cost.OpCost(base=round(float(full[0]), 2), mac=round(float(full[1]), 2), store=round(float(full[2]), 2),
                     call=cost.COSTS["gnet_feature"].call)
    return oc, err, max(0, int(round(float(np.median(extra)))))


def report_gnet(measures: list[GnetMeasure], oc: cost.OpCost, answer: int) -> None:
    print("\n5. gNet (gnet_feature steps; early answers on the energy-trace program)")
    old = cost.COSTS["gnet_feature"]
    print(f"   gnet_feature base={oc.base:g} mac={oc.mac:g} store={oc.store:g}   (was base={old.base:g} "
          f"mac={old.mac:g} store={old.store:g});  GNET_ANSWER_CYCLES={answer}   (was {cost.GNET_ANSWER_CYCLES})")
    print(f"   {'model':16s} {'step':28s} {'cycles':>9} {'before':>9} {'err':>7} {'fitted':>9} {'err':>7}")
    for m in measures:
        for s in m.features:
            before, after = predict(old, s.op, s.features), predict(oc, s.op, s.features)
            print(f"   {m.model[:16]:16s} {s.step[:28]:28s} {s.cycles:>9} {before:>9.0f} "
                  f"{(before - s.cycles) / s.cycles:>+7.1%} {after:>9.0f} {(after - s.cycles) / s.cycles:>+7.1%}")
        if m.answers:
            sim_mean = float(np.mean(m.answers))
            fitted = m.head + answer
            print(f"   {m.model[:16]:16s} {'early answer (head, argmax, copies)':28s} {sim_mean:>9.0f} "
                  f"{m.answer_predicted:>9} {(m.answer_predicted - sim_mean) / sim_mean:>+7.1%} {fitted:>9.0f} "
                  f"{(fitted - sim_mean) / sim_mean:>+7.1%}   ({len(m.answers)} answers, "
                  f"{min(m.answers)}..{max(m.answers)})")


def rewrite_gnet_costs(oc: cost.OpCost, answer: int) -> None:
    """Replace the gNet constants in transpiler/lir/cost.py."""
    path = P.REPO / "transpiler" / "lir" / "cost.py"
    text = path.read_text()
    fields = f"base={oc.base}, mac={oc.mac}, store={oc.store}, call={round(oc.call)}"
    text, n = re.subn(r'\nCOSTS\["gnet_feature"\] = OpCost\([^)]*\)', f'\nCOSTS["gnet_feature"] = OpCost({fields})', text)
    assert n == 1
    text, n = re.subn(r"\nGNET_ANSWER_CYCLES = [0-9]+", f"\nGNET_ANSWER_CYCLES = {answer}", text)
    assert n == 1
    path.write_text(text)


def rewrite_cost_py(fits: dict[str, tuple[cost.OpCost, float]], loop: dict[str, float], commit: float,
                    boot: int) -> None:
    """Replace the fitted numbers in transpiler/lir/cost.py (dense ops and loop constants)."""
    path = P.REPO / "transpiler" / "lir" / "cost.py"
    text = path.read_text()
    for op, (oc, _err) in fits.items():
        call = round(loop.get(f"call[{op}]", 0.0))
        fields = ", ".join([f"{k}={getattr(oc, k)}" for k in FEATURES.get(op, PLAIN)] + [f"call={call}"]
                           + ([f"call_border={round(loop['call_border[conv]'], 1)}"] if op == "conv" else []))
        text, n = re.subn(rf'(\n    "{op}": OpCost\()[^)]*\)', rf"\g<1>{fields})", text)
        assert n == 1, op
    consts = {"COMMIT_CYCLES": round(commit), "BOOT_CYCLES": boot,
              "COPY_CYCLES_PER_ELEMENT": round(loop["COPY"], 1), "RUN_CYCLES": round(loop["RUN"]),
              "STEP_CYCLES": round(loop["STEP"])}
    for key, value in consts.items():
        text, n = re.subn(rf"\n{key} = [0-9.]+", f"\n{key} = {value}", text)
        assert n == 1, key
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the constants in transpiler/lir/cost.py")
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--keep", metavar="DIR", help="build in DIR (kept) instead of a temporary folder")
    ap.add_argument("--gnet-only", action="store_true", help="only part 5 (the gNet constants)")
    args = ap.parse_args()
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="fx-calib-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.gnet_only:
            measures = measure_gnet(work)
            oc, _err, answer = fit_gnet(measures)
            report_gnet(measures, oc, answer)
            print(f"\n(measured in {time.time() - t_start:.0f} s)")
            if args.write:
                rewrite_gnet_costs(oc, answer)
                print("rewrote the gNet constants in transpiler/lir/cost.py")
            return 0
        all_models = models(args.quick)
        samples: list[StepSample] = []
        compiled: dict[str, P.Compiled] = {}
        for name, model, ds in all_models:
            s, compiled[name] = measure_steps(name, model, ds, work)
            samples += s
        fits = fit_ops(samples)
        print(f"1. per-op constants, {len(samples)} steps of {len(all_models)} models "
              "(conv: interior / border MACs and outputs)")
        for op, (oc, err) in fits.items():
            old = cost.COSTS[op]
            n = sum(1 for s in samples if s.op == op)
            names = FEATURES.get(op, PLAIN)
            print(f"   {op:8s} {n:>3} steps  " + "  ".join(f"{k}={getattr(oc, k):g}" for k in names)
                  + f"   max error {err:.1%}   (was " + ", ".join(f"{k}={getattr(old, k):g}" for k in names) + ")")
        print(f"   {'model':16s} {'step':28s} {'op':8s} {'cycles':>9} {'model':>9} {'err':>7}")
        for s in samples:
            oc = fits[s.op][0] if s.op in fits else cost.COSTS[s.op]
            pred = predict(oc, s.op, s.features)
            print(f"   {s.model[:16]:16s} {s.step[:28]:28s} {s.op:8s} {s.cycles:>9} {pred:>9.0f} "
                  f"{(pred - s.cycles) / s.cycles:>+7.1%}")

        commit, load = commit_cycles(work)
        print(f"\n2. COMMIT_CYCLES: fx_progress_commit {commit:.1f} cycles (fx_progress_load {load:.0f})")

        per_call: dict[str, list[float]] = {op: [] for op in DENSE_OPS}
        conv_split: list[tuple[float, float, float]] = []
        loop_rows, loop_ys, labels = [], [], []
        boot_source: P.Compiled | None = None
        boot_x: np.ndarray | None = None
        for name, model, ds in all_models:
            cont = compiled[name]
            split = split_program(cont, work)
            x = P.quantised(split, ds, 1)
            r = sim.run_model(split.out_dir, split.c_name, [list(map(int, x[0]))], counters=True).check()
            cyc = r.output().step_cycles()
            counts = split_counts(split.program)
            for i, s in enumerate(split.program.steps):
                calls, commits, inside = counts[i]
                base = next(t.cycles for t in samples if t.model == name and t.step == s.name)
                if calls > 1 and s.op in per_call:
                    per_call[s.op].append((cyc[i] - base - commit * commits) / (calls - 1))
                if calls > 1 and s.op == "conv":
                    conv_split.append((float(calls - 1), float(cost.conv_border_columns(split.program, s) * inside),
                                      float(cyc[i] - base - commit * commits)))
            first_commits = math.ceil(input_chunks(split.program) / plan_of(split.program).input_per_commit)
            loop_rows.append([float(input_size(split.program) + output_size(split.program)),
                              float(len(split.program.steps)), 1.0])
            loop_ys.append(run_cycles(split, x) - sum(cyc.values()) - commit * first_commits)
            labels.append(name)
            if boot_source is None and sum(cyc.values()) > 200000:
                boot_source, boot_x = split, x
        calls = {op: float(np.median(v)) if v else 0.0 for op, v in per_call.items()}
        print(f"\n3. per-call constants (median over the steps of each op; every step split into {GROUPS} calls)")
        for op, v in per_call.items():
            if v:
                print(f"   call[{op}] = {calls[op]:.0f}   (steps: {', '.join(f'{c:.0f}' for c in v)})")
        conv_border = 0.0
        if conv_split:
            calls["conv"], conv_border, err = fit_conv_calls(conv_split)
            print(f"   conv fitted: call = {calls['conv']:.0f}, call_border = {conv_border:.1f} per border column "
                  f"of a call that starts inside a channel (max error {err:.0f} cycles per step)")
        a = np.array(loop_rows)
        yv = np.array(loop_ys)
        coef, _ = nnls(a, yv)
        loop = {"COPY": float(coef[0]), "STEP": float(coef[1]), "RUN": float(coef[2])}
        loop.update({f"call[{op}]": v for op, v in calls.items()})
        loop["call_border[conv]"] = conv_border
        print("   loop: " + "  ".join(f"{k}={loop[k]:.1f}" for k in ("COPY", "STEP", "RUN")))
        for lab, row, yy, pp in zip(labels, loop_rows, yv, a @ coef):
            print(f"   {lab:20s} copied {row[0]:>6.0f} steps {row[1]:>3.0f}  outside the steps {yy:>7.0f}  fit {pp:>7.0f}")

        assert boot_source is not None and boot_x is not None
        boot = boot_cycles(boot_source, boot_x)
        print(f"\n4. BOOT_CYCLES (reset after a failure -> first instruction of the resumed work, "
              f"{boot_source.c_name}): {boot}")
        measures = measure_gnet(work)
        goc, _gerr, answer = fit_gnet(measures)
        report_gnet(measures, goc, answer)
        print(f"\n(measured in {time.time() - t_start:.0f} s)")
        if args.write:
            rewrite_cost_py(fits, loop, commit, boot)
            rewrite_gnet_costs(goc, answer)
            print("rewrote transpiler/lir/cost.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())

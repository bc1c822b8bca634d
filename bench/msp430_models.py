"""The samples on the MSP430FR5994 simulator: cost per inference, per layer, per MAC; memory vs the planner;
and LeNet-5 next to emx-onnx-cgen's float C.

    python bench/msp430_models.py                      # every sample, then the emx-onnx-cgen comparison
    python bench/msp430_models.py --samples lenet5_mnist --no-emx
    python bench/msp430_models.py --json results.json

Needs the msp430-elf toolchain (tools/msp430-toolchain.sh); the comparison needs emx-onnx-cgen 1.4.0
(``pip install -e '.[bench]'``). Never part of the tests.

Per sample (``freeml-tx MODEL -o DIR --target msp430fr5994 --data MODEL.npz``, then what
``freeml-tx report DIR`` measures, transpiler/cli/report_cmd.py), on the first sample of its .npz:

* cycles and instructions of one inference (main_sim.c reads the simulator's counters around
  ``fx_<m>_run``: ``make msp430 MSP430_RUN_COUNTERS=1``);
* cycles and instructions per layer (``MSP430_COUNTERS=1``: the step hooks) and, per kernel (conv, fc),
  per MAC: the layer's count divided by its multiply-accumulates;
* FRAM and SRAM of the model in the ELF (sections split by the linker map into the model's bytes and
  the simulator harness's) against the planner's figures in manifest.json: the totals must agree
  within 5 %;
* for lenet5_mnist: whether it fits 8 KiB SRAM and 256 KiB FRAM, with the stack measured.

The comparison: the same network (lenet5_mnist with its batch dimension pinned to 1: freeml-tx's
normalized.onnx, the float model that was quantised, same 12 ONNX nodes) compiled by emx-onnx-cgen
with ``--large-temp-threshold 0 --large-weight-threshold 0`` (weights inline, no heap: its temporaries
are arrays on the stack), built for the MSP430 with the same compiler (-O2, -mlarge, soft-float from
libgcc; -mdata-region=upper cannot be mixed with the harness and libgcc objects, so the linker script
places the weights instead) and a small freestanding shim (math.h: fmaxf/INFINITY; memcpy/memset), and run once in the
simulator with bench/msp430_emx/main_bench.c. The float build needs more memory than the FR5994 has,
so it links with bench/msp430_emx/emx_sim.ld, a memory map with room for it (the simulator maps
1 MB; the figures are what it would need). Our fixed-point build runs through the same main_bench.c
(with the FR5994's own linker script), so both columns come from one kind of run: instructions and
cycles of the inference (the simulator's counters), RAM = static data + the stack's high-water mark
(painted and scanned), FRAM = code + constants (+ our FRAM activations).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backends.c.msp430_mk import MSP430_BASE_CFLAGS  # noqa: E402
from transpiler.errors import BudgetError, FreemlError, ToolchainError  # noqa: E402
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain  # noqa: E402

SAMPLES = ("lenet5_mnist", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual", "mlp_mnist_big")
EMX_DIR = REPO / "bench" / "msp430_emx"
PLATFORM = REPO / "runtime_c" / "platform" / "msp430"
HARNESS = re.compile(r"harness__|(^|/)crt0[^/]*\.o$")
SRAM_BYTES, FRAM_BYTES = 8 * 1024, 256 * 1024


def _run(cmd: list[str], what: str, timeout: float = 600) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, timeout=timeout)
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed (exit {proc.returncode})",
                             details=(proc.stderr or proc.stdout).strip().splitlines()[-12:])
    return proc.stdout


def compile_sample(name: str, out: Path) -> dict[str, Any]:
    """``freeml-tx samples/NAME.onnx -o OUT --target msp430fr5994 --data samples/NAME.npz``; the manifest."""
    import contextlib
    import io

    from transpiler import hostrun
    from transpiler.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(["compile", str(REPO / "samples" / f"{name}.onnx"), "-o", str(out), "--target", "msp430fr5994",
                   "--data", str(REPO / "samples" / f"{name}.npz")])
    if rc != 0:
        lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith(("error", "  hint"))]
        raise BudgetError(" ".join(lines) or f"freeml-tx compile {name} failed (exit {rc})")
    return hostrun.load_manifest(out)


def first_float_input(name: str, man: dict[str, Any]) -> dict[str, np.ndarray]:
    """The first sample of samples/NAME.npz by input name (``x`` for a single-input model)."""
    with np.load(REPO / "samples" / f"{name}.npz") as npz:
        names = [p["name"] for p in man["inputs"]]
        if len(names) == 1 and names[0] not in npz.files:
            return {names[0]: np.asarray(npz["x"][:1], dtype=np.float32)}
        return {n: np.asarray(npz[n][:1], dtype=np.float32) for n in names}


def first_input(name: str, man: dict[str, Any]) -> np.ndarray:
    """The first sample of samples/NAME.npz, quantised: int16 [1, in_size]."""
    from transpiler import hostrun

    return hostrun.quantize(man, first_float_input(name, man))[:1]


# --- one C model through main_bench.c ------------------------------------------------------------

def parse_bench_output(text: str, n_out: int, float_out: bool) -> dict[str, Any]:
    """main_bench.c's lines -> outputs (floats or int16), cycles, instructions, stack bytes."""
    ys: dict[int, int] = {}
    res: dict[str, Any] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "y":
            ys[int(parts[1])] = int(parts[2], 16)
        elif len(parts) == 5 and parts[0] == "run":
            res["cycles"], res["instructions"] = int(parts[2]), int(parts[4])
        elif len(parts) == 2 and parts[0] == "stack":
            res["stack"] = int(parts[1])
    if len(ys) != n_out or "cycles" not in res or "stack" not in res:
        raise ToolchainError("main_bench.c's output is incomplete", details=text.strip().splitlines()[-6:])
    raw = [ys[i] for i in range(n_out)]
    if float_out:
        res["outputs"] = np.array(raw, dtype=np.uint32).view(np.float32).tolist()
    else:
        res["outputs"] = np.array(raw, dtype=np.uint16).view(np.int16).tolist()
    return res


def bench_memory(elf: Path, tc: Msp430Toolchain) -> dict[str, int]:
    """The model's FRAM (code, constants and tables, FRAM data) and static RAM of a main_bench.c build.

    Writable data in ``.upper.data``/``.upper.bss`` (above 64 KiB in a large-model build) would be
    RAM on a device: it counts as static RAM, not as FRAM data.
    """
    from transpiler.msp430_size import classify_owner, measure_elf, parse_link_map

    m = measure_elf(elf, map_file=elf.with_suffix(".map"), toolchain=tc, harness=HARNESS)
    assert m.by_owner is not None
    lm = parse_link_map(elf.with_suffix(".map").read_text())
    upper_rw = sum(i.size for i in lm.inputs if i.output in (".upper.data", ".upper.bss") and i.source
                   and classify_owner(i.source, lm, HARNESS) == "model")
    k = m.by_owner["model"]
    return {"code": k["code"], "constants": k["constants"] + k["descriptors"],
            "fram_data": k["fram_data"] - upper_rw, "static_ram": k["sram"] + upper_rw,
            "elf_fram": m.fram_total, "elf_sram": m.sram_total}


def build_and_run_bench(tc: Msp430Toolchain, work: Path, *, model_objs: list[Path], entry: str, ctype: str,
                        ret: str, n_in: int, n_out: int, input_values: list[str], large: bool, ldscript: Path,
                        crt0: Path, stack: tuple[str, str], timeout: float) -> dict[str, Any]:
    """Link the model objects with main_bench.c, cio.c and the input; run once; returns counts and memory."""
    from transpiler.sim import run_elf

    mflags = ["-mmcu=msp430fr5994", "-O2", *(["-mlarge"] if large else [])]
    inp = work / "harness__input.c"
    rows = ",\n".join("    " + ", ".join(input_values[i:i + 8]) for i in range(0, len(input_values), 8))
    place = " __attribute__((upper))" if large else ""
    inp.write_text(f"#include <stdint.h>\nconst {ctype} bench_input[{n_in}]{place} = {{\n{rows}\n}};\n")
    defs = [f"-DBENCH_ENTRY={entry}", f"-DBENCH_T={ctype}", f"-DBENCH_RET={ret}", f"-DBENCH_IN={n_in}",
            f"-DBENCH_OUT={n_out}", f"-DBENCH_STACK_LO={stack[0]}", f"-DBENCH_STACK_TOP={stack[1]}",
            "-DFX_SIM_COUNTERS"]
    harness = []
    for src, extra in ((EMX_DIR / "main_bench.c", defs), (PLATFORM / "cio.c", []), (inp, [])):
        obj = work / f"harness__{src.stem}.o"
        _run([tc.gcc, *mflags, "-ffreestanding", "-Wall", "-Wextra", "-Werror", "--param=min-pagesize=0",
              "-ffunction-sections", "-fdata-sections", f"-I{PLATFORM}", *extra, "-c", src, "-o", obj],
             f"compiling {src.name}")
        harness.append(obj)
    crt = work / "crt0_bench.o"
    _run([tc.gcc, *mflags, "-c", crt0, "-o", crt], f"assembling {crt0.name}")
    elf = work / "bench.elf"
    _run([tc.gcc, *mflags, "-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments",
          f"-Wl,-Map,{elf.with_suffix('.map')}", "-T", ldscript, crt, *model_objs, *harness, "-lgcc", "-lmul_f5",
          "-o", elf], "linking the bench program")
    t0 = time.monotonic()
    res = run_elf(elf, toolchain=tc, timeout=timeout).check()
    out = parse_bench_output(res.stdout, n_out, ctype == "float")
    out["sim_seconds"] = round(time.monotonic() - t0, 1)
    out["memory"] = bench_memory(elf, tc)
    return out


def ours_bench(tc: Msp430Toolchain, build: Path, man: dict[str, Any], x: np.ndarray, work: Path) -> dict[str, Any]:
    """freeml-tx's package through main_bench.c (the FR5994's fr5994.ld and crt0.S)."""
    large = man["plan"]["memory_model"] == "large"
    m = man["c_name"]
    srcs = [build / f"{m}.c", build / f"{m}_weights.c"] + [build / "runtime" / f for f in man["runtime"]
                                                          if f.endswith(".c")]
    flags = [f for f in MSP430_BASE_CFLAGS] + (["-mlarge"] if large else []) + [
        f"-I{build}", f"-I{build / 'runtime'}", f"-I{build / 'runtime' / 'platform' / 'msp430'}"]
    objs = []
    for s in srcs:
        obj = work / f"model__{s.stem}.o"
        _run([tc.gcc, *flags, "-c", s, "-o", obj], f"compiling {s.name}")
        objs.append(obj)
    return build_and_run_bench(tc, work, model_objs=objs, entry=f"fx_{m}_run", ctype="int16_t", ret="int",
                               n_in=x.size, n_out=int(man["api"]["out_size"]),
                               input_values=[str(int(v)) for v in x.reshape(-1)], large=large,
                               ldscript=PLATFORM / "fr5994.ld", crt0=PLATFORM / "crt0.S",
                               stack=("__sram_used_end", "__stack_top"), timeout=600)


# --- emx-onnx-cgen ------------------------------------------------------------------------------

def emx_command() -> list[str] | None:
    """How to run emx-onnx-cgen, or None when it is not installed."""
    exe = shutil.which("emx-onnx-cgen")
    if exe:
        return [exe]
    try:
        import emx_onnx_cgen  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "emx_onnx_cgen"]


def emx_generate(cmd: list[str], work: Path, sample_onnx: Path, normalized: Path) -> tuple[Path, str, list[str]]:
    """Generate emx C; returns (the .c, the entry function, notes on what was tried)."""
    notes: list[str] = []
    out = work / "emx_model.c"
    base = [*cmd, "compile", "--large-temp-threshold", "0", "--large-weight-threshold", "0",
            "--model-name", "emx_model"]
    proc = subprocess.run([*base, "--input-dim", "batch=1", str(sample_onnx), str(out)], capture_output=True,
                          text=True, check=False, timeout=600)
    if proc.returncode != 0 or not out.is_file():
        reason = next((ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if "FAIL" in ln or "Reason" in ln),
                      f"exit {proc.returncode}")
        notes.append(f"{sample_onnx.name} with --input-dim batch=1: {reason[:160]}")
        proc = subprocess.run([*base, str(normalized), str(out)], capture_output=True, text=True, check=False,
                              timeout=600)
        if proc.returncode != 0 or not out.is_file():
            raise ToolchainError("emx-onnx-cgen could not compile the model",
                                 details=(proc.stdout + proc.stderr).strip().splitlines()[-6:])
        notes.append("used freeml-tx's normalized.onnx (the same float network, batch pinned to 1)")
    m = re.search(r"^void (\w+)\(const float \w+\[restrict 1\]", out.read_text(), re.M)
    if not m:
        raise ToolchainError("cannot find the entry function in emx-onnx-cgen's C",
                             hint="expected `void <name>(const float input[restrict 1]...`")
    return out, m.group(1), notes


def emx_bench(tc: Msp430Toolchain, work: Path, build: Path, man: dict[str, Any], x_float: np.ndarray) -> dict[str, Any]:
    """emx-onnx-cgen's LeNet-5 on the simulator, or {"error": why, "tried": [...]}."""
    cmd = emx_command()
    if cmd is None:
        return {"error": "emx-onnx-cgen is not installed", "tried": ["pip install -e '.[bench]' (emx-onnx-cgen 1.4.0)"]}
    tried: list[str] = []
    try:
        src, entry, notes = emx_generate(cmd, work, REPO / "samples" / "lenet5_mnist.onnx", build / "normalized.onnx")
        tried += notes
        obj = work / "emx_model.o"
        flags = ["-mmcu=msp430fr5994", "-O2", "-mlarge", "-std=gnu11", "-ffreestanding", "-ffunction-sections",
                 "-fdata-sections", f"-I{EMX_DIR / 'shim'}"]
        t0 = time.monotonic()
        _run([tc.gcc, *flags, "-c", src, "-o", obj], "compiling emx-onnx-cgen's C for the MSP430", timeout=1200)
        compile_s = time.monotonic() - t0
        libc = work / "emx_libc.o"
        _run([tc.gcc, *flags, "-c", EMX_DIR / "shim" / "emx_libc.c", "-o", libc], "compiling the libc shim")
        tried.append(f"compiled {src.name} ({src.stat().st_size // 1024} KiB of C) in {compile_s:.0f} s with -O2 "
                     "-mlarge, soft-float from libgcc; weights placed above 64 KiB by bench/msp430_emx/emx_sim.ld")
        res = build_and_run_bench(tc, work, model_objs=[obj, libc], entry=entry, ctype="float", ret="void",
                                  n_in=int(x_float.size), n_out=int(man["api"]["out_size"]),
                                  input_values=[float(v).hex() + "f" if np.isfinite(v) else "0.0f"
                                                for v in x_float.reshape(-1).astype(np.float32)],
                                  large=True, ldscript=EMX_DIR / "emx_sim.ld", crt0=EMX_DIR / "crt0_emx.S",
                                  stack=("__emx_stack_lo", "__emx_stack_top"), timeout=3600)
    except (FreemlError, subprocess.TimeoutExpired, OSError) as exc:
        msg = exc.render() if isinstance(exc, FreemlError) else str(exc)
        return {"error": msg, "tried": tried}
    res["tried"] = tried
    res["entry"] = entry
    return res


def onnx_reference(onnx_path: Path, x_float: np.ndarray) -> np.ndarray:
    """onnxruntime's float output of the model (the emx build must match it)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.asarray(sess.run(None, {name: x_float.astype(np.float32)})[0]).reshape(-1)


# --- the run -----------------------------------------------------------------------------------

def bench_sample(name: str, work: Path) -> dict[str, Any]:
    """Compile, report (sizes, run and steps builds) and summarise one sample."""
    from transpiler.cli.report_cmd import make_report

    out = work / name
    try:
        man = compile_sample(name, out)
    except FreemlError as exc:
        return {"sample": name, "skipped": exc.message}
    x = first_input(name, man)
    rep = make_report(out, x=x, input_note="first sample of the .npz")
    rep["sample"] = name
    rep["build"] = str(out)
    return rep


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def print_sample(r: dict[str, Any]) -> None:
    if "skipped" in r:
        print(f"\n== {r['sample']}: skipped ({r['skipped'][:200]})")
        return
    inf, mem = r["inference"], r["memory"]
    print(f"\n== {r['sample']} ({mem['memory_model']} memory model): {inf['cycles']:,} cycles, "
          f"{inf['instructions']:,} instructions per inference ({inf['ms']['8MHz']} ms at 8 MHz)")
    print(f"   {'#':>3} {'op':9s} {'name':22s} {'MACs':>9} {'cycles':>11} {'instr':>11} {'cyc/MAC':>8} {'ins/MAC':>8}")
    for ly in r["layers"]:
        cpm = f"{ly['cycles_per_mac']:.2f}" if ly["cycles_per_mac"] is not None else "-"
        ipm = f"{ly['instructions_per_mac']:.2f}" if ly["instructions_per_mac"] is not None else "-"
        print(f"   {ly['index']:>3} {ly['op']:9s} {ly['name'][:22]:22s} {ly['macs']:>9,} {ly['cycles']:>11,} "
              f"{ly['instructions']:>11,} {cpm:>8} {ipm:>8}")
    for k in r["kernels"]:
        if k["macs"]:
            print(f"   {k['op']} kernel: {k['cycles_per_mac']:.2f} cycles, {k['instructions_per_mac']:.2f} "
                  f"instructions per MAC ({k['layers']} layers, {k['macs']:,} MACs)")
    print("   memory, model only   ELF        planner   diff")
    for p in r["planner"]:
        if p["total"]:
            print(f"   {p['category'][:20]:20s} {p['elf']:>9,} {p['plan']:>9,}  {100 * p['relative']:.1f}% "
                  + ("ok" if p["agrees"] else "MISS"))
    print(f"   whole ELF: FRAM {mem['fram_total']:,} B, SRAM {mem['sram_total']:,} B static "
          f"(harness {mem['harness_fram']:,} B FRAM, {mem['harness_sram']:,} B SRAM)")


def print_summary(results: list[dict[str, Any]]) -> None:
    print("\n== summary (one inference, first sample of each .npz)")
    print(f"   {'sample':20s} {'cycles':>11} {'instr':>11} {'MACs':>9} {'ins/MAC':>8} {'conv i/MAC':>10} "
          f"{'fc i/MAC':>9} {'FRAM elf/plan':>17} {'SRAM elf/plan':>15}")
    for r in results:
        if "skipped" in r:
            print(f"   {r['sample']:20s} skipped: {r['skipped'][:90]}")
            continue
        inf = r["inference"]
        kern = {k["op"]: k for k in r["kernels"]}
        conv = f"{kern['conv']['instructions_per_mac']:.2f}" if "conv" in kern and kern["conv"]["macs"] else "-"
        fc = f"{kern['fc']['instructions_per_mac']:.2f}" if "fc" in kern and kern["fc"]["macs"] else "-"
        tot = {p["category"].split(" (")[0]: p for p in r["planner"] if p["total"]}
        f_, s_ = tot["FRAM total"], tot["SRAM total"]
        ipm = f"{inf['instructions'] / inf['macs']:.2f}" if inf["macs"] else "-"
        print(f"   {r['sample']:20s} {inf['cycles']:>11,} {inf['instructions']:>11,} {inf['macs']:>9,} {ipm:>8} "
              f"{conv:>10} {fc:>9} {f_['elf']:>8,}/{f_['plan']:<8,} {s_['elf']:>6,}/{s_['plan']:<8,}"
              + ("" if f_["agrees"] and s_["agrees"] else "  MISS > 5%"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", nargs="*", default=list(SAMPLES), help="samples to run (default: all)")
    ap.add_argument("--no-emx", action="store_true", help="skip the emx-onnx-cgen comparison")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    ap.add_argument("--keep", metavar="DIR", help="build in DIR (kept) instead of a temporary folder")
    args = ap.parse_args(argv)
    try:
        tc = find_msp430_toolchain()
    except ToolchainError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    print(f"toolchain: {tc.gcc_version()} ({tc.bin_dir})")
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="fx-bench-msp430-")
    work = Path(args.keep or tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    try:
        for name in args.samples:
            t0 = time.monotonic()
            r = bench_sample(name, work)
            r["seconds"] = round(time.monotonic() - t0, 1)
            results.append(r)
            print_sample(r)
        print_summary(results)
        doc: dict[str, Any] = {"samples": results}
        lenet = next((r for r in results if r.get("sample") == "lenet5_mnist" and "skipped" not in r), None)
        if lenet is not None:
            doc["lenet"] = compare_lenet(tc, work, lenet, emx=not args.no_emx)
        if args.json:
            Path(args.json).write_text(json.dumps(doc, indent=2, default=float))
            print(f"\nwrote {args.json}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


def compare_lenet(tc: Msp430Toolchain, work: Path, lenet: dict[str, Any], emx: bool) -> dict[str, Any]:
    """Fit on the FR5994 (stack measured) and, unless ``emx`` is False, the side-by-side with emx-onnx-cgen."""
    from transpiler import hostrun

    build = Path(lenet["build"])
    man = hostrun.load_manifest(build)
    x = first_input("lenet5_mnist", man)
    ours = ours_bench(tc, build, man, x, _mk(work / "ours_bench"))
    host = hostrun.run_raw(hostrun.build(build, cc="gcc"), man, x)[0].tolist()
    ours["matches_host"] = ours["outputs"] == host
    if ours["instructions"] != lenet["inference"]["instructions"]:
        ours["note"] = (f"main_sim.c's run line: {lenet['inference']['instructions']:,} instructions "
                        f"(a different call site)")
    mem = lenet["memory"]
    sram_need = ours["memory"]["static_ram"] + ours["stack"]
    fits = (mem["sram_total"] + ours["stack"] <= SRAM_BYTES and mem["fram_total"] <= FRAM_BYTES
            and mem["lower_fram"] <= 0xBF80)
    print("\n== lenet5_mnist on the MSP430FR5994 (8 KiB SRAM, 256 KiB FRAM)")
    print(f"   SRAM: activation arena {ours['memory']['static_ram']:,} B + stack peak {ours['stack']:,} B = "
          f"{sram_need:,} B of 8,192 B; the whole program (CIO buffer included) "
          f"{mem['sram_total'] + ours['stack']:,} B")
    print(f"   FRAM: {mem['fram_total']:,} B of 262,144 B (lower FRAM {mem['lower_fram']:,} of 49,024 B, HIFRAM "
          f"{mem['hifram']:,} B); {len(mem['problems']) and '; '.join(mem['problems']) or 'fits'}")
    print(f"   fits: {'yes' if fits else 'NO'}; outputs of the bench build == host build: {ours['matches_host']}")
    doc: dict[str, Any] = {"ours": ours, "fits_fr5994": fits, "sram_needed": sram_need}
    if not emx:
        return doc
    x_float = first_float_input("lenet5_mnist", man)[man["inputs"][0]["name"]]
    print("\n== emx-onnx-cgen 1.4.0 (float C) vs freeml-tx (Q15 C), LeNet-5, one inference on the simulator")
    e = emx_bench(tc, _mk(work / "emx"), build, man, x_float)
    doc["emx"] = e
    for note in e.get("tried", []):
        print(f"   emx: {note}")
    if "error" in e:
        print(f"   emx-onnx-cgen build not measured: {e['error']}")
        return doc
    ref = onnx_reference(build / "normalized.onnx", x_float)
    e["max_abs_error_vs_onnxruntime"] = float(np.max(np.abs(np.asarray(e["outputs"]) - ref)))
    ours_real = np.asarray(ours["outputs"], dtype=np.float64) * 2.0 ** -int(man["outputs"][0]["q"])
    ours["max_abs_error_vs_onnxruntime"] = float(np.max(np.abs(ours_real - ref)))
    em, om = e["memory"], ours["memory"]
    rows = [
        ("instructions per inference", e["instructions"], ours["instructions"]),
        ("cycles per inference", e["cycles"], ours["cycles"]),
        ("RAM: static data", em["static_ram"], om["static_ram"]),
        ("RAM: stack peak", e["stack"], ours["stack"]),
        ("RAM total", em["static_ram"] + e["stack"], om["static_ram"] + ours["stack"]),
        ("FRAM: code", em["code"], om["code"]),
        ("FRAM: constants and tables", em["constants"], om["constants"]),
        ("FRAM: activations", em["fram_data"], om["fram_data"]),
        ("FRAM total", em["code"] + em["constants"] + em["fram_data"], om["code"] + om["constants"] + om["fram_data"]),
    ]
    print(f"   {'':30s} {'emx-onnx-cgen':>15} {'freeml-tx':>13} {'ratio':>8}")
    for label, a, b in rows:
        ratio = f"{a / b:.1f}x" if b else "-"
        print(f"   {label:30s} {a:>15,} {b:>13,} {ratio:>8}")
    print(f"   max |output - onnxruntime|: emx {e['max_abs_error_vs_onnxruntime']:.2e}, freeml-tx "
          f"{ours['max_abs_error_vs_onnxruntime']:.2e} (Q{man['outputs'][0]['q']} output)")
    print(f"   emx fits the FR5994: {'yes' if em['static_ram'] + e['stack'] <= SRAM_BYTES and rows[-1][1] <= FRAM_BYTES else 'no'}"
          f" (needs {_kib(em['static_ram'] + e['stack'])} RAM, {_kib(rows[-1][1])} FRAM); simulated in "
          f"{e['sim_seconds']} s")
    return doc


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


if __name__ == "__main__":
    sys.exit(main())

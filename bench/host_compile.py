"""Front-end and host back-end figures per sample (issues "Core" and "Fixed-point LIR and C backend").

Prints, for every sample model in samples/:
  - `freeml-tx inspect` wall time (target: under 3 s each),
  - `freeml-tx MODEL -o DIR --data` compile time (target: under 3 s for lenet5_mnist),
  - generated code and data sizes (host object sizes of <model>.c and <model>_weights.c),
  - host instructions per inference in the run function under valgrind --tool=callgrind
    (inclusive cost of fx_<model>_run for one input, divided by the number of inputs).

Run: python bench/host_compile.py [--samples lenet5_mnist,cnn_digits] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    _run(cmd)
    return time.perf_counter() - t0


def _object_sizes(build: Path, model: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name in (f"{model}.c", f"{model}_weights.c"):
        obj = build / (name[:-2] + ".bench.o")
        _run(["cc", "-std=c99", "-O2", "-c", str(build / name), "-I", str(build), "-I", str(build / "runtime"),
              "-o", str(obj)])
        out = _run(["size", "-A", str(obj)]).stdout
        text = data = 0
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                if parts[0].startswith(".text"):
                    text += int(parts[1])
                elif parts[0].startswith((".rodata", ".data", ".bss")):
                    data += int(parts[1])
        sizes[name] = text + data
        sizes[name + ":text"] = text
    return sizes


def _callgrind_per_inference(build: Path, model: str, x: np.ndarray) -> float | None:
    if shutil.which("valgrind") is None:
        return None
    from transpiler.hostrun import load_manifest
    from transpiler.lir.qio import quantize_array

    man = load_manifest(build)
    port = man["inputs"][0]
    q = quantize_array(x.astype(np.float32), int(port["q"]))
    raw = build / "bench_in.raw"
    q.astype("<i2").tofile(raw)
    exe = build / f"{model}_host"
    out_file = build / "callgrind.out"
    func = f"fx_{model}_run"
    _run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", f"--toggle-collect={func}",
          str(exe), str(raw), str(build / "bench_out.raw"), str(len(x))])
    summary = _run(["callgrind_annotate", str(out_file)]).stdout
    for line in summary.splitlines():
        if "PROGRAM TOTALS" in line:
            return int(line.split()[0].replace(",", "")) / len(x)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default="", help="comma-separated sample names (default: all)")
    ap.add_argument("--keep", default=None, help="keep build dirs under this directory")
    args = ap.parse_args()
    names = [n for n in args.samples.split(",") if n] or sorted(p.stem for p in SAMPLES.glob("*.onnx"))
    work = Path(args.keep or tempfile.mkdtemp(prefix="fx-bench-"))
    rows = []
    for name in names:
        onnx_path, data = SAMPLES / f"{name}.onnx", SAMPLES / f"{name}.npz"
        row: dict[str, object] = {"sample": name}
        row["inspect_s"] = round(_timed([sys.executable, "-m", "transpiler", "inspect", str(onnx_path)]), 2)
        build = work / name
        shutil.rmtree(build, ignore_errors=True)
        cmd = [sys.executable, "-m", "transpiler", str(onnx_path), "-o", str(build), "--json"]
        if data.exists():
            cmd += ["--data", str(data)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        row["compile_s"] = round(time.perf_counter() - t0, 2)
        if proc.returncode != 0:
            row["error"] = proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else "failed"
            rows.append(row)
            continue
        model = json.loads((build / "manifest.json").read_text())["c_name"]
        _run(["make", "-C", str(build), "-s"])
        sizes = _object_sizes(build, model)
        row["code_bytes"] = sizes[f"{model}.c:text"]
        row["weights_obj_bytes"] = sizes[f"{model}_weights.c"]
        if data.exists():
            x = np.load(data)["x"][:20]
            instr = _callgrind_per_inference(build, model, x)
            row["host_instr_per_inference"] = None if instr is None else int(instr)
        rows.append(row)
    cols = ["sample", "inspect_s", "compile_s", "code_bytes", "weights_obj_bytes", "host_instr_per_inference"]
    print("  ".join(f"{c:>24}" for c in cols))
    for row in rows:
        print("  ".join(f"{str(row.get(c, '-')):>24}" for c in cols) + (f"  ERROR {row['error']}" if "error" in row else ""))
    print("targets: inspect < 3 s per sample; compile lenet5_mnist < 3 s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

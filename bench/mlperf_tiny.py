"""The MLPerf Tiny reference models through freeml-tx: compile, memory, agreement with onnxruntime on the
original model, and (``--sim``) cycles on the MSP430FR5994 simulator and outputs under power failures.

    python bench/mlperf_tiny.py                                   # four models x three exports, host
    python bench/mlperf_tiny.py --only kws resnet8 --sim          # + the simulator
    python bench/mlperf_tiny.py --only ad --unbounded             # also without the FRAM budget (host)

The models are the torch sweep's ``tiny_*`` nets (bench/exporter_cases/torch_nets.py, at the reference
sizes; briefly trained on synthetic class templates, torch_cases.TRAINED_NETS), exported by the legacy
exporter at opsets 13 (dynamic batch) and 17 (batch 1) and by dynamo at opset 18, with their 200 samples;
a classifier's data.npz also holds the template labels (``y``: SparseComp judges its drop on them).

Per export: ``freeml-tx model.onnx -o build --data data.npz --json`` at the device budget (8 KiB SRAM,
256 KiB FRAM; a model whose Q15 parameters and activations do not fit is compressed by SparseComp) and its
wall time, ``make``, ``freeml-tx verify``, ``freeml-tx run`` and the C against onnxruntime on the original
model: top-1 agreement (a classifier) or R^2 and max abs error (the autoencoder). ``--unbounded``: the same
at ``--fram 4MiB`` (no compression; the host only: no such device). ``--sim`` (the legacy opset-13 export):
``--target msp430fr5994``, ``make msp430``, cycles per inference on ``--sim-samples`` inputs; then the
package for intermittent power (``--cycles-per-power-cycle 50000``) without failures
and with random failures every budget-2 x budget cycles: the outputs must be identical. Needs torch,
onnxscript and (``--sim``) the msp430-elf toolchain. A benchmark, run on demand: never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.exporter_cases.torch_cases import AUTOENCODERS, TRAINED_NETS, export_torch  # noqa: E402
from bench.exporters import reference_outputs  # noqa: E402

MODELS = {"kws": "tiny_kws_dscnn", "resnet8": "tiny_ic_resnet8", "vww": "tiny_vww_mobilenet",
          "ad": "tiny_ad_autoencoder"}
EXPORTS = (("legacy", 13, "dynamic"), ("legacy", 17, "1"), ("dynamo", 18, "dynamic"))
POWER_BUDGET = 50_000
"""Cycles per power cycle of the intermittent package (ResNet-8's 3x3 convs, whose output rows need more
than the 40,000 cycles this budget leaves, run in column units: passes/tile.py)."""
TIMEOUT_S = 3600


def _tx(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m transpiler ARGS`` in ``cwd`` with this repository first on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "transpiler", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


def _checked(done: subprocess.CompletedProcess[str], what: str) -> str:
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what}: exit {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def export(net: str, exporter: str, opset: int, batch: str, folder: Path) -> dict[str, np.ndarray]:
    """Export ``net`` into ``folder`` (model.onnx, data.npz with labels for a classifier); its inputs."""
    from bench.exporter_cases.torch_nets import NETS, template_data

    exported = export_torch(net, exporter, opset, batch)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(exported.proto, str(folder / "model.onnx"))
    data = dict(exported.inputs)
    if net not in AUTOENCODERS:
        data["y"] = template_data(NETS[net][1], TRAINED_NETS[net][0], len(next(iter(data.values()))), seed=1)[1]
    np.savez(folder / "data.npz", **data)
    return exported.inputs


def agreement(c: np.ndarray, original: np.ndarray, regressor: bool) -> str:
    """Top-1 agreement (a classifier) or R^2 and the max abs error relative to the largest value."""
    if regressor:
        r2 = 1.0 - float(((c - original) ** 2).sum()) / float(((original - original.mean(axis=0)) ** 2).sum())
        return f"R^2 {100 * r2:.3f} %, max err {np.abs(c - original).max() / np.abs(original).max():.3f}"
    return f"top-1 {100 * float(np.mean(c.argmax(axis=1) == original.argmax(axis=1))):.1f} %"


def host_row(net: str, folder: Path, inputs: dict[str, np.ndarray], extra: list[str], out: str) -> dict[str, Any]:
    """Compile (timed), make, verify and run ``folder/model.onnx`` into ``folder/out``; the figures."""
    start = time.perf_counter()
    done = _tx(["model.onnx", "-o", out, "--data", "data.npz", "--json", *extra], folder)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        return {"status": "rejected" if done.returncode == 2 else "crash", "compile_s": seconds,
                "reason": " | ".join(done.stderr.strip().splitlines()[:2])}
    report = json.loads(done.stdout)
    _checked(subprocess.run(["make", "-s", "-C", out], cwd=folder, capture_output=True, text=True, check=False),
             "make")
    verdict = json.loads(_tx(["verify", out, "--data", "data.npz", "--json"], folder).stdout)
    _checked(_tx(["run", out, "--input", "data.npz", "--output", f"{out}_outputs.npz"], folder), "run")
    with np.load(folder / f"{out}_outputs.npz") as saved:
        c = saved[saved.files[0]].reshape(len(next(iter(inputs.values()))), -1).astype(np.float64)
    original = next(iter(reference_outputs(onnx.load(str(folder / "model.onnx")), inputs).values()))
    fram = report["fram"]
    compression = report.get("compression") or {}
    return {"status": "ok" if verdict["pass"] else "WRONG (verify)", "compile_s": seconds,
            "fram_bytes": sum(fram[k] for k in ("weights", "biases", "descriptors", "activations",
                                                "hifram_activations")),
            "hifram_activations": fram["hifram_activations"], "sram_peak": report["sram"]["peak_activations"],
            "parameters": report["parameters"], "compressed": bool(compression),
            "vs_original": agreement(c, original.astype(np.float64), net in AUTOENCODERS),
            "verify": min(row.get("agreement", 1.0) for row in verdict["outputs"])}


def sim_row(net: str, folder: Path, samples: int) -> dict[str, Any]:
    """The legacy opset-13 export on the simulator: cycles per inference (continuous power), memory of
    the ELF, and the intermittent package's outputs with and without power failures."""
    x = np.load(folder / "data.npz")
    np.save(folder / "sim_x.npy", x[[k for k in x.files if k != "y"][0]][:samples])
    _checked(_tx(["model.onnx", "-o", "msp", "--data", "data.npz", "--target", "msp430fr5994"], folder), "compile")
    _checked(subprocess.run(["make", "-s", "-C", "msp", "msp430"], cwd=folder, capture_output=True, text=True,
                            check=False), "make msp430")
    ran = _checked(_tx(["run", "msp", "--on", "sim", "--input", "sim_x.npy", "--output", "msp_y.npy"], folder),
                   "run --on sim")
    cycles = int(re.search(r"([\d,]+) cycles, [\d,]+ instructions per inference", ran)   # type: ignore[union-attr]
                 .group(1).replace(",", ""))
    report = json.loads(_checked(_tx(["report", "msp", "--no-run", "--json"], folder), "report"))
    model = report["memory"]["by_owner"]["model"]
    budget = POWER_BUDGET
    _checked(_tx(["model.onnx", "-o", "pf", "--data", "data.npz", "--target", "msp430fr5994",
                  "--cycles-per-power-cycle", str(budget)], folder), "compile (intermittent)")
    _checked(_tx(["run", "pf", "--on", "sim", "--input", "sim_x.npy", "--output", "pf_y.npy"], folder), "run pf")
    failed = _checked(_tx(["run", "pf", "--on", "sim", "--input", "sim_x.npy", "--output", "pf_fail_y.npy",
                           "--power-fail", f"random:7:{budget}:{2 * budget}", "--max-failures", "100000"], folder),
                      "run pf --power-fail")
    failures = int(re.search(r"counted in cycles\): (\d+)", failed).group(1))   # type: ignore[union-attr]
    same = np.array_equal(np.load(folder / "pf_y.npy"), np.load(folder / "pf_fail_y.npy"))
    fram = model["code"] + model["constants"] + model["descriptors"] + model["fram_data"]
    return {"cycles": cycles, "budget": budget, "fram": fram,
            "sram": model["sram"], "power_failures": failures, "identical": same,
            "continuous_equals_intermittent": np.array_equal(np.load(folder / "msp_y.npy"),
                                                             np.load(folder / "pf_y.npy"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(MODELS), help="these models (default: all four)")
    parser.add_argument("--unbounded", action="store_true", help="also compile at --fram 4MiB (host)")
    parser.add_argument("--sim", action="store_true", help="also run the legacy opset-13 export on the simulator")
    parser.add_argument("--sim-samples", type=int, default=2, metavar="N", help="simulated inputs (default 2)")
    parser.add_argument("--keep", metavar="DIR", help="keep the folders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failed = False
    with tempfile.TemporaryDirectory(prefix="freeml-mlperf-tiny-") as scratch:
        root = Path(args.keep or scratch)
        for key in args.only or list(MODELS):
            net = MODELS[key]
            for exporter, opset, batch in EXPORTS:
                folder = root / f"{net}-{exporter}{opset}"
                inputs = export(net, exporter, opset, batch, folder)
                budgets = [("device", [], "build")] + ([("4MiB", ["--fram", "4MiB"], "big")] if args.unbounded
                                                       else [])
                for label, extra, out in budgets:
                    row = host_row(net, folder, inputs, extra, out)
                    failed |= row["status"] not in ("ok", "rejected")
                    print(f"{net:<20} {exporter}{opset:<3} {label:<7} " + ", ".join(
                        f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
                if args.sim and (exporter, opset) == ("legacy", 13):
                    sim = sim_row(net, folder, args.sim_samples)
                    failed |= not sim["identical"]
                    print(f"{net:<20} msp430 cycles/inference {sim['cycles']:,}; "
                          f"at {sim['budget']:,} cycles per power cycle "
                          f"power failures "
                          f"{sim['power_failures']} over {args.sim_samples} inputs, outputs identical: "
                          f"{sim['identical']}; continuous == intermittent: {sim['continuous_equals_intermittent']}; "
                          f"ELF: model FRAM {sim['fram']:,} B, SRAM {sim['sram']:,} B", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

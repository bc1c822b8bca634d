#!/usr/bin/env python3
"""Compile, build and verify every exported model in a folder; compare the C with the ORIGINAL model.

    python tools/check_exports.py build/keras [--only PATTERN] [--limit N] [--json out.json]

For each ``<kind>_op<opset>_b<batch>.onnx`` (as tools/keras_models.py writes them, with
``<kind>.npz`` beside it) this runs ``freeml-tx MODEL -o build --data d.npz``, ``make -C build``
and ``freeml-tx verify build --data d.npz`` (the C vs onnxruntime on normalized.onnx), and then
compares the C's outputs with onnxruntime on the original model: top-1 agreement and the max abs
error of every original output (a final Softmax/LogSoftmax/Sigmoid that `lower` dropped is applied
to the C's logits first). Each model is classified

- ``ok``: compiles, verify passes, top-1 agreement with the original >= 99.5 % and the max abs
  error within 5 % of the largest |reference| (what verify judges by);
- ``rejected``: the compile exits 2 with a FreemlError (the first line of the message is shown);
- ``crash``: any other failure (traceback, make error, a run that does not finish);
- ``WRONG``: it runs but disagrees with the original (the figures are shown).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIN_AGREEMENT = 0.995
MAX_ERROR = 0.05


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "transpiler", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900)


def _final_function(model_path: Path, output: str) -> tuple[str, str] | None:
    """(op, input) of a final Softmax/LogSoftmax/Sigmoid writing ``output`` in normalized.onnx."""
    import onnx

    for node in onnx.load(str(model_path)).graph.node:
        if output in node.output and node.op_type in ("Softmax", "LogSoftmax", "Sigmoid"):
            return node.op_type, node.input[0]
    return None


def _apply(op: str, z: np.ndarray) -> np.ndarray:
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return np.exp(shifted - log_sum) if op == "Softmax" else shifted - log_sum


def against_original(model_path: Path, build: Path, data: Path, limit: int | None) -> dict[str, Any]:
    """The C (host build of ``build``) vs onnxruntime on the original model, per original output."""
    from transpiler import ort
    from transpiler.cli.run_cmd import execute
    from transpiler.data import input_specs, load_dataset
    from transpiler.loader import load

    normalized = build / "normalized.onnx"
    ds = load_dataset(str(data), input_specs(load(str(normalized)).graph))
    if limit is not None:
        ds = ds.take(limit)
    _man, _raw, c_real = execute(str(build), ds.inputs)
    import onnx

    original = onnx.load(str(model_path))
    session = ort.session(original, source=str(model_path))
    names = [o.name for o in original.graph.output]
    raw = np.load(data)
    feed_name = original.graph.input[0].name
    x = raw["x"][: len(ds)].astype(np.float32)
    ref = {k: [] for k in names}
    for i in range(len(x)):
        for k, v in zip(names, session.run(names, {feed_name: x[i:i + 1]})):
            ref[k].append(np.asarray(v, dtype=np.float64).reshape(-1))
    rows = {}
    for name in names:
        want = np.stack(ref[name])
        if name in c_real:
            got = c_real[name].reshape(len(x), -1).astype(np.float64)
        else:
            final = _final_function(normalized, name)
            if final is None or final[1] not in c_real:
                rows[name] = {"error": "no C output for it"}
                continue
            got = _apply(final[0], c_real[final[1]].reshape(len(x), -1).astype(np.float64))
        err = np.abs(got - want)
        rows[name] = {"agreement": float((got.argmax(axis=1) == want.argmax(axis=1)).mean()) if want.shape[1] > 1
                      else 1.0, "max_abs_error": float(err.max()), "max_abs_reference": float(np.abs(want).max())}
    return rows


def check(model_path: Path, work: Path, limit: int | None) -> dict[str, Any]:
    """Classify one model (see the module docstring)."""
    kind = model_path.name.split("_op")[0]
    data = model_path.with_name(f"{kind}.npz")
    build = work / model_path.stem
    result: dict[str, Any] = {"model": model_path.name}
    shutil.rmtree(build, ignore_errors=True)
    compiled = _cli(str(model_path), "-o", str(build), "--data", str(data), cwd=work)
    if compiled.returncode == 2 and "Traceback" not in compiled.stderr:
        message = (compiled.stderr or compiled.stdout).strip()
        return {**result, "status": "rejected", "detail": message}
    if compiled.returncode != 0:
        return {**result, "status": "crash", "detail": (compiled.stderr or compiled.stdout).strip()[-3000:]}
    made = subprocess.run(["make", "-s", "-C", str(build)], text=True, capture_output=True)
    if made.returncode != 0:
        return {**result, "status": "crash", "detail": "make: " + made.stderr.strip()[-2000:]}
    args = ["verify", str(build), "--data", str(data), "--json"] + (["--limit", str(limit)] if limit else [])
    verified = _cli(*args, cwd=work)
    try:
        report = json.loads(verified.stdout)
    except json.JSONDecodeError:
        return {**result, "status": "crash", "detail": "verify: " + verified.stderr.strip()[-2000:]}
    result["verify"] = {r["output"]: {k: r.get(k) for k in ("agreement", "max_abs_error", "error_bound")}
                        for r in report["outputs"]}
    try:
        result["original"] = against_original(model_path, build, data, limit)
    except Exception as exc:  # noqa: BLE001 - a crash of the comparison is a finding to report
        return {**result, "status": "crash", "detail": f"comparison with the original: {exc!r}"}
    bad = [n for n, r in result["original"].items()
           if "error" in r or r["agreement"] < MIN_AGREEMENT or r["max_abs_error"] > MAX_ERROR * max(
               r["max_abs_reference"], 1e-9) + 2e-3]
    status = "ok" if report["pass"] and not bad else "WRONG"
    return {**result, "status": status, "detail": "" if status == "ok" else
            f"verify {'passes' if report['pass'] else 'FAILS'}; off vs original: {bad}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--only", default="*", help="glob over the model file names")
    parser.add_argument("--limit", type=int, default=None, help="only the first N samples")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    args = parser.parse_args()
    folder = args.folder.resolve()
    work = folder / "builds"
    work.mkdir(exist_ok=True)
    results = []
    for path in sorted(folder.glob("*.onnx")):
        if not fnmatch.fnmatch(path.name, args.only):
            continue
        r = check(path, work, args.limit)
        results.append(r)
        line = r["detail"].splitlines()[0] if r["detail"] else ""
        figures = "; ".join(f"{n}: top-1 {100 * v['agreement']:.1f}% max err {v['max_abs_error']:.3g}"
                            for n, v in r.get("original", {}).items() if "agreement" in v)
        print(f"{r['status']:9s} {path.name:44s} {figures} {line}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    counts = {s: sum(r["status"] == s for r in results) for s in ("ok", "rejected", "crash", "WRONG")}
    print(" ".join(f"{k} {v}" for k, v in counts.items()))
    return 0 if counts["crash"] == counts["WRONG"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

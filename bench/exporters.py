"""Exporter sweep: models from torch (legacy and dynamo), skl2onnx, Keras (tf2onnx) and hand-made graphs
through the command line, the generated C compared with onnxruntime on the ORIGINAL model.

    python bench/exporters.py                               # every case (38 min on one core)
    python bench/exporters.py --only dynamo skl17 --jobs 2  # the cases whose name contains a word
    python bench/exporters.py --only h_ --keep /tmp/sweep   # keep each case's folder

The cases (``bench/exporter_cases/``) cover exporters x opsets x batch forms (dynamic, 1, 8) x
model kinds (CNNs, 1-D convs, MLPs, linear models, pipelines, regressors, unsupported ops). Per
case, in its own folder: the export writes ``model.onnx`` and ``data.npz`` (200 samples), then

1. ``freeml-tx model.onnx -o build --data data.npz`` (exit 2, a clear error: ``rejected``; any
   other failure, an internal error or a timeout: ``crash``),
2. ``make -C build`` (a failure: ``crash``),
3. ``freeml-tx verify build --data data.npz --json`` (the C against onnxruntime on the normalized
   model; below its thresholds: ``WRONG``),
4. ``freeml-tx run build --input data.npz --output outputs.npz`` and the comparison of every C
   output with onnxruntime on the original model (``WRONG`` when one disagrees; see
   :func:`compare_outputs`). Samples whose decision-tree walk meets a threshold within an input
   LSB are left out, as ``verify`` leaves them out (transpiler/lir/trees.py).

``export-failed``: the exporter raised, or onnxruntime cannot run what it wrote (then there is no
reference); ``skipped``: a package the case needs (torch, onnxscript, scikit-learn, skl2onnx,
tensorflow, tf2onnx, ...) is not installed. The commands run as ``python -m transpiler`` with this repository first on PYTHONPATH.

Printed: a line per case as it finishes, then a table per exporter (ok / rejected / crash / WRONG /
export-failed / skipped) and one line per case that is not ok with its reason. Exit status 1 when
a case crashed or is WRONG. A benchmark, run on demand: not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.exporter_cases import Case, ExportedModel, all_cases  # noqa: E402
from transpiler.cli.verify_cmd import tree_boundary  # noqa: E402

STATUSES = ("ok", "rejected", "crash", "WRONG", "export-failed", "skipped")
FAILING = ("crash", "WRONG")
"""Statuses that make the exit status non-zero."""

COMMAND_TIMEOUT_S = 600
AGREEMENT = 0.995
"""Top-1 agreement with the original model an output needs ..."""
NEAR_TIE_AGREEMENT = 0.98
"""... or at least this much when every disagreement is a near tie:"""
NEAR_TIE = 0.02
"""a sample whose two best original scores are closer than this fraction of the output's range."""
VALUE_ERROR = 0.03
"""Largest abs error of a regressor's (or a one-column) output, as a fraction of its largest |value|."""
COMPRESSED_SLACK = 2.0
"""A model SparseComp compressed (its pipeline has ``sparsify{max-drop=D}``) is another function than the
original by design: against the original it must keep top-1 agreement, or a regressor's R^2 (in %), within
COMPRESSED_SLACK x D points (SparseComp bounds the drop on its validation split, a few dozen samples)."""


@dataclass
class Outcome:
    """What happened to one case; ``reason`` says why it is not ok."""

    name: str
    exporter: str
    opset: int
    batch: str
    status: str
    reason: str = ""
    seconds: float = 0.0


class Failed(Exception):
    """A step of a case ended it: ``status`` and ``reason`` for its :class:`Outcome`."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --------------------------------------------------------------------------- onnxruntime reference
def reference_outputs(proto: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime's outputs of the original model, ``[n, values]`` per output name, one sample at a
    time: each input cast to its graph type and repeated to the graph's fixed batch (then the first
    row is kept); a ZipMap's list of dicts becomes its values by sorted key."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    dtypes = {"tensor(double)": np.float64, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32}
    rows: dict[str, list[np.ndarray]] = {}
    n = next(iter(inputs.values())).shape[0]
    for i in range(n):
        feeds = {}
        fixed_batch = 1
        for meta in session.get_inputs():
            batch = meta.shape[0] if meta.shape and isinstance(meta.shape[0], int) else 1
            fixed_batch = max(fixed_batch, batch)
            feeds[meta.name] = np.repeat(inputs[meta.name][i:i + 1], batch, axis=0).astype(
                dtypes.get(meta.type, np.float32))
        for meta, value in zip(session.get_outputs(), session.run(None, feeds)):
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = [[row[k] for k in sorted(row)] for row in value]
            array = np.asarray(value)
            if fixed_batch > 1 and array.ndim and array.shape[0] == fixed_batch:
                array = array[:1]
            rows.setdefault(meta.name, []).append(array.reshape(-1))
    return {name: np.stack(values) for name, values in rows.items()}


# --------------------------------------------------------------------------- comparison
def _top1(c: np.ndarray, reference: np.ndarray) -> str | None:
    """None when the C scores pick the original's class (see AGREEMENT), else what is wrong. One
    column: the sign of a logit against a probability above 0.5 or a positive score. Where the
    original's largest scores are exactly tied (float32 sigmoids saturated at 1), any of them is its
    class."""
    if c.shape[1] == 1:
        threshold = 0.5 if reference.min() >= 0 else 0.0
        agreement = float(np.mean((c[:, 0] > 0) == (reference[:, 0] > threshold)))
        return None if agreement >= AGREEMENT else f"sign agreement {agreement:.3f}"
    disagree = reference[np.arange(len(c)), c.argmax(axis=1)] < reference.max(axis=1)
    return _judge_disagreements(disagree, reference, "top-1")


def _judge_disagreements(disagree: np.ndarray, scores: np.ndarray | None, what: str) -> str | None:
    """None when few enough samples disagree (AGREEMENT, or NEAR_TIE_AGREEMENT when each one is a
    near tie of the original ``scores``), else what is wrong."""
    agreement = 1.0 - float(disagree.mean())
    if agreement >= AGREEMENT:
        return None
    if scores is None:
        return f"{what} agreement {agreement:.3f}"
    ordered = np.sort(scores, axis=1)
    span = max(float(scores.max() - scores.min()), 1e-9)
    clear = int((disagree & (ordered[:, -1] - ordered[:, -2] > NEAR_TIE * span)).sum())
    if clear == 0 and agreement >= NEAR_TIE_AGREEMENT:
        return None
    return f"{what} agreement {agreement:.3f} ({clear} clear disagreements)"


def compressed_drop(manifest: dict[str, Any]) -> float | None:
    """The ``max-drop`` (points) of the ``sparsify`` pass in the manifest's pipeline; None: not compressed."""
    match = re.search(r"sparsify\{[^}]*max-drop=([0-9.]+)", manifest.get("generator", {}).get("pipeline", ""))
    return float(match.group(1)) if match else None


def _compressed_problem(c: np.ndarray, original: np.ndarray, regressor: bool, drop: float) -> str | None:
    """None when a compressed model's output ``c`` stays within COMPRESSED_SLACK x ``drop`` points of the
    original's: top-1 agreement, or R^2 for a regressor or a one-column output."""
    floor = 100.0 - COMPRESSED_SLACK * drop
    if regressor or c.shape[1] == 1:
        spread = float(((original - original.mean(axis=0)) ** 2).sum())
        r2 = 100.0 * (1.0 - float(((c - original) ** 2).sum()) / max(spread, 1e-12))
        return None if r2 >= floor else f"R^2 {r2:.2f} % < {floor:.2f} % (compressed, max-drop {drop:g})"
    agreement = 100.0 * float(np.mean(c.argmax(axis=1) == original.argmax(axis=1)))
    return (None if agreement >= floor
            else f"top-1 agreement {agreement:.2f} % < {floor:.2f} % (compressed, max-drop {drop:g})")


def compare_outputs(c_outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], manifest: dict[str, Any],
                    regressor: bool) -> list[str]:
    """What disagrees between the C outputs and the original model's (empty: all agree).

    - The class index (the manifest's ``class_output``, mapped through its ``labels``) must equal the
      original's label output (an integer or string column) on AGREEMENT of the samples; without a
      label output it is the argmax of scores checked below.
    - A model SparseComp compressed (:func:`compressed_drop`): each named output by
      :func:`_compressed_problem` instead of the two rules below.
    - An output the original has by name: a regressor's or a one-column one within VALUE_ERROR x
      its largest |value|, any other by top-1 (:func:`_top1`).
    - An output the original does not have is what the compiler kept of a dropped final Softmax,
      LogSoftmax or Sigmoid (or a ZipMap): compared by top-1 with the one original output of its
      shape that the C does not have (of several, the one the manifest's ``softmax`` maps it to, else
      the first not yet paired: the C keeps the order of the graph outputs).
    """
    problems = []
    class_output = manifest.get("class_output")
    softmax = manifest.get("softmax") or {}
    paired: set[str] = set()
    for name, value in c_outputs.items():
        c = value.reshape(value.shape[0], -1).astype(np.float64)
        if name == class_output:
            labels = [r for key, r in reference.items() if r.shape[1] == 1 and r.dtype.kind in "iuUSO"]
            if labels:
                index = c[:, 0].astype(int)
                names = manifest.get("labels")
                predicted = np.array([names[i] for i in index]) if names else index
                disagree = predicted.astype(str) != labels[0][:, 0].astype(str)
                width = len(names) if names else int(index.max()) + 1
                scores = next((r.astype(np.float64) for r in reference.values()
                               if r.dtype.kind == "f" and r.shape == (len(c), width) and width > 1), None)
                problem = _judge_disagreements(disagree, scores, "label")
                if problem:
                    problems.append(f"{name}: {problem}")
            continue
        if name not in reference:
            same_shape = [key for key, r in reference.items()
                          if r.shape == c.shape and key not in c_outputs and key not in paired]
            if len(same_shape) > 1:     # several heads of one shape: a dropped Softmax says its own, else in order
                same_shape = [softmax.get(name, same_shape[0])]
            if len(same_shape) != 1:
                problems.append(f"{name}: no original output of shape {list(c.shape)} (original: {sorted(reference)})")
                continue
            paired.add(same_shape[0])
            problem = _top1(c, reference[same_shape[0]].astype(np.float64))
            if problem:
                problems.append(f"{name} vs {same_shape[0]}: {problem}")
            continue
        original = reference[name].astype(np.float64)
        drop = compressed_drop(manifest)
        if original.shape != c.shape:
            problems.append(f"{name}: shape {list(c.shape)}, original {list(original.shape)}")
        elif drop is not None:
            problem = _compressed_problem(c, original, regressor, drop)
            if problem:
                problems.append(f"{name}: {problem}")
        elif regressor or c.shape[1] == 1:
            error = float(np.abs(c - original).max() / max(float(np.abs(original).max()), 1e-6))
            if error >= VALUE_ERROR:
                problems.append(f"{name}: max abs error {error:.3f} of its largest value")
        else:
            problem = _top1(c, original)
            if problem:
                problems.append(f"{name}: {problem}")
    return problems


# --------------------------------------------------------------------------- one case
def _freeml_tx(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m transpiler ARGS`` in ``cwd`` with this repository first on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return _command([sys.executable, "-m", "transpiler", *args], cwd, env)


def _command(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; a timeout ends the case as a crash."""
    try:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise Failed("crash", f"{' '.join(argv[-4:])}: no answer after {COMMAND_TIMEOUT_S} s") from exc


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


def _compile(folder: Path) -> None:
    """Step 1; exit 2 with the error's first lines is a rejection, anything else but 0 a crash."""
    done = _freeml_tx(["model.onnx", "-o", "build", "--data", "data.npz"], folder)
    (folder / "compile.log").write_text(done.stdout + done.stderr)
    if done.returncode == 0:
        return
    if done.returncode == 2 and "Traceback" not in done.stderr:
        lines = [line.strip() for line in done.stderr.strip().splitlines()]
        raise Failed("rejected", " | ".join(lines[:2]))
    raise Failed("crash", f"compile exit {done.returncode}: {_last_line(done.stderr)}")


def _verify(folder: Path) -> None:
    """Step 3: the verdict of ``freeml-tx verify``; a top-1 shortfall while every output's values are
    within their error bounds is left to step 4 (its near-tie rule judges the flips on the original's
    scores: a random net's logits tie within the quantization error)."""
    done = _freeml_tx(["verify", "build", "--data", "data.npz", "--json"], folder)
    try:
        verdict = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise Failed("crash", f"verify exit {done.returncode}: {_last_line(done.stderr)}") from exc
    within_bounds = all(row.get("error_bound") is not None and row["max_abs_error"] <= row["error_bound"]
                        for row in verdict["outputs"])
    if verdict["pass"] or within_bounds:
        return
    worst = [f"{row['output']}: agreement {row['agreement']:.3f}" if row.get("agreement", 1.0) < AGREEMENT
             else f"{row['output']}: max abs error {row['max_abs_error']:.3g} > {row['error_bound']:.3g}"
             for row in verdict["outputs"]
             if row.get("agreement", 1.0) < AGREEMENT
             or (row.get("error_bound") is not None and row["max_abs_error"] > row["error_bound"])]
    raise Failed("WRONG", "verify vs normalized.onnx: " + ("; ".join(worst) or "fails"))


def _run_and_compare(folder: Path, exported: ExportedModel, reference: dict[str, np.ndarray]) -> None:
    """Step 4."""
    done = _freeml_tx(["run", "build", "--input", "data.npz", "--output", "outputs.npz"], folder)
    if done.returncode != 0:
        raise Failed("crash", f"run exit {done.returncode}: {_last_line(done.stderr)}")
    with np.load(folder / "outputs.npz") as saved:
        c_outputs = {name: saved[name] for name in saved.files}
    manifest = json.loads((folder / "build" / "manifest.json").read_text())
    boundary = tree_boundary(folder / "build", exported.inputs)
    if boundary is not None and boundary.size and boundary.all():
        raise Failed("WRONG", "every sample meets a tree branch within an input LSB of its threshold")
    if boundary is not None and boundary.any():   # decided by the input's rounding, as verify leaves them out
        c_outputs = {name: value[~boundary] for name, value in c_outputs.items()}
        reference = {name: value[~boundary] for name, value in reference.items()}
    problems = compare_outputs(c_outputs, reference, manifest, exported.regressor)
    if problems:
        raise Failed("WRONG", "vs the original: " + "; ".join(problems))


def run_case(case: Case, folder: Path) -> Outcome:
    """Export, compile, build, verify, run and compare ``case`` in ``folder`` (made here)."""
    outcome = Outcome(case.name, case.exporter, case.opset, case.batch, "ok")
    missing = [package for package in case.requires if find_spec(package) is None]
    if missing:
        outcome.status, outcome.reason = "skipped", f"needs {', '.join(missing)}"
        return outcome
    start = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)    # a --keep folder of an earlier sweep
    folder.mkdir(parents=True)
    try:
        try:
            exported = case.build()
        except Exception as exc:    # the exporter's failure: any exception type
            raise Failed("export-failed", f"{type(exc).__name__}: {_first_line(str(exc))}") from exc
        try:
            reference = reference_outputs(exported.proto, exported.inputs)
        except Exception as exc:    # onnxruntime's own exception types
            raise Failed("export-failed", f"onnxruntime cannot run it: {_first_line(str(exc))}") from exc
        onnx.save(exported.proto, str(folder / "model.onnx"))
        np.savez(folder / "data.npz", **exported.inputs)
        _compile(folder)
        made = _command(["make", "-s", "-C", "build"], folder)
        if made.returncode != 0:
            raise Failed("crash", f"make: {_last_line(made.stdout + made.stderr)}")
        _verify(folder)
        _run_and_compare(folder, exported, reference)
    except Failed as failed:
        outcome.status, outcome.reason = failed.status, failed.reason
    outcome.seconds = round(time.perf_counter() - start, 1)
    return outcome


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


def _run_named_case(name: str, folder: str) -> Outcome:
    """:func:`run_case` by case name (what a worker process receives)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return run_case(next(case for case in all_cases() if case.name == name), Path(folder))


# --------------------------------------------------------------------------- the sweep
def selected_cases(only: list[str] | None) -> list[Case]:
    """Every case, or those whose name contains one of ``only``."""
    return [case for case in all_cases() if not only or any(word in case.name for word in only)]


def run_cases(cases: list[Case], root: Path, jobs: int) -> Iterator[Outcome]:
    """The outcome of every case as it finishes (``jobs`` worker processes; 1: in this process)."""
    if jobs == 1:
        for case in cases:
            yield run_case(case, root / case.name)
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_run_named_case, case.name, str(root / case.name)) for case in cases]
        for future in as_completed(futures):
            yield future.result()


def summary(outcomes: list[Outcome]) -> list[str]:
    """The table per exporter (and all), then one line per case that is not ok."""
    exporters = sorted({o.exporter for o in outcomes})
    width = max([len("exporter"), *map(len, exporters)])
    lines = [f"{'exporter':<{width}} " + " ".join(f"{s:>13}" for s in STATUSES) + f" {'total':>6}"]
    for exporter in [*exporters, "all"]:
        mine = [o for o in outcomes if exporter in ("all", o.exporter)]
        counts = [sum(o.status == status for o in mine) for status in STATUSES]
        lines.append(f"{exporter:<{width}} " + " ".join(f"{n:>13}" for n in counts) + f" {len(mine):>6}")
    rank = {status: i for i, status in enumerate(("crash", "WRONG", "export-failed", "rejected", "skipped"))}
    not_ok = sorted((o for o in outcomes if o.status != "ok"), key=lambda o: (rank[o.status], o.exporter, o.name))
    if not_ok:
        lines.append("")
    lines += [f"{o.status:<13} {o.name}: {o.reason}" for o in not_ok]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="SUBSTR", help="only the cases whose name contains one of these")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="cases run at once (default 1)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep every case's folder (model, data, build, logs) and results.json here "
                             "(default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cases = selected_cases(args.only)
    if not cases:
        parser.error(f"no case name contains any of {args.only}")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="freeml-exporters-") as scratch:
        root = Path(args.keep or scratch)
        root.mkdir(parents=True, exist_ok=True)
        for outcome in run_cases(cases, root, max(1, args.jobs)):
            outcomes.append(outcome)
            print(f"[{len(outcomes):>3}/{len(cases)}] {outcome.status:<13} {outcome.name} ({outcome.seconds} s)",
                  flush=True)
        if args.keep:
            (root / "results.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    print()
    print("\n".join(summary(outcomes)))
    return 1 if any(o.status in FAILING for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())

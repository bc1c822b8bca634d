"""``freeml-tx verify DIR --data d.npz``: the generated C against onnxruntime on a data set.

    freeml-tx verify build/ --data samples/lenet5_mnist.npz --min-agreement 0.995

Every sample runs through the host build of DIR (one process for all of them) and through
onnxruntime on ``DIR/normalized.onnx`` (the float model that was lowered). Per output it prints the
top-1 agreement (argmax equal), the max and mean absolute error of the dequantised C output, and,
when the data has labels ``y``, the accuracy of both (on the samples the file's ``split`` marks
``test`` when it has marks: the others are the model's training or validation images). The class-index output of a classifier is
compared with the argmax of the onnxruntime scores it came from. Every other output is also judged
on its values (what a regressor's output needs: top-1 means nothing there, and a one-column output
has none); a map output (an image, a sequence: more than one axis longer than 1) is judged on its
values alone, since the argmax over all its elements is no class: its max abs error may be at most ``--max-error`` (default 0.05) times its largest
|reference| plus two steps of its Q format. Exit status 1 when an agreement is below
``--min-agreement`` (default 0.995) or an error is above its bound. A package with a gNet also compares every exit: the
class of the C's head after exit k against the argmax of onnxruntime's ``gnet_exit_k``. A sample
whose decision-tree walk meets a branch with the input feature within one input LSB of its
threshold (transpiler/lir/trees.py: there the 16-bit rounding of the input decides the branch) is
counted and left out of the judgement. So is, for the top-1 agreement of one output, a sample whose
C class differs from onnxruntime's while onnxruntime's scores of the two classes are within two steps
of the scores' Q format (a tie at the output's resolution: a near-uniform naive Bayes or a class
boundary through the data); the count is printed as ``ties``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from transpiler.cli.gnet_run import gnet_verify_rows
from transpiler.errors import InputError, Location


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("verify", help="compare the generated C with onnxruntime on data",
                                   description="Run DIR's host build and onnxruntime (normalized.onnx) on every "
                                               "sample; print agreement and errors per output.")
    parser.add_argument("dir", metavar="DIR", help="a folder written by `freeml-tx MODEL.onnx -o DIR`")
    parser.add_argument("--data", required=True, metavar="D.npz", help="inputs (and optional labels y)")
    parser.add_argument("--min-agreement", type=float, default=0.995, metavar="F",
                        help="fail (exit 1) below this top-1 agreement (default 0.995)")
    parser.add_argument("--max-error", type=float, default=0.05, metavar="F",
                        help="fail (exit 1) when an output's max abs error is above F x its largest |reference| "
                             "plus two steps of its Q format (default 0.05)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N samples")
    parser.add_argument("--cc", metavar="CC", help="C compiler for the build (default: $CC or cc)")
    parser.add_argument("--sanitize", action="store_true", help="build and run with ASan + UBSan")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def reference_outputs(model_path: Path, names: list[str], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime values of the tensors `names` for every sample (``[N, ...]`` per name)."""
    import onnx

    from transpiler import ort

    proto = ort.with_outputs(onnx.load(str(model_path)), names)
    sess = ort.session(proto, source=str(model_path))
    n = next(iter(inputs.values())).shape[0]
    rows: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(n):
        feeds = ort.cast_feeds(proto, {k: v[i:i + 1] for k, v in inputs.items()})
        values = sess.run(names, feeds)
        for k, v in zip(names, values):
            rows[k].append(np.asarray(v, dtype=np.float64).reshape(-1))
    return {k: np.stack(v) for k, v in rows.items()}


def _is_map(port: dict[str, Any]) -> bool:
    """Whether an output is a map (more than one axis longer than 1 per sample: an image, a
    sequence of vectors), whose argmax over every element is not a class."""
    shape = [int(d) for d in (port.get("onnx_shape") or [])[1:]]
    return sum(1 for d in shape if d > 1) > 1


def _rows(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` as ``[n, k]`` (also when no sample is left: ``[0, k]``)."""
    return values.reshape(n, -1) if n else values.reshape(0, values.shape[-1] if values.ndim > 1 else 0)


def compare(man: dict[str, Any], c_real: dict[str, np.ndarray], ref: dict[str, np.ndarray],
            labels: np.ndarray | None, accuracy_rows: np.ndarray | None = None,
            max_error: float = 0.05) -> list[dict[str, Any]]:
    """Per-output figures: agreement, errors and their bound (``max_error`` x the largest |reference|
    + two Q steps), accuracy vs labels (over ``accuracy_rows``, a boolean mask of the samples, when
    given: the test split)."""
    results = []
    cls_name = man.get("class_output")
    for pt in man["outputs"]:
        name = pt["name"]
        n = c_real[name].shape[0]
        c = c_real[name].reshape(n, int(pt["size"])).astype(np.float64)
        row: dict[str, Any] = {"output": name, "size": int(pt["size"]), "q": pt["q"], "samples": n}
        if name == cls_name:
            src = man.get("class_source")
            if src not in ref:
                continue
            c_cls = c[:, 0].astype(np.int64)
            scores = _rows(ref[src], n)
            r_cls = scores.argmax(axis=1)
            step = 2.0 ** -int(next((p["q"] for p in man["outputs"] if p["name"] == src), pt["q"]))
            row.update({"kind": "class", "compared_with": f"argmax of '{src}'"})
        else:
            r = ref[name]
            err = np.abs(c - r)
            reference = float(np.abs(r).max()) if r.size else 0.0
            row.update({"kind": "values", "max_abs_error": float(err.max()) if err.size else 0.0,
                        "mean_abs_error": float(err.mean()) if err.size else 0.0,
                        "max_abs_reference": reference,
                        "error_bound": max_error * reference + 2.0 ** (1 - int(pt["q"]))})
            if c.shape[1] < 2 or _is_map(pt):     # no class scores: judged by the values alone
                results.append(row)
                continue
            c_cls, r_cls = c.argmax(axis=1), r.argmax(axis=1)
            scores, step = _rows(r, n), 2.0 ** -int(pt["q"])
        agree = int((c_cls == r_cls).sum())
        ties = int(near_ties(scores, c_cls, r_cls, 2 * step).sum())
        judged = n - ties
        row.update({"agreement": agree / judged if judged else 1.0, "agree": agree, "ties": ties})
        if labels is not None and labels.ndim == 1 and labels.dtype.kind in "iu" and labels.shape[0] == n:
            rows = np.ones(n, dtype=bool) if accuracy_rows is None else accuracy_rows
            if rows.any():
                row["accuracy_c"] = float((c_cls == labels)[rows].mean())
                row["accuracy_onnxruntime"] = float((r_cls == labels)[rows].mean())
                row["accuracy_samples"] = int(rows.sum())
        results.append(row)
    return results


def near_ties(scores: np.ndarray, c_cls: np.ndarray, r_cls: np.ndarray, margin: float) -> np.ndarray:
    """The samples whose C class differs from the reference class while the reference scores of the
    two classes are within ``margin``: a boolean ``[n]`` mask (a C class outside the scores' range:
    never a tie)."""
    rows = np.arange(len(r_cls))
    valid = (c_cls >= 0) & (c_cls < scores.shape[1])
    chosen = scores[rows, np.where(valid, c_cls, 0)]
    return valid & (c_cls != r_cls) & (scores[rows, r_cls] - chosen <= margin)


def tree_boundary(out_dir: Path, inputs: dict[str, np.ndarray]) -> np.ndarray | None:
    """The samples whose tree walks meet a threshold within an input LSB (transpiler/lir/trees.py),
    from the package's final.lir; None without `trees` steps."""
    from transpiler.lir.text import parse_program
    from transpiler.lir.trees import boundary_samples

    lir = out_dir / "final.lir"
    if not lir.is_file() or "step trees " not in (text := lir.read_text()):
        return None
    return boundary_samples(parse_program(text), inputs)


def run(args: argparse.Namespace) -> int:
    from transpiler import hostrun
    from transpiler.cli.run_cmd import execute
    from transpiler.data import input_specs, load_dataset, token_vocab
    from transpiler.loader import load

    out_dir = Path(args.dir)
    man = hostrun.load_manifest(out_dir)
    model_path = out_dir / "normalized.onnx"
    if not model_path.is_file():
        raise InputError("no normalized.onnx to compare with", location=Location(file=str(out_dir)),
                         hint="compile the ONNX model with `freeml-tx MODEL.onnx -o DIR` (build-lir output "
                              "has no float model); `freeml-tx run` still works")
    model = load(str(model_path))
    ds = load_dataset(args.data, input_specs(model.graph), token_vocab(model.graph)).with_classes(man.get("labels"))
    if args.limit is not None:
        ds = ds.take(args.limit)
    _man, _raw, c_real = execute(str(out_dir), ds.inputs, args.cc, args.sanitize)
    names = [pt["name"] for pt in man["outputs"] if pt["name"] != man.get("class_output")]
    if man.get("class_output") and man.get("class_source") and man["class_source"] not in names:
        names.append(man["class_source"])
    ref = reference_outputs(model_path, names, ds.inputs)
    test_rows = None if ds.marks is None else ds.marks == "test"
    labels = ds.labels
    boundary = tree_boundary(out_dir, ds.inputs)
    if boundary is not None and boundary.any():
        keep = ~boundary
        c_real = {k: v[keep] for k, v in c_real.items()}
        ref = {k: v[keep] for k, v in ref.items()}
        labels = None if labels is None else labels[keep]
        test_rows = None if test_rows is None else test_rows[keep]
    results = compare(man, c_real, ref, labels, test_rows, args.max_error)
    results += gnet_verify_rows(out_dir, man, ds.inputs, ds.labels, test_rows, args.cc, args.sanitize)  # gNet exits
    rated = [r for r in results if "agreement" in r]
    worst = min((r["agreement"] for r in rated), default=1.0)
    off = [r for r in results if "error_bound" in r and r["max_abs_error"] > r["error_bound"]]
    # every sample decided by the input's rounding: nothing was judged, and the device's trees
    # follow the float model on none of them (too coarse an input format for the thresholds)
    all_boundary = boundary is not None and bool(boundary.size) and bool(boundary.all())
    ok = worst >= args.min_agreement and not off and not all_boundary
    if args.json:
        print(json.dumps({"dir": str(out_dir), "data": args.data, "samples": len(ds), "outputs": results,
                          "tree_boundary_samples": int(boundary.sum()) if boundary is not None else 0,
                          "min_agreement": args.min_agreement, "max_error": args.max_error, "pass": ok},
                         indent=2, sort_keys=True))
    else:
        print(f"verify {out_dir}/ on {args.data} ({len(ds)} samples): generated C (host) vs onnxruntime "
              f"on normalized.onnx")
        if boundary is not None and boundary.any():
            print(f"  {int(boundary.sum())} sample(s) meet a tree branch with a feature within an input LSB of its "
                  "threshold: the 16-bit input decides that branch (docs/lir.md, \"trees\"); not judged")
        for r in results:
            parts = []
            if "agreement" in r:
                tied = r.get("ties", 0)
                parts.append(f"top-1 agreement {100 * r['agreement']:.2f}% ({r['agree']}/{r['samples'] - tied}"
                             + (f"; {tied} near-tie sample(s) not judged: onnxruntime's two scores within two "
                                f"Q steps" if tied else "") + ")")
            if "max_abs_error" in r:
                parts.append(f"max abs error {r['max_abs_error']:.4g} (bound {r['error_bound']:.4g}), mean abs error "
                             f"{r['mean_abs_error']:.4g} (|reference| <= {r['max_abs_reference']:.4g})")
            if "compared_with" in r:
                parts.append(f"vs {r['compared_with']}")
            print(f"  output '{r['output']}' (q={r['q']}): " + ", ".join(parts))
            if "accuracy_c" in r:
                split = "" if test_rows is None else ", the test split"
                print(f"    accuracy vs labels ({r['accuracy_samples']} samples{split}): C {100 * r['accuracy_c']:.2f}%, "
                      f"onnxruntime {100 * r['accuracy_onnxruntime']:.2f}%")
        verdict = "PASS" if ok else "FAIL"
        below = worst < args.min_agreement
        judged = [f"lowest top-1 agreement {100 * worst:.2f}% ({'<' if below else '>='} "
                  f"{100 * args.min_agreement:.2f}%)"] if rated else []
        judged += [f"output '{r['output']}' max abs error {r['max_abs_error']:.4g} > bound {r['error_bound']:.4g}"
                   for r in off]
        if not off and any("error_bound" in r for r in results):
            judged.append("every output's max abs error within its bound")
        if all_boundary:
            judged.append("no sample judged: every one meets a tree branch within an input LSB of its threshold")
        print(f"{verdict}: " + "; ".join(judged))
    return 0 if ok else 1

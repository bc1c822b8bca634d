"""``freeml-tx run DIR --input x.npy --energy-trace trace.csv``: inferences of a gNet package under an
energy trace (transpiler/gnet_energy.py has the model; main_gnet.c runs it). Also the gNet rows of
``freeml-tx verify`` (:func:`gnet_verify_rows`: every exit of the C against onnxruntime).

    freeml-tx run build/ --input x.npy --energy-trace trace.csv
    freeml-tx run build/ --input test.npz --energy-trace trace.csv --energy-supply cap=22uF,von=3.3V,voff=1.8V,active=1.5mW --energy-period 0.05
    freeml-tx run build/ --on sim --input x.npy --energy-trace trace.csv    # in the MSP430 simulator

On the host (``make gnet``) a step costs its predicted cycles; with ``--on sim`` the program runs in
msp430-elf-run, every simulated cycle of the model costs energy and the power fails at the cycle the
capacitor is empty (transpiler/gnet_sim.py).

Each sample prints which exit answered and its class (``exit k`` of the gNet, ``whole model``, or
``no answer`` when the power failed before exit 1; an inference the power cut short after exit k
answers from exit k after the reboot); then the fraction answered per exit, and with labels (``y``
in an .npz input) the accuracy of the answers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from transpiler.errors import InputError


def add_energy_arguments(parser: argparse.ArgumentParser) -> None:
    """--energy-trace, --energy-supply, --energy-period."""
    parser.add_argument("--energy-trace", metavar="TRACE.csv",
                        help="gNet packages: run the samples on harvested power (CSV rows 'time_s,power_W') and "
                             "print which exit answered each one")
    parser.add_argument("--energy-supply", metavar="SPEC", default=None,
                        help="the capacitor and load for --energy-trace (default "
                             "cap=47uF,von=3.3V,voff=1.8V,active=1.5mW,freq=8MHz)")
    parser.add_argument("--energy-period", type=float, default=0.05, metavar="SECONDS",
                        help="time between two inference requests for --energy-trace (default 0.05)")


def _labels(path: str, n: int, input_names: list[str], classes: list[Any] | None) -> np.ndarray | None:
    """The file's labels as class indices (through the model's class labels ``classes``, if any)."""
    from transpiler.data import class_indices, label_key, read_arrays

    arrays = read_arrays(path, input_names)
    key = label_key(input_names, list(arrays))
    if key is None:
        return None
    y = np.asarray(arrays[key]).reshape(-1)
    if classes is not None and y.size == n:
        y = class_indices(y, classes, path)
    return y.astype(np.int64) if y.size == n and y.dtype.kind in "iu" else None


def _finite(v: np.ndarray) -> list[float | None]:
    """JSON-able times: None where a sample has none (NaN: never requested, or never reported)."""
    return [float(t) if np.isfinite(t) else None for t in v.tolist()]


def execute_energy(args: argparse.Namespace, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Run and summarise; the JSON-able record the command prints."""
    from transpiler import hostrun
    from transpiler.gnet_energy import DEFAULT_SUPPLY, NO_ANSWER, WHOLE_MODEL, gnet_manifest, load_trace, run_energy
    from transpiler.power import parse_power

    man = hostrun.load_manifest(args.dir)
    g = gnet_manifest(man, args.dir)
    if args.energy_period < 0:
        raise InputError(f"--energy-period {args.energy_period} must be >= 0")
    trace = load_trace(args.energy_trace)
    supply = parse_power(args.energy_supply or DEFAULT_SUPPLY)
    x = hostrun.quantize(man, inputs)
    if getattr(args, "on", "host") == "sim":
        from transpiler.gnet_sim import run_energy_sim

        run = run_energy_sim(args.dir, x, trace, supply, args.energy_period).energy_run(supply)
    else:
        run = run_energy(args.dir, x, trace, supply, args.energy_period, args.cc, args.sanitize)
    n = len(run.status)
    cls_port = next((pt for pt in man["outputs"] if pt["name"] == man.get("class_output")), None)
    scores_port = next((pt for pt in man["outputs"] if pt["name"] == g.get("scores_port")), None)
    if cls_port is not None:
        classes = run.outputs[:, cls_port["offset"]].astype(np.int64)
    elif scores_port is not None:
        part = run.outputs[:, scores_port["offset"]:scores_port["offset"] + scores_port["size"]]
        classes = part.argmax(axis=1).astype(np.int64)
    else:
        classes = np.full(n, -1, dtype=np.int64)
    classes = np.where(run.status == NO_ANSWER, -1, classes)
    labels = _labels(args.input, n, [pt["name"] for pt in man["inputs"]], man.get("labels"))
    answered = run.status != NO_ANSWER
    record: dict[str, Any] = {
        "samples": n, "status": run.status.tolist(), "classes": classes.tolist(),
        "counts": run.counts(int(g["exits"])), "answered": int(answered.sum()),
        "answered_fraction": float(answered.mean()) if n else 0.0,
        "supply": {"cap_f": supply.cap_f, "von_v": supply.von_v, "voff_v": supply.voff_v,
                   "active_w": supply.active_w, "freq_hz": supply.freq_hz,
                   "cycles_per_charge": supply.cycles_per_power_cycle},
        "period_s": args.energy_period, "trace": str(args.energy_trace),
        "model_cycles": int(sum(g["step_cycles"])), "exit_cycles": int(g["exit_cycles"]),
        "start_s": _finite(run.start), "end_s": _finite(run.end), "cycles": run.cycles.tolist(),
        "on": run.extra.get("on", "host"),
    }
    if record["on"] == "sim":
        record["sim"] = {k: run.extra[k] for k in ("power_failures", "failures", "simulator_runs", "total_cycles")}
    if labels is not None:
        right = (classes == labels) & answered
        record["accuracy_of_answers"] = float(right.sum() / answered.sum()) if answered.any() else None
        record["accuracy_overall"] = float(right.mean()) if n else None
        record["accuracy_by_exit"] = {
            ("full" if k == WHOLE_MODEL else str(k)): float(((classes == labels) & (run.status == k)).sum()
                                                            / max(1, int((run.status == k).sum())))
            for k in [*range(1, int(g["exits"]) + 1), WHOLE_MODEL] if (run.status == k).any()}
    return record


def format_energy(r: dict[str, Any], labels: list[Any] | None = None) -> list[str]:
    """Per-sample lines (first 20) and the summary."""
    lines = []
    for i, (s, c) in enumerate(zip(r["status"][:20], r["classes"][:20])):
        if s < 0:
            what = "no answer (the power failed before exit 1, or did not come back)"
        else:
            lab = labels[c] if labels and 0 <= c < len(labels) else None
            who = "whole model" if s == 0 else f"gNet exit {s}"
            what = f"{who}: class {c}" + (f" (label {lab!r})" if lab is not None and str(lab) != str(c) else "")
        lines.append(f"sample {i}: {what}")
    if r["samples"] > 20:
        lines.append(f"... {r['samples'] - 20} more")
    sup = r["supply"]
    lines.append(f"energy: {r['trace']}, {sup['cap_f'] * 1e6:g} uF {sup['von_v']:g}-{sup['voff_v']:g} V, "
                 f"{sup['active_w'] * 1e3:g} mW at {sup['freq_hz'] / 1e6:g} MHz (~{sup['cycles_per_charge']:,} cycles a "
                 f"full charge; the model needs ~{r['model_cycles']:,}), a request every {r['period_s']:g} s")
    if r.get("sim"):
        sim = r["sim"]
        lines.append(f"simulator (msp430-elf-run): {sim['power_failures']} power failures (at the cycles the capacitor "
                     f"was empty), {sim['total_cycles']:,} cycles in all, {sim['simulator_runs']} simulator runs")
    c = r["counts"]
    parts = [f"exit {k}: {v}" for k, v in c.items() if k not in ("none", "full")] + \
        [f"whole model: {c['full']}", f"no answer: {c['none']}"]
    lines.append(f"answered {r['answered']}/{r['samples']} ({100 * r['answered_fraction']:.1f} %): " + ", ".join(parts))
    if r.get("accuracy_of_answers") is not None:
        by = ", ".join(f"{'whole model' if k == 'full' else 'exit ' + k} {100 * v:.1f} %"
                       for k, v in r["accuracy_by_exit"].items())
        lines.append(f"accuracy of the answers {100 * r['accuracy_of_answers']:.1f} % ({by}); "
                     f"of all requests {100 * r['accuracy_overall']:.1f} %")
    return lines


def run_energy_command(args: argparse.Namespace, inputs: dict[str, np.ndarray]) -> int:
    """The whole `run --energy-trace` command: run, print (or --json), save --output."""
    from transpiler import hostrun

    record = execute_energy(args, inputs)
    man = hostrun.load_manifest(args.dir)
    if args.json:
        print(json.dumps(record))
    else:
        print("\n".join(format_energy(record, man.get("labels"))))
    if args.output:
        out = Path(args.output)
        if out.suffix == ".npz":
            np.savez(out, status=np.asarray(record["status"]), classes=np.asarray(record["classes"]))
        else:
            np.save(out, np.stack([record["status"], record["classes"]], axis=1))
        if not args.json:
            print(f"saved {out}")
    return 0


def gnet_verify_rows(out_dir: Path, man: dict[str, Any], inputs: dict[str, np.ndarray], labels: np.ndarray | None,
                     accuracy_rows: np.ndarray | None, cc: str | None = None,
                     sanitize: bool = False) -> list[dict[str, Any]]:
    """`freeml-tx verify` rows for the gNet exits ([] without one): the class of every exit of the
    generated C (the host driver's ``exits`` mode) against the argmax of onnxruntime's
    ``gnet_exit_k`` on normalized.onnx, and both accuracies against the labels."""
    from transpiler import hostrun
    from transpiler.cli.verify_cmd import reference_outputs
    from transpiler.gnet_energy import run_exits

    g = man.get("gnet")
    if not g:
        return []
    got = run_exits(out_dir, hostrun.quantize(man, inputs), cc, sanitize)
    ref = reference_outputs(out_dir / "normalized.onnx", list(g["onnx_outputs"]), inputs)
    rows = []
    n = got.classes.shape[0]
    for k, name in enumerate(g["onnx_outputs"]):
        c_cls, r_cls = got.classes[:, k], ref[name].argmax(axis=1)
        agree = int((c_cls == r_cls).sum())
        row: dict[str, Any] = {"output": name, "size": int(g["classes"]), "q": g["scores_q"], "samples": n,
                               "kind": "gnet-exit", "agreement": agree / n if n else 1.0, "agree": agree,
                               "compared_with": f"the head after exit {k + 1} (fx_<m>_exit)"}
        if labels is not None and labels.ndim == 1 and labels.shape[0] == n:
            sel = np.ones(n, dtype=bool) if accuracy_rows is None else accuracy_rows
            if sel.any():
                row["accuracy_c"] = float((c_cls == labels)[sel].mean())
                row["accuracy_onnxruntime"] = float((r_cls == labels)[sel].mean())
                row["accuracy_samples"] = int(sel.sum())
        rows.append(row)
    return rows


__all__ = ["add_energy_arguments", "execute_energy", "format_energy", "gnet_verify_rows", "run_energy_command"]

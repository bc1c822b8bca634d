"""gNet vs one classifier per exit, and early exits under harvested power (DESIGN.md section 10).

    python bench/gnet.py                      # lenet5_mnist and cnn_digits
    python bench/gnet.py --samples cnn_digits --json out.json

Per sample model (compiled with ``--gnet`` on samples/<name>.npz, whose ``split`` marks say which
images the backbone was trained on: the head trains on those, the figures are on the held-out
``val`` and ``test`` parts):

- per-exit accuracy of the gNet and of the per-exit baseline (one linear classifier per exit on
  the exit's whole flattened map, the usual early-exit branch), the backbone's accuracy;
- parameters and FRAM bytes of both (gNet: i16 weights + i32 bias + the saved feature vector;
  baseline: i16 weights + i32 biases), and their ratio;
- targets: the gNet at least 4x smaller than the baseline, its last exit within 2 points of the
  backbone (test part);
- under an energy trace where the whole model cannot finish on one charge (a capacitor holding
  ``--charge`` times the model's predicted cycles; a seeded harvester that switches between weak
  and strong levels; a request whenever the mean harvest has paid for that much): the fraction of the test inferences that returned an answer and their
  accuracy, with the gNet (the generated C's host driver) and without it (the same device running
  the whole model every time, transpiler/gnet_energy.simulate with ``early_exit=False``). An
  inference first sleeps until the capacitor pays for its first possible answer: the gNet's exit 1
  (the default ``FX_<M>_GNET_START_CYCLES``, lowest latency), or, like the plain device, the whole
  model (at most a full charge; the gNet then exits early only when the charge runs short). A third
  gNet device cannot read its energy (built without fx_energy_level): it starts on a full charge
  and runs the whole model until the power fails; after the reboot it answers from the exits the
  inference saved (fx_<m>_recover). The first ``--sim-samples`` test inferences of the default gNet
  also run in the MSP430 simulator (every executed cycle costs energy), with the host driver's
  answers on the same trace beside them.

Prints a table per model and a summary; nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from transpiler import hostrun  # noqa: E402
from transpiler.cli import main  # noqa: E402
from transpiler.data import load_dataset  # noqa: E402
from transpiler.errors import DataError, ToolchainError  # noqa: E402
from transpiler.gnet_energy import EnergyTrace, run_energy, simulate  # noqa: E402
from transpiler.gnet_sim import run_energy_sim, sim_capacity  # noqa: E402
from transpiler.lir.text import parse_program  # noqa: E402
from transpiler.power import parse_power  # noqa: E402

SAMPLES = ("lenet5_mnist", "cnn_digits")


def compile_gnet(name: str, out: Path, gnet: str) -> dict[str, Any]:
    """Compile samples/<name> with --gnet; the --json summary."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([str(REPO / "samples" / f"{name}.onnx"), "-o", str(out), "--data",
                     str(REPO / "samples" / f"{name}.npz"), "--gnet", gnet, "--json"])
    if code != 0:
        raise SystemExit(f"compiling {name} failed")
    return json.loads(buf.getvalue())


def harvester(seed: int, seconds: float, weak: float, strong: float, step: float = 0.05) -> EnergyTrace:
    """A seeded trace: every ``step`` s the power is ``weak`` or ``strong`` (40 % strong), +-20 % noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds / step) + 1
    level = np.where(rng.random(n) < 0.4, strong, weak) * rng.uniform(0.8, 1.2, n)
    return EnergyTrace(np.arange(n) * step, level)


def energy_figures(out: Path, name: str, charge: float, period: float | None, seed: int,
                   sim_samples: int) -> dict[str, Any]:
    """Test-part inferences under the energy trace, with and without the gNet."""
    man = hostrun.load_manifest(out)
    g = man["gnet"]
    data = load_dataset(REPO / "samples" / f"{name}.npz", {"input": tuple(man["inputs"][0]["onnx_shape"][1:])})
    test = data.split(0)["test"]
    x = hostrun.quantize(man, {"input": test.x})
    labels = np.asarray(test.labels)
    total = sum(g["step_cycles"])
    active, freq = 1.5e-3, 8e6
    cap = 2 * charge * total * active / freq / (3.3 ** 2 - 1.8 ** 2)
    supply = parse_power(f"cap={cap * 1e6:.6f}uF,von=3.3V,voff=1.8V,active=1.5mW,freq=8MHz")
    # weak: 5 %, strong: 40 % of the load (mean 0.19); by default a request whenever the mean harvest
    # has paid for `charge` of the model's energy, so the whole model cannot keep up
    mean_power = (0.4 * 0.4 + 0.6 * 0.05) * active
    if period is None:
        period = charge * total * active / freq / mean_power
    trace = harvester(seed, seconds=period * len(x) * 4 + 10, weak=0.05 * active, strong=0.4 * active)
    cls_port = next(pt for pt in man["outputs"] if pt["name"] == man["class_output"]) if man.get("class_output") \
        else None
    scores = next(pt for pt in man["outputs"] if pt["name"] == g["scores_port"])

    def gnet_run(start_cycles: int | None, energy_level: bool = True) -> dict[str, Any]:
        run = run_energy(out, x, trace, supply, period, start_cycles=start_cycles, energy_level=energy_level)
        if cls_port is not None:
            classes = run.outputs[:, cls_port["offset"]].astype(np.int64)
        else:
            classes = run.outputs[:, scores["offset"]:scores["offset"] + scores["size"]].argmax(axis=1)
        answered = run.status >= 0
        return {"answered": float(answered.mean()), "counts": run.counts(int(g["exits"])),
                "mean_latency_s": float(np.mean(run.end - np.arange(len(x)) * period)),
                "accuracy_of_answers": float((classes[answered] == labels[answered]).mean()) if answered.any()
                else None,
                "accuracy_of_requests": float(((classes == labels) & answered).mean())}
    # without the gNet: the same device, the whole model every time
    program = parse_program((out / "final.lir").read_text())
    plain, _ = simulate(program, x, trace, supply, period, g["step_cycles"], g["exit_cycles"],
                        start_cycles=g["start_cycles"], early_exit=False, answers=False)
    y = hostrun.run_raw(hostrun.build(out), man, x)           # the whole model's classes (no early exit)
    full_cls = (y[:, cls_port["offset"]] if cls_port is not None
                else y[:, scores["offset"]:scores["offset"] + scores["size"]].argmax(axis=1)).astype(np.int64)
    plain_ok = plain == 0

    def classes_of(outputs: np.ndarray) -> np.ndarray:
        if cls_port is not None:
            return outputs[:, cls_port["offset"]].astype(np.int64)
        return outputs[:, scores["offset"]:scores["offset"] + scores["size"]].argmax(axis=1).astype(np.int64)

    def sim_run() -> dict[str, Any]:
        """The first --sim-samples inferences in the simulator and on the host driver, same trace."""
        try:
            n = min(sim_samples, len(x))
            # the trace up to 3x the requests' span (its tables share FRAM with the model and inputs)
            rows = min(len(trace.times), int(np.searchsorted(trace.times, 3 * period * n + 5)) + 1)
            short = EnergyTrace(trace.times[:rows], trace.powers[:rows])
            n = min(n, sim_capacity(man, rows))
            t0 = time.perf_counter()
            sim = run_energy_sim(out, x[:n], short, supply, period)
            seconds = time.perf_counter() - t0
        except (ToolchainError, DataError) as exc:        # no toolchain, or no room for the trace
            return {"skipped": exc.message}
        host = run_energy(out, x[:n], short, supply, period)
        sc, hc = classes_of(sim.outputs), classes_of(host.outputs)
        ok = sim.status >= 0
        same = (sim.status == host.status) & (~ok | (sc == hc))
        return {"samples": int(n), "answered": float(ok.mean()), "counts": sim.energy_run(supply).counts(int(g["exits"])),
                "accuracy_of_answers": float((sc[ok] == labels[:n][ok]).mean()) if ok.any() else None,
                "accuracy_of_requests": float(((sc == labels[:n]) & ok).mean()),
                "host_answered": float((host.status >= 0).mean()),
                "agreement_with_host": float(same.mean()), "power_failures": len(sim.failures),
                "simulator_runs": sim.runs, "seconds": round(seconds, 1)}
    return {
        "samples": int(len(x)), "model_cycles": int(total), "charge_cycles": supply.cycles_per_power_cycle,
        "cap_uF": round(cap * 1e6, 3), "period_s": round(period, 4),
        "gnet": gnet_run(None),                       # starts once exit 1 is affordable (the default)
        "gnet_full_start": gnet_run(total),           # starts on a full charge, like the plain device
        "gnet_no_level": gnet_run(total, energy_level=False),   # no energy reading: answers after failures
        "no_gnet": {"answered": float(plain_ok.mean()),
                    "accuracy_of_answers": float((full_cls[plain_ok] == labels[plain_ok]).mean()) if plain_ok.any()
                    else None,
                    "accuracy_of_requests": float(((full_cls == labels) & plain_ok).mean())},
        "sim": sim_run(),
    }


def bench(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"gnet-{name}-") as tmp:
        out = Path(tmp) / "build"
        start = time.perf_counter()
        summary = compile_gnet(name, out, args.gnet)
        seconds = time.perf_counter() - start
        s = summary["gnet"]
        gn, bl = s["gnet"], s["baseline"]
        result: dict[str, Any] = {
            "model": name, "compile_s": round(seconds, 1), "exits": s["exits"], "features": s["feature_lengths"],
            "test": {"backbone": s["backbone_accuracy"], "gnet": s["gnet_accuracy"], "baseline": s["baseline_accuracy"],
                     "samples": s["samples"]},
            "val_gnet": s.get("val_accuracy"),
            "params": {"gnet": gn["params"], "baseline": bl["params"], "ratio": bl["params"] / gn["params"]},
            "fram": {"gnet": gn["fram_bytes"], "baseline": bl["fram_bytes"], "ratio": bl["fram_bytes"] / gn["fram_bytes"]},
        }
        result["targets"] = {
            "4x_smaller": result["params"]["ratio"] >= 4.0,
            "last_exit_within_2_points": s["backbone_accuracy"] - s["gnet_accuracy"][-1] <= 0.02,
        }
        result["energy"] = [energy_figures(out, name, c, args.period, args.seed, args.sim_samples)
                            for c in args.charge]
    return result


def pct(v: float | None) -> str:
    return "   -  " if v is None else f"{100 * v:5.1f}%"


def report(r: dict[str, Any]) -> str:
    t = r["test"]
    lines = [f"== {r['model']}  (compiled in {r['compile_s']} s; test part: {t['samples']} held-out images)",
             f"   backbone accuracy {pct(t['backbone'])}",
             "   exit  features    gNet   per-exit"]
    for k, (n, a, b) in enumerate(zip(r["features"], t["gnet"], t["baseline"] or [None] * len(t["gnet"])), 1):
        lines.append(f"   {k:>4}  {n:>8}  {pct(a)}  {pct(b)}")
    p, f = r["params"], r["fram"]
    lines.append(f"   params: gNet {p['gnet']:,}, per-exit {p['baseline']:,} ({p['ratio']:.1f}x);  FRAM bytes: gNet "
                 f"{f['gnet']:,} (incl. saved features), per-exit {f['baseline']:,} ({f['ratio']:.1f}x)")
    tg = r["targets"]
    lines.append(f"   targets: >= 4x smaller {'MET' if tg['4x_smaller'] else 'MISSED'}; last exit within 2 points of "
                 f"the backbone {'MET' if tg['last_exit_within_2_points'] else 'MISSED'} "
                 f"({pct(t['gnet'][-1]).strip()} vs {pct(t['backbone']).strip()})")
    for e in r["energy"]:
        lines += energy_lines(e)
    return "\n".join(lines)


def energy_lines(e: dict[str, Any]) -> list[str]:
    lines = []
    lines.append(f"   energy: a charge pays {e['charge_cycles']:,} cycles ({e['cap_uF']} uF), the model needs "
                 f"{e['model_cycles']:,}; a request every {e['period_s']} s, {e['samples']} test inferences")
    titles = {"gnet": "gNet, starts at exit-1 energy", "gnet_full_start": "gNet, starts on a full charge",
              "gnet_no_level": "gNet, no energy reading", "no_gnet": "without gNet (full charge)"}
    for who in ("gnet", "gnet_full_start", "gnet_no_level", "no_gnet"):
        v = e[who]
        extra = (f"  exits {v['counts']}, mean latency {v['mean_latency_s']:.2f} s" if who != "no_gnet" else "")
        lines.append(f"     {titles[who]:30s}: answered {pct(v['answered'])}, "
                     f"accuracy of the answers {pct(v['accuracy_of_answers'])}, correct answers per request "
                     f"{pct(v['accuracy_of_requests'])}{extra}")
    v = e.get("sim", {})
    if "skipped" in v:
        lines.append(f"     {'simulator':30s}: skipped ({v['skipped']})")
    elif v:
        lines.append(f"     {'gNet in the simulator':30s}: answered {pct(v['answered'])}, accuracy of the answers "
                     f"{pct(v['accuracy_of_answers'])}, correct answers per request {pct(v['accuracy_of_requests'])}  "
                     f"exits {v['counts']}; first {v['samples']} inferences: host driver answered "
                     f"{pct(v['host_answered'])}, same exit and class as the host {pct(v['agreement_with_host'])}, "
                     f"{v['power_failures']} power failures ({v['simulator_runs']} simulator runs, {v['seconds']} s)")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", nargs="+", default=list(SAMPLES), choices=SAMPLES)
    ap.add_argument("--gnet", default="", help="attach-gnet options as for compile --gnet (e.g. epochs=60)")
    ap.add_argument("--charge", type=float, nargs="+", default=[0.6, 0.9],
                    help="the capacitor's full charge as a fraction of the model's predicted cycles (< 1); "
                         "one energy run per value")
    ap.add_argument("--period", type=float, default=None,
                    help="seconds between inference requests (default: the time the mean harvest needs to pay "
                         "for --charge of the model)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the harvester trace")
    ap.add_argument("--sim-samples", type=int, default=20,
                    help="test inferences also run in the MSP430 simulator (at most what one run holds)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return ap.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    for name in args.samples:
        r = bench(name, args)
        results.append(r)
        print(report(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(run())

"""``freeml-tx run DIR --input x.npy [--output y.npy] [--on host|sim]``: run a generated C package.

    freeml-tx run build/ --input digit.npy --output logits.npy
    freeml-tx run build/ --on sim --input digit.npy      # in the MSP430FR5994 simulator
    freeml-tx run build/ --input x.npy --power-fail random:seed=1,min=2000,max=40000   # intermittent
    freeml-tx run build/ --on sim --input x.npy --power-fail every:30000                # packages

``--energy-trace trace.csv`` (packages compiled with --gnet) runs the samples on harvested power and
prints which exit of the gNet answered each one (transpiler/cli/gnet_run.py).

``--power-fail`` (packages compiled with --power / --cycles-per-power-cycle) injects power failures:
on the host counted in FRAM stores, in the simulator in cycles; it prints the number of failures,
the re-executed work and checks the output against the uninterrupted run
(transpiler/cli/powerfail_run.py).

With ``--on sim`` the package's MSP430 build (``make msp430``, msp430.mk, with the simulator's
counters read around each inference by main_sim.c: ``MSP430_RUN_COUNTERS=1``) runs every sample in
``msp430-elf-run`` (transpiler/simpackage.py); besides the outputs it prints the cycles and
instructions of each inference and of the whole simulation. The outputs are bit-identical to the
host build's (tests/msp430/test_msp430_models_sim.py).

The float input is quantised with the manifest's Q formats (round half up, saturated), the host
binary is built with make when needed and run on every sample of the file, and the outputs are
dequantised. It prints each output (and the class with its label, for classifiers) and saves them:
``.npy`` gets the scores output (the first one that is not the class index), ``.npz`` all of them.
The input file may hold one sample or ``[N, ...]`` samples; a ``.npz`` has one array per input name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from transpiler.cli.gnet_run import add_energy_arguments, run_energy_command
from transpiler.cli.powerfail_run import add_power_fail_arguments, execute_power_fail, format_power_fail
from transpiler.errors import DataError, Location


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("run", help="run a generated C package on the host",
                                   description="Quantise the input, run DIR's host binary, print and save the outputs.")
    parser.add_argument("dir", metavar="DIR", help="a folder written by `freeml-tx MODEL.onnx -o DIR`")
    parser.add_argument("--input", "-i", required=True, metavar="X.npy",
                        help="float input: .npy (one input) or .npz (one array per input name)")
    parser.add_argument("--output", "-o", metavar="Y.npy", help="save the outputs (.npy: scores, .npz: all)")
    parser.add_argument("--cc", metavar="CC", help="C compiler for the build (default: $CC or cc)")
    parser.add_argument("--sanitize", action="store_true", help="build and run with ASan + UBSan")
    parser.add_argument("--json", action="store_true", help="print the outputs as JSON")
    parser.add_argument("--on", choices=("host", "sim"), default="host",
                        help="where to run: the host binary (default) or the MSP430FR5994 simulator "
                             "(needs the msp430-elf toolchain: MSP430_GCC_ROOT or PATH)")
    add_power_fail_arguments(parser)
    add_energy_arguments(parser)
    return parser


def load_inputs(path: str, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """The float inputs of a .npy / .npz file by manifest input name."""
    from transpiler.data import input_key, read_arrays

    where = Location(file=path)
    if not Path(path).is_file():
        raise DataError("no such input file", location=where, hint="give a .npy or .npz of float inputs")
    names = [p["name"] for p in manifest["inputs"]]
    arrays = read_arrays(path, names)
    keys = {name: input_key(name, names, list(arrays)) for name in names}
    missing = [name for name, key in keys.items() if key is None]
    if missing:
        raise DataError(f"no array for input(s) {', '.join(missing)}", location=where,
                        hint=f"the .npz holds {', '.join(sorted(arrays)) or 'nothing'}; name the arrays after "
                             f"the model's inputs: {', '.join(names)}")
    return {name: arrays[key] for name, key in keys.items() if key is not None}


def execute(out_dir: str, inputs: dict[str, np.ndarray], cc: str | None = None,
            sanitize: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Build (if needed) and run; returns (manifest, int16 outputs, real outputs), each ``[N, ...]``."""
    from transpiler import hostrun

    man = hostrun.load_manifest(out_dir)
    x = hostrun.quantize(man, inputs)
    exe = hostrun.build(out_dir, cc=cc, sanitize=sanitize)
    y = hostrun.run_raw(exe, man, x)
    raw = hostrun.split_outputs(man, y)
    return man, raw, hostrun.dequantize(man, raw)


def scores_name(man: dict[str, Any]) -> str | None:
    """The first output that is not the class index."""
    for pt in man["outputs"]:
        if pt["name"] != man.get("class_output"):
            return str(pt["name"])
    return None


def execute_sim(out_dir: str, inputs: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray],
                                                                   dict[str, np.ndarray], Any]:
    """Run in the MSP430 simulator; returns (manifest, int16 outputs, real outputs, the PackageRun)."""
    from transpiler import hostrun
    from transpiler.simpackage import run_package

    man = hostrun.load_manifest(out_dir)
    x = hostrun.quantize(man, inputs)
    sim = run_package(out_dir, x, counters="run")
    raw = hostrun.split_outputs(man, sim.outputs)
    return man, raw, hostrun.dequantize(man, raw), sim


def sim_summary(sim: Any) -> dict[str, Any]:
    """The simulator figures of a run (for --json and the text output)."""
    n = len(sim.cycles)
    return {"inferences": n, "cycles": list(sim.cycles), "instructions": list(sim.instructions),
            "mean_cycles": round(sum(sim.cycles) / n, 1) if n else None,
            "mean_instructions": round(sum(sim.instructions) / n, 1) if n else None,
            "total_cycles": sim.total_cycles, "total_instructions": sim.total_instructions,
            "elf": str(sim.elf)}


def _print_sim(s: dict[str, Any]) -> None:
    n = s["inferences"]
    if n == 1:
        print(f"simulator (msp430-elf-run, MSP430FR5994): {s['cycles'][0]:,} cycles, "
              f"{s['instructions'][0]:,} instructions per inference")
    else:
        for i, (c, k) in enumerate(zip(s["cycles"][:20], s["instructions"][:20])):
            print(f"  inference {i}: {c:,} cycles, {k:,} instructions")
        if n > 20:
            print(f"  ... {n - 20} more")
        print(f"simulator (msp430-elf-run, MSP430FR5994): {n} inferences, mean {s['mean_cycles']:,.0f} cycles, "
              f"{s['mean_instructions']:,.0f} instructions per inference")
    print(f"  whole simulation (boot, CIO output included): {s['total_cycles']:,} cycles, "
          f"{s['total_instructions']:,} instructions ({Path(s['elf']).name})")


def run(args: argparse.Namespace) -> int:
    from transpiler import hostrun

    man = hostrun.load_manifest(args.dir)
    inputs = load_inputs(args.input, man)
    if getattr(args, "energy_trace", None):       # gNet packages on harvested power
        return run_energy_command(args, inputs)
    sim_info: dict[str, Any] | None = None
    pf_info: dict[str, Any] | None = None
    if getattr(args, "power_fail", None):
        man, real, pf_info = execute_power_fail(args, inputs)
    elif getattr(args, "on", "host") == "sim":
        man, _raw, real, sim = execute_sim(args.dir, inputs)
        sim_info = sim_summary(sim)
    else:
        man, _raw, real = execute(args.dir, inputs, args.cc, args.sanitize)
    n = next(iter(real.values())).shape[0] if real else 0
    labels = man.get("labels")
    cls_name = man.get("class_output")
    scores = scores_name(man)
    classes: list[int] = []
    if cls_name is not None:
        classes = [int(v) for v in real[cls_name].reshape(n, -1)[:, 0]]
    elif scores is not None and real[scores][0].size > 1 and labels:
        classes = [int(v) for v in real[scores].reshape(n, -1).argmax(axis=1)]

    def label_of(c: int) -> Any:
        return labels[c] if labels and 0 <= c < len(labels) else None

    if args.json:
        doc = {"samples": n, "outputs": {k: v.tolist() for k, v in real.items()},
               "classes": classes, "labels": [label_of(c) for c in classes] if labels else None}
        if sim_info is not None:
            doc["sim"] = sim_info
        if pf_info is not None:
            doc["power_fail"] = pf_info
        print(json.dumps(doc))
    else:
        np.set_printoptions(precision=4, suppress=True, linewidth=100, threshold=40)
        for pt in man["outputs"]:
            if pt["name"] == cls_name:
                continue        # printed as "class N" below
            value = real[pt["name"]]
            shown = value[0] if n == 1 else value
            print(f"{pt['name']} {list(value.shape[1:])} q={pt['q']}:" + ("" if n == 1 else f" ({n} samples)"))
            print(f"  {shown}")
        for i, c in enumerate(classes[:20]):
            lab = label_of(c)
            prefix = "class" if n == 1 else f"sample {i}: class"
            print(f"{prefix} {c}" + (f" (label {lab!r})" if lab is not None and str(lab) != str(c) else ""))
        if len(classes) > 20:
            print(f"... {len(classes) - 20} more")
        if sim_info is not None:
            _print_sim(sim_info)
        if pf_info is not None:
            print("\n".join(format_power_fail(pf_info, n)))
    if args.output:
        out = Path(args.output)
        if out.suffix == ".npz":
            np.savez(out, **{k: v for k, v in real.items()})
        else:
            key = scores or next(iter(real))
            np.save(out, real[key])
        if not args.json:
            print(f"saved {out}")
    return 0

"""``freeml-tx [compile] MODEL.onnx -o DIR``: ONNX model -> fixed-point C package for the MSP430.

    freeml-tx samples/lenet5_mnist.onnx -o build/ --data samples/lenet5_mnist.npz
    make -C build && freeml-tx verify build/ --data samples/lenet5_mnist.npz

The default pipeline comes from the flags (:func:`default_pipeline`, the one place that decides
it): ``normalize,quantize,lower,plan-memory,emit-c``; when the model does not fit ``--fram`` it gains
``separate,sparsify{budget=...,max-drop=...}`` after normalize (transpiler/cli/compress_flags.py,
which needs ``--data``). The output folder is written atomically:
after any error nothing is left in ``-o`` (an earlier freeml-tx output there stays as it was).
Besides what emit-c writes, DIR holds ``normalized.onnx``: the float model that ``lower`` got (what
``freeml-tx verify`` compares the C with in onnxruntime).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from transpiler.cli.common import (add_model_arguments, add_pipeline_arguments, instrument_options, make_context,
                                   parse_input_shapes)
from transpiler.cli.compress_flags import (add_compress_arguments, compression_spec, compression_summary,
                                           format_compression, with_compression)
from transpiler.cli.gnet_flags import add_gnet_arguments, format_gnet, gnet_summary, with_gnet
from transpiler.cli.power_flags import add_power_arguments, apply_power, format_power, power_summary, with_power
from transpiler.errors import PipelineError

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(KiB|MiB|KB|kB|MB|K|M|B)?\s*$")
_UNITS = {None: 1, "B": 1, "K": 1024, "KB": 1024, "kB": 1024, "KiB": 1024, "M": 1 << 20, "MB": 1 << 20,
          "MiB": 1 << 20}
TARGETS = ("host", "msp430fr5994")
#: What the MSP430FR5994 has: --sram / --fram may not exceed it with --target msp430fr5994.
FR5994_SRAM = 8 * 1024
FR5994_FRAM = 256 * 1024


def parse_size(text: str) -> int:
    """``8KiB`` -> 8192; also ``8192``, ``8K``, ``256KB`` (KB = KiB, as on the datasheet)."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (e.g. 8KiB, 256KiB, 8192)")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if value != int(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole positive number of bytes")
    return int(value)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compile", help="compile an ONNX model to a fixed-point C package (the default command)",
        description="Compile MODEL to fixed-point C for an MSP430FR5994-class part: normalize, quantize, "
                    "lower to LIR, plan memory, emit C + Makefile + manifest into DIR.",
        epilog="example: freeml-tx samples/lenet5_mnist.onnx -o build/ --data samples/lenet5_mnist.npz")
    add_model_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (written atomically)")
    parser.add_argument("--sram", type=parse_size, default=8 * 1024, metavar="SIZE",
                        help="SRAM of the part (default 8KiB)")
    parser.add_argument("--fram", type=parse_size, default=256 * 1024, metavar="SIZE",
                        help="FRAM of the part (default 256KiB)")
    parser.add_argument("--stack", type=parse_size, default=None, metavar="SIZE",
                        help="SRAM reserved for the stack and runtime state (default 1KiB)")
    parser.add_argument("--sram-only", action="store_true",
                        help="fail instead of moving activations that do not fit SRAM to FRAM")
    parser.add_argument("--persistent", action="store_true",
                        help="keep every activation in FRAM (for intermittent execution)")
    parser.add_argument("--name", metavar="NAME", help="C name of the model (default: the file name)")
    parser.add_argument("--target", choices=TARGETS, default="host",
                        help="build target (default host). msp430fr5994: plan for the part's memory map "
                             "(8 KiB SRAM, 48 KiB lower FRAM + HIFRAM, 256 KiB in all; the large memory model "
                             "when constants go above 64 KiB) and check that --sram/--fram fit it; then "
                             "`make -C DIR msp430`, `freeml-tx run DIR --on sim`, `freeml-tx report DIR`")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_compress_arguments(parser)
    add_gnet_arguments(parser)
    add_power_arguments(parser)
    add_pipeline_arguments(parser)
    return parser


def default_pipeline(args: argparse.Namespace) -> str:
    """The pipeline the flags ask for (used when --pipeline is not given)."""
    plan: list[str] = []
    if getattr(args, "stack", None) is not None:
        plan.append(f"stack={args.stack}")
    if getattr(args, "persistent", False):
        plan.append("persistent=true")
    if getattr(args, "sram_only", False):
        plan.append("fram-activations=false")
    plan_spec = "plan-memory" + (f"{{{','.join(plan)}}}" if plan else "")
    return with_power(with_gnet(f"normalize,quantize,lower,{plan_spec},emit-c", args), args)


def keep_onnx_instrument(context: Any) -> Any:
    """An instrument that keeps the ONNX model `lower` receives (``.proto``, saved as normalized.onnx)
    and hands its ``classifier-tail`` annotation to emit-c (``context.extra["classifier_tail"]``)."""
    from transpiler.instruments import Instrument

    class KeepOnnx(Instrument):
        def __init__(self) -> None:
            self.proto: Any = None

        def before_pass(self, info: Any, model: Any) -> None:
            if info.pass_cls.level == "lower":
                self.proto = model.to_proto()
                tail = model.annotations.get("graph", "classifier-tail")
                if tail is not None:
                    context.extra["classifier_tail"] = tail

    return KeepOnnx()


def run(args: argparse.Namespace) -> int:
    from transpiler.instruments import make_instruments
    from transpiler.loader import load
    from transpiler.manager import PassManager, recorded_properties
    from transpiler.outdir import atomic_output_dir
    from transpiler.pipeline import format_pipeline

    check_target(args)
    pipeline = args.pipeline if args.pipeline is not None else default_pipeline(args)
    shapes = parse_input_shapes(args.input_shape)
    model = load(args.model, shapes)
    context = make_context(args, pipeline, model, shapes)
    if args.pipeline is None:   # too big for --fram: separate + sparsify (transpiler/cli/compress_flags.py)
        pipeline = with_compression(pipeline, compression_spec(args, model, context.data, context.input_shapes))
        context.pipeline_text = pipeline
    context.sram_bytes, context.fram_bytes, context.target = args.sram, args.fram, args.target
    apply_power(context, args)
    source = Path(args.model)
    context.extra["model_name"] = args.name or source.stem
    context.extra["source_sha256"] = hashlib.sha256(source.read_bytes()).hexdigest()
    keep = keep_onnx_instrument(context)
    instruments = [*make_instruments(**instrument_options(args)), keep]
    manager = PassManager(pipeline, context, instruments, verify=args.verify)
    planned = manager.plan("onnx", recorded_properties(model))
    context.pipeline_text = format_pipeline(p.spec for p in planned)
    names = [p.spec.name for p in planned]
    if "emit-c" not in names and args.stop_after is None:
        raise PipelineError("the compile pipeline does not end in emit-c, so it would write nothing",
                            hint="add ',lower,plan-memory,emit-c' (or use `freeml-tx inspect` for ONNX-level "
                                 "passes only)", details=[f"pipeline: {context.pipeline_text}"])
    if args.print_pipeline:
        print(f"pipeline: {context.pipeline_text}", file=sys.stderr if args.json else sys.stdout)
    if context.data is None and "quantize" in names:
        print("warning: no --data: quantization calibrates on weight-derived ranges and synthetic inputs; "
              "accuracy may suffer (pass --data samples.npz with representative inputs)", file=sys.stderr)
    if "emit-c" not in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _final, report = manager.run(model)
        print(report.table(), file=sys.stderr if args.json else sys.stdout)
        print(f"stopped after '{report.stopped_after}': nothing written to {args.output}",
              file=sys.stderr if args.json else sys.stdout)
        return 0
    with atomic_output_dir(args.output) as tmp:
        context.out_dir = str(tmp)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            final, report = manager.run(model)
        for message in sorted({str(w.message) for w in caught if "no --data" not in str(w.message)}):
            print(f"warning: {message}", file=sys.stderr)
        if keep.proto is not None:
            import onnx

            onnx.save(keep.proto, str(tmp / "normalized.onnx"))
        compression = compression_summary(context, report)
        if compression is not None and (tmp / "report.txt").is_file():
            with open(tmp / "report.txt", "a", encoding="utf-8") as f:
                f.write("\nCompression (separate, sparsify)\n" + "\n".join(format_compression(compression)) + "\n")
    summary = make_summary(args, context, report)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(format_summary(summary))
    return 0


def check_target(args: argparse.Namespace) -> None:
    """With ``--target msp430fr5994``, --sram and --fram must fit the part.

    Raises:
        InputError: a budget larger than the FR5994's memory.
    """
    from transpiler.errors import InputError

    if getattr(args, "target", "host") != "msp430fr5994":
        return
    for flag, value, limit in (("--sram", args.sram, FR5994_SRAM), ("--fram", args.fram, FR5994_FRAM)):
        if value > limit:
            raise InputError(f"{flag} {value} B is more than the MSP430FR5994 has ({limit} B)",
                             hint=f"drop {flag} (the part's size is the default), or use --target host "
                                  "for a host-only build without the part's limits")


def msp430_summary(context: Any) -> dict[str, Any]:
    """The planner's MSP430 figures: memory model, code and read-only estimates, lower FRAM use."""
    plan = context.extra.get("plan-memory", {})
    return {"memory_model": plan.get("memory_model"), "code_estimate": plan.get("code_estimate"),
            "rodata_estimate": plan.get("rodata_estimate"), "lower_fram_used": plan.get("lower_fram_used"),
            "lower_fram_capacity": plan.get("lower_fram_capacity"), "step_code": plan.get("step_code"),
            "hifram_code": plan.get("hifram_code")}


def make_summary(args: argparse.Namespace, context: Any, report: Any) -> dict[str, Any]:
    """The figures the compile command prints (and --json emits)."""
    emitted = context.extra.get("emit-c", {})
    manifest = emitted.get("manifest", {})
    plan = context.extra.get("plan-memory", {})
    sizes = manifest.get("sizes", {})
    act_q = sorted({st["output_q"] for st in manifest.get("steps", []) if isinstance(st.get("output_q"), int)})
    out_dir = Path(args.output)
    return {
        "model": str(args.model),
        "output": str(out_dir),
        "data": getattr(args, "data", None),
        "c_name": manifest.get("c_name"),
        "pipeline": context.pipeline_text,
        "calibration": "data" if context.data is not None else "weight-derived ranges (no --data)",
        "ops": manifest.get("ops", {}),
        "steps": len(manifest.get("steps", [])),
        "parameters": sizes.get("parameters", 0),
        "fram": {"weights": sizes.get("fram_weights", 0), "biases": sizes.get("fram_bias", 0),
                 "descriptors": sizes.get("fram_descriptors", 0), "activations": sizes.get("fram_activations", 0),
                 "hifram": sizes.get("hifram_bytes", 0), "hifram_activations": sizes.get("hifram_activations", 0)},
        "sram": {"peak_activations": sizes.get("sram_peak", 0), "budget": context.sram_bytes,
                 "stack_reserve": plan.get("stack_reserve"), "spilled_to_fram": plan.get("spilled_to_fram", []),
                 "spilled_to_hifram": plan.get("spilled_to_hifram", [])},
        "q": {"inputs": {p["name"]: p["q"] for p in manifest.get("inputs", []) if p.get("vocab") is None},
              "token_inputs": {p["name"]: p["vocab"] for p in manifest.get("inputs", []) if p.get("vocab") is not None},
              "outputs": {p["name"]: p["q"] for p in manifest.get("outputs", [])},
              "activations": [act_q[0], act_q[-1]] if act_q else []},
        "labels": manifest.get("labels"),
        "report": str(out_dir / "report.txt"),
        "ms": round(report.total_ms, 1),
        "gnet": gnet_summary(context),
        "compression": compression_summary(context, report),
        "target": getattr(args, "target", "host"),
        "msp430": msp430_summary(context),
        "intermittent": power_summary(context),
    }


def _b(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n / 1024:.1f} KiB"


def format_summary(s: dict[str, Any]) -> str:
    ops = ", ".join(f"{op} x{n}" for op, n in s["ops"].items())
    f, r = s["fram"], s["sram"]
    qa = s["q"]["activations"]
    lines = [
        f"compiled {s['model']} -> {s['output']}/ (fx_{s['c_name']}_run) in {s['ms'] / 1000:.1f} s",
        f"  pipeline    {s['pipeline']}",
        f"  ops         {s['steps']} step{'' if s['steps'] == 1 else 's'}: {ops or 'none'}",
        f"  parameters  {s['parameters']:,}",
        f"  FRAM        weights {_b(f['weights'])}, biases {_b(f['biases'])}, descriptors {_b(f['descriptors'])}"
        + (f", activations {_b(f['activations'])}" if f["activations"] else "")
        + (f", activations in HIFRAM {_b(f['hifram_activations'])}" if f.get("hifram_activations") else "")
        + (f" ({_b(f['hifram'] - f.get('hifram_activations', 0))} of the constants in HIFRAM)"
           if f["hifram"] > f.get("hifram_activations", 0) else ""),
        f"  SRAM        peak activations {_b(r['peak_activations'])} of {_b(r['budget'])}"
        + (f" ({_b(r['stack_reserve'])} reserved for the stack)" if r.get("stack_reserve") is not None else "")
        + (f"; moved to FRAM: {', '.join(r['spilled_to_fram'])}" if r["spilled_to_fram"] else "")
        + (f" (on to HIFRAM: {', '.join(r['spilled_to_hifram'])})" if r.get("spilled_to_hifram") else ""),
        "  Q formats   " + "; ".join(
            [f"input '{k}' q={v}" for k, v in s["q"]["inputs"].items()]
            + [f"input '{k}' token ids < {v}" for k, v in s["q"].get("token_inputs", {}).items()]
            + [f"output '{k}' q={v}" for k, v in s["q"]["outputs"].items()]
            + ([f"activations q={qa[0]}" + (f"..{qa[1]}" if qa[1] != qa[0] else "")] if qa else [])),
        f"  calibration {s['calibration']}",
    ]
    if s.get("labels"):
        lines.append(f"  labels      {', '.join(str(x) for x in s['labels'])}")
    if s.get("compression"):
        lines += format_compression(s["compression"])
    if s.get("gnet"):
        lines += format_gnet(s["gnet"])
    if s.get("intermittent"):
        lines += format_power(s["intermittent"])
    lines.append(f"  report      {s['report']}")
    m4 = s.get("msp430") or {}
    if s.get("target") == "msp430fr5994" and m4.get("memory_model"):
        large = m4["memory_model"] == "large"
        hifram = ("activations and constants" if f.get("hifram_activations") and f["hifram"] > f["hifram_activations"]
                  else "activations" if f.get("hifram_activations") else "constants" if f["hifram"] else "")
        if m4.get("step_code") == "hifram":
            code = f"step functions ~{_b(int(m4['hifram_code'] or 0))}"
            hifram = f"{hifram} and {code}" if hifram else code
        lines.append(f"  MSP430FR5994 {m4['memory_model']} memory model" + (f" (-mlarge: {hifram} in HIFRAM)" if large else "")
                     + f"; code ~{_b(int(m4['code_estimate'] or 0))}, lower FRAM "
                     f"{_b(int(m4['lower_fram_used'] or 0))} of {_b(int(m4['lower_fram_capacity'] or 0))} (planned)")
    lines.append(f"next: make -C {s['output']} && freeml-tx verify {s['output']} --data {s.get('data') or 'DATA.npz'}")
    if s.get("target") == "msp430fr5994":
        lines.append(f"      make -C {s['output']} msp430 && freeml-tx run {s['output']} --on sim --input X.npy"
                     f" && freeml-tx report {s['output']}")
    return "\n".join(lines)


__all__ = ["add_parser", "run", "default_pipeline", "parse_size", "make_summary", "format_summary"]

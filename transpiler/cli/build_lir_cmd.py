"""``freeml-tx build-lir FILE.lir -o DIR``: emit the C package of a LIR program (e.g. a dump or final.lir).

    freeml-tx build-lir build/final.lir -o build2/
    freeml-tx build-lir dumps/03-lower.lir -o build3/ --sram 16KiB

The file is parsed and verified; when its buffers are not all placed (a dump from before
plan-memory), or with ``--replan``, plan-memory runs first with the budget flags. The output folder
is written atomically, as for ``compile``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from transpiler.cli.compile_cmd import format_summary, parse_size


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "build-lir", help="emit C from a .lir file (a dump or a final.lir)",
        description="Parse and verify FILE.lir, plan memory if it is not planned, and write the C package.")
    parser.add_argument("lir", metavar="FILE.lir", help="the LIR text file")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (written atomically)")
    parser.add_argument("--sram", type=parse_size, default=8 * 1024, metavar="SIZE", help="SRAM (default 8KiB)")
    parser.add_argument("--fram", type=parse_size, default=256 * 1024, metavar="SIZE", help="FRAM (default 256KiB)")
    parser.add_argument("--stack", type=parse_size, default=None, metavar="SIZE",
                        help="SRAM reserved for the stack (default 1KiB)")
    parser.add_argument("--sram-only", action="store_true", help="fail instead of spilling activations to FRAM")
    parser.add_argument("--persistent", action="store_true", help="every activation in FRAM")
    parser.add_argument("--replan", action="store_true", help="run plan-memory even if the file is planned")
    parser.add_argument("--name", metavar="NAME", help="C name of the model (default: from the file)")
    parser.add_argument("--print-pipeline", action="store_true", help="print the pipeline that runs")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def lir_pipeline(args: argparse.Namespace, planned: bool) -> str:
    """``emit-c`` for a planned program, else ``plan-memory{...},emit-c`` from the flags."""
    from transpiler.cli.compile_cmd import default_pipeline

    if planned and not args.replan:
        return "emit-c"
    full = default_pipeline(args)
    return full[full.index("plan-memory"):]


def run(args: argparse.Namespace) -> int:
    import shlex

    from passes.plan_memory import is_planned
    from transpiler.cli.compile_cmd import make_summary
    from transpiler.lir.text import load_lir
    from transpiler.lir.verify import verify_program
    from transpiler.manager import PassManager
    from transpiler.outdir import atomic_output_dir
    from transpiler.pass_infra import PassContext

    path = Path(args.lir)
    program = load_lir(path)
    verify_program(program)
    pipeline = lir_pipeline(args, is_planned(program))
    context = PassContext(sram_bytes=args.sram, fram_bytes=args.fram,
                          command_line=shlex.join(["freeml-tx", *getattr(args, "argv", [])]),
                          pipeline_text=pipeline)
    context.extra["model_name"] = args.name or program.meta.get("c-name") or path.stem
    if "source" not in program.meta:
        context.extra["source_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    if args.print_pipeline:
        print(f"pipeline: {pipeline}", file=sys.stderr if args.json else sys.stdout)
    manager = PassManager(pipeline, context)
    with atomic_output_dir(args.output) as tmp:
        context.out_dir = str(tmp)
        _final, report = manager.run(program)
    args.model = str(path)
    summary = make_summary(args, context, report)
    summary["calibration"] = "as in the LIR file"
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(format_summary(summary))
    return 0

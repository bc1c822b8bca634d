"""``freeml-tx inspect MODEL``: load a model, run the ONNX-level pipeline, print a table per pass.

    freeml-tx inspect lenet.onnx --print-after-change --dump-dir dumps --timing
"""

from __future__ import annotations

import argparse
from typing import Any

from transpiler.cli.common import (add_model_arguments, add_pipeline_arguments, default_onnx_pipeline,
                                   instrument_options, make_context, parse_input_shapes)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("inspect", help="run the ONNX-level passes and show what each did",
                                   description="Load MODEL, run the ONNX-level pipeline (default: "
                                               "normalize) and print nodes, params, non-zeros, "
                                               "weight bytes and time after each pass.")
    add_model_arguments(parser)
    add_pipeline_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from transpiler.instruments import make_instruments
    from transpiler.loader import describe_inputs, describe_outputs, load
    from transpiler.manager import PassManager, recorded_properties
    from transpiler.pipeline import format_pipeline

    pipeline = args.pipeline if args.pipeline is not None else default_onnx_pipeline(args)
    shapes = parse_input_shapes(args.input_shape)
    model = load(args.model, shapes)
    context = make_context(args, pipeline, model, shapes)
    manager = PassManager(pipeline, context, make_instruments(**instrument_options(args)), verify=args.verify)
    planned = manager.plan("onnx", recorded_properties(model))  # every pipeline error before any output
    context.pipeline_text = format_pipeline(p.spec for p in planned)
    producer = f", {model.producer}" if model.producer else ""
    print(f"model: {args.model} (opset {model.opset}{producer})")
    for label, items in (("inputs", describe_inputs(model)), ("outputs", describe_outputs(model))):
        print(f"{label}: {'; '.join(items) or 'none'}")
    if args.print_pipeline:
        print(f"pipeline: {context.pipeline_text}")
    _final, report = manager.run(model)
    print(report.table())
    return 0

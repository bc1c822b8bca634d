"""Arguments and helpers shared by the commands that load a model and run a pipeline."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from transpiler.errors import DataError, InputError
from transpiler.pass_infra import PassContext

_SHAPE = re.compile(r"^[0-9]+(x[0-9]+)*$")


def default_onnx_pipeline(args: argparse.Namespace) -> str:
    """The ONNX-level pipeline run when --pipeline is not given (the one place that decides it).

    ``normalize``, then ``quantize`` when --data is given and the quantize pass is registered.
    """
    from transpiler.pass_infra import registry

    if getattr(args, "data", None) and "quantize" in registry():
        return "normalize,quantize"
    return "normalize"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --input-shape and --data."""
    parser.add_argument("model", metavar="MODEL", help="the .onnx file")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x1x28x28",
                        help="fix the symbolic dimensions of an input (repeat for several inputs)")
    parser.add_argument("--data", metavar="FILE.npz",
                        help="sample inputs (one array [N, ...] per input name) for calibration and checks")


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """--pipeline and the instrument flags of the pass manager."""
    parser.add_argument("--pipeline", metavar="TEXT",
                        help="the passes to run, e.g. 'normalize,sparsify{budget=64KiB}' "
                             "(`freeml-tx passes` lists them)")
    parser.add_argument("--print-pipeline", action="store_true", help="print the pipeline that runs")
    parser.add_argument("--print-after", action="append", default=[], metavar="NAME|all",
                        help="print the model after this pass (repeatable; 'all' for every pass)")
    parser.add_argument("--print-after-all", action="store_true", help="same as --print-after all")
    parser.add_argument("--print-after-change", action="store_true",
                        help="print the model after every pass that changed it")
    parser.add_argument("--dump-dir", metavar="DIR",
                        help="write NN-pass.onnx and NN-pass.json after every pass into DIR")
    parser.add_argument("--timing", action="store_true", help="print the time each pass took")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="print the passes' progress lines on stderr (e.g. each sparsify step); default: "
                             "the compression passes' steps when stderr is a terminal")
    parser.add_argument("--stop-after", metavar="NAME", help="stop after this pass")
    parser.add_argument("--verify", action="store_true", default=None,
                        help="check every semantics-preserving pass with onnxruntime "
                             "(default: on when FREEML_TX_VERIFY=1)")


def instrument_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for transpiler.instruments.make_instruments from the parsed flags."""
    print_after: list[str] | None = list(args.print_after) or None
    if args.print_after_all:
        print_after = ["all"]
    return {"print_after": print_after, "print_after_change": args.print_after_change,
            "dump_dir": args.dump_dir, "timing": args.timing, "stop_after": args.stop_after}


def parse_input_shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    """``["x=1x1x28x28"]`` -> ``{"x": (1, 1, 28, 28)}``; InputError for a malformed entry."""
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, dims = value.rpartition("=")
        if not sep or not name or not _SHAPE.match(dims):
            raise InputError(f"--input-shape '{value}' is not NAME=DIMS",
                             hint="write the input name and its dimensions joined by x, e.g. "
                                  "--input-shape input=1x1x28x28")
        shape = tuple(int(d) for d in dims.split("x"))
        if any(d <= 0 for d in shape):
            raise InputError(f"--input-shape '{value}' has a zero dimension",
                             hint="every dimension must be 1 or more")
        if name in shapes:
            raise InputError(f"--input-shape gives '{name}' twice")
        shapes[name] = shape
    return shapes


def load_data(path: str | None, model: Any, input_shapes: dict[str, tuple[int, ...]]) -> Any:
    """The --data file as a :class:`transpiler.data.Dataset` checked against the model's inputs
    (their shapes with ``input_shapes`` applied, without the batch axis); None without --data."""
    if path is None:
        return None
    from transpiler.data import load_dataset, token_vocab
    from transpiler.ort import input_specs

    per_sample = {spec.name: spec.shape[1:] if len(spec.shape) >= 2 else spec.shape
                  for spec in input_specs(model, input_shapes)}
    return load_dataset(path, per_sample, token_vocab(model.graph))


def shapes_from_data(path: str | None, model: Any, input_shapes: dict[str, tuple[int, ...]],
                     say: Any = None) -> dict[str, tuple[int, ...]]:
    """``input_shapes`` completed from the --data file: an input with a dynamic axis after the
    batch (a sequence length, an image size) and no --input-shape takes batch 1 and the per-sample
    shape of its data array, when that has the input's rank and agrees with its static axes.
    ``say`` (a print function) is told each shape taken; anything else is left for the usual checks."""
    if path is None:
        return dict(input_shapes)
    from transpiler.data import input_key, read_arrays
    from transpiler.ort import to_proto

    proto = to_proto(model)
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [vi for vi in proto.graph.input if vi.name not in initializers]
    shapes = dict(input_shapes)
    try:
        arrays = read_arrays(path, [vi.name for vi in inputs])
    except DataError:
        return shapes  # load_data reports an unreadable file
    for vi in inputs:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in vi.type.tensor_type.shape.dim]
        key = input_key(vi.name, [v.name for v in inputs], list(arrays))
        if vi.name in shapes or len(dims) < 2 or all(d is not None for d in dims[1:]) or key is None:
            continue
        sample = tuple(int(d) for d in arrays[key].shape[1:])
        if len(sample) != len(dims) - 1 or any(d is not None and d != g for d, g in zip(dims[1:], sample)):
            continue
        shapes[vi.name] = (1, *sample)
        if say is not None:
            say(f"note: input '{vi.name}' has dynamic axes; its shape is taken from --data: "
                f"--input-shape {vi.name}={'x'.join(map(str, shapes[vi.name]))}")
    return shapes


def make_context(args: argparse.Namespace, pipeline_text: str, model: Any,
                 input_shapes: dict[str, tuple[int, ...]]) -> PassContext:
    """The PassContext for a command: input shapes (completed from --data, :func:`shapes_from_data`),
    --data checked against ``model``, the command line."""
    import shlex

    data_path = getattr(args, "data", None)
    shapes = shapes_from_data(data_path, model, input_shapes, say=_stderr_line)
    return PassContext(data=load_data(data_path, model, shapes),
                       input_shapes=shapes,
                       command_line=shlex.join(["freeml-tx", *getattr(args, "argv", [])]),
                       pipeline_text=pipeline_text,
                       log=progress_log(getattr(args, "progress", None)))


LONG_PASSES = ("separate:", "sparsify:")
"""Passes whose progress lines show by default on a terminal: they fine-tune and can take minutes."""


def progress_log(flag: bool | None) -> Callable[[str], None] | None:
    """Where the passes' progress lines go: every line with --progress, none with --no-progress,
    by default (None) the lines of :data:`LONG_PASSES` when stderr is a terminal."""
    import sys

    if flag is not None:
        return _stderr_line if flag else None
    if not sys.stderr.isatty():
        return None
    return lambda text: _stderr_line(text) if text.startswith(LONG_PASSES) else None


def _stderr_line(text: str) -> None:
    """Where --progress sends the passes' progress lines."""
    import sys

    print(text, file=sys.stderr, flush=True)

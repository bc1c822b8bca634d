"""Pass-manager instruments: hooks around every pass (TVM style).

An :class:`Instrument` may trim the plan (``stop-after``), look at the model before and after each
pass (printing, dumping, verification), and clean up when the pipeline fails. The manager calls, in
order: ``plan`` once, ``before_pipeline``, then ``before_pass``/``after_pass`` per pass, and finally
``after_pipeline`` or ``on_error``.

Built-ins: :class:`PrintAfter` (``--print-after``, ``--print-after-change``), :class:`Dump`
(``--dump-dir``), :class:`Timing` (``--timing``), :class:`StopAfter` (``--stop-after``) and, in
:mod:`transpiler.equivalence`, the onnxruntime check of semantics-preserving passes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.printer

from transpiler.model import OnnxModel
from transpiler.outdir import AtomicOutputDir, check_replaceable
from transpiler.pass_infra import Pass, PassContext
from transpiler.pipeline import PassSpec, format_spec, pipeline_error
from transpiler.stats import PassRecord, PipelineReport, jsonable

PIPELINE_METADATA_KEY = "freeml_tx.pipeline"
DUMP_METADATA_KEY = "freeml_tx.dump"
ELIDE_ABOVE = 16  # initializers with more elements are shown as a summary when printing


@dataclass(frozen=True)
class PassInfo:
    """The pass being run: position (1-based), spec, class, options and the pipeline around it."""

    index: int
    spec: PassSpec
    pass_cls: type[Pass]
    options: Any
    pipeline: str
    so_far: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def level(self) -> str:
        return self.pass_cls.level


class Instrument:
    """Base class: every hook does nothing."""

    def plan(self, specs: list[PassSpec], pipeline_text: str) -> list[PassSpec]:
        """Check or trim the pipeline before anything runs."""
        return specs

    def before_pipeline(self, model: Any, pipeline: str, context: PassContext) -> None:
        """Called once before the first pass."""

    def before_pass(self, info: PassInfo, model: Any) -> None:
        """Called with the model a pass is about to get."""

    def after_pass(self, info: PassInfo, model: Any, record: PassRecord) -> None:
        """Called with the pass's output model and its record (which the hook may annotate)."""

    def after_pipeline(self, model: Any, report: PipelineReport) -> None:
        """Called once after the last pass."""

    def on_error(self, info: PassInfo | None, error: BaseException) -> None:
        """Called when the pipeline fails (``info`` is the failing pass, if any)."""


def _check_names(names: Collection[str], specs: list[PassSpec], text: str, flag: str) -> None:
    present = {s.name for s in specs}
    for name in names:
        if name not in present:
            raise pipeline_error(f"{flag} names '{name}', which is not in the pipeline", None, None,
                                 hint=f"the pipeline is: {text or '(empty)'}")


class PrintAfter(Instrument):
    """Print the model after the selected passes (all when ``select`` is None), optionally only
    when the pass changed it."""

    def __init__(self, select: Collection[str] | None = None, only_changed: bool = False,
                 stream: TextIO | None = None) -> None:
        self.select = set(select) if select is not None else None
        self.only_changed = only_changed
        self.stream = stream

    def plan(self, specs: list[PassSpec], pipeline_text: str) -> list[PassSpec]:
        if self.select is not None:
            _check_names(self.select, specs, pipeline_text, "--print-after")
        return specs

    def after_pass(self, info: PassInfo, model: Any, record: PassRecord) -> None:
        if self.select is not None and info.name not in self.select:
            return
        if self.only_changed and not record.changed:
            return
        out = self.stream or sys.stdout
        state = "changed" if record.changed else "unchanged"
        print(f"// ----- after {info.index} {format_spec(info.spec)} ({state}) -----", file=out)
        print(model_text(model), file=out)


class StopAfter(Instrument):
    """Run the pipeline only up to (and including) the first pass called ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def plan(self, specs: list[PassSpec], pipeline_text: str) -> list[PassSpec]:
        _check_names([self.name], specs, pipeline_text, "--stop-after")
        cut = [s.name for s in specs].index(self.name)
        return specs[:cut + 1]


class Timing(Instrument):
    """Print how long each pass took, and its share of the total, after the pipeline."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def after_pipeline(self, model: Any, report: PipelineReport) -> None:
        out = self.stream or sys.stdout
        total = report.total_ms or 1e-9
        print("timing:", file=out)
        for r in report.records:
            print(f"  {r.index:>2} {r.name:<24} {r.ms:10.1f} ms {100 * r.ms / total:5.1f}%", file=out)
        print(f"     {'total':<24} {report.total_ms:10.1f} ms", file=out)


class Dump(Instrument):
    """Write ``NN-pass.onnx`` (or ``.lir``) and ``NN-pass.json`` after every pass into ``directory``.

    Files go to a temp folder that is renamed into place at the end. When a pass fails, the dumps of
    the passes before it and an ``error.json`` are kept (that is what they are for); the folder still
    appears only complete.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.out = AtomicOutputDir(directory)
        self.tmp: Path | None = None
        self.pipeline = ""
        self.width = 2

    def plan(self, specs: list[PassSpec], pipeline_text: str) -> list[PassSpec]:
        check_replaceable(self.out.path)  # refuse a foreign folder before anything runs
        self.width = max(2, len(str(len(specs))))
        return specs

    def before_pipeline(self, model: Any, pipeline: str, context: PassContext) -> None:
        self.pipeline = pipeline
        self.tmp = self.out.open()

    def after_pass(self, info: PassInfo, model: Any, record: PassRecord) -> None:
        assert self.tmp is not None
        stem = f"{info.index:0{self.width}d}-{info.name}"
        facts = {
            "index": info.index, "pass": info.name, "spec": format_spec(info.spec),
            "options": jsonable(dataclasses.asdict(info.options)), "pipeline": info.pipeline,
            "pipeline_so_far": info.so_far, "changed": record.changed,
            "stats": dataclasses.asdict(record.stats), "pass_stats": jsonable(record.pass_stats),
            "ms": round(record.ms, 3), "freeml_tx_version": _version(),
        }
        if isinstance(model, OnnxModel):
            proto = model.to_proto()
            _set_metadata(proto, PIPELINE_METADATA_KEY, info.pipeline)
            _set_metadata(proto, DUMP_METADATA_KEY, json.dumps(
                {"index": info.index, "pass": info.name, "options": facts["options"],
                 "pipeline_so_far": info.so_far}, sort_keys=True))
            onnx.save(proto, str(self.tmp / f"{stem}.onnx"))
        else:
            (self.tmp / f"{stem}.lir").write_text(model_text(model), encoding="utf-8")
        self._write_json(f"{stem}.json", facts)

    def after_pipeline(self, model: Any, report: PipelineReport) -> None:
        if self.tmp is not None:
            self._write_json("report.json", report.to_json())
            self.out.commit()
            self.tmp = None

    def on_error(self, info: PassInfo | None, error: BaseException) -> None:
        if self.tmp is None:
            return
        if not isinstance(error, Exception):  # interrupted: leave nothing behind
            self.out.abort()
            self.tmp = None
            return
        render = getattr(error, "render", None)
        self._write_json("error.json", {
            "pass": info.name if info else None, "index": info.index if info else None,
            "pipeline": self.pipeline, "pipeline_so_far": info.so_far if info else "",
            "error": render() if callable(render) else f"{type(error).__name__}: {error}",
        })
        self.out.commit()
        self.tmp = None

    def _write_json(self, name: str, data: Any) -> None:
        assert self.tmp is not None
        (self.tmp / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _set_metadata(proto: onnx.ModelProto, key: str, value: str) -> None:
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value


def _version() -> str:
    from transpiler import __version__

    return __version__


def model_text(model: Any) -> str:
    """Readable text of a model: onnx.printer text (large initializers summarised) plus annotations
    for an OnnxModel; the LIR text form for a LIR Program."""
    if isinstance(model, OnnxModel):
        proto = model.to_proto()
        for tensor in proto.graph.initializer:
            _elide(tensor)
        lines = [onnx.printer.to_text(proto).rstrip()]
        for target, kind, value in model.annotations.items():
            shown = json.dumps(value)
            lines.append(f"# {target} {kind} = {shown if len(shown) <= 120 else shown[:117] + '...'}")
        return "\n".join(lines)
    try:
        from transpiler.lir.text import print_program
    except ImportError:  # the LIR text form is not available in this build
        return _lir_summary(model)
    return print_program(model)


def _elide(tensor: onnx.TensorProto) -> None:
    array = onnx.numpy_helper.to_array(tensor)
    if array.size <= ELIDE_ABOVE:
        return
    summary = f"{array.size} values"
    if array.size and np.issubdtype(array.dtype, np.number):
        summary += f", min {array.min():.4g}, max {array.max():.4g}, {np.count_nonzero(array)} non-zero"
    name, dtype, dims = tensor.name, tensor.data_type, list(tensor.dims)
    tensor.Clear()
    tensor.name, tensor.data_type = name, dtype
    tensor.dims.extend(dims)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "elided", summary


def _lir_summary(program: Any) -> str:
    lines = [f"program {program.name}: {len(program.buffers)} buffers, {len(program.steps)} steps"]
    for step in program.steps:
        lines.append(f"  {step.name}: {', '.join(step.outputs)} = {step.op}({', '.join(step.inputs)})")
    return "\n".join(lines)


def make_instruments(*, print_after: str | Sequence[str] | None = None, print_after_change: bool = False,
                     dump_dir: str | os.PathLike[str] | None = None, timing: bool = False,
                     stop_after: str | None = None, stream: TextIO | None = None) -> list[Instrument]:
    """The instruments for the usual options (the CLI flags and ``run_pipeline`` keywords).

    ``print_after`` is a pass name, a list of names, or ``"all"``.
    """
    instruments: list[Instrument] = []
    if stop_after:
        instruments.append(StopAfter(stop_after))
    if print_after or print_after_change:
        if print_after is None or print_after == "all" or (
                not isinstance(print_after, str) and "all" in print_after):
            select = None
        else:
            select = [print_after] if isinstance(print_after, str) else list(print_after)
        instruments.append(PrintAfter(select, only_changed=print_after_change, stream=stream))
    if dump_dir is not None:
        instruments.append(Dump(dump_dir))
    if timing:
        instruments.append(Timing(stream=stream))
    return instruments

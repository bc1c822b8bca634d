"""The pass manager: check a whole pipeline up front, then run it with instruments around each pass.

Before anything runs, :meth:`PassManager.plan` resolves every pass name and its options, checks the
level order (``onnx`` passes take an OnnxModel, ``lower`` turns it into a LIR Program, ``lir`` passes
take a Program) and that every pass's ``requires`` is established by an earlier pass's ``ensures``
(or by the input model's recorded properties) and not lost to an ``invalidates``. While running, a
pass that raises becomes a :class:`PassError` naming the pass and the pipeline so far (a
:class:`FreemlError` keeps its kind and gets the pass name filled in).

The properties that hold after a pass are recorded in the model's metadata
(``freeml_tx.properties``), so a dumped model can be resumed with the rest of the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transpiler.equivalence import VerifySemantics, verify_enabled
from transpiler.errors import FreemlError, Location, PassError, PipelineError
from transpiler.instruments import Instrument, PassInfo, make_instruments
from transpiler.lir.ir import Program
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassContext, PassResult, get_pass, registry
from transpiler.pipeline import PassSpec, build_options, format_pipeline, format_spec, parse_pipeline
from transpiler.stats import PassRecord, PipelineReport, model_stats

PROPERTIES_KEY = "freeml_tx.properties"
LEVELS = ("onnx", "lower", "lir")


@dataclass(frozen=True)
class PlannedPass:
    """A pass ready to run: its spec, class and typed options."""

    spec: PassSpec
    pass_cls: type[Pass]
    options: Any


def model_level(model: Any) -> str:
    """``"onnx"`` for an OnnxModel, ``"lir"`` for a LIR Program."""
    if isinstance(model, OnnxModel):
        return "onnx"
    if isinstance(model, Program):
        return "lir"
    raise TypeError(f"the pass manager runs on an OnnxModel or a LIR Program, not {type(model).__name__}")


def recorded_properties(model: Any) -> frozenset[str]:
    """The properties recorded in the model's metadata by an earlier run."""
    meta = model.metadata if isinstance(model, OnnxModel) else getattr(model, "meta", {})
    text = meta.get(PROPERTIES_KEY, "")
    return frozenset(p for p in text.split(",") if p)


def _record_properties(model: Any, properties: frozenset[str]) -> None:
    meta = model.metadata if isinstance(model, OnnxModel) else getattr(model, "meta", None)
    if meta is None:
        return
    if properties:
        meta[PROPERTIES_KEY] = ",".join(sorted(properties))
    else:
        meta.pop(PROPERTIES_KEY, None)


class PassManager:
    """Runs a pipeline (text or specs) over a model; see the module docstring."""

    def __init__(self, pipeline: str | Sequence[PassSpec], context: PassContext | None = None,
                 instruments: Sequence[Instrument] = (), *, verify: bool | None = None,
                 assume: frozenset[str] | set[str] = frozenset()) -> None:
        self.specs = parse_pipeline(pipeline) if isinstance(pipeline, str) else list(pipeline)
        self.context = context if context is not None else PassContext()
        self.instruments = list(instruments)
        if verify_enabled(verify):
            self.instruments.append(VerifySemantics())
        self.assume = frozenset(assume)

    @property
    def pipeline_text(self) -> str:
        """The pipeline as given (before instruments such as stop-after trim it)."""
        return format_pipeline(self.specs)

    def planned_specs(self) -> list[PassSpec]:
        """The specs after every instrument's ``plan`` hook (e.g. cut at --stop-after)."""
        specs = list(self.specs)
        text = format_pipeline(specs)
        for instrument in self.instruments:
            specs = instrument.plan(specs, text)
        return specs

    def plan(self, level: str = "onnx", established: frozenset[str] = frozenset()) -> list[PlannedPass]:
        """Resolve and check the whole pipeline for a model of ``level``; raises PipelineError."""
        planned = [self._resolve(spec) for spec in self.planned_specs()]
        _check_levels(planned, level)
        _check_properties(planned, established | self.assume)
        return planned

    def _resolve(self, spec: PassSpec) -> PlannedPass:
        try:
            cls = get_pass(spec.name)
        except PipelineError as exc:
            raise spec.error(exc.message, hint=exc.hint) from None
        if cls.level not in LEVELS:
            raise spec.error(f"pass '{spec.name}' declares level '{cls.level}', not one of {', '.join(LEVELS)}")
        return PlannedPass(spec, cls, build_options(cls, spec))

    def run(self, model: Any) -> tuple[Any, PipelineReport]:
        """Run the pipeline; returns the final model (an OnnxModel or a Program) and the report."""
        properties = recorded_properties(model)
        planned = self.plan(model_level(model), properties)
        text = format_pipeline(p.spec for p in planned)
        properties |= self.assume
        if not self.context.pipeline_text:
            self.context.pipeline_text = text
        report = PipelineReport(pipeline=text, input=model_stats(model))
        if len(planned) < len(self.specs):
            report.stopped_after = planned[-1].spec.name if planned else None
        for instrument in self.instruments:
            instrument.before_pipeline(model, text, self.context)
        info: PassInfo | None = None
        try:
            for index, step in enumerate(planned, start=1):
                info = PassInfo(index, step.spec, step.pass_cls, step.options, text,
                                format_pipeline(p.spec for p in planned[:index]))
                for instrument in self.instruments:
                    instrument.before_pass(info, model)
                result, ms = self._run_one(step, info, model)
                properties = (properties - step.pass_cls.invalidates) | step.pass_cls.ensures
                _record_properties(result.model, properties)
                record = PassRecord(index, step.spec.name, format_spec(step.spec), step.pass_cls.level,
                                    bool(result.changed), model_stats(result.model), ms, dict(result.stats))
                report.records.append(record)
                model = result.model
                for instrument in self.instruments:
                    instrument.after_pass(info, model, record)
            info = None
            for instrument in self.instruments:
                instrument.after_pipeline(model, report)
        except BaseException as exc:
            for instrument in self.instruments:
                instrument.on_error(info, exc)
            raise
        return model, report

    def _run_one(self, step: PlannedPass, info: PassInfo, model: Any) -> tuple[PassResult[Any], float]:
        name = step.spec.name
        so_far = f"pipeline so far: {info.so_far}  <- failed here"
        instance = step.pass_cls(step.options, self.context)
        start = time.perf_counter()
        try:
            result = instance.run(model)
        except FreemlError as exc:
            if exc.location.pass_name is None:
                exc.location.pass_name = name
            exc.details.append(so_far)
            raise
        except Exception as exc:
            raise PassError(f"pass '{name}' failed: {type(exc).__name__}: {exc}",
                            location=Location(pass_name=name, file=getattr(model, "source", None)),
                            details=[so_far],
                            hint="this is a bug in the pass; re-run with --debug for the traceback and "
                                 "--dump-dir DIR to keep the models before it") from exc
        ms = (time.perf_counter() - start) * 1000.0
        expected = OnnxModel if step.pass_cls.level == "onnx" else Program
        if not isinstance(result, PassResult) or not isinstance(result.model, expected):
            got = type(result.model if isinstance(result, PassResult) else result).__name__
            raise PassError(f"pass '{name}' returned {got}, expected a PassResult holding a "
                            f"{expected.__name__}", location=Location(pass_name=name), details=[so_far],
                            hint="this is a bug in the pass: run() must return PassResult(model, changed)")
        return result, ms


def _check_levels(planned: list[PlannedPass], level: str) -> None:
    lower_at = next((i for i, p in enumerate(planned) if p.pass_cls.level == "lower"), None)
    for index, step in enumerate(planned):
        want = step.pass_cls.level
        name = step.spec.name
        if want in ("onnx", "lower") and level == "lir":
            where = ("the input is a LIR program" if lower_at is None or index < lower_at else
                     f"it comes after '{planned[lower_at].spec.name}', which made the model LIR")
            raise step.spec.error(f"pass '{name}' works on ONNX models, but {where}",
                                  hint="ONNX-level passes go before 'lower'")
        if want == "lir" and level == "onnx":
            hint = (f"move it after '{planned[lower_at].spec.name}'" if lower_at is not None else
                    "add 'lower' before it (the ONNX model must be lowered to LIR first)")
            raise step.spec.error(f"pass '{name}' works on LIR programs, but the model is still ONNX here",
                                  hint=hint)
        if want == "lower":
            level = "lir"


def _check_properties(planned: list[PlannedPass], established: frozenset[str]) -> None:
    have = set(established)
    lost_by: dict[str, str] = {}
    for step in planned:
        missing = sorted(step.pass_cls.requires - have)
        if missing:
            prop = missing[0]
            providers = [n for n, cls in registry().items() if prop in cls.ensures]
            if prop in lost_by:
                hint = (f"'{lost_by[prop]}' invalidates it; run "
                        f"{' or '.join(repr(p) for p in providers) or 'a pass that ensures it'} again after it")
            elif providers:
                hint = f"add {' or '.join(repr(p) for p in providers)} before '{step.spec.name}'"
            else:
                hint = "no registered pass ensures it"
            raise step.spec.error(f"pass '{step.spec.name}' requires '{prop}', which no earlier pass "
                                  f"establishes" + (f" (also missing: {', '.join(missing[1:])})"
                                                    if len(missing) > 1 else ""), hint=hint)
        for prop in step.pass_cls.invalidates:
            if prop in have:
                lost_by[prop] = step.spec.name
        have -= step.pass_cls.invalidates
        have |= step.pass_cls.ensures
        for prop in step.pass_cls.ensures:
            lost_by.pop(prop, None)


def run_pipeline(model: Any, pipeline_text: str, context: PassContext | None = None, *,
                 verify: bool | None = None, **instrument_options: Any) -> tuple[Any, PipelineReport]:
    """Run ``pipeline_text`` over ``model``; returns (final model, report).

    Keywords: ``print_after`` (a pass name, a list, or "all"), ``print_after_change``,
    ``dump_dir``, ``timing``, ``stop_after``, ``stream`` (where printing goes) and ``verify``
    (default: the FREEML_TX_VERIFY environment variable).
    """
    instruments = make_instruments(**instrument_options)
    manager = PassManager(pipeline_text, context, instruments, verify=verify)
    return manager.run(model)

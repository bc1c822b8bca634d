"""The pass manager: up-front pipeline checks, errors naming the pass, verification, instruments."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import pytest

import transpiler as fx
from transpiler import pass_infra
from transpiler.errors import PassError, PipelineError, UnsupportedError, VerificationError
from transpiler.lir.ir import Program
from transpiler.manager import PROPERTIES_KEY, PassManager
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult


@dataclass(frozen=True)
class ScaleOptions:
    factor: float = 1.0


class ScaleWeights(Pass):
    """Multiply the weight W by a factor (keeps the numbers only for factor=1).

    Before -> after::  MatMul(x, W)  ->  MatMul(x, factor * W)
    """

    name = "t-scale"
    options_type = ScaleOptions
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        weight = model.graph.tensors()["W"]
        weight.values = (np.asarray(weight.values) * self.options.factor).astype(np.float32)
        return PassResult(model, self.options.factor != 1.0, {"factor": self.options.factor})


class PruneHalf(Pass):
    """Zero the smaller half of W by magnitude."""

    name = "t-prune"

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        weight = model.graph.tensors()["W"]
        values = np.asarray(weight.values).copy()
        cut = np.median(np.abs(values))
        values[np.abs(values) < cut] = 0.0
        weight.values = values
        return PassResult(model, True, {"zeroed": int(np.sum(values == 0))})


class Noop(Pass):
    """Do nothing."""

    name = "t-noop"
    preserves_semantics = True

    def run(self, model: Any) -> PassResult[Any]:
        return PassResult(model, False)


class Normalizes(Noop):
    """Establish the property t-normal."""

    name = "t-norm"
    ensures = frozenset({"t-normal"})


class Needs(Noop):
    """Require the property t-normal."""

    name = "t-needs"
    requires = frozenset({"t-normal"})


class Breaks(Noop):
    """Invalidate the property t-normal."""

    name = "t-breaks"
    invalidates = frozenset({"t-normal"})


class Count(Noop):
    """Count how often it ran."""

    name = "t-count"
    runs: ClassVar[int] = 0

    def run(self, model: Any) -> PassResult[Any]:
        Count.runs += 1
        return PassResult(model, False)


class Crash(Noop):
    """Fail with an ordinary exception."""

    name = "t-crash"

    def run(self, model: Any) -> PassResult[Any]:
        raise ValueError("boom")


class UserError(Noop):
    """Fail with a user-facing error."""

    name = "t-user-error"

    def run(self, model: Any) -> PassResult[Any]:
        raise UnsupportedError("op Foo is not supported")


class BadReturn(Noop):
    """Return the model instead of a PassResult."""

    name = "t-bad-return"

    def run(self, model: Any) -> Any:
        return model


class Lower(Pass):
    """Turn the ONNX model into an empty LIR program."""

    name = "t-lower"
    level = "lower"

    def run(self, model: OnnxModel) -> PassResult[Program]:
        return PassResult(Program(name=model.name), True)


class LirNoop(Pass):
    """Do nothing to a LIR program."""

    name = "t-lir"
    level = "lir"

    def run(self, model: Program) -> PassResult[Program]:
        return PassResult(model, False)


ALL = (ScaleWeights, PruneHalf, Noop, Normalizes, Needs, Breaks, Count, Crash, UserError, BadReturn,
       Lower, LirNoop)


@pytest.fixture
def model(tiny_model: Any, register_passes: Any) -> OnnxModel:
    register_passes(*ALL)
    Count.runs = 0
    return fx.load(tiny_model("mlp"))


def test_report_has_figures_per_pass(model: OnnxModel) -> None:
    _final, report = fx.run_pipeline(model, "t-noop,t-prune", verify=False)
    assert report.names() == ["t-noop", "t-prune"]
    assert report.input.params == 15 and report.input.nonzeros == 15 and report.input.weight_bytes == 60
    assert report["t-noop"].changed is False
    pruned = report["t-prune"]
    assert pruned.changed and pruned.stats.nodes == 3 and pruned.stats.params == 15
    assert pruned.stats.nonzeros == 15 - pruned.pass_stats["zeroed"] < 15
    table = report.table()
    assert "t-prune" in table and "non-zeros" in table and "zeroed: " in table


def test_semantics_preserving_pass_is_verified(model: OnnxModel) -> None:
    _final, report = fx.run_pipeline(model, "t-scale{factor=1.0}", verify=True)
    assert report["t-scale"].verified is not None and report["t-scale"].verified.startswith("ok")


def test_pass_that_changes_numbers_fails_verification(model: OnnxModel) -> None:
    with pytest.raises(VerificationError) as info:
        fx.run_pipeline(model, "t-noop,t-scale{factor=3}", verify=True)
    err = info.value
    assert err.location.pass_name == "t-scale"
    assert "output 'y'" in err.message and "differs by up to" in err.message
    assert any("t-noop,t-scale{factor=3}" in d for d in err.details)


def test_verification_follows_env_and_flag(model: OnnxModel, monkeypatch: pytest.MonkeyPatch) -> None:
    fx.run_pipeline(model.copy(), "t-scale{factor=3}", verify=False)  # explicit off wins
    monkeypatch.setenv("FREEML_TX_VERIFY", "0")
    fx.run_pipeline(model.copy(), "t-scale{factor=3}")
    monkeypatch.setenv("FREEML_TX_VERIFY", "1")
    with pytest.raises(VerificationError):
        fx.run_pipeline(model.copy(), "t-scale{factor=3}")


def test_verification_uses_context_data(model: OnnxModel) -> None:
    data = {"x": np.zeros((5, 4), np.float32)}
    # With all-zero inputs, MatMul(x, 3W) == MatMul(x, W): the wrong pass goes unnoticed, which
    # proves the check ran on the data, not on random inputs.
    context = fx.PassContext(data=data)
    fx.run_pipeline(model, "t-scale{factor=3}", context, verify=True)


def test_requires_checked_before_anything_runs(model: OnnxModel) -> None:
    with pytest.raises(PipelineError) as info:
        fx.run_pipeline(model, "t-count,t-needs,t-norm")
    assert Count.runs == 0
    err = info.value
    assert "t-needs" in err.message and "t-normal" in err.message
    assert err.hint is not None and "t-norm" in err.hint
    assert err.details[1].index("^") == len("t-count,")


def test_invalidated_property_names_the_culprit(model: OnnxModel) -> None:
    with pytest.raises(PipelineError) as info:
        fx.run_pipeline(model, "t-norm,t-breaks,t-needs")
    assert "t-breaks" in (info.value.hint or "")
    fx.run_pipeline(model, "t-norm,t-breaks,t-norm,t-needs")


def test_properties_travel_with_the_model(model: OnnxModel, tmp_path: Path) -> None:
    normal, _ = fx.run_pipeline(model, "t-norm")
    assert normal.metadata[PROPERTIES_KEY] == "t-normal"
    fx.save(normal, tmp_path / "normal.onnx")
    resumed, report = fx.run_pipeline(fx.load(tmp_path / "normal.onnx"), "t-needs")
    assert report.names() == ["t-needs"]


@pytest.mark.parametrize("pipeline, words", [
    ("t-lir", ["t-lir", "LIR", "still ONNX"]),
    ("t-lir,t-lower", ["t-lir", "move it after 't-lower'"]),
    ("t-lower,t-noop", ["t-noop", "ONNX", "t-lower"]),
    ("t-lower,t-lower", ["t-lower", "ONNX"]),
])
def test_level_order_is_checked(model: OnnxModel, pipeline: str, words: list[str]) -> None:
    with pytest.raises(PipelineError) as info:
        fx.run_pipeline(model, pipeline)
    text = info.value.render()
    for word in words:
        assert word in text


def test_model_type_changes_at_lower(model: OnnxModel) -> None:
    program, report = fx.run_pipeline(model, "t-noop,t-lower,t-lir")
    assert isinstance(program, Program)
    assert [r.level for r in report.records] == ["onnx", "lower", "lir"]
    assert report["t-lir"].stats.level == "lir"


def test_crash_becomes_pass_error_with_pipeline_so_far(model: OnnxModel) -> None:
    with pytest.raises(PassError) as info:
        fx.run_pipeline(model, "t-noop,t-crash,t-prune")
    err = info.value
    assert err.location.pass_name == "t-crash"
    assert "ValueError: boom" in err.message
    assert any("t-noop,t-crash" in d and "t-prune" not in d for d in err.details)
    assert isinstance(err.__cause__, ValueError)


def test_user_error_keeps_its_kind_and_gets_the_pass(model: OnnxModel) -> None:
    with pytest.raises(UnsupportedError) as info:
        fx.run_pipeline(model, "t-noop,t-user-error")
    assert info.value.location.pass_name == "t-user-error"
    assert "pass 't-user-error'" in info.value.render()


def test_bad_return_value_is_a_pass_error(model: OnnxModel) -> None:
    with pytest.raises(PassError, match="PassResult"):
        fx.run_pipeline(model, "t-bad-return")


def test_unknown_pass_and_option(model: OnnxModel) -> None:
    with pytest.raises(PipelineError) as info:
        fx.run_pipeline(model, "t-noop,t-nope")
    assert info.value.location.column == len("t-noop,") + 1
    with pytest.raises(PipelineError) as info:
        fx.run_pipeline(model, "t-scale{size=3}")
    assert "t-scale" in info.value.message and "size" in info.value.message
    assert "factor" in (info.value.hint or "")


def test_stop_after(model: OnnxModel) -> None:
    _final, report = fx.run_pipeline(model, "t-noop,t-prune,t-count", stop_after="t-prune")
    assert report.names() == ["t-noop", "t-prune"] and report.stopped_after == "t-prune"
    assert Count.runs == 0
    with pytest.raises(PipelineError, match="--stop-after"):
        fx.run_pipeline(model, "t-noop", stop_after="t-prune")


def test_print_after_and_print_after_change(model: OnnxModel) -> None:
    out = io.StringIO()
    fx.run_pipeline(model.copy(), "t-noop,t-prune", print_after="t-noop", stream=out)
    text = out.getvalue()
    assert "after 1 t-noop (unchanged)" in text and "MatMul" in text and "after 2" not in text
    out = io.StringIO()
    fx.run_pipeline(model.copy(), "t-noop,t-prune", print_after_change=True, stream=out)
    assert "after 1" not in out.getvalue() and "after 2 t-prune (changed)" in out.getvalue()
    with pytest.raises(PipelineError, match="--print-after"):
        fx.run_pipeline(model.copy(), "t-noop", print_after="t-prune")


def test_timing(model: OnnxModel) -> None:
    out = io.StringIO()
    fx.run_pipeline(model, "t-noop,t-prune", timing=True, stream=out)
    assert "timing:" in out.getvalue() and "t-prune" in out.getvalue() and "total" in out.getvalue()


def test_dump_dir(model: OnnxModel, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    fx.run_pipeline(model, "t-noop,t-scale{factor=1.0},t-lower", dump_dir=dump)
    names = sorted(p.name for p in dump.iterdir())
    assert {"01-t-noop.onnx", "01-t-noop.json", "02-t-scale.onnx", "02-t-scale.json",
            "03-t-lower.lir", "03-t-lower.json", "report.json"} <= set(names)
    facts = json.loads((dump / "02-t-scale.json").read_text())
    assert facts["pipeline"] == "t-noop,t-scale{factor=1.0},t-lower"
    assert facts["options"] == {"factor": 1.0} and facts["pipeline_so_far"] == "t-noop,t-scale{factor=1.0}"
    assert facts["stats"]["params"] == 15
    proto = onnx.load(str(dump / "02-t-scale.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["freeml_tx.pipeline"] == facts["pipeline"]
    assert json.loads(meta["freeml_tx.dump"])["options"] == {"factor": 1.0}
    assert fx.load(dump / "02-t-scale.onnx").graph.nodes  # the dumps load back
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_dump_dir_on_failure_keeps_complete_dumps_and_error(model: OnnxModel, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    with pytest.raises(PassError):
        fx.run_pipeline(model, "t-noop,t-crash", dump_dir=dump)
    assert sorted(p.name for p in dump.iterdir() if not p.name.startswith(".")) == [
        "01-t-noop.json", "01-t-noop.onnx", "error.json"]
    error = json.loads((dump / "error.json").read_text())
    assert error["pass"] == "t-crash" and "boom" in error["error"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_pipeline_errors_leave_no_dump(model: OnnxModel, tmp_path: Path) -> None:
    with pytest.raises(PipelineError):
        fx.run_pipeline(model, "t-needs", dump_dir=tmp_path / "dump")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx"]


def test_manager_accepts_parsed_specs(model: OnnxModel) -> None:
    manager = PassManager(fx.parse_pipeline("t-noop,t-prune"), verify=False)
    assert manager.pipeline_text == "t-noop,t-prune"
    _final, report = manager.run(model)
    assert report.pipeline == "t-noop,t-prune"


def test_registry_picks_up_entry_points(monkeypatch: pytest.MonkeyPatch, register_passes: Any) -> None:
    class Plugin(Noop):
        """A pass from another package."""

        name = "t-plugin"

    point = EntryPoint(name="t-plugin", value="somewhere:Plugin", group=pass_infra.ENTRY_POINT_GROUP)
    monkeypatch.setattr(EntryPoint, "load", lambda self: Plugin)
    monkeypatch.setattr(pass_infra, "entry_points",
                        lambda group: [point] if group == pass_infra.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(pass_infra, "_entry_points_loaded", False)
    assert fx.registry()["t-plugin"] is Plugin

"""Property: `normalize` keeps onnxruntime's outputs and produces the normal form, on random models."""

from __future__ import annotations

from collections import Counter

import onnx
from hypothesis import HealthCheck, given, note, settings

from normalize_helpers import assert_same_outputs, load, run_pass
import strategies_onnx

from passes.check_supported import check_normal_form
from passes.normalize import Normalize

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(model: onnx.ModelProto, inputs: dict) -> None:
    note(model.doc_string)
    try:
        result = run_pass(Normalize, load(model))
        after = result.model.to_proto()
        onnx.checker.check_model(after)
        assert_same_outputs(model, after, inputs)
        assert check_normal_form(result.model) == []
    except BaseException:
        note(f"saved to {strategies_onnx.save_model(model, 'normalize-property')}")
        raise


@SETTINGS
@given(strategies_onnx.onnx_models(opsets=(11, 13, 17, 18)))
def test_normalize_preserves_outputs_and_reaches_normal_form(case: tuple) -> None:
    _check(*case)


@settings(max_examples=15, deadline=None)
@given(strategies_onnx.onnx_models(quirks=False, dims=(0, 1, 2)))
def test_models_in_normal_form_pass_through_unchanged(case: tuple) -> None:
    model, inputs = case
    note(model.doc_string)
    before = load(model)
    assert all("no origin annotation" in p for p in check_normal_form(before)), check_normal_form(before)
    result = run_pass(Normalize, before)
    assert check_normal_form(result.model) == []
    before_ops = Counter(n.op_type for n in model.graph.node)
    after_ops = Counter(n.op for n in result.model.graph.nodes)
    assert not after_ops - before_ops  # nothing new; only per-channel Mul/Add folded into Conv/Gemm go
    assert set(before_ops - after_ops) <= {"Mul", "Add"}
    assert_same_outputs(model, result.model.to_proto(), inputs)

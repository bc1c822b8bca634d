"""Property tests on random op chains (tests/strategies_onnx.py): forward == onnxruntime, gradients ==
finite differences."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import HealthCheck, given, note, settings

import strategies_onnx
from train_helpers import batch_inputs, check_gradients, normalized, ort_batch, to_model

from passes.train import build_net

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _forward_matches(model_proto: onnx.ModelProto, normalize: bool) -> None:
    note(model_proto.doc_string)
    try:
        model = normalized(model_proto) if normalize else to_model(model_proto)
        net = build_net(model, train_affine=True)
        feeds = batch_inputs(net, 3, seed=0)
        ours = net.forward(feeds)
        ref = ort_batch(model_proto if not normalize else model, feeds)
        for name in net.outputs:
            np.testing.assert_allclose(ours[name], ref[name], rtol=1e-4, atol=1e-5, err_msg=name)
    except BaseException:
        note(f"saved to {strategies_onnx.save_model(model_proto, 'train-forward')}")
        raise


@SETTINGS
@given(strategies_onnx.onnx_models(quirks=False))
def test_forward_matches_onnxruntime_on_normal_form_chains(case: tuple) -> None:
    _forward_matches(case[0], normalize=False)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies_onnx.onnx_models(quirks=True, opsets=(13, 17)))
def test_forward_matches_onnxruntime_after_normalize(case: tuple) -> None:
    _forward_matches(case[0], normalize=True)


@SETTINGS
@given(strategies_onnx.onnx_models(quirks=False))
def test_gradients_match_finite_differences_on_random_chains(case: tuple) -> None:
    proto, _ = case
    note(proto.doc_string)
    net = build_net(to_model(proto), train_affine=True, dtype=np.float64)
    problems = check_gradients(net, batch_inputs(net, 2, seed=1), seed=2)
    if problems:
        note(f"saved to {strategies_onnx.save_model(proto, 'train-gradients')}")
    assert problems == []

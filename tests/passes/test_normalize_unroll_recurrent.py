"""unroll-recurrent: torch's nn.LSTM / nn.GRU / nn.RNN (legacy and dynamo exports) unrolled by
`normalize` compute what onnxruntime computes on the original model, in the normal form; the
per-gate weights are one initializer for all steps; unsupported variants give one clear error."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import onnx
import pytest
from normalize_helpers import load, ort_run, parse, rand, run_pass, torch_export

from passes.check_supported import check_normal_form
from passes.normalize import Normalize
from transpiler.errors import UnsupportedError

torch = pytest.importorskip("torch")


class SeqNet(torch.nn.Module):
    """A recurrent layer on a [1, T, F] signal, then nn.Linear on the last step (or on all steps)."""

    def __init__(self, kind: str, features: int, hidden: int, layers: int, batch_first: bool,
                 bidirectional: bool = False, nonlinearity: str = "tanh", length: int = 0, whole: bool = False):
        super().__init__()
        extra: dict[str, Any] = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
        self.rnn = getattr(torch.nn, kind)(features, hidden, num_layers=layers, batch_first=batch_first,
                                           bidirectional=bidirectional, **extra)
        self.batch_first, self.whole = batch_first, whole
        width = hidden * (2 if bidirectional else 1)
        self.fc = torch.nn.Linear(width * (length if whole else 1), 5)

    def forward(self, x: Any) -> Any:
        if not self.batch_first:
            x = x.permute(1, 0, 2)                      # the model's input stays [1, T, F]
        y, _ = self.rnn(x)
        if not self.batch_first:
            y = y.permute(1, 0, 2)
        if self.whole:
            return self.fc(y.flatten(1))
        return self.fc(y[:, -1])


CASES = {
    # name: (kind, features, hidden, layers, batch_first, bidirectional, nonlinearity, length)
    "lstm-bf-1x16-t8": ("LSTM", 3, 16, 1, True, False, "tanh", 8),
    "lstm-sf-2x32-t40": ("LSTM", 4, 32, 2, False, False, "tanh", 40),
    "lstm-bf-bidir-1x16-t12": ("LSTM", 3, 16, 1, True, True, "tanh", 12),
    "gru-bf-2x16-t20": ("GRU", 2, 16, 2, True, False, "tanh", 20),
    "gru-sf-1x32-t8": ("GRU", 6, 32, 1, False, False, "tanh", 8),
    "gru-bf-bidir-2x16-t10": ("GRU", 3, 16, 2, True, True, "tanh", 10),
    "rnn-tanh-bf-1x16-t40": ("RNN", 1, 16, 1, True, False, "tanh", 40),
    "rnn-relu-sf-2x32-t16": ("RNN", 3, 32, 2, False, False, "relu", 16),
}


def _model(case: str, dynamo: bool = False, whole: bool = False) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    kind, features, hidden, layers, bf, bidir, nl, length = CASES[case]
    torch.manual_seed(sorted(CASES).index(case))
    net = SeqNet(kind, features, hidden, layers, bf, bidir, nl, length, whole)
    shape = (1, length, features)
    return torch_export(net, torch.zeros(shape), dynamic_batch=False, dynamo=dynamo), shape


def _check(proto: onnx.ModelProto, shape: tuple[int, ...], samples: int = 6) -> onnx.ModelProto:
    """normalize; the result is in the normal form and equals onnxruntime on the original."""
    model = run_pass(Normalize, load(proto)).model
    assert not check_normal_form(model)
    after = model.to_proto()
    ops = Counter(n.op_type for n in after.graph.node)
    assert not {"LSTM", "GRU", "RNN"} & set(ops), ops
    name_before, name_after = proto.graph.input[0].name, after.graph.input[0].name
    for s in range(samples):
        x = (2.0 * rand(*shape, seed=s)).astype(np.float32)
        want = list(ort_run(proto, {name_before: x}).values())[0]
        got = list(ort_run(after, {name_after: x}).values())[0]
        np.testing.assert_allclose(got.reshape(-1), want.reshape(-1), rtol=1e-4, atol=2e-5)
    return after


@pytest.mark.parametrize("case", sorted(CASES))
def test_legacy_export_unrolled_equals_onnxruntime(case: str) -> None:
    proto, shape = _model(case)
    after = _check(proto, shape)
    kind, features, hidden, layers, _, bidir, _, length = CASES[case]
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    dirs = 2 if bidir else 1
    # one initializer per gate and matrix (W, R) and direction and layer, read by every step's Gemm
    gemm_weights = Counter(n.input[1] for n in after.graph.node if n.op_type == "Gemm")
    assert len(gemm_weights) <= layers * dirs * gates * 2 + 1, sorted(gemm_weights.items())
    assert max(gemm_weights.values()) == length, sorted(gemm_weights.items())
    ops = Counter(n.op_type for n in after.graph.node)
    assert ops["Gather"] == length                          # the first layer's input steps only
    if not bidir:
        # per gate: an input Gemm every step, a state Gemm from the second step on (LSTM: no forget
        # gate in the first step, its cell state is 0); then the Linear (bidirectional: the last
        # layer's backward direction needs only its first step, y[:, -1])
        first = 1 if kind == "LSTM" else 0
        assert ops["Gemm"] == layers * (gates * (2 * length - 1) - first) + 1, ops


@pytest.mark.parametrize("case", ["lstm-bf-1x16-t8", "gru-sf-1x32-t8"])
def test_whole_sequence_read_is_formed_once(case: str) -> None:
    """y.flatten(1) -> Linear reads all steps: one Concat of them (no Gather of the last step)."""
    proto, shape = _model(case, whole=True)
    after = _check(proto, shape)
    ops = Counter(n.op_type for n in after.graph.node)
    assert ops["Concat"] == 1, ops


@pytest.mark.parametrize("case", ["lstm-bf-1x16-t8", "gru-bf-2x16-t20", "lstm-sf-2x32-t40"])
def test_dynamo_export_unrolled_equals_onnxruntime(case: str) -> None:
    pytest.importorskip("onnxscript")
    proto, shape = _model(case, dynamo=True)
    assert {"LSTM", "GRU"} & {n.op_type for n in proto.graph.node}, "dynamo wrote no ONNX recurrent op"
    _check(proto, shape)


def test_dynamo_rnn_is_reported_not_crashed() -> None:
    """dynamo writes nn.RNN already unrolled (a MatMul over the whole [T, 1, F] sequence, then a
    Slice per step): rejected, saying so and what to do (the legacy exporter writes an RNN node)."""
    pytest.importorskip("onnxscript")
    proto, _ = _model("rnn-tanh-bf-1x16-t40", dynamo=True)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    assert any("legacy exporter (dynamo=False)" in line for line in info.value.details), info.value.details


GRAPH = """
<ir_version: 8, opset_import: ["" : 14]>
g (float[1, 5, 3] x{extra_inputs}) => (float[1, 4] y) {{
    xt = Transpose <perm = [1, 0, 2]> (x)
    s, h = {op} <hidden_size = 4{attrs}> (xt, w, r, b{extra})
    h2 = Squeeze(h, zero)
    y = Gemm <transB = 1> (h2, fw)
}}
"""


def _gru(attrs: str = "", extra: str = "", extra_inputs: str = "", **inits: np.ndarray) -> onnx.ModelProto:
    text = GRAPH.format(op="GRU", attrs=attrs, extra=extra, extra_inputs=extra_inputs)
    return parse(text, w=rand(1, 12, 3, seed=1), r=rand(1, 12, 4, seed=2), b=rand(1, 24, seed=3),
                 zero=np.array([0], np.int64), fw=rand(4, 4, seed=4), **inits)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_both_reset_forms_and_final_state_output(lbr: int) -> None:
    """linear_before_reset 0 and 1; Y_h read through Squeeze is the last step's state."""
    proto = _gru(attrs=f", linear_before_reset = {lbr}")
    _check(proto, (1, 5, 3))


@pytest.mark.parametrize("attrs, extra, extra_inputs, inits, words", [
    (", clip = 1.0", "", "", {}, "cell clip"),
    ("", ", lens", ", int32[1] lens", {}, "sequence_lens given"),
    ("", ", , h0", "", {"h0": np.ones((1, 1, 4), np.float32)}, "initial_h is not a constant zero"),
    (', activations = ["Relu", "Tanh"]', "", "", {}, "only the defaults"),
])
def test_unsupported_variants_are_reported_with_the_node(attrs: str, extra: str, extra_inputs: str,
                                                          inits: dict[str, np.ndarray], words: str) -> None:
    proto = _gru(attrs=attrs, extra=extra, extra_inputs=extra_inputs, **inits)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    details = "\n".join(info.value.details)
    assert words in details and "(GRU," in details, details


def test_zero_initial_state_constant_is_accepted() -> None:
    proto = _gru(extra=", , h0", h0=np.zeros((1, 1, 4), np.float32))
    _check(proto, (1, 5, 3))

"""Token-id models end to end: torch ``nn.Embedding`` (legacy and dynamo exports) followed by a mean over
time, a Conv1d, a GRU or a TransformerEncoderLayer -> an ``embed`` step and the sequence model's steps -> C.

The interpreter agrees with onnxruntime on the ORIGINAL exported model (top-1 on >= 99.5 % of 200
padded token sequences, every output within the worst-case error bound of the run's Q formats,
backends/lower_bounds.py), and the generated C equals the interpreter bit for bit (gcc -O2, clang
ASan + UBSan), also for ids outside the table, which give rows of zeros and read nothing out of bounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes
from test_activations_e2e import TOP1, against_onnxruntime, compile_program
from token_models import KINDS, token_dataset, token_ids, token_model

from transpiler import hostrun
from transpiler.errors import DataError
from transpiler.lir.interp import run_program
from transpiler.lir.qio import quantize_inputs, token_vocab
from transpiler.model import OnnxModel

pytest.importorskip("torch")
import_all_passes()

VOCAB, LENGTH = 40, 8


def _case(kind: str, dynamo: bool) -> tuple[OnnxModel, np.ndarray]:
    if dynamo:
        pytest.importorskip("onnxscript")
    proto = token_model(kind, vocab=VOCAB, length=LENGTH, seed=KINDS.index(kind), dynamo=dynamo)
    return OnnxModel.from_proto(proto), token_ids(200, LENGTH, VOCAB, seed=1)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("kind", KINDS)
def test_token_model_agrees_with_onnxruntime_and_c_equals_interpreter(kind: str, dynamo: bool,
                                                                      tmp_path: Path) -> None:
    original, ids = _case(kind, dynamo)
    program = compile_program(original.copy(), token_dataset(ids[:100]), tmp_path / "gen")
    embeds = [s for s in program.steps if s.op == "embed"]
    assert len(embeds) == 1
    table = program.buffers[embeds[0].inputs[1]]
    assert table.shape == (VOCAB, 16) and table.dtype == "i16" and isinstance(table.q, int)
    assert program.buffers[program.inputs[0].buffer].dtype == "u16"
    assert token_vocab(program) == {"ids": VOCAB}
    assert not table.data[0].any()          # padding_idx=0: the zero row stays zero
    figures = against_onnxruntime(program, original, ids, "ids")     # the exported model
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"ids": x[None]}) for x in ids[:20]]
    inputs.append({"ids": np.array([VOCAB, VOCAB + 1, 65535, 32768, 1, 2, 0, VOCAB - 1], dtype=np.uint16)})
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"embed_{kind}_{dynamo}")


def test_out_of_range_ids_give_zero_rows_and_are_refused_as_data(tmp_path: Path) -> None:
    original, ids = _case("mean", False)
    program = compile_program(original.copy(), token_dataset(ids[:50]), tmp_path / "gen")
    step = next(s for s in program.steps if s.op == "embed")
    raw = np.array([3, VOCAB, 65535, 0, VOCAB - 1, 40000, 7, 1], dtype=np.uint16)
    trace = run_program(program, {"ids": raw}, trace=True)
    rows = trace["%" + step.outputs[0]].reshape(LENGTH, -1)
    table = program.buffers[step.inputs[1]].data
    for t, i in enumerate(raw):
        assert np.array_equal(rows[t], table[i] if i < VOCAB else np.zeros_like(table[0])), t
    port = {"name": "ids", "size": LENGTH, "onnx_shape": [1, LENGTH], "vocab": VOCAB, "q": 0}
    for bad in (VOCAB, -1, 2.5):
        x = ids[:3].astype(np.float64)
        x[2, 5] = bad
        message = rf"input 'ids' holds the token id {bad:g} \(sample {{}}, position 5\); ids must be integers in \[0, {VOCAB}\)"
        with pytest.raises(DataError, match=message.format(2)):
            hostrun.quantize({"inputs": [port]}, {"ids": x})              # freeml-tx run / verify
        with pytest.raises(DataError, match=message.format(0)):
            quantize_inputs(program, {"ids": x[2:3]})                     # the interpreter's inputs


def _hand_model(ids_type: int, cast: bool) -> OnnxModel:
    """ids [1, 5] (int32 or int64) -> [Cast to int64 ->] Gather(table [12, 4]) -> Flatten -> Gemm -> y [1, 3]."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    table = rng.standard_normal((12, 4)).astype(np.float32)
    w = rng.standard_normal((3, 20)).astype(np.float32)
    nodes = [helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64, name="cast")] if cast else []
    nodes += [helper.make_node("Gather", ["table", "ids64" if cast else "ids"], ["e"], axis=0, name="emb"),
              helper.make_node("Flatten", ["e"], ["f"], name="flat"),
              helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")]
    graph = helper.make_graph(nodes, "tok", [helper.make_tensor_value_info("ids", ids_type, [1, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(table, "table"), numpy_helper.from_array(w, "w")])
    return OnnxModel.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_int32_ids_compile_and_agree_with_onnxruntime(tmp_path: Path) -> None:
    from onnx import TensorProto

    original = _hand_model(TensorProto.INT32, cast=False)
    ids = token_ids(100, 5, 12, seed=7)
    program = compile_program(original.copy(), token_dataset(ids), tmp_path / "gen")
    assert [s.op for s in program.steps][0] == "embed" and token_vocab(program) == {"ids": 12}
    figures = against_onnxruntime(program, original, ids, "ids")
    assert figures["top1"] >= TOP1, figures
    check_c_equals_interpreter(program, tmp_path / "c", [quantize_inputs(program, {"ids": x[None]}) for x in ids[:10]],
                               "embed_int32")


def test_ids_computed_in_the_graph_are_rejected_with_the_reason(tmp_path: Path) -> None:
    from onnx import TensorProto

    from transpiler.errors import UnsupportedError

    with pytest.raises(UnsupportedError) as info:
        compile_program(_hand_model(TensorProto.INT32, cast=True), token_dataset(token_ids(10, 5, 12)), tmp_path)
    text = info.value.render()
    assert "the ids 'ids64' are computed in the graph, not a graph input" in text
    assert "input 'ids' has dtype int32; only float32 inputs are supported, and integer token ids read only by " \
           "embedding tables" in text and "it is read by cast (Cast)" in text

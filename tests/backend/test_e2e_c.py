"""Validation link 3 (DESIGN.md section 9): generated C == LIR interpreter, bit for bit.

ONNX model -> normalize,quantize,lower,plan-memory,emit-c -> built with gcc (-O2) and clang (ASan +
UBSan), both with -Wall -Wextra -Werror -> every input through one process -> compared with
transpiler.lir.interp.run_program on the same int16 inputs. For the sample models the inputs are the
whole test set (quantised) plus full-range random vectors; for hypothesis models, a few quantised
and random ones. A failing case is saved under tests/failures/ with the model, the LIR and the
generated C.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes, random_inputs
from hypothesis import HealthCheck, assume, given, settings
from strategies_onnx import onnx_models

from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.errors import FreemlError
from transpiler.lir.ir import Program
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

SAMPLES = ("lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual")
ROOT = Path(__file__).resolve().parents[2]

import_all_passes()


def lower_model(model: OnnxModel, data: Any, out_dir: Path, **ctx: Any) -> Program:
    """normalize,quantize,lower,plan-memory (emit-c runs in check_c_equals_interpreter)."""
    context = PassContext(data=data, out_dir=str(out_dir), command_line="pytest", **ctx)
    program, _report = run_pipeline(model, "normalize,quantize,lower,plan-memory", context, verify=False)
    assert isinstance(program, Program)
    return program


def quantised_inputs(program: Program, ds: Dataset, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    n = len(ds) if limit is None else min(limit, len(ds))
    return [quantize_inputs(program, ds.inputs_for(i)) for i in range(n)]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_model_c_equals_interpreter(name: str, tmp_path: Path) -> None:
    model_path, data_path = ROOT / "samples" / f"{name}.onnx", ROOT / "samples" / f"{name}.npz"
    if not model_path.is_file() or not data_path.is_file():
        pytest.skip(f"samples/{name}.onnx or .npz is absent (python samples/make_all.py makes them)")
    from transpiler.loader import load

    model = load(str(model_path))
    ds = load_dataset(data_path, input_specs(model.graph))
    # the host has no FRAM limit: the big MLP (> 256 KiB of weights before sparsify) builds too
    program = lower_model(model, ds, tmp_path / "gen", fram_bytes=4 << 20)
    # the held-out images (the file's val/test marks; all samples of files without marks)
    inputs = quantised_inputs(program, ds.held_out()) + random_inputs(program, 8, seed=7)
    check_c_equals_interpreter(program, tmp_path / "gen2", inputs, f"sample_{name}/test_set")


@settings(max_examples=20, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(drawn=onnx_models(max_layers=4))
def test_random_onnx_models_c_equals_interpreter(tmp_path_factory: pytest.TempPathFactory,
                                                 drawn: tuple[onnx.ModelProto, dict[str, np.ndarray]]) -> None:
    """Hypothesis op chains (with exporter quirks) through the whole pipeline; gcc and clang+ASan."""
    proto, feeds = drawn
    digest = hashlib.sha256(proto.SerializeToString()).hexdigest()[:12]
    out = tmp_path_factory.mktemp("onnx")
    x = feeds["x"]
    rng = np.random.default_rng(int(digest, 16) % 2**32)
    calib = np.concatenate([x, rng.standard_normal((7, *x.shape[1:])).astype(np.float32)])
    ds = Dataset.from_arrays({"x": calib})
    try:
        program = lower_model(OnnxModel.from_proto(proto), ds, out / "gen")
    except FreemlError as exc:
        # front-end limits (normalize/quantize/lower) are their tests' business; a failure in
        # plan-memory or emit-c is ours
        if exc.location.pass_name in ("plan-memory", "emit-c"):
            from emit_c_helpers import save_failure
            where = save_failure(f"random_onnx/{digest}", onnx_model=proto, note=exc.render() + "\n" + proto.doc_string)
            raise AssertionError(f"{exc.render()}\nsaved to {where}") from exc
        assume(False)
        return
    inputs = quantised_inputs(program, ds) + random_inputs(program, 6, seed=int(digest[:6], 16))
    check_c_equals_interpreter(program, out / "c", inputs, f"random_onnx/{digest}", onnx_model=proto)


def _permute_model(perm: tuple[int, ...], shape: tuple[int, ...], dynamo: bool) -> onnx.ModelProto:
    """A torch export that permutes its input (a channel-last image or a [batch, time, channels]
    sequence) and then convolves and classifies; a second permute inside the network for rank 4."""
    torch = pytest.importorskip("torch")
    import io
    import warnings

    nn = torch.nn
    channels = shape[perm[1]]
    rank = len(shape)

    class Permuted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            conv = nn.Conv2d if rank == 4 else nn.Conv1d
            self.conv = conv(channels, 4, 3, padding=1)
            self.fc = nn.LazyLinear(3)

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.conv(x.permute(*perm)))
            if rank == 4:
                y = y.permute(0, 1, 3, 2)       # swap height and width of the feature map
            return self.fc(torch.flatten(y, 1))

    torch.manual_seed(0)
    module = Permuted().eval()
    example = torch.randn(1, *shape[1:])
    module(example)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript")
            torch.onnx.export(module, (example,), dynamo=True).save(buffer)
        else:
            torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


PERMUTES = [((0, 3, 1, 2), (1, 5, 7, 3)), ((0, 2, 3, 1), (1, 2, 4, 6)), ((0, 1, 3, 2), (1, 2, 5, 3)),
            ((0, 2, 1, 3), (1, 4, 2, 5)), ((0, 3, 2, 1), (1, 6, 3, 2)), ((0, 2, 1), (1, 9, 3)),
            ((0, 2, 1), (1, 1, 4))]


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("perm, shape", PERMUTES, ids=[f"{p}-{s}" for p, s in PERMUTES])
def test_transposed_inputs_c_equals_interpreter_and_onnxruntime(perm: tuple[int, ...], shape: tuple[int, ...],
                                                                dynamo: bool, tmp_path: Path) -> None:
    """A permute of the input (and one of a feature map) lowers to `transpose` steps (a view when only
    size-1 axes move); the C equals the interpreter bit for bit, and both follow onnxruntime."""
    from transpiler import ort
    from transpiler.lir.interp import run_program
    from transpiler.lir.qio import dequantize_outputs

    proto = _permute_model(perm, shape, dynamo)
    name = proto.graph.input[0].name
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((40, *shape[1:])).astype(np.float32)
    ds = Dataset.from_arrays({name: x})
    program = lower_model(OnnxModel.from_proto(proto), ds, tmp_path / "gen")
    transposes = [s for s in program.steps if s.op == "transpose"]
    size_one_moves = shape[1] == 1   # [1, 1, 4] -> [1, 4, 1]: the values keep their order
    assert len(transposes) == (len(shape) - 2) - size_one_moves
    inputs = quantised_inputs(program, ds)
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"transpose/{perm}-{shape}-{dynamo}",
                               onnx_model=proto)
    session = ort.session(proto)
    out = program.outputs[0].onnx_name
    for i, feeds in enumerate(inputs):
        got = dequantize_outputs(program, run_program(program, feeds))[out].reshape(-1)
        want = session.run(None, {name: x[i:i + 1]})[0].reshape(-1)
        assert np.abs(got - want).max() <= 0.02 * max(1.0, float(np.abs(want).max())), i

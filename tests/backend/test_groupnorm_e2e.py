"""Group and instance normalisation end to end: torch's nn.GroupNorm, nn.InstanceNorm2d (with and
without affine) and nn.InstanceNorm1d from the legacy and dynamo exporters, and hand-written ONNX
GroupNormalization at opsets 18 (scale per group) and 21 (per channel), become a `layernorm` step
over the groups (plus a per-channel affine); the C equals the interpreter bit for bit, the
interpreter agrees with onnxruntime on the original model within the error bound."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler import ort
from transpiler.data import Dataset
from transpiler.errors import UnsupportedError
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

EXPORTS = ("legacy13", "legacy17", "dynamo")
KINDS = ("groupnorm", "instance2d", "instance2d_plain", "instance1d")


def torch_model(kind: str, export: str, seed: int) -> tuple[onnx.ModelProto, tuple[int, ...], int]:
    """The model, its input shape and the length of its normalised rows. ``groupnorm``: Conv2d ->
    GroupNorm(2 groups of 8 channels on 16x16: rows of 2048) -> ReLU -> Conv2d -> Linear;
    ``instance2d`` / ``instance2d_plain``: Conv2d -> InstanceNorm2d (affine / not) -> ReLU -> Linear;
    ``instance1d``: Conv1d -> InstanceNorm1d(affine) -> ReLU -> Linear."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(seed)
    if kind == "groupnorm":
        net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.GroupNorm(2, 16), nn.ReLU(), nn.Conv2d(16, 4, 3, 2),
                            nn.Flatten(), nn.Linear(4 * 7 * 7, 5))
        shape, row = (1, 1, 16, 16), 8 * 16 * 16
    elif kind.startswith("instance2d"):
        net = nn.Sequential(nn.Conv2d(2, 6, 3), nn.InstanceNorm2d(6, affine=kind == "instance2d"), nn.ReLU(),
                            nn.Flatten(), nn.Linear(6 * 8 * 8, 5))
        shape, row = (1, 2, 10, 10), 8 * 8
    else:
        net = nn.Sequential(nn.Conv1d(3, 4, 3), nn.InstanceNorm1d(4, affine=True), nn.ReLU(), nn.Flatten(),
                            nn.Linear(4 * 18, 5))
        shape, row = (1, 3, 20), 18
    with torch.no_grad():                      # a scale and shift that are not the identity
        for m in net.modules():
            if isinstance(m, (nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)) and m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    net.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if export == "dynamo":
            prog = torch.onnx.export(net, (torch.zeros(*shape),), dynamo=True, input_names=["x"],
                                     output_names=["y"], verbose=False)
            return prog.model_proto, shape, row
        torch.onnx.export(net, (torch.zeros(*shape),), buf, dynamo=False, opset_version=int(export[-2:]),
                          input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buf.getvalue()), shape, row


def _check_end_to_end(proto: onnx.ModelProto, shape: tuple[int, ...], row: int, label: str, tmp_path: Path,
                      per_position: bool = False) -> dict[str, float]:
    """normalize keeps the semantics and leaves one LayerNormalization over rows of ``row`` (its
    scale and bias one value each, or ``per_position``); the interpreter agrees with onnxruntime on
    ``proto`` within the bound; C == interpreter."""
    xs = np.random.default_rng(2).standard_normal((200, *shape[1:])).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    ops = [n.op for n in normalized.graph.nodes]
    assert ops.count("LayerNormalization") == 1 and not {"InstanceNormalization", "GroupNormalization"} & set(ops)
    for x in xs[:10]:                                            # the rewrites keep the semantics
        feed = {"x": x.reshape(shape)}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-4, atol=1e-4)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    (step,) = [s for s in program.steps if s.op == "layernorm"]
    assert program.buffers[step.inputs[0]].shape[-1] == row
    assert program.buffers[step.inputs[1]].size == program.buffers[step.inputs[2]].size == (row if per_position else 1)
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    assert figures["bound"] > 0.0, figures                      # the bound was finite and checked
    inputs = [quantize_inputs(program, {"x": x.reshape(shape)}) for x in xs[:30]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, label)
    return figures


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_group_and_instance_norm_c_equals_interpreter_and_agrees_with_onnxruntime(
        kind: str, export: str, tmp_path: Path) -> None:
    proto, shape, row = torch_model(kind, export, seed=KINDS.index(kind))
    assert "InstanceNormalization" in {n.op_type for n in proto.graph.node}
    _check_end_to_end(proto, shape, row, f"{kind}_{export}", tmp_path)


def _group_norm_model(opset: int, groups: int, affine_size: int, op: str = "GroupNormalization",
                      shape: tuple[int, ...] = (1, 6, 5, 4)) -> onnx.ModelProto:
    """x -> GroupNormalization{num_groups} (or InstanceNormalization) -> Relu -> Flatten -> Gemm -> y."""
    rng = np.random.default_rng(opset + groups)
    attrs = {"num_groups": groups} if op == "GroupNormalization" else {}
    size = int(np.prod(shape[1:]))
    nodes = [helper.make_node(op, ["x", "s", "b"], ["n"], name="norm", epsilon=1e-3, **attrs),
             helper.make_node("Relu", ["n"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "W", "B"], ["y"], name="fc", transB=1)]
    inits = {"s": rng.uniform(0.5, 1.5, affine_size), "b": rng.uniform(-0.5, 0.5, affine_size),
             "W": rng.standard_normal((4, size)) / np.sqrt(size), "B": rng.uniform(-0.1, 0.1, 4)}
    graph = helper.make_graph(nodes, "gn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 10
    return proto


@pytest.mark.parametrize(("opset", "groups", "affine_size"),
                         [(18, 3, 3), (18, 1, 1), (21, 2, 6), (21, 6, 6), (21, 1, 6)])
def test_onnx_group_normalization_c_equals_interpreter_and_agrees_with_onnxruntime(
        opset: int, groups: int, affine_size: int, tmp_path: Path) -> None:
    """Opset 18 takes the scale and bias per group, 21 per channel (onnxruntime follows each); one
    group with a scale per channel is the layernorm's own scale per position."""
    proto = _group_norm_model(opset, groups, affine_size)
    _check_end_to_end(proto, (1, 6, 5, 4), 6 // groups * 20, f"groupnorm_onnx{opset}_g{groups}", tmp_path,
                      per_position=groups == 1 and affine_size == 6)


def test_onnx_instance_normalization_of_a_sequence_c_equals_interpreter(tmp_path: Path) -> None:
    proto = _group_norm_model(13, 0, 5, op="InstanceNormalization", shape=(1, 5, 24))
    _check_end_to_end(proto, (1, 5, 24), 24, "instancenorm_onnx13_1d", tmp_path)


@pytest.mark.parametrize(("opset", "groups", "affine_size", "why"), [
    (21, 2, 2, "not a constant of 6 values (one per channel)"),
    (18, 2, 6, "not a constant of 2 values (one per group"),
    (18, 4, 4, "num_groups=4 does not divide the 6 channels")])
def test_a_group_normalization_that_does_not_fit_its_opset_is_rejected_with_the_reason(
        opset: int, groups: int, affine_size: int, why: str) -> None:
    proto = _group_norm_model(opset, groups, affine_size)
    with pytest.raises(UnsupportedError) as err:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)
    text = err.value.render()
    assert why in text and "GroupNormalization" in text and "norm" in text, text


def test_groups_longer_than_the_kernel_rows_are_rejected_with_the_limit() -> None:
    proto = _group_norm_model(21, 1, 8, shape=(1, 8, 64, 33))     # one group of 16896 > 16384 elements
    with pytest.raises(UnsupportedError) as err:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)
    assert "groups of 16896 elements" in err.value.render() and "at most 16384" in err.value.render()


def _trained_groupnorm_digits(tmp_path: Path) -> tuple[Path, Path]:
    """A GroupNorm CNN trained briefly on scikit-learn's 8x8 digits (torch legacy export) and its data
    (inputs and labels, 600 samples)."""
    torch = pytest.importorskip("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    nn = torch.nn
    digits = datasets.load_digits()
    x = (digits.data.reshape(-1, 1, 8, 8) / 8.0 - 1.0).astype(np.float32)[:600]
    y = digits.target.astype(np.int64)[:600]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.ReLU(), nn.Conv2d(16, 16, 3),
                        nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    model, data = tmp_path / "gn_digits.onnx", tmp_path / "gn_digits.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (xt[:1],), str(model), dynamo=False, opset_version=13, input_names=["x"],
                          output_names=["y"])
    np.savez(data, x=x, y=y)
    return model, data


@pytest.mark.parametrize("flags", [["--fram", "48KiB", "--max-drop", "2.0"], ["--gnet", "epochs=3,baseline=none"]],
                         ids=["sparsecomp", "gnet"])
def test_a_groupnorm_cnn_trains_under_sparsecomp_and_gnet_and_verifies(flags: list[str], tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The training engine fine-tunes through the groups' LayerNormalization, its Reshapes and the
    per-channel affine: compression to --fram, or a gNet exit head, then the C verifies against
    onnxruntime on the trained ONNX."""
    from transpiler import hostrun
    from transpiler.cli import main

    model, data = _trained_groupnorm_digits(tmp_path)
    out = tmp_path / "build"
    code = main([str(model), "-o", str(out), "--data", str(data), *flags])
    text, err = capsys.readouterr()
    assert code == 0, text + err
    pipeline = hostrun.load_manifest(out)["generator"]["pipeline"]
    assert ("sparsify" if "--fram" in flags else "attach-gnet") in pipeline, pipeline
    assert "layernorm" in (out / "final.lir").read_text()
    code = main(["verify", str(out), "--data", str(data)])
    text, err = capsys.readouterr()
    assert code == 0, text + err

"""`batch-one`: exports with a fixed batch B > 1 become one-sample models, through `normalize`."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from normalize_helpers import load, ort_run, parse, rand, run_pass, torch_export

from passes.batch_one import BatchOne
from passes.check_supported import check_normal_form
from passes.normalize import Normalize
from passes.normalize_util import static_shape
from transpiler.errors import UnsupportedError

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class ViewNet(nn.Module):
    """Conv -> BN -> ReLU -> x.view(x.size(0), -1) -> Linear (B is written into the Reshape's shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 5 * 6, 4)

    def forward(self, x: Any) -> Any:
        y = F.relu(self.bn(self.conv(x)))
        return self.fc(y.view(y.size(0), -1))


class MeanNet(nn.Module):
    """Conv1d -> ReLU -> mean over time -> Linear -> LogSoftmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Any) -> Any:
        return F.log_softmax(self.fc(F.relu(self.conv(x)).mean(dim=2)), dim=1)


class BatchMixer(nn.Module):
    """Subtracts the batch mean: a sample's output depends on the others."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x: Any) -> Any:
        return self.fc(x - x.mean(dim=0, keepdim=True))


def _export(module: nn.Module, shape: tuple[int, ...], dynamo: bool, folding: bool = True) -> onnx.ModelProto:
    return torch_export(module, torch.randn(*shape), dynamic_batch=False, dynamo=dynamo,
                        **({} if dynamo else {"do_constant_folding": folding}))


CASES = [(ViewNet, (2, 5, 6)), (MeanNet, (3, 10))]


@pytest.mark.parametrize("batch", [2, 8])
@pytest.mark.parametrize("exporter", ["legacy", "legacy-nofold", "dynamo"])
@pytest.mark.parametrize("cls, sample", CASES, ids=[c[0].__name__ for c in CASES])
def test_fixed_batch_exports_become_one_sample_models(cls: type, sample: tuple[int, ...], exporter: str,
                                                      batch: int) -> None:
    torch.manual_seed(0)
    proto = _export(cls(), (batch, *sample), exporter == "dynamo", folding=exporter != "legacy-nofold")
    name = proto.graph.input[0].name
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == batch
    result = run_pass(Normalize, load(proto))
    model = result.model
    assert check_normal_form(model) == []
    assert static_shape(model.graph.inputs[0]) == (1, *sample)
    assert result.stats["batch-one"]["batch"] == batch
    x = np.random.default_rng(1).standard_normal((batch, *sample)).astype(np.float32)
    (want,) = ort_run(proto, {name: x}).values()
    after = model.to_proto()
    for i in range(batch):
        (got,) = ort_run(after, {name: x[i:i + 1]}).values()
        np.testing.assert_allclose(got[0], want[i], rtol=1e-4, atol=1e-5)


def test_a_model_that_mixes_its_samples_is_reported() -> None:
    torch.manual_seed(0)
    proto = _export(BatchMixer(), (4, 6), dynamo=False)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    text = info.value.render()
    assert "pass 'check-supported'" in text and "input 'input' has shape [4, 6]" in text
    assert "batch-one kept its batch of 4: output 'output' of sample 0 depends on the other samples" in text
    assert "dynamic_axes" in text


def test_a_reshape_shape_from_a_constant_node_is_rewritten() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[3, 2, 4] x) => (float[3, 5] y) {
        s = Constant <value = int64[2] {3, 8}> ()
        f = Reshape(x, s)
        r = Relu(f)
        y = Gemm <transB = 1> (r, w, b)
    }
    """, w=rand(5, 8), b=rand(5))
    result = run_pass(BatchOne, load(proto))
    assert result.changed and result.stats == {"batch": 3, "reshapes": 1}
    x = rand(3, 2, 4, seed=2)
    (want,) = ort_run(proto, {"x": x}).values()
    (got,) = ort_run(result.model.to_proto(), {"x": x[1:2]}).values()
    np.testing.assert_allclose(got[0], want[1], rtol=1e-5)


@pytest.mark.parametrize("declared", ["N", "1"])
def test_dynamic_or_single_batch_is_left_alone(declared: str) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{declared}, 4] x) => (float[{declared}, 3] y) {{
        y = Gemm <transB = 1> (x, w, b)
    }}
    """, w=rand(3, 4), b=rand(3))
    result = run_pass(BatchOne, load(proto))
    assert not result.changed and result.stats == {"batch": 1}

"""`normalize` on torch exports (legacy exporter, dynamic batch): same outputs, normal form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from normalize_helpers import assert_same_outputs, load, ops, run_pass, torch_export

from passes.check_supported import check_normal_form
from passes.normalize import Normalize
from passes.normalize_util import ORIGIN, static_shape

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class ConvBnNet(nn.Module):
    """Conv -> BN -> F.relu -> depthwise Conv -> BN -> ReLU6 -> mean(2,3) -> Dropout -> Linear -> Softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Any) -> Any:
        y = F.relu(self.bn(self.conv(x)))
        y = F.relu6(self.bn2(self.dw(y)))
        y = self.drop(y.mean([2, 3]))
        return torch.softmax(self.fc(y), dim=-1)


class PoolNet(nn.Module):
    """AvgPool with ceil_mode/count_include_pad, MaxPool, LeakyReLU, Concat, residual Add, Flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)
        self.c = nn.Conv2d(4, 2, 3, padding=1)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.max = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 2 * 2, 5)

    def forward(self, x: Any) -> Any:
        y = F.leaky_relu(self.a(x), 0.1)
        y = y + self.b(y)
        y = torch.cat([y, self.c(y)], dim=1)
        y = self.max(self.avg(y))
        return self.fc(torch.flatten(y, 1))


class SeqNet(nn.Module):
    """Conv1d -> BN1d -> ReLU -> AvgPool1d(count_include_pad) -> Clip -> view -> MatMul + Add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 5, padding=2, dilation=1)
        self.bn = nn.BatchNorm1d(3)
        self.pool = nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=True)
        self.w = nn.Parameter(torch.randn(3 * 8, 4) * 0.2)
        self.b = nn.Parameter(torch.randn(4))

    def forward(self, x: Any) -> Any:
        y = self.pool(torch.relu(self.bn(self.conv(x))))
        y = torch.clamp(y, -0.5, 2.0)
        return y.view(y.size(0), -1) @ self.w + self.b


def _randomize_bn(module: nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
                layer.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                layer.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=generator) * 0.3)


CASES = [
    (ConvBnNet, (1, 1, 8, 8), ["Conv", "Relu", "Conv", "Clip", "GlobalAveragePool", "Reshape", "Gemm", "Softmax"]),
    (PoolNet, (1, 3, 8, 8), ["Conv", "LeakyRelu", "Conv", "Add", "Conv", "Concat", "AveragePool", "MaxPool",
                             "Flatten", "Gemm"]),
    (SeqNet, (1, 2, 16), ["Conv", "Relu", "AveragePool", "Clip", "Reshape", "Gemm"]),
]


@pytest.mark.parametrize("folding", [True, False])
@pytest.mark.parametrize("cls, shape, expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_torch_models_normalize(cls: type, shape: tuple[int, ...], expected: list[str], folding: bool) -> None:
    torch.manual_seed(0)
    module = cls()
    _randomize_bn(module)
    proto = torch_export(module, torch.randn(*shape), do_constant_folding=folding)
    result = run_pass(Normalize, load(proto))
    model = result.model
    assert ops(model) == expected
    assert check_normal_form(model) == []
    assert static_shape(model.graph.inputs[0]) == shape
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    assert_same_outputs(proto, model.to_proto(), {"input": x})
    assert result.stats["rounds"] >= 1 and "fold-batchnorm" in result.stats


def test_fused_nodes_name_their_origins() -> None:
    torch.manual_seed(0)
    module = ConvBnNet()
    _randomize_bn(module)
    proto = torch_export(module, torch.randn(1, 1, 8, 8), do_constant_folding=False)
    model = run_pass(Normalize, load(proto)).model
    origins = {n.op: model.annotations.get(n.name, ORIGIN) for n in model.graph.nodes}
    assert origins["Conv"] == ["/dw/Conv", "/bn2/BatchNormalization"]
    assert origins["Gemm"] == ["/fc/Gemm"]
    assert all(model.annotations.get(n.name, ORIGIN) for n in model.graph.nodes)


def test_dynamo_export_normalizes() -> None:
    pytest.importorskip("onnxscript")
    import io

    torch.manual_seed(0)
    module = PoolNet().eval()
    buffer = io.BytesIO()
    program = torch.onnx.export(module, (torch.randn(1, 3, 8, 8),), dynamo=True,
                                dynamic_shapes=({0: torch.export.Dim("batch")},))
    program.save(buffer)
    import onnx

    proto = onnx.load_from_string(buffer.getvalue())
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    name = proto.graph.input[0].name
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    assert_same_outputs(proto, model.to_proto(), {name: x})

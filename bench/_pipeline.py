"""Helpers the intermittent benches share: compile a model (continuous or intermittent) into a
package directory, the sample models with their data, and small synthetic calibration models.

Not a test and not part of the package; imported by bench/calibrate_cost.py and
bench/intermittent.py.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from transpiler.data import Dataset, input_specs, load_dataset  # noqa: E402
from transpiler.lir.ir import Program  # noqa: E402
from transpiler.manager import run_pipeline  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext, registry  # noqa: E402

#: Samples that fit the FR5994 dense (mlp_mnist_big needs the sparse path).
SAMPLES = ("tiny_residual", "tiny_conv1d", "mlp_digits_sklearn", "cnn_digits", "lenet5_mnist")


@dataclass
class Compiled:
    """A compiled package: its directory, the final LIR program, the tile stats and inputs."""

    out_dir: Path
    program: Program
    tile_stats: dict[str, Any] | None
    c_name: str


def pipeline_text(budget: int | None, persistent: bool = True, margin: float | None = None) -> str:
    """The pipeline the CLI derives for --cycles-per-power-cycle (budget) or continuous power."""
    plan = "plan-memory" + ("{persistent=true" + (f",budget={budget}" if budget else "") + "}" if persistent else "")
    tile = ""
    if budget:
        tile = f",tile{{budget={budget}" + (f",margin={margin}" if margin is not None else "") + "}"
    return f"normalize,quantize,lower,{plan}{tile},emit-c"


def compile_model(model: OnnxModel | onnx.ModelProto, data: Dataset, out_dir: Path, budget: int | None,
                  persistent: bool = True, name: str = "m", margin: float | None = None) -> Compiled:
    """Run the compile pipeline into ``out_dir``; ``budget`` None = continuous power."""
    registry()
    if isinstance(model, onnx.ModelProto):
        model = OnnxModel.from_proto(model)
    ctx = PassContext(data=data, out_dir=str(out_dir), command_line="bench",
                      extra={"model_name": name})
    text = pipeline_text(budget, persistent, margin)
    ctx.pipeline_text = text
    program, _report = run_pipeline(model, text, ctx, verify=False)
    assert isinstance(program, Program)
    return Compiled(out_dir, program, ctx.extra.get("tile"), ctx.extra["emit-c"]["c_name"])


def load_sample(name: str) -> tuple[OnnxModel, Dataset]:
    """samples/<name>.onnx and its data."""
    from transpiler.loader import load

    model = load(str(REPO / "samples" / f"{name}.onnx"))
    ds = load_dataset(REPO / "samples" / f"{name}.npz", input_specs(model.graph))
    return model, ds


def quantised(compiled: Compiled, ds: Dataset, n: int) -> np.ndarray:
    """The first n samples of ds as the package's int16 input vectors ``[n, in_size]``."""
    from transpiler import hostrun

    man = hostrun.load_manifest(compiled.out_dir)
    inputs = {name: arr[:n] for name, arr in ds.inputs.items()}
    return hostrun.quantize(man, inputs)


# --- synthetic calibration models ---------------------------------------------------------------

def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)


class _Chain:
    """A chain of layers over one activation (NCHW or NCL)."""

    def __init__(self, shape: list[int], seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.shape = list(shape)
        self.input_shape = list(shape)
        self.cur = "x"
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def _name(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def conv(self, cout: int, k: int, stride: int = 1, pad: int = 0, group: int = 1, dilation: int = 1,
             relu: bool = True) -> _Chain:
        spatial = len(self.shape) - 2
        cin = self.shape[1]
        w = self._name("w")
        b = self._name("b")
        self.inits += [numpy_helper.from_array(_w(self.rng, cout, cin // group, *[k] * spatial), w),
                       numpy_helper.from_array((0.1 * self.rng.standard_normal(cout)).astype(np.float32), b)]
        out = self._name("c")
        self.nodes.append(helper.make_node("Conv", [self.cur, w, b], [out], kernel_shape=[k] * spatial,
                                           strides=[stride] * spatial, pads=[pad] * (2 * spatial),
                                           group=group, dilations=[dilation] * spatial))
        self.cur = out
        self.shape = [1, cout] + [(n + 2 * pad - dilation * (k - 1) - 1) // stride + 1 for n in self.shape[2:]]
        if relu:
            self.relu()
        return self

    def relu(self) -> _Chain:
        out = self._name("r")
        self.nodes.append(helper.make_node("Relu", [self.cur], [out]))
        self.cur = out
        return self

    def unary(self, op: str, gate: bool = False) -> _Chain:
        """An element-wise activation (a lut step); ``gate``: ``x * op(x)`` (SiLU with Sigmoid)."""
        out = self._name("u")
        self.nodes.append(helper.make_node(op, [self.cur], [out]))
        if gate:
            prod = self._name("g")
            self.nodes.append(helper.make_node("Mul", [self.cur, out], [prod]))
            out = prod
        self.cur = out
        return self

    def product(self, op: str = "Sigmoid") -> _Chain:
        """x * op(conv1x1(x)) (a gate: the product of two activations, a mul step)."""
        skip = self.cur
        shape = list(self.shape)
        if len(shape) > 2:
            self.conv(shape[1], 1, relu=False)
        else:
            self.gemm(shape[1], relu=False)
        self.unary(op)
        out = self._name("m")
        self.nodes.append(helper.make_node("Mul", [skip, self.cur], [out]))
        self.cur = out
        self.shape = shape
        return self

    def pool(self, kind: str, k: int, stride: int, pad: int = 0) -> _Chain:
        spatial = len(self.shape) - 2
        out = self._name("p")
        self.nodes.append(helper.make_node(kind, [self.cur], [out], kernel_shape=[k] * spatial,
                                           strides=[stride] * spatial, pads=[pad] * (2 * spatial)))
        self.cur = out
        self.shape = self.shape[:2] + [(n + 2 * pad - k) // stride + 1 for n in self.shape[2:]]
        return self

    def residual_add(self) -> _Chain:
        """x + relu(conv3(x)) (same shape), then relu."""
        skip = self.cur
        shape = list(self.shape)
        self.conv(shape[1], 3, pad=1, relu=True)
        out = self._name("a")
        self.nodes.append(helper.make_node("Add", [self.cur, skip], [out]))
        self.cur = out
        self.shape = shape
        return self.relu()

    def concat_branch(self, cout: int) -> _Chain:
        """concat(x, conv1x1(x)) along channels."""
        skip = self.cur
        shape = list(self.shape)
        self.conv(cout, 1, relu=False)
        out = self._name("cat")
        self.nodes.append(helper.make_node("Concat", [skip, self.cur], [out], axis=1))
        self.cur = out
        self.shape = [1, shape[1] + cout] + shape[2:]
        return self

    def flatten(self) -> _Chain:
        out = self._name("f")
        self.nodes.append(helper.make_node("Flatten", [self.cur], [out], axis=1))
        self.cur = out
        self.shape = [1, int(np.prod(self.shape[1:]))]
        return self

    def gemm(self, n: int, relu: bool = True) -> _Chain:
        k = self.shape[1]
        w = self._name("w")
        b = self._name("b")
        self.inits += [numpy_helper.from_array(_w(self.rng, n, k), w),
                       numpy_helper.from_array((0.1 * self.rng.standard_normal(n)).astype(np.float32), b)]
        out = self._name("g")
        self.nodes.append(helper.make_node("Gemm", [self.cur, w, b], [out], transB=1))
        self.cur = out
        self.shape = [1, n]
        if relu:
            self.relu()
        return self

    def model(self, name: str) -> onnx.ModelProto:
        y = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, self.shape)
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, self.input_shape)
        graph = helper.make_graph(self.nodes, name, [x], [y], self.inits)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        onnx.checker.check_model(proto)
        return proto


def calibration_models() -> list[tuple[str, onnx.ModelProto]]:
    """Small models whose layers vary the features of the cost model (units, MACs, outputs)."""
    models = []
    c = _Chain([1, 3, 16, 16], 1)
    c.conv(8, 3, pad=1).conv(12, 3, stride=2, pad=1).conv(16, 1).conv(16, 3, pad=1, group=16)
    c.conv(8, 5, pad=2).pool("MaxPool", 2, 2).pool("AveragePool", 2, 2).flatten().gemm(40).gemm(10, relu=False)
    models.append(("calib_conv2d", c.model("calib_conv2d")))
    c = _Chain([1, 6, 20, 20], 2)
    c.conv(10, 3).conv(10, 3, dilation=2).pool("MaxPool", 3, 2, pad=1).conv(24, 3, pad=1)
    c.pool("AveragePool", 3, 1, pad=1).flatten().gemm(32).gemm(6, relu=False)
    models.append(("calib_wide", c.model("calib_wide")))
    c = _Chain([1, 4, 64], 3)
    c.conv(8, 5, pad=2).conv(12, 3, stride=2).pool("MaxPool", 2, 2).conv(16, 7, pad=3).conv(16, 1)
    c.pool("AveragePool", 2, 2).flatten().gemm(20).gemm(5, relu=False)
    models.append(("calib_conv1d", c.model("calib_conv1d")))
    c = _Chain([1, 8, 10, 10], 4)
    c.residual_add().concat_branch(4).residual_add().concat_branch(8).pool("MaxPool", 2, 2).flatten()
    c.gemm(24).gemm(4, relu=False)
    models.append(("calib_eltwise", c.model("calib_eltwise")))
    c = _Chain([1, 8, 16, 16], 6)    # pools of 8, 2 and 1 output rows (a pool's cost is mostly per row)
    c.pool("MaxPool", 2, 2).pool("MaxPool", 4, 4).pool("MaxPool", 2, 2).flatten().gemm(4, relu=False)
    models.append(("calib_pool", c.model("calib_pool")))
    c = _Chain([1, 300], 5)
    c.gemm(64).gemm(100).gemm(48).gemm(7, relu=False)
    models.append(("calib_fc", c.model("calib_fc")))
    c = _Chain([1, 4, 12, 12], 7)    # lut steps: plain, mirrored and gated tables of 576 .. 10 elements
    c.conv(4, 3, pad=1, relu=False).unary("Tanh").conv(6, 3, stride=2, relu=False).unary("Sigmoid", gate=True)
    c.flatten().gemm(40, relu=False).unary("Sigmoid").gemm(10, relu=False).unary("Elu").gemm(3, relu=False)
    models.append(("calib_lut", c.model("calib_lut")))
    c = _Chain([1, 200], 8)
    c.gemm(300, relu=False).unary("Sigmoid", gate=True).gemm(96, relu=False).unary("HardSigmoid", gate=True)
    c.gemm(64, relu=False).unary("Tanh").gemm(33, relu=False).unary("Sigmoid", gate=True).gemm(4, relu=False)
    models.append(("calib_lut_fc", c.model("calib_lut_fc")))
    c = _Chain([1, 4, 12, 12], 9)    # mul steps (products of two activations) of 576 .. 20 elements
    c.conv(4, 3, pad=1, relu=False).product().conv(6, 3, stride=2, relu=False).product("Tanh").relu()
    c.flatten().gemm(40, relu=False).product().gemm(20, relu=False).product("Tanh").gemm(3, relu=False)
    models.append(("calib_mul", c.model("calib_mul")))
    return models


def random_data(proto: onnx.ModelProto, n: int = 8, seed: int = 0) -> Dataset:
    """n standard-normal samples of the model's (single) input."""
    inp = proto.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    return Dataset.from_arrays({inp.name: rng.standard_normal((n, *shape[1:])).astype(np.float32)})


__all__ = ["REPO", "SAMPLES", "Compiled", "pipeline_text", "compile_model", "load_sample", "quantised",
           "calibration_models", "random_data"]

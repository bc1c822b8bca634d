"""A group normalisation (`group-norm`: one `layernorm` row per group, its scale and bias one value
each, the per-channel affine a depthwise conv) under power failures: the output equals the
uninterrupted one bit for bit.

x [1, 4, 4, 4] -> GroupNormalization (2 groups of 2 channels: rows of 32, opset 21) -> Relu ->
Flatten -> Gemm, compiled for a power-cycle budget below the step's two rows, so that the layernorm
step is split into tiles of one row with commits between them; failures before every FRAM store
on the host (gcc, clang + ASan/UBSan), random schedules, and the MSP430 simulator's failures
(skipped without the msp430-elf toolchain).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from intermittent_helpers import (Package, check_failure_before_every_store, check_random_schedules,
                                  check_simulated_failures, compile_intermittent)
from onnx import TensorProto, helper, numpy_helper

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.model import OnnxModel

BUDGET = 40000


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(9)
    inits = {"g": rng.uniform(0.5, 1.5, 4), "beta": rng.standard_normal(4) * 0.2,
             "wf": rng.standard_normal((3, 64)) * 0.2, "bf": rng.standard_normal(3) * 0.1}
    nodes = [helper.make_node("GroupNormalization", ["x", "g", "beta"], ["n"], num_groups=2, epsilon=1e-5),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "groupnorm_pf",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    proto.ir_version = 10
    return proto


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("groupnorm_pf") / "gen"
    calib = (np.random.default_rng(0).standard_normal((16, 4, 4, 4)) * 2.0 + 0.5).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(_model()), Dataset.from_arrays({"x": calib}),
                                          out, budget=BUDGET, name="groupnorm_pf")
    man = hostrun.load_manifest(out)
    return Package("groupnorm_pf", out, program, man, hostrun.quantize(man, {"x": calib[:3]}), stats)


def test_the_groups_are_one_row_each_in_committed_tiles(package: Package) -> None:
    (step,) = [s for s in package.program.steps if s.op == "layernorm"]
    assert package.program.buffers[step.inputs[0]].shape[-1] == 32
    assert package.program.buffers[step.inputs[1]].size == 1                 # one scale value
    assert step.tile is not None and step.tile.dims[0] < 2, step.tile


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    check_failure_before_every_store(package, cc, sanitize, "intermittent_groupnorm", ("transpose", "act", "add", "concat"))


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    check_random_schedules(package)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    check_simulated_failures(package, "intermittent_groupnorm", BUDGET)

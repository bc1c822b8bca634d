"""The `layernorm` step under power failures: the output equals the uninterrupted one bit for bit.

One sequence model (x [1, 6, 8] -> MatMul + Add on every step -> LayerNormalization over the last
axis -> Relu -> mean over the steps -> Gemm) compiled for a power-cycle budget of about two rows,
so that the layernorm step is split into tiles of rows with commits between them:

- host (``-DFX_HOST_POWER_FAIL``): a failure before every FRAM store of one inference (exhaustive),
  gcc and clang + ASan/UBSan, and 100 random schedules per input;
- the MSP430 simulator (real ISA-level failures in cycles, SRAM refilled with random words): random
  and periodic schedules give the host's outputs (skipped without the msp430-elf toolchain).
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

BUDGET = 90000


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(8)
    inits = {"w": rng.standard_normal((8, 16)) * 0.5, "b": rng.standard_normal(16) * 0.1,
             "g": rng.uniform(0.5, 1.5, 16), "beta": rng.standard_normal(16) * 0.2,
             "wf": rng.standard_normal((4, 16)) * 0.3, "bf": rng.standard_normal(4) * 0.1}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("LayerNormalization", ["a", "g", "beta"], ["n"], axis=-1, epsilon=1e-5),
             helper.make_node("Relu", ["n"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["p"], axes=[1], keepdims=0),
             helper.make_node("Gemm", ["p", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "layernorm_pf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("layernorm_pf") / "gen"
    calib = np.random.default_rng(0).standard_normal((16, 6, 8)).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(_model()), Dataset.from_arrays({"x": calib}),
                                          out, budget=BUDGET, name="layernorm_pf")
    man = hostrun.load_manifest(out)
    return Package("layernorm_pf", out, program, man, hostrun.quantize(man, {"x": calib[:3]}), stats)


def test_layernorm_step_is_split_into_committed_tiles(package: Package) -> None:
    (step,) = [s for s in package.program.steps if s.op == "layernorm"]
    assert step.tile is not None and step.tile.dims[0] < 6, step.tile


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    check_failure_before_every_store(package, cc, sanitize, "intermittent_layernorm", ("transpose", "act", "add", "concat"))


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    check_random_schedules(package)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    check_simulated_failures(package, "intermittent_layernorm", BUDGET)

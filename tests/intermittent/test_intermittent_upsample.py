"""The `upsample` steps (nearest Resize, the zero insertion of a ConvTranspose) and PReLU's grouped
convs under power failures: the output equals the uninterrupted one bit for bit.

One model (Conv -> nearest Resize x2 -> Conv 1x1 -> ConvTranspose stride 2 -> per-channel PRelu ->
Conv stride 4 -> Gemm)
compiled for a small power-cycle budget, so that each upsample step is split into several tiles with
commits between them:

- host (``-DFX_HOST_POWER_FAIL``): a failure before every FRAM store of one inference (exhaustive),
  gcc and clang + ASan/UBSan, and 100 random schedules per input;
- the MSP430 simulator (real ISA-level failures in cycles, SRAM refilled with random words): two
  random schedules give the host's outputs (skipped without the msp430-elf toolchain).
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

BUDGET = 16000


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(5)
    inits = {
        "w1": rng.standard_normal((4, 2, 3, 3)) * 0.5, "b1": rng.standard_normal(4) * 0.1,
        "roi": np.zeros(0), "scales": np.array([1, 1, 2, 2]),
        "w2": rng.standard_normal((2, 4, 1, 1)) * 0.5, "b2": rng.standard_normal(2) * 0.1,
        "wt": rng.standard_normal((2, 2, 3, 3)) * 0.5, "bt": rng.standard_normal(2) * 0.1,
        "slope": np.array([0.2, -0.7]).reshape(2, 1, 1),
        "w3": rng.standard_normal((2, 2, 4, 4)) * 0.2, "b3": rng.standard_normal(2) * 0.1,
        "wf": rng.standard_normal((4, 2 * 8 * 8)) * 0.1, "bf": rng.standard_normal(4) * 0.1,
    }
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Resize", ["r", "roi", "scales"], ["u"], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Conv", ["u", "w2", "b2"], ["d"]),
             helper.make_node("ConvTranspose", ["d", "wt", "bt"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1],
                              output_padding=[1, 1]),
             helper.make_node("PRelu", ["t", "slope"], ["p"]),
             helper.make_node("Conv", ["p", "w3", "b3"], ["m"], strides=[4, 4]),
             helper.make_node("Flatten", ["m"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "upsample_pf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    return proto


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("upsample_pf") / "gen"
    calib = np.random.default_rng(0).standard_normal((16, 1, 2, 8, 8)).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(_model()), Dataset.from_arrays({"x": calib[:, 0]}),
                                          out, budget=BUDGET, name="upsample_pf")
    man = hostrun.load_manifest(out)
    return Package("upsample_pf", out, program, man, hostrun.quantize(man, {"x": calib[:3, 0]}), stats)


def test_upsample_steps_are_split_into_committed_tiles(package: Package) -> None:
    ups = [s for s in package.program.steps if s.op == "upsample"]
    assert sorted(int(s.attrs["zeros"]) for s in ups) == [0, 1]
    for step in ups:
        out = package.program.buffers[step.outputs[0]]
        assert step.tile is not None and step.tile.dims[0] < out.size, (step.name, step.tile)


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    # the manifest's count is an upper bound (whole chunks of 32 elements; the zero insertion's
    # 1922 elements end in a partial one)
    check_failure_before_every_store(package, cc, sanitize, "intermittent_upsample", ("upsample", "act", "add", "concat"))


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    check_random_schedules(package)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    check_simulated_failures(package, "intermittent_upsample", BUDGET)

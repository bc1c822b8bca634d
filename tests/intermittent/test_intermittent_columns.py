"""Column units: a conv whose single output row does not fit the power-cycle budget is split into
ranges of output columns (passes/tile.py, fx_conv_cols), and power failures still give the
uninterrupted output bit for bit.

One model of 24-column maps compiled for BUDGET cycles per power cycle, in which every conv's row
is too long for one power cycle: a dense 3x3 conv with padding (border columns), a depthwise 3x3,
a conv dilated by 2 (every window on the general path), a pointwise 1x1 and a stride-2 conv:

- the tile pass gives each conv column units (``tile [1,1,cw]``), and the C equals the LIR
  interpreter bit for bit (gcc; clang with ASan+UBSan, -Wall -Wextra -Werror);
- host (``-DFX_HOST_POWER_FAIL``): a failure before every FRAM store of one inference (gcc, and
  clang with ASan+UBSan), and 100 random schedules per input;
- the MSP430 simulator: random (SRAM scrambled) and ``every:BUDGET`` failures give the host's
  outputs (skipped without the msp430-elf toolchain);
- a conv of ResNet-8's shape (16x32x32 maps, 3x3 over 16 channels, padding 1), whose rows
  needed 43,751 cycles of the 40,000 a 50,000-cycle budget leaves, now compiles at 50,000 and
  30,000 cycles per power cycle with column units, every commit group within the budget;
- an fc output over a row of 4096 inputs, a unit that cannot be split, is a BudgetError naming it.
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
from transpiler.errors import BudgetError
from transpiler.intermittent import plan_of
from transpiler.lir.cost import BOOT_CYCLES, step_work
from transpiler.lir.interp import run_program
from transpiler.model import OnnxModel

BUDGET = 5000


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    inits = {
        "w1": rng.standard_normal((4, 2, 3, 3)) * 0.4, "b1": rng.standard_normal(4) * 0.1,
        "wd": rng.standard_normal((4, 1, 3, 3)) * 0.5, "bd": rng.standard_normal(4) * 0.1,
        "w2": rng.standard_normal((4, 4, 3, 3)) * 0.3, "b2": rng.standard_normal(4) * 0.1,
        "wp": rng.standard_normal((4, 4, 1, 1)) * 0.5, "bp": rng.standard_normal(4) * 0.1,
        "w3": rng.standard_normal((2, 4, 3, 3)) * 0.3, "b3": rng.standard_normal(2) * 0.1,
        "wf": rng.standard_normal((3, 2 * 3 * 12)) * 0.2, "bf": rng.standard_normal(3) * 0.1,
    }
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="dense", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], name="depthwise", pads=[1, 1, 1, 1], group=4),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w2", "b2"], ["c3"], name="dilated", pads=[2, 2, 2, 2],
                              dilations=[2, 2]),
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("Conv", ["r3", "wp", "bp"], ["c4"], name="pointwise"),
             helper.make_node("Conv", ["c4", "w3", "b3"], ["c5"], name="strided", strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c5"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "columns_pf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    return proto


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("columns_pf") / "gen"
    calib = np.random.default_rng(0).standard_normal((16, 2, 6, 24)).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(_model()), Dataset.from_arrays({"x": calib}),
                                          out, budget=BUDGET, name="columns_pf")
    man = hostrun.load_manifest(out)
    return Package("columns_pf", out, program, man, hostrun.quantize(man, {"x": calib[:3]}), stats)


def test_every_conv_row_is_split_into_column_units(package: Package) -> None:
    p = package.program
    convs = [s for s in p.steps if s.op == "conv"]
    assert len(convs) == 5
    for step in convs:
        _, oh, ow = p.buffers[step.outputs[0]].shape[-3:]
        assert step.tile is not None and step.tile.dims[:2] == [1, 1] and step.tile.dims[2] < ow, step
        assert step_work(p, step).units == p.buffers[step.outputs[0]].shape[-3] * oh * -(-ow // step.tile.dims[2])
        assert step_work(p, step, cols=ow).cycles_per_unit > step_work(p, step).cycles_per_unit
    assert package.tile_stats["max_group_cycles"] + BOOT_CYCLES <= BUDGET * (1 - plan_of(p).margin)
    c = (package.out_dir / "columns_pf.c").read_text()
    assert c.count("fx_conv_col_units(") == 5 and "fx_conv_units(" not in c


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_c_equals_the_interpreter(package: Package, cc: str, sanitize: bool) -> None:
    pkg = package
    got = hostrun.run_raw(hostrun.build(pkg.out_dir, cc=cc, sanitize=sanitize), pkg.manifest, pkg.inputs)
    port = pkg.program.inputs[0]
    shape = pkg.program.buffers[port.buffer].shape
    out = pkg.program.outputs[0]
    want = np.stack([np.asarray(run_program(pkg.program, {port.onnx_name: x.reshape(shape)})[out.onnx_name]).reshape(-1)
                     for x in pkg.inputs])
    assert np.array_equal(got.astype(np.int64), want.astype(np.int64))


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    check_failure_before_every_store(package, cc, sanitize, "intermittent_columns", ("act", "add", "concat"))


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    check_random_schedules(package)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    check_simulated_failures(package, "intermittent_columns", BUDGET)


def _resnet8_layer() -> onnx.ModelProto:
    """Conv 16 -> 16, 3x3, padding 1, over a 16x32x32 map, then ReLU (a layer of ResNet-8's first
    stack) and a global average pool (the output copy of a whole map would not fit either budget)."""
    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array((rng.standard_normal((16, 16, 3, 3)) * 0.12).astype(np.float32), "w"),
             numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    graph = helper.make_graph(nodes, "resnet8_layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 1, 1])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    return proto


@pytest.mark.parametrize("budget", [50000, 30000])
def test_a_resnet8_layer_compiles_with_column_units(tmp_path_factory: pytest.TempPathFactory, budget: int) -> None:
    out = tmp_path_factory.mktemp("resnet8_layer") / "gen"
    calib = np.random.default_rng(1).standard_normal((4, 16, 32, 32)).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(_resnet8_layer()), Dataset.from_arrays({"x": calib}),
                                          out, budget=budget, name="resnet8_layer")
    (conv,) = [s for s in program.steps if s.op == "conv"]
    row = step_work(program, conv, cols=32)
    assert row.cycles_per_unit + BOOT_CYCLES > budget * 0.8 - 600    # a whole row does not fit
    assert conv.tile is not None and conv.tile.dims[:2] == [1, 1] and conv.tile.dims[2] < 32
    assert stats["max_group_cycles"] + BOOT_CYCLES <= budget * 0.8
    assert "fx_conv_col_units(" in (out / "resnet8_layer.c").read_text()


def test_an_fc_output_over_a_long_row_is_a_precise_budget_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One output of an fc over K = 4096 inputs (~33,000 cycles) cannot be split: the error names
    that unit, its MACs and what helps."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array((rng.standard_normal((2, 4096)) * 0.02).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b")]
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)], "long_fc",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4096])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    calib = rng.standard_normal((4, 4096)).astype(np.float32)
    with pytest.raises(BudgetError) as info:
        compile_intermittent(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": calib}),
                             tmp_path_factory.mktemp("long_fc") / "gen", budget=20000, name="long_fc")
    text = info.value.render()
    assert "one output (4096 MACs over its input row of 4096)" in text and "20000 cycles" in text
    assert "a shorter input row" in (info.value.hint or "")

"""Element-wise activations (lut steps) on the MSP430FR5994 simulator, bit for bit.

A CNN with SiLU (gated, mirrored table), Tanh and GELU's Erf form, and scikit-learn's tanh MLP,
compiled for ``--target msp430fr5994`` (MPY32: fx_lut's index multiply and interpolation on the
multiplier): the simulator's outputs equal the LIR interpreter's on quantised samples and on
full-range random inputs (every table's clamped ends and the mirror of -32768), and the planner's
memory figures agree with the ELF (the tables are constants it places).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from msp430_testlib import msp430_tc  # noqa: F401
from onnx import TensorProto, helper, numpy_helper
from test_msp430_models_sim import check_memory_agrees, check_sim_equals_interpreter, compile_package, make_inputs

from transpiler.data import Dataset
from transpiler.lir.text import parse_program
from transpiler.model import OnnxModel
from transpiler.simpackage import run_package
from transpiler.toolchain import Msp430Toolchain


def _cnn() -> tuple[OnnxModel, Dataset]:
    rng = np.random.default_rng(5)
    n = helper.make_node
    nodes = [n("Conv", ["x", "W1", "B1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             n("Sigmoid", ["c1"], ["s1"]), n("Mul", ["c1", "s1"], ["a1"]),                 # SiLU
             n("Conv", ["a1", "W2", "B2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2]),
             n("Tanh", ["c2"], ["a2"]), n("Flatten", ["a2"], ["f"]),
             n("Gemm", ["f", "W3", "B3"], ["h"], transB=1),
             n("Div", ["h", "r2"], ["d"]), n("Erf", ["d"], ["e"]), n("Add", ["e", "one"], ["p"]),
             n("Mul", ["h", "p"], ["m"]), n("Mul", ["m", "half"], ["g"]),               # GELU (torch legacy)
             n("Gemm", ["g", "W4", "B4"], ["y"], transB=1)]
    inits = {"W1": rng.standard_normal((4, 1, 3, 3)) / 3, "B1": rng.standard_normal(4) * 0.1,
             "W2": rng.standard_normal((6, 4, 3, 3)) / 6, "B2": rng.standard_normal(6) * 0.1,
             "W3": rng.standard_normal((12, 54)) / 7, "B3": rng.standard_normal(12) * 0.1,
             "W4": rng.standard_normal((5, 12)) / 3, "B4": rng.standard_normal(5) * 0.1,
             "r2": np.array(1.4142135), "one": np.array(1.0), "half": np.array(0.5)}
    graph = helper.make_graph(nodes, "lut_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return OnnxModel.from_proto(proto), Dataset.from_arrays({"x": rng.standard_normal((64, 1, 8, 8)).astype(np.float32)})


def _sklearn_tanh() -> tuple[OnnxModel, Dataset]:
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((24,), activation="tanh", max_iter=200, random_state=0).fit(x[:1000], digits.target[:1000])
    proto = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset={"": 13, "ai.onnx.ml": 1})
    return OnnxModel.from_proto(proto), Dataset.from_arrays({"X": x[1000:1200]})


@pytest.mark.parametrize("make", [_cnn, _sklearn_tanh], ids=["silu-tanh-gelu-cnn", "sklearn-tanh-mlp"])
def test_lut_models_sim_equal_interpreter(make, tmp_path: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    model, ds = make()
    out = tmp_path / "pkg"
    man = compile_package(model, ds, out)
    program = parse_program((out / "final.lir").read_text())
    luts = [s for s in program.steps if s.op == "lut"]
    assert luts and (make is _sklearn_tanh or {s.attrs["gate"] for s in luts} == {0, 1})
    from transpiler import hostrun

    quantised = hostrun.quantize(man, {k: v[:4] for k, v in ds.inputs.items()})
    x = make_inputs(man, quantised, 6, seed=3)
    sim = run_package(out, x, counters="run", toolchain=msp430_tc)
    check_sim_equals_interpreter(program, sim.outputs, x)
    check_memory_agrees(out, man, msp430_tc)

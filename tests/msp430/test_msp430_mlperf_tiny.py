"""MLPerf Tiny's keyword-spotting DS-CNN at its reference size (1x49x10 MFCCs, 64 channels, four
depthwise-separable blocks; bench/exporter_cases/torch_nets.py) from torch's legacy exporter, compiled
for the FR5994: its 64x25x5 maps (15.6 KiB) live in lower FRAM and HIFRAM, the plan leaves the
application its reserve of lower FRAM (the build links with the simulator harness: before, lower FRAM
was planned to 46.9 of 47.9 KiB and the link overflowed by 542 B), the simulator equals the host build
bit for bit and the planner's memory figures the ELF's.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from msp430_testlib import REPO, msp430_tc  # noqa: F401
from test_msp430_models_sim import check_memory_agrees, check_sim_equals_host, compile_package

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.model import OnnxModel
from transpiler.toolchain import Msp430Toolchain

if str(REPO) not in sys.path:
    sys.path.append(str(REPO))


def dscnn_proto() -> onnx.ModelProto:
    """The reference DS-CNN, seeded weights and BatchNorm statistics, legacy exporter at opset 13."""
    torch = pytest.importorskip("torch")
    from bench.exporter_cases.torch_nets import TinyKwsDsCnn, randomize_batchnorm

    torch.manual_seed(0)
    net = TinyKwsDsCnn()
    randomize_batchnorm(net)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net.eval(), (torch.randn(1, 1, 49, 10),), buffer, dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["output"])
    return onnx.load_from_string(buffer.getvalue())


def test_reference_dscnn_links_and_sim_equals_host(tmp_path: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    x = np.random.default_rng(1).standard_normal((16, 1, 49, 10)).astype(np.float32)
    out = tmp_path / "dscnn"
    man = compile_package(OnnxModel.from_proto(dscnn_proto()), Dataset.from_arrays({"input": x}), out)
    spaces = {b["space"] for b in man["buffers"] if b["kind"] == "activation" and b["bytes"] == 64 * 25 * 5 * 2}
    assert spaces == {"fram", "hifram"}, spaces
    check_sim_equals_host(out, man, hostrun.quantize(man, {"input": x[:1]}).reshape(1, -1), msp430_tc)
    check_memory_agrees(out, man, msp430_tc)

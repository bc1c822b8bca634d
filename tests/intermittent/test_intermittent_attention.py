"""A small transformer encoder (self-attention: `matmul` and `softmax` steps, `layernorm`)
under power failures: the output equals the uninterrupted one bit for bit.

torch's nn.TransformerEncoderLayer (d_model 16, one head, feed-forward 32, T = 8) + mean pooling +
Linear, exported by the dynamo exporter, compiled for a power-cycle budget that splits the
softmax, matmul and layernorm steps into tiles of rows with commits between them:

- host (``-DFX_HOST_POWER_FAIL``): a failure before every FRAM store of one inference (exhaustive),
  gcc and clang + ASan/UBSan, and 100 random schedules per input;
- the MSP430 simulator (real ISA-level failures in cycles, SRAM refilled with random words): random
  and periodic schedules give the host's outputs (skipped without the msp430-elf toolchain).
"""

from __future__ import annotations

import numpy as np
import pytest
from intermittent_helpers import (Package, check_failure_before_every_store, check_random_schedules,
                                  check_simulated_failures, compile_intermittent)

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.model import OnnxModel
from transformer_models import transformer

BUDGET = 90000


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("attention_pf") / "gen"
    proto, shape = transformer("d16h1", dynamo=True)
    calib = np.random.default_rng(0).standard_normal((16, *shape[1:])).astype(np.float32)
    program, stats = compile_intermittent(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": calib}),
                                          out, budget=BUDGET, name="attention_pf")
    man = hostrun.load_manifest(out)
    return Package("attention_pf", out, program, man, hostrun.quantize(man, {"x": calib[:2]}), stats)


def test_attention_steps_are_split_into_committed_tiles(package: Package) -> None:
    steps = [s for s in package.program.steps if s.op in ("softmax", "matmul", "layernorm")]
    assert sorted({s.op for s in steps}) == ["layernorm", "matmul", "softmax"]
    split = [s for s in steps if s.tile is not None and s.tile.dims[0] < package.program.buffers[s.outputs[0]].shape[0]]
    assert {s.op for s in split} >= {"layernorm"}, [(s.name, s.tile) for s in steps]


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    check_failure_before_every_store(package, cc, sanitize, "intermittent_attention", ("transpose", "act", "add", "concat", "upsample"))


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    check_random_schedules(package)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    check_simulated_failures(package, "intermittent_attention", BUDGET)

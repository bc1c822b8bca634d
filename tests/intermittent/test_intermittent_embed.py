"""A token-id model (``nn.Embedding`` over 32 tokens + mean over time + Linear) under power failures:
the ``embed`` step is split into tiles of rows with commits between them, and the output equals the
uninterrupted one bit for bit:

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
from token_models import token_dataset, token_ids, token_model

from transpiler import hostrun
from transpiler.model import OnnxModel

pytest.importorskip("torch")

BUDGET = 9000
LENGTH = 32


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    out = tmp_path_factory.mktemp("embed_pf") / "gen"
    proto = token_model("mean", vocab=50, dim=24, length=LENGTH, seed=5)
    ids = token_ids(24, LENGTH, 50, seed=6)
    program, stats = compile_intermittent(OnnxModel.from_proto(proto), token_dataset(ids), out, budget=BUDGET,
                                          name="embed_pf")
    man = hostrun.load_manifest(out)
    return Package("embed_pf", out, program, man, hostrun.quantize(man, {"ids": ids[:2]}), stats)


def test_embed_step_is_split_into_committed_tiles(package: Package) -> None:
    (step,) = [s for s in package.program.steps if s.op == "embed"]
    assert step.tile is not None and step.tile.dims[0] < LENGTH, step.tile
    assert package.manifest["inputs"][0]["vocab"] == 50
    assert np.array_equal(package.inputs.view(np.uint16)[:, :4].astype(np.int64) < 50, np.ones((2, 4), bool))


@pytest.mark.parametrize("cc,sanitize", [("gcc", False), ("clang", True)])
def test_failure_before_every_fram_store(package: Package, cc: str, sanitize: bool) -> None:
    check_failure_before_every_store(package, cc, sanitize, "intermittent_embed", ("transpose", "act", "add", "concat"))


def test_random_schedules_give_the_uninterrupted_outputs(package: Package) -> None:
    check_random_schedules(package)


def test_simulated_power_failures_give_the_host_outputs(package: Package) -> None:
    check_simulated_failures(package, "intermittent_embed", BUDGET)

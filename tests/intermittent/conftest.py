"""Session fixtures of the intermittent tests: the samples compiled once for a power-cycle budget."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest
from intermittent_helpers import SAMPLES, Package, compile_sample


@pytest.fixture(scope="session")
def sample_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Package]:
    """Every dense sample compiled for intermittent power (skips the absent ones)."""
    root = tmp_path_factory.mktemp("intermittent_samples")
    from intermittent_helpers import REPO

    present = [n for n in SAMPLES if (REPO / "samples" / f"{n}.onnx").is_file()
               and (REPO / "samples" / f"{n}.npz").is_file()]
    if not present:
        pytest.skip("no samples/*.onnx with data (python samples/make_all.py makes them)")
    return {n: compile_sample(n, root) for n in present}


@pytest.fixture(scope="session")
def host_pf_binaries(sample_packages: dict[str, Package]) -> dict[str, Path]:
    """The gcc -O2 power-failure driver of every sample package, built in parallel."""
    from transpiler.powerfail import build_host_pf

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {n: pool.submit(build_host_pf, p.out_dir, "gcc") for n, p in sample_packages.items()}
        return {n: f.result() for n, f in futures.items()}

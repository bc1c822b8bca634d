#!/usr/bin/env python3
"""Write tests/fixtures/simplified/: small exports rewritten by onnx-simplifier and onnxslim.

Needs onnxsim and onnxslim (plus torch, onnxscript, scikit-learn and skl2onnx for the exports), which are
NOT project dependencies (CI does not install the simplifiers; the tests only read the files written
here). Their pins may change the environment's onnx, so use a venv that sees the system packages::

    python -m venv --system-site-packages /tmp/venv-sim && /tmp/venv-sim/bin/pip install onnxsim onnxslim
    /tmp/venv-sim/bin/pip uninstall -y onnx      # if pip brought another onnx: keep the system's
    /tmp/venv-sim/bin/python tools/simplified_fixtures.py      # rewrites tests/fixtures/simplified/

Each fixture is an exporter sweep case of ``bench/exporter_cases/simplified_cases.py`` (the export, then
the simplifier), written as ``<case>.onnx`` beside ``<case>.npz`` (``x``: the first ``ROWS`` of the case's
samples); ``FIXTURES`` names them and what the simplifier changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exporter_cases import all_cases  # noqa: E402

FIXTURE_DIR = ROOT / "tests" / "fixtures" / "simplified"
ROWS = 48
"""Samples per fixture."""
FIXTURES: dict[str, str] = {
    "flatten_nhwc-legacy13-bdyn-sim1": "onnxsim at batch 1 folds Flatten's Shape/Gather/Unsqueeze/Concat arithmetic",
    "mbconv_se-legacy11-b1-nofold-sim": "onnxsim folds the 4 BatchNormalization of the unfolded export into the Convs",
    "nhwc_pixel_linear-legacy11-b1-nofold-slim": "onnxslim: Transpose, MatMul, Add on pixels -> Reshape, Gemm, Reshape",
    "layernorm_seq-dynamo18-bdyn-sim": "onnxsim: a [N, T, D] MatMul + Add -> Reshape, Gemm, Reshape",
    "mlpc_relu-nozipmap-skl17-slim": "onnxslim drops skl2onnx's Cast and Identity",
    "convnext-legacy13-bdyn-sim1": "onnxsim at batch 1: the channels-last Linear, GELU, Linear as 2-D rows",
}


def main() -> int:
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    cases = {case.name: case for case in all_cases()}
    for name in FIXTURES:
        exported = cases[name].build()
        x = next(iter(exported.inputs.values()))[:ROWS]
        onnx.save(exported.proto, str(FIXTURE_DIR / f"{name}.onnx"))
        np.savez_compressed(FIXTURE_DIR / f"{name}.npz", x=x.astype(np.float32))
        print(f"{name}: {(FIXTURE_DIR / f'{name}.onnx').stat().st_size} bytes, {len(x)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""JAX / Flax (jax2onnx) and PaddlePaddle (paddle2onnx) models: exporters freeml-tx has not been tuned on.

Needs jax, flax, jax2onnx, paddlepaddle and paddle2onnx, which are NOT project dependencies; run it
in a venv that sees the system packages but installs into itself::

    python -m venv --system-site-packages /work/venv-export
    /work/venv-export/bin/pip install jax2onnx flax jax jaxlib paddlepaddle paddle2onnx
    /work/venv-export/bin/python tools/jax_paddle_models.py jax -o build/jax     # every jax case
    /work/venv-export/bin/python tools/jax_paddle_models.py paddle --fixtures    # tests/fixtures/paddle/

The models are the cases of bench/exporter_cases/jax_cases.py and paddle_cases.py (their
docstrings list the nets and export forms). Each case ``<framework>-<net>-op<opset>-<form>`` is
written as ``<net>[_nchw|_nhwc]_op<opset>_b<1|N>.onnx`` with ``<net>[_nchw|_nhwc].npz`` beside it
(``x``: the held-out samples in the layout of the graph input), the form
tools/check_exports.py reads: check them in the main environment with
``python tools/check_exports.py build/jax``. ``--fixtures`` writes the few small models the tests
ship (``FIXTURES``), each with ``FIXTURE_SAMPLES`` samples, into tests/fixtures/<framework>/.

Each case runs in a process of its own: paddle2onnx aborts the process (SIGABRT) on a layer it
cannot convert (an NHWC convolution, a Softplus with a non-default threshold, ...); such a case is
reported ``export-failed`` with the exporter's error line and the others go on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.exporter_cases.common import Case  # noqa: E402
from bench.exporter_cases.jax_cases import jax_cases  # noqa: E402
from bench.exporter_cases.paddle_cases import paddle_cases  # noqa: E402

FIXTURES: dict[str, tuple[str, ...]] = {
    "jax": ("jax-mlp_gelu-op17-bdyn", "jax-cnn-op17-bdyn", "jax-dwsep-op21-b1", "jax-conv1d-op17-bdyn",
            "jax-residual-op17-b1-nchw", "jax-layernorm-op23-b1", "jax-seq_norm-op23-b1", "jax-regressor-op17-bdyn",
            "jax-binary-op23-b1"),
    "paddle": ("paddle-mlp_bn_tanh_gelu-op13-bdyn", "paddle-cnn-op13-bdyn", "paddle-cnn_nhwc-op11-b1",
               "paddle-dwsep-op17-b1", "paddle-conv1d-op13-bdyn", "paddle-residual-op17-b1", "paddle-layernorm-op11-b1",
               "paddle-gru-op17-b1", "paddle-regressor-op13-bdyn"),
}
"""Per framework, the cases whose models tests/fixtures/<framework>/ holds."""
FIXTURE_SAMPLES = 64


def file_stem(case: Case) -> tuple[str, str]:
    """(model file stem, data file stem) of ``case`` (see the module docstring)."""
    _, net, rest = case.name.split("-", 2)
    opset, _, form = rest.partition("-")
    kind = net + ("_nchw" if form.endswith("nchw") else "")
    return f"{kind}_{opset}_b{'N' if form.startswith('bdyn') else '1'}", kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("jax", "paddle"))
    parser.add_argument("-o", "--out", type=Path, help="output folder (default build/<framework>)")
    parser.add_argument("--only", nargs="*", default=None, metavar="SUBSTR",
                        help="only the cases whose name contains one of these")
    parser.add_argument("--fixtures", action="store_true",
                        help="write the test fixtures into tests/fixtures/<framework>")
    parser.add_argument("--case", help=argparse.SUPPRESS)     # one case, in the process the others start
    args = parser.parse_args()
    cases = jax_cases() if args.framework == "jax" else paddle_cases()
    if args.fixtures:
        cases = [case for case in cases if case.name in FIXTURES[args.framework]]
        out = ROOT / "tests" / "fixtures" / args.framework
    else:
        out = args.out or ROOT / "build" / args.framework
    cases = [case for case in cases if not args.only or any(word in case.name for word in args.only)]
    out.mkdir(parents=True, exist_ok=True)
    if args.case:
        export_case(next(case for case in cases if case.name == args.case), out, args.fixtures)
        return
    for case in cases:
        done = subprocess.run([sys.executable, __file__, args.framework, "-o", str(out), "--case", case.name,
                               *(["--fixtures"] if args.fixtures else [])], capture_output=True, text=True)
        if done.returncode == 0:
            print(done.stdout.strip().splitlines()[-1], flush=True)
            continue
        errors = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line or "Error" in line]
        print(f"export-failed {case.name} (exit {done.returncode}): {errors[0].strip() if errors else '(no message)'}",
              flush=True)


def export_case(case: Case, out: Path, fixtures: bool) -> None:
    """Export ``case`` into ``out`` (see the module docstring)."""
    exported = case.build()
    model_stem, data_stem = file_stem(case)
    (name, samples), = exported.inputs.items()
    if fixtures:
        samples = samples[:FIXTURE_SAMPLES]
    onnx.save(exported.proto, str(out / f"{model_stem}.onnx"))
    np.savez_compressed(out / f"{data_stem}.npz", x=samples)
    print(f"{model_stem}.onnx ({case.name}): {(out / f'{model_stem}.onnx').stat().st_size} bytes, input {name}")


if __name__ == "__main__":
    main()

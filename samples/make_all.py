#!/usr/bin/env python3
"""Regenerate every sample model and data file in samples/, then print a summary.

    python samples/make_all.py            # all scripts
    python samples/make_all.py --summary  # only the summary of the files already on disk
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

SCRIPTS = ["make_lenet5_mnist.py", "make_mlp_mnist_big.py", "make_cnn_digits.py",
           "make_mlp_digits_sklearn.py", "make_tiny.py"]
MODELS = ["lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn",
          "tiny_conv1d", "tiny_residual"]
MAX_DATA_BYTES = 5 * 1024 * 1024


def main():
    if "--summary" not in sys.argv:
        for s in SCRIPTS:
            print(f"=== {s}", flush=True)
            subprocess.run([sys.executable, str(HERE / s)], check=True)
    print("=== summary")
    total = 0
    for name in MODELS:
        d = C.describe(HERE / f"{name}.onnx")
        npz = HERE / f"{name}.npz"
        total += npz.stat().st_size
        print(f"{name}: ops={d['ops']} opsets={d['opsets']} params={d['params']} "
              f"float32_bytes={d['float32_bytes']} inputs={d['inputs']} outputs={d['outputs']} "
              f"npz={npz.stat().st_size}")
    print(f"total npz bytes: {total}")
    assert total < MAX_DATA_BYTES, total


if __name__ == "__main__":
    main()

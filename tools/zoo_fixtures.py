"""Write tests/fixtures/zoo/: model-zoo architectures as torch exports them, for tests/backend/test_zoo_e2e.py.

    /work/venv-zoo/bin/python tools/zoo_fixtures.py     # a Python with torch, torchvision, transformers

The models are cases of bench/exporter_cases/zoo_cases.py (random weights, seeded; BatchNorm statistics
randomized): torchvision's ``mobilenet_v3_small(width_mult=0.1)`` (squeeze-excitation, hardswish;
legacy exporter, opset 13), transformers' ViTForImageClassification (class token, two heads, eager
attention with its float Casts; legacy, opset 17, and dynamo, opset 18) and BertForSequenceClassification
over 8 token ids (legacy, opset 17). Each ``<name>.npz`` holds the samples under the graph input's name:
``IMAGE_SAMPLES`` standard normal images (they are large) or 200 token-id rows. The dynamo export's
per-node metadata (source locations) is dropped to keep the file small; the graph is unchanged.
The tests need none of these packages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.exporter_cases.zoo_cases import export_zoo  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "zoo"
IMAGE_SAMPLES = 12
FIXTURES: dict[str, tuple[str, str, str, int]] = {
    "tv_mobilenet_v3_small_w010-legacy13": ("tv", "mobilenet_v3_small_w010", "legacy", 13),
    "hf_vit-legacy17": ("hf", "vit", "legacy", 17),
    "hf_vit-dynamo18": ("hf", "vit", "dynamo", 18),
    "hf_bert-legacy17": ("hf", "bert", "legacy", 17),
}
"""Fixture name -> (zoo family, net, exporter, opset)."""


def strip_metadata(proto: onnx.ModelProto) -> None:
    """Drop the nodes' metadata and doc strings and the value infos (the exporter's annotations)."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.graph.value_info[:]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (family, net, exporter, opset) in FIXTURES.items():
        exported = export_zoo(family, net, exporter, opset)
        proto = exported.proto
        strip_metadata(proto)
        onnx.checker.check_model(proto)
        samples = {k: (v if v.dtype.kind == "i" else v[:IMAGE_SAMPLES]) for k, v in exported.inputs.items()}
        onnx.save(proto, OUT / f"{name}.onnx")
        np.savez_compressed(OUT / f"{name}.npz", **samples)
        print(f"{name}: {(OUT / f'{name}.onnx').stat().st_size:,} B model, "
              f"{(OUT / f'{name}.npz').stat().st_size:,} B samples")


if __name__ == "__main__":
    main()

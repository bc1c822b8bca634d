"""`OnnxModel`: an onnx-graphsurgeon graph plus the typed annotation table.

onnx-graphsurgeon is our editable graph (nodes and tensors with edges kept in sync). It drops the
model's ``metadata_props``, so this wrapper keeps them (and our annotations, as JSON under
``freeml_tx.annotations``) beside the graph and writes them back in :meth:`OnnxModel.to_proto`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.annotations import METADATA_KEY, Annotations


#: The first IR version whose initializers need not be graph inputs (what onnx-graphsurgeon writes).
IR_INITIALIZERS_NOT_INPUTS = 4


@dataclass
class OnnxModel:
    """A model at the ONNX level of the pipeline."""

    graph: gs.Graph
    annotations: Annotations = field(default_factory=Annotations)
    metadata: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    ir_version: int | None = None
    producer: str = ""

    @property
    def name(self) -> str:
        return self.graph.name or "model"

    @property
    def opset(self) -> int:
        return int(self.graph.opset or 0)

    @classmethod
    def from_proto(cls, proto: onnx.ModelProto, source: str | None = None) -> "OnnxModel":
        metadata = {p.key: p.value for p in proto.metadata_props}
        text = metadata.pop(METADATA_KEY, None)
        annotations = Annotations.from_json(text, source) if text else Annotations()
        graph = gs.import_onnx(proto)
        return cls(graph=graph, annotations=annotations, metadata=metadata, source=source,
                   ir_version=proto.ir_version or None,
                   producer=" ".join(p for p in (proto.producer_name, proto.producer_version) if p))

    def to_proto(self) -> onnx.ModelProto:
        """Export to a ModelProto with metadata and annotations restored.

        String initializers (skl2onnx's class labels) are written by this method: onnx-graphsurgeon
        can read them but not write them.
        """
        strings = [t for t in self.graph.tensors().values()
                   if isinstance(t, gs.Constant) and np.asarray(t.values).dtype.kind in "OSU"]
        saved = [t.values for t in strings]
        try:
            for t in strings:
                t.values = np.zeros(np.shape(t.values), dtype=np.int8)
            proto = gs.export_onnx(self.graph, do_type_check=False)
        finally:
            for t, values in zip(strings, saved):
                t.values = values
        for init in proto.graph.initializer:
            tensor = next((t for t in strings if t.name == init.name), None)
            if tensor is not None:
                values = np.asarray(tensor.values).reshape(-1)
                init.CopyFrom(onnx.helper.make_tensor(
                    init.name, onnx.TensorProto.STRING, list(np.shape(tensor.values)),
                    [v if isinstance(v, bytes) else str(v).encode() for v in values.tolist()]))
        if self.ir_version is not None:
            # gs bumps the IR version to its own; keep the input's so old runtimes still load it, but
            # at least 4: gs writes initializers that are not graph inputs, which IR 3 does not allow.
            proto.ir_version = max(self.ir_version, _min_ir_version(proto), IR_INITIALIZERS_NOT_INPUTS)
        del proto.metadata_props[:]
        for key in sorted(self.metadata):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, self.metadata[key]
        if len(self.annotations):
            entry = proto.metadata_props.add()
            entry.key, entry.value = METADATA_KEY, self.annotations.to_json()
        return proto

    def copy(self) -> "OnnxModel":
        """A deep copy (graph, annotations and metadata)."""
        return OnnxModel(graph=self.graph.copy(), annotations=self.annotations.copy(),
                         metadata=dict(self.metadata), source=self.source, ir_version=self.ir_version,
                         producer=self.producer)

    def save(self, path: str) -> None:
        onnx.save(self.to_proto(), path)


def _min_ir_version(proto: onnx.ModelProto) -> int:
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=7)
    # onnx.helper.VERSION_TABLE rows: (release, ir_version, ai.onnx opset, ...)
    for row in onnx.helper.VERSION_TABLE:
        if row[2] >= opset:
            return int(row[1])
    return int(proto.ir_version)


def deep_copy_proto(proto: onnx.ModelProto) -> onnx.ModelProto:
    return copy.deepcopy(proto)

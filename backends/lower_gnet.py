"""Lowering of an attached gNet (passes/attach_gnet.py) to the LIR ops ``gnet_feature`` / ``gnet_exit``.

The ONNX graph computes every exit k as ``Gemm(Concat(f_1..f_k, zeros), gnet_W, gnet_b)``: K
Concat + Gemm nodes over one shared weight. The device instead keeps ONE feature vector ``F`` and
runs the head on demand, so `lower` (through :class:`GnetLowering`, hooked into
backends/lower.py) does this:

- the exit pooling nodes (MaxPool/AveragePool/Flatten/1x1 Conv) are ordinary nodes and lower as
  usual, right after the exit's layer;
- once the feature tensor ``f_k`` of exit k has a buffer, a ``gnet_feature`` step copies it into
  its slice of ``F`` (``%gnet_F``, i16 ``[NF]``), requantised from its own format to F's:
  ``shift = q(f_k) - q(F)`` with ``q(F)`` the ``qformat`` of the last exit's Concat (the union of
  all features, whose range covers every other Concat's), clamped as `concat` does;
- the K Concat and Gemm nodes are not lowered; after the in-sequence steps (and the argmax) ONE
  on-demand ``gnet_exit`` step computes the head over ``F`` into ``%gnet_scores`` (i16 ``[classes]``):
  weights quantised like an fc's (``qformat`` of ``gnet_W`` from quantize, per row), the output
  format the coarsest of the K exits' ``qformat`` and of the backbone's scores (so an early answer
  fits the scores port);
- the ``gnet_exit_k`` graph outputs are not program outputs; ``meta["gnet"]`` records them, the
  exit tensors and the feature slices (JSON).

Before -> after::

    e1 -> MaxPool -> Flatten -> f1;  gnet_exit_k = Gemm(Concat(f1, .., zeros), gnet_W, gnet_b)
    =>
    step maxpool "gnet_pool_1" (%e1) -> (%p1)
    step gnet_feature "gnet_feature_1" (%p1_flat) -> (%gnet_F) {exit=1, features=292, offset=0, shift=0}
    ...
    step gnet_exit "gnet_head" (%gnet_F, %gnet_W, %gnet_b) -> (%gnet_scores) {act="none", exits=4, shift=[...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx_graphsurgeon as gs

from passes.quantize import round_half_up
from transpiler.errors import Location, PassError
from transpiler.lir.ir import Buffer, Step

if TYPE_CHECKING:
    from backends.lower import _Lowerer

GNET_META = "gnet"
SHIFT_MIN, SHIFT_MAX = -15, 31
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


@dataclass
class GnetLowering:
    """The gNet part of one lowering (see the module docstring)."""

    lw: "_Lowerer"
    record: dict[str, Any]
    exits: list[dict[str, Any]]
    emitted: int = 0
    features_buf: str = ""
    steps: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, lw: "_Lowerer") -> "GnetLowering | None":
        """The gNet lowering of ``lw``'s model (None without a ``gnet`` annotation): marks the head's
        Concat/Gemm nodes as done and the gNet outputs as no program outputs."""
        record = lw.ann.get("graph", "gnet")
        if not isinstance(record, dict):
            return None
        head = record.get("head", {})
        names = set(head.get("concat", [])) | set(head.get("gemm", []))
        nodes = {n.name: n for n in lw.graph.nodes}
        missing = sorted(names - set(nodes))
        if missing:
            raise PassError(f"the gNet annotation names nodes the graph does not have: {', '.join(missing[:4])}",
                            location=Location(file=lw.model.source, pass_name="lower"),
                            hint="re-run attach-gnet on the model (a pass after it changed the head)")
        for name in names:
            lw.done.add(id(nodes[name]))
        lw.skip_outputs.update(record.get("outputs", []))
        g = cls(lw, record, sorted(record["exits"], key=lambda e: e["index"]))
        g._features_buffer()
        return g

    def _where(self) -> Location:
        return Location(file=self.lw.model.source, pass_name="lower", node="gnet")

    def _features_buffer(self) -> None:
        """``%gnet_F`` [NF] in the Q format of the last exit's Concat (every feature's range)."""
        concats = self.record["head"]["concat"]
        nodes = {n.name: n for n in self.lw.graph.nodes}
        qs = [self.lw._q(nodes[c].outputs[0].name) for c in concats]
        self.q_features = min(qs)
        self.features_buf = self.lw._name("gnet_F")
        nf = int(self.record["features"])
        self.lw.program.add(Buffer(name=self.features_buf, dtype="i16", shape=(nf,), q=self.q_features))

    def after_node(self) -> None:
        """Emit the gnet_feature steps of the exits whose feature tensors now have buffers (in exit order)."""
        while self.emitted < len(self.exits):
            ex = self.exits[self.emitted]
            buf = self.lw.buf_of.get(ex["feature"])
            if buf is None:
                return
            q_x = self.lw._qbuf(buf)
            shift = q_x - self.q_features
            if not SHIFT_MIN <= shift <= SHIFT_MAX:
                raise PassError(f"exit {ex['index']}: features in q={q_x} cannot be requantised to the "
                                f"feature vector's q={self.q_features} (shift {shift})", location=self._where(),
                                hint="re-run quantize; the feature ranges differ by more than 2^15")
            size = self.lw.program.storage_of(buf).size
            if size != ex["length"]:
                raise PassError(f"exit {ex['index']}: the feature tensor has {size} values, the gNet "
                                f"annotation says {ex['length']}", location=self._where(),
                                hint="re-run attach-gnet")
            name = self._step_name(f"gnet_feature_{ex['index']}")
            self.lw.program.steps.append(Step(
                op="gnet_feature", name=name, inputs=[buf], outputs=[self.features_buf],
                attrs={"exit": int(ex["index"]), "features": int(self.record["features"]),
                       "offset": int(ex["offset"]), "shift": shift},
                origin=[ex["tensor"]]))
            self.steps.append(name)
            self.lw.stats["gnet_feature"] = self.lw.stats.get("gnet_feature", 0) + 1
            self.emitted += 1

    def _step_name(self, base: str) -> str:
        taken = {s.name for s in self.lw.program.steps}
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        return name

    def finish(self) -> None:
        """The on-demand head step (after the argmax) and ``meta["gnet"]``."""
        lw = self.lw
        if self.emitted != len(self.exits):
            ex = self.exits[self.emitted]
            raise PassError(f"exit {ex['index']}: its feature tensor '{ex['feature']}' was not lowered",
                            location=self._where(), hint="re-run attach-gnet after normalize")
        tensors = lw.graph.tensors()
        head = self.record["head"]
        w_t, b_t = tensors.get(head["weight"]), tensors.get(head["bias"])
        if not isinstance(w_t, gs.Constant) or not isinstance(b_t, gs.Constant):
            raise PassError("the gNet head weights are not constants", location=self._where(),
                            hint="re-run attach-gnet")
        w = np.asarray(w_t.values, dtype=np.float64)
        bias = np.asarray(b_t.values, dtype=np.float64).reshape(-1)
        f_in = self.q_features
        f_exits = min(lw._q(name) for name in self.record["outputs"])
        f_out = f_exits
        scores = self.backbone_scores()
        if scores is not None and isinstance(lw.program.buffers[scores].q, int):
            f_out = min(f_out, int(lw.program.buffers[scores].q))  # type: ignore[arg-type]
        maxes = np.abs(w).max(axis=1)
        f_w, f_out, shifts = lw._weight_formats(head["weight"], maxes, f_in, f_out, f_out)
        scale = np.power(2.0, np.array(f_w, dtype=np.float64)).reshape(-1, 1)
        w_q = np.clip(round_half_up(w * scale), -32768, 32767).astype(np.int16)
        b_q = np.clip(round_half_up(bias * np.power(2.0, np.array(f_w, dtype=np.float64) + f_in)),
                      INT32_MIN, INT32_MAX).astype(np.int32)
        w_buf = lw._const(head["weight"], w_q, "i16", list(f_w))
        b_buf = lw._const(head["bias"], b_q, "i32", None)
        y_buf = lw._name("gnet_scores")
        lw.program.add(Buffer(name=y_buf, dtype="i16", shape=(int(w.shape[0]),), q=f_out))
        name = self._step_name("gnet_head")
        lw.program.steps.append(Step(op="gnet_exit", name=name, inputs=[self.features_buf, w_buf, b_buf],
                                     outputs=[y_buf], attrs={"act": "none", "exits": len(self.exits),
                                                             "shift": shifts},
                                     origin=list(head["gemm"])))
        lw.stats["gnet_exit"] = 1
        lw.program.meta[GNET_META] = json.dumps({
            "outputs": list(self.record["outputs"]),
            "exits": [{"index": e["index"], "tensor": e["tensor"], "offset": e["offset"], "length": e["length"],
                       "pool": e["pool"], "step": s} for e, s in zip(self.exits, self.steps)],
            "features": int(self.record["features"]), "classes": int(w.shape[0]),
            "feature_buffer": self.features_buf, "scores_buffer": y_buf, "head_step": name,
            "scores_port": self.scores_port(),
        }, sort_keys=True, separators=(",", ":"))

    def backbone_scores(self) -> str | None:
        """The buffer of the backbone's scores (what the argmax reads, else the single real output)."""
        port = self.scores_port()
        if port is None:
            return None
        return next(pt.buffer for pt in self.lw.program.outputs if pt.onnx_name == port)

    def scores_port(self) -> str | None:
        """The program output an early answer writes its scores to: the one the class argmax reads,
        else the only output of the classifier's size."""
        prog = self.lw.program
        classes = int(np.asarray(self.lw.graph.tensors()[self.record["head"]["bias"]].values).size)
        cls = prog.meta.get("class-output")
        argmax = next((s for s in prog.steps if s.op == "argmax" and cls is not None and
                       any(pt.onnx_name == cls and prog.storage_of(pt.buffer).name == prog.storage_of(s.outputs[0]).name
                           for pt in prog.outputs)), None)
        if argmax is not None:
            src = prog.storage_of(argmax.inputs[0]).name
            for pt in prog.outputs:
                if pt.onnx_name != cls and prog.storage_of(pt.buffer).name == src:
                    return pt.onnx_name
        sized = [pt.onnx_name for pt in prog.outputs
                 if pt.onnx_name != cls and prog.buffers[pt.buffer].size == classes]
        return sized[0] if len(sized) == 1 else None


def gnet_meta(program: Any) -> dict[str, Any] | None:
    """``meta["gnet"]`` of a program (None without a gNet)."""
    text = program.meta.get(GNET_META)
    if not text:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None

"""Check that semantics-preserving passes keep the model's numbers (onnxruntime before vs after).

For a pass with ``preserves_semantics = True`` at the ONNX level, :class:`VerifySemantics` runs the
model it gets and the model it returns on the same inputs (drawn from ``PassContext.data`` when
that fits the inputs, else seeded standard normal) and compares every output both models have with
``allclose(rtol=1e-4, atol=1e-4 * max(1, max|reference|))``. A mismatch is a
:class:`VerificationError` naming the pass, the output and the largest difference.

It is on when ``verify=True`` is passed to the manager or the environment has
``FREEML_TX_VERIFY=1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from transpiler import ort
from transpiler.errors import DataError, FreemlError, Location, VerificationError
from transpiler.instruments import Instrument, PassInfo
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext
from transpiler.stats import PassRecord

ENV_VAR = "FREEML_TX_VERIFY"
RTOL = 1e-4
ATOL = 1e-4


def verify_enabled(verify: bool | None) -> bool:
    """``verify`` when given, else whether the environment sets FREEML_TX_VERIFY=1."""
    if verify is not None:
        return verify
    return os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Difference:
    """The worst output of a comparison."""

    output: str
    max_abs_diff: float
    tolerance: float
    reference_max: float
    ok: bool


def compare_outputs(reference: dict[str, Any], candidate: dict[str, Any], rtol: float = RTOL,
                    atol: float = ATOL) -> list[Difference]:
    """One Difference per output present in both with array values; integers must match exactly."""
    diffs = []
    for name, ref in reference.items():
        got = candidate.get(name)
        if not isinstance(ref, np.ndarray) or not isinstance(got, np.ndarray):
            continue
        if ref.size != got.size:
            diffs.append(Difference(name, float("inf"), 0.0, 0.0, False))
            continue
        ref64 = ref.astype(np.float64).reshape(-1)
        got64 = got.astype(np.float64).reshape(-1)
        ref_max = float(np.max(np.abs(ref64))) if ref64.size else 0.0
        exact = not np.issubdtype(ref.dtype, np.floating)
        tol = 0.0 if exact else atol * max(1.0, ref_max)
        with np.errstate(invalid="ignore"):
            delta = np.abs(ref64 - got64)
            worst = float(np.nanmax(delta)) if delta.size else 0.0
            ok = bool(np.array_equal(ref64, got64, equal_nan=True)) if exact else bool(
                np.allclose(got64, ref64, rtol=rtol, atol=tol, equal_nan=True))
        diffs.append(Difference(name, worst, tol, ref_max, ok))
    return diffs


class VerifySemantics(Instrument):
    """Runs the before/after comparison for every semantics-preserving ONNX-level pass."""

    def __init__(self, rtol: float = RTOL, atol: float = ATOL) -> None:
        self.rtol, self.atol = rtol, atol
        self.context = PassContext()
        self._feeds: dict[str, np.ndarray] | None = None
        self._reference: dict[str, Any] | None = None
        self._skipped: str | None = None

    def before_pipeline(self, model: Any, pipeline: str, context: PassContext) -> None:
        self.context = context

    def before_pass(self, info: PassInfo, model: Any) -> None:
        self._feeds = self._reference = self._skipped = None
        if not (info.pass_cls.preserves_semantics and info.level == "onnx" and isinstance(model, OnnxModel)):
            return
        seed = self.context.seed + info.index
        shapes = self.context.input_shapes
        try:
            try:
                feeds = ort.random_inputs(model, seed=seed, data=self.context.data, input_shapes=shapes)
            except DataError:
                feeds = ort.random_inputs(model, seed=seed, input_shapes=shapes)
            self._reference = ort.run(model, feeds)
            self._feeds = feeds
        except FreemlError as exc:
            self._skipped = f"skipped: the model before the pass does not run in onnxruntime ({exc.message})"

    def after_pass(self, info: PassInfo, model: Any, record: PassRecord) -> None:
        if self._skipped:
            record.verified = self._skipped
        if self._reference is None or self._feeds is None:
            return
        where = Location(pass_name=info.name, file=getattr(model, "source", None))
        try:
            got = ort.run(model, self._feeds)
        except FreemlError as exc:
            raise VerificationError(f"after pass '{info.name}' the model no longer runs in onnxruntime: "
                                    f"{exc.message}", location=where,
                                    details=[f"pipeline so far: {info.so_far}"],
                                    hint="the pass produced an invalid model; dump it with --dump-dir "
                                         "and check it with onnx.checker") from exc
        diffs = compare_outputs(self._reference, got, self.rtol, self.atol)
        if not diffs:
            raise VerificationError(f"pass '{info.name}' left no output to compare with the model it got",
                                    location=where,
                                    details=[f"outputs before: {', '.join(self._reference)}",
                                             f"outputs after: {', '.join(got)}"],
                                    hint="a semantics-preserving pass must keep the output names")
        bad = [d for d in diffs if not d.ok]
        if bad:
            worst = max(bad, key=lambda d: d.max_abs_diff / max(d.tolerance, 1e-30))
            shapes = ", ".join(f"{k}{list(v.shape)}" for k, v in self._feeds.items())
            raise VerificationError(
                f"pass '{info.name}' changed the model's numbers: output '{worst.output}' differs by up "
                f"to {worst.max_abs_diff:.4g} (tolerance {worst.tolerance:.3g}, max |reference| "
                f"{worst.reference_max:.4g})", location=where,
                details=[f"pipeline so far: {info.so_far}",
                         f"inputs: {shapes} (seed {self.context.seed + info.index})",
                         *[f"output '{d.output}': max |diff| {d.max_abs_diff:.4g}" for d in bad[1:4]]],
                hint="the pass declares preserves_semantics=True but does not; keep the model before "
                     "and after with --dump-dir to compare them")
        record.verified = f"ok (max |diff| {max(d.max_abs_diff for d in diffs):.3g})"
        self._feeds = self._reference = None

    def on_error(self, info: PassInfo | None, error: BaseException) -> None:
        self._feeds = self._reference = None

"""`upgrade-opset`: bring models older than opset 13 to opset 13 with the onnx version converter."""

from __future__ import annotations

from dataclasses import dataclass

import onnx
import onnx.version_converter

from transpiler.errors import Location, UnsupportedError
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import opset_of, replace_graph, to_proto

#: Below this opset the later passes cannot work without conversion (Clip's min/max became inputs
#: in opset 11; BatchNormalization, Dropout and Upsample changed shape before that).
OLDEST_WITHOUT_CONVERSION = 11


@dataclass(frozen=True)
class UpgradeOpsetOptions:
    """Options of `upgrade-opset`."""

    target: int = 13


@register
class UpgradeOpset(Pass):
    """Convert a model whose default-domain opset is below ``target`` (13) to ``target``.

    Before -> after (opset 9 -> 13)::

        Clip(x) {min=0, max=6}           ->  Clip(x, Constant(0), Constant(6))
        Dropout(x) {is_test=1}           ->  Dropout(x)
        BatchNormalization {spatial=1}   ->  BatchNormalization
        Upsample(x, s) {mode=linear}     ->  Resize(x, roi, s) {mode=linear, coordinate_transformation_mode=asymmetric}

    Upsample (opsets 7-9) and Resize-10 index as ``x_out / scale`` (asymmetric, nearest rounding
    down); the converter's Resize-11 leaves that attribute at its default, half_pixel, which moves a
    linear interpolation by half a pixel, so every Resize of a converted pre-11 model is given
    ``coordinate_transformation_mode=asymmetric`` (and ``nearest_mode=floor``) explicitly.

    Models at ``target`` or newer are left as they are. If the converter fails, a model at opset 11 or
    newer is kept unconverted (the stats say why); an older one is rejected, since Clip, Dropout and
    friends would keep forms the later passes do not read.
    """

    name = "upgrade-opset"
    options_type = UpgradeOpsetOptions
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        before = opset_of(model)
        target = self.options.target
        if before >= target:
            return PassResult(model, False, {"opset": before})
        proto = to_proto(model)
        try:
            converted = onnx.version_converter.convert_version(proto, target)
            onnx.checker.check_model(converted)
        except Exception as exc:  # the converter raises bare RuntimeErrors/ValidationErrors
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if before >= OLDEST_WITHOUT_CONVERSION:
                return PassResult(model, False, {"opset": before, "conversion-failed": reason})
            raise UnsupportedError(
                f"the model uses opset {before}, and converting it to opset {target} failed: {reason}",
                location=Location(file=model.source, pass_name=self.name),
                hint=f"re-export the model with opset {target} or newer "
                     f"(torch.onnx.export(..., opset_version={target}))") from exc
        if before < OLDEST_WITHOUT_CONVERSION:
            for node in converted.graph.node:
                if node.op_type == "Resize" and node.domain in ("", "ai.onnx"):
                    _set_default(node, "coordinate_transformation_mode", "asymmetric")
                    _set_default(node, "nearest_mode", "floor")
        replace_graph(model, converted)
        return PassResult(model, True, {"opset": target, "from-opset": before})


def _set_default(node: onnx.NodeProto, name: str, value: str) -> None:
    """Give ``node`` the string attribute ``name = value`` unless it has one."""
    if all(a.name != name for a in node.attribute):
        node.attribute.append(onnx.helper.make_attribute(name, value))

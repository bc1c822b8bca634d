"""freeml-tx: ONNX -> intermittent-safe fixed-point C for batteryless MSP430 microcontrollers.

The library API::

    import transpiler as fx

    model = fx.load("lenet.onnx")
    model, report = fx.run_pipeline(model, "normalize", fx.PassContext(), dump_dir="dumps")
    print(report.table())
    fx.save(model, "lenet.normal.onnx")

Names that need onnx or onnxruntime are imported on first use, so ``import transpiler`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from transpiler.errors import FreemlError
from transpiler.pass_infra import Pass, PassContext, PassResult, register, registry

__version__ = "0.1.0"

_LAZY = {
    "load": "transpiler.loader",
    "save": "transpiler.loader",
    "run_pipeline": "transpiler.manager",
    "PassManager": "transpiler.manager",
    "OnnxModel": "transpiler.model",
    "parse_pipeline": "transpiler.pipeline",
    "format_pipeline": "transpiler.pipeline",
    "PassSpec": "transpiler.pipeline",
    "PipelineReport": "transpiler.stats",
    "Instrument": "transpiler.instruments",
}

__all__ = ["__version__", "FreemlError", "Pass", "PassContext", "PassResult", "register", "registry",
           *_LAZY]

if TYPE_CHECKING:
    from transpiler.instruments import Instrument
    from transpiler.loader import load, save
    from transpiler.manager import PassManager, run_pipeline
    from transpiler.model import OnnxModel
    from transpiler.pipeline import PassSpec, format_pipeline, parse_pipeline
    from transpiler.stats import PipelineReport


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'transpiler' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

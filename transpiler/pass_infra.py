"""The pass contract and the registry.

How to write a pass
-------------------
A pass is one class in one file under ``passes/``::

    @dataclass(frozen=True)
    class FoldThingsOptions:
        limit: int = 8

    @register
    class FoldThings(Pass):
        '''Fold things into other things.

        Before -> after::

            Mul(Conv(x, W), s)  ->  Conv(x, W * s)
        '''
        name = "fold-things"
        options_type = FoldThingsOptions
        level = "onnx"               # works on an OnnxModel ("lir": on a LIR Program)
        preserves_semantics = True   # the manager checks it with onnxruntime when verifying

        def run(self, model): ...    # -> PassResult(model, changed, stats)

``requires`` / ``ensures`` name *properties* (plain strings such as ``"static-shapes"``) that must
hold before and that hold after the pass; the manager tracks them and refuses a pipeline whose pass
runs before what it requires. Passes may modify the model in place and return it; the manager keeps a
copy when it needs the "before" model for verification. Packages outside freeml-tx register passes
through the entry-point group ``freeml_tx.passes`` (the entry point loads a module or a Pass class).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from importlib import import_module
import pkgutil
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, TypeVar

from transpiler.errors import PipelineError

ENTRY_POINT_GROUP = "freeml_tx.passes"
BUILTIN_PACKAGES = ("passes", "backends")   # every public module in them is imported to register its passes
_KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

M = TypeVar("M")


@dataclass
class PassResult(Generic[M]):
    """What a pass returns: the (possibly new) model, whether it changed, and figures for reports."""

    model: M
    changed: bool
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NoOptions:
    """Options of a pass that takes none."""


class Pass:
    """Base class of every pass; see the module docstring."""

    name: ClassVar[str] = ""
    options_type: ClassVar[type] = NoOptions
    level: ClassVar[str] = "onnx"          # "onnx" -> OnnxModel, "lir" -> Program, "lower": onnx -> lir
    preserves_semantics: ClassVar[bool] = False
    requires: ClassVar[frozenset[str]] = frozenset()
    ensures: ClassVar[frozenset[str]] = frozenset()
    invalidates: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: Any = None, context: "PassContext | None" = None) -> None:
        self.options = options if options is not None else self.options_type()
        self.context = context if context is not None else PassContext()

    def run(self, model: Any) -> PassResult[Any]:
        raise NotImplementedError(f"pass {self.name} does not implement run()")

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass
class PassContext:
    """What passes may need beyond the model: data, budgets and a progress/log sink.

    Filled by the CLI or the library caller; passes read only what they need.
    """

    data: Any = None                       # transpiler.data.Dataset or None
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    sram_bytes: int = 8 * 1024
    fram_bytes: int = 256 * 1024
    target: str = "host"
    seed: int = 0
    out_dir: str | None = None
    command_line: str = ""
    pipeline_text: str = ""
    log: Any = None                        # callable(str) for progress lines, or None
    extra: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)


_REGISTRY: dict[str, type[Pass]] = {}
_entry_points_loaded = False


def register(cls: type[Pass]) -> type[Pass]:
    """Class decorator: add a pass to the registry under its kebab-case name."""
    if not _KEBAB.match(cls.name or ""):
        raise ValueError(f"pass class {cls.__name__} needs a kebab-case `name`, got {cls.name!r}")
    if not dataclasses.is_dataclass(cls.options_type):
        raise TypeError(f"pass {cls.name}: options_type must be a dataclass")
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(f"pass name {cls.name!r} registered twice ({other.__module__}, {cls.__module__})")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin_and_plugins() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for package_name in BUILTIN_PACKAGES:
        package = import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                import_module(f"{package_name}.{info.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if isinstance(obj, type) and issubclass(obj, Pass):
            register(obj)


def registry() -> dict[str, type[Pass]]:
    """All registered passes by name (built-in and from entry points)."""
    _load_builtin_and_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_pass(name: str) -> type[Pass]:
    passes = registry()
    if name not in passes:
        close = [n for n in passes if n.startswith(name[:3])]
        hint = f"did you mean {', '.join(close)}?" if close else "run `freeml-tx passes` for the list"
        raise PipelineError(f"unknown pass '{name}'", hint=hint)
    return passes[name]

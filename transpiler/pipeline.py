"""The pipeline text: parse it, print it back, and turn pass options into typed option objects.

The grammar (``pipeline.lark``) follows MLIR's textual pipelines::

    normalize,sparsify{budget=64KiB,max-drop=1.0},attach-gnet{exits=[conv1,conv2]},quantize

* pass names are kebab-case; option keys may be kebab-case or snake_case (``max-drop`` is the field
  ``max_drop`` of the pass's options dataclass);
* values are integers, floats, sizes (``B``, ``KB``/``KiB``, ``MB``/``MiB``; ``KB`` and ``KiB`` both
  mean 1024 bytes, as in microcontroller data sheets), ``true``/``false``, bare words (letters,
  digits and ``_ - . /``), ``"quoted strings"`` with JSON escapes, and lists ``[a,b,c]`` or
  ``a:b:c``;
* ``format_pipeline(parse_pipeline(text))`` parses back to the same specs.

Every syntax error is a :class:`PipelineError` that shows the text with a caret under the column.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import json
import re
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from transpiler.errors import Location, PipelineError

Scalar = Union[int, float, bool, str]
Value = Union[Scalar, list[Scalar]]

_PASS_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_KEY = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(KiB|MiB|KB|kB|MB|B)$")
_UNITS = {"B": 1, "KB": 1024, "kB": 1024, "KiB": 1024, "MB": 1024 * 1024, "MiB": 1024 * 1024}
_KEYWORDS = {"true": True, "false": False}
_TOKEN_NAMES = {
    "COMMA": "','", "LBRACE": "'{'", "RBRACE": "'}'", "LBRACKET": "'['", "RBRACKET": "']'",
    "EQUALS": "'='", "COLON": "':'", "IDENT": "a name", "SIZE": "a size", "NUMBER": "a number",
    "STRING": "a quoted string", "$END": "the end of the pipeline",
}


@dataclass(frozen=True)
class PassSpec:
    """One pass of a pipeline as written: its name and its options (keys in kebab-case).

    ``column``, ``option_columns``, ``raw`` and ``text`` record where it came from, for error
    carets; they take no part in equality.
    """

    name: str
    options: dict[str, Value] = field(default_factory=dict)
    column: int | None = field(default=None, compare=False)
    option_columns: dict[str, int] = field(default_factory=dict, compare=False)
    raw: dict[str, str] = field(default_factory=dict, compare=False)
    text: str | None = field(default=None, compare=False, repr=False)

    def error(self, message: str, *, key: str | None = None, hint: str | None = None) -> PipelineError:
        """A PipelineError pointing at this pass (or one of its options) in the pipeline text."""
        column = self.option_columns.get(key) if key is not None else None
        return pipeline_error(message, self.text, column if column is not None else self.column,
                              pass_name=self.name, hint=hint)


def pipeline_error(message: str, text: str | None, column: int | None, *, pass_name: str | None = None,
                   hint: str | None = None) -> PipelineError:
    """A PipelineError with the pipeline text and a caret line under ``column`` (1-based)."""
    details: list[str] = []
    if text is not None and column is not None:
        message = f"{message} (column {column})"
        details = [text, " " * (column - 1) + "^"]
    return PipelineError(message, location=Location(pass_name=pass_name, column=column),
                         details=details, hint=hint)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("pipeline.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_pipeline(text: str) -> list[PassSpec]:
    """Parse pipeline text into pass specs; empty text is the empty pipeline."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    specs = [_spec(node, text) for node in tree.children if isinstance(node, Tree)]
    return specs


def _syntax_error(text: str, exc: UnexpectedInput) -> PipelineError:
    column = getattr(exc, "column", None)
    if not isinstance(column, int) or column < 1:
        column = len(text) + 1
    if isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {text[exc.pos_in_stream]!r}"
        hint = ("quote values that contain other characters: key=\"a value\""
                if text[exc.pos_in_stream] not in "{}[],=:" else None)
        return pipeline_error(what, text, column, hint=hint)
    accepted = getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ()
    expected = sorted({_TOKEN_NAMES.get(t, t) for t in accepted})
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return pipeline_error("the pipeline ends too early", text, len(text) + 1,
                              hint=f"expected {' or '.join(expected)}" if expected else None)
    assert isinstance(exc, UnexpectedToken)
    return pipeline_error(f"unexpected {exc.token.value!r}", text, column,
                          hint=f"expected {' or '.join(expected)}" if expected else None)


def _spec(node: Tree, text: str) -> PassSpec:
    name_tok = node.children[0]
    assert isinstance(name_tok, Token)
    if not _PASS_NAME.match(name_tok.value):
        raise pipeline_error(f"pass name '{name_tok.value}' is not kebab-case", text, name_tok.column,
                             hint="pass names are lowercase words joined by '-', e.g. plan-memory")
    options: dict[str, Value] = {}
    columns: dict[str, int] = {}
    raw: dict[str, str] = {}
    opts = node.children[1] if len(node.children) > 1 else None
    for option in (opts.children if isinstance(opts, Tree) else ()):
        if not isinstance(option, Tree):
            continue
        key_tok, _eq, value_node = option.children
        assert isinstance(key_tok, Token)
        if not _KEY.match(key_tok.value):
            raise pipeline_error(f"option name '{key_tok.value}' is not kebab-case", text, key_tok.column,
                                 pass_name=name_tok.value, hint="write option names like max-drop")
        key = key_tok.value.replace("_", "-")
        if key in options:
            raise pipeline_error(f"option '{key}' given twice", text, key_tok.column,
                                 pass_name=name_tok.value)
        options[key] = _value(value_node, text)
        columns[key] = key_tok.column
        start, end = value_node.meta.start_pos, value_node.meta.end_pos
        raw[key] = text[start:end]
    return PassSpec(name_tok.value, options, name_tok.column, columns, raw, text)


def _value(node: Tree, text: str) -> Value:
    if node.data == "scalar":
        return _scalar(node.children[0], text)
    return [_scalar(child.children[0], text) for child in node.children
            if isinstance(child, Tree) and child.data == "scalar"]


def _scalar(tok: Token, text: str) -> Scalar:
    if tok.type == "SIZE":
        match = _SIZE.match(tok.value)
        assert match is not None
        number = float(match.group(1)) * _UNITS[match.group(2)]
        if number != int(number):
            raise pipeline_error(f"size {tok.value} is not a whole number of bytes", text, tok.column)
        return int(number)
    if tok.type == "NUMBER":
        return int(tok.value) if _INT.match(tok.value) else float(tok.value)
    if tok.type == "STRING":
        try:
            value = json.loads(tok.value)
        except json.JSONDecodeError as exc:
            raise pipeline_error(f"bad escape in string {tok.value}: {exc.msg}", text, tok.column) from None
        return str(value)
    return _KEYWORDS.get(tok.value, tok.value)


def format_value(value: Any) -> str:
    """The pipeline text of one option value (the inverse of parsing it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return format_value(value.value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot write the non-finite float {value} in a pipeline")
        return repr(value)
    if isinstance(value, str):
        if _BARE.match(value) and value not in _KEYWORDS and value != "none":
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if value is None:
        return "none"
    raise ValueError(f"cannot write a {type(value).__name__} option value in a pipeline")


def format_spec(spec: PassSpec) -> str:
    """``name`` or ``name{key=value,...}``; keeps the user's spelling of a value (64KiB) when known."""
    if not spec.options:
        return spec.name
    parts = []
    for key, value in spec.options.items():
        raw = spec.raw.get(key)
        text = raw if raw is not None and _raw_matches(raw, value) else format_value(value)
        parts.append(f"{key}={text}")
    return spec.name + "{" + ",".join(parts) + "}"


def _raw_matches(raw: str, value: Value) -> bool:
    try:
        specs = parse_pipeline(f"p{{k={raw}}}")
    except PipelineError:
        return False
    parsed = specs[0].options["k"]
    return parsed == value and type(parsed) is type(value)


def format_pipeline(specs: typing.Iterable[PassSpec]) -> str:
    """The pipeline text of a list of specs; parses back to equal specs."""
    return ",".join(format_spec(spec) for spec in specs)


# --- options: pipeline values -> the pass's frozen options dataclass -----------------------------


class _BadValue(Exception):
    """A value does not fit a field type (message: what was expected)."""


def option_fields(options_type: type) -> dict[str, tuple[Any, Any]]:
    """Option key (kebab-case) -> (field type, default or dataclasses.MISSING)."""
    hints = typing.get_type_hints(options_type)
    result: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(options_type):
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        result[f.name.replace("_", "-")] = (hints.get(f.name, Any), default)
    return result


def describe_options(options_type: type) -> str:
    """``key (type, default value), ...`` for hints and ``freeml-tx passes``."""
    parts = []
    for key, (tp, default) in option_fields(options_type).items():
        shown = "required" if default is dataclasses.MISSING else f"default {_show_default(default)}"
        parts.append(f"{key} ({type_name(tp)}, {shown})")
    return ", ".join(parts)


def _show_default(value: Any) -> str:
    try:
        return format_value(value)
    except ValueError:
        return repr(value)


def type_name(tp: Any) -> str:
    """A short readable name of a field type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(format_value(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join("none" if a is type(None) else type_name(a) for a in args)
    if origin in (list, tuple, collections.abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {type_name(inner[0]) if inner else 'values'}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " | ".join(str(m.value) for m in tp)
    if tp is Any:
        return "value"
    return getattr(tp, "__name__", str(tp))


def build_options(pass_cls: type, spec: PassSpec) -> Any:
    """The pass's options object from the spec's values, converted to the field types.

    Raises PipelineError naming the pass, the key and the valid keys for unknown keys or values of
    the wrong type.
    """
    options_type = pass_cls.options_type
    fields = option_fields(options_type)
    valid = describe_options(options_type) if fields else ""
    kwargs: dict[str, Any] = {}
    for key, value in spec.options.items():
        if key not in fields:
            hint = f"valid options of '{spec.name}': {valid}" if fields else f"'{spec.name}' takes no options"
            raise spec.error(f"pass '{spec.name}' has no option '{key}'", key=key, hint=hint)
        tp, _default = fields[key]
        raw = spec.raw.get(key)
        try:
            kwargs[key.replace("-", "_")] = convert_value(value, tp, raw)
        except _BadValue as exc:
            shown = raw if raw is not None else format_value(value)
            raise spec.error(f"option '{key}' of pass '{spec.name}' expects {exc}, got {shown}", key=key,
                             hint=f"valid options of '{spec.name}': {valid}") from None
    missing = [k for k, (_tp, d) in fields.items() if d is dataclasses.MISSING and k.replace("-", "_") not in kwargs]
    if missing:
        raise spec.error(f"pass '{spec.name}' needs option(s) {', '.join(missing)}",
                         hint=f"write {spec.name}{{{missing[0]}=...}}; valid options: {valid}")
    try:
        return options_type(**kwargs)
    except (ValueError, TypeError) as exc:
        raise spec.error(f"bad options for pass '{spec.name}': {exc}", hint=f"valid options: {valid}") from None


def convert_value(value: Value, tp: Any, raw: str | None = None) -> Any:
    """Convert a parsed value to the field type ``tp``; raises _BadValue with what was expected."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        if value == "none" and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert_value(value, arg, raw)
            except _BadValue:
                continue
        raise _BadValue(type_name(tp))
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(choice, str) and (raw or str(value)) == choice):
                return choice
        raise _BadValue(f"one of {type_name(tp)}")
    if origin in (list, tuple, collections.abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        item_type = inner[0] if inner else Any
        items = value if isinstance(value, list) else [value]
        raws: list[str | None] = [None] * len(items) if isinstance(value, list) else [raw]
        try:
            converted = [convert_value(v, item_type, r) for v, r in zip(items, raws)]
        except _BadValue as exc:
            raise _BadValue(f"a list of {exc}") from None
        return list(converted) if origin is list else tuple(converted)
    if isinstance(value, list):
        raise _BadValue(f"a single {type_name(tp)}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value == member.value or value == member.name:
                return member
        raise _BadValue(f"one of {type_name(tp)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _BadValue("true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _BadValue("an integer (sizes like 8KiB are allowed)")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _BadValue("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        return raw if raw is not None else format_value(value)
    raise _BadValue(f"a {type_name(tp)} (unsupported option type)")

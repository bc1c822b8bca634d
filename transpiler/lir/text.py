"""The LIR text form: print a Program, parse it back (docs/lir.md, "Text form").

    lir 1 "lenet5_mnist"
    meta "pipeline" "normalize,quantize,lower"
    input "input.1" %x
    output "logits" %t9
    buffer %x : i16[1,28,28] q=12 sram @0
    buffer %t1f : i16[864] q=10 alias %t1
    const %w1 : i16[6,1,5,5] q=[14,14,13,14,14,14] fram @0 = b64"AAEC..."
    step conv "conv1" (%x, %w1, %b1) -> (%t1) {act="relu", group=1, ...} from ["/conv1/Conv"] tile [6,4,24] x2

``print_program`` writes the canonical text; ``parse_program`` reads it (plus comments and free
whitespace) and ``print_program(parse_program(t)) == t`` for canonical ``t``, while
``parse_program(print_program(p))`` equals ``p`` (see :func:`transpiler.lir.compare.programs_equal`).

Source positions. A Program stays free of text concerns; the parser records where each buffer, step
and port was declared in a :class:`SourceMap`. ``parse_program_with_positions`` returns it
explicitly; ``parse_program`` and ``load_lir`` also remember it in a module-level table keyed by the
program object (cleared when the program is garbage collected), which :func:`source_map_of` reads.
That is how ``verify_program(load_lir(path))`` reports ``file:line:col`` without being told. The map
only answers for buffers and steps that are still the very objects the parser made, so positions
never point at the wrong line after a pass rewrote the program.

Buffer names are printed as ``%name`` when they use only ``[A-Za-z0-9_.]`` and as ``%"json"``
otherwise; strings use JSON escapes (ASCII output). Constant data is the little-endian bytes of the
array in base64, one token, decoded with a single ``base64.b64decode`` + ``np.frombuffer``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from transpiler.errors import LirError, Location
from transpiler.lir.ir import DTYPES, SPACES, AttrValue, Buffer, Port, Program, Step, TilePlan

LIR_VERSION = 1
"""The version number in the ``lir N "name"`` header; the parser accepts only this one."""

Pos = tuple[int, int]
"""A (line, column) source position, both 1-based."""

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.]+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_TERMINAL_NAMES = {
    "BUFNAME": "a buffer name (%name)",
    "STRING": "a string",
    "B64": 'constant data (b64"...")',
    "INT": "an integer",
    "WORD": "a name",
    "SPACE": "a memory space (sram, fram, hifram)",
    "TILE_X": "a tile count (xN)",
    "$END": "end of input",
}


@dataclass
class SourceMap:
    """Where the parts of a parsed Program were declared.

    file: the file name given to the parser. header: the ``lir`` line. buffers: buffer name ->
    position of its name. steps: one position per step, in parse order (the ``step`` keyword).
    inputs/outputs: one position per port line. The lookup methods check object identity against
    the program they are given, so a map stays truthful after passes edit the program.
    """

    file: str
    header: Pos = (1, 1)
    buffers: dict[str, Pos] = field(default_factory=dict)
    steps: list[Pos] = field(default_factory=list)
    inputs: list[Pos] = field(default_factory=list)
    outputs: list[Pos] = field(default_factory=list)
    _buffer_objs: dict[str, Buffer] = field(default_factory=dict, repr=False)
    _step_objs: list[Step] = field(default_factory=list, repr=False)
    _port_objs: list[Port] = field(default_factory=list, repr=False)
    _port_pos: list[Pos] = field(default_factory=list, repr=False)

    def buffer_pos(self, program: Program, name: str) -> Pos | None:
        """Position of buffer `name` if it is still the buffer that was parsed, else None."""
        buf = program.buffers.get(name)
        if buf is not None and self._buffer_objs.get(name) is buf:
            return self.buffers.get(name)
        return None

    def step_pos(self, step: Step) -> Pos | None:
        """Position of `step` if it is one of the parsed step objects, else None."""
        for i, s in enumerate(self._step_objs):
            if s is step:
                return self.steps[i]
        return None

    def port_pos(self, port: Port) -> Pos | None:
        """Position of the ``input``/``output`` line that made `port` (identity), else None."""
        for i, q in enumerate(self._port_objs):
            if q is port:
                return self._port_pos[i]
        return None

    def location(self, pos: Pos | None, **extra: str | None) -> Location:
        """A Location in this map's file at `pos` (or with no line when pos is None)."""
        line, col = pos if pos is not None else (None, None)
        return Location(file=self.file, line=line, column=col, **extra)


_SOURCE_MAPS: dict[int, tuple[weakref.ref[Program], SourceMap]] = {}


def _remember(program: Program, source: SourceMap) -> None:
    key = id(program)
    _SOURCE_MAPS[key] = (weakref.ref(program), source)
    weakref.finalize(program, _SOURCE_MAPS.pop, key, None)


def source_map_of(program: Program) -> SourceMap | None:
    """The SourceMap recorded when `program` was parsed, or None if it did not come from text."""
    entry = _SOURCE_MAPS.get(id(program))
    if entry is None or entry[0]() is not program:
        return None
    return entry[1]


# ----------------------------------------------------------------------------------------------
# Printing


def _json_str(s: str) -> str:
    if not isinstance(s, str):
        raise LirError(f"expected a string, got {type(s).__name__} {s!r}")
    return json.dumps(s)


def _bufname(name: str) -> str:
    if not isinstance(name, str):
        raise LirError(f"buffer name must be a string, got {name!r}")
    if _PLAIN_NAME.fullmatch(name):
        return "%" + name
    return "%" + json.dumps(name)


def _int(v: object, what: str) -> int:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    raise LirError(f"{what}: expected an integer, got {type(v).__name__} {v!r}")


def _ints(vs: Sequence[object], what: str) -> str:
    return "[" + ",".join(str(_int(v, what)) for v in vs) + "]"


def _attr_value(v: AttrValue, what: str) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return _ints(list(v), what)
    return str(_int(v, what))


def _encode_data(buf: Buffer) -> str:
    dt = DTYPES[buf.dtype]
    arr = np.asarray(buf.data)
    if tuple(arr.shape) != tuple(buf.shape):
        raise LirError(f"constant %{buf.name}: data shape {list(arr.shape)} does not match the "
                       f"declared shape {list(buf.shape)}")
    if arr.dtype != dt:
        conv = arr.astype(dt)
        if not np.array_equal(conv, arr):
            raise LirError(f"constant %{buf.name}: data of dtype {arr.dtype} does not fit {buf.dtype}")
        arr = conv
    return base64.b64encode(np.ascontiguousarray(arr, dtype=dt).tobytes()).decode("ascii")


def _print_buffer(buf: Buffer) -> str:
    if buf.dtype not in DTYPES:
        raise LirError(f"buffer %{buf.name}: unknown dtype {buf.dtype!r}",
                       hint=f"known dtypes: {', '.join(DTYPES)}")
    parts = ["const" if buf.is_const else "buffer", _bufname(buf.name), ":",
             buf.dtype + _ints(list(buf.shape), f"shape of %{buf.name}")]
    if buf.q is not None:
        if isinstance(buf.q, (list, tuple)):
            parts.append("q=" + _ints(list(buf.q), f"q of %{buf.name}"))
        else:
            parts.append(f"q={_int(buf.q, f'q of %{buf.name}')}")
    if buf.space is not None:
        if buf.space not in SPACES:
            raise LirError(f"buffer %{buf.name}: unknown memory space {buf.space!r}",
                           hint=f"known spaces: {', '.join(SPACES)}")
        parts.append(buf.space)
    if buf.offset is not None:
        parts.append(f"@{_int(buf.offset, f'offset of %{buf.name}')}")
    if buf.alias is not None:
        parts.append("alias " + _bufname(buf.alias))
    if buf.is_const:
        parts.append(f'= b64"{_encode_data(buf)}"')
    return " ".join(parts)


def _print_step(step: Step) -> str:
    if not isinstance(step.op, str) or not _WORD.fullmatch(step.op):
        raise LirError(f"step {step.name!r}: op {step.op!r} is not a valid op name")
    attrs = []
    for key in sorted(step.attrs):
        if not isinstance(key, str) or not _WORD.fullmatch(key):
            raise LirError(f"step {step.name!r}: attribute name {key!r} is not a valid name")
        attrs.append(f"{key}={_attr_value(step.attrs[key], f'attribute {key} of step {step.name!r}')}")
    line = (f"step {step.op} {_json_str(step.name)} "
            f"({', '.join(_bufname(n) for n in step.inputs)}) -> "
            f"({', '.join(_bufname(n) for n in step.outputs)}) {{{', '.join(attrs)}}}")
    if step.origin:
        line += " from [" + ", ".join(_json_str(o) for o in step.origin) + "]"
    if step.tile is not None:
        count = _int(step.tile.per_commit, f"tile count of step {step.name!r}")
        if count < 0:
            raise LirError(f"step {step.name!r}: tile count {count} is negative")
        line += f" tile {_ints(step.tile.dims, f'tile of step {step.name!r}')} x{count}"
    return line


def print_program(p: Program) -> str:
    """The canonical text of `p` (one declaration per line, newline-terminated).

    Raises LirError for what the text form cannot express: unknown dtypes or spaces, op or
    attribute names that are not identifiers, non-integer attribute values, constant data whose
    shape differs from the buffer's or whose values do not fit its dtype.
    """
    out = [f"lir {LIR_VERSION} {_json_str(p.name)}"]
    for key, value in p.meta.items():
        out.append(f"meta {_json_str(key)} {_json_str(value)}")
    for port in p.inputs:
        out.append(f"input {_json_str(port.onnx_name)} {_bufname(port.buffer)}")
    for port in p.outputs:
        out.append(f"output {_json_str(port.onnx_name)} {_bufname(port.buffer)}")
    for buf in p.buffers.values():
        out.append(_print_buffer(buf))
    for step in p.steps:
        out.append(_print_step(step))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------
# Parsing


@functools.cache
def _parser() -> Lark:
    grammar = Path(__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=False)


def _caret(lines: list[str], line: int, col: int) -> list[str]:
    if 1 <= line <= len(lines):
        src = lines[line - 1]
        if len(src) > 160:  # e.g. a long b64 line: show a window around the column
            start = max(0, col - 80)
            src, col = src[start:start + 160], col - start
        return [src, " " * (col - 1) + "^"]
    return []


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        term = _parser().get_terminal(name)
    except KeyError:
        return name
    if term.pattern.type == "str":
        return repr(term.pattern.value)
    return name


def _expected(names: set[str] | frozenset[str] | None) -> str:
    if not names:
        return ""
    desc = sorted({_describe_terminal(n) for n in names})
    return "; expected " + (desc[0] if len(desc) == 1 else "one of: " + ", ".join(desc))


def _syntax_error(e: UnexpectedInput, text: str, lines: list[str], filename: str) -> LirError:
    if isinstance(e, UnexpectedCharacters):
        line, col = e.line, e.column
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        msg = f"unexpected character {ch!r}" + _expected(e.allowed)
    elif isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            line, col = _end_pos(lines)
            msg = "unexpected end of input" + _expected(e.expected)
        else:
            line, col = tok.line, tok.column
            shown = tok.value if len(tok.value) <= 40 else tok.value[:37] + "..."
            msg = f"unexpected {shown!r}" + _expected(e.expected)
    elif isinstance(e, UnexpectedEOF):
        line, col = _end_pos(lines)
        msg = "unexpected end of input" + _expected(set(e.expected))
    else:  # pragma: no cover - lark raises only the three kinds above
        line, col = getattr(e, "line", 1), getattr(e, "column", 1)
        msg = str(e)
    return LirError(f"syntax error: {msg}", location=Location(file=filename, line=line, column=col),
                    details=_caret(lines, line, col))


def _end_pos(lines: list[str]) -> Pos:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if not lines:
        return (1, 1)
    return (len(lines), len(lines[-1]) + 1)


class _Parse:
    """One parse: turns the lark tree into a Program and a SourceMap, collecting semantic errors."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.lines = text.splitlines()
        self.errors: list[tuple[str, int, int]] = []
        self.source = SourceMap(file=filename)

    # -- helpers -------------------------------------------------------------------------------
    def error(self, msg: str, tok: Token | Tree | None) -> None:
        if isinstance(tok, Token):
            self.errors.append((msg, tok.line or 1, tok.column or 1))
        elif isinstance(tok, Tree) and not tok.meta.empty:
            self.errors.append((msg, tok.meta.line, tok.meta.column))
        else:
            self.errors.append((msg, 1, 1))

    def string(self, tok: Token) -> str:
        try:
            value = json.loads(tok.value)
        except json.JSONDecodeError as e:
            self.error(f"invalid string {tok.value[:40]!r}: {e.msg}", tok)
            return ""
        return value

    def name(self, tok: Token) -> str:
        raw = tok.value[1:]
        if raw.startswith('"'):
            try:
                return json.loads(raw)
            except json.JSONDecodeError as e:
                self.error(f"invalid quoted buffer name {tok.value[:40]!r}: {e.msg}", tok)
                return raw
        return raw

    @staticmethod
    def ints(tree: Tree) -> list[int]:
        return [int(t) for t in tree.children]

    @staticmethod
    def pos(node: Tree | Token) -> Pos:
        if isinstance(node, Token):
            return (node.line or 1, node.column or 1)
        return (node.meta.line, node.meta.column)

    # -- the walk ------------------------------------------------------------------------------
    def program(self, tree: Tree) -> Program:
        program = Program(name="")
        for node in tree.children:
            kind = node.data
            if kind == "header":
                version, name = node.children
                if int(version) != LIR_VERSION:
                    self.error(f"unsupported LIR version {int(version)} (this reader knows "
                               f"version {LIR_VERSION})", version)
                program.name = self.string(name)
                self.source.header = self.pos(node)
            elif kind == "meta":
                k_tok, v_tok = node.children
                key = self.string(k_tok)
                if key in program.meta:
                    self.error(f"meta key {key!r} given twice", k_tok)
                program.meta[key] = self.string(v_tok)
            elif kind in ("input", "output"):
                onnx_tok, buf_tok = node.children
                port = Port(self.string(onnx_tok), self.name(buf_tok))
                (program.inputs if kind == "input" else program.outputs).append(port)
                (self.source.inputs if kind == "input" else self.source.outputs).append(self.pos(node))
                self.source._port_objs.append(port)
                self.source._port_pos.append(self.pos(node))
            elif kind in ("buffer", "const"):
                self.buffer(program, node)
            elif kind == "step":
                self.step(program, node)
        return program

    def buffer(self, program: Program, node: Tree) -> None:
        name_tok, dtype_tok, shape_tree, opts = node.children[:4]
        name = self.name(name_tok)
        dtype = str(dtype_tok)
        shape = tuple(self.ints(shape_tree))
        buf = Buffer(name=name, dtype=dtype, shape=shape)
        if dtype not in DTYPES:
            self.error(f"buffer %{name}: unknown dtype {dtype!r} (known: {', '.join(DTYPES)})",
                       dtype_tok)
        if any(d < 0 for d in shape):
            self.error(f"buffer %{name}: negative dimension in shape {list(shape)}", shape_tree)
        for opt in opts.children:
            if opt.data == "qspec":
                q = opt.children[0]
                buf.q = self.ints(q) if isinstance(q, Tree) else int(q)
            elif opt.data == "space":
                buf.space = str(opt.children[0])
            elif opt.data == "offset":
                buf.offset = int(opt.children[0])
            elif opt.data == "alias":
                buf.alias = self.name(opt.children[0])
        if node.data == "const":
            self.const_data(buf, node.children[4])
        if name in program.buffers:
            prev = self.source.buffers.get(name)
            where = f" (first declared at line {prev[0]})" if prev else ""
            self.error(f"buffer %{name} declared twice{where}", name_tok)
            return
        program.buffers[name] = buf
        self.source.buffers[name] = self.pos(node)
        self.source._buffer_objs[name] = buf

    def const_data(self, buf: Buffer, tok: Token) -> None:
        encoded = tok.value[4:-1]
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as e:
            self.error(f"constant %{buf.name}: invalid base64 data ({e})", tok)
            buf.data = np.zeros(0, dtype=np.int16)
            return
        dt = DTYPES.get(buf.dtype)
        if dt is None or any(d < 0 for d in buf.shape):
            buf.data = np.frombuffer(raw, dtype=np.uint8).copy()
            return
        need = buf.size * dt.itemsize
        if len(raw) != need:
            self.error(f"constant %{buf.name}: data has {len(raw)} bytes, "
                       f"{buf.dtype}{list(buf.shape)} needs {need}", tok)
            buf.data = np.frombuffer(raw, dtype=np.uint8).copy()
            return
        buf.data = np.frombuffer(raw, dtype=dt).reshape(buf.shape).copy()

    def step(self, program: Program, node: Tree) -> None:
        op_tok, name_tok, ins, outs, attrs, *rest = node.children
        step = Step(op=str(op_tok), name=self.string(name_tok),
                    inputs=[self.name(t) for t in ins.children],
                    outputs=[self.name(t) for t in outs.children])
        for attr in attrs.children:
            key_tok, value = attr.children
            key = str(key_tok)
            if key in step.attrs:
                self.error(f"step {step.name!r}: attribute {key!r} given twice", key_tok)
            if isinstance(value, Tree):
                step.attrs[key] = self.ints(value)
            elif value.type == "STRING":
                step.attrs[key] = self.string(value)
            else:
                step.attrs[key] = int(value)
        for part in rest:
            if part.data == "origin":
                step.origin = [self.string(t) for t in part.children]
            else:  # tile
                dims = self.ints(part.children[0])
                count = int(part.children[1][1:]) if len(part.children) > 1 else 1
                step.tile = TilePlan(dims=dims, per_commit=count)
        program.steps.append(step)
        self.source.steps.append(self.pos(node))
        self.source._step_objs.append(step)

    def raise_errors(self) -> None:
        if not self.errors:
            return
        msg, line, col = self.errors[0]
        details = _caret(self.lines, line, col)
        for other, oline, ocol in self.errors[1:]:
            details.append(f"also: {self.filename}:{oline}:{ocol}: {other}")
        raise LirError(msg, location=Location(file=self.filename, line=line, column=col),
                       details=details)


def parse_program_with_positions(text: str, filename: str = "<lir>") -> tuple[Program, SourceMap]:
    """Parse LIR text into a Program and the SourceMap of its declarations.

    Raises LirError (with file, line, column and a caret under the source line) for syntax errors
    and for what the parser can tell is wrong on its own: an unsupported version, a buffer declared
    twice, an unknown dtype, a negative dimension, constant data that is not base64 or whose length
    does not match the declared shape, a meta key or a step attribute given twice, a bad string.
    Everything else (unknown ops, shapes, dataflow) is the verifier's job.
    """
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, text.splitlines(), filename) from None
    walk = _Parse(text, filename)
    program = walk.program(tree)
    walk.raise_errors()
    _remember(program, walk.source)
    return program, walk.source


def parse_program(text: str, filename: str = "<lir>") -> Program:
    """Parse LIR text into a Program (see :func:`parse_program_with_positions`)."""
    return parse_program_with_positions(text, filename)[0]


def load_lir(path: str | Path) -> Program:
    """Read and parse a ``.lir`` file; errors name the file. Positions go to :func:`source_map_of`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise LirError(f"cannot read LIR file: {e.strerror or e}", location=Location(file=str(path)),
                       hint="check the path") from None
    except UnicodeDecodeError as e:
        raise LirError(f"LIR file is not UTF-8 text: {e}", location=Location(file=str(path))) from None
    return parse_program(text, str(path))


def save_lir(program: Program, path: str | Path) -> None:
    """Write the canonical text of `program` to `path` (UTF-8, '\\n' line ends)."""
    Path(path).write_text(print_program(program), encoding="utf-8", newline="\n")

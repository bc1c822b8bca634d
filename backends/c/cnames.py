"""C spelling helpers: identifiers, literals and array initialisers for the generated sources."""

from __future__ import annotations

import re

import numpy as np

C_TYPES: dict[str, str] = {"i8": "int8_t", "i16": "int16_t", "u16": "uint16_t", "i32": "int32_t"}

_C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for
goto if inline int long register restrict return short signed sizeof static struct switch typedef union
unsigned void volatile while _Bool _Complex _Imaginary""".split())


def c_ident(text: str, fallback: str = "x") -> str:
    """A C identifier made from `text`: runs of other characters become one '_'."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    ident = re.sub(r"_+", "_", ident)
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    if ident in _C_KEYWORDS:
        ident += "_"
    return ident


class Namer:
    """Hands out unique C identifiers with a common prefix; the same key always gets the same name."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._by_key: dict[str, str] = {}
        self._used: set[str] = set()

    def __call__(self, key: str, hint: str | None = None) -> str:
        if key in self._by_key:
            return self._by_key[key]
        base = f"{self.prefix}{c_ident(hint if hint is not None else key)}"
        name, k = base, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        self._by_key[key] = name
        return name


def c_int(value: int, dtype: str = "i32") -> str:
    """An integer literal of a value that fits `dtype`, spelling the minimum without overflow."""
    v = int(value)
    if dtype == "i32" and v == -(2 ** 31):
        return "INT32_MIN"
    if dtype == "i16" and v == -(2 ** 15):
        return "INT16_MIN"
    if dtype == "u16" or (v >= 0 and dtype != "i32"):
        return f"{v}" if dtype != "u16" else f"{v}u"
    return str(v)


def c_array_init(values: np.ndarray, dtype: str, per_line: int = 12, indent: str = "    ") -> str:
    """The `{ ... }` initialiser of a flat array, `per_line` values a line, deterministic."""
    flat = [c_int(v, dtype) for v in np.asarray(values).reshape(-1).tolist()]
    lines = []
    for i in range(0, len(flat), per_line):
        lines.append(indent + ", ".join(flat[i:i + per_line]) + ",")
    if lines:
        lines[-1] = lines[-1][:-1]
    return "{\n" + "\n".join(lines) + "\n}"


def shape_text(shape: object) -> str:
    """``[6,24,24]`` (no spaces), for comments and reports."""
    return "[" + ",".join(str(int(d)) for d in shape) + "]"  # type: ignore[union-attr]


def c_comment_text(text: str) -> str:
    """Text that is safe inside a /* */ comment (no comment terminator, printable ASCII)."""
    safe = text.replace("*/", "* /").replace("/*", "/ *")
    safe = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in safe)
    return safe.replace("??", "? ?").replace("??", "? ?")     # no trigraphs (-std=c99 has them)

"""Find the hand-written C runtime (package ``freeml_runtime_c``) and pick the files a model needs.

The runtime ships as package data, so this works from a source checkout, an editable install and a
wheel alike. Only the portable top level is searched (``platform/`` belongs to the platform
generators). A file is needed when generated code includes it (headers) or when it defines a
function that generated code, or an already needed file, calls; the search runs to a fixed point.

Besides those, every package gets :data:`HOST_IO_RUNTIME`, the host drivers' file I/O: main_host.c,
main_intermittent.c and main_gnet.c link it (not the device build), so it is copied whole, with its
path below ``runtime/``.
"""

from __future__ import annotations

import re
from importlib import resources, util
from pathlib import Path

from transpiler.errors import ToolchainError

RUNTIME_PACKAGE = "freeml_runtime_c"
#: runtime_c files (relative) that every package copies for its host drivers (Makefile: HOST_IO_SRCS).
HOST_IO_RUNTIME = ("platform/host/fx_host_io.c", "platform/host/fx_host_io.h")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
_CALL = re.compile(r"\b(fx_[A-Za-z0-9_]+)\s*\(")


def defined_functions(text: str) -> set[str]:
    """Names ``fx_*`` of the functions a C text (comments stripped) defines: at brace depth 0, the
    name, its parameter list, then ``{``."""
    names: set[str] = set()
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif depth == 0 and (ch == "f") and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = _CALL.match(text, i)
            if m:
                close = _matching_paren(text, m.end() - 1)
                j = close + 1
                while j < n and text[j].isspace():
                    j += 1
                if close > 0 and j < n and text[j] == "{":
                    names.add(m.group(1))
                i = max(i + 1, close + 1 if close > 0 else m.end())
                continue
        i += 1
    return names


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "(":
            depth += 1
        elif text[k] == ")":
            depth -= 1
            if depth == 0:
                return k
    return -1


def runtime_dir() -> Path:
    """The directory of the installed C runtime: the source tree's runtime_c/ beside this code when
    there is one (a checkout or a git worktree on PYTHONPATH uses its own runtime), else the package's.

    ``freeml_runtime_c`` has no ``__init__.py`` (it is data), so it may be a namespace package whose
    search path also holds non-directories (editable installs): try importlib.resources first, then
    every entry of the package's search path.
    """
    beside = Path(__file__).resolve().parents[2] / "runtime_c"
    if (beside / "fx_kernels.h").is_file():
        return beside
    candidates: list[Path] = []
    try:
        candidates.append(Path(str(resources.files(RUNTIME_PACKAGE))))
    except ModuleNotFoundError as exc:
        raise ToolchainError("the C runtime package 'freeml_runtime_c' is not installed",
                             hint="reinstall freeml-tx (pip install -e .)") from exc
    except (NotADirectoryError, TypeError, ValueError):
        pass
    spec = util.find_spec(RUNTIME_PACKAGE)
    if spec is not None and spec.submodule_search_locations is not None:
        candidates += [Path(entry) for entry in spec.submodule_search_locations]
    for path in candidates:
        if (path / "fx_kernels.h").is_file():
            return path
    raise ToolchainError(f"the C runtime package '{RUNTIME_PACKAGE}' has no fx_kernels.h "
                         f"(looked in {', '.join(str(c) for c in candidates) or 'nothing'})",
                         hint="reinstall freeml-tx; the package data is incomplete")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def needed_files(generated_sources: list[str], root: Path | None = None) -> list[str]:
    """Names of the runtime's top-level .c/.h files that the generated C needs, sorted.

    `generated_sources` are the texts of the generated .c files (their includes and calls count).
    """
    root = root if root is not None else runtime_dir()
    available = {p.name: _strip_comments(p.read_text()) for p in sorted(root.iterdir())
                 if p.is_file() and p.suffix in (".c", ".h")}
    defines: dict[str, set[str]] = {}
    for name, text in available.items():
        if name.endswith(".c"):
            defines[name] = defined_functions(text)
    needed: set[str] = set()
    calls: set[str] = set()
    pending = [(_strip_comments(t), True) for t in generated_sources]
    while pending:
        text, is_code = pending.pop()
        if is_code:  # headers only declare: a prototype is not a use
            calls |= set(_CALL.findall(text))
        for inc in _INCLUDE.findall(text):
            if inc in available and inc not in needed:
                needed.add(inc)
                pending.append((available[inc], False))
        for cfile, syms in sorted(defines.items()):
            if cfile not in needed and syms & calls:
                needed.add(cfile)
                pending.append((available[cfile], True))
    return sorted(needed)

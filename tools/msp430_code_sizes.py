#!/usr/bin/env python3
"""Measure the C runtime's code on the MSP430FR5994 and write the table plan-memory estimates from.

    python tools/msp430_code_sizes.py            # print the table (per kernel entry point)
    python tools/msp430_code_sizes.py --write    # regenerate passes/msp430_code_sizes.py
    python tools/msp430_code_sizes.py --check    # exit 1 when the committed table is stale

Every ``runtime_c/fx_*.c`` is compiled with the flags of msp430.mk (``-O2 -ffunction-sections
-fdata-sections -DFX_USE_MPY32``), once for the small and once for the large memory model
(``-mlarge``). From the objects and from the libgcc/libmul_f5 archives of the matching multilib,
``msp430-elf-objdump -h -t -r`` gives every section's size, the symbols it defines and the symbols
its relocations refer to. That is a graph of sections; what ``--gc-sections`` keeps for a kernel is
the part of it reachable from the kernel's entry point (``fx_conv``, ``fx_fc``, ...), libgcc helpers
included, so plan-memory can add up exactly the code (and the read-only tables) a program's steps
pull in (passes/plan_memory.py: ``runtime_bytes``). Re-run with ``--write`` after changing a
kernel; ``freeml-tx report`` and tests/msp430/test_msp430_models_sim.py compare the estimate with
the linked ELF (within 5 %).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backends.c.msp430_mk import MSP430_BASE_CFLAGS  # noqa: E402
from transpiler.errors import FreemlError, ToolchainError  # noqa: E402
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain  # noqa: E402

RUNTIME = REPO / "runtime_c"
PLATFORM = RUNTIME / "platform" / "msp430"
OUTPUT = REPO / "passes" / "msp430_code_sizes.py"
MODELS = {"small": (), "large": ("-mlarge",)}

_MEMBER = re.compile(r"^(\S+\.o):\s+file format")
_SECTION = re.compile(r"^\s*\d+\s+(\S+)\s+([0-9a-fA-F]+)\s+[0-9a-fA-F]+\s+[0-9a-fA-F]+\s+[0-9a-fA-F]+\s+2\*\*\d+")
_SYMBOL = re.compile(r"^[0-9a-fA-F]+ (.{7}) (\S+)\s+[0-9a-fA-F]+ (?:\.hidden )?(\S+)$")
_RELOC_HEAD = re.compile(r"^RELOCATION RECORDS FOR \[(\S+)\]:")
_RELOC = re.compile(r"^[0-9a-fA-F]+\s+\S+\s+(\S+)$")


@dataclass
class ObjectInfo:
    """Sections, symbols and references of one object file or archive member."""

    name: str
    sections: dict[str, int] = field(default_factory=dict)          # allocated section -> bytes
    defines: dict[str, tuple[str, bool]] = field(default_factory=dict)  # symbol -> (section, global)
    refs: dict[str, set[str]] = field(default_factory=dict)         # section -> referenced names


def _objdump(tc: Msp430Toolchain, flag: str, path: Path) -> str:
    proc = subprocess.run([str(tc.objdump), flag, str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"objdump {flag} {path} failed", details=proc.stderr.strip().splitlines()[-5:])
    return proc.stdout


def _split_members(text: str, default: str) -> dict[str, list[str]]:
    """objdump output -> {member name: its lines} (one entry named ``default`` for a plain object)."""
    out: dict[str, list[str]] = {}
    current = default
    for line in text.splitlines():
        m = _MEMBER.match(line)
        if m:
            current = m.group(1).split("/")[-1]
            continue
        out.setdefault(current, []).append(line)
    return out


def read_objects(tc: Msp430Toolchain, path: Path, label: str) -> list[ObjectInfo]:
    """The objects of an object file or an archive (``label`` names them: ``fx_conv.c``,
    ``libgcc.a``)."""
    heads = _split_members(_objdump(tc, "-h", path), path.name)
    syms = _split_members(_objdump(tc, "-t", path), path.name)
    relocs = _split_members(_objdump(tc, "-r", path), path.name)
    archive = path.suffix == ".a"
    objects: list[ObjectInfo] = []
    for member, lines in heads.items():
        name = f"{label}({member})" if archive else label
        info = ObjectInfo(name)
        for i, line in enumerate(lines):
            m = _SECTION.match(line)
            if m and i + 1 < len(lines) and "ALLOC" in lines[i + 1]:
                info.sections[m.group(1)] = int(m.group(2), 16)
        for line in syms.get(member, []):
            m = _SYMBOL.match(line)
            if not m or m.group(2) in ("*UND*", "*ABS*") or "d" in m.group(1)[5:6] or "f" in m.group(1)[6:7]:
                continue
            info.defines.setdefault(m.group(3), (m.group(2), m.group(1)[0] in "gu"))
        current: str | None = None
        for line in relocs.get(member, []):
            h = _RELOC_HEAD.match(line)
            if h:
                current = h.group(1)
                continue
            r = _RELOC.match(line)
            if current is not None and r and current in info.sections:
                info.refs.setdefault(current, set()).add(re.sub(r"[+-]0x[0-9a-fA-F]+$", "", r.group(1)))
        objects.append(info)
    return objects


def section_kind(section: str) -> str:
    """``code`` for text sections, ``rodata`` for read-only data, ``data`` for the rest."""
    if ".text" in section or section.startswith(".lowtext"):
        return "code"
    if "rodata" in section or ".const" in section:
        return "rodata"
    return "data"


def build_graph(objects: list[ObjectInfo]) -> dict[str, object]:
    """Sections reachable from the runtime's global ``fx_*`` functions: sizes, kinds, edges, entry points."""
    globals_: dict[str, str] = {}
    for obj in objects:   # link order: the first definition wins
        for sym, (sec, is_global) in obj.defines.items():
            if is_global and sec in obj.sections:
                globals_.setdefault(sym, f"{obj.name}:{sec}")
    nodes: dict[str, tuple[int, str]] = {}
    edges: dict[str, list[str]] = {}
    for obj in objects:
        for sec, size in obj.sections.items():
            key = f"{obj.name}:{sec}"
            nodes[key] = (size, section_kind(sec))
            targets: set[str] = set()
            for ref in obj.refs.get(sec, set()):
                if ref in obj.sections:                      # a section symbol of the same object
                    targets.add(f"{obj.name}:{ref}")
                elif ref in obj.defines and obj.defines[ref][0] in obj.sections:
                    targets.add(f"{obj.name}:{obj.defines[ref][0]}")   # local or global, same object first
                elif ref in globals_:
                    targets.add(globals_[ref])
                # .L labels (same section) and peripheral registers (the linker script) add nothing
            targets.discard(key)
            edges[key] = sorted(targets)
    entries = {sym: key for sym, key in globals_.items()
               if sym.startswith("fx_") and not key.startswith(("libgcc", "libmul"))}
    keep: set[str] = set()
    stack = list(entries.values())
    while stack:
        k = stack.pop()
        if k in keep:
            continue
        keep.add(k)
        stack.extend(edges.get(k, []))
    return {
        "sections": {k: [nodes[k][0], nodes[k][1]] for k in sorted(keep) if nodes[k][0] > 0},
        "edges": {k: [t for t in edges[k] if t in keep] for k in sorted(keep) if edges.get(k)},
        "entries": dict(sorted(entries.items())),
    }


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed", details=(proc.stderr or proc.stdout).strip().splitlines()[-10:],
                             hint="the runtime must build warning-free with msp430.mk's flags")


def linked_sizes(tc: Msp430Toolchain, model: str, objs: list[tuple[Path, str]], entries: list[str],
                 work: Path) -> dict[str, int]:
    """Section sizes after linking (``--gc-sections``, fr5994.ld, a stub main that keeps every entry
    point): the linker relaxes branches and calls, so a section's linked size differs from the
    object's by a few bytes (larger for functions longer than a 10-bit jump reaches)."""
    from transpiler.msp430_size import parse_link_map

    stub = work / f"{model}_keep.c"
    decls = "".join(f"extern void {e}(void);\n" for e in entries)
    stub.write_text("/* keeps every runtime entry point (tools/msp430_code_sizes.py) */\n" + decls
                    + "void (*volatile const fx_keep[])(void) = {" + ", ".join(entries) + "};\n"
                    + "int main(void) { return fx_keep[0] == 0; }\n")
    flags = ["-mmcu=msp430fr5994", "-O2", *MODELS[model]]
    crt0 = work / f"{model}_crt0.o"
    _run([str(tc.gcc), *flags, "-c", str(PLATFORM / "crt0.S"), "-o", str(crt0)], "assembling crt0.S")
    elf, map_file = work / f"{model}_keep.elf", work / f"{model}_keep.map"
    _run([str(tc.gcc), *flags, "-ffreestanding", "-ffunction-sections", "-fdata-sections", "-nostdlib",
          "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", f"-Wl,-Map,{map_file}",
          "-T", str(PLATFORM / "fr5994.ld"), str(crt0), str(stub), *(str(o) for o, _ in objs),
          "-lgcc", "-lmul_f5", "-o", str(elf)], f"linking the runtime ({model} model)")
    labels = {o.name: label for o, label in objs}
    sizes: dict[str, int] = {}
    for inp in parse_link_map(map_file.read_text()).inputs:
        if not inp.source or inp.size == 0:
            continue
        src = inp.source.split("/")[-1]
        if ".a(" in inp.source:
            label = src
        elif src in labels:
            label = labels[src]
        else:
            continue
        sizes[f"{label}:{inp.name}"] = inp.size
    return sizes


def measure(tc: Msp430Toolchain, model: str, work: Path) -> dict[str, object]:
    """Compile the runtime for one memory model and return its section graph (linked sizes)."""
    flags = [*MSP430_BASE_CFLAGS, *MODELS[model], f"-I{RUNTIME}", f"-I{PLATFORM}"]
    objects: list[ObjectInfo] = []
    objs: list[tuple[Path, str]] = []
    for src in sorted(RUNTIME.glob("fx_*.c")):
        obj = work / f"{model}_{src.stem}.o"
        _run([str(tc.gcc), *flags, "-c", str(src), "-o", str(obj)],
             f"compiling {src.name} for the MSP430 ({model} model)")
        objects += read_objects(tc, obj, src.name)
        objs.append((obj, src.name))
    for lib in ("libgcc.a", "libmul_f5.a"):
        proc = subprocess.run([str(tc.gcc), "-mmcu=msp430fr5994", *MODELS[model], f"-print-file-name={lib}"],
                              capture_output=True, text=True, check=False)
        path = Path(proc.stdout.strip())
        if not path.is_file():
            raise ToolchainError(f"{lib} of the {model} multilib not found ({path})")
        objects += read_objects(tc, path, lib)
    graph = build_graph(objects)
    linked = linked_sizes(tc, model, objs, sorted(graph["entries"]), work)  # type: ignore[arg-type]
    sections: dict[str, list[object]] = graph["sections"]  # type: ignore[assignment]
    for key, entry in sections.items():
        if key in linked:
            entry[0] = linked[key]
    return graph


def sources_digest() -> str:
    """sha256 of the runtime's C files (to tell a stale table)."""
    h = hashlib.sha256()
    for p in sorted(RUNTIME.glob("fx_*.[ch]")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def module_text(graphs: dict[str, dict[str, object]], version: str) -> str:
    """The text of passes/msp430_code_sizes.py."""
    return (
        '"""Code and read-only tables of the C runtime on the MSP430FR5994, per section (generated; do not edit).\n\n'
        "Written by ``python tools/msp430_code_sizes.py --write`` from runtime_c/fx_*.c compiled with\n"
        f"{version} and msp430.mk's flags, for the small and the large (``-mlarge``) memory model.\n"
        "``GRAPHS[model]['sections']``: ``'file:section' -> [bytes, 'code' | 'rodata' | 'data']``;\n"
        "``['edges']``: the sections each one refers to (relocations); ``['entries']``: global function ->\n"
        "its section. plan-memory adds up what is reachable from the entry points a program's steps call.\n"
        '"""\n\n'
        f"SOURCES_SHA256 = {sources_digest()!r}\n\n"
        f"GRAPHS: dict[str, dict[str, dict[str, object]]] = {json.dumps(graphs, indent=1, sort_keys=True)}\n"
    )


def summary(graphs: dict[str, dict[str, object]]) -> list[str]:
    """Per entry point: code and rodata bytes of its closure, small and large."""
    from passes.plan_memory import closure_bytes

    lines = [f"{'entry point':24s} {'small code':>10} {'rodata':>7} {'large code':>10} {'rodata':>7}"]
    entries = sorted(set().union(*(set(g["entries"]) for g in graphs.values())))  # type: ignore[arg-type]
    for e in entries:
        s = closure_bytes([e], graphs["small"])
        lg = closure_bytes([e], graphs["large"])
        lines.append(f"{e:24s} {s[0]:>10} {s[1]:>7} {lg[0]:>10} {lg[1]:>7}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help=f"write {OUTPUT.relative_to(REPO)}")
    ap.add_argument("--check", action="store_true", help="exit 1 when the committed table differs")
    args = ap.parse_args(argv)
    try:
        tc = find_msp430_toolchain(require_sim=False)
        with tempfile.TemporaryDirectory(prefix="fx-codesize-") as tmp:
            graphs = {m: measure(tc, m, Path(tmp)) for m in MODELS}
        text = module_text(graphs, tc.gcc_version())
    except FreemlError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    print("\n".join(summary(graphs)))
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.is_file() else ""
        body = lambda t: t.split("SOURCES_SHA256", 1)[-1]  # noqa: E731
        if body(current) != body(text):
            print(f"{OUTPUT.relative_to(REPO)} is stale: run python tools/msp430_code_sizes.py --write",
                  file=sys.stderr)
            return 1
        print("table is current")
    if args.write:
        OUTPUT.write_text(text)
        print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

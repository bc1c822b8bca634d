"""FRAM and SRAM of an MSP430FR5994 build, from the ELF and the linker map, against the planner.

    from transpiler.msp430_size import measure_build, compare_with_plan
    m = measure_build("build/")                 # build/<model>.elf + build/<model>.map (make msp430)
    m.sections                                  # .text .rodata .persistent .bss ... with sizes/regions
    m.fram_total, m.sram_total                  # what the whole program occupies
    rows = compare_with_plan(m, manifest)       # like with like: the model's bytes vs plan-memory's

Two views of the same ELF:

* **By section** (``msp430-elf-objdump -h``): every allocated output section, its size and the memory
  it lives in (SRAM ``0x1C00-0x3BFF``, lower FRAM ``0x4000-0xFF7F``, the vectors ``0xFF80-0xFFFF``,
  HIFRAM ``0x10000-0x43FFF``). ``.data`` counts twice: in SRAM, and its load image in FRAM.
* **By owner and kind** (the linker map, ``-Wl,-Map``, which msp430.mk writes): every input section
  is attributed to the *model* (the generated ``<m>.c``/``<m>_weights.c``, the runtime kernels, and
  the libgcc members they pull in) or to the *harness* (``crt0.S``, CIO, ``main_sim.c``, the
  platform counters, ``sim_input.c``, the vectors), and to a kind: ``code``, ``constants``
  (``fx_<m>_c_*``: weights, biases, tables), ``descriptors`` (the other read-only data of the model:
  kernel descriptors, shift tables, the step table), ``fram_data`` (``.persistent``: FRAM
  activations) and ``sram`` (``.data``/``.bss``/``.noinit``). A libgcc member belongs to the model
  when the file that made the linker include it (the map's "Archive member included" list) does;
  the model's objects come first on the link line, so a helper both sides need is the model's.
  Fill (alignment) goes with the section before it.

The planner (``plan-memory``, recorded in manifest.json under ``sizes`` and ``plan``) counts the
model only: its code estimate, the constants, the descriptor estimate and the FRAM activation arena;
its SRAM figure is the activation arena. :func:`compare_with_plan` therefore compares the *model*
columns of the ELF with it, category by category, and the FRAM and SRAM totals; the harness (a
simulator driver that a device application replaces) is reported separately and never compared. The
stack is not a static section: the planner's reserve is shown next to the SRAM the ELF leaves free.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from transpiler.errors import InputError, ToolchainError
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain

#: The FR5994's memories: name -> (first address, last address).
REGIONS: dict[str, tuple[int, int]] = {
    "sram": (0x1C00, 0x3BFF),
    "fram": (0x4000, 0xFF7F),
    "vectors": (0xFF80, 0xFFFF),
    "hifram": (0x10000, 0x43FFF),
}
SRAM_BYTES = 0x2000
LOWER_FRAM_BYTES = 0xBF80
HIFRAM_BYTES = 0x34000
#: What the FR5994 has in all: 256 KiB of FRAM (lower FRAM + HIFRAM + vectors) and 8 KiB of SRAM.
FRAM_PART_BYTES = 256 * 1024
#: Agreement the planner must reach with the ELF (relative to the ELF's figure) ...
AGREEMENT = 0.05
#: ... or, for programs so small that 5 % is less than one function (under 1.3 KiB), this many bytes.
AGREEMENT_FLOOR = 64

KINDS = ("code", "constants", "descriptors", "fram_data", "sram")
OWNERS = ("model", "harness")

_HARNESS_OBJECTS = re.compile(r"(^|/)(crt0|sim_input)\.o$|platform__msp430__")
_SECTION_LINE = re.compile(r"^\s*\d+\s+(\S+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+"
                           r"([0-9a-fA-F]+)\s+2\*\*(\d+)\s*$")
_OUT_SECTION = re.compile(r"^(\.\S+|/DISCARD/)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+))?")
_IN_ENTRY = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)(?:\s+(\S.*))?$")
_IN_FULL = re.compile(r"^ (\S+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)(?:\s+(\S.*))?$")
_IN_NAME = re.compile(r"^ (\S+)\s*$")
_FILL = re.compile(r"^ \*fill\*\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)")
_SCRIPT_DATA = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(BYTE|SHORT|LONG|QUAD|SQUAD)\b")


def region_of(address: int) -> str:
    """The memory an address is in (``sram``, ``fram``, ``vectors``, ``hifram``) or ``other``."""
    for name, (lo, hi) in REGIONS.items():
        if lo <= address <= hi:
            return name
    return "other"


@dataclass(frozen=True)
class ElfSection:
    """One allocated output section of the ELF (``objdump -h``)."""

    name: str
    size: int
    vma: int
    lma: int
    flags: tuple[str, ...]

    @property
    def region(self) -> str:
        """Where the section lives at run time."""
        return region_of(self.vma)

    @property
    def load_region(self) -> str:
        """Where its bytes are stored when the device is programmed (FRAM for ``.data``)."""
        return region_of(self.lma)

    @property
    def loaded(self) -> bool:
        """Whether the section has contents in the image (not NOLOAD/.bss)."""
        return "LOAD" in self.flags and "CONTENTS" in self.flags


@dataclass(frozen=True)
class InputSection:
    """One input section (or fill, or linker-script data) inside an output section of the map."""

    output: str
    name: str
    address: int
    size: int
    source: str  # object file, "lib.a(member.o)", or "" for fill / linker-script data


@dataclass
class LinkMap:
    """What :func:`parse_link_map` reads from a GNU ld map file."""

    inputs: list[InputSection] = field(default_factory=list)
    outputs: dict[str, tuple[int, int]] = field(default_factory=dict)   # name -> (address, size)
    members: dict[str, str] = field(default_factory=dict)   # "lib.a(m.o)" -> the file that pulled it in


def parse_section_headers(text: str) -> list[ElfSection]:
    """The sections of ``objdump -h`` output that occupy memory (ALLOC, size > 0).

    Raises:
        ToolchainError: the text has no section table.
    """
    lines = text.splitlines()
    out: list[ElfSection] = []
    seen = False
    for i, line in enumerate(lines):
        m = _SECTION_LINE.match(line)
        if not m:
            continue
        seen = True
        flags = tuple(f.strip() for f in (lines[i + 1] if i + 1 < len(lines) else "").split(",") if f.strip())
        size = int(m.group(2), 16)
        if "ALLOC" in flags and size > 0:
            out.append(ElfSection(m.group(1), size, int(m.group(3), 16), int(m.group(4), 16), flags))
    if not seen:
        raise ToolchainError("objdump -h printed no section table",
                             details=lines[:5], hint="is the file an msp430-elf ELF?")
    return out


def parse_link_map(text: str) -> LinkMap:
    """Read the archive members and the input sections of every output section from a map file.

    Raises:
        ToolchainError: the text is not a GNU ld map (no "Linker script and memory map").
    """
    result = LinkMap()
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Linker script and memory map"))
    except StopIteration as exc:
        raise ToolchainError("not a GNU ld map file (no 'Linker script and memory map')",
                             hint="link with -Wl,-Map,<file> (msp430.mk does)") from exc
    # "Archive member included to satisfy reference by file (symbol)": member, then the referencing file
    member: str | None = None
    for line in lines[:start]:
        if line.startswith("Discarded input sections") or line.startswith("Memory Configuration"):
            break
        if line and not line[0].isspace() and ".a(" in line:
            member = line.strip()
        elif member is not None and line.strip():
            result.members[member] = re.sub(r"\s*\([^()]*\)\s*$", "", line.strip())
            member = None
    current: str | None = None
    pending: str | None = None
    for line in lines[start + 1:]:
        if not line.strip():
            pending = None
            continue
        if line[0] not in " *":
            m = _OUT_SECTION.match(line)
            pending = None
            if not m:
                current = None
                continue
            current = m.group(1)
            if current == "/DISCARD/" or current.startswith("OUTPUT("):
                current = None
                continue
            if m.group(2) is not None:
                result.outputs[current] = (int(m.group(2), 16), int(m.group(3), 16))
            else:
                result.outputs.setdefault(current, (0, 0))
                pending = "__output__"
            continue
        if current is None:
            continue
        if pending == "__output__":   # the output section's address/size wrapped to this line
            m = re.match(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)", line)
            pending = None
            if m:
                result.outputs[current] = (int(m.group(1), 16), int(m.group(2), 16))
                continue
        m = _FILL.match(line)
        if m:
            result.inputs.append(InputSection(current, "*fill*", int(m.group(1), 16), int(m.group(2), 16), ""))
            pending = None
            continue
        m = _SCRIPT_DATA.match(line)
        if m:
            result.inputs.append(InputSection(current, m.group(3), int(m.group(1), 16), int(m.group(2), 16), ""))
            continue
        m = _IN_FULL.match(line)
        if m and m.group(4) and not m.group(1).startswith("*("):
            result.inputs.append(InputSection(current, m.group(1), int(m.group(2), 16), int(m.group(3), 16),
                                              m.group(4).strip()))
            pending = None
            continue
        if pending is not None and pending != "__output__":
            m = _IN_ENTRY.match(line)
            if m and m.group(3) and not m.group(3).startswith(("PROVIDE", ". =")) and "=" not in m.group(3):
                result.inputs.append(InputSection(current, pending, int(m.group(1), 16), int(m.group(2), 16),
                                                  m.group(3).strip()))
                pending = None
                continue
        m = _IN_NAME.match(line)
        if m and not m.group(1).startswith("*"):
            pending = m.group(1)
            continue
    return result


def _kind(output: str, name: str, c_name: str | None) -> str:
    """The kind of an input section, from the output section it went to and its own name."""
    out = output.lstrip(".")
    if out.endswith("text") or out == "crt0" or out.startswith("lowtext"):
        return "code"
    if out.endswith("rodata") or out.endswith("const"):
        const_prefix = f"fx_{c_name}_c_" if c_name else None
        bare = re.sub(r"^\.(upper\.|lower\.|either\.)?rodata\.", "", name)
        return "constants" if const_prefix and bare.startswith(const_prefix) else "descriptors"
    if "persistent" in out or out.startswith("upper."):
        return "fram_data"
    if out in ("data", "bss", "noinit"):
        return "sram"
    return "harness_other"


def classify_owner(source: str, link_map: LinkMap, harness: re.Pattern[str] | None = None) -> str:
    """``model`` or ``harness`` for an object file or archive member of the link (``harness``: the
    pattern of harness object paths; default crt0.o, sim_input.o and runtime/platform/msp430/)."""
    seen: set[str] = set()
    while ".a(" in source and source not in seen:
        seen.add(source)
        source = link_map.members.get(source, "")
    if not source:
        return "harness"
    return "harness" if (harness or _HARNESS_OBJECTS).search(source) else "model"


@dataclass
class Measurement:
    """The memory of one MSP430 build (see the module docstring for the two views).

    Attributes:
        elf: the ELF measured.
        sections: its allocated output sections.
        by_owner: owner -> kind -> bytes, from the map (``fram_data`` and ``sram`` as placed, ``.data``
            also counted in ``load_image``); None when there was no map.
        load_image: FRAM bytes of ``.data`` load images by owner (copied to SRAM at boot).
        large: whether the ELF uses the large memory model (anything in HIFRAM).
    """

    elf: Path
    sections: list[ElfSection]
    by_owner: dict[str, dict[str, int]] | None = None
    load_image: dict[str, int] = field(default_factory=dict)
    unattributed: int = 0

    @property
    def fram_total(self) -> int:
        """FRAM the program occupies: lower FRAM, HIFRAM, the vectors and .data load images."""
        total = 0
        for s in self.sections:
            if s.region in ("fram", "hifram", "vectors"):
                total += s.size
            elif s.region == "sram" and s.loaded and s.load_region in ("fram", "hifram"):
                total += s.size
        return total

    @property
    def sram_total(self) -> int:
        """SRAM taken by static data (.data, .bss, .noinit); the stack uses what is left."""
        return sum(s.size for s in self.sections if s.region == "sram")

    @property
    def hifram_total(self) -> int:
        """Bytes in HIFRAM (0x10000 and up)."""
        return sum(s.size for s in self.sections if s.region == "hifram")

    @property
    def lower_fram_total(self) -> int:
        """Bytes in lower FRAM (0x4000-0xFF7F), .data load images included."""
        return self.fram_total - self.hifram_total - sum(s.size for s in self.sections if s.region == "vectors")

    @property
    def sram_free(self) -> int:
        """SRAM left for the stack."""
        return SRAM_BYTES - self.sram_total

    def owner_fram(self, owner: str) -> int:
        """FRAM bytes of one owner (code, constants, descriptors, FRAM data, .data images)."""
        if self.by_owner is None:
            raise InputError("no linker map was read", hint="rebuild with `make msp430` (msp430.mk writes <model>.map)")
        k = self.by_owner[owner]
        return k["code"] + k["constants"] + k["descriptors"] + k["fram_data"] + self.load_image.get(owner, 0)

    def owner_sram(self, owner: str) -> int:
        """SRAM bytes of one owner."""
        if self.by_owner is None:
            raise InputError("no linker map was read", hint="rebuild with `make msp430` (msp430.mk writes <model>.map)")
        return self.by_owner[owner]["sram"]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "elf": str(self.elf),
            "sections": [{"name": s.name, "size": s.size, "address": s.vma, "region": s.region,
                          "load_address": s.lma if s.loaded and s.lma != s.vma else None} for s in self.sections],
            "fram_total": self.fram_total, "lower_fram": self.lower_fram_total, "hifram": self.hifram_total,
            "sram_total": self.sram_total, "sram_free": self.sram_free,
            "by_owner": self.by_owner, "load_image": self.load_image, "unattributed": self.unattributed,
        }


def attribute(link_map: LinkMap, sections: list[ElfSection], c_name: str | None,
              harness: re.Pattern[str] | None = None) -> tuple[dict[str, dict[str, int]], dict[str, int], int]:
    """Sum the map's input sections by owner and kind; returns (by_owner, load_image, unattributed).

    Fill and linker-script data go to the owner and kind of the input section before them in the
    same output section (the vectors, which have none, to the harness). Bytes of an ELF section that the map
    does not account for are returned as ``unattributed`` (0 for a consistent map).
    """
    by_owner = {o: {k: 0 for k in KINDS} for o in OWNERS}
    load_image = {o: 0 for o in OWNERS}
    elf = {s.name: s for s in sections}
    seen: dict[str, int] = {}
    previous_owner: dict[str, str] = {}
    previous_kind: dict[str, str] = {}
    for inp in link_map.inputs:
        if inp.output not in elf or inp.size == 0:
            continue
        sec = elf[inp.output]
        if inp.source:
            owner = classify_owner(inp.source, link_map, harness)
            kind = _kind(inp.output, inp.name, c_name)
        else:   # fill or linker-script data: the owner and kind of the section before it
            owner = previous_owner.get(inp.output, "harness")
            kind = previous_kind.get(inp.output, _kind(inp.output, inp.name, c_name))
        previous_owner[inp.output] = owner
        previous_kind[inp.output] = kind
        if sec.region == "sram":
            kind = "sram"
            if sec.loaded and sec.load_region in ("fram", "hifram"):
                load_image[owner] += inp.size
        elif kind == "harness_other" or sec.region == "vectors":
            owner, kind = "harness", "code" if kind == "harness_other" else kind
        by_owner[owner][kind] += inp.size
        seen[inp.output] = seen.get(inp.output, 0) + inp.size
    unattributed = 0
    for s in sections:
        missing = s.size - seen.get(s.name, 0)
        if missing:
            unattributed += abs(missing)
            # trailing alignment the map does not list: to the last owner of that section
            owner = previous_owner.get(s.name, "harness")
            kind = "sram" if s.region == "sram" else ("code" if s.region == "vectors"
                                                      else _kind(s.name, "", c_name))
            if kind == "harness_other":
                owner, kind = "harness", "code"
            by_owner[owner][kind] += missing
    return by_owner, load_image, unattributed


def _run_tool(tool: Path, args: list[str]) -> str:
    try:
        proc = subprocess.run([str(tool), *args], capture_output=True, text=True, check=False, timeout=120)
    except OSError as exc:
        raise ToolchainError(f"cannot run {tool}: {exc}", hint="install the msp430-elf toolchain "
                             "(tools/msp430-toolchain.sh)") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"{tool.name} {' '.join(args)} failed (exit status {proc.returncode})",
                             details=(proc.stderr or proc.stdout).strip().splitlines()[-5:])
    return proc.stdout


def measure_elf(elf: str | os.PathLike[str], *, map_file: str | os.PathLike[str] | None = None,
                c_name: str | None = None, toolchain: Msp430Toolchain | None = None,
                harness: re.Pattern[str] | None = None) -> Measurement:
    """Sections of ``elf`` (objdump -h) and, with a map file, the model/harness attribution
    (``harness``: see :func:`classify_owner`).

    Raises:
        ToolchainError: the ELF is missing or objdump fails.
    """
    path = Path(elf)
    if not path.is_file():
        raise ToolchainError(f"{path} does not exist", hint="build it first: make -C <dir> msp430")
    tc = toolchain or find_msp430_toolchain(require_sim=False)
    sections = parse_section_headers(_run_tool(tc.objdump, ["-h", str(path)]))
    meas = Measurement(elf=path, sections=sections)
    if map_file is not None and Path(map_file).is_file():
        lm = parse_link_map(Path(map_file).read_text(encoding="utf-8", errors="replace"))
        meas.by_owner, meas.load_image, meas.unattributed = attribute(lm, sections, c_name, harness)
    return meas


def measure_build(build_dir: str | os.PathLike[str], *, elf: str | os.PathLike[str] | None = None,
                  toolchain: Msp430Toolchain | None = None) -> Measurement:
    """:func:`measure_elf` of ``<dir>/<c_name>.elf`` and ``<dir>/<c_name>.map`` of a generated package."""
    from transpiler.hostrun import load_manifest

    d = Path(build_dir)
    man = load_manifest(d)
    c_name = str(man["c_name"])
    elf_path = Path(elf) if elf is not None else d / f"{c_name}.elf"
    return measure_elf(elf_path, map_file=elf_path.with_suffix(".map"), c_name=c_name, toolchain=toolchain)


@dataclass(frozen=True)
class Comparison:
    """One row of :func:`compare_with_plan`: the ELF's bytes (model only) vs the planner's."""

    category: str
    elf: int
    plan: int
    note: str = ""
    total: bool = False

    @property
    def difference(self) -> int:
        """plan - elf (positive: the planner over-estimates)."""
        return self.plan - self.elf

    @property
    def relative(self) -> float:
        """|plan - elf| / elf (0 when both are 0)."""
        if self.elf == 0:
            return 0.0 if self.plan == 0 else float("inf")
        return abs(self.plan - self.elf) / self.elf

    @property
    def agrees(self) -> bool:
        """Within :data:`AGREEMENT` of the ELF, or :data:`AGREEMENT_FLOOR` bytes."""
        return self.relative <= AGREEMENT or abs(self.difference) <= AGREEMENT_FLOOR


def planner_figures(manifest: Mapping[str, Any]) -> dict[str, int]:
    """The planner's figures from a manifest: code, constants, read-only tables, FRAM/SRAM arenas.

    ``code`` and ``rodata`` come from ``plan`` (plan-memory's ``code_estimate`` and
    ``rodata_estimate``, recorded by emit-c); a manifest without them falls back to the descriptor
    estimate of ``sizes`` and no code.
    """
    sizes = manifest.get("sizes", {})
    plan = manifest.get("plan") or {}
    return {
        "code": int(plan.get("code_estimate", 0) or 0),
        "constants": int(sizes.get("fram_constants", 0)),
        "descriptors": int(plan.get("rodata_estimate", sizes.get("fram_descriptors", 0)) or 0),
        "fram_data": int(sizes.get("fram_activations", 0)) + int(sizes.get("hifram_activations", 0)),
        "sram": int(sizes.get("sram_peak", 0)),
        "stack_reserve": int(plan.get("stack_reserve", 0) or 0),
    }


def compare_with_plan(meas: Measurement, manifest: Mapping[str, Any]) -> list[Comparison]:
    """The model's bytes in the ELF next to the planner's, by category, then FRAM and SRAM totals.

    Raises:
        InputError: the measurement has no map attribution (rebuild with the current msp430.mk).
    """
    if meas.by_owner is None:
        raise InputError(f"no linker map next to {meas.elf.name}",
                         hint="rebuild with `make msp430` (msp430.mk links with -Wl,-Map,<model>.map)")
    m = meas.by_owner["model"]
    p = planner_figures(manifest)
    rows = [
        Comparison("code (model, runtime kernels, libgcc helpers)", m["code"], p["code"],
                   "planner: plan-memory's code estimate"),
        Comparison("constants (weights, biases, tables)", m["constants"], p["constants"],
                   "exact on both sides"),
        Comparison("descriptors, shift/step tables, runtime tables", m["descriptors"], p["descriptors"],
                   "planner: plan-memory's rodata estimate"),
        Comparison("FRAM activations (.persistent, .upper.persistent)", m["fram_data"] + meas.load_image.get("model", 0),
                   p["fram_data"], "the FRAM and HIFRAM arenas"),
    ]
    fram_elf = sum(r.elf for r in rows)
    fram_plan = sum(r.plan for r in rows)
    rows.append(Comparison("FRAM total (model)", fram_elf, fram_plan, "", total=True))
    rows.append(Comparison("SRAM total (model: activation arena, runtime state)", m["sram"], p["sram"],
                           "the SRAM arena", total=True))
    return rows


def fits_part(meas: Measurement, stack_reserve: int) -> tuple[bool, list[str]]:
    """Whether the whole program fits the FR5994 (8 KiB SRAM with ``stack_reserve`` left, 48 KiB lower
    FRAM, 208 KiB HIFRAM); returns (fits, what is missing)."""
    problems: list[str] = []
    if meas.sram_total + stack_reserve > SRAM_BYTES:
        problems.append(f"SRAM: {meas.sram_total} B static + {stack_reserve} B stack reserve > {SRAM_BYTES} B "
                        f"(needs {meas.sram_total + stack_reserve - SRAM_BYTES} B more)")
    if meas.lower_fram_total > LOWER_FRAM_BYTES:
        problems.append(f"lower FRAM: {meas.lower_fram_total} B > {LOWER_FRAM_BYTES} B")
    if meas.hifram_total > HIFRAM_BYTES:
        problems.append(f"HIFRAM: {meas.hifram_total} B > {HIFRAM_BYTES} B")
    return not problems, problems


__all__ = ["AGREEMENT", "AGREEMENT_FLOOR", "Comparison", "ElfSection", "InputSection", "LinkMap", "Measurement", "attribute",
           "classify_owner", "compare_with_plan", "fits_part", "measure_build", "measure_elf",
           "parse_link_map", "parse_section_headers", "planner_figures", "region_of"]

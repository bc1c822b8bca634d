"""``freeml-tx report``: ELF sections, model/harness attribution, planner agreement, per-layer cycles.

The parsers are checked on canned ``objdump -h`` and GNU ld map text (no toolchain needed); the
command itself on a built sample (tiny_conv1d), in text and JSON form, against the simulator's own
statistics and the manifest, and with a planner figure tampered so that ``--strict`` must fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from msp430_testlib import REPO, msp430_tc  # noqa: F401

from transpiler.cli import main
from transpiler.msp430_size import (AGREEMENT_FLOOR, Comparison, ElfSection, attribute, classify_owner,
                                    parse_link_map, parse_section_headers, planner_figures, region_of)
from transpiler.toolchain import Msp430Toolchain

OBJDUMP_H = """
m.elf:     file format elf32-msp430

Sections:
Idx Name          Size      VMA       LMA       File off  Algn
  0 .text         00000100  00004000  00004000  000000d4  2**1
                  CONTENTS, ALLOC, LOAD, READONLY, CODE
  1 .rodata       00000040  00004100  00004100  000001d4  2**1
                  CONTENTS, ALLOC, LOAD, READONLY, DATA
  2 .data         00000004  00001c00  00004140  00000214  2**1
                  CONTENTS, ALLOC, LOAD, DATA
  3 .bss          00000020  00001c04  00004144  00000218  2**1
                  ALLOC
  4 .upper.rodata 00000200  00010000  00010000  00000218  2**1
                  CONTENTS, ALLOC, LOAD, READONLY, DATA
  5 .upper.persistent 00000000  00010200  00010200  00000418  2**0
                  CONTENTS
  6 .vectors      00000080  0000ff80  0000ff80  00000418  2**0
                  CONTENTS, ALLOC, LOAD, DATA
  7 .comment      00000010  00000000  00000000  00000498  2**0
                  CONTENTS, READONLY
"""

LINK_MAP = """Archive member included to satisfy reference by file (symbol)

/opt/lib/libgcc.a(lib2divHI.o)
                              obj/m.o (__mspabi_divu)
/opt/lib/libgcc.a(srai.o)
                              /opt/lib/libgcc.a(lib2divHI.o) (__mspabi_sral)
/opt/lib/libgcc.a(lib2mul.o)
                              obj/runtime__platform__msp430__cio.o (__mulhi2)

Discarded input sections

 .text          0x00000000        0x0 obj/crt0.o

Memory Configuration

Name             Origin             Length             Attributes
RAM              0x00001c00         0x00002000         xrw

Linker script and memory map

LOAD obj/crt0.o
                0x000004c6                        PROVIDE (MACS = 0x4c6)

.text           0x00004000      0x100
 *(.crt0)
 .crt0          0x00004000       0x40 obj/crt0.o
                0x00004000                _start
 *(.text .text.*)
 .text.fx_m_step_0_conv_with_a_very_long_name
                0x00004040       0x20 obj/m.o
 .text.fx_conv  0x00004060       0x50 obj/runtime__fx_conv.o
                0x00004060                fx_conv
 .text.udivmodhi4
                0x000040b0       0x10 /opt/lib/libgcc.a(lib2divHI.o)
 .text.__mspabi_sral
                0x000040c0        0x8 /opt/lib/libgcc.a(srai.o)
 .text.fx_cio_send
                0x000040c8       0x30 obj/runtime__platform__msp430__cio.o
 .text.__mulhi2 0x000040f8        0x8 /opt/lib/libgcc.a(lib2mul.o)

.rodata         0x00004100       0x40
 *(.rodata .rodata.* .const .const.*)
 .rodata.fx_m_c_w
                0x00004100       0x1e obj/m_weights.o
 *fill*         0x0000411e        0x2 
 .rodata.fx_m_s0_conv
                0x00004120       0x18 obj/m_weights.o
 .rodata.fx_sim_input_len
                0x00004138        0x8 obj/sim_input.o

.data           0x00001c00        0x4 load address 0x00004140
 .data.x        0x00001c00        0x4 obj/runtime__fx_conv.o

.bss            0x00001c04       0x20 load address 0x00004144
 .bss.fx_m_sram
                0x00001c04       0x1c obj/m.o
 .bss.__CIOBUF__
                0x00001c20        0x4 obj/runtime__platform__msp430__cio.o

.upper.rodata   0x00010000      0x200
 .upper.rodata.fx_m_c_big
                0x00010000      0x200 obj/m_weights.o

.vectors        0x0000ff80       0x80
                0x0000007e                        . = 0x7e
 *fill*         0x0000ff80       0x7e 
                0x0000fffe        0x2 SHORT 0x4000 _start

/DISCARD/
 *(.comment)
OUTPUT(m.elf elf32-msp430)
"""


def test_section_headers_and_regions() -> None:
    secs = {s.name: s for s in parse_section_headers(OBJDUMP_H)}
    assert set(secs) == {".text", ".rodata", ".data", ".bss", ".upper.rodata", ".vectors"}   # ALLOC, size > 0
    assert secs[".data"].region == "sram" and secs[".data"].load_region == "fram" and secs[".data"].loaded
    assert not secs[".bss"].loaded
    assert secs[".upper.rodata"].region == "hifram" and secs[".vectors"].region == "vectors"
    assert region_of(0x3BFF) == "sram" and region_of(0x3C00) == "other" and region_of(0x43FFF) == "hifram"


def test_link_map_attribution_by_owner_and_kind() -> None:
    lm = parse_link_map(LINK_MAP)
    names = [i.name for i in lm.inputs if i.output == ".text"]
    assert ".text.fx_m_step_0_conv_with_a_very_long_name" in names      # wrapped line
    assert classify_owner("/opt/lib/libgcc.a(srai.o)", lm) == "model"    # pulled in by a model member
    assert classify_owner("/opt/lib/libgcc.a(lib2mul.o)", lm) == "harness"
    assert classify_owner("obj/runtime__platform__msp430__main_sim.o", lm) == "harness"
    secs = parse_section_headers(OBJDUMP_H)
    by, load, unattributed = attribute(lm, secs, "m")
    assert unattributed == 0
    assert by["model"]["code"] == 0x20 + 0x50 + 0x10 + 0x8
    assert by["harness"]["code"] == 0x40 + 0x30 + 0x8 + 0x80                # crt0, CIO, lib2mul, vectors
    assert by["model"]["constants"] == 0x1e + 0x2 + 0x200                  # fill goes to the section before
    assert by["model"]["descriptors"] == 0x18 and by["harness"]["descriptors"] == 0x8
    assert by["model"]["sram"] == 0x4 + 0x1c and by["harness"]["sram"] == 0x4
    assert load == {"model": 4, "harness": 0}
    total = sum(v for o in by.values() for v in o.values())
    assert total == sum(s.size for s in secs)


def test_not_a_map_is_a_toolchain_error() -> None:
    from transpiler.errors import ToolchainError

    with pytest.raises(ToolchainError, match="not a GNU ld map"):
        parse_link_map("hello\n")
    with pytest.raises(ToolchainError, match="no section table"):
        parse_section_headers("nothing here\n")


def test_comparison_agreement_and_planner_figures() -> None:
    assert Comparison("x", 10_000, 10_499).agrees and not Comparison("x", 10_000, 10_501).agrees
    assert Comparison("x", 300, 300 + AGREEMENT_FLOOR).agrees            # tiny programs: the floor
    assert Comparison("x", 0, 0).relative == 0.0
    man = {"sizes": {"fram_constants": 7, "fram_descriptors": 3, "fram_activations": 5, "sram_peak": 9},
           "plan": {"code_estimate": 100, "rodata_estimate": 4, "stack_reserve": 1024}}
    assert planner_figures(man) == {"code": 100, "constants": 7, "descriptors": 4, "fram_data": 5, "sram": 9,
                                    "stack_reserve": 1024}


def test_code_table_staleness(monkeypatch: pytest.MonkeyPatch) -> None:
    import passes.msp430_code_sizes as table
    from passes.plan_memory import code_table_stale

    fresh = code_table_stale()
    monkeypatch.setattr(table, "SOURCES_SHA256", "0" * 64)
    assert code_table_stale()
    monkeypatch.undo()
    assert code_table_stale() == fresh


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, msp430_tc: Msp430Toolchain) -> Path:  # noqa: F811
    """tiny_conv1d compiled for the FR5994 (the report builds what it needs)."""
    if not (REPO / "samples" / "tiny_conv1d.onnx").is_file():
        pytest.skip("samples/tiny_conv1d.onnx is absent (python samples/make_all.py makes it)")
    out = tmp_path_factory.mktemp("report") / "build"
    rc = main(["compile", str(REPO / "samples" / "tiny_conv1d.onnx"), "-o", str(out), "--target", "msp430fr5994",
               "--data", str(REPO / "samples" / "tiny_conv1d.npz")])
    assert rc == 0
    return out


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["report", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_report_text_and_json(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.load(REPO / "samples" / "tiny_conv1d.npz")["x"][:1]
    np.save(tmp_path / "x.npy", x)
    rc, text, err = _report(capsys, str(built), "--input", str(tmp_path / "x.npy"), "--strict")
    assert rc == 0, err
    man = json.loads((built / "manifest.json").read_text())
    for needle in (".text", ".rodata", ".bss", "fits the MSP430FR5994", "FRAM total (model)", "per layer",
                   "per kernel", f"first sample of {tmp_path / 'x.npy'}"):
        assert needle in text, needle
    assert text.count(" ok") == 2                                     # FRAM and SRAM totals agree
    layer_lines = [ln for ln in text.splitlines() if ln[:6].strip().isdigit() and "/" in ln]
    assert len(layer_lines) == len(man["steps"])

    rc, js, err = _report(capsys, str(built), "--input", str(tmp_path / "x.npy"), "--json")
    assert rc == 0, err
    r: dict[str, Any] = json.loads(js)
    inf, layers = r["inference"], r["layers"]
    assert [ly["op"] for ly in layers] == [st["op"] for st in man["steps"]]
    assert 0 < inf["steps_cycles"] < inf["cycles"] < inf["whole_program_cycles"]
    assert inf["macs"] == sum(st["macs"] for st in man["steps"]) > 0
    conv = next(ly for ly in layers if ly["op"] == "conv")
    assert conv["cycles_per_mac"] == pytest.approx(conv["cycles"] / conv["macs"], abs=1e-3)
    assert r["agrees"] and r["memory"]["fits_fr5994"]
    mem = r["memory"]
    assert mem["model_fram"] + mem["harness_fram"] == mem["fram_total"]
    assert mem["model_sram"] + mem["harness_sram"] == mem["sram_total"]
    sec = {s["name"]: s for s in mem["sections"]}
    assert sec[".bss"]["region"] == "sram" and sec[".text"]["region"] == "fram"
    # the outputs of the report's run are the host build's
    from transpiler import hostrun

    xq = hostrun.quantize(man, {man["inputs"][0]["name"]: x})
    want = hostrun.run_raw(hostrun.build(built, cc="gcc"), man, xq)
    assert r["outputs"] == want[0].tolist()


def test_report_no_run_and_strict_miss(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    rc, text, err = _report(capsys, str(built), "--no-run")
    assert rc == 0, err
    assert "FRAM total (model)" in text and "per layer" not in text
    bad = tmp_path / "bad"
    shutil.copytree(built, bad)
    man = json.loads((bad / "manifest.json").read_text())
    man["plan"]["code_estimate"] *= 2                                   # a planner that is far off
    (bad / "manifest.json").write_text(json.dumps(man))
    rc, text, err = _report(capsys, str(bad), "--no-run", "--strict")
    assert rc == 2 and "MISS" in text
    assert "misses the ELF by more than 5 %" in err and "msp430_code_sizes.py" in err


def test_report_needs_the_toolchain(built: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSP430_GCC_ROOT", str(built / "no-such-toolchain"))
    rc, _out, err = _report(capsys, str(built), "--no-run")
    assert rc == 2 and "MSP430_GCC_ROOT" in err and "hint:" in err

"""Build a generated C package on the host and run it: the bridge the CLI and the tests use.

    man = load_manifest("build/")
    exe = build("build/", cc="clang", sanitize=True)
    ys = run_raw(exe, man, xs_int16)            # [N, in_size] int16 -> [N, out_size] int16
    outs = split_outputs(man, ys)               # {output name: [N, *shape]} int16
    reals = dequantize(man, outs)               # float32 (index outputs stay int64)

Many samples go through one process (main_host.c takes a count), so checking a test set costs one
build and one run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from transpiler.errors import DataError, InputError, Location, ToolchainError
from transpiler.data import check_token_ids
from transpiler.lir.qio import dequantize_array, quantize_array, scale_features

MANIFEST = "manifest.json"


def load_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest.json of a generated directory; InputError if it is not one."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise InputError("not a freeml-tx output directory (no manifest.json)", location=Location(file=str(out_dir)),
                         hint="give the -o directory of `freeml-tx MODEL.onnx -o DIR`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"manifest.json is not valid JSON: {exc}", location=Location(file=str(path)),
                         hint="regenerate the directory with freeml-tx") from exc
    if not isinstance(data, dict) or data.get("format") != "freeml-tx-manifest/1":
        raise InputError("manifest.json has an unknown format", location=Location(file=str(path)),
                         hint="regenerate the directory with this version of freeml-tx")
    return data


def find_cc(cc: str | None = None) -> str:
    """The C compiler to use: `cc`, else $CC, else cc/gcc/clang, whichever exists."""
    for cand in ([cc] if cc else []) + ([os.environ["CC"]] if os.environ.get("CC") else []) + ["cc", "gcc", "clang"]:
        exe = cand.split()[0]
        if shutil.which(exe):
            return cand
        if cc:
            break
    raise ToolchainError(f"no C compiler found (tried {cc or '$CC, cc, gcc, clang'})",
                         hint="install gcc or clang, or pass the compiler with CC=...")


def build(out_dir: str | os.PathLike[str], cc: str | None = None, sanitize: bool = False,
          binary: str | None = None, quiet: bool = True) -> Path:
    """Run `make` (or `make asan`) in a generated directory; returns the binary's path.

    `binary` names the output file (BIN= / ASAN_BIN=); make rebuilds only when sources changed.
    """
    d = Path(out_dir)
    man = load_manifest(d)
    if shutil.which("make") is None:
        raise ToolchainError("`make` is not installed", hint="install make (apt-get install make)")
    compiler = find_cc(cc)
    name = binary or (man["api"]["asan_binary"] if sanitize else man["api"]["host_binary"])
    var = "ASAN_BIN" if sanitize else "BIN"
    cmd = ["make", "-C", str(d), "asan" if sanitize else "all", f"CC={compiler}", f"{var}={name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise ToolchainError(f"building the generated C with {compiler} failed", location=Location(file=str(d)),
                             details=tail, hint=f"run `{' '.join(cmd)}` to see the full output")
    if not quiet:
        print(proc.stdout, end="")
    return d / name


def run_raw(binary: str | os.PathLike[str], manifest: Mapping[str, Any], inputs: np.ndarray,
            timeout: float = 600.0) -> np.ndarray:
    """Run the host binary on int16 inputs ``[N, in_size]``; returns int16 outputs ``[N, out_size]``."""
    in_size, out_size = int(manifest["api"]["in_size"]), int(manifest["api"]["out_size"])
    x = np.ascontiguousarray(np.asarray(inputs).reshape(-1, in_size), dtype="<i2")
    n = x.shape[0]
    if n == 0:
        return np.zeros((0, out_size), dtype=np.int16)
    with tempfile.TemporaryDirectory(prefix="freeml-run-") as tmp:
        fin, fout = Path(tmp) / "in.raw", Path(tmp) / "out.raw"
        fin.write_bytes(x.tobytes())
        proc = subprocess.run([str(binary), str(fin), str(fout), str(n)], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise ToolchainError(f"{Path(binary).name} failed with exit status {proc.returncode}",
                                 location=Location(file=str(binary)),
                                 details=(proc.stdout + proc.stderr).strip().splitlines()[-30:],
                                 hint="a sanitizer report above points at the failing C line")
        y = np.frombuffer(fout.read_bytes(), dtype="<i2")
    if y.size != n * out_size:
        raise ToolchainError(f"{Path(binary).name} wrote {y.size} values, expected {n * out_size}",
                             location=Location(file=str(binary)))
    return y.reshape(n, out_size).astype(np.int16)


def quantize(manifest: Mapping[str, Any], inputs: Mapping[str, Any]) -> np.ndarray:
    """Float inputs by name (each ``[N, ...]`` or one sample) -> the int16 ``in`` vectors ``[N, in_size]``.

    Rounding: ``sat16(floor(v * 2^q + 1/2))`` (transpiler.lir.qio), the same as the interpreter's; a
    port with ``feature_shift`` scales its features first (:func:`transpiler.lir.qio.scale_features`).
    A token-id port (``vocab`` in the manifest) takes the ids as they are, after checking that they
    are integers in ``[0, vocab)`` (a DataError names the sample, position and id otherwise).
    """
    ports = manifest["inputs"]
    if len(ports) == 1 and ports[0]["name"] not in inputs and len(inputs) == 1:
        inputs = {ports[0]["name"]: next(iter(inputs.values()))}
    parts, n = [], None
    for pt in ports:
        if pt["name"] not in inputs:
            raise DataError(f"no value for input '{pt['name']}'",
                            hint="the inputs are " + ", ".join(repr(p["name"]) for p in ports))
        arr = np.asarray(inputs[pt["name"]], dtype=np.float64)
        if pt.get("vocab") is not None:     # token ids: the values themselves, as uint16 bits in int16
            if arr.size % pt["size"]:
                raise DataError(f"input '{pt['name']}' has {arr.size} ids ({list(arr.shape)}); a sample has "
                                f"{pt['size']} ({pt['onnx_shape']})", location=Location(shape=str(list(arr.shape))))
            ids = check_token_ids(arr.reshape(-1, pt["size"]), pt["name"], int(pt["vocab"]))
            if n is not None and ids.shape[0] != n:
                raise DataError(f"input '{pt['name']}' has {ids.shape[0]} samples, the others {n}")
            n = ids.shape[0]
            parts.append(ids.astype(np.uint16).view(np.int16))
            continue
        if arr.size % pt["size"]:
            raise DataError(f"input '{pt['name']}' has {arr.size} values ({list(arr.shape)}); a sample has "
                            f"{pt['size']} ({pt['onnx_shape']})", location=Location(shape=str(list(arr.shape))))
        arr = arr.reshape(-1, pt["size"])
        if pt.get("feature_shift"):
            arr = scale_features(arr, sample_shape(pt), pt["feature_shift"]).reshape(-1, pt["size"])
        if n is not None and arr.shape[0] != n:
            raise DataError(f"input '{pt['name']}' has {arr.shape[0]} samples, the others {n}")
        n = arr.shape[0]
        parts.append(quantize_array(arr, int(pt["q"])))
    return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), dtype=np.int16)


def sample_shape(port: Mapping[str, Any]) -> list[int]:
    """The per-sample shape of a port: its ONNX shape without the batch axis, else the LIR shape."""
    onnx_shape = [int(d) for d in port.get("onnx_shape") or []]
    if onnx_shape and onnx_shape[0] == 1 and int(np.prod(onnx_shape)) == int(port["size"]):
        return onnx_shape[1:]
    return [int(d) for d in port["shape"]]


def split_outputs(manifest: Mapping[str, Any], y: np.ndarray) -> dict[str, np.ndarray]:
    """``[N, out_size]`` int16 -> {output name: ``[N, *per-sample ONNX shape]``}."""
    out = {}
    for pt in manifest["outputs"]:
        part = y[:, pt["offset"]:pt["offset"] + pt["size"]]
        out[pt["name"]] = part.reshape(y.shape[0], *sample_shape(pt))
    return out


def class_output(manifest: Mapping[str, Any]) -> str | None:
    """The name of the argmax (class index) output, if the model has one."""
    return manifest.get("class_output")


def dequantize(manifest: Mapping[str, Any], outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int16 outputs -> real values (float32); the class-index output stays int64."""
    res = {}
    for pt in manifest["outputs"]:
        arr = outputs[pt["name"]]
        if pt["name"] == class_output(manifest):
            res[pt["name"]] = arr.astype(np.int64)
        else:
            res[pt["name"]] = dequantize_array(arr, int(pt["q"]))
    return res

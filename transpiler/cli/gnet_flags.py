"""The compile command's gNet flags: ``--gnet [KEY=VALUE,...]`` and ``--gnet-pool SIZE``.

    freeml-tx model.onnx -o build/ --data d.npz --gnet
    freeml-tx model.onnx -o build/ --data d.npz --gnet exits=conv1,conv2,fc1 --gnet-pool 2x2
    freeml-tx model.onnx -o build/ --data d.npz --gnet exits=conv1,conv2,epochs=20,pool-op=avg

``--gnet`` alone attaches the head at the default exits; its value lists options of the
`attach-gnet` pass as ``key=value`` pairs, where a value runs up to the next ``key=`` (so
``exits=conv1,conv2`` is one list). ``--gnet-pool`` is the pooled size of every exit (``2x2``), or
one size per exit (``2x2,1x1,none``). The pass goes into the default pipeline after normalize (and
after sparsify when that runs), before quantize: :func:`with_gnet`. The summary and report lines
come from :func:`gnet_summary` / :func:`format_gnet`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from transpiler.errors import InputError

_KEY = re.compile(r"(?:^|,)\s*([a-z][a-z0-9_-]*)\s*=")
LIST_KEYS = ("exits", "pool")


def add_gnet_arguments(parser: argparse.ArgumentParser) -> None:
    """--gnet and --gnet-pool."""
    parser.add_argument("--gnet", nargs="?", const="", default=None, metavar="KEY=VALUE,...",
                        help="attach one shared early-exit classifier (FreeML gNet), trained on --data; "
                             "options of attach-gnet, e.g. exits=conv1,conv2,fc1 or epochs=20")
    parser.add_argument("--gnet-pool", metavar="HxW[,HxW...]",
                        help="pooled size of every gNet exit (default 2x2), or one per exit")


def parse_gnet_options(text: str) -> dict[str, Any]:
    """``"exits=conv1,conv2,epochs=20"`` -> ``{"exits": ["conv1", "conv2"], "epochs": "20"}``."""
    text = text.strip()
    if not text:
        return {}
    keys = list(_KEY.finditer(text))
    if not keys or keys[0].start() != 0:
        raise InputError(f"--gnet '{text}' is not KEY=VALUE,...",
                         hint="e.g. --gnet exits=conv1,conv2,fc1 (options of `freeml-tx passes attach-gnet`)")
    options: dict[str, Any] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        key = m.group(1).replace("_", "-")
        value = text[m.end():end].strip()
        if key in options:
            raise InputError(f"--gnet gives '{key}' twice")
        if not value:
            raise InputError(f"--gnet option '{key}' has no value", hint=f"write {key}=VALUE")
        options[key] = [v.strip() for v in value.split(",") if v.strip()] if key in LIST_KEYS else value
    return options


def gnet_spec_text(args: argparse.Namespace) -> str | None:
    """The ``attach-gnet{...}`` pipeline text the flags ask for, or None without --gnet."""
    from transpiler.pipeline import format_value, parse_pipeline

    gnet = getattr(args, "gnet", None)
    pool = getattr(args, "gnet_pool", None)
    if gnet is None:
        if pool is not None:
            raise InputError("--gnet-pool needs --gnet", hint="add --gnet to attach the gNet head")
        return None
    options = parse_gnet_options(gnet)
    if pool is not None:
        if "pool" in options:
            raise InputError("the pool size is given twice (--gnet pool=... and --gnet-pool)")
        options["pool"] = [p.strip() for p in pool.split(",") if p.strip()]
    parts = []
    for key, value in options.items():
        if isinstance(value, list):
            parts.append(f"{key}=[{','.join(format_value(v) for v in value)}]")
        else:
            # numbers and words stay as typed (the pass's option types convert them)
            parts.append(f"{key}={value if _plain(value) else format_value(value)}")
    text = "attach-gnet" + (f"{{{','.join(parts)}}}" if parts else "")
    parse_pipeline(text)    # a malformed value fails here, with a caret
    return text


def _plain(value: str) -> bool:
    from transpiler.pipeline import parse_pipeline
    from transpiler.errors import PipelineError

    try:
        parse_pipeline(f"p{{k={value}}}")
    except PipelineError:
        return False
    return True


def with_gnet(pipeline: str, args: argparse.Namespace) -> str:
    """``pipeline`` with the attach-gnet spec of the flags inserted before quantize (after normalize
    and sparsify); unchanged without --gnet."""
    from transpiler.pipeline import format_pipeline, parse_pipeline

    spec_text = gnet_spec_text(args)
    if spec_text is None:
        return pipeline
    specs = parse_pipeline(pipeline)
    names = [s.name for s in specs]
    at = next((i for i, n in enumerate(names) if n in ("quantize", "lower")), len(specs))
    at = max(at, max((i + 1 for i, n in enumerate(names) if n in ("normalize", "separate", "sparsify")), default=0))
    specs.insert(at, parse_pipeline(spec_text)[0])
    return format_pipeline(specs)


def gnet_summary(context: Any) -> dict[str, Any] | None:
    """The figures of attach-gnet for the compile summary (None when it did not run)."""
    from passes.attach_gnet import summary

    stats = context.extra.get("attach-gnet")
    return summary(stats) if stats else None


def format_gnet(g: dict[str, Any]) -> list[str]:
    """Summary lines: per-exit accuracy, parameters and FRAM bytes of gNet and of the baseline."""
    from passes.attach_gnet import summary_lines

    return summary_lines(g)


__all__ = ["add_gnet_arguments", "parse_gnet_options", "gnet_spec_text", "with_gnet", "gnet_summary", "format_gnet"]

"""``freeml-tx passes``: every registered pass, one line each (name, level, summary)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("passes", help="list the passes a pipeline can use",
                                   description="List every registered pass (built-in and from the "
                                               "freeml_tx.passes entry point group).")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show options, required/ensured properties and semantics checks")
    return parser


def run(args: argparse.Namespace) -> int:
    from transpiler.pass_infra import registry
    from transpiler.pipeline import describe_options

    passes = registry()
    if not passes:
        print("no passes are registered")
        return 0
    width = max(len(name) for name in passes)
    for name, cls in passes.items():
        print(f"{name:<{width}}  {cls.level:<5}  {cls.summary()}")
        if args.verbose:
            options = describe_options(cls.options_type)
            print(f"{'':<{width}}    options: {options or 'none'}")
            for label, props in (("requires", cls.requires), ("ensures", cls.ensures),
                                 ("invalidates", cls.invalidates)):
                if props:
                    print(f"{'':<{width}}    {label}: {', '.join(sorted(props))}")
            if cls.preserves_semantics:
                print(f"{'':<{width}}    preserves semantics (checked with onnxruntime when verifying)")
    return 0

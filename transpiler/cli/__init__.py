"""The freeml-tx command line: ``freeml-tx [--debug] [--diagnostics json] COMMAND ...``.

Each command is a module of this package listed in :data:`COMMAND_MODULES` with two functions::

    def add_parser(subparsers) -> argparse.ArgumentParser:   # subparsers.add_parser("name", ...)
    def run(args: argparse.Namespace) -> int:                 # the exit code

Modules that do not exist (yet) are skipped, so adding a command is one line in the tuple.
``freeml-tx MODEL.onnx -o DIR ...`` (no command) runs ``compile``. Every :class:`FreemlError` is
printed as one paragraph (or JSON with ``--diagnostics json``) with exit code 2; anything else is an
internal error (exit code 1); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType
from typing import Iterator, NoReturn, Sequence

from transpiler.errors import FreemlError

COMMAND_MODULES: tuple[str, ...] = (
    "passes_cmd",
    "inspect_cmd",
    "compile_cmd",
    "run_cmd",
    "verify_cmd",
    "build_lir_cmd",
    "doctor_cmd",
    "report_cmd",
)


class UsageError(FreemlError):
    """The command line itself is wrong (unknown flag, missing argument)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are FreemlErrors (so --diagnostics json covers them)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, details=[self.format_usage().strip()], hint=f"run '{self.prog} --help'")


def command_modules() -> list[ModuleType]:
    """The command modules that exist, in :data:`COMMAND_MODULES` order."""
    modules = []
    for name in COMMAND_MODULES:
        full = f"{__name__}.{name}"
        if find_spec(full) is not None:
            modules.append(import_module(full))
    return modules


def build_parser() -> Parser:
    """The top-level parser with one subparser per available command."""
    from transpiler import __version__

    parser = Parser(prog="freeml-tx", description="ONNX -> intermittent-safe fixed-point C for MSP430.",
                    epilog="Without a command, `freeml-tx MODEL.onnx -o DIR ...` runs `compile`.")
    parser.add_argument("--version", action="version", version=f"freeml-tx {__version__}")
    _add_global_flags(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in command_modules():
        before = set(subparsers.choices)
        module.add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            subparsers.choices[name].set_defaults(_command_module=module)
    return parser


def _add_global_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    parser.add_argument("--diagnostics", choices=("text", "json"), default="text",
                        help="how errors are printed on stderr (json: one object, for tools)")


def _split_global_flags(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Take --debug and --diagnostics from anywhere on the command line."""
    pre = Parser(add_help=False, allow_abbrev=False)
    _add_global_flags(pre)
    cut = argv.index("--") if "--" in argv else len(argv)
    flags, rest = pre.parse_known_args(argv[:cut])
    return flags, rest + argv[cut:]


def _route_default_command(argv: list[str], commands: Sequence[str]) -> list[str]:
    """``freeml-tx MODEL.onnx ...`` -> ``freeml-tx compile MODEL.onnx ...``."""
    if not argv or argv[0].startswith("-") or argv[0] in commands:
        return argv
    if argv[0].endswith(".onnx") or os.path.sep in argv[0] or os.path.exists(argv[0]):
        if "compile" not in commands:
            raise UsageError("`freeml-tx MODEL.onnx` runs the compile command, which this build does "
                             "not have yet", hint="run `freeml-tx inspect MODEL.onnx` to check the model, "
                                                  "or `freeml-tx --help` for the commands")
        return ["compile", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 1 internal error)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug, diagnostics = "--debug" in args_list, "text"
    try:
        flags, rest = _split_global_flags(args_list)
        debug, diagnostics = flags.debug, flags.diagnostics
        parser = build_parser()
        names = _subparser_names(parser)
        try:
            rest = _route_default_command(rest, names)
            args = parser.parse_args(rest)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        except UsageError as exc:
            if rest and rest[0] in names:  # argparse reports a subcommand's unknown flags at the top
                exc.hint = f"run 'freeml-tx {rest[0]} --help'"
            raise
        module = getattr(args, "_command_module", None)
        if module is None:
            parser.print_help(sys.stderr)
            return 2
        args.argv = rest
        with _graphsurgeon_quiet(not debug):
            return int(module.run(args))
    except FreemlError as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        _report(exc, diagnostics)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        message = f"{type(exc).__name__}: {exc}"
        if diagnostics == "json":
            print(json.dumps({"kind": "InternalError", "message": message, "exit_code": 1}), file=sys.stderr)
        else:
            print(f"internal error: {message}" + ("" if debug else " (re-run with --debug)"), file=sys.stderr)
        return 1


@contextlib.contextmanager
def _graphsurgeon_quiet(quiet: bool) -> Iterator[None]:
    """onnx-graphsurgeon's own ``[W]`` lines (a missing optional module, a map-typed output it cannot
    convert) are noise on the command line: freeml-tx's errors say what matters (``--debug`` keeps them)."""
    if not quiet:
        yield
        return
    import onnx_graphsurgeon as gs

    logger = gs.logger.G_LOGGER
    old = logger.severity
    logger.severity = max(old, logger.ERROR)
    try:
        yield
    finally:
        logger.severity = old


def _subparser_names(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:  # argparse has no public accessor for the subcommands
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _report(exc: FreemlError, diagnostics: str) -> None:
    if diagnostics == "json":
        print(json.dumps({**exc.to_json(), "exit_code": exc.exit_code}), file=sys.stderr)
    else:
        print(exc.render(), file=sys.stderr)

"""One error hierarchy for the whole compiler.

Every error a user can cause is a :class:`FreemlError` carrying *where* (file, node, op, shape, pass)
and *what to do* (hint). The CLI turns it into a one-paragraph message and exit code 2; ``--debug``
adds the traceback. Internal bugs stay ordinary exceptions (exit code 1 with a traceback hint).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Location:
    """Where an error happened; every field is optional."""

    file: str | None = None
    node: str | None = None
    op: str | None = None
    shape: str | None = None
    pass_name: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            pos = self.file
            if self.line is not None:
                pos += f":{self.line}"
                if self.column is not None:
                    pos += f":{self.column}"
            parts.append(pos)
        if self.pass_name:
            parts.append(f"pass '{self.pass_name}'")
        if self.node:
            parts.append(f"node '{self.node}'")
        if self.op:
            parts.append(f"op {self.op}")
        if self.shape:
            parts.append(f"shape {self.shape}")
        return ", ".join(parts)


class FreemlError(Exception):
    """A user-facing error: message, location and a hint saying what to do."""

    exit_code: int = 2

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None,
                 details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()
        self.hint = hint
        self.details = details or []

    def render(self) -> str:
        """The one-paragraph text the CLI prints."""
        where = str(self.location)
        text = f"error: {where}: {self.message}" if where else f"error: {self.message}"
        for line in self.details:
            text += f"\n  {line}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, object]:
        loc = {k: v for k, v in vars(self.location).items() if v is not None}
        return {"kind": type(self).__name__, "message": self.message, "location": loc,
                "hint": self.hint, "details": self.details}


class InputError(FreemlError):
    """The input file is missing, not ONNX, truncated, invalid or uses something we do not support."""


class UnsupportedError(FreemlError):
    """The model uses ops, attributes or shapes the compiler cannot handle."""


class PipelineError(FreemlError):
    """The pipeline text is malformed or names unknown passes/options."""


class PassError(FreemlError):
    """A pass failed; the message names the pass and the pipeline so far."""


class VerificationError(FreemlError):
    """A semantics-preserving pass changed the model's numbers."""


class LirError(FreemlError):
    """The LIR text or program is malformed (with file:line:col)."""


class BudgetError(FreemlError):
    """The model does not fit the memory or energy budget."""


class DataError(FreemlError):
    """The calibration/training data does not match the model's inputs."""


class ToolchainError(FreemlError):
    """A compiler, simulator or build tool is missing or failed."""

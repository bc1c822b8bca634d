"""The training engine's error: a :class:`~transpiler.errors.FreemlError` with a hint.

Unsupported nodes raise :class:`~transpiler.errors.UnsupportedError` and data that does not fit the
network raises :class:`~transpiler.errors.DataError`; everything else the caller can get wrong (an
unknown parameter name, a missing teacher, a loss that is not defined for the network's output) is a
:class:`TrainError`.
"""

from __future__ import annotations

from transpiler.errors import FreemlError


class TrainError(FreemlError):
    """Training cannot run as asked: wrong parameter names, missing labels or teacher, bad options."""

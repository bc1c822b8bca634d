"""Output folders that appear complete or not at all.

Everything is written into a hidden temp folder next to the target; on success it is renamed into
place (replacing an earlier freeml-tx output there), on failure it is removed. A folder that exists,
is not empty and was not made by freeml-tx is never replaced.

    with atomic_output_dir("build") as tmp:
        (tmp / "model.c").write_text(...)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transpiler.errors import FreemlError, Location

MARKER = ".freeml-tx-output"


class AtomicOutputDir:
    """A folder written in a temp place and moved to ``path`` by :meth:`commit`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tmp: Path | None = None

    def open(self) -> Path:
        """Check the target and create the temp folder; returns the temp folder to write into."""
        check_replaceable(self.path)
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent))
        except OSError as exc:
            raise FreemlError(f"cannot create the output folder: {exc.strerror or exc}",
                              location=Location(file=str(self.path))) from exc
        (self.tmp / MARKER).write_text("written by freeml-tx; the folder may be replaced by a new run\n",
                                       encoding="utf-8")
        return self.tmp

    def commit(self) -> Path:
        """Move the temp folder into place (replacing an earlier freeml-tx output)."""
        assert self.tmp is not None, "open() first"
        old: Path | None = None
        try:
            if self.path.exists():
                check_replaceable(self.path)
                old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old",
                                            dir=self.path.parent))
                old.rmdir()
                os.replace(self.path, old)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            if old is not None and not self.path.exists():
                os.replace(old, self.path)
            self.abort()
            raise FreemlError(f"cannot move the output into place: {exc.strerror or exc}",
                              location=Location(file=str(self.path))) from exc
        self.tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Remove the temp folder; the target is left as it was."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def check_replaceable(path: Path) -> None:
    """FreemlError unless ``path`` is absent, an empty folder, or an earlier freeml-tx output."""
    if not path.exists():
        return
    if not path.is_dir():
        raise FreemlError("the output path exists and is not a folder", location=Location(file=str(path)),
                          hint="choose another output folder")
    if (path / MARKER).exists() or not any(path.iterdir()):
        return
    raise FreemlError("the output folder exists and was not made by freeml-tx; not replacing it",
                      location=Location(file=str(path)),
                      hint="choose a new folder or remove this one yourself")


@contextmanager
def atomic_output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp folder; on normal exit it becomes ``path``, on an exception it is removed."""
    out = AtomicOutputDir(path)
    tmp = out.open()
    try:
        yield tmp
    except BaseException:
        out.abort()
        raise
    out.commit()

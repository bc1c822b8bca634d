"""``python -m transpiler``: the freeml-tx command line."""

from __future__ import annotations

import sys

from transpiler.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""The C back end: per-op printers (printers.py), the package writer (writer.py), runtime file selection."""

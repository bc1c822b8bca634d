"""The freeml-tx command line."""

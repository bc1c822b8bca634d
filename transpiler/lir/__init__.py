"""The low-level IR (LIR): buffers, constants and steps close to the generated C.

See docs/lir.md for the text form and the exact fixed-point semantics of every op.
"""

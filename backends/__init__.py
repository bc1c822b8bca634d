"""Back ends: lowering ONNX -> LIR and emitting C; importing this package registers their passes."""

"""Built-in passes, one module per pass; importing this package registers them."""

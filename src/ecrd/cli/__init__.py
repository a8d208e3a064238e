"""The `ecrd` command line, one module per command group."""

"""One module per group of commands; each exposes ``COMMANDS`` (and its button handlers)."""

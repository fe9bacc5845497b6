"""The engine: model loading, vector packs, steering, probes and generation.

Nothing in here knows about the terminal UI; the TUI and the CLI consume the
engine's event stream and call its methods.
"""

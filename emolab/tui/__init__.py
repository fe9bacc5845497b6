"""The lab console: a Textual app that consumes the engine's events and sends it commands."""

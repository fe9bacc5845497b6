"""Experiments over the engine with a pack: the dose-response sweep (emolab sweep)."""

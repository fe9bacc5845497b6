"""Errors that the user caused and can fix: the CLI prints them as one line."""


class EmolabError(Exception):
    """A problem with the user's input, stated in one line, with no traceback."""


class PackError(EmolabError):
    """A vector pack is missing, malformed, or does not fit the model."""


class ModelNotFoundError(EmolabError):
    """No model could be found at any of the places we looked."""


class ContextOverflowError(EmolabError):
    """A prompt does not fit in the model's context window, even alone."""

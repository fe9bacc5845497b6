"""emolab: a terminal lab console for emotion vectors in language models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emolab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

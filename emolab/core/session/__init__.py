"""Sessions: record a chat to replayable JSON, and read it back."""

from emolab.core.session.format import SessionData, SessionError
from emolab.core.session.recorder import SessionRecorder, default_session_path, session_meta
from emolab.core.session.store import load_session

__all__ = ["SessionData", "SessionError", "SessionRecorder", "default_session_path", "load_session", "session_meta"]

"""The real `emolab chat` in a pseudo-terminal: the bundled model, the shipped pack, one message, quit."""

import os
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.slow
SHIPPED_PACK = Path(__file__).resolve().parents[1] / "vectors" / "sonnet-proxy"


def test_chat_in_a_terminal_answers_and_quits_cleanly(tmp_path, bundled_cache):
    session = tmp_path / "smoke.json"
    env = {**os.environ, "TERM": "xterm-256color", "EMOLAB_CACHE": str(bundled_cache), "COLUMNS": "120", "LINES": "40"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "emolab", "chat", "--vectors", str(SHIPPED_PACK), "--max-tokens", "24", "--session", str(session)],
        env=env,
        dimensions=(40, 120),
        timeout=180,
        encoding="utf-8",
        codec_errors="replace",
    )
    try:
        child.expect("Message the model")  # the model is loaded and the prompt is enabled
        child.send("Hello! How are you?")
        child.send("\r")
        child.expect("tok/s")  # the status bar shows the speed once tokens stream
        child.expect("context [1-9]")
        for _ in range(60):  # wait until the reply has ended and the session is saved
            if session.exists() and '"role":"assistant"' in session.read_text():
                break
            child.expect([pexpect.TIMEOUT], timeout=1)
        child.sendcontrol("q")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    text = session.read_text()
    assert '"role":"assistant"' in text and '"text":"Hello! How are you?"' in text

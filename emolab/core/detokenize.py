"""Turning a stream of token ids into a stream of text pieces.

Decoding one id at a time breaks multi-byte characters and word-initial spaces, so each new
piece is the difference between decoding a short window with and without the new token.
"""

from __future__ import annotations


class IncrementalDecoder:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # window start: a few tokens back, so that spacing decodes right
        self.read = 0  # tokens already turned into text

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        before = self.tokenizer.decode(self.ids[self.prefix : self.read])
        after = self.tokenizer.decode(self.ids[self.prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before) :]
        return ""  # an incomplete character: its text comes with a later token

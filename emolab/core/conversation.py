"""The chat history, rendered through the model's own chat template, and fitted to the context."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from emolab.core.errors import ContextOverflowError

FALLBACK_TEMPLATE_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class ReplyTokens:
    """An assistant message's token ids as the model wrote them, and the context position of the first."""

    start: int
    ids: tuple[int, ...]


@dataclass
class Conversation:
    system: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    window_start: int = 0  # messages before this were truncated away from the context
    replies: dict[int, ReplyTokens] = field(default_factory=dict)  # message index → its tokens, where known

    def add(self, role: str, content: str, reply: ReplyTokens | None = None) -> None:
        if reply is not None:
            self.replies[len(self.messages)] = reply
        self.messages.append({"role": role, "content": content})

    def reply_at(self, position: int) -> tuple[int, ReplyTokens] | None:
        """The assistant message whose reply holds the token at this context position (the latest, if
        truncation made two overlap), with its tokens."""
        for index in sorted(self.replies, reverse=True):
            reply = self.replies[index]
            if reply.start <= position < reply.start + len(reply.ids):
                return index, reply
        return None

    def keep(self, count: int) -> None:
        """Keep only the first `count` messages (a branch continues from an earlier one)."""
        del self.messages[count:]
        self.replies = {index: reply for index, reply in self.replies.items() if index < count}
        self.window_start = min(self.window_start, max(0, count - 1))

    def copy(self) -> Conversation:
        """A snapshot that later turns do not change: a branch of the chat to go back to."""
        return copy.deepcopy(self)

    def to_json(self) -> dict:
        """The snapshot as JSON, so that it can cross to the console and back (a branch to switch to)."""
        return {
            "system": self.system,
            "messages": [dict(message) for message in self.messages],
            "window_start": self.window_start,
            "replies": {str(index): [reply.start, list(reply.ids)] for index, reply in self.replies.items()},
        }

    @classmethod
    def from_json(cls, document: dict) -> Conversation:
        replies = {int(index): ReplyTokens(start, tuple(ids)) for index, (start, ids) in document["replies"].items()}
        messages = [{"role": m["role"], "content": m["content"]} for m in document["messages"]]
        return cls(document.get("system"), messages, document.get("window_start", 0), replies)

    def visible(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages[self.window_start :]

    def drop_last_reply(self) -> bool:
        if self.messages and self.messages[-1]["role"] == "assistant":
            self.replies.pop(len(self.messages) - 1, None)
            self.messages.pop()
            return True
        return False

    def reset(self) -> None:
        self.messages.clear()
        self.replies.clear()
        self.window_start = 0


PLAIN_TRANSCRIPT_NOTE = "no chat template: plain transcript"  # what the console and `run` say for a base model


def prompt_format(tokenizer) -> str:
    """ "chat" when the model has a chat template, else "plain": a base model, given a plain transcript."""
    return "chat" if getattr(tokenizer, "chat_template", None) else "plain"


def prompt_text(tokenizer, messages: list[dict[str, str]]) -> str:
    """`messages` plus the assistant's turn header, via the model's chat template, or for a base
    model a plain transcript ("User: …" lines, then "Assistant:" for the model to continue)."""
    if prompt_format(tokenizer) == "chat":
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    text = "".join(f"{FALLBACK_TEMPLATE_ROLES.get(m['role'], m['role'])}: {m['content']}\n" for m in messages)
    return text + f"{FALLBACK_TEMPLATE_ROLES['assistant']}:"


def prompt_ids(tokenizer, text: str) -> list[int]:
    """A chat template writes its own special tokens; a plain transcript gets the tokenizer's (a BOS)."""
    return list(tokenizer(text, add_special_tokens=prompt_format(tokenizer) == "plain")["input_ids"])


def end_of_plain_reply(text: str) -> str:
    """A base model's reply up to where it starts writing the next turn of the transcript itself."""
    for role in FALLBACK_TEMPLATE_ROLES.values():
        text = text.split(f"\n{role}:")[0]
    return text


def writes_next_turn(pieces: list[str]) -> bool:
    """Whether a base model's reply (its decoded pieces so far) has begun the transcript's next turn
    ("\nUser:"): its end of turn, as EOS is a chat model's. Only the tail is looked at."""
    tail = "".join(pieces[-24:])
    return end_of_plain_reply(tail) != tail


def render_prompt(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of `messages` plus the assistant's turn header (see `prompt_text`)."""
    return prompt_ids(tokenizer, prompt_text(tokenizer, messages))


def fit_to_context(conversation: Conversation, tokenizer, budget: int) -> tuple[list[int], int]:
    """Drop the oldest messages until the prompt is at most `budget` tokens.

    Returns the prompt ids and how many messages were dropped now. The latest message is
    never dropped: if it alone does not fit, that is an error the user must see.
    """
    dropped = 0
    while True:
        ids = render_prompt(tokenizer, conversation.visible())
        if len(ids) <= budget:
            return ids, dropped
        if conversation.window_start >= len(conversation.messages) - 1:
            raise ContextOverflowError(
                f"the message is {len(ids)} tokens with the chat template, but the context window leaves "
                f"{budget} for the prompt; shorten it or lower --max-tokens"
            )
        # Drop a whole exchange at a time so the history never starts with a reply.
        step = 2 if conversation.messages[conversation.window_start]["role"] == "user" else 1
        step = min(step, len(conversation.messages) - 1 - conversation.window_start)
        conversation.window_start += step
        dropped += step

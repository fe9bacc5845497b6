"""The chat as a tree of replies: a regeneration, a branch and each side of a compare stay, as
siblings (replies to the same message), and one path through the tree is shown.

Plain Python (no Textual). A reply keeps the turns the transcript shows for it (its prompt
turn, then its reply turn), the session's number for it (what a `history` note names), and
the engine's conversation as it goes on from it, to switch the engine back to that branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emolab.tui.turns import TokenView, TurnView


@dataclass(eq=False)
class Reply:
    turns: list[TurnView]
    parent: Reply | None
    children: list[Reply] = field(default_factory=list)
    shown: int = 0  # which child the shown path goes on with
    number: int | None = None  # replies in the order the session finished them, compare lanes included
    history: dict | None = None  # Conversation.to_json() as the engine went on from this reply

    @property
    def reply_turn(self) -> TurnView | None:
        return next((turn for turn in reversed(self.turns) if turn.role == "reply"), None)

    def head(self) -> list[TurnView]:
        """What a new answer to the same message shares with this one: the message's prompt turn."""
        return self.turns[:1] if self.turns and self.turns[0].role == "prompt" else []

    def siblings(self) -> list[Reply]:
        return self.parent.children if self.parent is not None else [self]


class ReplyTree:
    def __init__(self) -> None:
        self.root = Reply([], None)  # before the first message

    def path(self) -> list[Reply]:
        """The shown replies, first to last."""
        path, node = [], self.root
        while node.children:
            node = node.children[node.shown]
            path.append(node)
        return path

    def last(self) -> Reply:
        path = self.path()
        return path[-1] if path else self.root

    def turns(self, upto: Reply | None = None) -> list[TurnView]:
        """The shown turns; with `upto`, only those of the path down to that reply (itself included)."""
        turns: list[TurnView] = []
        for reply in self.path() if upto is not self.root else []:
            turns += reply.turns
            if reply is upto:
                break
        return turns

    def add(self, parent: Reply, turns: list[TurnView], *, shown: bool = True) -> Reply:
        reply = Reply(turns, parent)
        parent.children.append(reply)
        if shown:
            parent.shown = len(parent.children) - 1
        return reply

    def owner(self, token: TokenView) -> Reply | None:
        """The shown reply whose reply turn holds this token."""
        for reply in reversed(self.path()):
            turn = reply.reply_turn
            if turn is not None and any(mine is token for mine in turn.tokens):
                return reply
        return None

    def deepest_with_siblings(self) -> Reply | None:
        return next((reply for reply in reversed(self.path()) if len(reply.siblings()) > 1), None)

    def switch(self, reply: Reply, step: int) -> Reply | None:
        """Show the sibling `step` away from this reply; None if there is none that way."""
        siblings = reply.siblings()
        at = siblings.index(reply) + step
        if reply.parent is None or not 0 <= at < len(siblings):
            return None
        reply.parent.shown = at
        return siblings[at]

    def label(self) -> list[TurnView]:
        """Name each reply's branch ("branch 2/3") where its message has more than one (a compare's
        side B too, shown in its pane though not on the path); returns the turns whose label changed."""
        changed, waiting = [], list(self.root.children)
        while waiting:
            reply = waiting.pop()
            waiting += reply.children
            siblings = reply.siblings()
            label = f"branch {siblings.index(reply) + 1}/{len(siblings)}" if len(siblings) > 1 else ""
            turn = reply.reply_turn
            if turn is not None and turn.label != label:
                turn.label = label
                changed.append(turn)
        return changed

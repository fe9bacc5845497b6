"""Compares and branches in the chat: the reply tree (tui/branches.py), the engine's history and
the session, kept in step.

Every generation is one reply of the tree (a compare, two): `begin` says where it goes before
the command is sent, `ended` files it with the conversation the engine goes on with from it.
Switching to a sibling shows that branch, sends its conversation to the engine (`use_history`)
and records a `history` note, so the next message continues from what is shown, live and in
`replay --verify` alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emolab.core.events import BranchStarted, LaneEvent, TurnFinished
from emolab.core.recording import NotRecording, SessionSink
from emolab.tui.branches import Reply, ReplyTree
from emolab.tui.engine_link import EngineLink
from emolab.tui.lanes import CompareLog
from emolab.tui.turns import TokenView, TurnView
from emolab.tui.view import ConsoleView


@dataclass
class Pending:
    """The reply being written: what kind, under which reply, after which shared turns."""

    kind: str  # "chat", "regenerate", "branch" or "compare"
    parent: Reply
    head: list[TurnView]
    start: int  # its own turns are the transcript's from here on
    source: Reply | None = None  # the reply a branch keeps tokens of
    numbers: dict[int | None, int] = field(default_factory=dict)  # lane → the session's number for it


class BranchController:
    def __init__(self, link: EngineLink, view: ConsoleView) -> None:
        self.link = link
        self.view = view
        self.recorder: SessionSink = NotRecording()  # the chat screen's, once the engine is up
        self.tree = ReplyTree()
        self.finished = 0  # replies the session holds: the recorder numbers them in this order
        self.pending: Pending | None = None
        self.focus: Reply | None = None  # the reply the branch keys moved to last
        view.kept_of = self._kept_of
        view.fold_compare = self._folded

    def clear(self) -> None:
        """A new chat: a new tree (the session keeps counting its replies)."""
        self.tree, self.pending, self.focus = ReplyTree(), None, None

    # -- a generation's reply ------------------------------------------------------------------------

    def begin(self, kind: str, source: Reply | None = None) -> None:
        """Before the command goes: show the turns the new reply follows, and note where it belongs."""
        self.view.close_compare()
        last = self.tree.last()
        if kind == "chat" or last is self.tree.root:
            parent, head = last, []
        elif kind == "branch":
            parent, head = source.parent, source.turns[:-1]
        else:  # a regeneration or a compare answers the last message again
            parent, head = last.parent, last.head()
        turns = self.tree.turns(parent) + head
        if kind != "compare":  # a compare's lanes show in their own panes until it closes
            self.view.show_turns(turns)
        self.pending = Pending(kind, parent, head, len(turns), source)

    def saw(self, events) -> None:
        """Count the replies as the recorder does (one per TurnFinished, compare lanes included)."""
        for event in events:
            lane = event.lane if isinstance(event, LaneEvent) else None
            if isinstance(event.event if lane is not None else event, TurnFinished):
                if self.pending is not None:
                    self.pending.numbers[lane] = self.finished
                self.finished += 1

    def ended(self, histories: list[dict]) -> None:
        """The generation ended: its reply (or both of a compare's) joins the tree, shown."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        if pending.kind == "compare":
            compare = self.view.compare
            if compare is None or compare.finished is None:
                return
            for lane in (0, 1):
                reply = self.tree.add(pending.parent, pending.head + compare.lanes[lane].turns, shown=lane == 0)
                self._file(reply, pending, lane, histories)
            self.tree.label()
            for lane in (0, 1):  # the panes show the labels too
                self.view.panes.show_lane(lane, compare.lanes[lane].turns)
            return
        own = self.view.turn_log.turns[pending.start :]
        if not own:
            return  # it failed before its first event
        self._file(self.tree.add(pending.parent, pending.head + own), pending, None, histories)
        self._show()

    @staticmethod
    def _file(reply: Reply, pending: Pending, lane: int | None, histories: list[dict]) -> None:
        reply.number = pending.numbers.get(lane)
        at = lane or 0
        reply.history = histories[at] if at < len(histories) and reply.number is not None else None

    def _kept_of(self, event: BranchStarted) -> list[TokenView]:
        pending = self.pending
        if pending is None or pending.source is None or pending.source.reply_turn is None:
            return []
        return pending.source.reply_turn.tokens[: event.kept_tokens]

    def _folded(self, compare: CompareLog) -> None:
        """The compare view closed: the transcript shows the tree, lane 0's reply in it."""
        self._show()

    def _show(self) -> None:
        changed = self.tree.label()
        self.view.show_turns(self.tree.turns(), changed)

    # -- the commands ---------------------------------------------------------------------------------

    def compare(self, other: dict[str, float] | None = None) -> bool:
        """Answer the last message twice: the sliders, and `other` (None: no steering). False if not now."""
        if self.tree.last() is self.tree.root:
            self.view.notify("there is no message to answer twice yet")
            return False
        self.begin("compare")
        self.link.compare(other)
        return True

    def branch_here(self) -> bool:
        """Write the selected token's reply on from that token; the reply as it was stays a sibling."""
        if self.view.compare is not None:
            self.view.notify("close the compare first (the same key), then branch a reply")
            return False
        token = self.view.selected_token()
        reply = self.tree.owner(token) if token is not None else None
        if reply is None:
            self.view.notify("select a token of a reply first (click it, or F2/F3)")
            return False
        self.begin("branch", reply)
        self.link.branch_at(token.position)
        return True

    def switch(self, step: int) -> None:
        """Show the previous (-1) or next (+1) sibling of the selected token's reply (else of the reply
        switched last, else of the last reply that has one); the engine goes on from what is shown."""
        self.view.close_compare()
        token = self.view.selected_token()
        path = self.tree.path()
        reply = self.tree.owner(token) if token is not None else None
        reply = reply or (self.focus if self.focus in path else None) or self.tree.deepest_with_siblings()
        if reply is None or len(reply.siblings()) < 2:
            self.view.notify("this reply has no other branch")
            return
        before = reply.siblings().index(reply)
        chosen = self.tree.switch(reply, step)
        if chosen is None:
            self.view.notify(f"no {'earlier' if step < 0 else 'later'} branch")
            return
        last = self.tree.last()
        if last.history is None:
            reply.parent.shown = before
            self.view.notify("that branch cannot be continued: its engine stopped before it ended")
            return
        self.focus = chosen
        self.link.use_history(last.history)
        self.recorder.record_note("history", reply=last.number)
        if token is not None and self.tree.owner(token) is None:
            self.view.follow_live()
        self._show()

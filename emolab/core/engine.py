"""The generation engine: a streaming decode loop with live steering and per-token probes.

    engine = Engine(loaded_model, pack)
    engine.steering.set("calm", 0.3)          # from any thread, at any time
    for event in engine.chat("hello"):        # TurnStarted, Token..., TurnFinished
        ...
    engine.stop()                             # from any thread: ends the reply after this token
    engine.branch_at(position)                # the reply again from one of its tokens, the cache kept
    engine.compare()                          # the last message answered twice: sliders, and none

One engine runs one generation at a time; run it in a worker thread and read its events.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import torch

from emolab.core.compare import COMPARE_MODES, Lane, choose_mode, first_difference
from emolab.core.conversation import (
    Conversation,
    ReplyTokens,
    end_of_plain_reply,
    fit_to_context,
    prompt_format,
    writes_next_turn,
)
from emolab.core.decoders import open_decoder
from emolab.core.detokenize import IncrementalDecoder
from emolab.core.devices import intra_op_threads
from emolab.core.errors import ContextOverflowError, EmolabError
from emolab.core.events import (
    BranchStarted,
    CompareFinished,
    CompareStarted,
    Event,
    LaneEvent,
    Token,
    Truncated,
    TurnFinished,
    TurnStarted,
)
from emolab.core.models import LoadedModel
from emolab.core.pack import VectorPack
from emolab.core.probes import Probe
from emolab.core.sampler import Sampler
from emolab.core.sampling import Sampling
from emolab.core.smoothing import Smoother
from emolab.core.steering import SteeringSnapshot, SteeringState, SteeringVectors, resolve_steer_layers

NO_STEERING = SteeringSnapshot(0, MappingProxyType({}))


class Engine:
    def __init__(
        self,
        model: LoadedModel,
        pack: VectorPack | None = None,
        *,
        sampling: Sampling | None = None,
        system_prompt: str | None = None,
        decoder: str = "auto",
        decode_threads: int | None = None,
        steer_layers: Sequence[int] | None = None,
    ):
        """decode_threads: intra-op threads for the token-by-token phase (None: the process's own);
        the prompt is always read with the process's threads. steer_layers: stored layers of the
        pack to steer instead of its own `steer_layers`."""
        self.loaded = model
        self.pack = pack
        self.sampling = sampling or Sampling()
        self.conversation = Conversation(system=system_prompt)
        self.sampler = Sampler(self.sampling.seed)
        self.started = time.perf_counter()
        self.decode_threads = decode_threads
        self._next_index = 0
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._cache = None
        self._cached_ids: list[int] = []
        self._eos_ids = _eos_ids(model)
        self._plain = prompt_format(model.tokenizer) == "plain"  # a base model ends its turn with "\nUser:"
        # After a compare: the conversation as it would go on with lane 1's reply (for `use_history`).
        self.compared: Conversation | None = None
        # Replays set this: token index → the steering state that must choose that token.
        self.schedule: Callable[[int], Mapping[str, float] | None] | None = None

        if pack is not None:
            pack.check_model(model.hidden_size, model.num_layers, model.reference)
            self.smoother = Smoother(pack.smoothing_half_life)
            self.steering: SteeringState | None = SteeringState(pack)
            self.probe: Probe | None = Probe(pack, device=model.layer_device(pack.probe_layer))
            self.steer_layers = resolve_steer_layers(pack, steer_layers)
            devices = {layer: model.layer_device(layer) for layer in self.steer_layers}
            self._vectors: SteeringVectors | None = SteeringVectors(
                pack, device_of=devices, dtype=model.dtype, layers=self.steer_layers
            )
        else:
            self.steer_layers = []
            self.smoother = Smoother(0)
            self.steering = None
            self.probe = None
            self._vectors = None
        self.decoder = open_decoder(
            model,
            probe_layer=pack.probe_layer if pack is not None else None,
            steer_layers=self.steer_layers,
            kind=decoder,
        )

    # -- commands (any thread) ------------------------------------------------------------------

    def stop(self) -> None:
        """End the current reply after the token being computed."""
        self._stop.set()

    def reset(self) -> None:
        """Start a new chat: empty history, empty cache, the seed restarted."""
        with self._busy_guard():
            self.conversation.reset()
            self._cache = None
            self._cached_ids = []
            self.sampler.reseed(self.sampling.seed)

    def set_sampling(self, sampling: Sampling) -> None:
        if sampling.seed != self.sampling.seed:
            self.sampler.reseed(sampling.seed)
        self.sampling = sampling

    @property
    def context_used(self) -> int:
        return len(self._cached_ids)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    # -- generation (the worker thread) --------------------------------------------------------

    def chat(self, text: str, sampling: Sampling | None = None) -> Iterator[Event]:
        """Add a user message and stream the reply."""
        if not text.strip():
            raise EmolabError("the message is empty")
        if self._busy.locked():
            raise EmolabError("the engine is already generating; stop it first")
        self.conversation.add("user", text)
        return self._reply(sampling)

    def regenerate(self, sampling: Sampling | None = None) -> Iterator[Event]:
        """Replace the last reply with a new one."""
        if not self.conversation.drop_last_reply() and not self.conversation.messages:
            raise EmolabError("there is no reply to regenerate")
        return self._reply(sampling)

    def branch_at(self, position: int, sampling: Sampling | None = None) -> Iterator[Event]:
        """Keep a reply up to its token at this context position and write on from there with the
        steering now. The KV cache is cropped to that token, not computed again (where the reply is
        the one in the cache). The messages after it leave the conversation: the caller keeps them,
        as the sibling branch (`conversation.copy()` before, `use_history` to go back)."""
        if self._busy.locked():
            raise EmolabError("the engine is already generating; stop it first")
        found = self.conversation.reply_at(position)
        if found is None:
            raise EmolabError(f"position {position} is not a token of a reply in this conversation")
        message, reply = found
        self.conversation.keep(message)
        return self._reply(sampling, kept=list(reply.ids[: position - reply.start + 1]))

    def use_history(self, conversation: Conversation) -> None:
        """Continue from another branch of the chat (a snapshot taken with `conversation.copy()`);
        the next prompt reuses whatever prefix the cache shares with it."""
        with self._busy_guard():
            self.conversation = conversation.copy()

    def compare(
        self,
        other: Mapping[str, float] | None = None,
        sampling: Sampling | None = None,
        *,
        steering: Mapping[str, float] | None = None,
        mode: str = "auto",
    ) -> Iterator[Event]:
        """Answer the last user message twice, side by side: lane 0 under `steering` (default: the
        sliders now, held for the whole reply), lane 1 under `other` (default: no steering). Both
        sample with the seed restarted, so only the steering differs. The conversation goes on with
        lane 0's reply. mode: "batched", "interleaved" or "auto" (the faster here, measured)."""
        if self.steering is None:
            raise EmolabError("a compare needs a vector pack: it compares steering")
        if mode not in COMPARE_MODES:
            raise EmolabError(f"unknown compare mode {mode!r}; choose one of {', '.join(COMPARE_MODES)}")
        if self._busy.locked():
            raise EmolabError("the engine is already generating; stop it first")
        mode = choose_mode(mode, self.decoder)
        if not any(message["role"] == "user" for message in self.conversation.messages):
            raise EmolabError("there is no message to answer twice yet")
        states = (
            self.steering.snapshot() if steering is None else self.steering.numbered(steering),
            self.steering.numbered(other or {}),
        )
        self.conversation.drop_last_reply()
        return self._compare(states, sampling or self.sampling, mode)

    def _prompt(self, sampling: Sampling, kept: int = 0):
        """Fit the conversation to the context (yielding Truncated); returns the prompt ids."""
        budget = self.loaded.context_window - min(sampling.max_tokens, self.loaded.context_window // 2) - kept
        try:
            ids, dropped = fit_to_context(self.conversation, self.loaded.tokenizer, budget)
        except ContextOverflowError:
            if self.conversation.messages and self.conversation.messages[-1]["role"] == "user":
                self.conversation.messages.pop()  # the message that cannot fit is not kept
            raise
        if dropped:
            yield Truncated(dropped, len(ids), self.loaded.context_window, self.elapsed())
        return ids

    def _reply(self, sampling: Sampling | None, kept: list[int] | None = None) -> Iterator[Event]:
        """Stream a reply to the conversation; `kept`: the reply's first tokens, already written (a branch)."""
        sampling = sampling or self.sampling
        kept = kept or []
        with self._busy_guard(), torch.inference_mode(), self.decoder:
            self._stop.clear()
            prompt = yield from self._prompt(sampling, len(kept))
            ids = prompt + kept
            reused, refed = self._reuse_cache(ids)
            self.smoother.reset()
            if kept:
                yield BranchStarted(
                    len(self.conversation.messages), len(ids) - 1, len(kept), reused - refed, self.elapsed()
                )
            else:
                yield TurnStarted(len(ids), reused - refed, self.loaded.context_window, self.elapsed())
            snapshot = self._snapshot(fed=len(ids) - reused)
            logits, readouts = self._forward(ids[reused - refed :], snapshot)
            if refed and readouts is not None:
                readouts = readouts[refed:]  # the prefix fed again was read before
            if not kept:  # a branch's context was read before: its tokens are the sibling's
                yield from self._token_events(ids[reused:], reused, readouts, snapshot, "prompt")

            reply = IncrementalDecoder(self.loaded.tokenizer)
            head = "".join(reply.push(token_id) for token_id in kept)
            pieces: list[str] = []
            began = time.perf_counter()
            reason = "max_tokens"
            try:
                with intra_op_threads(self.decode_threads):
                    while len(reply.ids) < sampling.max_tokens + len(kept):
                        chosen_under = snapshot
                        token_id = self.sampler.choose(logits, sampling)
                        if token_id in self._eos_ids or (self._plain and writes_next_turn(pieces)):
                            reason = "eos"
                            break
                        if self._stop.is_set():
                            reason = "stopped"
                            break
                        if len(self._cached_ids) >= self.loaded.context_window:
                            reason = "context_full"
                            break
                        snapshot = self._snapshot(fed=1)
                        logits, readouts = self._forward([token_id], snapshot)
                        piece = reply.push(token_id)
                        pieces.append(piece)
                        yield self._token_event(
                            token_id,
                            piece,
                            len(self._cached_ids) - 1,
                            readouts[0] if readouts is not None else None,
                            chosen_under,
                            "reply",
                        )
            finally:
                text = self._said(head + "".join(pieces))
                self.conversation.add("assistant", text, ReplyTokens(len(prompt), tuple(reply.ids)))
            seconds = time.perf_counter() - began
            count = len(pieces)
            yield TurnFinished(
                reason, text, count, seconds, self.elapsed(), tokens_per_second=count / seconds if seconds > 0 else 0.0
            )

    def _compare(self, states: tuple[SteeringSnapshot, SteeringSnapshot], sampling: Sampling, mode: str):
        vectors = self._vectors
        assert vectors is not None  # compare() refuses to start without a pack
        with self._busy_guard(), torch.inference_mode(), self.decoder:
            self._stop.clear()
            ids = yield from self._prompt(sampling)
            reused, refed = self._reuse_cache(ids)
            reused -= refed  # a rebuilt sliding-window cache: its prefix is read, and shown, again
            yield CompareStarted(len(ids), reused, (states[0].strengths, states[1].strengths), mode, self.elapsed())
            fresh, base = ids[reused:], self.decoder.copy_cache(self._cache)
            lanes = []
            for number, state in enumerate(states):
                lane = Lane(
                    number,
                    self._cache if number == 0 else base,
                    list(ids[:reused]),
                    state,
                    vectors.compute(state.strengths),
                    Sampler(sampling.seed),
                    Smoother(self.smoother.half_life),
                    IncrementalDecoder(self.loaded.tokenizer),
                )
                lane.logits, readouts = self._lane_forward(lane, fresh)
                lanes.append(lane)
                pieces = IncrementalDecoder(self.loaded.tokenizer)
                for offset, token_id in enumerate(fresh):
                    yield LaneEvent(
                        number,
                        self._token_event(
                            token_id,
                            pieces.push(token_id),
                            reused + offset,
                            readouts[offset],
                            state,
                            "prompt",
                            lane.smoother,
                        ),
                    )
            began = time.perf_counter()
            self._cache, self._cached_ids = None, []  # until lane 0's is known good
            with intra_op_threads(self.decode_threads):
                yield from self._decode_lanes(lanes, sampling, batched=mode == "batched")
            seconds = time.perf_counter() - began
            first, second = lanes
            self._cache, self._cached_ids = first.cache, first.ids
            self.compared = self.conversation.copy()
            self.compared.add("assistant", self._said(second.text), ReplyTokens(len(ids), tuple(second.reply.ids)))
            self.conversation.add("assistant", self._said(first.text), ReplyTokens(len(ids), tuple(first.reply.ids)))
            counts = (len(lanes[0].reply.ids), len(lanes[1].reply.ids))
            yield CompareFinished(
                first_difference(lanes[0].reply.ids, lanes[1].reply.ids),
                counts,
                seconds,
                self.elapsed(),
                tokens_per_second=sum(counts) / seconds if seconds > 0 else 0.0,
            )

    def _decode_lanes(self, lanes: list[Lane], sampling: Sampling, *, batched: bool) -> Iterator[Event]:
        """Both lanes token by token: in one batch of two per step while both write (`batched`), else
        one forward pass each. A lane that ends hands the other its own cache."""
        stacked = self.decoder.stack_caches([lane.cache for lane in lanes]) if batched else None
        active = list(lanes)
        while active:
            feeding = []
            for lane in list(active):
                reason, token_id = self._lane_choice(lane, sampling)
                if reason is None:
                    feeding.append((lane, token_id))
                    continue
                active.remove(lane)
                count = len(lane.reply.ids)
                yield LaneEvent(lane.number, TurnFinished(reason, self._said(lane.text), count, 0.0, self.elapsed()))
            if stacked is not None and len(feeding) < len(lanes):  # one lane ended: no more batches
                for lane in lanes:
                    lane.cache = self.decoder.lane_cache(stacked, lane.number)
                stacked = None
            if stacked is not None:
                logits, residuals = self.decoder.forward_lanes(
                    [token for _, token in feeding], stacked, [lane.additions for lane, _ in feeding]
                )
                readouts = self._lane_probe.read(residuals)
                for row, (lane, token_id) in enumerate(feeding):
                    lane.ids.append(token_id)
                    lane.logits = logits[row]
                    yield self._lane_token(lane, token_id, readouts[row])
            else:
                for lane, token_id in feeding:
                    lane.logits, readouts = self._lane_forward(lane, [token_id])
                    yield self._lane_token(lane, token_id, readouts[0])
        if stacked is not None:
            for lane in lanes:
                lane.cache = self.decoder.lane_cache(stacked, lane.number)

    def _lane_choice(self, lane: Lane, sampling: Sampling) -> tuple[str | None, int]:
        """The lane's next token, or why its reply ends (the checks of the chat's decode loop, in order)."""
        if len(lane.reply.ids) >= sampling.max_tokens:
            return "max_tokens", -1
        assert lane.logits is not None  # each lane is fed its prompt before its first choice
        token_id = lane.sampler.choose(lane.logits, sampling)
        if token_id in self._eos_ids or (self._plain and writes_next_turn(lane.pieces)):
            return "eos", token_id
        if self._stop.is_set():
            return "stopped", token_id
        if len(lane.ids) >= self.loaded.context_window:
            return "context_full", token_id
        return None, token_id

    def _said(self, text: str) -> str:
        """A reply's text for the conversation: a base model's without the next turn it began."""
        return end_of_plain_reply(text) if self._plain else text

    def _lane_forward(self, lane: Lane, ids: list[int]):
        logits, residuals = self.decoder.forward(ids, lane.cache, lane.additions)
        lane.ids.extend(ids)
        return logits, self._lane_probe.read(residuals)

    @property
    def _lane_probe(self) -> Probe:
        assert self.probe is not None  # compare() refuses to start without a pack
        return self.probe

    def _lane_token(self, lane: Lane, token_id: int, readout: np.ndarray) -> LaneEvent:
        piece = lane.reply.push(token_id)
        lane.pieces.append(piece)
        return LaneEvent(
            lane.number,
            self._token_event(token_id, piece, len(lane.ids) - 1, readout, lane.state, "reply", lane.smoother),
        )

    def read_text(self, text: str) -> Iterator[Token]:
        """Probe readouts for a plain text (no chat template, no steering, its own cache)."""
        if self.probe is None:
            raise EmolabError("reading a text needs a vector pack")
        ids = list(self.loaded.tokenizer(text, add_special_tokens=True)["input_ids"])
        if not ids:
            raise EmolabError("the text is empty")
        if len(ids) > self.loaded.context_window:
            raise ContextOverflowError(
                f"the text is {len(ids)} tokens, but the context window is {self.loaded.context_window}"
            )
        with self._busy_guard(), torch.inference_mode(), self.decoder:
            _, residuals = self.decoder.forward(ids, self.decoder.new_cache(), {})
            readouts = self.probe.read(residuals)
            self.smoother.reset()
            yield from self._token_events(ids, 0, readouts, NO_STEERING, "text")

    def log_probs(self, context: list[int], continuation: list[int]) -> np.ndarray:
        """Each continuation token's log-probability after `context` with no steering (its own cache):
        how plausible the unsteered model finds, say, a steered reply."""
        if not continuation:
            return np.zeros(0, dtype=np.float32)
        if not context:
            raise EmolabError("scoring a text needs at least one token of context")
        ids = context + continuation[:-1]  # the last token predicts nothing that is scored
        if len(ids) > self.loaded.context_window:
            raise ContextOverflowError(
                f"the text is {len(ids)} tokens, but the context window is {self.loaded.context_window}"
            )
        with self._busy_guard(), torch.inference_mode(), self.decoder:
            logits, _ = self.decoder.forward(ids, self.decoder.new_cache(), {}, logits_for=len(continuation))
            chosen = torch.tensor(continuation, device=logits.device)[:, None]
            return torch.log_softmax(logits.float(), dim=-1).gather(1, chosen)[:, 0].cpu().numpy()

    # -- internals ------------------------------------------------------------------------------

    def _snapshot(self, fed: int = 0) -> SteeringSnapshot:
        """The state for the next forward pass, which feeds `fed` tokens and chooses the token after them."""
        if self.steering is None:
            return NO_STEERING
        if self.schedule is not None:
            planned = self.schedule(self._next_index + fed)  # the index the chosen token will get
            if planned is not None:
                self.steering.update(planned, replace=True)
        return self.steering.snapshot()

    def _reuse_cache(self, ids: list[int]) -> tuple[int, int]:
        """Keep the cached prefix that the new prompt shares; at least one token must be new.

        Returns the length of that prefix, and how much of it must be fed again: a cache that cannot
        drop tokens (a sliding window that is full) is rebuilt from the start instead.
        """
        shared = 0
        limit = min(len(self._cached_ids), len(ids) - 1)
        while shared < limit and self._cached_ids[shared] == ids[shared]:
            shared += 1
        refed = 0
        if self._cache is None or shared == 0:
            self._cache = self.decoder.new_cache()
            shared = 0
        elif not self.decoder.crop(self._cache, shared):
            self._cache = self.decoder.new_cache()
            refed = shared
        self._cached_ids = self._cached_ids[: shared - refed]
        return shared, refed

    def _forward(self, ids: list[int], snapshot: SteeringSnapshot):
        """Feed `ids` through the model; return the next-token logits and the probe readouts."""
        additions = self._vectors.for_snapshot(snapshot) if self._vectors is not None else {}
        logits, residuals = self.decoder.forward(ids, self._cache, additions)
        self._cached_ids.extend(ids)
        readouts = self.probe.read(residuals) if self.probe is not None else None
        return logits, readouts

    def _token_events(self, ids, start, readouts, snapshot, source) -> Iterator[Token]:
        decoder = IncrementalDecoder(self.loaded.tokenizer)
        for offset, token_id in enumerate(ids):
            piece = decoder.push(token_id)
            readout = readouts[offset] if readouts is not None else None
            yield self._token_event(token_id, piece, start + offset, readout, snapshot, source)

    def _token_event(
        self, token_id, piece, position, readout: np.ndarray | None, snapshot, source, smoother: Smoother | None = None
    ) -> Token:
        smoother = smoother or self.smoother
        event = Token(
            index=self._next_index,
            position=position,
            token_id=int(token_id),
            text=piece,
            source=source,
            probe=readout,
            steering=snapshot.strengths,
            steering_version=snapshot.version,
            t=self.elapsed(),
            smoothed=smoother.update(readout) if readout is not None else None,
        )
        self._next_index += 1
        return event

    @contextlib.contextmanager
    def _busy_guard(self) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            raise EmolabError("the engine is already generating; stop it first")
        try:
            yield
        finally:
            self._busy.release()


def _eos_ids(model: LoadedModel) -> set[int]:
    ids = model.end_token_ids()
    value = getattr(model.tokenizer, "eos_token_id", None)
    if isinstance(value, int):
        ids.add(value)
    # Chat models end a turn with their template's end marker even when config names another EOS.
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        token_id = model.tokenizer.convert_tokens_to_ids(marker)
        unk = getattr(model.tokenizer, "unk_token_id", None)
        if isinstance(token_id, int) and token_id >= 0 and token_id != unk:
            ids.add(token_id)
    return ids

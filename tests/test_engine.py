"""The decode loop: determinism, equality with `generate`, cache reuse, stop, truncation."""

import threading

import pytest
import torch

from emolab.core.engine import Engine
from emolab.core.errors import ContextOverflowError, EmolabError
from emolab.core.events import Token, Truncated, TurnFinished, TurnStarted
from emolab.core.sampling import Sampling
from tests.tiny import tiny_loaded_model

GREEDY = Sampling(temperature=0, max_tokens=12)


def reply_ids(events):
    return [e.token_id for e in events if isinstance(e, Token) and e.source == "reply"]


def finished(events):
    return next(e for e in events if isinstance(e, TurnFinished))


def test_greedy_matches_transformers_generate(tiny_model):
    engine = Engine(tiny_model, sampling=GREEDY)
    events = list(engine.chat("hello there"))
    prompt = torch.tensor([[e.token_id for e in events if isinstance(e, Token) and e.source == "prompt"]])
    generated = tiny_model.model.generate(
        prompt, max_new_tokens=12, do_sample=False, eos_token_id=sorted(engine._eos_ids), pad_token_id=0
    )
    expected = generated[0, prompt.shape[1] :].tolist()
    ours = reply_ids(events)
    if finished(events).reason == "eos":
        expected = expected[: len(ours)]
    assert ours == expected


def test_greedy_is_deterministic_and_sampling_is_reproducible_by_seed(tiny_model, tiny_pack):
    def run(sampling):
        return reply_ids(Engine(tiny_model, tiny_pack, sampling=sampling).chat("tell me a story"))

    assert run(GREEDY) == run(GREEDY)
    sampled = Sampling(temperature=1.0, top_p=0.95, max_tokens=20, seed=7)
    assert run(sampled) == run(sampled)
    assert run(sampled) != run(sampled.with_(seed=8))


def test_second_turn_reuses_the_cache_and_matches_a_fresh_engine(tiny_model):
    warm = Engine(tiny_model, sampling=GREEDY)
    list(warm.chat("first question"))
    second = list(warm.chat("second question"))
    start = next(e for e in second if isinstance(e, TurnStarted))
    assert start.reused_tokens > 0

    cold = Engine(tiny_model, sampling=GREEDY)
    cold.conversation.messages = [dict(m) for m in warm.conversation.messages[:2]]
    cold.conversation.add("user", "second question")
    fresh = list(cold._reply(None))
    assert next(e for e in fresh if isinstance(e, TurnStarted)).reused_tokens == 0
    assert reply_ids(second) == reply_ids(fresh)


def test_token_events_are_numbered_and_timed(tiny_model):
    engine = Engine(tiny_model, sampling=GREEDY)
    tokens = [e for e in list(engine.chat("a")) + list(engine.chat("b")) if isinstance(e, Token)]
    assert [e.index for e in tokens] == list(range(len(tokens)))
    assert all(b.t >= a.t for a, b in zip(tokens, tokens[1:], strict=False))


def test_stop_from_another_thread_ends_the_reply(tiny_model):
    engine = Engine(tiny_model, sampling=Sampling(temperature=1.0, max_tokens=200, seed=1))
    engine._eos_ids = set()  # a random model may say EOS early; this test needs a long reply
    count = 0
    events = []
    for event in engine.chat("go on"):
        events.append(event)
        if isinstance(event, Token) and event.source == "reply":
            count += 1
            if count == 3:
                threading.Thread(target=engine.stop).start()
    end = finished(events)
    assert end.reason == "stopped"
    assert 3 <= end.reply_tokens < 200
    assert engine.conversation.messages[-1] == {"role": "assistant", "content": end.text}


def test_max_tokens_ends_the_reply(tiny_model):
    engine = Engine(tiny_model, sampling=Sampling(temperature=1.0, max_tokens=5, seed=3))
    engine._eos_ids = set()
    end = finished(list(engine.chat("hi")))
    assert (end.reason, end.reply_tokens) == ("max_tokens", 5)


def test_history_longer_than_the_context_drops_the_oldest_turns():
    small = tiny_loaded_model(context=96)
    engine = Engine(small, sampling=Sampling(temperature=1.0, max_tokens=8, seed=0))
    engine._eos_ids = set()
    truncations = []
    for turn in range(8):
        events = list(engine.chat(f"message number {turn} about the weather and trains"))
        truncations += [e for e in events if isinstance(e, Truncated)]
        start = next(e for e in events if isinstance(e, TurnStarted))
        assert start.prompt_tokens <= 96 - 8
    assert truncations, "eight turns cannot fit in 96 tokens"
    assert engine.conversation.window_start > 0
    visible = engine.conversation.visible()
    assert visible[0]["role"] == "user" and "message number 7" in visible[-2]["content"]


def test_a_single_message_longer_than_the_context_is_a_clear_error():
    small = tiny_loaded_model(context=64)
    engine = Engine(small, sampling=GREEDY)
    with pytest.raises(ContextOverflowError, match="tokens with the chat template"):
        list(engine.chat("word " * 200))
    assert engine.conversation.messages == []  # the message that cannot fit is not kept
    assert finished(list(engine.chat("short"))).reply_tokens >= 0  # and the engine still works


def test_regenerate_replaces_the_last_reply(tiny_model):
    engine = Engine(tiny_model, sampling=Sampling(temperature=1.0, max_tokens=10, seed=5))
    first = finished(list(engine.chat("hello")))
    second = finished(list(engine.regenerate()))
    assert [m["role"] for m in engine.conversation.messages] == ["user", "assistant"]
    assert engine.conversation.messages[-1]["content"] == second.text
    assert first.text != second.text  # the sampler moved on


def test_empty_message_is_refused(tiny_model):
    with pytest.raises(EmolabError, match="empty"):
        Engine(tiny_model).chat("   ")


def test_one_generation_at_a_time(tiny_model):
    engine = Engine(tiny_model, sampling=GREEDY)
    running = engine.chat("one")
    next(running)
    with pytest.raises(EmolabError, match="already generating"):
        next(engine.chat("two"))
    running.close()


def test_reset_starts_over(tiny_model):
    engine = Engine(tiny_model, sampling=GREEDY)
    first = reply_ids(engine.chat("hello"))
    engine.reset()
    assert engine.conversation.messages == [] and engine.context_used == 0
    assert reply_ids(engine.chat("hello")) == first


def test_read_text_gives_one_readout_per_token(tiny_model, tiny_pack):
    engine = Engine(tiny_model, tiny_pack)
    tokens = list(engine.read_text("The train was late again."))
    assert len(tokens) > 3 and all(t.source == "text" and t.probe.shape == (6,) for t in tokens)
    assert "".join(t.text for t in tokens) == "The train was late again."


def test_decode_threads_apply_to_the_reply_only_and_change_no_token(tiny_model):
    seen = []
    plain = Engine(tiny_model, sampling=GREEDY)
    limited = Engine(tiny_model, sampling=GREEDY, decode_threads=1)
    before = torch.get_num_threads()
    for event in limited.chat("hello there"):
        if isinstance(event, Token):
            seen.append((event.source, torch.get_num_threads()))
    assert torch.get_num_threads() == before
    assert {threads for source, threads in seen if source == "reply"} == {1}
    assert reply_ids(plain.chat("hello there")) == [
        e.token_id
        for e in Engine(tiny_model, sampling=GREEDY, decode_threads=1).chat("hello there")
        if isinstance(e, Token) and e.source == "reply"
    ]


def test_a_console_leaves_one_core_for_its_ui_unless_told_otherwise(monkeypatch):
    from emolab.core.devices import threads_beside_a_ui

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert threads_beside_a_ui(torch.device("cpu")) == 7
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert threads_beside_a_ui(torch.device("cpu")) == 1
    assert threads_beside_a_ui(torch.device("cuda")) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_beside_a_ui(torch.device("cpu")) is None


@pytest.mark.parametrize("decoder", ["lean", "transformers"])
def test_log_probs_score_a_continuation_with_no_steering(tiny_model, tiny_pack, decoder):
    engine = Engine(tiny_model, tiny_pack, sampling=GREEDY, decoder=decoder)
    engine.steering.set("happy", 2.0)  # scoring ignores it
    context, continuation = [1, 40, 41, 42], [50, 51, 52]
    got = engine.log_probs(context, continuation)
    with torch.inference_mode():
        logits = tiny_model.model(torch.tensor([context + continuation])).logits[0].float()
    expected = torch.log_softmax(logits, dim=-1)[len(context) - 1 : -1].gather(1, torch.tensor(continuation)[:, None])
    torch.testing.assert_close(torch.from_numpy(got), expected[:, 0], rtol=1e-5, atol=1e-5)
    assert engine.log_probs(context, []).shape == (0,)

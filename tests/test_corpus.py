"""The story corpus: batched generation, checkpoints, and resuming without loss or duplicates."""

import json

import pytest

from emolab.core.errors import EmolabError
from emolab.recipe.corpus import CorpusPlan, build_corpus, names_emotion, package_lines


def tiny_plan(model, **changes):
    settings = dict(
        model=model.reference,
        weights=model.weights_id,
        emotions=("happy", "afraid"),
        topics=("a delayed flight", "a letter from the bank"),
        stories_per_topic=1,
        neutral_tasks=("sorting a list",),
        neutral_per_task=2,
        max_new_tokens=6,
        seed=3,
    )
    settings.update(changes)
    return CorpusPlan(**settings)


def records(path):
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def test_builds_every_job_once(tmp_path, tiny_model):
    plan = tiny_plan(tiny_model)
    stats = build_corpus(tiny_model, plan, tmp_path / "corpus.jsonl", batch_size=3)
    header, rows = records(tmp_path / "corpus.jsonl")
    assert header["fingerprint"] == plan.fingerprint
    assert sorted(r["key"] for r in rows) == sorted(job.key for job in plan.jobs())
    assert stats.written_now == stats.total == 6
    assert {r["kind"] for r in rows} == {"story", "neutral"}


def test_resume_after_a_kill_mid_line_loses_and_duplicates_nothing(tmp_path, tiny_model):
    plan = tiny_plan(tiny_model)
    path = tmp_path / "corpus.jsonl"
    build_corpus(tiny_model, plan, path, batch_size=2)
    complete = path.read_bytes()
    lines = complete.splitlines(keepends=True)
    # as if killed while writing the fourth record: three whole records, then half a line
    path.write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    stats = build_corpus(tiny_model, plan, path, batch_size=2)
    _, rows = records(path)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 6
    assert stats.written_now == 3
    assert [json.loads(line)["key"] for line in lines[1:4]] == keys[:3]  # the first records are untouched


def test_a_finished_corpus_generates_nothing_more(tmp_path, tiny_model):
    plan = tiny_plan(tiny_model)
    build_corpus(tiny_model, plan, tmp_path / "c.jsonl")
    before = (tmp_path / "c.jsonl").read_bytes()
    assert build_corpus(tiny_model, plan, tmp_path / "c.jsonl").written_now == 0
    assert (tmp_path / "c.jsonl").read_bytes() == before


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_model):
    build_corpus(tiny_model, tiny_plan(tiny_model), tmp_path / "c.jsonl")
    with pytest.raises(EmolabError, match=r"different settings \(stories_per_topic\)"):
        build_corpus(tiny_model, tiny_plan(tiny_model, stories_per_topic=2), tmp_path / "c.jsonl")
    with pytest.raises(EmolabError, match=r"different settings \(weights\)"):
        build_corpus(tiny_model, tiny_plan(tiny_model, weights="sha256:other"), tmp_path / "c.jsonl")


def test_more_topics_grow_a_corpus_and_keep_every_text(tmp_path, tiny_model):
    path = tmp_path / "c.jsonl"
    small = tiny_plan(tiny_model)
    build_corpus(tiny_model, small, path, batch_size=2)
    _, before = records(path)
    grown = tiny_plan(tiny_model, topics=small.topics + ("a new neighbour",))
    stats = build_corpus(tiny_model, grown, path, batch_size=2)
    header, after = records(path)
    assert header["fingerprint"] == grown.fingerprint
    assert after[: len(before)] == before
    assert sorted(r["key"] for r in after) == sorted(job.key for job in grown.jobs())
    assert stats.written_now == 2
    assert not list(tmp_path.glob("*.grow"))


def test_other_topics_are_not_growth(tmp_path, tiny_model):
    build_corpus(tiny_model, tiny_plan(tiny_model), tmp_path / "c.jsonl")
    for topics in [("a delayed flight",), ("a new neighbour", "a delayed flight", "a letter from the bank")]:
        with pytest.raises(EmolabError, match=r"different settings \(topics\)"):
            build_corpus(tiny_model, tiny_plan(tiny_model, topics=topics), tmp_path / "c.jsonl")
    with pytest.raises(EmolabError, match=r"different settings \(seed, topics\)"):
        build_corpus(
            tiny_model,
            tiny_plan(tiny_model, seed=9, topics=("a delayed flight", "a letter from the bank", "a new neighbour")),
            tmp_path / "c.jsonl",
        )


def test_a_file_that_is_not_a_corpus_is_refused(tmp_path, tiny_model):
    (tmp_path / "c.jsonl").write_text('{"hello": 1}\n')
    with pytest.raises(EmolabError, match="not an emolab corpus"):
        build_corpus(tiny_model, tiny_plan(tiny_model), tmp_path / "c.jsonl")


@pytest.mark.parametrize(
    "text,emotion,named",
    [
        ("She felt happy.", "happy", True),
        ("He smiled happily.", "happy", True),
        ("Unhappy endings.", "happy", False),
        ("They were at ease by the fire.", "at ease", True),
        ("The disease spread.", "at ease", False),
        ("Her anger rose.", "angry", False),
        ("He glared angrily.", "angry", True),
        ("The Afraid one", "afraid", True),
    ],
)
def test_names_emotion(text, emotion, named):
    assert names_emotion(text, emotion) is named


def test_package_data_has_100_topics_and_neutral_tasks():
    topics = package_lines("topics_100.txt")
    assert len(topics) == 100 == len(set(topics))
    assert len(package_lines("neutral_tasks.txt")) >= 40


def test_read_corpus_groups_stories_and_drops_those_that_name_the_emotion(tmp_path, tiny_model):
    from emolab.recipe.corpus import read_corpus

    plan = tiny_plan(tiny_model)
    path = tmp_path / "c.jsonl"
    build_corpus(tiny_model, plan, path)
    lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    for row in rows:  # make the texts predictable
        if row["kind"] == "story" and row["subject"] == "happy" and row["topic"] == 0:
            row.update(text="She was happy.", named=True)
        elif row["kind"] == "story":
            row.update(text=f"A story about topic {row['topic']}.", named=False)
    path.write_text("\n".join([lines[0]] + [json.dumps(row) for row in rows]) + "\n")
    texts = read_corpus(path, plan)
    assert texts.named == {"happy": 1}
    assert texts.stories == {
        "happy": ["A story about topic 1."],
        "afraid": ["A story about topic 0.", "A story about topic 1."],
    }
    assert len(texts.neutral) + texts.empty == 2

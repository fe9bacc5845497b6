"""The written corpus: hygiene of the shipped texts, and `build-pack --corpus` end to end."""

import json
from collections import defaultdict

import pytest
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.pack import default_emotions, load_pack
from emolab.recipe import build as build_module
from emolab.recipe.hygiene import emotion_mentions, most_similar_pair, word_count
from emolab.recipe.written import SPLITS, read_written

EMOTIONS = default_emotions()


@pytest.fixture(scope="module")
def shipped():
    return {split: read_written("written", split) for split in SPLITS}


def stories_by_emotion(corpus):
    grouped = defaultdict(list)
    for record in corpus.records:
        if record["kind"] == "story":
            grouped[record["subject"]].append(record)
    return grouped


def test_every_emotion_has_ten_training_and_two_test_stories_each_on_its_own_topic(shipped):
    for split, least in (("train", 10), ("test", 2)):
        grouped = stories_by_emotion(shipped[split])
        assert set(grouped) == set(EMOTIONS), split
        for emotion, records in grouped.items():
            topics = [record["topic"] for record in records]
            assert len(records) >= least, (split, emotion)
            assert len(set(topics)) == len(topics), (split, emotion, topics)


def test_the_test_topics_are_disjoint_from_the_training_topics(shipped):
    train = {r["topic"] for r in shipped["train"].records if r["kind"] == "story"}
    test = {r["topic"] for r in shipped["test"].records}
    assert train and test and not train & test


def test_no_story_names_its_emotion(shipped):
    named = [
        (r["subject"], r["topic"], emotion_mentions(r["text"], r["subject"]))
        for split in ("train", "test")
        for r in shipped[split].records
        if emotion_mentions(r["text"], r["subject"])
    ]
    assert named == []


def test_stories_are_80_to_200_words(shipped):
    lengths = [
        word_count(r["text"]) for split in ("train", "test") for r in shipped[split].records if r["kind"] == "story"
    ]
    assert min(lengths) >= 80 and max(lengths) <= 200


def test_no_near_duplicates_within_an_emotion(shipped):
    for emotion in EMOTIONS:
        texts = [r["text"] for split in ("train", "test") for r in stories_by_emotion(shipped[split])[emotion]]
        score, first, second = most_similar_pair(texts)
        assert score < 0.2, (emotion, texts[first][:60], texts[second][:60])


def test_neutral_texts_calibration_texts_and_passages_are_there(shipped):
    assert sum(r["kind"] == "neutral" for r in shipped["train"].records) >= 100
    assert len(shipped["calibration"].records) >= 60
    families = shipped["passages"].header["families"]
    assert len(families) == 20
    per_family = defaultdict(int)
    for record in shipped["passages"].records:
        per_family[record["subject"]] += 1
    assert dict(per_family) == {family: 2 for family in families}
    assert all(member in EMOTIONS for members in families.values() for member in members)


def test_headers_say_what_the_corpus_is(shipped):
    for split, corpus in shipped.items():
        header = corpus.header
        assert header["written_for"] == "emolab" and header["split"] == split
        assert header["version"] >= 1 and "MIT" in header["licence"] and header["counts"]


# -- build-pack --corpus on a tiny model ---------------------------------------------------------

TINY = ["happy", "sad", "afraid", "calm"]
SCENES = ["a kitchen at dawn", "a bus in the rain", "a letter on the mat", "a hospital corridor", "a school play"]


def write_tiny_corpus(path, emotions=TINY):
    lines = [
        {
            "type": "header",
            "corpus": "emolab-written",
            "name": "tiny",
            "version": 1,
            "split": "train",
            "written_for": "emolab tests",
            "licence": "MIT",
            "counts": {},
        }
    ]
    for emotion in emotions:
        for topic, scene in enumerate(SCENES):
            lines.append(
                {
                    "key": f"story|{emotion}|{topic}|0",
                    "kind": "story",
                    "subject": emotion,
                    "topic": topic,
                    "k": 0,
                    "text": f"In {scene} someone was {emotion}; the day went on and on for them.",
                }
            )
    for number, text in enumerate(
        [
            "Human: sort 3, 1, 2. Assistant: 1, 2, 3.",
            "The meeting is at nine.",
            "Press the reset button for ten seconds.",
        ]
    ):
        lines.append(
            {
                "key": f"neutral|written|{number}|0",
                "kind": "neutral",
                "subject": "dialogue",
                "topic": number,
                "k": 0,
                "text": text,
            }
        )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def corpus_args(model_dir, out, corpus, emotions_file):
    return [
        "build-pack",
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--corpus",
        str(corpus),
        "--emotions",
        str(emotions_file),
        "--layers",
        "1,2,3",
        "--start-token",
        "2",
        "--batch-size",
        "2",
    ]


@pytest.fixture
def emotions_file(tmp_path):
    path = tmp_path / "emotions.txt"
    path.write_text("\n".join(TINY) + "\n")
    return path


def test_build_pack_reads_a_written_corpus_resumes_after_an_interruption_and_validates(
    tmp_path, tiny_model_dir, emotions_file, monkeypatch
):
    corpus = write_tiny_corpus(tmp_path / "tiny.jsonl")
    out = tmp_path / "pack"
    reads = []
    real = build_module.mean_activations

    def interrupted(loaded, texts, *args, **kwargs):
        if len(reads) == 2:
            raise KeyboardInterrupt  # killed while reading the third chunk
        reads.append(len(texts))
        return real(loaded, texts, *args, **kwargs)

    monkeypatch.setattr(build_module, "mean_activations", interrupted)
    interrupted_run = CliRunner().invoke(main, corpus_args(tiny_model_dir, out, corpus, emotions_file))
    assert interrupted_run.exit_code != 0 and reads == [4, 4]

    def counted(loaded, texts, *args, **kwargs):
        reads.append(len(texts))
        return real(loaded, texts, *args, **kwargs)

    monkeypatch.setattr(build_module, "mean_activations", counted)
    result = CliRunner().invoke(main, corpus_args(tiny_model_dir, out, corpus, emotions_file))
    assert result.exit_code == 0, result.output
    assert reads == [4, 4, 4, 4, 4]  # 20 stories: the two chunks read before were not read again
    pack = load_pack(out)
    assert pack.manifest["provenance"]["corpus"]["corpus"] == str(corpus)
    assert pack.manifest["format_version"] == 2 and sorted(pack.probes) == [1, 2, 3]
    assert pack.manifest["provenance"]["probe_choice"]["layer"] == pack.probe_layer
    assert (out / "corpus.jsonl.gz").is_file()  # a pack carries a corpus emolab does not ship
    validated = CliRunner().invoke(main, ["validate", str(out), "--out", str(tmp_path / "REPORT")])
    assert validated.exit_code == 0, validated.output


def test_a_dry_run_estimates_reading_time(tmp_path, tiny_model_dir, emotions_file):
    corpus = write_tiny_corpus(tmp_path / "tiny.jsonl")
    result = CliRunner().invoke(
        main, [*corpus_args(tiny_model_dir, tmp_path / "p", corpus, emotions_file), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "20 stories for 4 emotions, 3 neutral texts (read, not generated)" in result.output
    assert "minutes of reading" in result.output and not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    "corpus, message",
    [
        ("no-such-corpus", "no such file, and not a corpus name"),
        ("bad.jsonl", "not a written emolab corpus"),
        ("short.jsonl", "the corpus has no stories for calm"),
    ],
)
def test_bad_corpora_are_one_line_and_exit_2(tmp_path, tiny_model_dir, emotions_file, corpus, message):
    (tmp_path / "bad.jsonl").write_text('{"type": "header", "plan": {}}\n')
    write_tiny_corpus(tmp_path / "short.jsonl", emotions=TINY[:3])
    path = corpus if corpus == "no-such-corpus" else tmp_path / corpus
    result = CliRunner().invoke(main, corpus_args(tiny_model_dir, tmp_path / "p", path, emotions_file))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1

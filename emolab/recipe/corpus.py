"""The story corpus: generated in batches, checkpointed line by line, resumable after a kill.

The corpus is a JSONL file. Its first line is a header that records the plan (model, weights,
emotions, topics, counts, sampling, prompt version); each later line is one generated text.
Resuming reads the header and refuses a corpus made by another plan, so corpora never mix. The one
exception is growth: a plan that only adds topics after the recorded ones keeps every text already
made (they are exactly the jobs it would make first) and the header is rewritten to the larger plan.
Every job has a key, so a resumed build neither loses nor duplicates a text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import torch

from emolab.core.conversation import end_of_plain_reply, prompt_format, prompt_text
from emolab.core.errors import EmolabError
from emolab.core.models import LoadedModel

PROMPT_VERSION = 1
STORY_PROMPT = (
    "Write a short story of one paragraph, about {words} words, about {topic}. The main character feels "
    '{emotion}. Never use the word "{emotion}" or any synonym of it: show the feeling only through the '
    "character's actions, body sensations, dialogue, thoughts and situation. Write only the story."
)
NEUTRAL_PROMPT = (
    "Write a short dialogue between a Human and an Assistant. The Human asks for help with {task}, and the "
    "Assistant answers plainly and factually, with no pleasantries and no feelings. Write only the dialogue, "
    'with lines that start with "Human:" and "Assistant:".'
)

Progress = Callable[[int, int], None]  # (done, total)


def package_lines(filename: str) -> list[str]:
    text = resources.files("emolab").joinpath(f"data/{filename}").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class CorpusPlan:
    model: str
    weights: str
    emotions: tuple[str, ...]
    topics: tuple[str, ...]
    stories_per_topic: int
    neutral_tasks: tuple[str, ...]
    neutral_per_task: int = 1
    max_new_tokens: int = 160
    story_words: int = 100
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0
    prompt_version: int = PROMPT_VERSION

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def jobs(self) -> list[Job]:
        jobs = [
            Job("neutral", task, index, k)
            for index, task in enumerate(self.neutral_tasks)
            for k in range(self.neutral_per_task)
        ]
        jobs += [
            Job("story", emotion, index, k)
            for index, _ in enumerate(self.topics)
            for emotion in self.emotions
            for k in range(self.stories_per_topic)
        ]
        return jobs

    def prompt(self, job: Job) -> str:
        if job.kind == "neutral":
            return NEUTRAL_PROMPT.format(task=job.subject)
        return STORY_PROMPT.format(words=self.story_words, topic=self.topics[job.topic], emotion=job.subject)


@dataclass(frozen=True)
class Job:
    kind: str  # "story" or "neutral"
    subject: str  # the emotion, or the neutral task
    topic: int  # topic index (stories) or task index (neutral)
    k: int

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.subject}|{self.topic}|{self.k}"


@dataclass
class CorpusStats:
    written_now: int = 0
    total: int = 0
    named: dict[str, int] = field(default_factory=dict)  # stories that name their emotion, per emotion


def names_emotion(text: str, emotion: str) -> bool:
    """Does the text use the emotion word itself (or a plain inflection: -s, -ly, -ness, -ily)?"""
    stem = re.escape(emotion)
    forms = [rf"{stem}(?:s|ly|ness)?"]
    if emotion.endswith("y"):
        forms.append(rf"{re.escape(emotion[:-1])}i(?:ly|ness)")
    return re.search(rf"\b(?:{'|'.join(forms)})\b", text, flags=re.IGNORECASE) is not None


class CorpusFile:
    """An append-only JSONL checkpoint with a header line that pins the plan."""

    def __init__(self, path: Path, plan: CorpusPlan):
        self.path = Path(path)
        self.plan = plan

    def open(self) -> dict[str, dict]:
        """Create the file, or check its header and return the records already in it, by key."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append_lines([self._header_line()])
            return {}
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):  # killed mid-line: drop the partial record, it is regenerated
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        lines = complete.decode("utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("type") != "header":
            raise EmolabError(f"{self.path}: not an emolab corpus (no header line)")
        if header.get("fingerprint") != self.plan.fingerprint:
            current = json.loads(json.dumps(asdict(self.plan)))  # tuples compare as the JSON lists they become
            recorded = header.get("plan") if isinstance(header.get("plan"), dict) else {}
            differing = sorted(key for key in current.keys() | recorded.keys() if current.get(key) != recorded.get(key))
            if not self._grows(recorded, current, differing):
                raise EmolabError(
                    f"{self.path}: this corpus was made with different settings ({', '.join(differing) or 'plan'}); "
                    "resuming would mix corpora, so use another --out or the original settings"
                )
            lines[0] = self._rewrite_header(complete[complete.find(b"\n") + 1 :])
        records = {}
        for number, line in enumerate(lines[1:], start=2):
            try:
                record = json.loads(line)
                records[record["key"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                raise EmolabError(f"{self.path}: line {number} is not a corpus record") from None
        return records

    @staticmethod
    def _grows(recorded: dict, current: dict, differing: list[str]) -> bool:
        """Does the current plan only append topics to the recorded one?"""
        old, new = recorded.get("topics") or [], current["topics"]
        return differing == ["topics"] and len(new) > len(old) and new[: len(old)] == old

    def _header_line(self) -> str:
        return json.dumps(
            {"type": "header", "fingerprint": self.plan.fingerprint, "plan": asdict(self.plan)}, ensure_ascii=False
        )

    def _rewrite_header(self, records: bytes) -> str:
        """Swap in the larger plan's header, through a temporary file and a rename, keeping every record."""
        header = self._header_line()
        temporary = self.path.with_name(self.path.name + ".grow")
        with temporary.open("wb") as target:
            target.write(header.encode("utf-8") + b"\n" + records)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, self.path)
        return header

    def append(self, records: Iterable[dict]) -> None:
        self._append_lines([json.dumps(record, ensure_ascii=False) for record in records])

    def _append_lines(self, lines: Sequence[str]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())


def story_prompt_format(loaded: LoadedModel) -> str:
    """How the story prompts reach the model: "chat" (its chat template) or "plain" (a base model
    without one reads them as a plain "User: … Assistant:" transcript). A pack records it."""
    return prompt_format(loaded.tokenizer)


@torch.inference_mode()
def generate_replies(loaded: LoadedModel, prompts: Sequence[str], plan: CorpusPlan, seed: int) -> list[str]:
    """One sampled reply per prompt, generated as one left-padded batch through the chat template
    (or, for a base model, the plain transcript the chat uses too)."""
    tokenizer = loaded.tokenizer
    plain = story_prompt_format(loaded) == "plain"
    texts = [prompt_text(tokenizer, [{"role": "user", "content": p}]) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=plain).to(
            loaded.input_device
        )  # a template writes its own
    finally:
        tokenizer.padding_side = side
    torch.manual_seed(seed)
    output = loaded.model.generate(
        **batch,
        do_sample=True,
        temperature=plan.temperature,
        top_p=plan.top_p,
        max_new_tokens=plan.max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
    )
    new = output[:, batch["input_ids"].shape[1] :]
    replies = [tokenizer.decode(row, skip_special_tokens=True) for row in new]
    return [(end_of_plain_reply(reply) if plain else reply).strip() for reply in replies]


def build_corpus(
    loaded: LoadedModel, plan: CorpusPlan, path: Path, *, batch_size: int = 16, progress: Progress | None = None
) -> CorpusStats:
    """Generate every job of the plan that the corpus file does not hold yet."""
    corpus = CorpusFile(path, plan)
    done = corpus.open()
    jobs = plan.jobs()
    pending = [job for job in jobs if job.key not in done]
    order = {job.key: number for number, job in enumerate(jobs)}
    stats = CorpusStats(total=len(jobs))
    report = progress or (lambda done_count, total: None)
    report(len(jobs) - len(pending), len(jobs))
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        # the seed depends on the batch's first job, so a resumed build samples as it would have
        seed = plan.seed * 1_000_003 + order[batch[0].key]
        replies = generate_replies(loaded, [plan.prompt(job) for job in batch], plan, seed)
        corpus.append(
            {
                "key": job.key,
                "kind": job.kind,
                "subject": job.subject,
                "topic": job.topic,
                "k": job.k,
                "text": text,
                "named": job.kind == "story" and names_emotion(text, job.subject),
            }
            for job, text in zip(batch, replies, strict=True)
        )
        stats.written_now += len(batch)
        report(len(jobs) - len(pending) + start + len(batch), len(jobs))
    for record in corpus.open().values():
        if record["named"]:
            stats.named[record["subject"]] = stats.named.get(record["subject"], 0) + 1
    return stats


@dataclass
class CorpusTexts:
    """A corpus read back for the recipe: usable stories per emotion, neutral texts, and what was filtered."""

    stories: dict[str, list[str]]
    story_topics: dict[str, list[int]]  # the topic index of each story, in the same order
    neutral: list[str]
    named: dict[str, int]  # stories dropped because they name their emotion
    empty: int  # replies with no text


def read_corpus(path: Path, plan: CorpusPlan) -> CorpusTexts:
    """Stories grouped by emotion in plan order, without those that name their emotion."""
    records = CorpusFile(path, plan).open()
    stories: dict[str, list[str]] = {emotion: [] for emotion in plan.emotions}
    topics: dict[str, list[int]] = {emotion: [] for emotion in plan.emotions}
    neutral: list[str] = []
    named: dict[str, int] = {}
    empty = 0
    for job in plan.jobs():
        record = records.get(job.key)
        if record is None:
            continue
        text = record["text"].strip()
        if not text:
            empty += 1
        elif job.kind == "neutral":
            neutral.append(text)
        elif record["named"]:
            named[job.subject] = named.get(job.subject, 0) + 1
        else:
            stories[job.subject].append(text)
            topics[job.subject].append(job.topic)
    return CorpusTexts(stories=stories, story_topics=topics, neutral=neutral, named=named, empty=empty)

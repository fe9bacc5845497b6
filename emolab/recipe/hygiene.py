"""Corpus hygiene: does a story name its emotion, and are two texts near-duplicates?

Torch-free, so that writers can check a draft without loading the recipe.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import combinations

# Derived forms that a suffix rule cannot reach.
_DERIVED = {
    "afraid": ["fear"],
    "angry": ["anger"],
    "proud": ["pride"],
    "envious": ["envy"],
    "anxious": ["anxiety"],
    "furious": ["fury"],
    "hope": ["hoping"],
    "bored": ["boredom", "boring", "bore"],
    "grateful": ["gratitude"],
    "sad": ["sadden"],
    "mad": ["madden"],
    "tense": ["tension"],
    "panicked": ["panic"],
    "scared": ["scare"],
    "humiliated": ["humiliation"],
    "horrified": ["horror", "horrify"],
    "terrified": ["terror", "terrify"],
    "hateful": ["hatred"],
    "triumphant": ["triumph"],
    "disgusted": ["disgust"],
    "depressed": ["depression"],
    "relieved": ["relief"],
    "surprised": ["surprise"],
    "shocked": ["shock"],
    "embarrassed": ["embarrass"],
    "frustrated": ["frustrat"],
    "irritated": ["irritat"],
    "excited": ["excit"],
    "empathetic": ["empathy"],
    "sympathetic": ["sympathy"],
    "self-confident": ["confidence"],
    "indifferent": ["indifference"],
    "vengeful": ["vengeance", "revenge"],
    "worried": ["worry"],
    "guilty": ["guilt"],
    "ashamed": ["shame"],
    "contemptuous": ["contempt"],
    "nostalgic": ["nostalgia"],
    "enthusiastic": ["enthusiasm"],
    "ecstatic": ["ecstasy"],
    "euphoric": ["euphoria"],
    "hysterical": ["hysteria"],
    "paranoid": ["paranoia"],
    "optimistic": ["optimism"],
    "skeptical": ["skeptic", "sceptic"],
    "loving": ["love"],
    "satisfied": ["satisfaction"],
    "jubilant": ["jubilation"],
    "exuberant": ["exuberance"],
    "defiant": ["defiance"],
    "vigilant": ["vigilance"],
    "indignant": ["indignation"],
    "impatient": ["impatience"],
    "patient": ["patience"],
    "offended": ["offence", "offense"],
    "hostile": ["hostility"],
    "miserable": ["misery"],
    "gloomy": ["gloom"],
    "heartbroken": ["heartbreak"],
    "serene": ["serenity"],
    "greedy": ["greed"],
    "dependent": ["dependence", "dependency"],
    "vulnerable": ["vulnerability"],
    "sentimental": ["sentiment"],
    "awestruck": ["awe"],
    "frightened": ["fright"],
    "enraged": ["rage"],
    "droopy": ["droop"],
}
_SHORT = 4  # words this short only match plain inflections ("mad" must not match "made")
_SHORT_ENDINGS = "s|ly|ness|ed|d|er|est|der|dest|ing|ful|less"
_SUFFIXES = ("ed", "ful", "ous", "ic", "ive", "ate", "y")


@cache
def _pattern(emotion: str) -> re.Pattern[str]:
    if " " in emotion:  # "at ease", "worn out", "on edge": the phrase itself
        return re.compile(r"\b" + r"\s+".join(map(re.escape, emotion.split())) + r"\b", re.IGNORECASE)
    words = [emotion] + [part for part in emotion.split("-") if "-" in emotion and part != "self"]
    stems, exact = set(), set(_DERIVED.get(emotion, []))
    for word in words:
        if len(word) <= _SHORT:
            exact.add(rf"{re.escape(word)}(?:{_SHORT_ENDINGS})?")
            continue
        stems.add(word)
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= _SHORT:
                stems.add(word[: -len(suffix)] + ("i" if suffix == "y" else ""))
    alternatives = [rf"{re.escape(stem)}\w*" for stem in sorted(stems)] + sorted(
        e if "(" in e else rf"{re.escape(e)}\w*" for e in exact
    )
    return re.compile(rf"\b(?:{'|'.join(alternatives)})\b", re.IGNORECASE)


def emotion_mentions(text: str, emotion: str) -> list[str]:
    """The words of `text` that belong to the emotion word's family (inflections and derivations)."""
    return [match.group(0) for match in _pattern(emotion).finditer(text)]


def names_emotion(text: str, emotion: str) -> bool:
    """Does the text use the emotion word, an inflection of it, or a derived form (angrily, anger)?"""
    return _pattern(emotion).search(text) is not None


def shingles(text: str, n: int = 5) -> frozenset[tuple[str, ...]]:
    words = re.findall(r"[a-z']+", text.lower())
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def most_similar_pair(texts: list[str], n: int = 5) -> tuple[float, int, int]:
    """The highest pairwise n-gram Jaccard among the texts, and which two give it."""
    sets = [shingles(text, n) for text in texts]
    best = (0.0, -1, -1)
    for i, j in combinations(range(len(sets)), 2):
        score = jaccard(sets[i], sets[j])
        if score > best[0]:
            best = (score, i, j)
    return best


def word_count(text: str) -> int:
    return len(re.findall(r"\S+", text))

"""What a sweep measures on one reply's text: degeneration, behaviour counts, independent sentiment.

The readout measures come from the engine's token events (lab/sweep.py); these need only the text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from emolab.core.errors import EmolabError

WORD = re.compile(r"\w+(?:'\w+)?")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def _ngrams(items: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + n]) for i in range(len(items) - n + 1)]


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct word n-grams over all word n-grams (Li et al. 2016); NaN when the text has none."""
    grams = _ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else math.nan


def repeated_ngram_share(text: str, n: int = 4) -> float:
    """The share of word n-grams that repeat an earlier one: 0 for fresh text, toward 1 for a loop."""
    grams = _ngrams(words(text), n)
    return (len(grams) - len(set(grams))) / len(grams) if grams else math.nan


def perplexity(log_probs: np.ndarray) -> float:
    """exp(−mean log-probability); NaN for an empty reply."""
    return float(np.exp(-np.mean(log_probs))) if len(log_probs) else math.nan


def compile_patterns(patterns: Sequence[str]) -> list[re.Pattern]:
    """--count expressions, case-insensitive; a bad one is an input error."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as error:
            raise EmolabError(f"--count {pattern!r} is not a regular expression: {error}") from None
        if compiled[-1].search(""):
            raise EmolabError(f"--count {pattern!r} matches the empty text, so it would count everywhere")
    return compiled


def count_matches(pattern: re.Pattern, text: str) -> int:
    return sum(1 for _ in pattern.finditer(text))


@lru_cache(maxsize=1)
def _vader():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    return SentimentIntensityAnalyzer()


def vader_available() -> bool:
    return _vader() is not None


def vader_compound(text: str) -> float:
    """VADER's compound sentiment in [−1, 1], independent of the model; NaN without vaderSentiment."""
    analyzer = _vader()
    return float(analyzer.polarity_scores(text)["compound"]) if analyzer is not None else math.nan

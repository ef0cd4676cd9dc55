"""Lexicon-constrained reading: the word of a list that best explains a written word's ink.

A written word arrives as its blobs (connected ink, possibly touching characters) and every
candidate span of each blob with the model's full log-probabilities. Reading it freely keeps each
blob's likeliest cuts and each piece's top-1 label; here the cuts and the labels are chosen
together, for the word of the lexicon they explain best:

    score(word) = max over cuttings with len(word) pieces of
                  Σ log p(word[i] | piece i)  +  Σ span priors  −  CUT_PENALTY × inner cuts
                  +  prior_weight × log prior(word)

so a touching "rn" that the free reading takes for "m" is read "rn" when the lexicon's word needs
it. The cuttings are a beam (the best few per length, ranked as the free reading ranks them), and
every lexicon word of a cutting's length is scored at once with numpy. Pure numpy: no web
framework, no model call (the caller passes the log-probabilities).
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from app.errors import InvalidParameter

Span = tuple[int, int]  # (first cut, last cut) of a blob's piece; cut 0 = the blob's left edge

# Cuttings kept per number of pieces while a word's blobs are combined. The free reading's best
# cutting is always among them; a few more let the lexicon prefer a cut the model was less sure of.
BEAM = 8
# Alternatives returned beside the chosen word.
ALTERNATIVES = 3


@dataclass(frozen=True)
class BlobSpans:
    """One blob's candidate pieces: span → (row of the log-probability matrix, the span's prior:
    0 or a negative penalty, e.g. for a piece much wider than a character). `pieces` is the number
    of cut intervals; a cutting is a chain of spans from cut 0 to cut `pieces`."""

    pieces: int
    spans: Mapping[Span, tuple[int, float]]


@dataclass(frozen=True)
class Cutting:
    """One way to cut a written word into characters: the rows read, in order, and its prior."""

    rows: tuple[int, ...]
    prior: float  # span priors − CUT_PENALTY × inner cuts
    rank: float  # prior + Σ top-1 log-probability: how the free reading ranks it


@dataclass(frozen=True)
class WordMatch:
    word: str  # as the lexicon spells it
    probability: float  # among the lexicon's words that fit this ink (a softmax of their scores)
    score: float  # log-likelihood of this word summed over the cuttings that spell it, with its prior
    alternatives: list[tuple[str, float]]  # the next best words and their probabilities


class Lexicon:
    """Words tokenised into a model's labels, grouped by length for vectorised scoring.

    A word is tokenised by greedy longest match against the labels (so multi-character labels,
    e.g. Bengali graphemes, work alike); when the labels have no lower case (the letters model's
    are capitals), words are matched upper-cased and still answered as written. Words that the
    labels cannot spell are left out and counted in `skipped`."""

    def __init__(
        self,
        words: Iterable[str],
        labels: Sequence[str],
        log_priors: Mapping[str, float] | None = None,
        prior_weight: float = 0.0,
    ) -> None:
        index = {label: i for i, label in enumerate(labels)}
        fold = not any(label != label.upper() for label in labels)
        longest = max((len(label) for label in labels), default=1)
        by_length: dict[int, tuple[list[str], list[list[int]], list[float]]] = {}
        seen: set[str] = set()
        self.skipped = 0
        for word in words:
            word = word.strip()
            if not word or word in seen:
                continue
            seen.add(word)
            tokens = tokenise(word.upper() if fold else word, index, longest)
            if tokens is None:
                self.skipped += 1
                continue
            group = by_length.setdefault(len(tokens), ([], [], []))
            group[0].append(word)
            group[1].append(tokens)
            group[2].append(prior_weight * (log_priors or {}).get(word, 0.0))
        self.words = {n: words for n, (words, _, _) in by_length.items()}
        self.tokens = {n: np.asarray(tokens, dtype=np.int64) for n, (_, tokens, _) in by_length.items()}
        self.priors = {n: np.asarray(priors, dtype=np.float64) for n, (_, _, priors) in by_length.items()}

    def __len__(self) -> int:
        return sum(len(words) for words in self.words.values())

    def match(self, cuttings: Sequence[Cutting], log_probs: np.ndarray) -> WordMatch | None:
        """The lexicon word that the cuttings explain best; None when no word has a fitting length."""
        # A word's likelihood sums over the cuttings that spell it (each cutting one way the ink
        # may divide); the normaliser sums every word of every cutting's length, not only leaders.
        found: dict[str, float] = {}
        mass = -math.inf
        by_length: dict[int, list[Cutting]] = {}
        for cutting in cuttings:
            if len(cutting.rows) in self.tokens:
                by_length.setdefault(len(cutting.rows), []).append(cutting)
        for n, group in by_length.items():
            rows = np.asarray([c.rows for c in group])  # cuttings × n
            # log p of every word of this length through every cutting: gathered, summed over the
            # word's positions (cuttings × words), then the priors.
            scores = log_probs[rows][:, np.arange(n)[None, :], self.tokens[n]].sum(axis=2)
            scores += self.priors[n][None, :] + np.asarray([c.prior for c in group])[:, None]
            mass = float(np.logaddexp(mass, _logsumexp(scores)))
            leaders = min(ALTERNATIVES + 1, scores.shape[1])
            for row, top in zip(
                scores, np.argpartition(-scores, leaders - 1, axis=1)[:, :leaders], strict=True
            ):
                for i in top:
                    word = self.words[n][i]
                    found[word] = float(np.logaddexp(found.get(word, -math.inf), row[i]))
        if not found:
            return None
        ranked = sorted(found.items(), key=lambda item: -item[1])
        return WordMatch(
            word=ranked[0][0],
            probability=math.exp(ranked[0][1] - mass),
            score=ranked[0][1],
            alternatives=[(w, math.exp(s - mass)) for w, s in ranked[1 : ALTERNATIVES + 1]],
        )


def tokenise(word: str, index: Mapping[str, int], longest: int) -> list[int] | None:
    """The word as label indices by greedy longest match; None if some part is no label."""
    tokens, i = [], 0
    while i < len(word):
        for size in range(min(longest, len(word) - i), 0, -1):
            if word[i : i + size] in index:
                tokens.append(index[word[i : i + size]])
                i += size
                break
        else:
            return None
    return tokens


def blob_cuttings(blob: BlobSpans, top1: np.ndarray, cut_penalty: float) -> list[Cutting]:
    """Every chain of spans from cut 0 to cut `pieces` (at most 2^(pieces−1): a blob has few cuts)."""
    found = []
    inner = range(1, blob.pieces)
    for n in range(blob.pieces):
        for cuts in itertools.combinations(inner, n):
            bounds = (0, *cuts, blob.pieces)
            chain = list(itertools.pairwise(bounds))
            if not all(span in blob.spans for span in chain):
                continue
            rows = tuple(blob.spans[span][0] for span in chain)
            prior = sum(blob.spans[span][1] for span in chain) - cut_penalty * n
            found.append(Cutting(rows, prior, prior + float(top1[list(rows)].sum())))
    return found


def word_cuttings(blobs: Sequence[BlobSpans], log_probs: np.ndarray, cut_penalty: float) -> list[Cutting]:
    """A written word's cuttings: its blobs' chains combined left to right, the best `BEAM` kept per
    number of characters (ranked as the free reading ranks them)."""
    top1 = log_probs.max(axis=1)
    beam = [Cutting((), 0.0, 0.0)]
    for blob in blobs:
        grown: dict[int, list[Cutting]] = {}
        for head, tail in itertools.product(beam, blob_cuttings(blob, top1, cut_penalty)):
            joined = Cutting(head.rows + tail.rows, head.prior + tail.prior, head.rank + tail.rank)
            grown.setdefault(len(joined.rows), []).append(joined)
        beam = [c for group in grown.values() for c in sorted(group, key=lambda c: -c.rank)[:BEAM]]
    return [c for c in beam if c.rows]


def _logsumexp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + math.log(float(np.exp(values - top).sum()))


@dataclass(frozen=True)
class LexiconSource:
    """Where a request's words come from: `english` (built in, its tokenisation cached per model)
    or `words` (the request's own list, tokenised per request)."""

    name: str
    words: tuple[str, ...] = ()

    def build(self, labels: tuple[str, ...]) -> Lexicon:
        if self.name == ENGLISH:
            return english_lexicon(labels)
        return Lexicon(self.words, labels)


ENGLISH = "english"
WORDS = "words"
# Longer than any word: a list with such an entry is not a word list.
MAX_WORD_LENGTH = 64


def lexicon_source(name: str | None, words: str | None, most: int) -> LexiconSource | None:
    """The request's lexicon: `english`, or its own `words` (separated by white space or commas,
    at most `most`), or none. Raises InvalidParameter for a request that cannot be meant."""
    if words is None:
        if name == WORDS:
            raise InvalidParameter(
                "lexicon=words needs the words themselves: send them in the form field `words`"
            )
        return LexiconSource(name) if name else None
    if name not in (None, WORDS):
        raise InvalidParameter(f"send either lexicon={name} or your own `words`, not both")
    listed = tuple(word for word in re.split(r"[\s,]+", words) if word)
    if not listed:
        raise InvalidParameter("the form field `words` holds no words")
    if len(listed) > most:
        raise InvalidParameter(f"at most {most} words per request, got {len(listed)}")
    if (longest := max(len(word) for word in listed)) > MAX_WORD_LENGTH:
        raise InvalidParameter(f"a word may be at most {MAX_WORD_LENGTH} characters long, got {longest}")
    return LexiconSource(WORDS, listed)


# How much the word's frequency counts beside the ink: chosen on synthetic words of held-out
# writers (bench.eval.read_eval --lexicon english, tuning seed 0; reported on seed 1).
ENGLISH_PRIOR_WEIGHT = 0.5


@functools.lru_cache(maxsize=4)
def english_lexicon(labels: tuple[str, ...]) -> Lexicon:
    """The built-in English words tokenised into one model's labels, once per model and process."""
    words = english_words()
    return Lexicon(words, labels, words, ENGLISH_PRIOR_WEIGHT)


# The built-in English lexicon: pyspellchecker's English word frequencies (MIT licence), the words
# of letters only, at least ENGLISH_MIN_COUNT occurrences, with their log relative frequency as the
# prior. A maintained list with frequencies, instead of a word file of our own to keep and licence.
ENGLISH_MIN_COUNT = 100


@cache
def english_words() -> dict[str, float]:
    """word → log relative frequency, most frequent first (read once per process)."""
    data = resources.files("spellchecker").joinpath("resources", "en.json.gz").read_bytes()
    counts: dict[str, int] = json.loads(gzip.decompress(data))
    kept = {w: c for w, c in counts.items() if c >= ENGLISH_MIN_COUNT and w.isascii() and w.isalpha()}
    total = sum(kept.values())
    return {w: math.log(c / total) for w, c in sorted(kept.items(), key=lambda item: -item[1])}

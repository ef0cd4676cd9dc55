"""Read segmented text: every candidate piece through the same preprocessing as a single upload
and one shared model call; of each blob's candidate cuts, those that make the likeliest reading
are kept; a character below the confidence threshold is rejected (`?`), not guessed. Pure numpy
(no web framework); `read_upload` is the whole way from an upload to `POST /read`'s answer.

The upload decodes at full size, unlike a single character's (`pipeline.prepare`): a word's
characters are each a fraction of the image, and the boxes answered are in the upload's pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from app.config import Settings
from app.errors import InvalidParameter, TooManyCharacters, TooManyPieces
from app.runtime.registry import LoadedModel
from app.schemas.predict import ModelRef, Prediction
from app.schemas.read import (
    LexiconReading,
    LexiconWord,
    ReadCharacter,
    ReadResponse,
    ReadTiming,
    WordAlternative,
)
from app.service.images import decode_upload, read_capped
from app.service.lexicon import BlobSpans, LexiconSource, word_cuttings
from app.service.pipeline import Stopwatch, ink_required
from app.service.segmentation import Blob, Box, TooManyParts, segment
from contract.manifest import Manifest
from contract.postprocessing import answer_log_probabilities, compose_top_k, head_probabilities, rank_heads
from contract.preprocessing import NoInkError, PreprocessConfig, preprocess

REJECT_MARK = "?"
# A blob is read as the pieces that maximise the sum of their log top-1 probabilities, less this
# for every cut: the pieces of a cut letter still look like letters (W → V V), so a cut must buy
# a clearly better reading. Chosen on synthetic words (bench.eval.read_eval, tuning seed 1).
CUT_PENALTY = 0.4
# Nothing we read is much wider than it is high: a piece wider than WIDE_FROM × the typical
# character height costs WIDE_PENALTY per height beyond (4 touching letters are not one W).
WIDE_FROM = 1.2
WIDE_PENALTY = 1.0

# Below this top-1 probability a character is rejected: `?`, not a guess. Chosen on synthetic
# words (bench.eval.read_eval, tuning seed 1). A composed answer's probability is the product of its
# heads', so its default is this per head (Bengali graphemes: 0.7³ ≈ 0.34).
MIN_CONFIDENCE = 0.7

Ranked = list[tuple[str, float]]  # top-k (label, probability), best first


@dataclass(frozen=True)
class Candidates:
    """The model inputs of every blob's spans (whole and pieces), one row each."""

    inputs: np.ndarray  # N×1×S×S float32
    rows: list[dict[tuple[int, int], int]]  # per blob: span → its row (spans that vanish left out)


@dataclass(frozen=True)
class Character:
    box: Box
    line: int
    space_before: bool
    predictions: Ranked
    rejected: bool
    blob: int = 0  # the index of the blob it was cut from (its written word's lexicon reading)


def candidates(blobs: list[Blob], cfg: PreprocessConfig) -> Candidates:
    """Blocking: each span's glyph (an ink-high image, like a training scan) through `preprocess`."""
    inputs: list[np.ndarray] = []
    rows = []
    for blob in blobs:
        found = {}
        for span, glyph in blob.spans.items():
            try:
                inputs.append(preprocess(glyph.ink, cfg))
            except NoInkError:
                continue  # the marks vanish at the model's resolution: not a character
            found[span] = len(inputs) - 1
        rows.append(found)
    if not inputs:
        raise NoInkError("no ink found: the marks vanish at the model's resolution")
    return Candidates(np.stack(inputs), rows)


def ranked_rows(logits: dict[str, np.ndarray], manifest: Manifest, k: int) -> list[Ranked]:
    """Top-k of every row: the first head's labels, or whole answers when the manifest composes them."""
    heads = manifest.heads
    rows = len(logits[heads[0].name])
    if manifest.composition is None:
        return [rank_heads(logits, heads, k, index=i)[heads[0].name] for i in range(rows)]
    return [
        compose_top_k(manifest.composition, head_probabilities(logits, heads, index=i), heads, k)
        for i in range(rows)
    ]


def default_min_confidence(manifest: Manifest) -> float:
    return MIN_CONFIDENCE ** (len(manifest.heads) if manifest.composition else 1)


def span_score(probability: float, width: int, height: float) -> float:
    """How well a span reads as one character: its log top-1 probability, less the width prior."""
    wide = max(0.0, width / height - WIDE_FROM) if height > 0 else 0.0
    return math.log(max(probability, 1e-12)) - WIDE_PENALTY * wide


def best_spans(pieces: int, scores: dict[tuple[int, int], float]) -> list[tuple[int, int]]:
    """The chain of spans from cut 0 to cut `pieces` with the highest Σ score − CUT_PENALTY per
    inner cut (dynamic programming over the cuts); empty if no chain covers the blob."""
    best: dict[int, tuple[float, int]] = {0: (0.0, -1)}  # cut → (best score up to it, previous cut)
    for j in range(1, pieces + 1):
        for i in range(j):
            if i in best and (i, j) in scores:
                score = best[i][0] + scores[(i, j)] - (CUT_PENALTY if i > 0 else 0.0)
                if j not in best or score > best[j][0]:
                    best[j] = (score, i)
    if pieces not in best:
        return []
    spans, j = [], pieces
    while j > 0:
        i = best[j][1]
        spans.append((i, j))
        j = i
    return spans[::-1]


def characters(
    blobs: list[Blob], found: Candidates, ranked: list[Ranked], min_confidence: float
) -> list[Character]:
    """Each blob read as its best pieces (often the whole), in reading order."""
    read = []
    for b, (blob, rows) in enumerate(zip(blobs, found.rows, strict=True)):
        scores = {
            span: span_score(ranked[row][0][1], blob.spans[span].box[2], blob.height)
            for span, row in rows.items()
        }
        for n, span in enumerate(best_spans(blob.pieces, scores)):
            top = ranked[rows[span]]
            rejected = top[0][1] < min_confidence
            read.append(
                Character(blob.spans[span].box, blob.line, blob.space_before and n == 0, top, rejected, b)
            )
    return read


def text_of(read: list[Character]) -> str:
    """The top answers in reading order: lines joined by newlines, word gaps as spaces, `?` rejected."""
    out = []
    for i, char in enumerate(read):
        if i > 0 and char.line != read[i - 1].line:
            out.append("\n")
        elif char.space_before:
            out.append(" ")
        out.append(REJECT_MARK if char.rejected else char.predictions[0][0])
    return "".join(out)


def check_pieces(blobs: list[Blob], most: int) -> None:
    """Refuse an image whose candidate characters exceed `most`, before any is preprocessed."""
    pieces = sum(len(blob.spans) for blob in blobs)
    if pieces > most:
        raise TooManyPieces(
            f"the image gives {pieces} candidate characters (its marks and the pieces of touching ones); "
            f"at most {most} are read per image: send fewer characters per image"
        )


@dataclass(frozen=True)
class Reading:
    """An image read: its characters, and what a lexicon needs to read its words again."""

    characters: list[Character]
    blobs: list[Blob]
    found: Candidates
    logits: dict[str, np.ndarray]


def read_image(
    model: LoadedModel, data: bytes, settings: Settings, k: int, min_confidence: float, stopwatch: Stopwatch
) -> Reading:
    """Blocking: an image file's bytes → its characters in reading order, timed per stage."""
    cfg = model.manifest.preprocessing
    with stopwatch.stage("decode"):
        image = decode_upload(data, settings)
    try:
        with ink_required():
            with stopwatch.stage("segment"):
                blobs = segment(image, cfg)
            check_pieces(blobs, settings.read_max_pieces)
            with stopwatch.stage("preprocess"):
                found = candidates(blobs, cfg)
    except TooManyParts as exc:
        raise TooManyCharacters(str(exc)) from exc
    with stopwatch.stage("inference"):
        # In chunks of `inference_max_batch` (the classifier's own limit).
        logits = model.classifier.predict(found.inputs)
    read = characters(blobs, found, ranked_rows(logits, model.manifest, k), min_confidence)
    return Reading(read, blobs, found, logits)


def read_characters(
    model: LoadedModel, data: bytes, settings: Settings, k: int, min_confidence: float, stopwatch: Stopwatch
) -> list[Character]:
    """Blocking: an image file's bytes → its characters in reading order, timed per stage."""
    return read_image(model, data, settings, k, min_confidence, stopwatch).characters


def written_words(blobs: list[Blob]) -> list[list[int]]:
    """The blobs of each written word, in reading order: a word ends at a word gap or a line's end."""
    words: list[list[int]] = []
    for i, blob in enumerate(blobs):
        if not words or blob.space_before or blob.line != blobs[i - 1].line:
            words.append([])
        words[-1].append(i)
    return words


def blob_spans(blob: Blob, rows: dict[tuple[int, int], int]) -> BlobSpans:
    """A blob's pieces as the lexicon scores them: each span's model row and its width prior."""
    return BlobSpans(
        blob.pieces,
        {span: (row, span_score(1.0, blob.spans[span].box[2], blob.height)) for span, row in rows.items()},
    )


def read_with_lexicon(reading: Reading, manifest: Manifest, source: LexiconSource) -> LexiconReading:
    """Every written word read again as the lexicon's word that explains its ink best (where no
    word of the lexicon has a fitting length, `word` is None and the free reading stands)."""
    labels, log_probs = answer_log_probabilities(reading.logits, manifest.heads, manifest.composition)
    lexicon = source.build(tuple(labels))
    if len(lexicon) == 0:
        raise InvalidParameter(
            f"none of the lexicon's words can be written with the {manifest.task!r} model's labels"
        )
    words = []
    for group in written_words(reading.blobs):
        spans = [blob_spans(reading.blobs[i], reading.found.rows[i]) for i in group]
        match = lexicon.match(word_cuttings(spans, log_probs, CUT_PENALTY), log_probs)
        free = "".join(
            REJECT_MARK if c.rejected else c.predictions[0][0] for c in reading.characters if c.blob in group
        )
        line = reading.blobs[group[0]].line
        if match is None:
            words.append(LexiconWord(read=free, line=line))
            continue
        alternatives = [WordAlternative(word=w, probability=p) for w, p in match.alternatives]
        words.append(
            LexiconWord(
                read=free,
                line=line,
                word=match.word,
                probability=match.probability,
                alternatives=alternatives,
            )
        )
    return LexiconReading(source=source.name, text=lexicon_text(words), words=words)


def lexicon_text(words: list[LexiconWord]) -> str:
    """The lexicon's words (a free reading where none fits), spaced and lined as `text` is."""
    out = []
    for i, word in enumerate(words):
        if i > 0:
            out.append("\n" if word.line != words[i - 1].line else " ")
        out.append(word.read if word.word is None else word.word)
    return "".join(out)


def read_upload(
    model: LoadedModel,
    upload: BinaryIO,
    settings: Settings,
    k: int,
    min_confidence: float,
    lexicon: LexiconSource | None = None,
) -> ReadResponse:
    """Blocking: the uploaded file → the response, timed per stage (and read again through the
    lexicon, if one is given)."""
    stopwatch = Stopwatch()
    data = read_capped(upload, settings.max_upload_bytes)
    reading = read_image(model, data, settings, k, min_confidence, stopwatch)
    by_lexicon = None
    if lexicon is not None:
        with stopwatch.stage("lexicon"):
            by_lexicon = read_with_lexicon(reading, model.manifest, lexicon)
    seconds = stopwatch.finish()
    read = reading.characters
    return ReadResponse(
        task=model.manifest.task,
        model=ModelRef(name=model.manifest.name, version=model.manifest.version),
        text=text_of(read),
        characters=[
            ReadCharacter(
                box=list(c.box),
                line=c.line,
                predictions=[Prediction(label=label, probability=p) for label, p in c.predictions],
                rejected=c.rejected,
            )
            for c in read
        ],
        lexicon=by_lexicon,
        timing_ms=ReadTiming(**{stage: round(s * 1000, 3) for stage, s in seconds.items()}),
    )

"""How well `POST /read/{task}` reads synthetic words and numbers of held-out handwriting.

    HWR_DATA_DIR=../shared/data .venv/bin/python -m bench.eval.read_eval --n 500 [--seed 0] [--task letter]

In process, on the committed models, through exactly the endpoint's path (decode → segment →
preprocess every candidate → one model call → choice of cuts). Per confidence threshold:

- character accuracy: 1 − Σ Levenshtein(read, truth) / Σ len(truth); a `?` counts as an error;
- whole-string accuracy: the share of strings read exactly (with no `?`);
- reject rate: the share of read characters rejected, and the accuracy of those accepted
  (aligned to the truth by the edit distance: a wrong or spurious accepted character is an error);
- confidently wrong: strings with no `?` that are still wrong (what rejection should prevent);
- segmentation: strings cut into exactly as many characters as written.

`--lexicon english` / `--lexicon words` also read each letters string through the built-in English
words, or through the sample words' own list sent as a request's `words`, and report the whole
strings read right each way.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.config import Settings
from app.errors import ServiceError
from app.runtime.registry import LoadedModel, load_models
from app.service.lexicon import LexiconSource
from app.service.pipeline import Stopwatch
from app.service.reading import REJECT_MARK, read_image, read_with_lexicon
from bench.eval.words import REPO, WORDS, Sample, build_samples

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class Read:
    truth: str
    labels: str  # the first answer of every character read (spaces and newlines dropped)
    confidences: tuple[float, ...]
    by_lexicon: dict[str, str] = field(default_factory=dict)  # lexicon → its reading (no spaces, upper case)


# The service's own limits, except that no sample is refused for its number of candidate pieces.
SETTINGS = Settings(read_max_pieces=1_000_000)


def read_sample(model: LoadedModel, sample: Sample, lexicons: Sequence[LexiconSource] = ()) -> Read:
    """`sample` read as POST /read reads an upload (app.service.reading), every answer kept, and
    read again through each lexicon."""
    try:
        reading = read_image(model, sample.image, SETTINGS, 1, 0.0, Stopwatch())
        by_lexicon = {
            source.name: read_with_lexicon(reading, model.manifest, source).text for source in lexicons
        }
    except ServiceError:  # no ink, too many characters, not an image
        return Read(sample.text, "", (), {})
    read = reading.characters
    return Read(
        sample.text,
        "".join(c.predictions[0][0] for c in read),
        tuple(c.predictions[0][1] for c in read),
        {name: "".join(text.split()).upper() for name, text in by_lexicon.items()},
    )


def lexicon_report(reads: list[Read], lexicons: Sequence[LexiconSource]) -> None:
    """Whole strings read right: freely (no rejection) and through each lexicon."""
    print("| reading | whole-string accuracy |\n|---|---|")
    print(f"| free (no lexicon, no rejection) | {sum(r.labels == r.truth for r in reads) / len(reads):.2%} |")
    for source in lexicons:
        right = sum(r.by_lexicon.get(source.name) == r.truth for r in reads)
        print(f"| lexicon `{source.name}` | {right / len(reads):.2%} |")


def alignment(read: str, truth: str) -> list[tuple[str | None, str | None]]:
    """Levenshtein alignment: (read char or None, truth char or None) pairs."""
    n, m = len(read), len(truth)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (read[i - 1] != truth[j - 1])
            )
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (read[i - 1] != truth[j - 1]):
            pairs.append((read[i - 1], truth[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((read[i - 1], None))
            i -= 1
        else:
            pairs.append((None, truth[j - 1]))
            j -= 1
    return pairs[::-1]


def scores(reads: list[Read], threshold: float) -> dict[str, float]:
    errors = length = exact = confident_wrong = rejected = accepted = accepted_right = 0
    for r in reads:
        text = "".join(
            REJECT_MARK if p < threshold else c for c, p in zip(r.labels, r.confidences, strict=True)
        )
        pairs = alignment(text, r.truth)
        errors += sum(a != b for a, b in pairs)
        length += len(r.truth)
        exact += text == r.truth
        confident_wrong += REJECT_MARK not in text and text != r.truth
        rejected += text.count(REJECT_MARK)
        for got, want in pairs:
            if got is not None and got != REJECT_MARK:
                accepted += 1
                accepted_right += got == want
    read_chars = sum(len(r.labels) for r in reads)
    return {
        "char_acc": 1 - errors / length,
        "string_acc": exact / len(reads),
        "reject_rate": rejected / max(read_chars, 1),
        "accepted_acc": accepted_right / max(accepted, 1),
        "confident_wrong": confident_wrong / len(reads),
    }


def report(task: str, reads: list[Read]) -> None:
    segmented = sum(len(r.labels) == len(r.truth) for r in reads) / len(reads)
    print(f"\n{task}: {len(reads)} strings, {sum(len(r.truth) for r in reads)} characters; "
          f"segmented into the right number of characters: {segmented:.1%}")  # fmt: skip
    print("| min_confidence | character accuracy | whole-string accuracy | rejected characters "
          "| accuracy of accepted characters | strings confidently wrong |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for t in THRESHOLDS:
        s = scores(reads, t)
        print(f"| {t:g} | {s['char_acc']:.2%} | {s['string_acc']:.2%} | {s['reject_rate']:.2%} "
              f"| {s['accepted_acc']:.2%} | {s['confident_wrong']:.2%} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="strings per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", choices=("letter", "digit"), action="append", help="default: both")
    parser.add_argument(
        "--lexicon",
        choices=("english", "words"),
        action="append",
        help="letters also read through a lexicon: the built-in English words, or the sample words' own "
        "list as a request's `words` would send it",
    )
    args = parser.parse_args(argv)
    registry = load_models(REPO / "models", 1)
    for task in args.task or ["letter", "digit"]:
        model = registry.get(task)
        samples = build_samples(task, args.n, args.seed)
        lexicons = [
            LexiconSource(name, WORDS if name == "words" else ())
            for name in args.lexicon or []
            if task == "letter"
        ]
        started = time.perf_counter()
        reads = [read_sample(model, s, lexicons) for s in samples]
        report(task, reads)
        if lexicons:
            lexicon_report(reads, lexicons)
        per_string_ms = (time.perf_counter() - started) / len(reads) * 1000
        print(f"mean time per string (decode → text, in process): {per_string_ms:.0f} ms")
        wrong = [r for r in reads if r.labels != r.truth][:8]
        print("examples read wrong (truth → read):", ", ".join(f"{r.truth}→{r.labels}" for r in wrong))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score the letters and digits models on the photo test set (bench/photo_set.py) through the service.

    HWR_DATA_DIR=../shared/data .venv/bin/python -m bench.eval.photo_eval --letters 1500 --digits 750 \
        [--seed 0] [--json out.json] [--dump DIR]

Every sample is uploaded to `POST /predict/{task}` of the app (`app.main.create_app`, in process
through FastAPI's TestClient, the committed models): what is measured is what a client gets.
Reported per task, overall and per paper, pen, light and crop: top-1, and how many uploads were
answered 422 `no_ink` (each of them a false 422: every sample holds a character).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from bench.photo_set import LIGHTS, PAPERS, PENS, Sample, build_set

CONDITIONS = {"paper": PAPERS, "pen": PENS, "light": LIGHTS, "crop": ("tight", "loose")}


@dataclass(frozen=True)
class Answer:
    sample: Sample
    status: int
    label: str  # top-1, "" when not answered 200
    code: str  # the error code when not answered 200

    @property
    def correct(self) -> bool:
        return self.status == 200 and self.label == self.sample.label

    @property
    def no_ink(self) -> bool:
        return self.code == "no_ink"


def ask(client: TestClient, sample: Sample) -> Answer:
    mime = "image/png" if sample.fmt == ".png" else "image/jpeg"
    response = client.post(
        f"/predict/{sample.task}", files={"file": (sample.name, sample.data, mime)}, params={"k": 1}
    )
    body = response.json()
    if response.status_code == 200:
        return Answer(sample, 200, body["predictions"][0]["label"], "")
    return Answer(sample, response.status_code, "", body.get("error", {}).get("code", ""))


def summary(answers: Iterable[Answer]) -> dict[str, float]:
    answers = [a for a in answers if not a.sample.blank]
    n = len(answers)
    return {
        "n": n,
        "top1": sum(a.correct for a in answers) / n if n else 0.0,
        "no_ink": sum(a.no_ink for a in answers),
        "other_errors": sum(a.status != 200 and not a.no_ink for a in answers),
    }


def report(answers: list[Answer]) -> dict[str, dict[str, dict[str, float]]]:
    """{"all": {"all": ...}, condition: {value: ...}} for one task's answers."""
    blanks = [a for a in answers if a.sample.blank]
    out: dict[str, dict[str, dict[str, float]]] = {
        "all": {"all": summary(answers)},
        # A blank crop answered with a label is a false answer; 422 no_ink is right.
        "blank": {"all": {"n": len(blanks), "answered": sum(a.status == 200 for a in blanks)}},
    }
    for condition, values in CONDITIONS.items():
        groups: dict[str, list[Answer]] = defaultdict(list)
        for a in answers:
            groups[getattr(a.sample, condition)].append(a)
        out[condition] = {v: summary(groups[v]) for v in values}
    return out


def table(task: str, result: dict[str, dict[str, dict[str, float]]]) -> str:
    total, blank = result["all"]["all"], result["blank"]["all"]
    lines = [
        f"{task}: top-1 {total['top1']:.1%}, no_ink {total['no_ink']:.0f} of {total['n']:.0f}; "
        f"blank crops answered {blank['answered']:.0f} of {blank['n']:.0f}"
    ]
    for condition in CONDITIONS:
        cells = ", ".join(
            f"{value} {s['top1']:.1%} ({s['no_ink']:.0f})" for value, s in result[condition].items()
        )
        lines.append(f"  {condition}: {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--letters", type=int, default=1500, help="letter samples")
    parser.add_argument("--digits", type=int, default=750, help="digit samples")
    parser.add_argument("--blanks", type=int, default=0, help="blank crops per task (must be 422)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="default: HWR_DATA_DIR or ../shared/data")
    parser.add_argument("--model-dir", type=Path, help="default: the repository's models/")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--dump", type=Path, help="write every wrongly answered upload here")
    args = parser.parse_args(argv)

    settings = Settings(model_dir=args.model_dir) if args.model_dir else Settings()
    results: dict[str, object] = {}
    with TestClient(create_app(settings)) as client:
        for task, count in (("letter", args.letters), ("digit", args.digits)):
            if count <= 0:
                continue
            samples = build_set(task, count, args.seed, args.data_dir, settings.model_dir, args.blanks)
            answers = [ask(client, s) for s in samples]
            results[task] = report(answers)
            print(table(task, results[task]), flush=True)
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                for a in answers:
                    if a.sample.blank != (a.status != 200) or (not a.sample.blank and not a.correct):
                        tag = a.code or a.label
                        (args.dump / f"{Path(a.sample.name).stem}_got_{tag}{a.sample.fmt}").write_bytes(
                            a.sample.data
                        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

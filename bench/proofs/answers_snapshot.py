"""Every model endpoint's answers to a fixed set of images, as one JSON file, to compare two trees.

    .venv/bin/python -m bench.proofs.answers_snapshot --out /tmp/answers_before.json
    (change the code)
    .venv/bin/python -m bench.proofs.answers_snapshot --out /tmp/answers_after.json \
        --compare /tmp/answers_before.json

Posts the images of tests/data and a few drawn ones (bench.photos, seeded) to `/predict/{task}`
(with and without the dynamic batcher, and with `preview`), `/predict/{task}/batch`,
`/read/{task}`, v2 infer (`image_bytes`), and enrols, extends, lists and identifies writers,
through FastAPI's TestClient in this process, with broken uploads (empty, not an image, blank)
beside the good ones. The answers are kept minus what changes from run to run (timings, request
ids, creation times). Point `--model-dir` at a copy of models/ when the committed models may
change between the two runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from bench.photos import TEST_DATA, make_upload, sample_glyphs
from bench.server import REPO

VOLATILE = {"timing_ms", "request_id", "created"}
BROKEN = {"empty.png": b"", "text.png": b"not an image at all", "blank_photo.jpg": None}
TASK_IMAGES = {"letter": "*.*", "digit": "digits/*.*", "grapheme": "bengali/*.png"}


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def answer(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": scrub(body)}


def word_image(text: str, height: int, fmt: str) -> bytes:
    """Dark handwriting-like strokes of `text` on light paper, `height` px high, encoded."""
    scale = height / 60
    width = int(len(text) * 40 * scale + 80 * scale)
    canvas = np.full((height, width, 3), (225, 232, 238), np.uint8)
    cv2.putText(
        canvas, text, (int(30 * scale), int(45 * scale)), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.4 * scale,
        (40, 30, 30), max(2, int(3 * scale)), cv2.LINE_AA,
    )  # fmt: skip
    ok, data = cv2.imencode(fmt, canvas, [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == ".jpg" else [])
    assert ok
    return data.tobytes()


def images_for(task: str) -> dict[str, bytes]:
    files = {
        p.relative_to(TEST_DATA).as_posix(): p.read_bytes() for p in sorted(TEST_DATA.glob(TASK_IMAGES[task]))
    }
    files = {name: data for name, data in files.items() if not name.endswith((".md", ".py"))}
    glyphs = sample_glyphs(task)[:3] if task in ("letter", "digit") else []
    for i, glyph in enumerate(glyphs):
        for kind in ("crop", "photo_640"):
            upload = make_upload(kind, i, glyph, seed=7)
            files[f"drawn/{upload.name}"] = upload.data
    return files


def broken_files() -> dict[str, bytes]:
    return {
        name: data if data is not None else (TEST_DATA / name).read_bytes() for name, data in BROKEN.items()
    }


def word_files(task: str) -> dict[str, bytes]:
    text = {"letter": "HELLO", "digit": "2024", "grapheme": ""}[task]
    if not text:
        return {}
    return {
        f"word_{text}_small.png": word_image(text, 60, ".png"),
        f"word_{text}_large.jpg": word_image(text, 900, ".jpg"),
        f"word_{text}_medium.jpg": word_image(text, 300, ".jpg"),
    }


def chunks(items: list[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def classify(client: TestClient, out: dict[str, Any], tag: str, tasks: list[str]) -> None:
    for task in tasks:
        files = images_for(task) | broken_files()
        for name, data in files.items():
            out[f"{tag} POST /predict/{task} {name}"] = answer(
                client.post(f"/predict/{task}", files={"file": (name, data)}, params={"k": 3})
            )


def snapshot(model_dir: Path, writer_model_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            model_dir=model_dir, writer_model_dir=writer_model_dir, writer_db=str(Path(tmp) / "w.sqlite3")
        )
        with TestClient(create_app(settings)) as client:
            out["GET /models"] = answer(client.get("/models"))
            out["GET /health/ready"] = answer(client.get("/health/ready"))
            tasks = sorted(client.get("/models").json()["models"], key=lambda m: m["task"])
            names = {m["task"]: m["name"] for m in tasks}
            classify(client, out, "plain", list(names))
            for task, name in names.items():
                files = images_for(task)
                for image in list(files)[:2]:
                    out[f"POST /predict/{task}?preview {image}"] = answer(
                        client.post(
                            f"/predict/{task}",
                            files={"file": (image, files[image])},
                            params={"preview": "true"},
                        )
                    )
                batch = list((files | broken_files()).items())
                for i, part in enumerate(chunks(batch, settings.max_batch_files)):
                    out[f"POST /predict/{task}/batch #{i}"] = answer(
                        client.post(f"/predict/{task}/batch", files=[("files", item) for item in part])
                    )
                for image, data in (files | word_files(task) | broken_files()).items():
                    out[f"POST /read/{task} {image}"] = answer(
                        client.post(f"/read/{task}", files={"file": (image, data)})
                    )
                some = list(files.values())[:4]
                infer = {
                    "inputs": [
                        {
                            "name": "image_bytes",
                            "datatype": "BYTES",
                            "shape": [len(some)],
                            "data": [base64.b64encode(d).decode() for d in some],
                        }
                    ],
                    "outputs": [
                        {"name": h, "parameters": {"classification": 3}} for h in output_names(client, name)
                    ],
                }
                out[f"POST /v2/models/{name}/infer image_bytes"] = answer(
                    client.post(f"/v2/models/{name}/infer", json=infer)
                )
                for broken, data in broken_files().items():
                    bad = {
                        "inputs": [
                            {**infer["inputs"][0], "shape": [1], "data": [base64.b64encode(data).decode()]}
                        ]
                    }
                    out[f"POST /v2/models/{name}/infer {broken}"] = answer(
                        client.post(f"/v2/models/{name}/infer", json=bad)
                    )
            writers(client, out)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(model_dir=model_dir, writer_model_dir=writer_model_dir, batch_max_size=4)
        with TestClient(create_app(settings)) as client:
            classify(client, out, "batcher", ["letter"])
    return out


def output_names(client: TestClient, name: str) -> list[str]:
    return [output["name"] for output in client.get(f"/v2/models/{name}").json()["outputs"]]


def writers(client: TestClient, out: dict[str, Any]) -> None:
    letters = images_for("letter")
    scans = [(n, d) for n, d in letters.items() if n.endswith("_scan.png")]
    photos = [(n, d) for n, d in letters.items() if n.endswith("_photo.jpg")]
    drawn = [(n, d) for n, d in letters.items() if n.startswith("drawn/")]
    large = [("large.jpg", word_image("A", 1200, ".jpg")), ("medium.jpg", word_image("B", 400, ".jpg"))]

    def post(path: str, files: list[tuple[str, bytes]], **data: Any) -> Any:
        return client.post(
            path, files=[("files", f) for f in files], data=data, params={"store_images": "true"}
        )

    first = post("/writers", scans[:4], name="scans")
    out["POST /writers scans"] = answer(first)
    out["POST /writers photos"] = answer(post("/writers", photos[:4], name="photos"))
    out["POST /writers drawn+large"] = answer(post("/writers", drawn + large, name="drawn"))
    if first.status_code == 201:
        writer = first.json()["id"]
        out["POST /writers/{id}/samples"] = answer(post(f"/writers/{writer}/samples", scans[4:6]))
    for label, query in {"scans": scans[6:9], "photos": photos[4:7], "large": large}.items():
        out[f"POST /identify/writer {label}"] = answer(
            client.post("/identify/writer", files=[("files", f) for f in query], params={"k": 3})
        )
    for name, data in broken_files().items():
        out[f"POST /writers {name}"] = answer(post("/writers", [scans[0], (name, data)], name="broken"))
    out["GET /writers"] = answer(client.get("/writers"))


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = [f"only before: {key}" for key in before if key not in after]
    lines += [f"only after: {key}" for key in after if key not in before]
    for key in before.keys() & after.keys():
        if before[key] != after[key]:
            was, now = json.dumps(before[key])[:600], json.dumps(after[key])[:600]
            lines.append(f"differs: {key}\n  before {was}\n  after  {now}")
    return sorted(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--writer-model-dir", type=Path, default=None, help="default: MODEL_DIR/writers")
    parser.add_argument("--compare", type=Path, default=None, help="an earlier snapshot to compare with")
    args = parser.parse_args(argv)
    answers = snapshot(args.model_dir, args.writer_model_dir or args.model_dir / "writers")
    args.out.write_text(json.dumps(answers, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    print(f"{len(answers)} answers written to {args.out}")
    if args.compare is None:
        return 0
    differences = compare(json.loads(args.compare.read_text(encoding="utf-8")), answers)
    print("\n".join(differences) or "no differences")
    print(f"{len(differences)} of {len(answers)} answers differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())

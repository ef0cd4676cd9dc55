"""The KServe v2 codec under random requests, against the running service: only 2xx and 4xx.

    .venv/bin/python -m bench.proofs.v2_fuzz                       # 3000 requests, seed 0
    .venv/bin/python -m bench.proofs.v2_fuzz --count 200 --seed 5

Each request is built from parts a codec has to survive: shapes with 0, negative, huge (2^31 ..
10^30), non-integer dimensions and up to 40 of them; known, unknown, lower-case and non-string
datatypes; names, model names and request ids with non-ASCII text and lone surrogates (escaped
in JSON, so the text is valid JSON); data shorter or longer than the shape, nested, of the
wrong type, bad base64; parameters and requested outputs of every type; sent as JSON or with the
binary extension (an `Inference-Header-Content-Length` that is right, too long, negative, not a
number; binary data of the wrong size), and now and then as invalid UTF-8 or truncated bytes.
Real model names and inputs are picked often enough that requests get deep into the codec. On
`python -m app` with the committed models and default settings; exits 1 on any other answer
than 2xx/4xx (or none), printing the first such requests.
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import sys
import urllib.parse
from collections import Counter

from PIL import Image, ImageDraw

from bench import cli
from bench.server import Server, post_status

# Real models most of the time, so requests get past the routing.
MODELS = ["letters"] * 16 + ["letter", "digits", "graphemes", "nope", "é", "\ud800", "a/b", ""]
INPUTS = ["image", "image_bytes", "", "Image", "ímage", "\udfff", "x" * 300]
DATATYPES = ["FP32", "BYTES", "FP16", "FP64", "INT64", "UINT8", "BOOL", "fp32", "FP8", "STRING", "", 5, None]
DIMENSIONS = [0, 1, 1, 2, 28, 28, 32, 33, -1, -5, 2**31, 2**62, 2**63, 2**64, 10**30, 1.5, "28", None]
TEXTS = ["", "a", "é", "\u202e", "\ud800", "\udc00x", "\x00", "😀" * 50, "id" * 1000]


def letter_png() -> bytes:
    """A 28 x 28 grey PNG with one dark stroke: a character the models answer."""
    image = Image.new("L", (28, 28), 240)
    ImageDraw.Draw(image).line([(6, 22), (14, 5), (22, 22)], fill=20, width=3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


LETTER_PNG = base64.b64encode(letter_png()).decode()


def shape(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.45:  # the real ones, often: a batch of 28 x 28 images, or of encoded images
        return rng.choice([[rng.choice([0, 1, 2, 32, 33]), 1, 28, 28], [rng.choice([0, 1, 2, 32, 33])]])
    if roll < 0.9:
        return [rng.choice(DIMENSIONS) for _ in range(rng.choice([0, 1, 2, 4, 4, 5, 33, 40]))]
    return rng.choice([None, "28", 28, {}, [[1, 28]]])


def data(rng: random.Random, datatype: object, dims: object) -> object:
    """Values for the tensor: about the right number sometimes, else too few, too many or odd."""
    count = 1
    if isinstance(dims, list) and all(isinstance(d, int) and 0 <= d < 10_000 for d in dims):
        for d in dims:
            count *= d
    count = min(count, 40_000)
    count = rng.choice([count, count, max(0, count - 1), count + 1, 0, rng.randrange(0, 100)])
    if datatype == "BYTES":
        values = ["iVBORw0KGgo=", "", "!!not base64", "\ud800", "/9j/4AAQ"]
        return [rng.choice(values) for _ in range(min(count, 64))]
    kind = rng.random()
    if kind < 0.7:
        return [rng.random() for _ in range(count)]
    if kind < 0.8:
        return [[rng.random()] * 28 for _ in range(count // 28)]  # nested
    return rng.choice([None, "x", {}, [None, "a", True], [1e308, -1e308, float("nan")], [2**70]])


def coherent(rng: random.Random) -> dict[str, object]:
    """A tensor the service accepts: preprocessed 28 x 28 images, or encoded ones."""
    count = rng.choice([1, 1, 2, 32])
    if rng.random() < 0.5:
        values = [round(rng.random(), 3) for _ in range(count * 784)]
        return {"name": "image", "datatype": "FP32", "shape": [count, 1, 28, 28], "data": values}
    return {"name": "image_bytes", "datatype": "BYTES", "shape": [count], "data": [LETTER_PNG] * count}


def tensor(rng: random.Random) -> dict[str, object]:
    """Often a coherent tensor with one or two parts replaced, else every part at random."""
    if rng.random() < 0.75:
        entry = coherent(rng)
        for part in rng.sample(
            ["name", "datatype", "shape", "data", "parameters"], rng.choice([0, 0, 1, 1, 2])
        ):
            entry[part] = {
                "name": lambda: rng.choice(INPUTS),
                "datatype": lambda: rng.choice(DATATYPES),
                "shape": lambda: shape(rng),
                "data": lambda: data(rng, entry["datatype"], entry["shape"]),
                "parameters": lambda: rng.choice(
                    [{}, None, [], {"binary_data_size": rng.choice([-1, 0, 2**64])}]
                ),
            }[part]()
        return entry
    datatype = rng.choice(DATATYPES)
    dims = shape(rng)
    entry = {"name": rng.choice(INPUTS), "datatype": datatype, "shape": dims}
    if rng.random() < 0.9:
        entry["data"] = data(rng, datatype, dims)
    for key in ("name", "datatype", "shape"):
        if rng.random() < 0.03:
            del entry[key]
    return entry


def request_json(rng: random.Random) -> dict[str, object]:
    body: dict[str, object] = {"inputs": [tensor(rng) for _ in range(rng.choice([1] * 8 + [0, 2, 3]))]}
    if rng.random() < 0.4:
        body["id"] = rng.choice([*TEXTS, 5, None, [], {"a": 1}])
    if rng.random() < 0.3:
        outputs = [
            {"name": rng.choice(["letter_logits", "letter", "digit", *TEXTS])}
            for _ in range(rng.randrange(3))
        ]
        for output in outputs:
            if rng.random() < 0.5:
                k = rng.choice([0, 1, 3, -1, 2**40, "3", None, 1.5])
                output["parameters"] = {"classification": k, "binary_data": rng.random() < 0.5}
        body["outputs"] = outputs
    if rng.random() < 0.2:
        body["parameters"] = rng.choice(
            [{"binary_data_output": True}, {"binary_data_output": "yes"}, [], None]
        )
    if rng.random() < 0.03:
        return rng.choice([[], "x", 5, None])  # type: ignore[return-value]
    return body


def raw_of(entry: dict[str, object], rng: random.Random) -> bytes:
    """The input's data as the binary extension lays it out when it can be, else some bytes."""
    values = entry.get("data")
    if rng.random() < 0.7 and isinstance(values, list) and values:
        if entry.get("datatype") == "FP32" and all(isinstance(v, float) and abs(v) <= 1 for v in values):
            return struct.pack(f"<{len(values)}f", *values)
        if entry.get("datatype") == "BYTES" and values == [LETTER_PNG] * len(values):
            image = base64.b64decode(LETTER_PNG)
            return (struct.pack("<I", len(image)) + image) * len(values)
    size = rng.choice([0, 4, 3136, 3136 * 32, 3135, rng.randrange(0, 5000)])
    if entry.get("datatype") == "BYTES":  # one element's length prefix, right or not
        return (struct.pack("<I", max(0, size - 4)) + bytes(size))[:size]
    return bytes(size)


def binary_form(rng: random.Random, body: object) -> tuple[bytes, dict[str, str]]:
    """Move inputs' data after the JSON header as raw bytes; sizes and header length mostly right."""
    tail = b""
    for entry in body.get("inputs", []) if isinstance(body, dict) else []:
        if isinstance(entry, dict) and rng.random() < 0.8:
            raw = raw_of(entry, rng)
            entry.pop("data", None)
            size = len(raw)
            entry["parameters"] = {"binary_data_size": rng.choice([size] * 5 + [size + 1, size - 1, -size])}
            tail += raw
    header = json.dumps(body).encode()
    length = rng.choice([len(header)] * 10 + [len(header) + 10, -1, 0, 10**12, "x", len(header) - 1])
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(length)}
    return header + tail, headers


def build(rng: random.Random) -> tuple[str, bytes, dict[str, str]]:
    """(URL path, body, headers) of one request."""
    model = urllib.parse.quote(rng.choice(MODELS).encode("utf-8", "surrogatepass"), safe="")
    path = f"/v2/models/{model}/infer"
    if rng.random() < 0.1:
        version = urllib.parse.quote(
            rng.choice(["1", "0.1.0", "é", "\ud800", "x" * 200]).encode("utf-8", "surrogatepass")
        )
        path = f"/v2/models/{model}/versions/{version}/infer"
    body = request_json(rng)
    if rng.random() < 0.35:
        payload, headers = binary_form(rng, body)
    else:
        payload, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    roll = rng.random()
    if roll < 0.03:
        payload = payload[: rng.randrange(len(payload) + 1)]  # cut short
    elif roll < 0.06:
        at = rng.randrange(len(payload) + 1)
        payload = (
            payload[:at] + rng.choice([b"\xff\xfe", b"\xed\xa0\x80", b"\xc3"]) + payload[at:]
        )  # not UTF-8
    return path, payload, headers


def run(server: Server, count: int, seed: int) -> tuple[Counter[str], list[str]]:
    rng = random.Random(seed)
    statuses: Counter[str] = Counter()
    failures = []
    for index in range(count):
        path, payload, headers = build(rng)
        status = post_status(server.url + path, payload, headers)
        statuses[status] += 1
        if not status.isdigit() or status[0] not in "24":
            failures.append(f"#{index} {path} {headers} {payload[:300]!r} → {status}")
    return statuses, failures


def summary(count: int, seed: int, statuses: Counter[str]) -> str:
    return f"{count} v2 requests, seed {seed}: {dict(sorted(statuses.items()))}"


def main(argv: list[str] | None = None) -> int:
    return cli.seeded_proof(__doc__, argv, 3000, run, summary)


if __name__ == "__main__":
    sys.exit(main())

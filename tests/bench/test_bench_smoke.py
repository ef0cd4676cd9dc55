"""The benchmark's own parts, fast and without servers: the upload set, the seed-style baseline and
the inputs the proofs generate."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from app.service.images import decode_image
from bench.perf import report
from bench.perf.baseline import SeedPipeline
from bench.photos import build_uploads, sample_glyphs
from bench.proofs import memory_probe, structure_fuzz, v2_fuzz
from bench.server import REPO

LETTERS = REPO / "models" / "letters"


@pytest.mark.skipif(not (LETTERS / "manifest.json").is_file(), reason="no committed letters model")
def test_uploads_are_valid_images_and_the_baseline_classifies_them(tmp_path: Path) -> None:
    glyphs = sample_glyphs("letter")
    uploads = build_uploads({"crop": 2, "photo_640": 1, "photo_12mp": 1}, glyphs, seed=0)
    assert [u.kind for u in uploads] == ["crop", "crop", "photo_640", "photo_12mp"]
    assert uploads == build_uploads({"crop": 2, "photo_640": 1, "photo_12mp": 1}, glyphs, seed=0)
    for upload in uploads:
        with Image.open(io.BytesIO(upload.data)) as image:
            expected = "PNG" if upload.name.endswith(".png") else "JPEG"
            assert (image.format, image.size) == (expected, (upload.width, upload.height))
        assert upload.label == glyphs[int(upload.name.split("_")[-2])].label
    sizes = {u.kind: (u.width, u.height) for u in uploads}
    assert sizes["photo_640"] == (640, 480) and sizes["photo_12mp"] == (4000, 3000)
    assert all(64 <= u.width == u.height <= 128 for u in uploads if u.kind == "crop")

    pipeline = SeedPipeline.load(LETTERS)
    assert pipeline.weights.startswith("weights from"), pipeline.weights
    x = np.random.default_rng(0).normal(size=(2, 1, 28, 28)).astype(np.float32)
    (onnx_logits,) = ort.InferenceSession(str(LETTERS / "model.onnx")).run(None, {"image": x})
    with torch.no_grad():
        torch_logits = next(iter(pipeline.model(torch.from_numpy(x)).values())).numpy()
    np.testing.assert_allclose(torch_logits, onnx_logits, atol=1e-4)

    top, timing = pipeline.predict(uploads[2].data)
    assert top[0][0] in pipeline.labels and 0 <= top[0][1] <= 1
    assert set(timing) == {"decode", "preprocess", "inference", "total"}


def test_the_report_renders_the_committed_results_and_the_batcher_columns() -> None:
    result = json.loads((REPO / "docs" / "benchmarks.json").read_text(encoding="utf-8"))
    for run in result["runs"]:
        run |= {"model_calls": None, "rows_per_call": None, "batch_queue_ms": None}
    result["runs"][0] |= {"model_calls": 512, "rows_per_call": 1.38, "batch_queue_ms": 3.25}
    text = report.render(result)
    assert "## Dynamic batching" in text
    assert f"| {result['runs'][0]['server']} | mix | 1 |" in text and "| 512 | 1.38 | 3.25 |" in text
    assert report.batching_table(result["runs"][1:]) == ""  # runs without a batcher are left out


def test_with_rounds_the_throughput_target_takes_the_median_ratio() -> None:
    result = json.loads((REPO / "docs" / "benchmarks.json").read_text(encoding="utf-8"))
    ours, top = next(iter(result["variants"])), max(result["concurrency"])
    template = next(r for r in result["runs"] if r["scenario"] == "mix" and r["concurrency"] == top)
    speeds = [(230.0, 25.0), (240.0, 20.0), (235.0, 26.0)]  # ratios 9.2, 12.0, 9.04
    result["rounds"] = [
        template | {"server": server, "round": i, "throughput_rps": rps}
        for i, pair in enumerate(speeds)
        for server, rps in zip((ours, "baseline"), pair, strict=True)
    ]
    assert report.round_ratios(result["rounds"]) == {ours: [9.2, 12.0, 9.04]}
    target = next(t for t in report.targets(result) if t["target"].startswith(f"[{ours}] ≥"))
    assert target["measured"] == "median 9.2× of 3 rounds (9.0–12.0×)" and target["pass"] is False
    assert "| 2 | baseline |" in report.render(result)


def test_structured_images_are_varied_valid_and_reproducible() -> None:
    images = list(structure_fuzz.generate(30, seed=0))
    assert images[:8] == list(structure_fuzz.generate(8, seed=0))
    modes = set()
    for description, data in images:
        assert len(data) <= structure_fuzz.MAX_UPLOAD_BYTES, description
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            modes.add(image.mode)
    assert {"L", "RGB", "RGBA", "P"} <= modes and any(mode.startswith("I") for mode in modes)
    body, headers = structure_fuzz.v2_request(images[0][1], binary=True)
    header_length = int(headers["Inference-Header-Content-Length"])
    assert body[header_length + 4 :] == images[0][1]


def test_v2_fuzz_requests_are_reproducible_and_some_are_well_formed() -> None:
    first = [v2_fuzz.build(random.Random(0)) for _ in range(3)]
    assert first == [v2_fuzz.build(random.Random(0)) for _ in range(3)]
    rng = random.Random(1)
    requests = [v2_fuzz.build(rng) for _ in range(300)]
    assert all(path.startswith("/v2/models/") and isinstance(body, bytes) for path, body, _ in requests)
    kinds = {headers["Content-Type"] for _, _, headers in requests}
    assert kinds == {"application/json", "application/octet-stream"}
    well_formed = 0
    for _, body, headers in requests:
        with contextlib.suppress(ValueError):
            well_formed += (
                isinstance(json.loads(body), dict) and headers["Content-Type"] == "application/json"
            )
    assert well_formed > 100


def test_the_memory_probes_inputs_sit_just_under_the_caps() -> None:
    probes = memory_probe.build_probes(max_pixels=250_000, max_batch_files=3, photo=b"jpeg")
    by_name = {probe.name: probe for probe in probes}
    assert {probe.expect for probe in probes} == {"200", "422"}
    page = decode_image(memory_probe.sixteen_bit_png(492), max_pixels=250_000, max_side=20_000)
    assert page.shape == (492, 492) and page.min() < 100
    batch = json.loads(by_name["v2 batch of 3"].body)
    assert batch["inputs"][0]["shape"] == [3]

"""Writer identification over HTTP: enrol, add samples, list, delete, identify, restart, bad inputs."""

from __future__ import annotations

import io
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.runtime.embedder import load_embedder
from tests.app.conftest import draw_letter, encode
from tests.app.writer_models import write_writer_model

Client = Callable[..., TestClient]


def glyphs(letter: str, n: int = 3) -> list[tuple[str, tuple[str, bytes, str]]]:
    """n drawings of one letter at different sizes: one "writer"'s characters."""
    sizes = [(120, 120), (160, 140), (200, 200), (140, 180), (100, 100)]
    return [
        ("files", (f"{letter}{i}.png", encode(draw_letter(letter, sizes[i])), "image/png")) for i in range(n)
    ]


@pytest.fixture(scope="module")
def writer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_writer_model(tmp_path_factory.mktemp("writer-model"), threshold=0.9)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "writers.sqlite3"


@pytest.fixture
def writers_client(make_client: Client, model_dir: Path, writer_model: Path, db: Path) -> TestClient:
    return make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db))


def enrol(client: TestClient, name: str, letter: str, **params: object) -> dict:
    response = client.post("/writers", data={"name": name}, files=glyphs(letter), params=params)
    assert response.status_code == 201, response.text
    return response.json()


def test_enrol_list_add_identify_delete(writers_client: TestClient):
    alice = enrol(writers_client, "Alice", "A")
    bob = enrol(writers_client, "Bob", "O")
    assert alice["samples"] == 3 and alice["name"] == "Alice" and alice["id"] != bob["id"]
    listed = writers_client.get("/writers").json()["writers"]
    assert [(w["id"], w["name"]) for w in listed] == [(alice["id"], "Alice"), (bob["id"], "Bob")]

    added = writers_client.post(f"/writers/{alice['id']}/samples", files=glyphs("A", 2))
    assert added.status_code == 200 and added.json()["samples"] == 5

    answer = writers_client.post("/identify/writer", files=glyphs("A", 2), params={"k": 2}).json()
    assert answer["unknown"] is False and answer["writer"]["id"] == alice["id"]
    assert answer["characters"] == 2 and answer["threshold"] == 0.9
    assert [c["name"] for c in answer["candidates"]] == ["Alice", "Bob"]
    assert answer["candidates"][0]["score"] > answer["candidates"][1]["score"]

    assert writers_client.delete(f"/writers/{alice['id']}").status_code == 204
    assert writers_client.delete(f"/writers/{alice['id']}").json()["error"]["code"] == "unknown_writer"
    assert [w["name"] for w in writers_client.get("/writers").json()["writers"]] == ["Bob"]
    answer = writers_client.post("/identify/writer", files=glyphs("A", 1)).json()
    assert [c["name"] for c in answer["candidates"]] == ["Bob"]


def test_below_the_threshold_is_unknown(make_client: Client, model_dir: Path, writer_model: Path, db: Path):
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db), writer_threshold=0.999)
    enrol(client, "Alice", "A")
    answer = client.post("/identify/writer", files=glyphs("X", 2)).json()
    assert answer["unknown"] is True and answer["writer"] is None
    assert answer["candidates"][0]["name"] == "Alice" and answer["candidates"][0]["score"] < 0.999


def test_the_threshold_follows_the_number_of_query_characters(
    make_client: Client, model_dir: Path, tmp_path: Path, db: Path
):
    # As if measured per query size at export: any single character passes, no five characters do.
    model = write_writer_model(tmp_path / "model", threshold=0.5, thresholds_by_query={1: -1.0, 5: 1.0})
    client = make_client(model_dir, writer_model_dir=model, writer_db=str(db))
    enrol(client, "Alice", "A")
    one = client.post("/identify/writer", files=glyphs("X", 1)).json()
    five = client.post("/identify/writer", files=glyphs("X", 5)).json()
    assert (one["characters"], one["threshold"], one["unknown"]) == (1, -1.0, False)
    assert (five["characters"], five["threshold"], five["unknown"]) == (5, 1.0, True)
    assert five["candidates"][0]["name"] == "Alice"


def test_thresholds_interpolate_in_log_count_and_hold_at_the_ends(tmp_path: Path):
    from contract.writer_manifest import WriterManifest

    measured = {1: 0.2, 4: 0.4, 16: 0.6}
    manifest = WriterManifest.load(write_writer_model(tmp_path, 0.3, thresholds_by_query=measured))
    assert [manifest.threshold_for(n) for n in (0, 1, 2, 4, 8, 16, 100)] == pytest.approx(
        [0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6]
    )
    older = WriterManifest.load(write_writer_model(tmp_path / "old", 0.3))
    assert older.thresholds_by_query == {} and older.threshold_for(20) == 0.3


def test_no_writers_enrolled_is_unknown(writers_client: TestClient):
    answer = writers_client.post("/identify/writer", files=glyphs("A", 1)).json()
    assert answer["unknown"] is True and answer["candidates"] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_enrolments_survive_a_restart(
    make_client: Client, model_dir: Path, writer_model: Path, db: Path, backend: str, request
):
    target = str(db) if backend == "sqlite" else request.getfixturevalue("postgres_db")
    first = make_client(model_dir, writer_model_dir=writer_model, writer_db=target)
    alice = enrol(first, "Alice", "A")
    enrol(first, "Bob", "O")
    first.close()  # the app shuts down; a new process-like app opens the same database
    second = make_client(model_dir, writer_model_dir=writer_model, writer_db=target)
    assert [w["name"] for w in second.get("/writers").json()["writers"]] == ["Alice", "Bob"]
    assert second.post("/identify/writer", files=glyphs("A", 2)).json()["writer"]["id"] == alice["id"]


def stored_images(db: Path) -> list[bytes | None]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT image FROM writer_samples")]


def test_only_embeddings_are_stored_unless_asked(writers_client: TestClient, db: Path):
    enrol(writers_client, "Alice", "A")
    assert stored_images(db) == [None, None, None]
    enrol(writers_client, "Bob", "O", store_images="true")
    images = stored_images(db)[3:]
    assert all(image and image.startswith(b"\x89PNG") for image in images)


def test_stored_images_are_re_encoded_never_the_upload(writers_client: TestClient, db: Path):
    # Regression: the upload's bytes were stored as sent, trailing bytes too (+99 MB in 1.5 s).
    letter = draw_letter("A", (120, 120))
    padded = encode(letter) + b"TRAILER" * 150_000  # a valid PNG followed by 1 MB of anything
    big = draw_letter("A", (2000, 1500))  # stored with its longer side cut to 1024
    files = [("files", ("a.png", padded, "image/png")), ("files", ("b.png", encode(big), "image/png"))]
    response = writers_client.post("/writers", data={"name": "A"}, files=files, params={"store_images": True})
    assert response.status_code == 201, response.text
    small, large = (Image.open(io.BytesIO(image)) for image in stored_images(db))  # type: ignore[arg-type]
    assert b"TRAILER" not in stored_images(db)[0] and small.format == large.format == "PNG"
    np.testing.assert_array_equal(np.asarray(small), letter)  # lossless: the same pixels
    assert large.size == (768, 1024)
    added = writers_client.post(
        f"/writers/{response.json()['id']}/samples", files=files[:1], params={"store_images": True}
    )
    assert added.status_code == 200 and b"TRAILER" not in stored_images(db)[2]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("post", "/writers", {"data": {"name": "x"}}, 422, "validation_error"),  # no files
        ("post", "/writers", {"files": glyphs("A", 1)}, 422, "validation_error"),  # no name
        ("post", "/writers", {"data": {"name": "   "}, "files": glyphs("A", 1)}, 422, "invalid_parameter"),
        ("post", "/writers/0/samples", {"files": glyphs("A", 1)}, 422, "validation_error"),
        ("post", "/writers/999/samples", {"files": glyphs("A", 1)}, 404, "unknown_writer"),
        ("delete", "/writers/999", {}, 404, "unknown_writer"),
        ("post", "/identify/writer", {"files": [("files", ("x.txt", b"not an image", "text/plain"))]}, 415,
         "unsupported_image"),
        ("post", "/identify/writer", {"files": [("files", ("e.png", b"", "image/png"))]}, 422, "empty_file"),
        ("post", "/identify/writer", {"params": {"k": 0}, "files": glyphs("A", 1)}, 422, "validation_error"),
    ],
)  # fmt: skip
def test_bad_inputs(writers_client: TestClient, method: str, path: str, kwargs: dict, status: int, code: str):
    response = getattr(writers_client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("writer_id", [2**63 - 1, 2**63, 2**64, 10**30])
def test_writer_ids_beyond_the_databases_integers(writers_client: TestClient, writer_id: int):
    # Regression: ids ≥ 2^63 overflowed SQLite's integers, a 500. The path is bounded to what the
    # database can hold: the largest such id is simply unknown, anything beyond is invalid.
    expected = (404, "unknown_writer") if writer_id < 2**63 else (422, "validation_error")
    for response in (
        writers_client.delete(f"/writers/{writer_id}"),
        writers_client.post(f"/writers/{writer_id}/samples", files=glyphs("A", 1)),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == expected, response.text


def test_a_blank_image_names_its_place_and_enrols_nothing(writers_client: TestClient, images):
    files = [*glyphs("A", 1), ("files", ("blank.jpg", images.blank_photo(), "image/jpeg"))]
    response = writers_client.post("/writers", data={"name": "Alice"}, files=files)
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_ink"
    assert response.json()["error"]["message"].startswith("files[1]: ")
    assert writers_client.get("/writers").json()["writers"] == []


def test_a_small_mark_at_the_end_of_a_strip_is_embedded(writers_client: TestClient, images):
    # Regression: this 119-byte PNG answered 500 on enrolment, added samples and identification.
    strip = [("files", ("strip.png", images.mark_at_the_end_of_a_strip_png(), "image/png"))]
    enrolled = writers_client.post("/writers", data={"name": "Strip"}, files=strip)
    assert enrolled.status_code == 201, enrolled.text
    added = writers_client.post(f"/writers/{enrolled.json()['id']}/samples", files=strip)
    assert added.status_code == 200, added.text
    identified = writers_client.post("/identify/writer", files=strip)
    assert identified.status_code == 200, identified.text


def test_files_per_request_are_capped(make_client: Client, model_dir: Path, writer_model: Path, db: Path):
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db), max_batch_files=2)
    response = client.post("/identify/writer", files=glyphs("A", 3))
    assert response.status_code == 422 and "at most 2 files" in response.json()["error"]["message"]


def test_samples_per_writer_are_capped(make_client: Client, model_dir: Path, writer_model: Path, db: Path):
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db), writer_max_samples=4)
    alice = enrol(client, "Alice", "A")
    response = client.post(f"/writers/{alice['id']}/samples", files=glyphs("A", 2))
    assert response.status_code == 422 and "at most 4 samples" in response.json()["error"]["message"]


def test_concurrent_adds_cannot_pass_the_sample_cap(
    make_client: Client, model_dir: Path, writer_model: Path, db: Path
):
    # Regression: two adds that both passed the route's early check (3 + 1 <= 4) then both stored,
    # taking the writer to 5. The embedder waits until both requests are past that check.
    client = make_client(
        model_dir,
        writer_model_dir=writer_model,
        writer_db=str(db),
        writer_max_samples=4,
        max_concurrency=2,
        compute_in_event_loop=False,
    )
    alice = enrol(client, "Alice", "A")
    service = client.app.state.writers.service  # type: ignore[attr-defined]
    both_checked = threading.Barrier(2)
    real_embed = service.embedder.embed

    def embed_after_both_checked(batch: np.ndarray) -> np.ndarray:
        both_checked.wait(timeout=30)
        return real_embed(batch)

    object.__setattr__(service.embedder, "embed", embed_after_both_checked)
    with ThreadPoolExecutor(2) as pool:
        add = lambda _: client.post(f"/writers/{alice['id']}/samples", files=glyphs("A", 1))  # noqa: E731
        statuses = sorted(response.status_code for response in pool.map(add, range(2)))
    assert statuses == [200, 422]
    assert client.get("/writers").json()["writers"][0]["samples"] == 4
    assert len(stored_images(db)) == 4


def test_the_writer_list_is_paged_by_id(writers_client: TestClient):
    # Regression: GET /writers answered the whole store at once. Pages of `limit`, by id, from `after`.
    ids = [enrol(writers_client, name, "A")["id"] for name in ("A", "B", "C", "D", "E")]
    writers_client.delete(f"/writers/{ids[1]}")
    seen, after, pages = [], 0, 0
    while after is not None:
        page = writers_client.get("/writers", params={"limit": 2, "after": after}).json()
        assert page["total"] == 4 and len(page["writers"]) <= 2
        seen += [w["id"] for w in page["writers"]]
        after, pages = page["next_after"], pages + 1
    assert seen == [ids[0], *ids[2:]] and pages == 2
    everything = writers_client.get("/writers").json()  # default page: 100, so current clients see all
    assert [w["id"] for w in everything["writers"]] == seen and everything["next_after"] is None
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
        assert writers_client.get("/writers", params=bad).status_code == 422


def test_writers_are_capped(make_client: Client, model_dir: Path, writer_model: Path, db: Path):
    # Regression: enrolments grew the store without bound. Past the cap: 409, nothing stored.
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db), writer_max_writers=2)
    alice, _ = enrol(client, "Alice", "A"), enrol(client, "Bob", "O")
    carol = {"data": {"name": "Carol"}, "files": glyphs("C"), "params": {"store_images": True}}
    response = client.post("/writers", **carol)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "writer_store_full"
    assert "maximum of 2 writers" in response.json()["error"]["message"]
    assert [w["name"] for w in client.get("/writers").json()["writers"]] == ["Alice", "Bob"]
    assert len(stored_images(db)) == 6
    assert client.delete(f"/writers/{alice['id']}").status_code == 204
    assert enrol(client, "Carol", "C")["name"] == "Carol"


def test_without_a_model_the_writer_endpoints_are_not_ready(
    make_client: Client, model_dir: Path, tmp_path: Path
):
    client = make_client(model_dir, writer_model_dir=tmp_path / "none", writer_db=str(tmp_path / "w.db"))
    for response in (client.get("/writers"), client.post("/identify/writer", files=glyphs("A", 1))):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_not_ready"
        assert "writer_manifest.json does not exist" in response.json()["error"]["message"]
    # the rest of the service is unaffected
    assert client.get("/health/ready").status_code == 200


def test_a_model_not_matching_its_checksum_is_refused(make_client: Client, model_dir: Path, tmp_path: Path):
    directory = write_writer_model(tmp_path / "model")
    (directory / "model.onnx").write_bytes((directory / "model.onnx").read_bytes() + b"\0")
    client = make_client(model_dir, writer_model_dir=directory, writer_db=str(tmp_path / "w.db"))
    response = client.get("/writers")
    assert response.status_code == 503 and "sha256" in response.json()["error"]["message"]


def test_an_unwritable_database_is_a_clear_503(
    make_client: Client, model_dir: Path, writer_model: Path, tmp_path: Path
):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(blocker / "writers.sqlite3"))
    response = client.get("/writers")
    assert response.status_code == 503 and response.json()["error"]["code"] == "writer_store_unavailable"


def test_the_bearer_token_guards_the_writer_endpoints(
    make_client: Client, model_dir: Path, writer_model: Path, db: Path
):
    token = "0123456789abcdef0123"
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db), api_token=token)
    assert client.get("/writers").status_code == 401
    assert client.post("/identify/writer", files=glyphs("A", 1)).status_code == 401
    assert client.get("/writers", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_embeddings_run_in_chunks_with_the_same_result(writer_model: Path):
    # Regression: every model call is chunked, the writer model's too.
    batch = np.random.default_rng(0).normal(size=(5, 1, 28, 28)).astype(np.float32)
    chunked = load_embedder(writer_model, max_batch=2)
    assert chunked.session.get_session_options().enable_cpu_mem_arena is False
    sizes = []
    real_run = chunked.session.run

    def counting_run(names, feeds):
        sizes.append(len(next(iter(feeds.values()))))
        return real_run(names, feeds)

    chunked.session.run = counting_run
    np.testing.assert_allclose(chunked.embed(batch), load_embedder(writer_model).embed(batch), atol=1e-5)
    assert sizes == [2, 2, 1]


def test_the_open_set_threshold_follows_the_best_writers_enrolment(
    make_client: Client, model_dir: Path, tmp_path: Path, db: Path
):
    from contract.writer_decision import OpenSetCalibration
    from contract.writer_manifest import WriterManifest

    # A table where a writer enrolled with one character needs little, with ten a lot.
    model = write_writer_model(tmp_path / "model", threshold=0.5)
    manifest = WriterManifest.load(model)
    table = OpenSetCalibration(
        false_reject=0.05, enrolled=(1, 10), query=(1, 5), thresholds=((-0.9, -0.8), (0.95, 0.99))
    )
    (model / "writer_manifest.json").write_text(
        manifest.model_copy(update={"open_set": table}).model_dump_json()
    )
    client = make_client(model_dir, writer_model_dir=model, writer_db=str(db))
    few = client.post("/writers", data={"name": "Few"}, files=glyphs("A", 1)).json()
    answer = client.post("/identify/writer", files=glyphs("A", 1)).json()
    assert answer["candidates"][0]["id"] == few["id"]
    assert answer["threshold"] == pytest.approx(table.threshold(1, 1)) == pytest.approx(-0.9)
    assert answer["unknown"] is False


def test_switched_off_the_writer_endpoints_answer_404_and_nothing_is_stored(
    make_client: Client, model_dir: Path, writer_model: Path, tmp_path: Path
):
    db = tmp_path / "never.sqlite3"
    client = make_client(model_dir, writer_model_dir=writer_model, writer_db=str(db), writers_enabled=False)
    answers = [
        client.post("/writers", data={"name": "Alice"}, files=glyphs("A")),
        client.get("/writers"),
        client.post("/identify/writer", files=glyphs("A", 1)),
        client.delete("/writers/1"),
    ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "writers_disabled"
    assert not db.exists()
    # The rest of the service serves as ever.
    assert client.post("/predict/letter", files={"file": glyphs("A", 1)[0][1]}).status_code == 200

"""The one-pass split of a small multipart upload (app/http/uploads.py), and its fallback to
Starlette's parser."""

from __future__ import annotations

import pytest

from app.http import uploads
from app.http.uploads import file_part

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"\r\n-- not the boundary"


def part(headers: list[str], content: bytes) -> bytes:
    return "".join(f"{h}\r\n" for h in headers).encode() + b"\r\n" + content


def body(*parts: bytes, boundary: bytes = b"b0und") -> bytes:
    return b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary + b"--\r\n"


DISPOSITION = 'Content-Disposition: form-data; name="file"; filename="a; b.png"'
FILE = part([DISPOSITION, "Content-Type: image/png"], IMAGE)
SECOND_FILE = part(['Content-Disposition: form-data; name="file"; filename="second.png"'], b"other")


@pytest.mark.parametrize(
    "parts",
    [
        [FILE],
        [part(['Content-Disposition: form-data; name="note"'], b"hello"), FILE],
        [part(['content-disposition: form-data; filename="x.png"; name=file'], IMAGE)],
    ],
    ids=["alone", "after-a-field", "lower-case-unquoted"],
)
def test_the_file_part_is_found(parts):
    assert file_part(body(*parts), b"b0und", "file") == IMAGE


@pytest.mark.parametrize(
    "data",
    [
        body(part(['Content-Disposition: form-data; name="file"'], b"a text field")),
        body(part(['Content-Disposition: form-data; name="other"; filename="a.png"'], IMAGE)),
        body(FILE, boundary=b"another"),
        body(FILE)[:-30],  # cut short
        b"--b0und\r\nbroken",
        b'{"file": "aGVsbG8="}',
        body(part(["no colon here"], IMAGE)),
        # Regression: two parts of the field went to the first here and to the last in Starlette's form.
        body(FILE, SECOND_FILE),
        body(part(['Content-Disposition: form-data; name="file"'], b"a text field"), FILE),
        body(FILE, part(["Content-Type: text/plain"], b"a part without a name")),
    ],
    ids=[
        "text-field",
        "other-name",
        "other-boundary",
        "truncated",
        "no-headers-end",
        "json",
        "bad-header",
        "two-files",
        "text-field-and-file",
        "nameless-part",
    ],
)
def test_anything_else_is_left_to_the_general_parser(data):
    assert file_part(data, b"b0und", "file") is None


def post_body(client, data: bytes, **headers: str):
    headers = {"content-type": "multipart/form-data; boundary=b0und", **headers}
    return client.post("/predict/letter", content=data, headers=headers)


def test_both_parsers_give_the_same_answer(make_client, model_dir, letter_png, monkeypatch):
    split: list[bool] = []
    real = uploads.file_part
    monkeypatch.setattr(uploads, "file_part", lambda *a: split.append(True) or real(*a))
    data = body(part(['Content-Disposition: form-data; name="file"; filename="a.png"'], letter_png))
    fast = post_body(make_client(model_dir), data)
    spooled = post_body(make_client(model_dir, upload_memory_bytes=100), data)  # over it: Starlette's
    chunked = make_client(
        model_dir
    ).post(  # no Content-Length: Starlette's too
        "/predict/letter",
        content=iter([data[:100], data[100:]]),
        headers={"content-type": "multipart/form-data; boundary=b0und"},
    )
    assert fast.status_code == spooled.status_code == chunked.status_code == 200, fast.text
    answers = [r.json()["predictions"] for r in (fast, spooled, chunked)]
    assert answers[0] == answers[1] == answers[2]
    assert split == [True]  # the small one only


def test_a_body_the_split_leaves_alone_gets_the_general_answers(client, letter_png):
    text_only = body(part(['Content-Disposition: form-data; name="file"'], b"not a file"))
    response = post_body(client, text_only)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert "body.file" in response.json()["error"]["message"]


def test_two_files_in_the_field_are_refused_on_every_path(make_client, model_dir, letter_png, images):
    # Regression: the split answered the first file and Starlette's form the last, so the same
    # body was classified differently with and without a Content-Length.
    two = body(
        part(['Content-Disposition: form-data; name="file"; filename="a.png"'], letter_png),
        part(['Content-Disposition: form-data; name="file"; filename="b.png"'], images.blank_photo()),
    )
    fast = post_body(make_client(model_dir), two)
    spooled = post_body(make_client(model_dir, upload_memory_bytes=100), two)
    chunked = make_client(model_dir).post(
        "/predict/letter",
        content=iter([two[:100], two[100:]]),
        headers={"content-type": "multipart/form-data; boundary=b0und"},
    )
    for response in (fast, spooled, chunked):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["message"] == "body.file: send one file, not 2"


def test_a_body_with_a_field_the_caller_reads_goes_to_the_general_parser():
    words = part(['Content-Disposition: form-data; name="words"'], b"heart water")
    data = body(FILE, words)
    assert file_part(data, b"b0und", "file") == IMAGE  # not asked for: ignored as any other field
    assert file_part(data, b"b0und", "file", divert=frozenset({b"words"})) is None
    assert file_part(body(FILE), b"b0und", "file", divert=frozenset({b"words"})) == IMAGE

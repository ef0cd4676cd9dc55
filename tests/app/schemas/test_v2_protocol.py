"""The Open Inference Protocol wire format (app/schemas/v2.py): JSON and binary tensors, both ways,
checked against the official client's own encoder and decoder (tritonclient, a dev dependency)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from app.errors import PayloadTooLarge
from app.schemas.v2 import (
    HEADER_LENGTH,
    OutputTensor,
    ProtocolError,
    check_json_values,
    classification,
    encode_bytes_elements,
    encode_infer_response,
    parse_infer_request,
)

httpclient = pytest.importorskip("tritonclient.http")


def body_of(header: dict, binary: bytes = b"") -> tuple[bytes, str | None]:
    encoded = json.dumps(header).encode()
    return encoded + binary, (str(len(encoded)) if binary else None)


def fp32_input(data: object, shape: list[int], name: str = "image") -> dict:
    return {"name": name, "datatype": "FP32", "shape": shape, "data": data}


def binary_request(name: str, datatype: str, shape: list[int], size: int) -> dict:
    """A request header with one input whose data, `size` bytes, follows it (the binary extension)."""
    tensor = {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}
    return {"inputs": [tensor]}


def test_json_data_flat_or_nested_is_the_same_tensor():
    x = np.arange(12, dtype=np.float32).reshape(2, 1, 2, 3)
    flat = parse_infer_request(*body_of({"inputs": [fp32_input(x.ravel().tolist(), [2, 1, 2, 3])]}))
    nested = parse_infer_request(*body_of({"inputs": [fp32_input(x.tolist(), [2, 1, 2, 3])]}))
    for request in (flat, nested):
        [tensor] = request.inputs
        assert tensor.binary is False and tensor.shape == (2, 1, 2, 3)
        np.testing.assert_array_equal(tensor.data, x)
    assert flat.outputs is None and flat.binary_outputs is False and flat.id is None


def test_what_the_official_client_sends_parses_binary_and_json_alike():
    x = np.random.default_rng(0).normal(size=(3, 1, 4, 4)).astype(np.float32)
    images = np.array([b"\x89PNG first", b"", b"third \x00\xff"], dtype=np.object_)
    image = httpclient.InferInput("image", list(x.shape), "FP32").set_data_from_numpy(x)
    raw = httpclient.InferInput("image_bytes", [3], "BYTES").set_data_from_numpy(images)
    as_json = httpclient.InferInput("more", [2], "FP32").set_data_from_numpy(
        np.array([1.5, -2], np.float32), binary_data=False
    )
    outputs = [
        httpclient.InferRequestedOutput("letter_logits"),
        httpclient.InferRequestedOutput("letter", binary_data=False, class_count=3),
    ]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [image, raw, as_json], outputs=outputs, request_id="r-1"
    )
    request = parse_infer_request(body, str(json_size))
    assert request.id == "r-1"
    first, second, third = request.inputs
    assert first.binary and first.shape == (3, 1, 4, 4)
    np.testing.assert_array_equal(first.data, x)
    assert second.binary and second.data == list(images)
    assert not third.binary
    np.testing.assert_array_equal(third.data, [1.5, -2])
    assert [(o.name, o.binary, o.classification) for o in request.outputs or []] == [
        ("letter_logits", True, 0),
        ("letter", False, 3),
    ]


def test_no_requested_outputs_means_all_in_the_requested_form():
    request = parse_infer_request(
        *body_of({"inputs": [fp32_input([0.0], [1])], "parameters": {"binary_data_output": True}})
    )
    assert request.outputs is None and request.binary_outputs is True


def test_json_bytes_elements_are_their_utf8():
    request = parse_infer_request(
        *body_of({"inputs": [{"name": "s", "datatype": "BYTES", "shape": [2], "data": ["aGk=", "ঘি"]}]})
    )
    assert request.inputs[0].data == [b"aGk=", "ঘি".encode()]


@pytest.mark.parametrize(
    ("header", "binary", "message"),
    [
        ({"inputs": []}, b"", "inputs must be a non-empty list"),
        ({"inputs": [fp32_input([1.0, 2.0], [3])]}, b"", "needs 3 elements, got 2"),
        ({"inputs": [fp32_input([1.0, True], [2])]}, b"", "must be numbers"),
        ({"inputs": [fp32_input(["1.0"], [1])]}, b"", "must be numbers"),
        ({"inputs": [fp32_input(1.0, [1])]}, b"", "data must be a list"),
        ({"inputs": [fp32_input([1.0], [-1])]}, b"", "non-negative integers"),
        ({"inputs": [fp32_input([1.0], [1]) | {"datatype": "FP8"}]}, b"", "unknown datatype"),
        ({"inputs": [fp32_input([1.0], [1]), fp32_input([2.0], [1])]}, b"", "given twice"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1]}]}, b"", "has no data"),
        (
            {"inputs": [fp32_input([1.0], [1]) | {"parameters": {"shared_memory_region": "r"}}]},
            b"",
            "shared memory is not supported",
        ),
        (
            {"inputs": [{"name": "i", "datatype": "INT8", "shape": [1], "data": [300]}]},
            b"",
            "does not fit INT8",
        ),
        (binary_request("i", "FP32", [2], 4), b"\x00" * 4, "is 8 bytes, got 4"),
        (binary_request("i", "FP32", [1], 4), b"\x00" * 6, "declare 4 bytes of binary data but 6 were sent"),
        (binary_request("i", "FP32", [1], 8), b"\x00" * 4, "8 bytes of binary data declared, 4 left"),
        (binary_request("b", "BYTES", [1], 6), struct.pack("<I", 9) + b"ab", "runs past the data"),
        (binary_request("b", "BYTES", [1], 9), encode_bytes_elements([b"a", b""]), "needs 1 elements, got 2"),
        ({"inputs": [fp32_input([1.0], [1])], "outputs": [{"name": "x"}, {"name": "x"}]}, b"", "twice"),
        (
            {
                "inputs": [fp32_input([1.0], [1])],
                "outputs": [{"name": "x", "parameters": {"classification": -1}}],
            },
            b"",
            "classification must be a non-negative integer",
        ),
        (
            {
                "inputs": [fp32_input([1.0], [1])],
                "outputs": [{"name": "x", "parameters": {"binary_data": 1}}],
            },
            b"",
            "must be true or false",
        ),
        ({"inputs": [fp32_input([1.0], [1])], "id": 7}, b"", "id must be a string"),
        # Regression: these answered 500. Beyond numpy's dimensions (JSON and binary); a shape
        # numpy cannot hold even with a zero dimension; a lone surrogate, which has no UTF-8 form,
        # in BYTES data or in the id (echoed in the answer).
        ({"inputs": [fp32_input([1.0], [1] * 65)]}, b"", "at most 32 dimensions, got 65"),
        ({"inputs": [fp32_input([1.0], [1] * 33)]}, b"", "at most 32 dimensions, got 33"),
        ({"inputs": [fp32_input([], [0] * 65)]}, b"", "at most 32 dimensions, got 65"),
        (binary_request("i", "FP32", [1] * 65, 4), b"\x00" * 4, "at most 32 dimensions, got 65"),
        ({"inputs": [fp32_input([], [0, 2**63])]}, b"", "too large"),
        ({"inputs": [fp32_input([], [2**62, 4, 0])]}, b"", "too large"),
        (
            {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [2], "data": ["ok", "\ud800"]}]},
            b"",
            "BYTES data must be valid Unicode text",
        ),
        ({"inputs": [fp32_input([1.0], [1])], "id": "run-\udfff"}, b"", "id must be valid Unicode text"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(header, binary, message):
    encoded = json.dumps(header).encode()
    with pytest.raises(ProtocolError, match=message) as caught:
        parse_infer_request(encoded + binary, str(len(encoded)))
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        (b"{", None, "not valid JSON"),
        (b"\xff\xfe{}", None, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, None, "not valid JSON"),
        (b"[]", None, "the request must be a JSON object"),
        (b"{}", "3", HEADER_LENGTH),
        (b"{}", "0", HEADER_LENGTH),
        (b"{}", "x", HEADER_LENGTH),
    ],
)
def test_unreadable_bodies_are_refused(body, header_length, message):
    with pytest.raises(ProtocolError, match=message):
        parse_infer_request(body, header_length)


def test_responses_decode_with_the_official_client_binary_and_json():
    logits = np.random.default_rng(1).normal(size=(2, 5)).astype(np.float32)
    top = classification(logits, 2, list("abcde"))
    for binary in (False, True):
        outputs = [
            OutputTensor("letter_logits", "FP32", logits, binary),
            OutputTensor("letter", "BYTES", top, binary),
        ]
        body, json_length = encode_infer_response("letters", "v1", "r-2", outputs)
        assert (json_length is not None) is binary
        result = httpclient.InferResult.from_response_body(body, header_length=json_length)
        response = result.get_response()
        assert (response["model_name"], response["model_version"], response["id"]) == ("letters", "v1", "r-2")
        np.testing.assert_array_equal(result.as_numpy("letter_logits"), logits)
        decoded = result.as_numpy("letter")
        assert decoded.shape == (2, 2)
        assert [[v.decode() if isinstance(v, bytes) else v for v in row] for row in decoded] == top.tolist()


def test_classification_is_tritons_value_index_label_largest_first():
    values = np.array([[0.5, 2.0, -1.0, 2.0], [3.25, 0.0, 0.0, 0.0]], np.float32)
    assert classification(values, 3, ["a", "b", "c", "d"]).tolist() == [
        ["2.000000:1:b", "2.000000:3:d", "0.500000:0:a"],  # ties keep index order
        ["3.250000:0:a", "0.000000:1:b", "0.000000:2:c"],
    ]
    assert classification(values, 99).shape == (2, 4)  # k is capped at the class count, as Triton does
    assert classification(values, 1).tolist() == [["2.000000:1"], ["3.250000:0"]]  # no labels: no ":label"


def test_json_values_are_counted_in_the_json_header_only():
    header = json.dumps(binary_request("x", "UINT8", [3], 3)).encode()
    body = header + b",,,"  # binary data may hold any byte, commas included
    check_json_values(body, str(len(header)), max_values=4)
    with pytest.raises(PayloadTooLarge, match="more than 3 values"):
        check_json_values(body, str(len(header)), max_values=3)
    with pytest.raises(PayloadTooLarge):
        check_json_values(b"[" + b"0," * 10 + b"0]", None, max_values=10)

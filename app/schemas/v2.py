"""The Open Inference Protocol (KServe v2, as Triton speaks it) over REST: bodies in, bodies out. Pure.

A tensor travels either in the JSON header as `data` (flattened row-major or nested lists) or, with
the binary tensor data extension, as raw bytes after the header, whose length the
`Inference-Header-Content-Length` HTTP header gives: numbers little-endian, each BYTES element a
4-byte little-endian length followed by its bytes. `tritonclient` sends and asks for binary by
default. The classification extension turns an output into its top-k "value:index:label" strings.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import PayloadTooLarge, ServiceError

HEADER_LENGTH = "Inference-Header-Content-Length"
BYTES = "BYTES"
# Little-endian, as the binary extension lays numbers out.
NUMERIC_TYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?",
        "UINT8": "<u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "INT8": "<i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}
_LENGTH = struct.Struct("<I")
# numpy's own limit on an array's dimensions before numpy 2 (64 since; numpy >= 1.26 is allowed):
# more would fail in numpy, not here. No model of this service takes more than 4.
MAX_DIMENSIONS = 32
# numpy refuses a shape whose size in bytes (8 per element at most) overflows a signed 64-bit
# integer, even one with a zero dimension; zeros aside, its dimensions may multiply up to this.
MAX_ELEMENTS = (2**63 - 1) // 8
_SHARED_MEMORY = "shared_memory_region"
# Values a request holds besides its input's data (names, shapes, parameters, outputs, a few
# separators in strings): far more than any real request needs, far fewer than the millions of
# numbers a body within the byte cap can hold, which take seconds to parse.
JSON_STRUCTURE_VALUES = 4096


class ProtocolError(ServiceError):
    """The request does not follow the protocol (or asks for what this server does not offer)."""

    status_code = 400
    code = "bad_request"


@dataclass(frozen=True)
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    # Numeric: an array of `shape`. BYTES: the elements in row-major order.
    data: np.ndarray | list[bytes]
    # Sent as raw bytes. A BYTES element sent in JSON is a string, here its UTF-8 bytes.
    binary: bool


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0  # k > 0: the top-k strings instead of the tensor


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None  # None: every output
    binary_outputs: bool  # the default for outputs that do not say (`binary_data_output`)


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    data: np.ndarray  # numeric, or an object array of str for BYTES
    binary: bool


def error_body(message: str) -> dict[str, str]:
    """The protocol's error answer."""
    return {"error": message}


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """A request body (and its `Inference-Header-Content-Length`) → its tensors. Raises ProtocolError."""
    json_end = _json_length(body, header_length)
    try:
        header = json.loads(body[:json_end])
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"the request is not valid JSON: {exc}") from exc
    header = _object(header, "the request")
    raw = memoryview(body)[json_end:]
    inputs: list[InputTensor] = []
    offset = 0
    for i, item in enumerate(_list(header.get("inputs"), "inputs", allow_empty=False)):
        tensor, used = _input(_object(item, f"inputs[{i}]"), raw[offset:])
        if any(other.name == tensor.name for other in inputs):
            raise ProtocolError(f"input {tensor.name!r} is given twice")
        inputs.append(tensor)
        offset += used
    if offset != len(raw):
        raise ProtocolError(f"the inputs declare {offset} bytes of binary data but {len(raw)} were sent")
    parameters = _object(header.get("parameters", {}), "parameters")
    binary_outputs = _bool(parameters.get("binary_data_output", False), "parameters.binary_data_output")
    outputs = None
    if "outputs" in header:
        outputs = [
            _output(_object(item, f"outputs[{i}]"), binary_outputs)
            for i, item in enumerate(_list(header["outputs"], "outputs"))
        ]
        names = [output.name for output in outputs]
        if len(set(names)) != len(names):
            raise ProtocolError(f"an output is requested twice: {names}")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("id must be a string")
    if request_id is not None and not _is_text(request_id):
        # The id is echoed in the answer, which would then fail to encode.
        raise ProtocolError(f"id must be valid Unicode text {_NO_SURROGATES}")
    return InferRequest(request_id, inputs, outputs, binary_outputs)


def check_json_values(body: bytes, header_length: str | None, max_values: int) -> None:
    """Refuses (413) a JSON header of more than `max_values` values before any of it is parsed.

    The byte cap cannot tell: base64 images make a legal JSON body as long as the cap allows,
    while the cost of parsing grows with the number of values. Each value but the last of its
    list or object is followed by a comma, so counting commas (a few ms for 10 MB) bounds it;
    a comma inside a string counts too, which only errs towards refusing."""
    commas = body.count(b",", 0, _json_length(body, header_length))
    if commas >= max_values:
        raise PayloadTooLarge(
            f"the JSON holds more than {max_values} values (the largest request this model takes); "
            "send fewer inputs, or the tensor as binary data"
        )


def encode_infer_response(
    model_name: str, model_version: str, request_id: str | None, outputs: Sequence[OutputTensor]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it (else None)."""
    header: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        header["id"] = request_id
    entries, chunks = [], []
    for output in outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": list(output.data.shape),
        }
        if output.binary:
            raw = _to_bytes(output)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = output.data.ravel().tolist()
        entries.append(entry)
    header["outputs"] = entries
    encoded = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    if not chunks:
        return encoded, None
    return encoded + b"".join(chunks), len(encoded)


def classification(values: np.ndarray, k: int, labels: Sequence[str] | None = None) -> np.ndarray:
    """Triton's classification extension: each row's k largest values (at most all), largest first,
    as "value:index:label" (":label" only with labels), the value printed as C++'s std::to_string
    prints it (6 decimals). N×C → an N×min(k, C) object array of str."""
    k = min(k, values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    rows = [
        [f"{float(row[i]):f}:{i}" + (f":{labels[i]}" if labels is not None else "") for i in top]
        for row, top in zip(values, order, strict=True)
    ]
    return np.array(rows, dtype=object).reshape(values.shape[0], k)


def encode_bytes_elements(elements: Sequence[bytes]) -> bytes:
    """BYTES elements in the binary layout: each a 4-byte little-endian length, then its bytes."""
    return b"".join(_LENGTH.pack(len(element)) + element for element in elements)


# ----------------------------------------------------------------------------------------------


def _json_length(body: bytes, header_length: str | None) -> int:
    if header_length is None:
        return len(body)
    value = header_length.strip()
    if not value.isdigit() or not 0 < int(value) <= len(body):
        raise ProtocolError(
            f"{HEADER_LENGTH} must be between 1 and the body's {len(body)} bytes, got {value!r}"
        )
    return int(value)


def _input(item: dict[str, Any], raw: memoryview) -> tuple[InputTensor, int]:
    """One input, and how many bytes of the binary section it took."""
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError("every input needs a name")
    datatype = item.get("datatype")
    if datatype != BYTES and datatype not in NUMERIC_TYPES:
        raise ProtocolError(f"input {name!r}: unknown datatype {datatype!r}")
    shape = _shape(name, item.get("shape"))
    count = math.prod(shape)
    parameters = _object(item.get("parameters", {}), f"input {name!r} parameters")
    if _SHARED_MEMORY in parameters:
        raise ProtocolError(f"input {name!r}: shared memory is not supported")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if type(size) is not int or size < 0:
            raise ProtocolError(f"input {name!r}: binary_data_size must be a non-negative integer")
        if "data" in item:
            raise ProtocolError(f"input {name!r}: give either data or binary_data_size, not both")
        if size > len(raw):
            raise ProtocolError(f"input {name!r}: {size} bytes of binary data declared, {len(raw)} left")
        data = _binary_data(name, datatype, shape, count, bytes(raw[:size]))
        return InputTensor(name, datatype, tuple(shape), data, binary=True), size
    if "data" not in item:
        raise ProtocolError(f"input {name!r} has no data")
    flat = _flatten(item["data"], name)
    if len(flat) != count:
        raise ProtocolError(f"input {name!r}: shape {shape} needs {count} elements, got {len(flat)}")
    return InputTensor(name, datatype, tuple(shape), _json_data(name, datatype, shape, flat), binary=False), 0


def _shape(name: str, shape: Any) -> list[int]:
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    if len(shape) > MAX_DIMENSIONS:
        raise ProtocolError(f"input {name!r}: at most {MAX_DIMENSIONS} dimensions, got {len(shape)}")
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise ProtocolError(f"input {name!r}: shape {shape} is too large for any tensor")
    return shape


def _binary_data(
    name: str, datatype: str, shape: list[int], count: int, raw: bytes
) -> np.ndarray | list[bytes]:
    if datatype == BYTES:
        elements = _split_bytes(name, raw)
        if len(elements) != count:
            raise ProtocolError(f"input {name!r}: shape {shape} needs {count} elements, got {len(elements)}")
        return elements
    dtype = NUMERIC_TYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise ProtocolError(
            f"input {name!r}: shape {shape} of {datatype} is {count * dtype.itemsize} bytes, got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _split_bytes(name: str, raw: bytes) -> list[bytes]:
    elements, offset = [], 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise ProtocolError(f"input {name!r}: BYTES data ends inside an element's length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise ProtocolError(f"input {name!r}: a BYTES element of {length} bytes runs past the data")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def _json_data(name: str, datatype: str, shape: list[int], flat: list[Any]) -> np.ndarray | list[bytes]:
    if datatype == BYTES:
        if not all(isinstance(value, str) for value in flat):
            raise ProtocolError(f"input {name!r}: BYTES data in JSON must be strings")
        if not all(_is_text(value) for value in flat):
            raise ProtocolError(f"input {name!r}: BYTES data must be valid Unicode text {_NO_SURROGATES}")
        return [value.encode("utf-8") for value in flat]
    if datatype == "BOOL":
        valid = all(isinstance(value, bool) for value in flat)
    else:
        # bool is an int in Python: refuse true/false as numbers.
        valid = all(type(value) in (int, float) for value in flat)
    if not valid:
        raise ProtocolError(
            f"input {name!r}: {datatype} data must be {'booleans' if datatype == 'BOOL' else 'numbers'}"
        )
    try:
        with np.errstate(over="ignore"):  # a float beyond the type's range becomes inf, judged by the caller
            return np.array(flat, dtype=NUMERIC_TYPES[datatype]).reshape(shape)
    except OverflowError as exc:
        raise ProtocolError(f"input {name!r}: a value does not fit {datatype}") from exc


def _flatten(data: Any, name: str) -> list[Any]:
    """Nested lists → their leaves in row-major order (the protocol allows both layouts)."""
    if not isinstance(data, list):
        raise ProtocolError(f"input {name!r}: data must be a list")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _output(item: dict[str, Any], binary_default: bool) -> RequestedOutput:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError("every requested output needs a name")
    parameters = _object(item.get("parameters", {}), f"output {name!r} parameters")
    if _SHARED_MEMORY in parameters:
        raise ProtocolError(f"output {name!r}: shared memory is not supported")
    binary = _bool(parameters.get("binary_data", binary_default), f"output {name!r} binary_data")
    k = parameters.get("classification", 0)
    if type(k) is not int or k < 0:
        raise ProtocolError(f"output {name!r}: classification must be a non-negative integer, got {k!r}")
    return RequestedOutput(name, binary, k)


def _to_bytes(output: OutputTensor) -> bytes:
    if output.datatype == BYTES:
        return encode_bytes_elements([str(value).encode() for value in output.data.ravel()])
    return np.ascontiguousarray(output.data, dtype=NUMERIC_TYPES[output.datatype]).tobytes()


# JSON's \uXXXX escapes can spell half of a UTF-16 pair alone; Python's json keeps it, but such a
# string has no UTF-8 form.
_NO_SURROGATES = "(a lone surrogate such as \\ud800 has no UTF-8 form)"


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    return value


def _list(value: Any, what: str, allow_empty: bool = True) -> list[Any]:
    if not isinstance(value, list) or (not allow_empty and not value):
        raise ProtocolError(f"{what} must be a {'' if allow_empty else 'non-empty '}list")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(f"{what} must be true or false")
    return value

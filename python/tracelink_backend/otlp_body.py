"""Checks that a request body is an OTLP/HTTP trace export before it is relayed.

A body that fails a check is answered with a 4xx and never forwarded. The
checks are structural, not a full decode: a protobuf body must be a well-formed
`ExportTraceServiceRequest` down to its spans (every length in bounds, known
wire types, `resource_spans` → `scope_spans` → `spans` all messages); a JSON
body must be an object whose `resourceSpans` is a list of objects, with
`scopeSpans` and `spans` lists of objects. Field values are the collector's
business.
"""

from __future__ import annotations

import json
import zlib
from typing import Iterator

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)


class BadBody(Exception):
    """A body the relay refuses: `status` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json` (lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body as sent before compression: gzip is undone (at most `max_bytes`
    out, so a gzip bomb costs nothing), no encoding or `identity` is as is."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise BadBody(415, f"Content-Encoding {content_encoding!r} is not supported: send gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise BadBody(400, f"the body is not valid gzip ({exc})") from None
    if len(out) > max_bytes:
        raise BadBody(413, f"the export is over {max_bytes} bytes once decompressed")
    if not inflater.eof or inflater.unused_data:
        raise BadBody(400, "the body is not one complete gzip stream")
    return out


def check(payload: bytes, media: str) -> None:
    """Raises `BadBody(400, …)` unless `payload` (decompressed) is a trace export
    in the `media` encoding (one of `MEDIA_TYPES`)."""
    if media == PROTOBUF:
        _check_protobuf(payload)
    elif media == JSON:
        _check_json(payload)
    else:
        raise BadBody(415, f"Content-Type must be {PROTOBUF} or {JSON}")


# --- protobuf -------------------------------------------------------------------------------------

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# ExportTraceServiceRequest.resource_spans = 1, ResourceSpans.scope_spans = 2, ScopeSpans.spans = 2.
_MESSAGE_PATH = (1, 2, 2)


def _check_protobuf(payload: bytes) -> None:
    try:
        _check_message(memoryview(payload), 0)
    except ValueError as exc:
        raise BadBody(400, f"the body is not an OTLP protobuf trace export: {exc}") from None


def _check_message(buf: memoryview, depth: int) -> None:
    """Walks one message's fields; the field on `_MESSAGE_PATH` at this depth must
    be length-delimited and is walked as a message in turn."""
    nested = _MESSAGE_PATH[depth] if depth < len(_MESSAGE_PATH) else None
    for number, wire_type, value in _fields(buf):
        if number == nested:
            if wire_type != _LEN:
                raise ValueError(f"field {number} at depth {depth} has wire type {wire_type}, expected 2")
            _check_message(value, depth + 1)


def _fields(buf: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """(field number, wire type, payload) for each field; ValueError when malformed."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire_type == _VARINT:
            _, after = _varint(buf, pos)
        elif wire_type == _I64:
            after = pos + 8
        elif wire_type == _I32:
            after = pos + 4
        elif wire_type == _LEN:
            length, pos = _varint(buf, pos)
            after = pos + length
        else:
            raise ValueError(f"wire type {wire_type} (field {number})")
        if after > end:
            raise ValueError(f"field {number} runs past the end")
        yield number, wire_type, buf[pos:after]
        pos = after


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        if shift >= 64:
            raise ValueError("varint over 10 bytes")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


# --- JSON -----------------------------------------------------------------------------------------


def _check_json(payload: bytes) -> None:
    try:
        export = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadBody(400, f"the body is not JSON ({type(exc).__name__})") from None
    if not isinstance(export, dict) or "resourceSpans" not in export:
        raise BadBody(400, "an OTLP JSON trace export is an object with resourceSpans")
    for resource_spans in _objects(export, "resourceSpans"):
        for scope_spans in _objects(resource_spans, "scopeSpans"):
            _objects(scope_spans, "spans")


def _objects(parent: dict, key: str) -> list[dict]:
    items = parent.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise BadBody(400, f"{key} must be a list of objects")
    return items

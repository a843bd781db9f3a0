"""Request bodies: media type, size, encoding, JSON, and the JSON:API ``data`` checks.

Klaviyo takes ``application/vnd.api+json`` bodies (``application/json`` works
too, digest §1), at most 5 MB decompressed; another media type or an unknown
``Content-Encoding`` is a 415. ``data.type`` must be one the spec allows for
the operation (``_spectables.REQUEST_TYPES``); on a PATCH of one resource,
``data.id`` must equal the id in the path. What Klaviyo answers for a
mismatched id is unverified; JSON:API prescribes 409 Conflict, so that is it.
"""

from __future__ import annotations

import gc
import zlib
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from kbridge.catalog import Operation
from kbridge.core import loads
from kbridge.core.jsoncodec import JSONDecodeError
from kbridge.emulator.http._spectables import REQUEST_TYPES
from kbridge.emulator.http.errors import HttpProblem

__all__ = [
    "JSON_MEDIA_TYPES",
    "MAX_BODY_BYTES",
    "MULTIPART_FRAMING",
    "check_document",
    "decode_body",
]

#: Klaviyo's global payload limit, decompressed (digest §1).
MAX_BODY_BYTES = 5 * 1024 * 1024
JSON_MEDIA_TYPES = frozenset({"application/vnd.api+json", "application/json"})
_MULTIPART = "multipart/form-data"
#: room for boundaries, part headers and small fields around a multipart upload
MULTIPART_FRAMING = 64 * 1024
#: bodies from this size are parsed with the garbage collector paused
_QUIET_PARSE_BYTES = 256 * 1024


def _too_large() -> HttpProblem:
    return HttpProblem(
        413,
        "request_too_large",
        f"The request body exceeds the {MAX_BODY_BYTES // (1024 * 1024)} MB limit.",
    )


def _unsupported(media_type: str) -> HttpProblem:
    shown = media_type or "(none)"
    return HttpProblem(
        415,
        "unsupported_media_type",
        f'Unsupported media type "{shown[:80]}" in request.',
    )


def _decompress(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise HttpProblem(
            415,
            "unsupported_media_type",
            f'Unsupported content encoding "{encoding[:40]}"; use gzip, deflate or none.',
        )
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise HttpProblem(400, "invalid", f"The body is not valid {encoding} data.") from None
    if len(out) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise _too_large()
    return out


def _multipart_fields(raw: bytes, content_type: str) -> dict[str, str | bytes]:
    """Form fields of a ``multipart/form-data`` body; file parts stay bytes, and the
    file's name (when the part has one) is under ``"<field>;filename"``."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(header + raw)
    if not message.is_multipart():
        raise HttpProblem(400, "invalid", "The multipart body could not be parsed.")
    fields: dict[str, str | bytes] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        fields[name] = data if filename else data.decode("utf-8", "replace")
        if filename:
            fields[f"{name};filename"] = filename  # not a form field name a client can send
    return fields


def decode_body(
    operation: Operation,
    raw: bytes,
    *,
    content_type: str,
    content_encoding: str = "",
) -> Any:
    """The decoded body of a request to ``operation`` (``None`` when it takes none)."""
    if operation.request_content_type is None:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    # A 5 MB file and its form framing exceed 5 MB: leave room for the framing, so
    # the backend can judge the file itself (and name the limit in a 400).
    limit = MAX_BODY_BYTES + MULTIPART_FRAMING if media_type == _MULTIPART else MAX_BODY_BYTES
    if len(raw) > limit:
        raise _too_large()
    if operation.request_content_type == _MULTIPART:
        if media_type != _MULTIPART:
            raise _unsupported(media_type)
        return _multipart_fields(_decompress(raw, content_encoding), content_type)
    if media_type not in JSON_MEDIA_TYPES:
        raise _unsupported(media_type)
    raw = _decompress(raw, content_encoding)
    if not raw.strip():
        raise HttpProblem(400, "invalid", "A request body is required.", pointer="/data")
    # JSON makes no cycles: a 5 MB import (~50,000 objects) need not set off the
    # collector every 700 of them; they are walked once, after
    collecting = len(raw) > _QUIET_PARSE_BYTES and gc.isenabled()
    if collecting:
        gc.disable()
    try:
        return loads(raw)
    except JSONDecodeError as exc:
        raise HttpProblem(400, "invalid", f"JSON parse error - {exc}") from None
    finally:
        if collecting:
            gc.enable()


def _type_of(item: Any, pointer: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(item, dict):
        raise HttpProblem(400, "invalid", "Expected a resource object.", pointer=pointer)
    rtype = item.get("type")
    if rtype is None:
        raise HttpProblem(
            400, "invalid", "'type' is a required property.", pointer=f"{pointer}/type"
        )
    if rtype not in allowed:
        raise HttpProblem(
            409,
            "conflict",
            f"Resource type {str(rtype)[:60]!r} does not match this endpoint; "
            f"expected {' or '.join(repr(t) for t in allowed)}.",
            pointer=f"{pointer}/type",
        )


def check_document(operation: Operation, body: Any, path_params: dict[str, str]) -> None:
    """``data`` present and shaped as the spec says; types allowed; PATCH ids match the path."""
    entry = REQUEST_TYPES.get(operation.operation_id)
    if entry is None:
        return
    allowed, is_array = entry
    if not isinstance(body, dict) or "data" not in body:
        raise HttpProblem(400, "invalid", "'data' is a required property.", pointer="/data")
    data = body["data"]
    if is_array:
        if not isinstance(data, list):
            raise HttpProblem(400, "invalid", "'data' must be an array.", pointer="/data")
        for i, item in enumerate(data):
            _type_of(item, f"/data/{i}", allowed)
        return
    _type_of(data, "/data", allowed)
    path_id = path_params.get("id")
    # a to-one relationship's PATCH names the related resource, not the owner in the path
    relationship = "/relationships/" in operation.path
    if operation.method == "PATCH" and path_id is not None and not relationship:
        body_id = data.get("id")
        if body_id is None:
            raise HttpProblem(400, "invalid", "'id' is a required property.", pointer="/data/id")
        if str(body_id) != path_id:
            raise HttpProblem(
                409,
                "conflict",
                f"The id in the body ({str(body_id)[:60]!r}) does not match the id in the "
                f"URL ({path_id[:60]!r}).",
                pointer="/data/id",
            )

"""Opaque page cursors.

A cursor is a keyset position (e.g. the sort value and insertion sequence of
the last record served), so paging stays stable while records are inserted:
nothing is skipped or repeated. The payload is a JSON array, base64url
encoded without padding; clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

__all__ = ["InvalidCursorError", "decode_cursor", "encode_cursor"]


class InvalidCursorError(ValueError):
    """The ``page[cursor]`` value was not made by this server."""


def encode_cursor(*position: Any) -> str:
    raw = orjson.dumps(list(position))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursorError(f"invalid page cursor {cursor[:40]!r}") from exc
    if not isinstance(value, list):
        raise InvalidCursorError(f"invalid page cursor {cursor[:40]!r}")
    return tuple(value)

"""The one JSON codec (orjson): bytes in, bytes out on hot paths."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_str", "loads"]

JSONDecodeError = orjson.JSONDecodeError

_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any, *, indent: bool = False) -> bytes:
    """Serialise ``obj``; datetimes become RFC 3339 strings."""
    opts = _OPTS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(obj, option=opts)


def dumps_str(obj: Any, *, indent: bool = False) -> str:
    return dumps(obj, indent=indent).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)

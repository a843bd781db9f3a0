"""What the pages computed from a DuckDB warehouse, kept until the file changes.

Opening a DuckDB file, reading it and closing it costs a page most of its
300 ms (the open checks the system tables, the close checkpoints), and a
connection's streams or churn table change only when a sync writes. So an
answer is kept under the file's version (size and modification time of the
file and its write-ahead log, read after the answer was computed: the first
open may checkpoint the log a sync left), and computed again when a sync, a
CLI run or anything else has written since. PostgreSQL warehouses are not
cached: their changes leave no such trace.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from kbridge.warehouse import duckdb_path

__all__ = ["VersionedCache", "file_version"]

_T = TypeVar("_T")


def file_version(url: str) -> tuple[object, ...] | None:
    """The DuckDB file's version (``None``: not a DuckDB file, or none there yet)."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    path = duckdb_path(url.partition("?")[0])
    if path is None or path == ":memory:":
        return None
    version: list[object] = []
    for name in (path, f"{path}.wal"):
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            version.append(None)
            continue
        version.append((stat.st_mtime_ns, stat.st_size))
    return None if version[0] is None else tuple(version)


class VersionedCache:
    """Answers by key, each good while its warehouse file keeps the version it had."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._found: OrderedDict[Hashable, tuple[tuple[object, ...], object]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VersionedCache({len(self._found)} of {self._size})"

    def get(
        self,
        url: str,
        key: Hashable,
        compute: Callable[[], _T],
        *,
        keep: Callable[[_T], bool] = lambda _: True,
    ) -> _T:
        """``compute()``'s answer for ``key`` over ``url``'s warehouse, computed again only
        once the file has changed; an answer ``keep`` refuses (a passing failure) is not
        kept."""
        version = file_version(url)
        if version is not None:
            with self._lock:
                kept = self._found.get((url, key))
            if kept is not None and kept[0] == version:
                return kept[1]  # type: ignore[return-value]
        answer = compute()
        after = file_version(url)
        if after is not None and keep(answer):
            with self._lock:
                self._found[(url, key)] = (after, answer)
                self._found.move_to_end((url, key))
                while len(self._found) > self._size:
                    self._found.popitem(last=False)
        return answer

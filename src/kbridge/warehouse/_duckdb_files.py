"""The DuckDB file on disk: created private (mode 0600) and flushed durably."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets

import duckdb


def _fsync(path: str) -> None:
    """Flush a file (or a directory's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_private(path: str) -> None:
    """Create a new database file at ``path`` with mode 0600 (it will hold PII).

    DuckDB creates files under the umask (usually 0644) and refuses a file it did not
    write, so a database is made under a temporary name, narrowed, then linked into
    place: nobody else can open ``path`` in between, and a concurrent creator's file wins.
    """
    if path == ":memory:" or "://" in path or os.path.lexists(path):
        return
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return  # DuckDB's own error says what is missing
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    try:
        duckdb.connect(tmp).close()
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links here: move it (only a same-instant creator loses)
            with contextlib.suppress(OSError):
                os.rename(tmp, path)
    finally:
        for leftover in (tmp, f"{tmp}.wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _hold_file(path: str) -> int | None:
    """Take an exclusive lock on ``path``'s companion ``.kbridge-lock`` file and return its
    descriptor (``None`` for ``:memory:`` and URLs, which have no file).

    DuckDB's own lock lasts only while the file is attached, and
    :meth:`~kbridge.warehouse.duckdb.DuckDBWarehouse.compact` detaches it to swap the
    rewritten copy in: a sync opening the file in that window wrote into the old inode,
    and its rows were gone after the rename. This lock is held from open to close,
    across the swap. Raises :class:`BlockingIOError` when another process holds it and
    :class:`OSError` when the lock file cannot be made (say the directory is missing).
    """
    if path == ":memory:" or "://" in path:
        return None
    fd = os.open(path + ".kbridge-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def _release_file(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)

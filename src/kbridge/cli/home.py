"""The data directory every command keeps its files in, and the master key that seals them.

``$KBRIDGE_HOME``, else the user data directory: the connection store, the
defaults file, the service's embedded app database (``app.sqlite3``), its
default warehouses and the key file live there. One definition, so that
``kbridge connect``, ``kbridge serve``, ``kbridge worker`` and ``kbridge
tokens add`` can never disagree about where things are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["HOME_ENV", "data_dir", "master_key"]

HOME_ENV = "KBRIDGE_HOME"


def data_dir(env: Mapping[str, str]) -> Path:
    """``$KBRIDGE_HOME``, else the user data directory."""
    home = env.get(HOME_ENV)
    if not home:
        import platformdirs

        home = platformdirs.user_data_dir("kbridge")
    return Path(home).expanduser()


def master_key(home: Path, env: Mapping[str, str]) -> bytes:
    """``KBRIDGE_MASTER_KEY``, else the 0600 key file in the data directory (made if missing)."""
    from kbridge.connections import (
        KEY_FILE_NAME,
        MASTER_KEY_ENV,
        load_or_create_key_file,
        parse_master_key,
    )

    raw = env.get(MASTER_KEY_ENV)
    return parse_master_key(raw) if raw else load_or_create_key_file(home / KEY_FILE_NAME)

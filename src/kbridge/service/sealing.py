"""Personal data in the app database's job rows, sealed under the master key.

A privacy job names the people it is about (``subjects``) and an access job's
result is their data. Kept in clear, every backup of the app database and
every ``SELECT`` of the jobs table would hold them long after the request was
done: the privacy log itself stores subjects only as keyed hashes. So a job's
subjects travel as ``sealed_subjects`` and an access job's reports as
``sealed_reports``, AES-256-GCM under the same master key as connection
secrets, bound to the workspace and to what they are (a blob moved to another
workspace's job, or from the subjects to the reports, refuses to open).
The REST API seals on the way in and opens for its caller on the way out.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from kbridge.connections import SecretBox
from kbridge.core.jsoncodec import dumps, loads

__all__ = [
    "SEALED_REPORTS",
    "SEALED_SUBJECTS",
    "open_sealed",
    "seal_subjects",
    "sealed",
]

SEALED_SUBJECTS = "sealed_subjects"
SEALED_REPORTS = "sealed_reports"


def _aad(workspace_id: str, what: str) -> bytes:
    return f"kbridge:job:{what}:{workspace_id}".encode()


def sealed(master_key: bytes, workspace_id: str, what: str, value: Any) -> str:
    """``value`` (JSON) sealed for ``workspace_id`` as ``what``, as base64 text."""
    blob = SecretBox(master_key).seal(dumps(value), aad=_aad(workspace_id, what))
    return base64.b64encode(blob).decode("ascii")


def open_sealed(master_key: bytes, workspace_id: str, what: str, text: str) -> Any:
    """The value :func:`sealed` made; a tampered or moved blob raises ConnectionStoreError."""
    try:
        blob = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        blob = b""
    return loads(SecretBox(master_key).open(blob, aad=_aad(workspace_id, what), what=what))


def seal_subjects(
    master_key: bytes, workspace_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``params`` with its ``subjects`` list replaced by ``sealed_subjects`` (and a count)."""
    out = {k: v for k, v in params.items() if k != "subjects"}
    if "subjects" in params:
        subjects = params["subjects"]
        out[SEALED_SUBJECTS] = sealed(master_key, workspace_id, SEALED_SUBJECTS, subjects)
        if isinstance(subjects, list):
            out["subject_count"] = len(subjects)
    return out

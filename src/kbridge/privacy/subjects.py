"""Data subjects: who a privacy request is about, read from arguments or a CSV file.

A subject is an email address, a phone number, or both (a CSV row may give
both). Email and phone can point at different profiles, which is why the
deletion guard shows every match before anything is deleted.

The audit log names a subject only by :func:`subject_hash`: an HMAC-SHA256
of each normalised identifier under a key the log keeps (joined by ``+``
when a subject gives both), so the log holds no address in clear, cannot be
reversed by hashing a list of guesses without that key, and an entry about
an email and a phone is found by either (:func:`identifier_hash`).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kbridge.api.validation import ValidationError, check_email, check_phone
from kbridge.privacy.errors import SubjectError

__all__ = [
    "Subject",
    "batch_id",
    "identifier_hash",
    "parse_subject",
    "read_subjects",
    "subject_hash",
]

_EMAIL_COLUMNS = ("email", "email_address", "e-mail")
_PHONE_COLUMNS = ("phone_number", "phone", "mobile")


@dataclass(frozen=True, slots=True)
class Subject:
    """One data subject: an email, a phone number (E.164), or both."""

    email: str | None = None
    phone_number: str | None = None

    def __post_init__(self) -> None:
        if self.email is None and self.phone_number is None:
            raise SubjectError("a subject needs an email or a phone number")

    @property
    def label(self) -> str:
        """What a person reads: the identifiers as given."""
        return " / ".join(v for v in (self.email, self.phone_number) if v)

    @property
    def normalised(self) -> tuple[str, ...]:
        """The identifiers that are hashed: emails compare case-insensitively, as Klaviyo
        does."""
        parts = []
        if self.email is not None:
            parts.append("email:" + self.email.strip().lower())
        if self.phone_number is not None:
            parts.append("phone:" + self.phone_number.strip())
        return tuple(parts)

    def email_variants(self) -> list[str]:
        """The spellings to search: as given, then lower-cased (Klaviyo treats them as equal)."""
        if self.email is None:
            return []
        variants: list[str] = []
        for v in (self.email, self.email.lower()):
            if v not in variants:
                variants.append(v)
        return variants


def parse_subject(text: str) -> Subject:
    """``a@b.co`` → an email subject, ``+15005550006`` → a phone one; else :class:`SubjectError`."""
    value = text.strip()
    try:
        if value.startswith("+"):
            return Subject(phone_number=check_phone(value))
        return Subject(email=check_email(value))
    except ValidationError as exc:
        raise SubjectError(f"subject {exc.reason}") from None


def read_subjects(path: Path) -> list[Subject]:
    """Subjects from a CSV file.

    With a header naming ``email`` and/or ``phone_number`` (or ``phone``),
    those columns are read (a row may give both); without one, the first
    column of each row is an email or a phone number. Blank rows are skipped.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except OSError as exc:
        raise SubjectError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SubjectError(f"{path} is not a UTF-8 CSV file ({exc})") from None
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    email_col = _column(header, _EMAIL_COLUMNS)
    phone_col = _column(header, _PHONE_COLUMNS)
    if email_col is None and phone_col is None:
        return [_from_cell(path, n, row[0]) for n, row in enumerate(rows, start=1)]
    subjects = []
    for n, row in enumerate(rows[1:], start=2):
        email = _cell(row, email_col)
        phone = _cell(row, phone_col)
        if email is None and phone is None:
            raise SubjectError(f"{path}, line {n}: no email or phone number")
        try:
            subjects.append(
                Subject(
                    email=None if email is None else check_email(email),
                    phone_number=None if phone is None else check_phone(phone),
                )
            )
        except ValidationError as exc:
            raise SubjectError(f"{path}, line {n}: {exc.reason}") from None
    return subjects


def _column(header: Sequence[str], names: Iterable[str]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _cell(row: Sequence[str], index: int | None) -> str | None:
    if index is None or index >= len(row):
        return None
    return row[index].strip() or None


def _from_cell(path: Path, line: int, cell: str) -> Subject:
    try:
        return parse_subject(cell)
    except SubjectError as exc:
        raise SubjectError(f"{path}, line {line}: {exc}") from None


def subject_hash(key: bytes, subject: Subject) -> str:
    """The subject's pseudonym in the audit log: the HMAC-SHA256 under ``key`` (hex) of
    each identifier, email first, joined by ``+``.

    Hashing each identifier on its own (not the pair) is what lets ``privacy log
    --subject`` find a row that gave an email and a phone by either of them.
    """
    return "+".join(_hmac(key, part) for part in subject.normalised)


def identifier_hash(key: bytes, subject: Subject) -> str:
    """The pseudonym of a subject of one identifier, as it appears inside the
    :func:`subject_hash` of every subject giving that identifier."""
    if len(subject.normalised) != 1:
        raise ValueError("identifier_hash takes a subject of one identifier")
    return subject_hash(key, subject)


def _hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def batch_id(action: str, hashes: Iterable[str]) -> str:
    """One id for "this action on these subjects": the same batch run again gets the same id
    (a deletion batch numbers its later requests after it: ``<id>-2``, …)."""
    digest = hashlib.sha256(action.encode())
    for h in sorted(set(hashes)):
        digest.update(b"\0" + h.encode())
    return digest.hexdigest()[:16]

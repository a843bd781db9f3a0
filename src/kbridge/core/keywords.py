"""Keyword arguments typed by a ``TypedDict`` (``**fields: Unpack[…]``), checked at run time.

Declaring a family of keyword parameters once as a ``TypedDict`` lets several
signatures (a protocol and its implementations) share them, and mypy checks
every call; a caller without a type checker still gets the ``TypeError`` an
explicit signature would give, from :func:`check_keywords`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["check_keywords"]


def check_keywords(given: Mapping[str, Any], spec: Any, function: str) -> None:
    """Raise ``TypeError`` when ``given`` lacks a required key of the ``TypedDict`` ``spec``
    or has one it does not declare, worded as Python words it for a signature."""
    required: frozenset[str] = spec.__required_keys__
    known = required | spec.__optional_keys__
    unexpected = sorted(set(given) - known)
    if unexpected:
        raise TypeError(f"{function}() got an unexpected keyword argument {unexpected[0]!r}")
    missing = sorted(required - set(given))
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise TypeError(f"{function}() missing required keyword-only argument(s): {names}")

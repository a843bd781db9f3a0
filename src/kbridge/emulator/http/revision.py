"""The ``revision`` header: Klaviyo's API versioning (digest §3).

Format ``YYYY-MM-DD`` with an optional suffix (``2026-07-15.pre``). A date in
the future (on the simulated clock) is refused; a revision retired more than
two years ago falls forward to the oldest supported one, or answers 410 when
the caller sends ``X-Klaviyo-Revision-Fall-Forward-Opt-Out: 1``. What Klaviyo
does without the header is unverified: 400 by default
(``EmulatorConfig.require_revision``), else the catalogue's revision.

The emulator serves one behaviour (the spec's); the resolved revision is
only reported, so every valid past revision — including the official SDK's
newer pin — is answered the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from kbridge.emulator.http.errors import HttpProblem

__all__ = ["RETIREMENT_YEARS", "ResolvedRevision", "resolve_revision"]

#: Revisions are stable for one year, deprecated for one more, then retired.
RETIREMENT_YEARS = 2

_REVISION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:\.([A-Za-z0-9_-]+))?$")


@dataclass(frozen=True, slots=True)
class ResolvedRevision:
    requested: str | None
    #: the revision the request is answered as (after defaulting or falling forward)
    effective: str
    fell_forward: bool = False


def _invalid(detail: str) -> HttpProblem:
    return HttpProblem(400, "invalid", detail, parameter="revision")


def _parse(value: str) -> date:
    m = _REVISION_RE.match(value)
    if not m:
        raise _invalid(
            f"Invalid revision {value[:40]!r}: expected a date formatted as YYYY-MM-DD, "
            "optionally with a suffix such as '.pre'."
        )
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise _invalid(f"Invalid revision {value[:40]!r}: not a calendar date.") from None


def _shift_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


def resolve_revision(
    value: str | None,
    *,
    today: date,
    default: str,
    require: bool = True,
    fall_forward_opt_out: bool = False,
) -> ResolvedRevision:
    """Validate a ``revision`` header value against the simulated ``today``."""
    if value is None or not value.strip():
        if require:
            raise _invalid("The 'revision' header is required (e.g. revision: 2026-07-15).")
        return ResolvedRevision(None, default)
    value = value.strip()
    requested = _parse(value)
    if requested > today:
        raise _invalid("Invalid revision: unable to specify a future revision date.")
    cutoff = _shift_years(today, -RETIREMENT_YEARS)
    if requested < cutoff:
        if fall_forward_opt_out:
            raise HttpProblem(
                410,
                "gone",
                f"Revision {value} was retired on {_shift_years(requested, RETIREMENT_YEARS)}"
                f" and X-Klaviyo-Revision-Fall-Forward-Opt-Out is set; use a revision "
                f"dated {cutoff.isoformat()} or later.",
                parameter="revision",
            )
        return ResolvedRevision(value, cutoff.isoformat(), fell_forward=True)
    return ResolvedRevision(value, value)

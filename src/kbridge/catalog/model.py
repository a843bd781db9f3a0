"""The shape of one catalogue entry: facts about a Klaviyo operation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["AltLimit", "FilterField", "Operation", "RateLimit"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Per-account limits: ``burst`` per second, ``steady`` per minute, ``daily`` per day."""

    burst: int
    steady: int
    daily: int | None = None

    @property
    def tier(self) -> str:
        """A stable name for the tier, e.g. ``"75/s,750/m"`` or ``"1/s,2/m,225/d"``."""
        base = f"{self.burst}/s,{self.steady}/m"
        return f"{base},{self.daily}/d" if self.daily else base


@dataclass(frozen=True, slots=True)
class AltLimit:
    """A stricter limit a request also consumes when it uses ``param=value``.

    E.g. ``additional-fields[profile]=predictive_analytics`` on GET /api/profiles
    counts against 10/s and 150/m as well as the operation's own limits.
    """

    param: str
    value: str
    limit: RateLimit


@dataclass(frozen=True, slots=True)
class FilterField:
    """Operators allowed on one filter field, by the kind of value they take."""

    name: str
    single: tuple[str, ...] = ()
    list: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    value_type: str | None = None
    value_format: str | None = None

    def operators(self) -> frozenset[str]:
        return frozenset(self.single) | frozenset(self.list) | frozenset(self.none)


@dataclass(frozen=True, slots=True, eq=False)
class Operation:
    """One operation; compared and hashed by identity (each is a singleton in OPERATIONS)."""

    method: str
    path: str
    operation_id: str
    tag: str
    rate_limit: RateLimit
    scopes: tuple[str, ...]
    success_status: int
    revision: str
    aliases: tuple[str, ...] = ()
    auth: str = "private"  # "private" (key or OAuth) or "public" (company_id)
    request_content_type: str | None = None
    filters: tuple[FilterField, ...] = ()
    sort: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    additional_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    page_size_param: bool = False
    default_page_size: int | None = None
    max_page_size: int | None = None
    paginated: bool = False
    alt_limits: tuple[AltLimit, ...] = ()
    path_params: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``"GET /api/profiles"``."""
        return f"{self.method} {self.path}"

    def filter_field(self, name: str) -> FilterField | None:
        for f in self.filters:
            if f.name == name:
                return f
        return None

    def path_regex(self) -> re.Pattern[str]:
        """Matches a concrete path (optional trailing slash), capturing path params by name."""
        pattern = re.sub(r"\\\{([a-zA-Z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{pattern}/?$")

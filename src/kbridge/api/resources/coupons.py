"""``client.coupons``: coupons and their unique codes (Klaviyo tag *Coupons*).

A coupon's id is its ``external_id``; a code's id is ``<coupon id>-<code>``.
Klaviyo lists codes only for given coupons or profiles, so
:meth:`CouponsService.iter_coupon_codes` needs one of them.
:meth:`CouponsService.bulk_create_coupon_codes` uploads any number of codes
in jobs of ≤1,000 and returns the job resources (their ``errors`` name the
codes refused, e.g. duplicates).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Unpack

from kbridge.api.jsonapi import Resource, build_document
from kbridge.api.resources._base import ListQuery, Progress, Service, chunked
from kbridge.api.validation import ValidationError, check_choice, iso

__all__ = ["COUPON_CODE_STATUSES", "MAX_COUPON_CODES_PER_JOB", "CouponsService"]

MAX_COUPON_CODES_PER_JOB = 1000
COUPON_CODE_STATUSES = (
    "ASSIGNED_TO_PROFILE", "DELETING", "PROCESSING", "UNASSIGNED", "USED", "VERSION_NOT_ACTIVE",
)  # fmt: skip


def _code(value: str, field: str = "unique_code") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise ValidationError(field, "must be a non-empty string of at most 255 characters")
    return value


class CouponsService(Service):
    async def get_coupons(self, **query: Unpack[ListQuery]) -> list[Resource]:
        return await self._page("get_coupons", query)

    def iter_coupons(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        """Every coupon of the account."""
        return self._all("get_coupons", query)

    async def get_coupon(self, coupon_id: str) -> Resource:
        return await self._one("get_coupon", path_params={"id": coupon_id})

    async def create_coupon(
        self,
        *,
        external_id: str,
        description: str | None = None,
        low_balance_threshold: int | None = None,
    ) -> Resource:
        """A new coupon (its codes come from :meth:`bulk_create_coupon_codes`).

        Args:
            external_id: the coupon's id, e.g. WELCOME10 (letters, digits, _ and -)
            description: what the coupon gives
            low_balance_threshold: warn when fewer unassigned codes remain
        """
        attrs: dict[str, Any] = {"external_id": _code(external_id, "external_id")}
        if description is not None:
            attrs["description"] = description
        if low_balance_threshold is not None:
            attrs["monitor_configuration"] = {"low_balance_threshold": low_balance_threshold}
        return await self._one("create_coupon", json=build_document("coupon", attributes=attrs))

    async def update_coupon(
        self,
        coupon_id: str,
        *,
        description: str | None = None,
        low_balance_threshold: int | None = None,
    ) -> Resource:
        attrs: dict[str, Any] = {}
        if description is not None:
            attrs["description"] = description
        if low_balance_threshold is not None:
            attrs["monitor_configuration"] = {"low_balance_threshold": low_balance_threshold}
        body = build_document("coupon", id=coupon_id, attributes=attrs)
        return await self._one("update_coupon", path_params={"id": coupon_id}, json=body)

    async def delete_coupon(self, coupon_id: str) -> None:
        """Delete a coupon and its codes."""
        await self._send("delete_coupon", path_params={"id": coupon_id})

    def iter_coupon_codes(self, **query: Unpack[ListQuery]) -> AsyncIterator[Resource]:
        """Coupon codes; the filter must name coupon.id or profile.id, e.g.
        ``equals(coupon.id,["WELCOME10"])``."""
        text = str(query.get("filter") or "")
        if "coupon.id" not in text and "profile.id" not in text:
            raise ValidationError("filter", "Klaviyo lists codes by coupon.id or profile.id")
        return self._all("get_coupon_codes", query)

    def iter_coupon_codes_for_coupon(
        self, coupon_id: str, **query: Unpack[ListQuery]
    ) -> AsyncIterator[Resource]:
        """Every code of a coupon (filter by status, expires_at)."""
        return self._all("get_coupon_codes_for_coupon", query, path_params={"id": coupon_id})

    async def get_coupon_code(self, code_id: str) -> Resource:
        return await self._one("get_coupon_code", path_params={"id": code_id})

    async def create_coupon_code(
        self, *, coupon_id: str, unique_code: str, expires_at: datetime | None = None
    ) -> Resource:
        """One code of a coupon.

        Args:
            coupon_id: the coupon's id
            unique_code: the code a customer types
            expires_at: when the code stops working (default: a year from now)
        """
        body = build_document(
            "coupon-code",
            attributes=_code_attributes(unique_code, expires_at),
            relationships={"coupon": ("coupon", coupon_id)},
        )
        return await self._one("create_coupon_code", json=body)

    async def update_coupon_code(
        self, code_id: str, *, status: str | None = None, expires_at: datetime | None = None
    ) -> Resource:
        """Change a code's status or expiry.

        Args:
            status: e.g. USED or UNASSIGNED
        """
        attrs: dict[str, Any] = {}
        if status is not None:
            attrs["status"] = check_choice(status, COUPON_CODE_STATUSES, "status")
        if expires_at is not None:
            attrs["expires_at"] = iso(expires_at, "expires_at")
        body = build_document("coupon-code", id=code_id, attributes=attrs)
        return await self._one("update_coupon_code", path_params={"id": code_id}, json=body)

    async def delete_coupon_code(self, code_id: str) -> None:
        await self._send("delete_coupon_code", path_params={"id": code_id})

    async def bulk_create_coupon_codes(
        self,
        coupon_id: str,
        *,
        codes: Sequence[str],
        expires_at: datetime | None = None,
        progress: Progress | None = None,
    ) -> list[Resource]:
        """Upload codes for a coupon in jobs of ≤1,000; returns the job resources.

        Args:
            codes: a unique code (repeatable)
            expires_at: when the codes stop working (default: a year from upload)
        """
        if not codes:
            raise ValidationError("codes", "give at least one code")
        seen: set[str] = set()
        rows = []
        for i, code in enumerate(codes):
            if code in seen:
                raise ValidationError(f"codes[{i}]", f"{code!r} is given twice")
            seen.add(code)
            rows.append(
                {
                    "type": "coupon-code",
                    "attributes": _code_attributes(_code(code, f"codes[{i}]"), expires_at),
                    "relationships": {"coupon": {"data": {"type": "coupon", "id": coupon_id}}},
                }
            )

        async def send(chunk: Sequence[Any]) -> Resource:
            body = build_document(
                "coupon-code-bulk-create-job", attributes={"coupon-codes": {"data": list(chunk)}}
            )
            return await self._one("bulk_create_coupon_codes", json=body)

        jobs: list[Resource] = await self._run_chunks(
            chunked(rows, MAX_COUPON_CODES_PER_JOB), send, progress
        )
        return jobs

    async def get_bulk_create_coupon_codes_job(self, job_id: str) -> Resource:
        """A bulk code job: status, counts, per-code ``errors``."""
        return await self._one("get_bulk_create_coupon_codes_job", path_params={"job_id": job_id})


def _code_attributes(unique_code: str, expires_at: datetime | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"unique_code": _code(unique_code)}
    if expires_at is not None:
        attrs["expires_at"] = iso(expires_at, "expires_at")
    return attrs

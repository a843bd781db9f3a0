"""Coupons and their unique codes, with the bulk job that creates codes.

A code's id is ``<coupon id>-<unique code>`` and its code is unique within
its coupon; without ``expires_at`` it expires a year after creation (as
Klaviyo documents). A coupon's codes go with it when it is deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.catalog_records import CatalogSeed, CouponCodeRecord, CouponRecord
from kbridge.emulator.backend.catalogs import job_resource
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    existing,
    not_found,
    page_of,
    page_outcome,
    related_page,
    relationship_ids,
    required_jobs,
    timestamp_attr,
)
from kbridge.emulator.backend.errors import ConflictError, EmulatorBackendError, InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import JobRecord
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["CODE_STATUSES", "MAX_BULK_CODES", "CouponsBackend"]

#: codes per bulk create job (Klaviyo: up to 1,000)
MAX_BULK_CODES = 1000
CODE_STATUSES = (
    "ASSIGNED_TO_PROFILE", "DELETING", "PROCESSING", "UNASSIGNED", "USED", "VERSION_NOT_ACTIVE",
)  # fmt: skip
_YEAR = 365 * 86400.0
_JOB = "coupon-code-bulk-create-job"
#: Klaviyo's rule for a coupon's external id (it becomes the id, and part of each code's)
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CouponsBackend(TagBackend):
    operations = frozenset(
        {
            "get_coupons",
            "create_coupon",
            "get_coupon",
            "update_coupon",
            "delete_coupon",
            "get_coupon_codes",
            "create_coupon_code",
            "get_coupon_code",
            "update_coupon_code",
            "delete_coupon_code",
            "get_coupon_for_coupon_code",
            "get_coupon_id_for_coupon_code",
            "get_coupon_codes_for_coupon",
            "get_coupon_code_ids_for_coupon",
            "bulk_create_coupon_codes",
            "get_bulk_create_coupon_code_jobs",
            "get_bulk_create_coupon_codes_job",
        }
    )

    def __init__(self, ctx: Context, seed: CatalogSeed | None = None) -> None:
        super().__init__(ctx)
        self.coupons: dict[str, CouponRecord] = {}
        self.codes: dict[str, CouponCodeRecord] = {}
        self.job_ids: dict[str, list[str]] = {}
        if seed is not None:
            self.coupons = {c.id: c for c in seed.coupons}
            self.codes = {c.id: c for c in seed.codes}
        required_jobs(ctx).handlers[_JOB] = self._run_bulk

    # -- coupons -------------------------------------------------------------------

    @staticmethod
    def coupon_resource(c: CouponRecord) -> Resource:
        attrs = {
            "external_id": c.id,
            "description": c.description,
            "monitor_configuration": c.monitor_configuration,
        }
        return Resource("coupon", c.id, attrs)

    def _coupon(self, cid: str) -> CouponRecord:
        return existing(self.coupons, "coupon", cid)

    def get_coupons(self, call: Call) -> Outcome:
        by_seq = {c.seq: c for c in self.coupons.values()}

        def key(s: int) -> tuple[Any, ...]:
            return (by_seq[s].created, s)

        page = page_of(call, sorted(by_seq, key=key), key, {})
        return page_outcome(page, lambda s: self.coupon_resource(by_seq[s]))

    def get_coupon(self, call: Call) -> Outcome:
        return Outcome(data=self.coupon_resource(self._coupon(self.path_id(call))))

    def create_coupon(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "coupon"))
        external = attrs.get("external_id")
        if not isinstance(external, str) or not _EXTERNAL_ID.match(external):
            raise InvalidError(
                "external_id is required: 1-64 letters, digits, '_' or '-'",
                pointer="/data/attributes/external_id",
            )
        if external in self.coupons:
            raise ConflictError(
                f"A coupon with external_id {external!r} already exists.",
                pointer="/data/attributes/external_id",
            )
        description, monitor = _coupon_fields(attrs)
        c = CouponRecord(self.store.next_seq(), external, description, monitor, self.ctx.now())
        self.coupons[c.id] = c
        return Outcome(data=self.coupon_resource(c))

    def update_coupon(self, call: Call) -> Outcome:
        c = self._coupon(self.path_id(call))
        attrs = attributes_of(data_of(call.body, "coupon"))
        description, monitor = _coupon_fields(attrs)
        if "description" in attrs:
            c.description = description
        if "monitor_configuration" in attrs:
            c.monitor_configuration = monitor
        return Outcome(data=self.coupon_resource(c))

    def delete_coupon(self, call: Call) -> Outcome:
        c = self._coupon(self.path_id(call))
        del self.coupons[c.id]
        for code in [k for k, v in self.codes.items() if v.coupon_id == c.id]:
            del self.codes[code]
        return Outcome()

    # -- coupon codes --------------------------------------------------------------

    @staticmethod
    def code_resource(code: CouponCodeRecord) -> Resource:
        attrs = {
            "unique_code": code.unique_code,
            "expires_at": iso(code.expires_at),
            "status": code.status,
        }
        rels: dict[str, Any] = {"coupon": ("coupon", code.coupon_id)}
        if code.profile_id is not None:
            rels["profile"] = ("profile", code.profile_id)
        links_only = ("profile",) if code.profile_id is None else ()
        return Resource("coupon-code", code.id, attrs, relationships=rels, links_only=links_only)

    def _code(self, cid: str) -> CouponCodeRecord:
        return existing(self.codes, "coupon-code", cid)

    def _code_page(
        self, call: Call, codes: list[CouponCodeRecord], *, ids_only: bool = False
    ) -> Outcome:
        by_seq = {c.seq: c for c in codes}

        def key(s: int) -> tuple[Any, ...]:
            return (s,)

        getters: dict[str, Callable[[int], Any]] = {
            "expires_at": lambda s: by_seq[s].expires_at,
            "status": lambda s: by_seq[s].status,
            "coupon.id": lambda s: by_seq[s].coupon_id,
            "profile.id": lambda s: by_seq[s].profile_id,
        }
        page = page_of(call, sorted(by_seq), key, getters)
        included: list[Resource] = []
        if not ids_only and "coupon" in call.query.include:
            seen = dict.fromkeys(by_seq[s].coupon_id for s in page.items)
            included = [self.coupon_resource(self.coupons[c]) for c in seen if c in self.coupons]
        return related_page(
            page, by_seq, "coupon-code", self.code_resource, ids_only=ids_only, included=included
        )

    def get_coupon_codes(self, call: Call) -> Outcome:
        fields = {c.field for c in call.query.conditions if not c.negated}
        if not fields & {"coupon.id", "profile.id"}:
            raise InvalidError(
                "A filter on coupon.id or profile.id is required.", parameter="filter"
            )
        return self._code_page(call, list(self.codes.values()))

    def get_coupon_codes_for_coupon(self, call: Call) -> Outcome:
        c = self._coupon(self.path_id(call))
        return self._code_page(call, [v for v in self.codes.values() if v.coupon_id == c.id])

    def get_coupon_code_ids_for_coupon(self, call: Call) -> Outcome:
        c = self._coupon(self.path_id(call))
        codes = [v for v in self.codes.values() if v.coupon_id == c.id]
        return self._code_page(call, codes, ids_only=True)

    def get_coupon_code(self, call: Call) -> Outcome:
        code = self._code(self.path_id(call))
        included = []
        if "coupon" in call.query.include and code.coupon_id in self.coupons:
            included = [self.coupon_resource(self.coupons[code.coupon_id])]
        return Outcome(data=self.code_resource(code), included=included)

    def get_coupon_for_coupon_code(self, call: Call) -> Outcome:
        code = self._code(self.path_id(call))
        return Outcome(data=self.coupon_resource(self._coupon(code.coupon_id)))

    def get_coupon_id_for_coupon_code(self, call: Call) -> Outcome:
        code = self._code(self.path_id(call))
        return Outcome(data=Resource("coupon", code.coupon_id, {}), identifiers_only=True)

    def _new_code(self, data: Any, base: str) -> CouponCodeRecord:
        if not isinstance(data, dict) or data.get("type") != "coupon-code":
            raise InvalidError("data.type must be 'coupon-code'", pointer=f"{base}/type")
        attrs = attributes_of(data, f"{base}/attributes")
        unique = attrs.get("unique_code")
        if not isinstance(unique, str) or not unique.strip() or len(unique) > 255:
            raise InvalidError(
                "unique_code is required: a non-empty string",
                pointer=f"{base}/attributes/unique_code",
            )
        try:
            coupon_ids = relationship_ids(data, "coupon", "coupon", many=False)
        except InvalidError as exc:
            raise InvalidError(exc.detail, pointer=base + (exc.pointer or "")[5:]) from None
        if not coupon_ids:
            raise InvalidError(
                "relationships.coupon is required", pointer=f"{base}/relationships/coupon"
            )
        coupon = self.coupons.get(coupon_ids[0])
        if coupon is None:
            raise InvalidError(
                f"coupon {coupon_ids[0]!r} does not exist",
                pointer=f"{base}/relationships/coupon/data/id",
            )
        now = self.ctx.now()
        expires = now + _YEAR
        if attrs.get("expires_at") is not None:
            expires = timestamp_attr(attrs["expires_at"], f"{base}/attributes/expires_at")
            if expires <= now:
                raise InvalidError(
                    "expires_at must be in the future", pointer=f"{base}/attributes/expires_at"
                )
        cid = f"{coupon.id}-{unique}"
        if cid in self.codes:
            raise ConflictError(
                f"The unique code {unique!r} already exists for coupon {coupon.id!r}.",
                pointer=f"{base}/attributes/unique_code",
            )
        code = CouponCodeRecord(
            self.store.next_seq(), cid, coupon.id, unique, expires, "UNASSIGNED", now
        )
        self.codes[cid] = code
        return code

    def create_coupon_code(self, call: Call) -> Outcome:
        data = data_of(call.body, "coupon-code")
        return Outcome(data=self.code_resource(self._new_code(data, "/data")))

    def update_coupon_code(self, call: Call) -> Outcome:
        code = self._code(self.path_id(call))
        attrs = attributes_of(data_of(call.body, "coupon-code"))
        if "status" in attrs:
            if attrs["status"] not in CODE_STATUSES:
                raise InvalidError(
                    f"status must be one of {', '.join(CODE_STATUSES)}",
                    pointer="/data/attributes/status",
                )
            code.status = attrs["status"]
        if attrs.get("expires_at") is not None:
            code.expires_at = timestamp_attr(attrs["expires_at"], "/data/attributes/expires_at")
        return Outcome(data=self.code_resource(code))

    def delete_coupon_code(self, call: Call) -> Outcome:
        code = self._code(self.path_id(call))
        if code.status in ("ASSIGNED_TO_PROFILE", "USED"):
            # Klaviyo keeps codes a profile holds: deleting one would break their message
            raise InvalidError(
                f"A coupon code that is {code.status} cannot be deleted.", pointer="/data"
            )
        del self.codes[code.id]
        return Outcome()

    # -- bulk create ---------------------------------------------------------------

    def bulk_create_coupon_codes(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, _JOB))
        wrapper = attrs.get("coupon-codes")
        rows = wrapper.get("data") if isinstance(wrapper, dict) else None
        ptr = "/data/attributes/coupon-codes/data"
        if not isinstance(rows, list) or not rows:
            raise InvalidError("coupon-codes.data must be a non-empty list", pointer=ptr)
        if len(rows) > MAX_BULK_CODES:
            raise InvalidError(
                f"at most {MAX_BULK_CODES} coupon codes per job (got {len(rows)})", pointer=ptr
            )
        job = required_jobs(self.ctx).schedule(_JOB, rows, total=len(rows))
        self.job_ids[job.id] = []
        return Outcome(data=self._job_resource(job))

    def _run_bulk(self, job: JobRecord) -> None:
        done = self.job_ids.setdefault(job.id, [])
        for k, row in enumerate(job.payload):
            base = f"/data/attributes/coupon-codes/data/{k}"
            original = row if isinstance(row, dict) else {"value": row}
            try:
                done.append(self._new_code(row, base).id)
            except EmulatorBackendError as exc:
                job.failed_count += 1
                job.errors.append((exc.code, exc.title, exc.detail, exc.pointer or base, original))
                continue
            job.completed_count += 1

    def _job_resource(self, job: JobRecord) -> Resource:
        return job_resource(job, "coupon-codes", "coupon-code", self.job_ids.get(job.id, []))

    def get_bulk_create_coupon_code_jobs(self, call: Call) -> Outcome:
        jobs = {j.seq: j for j in self.store.jobs.values() if j.kind == _JOB}

        def key(s: int) -> tuple[Any, ...]:
            return (jobs[s].created, s)

        getters: dict[str, Callable[[int], Any]] = {"status": lambda s: str(jobs[s].status)}
        page = page_of(call, sorted(jobs, key=key), key, getters)
        return page_outcome(page, lambda s: self._job_resource(jobs[s]))

    def get_bulk_create_coupon_codes_job(self, call: Call) -> Outcome:
        jid = call.path_params.get("job_id") or ""
        job = self.store.jobs.get(jid)
        if job is None or job.kind != _JOB:
            raise not_found(_JOB, jid)
        included: list[Resource] = []
        if "coupon-codes" in call.query.include:
            included = [
                self.code_resource(self.codes[i])
                for i in self.job_ids.get(job.id, [])
                if i in self.codes
            ]
        return Outcome(data=self._job_resource(job), included=included)


def _coupon_fields(attrs: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    description = attrs.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidError("description must be a string", pointer="/data/attributes/description")
    monitor = attrs.get("monitor_configuration")
    if monitor is not None and not isinstance(monitor, dict):
        raise InvalidError(
            "monitor_configuration must be an object",
            pointer="/data/attributes/monitor_configuration",
        )
    return description, monitor

"""Sign-up forms and their versions (one version per A/B variation).

Klaviyo creates forms only as drafts through the API; a form's versions come
from its ``definition`` and are read-only. A few live and draft forms are
seeded so that listings and syncs have something to read. Deleting a form
takes its versions with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    Context,
    TagBackend,
    attributes_of,
    data_of,
    existing,
    page_of,
    page_outcome,
    related_page,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import base62_id, iso
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["FORM_TYPES", "FormRecord", "FormVersionRecord", "FormsBackend"]

FORM_TYPES = ("banner", "embed", "flyout", "full_page", "popup")
#: a definition's version ``type`` and the form version's ``form_type`` it becomes
_DEFINITION_TYPES = {
    "banner": "banner", "embed": "embed", "flyout": "flyout", "full_screen": "full_page",
    "popup": "popup",
}  # fmt: skip
_DAY = 86400.0
#: (name, status, ab test, versions as (form type, variation), days before the account's now)
_SEEDS = (
    ("Welcome popup", "live", True, (("popup", "Variation A"), ("popup", "Variation B")), 120),
    ("Footer sign-up", "live", False, (("embed", "Default"),), 90),
    ("Holiday flyout", "draft", False, (("flyout", "Default"),), 20),
)


@dataclass(slots=True)
class FormVersionRecord:
    seq: int
    id: str
    form_id: str
    form_type: str
    variation_name: str
    ab_test: bool
    status: str
    created: float
    updated: float


@dataclass(slots=True)
class FormRecord:
    seq: int
    id: str
    name: str
    status: str
    ab_test: bool
    created: float
    updated: float
    definition: dict[str, Any] = field(default_factory=lambda: {"versions": []})


class FormsBackend(TagBackend):
    operations = frozenset(
        {
            "get_forms",
            "create_form",
            "get_form",
            "delete_form",
            "get_versions_for_form",
            "get_version_ids_for_form",
            "get_form_version",
            "get_form_for_form_version",
            "get_form_id_for_form_version",
        }
    )

    def __init__(self, ctx: Context, now: float) -> None:
        super().__init__(ctx)
        self.forms: dict[str, FormRecord] = {}
        self.versions: dict[str, FormVersionRecord] = {}
        for k, (name, status, ab, versions, days) in enumerate(_SEEDS):
            at = now - days * _DAY
            form = self._new_form(name, status, ab, at, salt=k)
            for form_type, variation in versions:
                v = self._new_version(form, form_type, variation, at)
                kind = next(d for d, f in _DEFINITION_TYPES.items() if f == form_type)
                form.definition["versions"].append(
                    {"id": int(v.id), "type": kind, "name": variation, "status": status,
                     "ab_test": ab, "steps": []}
                )  # fmt: skip

    def _new_form(self, name: str, status: str, ab: bool, at: float, *, salt: int) -> FormRecord:
        seq = self.store.next_seq()
        form = FormRecord(seq, base62_id(0xF0F, seq, salt), name, status, ab, at, at)
        self.forms[form.id] = form
        return form

    def _new_version(
        self, form: FormRecord, form_type: str, variation: str, at: float
    ) -> FormVersionRecord:
        seq = self.store.next_seq()
        v = FormVersionRecord(
            seq, str(mix_id(seq)), form.id, form_type, variation, form.ab_test, form.status, at, at
        )
        self.versions[v.id] = v
        return v

    # -- resources -----------------------------------------------------------------

    def form_resource(self, f: FormRecord, *, definition: bool = False) -> Resource:
        attrs: dict[str, Any] = {
            "name": f.name,
            "status": f.status,
            "ab_test": f.ab_test,
            "created_at": iso(f.created),
            "updated_at": iso(f.updated),
        }
        if definition:
            attrs["definition"] = f.definition
            return Resource("form", f.id, attrs)
        return Resource("form", f.id, attrs, links_only=("form-versions",))

    @staticmethod
    def version_resource(v: FormVersionRecord) -> Resource:
        attrs: dict[str, Any] = {
            "form_type": v.form_type,
            "variation_name": v.variation_name,
            "status": v.status,
            "created_at": iso(v.created),
            "updated_at": iso(v.updated),
        }
        if v.ab_test:
            attrs["ab_test"] = {"variation_name": v.variation_name}
        return Resource("form-version", v.id, attrs, links_only=("form",))

    def _form(self, fid: str) -> FormRecord:
        return existing(self.forms, "form", fid)

    def _version(self, vid: str) -> FormVersionRecord:
        return existing(self.versions, "form-version", vid)

    # -- forms ---------------------------------------------------------------------

    def get_forms(self, call: Call) -> Outcome:
        by_seq = {f.seq: f for f in self.forms.values()}
        key = _sort_key(call, lambda s: by_seq[s].created, lambda s: by_seq[s].updated)
        getters: dict[str, Callable[[int], Any]] = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "ab_test": lambda s: by_seq[s].ab_test,
            "status": lambda s: by_seq[s].status,
            "created_at": lambda s: by_seq[s].created,
            "updated_at": lambda s: by_seq[s].updated,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: self.form_resource(by_seq[s]))

    def get_form(self, call: Call) -> Outcome:
        return Outcome(data=self.form_resource(self._form(self.path_id(call)), definition=True))

    def create_form(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "form"))
        name = attrs.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidError("name is required", pointer="/data/attributes/name")
        if attrs.get("status") != "draft":
            # Klaviyo publishes forms only from its editor
            raise InvalidError(
                "status must be 'draft': forms are published in Klaviyo's editor",
                pointer="/data/attributes/status",
            )
        ab = attrs.get("ab_test")
        if not isinstance(ab, bool):
            raise InvalidError("ab_test must be a boolean", pointer="/data/attributes/ab_test")
        definition = attrs.get("definition")
        versions = definition.get("versions") if isinstance(definition, dict) else None
        ptr = "/data/attributes/definition/versions"
        if not isinstance(versions, list) or not versions:
            raise InvalidError("definition.versions must be a non-empty list", pointer=ptr)
        if len(versions) > 1 and not ab:
            raise InvalidError("several versions are A/B variations: set ab_test", pointer=ptr)
        kinds: list[tuple[str, str]] = []
        for k, version in enumerate(versions):
            if not isinstance(version, dict) or not isinstance(version.get("steps"), list):
                raise InvalidError("each version needs a list of steps", pointer=f"{ptr}/{k}/steps")
            if version.get("id") is not None:
                raise InvalidError("a new version has no id", pointer=f"{ptr}/{k}/id")
            kind = version.get("type", "popup")
            if kind not in _DEFINITION_TYPES:
                raise InvalidError(
                    f"type must be one of {', '.join(_DEFINITION_TYPES)}",
                    pointer=f"{ptr}/{k}/type",
                )
            variation = version.get("name") or ("Default" if not ab else f"Variation {k + 1}")
            kinds.append((_DEFINITION_TYPES[kind], str(variation)))
        now = self.ctx.now()
        form = self._new_form(name, "draft", ab, now, salt=len(self.forms))
        stored: list[dict[str, Any]] = []
        for version, (form_type, variation) in zip(versions, kinds, strict=True):
            v = self._new_version(form, form_type, variation, now)
            stored.append({**version, "id": int(v.id), "status": "draft", "ab_test": ab})
        form.definition = {"versions": stored}
        return Outcome(data=self.form_resource(form, definition=True))

    def delete_form(self, call: Call) -> Outcome:
        form = self._form(self.path_id(call))
        del self.forms[form.id]
        for vid in [v.id for v in self.versions.values() if v.form_id == form.id]:
            del self.versions[vid]
        return Outcome()

    # -- versions ------------------------------------------------------------------

    def _version_page(self, call: Call, *, ids_only: bool) -> Outcome:
        form = self._form(self.path_id(call))
        by_seq = {v.seq: v for v in self.versions.values() if v.form_id == form.id}
        key = _sort_key(call, lambda s: by_seq[s].created, lambda s: by_seq[s].updated)
        getters: dict[str, Callable[[int], Any]] = {
            "form_type": lambda s: by_seq[s].form_type,
            "status": lambda s: by_seq[s].status,
            "created_at": lambda s: by_seq[s].created,
            "updated_at": lambda s: by_seq[s].updated,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return related_page(page, by_seq, "form-version", self.version_resource, ids_only=ids_only)

    def get_versions_for_form(self, call: Call) -> Outcome:
        return self._version_page(call, ids_only=False)

    def get_version_ids_for_form(self, call: Call) -> Outcome:
        return self._version_page(call, ids_only=True)

    def get_form_version(self, call: Call) -> Outcome:
        v = self._version(self.path_id(call))
        r = self.version_resource(v)
        included: list[Resource] = []
        if "form" in call.query.include:
            r.relationships["form"] = ("form", v.form_id)
            r.links_only = ()
            included = [self.form_resource(self._form(v.form_id))]
        return Outcome(data=r, included=included)

    def get_form_for_form_version(self, call: Call) -> Outcome:
        v = self._version(self.path_id(call))
        return Outcome(data=self.form_resource(self._form(v.form_id)))

    def get_form_id_for_form_version(self, call: Call) -> Outcome:
        v = self._version(self.path_id(call))
        return Outcome(data=Resource("form", v.form_id, {}), identifiers_only=True)


def mix_id(seq: int) -> int:
    """A form version's numeric id (Klaviyo's are integers, sent as strings)."""
    return 1_000_000 + seq


def _sort_key(
    call: Call, created: Callable[[int], float], updated: Callable[[int], float]
) -> Callable[[int], tuple[Any, ...]]:
    sort = call.query.sort
    by = updated if sort is not None and sort.field == "updated_at" else created

    def key(s: int) -> tuple[Any, ...]:
        return (by(s), s)

    return key

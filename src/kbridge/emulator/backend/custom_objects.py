"""Custom objects: data sources, object types and their schema versions, source
mappings, and the object records that ingestion builds.

Records are never written directly: a client posts raw records to a data
source (singly or in bulk, answered 204 and ingested as a job), and every
object type whose *active* schema has a source mapping reading that source
turns each raw record into an object record (``<type id>:::<record id>``),
typed and checked by the schema. A raw record that does not fit leaves a
``validation_error`` ingestion log on the type instead of a record.

A type has at most one active (``current``) and one ``draft`` schema;
activating a draft makes it current, and every version is kept.
"""

from __future__ import annotations

import json
import re
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
    not_found,
    page_of,
    page_outcome,
    related_page,
    relationship_ids,
    required_jobs,
)
from kbridge.emulator.backend.errors import ConflictError, InvalidError
from kbridge.emulator.backend.ids import iso, parse_iso, ulid
from kbridge.emulator.backend.models import JobRecord
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["MAX_BULK_RECORDS", "CustomObjectsBackend", "ObjectRecord"]

#: raw records per bulk create job (Klaviyo: up to 500)
MAX_BULK_RECORDS = 500
PROPERTY_TYPES = ("boolean", "float", "int", "string", "timestamp")
_NS = "custom-objects"
_VISIBILITY = ("private", "shared")
_INGEST = "data-source-record-ingest"
_DELETE = "object-record-bulk-delete-job"
_DAY = 86400.0
#: ``$['key']`` or ``$.key``: the JSONPath selectors a source mapping uses
_PATH = re.compile(r"^\$(?:\['([^'\]]+)'\]|\.([A-Za-z0-9_]+))$")


@dataclass(slots=True)
class DataSource:
    id: str
    title: str
    visibility: str
    description: str
    namespace: str


@dataclass(slots=True)
class ObjectSchema:
    id: str
    type_id: str
    title: str
    description: str
    status: str
    properties: list[dict[str, Any]]
    required: list[str]
    visibility: str
    published_at: float | None = None
    mapping_id: str | None = None
    links: list[SchemaLink] = field(default_factory=list)


@dataclass(slots=True)
class SchemaLink:
    """A named relationship from a schema to another schema or to profiles."""

    id: str
    #: the related schema's id, or ``"profile"``
    target: str
    name: str
    description: str


@dataclass(slots=True)
class SourceMapping:
    id: str
    schema_id: str
    property_mappings: list[dict[str, Any]]
    relationship_mappings: list[dict[str, Any]]


@dataclass(slots=True)
class ObjectType:
    id: str
    title: str
    description: str
    namespace: str
    created: float
    updated: float
    versions: list[str] = field(default_factory=list)
    current: str | None = None
    draft: str | None = None


@dataclass(slots=True)
class ObjectRecord:
    seq: int
    id: str
    type_id: str
    properties: dict[str, Any]
    updated: float


@dataclass(slots=True)
class IngestionLog:
    seq: int
    id: str
    type_id: str
    record_id: str | None
    at: float
    summary: str
    errors: list[dict[str, Any]]


def _linked(rtype: str, rid: str, attrs: dict[str, Any], rels: dict[str, Any]) -> Resource:
    """The resource with ``rels``; a ``None`` one is links only, because the spec's
    to-one linkage is never null (an absent schema or mapping has no ``data``)."""
    empty = tuple(k for k, v in rels.items() if v is None)
    return Resource(rtype, rid, attrs, relationships=rels, links_only=empty)


class CustomObjectsBackend(TagBackend):
    operations = frozenset(
        {
            "get_data_sources",
            "create_data_source",
            "get_data_source",
            "delete_data_source",
            "create_data_source_record",
            "bulk_create_data_source_records",
            "get_object_types",
            "create_object_type",
            "get_object_type",
            "delete_object_type",
            "get_current_schema_for_object_type",
            "get_current_schema_id_for_object_type",
            "get_draft_schema_for_object_type",
            "get_draft_schema_id_for_object_type",
            "get_schema_versions_for_object_type",
            "get_schema_version_ids_for_object_type",
            "get_object_type_relationships",
            "get_profile_type_relationships",
            "get_records_for_object_type",
            "get_record_ids_for_object_type",
            "get_ingestion_logs_for_object_type",
            "get_ingestion_log_ids_for_object_type",
            "get_object_record",
            "bulk_delete_object_records",
            "create_object_schema",
            "get_object_schema",
            "update_object_schema",
            "get_source_mapping_for_object_schema",
            "get_source_mapping_id_for_object_schema",
            "get_source_mapping",
            "update_source_mapping",
            "get_object_schema_relationships",
            "create_object_schema_relationship",
            "update_object_schema_relationship",
            "delete_object_schema_relationship",
            "get_profile_schema_relationships",
            "create_profile_schema_relationship",
            "update_profile_schema_relationship",
            "delete_profile_schema_relationship",
        }
    )

    def __init__(self, ctx: Context, seeded_at: float | None = None) -> None:
        super().__init__(ctx)
        self.sources: dict[str, DataSource] = {}
        self.types: dict[str, ObjectType] = {}
        self.schemas: dict[str, ObjectSchema] = {}
        self.mappings: dict[str, SourceMapping] = {}
        self.records: dict[str, ObjectRecord] = {}
        self.logs: list[IngestionLog] = []
        jobs = required_jobs(ctx)
        jobs.handlers[_INGEST] = self._run_ingest
        jobs.handlers[_DELETE] = self._run_delete
        self._seed(ctx.now() if seeded_at is None else seeded_at)

    # -- the generated account's one custom object -----------------------------------

    def _seed(self, now: float) -> None:
        """An "Appointment" type fed by one data source, with a record per early profile
        and a draft of its next schema.

        Ids come from the seed, not the store's counter, so the ids other
        backends hand out stay as they were.
        """
        at = now - 60 * _DAY
        seed = self.store.seed

        def sid(k: int) -> str:
            return ulid(at, seed, k, 0xC0B)

        source = DataSource(sid(1), "Booking system", "private", "Appointments export", _NS)
        self.sources[source.id] = source
        otype = ObjectType(sid(2), "Appointment", "A booked appointment", _NS, at, at)
        props = [
            {"id": 1, "name": "service", "type": "string", "description": ""},
            {"id": 2, "name": "starts_at", "type": "timestamp", "description": ""},
            {"id": 3, "name": "price", "type": "float", "description": ""},
            {"id": 4, "name": "email", "type": "string", "description": ""},
        ]
        schema = ObjectSchema(sid(3), otype.id, otype.title, otype.description, "active",
                              props, ["service", "starts_at"], "private", at)  # fmt: skip
        mapping = SourceMapping(
            sid(4), schema.id,
            [{"id": p["id"], "type": "simple", "source": {
                "source_id": source.id, "id_path": "$['id']", "data_path": f"$['{p['name']}']"}}
             for p in props],
            [],
        )  # fmt: skip
        schema.mapping_id = mapping.id
        schema.links.append(SchemaLink(sid(6), "profile", "customer", "Who booked"))
        otype.versions.append(schema.id)
        otype.current = schema.id
        # the next version, not yet published: it adds who does the appointment
        draft = ObjectSchema(sid(5), otype.id, otype.title, otype.description, "draft",
                             [*props, {"id": 5, "name": "staff", "type": "string",
                                       "description": ""}],
                             ["service", "starts_at"], "private")  # fmt: skip
        otype.versions.append(draft.id)
        otype.draft = draft.id
        self.types[otype.id] = otype
        self.schemas[schema.id] = schema
        self.schemas[draft.id] = draft
        self.mappings[mapping.id] = mapping
        services = ("Haircut", "Colour", "Beard trim")
        for k, p in enumerate(p for p in self.store.profiles[:12] if p.email):
            raw = {"id": f"A{1000 + k}", "service": services[k % 3], "email": p.email,
                   "starts_at": iso(at + k * _DAY), "price": 20.0 + 5 * (k % 3)}  # fmt: skip
            self._ingest_one(source.id, raw, at + k * 60.0, seq=(1 << 42) + k)
        first = (1 << 42) + 1_000_000
        for k in range(self.ctx.config.extra_custom_object_records):
            raw = {"id": f"X{k}", "service": services[k % 3], "email": f"booker{k}@example.com",
                   "starts_at": iso(at + (k % 60) * _DAY), "price": 20.0 + 5 * (k % 3)}  # fmt: skip
            self._ingest_one(source.id, raw, at + k, seq=first + k)

    # -- data sources ------------------------------------------------------------------

    @staticmethod
    def source_resource(s: DataSource) -> Resource:
        attrs = {"title": s.title, "visibility": s.visibility, "description": s.description,
                 "namespace": s.namespace}  # fmt: skip
        return Resource("data-source", s.id, attrs)

    def _source(self, sid: str) -> DataSource:
        return existing(self.sources, "data-source", sid)

    def get_data_sources(self, call: Call) -> Outcome:
        ordered = list(self.sources.values())
        by_seq = dict(enumerate(ordered))

        def key(s: int) -> tuple[Any, ...]:
            return (s,)

        page = page_of(call, sorted(by_seq), key, {})
        return page_outcome(page, lambda s: self.source_resource(by_seq[s]))

    def get_data_source(self, call: Call) -> Outcome:
        return Outcome(data=self.source_resource(self._source(self.path_id(call))))

    def create_data_source(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "data-source"))
        title = attrs.get("title")
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 255:
            raise InvalidError("title is required: 1-255 characters",
                               pointer="/data/attributes/title")  # fmt: skip
        namespace = _choice(attrs, "namespace", None, _NS)
        if any(s.title == title and s.namespace == namespace for s in self.sources.values()):
            raise ConflictError(f"A data source titled {title!r} already exists.",
                                pointer="/data/attributes/title")  # fmt: skip
        visibility = _choice(attrs, "visibility", _VISIBILITY, "private")
        description = _choice(attrs, "description", None, "")
        s = DataSource(self.store.next_ulid(self.ctx.now()), title, visibility, description,
                       namespace)  # fmt: skip
        self.sources[s.id] = s
        return Outcome(data=self.source_resource(s))

    def delete_data_source(self, call: Call) -> Outcome:
        s = self._source(self.path_id(call))
        if any(_reads(m, s.id) for m in self.mappings.values()):
            raise ConflictError(
                "A source mapping still reads this data source; change the mapping first."
            )
        del self.sources[s.id]
        return Outcome()

    # -- ingestion ---------------------------------------------------------------------

    def _source_of_job(self, data: dict[str, Any]) -> str:
        ids = relationship_ids(data, "data-source", "data-source", many=False)
        if not ids:
            raise InvalidError("relationships.data-source is required",
                               pointer="/data/relationships/data-source")  # fmt: skip
        if ids[0] not in self.sources:
            raise InvalidError(f"data source {ids[0]!r} does not exist",
                               pointer="/data/relationships/data-source/data/id")  # fmt: skip
        return ids[0]

    def create_data_source_record(self, call: Call) -> Outcome:
        data = data_of(call.body, "data-source-record-create-job")
        attrs = attributes_of(data)
        source = self._source_of_job(data)
        wrapper = attrs.get("data-source-record")
        row = wrapper.get("data") if isinstance(wrapper, dict) else None
        raw = _raw(row, "/data/attributes/data-source-record/data")
        required_jobs(self.ctx).schedule(_INGEST, (source, [raw]), total=1)
        return Outcome()

    def bulk_create_data_source_records(self, call: Call) -> Outcome:
        data = data_of(call.body, "data-source-record-bulk-create-job")
        attrs = attributes_of(data)
        source = self._source_of_job(data)
        wrapper = attrs.get("data-source-records")
        rows = wrapper.get("data") if isinstance(wrapper, dict) else None
        ptr = "/data/attributes/data-source-records/data"
        if not isinstance(rows, list) or not rows:
            raise InvalidError("data-source-records.data must be a non-empty list", pointer=ptr)
        if len(rows) > MAX_BULK_RECORDS:
            raise InvalidError(
                f"at most {MAX_BULK_RECORDS} records per job (got {len(rows)})", pointer=ptr
            )
        raws = [_raw(row, f"{ptr}/{k}") for k, row in enumerate(rows)]
        required_jobs(self.ctx).schedule(_INGEST, (source, raws), total=len(raws))
        return Outcome()

    def _run_ingest(self, job: JobRecord) -> None:
        source, raws = job.payload
        for raw in raws:
            self._ingest_one(source, raw, self.ctx.now())
            job.completed_count += 1

    def _ingest_one(self, source: str, raw: dict[str, Any], at: float, seq: int = 0) -> None:
        for otype in self.types.values():
            schema = self.schemas.get(otype.current or "")
            mapping = self.mappings.get(schema.mapping_id or "") if schema else None
            if schema is None or mapping is None or not _reads(mapping, source):
                continue
            self._build_record(otype, schema, mapping, source, raw, at, seq)

    def _build_record(
        self, otype: ObjectType, schema: ObjectSchema, mapping: SourceMapping,
        source: str, raw: dict[str, Any], at: float, seq: int,
    ) -> None:  # fmt: skip
        by_id = {p["id"]: p for p in schema.properties}
        props: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        record_key: str | None = None
        for m in mapping.property_mappings:
            prop = by_id.get(m.get("id"))
            if prop is None:
                continue
            if m.get("type") == "constant":
                value = m.get("value")
            else:
                src = m.get("source") or {}
                if src.get("source_id") != source:
                    continue
                if record_key is None:
                    found = _select(raw, src.get("id_path", ""))
                    record_key = None if found is None else str(found)
                value = _select(raw, src.get("data_path", ""))
            if value is None:
                continue
            typed, problem = _typed(value, prop["type"])
            if problem is not None:
                code = f"{prop['type']}_type"
                errors.append({"code": code, "message": problem, "property": prop["name"],
                               "invalid_value": _json(value)})  # fmt: skip
                continue
            props[prop["name"]] = typed
        rid = f"{otype.id}:::{record_key}" if record_key else None
        # a raw record updates the object record it names: required means "present after"
        have = {**(self.records[rid].properties if rid in self.records else {}), **props}
        for name in schema.required:
            if name not in have and not any(e["property"] == name for e in errors):
                errors.append({"code": "missing", "message": "Field required", "property": name,
                               "invalid_value": None})  # fmt: skip
        if record_key is None:
            errors.append({"code": "missing", "message": "The record has no id at its id_path",
                           "property": "id", "invalid_value": None})  # fmt: skip
        if errors:
            n = len(errors)
            self.logs.append(IngestionLog(
                self.store.next_seq(), self.store.next_ulid(at), otype.id, rid, at,
                f"{n} validation error{'s' if n > 1 else ''} for {record_key or '?'}", errors,
            ))  # fmt: skip
            return
        assert rid is not None
        existing = self.records.get(rid)
        if existing is not None:
            existing.properties.update(props)
            existing.updated = at
            return
        self.records[rid] = ObjectRecord(seq or self.store.next_seq(), rid, otype.id, props, at)

    # -- object types --------------------------------------------------------------------

    def type_resource(self, t: ObjectType) -> Resource:
        status = "undefined"
        if t.current is not None:
            status = self.schemas[t.current].status
        elif t.draft is not None:
            status = "draft"
        attrs = {"title": t.title, "description": t.description, "status": status,
                 "namespace": t.namespace, "created_at": iso(t.created),
                 "updated_at": iso(t.updated)}  # fmt: skip
        rels: dict[str, Any] = {
            "current-schema": ("object-schema", t.current) if t.current else None,
            "draft-schema": ("object-schema", t.draft) if t.draft else None,
            "schema-versions": [("object-schema", v) for v in t.versions],
            "object-types": [("object-type", r.id) for r in self._type_links(t, profile=False)],
            "profile-object-types": [
                ("profile-object-type", r.id) for r in self._type_links(t, profile=True)
            ],
        }
        return _linked("object-type", t.id, attrs, rels)

    def _type(self, tid: str) -> ObjectType:
        return existing(self.types, "object-type", tid)

    def _type_included(self, call: Call, types: list[ObjectType]) -> list[Resource]:
        inc = call.query.include
        ids: list[str] = []
        for t in types:
            if "current-schema" in inc and t.current:
                ids.append(t.current)
            if "draft-schema" in inc and t.draft:
                ids.append(t.draft)
            if "schema-versions" in inc:
                ids += t.versions
        out = [self.schema_resource(self.schemas[i]) for i in dict.fromkeys(ids)]
        for t in types:
            if "object-types" in inc:
                out += self._type_links(t, profile=False)
            if "profile-object-types" in inc:
                out += self._type_links(t, profile=True)
        return out

    def get_object_types(self, call: Call) -> Outcome:
        types = sorted(self.types.values(), key=lambda t: (t.created, t.id))
        for c in call.query.conditions:
            if c.field == "namespace":
                types = [t for t in types if (t.namespace == c.value) != c.negated]
        return Outcome(
            data=[self.type_resource(t) for t in types], included=self._type_included(call, types)
        )

    def get_object_type(self, call: Call) -> Outcome:
        t = self._type(self.path_id(call))
        return Outcome(data=self.type_resource(t), included=self._type_included(call, [t]))

    def create_object_type(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "object-type"))
        title = attrs.get("title")
        if not isinstance(title, str) or not title.strip():
            raise InvalidError("title is required", pointer="/data/attributes/title")
        namespace = _choice(attrs, "namespace", None, _NS)
        if any(t.title == title and t.namespace == namespace for t in self.types.values()):
            raise ConflictError(f"An object type titled {title!r} already exists.",
                                pointer="/data/attributes/title")  # fmt: skip
        visibility = _choice(attrs, "visibility", _VISIBILITY, "private")
        description = _choice(attrs, "description", None, "")
        now = self.ctx.now()
        t = ObjectType(self.store.next_ulid(now), title, description, namespace, now, now)
        embedded = attrs.get("object-schema")
        schema_data = embedded.get("data") if isinstance(embedded, dict) else None
        if embedded is not None:
            ptr = "/data/attributes/object-schema/data"
            if not isinstance(schema_data, dict) or schema_data.get("type") != "object-schema":
                raise InvalidError("object-schema.data must be an object-schema", pointer=ptr)
            sattrs = attributes_of(schema_data, f"{ptr}/attributes")
            schema = self._new_schema(t, {**sattrs, "title": title, "description": description},
                                      visibility, f"{ptr}/attributes")  # fmt: skip
            self._add_version(t, schema)
        self.types[t.id] = t
        return Outcome(data=self.type_resource(t))

    def delete_object_type(self, call: Call) -> Outcome:
        t = self._type(self.path_id(call))
        for sid in t.versions:
            schema = self.schemas.pop(sid, None)
            if schema is not None and schema.mapping_id:
                self.mappings.pop(schema.mapping_id, None)
        for rid in [r.id for r in self.records.values() if r.type_id == t.id]:
            del self.records[rid]
        self.logs = [log for log in self.logs if log.type_id != t.id]
        del self.types[t.id]
        return Outcome()

    def _schema_of(self, call: Call, which: str) -> ObjectSchema:
        t = self._type(self.path_id(call))
        sid = t.current if which == "current" else t.draft
        if sid is None:
            raise not_found(f"{which} object-schema of object-type", t.id)
        return self.schemas[sid]

    def get_current_schema_for_object_type(self, call: Call) -> Outcome:
        return Outcome(data=self.schema_resource(self._schema_of(call, "current")))

    def _schema_id_of(self, call: Call, which: str) -> Outcome:
        t = self._type(self.path_id(call))
        sid = t.current if which == "current" else t.draft
        if sid is None:  # the spec's linkage is nullable here: no schema is not an error
            return Outcome(null_data=True)
        return Outcome(data=Resource("object-schema", sid, {}), identifiers_only=True)

    def get_current_schema_id_for_object_type(self, call: Call) -> Outcome:
        return self._schema_id_of(call, "current")

    def get_draft_schema_for_object_type(self, call: Call) -> Outcome:
        return Outcome(data=self.schema_resource(self._schema_of(call, "draft")))

    def get_draft_schema_id_for_object_type(self, call: Call) -> Outcome:
        return self._schema_id_of(call, "draft")

    def get_schema_versions_for_object_type(self, call: Call) -> Outcome:
        t = self._type(self.path_id(call))
        return Outcome(data=[self.schema_resource(self.schemas[v]) for v in t.versions])

    def get_schema_version_ids_for_object_type(self, call: Call) -> Outcome:
        t = self._type(self.path_id(call))
        return Outcome(
            data=[Resource("object-schema", v, {}) for v in t.versions], identifiers_only=True
        )

    def _type_links(self, t: ObjectType, *, profile: bool) -> list[Resource]:
        """The current schema's relationships, named by the related *type*."""
        schema = self.schemas.get(t.current or "")
        out: list[Resource] = []
        for link in schema.links if schema else []:
            if (link.target == "profile") != profile:
                continue
            if profile:
                out.append(Resource("profile-object-type", f"profile:::{link.name}",
                                    {"meta": _meta(link)}))  # fmt: skip
                continue
            related = self.schemas.get(link.target)
            if related is not None:
                rid = f"{related.type_id}:::{link.name}"
                out.append(Resource("object-type", rid, {"meta": _meta(link)}))
        return out

    def get_object_type_relationships(self, call: Call) -> Outcome:
        t = self._type(self.path_id(call))
        return Outcome(data=self._type_links(t, profile=False), identifiers_only=True)

    def get_profile_type_relationships(self, call: Call) -> Outcome:
        t = self._type(self.path_id(call))
        return Outcome(data=self._type_links(t, profile=True), identifiers_only=True)

    # -- records -------------------------------------------------------------------------

    @staticmethod
    def record_resource(r: ObjectRecord) -> Resource:
        return Resource("object-record", r.id, {"record_properties": dict(r.properties)})

    def _record_page(self, call: Call, *, ids_only: bool) -> Outcome:
        t = self._type(self.path_id(call))
        by_seq = {r.seq: r for r in self.records.values() if r.type_id == t.id}

        def key(s: int) -> tuple[Any, ...]:
            return (s,)

        page = page_of(call, sorted(by_seq), key, {})
        return related_page(page, by_seq, "object-record", self.record_resource, ids_only=ids_only)

    def get_records_for_object_type(self, call: Call) -> Outcome:
        return self._record_page(call, ids_only=False)

    def get_record_ids_for_object_type(self, call: Call) -> Outcome:
        return self._record_page(call, ids_only=True)

    def get_object_record(self, call: Call) -> Outcome:
        rid = self.path_id(call)
        r = existing(self.records, "object-record", rid)
        return Outcome(data=self.record_resource(r))

    def bulk_delete_object_records(self, call: Call) -> Outcome:
        data = data_of(call.body, _DELETE)
        ids = relationship_ids(data, "object-records", "object-record", many=True)
        if not ids:
            raise InvalidError("relationships.object-records must list records",
                               pointer="/data/relationships/object-records")  # fmt: skip
        required_jobs(self.ctx).schedule(_DELETE, ids, total=len(ids))
        return Outcome()

    def _run_delete(self, job: JobRecord) -> None:
        for rid in job.payload:
            if self.records.pop(rid, None) is None:
                job.failed_count += 1
            else:
                job.completed_count += 1

    # -- ingestion logs ------------------------------------------------------------------

    def log_resource(self, log: IngestionLog, *, linked: bool = True) -> Resource:
        attrs = {"status": "error", "event_type": "validation_error", "timestamp": iso(log.at),
                 "summary": log.summary, "errors": log.errors}  # fmt: skip
        rels: dict[str, Any] = {"object-type": ("object-type", log.type_id)}
        if log.record_id is not None:
            rels["object-record"] = ("object-record", log.record_id)
        return Resource("object-ingestion-log", log.id, attrs, relationships=rels)

    def _log_page(self, call: Call, *, ids_only: bool) -> Outcome:
        t = self._type(self.path_id(call))
        by_seq = {log.seq: log for log in self.logs if log.type_id == t.id}

        def key(s: int) -> tuple[Any, ...]:
            return (by_seq[s].at, s)

        getters: dict[str, Callable[[int], Any]] = {
            "record_id": lambda s: (by_seq[s].record_id or "").split(":::")[-1],
            "status": lambda s: "error",
            "event_type": lambda s: "validation_error",
            "timestamp": lambda s: by_seq[s].at,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters, descending=True)
        logs = [by_seq[s] for s in page.items]
        included: list[Resource] = []
        if not ids_only and "object-type" in call.query.include:
            included.append(self.type_resource(t))
        if not ids_only and "object-record" in call.query.include:
            seen = dict.fromkeys(log.record_id for log in logs if log.record_id)
            included += [self.record_resource(self.records[r]) for r in seen if r in self.records]
        return related_page(
            page,
            by_seq,
            "object-ingestion-log",
            self.log_resource,
            ids_only=ids_only,
            included=included,
        )

    def get_ingestion_logs_for_object_type(self, call: Call) -> Outcome:
        return self._log_page(call, ids_only=False)

    def get_ingestion_log_ids_for_object_type(self, call: Call) -> Outcome:
        return self._log_page(call, ids_only=True)

    # -- schemas -------------------------------------------------------------------------

    def schema_resource(self, s: ObjectSchema) -> Resource:
        attrs = {"title": s.title, "description": s.description, "status": s.status,
                 "properties": s.properties, "required": s.required,
                 "published_at": iso(s.published_at), "visibility": s.visibility}  # fmt: skip
        rels: dict[str, Any] = {
            "source-mapping": ("source-mapping", s.mapping_id) if s.mapping_id else None,
            "object-schemas": [("object-schema", r.id) for r in self._links(s, profile=False)],
            "profile-object-schemas": [
                ("profile-object-schema", r.id) for r in self._links(s, profile=True)
            ],
        }
        return _linked("object-schema", s.id, attrs, rels)

    def _schema(self, sid: str) -> ObjectSchema:
        return existing(self.schemas, "object-schema", sid)

    def _new_schema(
        self, t: ObjectType, attrs: dict[str, Any], visibility: str, ptr: str
    ) -> ObjectSchema:
        props = _properties(attrs.get("properties"), f"{ptr}/properties")
        required = _required(attrs.get("required"), props, f"{ptr}/required")
        status = _choice(attrs, "status", ("active", "draft"), "draft")
        now = self.ctx.now()
        s = ObjectSchema(self.store.next_ulid(now), t.id, str(attrs.get("title") or t.title),
                         str(attrs.get("description") or ""), status, props, required,
                         visibility)  # fmt: skip
        embedded = attrs.get("source-mapping")
        if embedded is not None:
            mdata = embedded.get("data") if isinstance(embedded, dict) else None
            mptr = f"{ptr}/source-mapping/data"
            if not isinstance(mdata, dict) or mdata.get("type") != "source-mapping":
                raise InvalidError("source-mapping.data must be a source-mapping", pointer=mptr)
            mattrs = attributes_of(mdata, f"{mptr}/attributes")
            m = SourceMapping(self.store.next_ulid(now), s.id, [], [])
            self._apply_mapping(m, s, mattrs, f"{mptr}/attributes")
            self.mappings[m.id] = m
            s.mapping_id = m.id
        return s

    def _add_version(self, t: ObjectType, s: ObjectSchema) -> None:
        self.schemas[s.id] = s
        t.versions.append(s.id)
        if s.status == "active":
            self._activate(t, s)
        else:
            if t.draft is not None and t.draft != s.id:
                self._discard(t.draft, t)
            t.draft = s.id
        t.updated = self.ctx.now()

    def _discard(self, sid: str, t: ObjectType) -> None:
        """A new draft replaces the old one: a type has at most one."""
        old = self.schemas.pop(sid, None)
        if old is not None and old.mapping_id:
            self.mappings.pop(old.mapping_id, None)
        t.versions = [v for v in t.versions if v != sid]

    def _activate(self, t: ObjectType, s: ObjectSchema) -> None:
        s.status = "active"
        s.published_at = self.ctx.now()
        t.current = s.id
        if t.draft == s.id:
            t.draft = None
        t.title, t.description = s.title, s.description

    def create_object_schema(self, call: Call) -> Outcome:
        data = data_of(call.body, "object-schema")
        attrs = attributes_of(data)
        ids = relationship_ids(data, "object-type", "object-type", many=False)
        if not ids:
            raise InvalidError("relationships.object-type is required",
                               pointer="/data/relationships/object-type")  # fmt: skip
        t = self.types.get(ids[0])
        if t is None:
            raise InvalidError(f"object type {ids[0]!r} does not exist",
                               pointer="/data/relationships/object-type/data/id")  # fmt: skip
        if not isinstance(attrs.get("title"), str) or "properties" not in attrs:
            raise InvalidError("title and properties are required", pointer="/data/attributes")
        current = self.schemas.get(t.current or "")
        visibility = current.visibility if current else "private"
        s = self._new_schema(t, attrs, visibility, "/data/attributes")
        self._add_version(t, s)
        return Outcome(data=self.schema_resource(s))

    def get_object_schema(self, call: Call) -> Outcome:
        s = self._schema(self.path_id(call))
        included: list[Resource] = []
        if "source-mapping" in call.query.include and s.mapping_id:
            included.append(self.mapping_resource(self.mappings[s.mapping_id]))
        if "object-schemas" in call.query.include:
            included += self._links(s, profile=False)
        if "profile-object-schemas" in call.query.include:
            included += self._links(s, profile=True)
        return Outcome(data=self.schema_resource(s), included=included)

    def update_object_schema(self, call: Call) -> Outcome:
        s = self._schema(self.path_id(call))
        t = self.types[s.type_id]
        attrs = attributes_of(data_of(call.body, "object-schema"))
        edits = {k for k in ("title", "description", "properties", "required") if attrs.get(k)}
        if s.status == "active" and edits:
            # an active schema is what ingestion reads; changes go through a new draft
            raise InvalidError("An active schema cannot be edited; create a draft schema.",
                               pointer="/data/attributes")  # fmt: skip
        if attrs.get("properties") is not None:
            s.properties = _properties(attrs["properties"], "/data/attributes/properties")
        if attrs.get("required") is not None or attrs.get("properties") is not None:
            required = attrs.get("required", s.required)
            s.required = _required(required, s.properties, "/data/attributes/required")
        if isinstance(attrs.get("title"), str):
            s.title = attrs["title"]
        if isinstance(attrs.get("description"), str):
            s.description = attrs["description"]
        status = attrs.get("status")
        if status is not None:
            if status not in ("active", "draft"):
                raise InvalidError("status must be active or draft",
                                   pointer="/data/attributes/status")  # fmt: skip
            if status == "active" and s.status != "active":
                self._activate(t, s)
            elif status == "draft" and s.status == "active":
                raise InvalidError("An active schema cannot go back to draft.",
                                   pointer="/data/attributes/status")  # fmt: skip
        t.updated = self.ctx.now()
        return Outcome(data=self.schema_resource(s))

    # -- schema relationships ------------------------------------------------------------

    def _links(self, s: ObjectSchema, *, profile: bool) -> list[Resource]:
        rtype = "profile-object-schema" if profile else "object-schema"
        return [
            Resource(rtype, f"{link.target}:::{link.name}", {"meta": _meta(link)})
            for link in s.links
            if (link.target == "profile") == profile
        ]

    def _link_items(self, call: Call, rtype: str, *, many: bool) -> list[dict[str, Any]]:
        data = call.body.get("data") if isinstance(call.body, dict) else None
        items = data if many else [data]
        if not isinstance(items, list) or (many and not items):
            shape = "a non-empty list" if many else "an object"
            raise InvalidError(f"data must be {shape} of {rtype} linkages", pointer="/data")
        for k, item in enumerate(items):
            ptr = f"/data/{k}" if many else "/data"
            if not isinstance(item, dict) or item.get("type") != rtype or not item.get("id"):
                raise InvalidError(f"expected a {{type: {rtype!r}, id}} linkage", pointer=ptr)
            if rtype == "profile-object-schema" and item["id"] != "profile":
                raise InvalidError("the profile schema's id is always 'profile'",
                                   pointer=f"{ptr}/id")  # fmt: skip
            if rtype == "object-schema" and item["id"] not in self.schemas:
                raise InvalidError(f"object schema {item['id']!r} does not exist",
                                   pointer=f"{ptr}/id")  # fmt: skip
        return items

    def _create_links(self, call: Call, rtype: str) -> Outcome:
        s = self._schema(self.path_id(call))
        for k, item in enumerate(self._link_items(call, rtype, many=True)):
            meta = item.get("meta")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise InvalidError("meta.name is required", pointer=f"/data/{k}/meta/name")
            if any(link.name == name for link in s.links):
                raise ConflictError(f"The schema already has a relationship named {name!r}.",
                                    pointer=f"/data/{k}/meta/name")  # fmt: skip
            description = meta.get("description") if isinstance(meta, dict) else None
            s.links.append(SchemaLink(self.store.next_ulid(self.ctx.now()), str(item["id"]),
                                      name, str(description or "")))  # fmt: skip
        return Outcome()

    def _link_of(self, s: ObjectSchema, item: dict[str, Any], ptr: str) -> SchemaLink:
        meta = item.get("meta")
        rid = meta.get("relationship_id") if isinstance(meta, dict) else None
        for link in s.links:
            if link.id == rid and link.target == item["id"]:
                return link
        raise InvalidError(f"no relationship {rid!r} to {item['id']!r} on this schema",
                           pointer=f"{ptr}/meta/relationship_id")  # fmt: skip

    def _update_link(self, call: Call, rtype: str) -> Outcome:
        s = self._schema(self.path_id(call))
        item = self._link_items(call, rtype, many=False)[0]
        link = self._link_of(s, item, "/data")
        meta = item["meta"]
        name = meta.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise InvalidError("meta.name must be a non-empty string",
                                   pointer="/data/meta/name")  # fmt: skip
            if any(other.name == name and other is not link for other in s.links):
                raise ConflictError(f"The schema already has a relationship named {name!r}.",
                                    pointer="/data/meta/name")  # fmt: skip
            link.name = name
        if isinstance(meta.get("description"), str):
            link.description = meta["description"]
        return Outcome()

    def _delete_links(self, call: Call, rtype: str) -> Outcome:
        s = self._schema(self.path_id(call))
        items = self._link_items(call, rtype, many=True)
        doomed = {self._link_of(s, item, f"/data/{k}").id for k, item in enumerate(items)}
        s.links = [link for link in s.links if link.id not in doomed]
        return Outcome()

    def get_object_schema_relationships(self, call: Call) -> Outcome:
        s = self._schema(self.path_id(call))
        return Outcome(data=self._links(s, profile=False), identifiers_only=True)

    def create_object_schema_relationship(self, call: Call) -> Outcome:
        return self._create_links(call, "object-schema")

    def update_object_schema_relationship(self, call: Call) -> Outcome:
        return self._update_link(call, "object-schema")

    def delete_object_schema_relationship(self, call: Call) -> Outcome:
        return self._delete_links(call, "object-schema")

    def get_profile_schema_relationships(self, call: Call) -> Outcome:
        s = self._schema(self.path_id(call))
        return Outcome(data=self._links(s, profile=True), identifiers_only=True)

    def create_profile_schema_relationship(self, call: Call) -> Outcome:
        return self._create_links(call, "profile-object-schema")

    def update_profile_schema_relationship(self, call: Call) -> Outcome:
        return self._update_link(call, "profile-object-schema")

    def delete_profile_schema_relationship(self, call: Call) -> Outcome:
        return self._delete_links(call, "profile-object-schema")

    # -- source mappings -----------------------------------------------------------------

    @staticmethod
    def mapping_resource(m: SourceMapping) -> Resource:
        attrs = {"property_mappings": m.property_mappings,
                 "relationship_mappings": m.relationship_mappings}  # fmt: skip
        return Resource("source-mapping", m.id, attrs)

    def _mapping(self, mid: str) -> SourceMapping:
        return existing(self.mappings, "source-mapping", mid)

    def _schema_mapping(self, call: Call) -> SourceMapping:
        s = self._schema(self.path_id(call))
        if s.mapping_id is None:
            raise not_found("source-mapping of object-schema", s.id)
        return self.mappings[s.mapping_id]

    def get_source_mapping_for_object_schema(self, call: Call) -> Outcome:
        return Outcome(data=self.mapping_resource(self._schema_mapping(call)))

    def get_source_mapping_id_for_object_schema(self, call: Call) -> Outcome:
        m = self._schema_mapping(call)
        return Outcome(data=Resource("source-mapping", m.id, {}), identifiers_only=True)

    def get_source_mapping(self, call: Call) -> Outcome:
        return Outcome(data=self.mapping_resource(self._mapping(self.path_id(call))))

    def update_source_mapping(self, call: Call) -> Outcome:
        m = self._mapping(self.path_id(call))
        attrs = attributes_of(data_of(call.body, "source-mapping"))
        self._apply_mapping(m, self.schemas[m.schema_id], attrs, "/data/attributes")
        return Outcome(data=self.mapping_resource(m))

    def _apply_mapping(
        self, m: SourceMapping, s: ObjectSchema, attrs: dict[str, Any], ptr: str
    ) -> None:
        props = attrs.get("property_mappings")
        if props is not None:
            if not isinstance(props, list):
                raise InvalidError("property_mappings must be a list",
                                   pointer=f"{ptr}/property_mappings")  # fmt: skip
            known = {p["id"] for p in s.properties}
            for k, pm in enumerate(props):
                here = f"{ptr}/property_mappings/{k}"
                if not isinstance(pm, dict) or pm.get("id") not in known:
                    raise InvalidError("id must name a property of the schema",
                                       pointer=f"{here}/id")  # fmt: skip
                if pm.get("type") == "constant":
                    if "value" not in pm:
                        raise InvalidError("a constant mapping needs value",
                                           pointer=f"{here}/value")  # fmt: skip
                    continue
                src = pm.get("source")
                if pm.get("type") != "simple" or not isinstance(src, dict):
                    raise InvalidError("type must be constant or simple with a source",
                                       pointer=f"{here}/type")  # fmt: skip
                if src.get("source_id") not in self.sources:
                    raise InvalidError(f"data source {src.get('source_id')!r} does not exist",
                                       pointer=f"{here}/source/source_id")  # fmt: skip
                for path in ("id_path", "data_path"):
                    if not isinstance(src.get(path), str) or not _PATH.match(src[path]):
                        raise InvalidError(f"{path} must be a JSONPath like $['name']",
                                           pointer=f"{here}/source/{path}")  # fmt: skip
            m.property_mappings = props
        rels = attrs.get("relationship_mappings")
        if rels is not None:
            if not isinstance(rels, list):
                raise InvalidError("relationship_mappings must be a list",
                                   pointer=f"{ptr}/relationship_mappings")  # fmt: skip
            m.relationship_mappings = rels


def _meta(link: SchemaLink) -> dict[str, Any]:
    return {"relationship_id": link.id, "name": link.name, "description": link.description}


def _choice(attrs: dict[str, Any], name: str, allowed: tuple[str, ...] | None, default: str) -> str:
    value = attrs.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        what = f"one of {', '.join(allowed)}" if allowed else "a string"
        raise InvalidError(f"{name} must be {what}", pointer=f"/data/attributes/{name}")
    return value


def _properties(value: Any, ptr: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidError("properties must be a list", pointer=ptr)
    seen_ids: set[int] = set()
    seen_names: set[str] = set()
    out: list[dict[str, Any]] = []
    for k, p in enumerate(value):
        here = f"{ptr}/{k}"
        if not isinstance(p, dict):
            raise InvalidError("a property must be an object", pointer=here)
        pid, name, ptype = p.get("id"), p.get("name"), p.get("type")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1 or pid in seen_ids:
            raise InvalidError("id must be a positive integer, unique in the schema",
                               pointer=f"{here}/id")  # fmt: skip
        if not isinstance(name, str) or not name or name in seen_names:
            raise InvalidError("name must be a non-empty string, unique in the schema",
                               pointer=f"{here}/name")  # fmt: skip
        if ptype not in PROPERTY_TYPES:
            raise InvalidError(f"type must be one of {', '.join(PROPERTY_TYPES)}",
                               pointer=f"{here}/type")  # fmt: skip
        seen_ids.add(pid)
        seen_names.add(name)
        out.append({"id": pid, "name": name, "type": ptype,
                    "description": str(p.get("description") or "")})  # fmt: skip
    return out


def _required(value: Any, props: list[dict[str, Any]], ptr: str) -> list[str]:
    if value is None:
        return []
    names = {p["name"] for p in props}
    if not isinstance(value, list) or any(v not in names for v in value):
        raise InvalidError("required must list names of the schema's properties", pointer=ptr)
    return list(value)


def _raw(row: Any, ptr: str) -> dict[str, Any]:
    if not isinstance(row, dict) or row.get("type") != "data-source-record":
        raise InvalidError("expected a data-source-record", pointer=f"{ptr}/type")
    attrs = row.get("attributes")
    record = attrs.get("record") if isinstance(attrs, dict) else None
    if not isinstance(record, dict):
        raise InvalidError("attributes.record must be an object",
                           pointer=f"{ptr}/attributes/record")  # fmt: skip
    return record


def _reads(m: SourceMapping, source: str) -> bool:
    return any((pm.get("source") or {}).get("source_id") == source for pm in m.property_mappings)


def _select(raw: dict[str, Any], path: str) -> Any:
    match = _PATH.match(path)
    if match is None:
        return None
    return raw.get(match.group(1) or match.group(2))


def _typed(value: Any, ptype: str) -> tuple[Any, str | None]:
    if ptype == "string":
        return (value, None) if isinstance(value, str) else (None, "Input should be a valid string")
    if ptype == "boolean":
        return (value, None) if isinstance(value, bool) else (None, "Input should be a boolean")
    if ptype == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (value, None) if ok else (None, "Input should be a valid integer")
    if ptype == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (float(value), None) if ok else (None, "Input should be a valid number")
    if isinstance(value, str):
        try:
            return iso(parse_iso(value)), None
        except ValueError:
            pass
    return None, "Input should be a valid ISO 8601 datetime"


def _json(value: Any) -> str:
    return json.dumps(value)

"""Tags and tag groups, and the tag ↔ campaign/flow/list/segment relationships.

Every account has one Default tag group (created with the backend, never
deletable); a tag created without a group joins it. In an ``exclusive``
group a resource may carry at most one of the group's tags, so tagging it
with a second one is a 400 naming the tag already there. Links to objects
that were deleted since are hidden on read rather than cascaded on delete,
so the other backends need not know tags exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    identifier_list,
    not_found,
    page_of,
    page_outcome,
    relationship_ids,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import mix64
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call
    from kbridge.emulator.backend.common import Context

__all__ = ["MAX_TAGS", "MAX_TAG_GROUPS", "TagGroupRecord", "TagRecord", "TagsBackend"]

#: Klaviyo's documented limits: per account, and per tagged campaign/flow/list/segment
MAX_TAGS = 500
MAX_TAG_GROUPS = 50
MAX_TAGS_PER_OBJECT = 100
#: the kinds a tag links to: relationship name -> resource type
KINDS = {"campaigns": "campaign", "flows": "flow", "lists": "list", "segments": "segment"}


@dataclass(slots=True)
class TagGroupRecord:
    seq: int
    id: str
    name: str
    exclusive: bool = False
    default: bool = False


@dataclass(slots=True)
class TagRecord:
    seq: int
    id: str
    name: str
    group_id: str
    #: resource type ("campaign", "flow", "list", "segment") -> ids, in tagging order
    links: dict[str, dict[str, None]] = field(default_factory=dict)


def uuid_like(seed: int, salt: int, n: int) -> str:
    """A stable UUID-shaped id (Klaviyo's tag and tag-group ids are UUIDs)."""
    a, b = mix64(seed, salt, n), mix64(n, salt, seed, 1)
    h = f"{a:016x}{b:016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _name(attrs: dict[str, Any]) -> str:
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidError(
            "name is required and must be a non-empty string", pointer="/data/attributes/name"
        )
    return name


class TagsBackend(TagBackend):
    """Tags, tag groups and their links; also serves ``/api/{…}/{id}/tags`` for each kind.

    Campaign and flow ids are checked against the campaigns and flows backends of the
    shared context (``ctx.campaigns.campaigns``, ``ctx.flows.flows``).
    """

    operations = frozenset(
        {
            "get_tags",
            "get_tag",
            "create_tag",
            "update_tag",
            "delete_tag",
            "get_tag_group_for_tag",
            "get_tag_group_id_for_tag",
            "get_tag_groups",
            "get_tag_group",
            "create_tag_group",
            "update_tag_group",
            "delete_tag_group",
            "get_tags_for_tag_group",
            "get_tag_ids_for_tag_group",
            "tag_campaigns",
            "tag_flows",
            "tag_lists",
            "tag_segments",
            "remove_tag_from_campaigns",
            "remove_tag_from_flows",
            "remove_tag_from_lists",
            "remove_tag_from_segments",
            "get_campaign_ids_for_tag",
            "get_flow_ids_for_tag",
            "get_list_ids_for_tag",
            "get_segment_ids_for_tag",
            "get_tags_for_list",
            "get_tag_ids_for_list",
            "get_tags_for_segment",
            "get_tag_ids_for_segment",
            "get_tags_for_flow",
            "get_tags_for_campaign",
            "get_tag_ids_for_campaign",
            "get_tag_ids_for_flow",
        }
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.tags: dict[str, TagRecord] = {}
        self.groups: dict[str, TagGroupRecord] = {}
        default = self._new_group("Default", exclusive=False, default=True)
        self.default_group_id = default.id
        ctx.tags = self
        if ctx.store.profiles and ctx.store.lists:  # a generated account has a few tags
            first = min(ctx.store.lists.values(), key=lambda lst: lst.seq)
            self.add("Newsletter").links["list"] = {first.id: None}
            self.add("Promotions")

    def add(self, name: str, group_id: str | None = None) -> TagRecord:
        """Store a new tag in ``group_id`` (the Default group when ``None``)."""
        seq = self.store.next_seq()
        tag = TagRecord(
            seq=seq,
            id=uuid_like(self.store.seed, 0x7A9, seq),
            name=name,
            group_id=group_id or self.default_group_id,
        )
        self.tags[tag.id] = tag
        return tag

    # -- existence of the tagged objects ---------------------------------------------

    def exists(self, rtype: str, ident: str) -> bool:
        """Whether the object a tag links to is still there (deleted ones are hidden)."""
        store = self.store
        if rtype == "list":
            return ident in store.lists
        if rtype == "segment":
            return ident in store.segments
        if rtype == "campaign":
            return self.ctx.campaigns is not None and ident in self.ctx.campaigns.campaigns
        if rtype == "flow":
            return self.ctx.flows is not None and ident in self.ctx.flows.flows
        return False

    def tags_of(self, rtype: str, ident: str) -> list[TagRecord]:
        """The tags on one object, in creation order."""
        return sorted(
            (t for t in self.tags.values() if ident in t.links.get(rtype, {})),
            key=lambda t: t.seq,
        )

    # -- resources ---------------------------------------------------------------------

    def tag_resource(self, tag: TagRecord) -> Resource:
        return Resource(
            "tag",
            tag.id,
            {"name": tag.name},
            relationships={"tag-group": ("tag-group", tag.group_id)},
            links_only=("lists", "segments", "campaigns", "flows"),
        )

    def _group_resource(self, group: TagGroupRecord) -> Resource:
        attrs = {"name": group.name, "exclusive": group.exclusive, "default": group.default}
        return Resource("tag-group", group.id, attrs, links_only=("tags",))

    def _tag(self, call: Call) -> TagRecord:
        tid = self.path_id(call)
        return existing(self.tags, "tag", tid)

    def _group(self, call: Call) -> TagGroupRecord:
        gid = self.path_id(call)
        return existing(self.groups, "tag group", gid)

    def _new_group(self, name: str, *, exclusive: bool, default: bool = False) -> TagGroupRecord:
        seq = self.store.next_seq()
        gid = uuid_like(self.store.seed, 0x7A6, seq)
        group = TagGroupRecord(seq=seq, id=gid, name=name, exclusive=exclusive, default=default)
        self.groups[group.id] = group
        return group

    # -- tags --------------------------------------------------------------------------

    def get_tags(self, call: Call) -> Outcome:
        by_seq = {t.seq: t for t in self.tags.values()}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            return (getattr(by_seq[s], sort), s)

        page = page_of(call, sorted(by_seq, key=key), key, {"name": lambda s: by_seq[s].name})
        items = [by_seq[s] for s in page.items]
        included = []
        if "tag-group" in call.query.include:
            gids = dict.fromkeys(t.group_id for t in items)
            included = [self._group_resource(self.groups[g]) for g in gids if g in self.groups]
        return Outcome(
            data=Page(
                items=[self.tag_resource(t) for t in items],
                next_cursor=page.next_cursor,
                prev_cursor=page.prev_cursor,
            ),
            included=included,
        )

    def get_tag(self, call: Call) -> Outcome:
        tag = self._tag(call)
        included = []
        if "tag-group" in call.query.include and tag.group_id in self.groups:
            included = [self._group_resource(self.groups[tag.group_id])]
        return Outcome(data=self.tag_resource(tag), included=included)

    def create_tag(self, call: Call) -> Outcome:
        data = data_of(call.body, "tag")
        name = _name(attributes_of(data))
        gids = relationship_ids(data, "tag-group", "tag-group", many=False)
        gid = gids[0] if gids else self.default_group_id
        if gid not in self.groups:
            raise InvalidError(
                f"tag group {gid!r} does not exist", pointer="/data/relationships/tag-group/data/id"
            )
        if len(self.tags) >= MAX_TAGS:
            raise InvalidError(f"an account can have at most {MAX_TAGS} tags", pointer="/data")
        tag = self.add(name, gid)
        return Outcome(data=self.tag_resource(tag), status=201)

    def update_tag(self, call: Call) -> Outcome:
        tag = self._tag(call)
        tag.name = _name(attributes_of(data_of(call.body, "tag")))
        return Outcome(status=204)

    def delete_tag(self, call: Call) -> Outcome:
        del self.tags[self._tag(call).id]
        return Outcome(status=204)

    def get_tag_group_for_tag(self, call: Call) -> Outcome:
        return Outcome(data=self._group_resource(self.groups[self._tag(call).group_id]))

    def get_tag_group_id_for_tag(self, call: Call) -> Outcome:
        tag = self._tag(call)
        return Outcome(data=Resource("tag-group", tag.group_id, {}), identifiers_only=True)

    # -- tag groups --------------------------------------------------------------------

    def get_tag_groups(self, call: Call) -> Outcome:
        by_seq = {g.seq: g for g in self.groups.values()}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            return (getattr(by_seq[s], sort), s)

        getters: dict[str, Callable[[int], Any]] = {
            "name": lambda s: by_seq[s].name,
            "exclusive": lambda s: by_seq[s].exclusive,
            "default": lambda s: by_seq[s].default,
        }
        page = page_of(call, sorted(by_seq, key=key), key, getters)
        return page_outcome(page, lambda s: self._group_resource(by_seq[s]))

    def get_tag_group(self, call: Call) -> Outcome:
        return Outcome(data=self._group_resource(self._group(call)))

    def create_tag_group(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "tag-group"))
        name = _name(attrs)
        exclusive = attrs.get("exclusive")
        if exclusive is not None and not isinstance(exclusive, bool):
            raise InvalidError("exclusive must be a boolean", pointer="/data/attributes/exclusive")
        if len(self.groups) >= MAX_TAG_GROUPS:
            raise InvalidError(
                f"an account can have at most {MAX_TAG_GROUPS} tag groups", pointer="/data"
            )
        group = self._new_group(name, exclusive=bool(exclusive))
        return Outcome(data=self._group_resource(group), status=201)

    def update_tag_group(self, call: Call) -> Outcome:
        group = self._group(call)
        group.name = _name(attributes_of(data_of(call.body, "tag-group")))
        return Outcome(status=204)

    def delete_tag_group(self, call: Call) -> Outcome:
        group = self._group(call)
        if group.default:
            raise InvalidError("the Default tag group cannot be deleted")
        del self.groups[group.id]
        for tid in [t.id for t in self.tags.values() if t.group_id == group.id]:
            del self.tags[tid]
        return Outcome(status=204)

    def _group_tags(self, call: Call) -> list[TagRecord]:
        group = self._group(call)
        return sorted(
            (t for t in self.tags.values() if t.group_id == group.id), key=lambda t: t.seq
        )

    def get_tags_for_tag_group(self, call: Call) -> Outcome:
        return Outcome(data=[self.tag_resource(t) for t in self._group_tags(call)])

    def get_tag_ids_for_tag_group(self, call: Call) -> Outcome:
        tags = self._group_tags(call)
        return Outcome(data=[Resource("tag", t.id, {}) for t in tags], identifiers_only=True)

    # -- tag -> objects ----------------------------------------------------------------

    def _link(self, call: Call, rel: str) -> Outcome:
        tag = self._tag(call)
        rtype = KINDS[rel]
        ids = identifier_list(call.body, rtype)
        for k, ident in enumerate(ids):
            if not self.exists(rtype, ident):
                raise InvalidError(f"{rtype} {ident!r} does not exist", pointer=f"/data/{k}/id")
        group = self.groups.get(tag.group_id)
        if group is not None and group.exclusive:
            for k, ident in enumerate(ids):
                for other in self.tags_of(rtype, ident):
                    if other.id != tag.id and other.group_id == group.id:
                        raise InvalidError(
                            f"{rtype} {ident!r} already has tag {other.name!r} from the "
                            f"exclusive tag group {group.name!r}",
                            pointer=f"/data/{k}/id",
                        )
        for k, ident in enumerate(ids):
            on = self.tags_of(rtype, ident)
            if all(t.id != tag.id for t in on) and len(on) >= MAX_TAGS_PER_OBJECT:
                raise InvalidError(
                    f"{rtype} {ident!r} already has {MAX_TAGS_PER_OBJECT} tags, "
                    "the most Klaviyo allows",
                    pointer=f"/data/{k}/id",
                )
        linked = tag.links.setdefault(rtype, {})
        for ident in ids:
            linked[ident] = None
        return Outcome(status=204)

    def _unlink(self, call: Call, rel: str) -> Outcome:
        tag = self._tag(call)
        rtype = KINDS[rel]
        linked = tag.links.get(rtype, {})
        for ident in identifier_list(call.body, rtype):
            linked.pop(ident, None)
        return Outcome(status=204)

    def _linked_ids(self, call: Call, rel: str) -> Outcome:
        tag = self._tag(call)
        rtype = KINDS[rel]
        ids = [i for i in tag.links.get(rtype, {}) if self.exists(rtype, i)]
        return Outcome(data=[Resource(rtype, i, {}) for i in ids], identifiers_only=True)

    def tag_campaigns(self, call: Call) -> Outcome:
        return self._link(call, "campaigns")

    def tag_flows(self, call: Call) -> Outcome:
        return self._link(call, "flows")

    def tag_lists(self, call: Call) -> Outcome:
        return self._link(call, "lists")

    def tag_segments(self, call: Call) -> Outcome:
        return self._link(call, "segments")

    def remove_tag_from_campaigns(self, call: Call) -> Outcome:
        return self._unlink(call, "campaigns")

    def remove_tag_from_flows(self, call: Call) -> Outcome:
        return self._unlink(call, "flows")

    def remove_tag_from_lists(self, call: Call) -> Outcome:
        return self._unlink(call, "lists")

    def remove_tag_from_segments(self, call: Call) -> Outcome:
        return self._unlink(call, "segments")

    def get_campaign_ids_for_tag(self, call: Call) -> Outcome:
        return self._linked_ids(call, "campaigns")

    def get_flow_ids_for_tag(self, call: Call) -> Outcome:
        return self._linked_ids(call, "flows")

    def get_list_ids_for_tag(self, call: Call) -> Outcome:
        return self._linked_ids(call, "lists")

    def get_segment_ids_for_tag(self, call: Call) -> Outcome:
        return self._linked_ids(call, "segments")

    # -- object -> tags ----------------------------------------------------------------

    def _tags_on(self, call: Call, rtype: str, *, ids_only: bool) -> Outcome:
        ident = self.path_id(call)
        if not self.exists(rtype, ident):
            raise not_found(rtype, ident)
        tags = self.tags_of(rtype, ident)
        if ids_only:
            return Outcome(data=[Resource("tag", t.id, {}) for t in tags], identifiers_only=True)
        return Outcome(data=[self.tag_resource(t) for t in tags])

    def get_tags_for_list(self, call: Call) -> Outcome:
        return self._tags_on(call, "list", ids_only=False)

    def get_tag_ids_for_list(self, call: Call) -> Outcome:
        return self._tags_on(call, "list", ids_only=True)

    def get_tags_for_segment(self, call: Call) -> Outcome:
        return self._tags_on(call, "segment", ids_only=False)

    def get_tag_ids_for_segment(self, call: Call) -> Outcome:
        return self._tags_on(call, "segment", ids_only=True)

    def get_tags_for_campaign(self, call: Call) -> Outcome:
        return self._tags_on(call, "campaign", ids_only=False)

    def get_tag_ids_for_campaign(self, call: Call) -> Outcome:
        return self._tags_on(call, "campaign", ids_only=True)

    def get_tags_for_flow(self, call: Call) -> Outcome:
        return self._tags_on(call, "flow", ids_only=False)

    def get_tag_ids_for_flow(self, call: Call) -> Outcome:
        return self._tags_on(call, "flow", ids_only=True)

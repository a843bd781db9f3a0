"""Lists: CRUD and membership. Membership is not consent: adding a profile
to a list here never changes its subscriptions (that is the subscribe job)."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import (
    TagBackend,
    attributes_of,
    data_of,
    existing,
    identifier_list,
    include_tags,
    page_of,
)
from kbridge.emulator.backend.errors import InvalidError
from kbridge.emulator.backend.ids import iso
from kbridge.emulator.backend.models import ListRecord
from kbridge.emulator.backend.profiles import profile_getters, profile_resource
from kbridge.emulator.backend.resource import Resource
from kbridge.emulator.query import Page, Query

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["ListsBackend", "list_resource"]

MAX_MEMBERSHIP_EDIT = 1000
_OPT_IN = ("single_opt_in", "double_opt_in")
_LINKS_ONLY = ("profiles", "tags", "flow-triggers")


def list_resource(lst: ListRecord, query: Query | None) -> Resource:
    attrs: dict[str, Any] = {
        "name": lst.name,
        "created": iso(lst.created),
        "updated": iso(lst.updated),
        "opt_in_process": lst.opt_in_process,
    }
    if query is not None and query.wants("list", "profile_count"):
        attrs["profile_count"] = len(lst.members)
    return Resource("list", lst.id, attrs, links_only=_LINKS_ONLY)


def member_page(
    backend: TagBackend, call: Call, members: dict[int, float], ids_only: bool
) -> Outcome:
    """A page of group members sorted by ``joined_group_at`` (lists and segments share it)."""
    store = backend.store
    P = store.profiles
    cache = backend.ctx.member_order
    cache_key = (call.operation.operation_id, call.path_params.get("id"))
    # Segment membership is rebuilt as a new dict, so its identity is part of the stamp.
    stamp = (store.version, id(members), len(members))
    hit = cache.get(cache_key)
    if hit is None or hit[0] != stamp:

        def sort_key(s: int) -> tuple[float, int]:
            return (members.get(s, 0.0), s)

        hit = (stamp, array("l", sorted(members, key=sort_key)))
        cache[cache_key] = hit
    ordered = hit[1]

    def key(s: int) -> tuple[float, int]:
        return (members.get(s, 0.0), s)

    getters = dict(profile_getters(store))
    getters["joined_group_at"] = lambda s: members.get(s)
    getters["profile_id"] = getters["id"]
    page = page_of(call, ordered, key, getters, alive=lambda s: s in members and not P[s].deleted)
    items = [
        Resource("profile", P[s].id, {})
        if ids_only
        else profile_resource(P[s], call.query, {"joined_group_at": iso(members[s])})
        for s in page.items
    ]
    return Outcome(
        data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
        identifiers_only=ids_only,
    )


class ListsBackend(TagBackend):
    operations = frozenset(
        {
            "get_lists",
            "get_list",
            "create_list",
            "update_list",
            "delete_list",
            "get_profiles_for_list",
            "get_profile_ids_for_list",
            "add_profiles_to_list",
            "remove_profiles_from_list",
        }
    )

    def _get(self, call: Call) -> ListRecord:
        lid = self.path_id(call)
        return existing(self.store.lists, "list", lid)

    def get_lists(self, call: Call) -> Outcome:
        records = list(self.store.lists.values())
        by_seq = {lst.seq: lst for lst in records}
        sort = call.query.sort.field if call.query.sort is not None else "id"

        def key(s: int) -> tuple[Any, ...]:
            lst = by_seq[s]
            return (getattr(lst, sort), s)

        ordered = sorted(by_seq, key=key)
        getters = {
            "id": lambda s: by_seq[s].id,
            "name": lambda s: by_seq[s].name,
            "created": lambda s: by_seq[s].created,
            "updated": lambda s: by_seq[s].updated,
        }
        page = page_of(call, ordered, key, getters)
        items = [list_resource(by_seq[s], call.query) for s in page.items]
        return Outcome(
            data=Page(items=items, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor),
            included=include_tags(self.ctx, items, call.query),
        )

    def get_list(self, call: Call) -> Outcome:
        found = list_resource(self._get(call), call.query)
        return Outcome(data=found, included=include_tags(self.ctx, [found], call.query))

    def create_list(self, call: Call) -> Outcome:
        attrs = attributes_of(data_of(call.body, "list"))
        name = _name(attrs)
        opt_in = attrs.get("opt_in_process") or "single_opt_in"
        if opt_in not in _OPT_IN:
            raise InvalidError(
                f"opt_in_process must be one of {', '.join(_OPT_IN)}",
                pointer="/data/attributes/opt_in_process",
            )
        now = self.ctx.now()
        lst = ListRecord(
            seq=self.store.next_seq(),
            id=self.store.next_short_id(31),
            name=name,
            created=now,
            updated=now,
            opt_in_process=opt_in,
        )
        self.store.lists[lst.id] = lst
        return Outcome(data=list_resource(lst, None), status=201)

    def update_list(self, call: Call) -> Outcome:
        lst = self._get(call)
        data = data_of(call.body, "list")
        if data.get("id") != lst.id:
            raise InvalidError("data.id must match the list id in the path", pointer="/data/id")
        attrs = attributes_of(data)
        if "name" in attrs:
            lst.name = _name(attrs)
        if "opt_in_process" in attrs:
            if attrs["opt_in_process"] not in _OPT_IN:
                raise InvalidError(
                    f"opt_in_process must be one of {', '.join(_OPT_IN)}",
                    pointer="/data/attributes/opt_in_process",
                )
            lst.opt_in_process = attrs["opt_in_process"]
        lst.updated = self.ctx.now()
        return Outcome(data=list_resource(lst, None))

    def delete_list(self, call: Call) -> Outcome:
        lst = self._get(call)
        del self.store.lists[lst.id]
        self.store.touch()
        return Outcome(status=204)

    def get_profiles_for_list(self, call: Call) -> Outcome:
        return member_page(self, call, self._get(call).members, ids_only=False)

    def get_profile_ids_for_list(self, call: Call) -> Outcome:
        return member_page(self, call, self._get(call).members, ids_only=True)

    def _profile_seqs(self, call: Call) -> list[int]:
        ids = identifier_list(call.body, "profile")
        if len(ids) > MAX_MEMBERSHIP_EDIT:
            raise InvalidError(
                f"at most {MAX_MEMBERSHIP_EDIT} profiles per request (got {len(ids)})",
                pointer="/data",
            )
        seqs = []
        for k, pid in enumerate(ids):
            p = self.store.profile(pid)
            if p is None:
                raise InvalidError(f"profile {pid!r} does not exist", pointer=f"/data/{k}/id")
            seqs.append(p.seq)
        return seqs

    def add_profiles_to_list(self, call: Call) -> Outcome:
        lst = self._get(call)
        now = self.ctx.now()
        for s in self._profile_seqs(call):
            lst.members.setdefault(s, now)
        self.store.touch()
        return Outcome(status=204)

    def remove_profiles_from_list(self, call: Call) -> Outcome:
        lst = self._get(call)
        for s in self._profile_seqs(call):
            lst.members.pop(s, None)
        self.store.touch()
        return Outcome(status=204)


def _name(attrs: dict[str, Any]) -> str:
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidError(
            "name is required and must be a non-empty string", pointer="/data/attributes/name"
        )
    return name

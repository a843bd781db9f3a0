"""Typed state records: what each stream kind stores as its bookmark rows.

The warehouse keeps one JSON object per ``(account, stream, partition)``. The partition
names and the objects' keys are the stored format, readable by every earlier release:
each record reads and writes exactly the keys the engine always has, so a warehouse
synced before these records existed resumes where it stopped.

============================  ==================  ==============================
partition                      record              stream kind
============================  ==================  ==============================
``""`` or a partition's name   :class:`Bookmark`   incremental, windowed, report
``plan``                       :class:`SlicePlan`  windowed: the run's lower bound
``slice:<start>``              :class:`WindowMark` windowed: one window's progress
``read:<parent id>``           :class:`ParentRead` children: when a parent was read
``""``                         :class:`ChildrenRun` children: the last complete run
============================  ==================  ==============================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kbridge.warehouse import StateUpdate

__all__ = [
    "PLAN",
    "READ_PREFIX",
    "SLICE_PREFIX",
    "Bookmark",
    "ChildrenRun",
    "ParentRead",
    "SlicePlan",
    "StreamState",
    "WindowMark",
]

#: partition of a windowed stream's plan
PLAN = "plan"
#: partitions of a windowed stream's windows (``slice:<start>``: ``Window.name``)
SLICE_PREFIX = "slice:"
#: partitions of a per-parent stream's read marks (``read:<parent id>``)
READ_PREFIX = "read:"


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass(frozen=True, slots=True)
class Bookmark:
    """The latest cursor committed (an RFC 3339 timestamp; report streams: the last
    complete day)."""

    bookmark: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"bookmark": self.bookmark}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Bookmark | None:
        return None if value is None else cls(_opt_str(value.get("bookmark")))


@dataclass(frozen=True, slots=True)
class SlicePlan:
    """A windowed run's lower bound, committed before any window, so a resumed run plans
    the same windows."""

    lower: str

    def to_json(self) -> dict[str, Any]:
        return {"lower": self.lower}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> SlicePlan | None:
        lower = None if value is None else _opt_str(value.get("lower"))
        return None if lower is None else cls(lower)


@dataclass(frozen=True, slots=True)
class WindowMark:
    """One window's bookmark, and whether its last page is in."""

    bookmark: str | None = None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"bookmark": self.bookmark, "done": self.done}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> WindowMark | None:
        if value is None:
            return None
        return cls(_opt_str(value.get("bookmark")), bool(value.get("done")))


@dataclass(frozen=True, slots=True)
class ParentRead:
    """When a per-parent stream last read one parent in full."""

    at: str

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> ParentRead:
        return cls(str((value or {}).get("at") or ""))


@dataclass(frozen=True, slots=True)
class ChildrenRun:
    """A per-parent stream's last complete run (its rows carry ``last_run``)."""

    last_run: str
    completed_at: str

    def to_json(self) -> dict[str, Any]:
        return {"last_run": self.last_run, "completed_at": self.completed_at}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> ChildrenRun | None:
        if not value or not value.get("last_run"):
            return None
        return cls(str(value["last_run"]), str(value.get("completed_at") or ""))


StateRecord = Bookmark | SlicePlan | WindowMark | ParentRead | ChildrenRun


@dataclass(frozen=True, slots=True)
class StreamState:
    """One stream's stored rows (``warehouse.load_state``), read as typed records."""

    stream: str
    rows: Mapping[str, Mapping[str, Any]]

    def bookmark(self, partition: str = "") -> Bookmark | None:
        return Bookmark.from_json(self.rows.get(partition))

    def plan(self) -> SlicePlan | None:
        return SlicePlan.from_json(self.rows.get(PLAN))

    def window(self, name: str) -> WindowMark | None:
        return WindowMark.from_json(self.rows.get(name))

    def windows(self) -> Iterator[str]:
        """The window partitions stored (finished or not)."""
        return (k for k in self.rows if k.startswith(SLICE_PREFIX))

    def parents_read(self) -> dict[str, ParentRead]:
        return {
            k.removeprefix(READ_PREFIX): ParentRead.from_json(v)
            for k, v in self.rows.items()
            if k.startswith(READ_PREFIX)
        }

    def children_run(self) -> ChildrenRun | None:
        return ChildrenRun.from_json(self.rows.get(""))

    def update(self, partition: str, record: StateRecord | None) -> StateUpdate:
        """Set ``partition`` to ``record`` (None: clear it)."""
        return StateUpdate(self.stream, partition, None if record is None else record.to_json())


def read_key(parent_id: str) -> str:
    """The partition of one parent's read mark."""
    return READ_PREFIX + parent_id

"""``Frame``: the small, typed table every analysis returns.

Analyses are SQL over the warehouse; what they hand back is a list of rows
with named columns. A dependency-free frame keeps the library light (no
pandas) while giving the CLI, the HTML report and tests one shape to read:
columns by name, rows as tuples, dicts for JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Frame"]


@dataclass(frozen=True, slots=True)
class Frame:
    """Named columns and rows of one analysis result.

    ``title`` names the table for humans (CLI heading, report section);
    ``notes`` carries figures that belong beside it (e.g. a model's AUC).
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    title: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        width = len(self.columns)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"row {i} has {len(row)} values for {width} columns")

    @classmethod
    def of(
        cls,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str = "",
        notes: dict[str, Any] | None = None,
    ) -> Frame:
        return cls(tuple(columns), tuple(tuple(r) for r in rows), title, dict(notes or {}))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order (KeyError names the known columns)."""
        try:
            i = self.columns.index(name)
        except ValueError:
            raise KeyError(f"no column {name!r}; columns: {', '.join(self.columns)}") from None
        return [row[i] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts (for JSON output)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": self.records(),
            "notes": dict(self.notes),
        }

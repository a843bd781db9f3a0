"""A generated account's flows: a welcome series on its first list and a thank-you on orders.

They are created ``draft``, so they never send unless a test sets them live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kbridge.emulator.backend.templates import templates_of

if TYPE_CHECKING:
    from kbridge.emulator.backend.common import Context

__all__ = ["seeded_flows"]


def seeded_flows(ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    """``(name, definition)`` of each flow to create, definitions in temporary ids."""
    store = ctx.store
    first = min(store.lists.values(), key=lambda lst: lst.seq)
    templates = sorted(templates_of(ctx).values(), key=lambda t: t.seq)
    tid = templates[0].id if templates else None
    welcome = {
        "triggers": [{"type": "list", "id": first.id}],
        "entry_action_id": "welcome-1",
        "actions": [
            _email("welcome-1", "Welcome to the family", tid, next_id="wait"),
            {
                "temporary_id": "wait",
                "type": "time-delay",
                "links": {"next": "welcome-2"},
                "data": {"unit": "days", "value": 2},
            },
            _email("welcome-2", "Our best sellers, picked for you", tid),
        ],
    }
    flows: list[tuple[str, dict[str, Any]]] = [("Welcome Series", welcome)]
    placed = store.metric_by_name.get("Placed Order")
    if placed is not None:
        thanks = {
            "triggers": [{"type": "metric", "id": placed.id}],
            "entry_action_id": "thanks",
            "actions": [_email("thanks", "Thank you for your order", tid)],
        }
        flows.append(("Post-Purchase Thank You", thanks))
    return flows


def _email(
    temp_id: str, subject: str, template_id: str | None, *, next_id: str | None = None
) -> dict[str, Any]:
    """A ``send-email`` action."""
    message: dict[str, Any] = {"subject_line": subject, "from_email": "hello@example.com"}
    if template_id is not None:
        message["template_id"] = template_id
    return {
        "temporary_id": temp_id,
        "type": "send-email",
        "links": {"next": next_id},
        "data": {"message": message},
    }

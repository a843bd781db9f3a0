"""The push's own warehouse tables: what was sent, the jobs in flight, the rows refused.

``push_state`` holds, per destination (``profiles:email:LIST`` …) and row
identity, a 64-bit hash of the payload last submitted: a rerun sends only the
rows whose payload hashes differently. ``push_jobs`` records each job the
moment Klaviyo accepts it, before the next is submitted, so a push killed
mid-way polls those jobs when started again instead of resubmitting their
rows. ``push_errors`` keeps each row Klaviyo (or the push itself) refused.
"""

from __future__ import annotations

from kbridge.warehouse import Table, table

__all__ = ["PUSH_ERRORS", "PUSH_JOBS", "PUSH_STATE", "PUSH_TABLES"]

PUSH_STATE: Table = table(
    "push_state",
    ["destination", "identity", ("hash", "bigint"), "job_id", ("pushed_at", "timestamp")],
    key=("destination", "identity"),
)
PUSH_JOBS: Table = table(
    "push_jobs",
    [
        "job_id",
        "destination",
        "kind",
        ("row_count", "bigint"),
        "status",
        ("failed", "bigint"),
        ("submitted_at", "timestamp"),
        ("finished_at", "timestamp"),
    ],
    key=("job_id",),
)
PUSH_ERRORS: Table = table(
    "push_errors",
    ["destination", "job_id", "identity", "field", "reason", ("at", "timestamp")],
    key=("destination", "job_id", "identity", "field"),
)
PUSH_TABLES: tuple[Table, ...] = (PUSH_STATE, PUSH_JOBS, PUSH_ERRORS)

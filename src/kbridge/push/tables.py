"""The push's own warehouse tables: what was sent, the jobs in flight, the rows refused.

``push_state`` holds, per destination (``profiles:email:LIST`` …) and row
identity, a 64-bit hash of the payload last submitted: a rerun sends only the
rows whose payload hashes differently. ``push_jobs`` records each job the
moment Klaviyo accepts it, before the next is submitted, so a push killed
mid-way polls those jobs when started again instead of resubmitting their
rows. ``push_errors`` keeps each row Klaviyo (or the push itself) refused.

``push_log`` (DuckDB only) is ``push_state`` without its key: a profile push whose
rows are in the same DuckDB appends each job's rows to it (one line per identity,
the older line deleted) instead of upserting them through ``push_state``'s key
index, which cost three times as much as the rows' insertion itself.
"""

from __future__ import annotations

from kbridge.warehouse import Table, table

__all__ = ["PUSH_ERRORS", "PUSH_JOBS", "PUSH_LOG", "PUSH_LOG_DDL", "PUSH_STATE", "PUSH_TABLES"]

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

#: DuckDB's keyless twin of ``push_state`` (not migrated with the others: a declared table
#: has a primary key, and the key is what the log does without)
PUSH_LOG = "push_log"
PUSH_LOG_DDL = (
    f"CREATE TABLE IF NOT EXISTS {PUSH_LOG} (account_id VARCHAR NOT NULL, "
    "destination VARCHAR NOT NULL, identity VARCHAR NOT NULL, hash BIGINT, job_id VARCHAR, "
    "pushed_at TIMESTAMPTZ)"
)

"""The push's own warehouse tables: what was sent, the jobs in flight, the rows refused.

``push_state`` holds, per destination (``profiles:email:LIST`` …) and row
identity, a 64-bit hash of the payload last submitted: a rerun sends only the
rows whose payload hashes differently. ``push_jobs`` records each job the
moment Klaviyo accepts it, before the next is submitted, so a push killed
mid-way polls those jobs when started again instead of resubmitting their
rows. ``push_errors`` keeps each row Klaviyo (or the push itself) refused.

``push_log`` (DuckDB only) is ``push_state`` without its key and narrowed to two
numbers a row: a profile push whose rows are in the same DuckDB appends each job's rows
to it (one line per identity, the older line deleted) instead of upserting them through
``push_state``'s key index, which cost three times as much as the rows' insertion itself.
"""

# ruff: noqa: S608  (table names are our constants; values are bound)

from __future__ import annotations

from collections.abc import Sequence

from kbridge.warehouse import Table, Warehouse, table

__all__ = [
    "BATCHES",
    "JOB_BATCH",
    "PUSH_ERRORS",
    "PUSH_JOBS",
    "PUSH_LOG",
    "PUSH_LOG_ADOPTED",
    "PUSH_LOG_DDL",
    "PUSH_STATE",
    "PUSH_TABLES",
    "SCHEME_COLUMNS",
    "SCHEME_PAYLOAD",
    "adopt_lines",
    "of_destination",
    "upgrade_log",
]

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

#: DuckDB's keyless log of what was sent (not migrated with the others: a declared table
#: has a primary key, and the key is what the log does without). A line is a row's
#: identity, hashed (``key``), and its payload's ``hash``, under its job's ``batch``: the
#: job's account, id, destination and time are its ``push_jobs`` row's, whose batch is
#: ``hash(account_id, job_id)`` (see :data:`JOB_BATCH`). Lines adopted from an older
#: layout, or from ``push_state``, have their batch in ``push_log_adopted``.
PUSH_LOG = "push_log"
PUSH_LOG_ADOPTED = "push_log_adopted"
PUSH_LOG_DDL = (
    f"CREATE TABLE IF NOT EXISTS {PUSH_LOG} (batch UBIGINT NOT NULL, key UBIGINT NOT NULL, "
    "hash BIGINT)",
    f"CREATE TABLE IF NOT EXISTS {PUSH_LOG_ADOPTED} (batch UBIGINT NOT NULL, "
    "account_id VARCHAR NOT NULL, destination VARCHAR NOT NULL, job_id VARCHAR, "
    "pushed_at TIMESTAMPTZ)",
)
#: SQL of a job's batch from its account id and job id (parameters or columns)
JOB_BATCH = "hash(CAST({} AS VARCHAR), CAST({} AS VARCHAR))"

#: what a batch's lines' ``hash`` was taken over
SCHEME_PAYLOAD = 1  # the payload's JSON text (lines adopted: the DuckDB path before 2026-12-07)
SCHEME_COLUMNS = 2  # the payload's values and layout (a job's lines)

#: SQL of a destination's batches (``batch``, ``scheme``); parameters: :func:`of_destination`
BATCHES = (
    f"SELECT {JOB_BATCH.format('account_id', 'job_id')} AS batch, {SCHEME_COLUMNS} AS scheme "
    "FROM push_jobs WHERE account_id = ? AND destination = ? "
    f"UNION ALL SELECT batch, {SCHEME_PAYLOAD} FROM {PUSH_LOG_ADOPTED} "
    "WHERE account_id = ? AND destination = ?"
)


def of_destination(account_id: str, destination: str) -> list[str]:
    """The parameters of :data:`BATCHES`."""
    return [account_id, destination, account_id, destination]


def adopt_lines(warehouse: Warehouse, select: str, params: Sequence[object]) -> None:
    """Lines of (account_id, destination, identity, hash, job_id, pushed_at), hashed over
    the payload's text, into ``push_log``: a batch per job and time they came with."""
    warehouse.query(f"CREATE OR REPLACE TEMP TABLE _kbridge_adopted AS {select}", list(params))
    batch = "hash('adopted', account_id, destination, job_id, CAST(pushed_at AS TIMESTAMPTZ))"
    warehouse.query(
        f"INSERT INTO {PUSH_LOG_ADOPTED} (batch, account_id, destination, job_id, pushed_at) "
        f"SELECT DISTINCT {batch}, account_id, destination, job_id, pushed_at "
        f"FROM _kbridge_adopted WHERE {batch} NOT IN (SELECT batch FROM {PUSH_LOG_ADOPTED})"
    )
    warehouse.query(
        f"INSERT INTO {PUSH_LOG} (batch, key, hash) "
        f"SELECT {batch}, hash(identity), hash FROM _kbridge_adopted"
    )
    warehouse.query("DROP TABLE _kbridge_adopted")


def upgrade_log(warehouse: Warehouse) -> None:
    """Create the log's tables; move the lines of a log written before 2026-12-07 (one
    wide line per identity) into them, nothing resent (see :data:`SCHEME_PAYLOAD`)."""
    old = warehouse.query(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'identity' "
        "AND database_name = current_database() AND schema_name = 'main'",
        [PUSH_LOG],
    )
    if not int(old[0][0]):
        for ddl in PUSH_LOG_DDL:
            warehouse.query(ddl)
        return
    warehouse.query("BEGIN TRANSACTION")
    try:
        warehouse.query(f"ALTER TABLE {PUSH_LOG} RENAME TO _kbridge_push_log_before")
        for ddl in PUSH_LOG_DDL:
            warehouse.query(ddl)
        adopt_lines(
            warehouse,
            "SELECT account_id, destination, identity, hash, job_id, pushed_at "
            "FROM _kbridge_push_log_before",
            [],
        )
        warehouse.query("DROP TABLE _kbridge_push_log_before")
        warehouse.query("COMMIT")
    except BaseException:
        warehouse.query("ROLLBACK")
        raise

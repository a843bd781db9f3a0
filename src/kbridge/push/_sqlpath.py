"""A profile push whose rows never pass through Python one by one.

When the rows are a :class:`~kbridge.push.source.Source` in the same DuckDB as the
push state, DuckDB builds each row's JSON payload, hashes it, compares it with the
state (``push_log``, and ``push_state`` rows not yet moved there), assigns the rows to
jobs (≤ ``max_rows`` each and under the byte limit; a job is the changed rows of one
rowid range), concatenates each job's body and, once Klaviyo accepts the job, appends
its rows to ``push_log``. Python sees one string per job.

Its hashes are DuckDB's ``hash()`` of the payload (63 bits), not the row-by-row
path's BLAKE2b: the same destination pushed both ways is sent once more on the first
switch, then is unchanged again; so would it be after a DuckDB upgrade that changed
``hash()`` (MD5 would be stable but doubles the cost of hashing). The payload is
``to_json`` of one struct, which costs half of ``json_object``.
"""

# ruff: noqa: S608  (identifiers are quoted, values are bound or quoted literals)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kbridge.push._engine import JobLimits
from kbridge.push.source import TEMP, quote_ident, quote_literal
from kbridge.push.tables import PUSH_LOG
from kbridge.warehouse import Warehouse

__all__ = ["Job", "Plan", "adopt", "job_body", "plan", "record_job"]

_PLAN = "_kbridge_push_plan"


@dataclass(frozen=True, slots=True)
class Job:
    """One job's rows: its number in the plan and their ``rowid`` range in the source."""

    number: int
    first: int
    last: int
    rows: int
    #: rows of the whole plan whose identity the state already holds (when there are
    #: any, a job deletes its rows' old lines before appending the new ones)
    known: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """What the push will do: the jobs, the rows left unchanged, the rows refused unsent."""

    payload: str
    jobs: list[Job]
    unchanged: int
    refused: list[tuple[str, str, str]]
    #: an identity appears twice among the rows sent: state writes must upsert
    repeats: bool


def _struct(members: Sequence[tuple[str, str]]) -> str:
    """SQL of a struct from (key, SQL of its value) pairs, keys in the order given."""
    if not members:
        return "MAP {}"
    return "{" + ", ".join(f"{quote_literal(k)}: {v}" for k, v in members) + "}"


def _payload_sql(attrs: Sequence[str], props: Sequence[str], id_column: str) -> tuple[str, str]:
    """The SQL of (identity, payload) over the source's columns.

    ``to_json`` of one struct literal writes the same text as the values' JSON spliced
    between their keys (as this path did before, so the hashes kept in ``push_state``
    stay valid) at about two thirds of the cost."""
    ident = f"trim(CAST({quote_ident(id_column)} AS VARCHAR))"
    # a NULL clears the property, as the row-by-row path sends it
    members = [(c, quote_ident(c)) for c in attrs]
    if props:
        members.append(("properties", _struct([(c, quote_ident(c)) for c in props])))
    head: list[tuple[str, str]] = [("type", "'profile'")]
    if id_column == "id":
        head.append(("id", ident))
    else:
        members.append((id_column, ident))
    payload = f"CAST(to_json({_struct([*head, ('attributes', _struct(members))])}) AS VARCHAR)"
    return ident, payload


def plan(
    warehouse: Warehouse,
    *,
    account_id: str,
    destination: str,
    attrs: Sequence[str],
    props: Sequence[str],
    id_column: str,
    limits: JobLimits,
    envelope: int,
    full: bool,
) -> Plan:
    """Hash every row, compare with the state and assign the changed rows to jobs.

    The state is ``push_log``'s lines and ``push_state``'s rows of the destination; a row
    in ``push_state`` (a warehouse from before the log, or a row-by-row push since) is the
    newer of the two (see :func:`adopt`)."""
    ident, payload = _payload_sql(attrs, props, id_column)
    warehouse.query(
        f"""
CREATE OR REPLACE TEMP TABLE {_PLAN} AS
WITH h AS (
  SELECT rowid AS rid, {ident} AS identity, {payload} AS payload FROM {TEMP}
), s AS (
  SELECT rid, identity, CAST(hash(payload) >> 1 AS BIGINT) AS hash,
         strlen(payload) AS size
  FROM h
), c AS (
  SELECT s.*, p.identity IS NOT NULL AS known, CASE
      WHEN s.identity IS NULL OR s.identity = '' THEN 'empty'
      WHEN s.size > ? THEN 'big'
      WHEN NOT ? AND p.hash = s.hash THEN 'same'
      ELSE 'send' END AS status
  FROM s LEFT JOIN (
    SELECT identity, hash FROM push_state WHERE account_id = ? AND destination = ?
    UNION ALL
    SELECT identity, hash FROM {PUSH_LOG} l WHERE account_id = ? AND destination = ?
      AND NOT EXISTS (SELECT 1 FROM push_state o WHERE o.account_id = l.account_id
                      AND o.destination = l.destination AND o.identity = l.identity)
  ) p ON p.identity = s.identity
)
SELECT rid, identity, hash, size, status, known FROM c
""",
        [limits.max_row_bytes, full, account_id, destination, account_id, destination],
    )
    # a job is the changed rows of one rowid range: only the ranges' first rows are found
    # (numbering every row and joining the numbers back held the whole plan in memory)
    largest, last, sent, known = warehouse.query(
        f"SELECT max(size), max(rid), count(*), count_if(known) FROM {_PLAN} WHERE status = 'send'"
    )[0]
    starts: list[tuple[int, int]] = []  # (first rowid, rows)
    if largest is not None and envelope + limits.max_rows * (int(largest) + 1) > limits.max_bytes:
        starts = _pack_by_bytes(warehouse, limits, envelope)
    elif largest is not None:
        firsts = [
            int(r[0])
            for r in warehouse.query(
                f"SELECT rid FROM (SELECT rid, row_number() OVER (ORDER BY rid) AS k "
                f"FROM {_PLAN} WHERE status = 'send') WHERE (k - 1) % ? = 0 ORDER BY rid",
                [limits.max_rows],
            )
        ]
        starts = [(f, min(limits.max_rows, int(sent) - k * limits.max_rows))
                  for k, f in enumerate(firsts)]  # fmt: skip
    jobs = [
        Job(
            k + 1,
            first,
            starts[k + 1][0] - 1 if k + 1 < len(starts) else int(last),
            rows,
            int(known),
        )
        for k, (first, rows) in enumerate(starts)
    ]
    unchanged = int(warehouse.query(f"SELECT count(*) FROM {_PLAN} WHERE status = 'same'")[0][0])
    refused = [
        (
            ("", id_column, f"no {id_column}")
            if status == "empty"
            else (str(identity), "profile", f"payload of {size} bytes exceeds 100 KB")
        )
        for identity, size, status in warehouse.query(
            f"SELECT identity, size, status FROM {_PLAN} WHERE status IN ('empty', 'big') "
            "ORDER BY rid"
        )
    ]
    repeats = bool(
        warehouse.query(
            f"SELECT count(*) <> count(DISTINCT identity) FROM {_PLAN} WHERE status = 'send'"
        )[0][0]
    )
    return Plan(payload, jobs, unchanged, refused, repeats)


def _pack_by_bytes(warehouse: Warehouse, limits: JobLimits, envelope: int) -> list[tuple[int, int]]:
    """Each job's first row and its rows, by count and bytes, exactly as
    :class:`~kbridge.push._engine.Packer` packs them.

    Only when the byte limit can bind (large rows): then the sizes are read into Python."""
    starts: list[tuple[int, int]] = []
    count = size = 0
    for rid, row_size in warehouse.query(
        f"SELECT rid, size FROM {_PLAN} WHERE status = 'send' ORDER BY rid"
    ):
        if count and (
            count >= limits.max_rows or envelope + size + int(row_size) + 1 > limits.max_bytes
        ):
            starts[-1] = (starts[-1][0], count)
            count = size = 0
        if not count:
            starts.append((int(rid), 0))
        count, size = count + 1, size + int(row_size) + 1
    if starts:
        starts[-1] = (starts[-1][0], count)
    return starts


def job_body(warehouse: Warehouse, the_plan: Plan, job: Job) -> bytes:
    """The JSON array of one job's profiles, built by DuckDB."""
    # the payload is built again rather than kept: a million payloads held in a temp
    # table would cost more memory than their second building costs time
    # the rows' order matters only to an identity named twice (the later row wins): an
    # ordered aggregate sorts, which costs a third of the body
    order = " ORDER BY t.rowid" if the_plan.repeats else ""
    if job.rows == job.last - job.first + 1:
        # every row of the range is in the job (a first push): no need to ask the plan
        rows = warehouse.query(
            f"SELECT '[' || string_agg({the_plan.payload}, ','{order}) || ']' "
            f"FROM {TEMP} t WHERE t.rowid BETWEEN ? AND ?",
            [job.first, job.last],
        )
    else:
        rows = warehouse.query(
            f"SELECT '[' || string_agg({the_plan.payload}, ','{order}) || ']' "
            f"FROM {TEMP} t JOIN {_PLAN} p ON p.rid = t.rowid "
            "WHERE t.rowid BETWEEN ? AND ? AND p.rid BETWEEN ? AND ? AND p.status = 'send'",
            [job.first, job.last, job.first, job.last],
        )
    return str(rows[0][0]).encode()


def record_job(
    warehouse: Warehouse,
    *,
    account_id: str,
    destination: str,
    job_id: str,
    kind: str,
    job: Job,
    now: str,
    repeats: bool,
) -> None:
    """The job and its rows' hashes in one transaction (see ``Ledger.record_job``).

    The rows are appended to ``push_log``; the lines of those already there (and, when
    the source names an identity twice, of those an earlier job of this push wrote) are
    deleted first, so that the log keeps one line per identity without a key index."""
    warehouse.query("BEGIN TRANSACTION")
    try:
        warehouse.query(
            # a job id Klaviyo just gave is new: a plain insert, not the costlier upsert
            "INSERT INTO push_jobs (account_id, job_id, destination, kind, "
            "row_count, status, failed, submitted_at, finished_at) "
            "VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, NULL)",
            [account_id, job_id, destination, kind, job.rows, now],
        )
        if job.known or repeats:
            warehouse.query(
                f"DELETE FROM {PUSH_LOG} WHERE account_id = ? AND destination = ? "
                f"AND identity IN (SELECT identity FROM {_PLAN} "
                "WHERE rid BETWEEN ? AND ? AND status = 'send'"
                + ("" if repeats else " AND known")
                + ")",
                [account_id, destination, job.first, job.last],
            )
        warehouse.query(
            f"INSERT INTO {PUSH_LOG} "
            "(account_id, destination, identity, hash, job_id, pushed_at) "
            f"SELECT ?, ?, identity, hash, ?, CAST(? AS TIMESTAMPTZ) FROM {_PLAN} "
            "WHERE rid BETWEEN ? AND ? AND status = 'send'"
            # a source may name one identity twice: its last row wins, as row by row
            + (
                " QUALIFY row_number() OVER (PARTITION BY identity ORDER BY rid DESC) = 1"
                if repeats
                else ""
            ),
            [account_id, destination, job_id, now, job.first, job.last],
        )
        warehouse.query("COMMIT")
    except BaseException:
        warehouse.query("ROLLBACK")
        raise


def adopt(warehouse: Warehouse, *, account_id: str, destination: str) -> None:
    """Move the destination's rows from ``push_state`` into ``push_log``.

    ``push_state`` holds them when the warehouse was written before the log existed, or
    by a row-by-row push (another source, PostgreSQL's path) since the last DuckDB one:
    either way they are newer than any line of the log for the same identity."""
    found = warehouse.query(
        "SELECT count(*) FROM push_state WHERE account_id = ? AND destination = ?",
        [account_id, destination],
    )
    if not int(found[0][0]):
        return
    where = "account_id = ? AND destination = ?"
    warehouse.query("BEGIN TRANSACTION")
    try:
        warehouse.query(
            f"DELETE FROM {PUSH_LOG} WHERE {where} AND identity IN "
            f"(SELECT identity FROM push_state WHERE {where})",
            [account_id, destination, account_id, destination],
        )
        warehouse.query(
            f"INSERT INTO {PUSH_LOG} SELECT account_id, destination, identity, hash, job_id, "
            f"pushed_at FROM push_state WHERE {where}",
            [account_id, destination],
        )
        warehouse.query(f"DELETE FROM push_state WHERE {where}", [account_id, destination])
        warehouse.query("COMMIT")
    except BaseException:
        warehouse.query("ROLLBACK")
        raise


#: DuckDB's memory while it pushes from a database file: the rest of what it would cache
#: (the source, the state, the plan) it can read back or spill to its temp directory
PUSH_MEMORY = 150 * 1024 * 1024
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


@dataclass(frozen=True, slots=True)
class Settings:
    """DuckDB's settings before a push changed them (see :func:`settle`)."""

    threads: str
    memory_limit: str | None


def settle(warehouse: Warehouse) -> Settings:
    """Run DuckDB on one thread, and (from a database file) within :data:`PUSH_MEMORY`.

    A push waits on Klaviyo's pace, not on DuckDB: each job's share takes tens of
    milliseconds on one thread, and more threads only add to the CPU spent on it (about
    half again for the job bodies, on two cores). Left to itself DuckDB keeps every block
    it read or wrote (the source, the state, the plan): a million profiles took the client
    past 450 MB. An in-memory database is left its limit: it has no file to read back from."""
    threads, limit, path = warehouse.query(
        "SELECT current_setting('threads'), current_setting('memory_limit'), "
        "(SELECT path FROM duckdb_databases() WHERE database_name = current_database())"
    )[0]
    warehouse.query("SET threads = 1")
    lowered = None
    if path and _bytes(str(limit)) > PUSH_MEMORY:
        warehouse.query(f"SET memory_limit = '{PUSH_MEMORY}B'")
        lowered = str(limit)
    return Settings(str(threads), lowered)


def restore(warehouse: Warehouse, before: Settings) -> None:
    """Give DuckDB back the settings :func:`settle` found."""
    warehouse.query(f"SET threads = {int(before.threads)}")
    if before.memory_limit is not None:
        warehouse.query(f"SET memory_limit = {quote_literal(before.memory_limit)}")


def _bytes(setting: str) -> float:
    """``'18.8 GiB'`` (DuckDB's way of showing a size) in bytes; unknown: infinite."""
    number, _, unit = setting.strip().partition(" ")
    try:
        return float(number) * _UNITS[unit or "B"]
    except (KeyError, ValueError):
        return float("inf")


def drop(warehouse: Warehouse) -> None:
    warehouse.query(f"DROP TABLE IF EXISTS {_PLAN}")

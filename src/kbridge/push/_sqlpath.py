"""A profile push whose rows never pass through Python one by one.

When the rows are a :class:`~kbridge.push.source.Source` in the same DuckDB as the
push state, DuckDB hashes each row's columns, compares the hashes with the state
(``push_log``, and ``push_state`` rows not yet moved there), assigns the rows to jobs
(≤ ``max_rows`` each and under the byte limit; a job is the changed rows of one rowid
range), builds each job's body and, once Klaviyo accepts the job, appends its rows to
``push_log``. Python sees one string per job.

A row's hash is DuckDB's ``hash()`` of the values its payload is made of and of the
payload's layout (63 bits): the payload itself (``to_json`` of one struct) is built
once, for the job's body, and only for the rows sent. Lines adopted from before
2026-12-07 (``push_log_adopted``) hold the hash of the payload text instead; a row with
such a line is compared that way, so an upgrade resends nothing. The row-by-row
path hashes with BLAKE2b: the same destination pushed both ways is sent once more on
the first switch, then is unchanged again; so would it be after a DuckDB upgrade that
changed ``hash()``.

A row's payload size is needed only where a limit could bind: from each column's
longest value (and its type) the push bounds every payload's size; only when that bound
could pass 100 KB a row, or 5 MB a job, are the payloads built to be measured.
"""

# ruff: noqa: S608  (identifiers are quoted, values are bound or quoted literals)

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kbridge.push._engine import JobLimits
from kbridge.push.source import TEMP, quote_ident, quote_literal
from kbridge.push.tables import (
    BATCHES,
    JOB_BATCH,
    PUSH_LOG,
    SCHEME_COLUMNS,
    SCHEME_PAYLOAD,
    adopt_lines,
    of_destination,
)
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

    #: SQL of one row's payload as a struct (``to_json`` of it is the row's JSON)
    payload: str
    jobs: list[Job]
    unchanged: int
    refused: list[tuple[str, str, str]]
    #: an identity appears twice among the rows sent: state writes must upsert
    repeats: bool
    #: every row is sent (nothing to compare with, or ``--full``): the plan holds only
    #: each row's key and hash
    fresh: bool = False


def _struct(members: Sequence[tuple[str, str]]) -> str:
    """SQL of a struct from (key, SQL of its value) pairs, keys in the order given."""
    if not members:
        return "MAP {}"
    return "{" + ", ".join(f"{quote_literal(k)}: {v}" for k, v in members) + "}"


def _identity_sql(id_column: str) -> str:
    return f"trim(CAST({quote_ident(id_column)} AS VARCHAR))"


def _bare_identity(
    warehouse: Warehouse, id_column: str, types: Mapping[str, str] | None
) -> str | None:
    """The identity's SQL without ``trim`` where trimming changes no row (None: keep it).

    ``trim`` copies every value, a fifth of a microsecond a row each time the identity
    is read (the plan reads it twice, each job's body once). It strips spaces, ASCII's
    and Unicode's, from either end: a value whose first and last characters are
    printable ASCII other than a space is its own trim."""
    kind = (types or {}).get(id_column, "")
    column = quote_ident(id_column)
    if kind in _FIXED_WIDTH or _DECIMAL.match(kind):
        return f"CAST({column} AS VARCHAR)"  # a number's text has no space to trim
    if kind != "VARCHAR":
        return None
    untrimmed = warehouse.query(
        f"SELECT count_if(NOT (ascii({column}) BETWEEN 33 AND 126 "
        f"AND ascii(right({column}, 1)) BETWEEN 33 AND 126)) FROM {TEMP} "
        f"WHERE {column} <> ''"
    )[0][0]
    return None if int(untrimmed) else column


def _payload_struct(
    attrs: Sequence[str],
    props: Sequence[str],
    id_column: str,
    value: str = "{}",
    ident: str | None = None,
) -> str:
    """SQL of one row's payload as a struct; ``value`` formats each value's SQL from its
    column's (``"{}"``: the column itself); ``ident``: the identity's SQL if not
    :func:`_identity_sql`'s."""
    ident = value.format(ident or _identity_sql(id_column))
    # a NULL clears the property, as the row-by-row path sends it
    members = [(c, value.format(quote_ident(c))) for c in attrs]
    if props:
        members.append(("properties", _struct([(c, value.format(quote_ident(c))) for c in props])))
    head: list[tuple[str, str]] = [("type", "'profile'")]
    if id_column == "id":
        head.append(("id", ident))
    else:
        members.append((id_column, ident))
    return _struct([*head, ("attributes", _struct(members))])


def _payload_sql(
    attrs: Sequence[str], props: Sequence[str], id_column: str, ident: str | None = None
) -> tuple[str, str]:
    """The SQL of (identity, payload text) over the source's columns.

    ``to_json`` of one struct literal writes the same text as the values' JSON spliced
    between their keys (as this path did before, so the hashes kept in scheme 1 stay
    valid) at about two thirds of the cost."""
    ident = ident or _identity_sql(id_column)
    struct = _payload_struct(attrs, props, id_column, ident=ident)
    return ident, f"CAST(to_json({struct}) AS VARCHAR)"


def _hash_sql(
    attrs: Sequence[str], props: Sequence[str], id_column: str, ident: str | None = None
) -> str:
    """SQL of a row's hash (scheme 2): its payload's values and the payload's layout.

    The layout (which columns, as attributes or properties, and the identity) is a
    literal hashed with the values, so the same values sent in another shape differ."""
    layout = "|".join(["v2", id_column, ",".join(attrs), ",".join(props)])
    ident = ident or _identity_sql(id_column)
    values = ", ".join([ident, *(quote_ident(c) for c in [*attrs, *props])])
    return f"CAST(hash({quote_literal(layout)}, {values}) >> 1 AS BIGINT)"


#: the longest JSON a value of these types is written as (``to_json``), quotes included
_FIXED_WIDTH = {
    "BOOLEAN": 5,
    "TINYINT": 4,
    "UTINYINT": 3,
    "SMALLINT": 6,
    "USMALLINT": 5,
    "INTEGER": 11,
    "UINTEGER": 10,
    "BIGINT": 20,
    "UBIGINT": 20,
    "HUGEINT": 40,
    "UHUGEINT": 39,
    "FLOAT": 26,
    "DOUBLE": 26,
}
#: types written as a JSON string of their text (``CAST(… AS VARCHAR)``)
_TEXT = re.compile(
    r"^(VARCHAR|ENUM\(.*\)|DATE|TIME|TIMESTAMP.*|TIME WITH TIME ZONE|INTERVAL|UUID)$"
)
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*\d+\)$")
_ESCAPED = '[\\x00-\\x1f"\\\\]'  # what JSON escapes: up to 6 bytes for one


def _size_bound(
    warehouse: Warehouse,
    attrs: Sequence[str],
    props: Sequence[str],
    id_column: str,
    types: Mapping[str, str],
    escapes: bool,
) -> int | None:
    """An upper bound of every row's payload size in bytes, or None (a nested column,
    JSON, a blob: its size is known only by writing it).

    ``escapes``: look for characters JSON escapes (a second scan) instead of assuming
    any character may take 6 bytes."""
    nulls = _payload_struct(attrs, props, id_column, value="NULL", ident="NULL")
    leaves = len(attrs) + len(props) + 1
    # the layout's own bytes: the payload of all-NULL values, less the NULLs
    skeleton = int(warehouse.query(f"SELECT strlen(CAST(to_json({nulls}) AS VARCHAR))")[0][0])
    bound = skeleton - 4 * leaves
    scans: list[str] = []
    for name, sql, kind in [
        *((c, quote_ident(c), types.get(c, "")) for c in [*attrs, *props]),
        # the column's text, at least as long as its trimmed text
        (id_column, f"CAST({quote_ident(id_column)} AS VARCHAR)", "VARCHAR"),
    ]:
        del name
        if kind in _FIXED_WIDTH:
            bound += _FIXED_WIDTH[kind]
        elif found := _DECIMAL.match(kind):
            bound += int(found.group(1)) + 3
        elif _TEXT.match(kind):
            text = sql if kind == "VARCHAR" else f"CAST({sql} AS VARCHAR)"
            scans.append(f"coalesce(max(strlen({text})), 0)")
            if escapes:
                scans.append(f"count_if(regexp_matches({text}, '{_ESCAPED}'))")
        else:
            return None
    if scans:
        got = warehouse.query(f"SELECT {', '.join(scans)} FROM {TEMP}")[0]
        step = 2 if escapes else 1
        for k in range(0, len(got), step):
            longest = int(got[k])
            escaped = bool(got[k + 1]) if escapes else True
            bound += max(4, (6 * longest if escaped else longest) + 2)
    return bound


def _fits(bound: int | None, limits: JobLimits, envelope: int) -> bool:
    """No row can be refused for its size, and ``max_rows`` rows always fit in a job."""
    return (
        bound is not None
        and bound <= limits.max_row_bytes
        and envelope + limits.max_rows * (bound + 1) + 1 <= limits.max_bytes
    )


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
    types: Mapping[str, str] | None = None,
) -> Plan:
    """Hash every row, compare with the state and assign the changed rows to jobs.

    The state is ``push_log``'s lines and ``push_state``'s rows of the destination; a row
    in ``push_state`` (a warehouse from before the log, or a row-by-row push since) is the
    newer of the two (see :func:`adopt`). ``types``: the source's column types, to bound
    the payloads' sizes without writing them (none given: every payload is measured)."""
    ident, payload = _payload_sql(
        attrs, props, id_column, _bare_identity(warehouse, id_column, types)
    )
    row_hash = _hash_sql(attrs, props, id_column, ident)
    measured = True
    if types is not None:
        args = (warehouse, attrs, props, id_column, types)
        measured = not (
            _fits(_size_bound(*args, escapes=False), limits, envelope)
            or _fits(_size_bound(*args, escapes=True), limits, envelope)
        )
    if not measured:
        quick = _fresh_plan(warehouse, account_id, destination, ident, row_hash, limits, full=full)
        if quick is not None:
            jobs, repeats = quick
            struct = _payload_struct(attrs, props, id_column, ident=ident)
            return Plan(struct, jobs, 0, [], repeats, fresh=True)
    size = f"strlen({payload})" if measured else "0"
    # the state's columns are named apart from any source column the payload reads
    warehouse.query(
        f"""
CREATE OR REPLACE TEMP TABLE {_PLAN} AS
WITH p AS (
  SELECT hash(identity) AS _kbridge_key, hash AS _kbridge_hash,
         {SCHEME_PAYLOAD} AS _kbridge_scheme
  FROM push_state WHERE account_id = ? AND destination = ?
  UNION ALL
  SELECT l.key, l.hash, b.scheme FROM {PUSH_LOG} l JOIN ({BATCHES}) b USING (batch)
  WHERE l.key NOT IN (SELECT hash(identity) FROM push_state
                      WHERE account_id = ? AND destination = ?)
), s AS (
  SELECT t.rowid AS rid, {ident} AS identity, {row_hash} AS hash, {size} AS size,
         p._kbridge_key IS NOT NULL AS known, p._kbridge_hash AS old,
         p._kbridge_scheme AS scheme,
         -- a line of the payload scheme: only its rows have their payload written here
         CASE WHEN p._kbridge_scheme = {SCHEME_PAYLOAD}
              THEN p._kbridge_hash = CAST(hash({payload}) >> 1 AS BIGINT) END AS same_text
  FROM {TEMP} t LEFT JOIN p ON p._kbridge_key = hash({ident})
)
SELECT rid, hash(identity) AS key, hash, size, known, CASE
    WHEN identity IS NULL OR identity = '' THEN 'empty'
    WHEN size > ? THEN 'big'
    WHEN ? OR NOT known THEN 'send'
    WHEN scheme = {SCHEME_COLUMNS} AND old = hash THEN 'same'
    WHEN same_text THEN 'same'
    ELSE 'send' END AS status
FROM s
""",
        [
            account_id,
            destination,
            *of_destination(account_id, destination),
            account_id,
            destination,
            limits.max_row_bytes,
            full,
        ],
    )
    # a job is the changed rows of one rowid range: only the ranges' first rows are found
    # (numbering every row and joining the numbers back held the whole plan in memory)
    last, sent, known = warehouse.query(
        f"SELECT max(rid), count(*), count_if(known) FROM {_PLAN} WHERE status = 'send'"
    )[0]
    starts: list[tuple[int, int]] = []  # (first rowid, rows)
    if measured and sent:
        starts = _pack_by_bytes(warehouse, limits, envelope)
    elif sent:
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
            f"SELECT t.identity, p.size, p.status FROM {_PLAN} p JOIN "
            f"(SELECT rowid AS rid, {ident} AS identity FROM {TEMP}) t ON t.rid = p.rid "
            "WHERE p.status IN ('empty', 'big') ORDER BY p.rid"
        )
    ]
    repeats = bool(
        warehouse.query(
            f"SELECT count(*) <> count(DISTINCT key) FROM {_PLAN} WHERE status = 'send'"
        )[0][0]
    )
    struct = _payload_struct(attrs, props, id_column, ident=ident)
    return Plan(struct, jobs, unchanged, refused, repeats)


def _fresh_plan(
    warehouse: Warehouse,
    account_id: str,
    destination: str,
    ident: str,
    row_hash: str,
    limits: JobLimits,
    *,
    full: bool,
) -> tuple[list[Job], bool] | None:
    """The jobs and whether an identity repeats, when every row is sent: the destination
    has no state yet (a first push) or ``full``, no identity is empty and no size can
    bind. The plan holds each row's key and hash only; None when a row needs the whole
    plan (which replaces it)."""
    known = warehouse.query(
        "SELECT (SELECT count(*) FROM push_state WHERE account_id = ? AND destination = ?) "
        f"+ (SELECT count(*) FROM (SELECT 1 FROM {PUSH_LOG} "
        f"WHERE batch IN (SELECT batch FROM ({BATCHES})) LIMIT 1))",
        [account_id, destination, *of_destination(account_id, destination)],
    )[0][0]
    if int(known) and not full:
        return None
    # in the source's order (DuckDB keeps insertion order unless told not to): a line's
    # rowid is its row's
    if not warehouse.query("SELECT current_setting('preserve_insertion_order')")[0][0]:
        return None
    warehouse.query(
        f"CREATE OR REPLACE TEMP TABLE {_PLAN} AS "
        f"SELECT hash({ident}) AS key, {row_hash} AS hash FROM {TEMP}"
    )
    # an empty identity's key is the hash of '' or of NULL (a real one's, 2^-64)
    rows, empty, keys, last = warehouse.query(
        "SELECT count(*), count_if(key IN (hash(''), hash(CAST(NULL AS VARCHAR)))), "
        f"count(DISTINCT key), (SELECT max(rowid) FROM {TEMP}) FROM {_PLAN}"
    )[0]
    rows = int(rows)
    if int(empty) or (rows and int(last) != rows - 1):
        return None
    step = limits.max_rows
    jobs = [
        Job(k + 1, first, min(first + step, rows) - 1, min(step, rows - first), int(known))
        for k, first in enumerate(range(0, rows, step))
    ]
    return jobs, int(keys) != rows


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
    # one to_json of the list costs three quarters of a to_json per row joined by string_agg
    body = f"CAST(to_json(list({the_plan.payload}{order})) AS VARCHAR)"
    if job.rows == job.last - job.first + 1:
        # every row of the range is in the job (a first push): no need to ask the plan
        rows = warehouse.query(
            f"SELECT {body} FROM {TEMP} t WHERE t.rowid BETWEEN ? AND ?", [job.first, job.last]
        )
    else:
        rows = warehouse.query(
            f"SELECT {body} FROM {TEMP} t WHERE t.rowid BETWEEN ? AND ? AND t.rowid IN "
            f"(SELECT rid FROM {_PLAN} WHERE rid BETWEEN ? AND ? AND status = 'send')",
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
    fresh: bool = False,
) -> None:
    """The job and its rows' hashes in one transaction (see ``Ledger.record_job``).

    The rows are appended to ``push_log`` under a new batch; the lines of those already
    there (and, when the source names an identity twice, of those an earlier job of this
    push wrote) are deleted first, so that the log keeps one line per identity without a
    key index."""
    warehouse.query("BEGIN TRANSACTION")
    try:
        warehouse.query(
            # a job id Klaviyo just gave is new: a plain insert, not the costlier upsert
            "INSERT INTO push_jobs (account_id, job_id, destination, kind, "
            "row_count, status, failed, submitted_at, finished_at) "
            "VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, NULL)",
            [account_id, job_id, destination, kind, job.rows, now],
        )
        # a fresh plan sends every row it holds
        rows = (
            f"(SELECT rowid AS rid, key, hash, 'send' AS status, true AS known FROM {_PLAN})"
            if fresh
            else _PLAN
        )
        if job.known or repeats:
            warehouse.query(
                f"DELETE FROM {PUSH_LOG} WHERE batch IN (SELECT batch FROM ({BATCHES})) "
                f"AND key IN (SELECT key FROM {rows} "
                "WHERE rid BETWEEN ? AND ? AND status = 'send'"
                + ("" if repeats else " AND known")
                + ")",
                [*of_destination(account_id, destination), job.first, job.last],
            )
        # the job's batch is its push_jobs row's: no row of its own to write
        warehouse.query(
            f"INSERT INTO {PUSH_LOG} (batch, key, hash) "
            f"SELECT {JOB_BATCH.format('?', '?')}, key, hash FROM {rows} "
            "WHERE rid BETWEEN ? AND ? AND status = 'send'"
            # a source may name one identity twice: its last row wins, as row by row
            + (
                " QUALIFY row_number() OVER (PARTITION BY key ORDER BY rid DESC) = 1"
                if repeats
                else ""
            ),
            [account_id, job_id, job.first, job.last],
        )
        warehouse.query("COMMIT")
    except BaseException:
        warehouse.query("ROLLBACK")
        raise


def adopt(warehouse: Warehouse, *, account_id: str, destination: str) -> None:
    """Move the destination's rows from ``push_state`` into ``push_log``.

    ``push_state`` holds them when the warehouse was written before the log existed, or
    by a row-by-row push (another source, PostgreSQL's path) since the last DuckDB one:
    either way they are newer than any line of the log for the same identity. Their
    hashes are of the payload's text (scheme 1): a DuckDB push wrote them so before
    2026-12-07, and a row-by-row push's BLAKE2b never matches (its rows are sent once)."""
    where = "account_id = ? AND destination = ?"
    found = warehouse.query(
        f"SELECT count(*) FROM push_state WHERE {where}", [account_id, destination]
    )
    if not int(found[0][0]):
        return
    warehouse.query("BEGIN TRANSACTION")
    try:
        warehouse.query(
            f"DELETE FROM {PUSH_LOG} WHERE batch IN (SELECT batch FROM ({BATCHES})) AND key IN "
            f"(SELECT hash(identity) FROM push_state WHERE {where})",
            [*of_destination(account_id, destination), account_id, destination],
        )
        adopt_lines(
            warehouse,
            f"SELECT account_id, destination, identity, hash, job_id, pushed_at "
            f"FROM push_state WHERE {where}",
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

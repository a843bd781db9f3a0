"""``kbridge privacy access|delete|log``: data-subject requests, confirmed and audited.

Thin by design: subjects come from arguments and ``--from-file``, credentials
and ``--output`` are the actions' :func:`~kbridge.cli.actions.common_options`,
the audit log is the connection store (``KBRIDGE_HOME``), and the work is
:mod:`kbridge.privacy`'s. A deletion shows every profile each subject matches
first; without ``--yes`` it asks on a terminal and refuses anything but an
exact single match. A subject matching several profiles is refused even with
``--yes`` (every script passes it) unless ``--allow-ambiguous`` is given too.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kbridge.api import AsyncClient
from kbridge.cli.actions import common_options
from kbridge.cli.credentials import resolve_credentials
from kbridge.cli.output import OutputFormat, describe_error, err_console, fail, resolve_format
from kbridge.core import KbridgeError, SystemClock, dumps_str
from kbridge.privacy import (
    CSV_COLUMNS,
    AuditLog,
    ConfirmationRequired,
    DeletionBatch,
    DeletionResult,
    PollPolicy,
    Subject,
    SubjectError,
    SubjectReport,
    access_reports,
    execute_deletions,
    identifier_hash,
    parse_subject,
    plan_deletions,
    read_log,
    read_subjects,
    report_rows,
)
from kbridge.warehouse import Warehouse, open_warehouse

__all__ = ["DEFAULT_WAREHOUSE", "access", "app", "delete", "log"]

#: where ``kbridge sync`` writes by default; purged when it exists and no ``--to`` is given
DEFAULT_WAREHOUSE = "./kbridge.duckdb"

app = typer.Typer(
    help="Data-subject requests: access reports, confirmed deletions, and their audit log.",
    no_args_is_help=True,
)

SubjectsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="email addresses (or +E.164 phone numbers)", metavar="EMAIL...", show_default=False
    ),
]
FromFileOption = Annotated[
    Path | None,
    typer.Option(
        "--from-file", help="a CSV of subjects (columns email and/or phone_number, or one a line)"
    ),
]


def _with_common(fn: Callable[..., None]) -> Callable[..., None]:
    """Give ``fn`` the actions' credential and output options in place of its ``**common``."""
    own = [
        p
        for p in inspect.signature(fn, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    params = own + common_options(listing=False)
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params}
    return fn


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _subjects(given: Sequence[str] | None, from_file: Path | None) -> list[Subject]:
    subjects = [parse_subject(s) for s in given or ()]
    if from_file is not None:
        subjects += read_subjects(from_file)
    if not subjects:
        raise SubjectError("no subjects: give email addresses or --from-file subjects.csv")
    return list(dict.fromkeys(subjects))


def _audit_log() -> AuditLog:
    """The connection store the environment points at, which keeps the audit log."""
    from kbridge.cli.connections import store_from_env

    return store_from_env(os.environ)


def _client(common: dict[str, Any]) -> AsyncClient:
    creds = resolve_credentials(
        common.get("api_key"), common.get("base_url"), common.get("connection"), os.environ
    )
    return AsyncClient(**creds.client_kwargs())


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[object], None]]:
    """A progress bar on stderr when it is a terminal; a no-op otherwise."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda _result: bar.advance(task)


def _guarded(common: dict[str, Any], action: str) -> Callable[[Callable[[], None]], None]:
    """Run ``body``; foreseeable problems become one line and exit 1."""

    def run(body: Callable[[], None]) -> None:
        try:
            body()
        except KbridgeError as exc:
            fail(describe_error(exc, action=action, debug=bool(common.get("debug"))))

    return run


# -- access ---------------------------------------------------------------------------------


@_with_common
def access(
    subjects: SubjectsArg = None,
    from_file: FromFileOption = None,
    events: Annotated[bool, typer.Option("--events", help="include each profile's events")] = False,
    **common: Any,
) -> None:
    """Report everything the account holds about each subject.

    Every matching profile (the email in any case, the phone number), its
    attributes, consent, lists and segments, and with --events its event
    history. --output table|json prints the reports; --output report.json or
    report.csv writes them to that file and prints a summary.
    """

    def body() -> None:
        chosen = _subjects(subjects, from_file)
        target, fmt = _report_target(common.get("output"))
        audit = _audit_log()

        async def go() -> list[SubjectReport]:
            async with _client(common) as client:
                with _progress("access", len(chosen)) as advance:
                    return await access_reports(
                        client, chosen, audit=audit, events=events, on_done=advance
                    )

        reports = asyncio.run(go())
        if target is not None:
            _write_reports(reports, target)
            err_console.print(f"wrote {len(reports)} report(s) to {target}")
        _show_reports(reports, fmt if target is None else "table", summary=target is not None)
        failed = [r for r in reports if r.status != "reported"]
        if failed:
            fail(f"{len(failed)} of {len(reports)} subject(s) could not be read")

    _guarded(common, "privacy access")(body)


def _report_target(output: str | None) -> tuple[Path | None, OutputFormat]:
    """``--output``: a format, or a ``.json``/``.csv`` file to write the reports to."""
    if output is not None and output.lower().endswith((".json", ".csv")):
        return Path(output), "table"
    return None, resolve_format(output)


def _write_reports(reports: Sequence[SubjectReport], path: Path) -> None:
    try:
        if path.suffix.lower() == ".csv":
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                writer.writerows(report_rows(reports))
        else:
            path.write_text(dumps_str([r.to_dict() for r in reports]) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SubjectError(f"cannot write {path}: {exc.strerror or exc}") from None


def _consent_line(consent: Any) -> str:
    if not isinstance(consent, dict):
        return "unknown"
    parts = []
    for channel in ("email", "sms"):
        value = ((consent.get(channel) or {}).get("marketing") or {}).get("consent")
        parts.append(f"{channel} {value or '-'}")
    return ", ".join(parts)


def _show_reports(reports: Sequence[SubjectReport], fmt: OutputFormat, *, summary: bool) -> None:
    if fmt != "table":
        sys.stdout.write(dumps_str([r.to_dict() for r in reports]) + "\n")
        return
    console = Console(highlight=False, soft_wrap=True)
    if summary:
        table = Table("subject", "status", "profiles", "lists", "segments")
        for r in reports:
            table.add_row(
                r.subject.label,
                r.status,
                str(len(r.profiles)),
                str(sum(len(p.lists) for p in r.profiles)),
                str(sum(len(p.segments) for p in r.profiles)),
            )
        console.print(table)
        return
    for r in reports:
        head = f"subject {r.subject.label}: "
        if r.error is not None:
            console.print(head + f"could not be read ({r.error})", markup=False)
            continue
        console.print(head + f"{len(r.profiles)} profile(s)", markup=False)
        for p in r.profiles:
            a = p.attributes
            name = " ".join(str(a[k]) for k in ("first_name", "last_name") if a.get(k))
            ids = ", ".join(str(a[k]) for k in ("email", "phone_number", "external_id") if a.get(k))
            console.print(f"  profile {p.id}  {ids}  {name}".rstrip(), markup=False)
            console.print(f"    consent:  {_consent_line(p.consent)}", markup=False)
            lists = ", ".join(str(m["name"] or m["id"]) for m in p.lists) or "none"
            segments = ", ".join(str(m["name"] or m["id"]) for m in p.segments) or "none"
            console.print(f"    lists:    {lists}", markup=False)
            console.print(f"    segments: {segments}", markup=False)
            if p.events is not None:
                when = (
                    f" ({p.events[0]['datetime']} … {p.events[-1]['datetime']})" if p.events else ""
                )
                console.print(f"    events:   {len(p.events)}{when}", markup=False)


# -- delete ---------------------------------------------------------------------------------


@_with_common
def delete(
    subjects: SubjectsArg = None,
    from_file: FromFileOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="no questions; also request deletion for subjects matching nobody"
        ),
    ] = False,
    allow_ambiguous: Annotated[
        bool,
        typer.Option(
            "--allow-ambiguous",
            help="also delete every profile of a subject whose identifiers match several "
            "profiles (refused otherwise, even with --yes)",
        ),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="warehouse to purge: duckdb:///path.duckdb or postgresql://… "
            f"(default: {DEFAULT_WAREHOUSE} if it exists)",
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="seconds to wait for Klaviyo to confirm each deletion"),
    ] = 600.0,
    **common: Any,
) -> None:
    """Delete each subject's profiles in Klaviyo and the warehouse, and confirm it.

    Shows every profile each subject matches first. Without --yes it asks on a
    terminal and refuses subjects that match anything but exactly one profile.
    A subject whose email and phone match different profiles (two people, or a
    typo) is refused even with --yes, unless --allow-ambiguous.
    A deletion not seen done within --wait is reported as pending; running the
    same command again resumes the unfinished batch: finished subjects are
    skipped and pending ones only confirmed. Once no subject is pending, the
    same command is a new request and deletes whatever matches then.
    """

    def body() -> None:
        chosen = _subjects(subjects, from_file)
        fmt = resolve_format(common.get("output"))
        audit = _audit_log()
        destination = _destination(to)

        async def plan() -> DeletionBatch:
            async with _client(common) as client:
                with _progress("lookup", len(chosen)) as advance:
                    return await plan_deletions(client, chosen, audit=audit, on_done=advance)

        batch = asyncio.run(plan())
        _show_plan(batch)
        if not yes:
            _confirm(batch, allow_ambiguous)
        warehouse = open_warehouse(destination) if destination is not None else None
        try:
            results = asyncio.run(
                _execute(common, batch, audit, warehouse, yes, allow_ambiguous, wait)
            )
        finally:
            if warehouse is not None:
                warehouse.close()
        _show_results(results, fmt)
        _exit_status(results)

    _guarded(common, "privacy delete")(body)


def _destination(to: str | None) -> str | None:
    if to is not None:
        return to
    return f"duckdb:///{DEFAULT_WAREHOUSE}" if Path(DEFAULT_WAREHOUSE).exists() else None


async def _execute(
    common: dict[str, Any],
    batch: DeletionBatch,
    audit: AuditLog,
    warehouse: Warehouse | None,
    yes: bool,
    allow_ambiguous: bool,
    wait: float,
) -> list[DeletionResult]:
    async with _client(common) as client:
        with _progress("delete", len(batch.plans)) as advance:
            return await execute_deletions(
                client,
                batch,
                audit=audit,
                allow_ambiguous=allow_ambiguous,
                allow_unmatched=yes,
                warehouse=warehouse,
                clock=SystemClock(),
                poll=PollPolicy(timeout=wait),
                on_done=advance,
            )


def _show_plan(batch: DeletionBatch) -> None:
    """Every profile each subject matches, on stderr (stdout is for the results)."""
    table = Table(
        "subject", "matches", "profile", "email", "phone", title=f"batch {batch.batch_id}"
    )
    for plan in batch.plans:
        if plan.finished or plan.resuming:
            state = "done" if plan.finished else "requested: confirming"
            table.add_row(plan.subject.label, state, "", "", "")
            continue
        if not plan.matches:
            table.add_row(plan.subject.label, "0", "", "", "")
        for n, m in enumerate(plan.matches):
            first = n == 0
            table.add_row(
                plan.subject.label if first else "",
                str(len(plan.matches)) if first else "",
                m.id,
                m.email or "",
                m.phone_number or "",
            )
    err_console.print(table)


def _confirm(batch: DeletionBatch, allow_ambiguous: bool) -> None:
    todo = [p for p in batch.to_run if not p.unmatched and (allow_ambiguous or not p.ambiguous)]
    if not _stdin_is_terminal():
        raise ConfirmationRequired("not on a terminal: pass --yes to confirm the deletion")
    if batch.unmatched:
        err_console.print(
            f"{len(batch.unmatched)} subject(s) match no profile: they will be refused "
            "(pass --yes to request their deletion by identifier)"
        )
    if batch.ambiguous and not allow_ambiguous:
        err_console.print(
            f"{len(batch.ambiguous)} subject(s) match more than one profile: they will be "
            "refused (pass --allow-ambiguous to delete every match)"
        )
    if not todo:
        return
    profiles = sum(len(p.matches) for p in todo)
    if not typer.confirm(
        f"Delete {profiles} profile(s) of {len(todo)} subject(s) in Klaviyo and the warehouse?",
        default=False,
        err=True,
    ):
        fail("nothing deleted", code=1)


def _show_results(results: Sequence[DeletionResult], fmt: OutputFormat) -> None:
    if fmt != "table":
        sys.stdout.write(dumps_str([r.to_dict() for r in results]) + "\n")
        return
    table = Table("subject", "outcome", "profiles", "warehouse purged", "detail")
    for r in results:
        outcome = r.outcome + (" (earlier run)" if r.skipped else "")
        purged = "" if r.purged is None else f"{r.purged} profile(s)"
        table.add_row(r.subject.label, outcome, ", ".join(r.profile_ids), purged, r.detail or "")
    Console(highlight=False, soft_wrap=True).print(table)


def _exit_status(results: Sequence[DeletionResult]) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    unfinished = {k: v for k, v in counts.items() if k in ("pending", "refused", "failed")}
    if unfinished:
        text = ", ".join(f"{v} {k}" for k, v in sorted(unfinished.items()))
        hint = "; run the same command again to confirm" if "pending" in unfinished else ""
        if any(
            r.outcome == "refused" and (r.detail or "").startswith("ambiguous") for r in results
        ):
            hint += "; subjects matching several profiles need --allow-ambiguous"
        fail(f"not all deletions are confirmed: {text}{hint}")


# -- log ------------------------------------------------------------------------------------


def log(
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            help="only entries about this email address or phone number (also where it was "
            "given beside the other)",
        ),
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="only this batch id")] = None,
    action: Annotated[str | None, typer.Option("--action", help="only access or delete")] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="table or json (default: table on a terminal)"),
    ] = None,
) -> None:
    """Show the privacy audit log (subjects appear only as keyed hashes)."""
    try:
        fmt = resolve_format(output)
        if action is not None and action not in ("access", "delete"):
            raise SubjectError(f"--action: {action!r} is not access or delete")
        audit = _audit_log()
        # an identifier's hash, found alone or beside the other identifier of a CSV row
        hashed = (
            None if subject is None else identifier_hash(audit.audit_key(), parse_subject(subject))
        )
        entries = read_log(audit, batch_id=batch, identifier=hashed, action=action)
    except KbridgeError as exc:
        fail(describe_error(exc))
    if fmt != "table":
        sys.stdout.write(dumps_str([e.to_dict() for e in entries]) + "\n")
        return
    table = Table("id", "recorded", "action", "outcome", "subject", "batch", "profiles", "detail")
    for e in entries:
        table.add_row(
            str(e.id),
            e.recorded_at.isoformat(timespec="seconds"),
            e.action,
            e.outcome,
            e.subject_hash[:12],
            e.batch_id or "",
            ", ".join(e.profile_ids),
            e.detail or "",
        )
    Console(highlight=False, soft_wrap=True).print(table)


app.command("access")(access)
app.command("delete")(delete)
app.command("log")(log)

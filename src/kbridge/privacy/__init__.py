"""Privacy workflows: data-subject access reports, deletion jobs and their audit log.

May import: api, warehouse, core, catalog.

    audit = MemoryAuditLog()                    # or a ConnectionStore (kept between runs)
    reports = await access_reports(client, [parse_subject("a@b.co")], audit=audit)
    batch = await plan_deletions(client, subjects, audit=audit)
    results = await execute_deletions(client, batch, audit=audit, warehouse=wh)
"""

from __future__ import annotations

from kbridge.privacy.access import (
    CSV_COLUMNS,
    ProfileReport,
    SubjectReport,
    access_report,
    access_reports,
    report_rows,
)
from kbridge.privacy.audit import (
    FINAL_OUTCOMES,
    AuditEntry,
    AuditLog,
    MemoryAuditLog,
    read_log,
)
from kbridge.privacy.batch import DEFAULT_CONCURRENCY, run_each
from kbridge.privacy.confirm import Confirmer, PollPolicy
from kbridge.privacy.delete import (
    DeletionBatch,
    DeletionPlan,
    DeletionResult,
    MatchedProfile,
    execute_deletions,
    plan_deletions,
)
from kbridge.privacy.errors import ConfirmationRequired, PrivacyError, SubjectError
from kbridge.privacy.lookup import find_profiles, remaining_profiles
from kbridge.privacy.subjects import (
    Subject,
    batch_id,
    identifier_hash,
    parse_subject,
    read_subjects,
    subject_hash,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_CONCURRENCY",
    "FINAL_OUTCOMES",
    "AuditEntry",
    "AuditLog",
    "ConfirmationRequired",
    "Confirmer",
    "DeletionBatch",
    "DeletionPlan",
    "DeletionResult",
    "MatchedProfile",
    "MemoryAuditLog",
    "PollPolicy",
    "PrivacyError",
    "ProfileReport",
    "Subject",
    "SubjectError",
    "SubjectReport",
    "access_report",
    "access_reports",
    "batch_id",
    "execute_deletions",
    "find_profiles",
    "identifier_hash",
    "parse_subject",
    "plan_deletions",
    "read_log",
    "read_subjects",
    "remaining_profiles",
    "report_rows",
    "run_each",
    "subject_hash",
]

"""Known facts from Klaviyo's spec must come out of the generated catalogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kbridge import catalog

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT.parent / "shared" / "klaviyo-openapi" / "stable.json"


def test_get_profiles_limits_scopes_and_page_size() -> None:
    op = catalog.get("get_profiles")
    assert (op.method, op.path) == ("GET", "/api/profiles")
    assert (op.rate_limit.burst, op.rate_limit.steady, op.rate_limit.daily) == (75, 750, None)
    assert op.scopes == ("profiles:read",)
    assert (op.default_page_size, op.max_page_size) == (20, 100)
    assert op.paginated
    assert op.revision == catalog.REVISION == "2026-07-15"


def test_get_events_xl_tier_and_max_page() -> None:
    op = catalog.get("get_events")
    assert (op.rate_limit.burst, op.rate_limit.steady) == (350, 3500)
    assert op.max_page_size == 1000
    assert op.filter_field("metric_id") is not None
    assert op.filter_field("datetime") is not None
    assert "greater-or-equal" in op.filter_field("datetime").single  # type: ignore[union-attr]
    assert op.filter_field("profile").none == ("has",)  # type: ignore[union-attr]


def test_reporting_has_a_daily_cap() -> None:
    op = catalog.get("query_campaign_values")
    assert (op.rate_limit.burst, op.rate_limit.steady, op.rate_limit.daily) == (1, 2, 225)
    assert op.rate_limit.tier == "1/s,2/m,225/d"


def test_aliases_resolve_to_the_same_operation() -> None:
    assert catalog.get("create_campaign_values_report") is catalog.get("query_campaign_values")


def test_fixed_page_size_from_description() -> None:
    assert catalog.get("get_metrics").max_page_size == 200


def test_stricter_limits_for_expensive_parameters() -> None:
    alt = {(a.param, a.value): a.limit for a in catalog.get("get_profile").alt_limits}
    # The description says include=list; the include enum spells it "lists".
    assert alt[("include", "lists")].steady == 15
    alt = {(a.param, a.value): a.limit for a in catalog.get("get_list").alt_limits}
    assert alt[("additional-fields[list]", "profile_count")].burst == 1


def test_scopes_of_a_multi_scope_operation() -> None:
    op = catalog.get("bulk_subscribe_profiles")
    assert set(op.scopes) == {"lists:write", "profiles:write", "subscriptions:write"}


def test_public_client_operations_are_marked() -> None:
    assert catalog.get("create_client_event").auth == "public"
    assert catalog.get("get_profiles").auth == "private"


def test_match_resolves_literal_before_templated_paths() -> None:
    op, params = catalog.match("POST", "/api/profile-import")
    assert op.operation_id == "create_or_update_profile"
    assert params == {}
    op, params = catalog.match("GET", "/api/profiles/01GDDKASAP8TKDDA2GRZDSVP4H/")
    assert op.operation_id == "get_profile"
    assert params == {"id": "01GDDKASAP8TKDDA2GRZDSVP4H"}


def test_unknown_operation_is_a_clear_error() -> None:
    with pytest.raises(catalog.UnknownOperationError, match="no Klaviyo operation"):
        catalog.get("get_unicorns")
    with pytest.raises(catalog.UnknownOperationError, match="GET /api/unicorns"):
        catalog.match("GET", "/api/unicorns")


def test_every_operation_has_limits_and_a_success_status() -> None:
    assert len(catalog.OPERATIONS) == 345
    for op in catalog.OPERATIONS:
        assert op.rate_limit.burst >= 1, op.key
        assert op.rate_limit.steady >= 1, op.key
        assert 200 <= op.success_status < 300, op.key
        if op.auth == "private":
            assert op.scopes, op.key


def test_committed_catalog_is_reproduced_by_its_script() -> None:
    # One policy with the contract tests: a missing spec fails, it never skips.
    assert SPEC.exists(), f"Klaviyo's spec is missing at {SPEC}: check out shared/ beside the repo"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_catalog.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_an_operation_is_one_object_whichever_way_it_is_first_asked_for() -> None:
    # Operations compare by identity and are built on first use: in a fresh
    # process, get() before OPERATIONS exists must hand out the object OPERATIONS holds.
    code = (
        "from kbridge import catalog\n"
        "op = catalog.get('create_campaign_values_report')\n"
        "assert op is catalog.get('query_campaign_values')\n"
        "assert sum(o is op for o in catalog.OPERATIONS) == 1\n"
        "assert catalog.match('GET', '/api/profiles')[0] is catalog.get('get_profiles')\n"
        "print(len(catalog.OPERATIONS), catalog.REVISION)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["345", "2026-07-15"]

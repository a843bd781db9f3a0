"""Capabilities → operations → least scopes, computed from the catalogue."""

from __future__ import annotations

import pytest

from kbridge import catalog
from kbridge.api.actions import registry
from kbridge.api.capabilities import CAPABILITIES, Workflow
from kbridge.api.errors import ErrorDetails, PermissionDeniedError
from kbridge.connections import (
    CAPABILITY_OPERATIONS,
    CAPABILITY_SUMMARIES,
    UnknownCapabilityError,
    all_capabilities,
    capabilities_needing,
    capability_operations,
    explain_permission_error,
    missing_scopes,
    parse_capabilities,
    plan_scopes,
    probe_operation,
)

pytestmark = pytest.mark.unit


def test_every_capability_names_real_catalogue_operations() -> None:
    for capability, operation_ids in CAPABILITY_OPERATIONS.items():
        for operation_id in operation_ids:
            assert catalog.get(operation_id).auth == "private", (capability, operation_id)


def test_plan_is_exactly_the_union_of_the_operations_scopes() -> None:
    plan = plan_scopes(["sync", "privacy-delete"])
    expected = {
        scope
        for cap in ("sync", "privacy-delete")
        for op_id in CAPABILITY_OPERATIONS[cap]
        for scope in catalog.get(op_id).scopes
    }
    assert set(plan.scopes) == expected
    assert list(plan.scopes) == sorted(expected)
    assert "data-privacy:write" in plan.scopes
    assert not any(s.endswith(":write") and s != "data-privacy:write" for s in plan.scopes)


def test_each_scope_says_which_capability_and_operations_need_it() -> None:
    plan = plan_scopes(["sync", "privacy-delete"])
    profiles = plan.need("profiles:read")
    assert profiles is not None
    assert profiles.capabilities == ("sync", "privacy-delete")
    assert "get_profiles" in profiles.operations
    deletion = plan.need("data-privacy:write")
    assert deletion is not None
    assert deletion.capabilities == ("privacy-delete",)
    assert deletion.reason() == "privacy-delete: request_profile_deletion"


def test_analytics_alone_needs_nothing_but_pushing_needs_lists_write() -> None:
    assert plan_scopes(["analytics"]).scopes == ()
    assert "lists:write" in plan_scopes(["analytics-push"]).scopes


def test_action_capabilities_come_from_the_action_registry() -> None:
    actions = registry().values()
    names = all_capabilities()
    assert {f"actions:{a.resource}" for a in actions} == {
        n for n in names if n.startswith("actions:")
    }
    ops = {op.operation_id for op in capability_operations("actions:profiles")}
    assert ops == {op for a in actions if a.resource == "profiles" for op in a.operations}
    needed = {s for a in actions if a.resource == "profiles" for s in a.scopes}
    assert set(plan_scopes(["actions:profiles"]).scopes) == needed


@pytest.mark.parametrize(
    ("text", "choices"),
    [("bogus", "privacy-delete"), ("actions:unicorns", "profiles"), (" , ", "sync")],
)
def test_unknown_capabilities_are_refused_with_the_choices(text: str, choices: str) -> None:
    with pytest.raises(UnknownCapabilityError, match=choices):
        parse_capabilities(text)


def test_parse_strips_and_deduplicates() -> None:
    assert parse_capabilities(" sync,privacy-delete ,sync") == ("sync", "privacy-delete")


def test_probe_operations_never_delete_and_need_the_scope() -> None:
    every_scope = {scope for op in catalog.all_operations() for scope in op.scopes}
    for scope in every_scope:
        op = probe_operation(scope)
        assert op is not None, scope
        assert scope in op.scopes
        assert op.method != "DELETE"
    accounts = probe_operation("accounts:read")
    assert accounts is not None
    assert accounts.operation_id == "get_accounts"


def _denied(detail: str, operation_id: str = "get_campaigns") -> PermissionDeniedError:
    details = ErrorDetails(
        status=403, code="permission_denied", detail=detail, operation_id=operation_id
    )
    return PermissionDeniedError(details, required_scopes=catalog.get(operation_id).scopes)


def test_a_403_names_the_missing_scope_and_the_capability() -> None:
    err = _denied("Missing scope(s) for get_campaigns: campaigns:read.")
    assert missing_scopes(err) == ("campaigns:read",)
    text = explain_permission_error(err, "sync")
    assert "campaigns:read" in text
    assert "capability sync" in text
    assert "kbridge scopes --for sync" in text


def test_a_403_without_names_falls_back_to_the_operation_and_its_capabilities() -> None:
    err = _denied("You do not have permission to perform this action.", "get_campaign")
    assert missing_scopes(err) == ("campaigns:read",)
    text = explain_permission_error(err)
    assert "campaigns-publish" in text
    assert "(get_campaign)" in text
    assert set(capabilities_needing("get_campaign")) >= {"campaigns-publish", "flows-preview"}
    assert "sync" in capabilities_needing("get_campaigns")


def test_each_capability_is_the_union_of_its_workflows_declarations() -> None:
    for name, capability in CAPABILITIES.items():
        declared = {op for w in capability.workflows for op in w.operations}
        assert set(CAPABILITY_OPERATIONS[name]) == declared, name
        assert CAPABILITY_SUMMARIES[name] == capability.summary


def test_pushing_an_audience_with_pruning_is_planned_for() -> None:
    # analytics --push --prune reads the list's members and removes the stale ones
    ops = {op.operation_id for op in capability_operations("analytics-push")}
    assert {"get_profiles_for_list", "remove_profiles_from_list"} <= ops


def test_a_declaration_naming_an_unknown_or_public_operation_is_refused() -> None:
    with pytest.raises(catalog.UnknownOperationError, match="get_profle"):
        Workflow.of("typo", "get_profle")
    with pytest.raises(ValueError, match="not a private-key operation"):
        Workflow.of("public", "create_client_event")

"""What requests mean beyond their types: each mistake named by its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kbridge.web.params import (
    check_job_params,
    check_rate_limits,
    check_warehouse,
    default_warehouse,
    redact_url,
)
from kbridge.web.problems import ApiProblem, _validation
from kbridge.web.schemas import ConnectionIn

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("given", "stored"),
    [("spec", "spec"), ("SPEC", "spec"), ("off", "off"), ("0.50", "0.5"), ("2", "2.0")],
)
def test_rate_limits_read_as_the_cli_reads_them(given: str, stored: str) -> None:
    assert check_rate_limits(given) == stored


@pytest.mark.parametrize("given", ["fast", "0", "-1", "nan", "inf", ""])
def test_rate_limits_that_mean_nothing_name_the_field(given: str) -> None:
    with pytest.raises(ApiProblem) as caught:
        check_rate_limits(given)
    assert (caught.value.status, caught.value.field) == (422, "rate_limits")


def test_warehouses_are_absolute_duckdb_files_or_postgresql() -> None:
    assert check_warehouse("duckdb:////srv/kb/a.duckdb") == "duckdb:////srv/kb/a.duckdb"
    assert check_warehouse("/srv/kb/a.duckdb") == "duckdb:////srv/kb/a.duckdb"
    assert check_warehouse("postgresql://u@h/db") == "postgresql://u@h/db"
    for bad in ["duckdb:///rel.duckdb", "duckdb:///:memory:", "mysql://h/db", "duckdb:", ""]:
        with pytest.raises(ApiProblem) as caught:
            check_warehouse(bad)
        assert caught.value.field == "warehouse", bad


def test_the_default_warehouse_is_named_after_the_connection_per_workspace() -> None:
    assert (
        default_warehouse(Path("/data"), "w1", "shop")
        == "duckdb:////data/warehouses/w1/shop.duckdb"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://kb:hunter2@db:5432/kb", "postgresql://kb:***@db:5432/kb"),
        ("postgresql://kb:p@ss@db/kb", "postgresql://kb:***@db/kb"),
        ("postgresql://kb@db/kb", "postgresql://kb@db/kb"),
        ("duckdb:////srv/a.duckdb", "duckdb:////srv/a.duckdb"),
    ],
)
def test_a_warehouse_password_is_never_shown(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_sync_params_are_normalised_and_checked() -> None:
    checked = check_job_params(
        "sync",
        {"streams": ["events", "profiles"], "start_date": "2024-01-01T02:00:00+02:00"},
    )
    assert checked == {"streams": ["profiles", "events"], "start_date": "2024-01-01T02:00:00+02:00"}
    for params, field in [
        ({"streams": ["nope"]}, "params.streams"),
        ({"streams": "profiles"}, "params.streams"),
        ({"start_date": "2024-01-01"}, "params.start_date"),
        ({"start_date": 20240101}, "params.start_date"),
        ({"full_refresh": 1}, "params.full_refresh"),
        ({"window": 3}, "params.window"),
    ]:
        with pytest.raises(ApiProblem) as caught:
            check_job_params("sync", params)
        assert caught.value.field == field, params
        assert caught.value.message.startswith(f"{field}: ")


def test_other_kinds_params_are_their_jobs_to_check() -> None:
    params = {"email": "someone@example.com"}
    assert check_job_params("privacy_access", params) == params


def test_validation_errors_name_the_field_and_never_echo_the_input() -> None:
    key = "pk_" + "9" * 34
    with pytest.raises(ValidationError) as caught:
        ConnectionIn.model_validate({"name": 7, "api_key": key, "extra": key})
    found = _validation(caught.value.errors())
    assert [e["field"] for e in found] == ["name", "extra"]
    assert all(e["message"].startswith(e["field"] + ": ") for e in found)
    assert key not in repr(found)


def test_a_connection_request_never_shows_its_key() -> None:
    key = "pk_" + "9" * 34
    body = ConnectionIn.model_validate({"name": "shop", "api_key": key})
    assert key not in repr(body)
    assert key not in str(body)
    assert body.api_key.get_secret_value() == key

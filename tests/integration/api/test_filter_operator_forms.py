"""Issue 18 item 5: every documented filter form works, and a refused form's advice works.

The forms come from the catalogue (the spec's ``x-klaviyo-filters``): for
lists by ``name`` and members/profiles by ``email``, each operator with each
kind of value it is documented to take must return exactly the matching
rows from the emulator, and the example in the error for a form that is not
documented (from the client and from the emulator alike) must, when used,
return them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from kbridge.api import Client, FilterError, Resource
from kbridge.catalog import REVISION, get
from kbridge.emulator import EmulatorServer

pytestmark = pytest.mark.integration

Fetch = Callable[[str | None], list[Resource]]


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _documented_forms(operation_id: str, field: str, values: list[str]) -> list[str]:
    spec = get(operation_id).filter_field(field)
    assert spec is not None
    forms = [f"{op}({field},{_quoted(values[0])})" for op in spec.single]
    for op in spec.list:
        forms.append(f"{op}({field},[{_quoted(values[0])}])")
        forms.append(f"{op}({field},[{','.join(_quoted(v) for v in values)}])")
    return forms


def _undocumented_scalar_forms(operation_id: str, field: str, value: str) -> list[str]:
    spec = get(operation_id).filter_field(field)
    assert spec is not None
    return [f"{op}({field},{_quoted(value)})" for op in spec.list if op not in spec.single]


def _example_in(message: str) -> str:
    found = re.search(r"(?:write|e\.g\.) ([a-z-]+\(.+\))\.?$", message)
    assert found, f"no example in {message!r}"
    return found[1]


def _ids(rows: list[Resource]) -> set[str]:
    return {r.id for r in rows}


def _check_field(
    fetch: Fetch, operation_id: str, field: str, attribute: Callable[[Resource], str]
) -> list[str]:
    everything = fetch(None)
    values = sorted({attribute(r) for r in everything} - {""})[:2]
    assert len(values) == 2, "the account needs two distinct values to tell forms apart"
    first = {r.id for r in everything if attribute(r).lower() == values[0].lower()}
    both = {r.id for r in everything if attribute(r).lower() in {v.lower() for v in values}}
    failures = []
    for form in _documented_forms(operation_id, field, values):
        wanted = both if form.count("'") > 2 else first
        got = _ids(fetch(form))
        if got != wanted:
            failures.append(f"{form}: {len(got)} rows, expected {len(wanted)}")
    assert not failures, failures
    refused = _undocumented_scalar_forms(operation_id, field, values[0])
    for form in refused:
        with pytest.raises(FilterError) as caught:
            fetch(form)
        example = _example_in(str(caught.value))
        assert _ids(fetch(example)) == first, (form, example)
    return refused


def test_lists_by_name(client: Client) -> None:
    def fetch(text: str | None) -> list[Resource]:
        return client.lists.get_lists(**({"filter": text} if text else {}))

    refused = _check_field(fetch, "get_lists", "name", lambda r: str(r["name"]))
    assert "equals" in [f.split("(")[0] for f in refused]  # the trap


def test_profiles_by_email(client: Client) -> None:
    def fetch(text: str | None) -> list[Resource]:
        query = {"filter": text} if text else {"page_size": 100}
        return client.profiles.get_profiles(**query)  # type: ignore[arg-type]

    _check_field(fetch, "get_profiles", "email", lambda r: str(r["email"] or ""))


def test_list_members_by_email(client: Client) -> None:
    list_id = max(client.lists.get_lists(), key=lambda r: r.id).id
    members = client.lists.get_profiles_for_list(list_id, page_size=100)
    assert len({m["email"] for m in members}) >= 2

    def fetch(text: str | None) -> list[Resource]:
        query = {"filter": text} if text else {"page_size": 100}
        return client.lists.get_profiles_for_list(list_id, **query)  # type: ignore[arg-type]

    refused = _check_field(fetch, "get_profiles_for_list", "email", lambda r: str(r["email"] or ""))
    assert refused  # equals(email,'…') is list-only here


def test_the_emulators_own_error_gives_a_working_example(
    server: EmulatorServer, client: Client
) -> None:
    name = str(client.lists.get_lists()[0]["name"])
    headers = {"Authorization": f"Klaviyo-API-Key {server.api_key}", "revision": REVISION}
    url = f"{server.base_url}/api/lists"
    refused = httpx.get(url, headers=headers, params={"filter": f"equals(name,{_quoted(name)})"})
    assert refused.status_code == 400
    example = _example_in(refused.json()["errors"][0]["detail"])
    used = httpx.get(url, headers=headers, params={"filter": example})
    assert used.status_code == 200, used.text
    assert [r["attributes"]["name"] for r in used.json()["data"]] == [name]

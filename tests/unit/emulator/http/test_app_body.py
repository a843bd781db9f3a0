"""Request bodies: media types, size, encoding, JSON and the JSON:API data checks."""

from __future__ import annotations

import gzip

import pytest

from kbridge.core import dumps
from kbridge.emulator.http.body import MAX_BODY_BYTES
from tests.unit.emulator.http.test_app_fakes import assert_error, client_for, make_app

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

PROFILE = {"data": {"type": "profile", "attributes": {"email": "new@example.com"}}}


@pytest.mark.parametrize("media_type", ["application/vnd.api+json", "application/json"])
async def test_both_json_media_types_are_accepted(media_type: str) -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        r = await c.post(
            "/api/profiles", content=dumps(PROFILE), headers={"content-type": media_type}
        )
    assert r.status_code == 201, r.text
    assert backend.calls[-1].body == PROFILE


@pytest.mark.parametrize("media_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_other_media_types_are_415(media_type: str) -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        r = await c.post(
            "/api/profiles", content=dumps(PROFILE), headers={"content-type": media_type}
        )
    assert_error(r, 415, "unsupported_media_type")
    assert backend.calls == []


async def test_gzip_bodies_are_decoded_and_unknown_encodings_refused() -> None:
    app, backend, *_ = make_app()
    headers = {"content-type": "application/vnd.api+json", "content-encoding": "gzip"}
    async with client_for(app) as c:
        ok = await c.post("/api/profiles", content=gzip.compress(dumps(PROFILE)), headers=headers)
        headers["content-encoding"] = "br"
        refused = await c.post("/api/profiles", content=dumps(PROFILE), headers=headers)
    assert ok.status_code == 201
    assert backend.calls[-1].body == PROFILE
    assert_error(refused, 415, "unsupported_media_type")


async def test_bodies_over_5_mb_are_413_even_when_compressed() -> None:
    app, *_ = make_app()
    huge = b'{"data": "' + b"x" * MAX_BODY_BYTES + b'"}'
    async with client_for(app) as c:
        plain = await c.post(
            "/api/profiles", content=huge, headers={"content-type": "application/json"}
        )
        zipped = await c.post(
            "/api/profiles",
            content=gzip.compress(huge),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    assert_error(plain, 413, "request_too_large")
    assert_error(zipped, 413, "request_too_large")


async def test_invalid_json_and_missing_data_are_400() -> None:
    app, *_ = make_app()
    async with client_for(app) as c:
        broken = await c.post(
            "/api/profiles", content=b"{not json", headers={"content-type": "application/json"}
        )
        empty = await c.post(
            "/api/profiles", content=b"", headers={"content-type": "application/json"}
        )
        no_data = await c.post("/api/profiles", json={"profile": {}})
        no_type = await c.post("/api/profiles", json={"data": {"attributes": {}}})
    assert "JSON parse error" in assert_error(broken, 400, "invalid")["detail"]
    assert_error(empty, 400, "invalid", pointer="/data")
    assert_error(no_data, 400, "invalid", pointer="/data")
    assert_error(no_type, 400, "invalid", pointer="/data/type")


async def test_data_type_must_be_the_endpoints() -> None:
    app, backend, *_ = make_app()
    async with client_for(app) as c:
        r = await c.post("/api/profiles", json={"data": {"type": "list", "attributes": {}}})
        members = await c.post(
            "/api/lists/L1/relationships/profiles", json={"data": [{"type": "list", "id": "x"}]}
        )
        not_array = await c.post(
            "/api/lists/L1/relationships/profiles", json={"data": {"type": "profile", "id": "x"}}
        )
    assert "'profile'" in assert_error(r, 409, "conflict", pointer="/data/type")["detail"]
    assert_error(members, 409, "conflict", pointer="/data/0/type")
    assert_error(not_array, 400, "invalid", pointer="/data")
    assert backend.calls == []


async def test_patch_body_id_must_match_the_path() -> None:
    app, backend, *_ = make_app()
    body = {"data": {"type": "profile", "id": "OTHER", "attributes": {}}}
    async with client_for(app) as c:
        mismatch = await c.patch("/api/profiles/P001", json=body)
        missing = await c.patch(
            "/api/profiles/P001", json={"data": {"type": "profile", "attributes": {}}}
        )
        body["data"]["id"] = "P001"
        ok = await c.patch("/api/profiles/P001", json=body)
    error = assert_error(mismatch, 409, "conflict", pointer="/data/id")
    assert "OTHER" in error["detail"]
    assert_error(missing, 400, "invalid", pointer="/data/id")
    assert ok.status_code == 200
    assert len(backend.calls) == 1

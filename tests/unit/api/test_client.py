"""The request pipeline end to end over httpx.MockTransport, on a simulated clock."""

from __future__ import annotations

import itertools
import logging

import httpx
import pytest

from kbridge.api import (
    ApiResponse,
    AsyncClient,
    AuthenticationError,
    ClientConfig,
    ConflictError,
    FilterError,
    InvalidCredentialsError,
    LimiterConfig,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    ServerError,
    StaticTokenProvider,
    TransportError,
    build_document,
)
from kbridge.catalog import REVISION
from kbridge.core import ConfigurationError, ManualClock, loads

from ._support import BASE, KEY, Server, client, error, jsonapi

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

PROFILE = {"data": {"type": "profile", "id": "01P", "attributes": {"email": "a@b.co"}}}


async def test_sends_auth_revision_accept_and_user_agent() -> None:
    server = Server(ManualClock(), [jsonapi(200, PROFILE)])
    async with client(server) as api:
        response = await api.request("get_profile", path_params={"id": "01P"})
    sent = server.requests[0]
    assert sent.url == httpx.URL(f"{BASE}/api/profiles/01P")
    assert sent.headers["authorization"] == f"Klaviyo-API-Key {KEY}"
    assert sent.headers["revision"] == REVISION
    assert sent.headers["accept"] == "application/vnd.api+json"
    assert sent.headers["user-agent"].startswith("kbridge/")
    assert isinstance(response, ApiResponse)
    assert response.status == 200
    assert response.document is not None
    assert response.document.resources[0]["email"] == "a@b.co"


async def test_revision_and_base_url_come_from_the_config() -> None:
    server = Server(ManualClock(), [jsonapi(200, PROFILE)])
    api = client(server, revision="2025-01-15", base_url="http://127.0.0.1:8765")
    async with api:
        await api.request("get_profile", path_params={"id": "x y/z"})
    sent = server.requests[0]
    assert sent.headers["revision"] == "2025-01-15"
    assert str(sent.url) == "http://127.0.0.1:8765/api/profiles/x%20y%2Fz"


async def test_post_body_is_jsonapi_encoded() -> None:
    server = Server(ManualClock(), [jsonapi(201, PROFILE)])
    doc = build_document("profile", attributes={"email": "a@b.co"})
    async with client(server) as api:
        response = await api.request("create_profile", json=doc)
    sent = server.requests[0]
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/vnd.api+json"
    assert loads(sent.content) == doc
    assert response.status == 201


async def test_no_content_response_has_no_document() -> None:
    server = Server(ManualClock(), [httpx.Response(202)])
    async with client(server) as api:
        response = await api.request("create_event", json=build_document("event"))
    assert (response.status, response.document) == (202, None)


async def test_429_waits_exactly_retry_after_then_succeeds() -> None:
    clock = ManualClock()
    server = Server(
        clock, [error(429, "throttled", headers={"Retry-After": "7"}), jsonapi(200, PROFILE)]
    )
    async with client(server) as api:
        response = await api.request("get_profile", path_params={"id": "01P"})
    assert response.status == 200
    assert clock.slept == [7.0]
    assert server.times == [0.0, 7.0]


async def test_429_on_post_is_retried_because_it_was_not_processed() -> None:
    clock = ManualClock()
    server = Server(clock, [error(429, headers={"Retry-After": "2"}), jsonapi(201, PROFILE)])
    async with client(server) as api:
        response = await api.request("create_profile", json=build_document("profile"))
    assert response.status == 201
    assert clock.slept == [2.0]


async def test_429_without_retry_after_backs_off() -> None:
    clock = ManualClock()
    server = Server(clock, [error(429), jsonapi(200, PROFILE)])
    async with client(server, random=lambda: 0.999) as api:
        await api.request("get_profile", path_params={"id": "01P"})
    assert len(server.requests) == 2
    assert clock.slept  # waited something, within the first backoff ceiling (+ the pause)
    assert server.times[1] >= 0.4995


async def test_get_500_then_200_succeeds_after_one_jittered_backoff() -> None:
    clock = ManualClock()
    server = Server(clock, [error(500, "error"), jsonapi(200, PROFILE)])
    async with client(server) as api:  # random() = 0.5
        response = await api.request("get_profile", path_params={"id": "01P"})
    assert response.status == 200
    assert clock.slept == [0.25]  # 0.5 * min(cap, base * 2**0) with base 0.5


async def test_post_after_500_is_not_retried() -> None:
    server = Server(ManualClock(), [error(500, "error"), jsonapi(201, PROFILE)])
    async with client(server) as api:
        with pytest.raises(ServerError) as caught:
            await api.request("create_profile", json=build_document("profile"))
    assert len(server.requests) == 1
    assert caught.value.status == 500
    assert caught.value.operation_id == "create_profile"


async def test_post_marked_idempotent_is_retried_after_500() -> None:
    server = Server(ManualClock(), [error(503), jsonapi(200, {"data": None})])
    async with client(server) as api:
        response = await api.request(
            "query_campaign_values", json=build_document("x"), idempotent=True
        )
    assert response.status == 200
    assert len(server.requests) == 2


async def test_post_after_connect_error_is_retried() -> None:
    server = Server(ManualClock(), [httpx.ConnectError("refused"), jsonapi(201, PROFILE)])
    async with client(server) as api:
        response = await api.request("create_profile", json=build_document("profile"))
    assert response.status == 201
    assert len(server.requests) == 2


async def test_post_after_read_timeout_is_not_retried() -> None:
    server = Server(ManualClock(), [httpx.ReadTimeout("slow"), jsonapi(201, PROFILE)])
    async with client(server) as api:
        with pytest.raises(TransportError) as caught:
            await api.request("create_profile", json=build_document("profile"))
    assert len(server.requests) == 1
    assert caught.value.reached_server
    assert "ReadTimeout" in str(caught.value)


async def test_get_after_read_timeout_is_retried() -> None:
    server = Server(ManualClock(), [httpx.ReadTimeout("slow"), jsonapi(200, PROFILE)])
    async with client(server) as api:
        response = await api.request("get_profile", path_params={"id": "01P"})
    assert response.status == 200


async def test_retries_stop_at_max_attempts() -> None:
    server = Server(ManualClock(), [error(503)] * 10)
    async with client(server, retry=RetryPolicy(max_attempts=3)) as api:
        with pytest.raises(ServerError):
            await api.request("get_profile", path_params={"id": "01P"})
    assert len(server.requests) == 3


async def test_retries_stop_at_the_total_deadline() -> None:
    clock = ManualClock()
    server = Server(clock, [error(429, headers={"Retry-After": "40"})] * 10)
    policy = RetryPolicy(max_attempts=10, total_deadline=100)
    async with client(server, retry=policy) as api:
        with pytest.raises(RateLimitedError) as caught:
            await api.request("get_profile", path_params={"id": "01P"})
    assert len(server.requests) == 3  # at 0, 40, 80; a third wait would end at 120 > 100
    assert caught.value.retry_after == 40


async def test_client_errors_are_raised_at_once_with_their_facts() -> None:
    server = Server(
        ManualClock(),
        [
            error(
                409,
                "duplicate_profile",
                "A profile already exists with one of these identifiers.",
                meta={"duplicate_profile_id": "01DUP"},
                source={"pointer": "/data/attributes"},
            )
        ],
    )
    async with client(server) as api:
        with pytest.raises(ConflictError) as caught:
            await api.request("create_profile", json=build_document("profile"))
    err = caught.value
    assert (err.status, err.code, err.duplicate_profile_id) == (409, "duplicate_profile", "01DUP")
    assert err.source_pointer == "/data/attributes"
    assert err.request_id == "req-409"
    assert len(server.requests) == 1


async def test_403_names_the_scopes_the_operation_needs() -> None:
    server = Server(ManualClock(), [error(403, "permission_denied", "Nope.")])
    async with client(server) as api:
        with pytest.raises(PermissionDeniedError) as caught:
            await api.request("get_profile", path_params={"id": "01P"})
    assert caught.value.required_scopes == ("profiles:read",)
    assert "profiles:read" in str(caught.value)


async def test_bad_key_is_refused_before_any_request() -> None:
    server = Server(ManualClock())
    with pytest.raises(InvalidCredentialsError, match="public"):
        AsyncClient("AbC123", transport=server.transport)
    with pytest.raises(InvalidCredentialsError, match="pk_"):
        AsyncClient("sk_live_1234567890abcdefghij", transport=server.transport)
    with pytest.raises(InvalidCredentialsError, match="no credentials"):
        AsyncClient(transport=server.transport)
    assert server.requests == []


class CountingProvider:
    def __init__(self) -> None:
        self.current = "tok-1"
        self.refreshes = 0

    async def token(self) -> str:
        return self.current

    async def refresh(self) -> str:
        self.refreshes += 1
        self.current = f"tok-{self.refreshes + 1}"
        return self.current


async def test_oauth_401_refreshes_once_and_retries() -> None:
    provider = CountingProvider()

    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer tok-2":
            return jsonapi(200, PROFILE)
        return error(401, "not_authenticated")

    server = Server(ManualClock(), respond=respond)
    async with client(server, token_provider=provider) as api:
        response = await api.request("get_profile", path_params={"id": "01P"})
    assert response.status == 200
    assert provider.refreshes == 1
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer tok-1", "Bearer tok-2"]


async def test_oauth_second_401_is_raised_without_a_second_refresh() -> None:
    provider = CountingProvider()
    server = Server(ManualClock(), [error(401, "not_authenticated")] * 5)
    async with client(server, token_provider=provider) as api:
        with pytest.raises(AuthenticationError):
            await api.request("get_profile", path_params={"id": "01P"})
    assert provider.refreshes == 1
    assert len(server.requests) == 2


async def test_static_token_401_is_not_retried() -> None:
    server = Server(ManualClock(), [error(401, "not_authenticated")] * 3)
    provider = StaticTokenProvider("static-token-value")
    async with client(server, token_provider=provider) as api:
        with pytest.raises(AuthenticationError):
            await api.request("get_profile", path_params={"id": "01P"})
    assert len(server.requests) == 1


async def test_private_key_401_is_not_retried() -> None:
    server = Server(ManualClock(), [error(401, "not_authenticated")] * 3)
    async with client(server) as api:
        with pytest.raises(AuthenticationError):
            await api.request("get_profile", path_params={"id": "01P"})
    assert len(server.requests) == 1


async def test_filter_is_validated_before_sending() -> None:
    server = Server(ManualClock())
    async with client(server) as api:
        with pytest.raises(FilterError, match="greater-than"):
            await api.request("get_profiles", params={"filter": "equals(created,2024-01-01)"})
    assert server.requests == []


async def test_unknown_operation_and_missing_path_param_are_configuration_errors() -> None:
    server = Server(ManualClock())
    async with client(server) as api:
        with pytest.raises(ConfigurationError, match="get_profilez"):
            await api.request("get_profilez")
        with pytest.raises(ConfigurationError, match="id"):
            await api.request("get_profile")
        with pytest.raises(ConfigurationError, match="nope"):
            await api.request("get_profile", path_params={"id": "1", "nope": "2"})
    assert server.requests == []


async def test_list_params_are_comma_joined() -> None:
    server = Server(ManualClock(), [jsonapi(200, PROFILE)])
    async with client(server) as api:
        await api.request(
            "get_profile",
            path_params={"id": "01P"},
            params={"fields[profile]": ["email", "phone_number"]},
        )
    assert server.requests[0].url.params["fields[profile]"] == "email,phone_number"


async def test_raw_uses_catalogue_limits_for_known_paths_and_a_default_for_unknown() -> None:
    server = Server(ManualClock())
    async with client(server) as api:
        await api.raw("GET", "/api/profiles/01P")
        await api.raw("GET", "/api/not-a-real-endpoint")
        limiter = api.rate_limiter
        known = limiter.state(api.account, "get_profile")
        unknown = limiter.state(api.account, "unknown 1/s,15/m")
    assert known is not None
    assert known.limit.steady == 750
    assert unknown is not None
    assert unknown.limit.steady == 15
    assert [r.url.path for r in server.requests] == [
        "/api/profiles/01P",
        "/api/not-a-real-endpoint",
    ]


async def test_raw_refuses_a_url_on_another_host() -> None:
    server = Server(ManualClock())
    async with client(server) as api:
        with pytest.raises(Exception, match="another host"):
            await api.raw("GET", "https://evil.example/api/profiles")
    assert server.requests == []


async def test_html_error_page_becomes_a_typed_error() -> None:
    page = "<html><head><title>Attention Required! | Cloudflare</title></head>" + "x" * 500
    server = Server(ManualClock(), [httpx.Response(403, text=page, headers={"cf-ray": "8a1-SJC"})])
    async with client(server) as api:
        with pytest.raises(PermissionDeniedError) as caught:
            await api.request("get_profile", path_params={"id": "01P"})
    assert caught.value.detail is not None
    assert caught.value.detail.startswith("<html><head><title>Attention Required!")
    assert len(caught.value.detail) <= 200
    assert caught.value.request_id == "8a1-SJC"


async def test_daily_cap_raises_quota_exhausted_without_sending() -> None:
    clock = ManualClock()
    server = Server(clock, respond=lambda _: jsonapi(200, {"data": None}))
    async with client(server) as api:
        for _ in range(225):
            await api.request("query_campaign_values", json={}, idempotent=True)
        with pytest.raises(QuotaExhaustedError) as caught:
            await api.request("query_campaign_values", json={}, idempotent=True)
    assert len(server.requests) == 225
    assert caught.value.resets_at.isoformat() == "2026-01-02T00:00:00+00:00"


async def test_server_daily_429_is_raised_and_remembered() -> None:
    clock = ManualClock()
    server = Server(clock, [error(429, "throttled", headers={"Retry-After": "3600"})])
    async with client(server) as api:
        with pytest.raises(QuotaExhaustedError) as first:
            await api.request("create_list", json=build_document("list"))
        with pytest.raises(QuotaExhaustedError):
            await api.request("create_list", json=build_document("list"))
    assert len(server.requests) == 1
    assert (first.value.resets_at - clock.now()).total_seconds() == 3600
    assert clock.slept == []


async def test_one_info_record_per_attempt_with_structured_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server(ManualClock(), [error(503), jsonapi(200, PROFILE, {"x-request-id": "r-2"})])
    caplog.set_level(logging.INFO, logger="kbridge.api")
    async with client(server) as api:
        await api.request("get_profile", path_params={"id": "01P"})
    records = [r for r in caplog.records if r.name == "kbridge.api"]
    assert len(records) == 2
    first, second = records
    assert (first.method, first.path_template, first.status, first.attempt) == (  # type: ignore[attr-defined]
        "GET",
        "/api/profiles/{id}",
        503,
        1,
    )
    assert first.request_id == "req-503"  # type: ignore[attr-defined]
    assert (second.status, second.attempt, second.wait) == (200, 2, 0.25)  # type: ignore[attr-defined]
    assert second.operation_id == "get_profile"  # type: ignore[attr-defined]
    assert second.request_id == "r-2"  # type: ignore[attr-defined]
    assert second.levelno == logging.INFO


def test_config_from_env_reads_only_the_given_mapping() -> None:
    cfg = ClientConfig.from_env({"KLAVIYO_API_KEY": KEY, "KLAVIYO_BASE_URL": "http://localhost:1"})
    assert cfg.api_key == KEY
    assert cfg.base_url == "http://localhost:1"
    assert ClientConfig.from_env({}).base_url == "https://a.klaviyo.com"
    assert KEY not in repr(cfg)


async def test_the_old_per_setting_keywords_still_apply_with_a_deprecation_warning() -> None:
    server = Server(ManualClock(), [jsonapi(200, PROFILE)])
    with pytest.warns(DeprecationWarning, match=r"config=ClientConfig\(revision=…, retry=…\)"):
        api = AsyncClient(
            KEY,
            transport=server.transport,
            clock=server.clock,
            revision="2025-01-15",
            retry=RetryPolicy(max_attempts=1),
        )
    async with api:
        await api.request("get_profile", path_params={"id": "1"})
    assert server.requests[0].headers["revision"] == "2025-01-15"
    assert api.config.retry.max_attempts == 1


def test_a_setting_given_twice_differently_is_refused() -> None:
    other = ClientConfig(base_url="http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="two base URLs"):
        AsyncClient(KEY, base_url="http://127.0.0.1:2", config=other)
    with pytest.raises(ConfigurationError, match="two different API keys"):
        AsyncClient("pk_" + "b" * 34, config=ClientConfig(api_key=KEY))
    same = AsyncClient(KEY, base_url="http://127.0.0.1:1", config=other)
    assert same.config.base_url == "http://127.0.0.1:1"
    assert same.config.api_key == KEY


async def test_raw_takes_retry_like_request_and_warns_for_retries() -> None:
    server = Server(ManualClock(), [error(500), error(500), jsonapi(200, PROFILE)])
    async with client(server) as api:
        with pytest.raises(ServerError):
            await api.raw("GET", "/api/profiles/1", retry=RetryPolicy(max_attempts=2))
        with pytest.warns(DeprecationWarning, match="retry="):
            await api.raw("GET", "/api/profiles/1", retries=RetryPolicy(max_attempts=1))
        with pytest.raises(ConfigurationError, match="not also"):
            await api.raw("GET", "/", retry=RetryPolicy(), retries=RetryPolicy())
    assert len(server.requests) == 3


def test_default_timeouts() -> None:
    timeout = ClientConfig().timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (10, 60, 60, 10)


async def test_config_carries_key_base_url_and_target_utilisation() -> None:
    clock = ManualClock()
    server = Server(clock)
    cfg = ClientConfig.from_env(
        {"KLAVIYO_API_KEY": KEY, "KLAVIYO_BASE_URL": "http://127.0.0.1:9"},
        limiter=LimiterConfig(target_utilisation=0.5, grouping="tier"),
    )
    api = AsyncClient(config=cfg, transport=server.transport, clock=clock)
    async with api:
        await api.request("get_profiles")
        state = api.rate_limiter.state(api.account, "75/s,750/m")
    assert server.requests[0].url.host == "127.0.0.1"
    assert server.requests[0].headers["authorization"] == f"Klaviyo-API-Key {KEY}"
    assert state is not None
    assert state.rate == pytest.approx(0.5 * 750 / 60)


async def test_one_limiter_can_be_shared_by_clients_of_the_same_account() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)
    first, second = Server(clock), Server(clock)
    async with client(first, rate_limiter=limiter) as a, client(second, rate_limiter=limiter) as b:
        for _ in range(3):
            await a.request("get_accounts")  # 1/s, 15/m: one a second between both
            await b.request("get_accounts")
    state = limiter.state(a.account, "get_accounts")
    assert state is not None
    assert state.daily_used == 6
    sends = sorted(first.times + second.times)
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(sends))

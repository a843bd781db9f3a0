"""Keys and tokens never show up in reprs, error text, tracebacks or log records."""

from __future__ import annotations

import logging
import pickle
import traceback

import httpx
import pytest

from kbridge.api import (
    ApiError,
    AsyncClient,
    BearerAuth,
    ClientConfig,
    InvalidCredentialsError,
    PrivateKeyAuth,
    RetryPolicy,
    StaticTokenProvider,
)
from kbridge.core import ManualClock

from ._support import KEY, Server, client, error

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

TOKEN = "oauth-access-token-0123456789abcdef"


def _everything(err: BaseException) -> str:
    return "\n".join([str(err), repr(err), "".join(traceback.format_exception(err))])


async def test_reprs_hide_the_key() -> None:
    server = Server(ManualClock())
    async with client(server) as api:
        assert KEY not in repr(api)
        assert "pk_" not in repr(api)
    assert KEY not in repr(PrivateKeyAuth(KEY))
    assert KEY not in repr(ClientConfig(api_key=KEY))
    assert TOKEN not in repr(StaticTokenProvider(TOKEN))
    assert TOKEN not in repr(BearerAuth(StaticTokenProvider(TOKEN)))


def test_auth_cannot_be_pickled_with_its_secret() -> None:
    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(PrivateKeyAuth(KEY))


def test_a_malformed_key_is_not_echoed() -> None:
    bad = "pk_" + "x" * 20 + "!!"
    with pytest.raises(InvalidCredentialsError) as caught:
        AsyncClient(bad)
    assert bad not in _everything(caught.value)
    assert "x" * 20 not in _everything(caught.value)


async def test_errors_and_tracebacks_never_carry_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Invalid API key {KEY}; header was Klaviyo-API-Key {KEY}"
    server = Server(
        ManualClock(),
        [
            error(401, "not_authenticated", echo),
            httpx.ConnectError(f"cannot connect (Authorization: Klaviyo-API-Key {KEY})"),
        ],
    )
    failures: list[ApiError] = []
    async with client(server, retry=RetryPolicy.never()) as api:
        for _ in range(2):
            try:
                await api.request("get_profile", path_params={"id": "01P"})
            except ApiError as exc:
                failures.append(exc)
    assert len(failures) == 2
    for err in failures:
        text = _everything(err)
        assert KEY not in text
        assert err.__cause__ is None
        assert err.__context__ is None  # no httpx request (with its headers) hangs off it
    assert "pk_***" in str(failures[0])
    assert "Klaviyo-API-Key ***" in str(failures[1])
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records
    assert KEY not in logged


async def test_bearer_token_is_not_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = Server(ManualClock(), [error(401, "not_authenticated", f"Bearer {TOKEN} is revoked")])
    async with client(server, token_provider=StaticTokenProvider(TOKEN)) as api:
        with pytest.raises(ApiError) as caught:
            await api.request("get_profile", path_params={"id": "01P"})
        assert TOKEN not in repr(api)
    assert TOKEN not in _everything(caught.value)
    assert TOKEN not in "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)

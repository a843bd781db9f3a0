"""Credential shapes and account fingerprints."""

from __future__ import annotations

import asyncio

import pytest

from kbridge.api import (
    BearerAuth,
    InvalidCredentialsError,
    PrivateKeyAuth,
    RefreshingTokenProvider,
    StaticTokenProvider,
)
from kbridge.core import ManualClock

from ._support import KEY

pytestmark = pytest.mark.unit


@pytest.mark.anyio
async def test_private_key_header() -> None:
    assert await PrivateKeyAuth(KEY).authorization() == f"Klaviyo-API-Key {KEY}"
    assert await PrivateKeyAuth(f"  {KEY}\n").authorization() == f"Klaviyo-API-Key {KEY}"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("AbC123", "6-character \\*public\\* key"),
        ("", "empty"),
        ("pk_short", "too short"),
        ("pk_" + "a" * 30 + "-x", "letters and digits"),
        (f"Klaviyo-API-Key {KEY}", "without the"),
        ("sk_" + "a" * 34, "does not start with 'pk_'"),
    ],
)
def test_malformed_keys_are_refused_with_what_a_key_looks_like(key: str, message: str) -> None:
    with pytest.raises(InvalidCredentialsError, match=message) as caught:
        PrivateKeyAuth(key)
    assert "pk_" in str(caught.value)  # says what a private key looks like


def test_lenient_on_length() -> None:
    PrivateKeyAuth("pk_" + "a1" * 9)  # 21 characters
    PrivateKeyAuth("pk_" + "a1" * 30)


def test_fingerprint_is_stable_and_not_the_key() -> None:
    a, b = PrivateKeyAuth(KEY), PrivateKeyAuth(KEY)
    other = PrivateKeyAuth("pk_" + "Z9" * 17)
    assert a.account == b.account != other.account
    assert KEY[3:] not in a.account


@pytest.mark.anyio
async def test_bearer_auth_uses_installation_id_for_the_account() -> None:
    one = BearerAuth(StaticTokenProvider("t1"), installation_id="inst-1")
    same = BearerAuth(StaticTokenProvider("t2"), installation_id="inst-1")
    other = BearerAuth(StaticTokenProvider("t1", installation_id="inst-2"))
    assert one.account == same.account != other.account
    assert await one.authorization() == "Bearer t1"
    assert not await one.refresh_after_401("Bearer t1")  # a static token cannot change


def test_bearer_auth_refuses_a_non_provider() -> None:
    with pytest.raises(InvalidCredentialsError, match="token"):
        BearerAuth("a-token-string")  # type: ignore[arg-type]
    with pytest.raises(InvalidCredentialsError, match="empty"):
        StaticTokenProvider(" ")


@pytest.mark.anyio
async def test_refreshing_provider_renews_before_expiry_and_shares_one_renewal() -> None:
    clock = ManualClock()
    fetched: list[str] = []

    async def fetch() -> tuple[str, float]:
        fetched.append(f"t{len(fetched) + 1}")
        await clock.sleep(0)  # let concurrent callers pile up on the renewal
        return fetched[-1], 3600.0

    provider = RefreshingTokenProvider(fetch, clock=clock, margin=30, installation_id="i1")
    assert await provider.token() == "t1"
    clock.advance(3569)
    assert await provider.token() == "t1"  # 31 s left: still good
    clock.advance(2)
    assert await provider.token() == "t2"  # within the margin: renewed first
    results = await asyncio.gather(*(provider.refresh() for _ in range(5)))
    assert results == ["t3"] * 5
    assert fetched == ["t1", "t2", "t3"]
    assert "t3" not in repr(provider)
    assert (
        BearerAuth(provider).account
        == BearerAuth(StaticTokenProvider("x", installation_id="i1")).account
    )

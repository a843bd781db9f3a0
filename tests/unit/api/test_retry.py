"""The retry table and backoff, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbridge.api.retry import Failure, RetryPolicy, is_idempotent, should_retry, sleep_time
from kbridge.core import ConfigurationError

pytestmark = pytest.mark.unit

POLICY = RetryPolicy(max_attempts=5, base=0.5, cap=8)


@pytest.mark.parametrize(
    ("method", "failure", "status", "idempotent", "expected"),
    [
        ("GET", Failure.STATUS, 429, None, True),
        ("POST", Failure.STATUS, 429, None, True),
        ("GET", Failure.STATUS, 500, None, True),
        ("GET", Failure.STATUS, 503, None, True),
        ("PATCH", Failure.STATUS, 502, None, True),
        ("DELETE", Failure.STATUS, 504, None, True),
        ("POST", Failure.STATUS, 500, None, False),
        ("POST", Failure.STATUS, 503, None, False),
        ("POST", Failure.STATUS, 503, True, True),
        ("GET", Failure.STATUS, 501, None, False),
        ("GET", Failure.STATUS, 400, None, False),
        ("GET", Failure.STATUS, 404, None, False),
        ("POST", Failure.NOT_SENT, None, None, True),
        ("POST", Failure.MAYBE_SENT, None, None, False),
        ("GET", Failure.MAYBE_SENT, None, None, True),
        ("PATCH", Failure.MAYBE_SENT, None, False, False),
    ],
)
def test_retry_table(
    method: str, failure: Failure, status: int | None, idempotent: bool | None, expected: bool
) -> None:
    assert (
        should_retry(
            method=method,
            failure=failure,
            status=status,
            idempotent=idempotent,
            attempt=1,
            policy=POLICY,
        )
        is expected
    )


def test_no_retry_past_max_attempts() -> None:
    args = {"method": "GET", "failure": Failure.NOT_SENT, "policy": POLICY}
    assert should_retry(attempt=4, **args)  # type: ignore[arg-type]
    assert not should_retry(attempt=5, **args)  # type: ignore[arg-type]
    assert not should_retry(
        attempt=1, method="GET", failure=Failure.NOT_SENT, policy=RetryPolicy.never()
    )


def test_retry_after_is_waited_exactly() -> None:
    assert sleep_time(attempt=3, policy=POLICY, retry_after=7, random=lambda: 0.0) == 7


def test_backoff_is_full_jitter_over_a_capped_exponential() -> None:
    top = [sleep_time(attempt=n, policy=POLICY, random=lambda: 1.0) for n in range(1, 8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert sleep_time(attempt=4, policy=POLICY, random=lambda: 0.25) == 1.0
    assert sleep_time(attempt=4, policy=POLICY, random=lambda: 0.0) == 0.0


@given(attempt=st.integers(1, 50), r=st.floats(0, 1, exclude_max=True))
def test_backoff_stays_within_zero_and_the_cap(attempt: int, r: float) -> None:
    assert 0 <= sleep_time(attempt=attempt, policy=POLICY, random=lambda: r) <= POLICY.cap


def test_idempotency_by_method_unless_told() -> None:
    assert is_idempotent("get")
    assert is_idempotent("DELETE")
    assert is_idempotent("PATCH")
    assert not is_idempotent("POST")
    assert is_idempotent("POST", True)
    assert not is_idempotent("GET", False)


def test_policy_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="total_deadline"):
        RetryPolicy(total_deadline=0)

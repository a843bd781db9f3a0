"""Everything one running emulator holds, shared by the API routes and the control plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from kbridge.emulator.backend.call import Backend
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.http.auth import InMemoryTokenStore, KeyStore
from kbridge.emulator.http.faults import FaultInjector, parse_faults
from kbridge.emulator.http.ratelimit import RateLimiter
from kbridge.emulator.http.stats import Stats
from kbridge.emulator.oauth import OAuthAuthority
from kbridge.emulator.simclock import SimClock

__all__ = ["EmulatorState", "new_rate_limiter"]


def new_rate_limiter(config: EmulatorConfig, clock: SimClock) -> RateLimiter:
    """Windows pace real requests (monotonic clock); daily caps roll over on simulated days
    (midnight in ``config.daily_cap_timezone``)."""
    tz = ZoneInfo(config.daily_cap_timezone)

    def seconds_to_next_day() -> float:
        now = clock.now().astimezone(tz)
        midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=tz)
        return (midnight - now).total_seconds()

    return RateLimiter(
        factor=config.rate_limit_factor,
        algorithm=config.rate_limit_algorithm,
        monotonic=clock.monotonic,
        day_of=lambda: clock.now().astimezone(tz).date(),
        seconds_to_next_day=seconds_to_next_day,
        daily_caps=config.daily_caps,
    )


@dataclass
class EmulatorState:
    config: EmulatorConfig = field(repr=False)  # may hold the api_key
    clock: SimClock
    backend: Backend
    keys: KeyStore
    tokens: InMemoryTokenStore
    limiter: RateLimiter
    stats: Stats = field(default_factory=Stats)
    #: the OAuth authorization server; its access tokens live in ``tokens``
    oauth: OAuthAuthority = field(init=False)
    #: fault injection on ``/api/*`` (from ``config.faults``; changed at runtime by the plane)
    faults: FaultInjector = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.oauth = OAuthAuthority(
            clock=self.clock,
            tokens=self.tokens,
            account_id=lambda: self.backend.account_id,
            access_token_ttl=config.oauth_access_token_ttl,
            code_ttl=config.oauth_code_ttl,
            refresh_token_ttl=config.oauth_refresh_token_ttl,
        )
        self.faults = FaultInjector(parse_faults(config.faults), seed=config.seed)

    @property
    def api_key(self) -> str:
        """The full-access private key (every scope in the catalogue)."""
        return self.keys.full_access_key

    def reset(self) -> None:
        """A fresh account from the seed: data regenerated, windows, stats and fault RNGs reset.

        Keys, tokens and OAuth clients and grants are kept: they are how the
        caller reaches the account, and a test suite that minted a scoped key
        expects it to keep working.
        """
        self.backend.reset()
        self.limiter = new_rate_limiter(self.config, self.clock)
        self.stats.clear()
        self.faults.clear()

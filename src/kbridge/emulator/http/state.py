"""Everything one running emulator holds, shared by the API routes and the control plane."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from kbridge.emulator.backend.call import Backend
from kbridge.emulator.config import EmulatorConfig
from kbridge.emulator.http.auth import InMemoryTokenStore, KeyStore, generate_private_key
from kbridge.emulator.http.faults import FaultInjector, parse_faults
from kbridge.emulator.http.ratelimit import RateLimiter
from kbridge.emulator.http.stats import Stats
from kbridge.emulator.oauth import OAuthAuthority
from kbridge.emulator.simclock import SimClock

__all__ = ["Accounts", "EmulatorState", "new_rate_limiter"]


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


class Accounts:
    """The accounts one emulator serves (``config.accounts``), chosen by the caller's key.

    Account 0 is built at start; account ``i`` (data from ``seed + i``) is built
    on its first use, so ten accounts start as fast as one. Each account's key
    store exists from the start, so a key can be minted for an account whose
    data is not generated yet. A private key belongs to exactly one account;
    bearer tokens and unknown credentials go to account 0 (whose OAuth server
    issued every token), which answers an unknown one with 401 as before.
    """

    def __init__(
        self,
        first: EmulatorState,
        count: int,
        build: Callable[[int, KeyStore], EmulatorState],
    ) -> None:
        if count < 1:
            raise ValueError("an emulator serves at least one account")
        self.count = count
        self._build = build
        self._states: dict[int, EmulatorState] = {0: first}
        seed = first.config.seed
        self._keys = [first.keys] + [
            KeyStore(generate_private_key(seed + i)) for i in range(1, count)
        ]
        self._owner: dict[str, int] = {k.full_access_key: i for i, k in enumerate(self._keys)}

    def __repr__(self) -> str:
        return f"Accounts(<{self.count} accounts, {len(self._states)} built>)"

    def get(self, index: int) -> EmulatorState:
        """Account ``index`` (0 to count-1), generating it on first use."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        state = self._states.get(index)
        if state is None:
            state = self._states[index] = self._build(index, self._keys[index])
        return state

    def built(self) -> Iterator[EmulatorState]:
        """The accounts generated so far (the others hold nothing to reset or run)."""
        return iter([self._states[i] for i in sorted(self._states)])

    def is_built(self, index: int) -> bool:
        return index in self._states

    def full_access_key(self, index: int) -> str:
        return self._keys[index].full_access_key

    def mint(self, index: int, scopes: list[str]) -> str:
        """A new key of account ``index`` (ValueError for unknown scopes)."""
        key = self._keys[index].mint(scopes)
        self._owner[key] = index
        return key

    def for_authorization(
        self, authorization: str | None, company_id: str | None = None
    ) -> EmulatorState:
        """The account an ``Authorization`` header value (or, on client endpoints, the
        public ``company_id``) speaks for.

        A ``company_id`` finds the built account with that public key; an account not
        generated yet has no key to match, so it answers as account 0 (which refuses
        the unknown company_id).
        """
        if company_id and not authorization:
            for state in self._states.values():
                if state.backend.account_id == company_id:
                    return state
        if authorization:
            scheme, _, credential = authorization.strip().partition(" ")
            if scheme == "Klaviyo-API-Key":
                return self.get(self._owner.get(credential.strip(), 0))
        return self._states[0]

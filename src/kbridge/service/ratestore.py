"""One rate budget per Klaviyo account across every process: the windows in Redis.

:class:`RedisRateBudgetStore` implements :class:`~kbridge.api.ratestore.RateBudgetStore`
with one Lua script per decision, so a take is atomic however many workers
ask at once: the same sliding-window algorithm as the in-process store
(each request counted at an upper bound of its arrival: ``send + jitter``,
then "now" for as long as it is in flight, then its response time), a sorted
set of arrivals per (account, group) and one of the requests in flight, a
daily counter per UTC day that expires by itself, and the time until which a
429 (any worker's) holds every take back.

Keys are ``kbridge:rate:{ACCOUNT|GROUP}:…``: namespaced by the Klaviyo
account (``account_id`` when the store is bound to one, so two keys of one
account share its budget; otherwise the limiter's account fingerprint), and
hash-tagged so one budget's keys stay on one Redis Cluster slot. Accounts
never share a budget.

Time is Redis's own (``TIME`` inside the script) so workers on different
machines agree; ``time="caller"`` uses the limiter's clock instead (tests
on a :class:`~kbridge.core.ManualClock`). Redis unreachable: a take retries
with backoff on the injected clock and, after ``unavailable_timeout``,
raises :class:`~kbridge.api.ratestore.RateBudgetUnavailableError`; a request
never goes out unpaced.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Literal

import redis.asyncio as aioredis
import redis.exceptions

from kbridge.api.ratestore import (
    IN_FLIGHT_CAP,
    STEADY_WINDOW,
    WINDOW_MARGIN,
    RateBudgetUnavailableError,
    Take,
)
from kbridge.core import Clock

__all__ = ["RedisRateBudget", "RedisRateBudgetStore"]

#: Arguments: now ('' = Redis TIME), local wait, burst (0 = unpaced), steady, jitter,
#: daily cap (-1 = none), margin, steady window, day-key TTL, in-flight cap.
#: W: arrivals' upper bounds; F: requests in flight, scored by their send.
#: Returns {wait, held, ticket, day count, exhausted}; floats as strings (Lua numbers
#: returned to Redis are truncated to integers).
_TAKE = """
local W, F, D, SEQ, PAUSE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local wait = tonumber(ARGV[2])
local burst, steady = tonumber(ARGV[3]), tonumber(ARGV[4])
local jitter, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local margin, minute, day_ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local flight_cap = tonumber(ARGV[10])
local function f(x) return string.format('%.17g', x) end
local held = 0
-- a 429 any worker drew: everyone waits out its Retry-After
local paused = tonumber(redis.call('GET', PAUSE) or '')
if paused and paused - now > wait then
  wait = paused - now
end
if burst > 0 then
  -- a request in flight may reach Klaviyo at any moment until answered: count it at now;
  -- one unanswered past the cap belongs to a dead process and stops moving
  local flying = redis.call('ZRANGE', F, 0, -1, 'WITHSCORES')
  for i = 1, #flying, 2 do
    local sent = tonumber(flying[i + 1])
    redis.call('ZADD', W, 'XX', 'GT', f(math.min(now, sent + flight_cap)), flying[i])
    if now >= sent + flight_cap then
      redis.call('ZREM', F, flying[i])
    end
  end
  -- arrivals before the longest window's start can be in no window again
  while true do
    local old = redis.call('ZRANGEBYSCORE', W, '-inf', f(now - minute - margin), 'LIMIT', 0, 500)
    if #old == 0 then break end
    redis.call('ZREM', W, unpack(old))
    redis.call('ZREM', F, unpack(old))
  end
  for _, window in ipairs({{1, burst}, {minute, steady}}) do
    local span = window[1] + margin
    local cutoff = '(' .. f(now - span)
    local count = redis.call('ZCOUNT', W, cutoff, '+inf')
    if count >= window[2] then
      -- room comes when the k-th earliest arrival inside leaves
      local k = count - window[2] + 1
      local r = redis.call('ZRANGEBYSCORE', W, cutoff, '+inf', 'WITHSCORES', 'LIMIT', k - 1, 1)
      local window_wait = tonumber(r[2]) + span - now
      if window_wait > wait then
        wait = window_wait
        held = redis.call('ZSCORE', F, r[1]) and 1 or 0
      end
    end
  end
end
if wait > 1e-9 then
  return {f(wait), held, '', 0, 0}
end
local count = tonumber(redis.call('GET', D) or '0')
if cap >= 0 and count >= cap then
  return {'0', 0, '', count, 1}
end
count = redis.call('INCR', D)
redis.call('EXPIRE', D, day_ttl)
local ticket = ''
if burst > 0 then
  ticket = tostring(redis.call('INCR', SEQ))
  redis.call('ZADD', W, f(now + jitter), ticket)
  redis.call('ZADD', F, f(now), ticket)
  local ttl = math.ceil(minute + margin + flight_cap) + 1
  redis.call('EXPIRE', W, ttl)
  redis.call('EXPIRE', F, ttl)
  redis.call('EXPIRE', SEQ, ttl)
end
return {'0', 0, ticket, count, 0}
"""

#: Arguments: now ('' = Redis TIME), ticket. An answered request arrived by now at the latest,
#: however long after its send + jitter that is.
_RELEASE = """
local W, F = KEYS[1], KEYS[2]
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
if redis.call('ZREM', F, ARGV[2]) == 1 then
  redis.call('ZADD', W, 'XX', string.format('%.17g', now), ARGV[2])
end
return 1
"""

#: Arguments: now ('' = Redis TIME), seconds. Everyone's takes wait until now + seconds.
_PAUSE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local seconds = tonumber(ARGV[2])
local untill = now + seconds
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current == nil or untill > current then
  redis.call('SET', KEYS[1], string.format('%.17g', untill), 'PX', math.ceil(seconds * 1000) + 1000)
end
return 1
"""

#: the day counter outlives its UTC day by a day, whatever the clocks' disagreement
_DAY_TTL = 2 * 86400
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisRateBudget:
    """One (account, group)'s windows and daily count in Redis."""

    __slots__ = ("_prefix", "_store")

    def __init__(self, store: RedisRateBudgetStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    def _keys(self, day: str | None = None) -> list[str]:
        p = self._prefix
        # ``:f`` (a sorted set) replaced ``:p`` (a set): a new name, so a budget still
        # held by an older worker is never read as the wrong type
        return [f"{p}:w", f"{p}:f", f"{p}:d:{day}", f"{p}:seq", f"{p}:pause"]

    async def take(
        self,
        *,
        now: float,
        local_wait: float,
        windows: tuple[int, int] | None,
        jitter: float,
        day: str,
        daily_cap: int | None,
    ) -> Take:
        burst, steady = windows if windows is not None else (0, 0)
        args: list[Any] = [
            self._store._now_arg(now),
            repr(local_wait),
            burst,
            steady,
            repr(jitter),
            -1 if daily_cap is None else daily_cap,
            repr(WINDOW_MARGIN),
            repr(STEADY_WINDOW),
            _DAY_TTL,
            repr(IN_FLIGHT_CAP),
        ]
        wait, held, ticket, count, exhausted = await self._store._run("take", self._keys(day), args)
        return Take(
            float(wait),
            held=bool(held),
            ticket=_text(ticket) or None,
            day_count=int(count),
            exhausted=bool(exhausted),
        )

    def release(self, ticket: object, now: float) -> None:
        self._store._soon("release", self._keys()[:2], [self._store._now_arg(now), str(ticket)])

    def pause(self, seconds: float, now: float) -> None:
        self._store._soon("pause", self._keys()[4:], [self._store._now_arg(now), repr(seconds)])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRateBudgetStore:
    """Rate budgets in Redis, shared by every limiter (in any process) given the same URL.

    ``account_id`` binds the store to one Klaviyo account: every key of it, whatever
    credential the limiter was given, draws on ``kbridge:rate:{ACCOUNT_ID|…}``. Give each
    account its own store. Unbound, budgets are keyed by the limiter's account fingerprint.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        account_id: str | None = None,
        time: Literal["server", "caller"] = "server",
        unavailable_timeout: float = 30.0,
        prefix: str = "kbridge:rate",
    ) -> None:
        self._url = url
        self._clock = clock
        self._account_id = account_id
        self._time = time
        self._unavailable_timeout = unavailable_timeout
        self._prefix = prefix
        # a redis.asyncio client belongs to the event loop that made it
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]
        ] = weakref.WeakKeyDictionary()
        self._pending: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        # the URL may carry a password: name only where it points
        return f"RedisRateBudgetStore({self._where()!r}, account_id={self._account_id!r})"

    def _where(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"

    def budget(self, account: str, group: str) -> RedisRateBudget:
        owner = self._account_id if self._account_id is not None else account
        # braces: one budget's keys hash to one cluster slot
        return RedisRateBudget(self, f"{self._prefix}:{{{owner}|{group}}}")

    def _now_arg(self, now: float) -> str:
        return "" if self._time == "server" else repr(now)

    def _client(self) -> tuple[Any, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is None:
            client = aioredis.Redis.from_url(
                self._url, socket_timeout=5.0, socket_connect_timeout=2.0
            )
            scripts = {
                "take": client.register_script(_TAKE),
                "release": client.register_script(_RELEASE),
                "pause": client.register_script(_PAUSE),
            }
            found = self._clients[loop] = (client, scripts)
        return found

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run ``script``; while Redis is unreachable retry with backoff, then give up."""
        deadline = self._clock.monotonic() + self._unavailable_timeout
        backoff = 0.05
        while True:
            _, scripts = self._client()
            try:
                return await scripts[script](keys=keys, args=args)
            except _UNREACHABLE as exc:
                if self._clock.monotonic() >= deadline:
                    raise RateBudgetUnavailableError(
                        f"the shared rate budget at {self._where()} has been unreachable for "
                        f"{self._unavailable_timeout:g} s ({type(exc).__name__}); nothing was "
                        "sent — start Redis again or check --broker"
                    ) from None
                await self._clock.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    def _soon(self, script: str, keys: list[str], args: list[Any]) -> None:
        # Permit.finish is synchronous; a lost release only keeps the arrival at send + jitter,
        # a lost pause only lets another worker draw its own 429
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._best_effort(script, keys, args))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _best_effort(self, script: str, keys: list[str], args: list[Any]) -> None:
        try:
            await self._client()[1][script](keys=keys, args=args)
        except (*_UNREACHABLE, redis.exceptions.RedisError):
            return

    async def flush(self) -> None:
        """Wait for releases and pauses still on their way to Redis."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        """Finish pending releases and close this event loop's connections."""
        await self.flush()
        loop = asyncio.get_running_loop()
        found = self._clients.pop(loop, None)
        if found is not None:
            await found[0].aclose()

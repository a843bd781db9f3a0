"""``AsyncClient`` (the pipeline) and ``Client`` (a blocking facade over it).

Every request takes the same road::

    resolve operation (catalogue) → validate filter / page size → render path
    → rate limiter (wait for every bucket it uses) → auth header → send (httpx)
    → adapt limiter to the response → success: decode JSON:API
                                     → 401 with OAuth: refresh once, resend
                                     → error: error_from_response → retry? (retry.py)
    → one log record per attempt

The client reads no settings from the environment; :meth:`ClientConfig.from_env`
takes the mapping the caller (the CLI) chooses to pass. The one exception is
httpx's own: proxies named in the environment (``HTTPS_PROXY``…) are honoured,
by handing the wire to httpx's transport (see :mod:`kbridge.api.transport`).

The code lives in private modules along the pipeline's seams: the configuration
(``_client_config``), the call and its attempts (``_pipeline``), the public calls
(``_async_client``) and the blocking facade (``_blocking_client``); import from here
or from :mod:`kbridge.api`.
"""

from __future__ import annotations

from kbridge.api._async_client import AsyncClient
from kbridge.api._blocking_client import BlockingService, Client
from kbridge.api._client_config import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    ClientConfig,
    ClientOptions,
)
from kbridge.api._pipeline import JSONAPI as JSONAPI
from kbridge.api._pipeline import ApiResponse

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "ApiResponse",
    "AsyncClient",
    "BlockingService",
    "Client",
    "ClientConfig",
    "ClientOptions",
]

"""The floor every layer stands on: the error root, the clock, the JSON codec."""

from __future__ import annotations

from kbridge.core.clock import Clock, ManualClock, SystemClock
from kbridge.core.errors import ConfigurationError, KbridgeError
from kbridge.core.jsoncodec import dumps, dumps_str, loads

__all__ = [
    "Clock",
    "ConfigurationError",
    "KbridgeError",
    "ManualClock",
    "SystemClock",
    "dumps",
    "dumps_str",
    "loads",
]

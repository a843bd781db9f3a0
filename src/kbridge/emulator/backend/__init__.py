"""The emulator's models and per-tag logic, without HTTP.

:class:`EmulatorBackend` is what http/ calls: ``dispatch(Call) -> Outcome``.
Per-tag modules (profiles, lists, segments, metrics, events, accounts, jobs,
subscriptions) hold one method per Klaviyo operation id; ``store`` holds the
records and indexes.
"""

from __future__ import annotations

from kbridge.emulator.backend.emulator import EmulatorBackend

__all__ = ["EmulatorBackend"]

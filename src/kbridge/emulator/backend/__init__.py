"""The emulator's models and per-tag logic, without HTTP.

:class:`EmulatorBackend` is what http/ calls: ``dispatch(Call) -> Outcome``.
Per-tag modules (profiles, lists, segments, metrics, events, accounts, jobs,
subscriptions) hold one method per Klaviyo operation id; ``store`` holds the
records and indexes.

The per-tag modules take the account's vocabulary (metrics, products, event
properties) from ``vocabulary``, which the generator shares; only
``EmulatorBackend`` (the composition) calls the generator, to load and reset
an account. It is imported lazily: ``kbridge.emulator.datagen`` (and ``dataset``) use this
package's ``ids``, ``models`` and ``vocabulary``, so an eager import here would
make importing the generator first circular.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kbridge.emulator.backend.emulator import EmulatorBackend

__all__ = ["EmulatorBackend"]


def __getattr__(name: str) -> Any:
    if name == "EmulatorBackend":
        from kbridge.emulator.backend.emulator import EmulatorBackend

        return EmulatorBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

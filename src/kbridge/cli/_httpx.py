"""httpx without its own command line, until something asks for it.

``import httpx`` also imports ``httpx._main``, the ``httpx`` console
command, and with it click, pygments and rich's syntax highlighting: about
45 ms of CPU that every kbridge command talking to Klaviyo paid and none uses.
:func:`defer_httpx_cli` puts a stand-in under that name before httpx is
imported; the stand-in loads the real module the first time anything in it is
used (``httpx.main()`` included), so nothing behaves differently.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

__all__ = ["defer_httpx_cli"]

_NAME = "httpx._main"


class _OnDemand(types.ModuleType):
    """Stands for ``httpx._main``; the first attribute asked for loads the real module."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(_real(), attribute)


def _real() -> types.ModuleType:
    if isinstance(sys.modules.get(_NAME), _OnDemand):
        del sys.modules[_NAME]
    return import_module(_NAME)


def _main(*args: Any, **kwargs: Any) -> Any:
    return _real().main(*args, **kwargs)


def defer_httpx_cli() -> None:
    """Before httpx is first imported: leave its command line unloaded until it is used."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    stand_in = _OnDemand(_NAME)
    # httpx's __init__ does `from ._main import main`: the name must resolve without a load
    stand_in.main = _main  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in

"""The root of every error kbridge raises.

Each layer has its own ``errors.py`` whose classes derive from
:class:`KbridgeError`, so a caller can catch everything of ours with one
clause and still tell the layers apart::

    KbridgeError
    ├── ConfigurationError      bad arguments or settings; fix the call (fatal)
    ├── kbridge.api.errors.*    what the Klaviyo API (or the path to it) said
    └── …                       one subtree per layer, documented there
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "KbridgeError"]


class KbridgeError(Exception):
    """Anything kbridge raises on purpose. ``str(err)`` is one clear line."""


class ConfigurationError(KbridgeError, ValueError):
    """An argument or setting is wrong before anything was sent; fix the call."""

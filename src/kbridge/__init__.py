"""kbridge: connect a business to its Klaviyo account.

The layers (see docs/architecture.md): ``core`` and ``catalog`` at the floor,
``api`` (the client) and ``emulator`` (a local Klaviyo) beside each other on
top of them, and ``cli`` composing everything.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

"""The unattended service: shared state for many workers acting for many accounts."""

from __future__ import annotations

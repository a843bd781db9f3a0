"""Errors of the privacy workflows, grouped by what the caller should do::

    KbridgeError
    └── PrivacyError                 a privacy request could not go ahead (fatal for it)
        ├── SubjectError             an identifier or subjects file is unusable; fix the input
        └── ConfirmationRequired     the deletion needs ``--yes`` (ambiguous match, no terminal)

API failures keep their own classes (:mod:`kbridge.api.errors`): a batch
records them per subject as the outcome ``failed`` and goes on.
"""

from __future__ import annotations

from kbridge.core.errors import ConfigurationError, KbridgeError

__all__ = ["ConfirmationRequired", "PrivacyError", "SubjectError"]


class PrivacyError(KbridgeError):
    """A privacy request could not go ahead."""


class SubjectError(PrivacyError, ConfigurationError):
    """An identifier or a subjects file is unusable (nothing was sent)."""


class ConfirmationRequired(PrivacyError):
    """A deletion needs explicit confirmation (``--yes``) before it is requested."""

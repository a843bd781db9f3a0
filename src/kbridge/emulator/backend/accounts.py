"""The one account the emulator serves (``GET /api/accounts`` is the "test my key" call)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbridge.emulator.backend.call import Outcome
from kbridge.emulator.backend.common import TagBackend, not_found
from kbridge.emulator.backend.resource import Resource

if TYPE_CHECKING:
    from kbridge.emulator.backend.call import Call

__all__ = ["AccountsBackend"]


class AccountsBackend(TagBackend):
    operations = frozenset({"get_accounts", "get_account"})

    def _resource(self) -> Resource:
        return Resource("account", self.store.account_id, dict(self.store.account))

    def get_accounts(self, call: Call) -> Outcome:
        return Outcome(data=[self._resource()])

    def get_account(self, call: Call) -> Outcome:
        account_id = self.path_id(call)
        if account_id != self.store.account_id:
            raise not_found("account", account_id)
        return Outcome(data=self._resource())

"""``client.accounts``: the account the key belongs to (also the "test my key" call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kbridge.api.jsonapi import Resource
from kbridge.api.resources._base import Service, list_params

__all__ = ["AccountsService"]


class AccountsService(Service):
    async def get_accounts(
        self, *, fields: Mapping[str, str | Sequence[str]] | None = None
    ) -> list[Resource]:
        """The one account this key or token can see (as a one-element list, like Klaviyo)."""
        params = list_params("get_accounts", fields=fields)
        return list((await self._doc("get_accounts", params=params)).resources)

    async def get_account(
        self, account_id: str, *, fields: Mapping[str, str | Sequence[str]] | None = None
    ) -> Resource:
        params = list_params("get_account", fields=fields)
        return await self._one("get_account", path_params={"id": account_id}, params=params)

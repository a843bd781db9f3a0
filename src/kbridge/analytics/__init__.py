"""Analytics: SQL over the synced warehouse (lifecycle, churn, campaigns, RFM, …).

May import: warehouse, core — never api, never sync. (Lands with the Analytics issue.)
"""

from __future__ import annotations

__all__: list[str] = []

"""Poe's usage API: ``GET /usage/current_balance`` and ``GET /usage/points_history``.

Both need the account's Poe key (Bearer) and cost no points. Failures become
:class:`~poe2openai.errors.ProxyError` like every other call to Poe.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from ..errors import ProxyError, UpstreamError, UpstreamTimeout
from ..jsonlib import JSONDecodeError, loads
from .client import _USER_AGENT, proxy_for
from .stream import error_from_response

__all__ = ["MAX_HISTORY_PAGES", "PoeUsage"]

#: Poe serves at most 100 history entries a page; at most this many pages are read.
MAX_HISTORY_PAGES = 5
_TIMEOUT = aiohttp.ClientTimeout(total=15)
_MAX_BODY = 4 * 1024 * 1024


class PoeUsage:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/usage/"
        self._proxy = proxy_for(base_url)

    async def _get(self, path: str, api_key: str, params: dict[str, str] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                   "User-Agent": _USER_AGENT}
        try:
            async with self._session.get(self._base + path, headers=headers, params=params,
                                         timeout=_TIMEOUT, proxy=self._proxy) as resp:
                if resp.status != 200:
                    raise await error_from_response(resp, "usage request")
                return loads(await resp.content.read(_MAX_BODY))
        except ProxyError:
            raise
        except TimeoutError:
            raise UpstreamTimeout(f"Timed out asking Poe for {path}") from None
        except (aiohttp.ClientError, JSONDecodeError) as exc:
            raise UpstreamError(f"Cannot get {path} from Poe ({type(exc).__name__})") from None

    async def current_balance(self, api_key: str) -> int:
        """The account's point balance."""
        payload = await self._get("current_balance", api_key)
        value = payload.get("current_point_balance") if isinstance(payload, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise UpstreamError("Poe's balance answer has no current_point_balance")
        return int(value)

    async def points_history(self, api_key: str, pages: int = MAX_HISTORY_PAGES
                             ) -> list[dict[str, Any]]:
        """The newest entries first: ``{creation_time (µs), bot_name, query_id, usage_type,
        cost_points}``, at most ``pages`` × 100 of them (Poe keeps 30 days)."""
        out: list[dict[str, Any]] = []
        params = {"limit": "100"}
        for _ in range(max(1, min(pages, MAX_HISTORY_PAGES))):
            payload = await self._get("points_history", api_key, params)
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, list):
                raise UpstreamError("Poe's points history has no 'data' array")
            entries = [e for e in data if isinstance(e, dict)
                       and isinstance(e.get("creation_time"), int | float)
                       and isinstance(e.get("cost_points"), int | float)]
            out += entries
            last = data[-1].get("query_id") if data and isinstance(data[-1], dict) else None
            if not payload.get("has_more") or not isinstance(last, str) or not last:
                break
            params = {"limit": "100", "starting_after": last}
        return out

"""Poe's model list, cached with a TTL and served stale when Poe is unreachable."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .errors import ProxyError
from .poe.client import PoeClient

__all__ = ["ModelCatalog"]

log = logging.getLogger(__name__)

#: After a failed refresh, wait this long before asking Poe again (stale data is served meanwhile).
_RETRY_AFTER_FAILURE = 30.0
#: With nothing cached, a failed fetch is reported to every request for this long.
_FAILURE_MEMORY = 10.0


class ModelCatalog:
    def __init__(self, poe: PoeClient, ttl: float) -> None:
        self._poe = poe
        self._ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._failure: ProxyError | None = None  # the last failure while nothing is cached
        self._failure_until = 0.0

    @property
    def cached(self) -> list[dict[str, Any]] | None:
        return self._models

    async def get(self, api_token: str | None = None, *, refresh: bool = False) -> list[dict[str, Any]]:
        """Poe's raw model entries; one fetch at a time however many requests wait."""
        if self._models is not None and not refresh and time.monotonic() < self._expires:
            return self._models
        if self._models is None and not refresh and self._failure is not None \
                and time.monotonic() < self._failure_until:
            raise self._failure  # Poe failed moments ago: don't make every request wait again
        async with self._lock:
            if self._models is not None and not refresh and time.monotonic() < self._expires:
                return self._models
            if self._models is None and not refresh and self._failure is not None \
                    and time.monotonic() < self._failure_until:
                raise self._failure
            try:
                models = await self._poe.list_models(api_token)
            except ProxyError as err:
                if self._models is None:
                    self._failure = err
                    self._failure_until = time.monotonic() + _FAILURE_MEMORY
                    raise
                log.warning("Poe's model list could not be refreshed (%s); serving the cached one",
                            err.message)
                self._expires = time.monotonic() + min(self._ttl, _RETRY_AFTER_FAILURE)
                return self._models
            self._models = models
            self._failure = None
            self._expires = time.monotonic() + self._ttl
            return models

    def find(self, model_id: str) -> dict[str, Any] | None:
        """A cached entry by id, case-insensitively (Poe's ids changed case over time)."""
        if not self._models:
            return None
        low = model_id.lower()
        for m in self._models:
            if m["id"].lower() == low:
                return m
        return None

"""Stored responses for ``previous_response_id`` and ``GET/DELETE /v1/responses/{id}``.

An in-memory store, bounded by count, bytes and age (``RESPONSES_MAX_STORED``,
``RESPONSES_MAX_BYTES``, ``RESPONSES_TTL``): the oldest entries go first. Each entry
belongs to the API key that created it (kept as a hash); another key sees nothing.
A restart forgets everything, as the README says. The methods are coroutines because
the store shared by several instances (:mod:`poe2openai.cluster.responses`, with
``REDIS_URL``) has the same interface; this one never waits.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..jsonlib import dumps
from ..translate.conversation import Turn

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass(slots=True)
class StoredResponse:
    owner: bytes
    response: dict[str, Any]
    #: The whole conversation, the answer included, as turns.
    turns: list[Turn]
    #: Poe attachments of those turns, by turn index.
    attachments: dict[int, list[dict[str, Any]]]
    created: float
    size: int


def _owner(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


class ResponseStore:
    def __init__(self, max_count: int, max_bytes: int, ttl: float) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._entries: OrderedDict[str, StoredResponse] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, api_key: str, response: dict[str, Any], turns: list[Turn],
                  attachments: dict[int, list[dict[str, Any]]]) -> None:
        if self.max_count <= 0:
            return
        size = len(dumps(response)) + sum(len(t.text) + len(t.reasoning) + sum(
            len(c.arguments) + len(c.name) for c in t.calls) + 64 for t in turns)
        if size > self.max_bytes:
            return
        rid = response["id"]
        self._drop(rid)
        self._entries[rid] = StoredResponse(_owner(api_key), response, turns, attachments,
                                            time.monotonic(), size)
        self._bytes += size
        self._evict()

    async def get(self, api_key: str, rid: str) -> StoredResponse | None:
        self._evict()
        entry = self._entries.get(rid)
        if entry is None or entry.owner != _owner(api_key):
            return None
        return entry

    async def delete(self, api_key: str, rid: str) -> bool:
        if await self.get(api_key, rid) is None:
            return False
        self._drop(rid)
        return True

    def _drop(self, rid: str) -> None:
        old = self._entries.pop(rid, None)
        if old is not None:
            self._bytes -= old.size

    def _evict(self) -> None:
        limit = time.monotonic() - self.ttl
        while self._entries:
            rid, oldest = next(iter(self._entries.items()))
            if (len(self._entries) > self.max_count or self._bytes > self.max_bytes
                    or oldest.created < limit):
                self._drop(rid)
            else:
                break

"""Stored Responses in Redis, so ``previous_response_id`` and ``GET``/``DELETE
/v1/responses/{id}`` work on every instance.

The same bounds as in memory (:mod:`poe2openai.api.response_store`): at most
``RESPONSES_MAX_STORED`` responses and ``RESPONSES_MAX_BYTES`` bytes (here: of the stored
JSON), each for ``RESPONSES_TTL`` seconds, the oldest going first. One Lua script stores
and evicts atomically. Each entry belongs to the hash of the API key that created it;
another key sees nothing.

If Redis fails: a lookup answers 503 (:class:`~.link.SharedStateUnavailable`), never a
404 that would tell the client its conversation is gone; storing is skipped with the
link's warning (the answer has been given already).
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any, Final

from ..api.response_store import StoredResponse
from ..jsonlib import dumps, loads
from ..translate.conversation import ToolCall, Turn
from ..upload_cache import user_hash
from .link import PREFIX, RedisLink, Script, SharedStateDown, SharedStateUnavailable

__all__ = ["SharedResponses", "decode", "encode"]

log = logging.getLogger(__name__)

_FORMAT: Final = 1
_KEYS: Final = [PREFIX + "resp:" + k for k in ("index", "data", "owner", "size", "bytes")]
_TURN_FIELDS: Final = frozenset(f.name for f in fields(Turn))
_CALL_FIELDS: Final = frozenset(f.name for f in fields(ToolCall))

# Shared by the scripts: drop one entry.
_DROP = """
local function drop(r)
  local s = redis.call('HGET', KEYS[4], r)
  if s then redis.call('DECRBY', KEYS[5], s) end
  redis.call('ZREM', KEYS[1], r)
  redis.call('HDEL', KEYS[2], r)
  redis.call('HDEL', KEYS[3], r)
  redis.call('HDEL', KEYS[4], r)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# ARGV: id, blob, owner, size, ttl, max count, max bytes
_PUT = Script(_DROP + """
local rid, size, ttl = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
local maxc, maxb = tonumber(ARGV[6]), tonumber(ARGV[7])
drop(rid)
redis.call('ZADD', KEYS[1], now, rid)
redis.call('HSET', KEYS[2], rid, ARGV[2])
redis.call('HSET', KEYS[3], rid, ARGV[3])
redis.call('HSET', KEYS[4], rid, size)
redis.call('INCRBY', KEYS[5], size)
while true do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #oldest == 0 then break end
  if redis.call('ZCARD', KEYS[1]) > maxc or tonumber(redis.call('GET', KEYS[5])) > maxb
      or tonumber(oldest[2]) < now - ttl then
    drop(oldest[1])
  else
    break
  end
end
for i = 1, 5 do redis.call('EXPIRE', KEYS[i], math.ceil(ttl) + 60) end
return 1
""")

# ARGV: id, owner, ttl. The entry's JSON, or false.
_GET = Script(_DROP + """
local created = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not created then return false end
if tonumber(created) < now - tonumber(ARGV[3]) then
  drop(ARGV[1])
  return false
end
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return false end
return redis.call('HGET', KEYS[2], ARGV[1])
""")

# ARGV: id, owner, ttl. 1 when deleted.
_DELETE = Script(_DROP + """
local created = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not created or tonumber(created) < now - tonumber(ARGV[3])
    or redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then
  return 0
end
drop(ARGV[1])
return 1
""")


def _owner(api_key: str) -> str:
    return user_hash(api_key)


def encode(response: dict[str, Any], turns: list[Turn],
           attachments: dict[int, list[dict[str, Any]]]) -> bytes:
    """An entry as JSON (turns as objects, attachment turn indexes as strings)."""
    return dumps({"v": _FORMAT, "response": response, "turns": turns,
                  "attachments": {str(k): v for k, v in attachments.items()}})


def decode(blob: bytes) -> tuple[dict[str, Any], list[Turn], dict[int, list[dict[str, Any]]]]:
    """The inverse of :func:`encode`; ``ValueError`` for anything else."""
    data = loads(blob)
    if not isinstance(data, dict) or data.get("v") != _FORMAT:
        raise ValueError("not a stored response of this version")
    turns = []
    for raw in data["turns"]:
        turn = {k: v for k, v in raw.items() if k in _TURN_FIELDS}
        turn["calls"] = [ToolCall(**{k: v for k, v in c.items() if k in _CALL_FIELDS})
                         for c in turn.get("calls", [])]
        turns.append(Turn(**turn))
    attachments = {int(k): v for k, v in data["attachments"].items()}
    return data["response"], turns, attachments


class SharedResponses:
    """The stored responses of every instance (see the module docs)."""

    def __init__(self, link: RedisLink, max_count: int, max_bytes: int, ttl: float) -> None:
        self.link = link
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.ttl = ttl

    async def put(self, api_key: str, response: dict[str, Any], turns: list[Turn],
                  attachments: dict[int, list[dict[str, Any]]]) -> None:
        if self.max_count <= 0:
            return
        blob = encode(response, turns, attachments)
        if len(blob) > self.max_bytes:
            return
        try:
            await self.link.run("responses", _PUT, _KEYS, [
                response["id"], blob, _owner(api_key), len(blob), self.ttl, self.max_count,
                self.max_bytes])
        except SharedStateDown:
            log.warning("Response %s was not stored: Redis is unreachable", response["id"])

    async def get(self, api_key: str, rid: str) -> StoredResponse | None:
        owner = _owner(api_key)
        try:
            blob = await self.link.run("responses", _GET, _KEYS, [rid, owner, self.ttl])
        except SharedStateDown:
            raise _unavailable() from None
        if not blob:
            return None
        try:
            response, turns, attachments = decode(blob)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("Stored response %s cannot be read (written by another version?)",
                        rid[:100])
            return None
        return StoredResponse(bytes.fromhex(owner), response, turns, attachments, 0.0,
                              len(blob))

    async def delete(self, api_key: str, rid: str) -> bool:
        try:
            return bool(await self.link.run("responses", _DELETE, _KEYS,
                                            [rid, _owner(api_key), self.ttl]))
        except SharedStateDown:
            raise _unavailable() from None


def _unavailable() -> SharedStateUnavailable:
    return SharedStateUnavailable(
        "Stored responses are unavailable right now (this server's shared store, Redis, "
        "does not answer); retry shortly.", headers={"retry-after": "1"})

"""The Redis client of one process, and what happens when Redis is away or slow.

Every call goes through :meth:`RedisLink.call`, which

* bounds it by ``REDIS_TIMEOUT`` (connecting, waiting for a pooled connection, the
  command and its answer together), so no request waits on Redis longer than that;
* turns any failure into :class:`SharedStateDown`, counts it by use for ``/metrics``
  (``poe2openai_redis_failures_total{use}``), and logs one warning when Redis goes away,
  a reminder every minute while it stays away, and one line when it is back;
* after a failure, fails at once for :data:`RETRY_AFTER` seconds instead of trying
  again, so an outage costs the requests nothing but that first timeout.

What a failure means is the caller's choice: limits let the request through, a stored
response lookup answers 503 (:class:`SharedStateUnavailable`), the upload cache misses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from ..errors import ProxyError
from ..settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["PREFIX", "RETRY_AFTER", "RedisLink", "Script", "SharedStateDown",
           "SharedStateUnavailable", "describe", "instance_id"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Every key this server writes starts with this.
PREFIX: Final = "poe2openai:"
#: After a failed call, calls fail at once for this many seconds.
RETRY_AFTER: Final = 1.0
#: While Redis stays away, the warning is repeated this often (seconds).
REMIND_EVERY: Final = 60.0
#: Connections to Redis per process; more concurrent calls wait for one (within the timeout).
MAX_CONNECTIONS: Final = 32


class SharedStateDown(Exception):
    """Redis did not answer within the timeout, failed, or failed a moment ago."""


class SharedStateUnavailable(ProxyError):
    """503: the shared state (Redis) is unreachable, so the answer is not known."""

    status = 503
    type = "server_error"
    code = "shared_state_unavailable"
    retryable = True


def describe(url: str) -> str:
    """``host:port/db`` of a Redis URL, without user or password (for logs)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path or ''}"


def instance_id(settings: Settings) -> str | None:
    """The ``instance_id`` metric label: ``INSTANCE_ID``; else, with ``REDIS_URL``, the host
    name and port; else none (one instance: the metrics are as they always were)."""
    if settings.instance_id:
        return settings.instance_id
    if settings.redis_url:
        return f"{socket.gethostname()}:{settings.port}"
    return None


class Script:
    """A Lua script, run by its SHA-1 (loaded on first use, and again after a Redis
    restart emptied the script cache)."""

    def __init__(self, lua: str) -> None:
        self.lua = lua
        self.sha = hashlib.sha1(lua.encode()).hexdigest()

    async def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.lua, len(keys), *keys, *args)


class RedisLink:
    """One process's connection pool to ``REDIS_URL`` and its failure policy."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.where = describe(url)
        self.timeout = timeout
        #: Unique per process: names this instance's concurrency slots in Redis.
        self.process = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.up = True  #: whether the last call succeeded
        self.failures: dict[str, int] = {}  #: failed calls by use, for /metrics
        self._client: Redis | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._retry_at = 0.0
        self._down_since = 0.0
        self._reminded = 0.0
        self._failed_while_down = 0
        self._jobs: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` every ``interval`` seconds while the link is open (its failures are
        the job's business; an exception is logged and the job goes on)."""
        self._jobs.append((interval, job))

    async def start(self) -> None:
        from redis.asyncio import ConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = ConnectionPool.from_url(
            self.url, max_connections=MAX_CONNECTIONS,
            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=30)
        self._client = Redis.from_pool(pool)
        try:
            await self.call("ping", lambda r: r.ping())
            log.info("Shared state in Redis at %s (instance %s)", self.where, self.process)
        except SharedStateDown:
            pass  # warned; requests are served anyway and it is tried again
        self._tasks = [asyncio.create_task(self._repeat(i, job), name="redis job")
                       for i, job in self._jobs]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def call(self, use: str, fn: Callable[[Redis], Awaitable[T]]) -> T:
        """``fn(client)`` within the timeout; any failure raises :class:`SharedStateDown`."""
        from redis.exceptions import RedisError

        loop = asyncio.get_running_loop()
        client = self._client
        if client is None or loop.time() < self._retry_at:
            self._count(use, loop.time())
            raise SharedStateDown(f"Redis at {self.where} is unreachable")
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                result = await fn(client)
        except (RedisError, OSError, TimeoutError) as exc:
            reason = "no answer in time" if isinstance(exc, TimeoutError) else \
                f"{type(exc).__name__}: {str(exc)[:200]}"
            self._failed(use, loop.time(), reason)
            raise SharedStateDown(f"Redis at {self.where}: {reason}") from None
        if not self.up:
            self.up = True
            log.warning("Redis at %s answers again after %.0f s (%d calls failed meanwhile)",
                        self.where, loop.time() - self._down_since, self._failed_while_down)
        return result

    async def run(self, use: str, script: Script, keys: Sequence[str],
                  args: Sequence[Any]) -> Any:
        """A Lua script through :meth:`call`."""
        return await self.call(use, lambda r: script(r, keys, args))

    def _count(self, use: str, now: float) -> None:
        self.failures[use] = self.failures.get(use, 0) + 1
        self._failed_while_down += 1
        if now - self._reminded >= REMIND_EVERY:
            self._reminded = now
            log.warning("Redis at %s is still unreachable (%d calls failed so far): limits "
                        "are not enforced and stored responses cannot be read", self.where,
                        self._failed_while_down)

    def _failed(self, use: str, now: float, reason: str) -> None:
        self._retry_at = now + RETRY_AFTER
        if self.up:
            self.up = False
            self._down_since = self._reminded = now
            self._failed_while_down = 0
            log.warning("Redis at %s failed (%s): until it is back, per-key limits are not "
                        "enforced, stored responses answer 503 and uploads are not cached",
                        self.where, reason)
        self._count(use, now)

    async def _repeat(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                log.exception("A periodic Redis job failed")

"""Puts the Redis-backed state in an app in place of the in-process one (``REDIS_URL``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .. import keys
from ..settings import Settings
from .limits import SharedLimits
from .link import RedisLink
from .responses import SharedResponses
from .spacing import SharedSpacing
from .uploads import SharedUploadCache

__all__ = ["install", "shared_limits", "shared_upload_cache"]


def install(app: web.Application, settings: Settings) -> None:
    """The link (opened first, closed last), ``RATE_LIMIT_MS`` and the stored responses.
    The limits and the upload cache follow when they are made: see below."""
    link = RedisLink(settings.redis_url, settings.redis_timeout)
    app[keys.SHARED] = link
    app[keys.RATE_LIMITER] = SharedSpacing(link, settings.rate_limit_ms)
    app[keys.RESPONSES] = SharedResponses(link, settings.responses_max_stored,
                                          settings.responses_max_bytes, settings.responses_ttl)
    app.cleanup_ctx.insert(0, _link_ctx)


async def _link_ctx(app: web.Application) -> AsyncIterator[None]:
    link = app[keys.SHARED]
    await link.start()
    yield
    await link.close()


def shared_limits(app: web.Application) -> SharedLimits:
    return SharedLimits(app[keys.SHARED])


def shared_upload_cache(app: web.Application) -> SharedUploadCache:
    s = app[keys.SETTINGS]
    return SharedUploadCache(app[keys.SHARED], s.url_cache_ttl_seconds, s.url_cache_size_mb)

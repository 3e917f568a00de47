"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from . import keys
from .admin import create_admin_app
from .api.budget import BodyBudget
from .api.cors import add_cors_headers
from .api.ratelimit import RateLimiter
from .api.response_store import ResponseStore
from .api.routes import setup_fallbacks, setup_routes
from .api.streams import ActiveStreams
from .attachments import Uploader
from .cluster.uploads import SharedUploadCache
from .models import ModelCatalog
from .poe.client import PoeClient
from .registry import ModelRegistry
from .settings import Settings
from .team.logs import quiet_malformed_requests
from .team.routes import setup_ops
from .upload_cache import FILE_NAME, UploadCache

__all__ = ["create_app"]

#: At most this many request bodies over ``LARGE_BODY`` bytes are parsed at once (in worker
#: threads), so a burst of huge requests (inline images, PDFs) cannot take every CPU.
#: Receiving them takes no slot: see ``api.body``.
LARGE_BODY_READS = 2

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    # No middlewares, here or in the admin app: see api/guard.py.
    app = web.Application(client_max_size=settings.max_request_size)
    quiet_malformed_requests()
    app[keys.SETTINGS] = settings
    app[keys.REGISTRY] = ModelRegistry(settings.models_path)
    app[keys.STREAMS] = ActiveStreams(settings.keepalive_interval, settings.read_timeout)
    app[keys.LARGE_BODIES] = asyncio.Semaphore(LARGE_BODY_READS)
    app[keys.BODY_BUDGET] = BodyBudget.for_max_request_size(settings.max_request_size)
    if settings.redis_url:  # several instances: limits, responses, uploads in Redis
        from .cluster.wiring import install

        install(app, settings)
    else:
        app[keys.RATE_LIMITER] = RateLimiter(settings.rate_limit_ms)
        app[keys.RESPONSES] = ResponseStore(settings.responses_max_stored,
                                            settings.responses_max_bytes, settings.responses_ttl)
    app.cleanup_ctx.append(_registry_ctx)
    app.cleanup_ctx.append(_poe_ctx)
    app.cleanup_ctx.append(_uploads_ctx)
    app.cleanup_ctx.append(_keepalive_ctx)
    app.on_shutdown.append(_end_streams)
    app.on_response_prepare.append(add_cors_headers)
    setup_routes(app)
    app.add_subapp("/admin", create_admin_app(settings))
    setup_ops(app)  # proxy keys, limits, /metrics, /readyz, usage log (poe2openai.team)
    setup_fallbacks(app)  # 404 and 405 in the face's envelope: after every route
    return app


async def _registry_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load models.yaml, watch it for edits, and reload at once on SIGHUP."""
    registry = app[keys.REGISTRY]
    await registry.load_now()
    watcher = asyncio.create_task(registry.watch(app[keys.SETTINGS].reload_interval),
                                  name="models.yaml watcher")
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        log.info("SIGHUP: reloading %s", registry.source)
        task = loop.create_task(registry.load_now())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    sighup = getattr(signal, "SIGHUP", None)
    installed = False
    if sighup is not None:
        try:
            loop.add_signal_handler(sighup, on_sighup)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # Windows, or not the main thread: polling still works
    try:
        yield
    finally:
        if installed and sighup is not None:
            loop.remove_signal_handler(sighup)
        for task in (watcher, *reloads):
            task.cancel()
        for task in (watcher, *reloads):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _poe_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.connect_timeout,
                                    sock_read=s.read_timeout)
    # No pool limit: every open client stream holds one Poe connection.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    # HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured, resolved once in PoeClient
    # (aiohttp's trust_env would look them up, and read ~/.netrc, on every request).
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        poe = PoeClient(session, s.poe_base_url, s.poe_file_upload_url)
        app[keys.POE] = poe
        app[keys.CATALOG] = ModelCatalog(poe, s.models_cache_ttl)
        yield
        await poe.close()


async def _uploads_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    cache: UploadCache | SharedUploadCache
    if keys.SHARED in app:
        from .cluster.wiring import shared_upload_cache

        cache = shared_upload_cache(app)
    else:
        cache = UploadCache(s.config_dir / FILE_NAME, s.url_cache_ttl_seconds,
                            s.url_cache_size_mb)
    uploader = Uploader(app[keys.POE], cache)
    app[keys.UPLOADER] = uploader
    yield
    await uploader.close()


async def _keepalive_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[keys.STREAMS].run_keepalive())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _end_streams(app: web.Application) -> None:
    await app[keys.STREAMS].shutdown(max(0.0, app[keys.SETTINGS].shutdown_timeout - 1))

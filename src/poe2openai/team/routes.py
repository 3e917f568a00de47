"""``GET /metrics`` and ``GET /readyz``, and the team features' start and stop.

:func:`setup_ops` (called once from ``create_app``) puts a :class:`~.gate.Team` at
``app[TEAM]``, the two routes,
and one cleanup context that loads the proxy keys and watches them, reloads both
``models.yaml`` and the keys on SIGHUP, runs the usage log and keeps the Poe point
balance of ``POE_API_KEY`` fresh. None of this is on the path of ``/healthz``,
``/readyz``, ``/metrics`` or ``/admin``: limits apply only where a face admits a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
from aiohttp import web

from .. import __version__, keys
from ..api.guard import guarded
from ..cluster.limits import SharedLimits
from ..cluster.link import instance_id
from ..errors import ProxyError
from ..jsonlib import dumps
from ..poe.usage import PoeUsage
from .balance import BalanceGuard
from .gate import TEAM, Team
from .keyfile import FILE_NAME as KEYS_FILE
from .keystore import KeyStore
from .limits import Limits
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .usagelog import FILE_NAME as USAGE_FILE
from .usagelog import UsageLog

__all__ = ["POE_USAGE", "READINESS", "Readiness", "setup_ops"]

log = logging.getLogger(__name__)

#: How long a probe of Poe's model list is trusted by /readyz.
PROBE_TTL = 10.0
PROBE_TIMEOUT = 5.0


class Readiness:
    def __init__(self) -> None:
        self.shutting_down = False
        self._probe: tuple[float, str | None] | None = None  # (when, error or None)
        self._lock = asyncio.Lock()

    async def poe_models(self, app: web.Application) -> str | None:
        """None when Poe's model list answered lately (free: no points), else why not."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._probe is not None and loop.time() - self._probe[0] < PROBE_TTL:
                return self._probe[1]
            error: str | None = None
            try:
                token = app[keys.REGISTRY].current.api_token or app[keys.SETTINGS].poe_api_key
                await asyncio.wait_for(app[keys.POE].list_models(token or None), PROBE_TIMEOUT)
            except ProxyError as err:
                error = err.message
            except TimeoutError:
                error = "Poe's model list did not answer in time"
            self._probe = (loop.time(), error)
            return error


READINESS: Final = web.AppKey("team_readiness", Readiness)
POE_USAGE: Final = web.AppKey("team_poe_usage", PoeUsage)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    token = request.config_dict[keys.SETTINGS].metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()):
            return web.Response(status=401, text="401: /metrics needs METRICS_TOKEN as a "
                                "Bearer token.\n", headers={"WWW-Authenticate": "Bearer"})
    body = request.config_dict[TEAM].metrics.render()
    resp = web.Response(body=body, headers={"Cache-Control": "no-store"})
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    ready = app[READINESS]
    registry = app[keys.REGISTRY]
    store = app[TEAM].store
    checks: dict[str, Any] = {}
    # A broken models.yaml at start leaves the defaults in use: not ready. A broken edit
    # later keeps the last good map: still ready (and /admin shows the error).
    checks["models_yaml"] = ("ok" if registry.last_error is None or registry.version != "missing"
                             else registry.last_error.describe())
    checks["proxy_keys"] = "ok" if store.loaded else f"cannot load: {store.last_error}"
    if store.loaded and not store.empty and not app[keys.SETTINGS].poe_api_key:
        # Every request with a proxy key would get 503 server_misconfigured.
        checks["proxy_keys"] = "proxy keys exist but POE_API_KEY is not set"
    checks["poe_models"] = "ok"
    if ready.shutting_down:
        checks["shutdown"] = "shutting down"
    else:
        error = await ready.poe_models(app)
        if error is not None:
            checks["poe_models"] = error
    ok = all(v == "ok" for v in checks.values())
    return _json({"status": "ready" if ok else "not ready", "version": __version__,
                  "checks": checks}, 200 if ok else 503)


def setup_ops(app: web.Application) -> None:
    """Install the team features on the main app (see the module docs)."""
    s = app[keys.SETTINGS]
    metrics_ = Metrics(instance_id(s))
    store = KeyStore(s.config_dir / KEYS_FILE)
    store.on_reload.append(lambda ok: metrics_.reload(KEYS_FILE, ok))
    if not s.poe_api_key:
        store.on_reload.append(lambda ok: _warn_without_server_key(store))
    usage = UsageLog(s.config_dir / USAGE_FILE, s.usage_retention_days)
    limits: Limits | SharedLimits
    if keys.SHARED in app:  # REDIS_URL: the limits hold across instances
        from ..cluster.wiring import shared_limits

        limits = shared_limits(app)
        link = app[keys.SHARED]
        metrics_.live.redis = lambda: (link.up, link.failures)
    else:
        limits = Limits()
    app[TEAM] = Team(store, limits, metrics_, usage, None, s.poe_api_key)
    app[READINESS] = Readiness()
    app.router.add_get("/metrics", guarded(metrics))
    app.router.add_get("/readyz", guarded(readyz))
    app.cleanup_ctx.append(_ops_ctx)
    app.on_shutdown.insert(0, _shutting_down)


async def _shutting_down(app: web.Application) -> None:
    app[READINESS].shutting_down = True


def _warn_without_server_key(store: KeyStore) -> None:
    if store.loaded and not store.empty:
        log.error("%s has proxy keys but POE_API_KEY is not set: requests with a proxy key "
                  "get 503 until it is", store.path)


async def _ops_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    team = app[TEAM]
    live = team.metrics.live
    live.active_streams = lambda: len(app[keys.STREAMS].streams)
    live.upload_cache = lambda: (app[keys.UPLOADER].cache.hits, app[keys.UPLOADER].cache.misses)
    await team.store.load_now()  # its reload hooks warn when POE_API_KEY is missing
    await team.usage.start()
    team.limits.seed_daily(await team.usage.today_by_key())
    tasks = [asyncio.create_task(team.store.watch(s.reload_interval), name="keys watcher"),
             asyncio.create_task(_watch_registry(app), name="models.yaml reload counter")]
    session = aiohttp.ClientSession()
    app[POE_USAGE] = poe_usage = PoeUsage(session, s.poe_base_url)
    if s.poe_api_key:
        key = s.poe_api_key
        team.balance = BalanceGuard(lambda: poe_usage.current_balance(key), s.poe_min_points)
        live.balance = lambda: team.balance.balance if team.balance is not None else None
        tasks.append(asyncio.create_task(_keep_balance(team.balance), name="Poe balance"))
    sighup = _install_sighup(app)
    try:
        yield
    finally:
        if sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if team.balance is not None:
            await team.balance.close()
        await session.close()
        await team.usage.close()


def _install_sighup(app: web.Application) -> bool:
    """SIGHUP reloads models.yaml and the proxy keys, even when a file kept its size and
    modification time. This handler replaces the one that reloads models.yaml alone."""
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return False
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[Any]] = set()

    def on_sighup() -> None:
        log.info("SIGHUP: reloading %s and %s", app[keys.REGISTRY].source, app[TEAM].store.path)
        for coro in (app[keys.REGISTRY].load_now(), app[TEAM].store.reload()):
            task = loop.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)

    try:
        loop.add_signal_handler(sighup, on_sighup)
    except (NotImplementedError, RuntimeError, ValueError):
        return False  # Windows, or not the main thread: polling still works
    return True


async def _watch_registry(app: web.Application) -> None:
    """Counts models.yaml loads for /metrics: the registry replaces its map on every
    successful load and sets a new error object on every failed one."""
    registry, metrics_ = app[keys.REGISTRY], app[TEAM].metrics
    seen_map, seen_error = registry.current, registry.last_error
    metrics_.reload("models.yaml", seen_error is None)  # the load at start
    interval = min(0.2, app[keys.SETTINGS].reload_interval)
    while True:
        await asyncio.sleep(interval)
        if registry.current is not seen_map:
            seen_map = registry.current
            metrics_.reload("models.yaml", True)
        if registry.last_error is not None and registry.last_error is not seen_error:
            metrics_.reload("models.yaml", False)
        seen_error = registry.last_error


async def _keep_balance(guard: BalanceGuard) -> None:
    """Ask for the balance at start and once per TTL, for the gauge and the dashboard."""
    while True:
        await guard.current()
        await asyncio.sleep(guard.ttl)

"""The admin dashboard (``/admin/dashboard``): usage charts, Poe points, proxy keys.

JSON API under ``/admin/api/``: ``keys`` (GET list, POST create: the secret is in that
one answer only), ``keys/{name}/revoke`` (POST), ``usage`` (GET ``?hours=&by=``) and
``points`` (GET: balance and points history of ``POE_API_KEY``). Writes go through the
admin app's CSRF check like every other admin write.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import __version__, keys
from ..errors import ProxyError
from ..jsonlib import JSONDecodeError, loads
from ..team.gate import TEAM
from ..team.keyfile import KeyError_, format_time, parse_expiry
from ..team.routes import POE_USAGE
from .auth import CSRF_HEADER, AddRoute

__all__ = ["setup_ops_routes"]

log = logging.getLogger(__name__)

#: Poe's points history is asked for at most this often (the balance has its own cache).
HISTORY_TTL = 60.0
_HISTORY = web.AppKey("admin_points_history", dict)
_MAX_BODY = 64 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


async def dashboard(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("dashboard.html", request, {
        "csrf_token": request.config_dict[keys.ADMIN_CSRF],
        "csrf_header": CSRF_HEADER,
        "asset_version": __version__,
    })


def _keys_state(request: web.Request) -> dict[str, Any]:
    team = request.config_dict[TEAM]
    store, limits = team.store, team.limits
    now = time.time()
    out = []
    for r in store.records:
        entry = r.public(now)
        entry["used_today"] = limits.used_today(r.name)
        entry["active_requests"] = limits.active(r.name)
        out.append(entry)
    return {"keys": out, "file": str(store.path), "error": store.last_error,
            "server_key": bool(request.config_dict[keys.SETTINGS].poe_api_key)}


async def list_keys(request: web.Request) -> web.Response:
    team = request.config_dict[TEAM]
    await team.store.refresh()
    await team.limits.refresh([r.name for r in team.store.records])  # Redis: shared counts
    return web.json_response(_keys_state(request))


def _int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise KeyError_(f"{name} must be a whole number")


async def create_key(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        return _error(413, "Request too large.")
    try:
        body = loads(await request.content.read(_MAX_BODY))
    except JSONDecodeError as exc:
        return _error(400, f"The request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "Expected a JSON object.")
    store = request.config_dict[TEAM].store
    try:
        models = body.get("models")
        if isinstance(models, str):
            models = [m for m in models.replace(",", " ").split() if m]
        expires = body.get("expires")
        record, secret = await store.create(
            str(body.get("name") or ""), models=models or None, rpm=_int_field(body, "rpm"),
            concurrency=_int_field(body, "concurrency"), daily=_int_field(body, "daily"),
            expires=parse_expiry(expires) if isinstance(expires, str) and expires.strip()
            else None)
    except KeyError_ as exc:
        return _error(400, str(exc))
    except OSError as exc:
        return _error(500, f"Could not write {store.path}: {exc.strerror or exc}")
    log.info("Proxy key %r created from the admin page by %s", record.name, request.remote)
    return web.json_response({"key": record.public(), "secret": secret, **_keys_state(request)},
                             status=201)


async def revoke_key(request: web.Request) -> web.Response:
    store = request.config_dict[TEAM].store
    try:
        record = await store.revoke(request.match_info["name"])
    except KeyError_ as exc:
        return _error(404, str(exc))
    except OSError as exc:
        return _error(500, f"Could not write {store.path}: {exc.strerror or exc}")
    log.info("Proxy key %r revoked from the admin page by %s", record.name, request.remote)
    return web.json_response({"key": record.public(), **_keys_state(request)})


async def usage(request: web.Request) -> web.Response:
    log_ = request.config_dict[TEAM].usage
    by = request.query.get("by", "model")
    if by not in ("model", "key"):
        return _error(400, "by must be 'model' or 'key'.")
    try:
        hours = min(max(float(request.query.get("hours", "24")), 0.1), 24 * 3650)
    except ValueError:
        return _error(400, "hours must be a number.")
    data = await log_.series(hours=hours, by=by)
    if data is None:
        return web.json_response({"available": False, "reason": log_.broken})
    return web.json_response({"available": True, "by": by, **data})


def _daily(history: list[dict[str, Any]]) -> dict[str, Any]:
    days: dict[str, float] = defaultdict(float)
    bots: dict[str, float] = defaultdict(float)
    for e in history:
        day = (format_time(e["creation_time"] / 1_000_000) or "")[:10]
        days[day] += e["cost_points"]
        name = e.get("bot_name")
        bots[name if isinstance(name, str) else "?"] += e["cost_points"]
    top = sorted(bots.items(), key=lambda kv: -kv[1])[:10]
    return {"days": sorted(days.items()), "bots": top}


async def points(request: web.Request) -> web.Response:
    team = request.config_dict[TEAM]
    settings = request.config_dict[keys.SETTINGS]
    if not settings.poe_api_key or team.balance is None:
        return web.json_response({"configured": False})
    refresh = request.query.get("refresh") in ("1", "true")
    balance = await team.balance.current(refresh=refresh)
    out: dict[str, Any] = {
        "configured": True, "balance": balance, "min_points": settings.poe_min_points,
        "checked": format_time(team.balance.checked_at), "balance_error": team.balance.last_error,
    }
    cache = request.app[_HISTORY]
    now = time.monotonic()
    if refresh or cache.get("at") is None or now - cache["at"] > HISTORY_TTL:
        try:
            fresh = await request.config_dict[POE_USAGE].points_history(settings.poe_api_key)
            cache.update(at=now, history=fresh, error=None)
        except ProxyError as err:
            cache.update(at=now, error=err.message)
    history: list[dict[str, Any]] | None = cache.get("history")
    out["history_error"] = cache.get("error")
    if history is not None:
        out["history"] = [{"time": format_time(e["creation_time"] / 1_000_000),
                           "bot": e.get("bot_name"), "points": e["cost_points"],
                           "type": e.get("usage_type")} for e in history[:50]]
        out.update(_daily(history))
    return web.json_response(out)


def setup_ops_routes(add: AddRoute, app: web.Application) -> None:
    app[_HISTORY] = {}
    add("GET", "/dashboard", dashboard)
    add("GET", "/api/keys", list_keys)
    add("POST", "/api/keys", create_key)
    add("POST", "/api/keys/{name}/revoke", revoke_key)
    add("GET", "/api/usage", usage)
    add("GET", "/api/points", points)

"""The admin page and its JSON API (under /admin/api/)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from .. import keys
from ..configfile import MISSING
from ..errors import ProxyError
from ..jsonlib import JSONDecodeError, loads
from ..modelconfig import ConfigError, config_to_json, validate
from ..registry import KEEP, ConfigConflict, ModelRegistry
from .auth import CSRF_HEADER, AddRoute

__all__ = ["mask_token", "setup_routes"]

log = logging.getLogger(__name__)

_ASSET_VERSION = web.AppKey("admin_asset_version", str)

#: The admin page never gets these from the page's JSON; they have their own handling.
_NOT_FROM_PAGE = ("api_token", "use_v1_api")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"message": message, **extra}}, status=status)


def mask_token(token: str | None) -> str | None:
    """Enough of a token to recognise it, never enough to use it."""
    if not token:
        return None
    if len(token) < 16:
        return "•" * 8
    return f"{token[:3]}…{token[-4:]}"


async def index(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("index.html", request, {
        "csrf_token": request.config_dict[keys.ADMIN_CSRF],
        "csrf_header": CSRF_HEADER,
        "asset_version": request.config_dict[_ASSET_VERSION],
    })


async def redirect_to_index(request: web.Request) -> web.Response:
    # Relative, so it also works behind a proxy that mounts the server under a path.
    raise web.HTTPFound("admin/")


def _poe_entry(m: dict[str, Any]) -> dict[str, Any]:
    description = m.get("description")
    owned_by = m.get("owned_by")
    return {
        "id": m["id"],
        "owned_by": owned_by if isinstance(owned_by, str) and owned_by else "Poe",
        "description": description[:300] if isinstance(description, str) else "",
    }


async def _state(request: web.Request, *, refresh_poe: bool = False) -> dict[str, Any]:
    registry: ModelRegistry = request.config_dict[keys.REGISTRY]
    model_map = registry.current
    poe_models: list[dict[str, Any]] = []
    poe_error: str | None = None
    catalog = request.config_dict.get(keys.CATALOG)
    listed: list[str] | None = None
    if catalog is not None:
        try:
            raw = await catalog.get(model_map.api_token, refresh=refresh_poe)
        except ProxyError as err:
            poe_error = err.message
        else:
            poe_models = [_poe_entry(m) for m in raw]
            listed = [m["id"] for m in model_map.list_models(raw)]
    return {
        "version": registry.version,
        "file": {"path": str(registry.path) if registry.path else None,
                 "exists": registry.version != MISSING},
        "error": registry.last_error.to_json() if registry.last_error else None,
        "config": config_to_json(model_map.config),
        "api_token": {"set": model_map.api_token is not None,
                      "hint": mask_token(model_map.api_token)},
        "poe_models": poe_models,
        "poe_error": poe_error,
        "listed": listed,
    }


async def get_state(request: web.Request) -> web.Response:
    registry: ModelRegistry = request.config_dict[keys.REGISTRY]
    await registry.refresh()  # show a hand edit at once, even before the watcher sees it
    refresh = request.query.get("refresh") in ("1", "true", "yes")
    return web.json_response(await _state(request, refresh_poe=refresh))


async def save_config(request: web.Request) -> web.Response:
    registry: ModelRegistry = request.config_dict[keys.REGISTRY]
    try:
        body = loads(await request.read())
    except JSONDecodeError as exc:
        return _error(400, f"The request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "Expected a JSON object.")
    version = body.get("version")
    page_config = body.get("config")
    if not isinstance(version, str) or not isinstance(page_config, dict):
        return _error(400, "Expected {\"version\": string, \"config\": object}.")
    token: Any = KEEP
    if "api_token" in body:
        token = body["api_token"]
        if token is not None and (not isinstance(token, str) or not token.strip()):
            return _error(400, "api_token must be a non-empty string (or null to remove it).")
        if isinstance(token, str):
            token = token.strip()
    try:
        config = validate({k: v for k, v in page_config.items() if k not in _NOT_FROM_PAGE})
    except ConfigError as err:
        return _error(400, err.describe(), where=err.where)
    try:
        await registry.save(config, version, token)
    except ConfigConflict as exc:
        return _error(409, str(exc))
    except ConfigError as err:  # the file on disk broke between load and save
        return _error(409, f"{err.describe()}; fix the file first.")
    except OSError as exc:
        log.error("Could not save %s: %s", registry.source, exc)
        return _error(500, f"Could not write {registry.source}: {exc.strerror or exc}")
    log.info("Model map saved from the admin page by %s", request.remote)
    return web.json_response(await _state(request))


def static_files(static_dir: Path) -> Handler:
    """``GET /static/{name}``: the page's own files, by name (nothing else is reachable)."""
    files = {p.name: p for p in static_dir.iterdir() if p.is_file()}

    async def static_file(request: web.Request) -> web.StreamResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return static_file


def setup_routes(add: AddRoute, app: web.Application, static_dir: Path, *,
                 asset_version: str) -> None:
    app[_ASSET_VERSION] = asset_version
    add("GET", "", redirect_to_index)
    add("GET", "/", index)
    add("GET", "/api/state", get_state)
    add("POST", "/api/config", save_config)
    add("GET", "/static/{name}", static_files(static_dir))

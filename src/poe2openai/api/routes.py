"""URL routes. Every API path answers with and without ``/v1`` (also ``/v1/v1``), with or
without a trailing slash, because clients join base URLs in every possible way."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .. import __version__, keys
from ..errors import ModelNotFound, ProxyError
from ..jsonlib import dumps
from ..team.gate import TEAM
from .chat import chat_completions
from .cors import preflight
from .guard import guarded, method_not_allowed, not_found, wants_anthropic_list
from .images import edit_images, generate_images
from .messages import anthropic_models, count_tokens, create_message
from .responses import create_response, delete_response, get_response

__all__ = ["setup_fallbacks", "setup_routes"]

log = logging.getLogger(__name__)


def _variants(path: str) -> list[str]:
    paths = []
    for prefix in ("/v1", "", "/v1/v1"):
        paths += [prefix + path, prefix + path + "/"]
    return paths


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    models = await _models(request)
    if wants_anthropic_list(request):  # Anthropic clients (Claude Code's model discovery)
        return _json(anthropic_models(models))
    return _json({"object": "list", "data": models})


async def get_model(request: web.Request) -> web.Response:
    wanted = request.match_info["model_id"].rstrip("/").lower()
    for model in await _models(request):
        if model["id"].lower() == wanted:
            if wants_anthropic_list(request):
                return _json(anthropic_models([model])["data"][0])
            return _json(model)
    raise ModelNotFound(f"The model '{request.match_info['model_id']}' does not exist.",
                        param="model")


async def _models(request: web.Request) -> list[dict[str, Any]]:
    """The model list, as far as the client may see it: without proxy keys no key is
    needed (Poe's list is public); with them a proxy key is, and it sees its own models."""
    team = request.app[TEAM]
    team.observe(request, "models")
    if team.store.empty:
        return await _all_models(request)
    access = team.authenticate(request)
    return access.visible(await _all_models(request))


async def _all_models(request: web.Request) -> list[dict[str, Any]]:
    model_map = request.app[keys.REGISTRY].current
    try:
        raw = await request.app[keys.CATALOG].get(model_map.api_token)
    except ProxyError as err:
        # Poe's list is unavailable and nothing is cached: the models the map names
        # (custom models, aliases) are still usable, so list those rather than fail.
        own: list[dict[str, Any]] = model_map.list_models([])
        if not own:
            raise
        log.warning("Poe's model list is unavailable (%s); listing the configured models only",
                    err.message)
        return own
    models: list[dict[str, Any]] = model_map.list_models(raw)
    return models


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok", "version": __version__})


async def root(request: web.Request) -> web.Response:
    """``GET``/``HEAD /``: what this is (Claude Code probes it at start)."""
    return _json({"name": "poe2openai", "version": __version__})


def setup_routes(app: web.Application) -> None:
    """The API routes, each :func:`~.guard.guarded` (a face's handler guards itself)."""
    add = app.router.add_route
    for path, handler in (("/chat/completions", chat_completions),
                          ("/responses", create_response),
                          ("/messages", create_message),
                          ("/messages/count_tokens", guarded(count_tokens)),
                          ("/images/generations", guarded(generate_images)),
                          ("/images/edits", guarded(edit_images))):
        for variant in _variants(path):
            add("POST", variant, handler)
            add("OPTIONS", variant, _preflight)
    get_one, delete_one = guarded(get_response), guarded(delete_response)
    for prefix in ("/v1", "", "/v1/v1"):
        app.router.add_get(prefix + "/responses/{response_id}", get_one)
        add("DELETE", prefix + "/responses/{response_id}", delete_one)
        add("OPTIONS", prefix + "/responses/{response_id}", _preflight)
    models, model = guarded(list_models), guarded(get_model)
    for path in _variants("/models"):
        app.router.add_get(path, models)
        add("OPTIONS", path, _preflight)
    for prefix in ("/v1", "", "/v1/v1"):
        app.router.add_get(prefix + "/models/{model_id:.+}", model)
        add("OPTIONS", prefix + "/models/{model_id:.+}", _preflight)
    app.router.add_get("/healthz", guarded(healthz))
    app.router.add_get("/", guarded(root))


_preflight = guarded(preflight)


def setup_fallbacks(app: web.Application) -> None:
    """Once every route is in: every path answers the methods it lacks with 405, and
    every unknown path with 404, in the face's envelope."""
    refuse = guarded(method_not_allowed)
    for resource in app.router.resources():
        if isinstance(resource, web.Resource) and "*" not in {r.method for r in resource}:
            resource.add_route("*", refuse)
    # [\s\S], not ".": a path may hold a decoded line break (%0a), and must still get a 404.
    app.router.add_route("*", r"/{path:[\s\S]*}", guarded(not_found))

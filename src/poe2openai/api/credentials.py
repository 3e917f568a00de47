"""Who is asking: the client's key, as each face's clients send it."""

from __future__ import annotations

from aiohttp import web

from ..team.gate import TEAM, Access

__all__ = ["authorize"]


def authorize(request: web.Request, face: str) -> Access:
    """Start observing the request for ``face`` and authenticate it: ``Authorization:
    Bearer <key>`` or ``x-api-key: <key>`` on every face. Without proxy keys the key is the
    client's own Poe key; with them it must be an active proxy key (401 otherwise), and the
    server's ``POE_API_KEY`` answers."""
    team = request.app[TEAM]
    team.observe(request, face)
    return team.authenticate(request)

"""The client's key, as each face's clients send it."""

from __future__ import annotations

from aiohttp import web

from ..errors import AuthenticationFailed

__all__ = ["any_key", "bearer_key"]


def bearer_key(request: web.Request) -> str:
    """OpenAI clients: ``Authorization: Bearer <key>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationFailed(
            "Missing API key: send your Poe API key as 'Authorization: Bearer <key>'."
            if not header else
            "Malformed Authorization header: expected 'Bearer <your Poe API key>'."
        )
    return key


def any_key(request: web.Request) -> str:
    """Anthropic clients: ``x-api-key: <key>``, or ``Authorization: Bearer <key>``."""
    key = request.headers.get("x-api-key", "").strip()
    if key:
        return key
    if "Authorization" not in request.headers:
        raise AuthenticationFailed(
            "Missing API key: send your Poe API key as 'x-api-key: <key>' or "
            "'Authorization: Bearer <key>'.")
    return bearer_key(request)

"""The admin page at /admin: edit models.yaml from a browser.

A sub-app; every route of it is protected by HTTP Basic auth and CSRF checks
(:class:`.auth.AdminAuth`), and its errors are not the API's envelopes. Handlers reach the server's state
through ``request.config_dict``.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import __version__, keys
from ..settings import Settings
from .auth import AdminAuth
from .ops_views import setup_ops_routes
from .views import setup_routes

__all__ = ["ADMIN_AUTH", "admin_password", "create_admin_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")

#: Passwords known to everyone (the original project's default among them): never accepted.
WELL_KNOWN_PASSWORDS = frozenset({"123456", "admin", "password", "changeme"})

_ANNOUNCEMENT = web.AppKey("admin_password_announcement", str)
#: The admin's login (its throttle is reachable for tests through here).
ADMIN_AUTH = web.AppKey("admin_auth", AdminAuth)


def admin_password(settings: Settings) -> tuple[str, bool]:
    """The admin password, and whether it was generated for this run."""
    configured = settings.admin_password
    if configured and configured not in WELL_KNOWN_PASSWORDS:
        return configured, False
    return secrets.token_urlsafe(18), True


def create_admin_app(settings: Settings) -> web.Application:
    password, generated = admin_password(settings)
    app = web.Application()  # no middlewares: see .auth
    auth = app[ADMIN_AUTH] = AdminAuth(settings.admin_username, password)
    app[keys.ADMIN_CSRF] = secrets.token_urlsafe(32)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("poe2openai.admin", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app.on_response_prepare.append(_security_headers)
    if generated:
        reason = ("ADMIN_PASSWORD is not set" if not settings.admin_password else
                  "ADMIN_PASSWORD is a well-known default and was refused")
        app[_ANNOUNCEMENT] = (
            f"{reason}, so a random admin password was generated for this run. Log in at "
            f"/admin as user {settings.admin_username!r} with password: {password}  (set "
            "ADMIN_PASSWORD to choose your own; this one changes at every start)")
        app.on_startup.append(_announce_password)
    add = auth.router(app)
    setup_routes(add, app, STATIC_DIR, asset_version=__version__)
    setup_ops_routes(add, app)  # /admin/dashboard: usage, Poe points, proxy keys
    auth.add_fallbacks(app)
    return app


async def _announce_password(app: web.Application) -> None:
    # The one time a secret is logged: the user has no other way to learn it.
    log.warning("%s", app[_ANNOUNCEMENT])


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h.setdefault("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                 "form-action 'self'")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/admin/static/"):
        h.setdefault("Cache-Control", "no-store")

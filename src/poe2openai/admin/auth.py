"""HTTP Basic auth for /admin, and CSRF protection for its writes.

Every /admin route is :meth:`AdminAuth.protect`-ed, rather than the sub-app having
middlewares: aiohttp wraps every request of the whole app tree in one more coroutine once
any app in it has a middleware, and each open API stream would hold it. The header is
parsed here (``aiohttp.BasicAuth`` is deprecated in aiohttp 3.14 and gone in 4.0), user
name and password are both compared in constant time, and wrong logins are throttled per
client address (:mod:`.throttle`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import math
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from .. import keys
from .throttle import LoginThrottle, client_key

__all__ = ["AddRoute", "AdminAuth", "Credentials", "csrf_refusal", "parse_basic"]

#: How the admin views add a route: ``add(method, path, handler)``, the handler protected.
AddRoute = Callable[[str, str, Handler], None]

REALM = "poe2openai admin"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Credentials(NamedTuple):
    login: str
    password: str


def parse_basic(header: str | None) -> Credentials | None:
    """``Authorization: Basic <base64(user:password)>`` → credentials, or None."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")  # what browsers send when the challenge says charset=UTF-8
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    login, sep, password = text.partition(":")
    if not sep:
        return None
    return Credentials(login, password)


def _same(given: str, expected: str) -> bool:
    # compare_digest needs bytes for non-ASCII text.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class AdminAuth:
    """Every /admin request needs the admin user name and password, and every write the
    CSRF checks (:func:`csrf_refusal`).

    A request without credentials just gets the challenge. Wrong credentials count
    against the client's address; once it is locked out, its attempts get 429 with
    ``Retry-After`` and are not checked at all.
    """

    __slots__ = ("_password", "_username", "throttle")

    def __init__(self, username: str, password: str,
                 throttle: LoginThrottle | None = None) -> None:
        self._username, self._password = username, password
        self.throttle = throttle or LoginThrottle()

    def protect(self, handler: Handler) -> Handler:
        """``handler``, answered only for the admin (and for writes, from the page)."""

        @functools.wraps(handler)
        async def protected(request: web.Request) -> web.StreamResponse:
            refused = self.refusal(request) or csrf_refusal(request)
            if refused is not None:
                return refused
            return await handler(request)

        return protected

    def router(self, app: web.Application) -> AddRoute:
        """``add(method, path, handler)`` for ``app``: every route it adds is protected."""

        def add(method: str, path: str, handler: Handler) -> None:
            if method == hdrs.METH_GET:
                app.router.add_get(path, self.protect(handler))
            else:
                app.router.add_route(method, path, self.protect(handler))

        return add

    def add_fallbacks(self, app: web.Application) -> None:
        """Once every route is in: a known path asked with another method, and an unknown
        path, answer 405 and 404, to the admin only (others get the challenge)."""
        refuse = self.protect(_method_not_allowed)
        for resource in app.router.resources():
            if isinstance(resource, web.Resource) and "*" not in {r.method for r in resource}:
                resource.add_route("*", refuse)
        app.router.add_route("*", "/{path:.*}", self.protect(_not_found))

    def refusal(self, request: web.Request) -> web.Response | None:
        """The answer to a request without the admin's credentials; None for the admin."""
        credentials = parse_basic(request.headers.get(hdrs.AUTHORIZATION))
        if credentials is None:
            return self.challenge()
        key = client_key(request.remote)
        wait = self.throttle.wait(key)
        if wait > 0:
            return _locked_out(wait)
        if not self.credentials_ok(*credentials):
            self.throttle.failed(key)
            return self.challenge()
        self.throttle.succeeded(key)
        return None

    def credentials_ok(self, username: str, password: str) -> bool:
        # Both comparisons always run, so the time taken does not tell which one failed.
        user_ok = _same(username, self._username)
        password_ok = _same(password, self._password)
        return user_ok and password_ok

    def challenge(self) -> web.Response:
        return web.Response(
            status=401,
            text="401: Unauthorized. This page needs the admin user name and password "
                 "(ADMIN_USERNAME / ADMIN_PASSWORD).\n",
            headers={
                hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}", charset="UTF-8"',
                hdrs.CACHE_CONTROL: "no-store",
            },
        )


async def _method_not_allowed(request: web.Request) -> web.StreamResponse:
    resource = request.match_info.route.resource
    allowed = {r.method for r in resource} - {"*"} if resource is not None else set()
    raise web.HTTPMethodNotAllowed(request.method, allowed)


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


def _locked_out(wait: float) -> web.Response:
    seconds = max(1, math.ceil(wait))
    return web.Response(
        status=429,
        text=f"429: Too many wrong admin logins from your address. Try again in {seconds} s.\n",
        headers={hdrs.RETRY_AFTER: str(seconds), hdrs.CACHE_CONTROL: "no-store"},
    )


def _forbidden(message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=403)


_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def _origin(scheme: str, netloc: str) -> Origin | None:
    """(scheme, host, port) with the scheme's default port filled in; None if malformed."""
    scheme = scheme.strip().lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    try:
        parts = urlsplit(f"{scheme}://{netloc.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


def _parse_origin(header: str) -> Origin | None:
    try:
        parts = urlsplit(header.strip())
    except ValueError:
        return None
    return _origin(parts.scheme, parts.netloc)


def _first(request: web.Request, name: str) -> str | None:
    value = request.headers.get(name, "").split(",")[0].strip()
    return value or None


def _own_origins(request: web.Request) -> set[Origin]:
    """Where the admin page itself may have been loaded from.

    This server as the request reached it, or as a reverse proxy says the browser reached
    it: ``X-Forwarded-Proto`` replaces the scheme, ``X-Forwarded-Host`` adds a host. A
    browser cannot set those headers on a cross-site request without a CORS preflight,
    which /admin never grants.
    """
    scheme = _first(request, "X-Forwarded-Proto") or request.scheme
    hosts = {request.host, _first(request, "X-Forwarded-Host") or request.host}
    found = (_origin(scheme, host) for host in hosts)
    return {o for o in found if o is not None}


def csrf_refusal(request: web.Request) -> web.Response | None:
    """The answer to a write that may not come from the admin page itself; None when it
    does (and for every read).

    Three checks, any one of which stops a forged request: the browser's
    ``Sec-Fetch-Site`` must not say cross-site, an ``Origin`` must be this
    server (scheme, host and port), and the page's CSRF token must come back in a
    header (a header a cross-site form or a simple fetch cannot set).
    """
    if request.method in _SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return _forbidden(f"Refused a cross-site request (Sec-Fetch-Site: {site}).")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None:
        if _parse_origin(origin) not in _own_origins(request):
            return _forbidden(
                "Refused a request from another site (Origin does not match). Behind a "
                "reverse proxy, pass the Host header through, and set X-Forwarded-Proto "
                "when the proxy terminates HTTPS.")
    token = request.headers.get(CSRF_HEADER, "")
    if not _same(token, request.config_dict[keys.ADMIN_CSRF]):
        return _forbidden("Missing or wrong CSRF token: reload the admin page and try again.")
    return None

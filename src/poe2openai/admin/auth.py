"""HTTP Basic auth for /admin, and CSRF protection for its writes.

Auth builds on aiohttp-basicauth's middleware (the 401 challenge) but uses none of its
parsing or comparing: the header is parsed here (``aiohttp.BasicAuth`` is deprecated in
aiohttp 3.14 and gone in 4.0), user name and password are both compared in constant
time, and wrong logins are throttled per client address (:mod:`.throttle`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from typing import NamedTuple
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp_basicauth import BasicAuthMiddleware

from .. import keys
from .throttle import LoginThrottle, client_key

__all__ = ["AdminAuth", "Credentials", "csrf_middleware", "parse_basic"]

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


class AdminAuth(BasicAuthMiddleware):  # type: ignore[misc]
    """Every /admin request needs the admin user name and password.

    A request without credentials just gets the challenge. Wrong credentials count
    against the client's address; once it is locked out, its attempts get 429 with
    ``Retry-After`` and are not checked at all.
    """

    def __init__(self, username: str, password: str,
                 throttle: LoginThrottle | None = None) -> None:
        super().__init__(username=username, password=password, force=True, realm=REALM)
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        credentials = self.parse_auth_header(request)
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
        return await handler(request)

    def parse_auth_header(self, request: web.Request) -> Credentials | None:
        return parse_basic(request.headers.get(hdrs.AUTHORIZATION))

    def credentials_ok(self, username: str, password: str) -> bool:
        # Both comparisons always run, so the time taken does not tell which one failed.
        user_ok = _same(username, self.username)
        password_ok = _same(password, self.password)
        return user_ok and password_ok

    async def check_credentials(self, username: str, password: str, request: web.Request) -> bool:
        return self.credentials_ok(username, password)

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


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Writes must come from the admin page itself.

    Three checks, any one of which stops a forged request: the browser's
    ``Sec-Fetch-Site`` must not say cross-site, an ``Origin`` must be this
    server (scheme, host and port), and the page's CSRF token must come back in a
    header (a header a cross-site form or a simple fetch cannot set).
    """
    if request.method in _SAFE_METHODS:
        return await handler(request)
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
    return await handler(request)



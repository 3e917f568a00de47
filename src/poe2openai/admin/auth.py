"""HTTP Basic auth for /admin, and CSRF protection for its writes.

Auth uses aiohttp-basicauth's middleware for the flow (check, then 401 with a
challenge) but none of its parsing or comparing: the header is parsed here
(``aiohttp.BasicAuth`` is deprecated in aiohttp 3.14 and gone in 4.0), and user
name and password are both compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import NamedTuple
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp_basicauth import BasicAuthMiddleware

from .. import keys

__all__ = ["AdminAuth", "Credentials", "csrf_middleware", "parse_basic"]

log = logging.getLogger(__name__)

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
    """Every /admin request needs the admin user name and password."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username=username, password=password, force=True, realm=REALM)

    def parse_auth_header(self, request: web.Request) -> Credentials | None:
        return parse_basic(request.headers.get(hdrs.AUTHORIZATION))

    async def check_credentials(self, username: str, password: str, request: web.Request) -> bool:
        # Both comparisons always run, so the time taken does not tell which one failed.
        user_ok = _same(username, self.username)
        password_ok = _same(password, self.password)
        if user_ok and password_ok:
            return True
        log.warning("Wrong admin user name or password from %s", request.remote)
        return False

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


def _forbidden(message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=403)


def _own_hosts(request: web.Request) -> set[str]:
    hosts = {request.host.lower()}
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    return hosts


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Writes must come from the admin page itself.

    Three checks, any one of which stops a forged request: the browser's
    ``Sec-Fetch-Site`` must not say cross-site, an ``Origin`` must be this
    server, and the page's CSRF token must come back in a header (a header a
    cross-site form or a simple fetch cannot set).
    """
    if request.method in _SAFE_METHODS:
        return await handler(request)
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return _forbidden(f"Refused a cross-site request (Sec-Fetch-Site: {site}).")
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is not None:
        netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
        if netloc not in _own_hosts(request):
            return _forbidden("Refused a request from another site (Origin does not match). "
                              "Behind a reverse proxy, pass the Host header through.")
    token = request.headers.get(CSRF_HEADER, "")
    if not _same(token, request.config_dict[keys.ADMIN_CSRF]):
        return _forbidden("Missing or wrong CSRF token: reload the admin page and try again.")
    return await handler(request)



"""The client of Poe's HTTP API: bot queries (read by :class:`.stream.PoeStream`), the model
list, file uploads, and downloads of the files its answers point to (:mod:`.download`).

Every aiohttp failure is turned into a :class:`~poe2openai.errors.ProxyError`
here, so callers deal with one error family. ``CancelledError`` is never caught:
when our client leaves, leaving the ``query()`` block closes Poe's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import urllib.request
from typing import Any
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .. import __version__
from ..errors import (
    InvalidRequest,
    ProxyError,
    UpstreamError,
    UpstreamTimeout,
)
from ..jsonlib import JSONDecodeError, dumps, loads
from .download import fetch_file
from .errors import map_upload_error
from .stream import MAX_ERROR_BODY, Endings, PoeEvent, PoeStream, describe, error_from_response

__all__ = ["PoeClient", "PoeEvent", "PoeStream"]

log = logging.getLogger(__name__)

_USER_AGENT = f"poe2openai/{__version__}"
_LARGE_BODY = 1024 * 1024
_QUERY_HEADERS = CIMultiDict({
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Accept-Encoding": "identity",
    "User-Agent": _USER_AGENT,
})
_UPLOAD_TIMEOUT = 300.0
_MAX_BOT_URLS = 1024


class PoeClient:
    """Poe's HTTP API over one pooled :class:`aiohttp.ClientSession`."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, upload_url: str) -> None:
        self._session = session
        self._bot_url = base_url.rstrip("/") + "/bot/"
        self._models_url = base_url.rstrip("/") + "/v1/models"
        self._upload_url = upload_url
        self._proxy = proxy_for(base_url)
        self._upload_proxy = proxy_for(upload_url)
        self._hosts = (URL(base_url).host or "", URL(upload_url).host or "")
        self._bots: dict[str, str] = {}  # bot name -> its query URL (a few hundred at most)
        self._endings: Endings = set()  # tasks reading the ends of finished answers
        for url, proxy in ((base_url, self._proxy), (upload_url, self._upload_proxy)):
            if proxy:
                log.info("Requests to %s go through the proxy %s", URL(url).host,
                         URL(proxy).with_user(None).with_password(None))

    def query(self, bot: str, body: dict[str, Any], api_key: str) -> PoeStream:
        """The answer of ``bot`` to the query ``body``: use it as ``async with … as stream``."""
        if bot.strip(".") == "":  # "." or ".." would leave the /bot/ path
            raise InvalidRequest(f"{bot!r} is not a valid model name.", param="model")
        # A copy of one prepared set: aiohttp takes it as it is (a dict is converted, and
        # every open stream would keep the converted names).
        headers = _QUERY_HEADERS.copy()
        headers["Authorization"] = f"Bearer {api_key}"
        raw = dumps(body)
        # aiohttp writes large bytes bodies in one go (and warns); a stream is sent in pieces.
        data: bytes | io.BytesIO = io.BytesIO(raw) if len(raw) > _LARGE_BODY else raw
        url = self._bots.get(bot)
        if url is None:
            url = self._bot_url + quote(bot, safe="")
            if len(self._bots) < _MAX_BOT_URLS:  # (a client may send any name)
                self._bots[bot] = url
        return PoeStream((self._session, url, data, headers, self._proxy), self._endings)

    async def close(self) -> None:
        """Stop reading the ends of answers (their connections are dropped); before the
        session closes."""
        for task in list(self._endings):
            task.cancel()
        for task in list(self._endings):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def list_models(self, api_token: str | None = None) -> list[dict[str, Any]]:
        """Poe's public model list (``GET /v1/models``), as the raw ``data`` entries."""
        headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
        if api_token:
            headers["Authorization"] = f"Bearer {api_token}"
        try:
            async with self._session.get(
                self._models_url, headers=headers, timeout=aiohttp.ClientTimeout(total=30),
                proxy=self._proxy,
            ) as resp:
                if resp.status != 200:
                    raise await error_from_response(resp)
                payload = loads(await resp.read())
        except ProxyError:
            raise
        except TimeoutError:
            raise UpstreamTimeout("Timed out fetching Poe's model list") from None
        except (aiohttp.ClientError, JSONDecodeError) as exc:
            raise UpstreamError(f"Cannot fetch Poe's model list: {describe(exc)}") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise UpstreamError("Poe's model list has no 'data' array")
        return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def download(self, url: str) -> tuple[bytes, str]:
        """The bytes and content type of a file an answer points to; only from Poe's hosts
        (its CDN, ``POE_BASE_URL``, ``POE_FILE_UPLOAD_URL``), bounded (see :mod:`.download`)."""
        return await fetch_file(self._session, url, hosts=self._hosts, proxy=proxy_for(url))

    async def upload(
        self,
        api_key: str,
        *,
        data: bytes | None = None,
        filename: str = "file",
        content_type: str = "application/octet-stream",
        download_url: str | None = None,
    ) -> dict[str, Any]:
        """Upload bytes, or hand Poe a URL to fetch itself; returns ``{attachment_url, mime_type}``.

        Errors: Poe's 4xx → 400 ``upload_failed`` (401 → 401, 429 → 429), 5xx and broken
        connections → 502, a timeout → 504.
        """
        form = aiohttp.FormData()
        if download_url is not None:
            form.add_field("download_url", download_url)
            form.add_field("download_filename", filename)
        else:
            body = data or b""
            form.add_field("file", io.BytesIO(body) if len(body) > _LARGE_BODY else body,
                           filename=filename, content_type=content_type)
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": _USER_AGENT}
        try:
            # The session's connect and read timeouts (CONNECT_TIMEOUT, READ_TIMEOUT) apply,
            # and the whole upload may take at most _UPLOAD_TIMEOUT.
            base = self._session.timeout
            timeout = aiohttp.ClientTimeout(total=_UPLOAD_TIMEOUT, sock_connect=base.sock_connect,
                                            sock_read=base.sock_read)
            async with self._session.post(
                self._upload_url, data=form, headers=headers, timeout=timeout,
                proxy=self._upload_proxy,
            ) as resp:
                if resp.status != 200:
                    raise await _upload_error(resp)
                payload = loads(await resp.read())
        except ProxyError:
            raise
        except TimeoutError:
            raise UpstreamTimeout("Timed out uploading an attachment to Poe") from None
        except (aiohttp.ClientError, JSONDecodeError) as exc:
            raise UpstreamError(f"Attachment upload to Poe failed: {describe(exc)}") from None
        if not (isinstance(payload, dict) and isinstance(payload.get("attachment_url"), str)):
            raise UpstreamError("Poe's upload answer has no attachment_url")
        return payload


async def _upload_error(resp: aiohttp.ClientResponse) -> ProxyError:
    try:
        body = await asyncio.wait_for(resp.content.read(MAX_ERROR_BODY), 10)
    except (TimeoutError, aiohttp.ClientError):
        body = b""
    return map_upload_error(resp.status, body, {k.lower(): v for k, v in resp.headers.items()})


def proxy_for(url: str) -> str | None:
    """The outbound proxy for ``url`` from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``, either case), by the standard library's rules; looked up
    once at start, not per request."""
    target = URL(url)
    proxies = urllib.request.getproxies_environment()
    # proxy_bypass_environment is in every CPython (requests uses it) but not in typeshed.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if bypass(target.host or "", proxies):
        return None
    proxy: str | None = proxies.get(target.scheme) or proxies.get("all")
    return proxy

"""The one module that talks to Poe: bot queries, the model list, file uploads, and
downloads of the files its answers point to (:mod:`.download`).

Every aiohttp failure is turned into a :class:`~poe2openai.errors.ProxyError`
here, so callers deal with one error family. ``CancelledError`` is never caught:
when our client leaves, leaving the ``query()`` block closes Poe's connection.
"""

from __future__ import annotations

import asyncio
import io
import logging
import urllib.request
from collections.abc import Coroutine
from time import perf_counter
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
    UpstreamUnavailable,
)
from ..jsonlib import JSONDecodeError, dumps, loads
from .download import fetch_file
from .errors import map_error_event, map_http_error, map_upload_error
from .sse import SSEError, SSEParser

__all__ = ["PoeClient", "PoeEvent", "PoeStream"]

log = logging.getLogger(__name__)

#: ``(event name, data object)`` — e.g. ``("text", {"text": "Hi"})``.
PoeEvent = tuple[str, dict[str, Any]]

_USER_AGENT = f"poe2openai/{__version__}"
_MAX_ERROR_BODY = 65536
_LARGE_BODY = 1024 * 1024
_QUERY_HEADERS = CIMultiDict({
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Accept-Encoding": "identity",
    "User-Agent": _USER_AGENT,
})
_UPLOAD_TIMEOUT = 300.0


class PoeStream(SSEParser):
    """One bot answer: an async context manager that sends the query and yields itself,
    whose events are then read in batches (one network read per batch). It is its own SSE
    parser (one object per open stream, not two: each is touched on every read).

    Entering raises a :class:`ProxyError` when Poe cannot be reached, times out, or
    answers with an HTTP error or a non-SSE body. Leaving returns a finished
    connection to the pool and drops an unfinished one, so Poe stops generating.
    ``read()`` may be cancelled at any time without losing data: the parser is only
    touched after a read has completed.

    Once the headers are in, the silence limit (``POE_READ_TIMEOUT``) is no longer a timer
    re-armed on every network read: whoever holds the stream watches :attr:`waiting` (the
    ticker of ``api/streams.py``) and calls :meth:`expire`; ``read()`` then raises
    :class:`UpstreamTimeout`. The time spent waiting on Poe adds up in :attr:`waited`.
    """

    __slots__ = ("_content", "_request", "_response", "closing", "done", "eof", "timed_out",
                 "waited", "waiting")

    def __init__(self, request: tuple[aiohttp.ClientSession, str, Any, CIMultiDict[str],
                                      str | None]) -> None:
        self._request: tuple[aiohttp.ClientSession, str, Any, CIMultiDict[str],
                             str | None] | None = request
        self._response: aiohttp.ClientResponse | None = None
        self._content: aiohttp.StreamReader | None = None
        super().__init__()
        self.done = False  #: Poe sent ``done``
        self.eof = False  #: the body ended (with or without ``done``)
        self.waiting = 0.0  #: since when (``perf_counter``) a network read waits; 0: none
        self.waited = 0.0  #: seconds spent waiting on Poe's network reads so far
        self.timed_out = False  #: :meth:`expire` ended the answer
        self.closing = False  #: :meth:`shut_down` ended the answer

    async def __aenter__(self) -> PoeStream:
        assert self._request is not None, "a PoeStream is entered once"
        session, url, data, headers, proxy = self._request
        self._request = None  # the body is not kept for the whole answer
        try:
            resp = await session.post(url, data=data, headers=headers, proxy=proxy)
        except TimeoutError:
            raise UpstreamTimeout("Timed out connecting to Poe") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"Cannot reach Poe: {_describe(exc)}") from None
        if resp.status >= 300 or resp.content_type != "text/event-stream":
            try:
                raise await _error_from_response(resp)
            finally:
                resp.close()
        self._response = resp
        self._content = resp.content
        conn = resp.connection
        if conn is not None and conn.protocol is not None:
            # The body's silences are watched per stream (see the class docstring), not by a
            # timer that every network read would cancel and set again. (Each request sets
            # the connection's read timeout anew, so a pooled connection keeps its own.)
            conn.protocol.read_timeout = None
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        resp = self._response
        if resp is not None:
            if self.eof:
                resp.release()
            else:
                # Unfinished answer (client left, error, shutdown): drop the connection so
                # Poe stops generating, instead of draining it.
                resp.close()

    async def read(self) -> list[PoeEvent] | None:
        """The next events; ``None`` once the answer is over. When :meth:`shut_down` ended
        the answer, its failure or end is reported as such (503, retryable)."""
        while (reading := self.next_read()) is not None:
            try:
                chunk = await reading
            except Exception as exc:
                raise self.broke(exc) from None
            except BaseException:  # cancelled (e.g. by a timeout): the wait still counts
                self.stop_waiting()
                raise
            events = self.take(chunk)
            if events:
                return events
        self.end()
        return None

    # What read() does, in steps, for a loop that awaits the network read itself: an
    # open stream then holds no coroutine of read()'s, and resumes none on each read.

    def next_read(self) -> Coroutine[Any, Any, bytes] | None:
        """The next network read, to await and hand to :meth:`take` (its failure to
        :meth:`broke`); None once the answer is over (then :meth:`end`)."""
        if self.done or self.eof:
            return None
        self.waiting = perf_counter()
        return self._content.readany()  # type: ignore[union-attr]

    def take(self, chunk: bytes) -> list[PoeEvent]:
        """The events a network read completed (often none, e.g. a ping)."""
        self.stop_waiting()
        try:
            if chunk:
                pairs = self.feed(chunk)
            elif self.timed_out:
                raise self._ended(_silent())
            else:
                self.eof = True
                pairs = self.feed_eof()
        except SSEError as exc:
            raise UpstreamError(f"Poe sent a malformed event stream: {exc}") from None
        return self._decode(pairs) if pairs else []

    def broke(self, exc: Exception) -> ProxyError:
        """The error that a failed network read ends the answer with; anything but a
        network failure is raised as it is."""
        self.stop_waiting()
        if isinstance(exc, TimeoutError):
            return self._ended(_silent())
        if isinstance(exc, (aiohttp.ClientError, aiohttp.http_exceptions.HttpProcessingError)):
            if self.timed_out or self.closing:
                return self._ended(_silent())
            return UpstreamError(f"Connection to Poe broke: {_describe(exc)}")
        raise exc

    def end(self) -> None:
        """The answer is over: raises when it ended because the server is shutting down."""
        if self.closing:
            raise _shutting_down()

    def stop_waiting(self) -> None:
        """A network read is over (or abandoned): its time adds to :attr:`waited`."""
        if self.waiting:
            self.waited += perf_counter() - self.waiting
            self.waiting = 0.0

    def abort(self) -> None:
        """Drop Poe's connection now; a pending :meth:`read` fails or ends."""
        if self._response is not None:
            self._response.close()

    def expire(self) -> None:
        """Poe has been silent too long: drop the connection; :meth:`read` raises
        :class:`UpstreamTimeout`."""
        self.timed_out = True
        self.abort()

    def shut_down(self) -> None:
        """The server is shutting down: drop the connection; :meth:`read` raises
        :class:`UpstreamUnavailable` (retryable) instead of what the cut caused."""
        self.closing = True
        self.abort()

    def _ended(self, err: ProxyError) -> ProxyError:
        return _shutting_down() if self.closing else err

    def _decode(self, pairs: list[tuple[str, bytes]]) -> list[PoeEvent]:
        events: list[PoeEvent] = []
        for name, data in pairs:
            try:
                obj = loads(data)
            except JSONDecodeError:
                try:  # invalid UTF-8 inside otherwise valid JSON
                    obj = loads(data.decode(errors="replace"))
                except JSONDecodeError:
                    log.debug("ignoring Poe %r event with invalid JSON", name)
                    continue
            if not isinstance(obj, dict):
                continue
            events.append((name, obj))
            if name == "done":
                self.done = True  # anything after "done" is ignored
                break
        return events


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
        return PoeStream((self._session, self._bot_url + quote(bot, safe=""), data, headers,
                          self._proxy))

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
                    raise await _error_from_response(resp)
                payload = loads(await resp.read())
        except ProxyError:
            raise
        except TimeoutError:
            raise UpstreamTimeout("Timed out fetching Poe's model list") from None
        except (aiohttp.ClientError, JSONDecodeError) as exc:
            raise UpstreamError(f"Cannot fetch Poe's model list: {_describe(exc)}") from None
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
            raise UpstreamError(f"Attachment upload to Poe failed: {_describe(exc)}") from None
        if not (isinstance(payload, dict) and isinstance(payload.get("attachment_url"), str)):
            raise UpstreamError("Poe's upload answer has no attachment_url")
        return payload


def _silent() -> UpstreamTimeout:
    return UpstreamTimeout("Poe stopped sending data (read timeout)")


def _shutting_down() -> UpstreamUnavailable:
    return UpstreamUnavailable("The server is shutting down; please retry.")


async def _error_from_response(resp: aiohttp.ClientResponse, what: str = "query") -> ProxyError:
    try:
        body = await asyncio.wait_for(resp.content.read(_MAX_ERROR_BODY), 10)
    except (TimeoutError, aiohttp.ClientError):
        body = b""
    headers = {k.lower(): v for k, v in resp.headers.items()}
    if resp.status < 300:
        # 200 but not an event stream: an error object, or something we cannot use.
        try:
            payload = loads(body)
        except JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            err = payload["error"]
            if "allow_retry" in err or "text" in err:
                return map_error_event(err)
            status = err.get("code") if isinstance(err.get("code"), int) else 502
            return map_http_error(status, body, headers)
        return UpstreamError(
            f"Poe answered the {what} with {resp.content_type or 'no content type'} "
            "instead of an event stream"
        )
    return map_http_error(resp.status, body, headers)


async def _upload_error(resp: aiohttp.ClientResponse) -> ProxyError:
    try:
        body = await asyncio.wait_for(resp.content.read(_MAX_ERROR_BODY), 10)
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


def _describe(exc: BaseException) -> str:
    """A short reason for clients; the full text (hosts, addresses) goes only to the log."""
    log.warning("Poe connection problem: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "Poe closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response was cut off"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return "connection error"
    if isinstance(exc, JSONDecodeError):
        return "invalid JSON"
    return type(exc).__name__

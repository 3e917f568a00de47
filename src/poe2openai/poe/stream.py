"""One bot answer from Poe: :class:`PoeStream` sends the query, then reads Poe's server-sent
events as they arrive. Every aiohttp failure becomes a :class:`~poe2openai.errors.ProxyError`
here; ``CancelledError`` is never caught."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from time import perf_counter
from typing import Any

import aiohttp
from multidict import CIMultiDict

from ..errors import ProxyError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from ..jsonlib import JSONDecodeError, loads
from .errors import map_error_event, map_http_error
from .sse import SSEError, SSEParser

__all__ = ["PoeEvent", "PoeStream", "describe", "error_from_response"]

log = logging.getLogger(__name__)

#: ``(event name, data object)`` — e.g. ``("text", {"text": "Hi"})``.
PoeEvent = tuple[str, dict[str, Any]]

MAX_ERROR_BODY = 65536
#: How long the end of a body may take to come after Poe's ``done``, and how many bytes
#: may still come with it, before its connection is dropped instead of reused.
END_WAIT = 5.0
END_BYTES = 65536

#: The tasks that read the ends of answers already over (see :meth:`PoeStream.__aexit__`).
Endings = set[asyncio.Task[None]]


async def _end_body(resp: aiohttp.ClientResponse) -> None:
    """Read the rest of an answer that sent ``done`` (bounded in time and bytes), then
    return its connection to the pool; drop it if the end does not come."""
    content, left, reused = resp.content, END_BYTES, False
    try:
        async with asyncio.timeout(END_WAIT):
            while left > 0 and (chunk := await content.readany()):
                left -= len(chunk)
        if content.is_eof():
            resp.release()
            reused = True
    except Exception as exc:  # a late or broken end: the connection is dropped, as intended
        log.debug("The end of an answer after done did not come (%s); its connection is "
                  "dropped", type(exc).__name__)
    finally:
        if not reused:
            resp.close()


class PoeStream(SSEParser):
    """One bot answer: an async context manager that sends the query and yields itself,
    whose events are then read in batches (one network read per batch). It is its own SSE
    parser (one object per open stream, not two: each is touched on every read).

    Entering raises a :class:`ProxyError` when Poe cannot be reached, times out, or
    answers with an HTTP error or a non-SSE body. Leaving returns a finished
    connection to the pool and drops an unfinished one, so Poe stops generating. An answer
    that sent ``done`` is finished: when the end of its body has not come yet, a task reads
    it (bounded) and then returns the connection, so that the next query needs no new
    connection (TCP, and TLS with the real Poe) and nobody waits for it.
    ``read()`` may be cancelled at any time without losing data: the parser is only
    touched after a read has completed.

    Once the headers are in, the silence limit (``POE_READ_TIMEOUT``) is no longer a timer
    re-armed on every network read: whoever holds the stream watches :attr:`waiting` (the
    ticker of ``api/streams.py``) and calls :meth:`expire`; ``read()`` then raises
    :class:`UpstreamTimeout`. The time spent waiting on Poe adds up in :attr:`waited`.
    """

    __slots__ = ("_content", "_endings", "_request", "_response", "closing", "done", "eof",
                 "timed_out", "waited", "waiting")

    def __init__(self, request: tuple[aiohttp.ClientSession, str, Any, CIMultiDict[str],
                                      str | None], endings: Endings) -> None:
        self._request: tuple[aiohttp.ClientSession, str, Any, CIMultiDict[str],
                             str | None] | None = request
        self._endings = endings
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
            raise UpstreamError(f"Cannot reach Poe: {describe(exc)}") from None
        if resp.status >= 300 or resp.content_type != "text/event-stream":
            try:
                raise await error_from_response(resp)
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
            if self.eof or self._content.is_eof():  # type: ignore[union-attr]
                resp.release()  # the whole body is in: the connection goes back to the pool
            elif self.done:
                # Poe is done; the end of its body is still on its way.
                task = asyncio.get_running_loop().create_task(_end_body(resp))
                self._endings.add(task)
                task.add_done_callback(self._endings.discard)
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
            return UpstreamError(f"Connection to Poe broke: {describe(exc)}")
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


def _silent() -> UpstreamTimeout:
    return UpstreamTimeout("Poe stopped sending data (read timeout)")


def _shutting_down() -> UpstreamUnavailable:
    return UpstreamUnavailable("The server is shutting down; please retry.")


async def error_from_response(resp: aiohttp.ClientResponse, what: str = "query") -> ProxyError:
    try:
        body = await asyncio.wait_for(resp.content.read(MAX_ERROR_BODY), 10)
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


def describe(exc: BaseException) -> str:
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

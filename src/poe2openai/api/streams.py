"""Open Poe answers: keep-alive comments for streams while Poe is silent, the limit on
Poe's silence (``POE_READ_TIMEOUT``), and ending every answer (streamed or not) within the
bound on shutdown. One ticker visits every open answer, instead of a timer per answer (or
per network read)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from time import perf_counter

from aiohttp import web

from ..poe.client import PoeStream

__all__ = ["ActiveStreams", "StreamState"]

log = logging.getLogger(__name__)


class StreamState:
    """One open Poe answer; ``response`` is the client's stream, or ``None`` for a
    non-streaming request. ``last_write`` is the only thing the per-chunk path updates."""

    __slots__ = ("closing", "keepalive", "last_write", "response", "upstream")

    def __init__(self, response: web.StreamResponse | None, upstream: PoeStream,
                 now: float, keepalive: bytes = b"") -> None:
        self.response = response
        self.keepalive = keepalive  #: what the face writes while Poe is silent
        self.upstream = upstream
        self.last_write = now
        self.closing = False  #: the server is shutting down and ended this stream


class ActiveStreams:
    """Every open Poe answer; streams are visited by one ticker task instead of a timer each."""

    def __init__(self, keepalive_interval: float, read_timeout: float) -> None:
        self.interval = keepalive_interval
        self.read_timeout = read_timeout
        self.streams: set[StreamState] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, state: StreamState) -> None:
        self.streams.add(state)
        self._empty.clear()

    def discard(self, state: StreamState) -> None:
        self.streams.discard(state)
        if not self.streams:
            self._empty.set()

    async def run_keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        tick = max(0.02, min(self.interval, self.read_timeout) / 4)
        limit = self.read_timeout
        while True:
            await asyncio.sleep(tick)
            # First Poe's silences, with no await in between: a client that stops reading
            # (its keep-alive write below waits for room) must not delay anyone's timeout.
            clock = perf_counter()
            for state in list(self.streams):
                waiting = state.upstream.waiting
                if waiting and clock - waiting > limit and not state.closing:
                    state.upstream.expire()  # its reader raises the timeout
            now = loop.time()
            for state in list(self.streams):
                response = state.response
                if response is None or now - state.last_write < self.interval or state.closing:
                    continue
                state.last_write = now
                try:
                    # Bounded: a client that does not read holds up the others' keep-alives
                    # for one tick at most.
                    async with asyncio.timeout(tick):
                        await response.write(state.keepalive)
                except TimeoutError:
                    pass
                except (ConnectionResetError, RuntimeError):
                    # The client left; its handler notices on its own next write or
                    # cancellation. The answer stays registered (silence limit, shutdown).
                    state.response = None
                except Exception:  # pragma: no cover - a bug must not end every keep-alive
                    log.exception("Sending a keep-alive failed")

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109
        """Let answers finish for up to ``timeout`` s, then end the rest cleanly."""
        if not self.streams:
            return
        log.info("Waiting up to %.0f s for %d open answer(s) to finish", timeout,
                 len(self.streams))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), timeout)
        if self.streams:
            log.warning("Ending %d open answer(s) for shutdown", len(self.streams))
        for state in list(self.streams):
            state.closing = True
            state.upstream.shut_down()
        if self.streams:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), 2)

"""The one ticker that visits every open answer: Poe's silence limit must hold for every
stream even when a client stops reading (its keep-alive write never completes)."""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

from poe2openai.api.streams import ActiveStreams, StreamState


class _Upstream:
    """What the ticker reads of a Poe answer: since when a read waits, and expire()."""

    def __init__(self, waiting: float) -> None:
        self.waiting = waiting
        self.expired = asyncio.Event()

    def expire(self) -> None:
        self.expired.set()


class _StalledClient:
    """A client response whose writes wait for room that never comes."""

    def __init__(self) -> None:
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.writes += 1
        await asyncio.Event().wait()


async def test_a_stalled_client_delays_no_silence_limit() -> None:
    streams = ActiveStreams(keepalive_interval=0.05, read_timeout=0.2)
    stalled = _StalledClient()
    loop = asyncio.get_running_loop()
    busy = StreamState(stalled, _Upstream(0.0), loop.time() - 1, b": keep-alive\n\n")  # type: ignore[arg-type]
    silent = _Upstream(perf_counter())
    streams.add(busy)
    streams.add(StreamState(None, silent, loop.time()))  # type: ignore[arg-type]
    ticker = asyncio.create_task(streams.run_keepalive())
    try:
        async with asyncio.timeout(2):
            await silent.expired.wait()  # 0.2 s of silence, whatever the stalled client does
        async with asyncio.timeout(2):
            while stalled.writes < 2:  # noqa: ASYNC110 - watching the ticker go on
                await asyncio.sleep(0.01)
    finally:
        ticker.cancel()
    assert busy in streams.streams  # still watched (silence limit, shutdown drain)


async def test_a_client_that_left_stays_registered_without_keepalives() -> None:
    class Gone:
        writes = 0

        async def write(self, data: bytes) -> Any:
            self.writes += 1
            raise ConnectionResetError

    streams = ActiveStreams(keepalive_interval=0.02, read_timeout=10)
    gone = Gone()
    state = StreamState(gone, _Upstream(0.0), 0.0, b"x")  # type: ignore[arg-type]
    streams.add(state)
    ticker = asyncio.create_task(streams.run_keepalive())
    await asyncio.sleep(0.3)
    ticker.cancel()
    assert gone.writes == 1 and state.response is None and state in streams.streams

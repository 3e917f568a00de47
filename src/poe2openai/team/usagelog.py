"""The usage log behind the admin dashboard: ``$CONFIG_DIR/usage.sqlite3``.

One row per answered API request (time, face, model, key name, status, tokens in and
out, time to first byte, duration), kept ``USAGE_RETENTION_DAYS`` days (0: nothing is
recorded). :meth:`UsageLog.record` only appends to an in-memory list; a background
task hands the list to one worker thread each second, which writes it in one
transaction, so recording never waits on the disk. If the file cannot be opened or is
corrupt, one warning is logged and the dashboard says it has no data; requests are
never affected. A locked file (another process holding a write lock) is retried at the
next flush, keeping at most ``MAX_PENDING`` rows meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = ["FILE_NAME", "MAX_PENDING", "UsageLog"]

log = logging.getLogger(__name__)

FILE_NAME: Final = "usage.sqlite3"
MAX_PENDING: Final = 50_000
#: A chart never has more points than this, nor more series (the rest are "other").
MAX_BUCKETS: Final = 120
#: Bucket sizes a chart steps in (seconds): the smallest that keeps within MAX_BUCKETS.
_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400)
MAX_SERIES: Final = 8
_PURGE_EVERY = 3600.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    ts REAL NOT NULL, face TEXT NOT NULL, model TEXT NOT NULL, key TEXT NOT NULL,
    status INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
    ttfb REAL, duration REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
"""
_Row = tuple[float, str, str, str, int, int, int, float | None, float]
T = TypeVar("T")


class UsageLog:
    def __init__(self, path: Path, retention_days: int, *, flush_interval: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention = retention_days * 86400.0
        self.enabled = retention_days > 0
        self.flush_interval = flush_interval
        self.clock = clock
        #: Why there is no dashboard (the file is broken), or None.
        self.broken: str | None = None if self.enabled else "USAGE_RETENTION_DAYS is 0"
        self.dropped = 0  #: rows lost because too many were waiting
        self._pending: list[_Row] = []
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._purged = 0.0
        self._busy_logged = False

    # ------------------------------------------------------------------ recording

    def record(self, face: str, model: str | None, key_name: str, status: int,
               tokens_in: int | None, tokens_out: int | None, ttfb: float | None,
               duration: float) -> None:
        """Queue one request's row; never blocks, never raises."""
        if self.broken is not None:
            return
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append((self.clock(), face, (model or "-")[:200], key_name[:64],
                              int(status), int(tokens_in or 0), int(tokens_out or 0),
                              ttfb, duration))

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._flusher(), name="usage log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._executor is not None:
            await self._run(self._close, None, empty=None)
            self._executor.shutdown(wait=True)
            self._executor = None

    async def flush(self) -> None:
        """Write what is queued now."""
        if not self._pending or self.broken is not None:
            return
        batch, self._pending = self._pending, []
        kept = await self._run(self._write, batch, batch, create=True)
        if kept and self.broken is None:  # the file was locked: try again next time, oldest first
            room = MAX_PENDING - len(self._pending)
            self.dropped += max(0, len(kept) - room)
            self._pending[:0] = kept[:room]

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self.flush()

    # ------------------------------------------------------------------ queries

    async def series(self, *, hours: float = 24, by: str = "model",
                     bucket: int | None = None) -> dict[str, Any] | None:
        """The dashboard's charts: per ``by`` (``model`` or ``key``) and time bucket,
        requests, errors (status >= 400), tokens in/out, average time to first byte and
        duration. None when there is no usable usage log."""
        if by not in ("model", "key"):
            raise ValueError("by must be 'model' or 'key'")
        span = max(60.0, min(float(hours) * 3600, self.retention or 86400.0))
        least = max(int(bucket or 0), int(span // MAX_BUCKETS) + 1)
        size = next((step for step in _STEPS if step >= least), least)
        end = self.clock()
        start = (int((end - span) // size)) * size
        await self.flush()
        rows = await self._run(self._query, None, by, start, size, empty=[])
        return None if rows is None else _shape(rows, start, end, size)

    async def today_by_key(self) -> dict[str, int]:
        """Requests per key name since 00:00 UTC (restores daily budgets at start)."""
        midnight = (self.clock() // 86400) * 86400
        rows = await self._run(self._today, None, midnight, empty=[])
        return dict(rows or [])

    # ------------------------------------------------------------------ the worker thread

    async def _run(self, fn: Callable[..., T], default: T, *args: Any, create: bool = False,
                   empty: Any = None) -> T:
        """``fn(*args)`` on the worker thread; ``default`` when the log is unusable,
        ``empty`` when there is no file yet and ``create`` is false (a query)."""
        if self.broken is not None:
            return default
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="usage-log")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._guard, fn, default, args, create, empty)

    def _guard(self, fn: Callable[..., T], default: T, args: tuple[Any, ...], create: bool,
               empty: Any) -> T:
        try:
            if self._conn is None:
                if not create and not self.path.exists():
                    return empty  # type: ignore[no-any-return]
                self._conn = self._open()
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                if not self._busy_logged:
                    self._busy_logged = True
                    log.warning("The usage log %s is locked by another process; rows wait "
                                "in memory and are written when it is free", self.path)
                return default
            self._disable(exc)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._disable(exc)
        return default

    def _disable(self, exc: BaseException) -> None:
        self.broken = f"{self.path}: {exc}"
        self._pending = []
        log.warning("The usage log %s cannot be used (%s): the dashboard has no data until "
                    "it is fixed or removed; requests are not affected", self.path, exc)
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, timeout=0.5, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, batch: list[_Row]) -> list[_Row]:
        assert self._conn is not None
        with self._conn:  # one transaction
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   batch)
            now = self.clock()
            if now - self._purged > _PURGE_EVERY:
                self._conn.execute("DELETE FROM requests WHERE ts < ?", (now - self.retention,))
                self._purged = now
        self._busy_logged = False
        return []

    def _query(self, by: str, start: float, size: int) -> list[tuple[Any, ...]]:
        assert self._conn is not None
        col = "model" if by == "model" else "key"  # never from the client as text
        return self._conn.execute(
            f"SELECT CAST(ts / ? AS INTEGER) * ? AS t, {col}, COUNT(*), "
            "SUM(status >= 400), SUM(tokens_in), SUM(tokens_out), AVG(ttfb), AVG(duration) "
            f"FROM requests WHERE ts >= ? GROUP BY t, {col} ORDER BY t",
            (size, size, start)).fetchall()

    def _today(self, midnight: float) -> list[tuple[str, int]]:
        assert self._conn is not None
        return self._conn.execute(
            # Refusals before admission (401, 402, 403, 429) did not use the budget.
            "SELECT key, COUNT(*) FROM requests WHERE ts >= ? "
            "AND status NOT IN (401, 402, 403, 429) GROUP BY key",
            (midnight,)).fetchall()


_FIELDS = ("requests", "errors", "tokens_in", "tokens_out", "ttfb", "latency")


def _shape(rows: list[tuple[Any, ...]], start: float, end: float, size: int
           ) -> dict[str, Any]:
    """Rows → ``{times, series: {field: {name: [values by time]}}, totals: [...]}``."""
    times = list(range(int(start), int(end) + 1, size))
    index = {t: i for i, t in enumerate(times)}
    totals: dict[str, list[float]] = {}
    for _t, name, n, errors, tin, tout, ttfb, dur in rows:
        acc = totals.setdefault(name, [0, 0, 0, 0, 0.0, 0.0, 0])  # + weighted ttfb, dur, ttfb n
        acc[0] += n
        acc[1] += errors or 0
        acc[2] += tin or 0
        acc[3] += tout or 0
        acc[4] += (ttfb or 0.0) * n
        acc[5] += (dur or 0.0) * n
        acc[6] += n if ttfb is not None else 0
    ranked = sorted(totals, key=lambda k: -totals[k][0])
    shown = ranked[:MAX_SERIES] if len(ranked) <= MAX_SERIES else ranked[:MAX_SERIES - 1]
    label = {name: (name if name in shown else "other") for name in ranked}
    names = list(dict.fromkeys(label[n] for n in ranked))
    series: dict[str, dict[str, list[float | None]]] = {
        f: {n: [0 if f not in ("ttfb", "latency") else None] * len(times) for n in names}
        for f in _FIELDS}
    for t, name, n, errors, tin, tout, ttfb, dur in rows:
        i, g = index.get(int(t)), label[name]
        if i is None:
            continue
        for field, value in (("requests", n), ("errors", errors or 0), ("tokens_in", tin or 0),
                             ("tokens_out", tout or 0)):
            series[field][g][i] = (series[field][g][i] or 0) + value
        for field, value in (("ttfb", ttfb), ("latency", dur)):
            if value is not None:  # "other" mixes groups: keep the largest average
                old = series[field][g][i]
                series[field][g][i] = round(value if old is None else max(old, value), 4)
    table = [{"name": n, "requests": a[0], "errors": a[1], "tokens_in": a[2],
              "tokens_out": a[3], "ttfb": round(a[4] / a[6], 4) if a[6] else None,
              "latency": round(a[5] / a[0], 4) if a[0] else None}
             for n, a in ((n, totals[n]) for n in ranked)]
    return {"bucket": size, "start": int(start), "end": int(end), "times": times,
            "series": series, "totals": table}

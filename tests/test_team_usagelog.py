"""The usage log: batched writes, dashboard queries, retention, and a broken or locked file
that never fails recording."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from poe2openai.team.usagelog import UsageLog

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def rows_in(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


async def test_records_are_batched_and_charted(tmp_path: Path) -> None:
    clock = Clock(T0)
    log = UsageLog(tmp_path / "usage.sqlite3", 30, clock=clock)
    await log.start()
    for i in range(5):
        log.record("chat", "GPT-4o", "alice", 200, 10, 20, 0.1 * (i + 1), 1.0)
        clock.t += 60
    log.record("chat", "o3", "bob", 500, 5, 0, None, 0.5)
    log.record("messages", "GPT-4o", "bob", 200, 1, 2, 0.2, 2.0)
    assert not (tmp_path / "usage.sqlite3").exists()  # nothing written on the caller's path
    data = await log.series(hours=1, by="model")
    assert data is not None and rows_in(tmp_path / "usage.sqlite3") == 7
    totals = {t["name"]: t for t in data["totals"]}
    assert totals["GPT-4o"]["requests"] == 6 and totals["GPT-4o"]["tokens_out"] == 102
    assert totals["o3"]["errors"] == 1 and totals["o3"]["ttfb"] is None
    assert totals["GPT-4o"]["ttfb"] == pytest.approx((1.5 + 0.2) / 6, abs=1e-3)
    assert sum(data["series"]["requests"]["GPT-4o"]) == 6
    assert len(data["times"]) == len(data["series"]["requests"]["GPT-4o"]) <= 400
    by_key = await log.series(hours=1, by="key")
    assert by_key is not None and {t["name"] for t in by_key["totals"]} == {"alice", "bob"}
    assert await log.today_by_key() == {"alice": 5, "bob": 2}
    with pytest.raises(ValueError):
        await log.series(by="status; DROP TABLE requests")
    await log.close()


async def test_many_groups_fold_into_other(tmp_path: Path) -> None:
    log = UsageLog(tmp_path / "u.sqlite3", 30, clock=Clock(T0))
    for i in range(12):
        for _ in range(12 - i):
            log.record("chat", f"m{i}", "-", 200, 1, 1, 0.1, 0.2)
    data = await log.series(hours=1)
    assert data is not None
    names = [t["name"] for t in data["totals"]]
    assert names[:3] == ["m0", "m1", "m2"] and len(names) == 12
    assert list(data["series"]["requests"]) == [f"m{i}" for i in range(7)] + ["other"]
    assert sum(data["series"]["requests"]["other"]) == 5 + 4 + 3 + 2 + 1  # m7 to m11
    await log.close()


async def test_retention_purges_old_rows(tmp_path: Path) -> None:
    clock = Clock(T0)
    log = UsageLog(tmp_path / "u.sqlite3", 1, clock=clock)
    log.record("chat", "a", "-", 200, 0, 0, None, 0.1)
    await log.flush()
    clock.t += 2 * 86400 + 3601
    log.record("chat", "b", "-", 200, 0, 0, None, 0.1)
    await log.flush()
    assert rows_in(tmp_path / "u.sqlite3") == 1
    await log.close()


async def test_corrupt_file_means_no_dashboard_not_failures(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "usage.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    log = UsageLog(path, 30)
    await log.start()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            log.record("chat", "m", "-", 200, 1, 1, 0.1, 0.1)
            await log.flush()
        assert await log.series() is None
        log.record("chat", "m", "-", 200, 1, 1, 0.1, 0.1)  # still never raises
    assert log.broken is not None
    warnings = [r for r in caplog.records if "usage log" in r.getMessage()]
    assert len(warnings) == 1 and "requests are not affected" in warnings[0].getMessage()
    await log.close()


async def test_locked_file_keeps_rows_until_it_is_free(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "usage.sqlite3"
    log = UsageLog(path, 30)
    log.record("chat", "m", "-", 200, 1, 1, 0.1, 0.1)
    await log.flush()  # creates the file
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING):
            log.record("chat", "m", "-", 200, 1, 1, 0.1, 0.1)
            log.record("chat", "m", "-", 200, 1, 1, 0.1, 0.1)
            await log.flush()
            await log.flush()
        assert log.broken is None
        assert sum("locked" in r.getMessage() for r in caplog.records) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    await log.flush()
    assert rows_in(path) == 3
    await log.close()


async def test_retention_zero_records_nothing(tmp_path: Path) -> None:
    log = UsageLog(tmp_path / "u.sqlite3", 0)
    await log.start()
    log.record("chat", "m", "-", 200, 1, 1, 0.1, 0.1)
    await log.close()
    assert not (tmp_path / "u.sqlite3").exists() and await log.series() is None

"""The upload cache on its own: SQLite file, TTL, LRU budget, per-key privacy, failures."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from poe2openai.upload_cache import FILE_NAME, UploadCache, cache_key, user_hash

MB = 1 << 20


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[UploadCache]:
    c = UploadCache(tmp_path / "cfg" / FILE_NAME, ttl_seconds=3600, size_mb=2)
    yield c
    await c.close()


def rows(path: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT key, url, mime, size FROM uploads ORDER BY key").fetchall()


async def test_created_on_first_put_only(cache: UploadCache) -> None:
    assert await cache.get("k") is None
    assert not cache.path.exists() and not cache.path.parent.exists()
    await cache.put("k", "https://cdn/a", "image/png", 10)
    assert cache.path.exists()
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    hit = await cache.get("k")
    assert hit is not None and (hit.url, hit.mime, hit.size) == ("https://cdn/a", "image/png", 10)
    with contextlib.closing(sqlite3.connect(cache.path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    first = UploadCache(path, 3600, 10)
    await first.put("k", "https://cdn/a", "image/png", 10)
    await first.close()
    second = UploadCache(path, 3600, 10)
    try:
        assert (await second.get("k")) is not None
    finally:
        await second.close()


async def test_expired_entries_ignored_and_purged(cache: UploadCache,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await cache.put("old", "https://cdn/old", "image/png", 1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3601)
    assert await cache.get("old") is None
    await cache.put("new", "https://cdn/new", "image/png", 1)
    assert [r[0] for r in rows(cache.path)] == ["new"]


async def test_hit_does_not_extend_expiry(cache: UploadCache,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    await cache.put("k", "https://cdn/a", "image/png", 1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3000)
    assert await cache.get("k") is not None
    monkeypatch.setattr(time, "time", lambda: real() + 3700)
    assert await cache.get("k") is None


async def test_least_recently_used_evicted_over_budget(cache: UploadCache,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])

    async def put(key: str, size: int) -> None:
        clock[0] += 1
        await cache.put(key, f"https://cdn/{key}", "image/png", size)

    await put("a", MB // 2)
    await put("b", MB // 2)
    await put("c", MB // 2)
    clock[0] += 1
    assert await cache.get("a") is not None  # a is now the most recently used
    await put("d", MB)  # 2.5 MiB > 2 MiB: b (least recently used) goes
    assert sorted(r[0] for r in rows(cache.path)) == ["a", "c", "d"]
    await put("e", MB)  # c, then a go
    assert sorted(r[0] for r in rows(cache.path)) == ["d", "e"]
    await put("huge", 3 * MB)  # larger than the whole budget: not cached at all
    assert sorted(r[0] for r in rows(cache.path)) == ["d", "e"]


@pytest.mark.parametrize(("ttl", "size"), [(0, 100), (3600, 0)])
async def test_zero_disables(tmp_path: Path, ttl: int, size: int) -> None:
    c = UploadCache(tmp_path / FILE_NAME, ttl, size)
    await c.put("k", "https://cdn/a", "image/png", 1)
    assert await c.get("k") is None
    assert not (tmp_path / FILE_NAME).exists()
    await c.close()


async def test_corrupt_file_one_warning_then_no_cache(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"this is not a database" * 100)
    c = UploadCache(path, 3600, 10)
    with caplog.at_level(logging.WARNING, logger="poe2openai.upload_cache"):
        assert await c.get("k") is None
        await c.put("k", "https://cdn/a", "image/png", 1)
        assert await c.get("k") is None
    await c.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "running without it" in warnings[0].getMessage()
    assert not c.enabled


async def test_unwritable_location_one_warning(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    c = UploadCache(blocker / FILE_NAME, 3600, 10)
    with caplog.at_level(logging.WARNING, logger="poe2openai.upload_cache"):
        await c.put("k", "https://cdn/a", "image/png", 1)
        await c.put("k2", "https://cdn/b", "image/png", 1)
    await c.close()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_database_work_runs_off_the_event_loop(cache: UploadCache,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    original = UploadCache._put

    def spy(self: UploadCache, *args: object) -> None:
        seen.append(threading.current_thread().name)
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(UploadCache, "_put", spy)
    await cache.put("k", "https://cdn/a", "image/png", 1)
    assert seen and seen[0] != threading.main_thread().name
    assert seen[0].startswith("upload-cache")


def test_keys_are_per_user_and_hide_the_key() -> None:
    alice, bob = user_hash("sk-alice"), user_hash("sk-bob")
    assert alice != bob and "sk-alice" not in alice
    assert cache_key(alice, "data", "abc") != cache_key(bob, "data", "abc")
    assert cache_key(alice, "data", "abc") != cache_key(alice, "url", "abc")
    url_key = cache_key(alice, "url", "https://ex.com/secret?token=1")
    assert "secret" not in url_key and len(url_key) == 64

"""Two real server processes sharing one real Redis (``REDIS_URL``) behave as one server:
a key's rpm and concurrency limits hold across both, a response stored through one
continues through the other, an image uploaded through one is a cache hit on the other,
and both keep answering while Redis is gone, then share again once it is back."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fake_poe import FakePoe, Received, done, text
from tests.helpers import chat_body, wait_until
from tests.redis_server import RedisServer, free_port, running_redis
from tests.test_shared_state import metric

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

POE_KEY = "poe-server-key-SECRET-0123"
REDIS_PASSWORD = "redis-pass-SECRET-9876"
METRICS_TOKEN = "scrape-token"


@dataclass
class Instance:
    url: str
    proc: asyncio.subprocess.Process
    http: aiohttp.ClientSession

    async def post(self, path: str, key: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body,
                                  headers={"Authorization": f"Bearer {key}"}) as resp:
            return resp.status, await resp.json(content_type=None)

    async def get(self, path: str, key: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path,
                                 headers={"Authorization": f"Bearer {key}"}) as resp:
            return resp.status, await resp.json(content_type=None)

    async def metrics(self) -> str:
        async with self.http.get(self.url + "/metrics",
                                 headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as resp:
            return await resp.text()


@dataclass
class Cluster:
    a: Instance
    b: Instance
    redis: RedisServer
    config: Path
    logs: list[bytes]


async def _start(name: str, fake: FakePoe, redis: RedisServer, config: Path,
                 http: aiohttp.ClientSession) -> Instance:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "CONFIG_DIR": str(config),
           "POE_BASE_URL": fake.base_url,
           "POE_FILE_UPLOAD_URL": fake.base_url + "/poe_api/file_upload_3RD_PARTY_POST",
           "POE_API_KEY": POE_KEY, "REDIS_URL": redis.url, "REDIS_TIMEOUT": "0.3",
           "INSTANCE_ID": name, "METRICS_TOKEN": METRICS_TOKEN, "ADMIN_PASSWORD": "x" * 16,
           "SHUTDOWN_TIMEOUT": "2", "LOG_LEVEL": "info", "CONFIG_RELOAD_INTERVAL": "0.1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poe2openai", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    inst = Instance(f"http://127.0.0.1:{port}", proc, http)

    async def up() -> bool:
        try:
            async with http.get(inst.url + "/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return proc.returncode is not None

    assert await wait_until(up) and proc.returncode is None
    return inst


async def _stop(inst: Instance) -> bytes:
    if inst.proc.returncode is None:
        inst.proc.send_signal(signal.SIGTERM)
    try:
        out, _ = await asyncio.wait_for(inst.proc.communicate(), 15)
    except TimeoutError:
        inst.proc.kill()
        out, _ = await inst.proc.communicate()
    return out


@pytest.fixture
async def cluster(fake_poe: FakePoe, tmp_path: Path) -> AsyncIterator[Cluster]:
    # Each its own CONFIG_DIR, as on two hosts (the proxy keys are copied to both, as
    # configuration management would): nothing is shared but Redis.
    config = tmp_path / "config"
    for name in ("a", "b"):
        (config / name).mkdir(parents=True)
    logs: list[bytes] = []
    async with AsyncExitStack() as stack:
        redis = await stack.enter_async_context(
            running_redis(tmp_path / "redis", REDIS_PASSWORD))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        a, b = await asyncio.gather(_start("a", fake_poe, redis, config / "a", http),
                                    _start("b", fake_poe, redis, config / "b", http))
        try:
            yield Cluster(a, b, redis, config, logs)
        finally:
            logs.extend(await asyncio.gather(_stop(a), _stop(b)))
            log = b"".join(logs).decode(errors="replace")
            assert REDIS_PASSWORD not in log and POE_KEY not in log
            assert a.proc.returncode == 0 and b.proc.returncode == 0, log[-3000:]


def _key(cluster: Cluster, name: str, **limits: int) -> str:
    from poe2openai.team.keyfile import FILE_NAME, create_key

    _, secret = create_key(cluster.config / "a" / FILE_NAME, name, **limits)
    copy = cluster.config / "b" / (FILE_NAME + ".new")
    shutil.copy2(cluster.config / "a" / FILE_NAME, copy)
    copy.replace(cluster.config / "b" / FILE_NAME)
    return secret


async def _await_key(cluster: Cluster, secret: str) -> None:
    """Both instances have read the keys file (they poll it)."""
    async def known() -> bool:
        for inst in (cluster.a, cluster.b):
            if (await inst.get("/v1/models", secret))[0] != 200 \
                    or (await inst.get("/v1/models", "p2o-unknown"))[0] != 401:
                return False
        return True

    assert await wait_until(known)


async def test_rpm_limit_holds_across_instances(cluster: Cluster) -> None:
    secret = _key(cluster, "alice", rpm=3)
    await _await_key(cluster, secret)
    statuses = []
    for inst in (cluster.a, cluster.b) * 3:
        status, body = await inst.post("/v1/chat/completions", secret, chat_body())
        statuses.append(status)
    assert statuses == [200, 200, 200, 429, 429, 429], statuses
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert "3 requests a minute" in body["error"]["message"]


async def test_concurrency_cap_holds_across_instances(cluster: Cluster,
                                                      fake_poe: FakePoe) -> None:
    secret = _key(cluster, "bob", concurrency=2)
    await _await_key(cluster, secret)
    release = asyncio.Event()

    async def held(_: Received) -> list[Any]:
        await release.wait()
        return [text("Done."), done()]

    fake_poe.script("GPT-4o", held)
    fake_poe.clear()
    tasks = [asyncio.create_task(inst.post("/v1/chat/completions", secret, chat_body()))
             for inst in (cluster.a, cluster.b) * 3]

    async def settled() -> bool:
        return sum(t.done() for t in tasks) == 4 and len(fake_poe.queries) == 2

    try:
        assert await wait_until(settled), (len(fake_poe.queries), [t.done() for t in tasks])
    finally:
        release.set()
    results = await asyncio.gather(*tasks)
    assert sorted(status for status, _ in results) == [200, 200, 429, 429, 429, 429]
    assert len(fake_poe.queries) == 2
    # The slots were given back.
    assert (await cluster.b.post("/v1/chat/completions", secret, chat_body()))[0] == 200
    assert (await cluster.a.post("/v1/chat/completions", secret, chat_body()))[0] == 200


async def test_response_stored_by_one_continues_on_the_other(cluster: Cluster,
                                                             fake_poe: FakePoe) -> None:
    key = "client-poe-key-1"  # pass-through: the client's own Poe key owns its responses
    fake_poe.script("GPT-4o", [text("The word is 'teal'."), done()])
    status, first = await cluster.a.post("/v1/responses", key,
                                         {"model": "GPT-4o", "input": "Pick a word."})
    assert status == 200
    fake_poe.script("GPT-4o", [text("It was 'teal'."), done()])
    status, second = await cluster.b.post(
        "/v1/responses", key, {"model": "GPT-4o", "input": "Which word?",
                               "previous_response_id": first["id"]})
    assert status == 200, second
    assert second["previous_response_id"] == first["id"]
    query = fake_poe.last.query  # type: ignore[union-attr]
    assert [m["content"] for m in query] == ["Pick a word.", "The word is 'teal'.", "Which word?"]
    # And back again, through the first.
    status, third = await cluster.a.post(
        "/v1/responses", key, {"model": "GPT-4o", "input": "Again?",
                               "previous_response_id": second["id"]})
    assert status == 200, third
    assert len(fake_poe.last.query) == 5  # type: ignore[union-attr]
    assert (await cluster.b.get(f"/v1/responses/{first['id']}", "another-key"))[0] == 404


async def test_image_uploaded_through_one_is_a_hit_on_the_other(cluster: Cluster,
                                                                fake_poe: FakePoe) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x07" * 2048
    body = {"model": "GPT-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(png).decode()}}]}]}
    assert (await cluster.a.post("/v1/chat/completions", "client-key", body))[0] == 200
    assert len(fake_poe.uploads) == 1
    assert (await cluster.b.post("/v1/chat/completions", "client-key", body))[0] == 200
    assert len(fake_poe.uploads) == 1
    attachment = fake_poe.last.query[-1]["attachments"][0]  # type: ignore[union-attr]
    assert attachment["url"] == fake_poe.queries[0].query[-1]["attachments"][0]["url"]
    hits = metric(await cluster.b.metrics(), "poe2openai_upload_cache_lookups_total",
                  result="hit", instance_id="b")
    assert hits == 1


async def test_redis_stopped_mid_run_then_back(cluster: Cluster, fake_poe: FakePoe) -> None:
    secret = _key(cluster, "carol", rpm=2)
    owner = _key(cluster, "dave")  # no limits: owns the stored responses
    await _await_key(cluster, secret)
    fake_poe.script("GPT-4o", [text("Stored."), done()])
    status, stored = await cluster.a.post("/v1/responses", owner,
                                          {"model": "GPT-4o", "input": "Keep this."})
    assert status == 200

    await cluster.redis.stop()
    # Both keep answering; the rpm limit of 2 lets more through (fail open).
    for inst in (cluster.a, cluster.b) * 2:
        assert (await inst.post("/v1/chat/completions", secret, chat_body()))[0] == 200
    # A stored response cannot be read: a clear 503 on either, not a 404.
    for inst in (cluster.a, cluster.b):
        status, body = await inst.get(f"/v1/responses/{stored['id']}", owner)
        assert status == 503 and body["error"]["code"] == "shared_state_unavailable"
    for inst, name in ((cluster.a, "a"), (cluster.b, "b")):
        scraped = await inst.metrics()
        assert metric(scraped, "poe2openai_redis_up", instance_id=name) == 0
        assert (metric(scraped, "poe2openai_redis_failures_total", use="limits") or 0) >= 1

    await cluster.redis.start()  # back, empty (no persistence)

    async def limited() -> bool:  # the limit holds again: 3 requests cannot all pass
        statuses = [(await inst.post("/v1/chat/completions", secret, chat_body()))[0]
                    for inst in (cluster.a, cluster.b, cluster.a)]
        return 429 in statuses

    assert await wait_until(limited)
    fake_poe.script("GPT-4o", [text("Stored again."), done()])
    status, again = await cluster.b.post("/v1/responses", owner,
                                         {"model": "GPT-4o", "input": "Keep this too."})
    assert status == 200
    status, body = await cluster.a.get(f"/v1/responses/{again['id']}", owner)
    assert status == 200 and body["id"] == again["id"]
    for inst in (cluster.a, cluster.b):
        assert metric(await inst.metrics(), "poe2openai_redis_up") == 1
    logs = b"".join(await asyncio.gather(_stop(cluster.a), _stop(cluster.b))).decode()
    cluster.logs.append(logs.encode())
    assert "per-key limits are not enforced" in logs and "answers again" in logs

"""Proxy keys and limits on the real API faces (Chat, Responses, Messages), against the fake
Poe: who is let in, which Poe key answers, which models a key sees, and the limits under
concurrent load, each in the face's own error envelope."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai.team.gate import TEAM
from poe2openai.team.keyfile import FILE_NAME, create_key, revoke_key
from tests.faces import FACES, PATHS, ask, body, face_error, key_headers
from tests.fake_poe import FakePoe, Received, Step, done, text, wait
from tests.helpers import assert_openai_error

SERVER_KEY = "poe-server-key-0123456789"
ADMIN = {"Authorization": "Basic YWRtaW46dGVzdC1wYXNzd29yZA=="}  # admin:test-password
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\1" * 64).decode()
Client = TestClient[Any, Any]
Make = Callable[..., Awaitable[Client]]


@pytest.fixture
def make(make_proxy: Make) -> Make:
    return make_proxy


def _no_secret_reached_poe(fake: FakePoe, secret: str) -> None:
    for rec in fake.requests:
        assert secret not in rec.raw_body.decode(errors="replace")
        assert all(secret not in v for v in rec.headers.values())


async def test_pass_through_on_every_face(make: Make, fake_poe: FakePoe) -> None:
    """No keys file: each client's own Poe key goes upstream (never the server's), as
    Bearer or x-api-key on every face; no key at all is 401 in the face's envelope."""
    client = await make(poe_api_key=SERVER_KEY)
    for face in FACES:
        resp = await ask(client, face, f"mine-{face}")
        assert resp.status == 200, await resp.text()
        assert fake_poe.last is not None and fake_poe.last.api_key == f"mine-{face}"
        other = await client.post(PATHS[face], json=body(face),
                                  headers={**key_headers(face, None), "x-api-key": "also-mine"}
                                  if face != "messages" else
                                  key_headers(face, "also-mine", bearer=True))
        assert other.status == 200 and fake_poe.last.api_key == "also-mine"
        message = await face_error(await ask(client, face, None), face, 401,
                                   code="invalid_api_key")
        assert "Missing API key" in message
    assert {q.api_key for q in fake_poe.queries} == {
        "mine-chat", "mine-responses", "mine-messages", "also-mine"}
    assert (await client.get("/v1/models")).status == 200  # Poe's list needs no key


async def test_proxy_keys_on_every_face(make: Make, fake_poe: FakePoe, tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    _, alice = create_key(path, "alice", models=["claude-*", "gpt-4o"])
    _, gone = create_key(path, "gone")
    revoke_key(path, "gone")
    _, old = create_key(path, "old", expires=time.time() + 3600)
    client = await make(poe_api_key=SERVER_KEY)
    for face in FACES:
        for model in ("GPT-4o", "Claude-Sonnet-4.5"):
            resp = await ask(client, face, alice, model, stream=model != "GPT-4o")
            assert resp.status == 200, await resp.text()
            await resp.read()
            assert fake_poe.last is not None and fake_poe.last.api_key == SERVER_KEY
        # The model allow-list: 403 naming the model (and the key), before Poe is asked.
        asked = len(fake_poe.requests)
        message = await face_error(await ask(client, face, alice, "o3-pro"), face, 403,
                                   code="model_not_allowed")
        assert "'o3-pro'" in message and "alice" in message
        assert len(fake_poe.requests) == asked
        # Unknown, revoked, expired, missing, or the client's own Poe key: 401.
        unknown = "p2o-" + "A" * 43
        for key, says in ((unknown, "Unknown API key"), (gone, "revoked"),
                          ("my-own-poe-key", "proxy keys"), (None, "Missing API key")):
            message = await face_error(await ask(client, face, key), face, 401,
                                       code="invalid_api_key")
            assert says in message, message
    # Either header works on every face.
    resp = await client.post(PATHS["chat"], json=body("chat"), headers={"x-api-key": alice})
    assert resp.status == 200
    resp = await client.post(PATHS["messages"], json=body("messages"),
                             headers=key_headers("messages", alice, bearer=True))
    assert resp.status == 200
    # count_tokens (Messages; never a Poe query) checks the model too.
    count = "/v1/messages/count_tokens"
    ok = await client.post(count, json=body("messages"), headers=key_headers("messages", alice))
    assert ok.status == 200 and (await ok.json())["input_tokens"] > 0
    message = await face_error(
        await client.post(count, json=body("messages", "o3-pro"),
                          headers=key_headers("messages", alice)), "messages", 403)
    assert "'o3-pro'" in message
    # Uploads go with the server's key too.
    with_image = {"model": "GPT-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": PNG}}]}]}
    resp = await client.post(PATHS["chat"], json=with_image, headers=key_headers("chat", alice))
    assert resp.status == 200, await resp.text()
    assert [u.api_key for u in fake_poe.uploads] == [SERVER_KEY]
    # Expiry is checked at each request (the store's clock set past the expiry here).
    assert (await ask(client, "chat", old)).status == 200
    client.app[TEAM].store.clock = lambda: time.time() + 7200
    for face in FACES:
        message = await face_error(await ask(client, face, old), face, 401)
        assert "expired" in message
    assert {q.api_key for q in fake_poe.queries} == {SERVER_KEY}
    for secret in (alice, gone, old):
        _no_secret_reached_poe(fake_poe, secret)


async def test_model_list_shows_only_the_keys_models(make: Make, fake_poe: FakePoe,
                                                     tmp_path: Path) -> None:
    _, alice = create_key(tmp_path / FILE_NAME, "alice", models=["claude-*", "gpt-4o"])
    client = await make(poe_api_key=SERVER_KEY)
    everything = {m["id"] for m in fake_poe.models}
    assert {"gpt-4o", "claude-sonnet-4.5"} < everything
    listed = await (await client.get("/v1/models", headers=key_headers("chat", alice))).json()
    assert listed["object"] == "list"
    assert {m["id"] for m in listed["data"]} == {"gpt-4o", "claude-sonnet-4.5"}
    # The Anthropic shape (Claude Code's model discovery) is filtered the same way.
    for headers in (key_headers("messages", alice),
                    {"Authorization": f"Bearer {alice}", "anthropic-version": "2023-06-01"}):
        anthropic = await (await client.get("/v1/models", headers=headers)).json()
        assert {m["id"] for m in anthropic["data"]} == {"gpt-4o", "claude-sonnet-4.5"}
        assert all(m["type"] == "model" for m in anthropic["data"])
    # One model: only the key's own.
    assert (await client.get("/v1/models/gpt-4o", headers=key_headers("chat", alice))).status \
        == 200
    await assert_openai_error(
        await client.get("/v1/models/gpt-5.2", headers=key_headers("chat", alice)), 404)
    # With proxy keys the list needs one too, in the envelope the client expects.
    await assert_openai_error(await client.get("/v1/models"), 401, code="invalid_api_key")
    await face_error(await client.get("/v1/models", headers={"anthropic-version": "2023-06-01"}),
                     "messages", 401)
    await face_error(await client.get("/v1/models", headers=key_headers("messages", "p2o-x")),
                     "messages", 401)


async def test_proxy_keys_without_server_key_are_503(make: Make, fake_poe: FakePoe,
                                                     tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "k")
    client = await make()
    for face in FACES:
        message = await face_error(await ask(client, face, secret), face, 503,
                                   code="server_misconfigured")
        assert "POE_API_KEY" in message
    assert fake_poe.requests == []


def _held(release: asyncio.Event) -> Callable[[Received], Awaitable[list[Step]]]:
    """A fake Poe answer that starts only once ``release`` is set."""
    async def steps(rec: Received) -> list[Step]:
        await release.wait()
        return [text("ok"), done()]

    return steps


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_concurrency_limit_under_concurrent_load(make: Make, fake_poe: FakePoe,
                                                       tmp_path: Path) -> None:
    _, conc = create_key(tmp_path / FILE_NAME, "conc", concurrency=2)
    client = await make(poe_api_key=SERVER_KEY)
    release = asyncio.Event()
    fake_poe.script(None, _held(release))
    tasks = {asyncio.create_task(ask(client, face, conc)): face for face in FACES * 2}
    await _until(lambda: len(fake_poe.requests) == 2 and sum(t.done() for t in tasks) == 4)
    refused = [t for t in tasks if t.done()]
    for task in refused:
        resp = task.result()
        message = await face_error(resp, tasks[task], 429, code="rate_limit_exceeded")
        assert "2 requests open at once" in message, message
        assert resp.headers["retry-after"] == "1"
    release.set()
    for task in tasks:
        if task not in refused:
            resp = await task
            assert resp.status == 200, await resp.text()
    assert len(fake_poe.requests) == 2
    # A stream holds its slot until its last byte: a third request waits for nothing, it is
    # refused while two streams are open, and admitted once they have ended.
    release = asyncio.Event()
    fake_poe.script(None, [text("first"), wait(release), text(" second"), done()])
    streams = [await ask(client, face, conc, stream=True) for face in ("messages", "chat")]
    for resp in streams:
        assert resp.status == 200
        await resp.content.readuntil(b"first")
    await face_error(await ask(client, "responses", conc), "responses", 429)
    release.set()
    for resp in streams:
        assert b"second" in await resp.read()
    fake_poe.unscript(None)
    assert (await ask(client, "responses", conc)).status == 200


async def test_rpm_and_daily_limits_under_concurrent_load(make: Make, fake_poe: FakePoe,
                                                          tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    _, rpm = create_key(path, "rpm", rpm=3)
    _, daily = create_key(path, "daily", daily=2)
    client = await make(poe_api_key=SERVER_KEY)
    faces = [*FACES, *FACES]
    results = await asyncio.gather(*(ask(client, face, rpm) for face in faces))
    assert sorted(r.status for r in results) == [200] * 3 + [429] * 3
    for face, resp in zip(faces, results, strict=True):
        if resp.status == 429:
            message = await face_error(resp, face, 429, code="rate_limit_exceeded")
            assert "3 requests a minute" in message
            assert 0 < int(resp.headers["retry-after"]) <= 60
            assert "x-should-retry" not in resp.headers
    faces = ["chat", "responses", "messages", "messages"]
    results = await asyncio.gather(*(ask(client, face, daily) for face in faces))
    assert sorted(r.status for r in results) == [200, 200, 429, 429]
    for face, resp in zip(faces, results, strict=True):
        if resp.status == 429:
            message = await face_error(resp, face, 429, code="daily_budget_exceeded")
            assert "daily budget" in message and "used up" in message
            assert resp.headers["x-should-retry"] == "false"
            assert int(resp.headers["retry-after"]) > 0
    assert len(fake_poe.queries) == 3 + 2  # a refused request never reaches Poe
    # Limits never touch the probes, the metrics or the admin page.
    for path_ in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path_)).status == 200
    assert (await client.get("/admin/api/keys", headers=ADMIN)).status == 200
    keys = {k["name"]: k for k in (await (await client.get(
        "/admin/api/keys", headers=ADMIN)).json())["keys"]}
    assert keys["daily"]["used_today"] == 2 and keys["rpm"]["used_today"] == 3


async def test_low_balance_guard_on_every_face(make: Make, fake_poe: FakePoe,
                                               tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "k")
    fake_poe.balance = 50
    client = await make(poe_api_key=SERVER_KEY, poe_min_points=100)
    for face in FACES:
        message = await face_error(await ask(client, face, secret), face, 402,
                                   code="insufficient_points")
        assert "50 points" in message and "POE_MIN_POINTS" in message
    assert fake_poe.queries == [] and fake_poe.balance_hits == 1  # asked once, then cached
    body_ = await (await client.get("/metrics")).text()
    assert "poe2openai_poe_point_balance 50.0" in body_
    assert 'poe2openai_limit_rejections_total{key="k",reason="low_balance"} 3.0' in body_


async def test_enough_balance_lets_requests_through(make: Make, fake_poe: FakePoe,
                                                    tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "k")
    fake_poe.balance = 150
    client = await make(poe_api_key=SERVER_KEY, poe_min_points=100)
    for face in FACES:
        assert (await ask(client, face, secret)).status == 200


async def test_rate_limit_ms_spaces_each_proxy_key(make: Make, fake_poe: FakePoe,
                                                   tmp_path: Path) -> None:
    """RATE_LIMIT_MS keeps its meaning with proxy keys: each key has its own schedule,
    although every key is answered with the same Poe key."""
    path = tmp_path / FILE_NAME
    _, alice = create_key(path, "alice")
    _, bob = create_key(path, "bob")
    client = await make(poe_api_key=SERVER_KEY, rate_limit_ms=3_600_000)
    assert (await ask(client, "chat", alice)).status == 200
    for face in FACES:  # alice's next turn is an hour away: more than the 30 s a request waits
        resp = await ask(client, face, alice)
        await face_error(resp, face, 429, code="rate_limit_exceeded")
        assert int(resp.headers["retry-after"]) > 3000
    assert (await ask(client, "messages", bob)).status == 200  # bob has his own turn
    assert len(fake_poe.queries) == 2


async def test_a_broken_usage_log_never_fails_a_request(make: Make, fake_poe: FakePoe,
                                                        tmp_path: Path) -> None:
    (tmp_path / "usage.sqlite3").write_bytes(b"this is not a database" * 100)
    _, secret = create_key(tmp_path / FILE_NAME, "k", daily=100)
    client = await make(poe_api_key=SERVER_KEY)
    for face in FACES:
        for stream in (False, True):
            resp = await ask(client, face, secret, stream=stream)
            assert resp.status == 200, await resp.text()
            await resp.read()
    usage = await (await client.get("/admin/api/usage", headers=ADMIN)).json()
    assert usage["available"] is False and usage["reason"]
    keys = (await (await client.get("/admin/api/keys", headers=ADMIN)).json())["keys"]
    assert keys[0]["used_today"] == 6  # the limits count without the log

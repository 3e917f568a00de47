"""The team hooks through real HTTP (a minimal face in tests/team_helpers.py), /metrics,
/readyz and the dashboard's JSON API, against the fake Poe."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from poe2openai.app import create_app
from poe2openai.settings import Settings
from poe2openai.team.gate import TEAM
from poe2openai.team.keyfile import FILE_NAME, create_key, revoke_key
from tests.fake_poe import FakePoe, done, text
from tests.helpers import assert_openai_error
from tests.team_helpers import ENTERED, RELEASE, add_test_face

SERVER_KEY = "poe-server-key-0123456789"
ADMIN = {"Authorization": "Basic YWRtaW46dGVzdC1wYXNzd29yZA=="}  # admin:test-password
Client = TestClient[Any, Any]
Make = Callable[..., Awaitable[Client]]


@pytest.fixture
def make(aiohttp_client: AiohttpClient, settings_factory: Callable[..., Settings]) -> Make:
    async def make_(**overrides: Any) -> Client:
        app = add_test_face(create_app(settings_factory(**overrides)))
        return await aiohttp_client(app)

    return make_


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def metric(body: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition text, or None."""
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_pass_through_without_keys(make: Make, fake_poe: FakePoe) -> None:
    client = await make(poe_api_key=SERVER_KEY)
    resp = await client.post("/test/answer", json={"model": "GPT-4o"}, headers=bearer("mine"))
    assert resp.status == 200 and (await resp.json())["key"] == "-"
    assert fake_poe.last is not None and fake_poe.last.api_key == "mine"
    resp = await client.post("/test/answer", json={"model": "GPT-4o"},
                             headers={"x-api-key": "also-mine"})
    assert resp.status == 200 and fake_poe.last.api_key == "also-mine"
    resp = await client.post("/test/answer", json={"model": "GPT-4o"})
    await assert_openai_error(resp, 401, code="invalid_api_key")


async def test_proxy_keys_use_the_server_key(make: Make, fake_poe: FakePoe,
                                             tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    _, alice = create_key(path, "alice", models=["claude-*", "gpt-4o"])
    _, gone = create_key(path, "gone")
    revoke_key(path, "gone")
    _, old = create_key(path, "old", expires=time.time() + 3600)
    client = await make(poe_api_key=SERVER_KEY)
    resp = await client.post("/test/answer", json={"model": "GPT-4o"}, headers=bearer(alice))
    assert resp.status == 200 and (await resp.json())["key"] == "alice"
    assert fake_poe.last is not None and fake_poe.last.api_key == SERVER_KEY
    resp = await client.post("/test/answer", json={"model": "Claude-Sonnet-4.5"},
                             headers={"x-api-key": alice})
    assert resp.status == 200
    err = await assert_openai_error(
        await client.post("/test/answer", json={"model": "o3-pro"}, headers=bearer(alice)),
        403, code="model_not_allowed", param="model")
    assert "o3-pro" in err["message"] and "alice" in err["message"]
    err = await assert_openai_error(
        await client.post("/test/answer", json={"model": "GPT-4o"}, headers=bearer(gone)),
        401, code="invalid_api_key")
    assert "revoked" in err["message"]
    # The client's own Poe key is not a proxy key.
    await assert_openai_error(await client.post("/test/answer", json={"model": "GPT-4o"},
                                                headers=bearer("my-poe-key")), 401)
    # Expiry is checked at each request (the record's expiry set in the past here).
    store = client.app[TEAM].store
    store.clock = lambda: time.time() + 7200
    err = await assert_openai_error(
        await client.post("/test/answer", json={"model": "GPT-4o"}, headers=bearer(old)), 401)
    assert "expired" in err["message"]
    listed = await (await client.get("/test/models", headers=bearer(alice))).json()
    ids = {m["id"] for m in listed["data"]}
    assert ids and all(i.lower().startswith("claude-") or i.lower() == "gpt-4o" for i in ids)
    assert len([q for q in fake_poe.queries if q.api_key != SERVER_KEY]) == 0


async def test_proxy_keys_without_server_key_are_503(make: Make, tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "k")
    client = await make()
    await assert_openai_error(await client.post("/test/answer", json={"model": "GPT-4o"},
                                                headers=bearer(secret)),
                              503, code="server_misconfigured")


async def test_limits_under_concurrent_load(make: Make, fake_poe: FakePoe,
                                            tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    _, conc = create_key(path, "conc", concurrency=2)
    _, rpm = create_key(path, "rpm", rpm=3)
    _, daily = create_key(path, "daily", daily=2)
    client = await make(poe_api_key=SERVER_KEY)
    app = client.app
    held = [asyncio.create_task(client.post("/test/answer", json={"model": "GPT-4o",
                                                                   "hold": True},
                                            headers=bearer(conc))) for _ in range(5)]
    for _ in range(500):
        if sum(1 for t in held if t.done()) == 3 and len(app[ENTERED]) == 2:
            break
        await asyncio.sleep(0.01)
    early = [t for t in held if t.done()]
    assert len(early) == 3
    for t in early:
        resp = t.result()
        await assert_openai_error(resp, 429, code="rate_limit_exceeded")
        assert resp.headers["retry-after"] == "1"
    app[RELEASE].set()
    assert [(await t).status for t in held if t not in early] == [200, 200]

    results = await asyncio.gather(*(client.post("/test/answer", json={"model": "GPT-4o"},
                                                 headers=bearer(rpm)) for _ in range(6)))
    assert sorted(r.status for r in results) == [200] * 3 + [429] * 3
    assert all(0 < int(r.headers["retry-after"]) <= 60 for r in results if r.status == 429)

    results = await asyncio.gather(*(client.post("/test/answer", json={"model": "GPT-4o"},
                                                 headers=bearer(daily)) for _ in range(4)))
    refused = [r for r in results if r.status != 200]
    assert len(refused) == 2
    for r in refused:
        err = await assert_openai_error(r, 429, code="daily_budget_exceeded")
        assert "used up" in err["message"]
        assert r.headers["x-should-retry"] == "false" and int(r.headers["retry-after"]) > 0
    # Limits never touch the probes, the metrics or the admin page.
    for path_ in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path_)).status == 200
    assert (await client.get("/admin/api/keys", headers=ADMIN)).status == 200


async def test_low_balance_guard(make: Make, fake_poe: FakePoe, tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "k")
    fake_poe.balance = 50
    client = await make(poe_api_key=SERVER_KEY, poe_min_points=100)
    err = await assert_openai_error(
        await client.post("/test/answer", json={"model": "GPT-4o"}, headers=bearer(secret)),
        402, code="insufficient_points")
    assert "50 points" in err["message"] and fake_poe.queries == []
    body = await (await client.get("/metrics")).text()
    assert metric(body, "poe2openai_poe_point_balance") == 50
    assert metric(body, "poe2openai_limit_rejections_total", reason="low_balance", key="k") == 1


async def test_metrics_after_a_scripted_run(make: Make, fake_poe: FakePoe,
                                            tmp_path: Path) -> None:
    _, secret = create_key(tmp_path / FILE_NAME, "alice", models=["gpt-4o"])
    fake_poe.script("GPT-4o", [text("Hello"), text(" there"), done()])
    client = await make(poe_api_key=SERVER_KEY, metrics_token="scrape-me")
    for _ in range(3):
        assert (await client.post("/test/answer", json={"model": "GPT-4o"},
                                  headers=bearer(secret))).status == 200
    await client.post("/test/answer", json={"model": "o3"}, headers=bearer(secret))  # 403
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=bearer("wrong"))).status == 401
    resp = await client.get("/metrics", headers=bearer("scrape-me"))
    assert resp.status == 200 and resp.content_type == "text/plain"
    body = await resp.text()
    labels = {"face": "test", "route": "/test/answer", "model": "GPT-4o", "key": "alice"}
    assert metric(body, "poe2openai_requests_total", **labels, status="200") == 3
    assert metric(body, "poe2openai_requests_total", status="403", model="o3") == 1
    assert metric(body, "poe2openai_tokens_total", direction="out", key="alice") == 3 * 11
    assert metric(body, "poe2openai_tokens_total", direction="in", key="alice") == 21
    assert metric(body, "poe2openai_time_to_first_byte_seconds_count", face="test",
                  model="GPT-4o") == 3
    assert metric(body, "poe2openai_upstream_latency_seconds_count", face="test") == 3
    assert metric(body, "poe2openai_proxy_overhead_seconds_count", face="test") == 4 - 1
    assert metric(body, "poe2openai_active_streams") == 0
    assert metric(body, "poe2openai_upload_cache_lookups_total", result="hit") == 0
    assert metric(body, "poe2openai_config_reloads_total", file="proxy-keys.json",
                  result="ok") == 1
    assert metric(body, "poe2openai_config_reloads_total", file="models.yaml",
                  result="ok") == 1
    assert metric(body, "poe2openai_poe_point_balance") == 1000
    assert SERVER_KEY not in body and secret not in body


async def test_client_cancellation_is_counted(make: Make, fake_poe: FakePoe) -> None:
    client = await make()
    task = asyncio.create_task(client.post("/test/answer", json={"model": "GPT-4o",
                                                                 "hold": True},
                                           headers=bearer("k")))
    for _ in range(500):
        if client.app[ENTERED]:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    body = ""
    for _ in range(500):
        body = await (await client.get("/metrics")).text()
        if metric(body, "poe2openai_client_cancellations_total", face="test"):
            break
        await asyncio.sleep(0.01)
    assert metric(body, "poe2openai_client_cancellations_total", face="test") == 1
    assert metric(body, "poe2openai_requests_total", status="499") == 1


async def test_model_labels_are_bounded(make: Make) -> None:
    client = await make()
    metrics = client.app[TEAM].metrics
    for i in range(300):
        metrics.request(face="chat", route="/x", model=f"m{i}", key="-", status=404, ttfb=None,
                        duration=0.001, upstream=None, tokens_in=None, tokens_out=None,
                        cancelled=False)
    body = metrics.render().decode()
    assert metric(body, "poe2openai_requests_total", model="other") == 100
    assert body.count("poe2openai_requests_total{") == 201


async def test_readyz(make: Make, fake_poe: FakePoe, tmp_path: Path) -> None:
    client = await make()
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"
    await client.app.shutdown()  # what SIGTERM starts
    resp = await client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["checks"]["shutdown"] == "shutting down"
    assert (await client.get("/healthz")).status == 200


async def test_readyz_while_poe_model_list_is_down(make: Make, fake_poe: FakePoe,
                                                   tmp_path: Path) -> None:
    fake_poe.models_failure = 503
    client = await make()
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["checks"]["poe_models"] != "ok"
    assert body["checks"]["models_yaml"] == "ok" and body["checks"]["proxy_keys"] == "ok"


async def test_readyz_with_broken_files(make: Make, tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text("[broken")
    (tmp_path / "models.yaml").write_text("enable: [\n")
    client = await make()
    body = await (await client.get("/readyz")).json()
    assert body["status"] == "not ready"
    assert body["checks"]["proxy_keys"].startswith("cannot load")
    assert body["checks"]["models_yaml"] != "ok"
    # and a broken keys file lets nobody in
    await assert_openai_error(await client.post("/test/answer", json={"model": "GPT-4o"},
                                                headers=bearer("p2o-whatever")), 401)


async def test_dashboard_api(make: Make, fake_poe: FakePoe, tmp_path: Path) -> None:
    fake_poe.points_history = [
        {"creation_time": 1_800_000_000_000_000 - i * 3_600_000_000, "bot_name": "GPT-4o",
         "query_id": f"q{i}", "usage_type": "API", "cost_points": 100} for i in range(30)]
    client = await make(poe_api_key=SERVER_KEY)
    # Keys: create (the secret once), list (never), use, revoke. Writes need the CSRF token.
    page = await (await client.get("/admin/dashboard", headers=ADMIN)).text()
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert csrf is not None
    write = {**ADMIN, "X-CSRF-Token": csrf.group(1)}
    assert (await client.post("/admin/api/keys", json={"name": "bob"}, headers=ADMIN)).status \
        == 403
    resp = await client.post("/admin/api/keys", headers=write, json={
        "name": "bob", "models": "gpt-4o, claude-*", "rpm": "10", "daily": 5, "expires": "30d"})
    assert resp.status == 201
    created = await resp.json()
    secret = created["secret"]
    assert created["key"]["models"] == ["gpt-4o", "claude-*"] and created["key"]["rpm"] == 10
    listed = await (await client.get("/admin/api/keys", headers=ADMIN)).text()
    assert "bob" in listed and secret not in listed and secret[8:] not in listed
    for model in ("GPT-4o", "GPT-4o", "claude-x"):
        await client.post("/test/answer", json={"model": model}, headers=bearer(secret))
    await client.post("/test/answer", json={"model": "o3"}, headers=bearer(secret))
    usage = await (await client.get("/admin/api/usage?hours=1&by=model", headers=ADMIN)).json()
    assert usage["available"] is True
    totals = {t["name"]: t for t in usage["totals"]}
    assert totals["GPT-4o"]["requests"] == 2 and totals["GPT-4o"]["tokens_in"] == 14
    assert totals["o3"]["errors"] == 1 and totals["GPT-4o"]["errors"] == 0
    assert sum(usage["series"]["requests"]["GPT-4o"]) == 2
    by_key = await (await client.get("/admin/api/usage?by=key", headers=ADMIN)).json()
    assert {t["name"]: t["requests"] for t in by_key["totals"]} == {"bob": 4}
    keys_state = await (await client.get("/admin/api/keys", headers=ADMIN)).json()
    assert keys_state["keys"][0]["used_today"] == 3  # the 403 was refused before admission
    resp = await client.post("/admin/api/keys/bob/revoke", json={}, headers=write)
    assert resp.status == 200 and (await resp.json())["key"]["state"] == "revoked"
    assert (await client.post("/test/answer", json={"model": "GPT-4o"},
                              headers=bearer(secret))).status == 401
    points = await (await client.get("/admin/api/points", headers=ADMIN)).json()
    assert points["balance"] == 1000 and len(points["history"]) == 30
    assert sum(p for _, p in points["days"]) == 3000 and points["bots"] == [["GPT-4o", 3000]]


async def test_points_without_server_key(make: Make) -> None:
    client = await make()
    assert (await (await client.get("/admin/api/points", headers=ADMIN)).json()) == {
        "configured": False}

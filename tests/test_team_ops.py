"""/metrics, /readyz and the dashboard's JSON API after scripted runs on the real faces
(Chat, Responses, Messages), against the fake Poe."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai.team.gate import TEAM
from poe2openai.team.keyfile import FILE_NAME, create_key
from tests.faces import FACES, PATHS, ask, face_error, usage_of
from tests.fake_poe import FakePoe, done, error, text, wait
from tests.helpers import chat_body

SERVER_KEY = "poe-server-key-0123456789"
ADMIN = {"Authorization": "Basic YWRtaW46dGVzdC1wYXNzd29yZA=="}  # admin:test-password
Client = TestClient[Any, Any]
Make = Callable[..., Awaitable[Client]]
#: The model each face asks for in the scripted run (tokens are counted by model and key).
MODELS = {"chat": "GPT-4o", "responses": "Claude-Sonnet-4.5", "messages": "Gemini-2.5-Pro"}


@pytest.fixture
def make(make_proxy: Make) -> Make:
    return make_proxy


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


def _scripted(fake: FakePoe) -> None:
    fake.script(None, [text("Hello"), text(" there"), done()])


async def test_metrics_after_a_scripted_run(make: Make, fake_poe: FakePoe,
                                            tmp_path: Path) -> None:
    """Every face, streamed and not, a refusal on each, and a client that leaves a stream:
    /metrics counts them by face, route, model, key and status, with the tokens each face
    reported to its client and the time histograms observed."""
    path = tmp_path / FILE_NAME
    _, alice = create_key(path, "alice", models=[*MODELS.values()])
    _, bob = create_key(path, "bob")
    _scripted(fake_poe)
    client = await make(poe_api_key=SERVER_KEY, metrics_token="scrape-me")
    reported: dict[str, list[int]] = {}
    for face in FACES:
        for stream in (False, True):
            resp = await ask(client, face, alice, MODELS[face], stream=stream)
            raw = await resp.read()
            assert resp.status == 200, raw
            tokens_in, tokens_out = usage_of(face, raw, stream)
            assert tokens_in > 0 and tokens_out > 0
            total = reported.setdefault(face, [0, 0])
            total[0] += tokens_in
            total[1] += tokens_out
        assert (await ask(client, face, alice, "o3")).status == 403
    assert (await ask(client, "chat", "p2o-unknown")).status == 401
    # A client leaves a stream after its first event.
    never = asyncio.Event()
    fake_poe.script("Gemini-2.5-Flash", [text("first"), wait(never), done()])
    resp = await ask(client, "responses", bob, "Gemini-2.5-Flash", stream=True)
    assert resp.status == 200
    await resp.content.readuntil(b"first")
    resp.close()
    assert await fake_poe.last.wait_cancelled(5)  # type: ignore[union-attr]
    body = ""
    for _ in range(500):  # the request is recorded when its handler has ended
        body = await (await client.get("/metrics", headers=bearer("scrape-me"))).text()
        if metric(body, "poe2openai_client_cancellations_total", face="responses"):
            break
        await asyncio.sleep(0.01)

    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=bearer("wrong"))).status == 401
    resp = await client.get("/metrics", headers=bearer("scrape-me"))
    assert resp.status == 200 and resp.content_type == "text/plain"
    for face in FACES:
        model = MODELS[face]
        labels = {"face": face, "route": PATHS[face], "model": model, "key": "alice"}
        assert metric(body, "poe2openai_requests_total", **labels, status="200") == 2
        assert metric(body, "poe2openai_requests_total", face=face, route=PATHS[face],
                      model="o3", key="alice", status="403") == 1
        assert metric(body, "poe2openai_tokens_total", direction="in", model=model,
                      key="alice") == reported[face][0]
        assert metric(body, "poe2openai_tokens_total", direction="out", model=model,
                      key="alice") == reported[face][1]
        for name in ("poe2openai_time_to_first_byte_seconds_count",
                     "poe2openai_upstream_latency_seconds_count",
                     "poe2openai_request_duration_seconds_count"):
            assert metric(body, name, face=face, model=model) == 2, name
        # Refused before Poe was asked: a first byte and a duration, no time on Poe.
        assert metric(body, "poe2openai_time_to_first_byte_seconds_count", face=face,
                      model="o3") == 1
        assert metric(body, "poe2openai_upstream_latency_seconds_count", face=face,
                      model="o3") is None
        assert metric(body, "poe2openai_proxy_overhead_seconds_count", face=face) == \
            (3 if face == "responses" else 2)
    assert metric(body, "poe2openai_requests_total", face="chat", key="-", status="401") == 1
    assert metric(body, "poe2openai_client_cancellations_total", face="responses",
                  model="Gemini-2.5-Flash") == 1
    assert metric(body, "poe2openai_client_cancellations_total", face="chat") is None
    assert metric(body, "poe2openai_requests_total", face="responses", key="bob",
                  model="Gemini-2.5-Flash", status="499") == 1
    assert metric(body, "poe2openai_active_streams") == 0
    assert metric(body, "poe2openai_upload_cache_lookups_total", result="hit") == 0
    assert metric(body, "poe2openai_config_reloads_total", file="proxy-keys.json",
                  result="ok") == 1
    assert metric(body, "poe2openai_config_reloads_total", file="models.yaml",
                  result="ok") == 1
    assert metric(body, "poe2openai_poe_point_balance") == 1000
    assert SERVER_KEY not in body and alice not in body and bob not in body


async def test_streams_without_usage_are_counted_all_the_same(make: Make,
                                                              fake_poe: FakePoe) -> None:
    """A Chat stream whose client does not ask for usage (most clients) records the tokens
    it would have reported: the usage log and /metrics do not depend on the client."""
    fake_poe.script(None, [text("Hello"), text(" there, a longer answer"), done()])
    client = await make(metrics_token="scrape-me")
    resp = await ask(client, "chat", "poe-key", "GPT-4o", stream=True)  # asks for usage
    tokens = usage_of("chat", await resp.read(), True)
    assert tokens > (0, 0)
    plain = chat_body("Hi", model="GPT-4o", stream=True)  # does not
    resp = await client.post("/v1/chat/completions", json=plain, headers=bearer("poe-key"))
    raw = await resp.read()
    assert resp.status == 200 and b'"usage"' not in raw
    body = ""
    for _ in range(500):  # the request is recorded when its handler has ended
        body = await (await client.get("/metrics", headers=bearer("scrape-me"))).text()
        if metric(body, "poe2openai_requests_total", face="chat", status="200") == 2:
            break
        await asyncio.sleep(0.01)
    assert metric(body, "poe2openai_tokens_total", direction="in", model="GPT-4o") == 2 * tokens[0]
    assert metric(body, "poe2openai_tokens_total", direction="out", model="GPT-4o") == 2 * tokens[1]


async def test_active_streams_while_answers_are_open(make: Make, fake_poe: FakePoe) -> None:
    release = asyncio.Event()
    fake_poe.script(None, [text("first"), wait(release), done()])
    client = await make()
    streams = [await ask(client, face, "k", stream=True) for face in FACES]
    for resp in streams:
        await resp.content.readuntil(b"first")
    body = await (await client.get("/metrics")).text()
    assert metric(body, "poe2openai_active_streams") == 3
    release.set()
    for resp in streams:
        await resp.read()
    body = await (await client.get("/metrics")).text()
    assert metric(body, "poe2openai_active_streams") == 0


async def test_upload_cache_and_config_reload_failures(make: Make, fake_poe: FakePoe,
                                                      tmp_path: Path) -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\4" * 64).decode()
    with_image = {"model": "GPT-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": png}}]}]}
    client = await make()
    for _ in range(2):
        resp = await client.post(PATHS["chat"], json=with_image, headers=bearer("k"))
        assert resp.status == 200, await resp.text()
    assert len(fake_poe.uploads) == 1
    body = await (await client.get("/metrics")).text()
    assert metric(body, "poe2openai_upload_cache_lookups_total", result="miss") == 1
    assert metric(body, "poe2openai_upload_cache_lookups_total", result="hit") == 1
    # Broken edits of both files are counted as failed reloads (the last good ones stay).
    (tmp_path / FILE_NAME).write_text("[broken")
    (tmp_path / "models.yaml").write_text("enable: [\n")
    for _ in range(1000):
        body = await (await client.get("/metrics")).text()
        if metric(body, "poe2openai_config_reloads_total", file="models.yaml",
                  result="failed") and metric(body, "poe2openai_config_reloads_total",
                                              file="proxy-keys.json", result="failed"):
            break
        await asyncio.sleep(0.01)
    for file in ("models.yaml", "proxy-keys.json"):
        assert metric(body, "poe2openai_config_reloads_total", file=file, result="failed") == 1
        assert metric(body, "poe2openai_config_reloads_total", file=file, result="ok") == 1
    assert (await ask(client, "chat", "k")).status == 200  # still pass-through, as before


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
    for face in FACES:
        message = await face_error(await ask(client, face, "p2o-whatever"), face, 401)
        assert "cannot read its proxy keys" in message


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
    reported: dict[str, list[int]] = {}
    for face, model, stream in (("chat", "GPT-4o", False), ("responses", "GPT-4o", True),
                                ("messages", "Claude-Sonnet-4.5", False),
                                ("messages", "Claude-Sonnet-4.5", True)):
        resp = await ask(client, face, secret, model, stream=stream)
        raw = await resp.read()
        assert resp.status == 200, raw
        total = reported.setdefault(model, [0, 0])
        for i, n in enumerate(usage_of(face, raw, stream)):
            total[i] += n
    assert (await ask(client, "messages", secret, "o3")).status == 403
    usage = await (await client.get("/admin/api/usage?hours=1&by=model", headers=ADMIN)).json()
    assert usage["available"] is True
    totals = {t["name"]: t for t in usage["totals"]}
    assert set(totals) == {"GPT-4o", "Claude-Sonnet-4.5", "o3"}
    for model, (tokens_in, tokens_out) in reported.items():
        row = totals[model]
        assert row["requests"] == 2 and row["errors"] == 0
        assert (row["tokens_in"], row["tokens_out"]) == (tokens_in, tokens_out) > (0, 0)
        assert row["ttfb"] > 0 and row["latency"] >= row["ttfb"]
        assert sum(usage["series"]["requests"][model]) == 2
        assert sum(usage["series"]["tokens_out"][model]) == tokens_out
    assert totals["o3"]["requests"] == 1 and totals["o3"]["errors"] == 1
    assert sum(usage["series"]["errors"]["o3"]) == 1
    by_key = await (await client.get("/admin/api/usage?by=key", headers=ADMIN)).json()
    assert {t["name"]: t["requests"] for t in by_key["totals"]} == {"bob": 5}
    keys_state = await (await client.get("/admin/api/keys", headers=ADMIN)).json()
    assert keys_state["keys"][0]["used_today"] == 4  # the 403 was refused before admission
    resp = await client.post("/admin/api/keys/bob/revoke", json={}, headers=write)
    assert resp.status == 200 and (await resp.json())["key"]["state"] == "revoked"
    for face in FACES:
        assert "revoked" in await face_error(await ask(client, face, secret), face, 401)
    points = await (await client.get("/admin/api/points", headers=ADMIN)).json()
    assert points["balance"] == 1000 and len(points["history"]) == 30
    assert sum(p for _, p in points["days"]) == 3000 and points["bots"] == [["GPT-4o", 3000]]


async def test_points_without_server_key(make: Make) -> None:
    client = await make()
    assert (await (await client.get("/admin/api/points", headers=ADMIN)).json()) == {
        "configured": False}


async def test_keys_without_limits_count_their_use(make: Make, fake_poe: FakePoe,
                                                   tmp_path: Path) -> None:
    _, carol = create_key(tmp_path / FILE_NAME, "carol")  # no rpm, concurrency or daily
    client = await make(poe_api_key=SERVER_KEY)
    for face in FACES:
        assert (await ask(client, face, carol)).status == 200
    listing = await (await client.get("/admin/api/keys", headers=ADMIN)).json()
    used = {k["name"]: k["used_today"] for k in listing["keys"]}
    assert used["carol"] == len(FACES)


async def test_readyz_with_proxy_keys_but_no_server_key(make: Make, fake_poe: FakePoe,
                                                        tmp_path: Path) -> None:
    create_key(tmp_path / FILE_NAME, "dave")
    client = await make(poe_api_key="")
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "POE_API_KEY" in (await resp.json())["checks"]["proxy_keys"]


async def test_a_client_that_leaves_gets_an_access_log_line(
        make: Make, fake_poe: FakePoe, caplog: pytest.LogCaptureFixture) -> None:
    fake_poe.script("Stall", [text("Hi"), wait(asyncio.Event())])
    client = await make()
    with caplog.at_level("INFO", logger="aiohttp.access"):
        resp = await client.post(PATHS["chat"], headers=bearer("client-key"), json={
            "model": "Stall", "stream": True, "messages": [{"role": "user", "content": "x"}]})
        await resp.content.readany()
        resp.close()  # the client leaves mid-stream
        assert fake_poe.last is not None and await fake_poe.last.wait_cancelled(3)
        for _ in range(50):
            if any(" 499 " in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"POST /v1/chat/completions" 499' in line and "model=Stall" in line
               for line in lines), lines


def test_text_log_lines_cannot_be_forged() -> None:
    """A path or a model name with a line break (or a NUL) is written escaped on its own
    line; a traceback still follows on lines of its own."""
    import logging
    import sys

    from poe2openai.team.logs import TextFormatter

    fmt = TextFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("aiohttp.access", logging.INFO, "", 0, '%s "%s %s" %d model=%s',
                               ("127.0.0.1", "GET", "/v1/x\n2026-11-30 ERROR forged\x00", 404,
                                "gpt\r\nINFO fake"), None)
    line = fmt.format(record)
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert line.endswith('"GET /v1/x\\x0a2026-11-30 ERROR forged\\x00" 404 model=gpt\\x0d\\x0aINFO fake')
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "", 0, "failed\nhere", (), sys.exc_info())
    text = fmt.format(record)
    assert text.startswith("ERROR x: failed\\x0ahere\nTraceback") and "ValueError: boom" in text


async def test_unknown_paths_and_methods_are_counted(make: Make) -> None:
    """A 404 or a 405 before any face (a scanner, a client on a wrong base URL) shows in
    /metrics, as face "none", with a bounded route label; an Anthropic client's 404 is in
    Anthropic's envelope."""
    client = await make(metrics_token="scrape-me")
    for i in range(3):
        assert (await client.get(f"/wp-admin/{i}.php")).status == 404
    assert (await client.get("/v1/chat/completions")).status == 405
    resp = await client.post("/v1/messages/batches", json={},
                             headers={"anthropic-version": "2023-06-01"})
    body = await resp.json()
    assert resp.status == 404 and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error", body
    body_text = await (await client.get("/metrics", headers=bearer("scrape-me"))).text()
    assert metric(body_text, "poe2openai_requests_total", face="none", status="404") == 4
    assert metric(body_text, "poe2openai_requests_total", face="none", status="405",
                  route="/v1/chat/completions") == 1
    assert "wp-admin" not in body_text  # one label for every unknown path


@pytest.mark.parametrize("face", FACES)
async def test_streams_that_end_early_are_recorded_with_their_tokens(
        make: Make, fake_poe: FakePoe, face: str) -> None:
    """A stream that fails after it started (its HTTP status, 200, is already out) is
    recorded with its error's status, and one whose client leaves as 499; both with the
    tokens of the prompt and of what Poe answered (Poe answered them, and charges them)."""
    client = await make(metrics_token="scrape-me")
    fake_poe.script("GPT-4o", [text("Partial answer"), error("Internal server error"),
                               done()])
    resp = await ask(client, face, "poe-key-1", "GPT-4o", stream=True)
    assert resp.status == 200
    await resp.read()
    never = asyncio.Event()
    fake_poe.script("Gemini-2.5-Flash", [text("first words"), wait(never), done()])
    resp = await ask(client, face, "poe-key-1", "Gemini-2.5-Flash", stream=True)
    await resp.content.readuntil(b"first")
    resp.close()
    assert await fake_poe.last.wait_cancelled(5)  # type: ignore[union-attr]
    body = ""
    for _ in range(500):  # recorded when the handler has ended
        body = await (await client.get("/metrics", headers=bearer("scrape-me"))).text()
        if metric(body, "poe2openai_requests_total", model="Gemini-2.5-Flash", status="499"):
            break
        await asyncio.sleep(0.01)
    assert metric(body, "poe2openai_requests_total", model="GPT-4o", status="200") is None
    failed = [line for line in body.splitlines() if line.startswith(
        "poe2openai_requests_total{") and 'model="GPT-4o"' in line]
    assert len(failed) == 1 and 'status="5' in failed[0], failed
    for model in ("GPT-4o", "Gemini-2.5-Flash"):
        for direction in ("in", "out"):
            tokens = metric(body, "poe2openai_tokens_total", direction=direction, model=model)
            assert tokens is not None and tokens > 0, (model, direction, [
                line for line in body.splitlines() if "requests_total{" in line or "tokens" in line])


async def test_an_unknown_previous_response_is_recorded_with_its_model(make: Make) -> None:
    client = await make(metrics_token="scrape-me")
    resp = await client.post("/v1/responses", headers=bearer("poe-key-1"), json={
        "model": "GPT-4o", "input": "Hi", "previous_response_id": "resp_nothing_here"})
    assert resp.status == 404
    body = await (await client.get("/metrics", headers=bearer("scrape-me"))).text()
    assert metric(body, "poe2openai_requests_total", face="responses", model="GPT-4o",
                  status="404") == 1

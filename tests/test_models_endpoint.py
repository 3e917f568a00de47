"""GET /v1/models from Poe's list: OpenAI shape, caching, stale on failure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe
from tests.helpers import assert_openai_error

Proxy = TestClient[Any, Any]


@pytest.mark.parametrize("path", ["/v1/models", "/models", "/v1/models/", "/v1/v1/models"])
async def test_openai_shape(proxy: Proxy, fake_poe: FakePoe, path: str) -> None:
    resp = await proxy.get(path)  # no Authorization: Poe's list is public
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids == [m["id"] for m in fake_poe.models]
    for entry, raw in zip(body["data"], fake_poe.models, strict=True):
        assert entry["object"] == "model" and isinstance(entry["owned_by"], str)
        assert entry["created"] == raw["created"] // 1000  # Poe sends milliseconds


async def test_single_model_case_insensitive(proxy: Proxy, fake_poe: FakePoe) -> None:
    wanted = fake_poe.models[0]["id"]
    resp = await proxy.get(f"/v1/models/{wanted.upper()}")
    assert resp.status == 200 and (await resp.json())["id"] == wanted
    resp = await proxy.get("/v1/models/no-such-model")
    await assert_openai_error(resp, 404, "invalid_request_error", "model_not_found", "model")


async def test_cached_then_refreshed(make_proxy: Callable[..., Awaitable[Proxy]],
                                     fake_poe: FakePoe) -> None:
    proxy = await make_proxy(models_cache_ttl=600)
    for _ in range(3):
        assert (await proxy.get("/v1/models")).status == 200
    assert fake_poe.models_hits == 1
    proxy = await make_proxy(models_cache_ttl=0)
    for _ in range(2):
        assert (await proxy.get("/v1/models")).status == 200
    assert fake_poe.models_hits == 3


async def test_stale_list_served_when_poe_fails(make_proxy: Callable[..., Awaitable[Proxy]],
                                                fake_poe: FakePoe) -> None:
    proxy = await make_proxy(models_cache_ttl=0)
    first = await (await proxy.get("/v1/models")).json()
    fake_poe.models_failure = 503
    resp = await proxy.get("/v1/models")
    assert resp.status == 200 and await resp.json() == first


async def test_poe_down_and_nothing_cached(proxy: Proxy, fake_poe: FakePoe) -> None:
    fake_poe.models_failure = 500
    await assert_openai_error(await proxy.get("/v1/models"), 502, "server_error",
                              "upstream_error")


MAP = """\
enable: true
models:
  my-private-bot:
    mapping: private
custom_models:
  - id: team-bot
    owned_by: us
"""


async def test_alias_of_a_bot_missing_from_poes_list_is_listed(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe, tmp_path: Any) -> None:
    (tmp_path / "models.yaml").write_text(MAP)
    proxy = await make_proxy()
    ids = [m["id"] for m in (await (await proxy.get("/v1/models")).json())["data"]]
    assert "private" in ids and "team-bot" in ids and "my-private-bot" not in ids
    assert (await proxy.get("/v1/models/private")).status == 200


async def test_configured_models_listed_when_poe_is_down(
        make_proxy: Callable[..., Awaitable[Proxy]], fake_poe: FakePoe, tmp_path: Any) -> None:
    (tmp_path / "models.yaml").write_text(MAP)
    fake_poe.models_failure = 503
    proxy = await make_proxy()
    resp = await proxy.get("/v1/models")
    assert resp.status == 200
    assert sorted(m["id"] for m in (await resp.json())["data"]) == ["private", "team-bot"]


async def test_a_failed_fetch_is_remembered_briefly(proxy: Proxy, fake_poe: FakePoe) -> None:
    """With nothing cached, requests arriving right after a failure don't each ask Poe again."""
    fake_poe.models_failure = 500
    for _ in range(3):
        await assert_openai_error(await proxy.get("/v1/models"), 502, code="upstream_error")
    assert fake_poe.models_hits == 1

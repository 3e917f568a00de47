"""Shared fixtures: a fake Poe on loopback, the proxy in front of it, SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from poe2openai.app import create_app
from poe2openai.settings import Settings
from tests.fake_poe import FakePoe

API_KEY = "test-key"


@pytest.fixture
async def fake_poe(aiohttp_server: AiohttpServer) -> FakePoe:
    fake = FakePoe()
    server = await aiohttp_server(fake.make_app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def settings_factory(tmp_path: Any, fake_poe: FakePoe) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "config_dir": tmp_path,
            "poe_base_url": fake_poe.base_url,
            "poe_file_upload_url": fake_poe.base_url + "/poe_api/file_upload_3RD_PARTY_POST",
            "first_byte_wait": 2.0,
            "keepalive_interval": 15.0,
            "read_timeout": 10.0,
            "connect_timeout": 2.0,
            "reload_interval": 0.05,
            "admin_password": "test-password",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_proxy(
    aiohttp_client: AiohttpClient, settings_factory: Callable[..., Settings]
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def make(**overrides: Any) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(settings_factory(**overrides)))

    return make


@pytest.fixture
async def proxy(make_proxy: Callable[..., Awaitable[TestClient[Any, Any]]]) -> TestClient[Any, Any]:
    return await make_proxy()


@pytest.fixture
async def sdk(proxy: TestClient[Any, Any]) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK pointed at the proxy (no retries, so failures show at once)."""
    async with openai.AsyncOpenAI(
        base_url=str(proxy.make_url("/v1")), api_key=API_KEY, max_retries=0, timeout=20
    ) as client:
        yield client

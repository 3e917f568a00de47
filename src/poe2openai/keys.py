"""Every typed application key, in one place."""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from .api.budget import BodyBudget
from .api.ratelimit import RateLimiter
from .api.response_store import ResponseStore
from .api.streams import ActiveStreams
from .attachments import Uploader
from .cluster.link import RedisLink
from .cluster.responses import SharedResponses
from .models import ModelCatalog
from .poe.client import PoeClient
from .registry import ModelRegistry
from .settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
POE: Final = web.AppKey("poe", PoeClient)
REGISTRY: Final = web.AppKey("registry", ModelRegistry)
CATALOG: Final = web.AppKey("catalog", ModelCatalog)
STREAMS: Final = web.AppKey("streams", ActiveStreams)
UPLOADER: Final = web.AppKey("uploader", Uploader)
#: The admin page's CSRF token (in the /admin sub-app).
ADMIN_CSRF: Final = web.AppKey("admin_csrf", str)
#: Bounds how many large request bodies are parsed (in worker threads) at the same time.
LARGE_BODIES: Final = web.AppKey("large_bodies", asyncio.Semaphore)
#: Bytes of request bodies being received at once, over all requests.
BODY_BUDGET: Final = web.AppKey("body_budget", BodyBudget)
RATE_LIMITER: Final = web.AppKey("rate_limiter", RateLimiter)
#: Stored Responses API responses (previous_response_id, GET/DELETE /v1/responses/{id}).
#: In memory, or with ``REDIS_URL`` in Redis (same interface).
RESPONSES: Final = web.AppKey[ResponseStore | SharedResponses]("responses")
#: With ``REDIS_URL`` only: the process's Redis client (poe2openai.cluster).
SHARED: Final = web.AppKey("shared_state", RedisLink)

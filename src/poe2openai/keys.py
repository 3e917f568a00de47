"""Every typed application key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from .api.streams import ActiveStreams
    from .attachments import Uploader
    from .models import ModelCatalog
    from .poe.client import PoeClient
    from .registry import ModelRegistry
    from .settings import Settings

SETTINGS: Final = web.AppKey["Settings"]("settings")
POE: Final = web.AppKey["PoeClient"]("poe")
REGISTRY: Final = web.AppKey["ModelRegistry"]("registry")
CATALOG: Final = web.AppKey["ModelCatalog"]("catalog")
STREAMS: Final = web.AppKey["ActiveStreams"]("streams")
UPLOADER: Final = web.AppKey["Uploader"]("uploader")

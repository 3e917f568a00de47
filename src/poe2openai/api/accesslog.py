"""One access-log line per request, naming the model and the Poe bot for chat requests."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["MODEL", "AccessLogger"]

#: ``"alias -> bot"`` (or just the name) of a chat request, set by the handler.
MODEL: Final = web.RequestKey("model", str)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        model = request.get(MODEL)
        self.logger.info(
            '%s "%s %s" %d %d %.3fs%s', request.remote, request.method, request.path,
            response.status, response.body_length, time, f" model={model}" if model else "")

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

"""Log output: the access log (one line per request) and ``LOG_FORMAT=json``.

Access-log fields: method, path (never the query string), face, model, key (the proxy
key's name, ``-`` without one), status, duration, time to first byte, bytes sent, and
the client's address. Neither an API key nor a Poe key is ever part of a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from ..api.accesslog import MODEL
from ..jsonlib import dumps_str
from .gate import OBSERVATION

__all__ = ["AccessLogger", "JsonFormatter", "access_fields", "log_cancelled",
           "quiet_malformed_requests", "setup_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: LogRecord attributes that are not "extra" fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message",
                                                                                  "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return dumps_str(out)


#: Control characters (a line break above all) that a client's text could put in a message.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


class TextFormatter(logging.Formatter):
    """One line per message: control characters in it (from a request's path, a model name,
    a bot's answer quoted in an error) are written escaped, so that no client can forge log
    lines or write a NUL into the log. A traceback still follows on lines of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if _CONTROL.search(record.message):
            record.message = _CONTROL.sub(_escape, record.message)
        return super().formatMessage(record)


class _MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (two Content-Type headers, a Content-Length
    that is no number, a header name with a space) at ERROR with a traceback: anyone,
    without a key, could fill the log with them. They become one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg = "Refused a malformed HTTP request (%s): %s"
        record.args = (exc.code, exc.message)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def quiet_malformed_requests() -> None:
    """Install :class:`_MalformedRequests` on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _MalformedRequests) for f in logger.filters):
        logger.addFilter(_MalformedRequests())


def setup_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(_TEXT_FORMAT))
    logging.basicConfig(
        level=logging.DEBUG if level in ("debug", "trace") else getattr(logging, level.upper()),
        handlers=[handler], force=True)


def access_fields(request: web.BaseRequest, response: web.StreamResponse,
                  time: float) -> dict[str, Any]:
    obs = request.get(OBSERVATION)
    model = request.get(MODEL) or (obs.model if obs is not None else None)
    return {
        "method": request.method,
        "path": request.path,
        "face": obs.face if obs is not None else None,
        "model": model,
        "key": obs.key if obs is not None else None,
        "status": response.status,
        "duration": round(time, 4),
        "ttfb": round(obs.ttfb, 4) if obs is not None and obs.ttfb is not None else None,
        "bytes": response.body_length,
        "remote": request.remote,
    }


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        _line(self.logger, access_fields(request, response, time))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def _line(logger: logging.Logger | logging.LoggerAdapter[Any], f: dict[str, Any]) -> None:
    extra = "".join(f" {k}={f[k]}" for k in ("face", "model", "key") if f[k] is not None)
    if f["ttfb"] is not None:
        extra += f" ttfb={f['ttfb']:.3f}s"
    logger.info('%s "%s %s" %d %d %.3fs%s', f["remote"], f["method"], f["path"], f["status"],
                f["bytes"], f["duration"], extra, extra={"access": f})


def log_cancelled(request: web.BaseRequest, duration: float) -> None:
    """The access line of a request the client left before its answer was complete (aiohttp
    writes none for a cancelled handler): status 499, as nginx counts them."""
    if not _ACCESS.isEnabledFor(logging.INFO):
        return
    obs = request.get(OBSERVATION)
    model = request.get(MODEL) or (obs.model if obs is not None else None)
    _line(_ACCESS, {
        "method": request.method, "path": request.path,
        "face": obs.face if obs is not None else None, "model": model,
        "key": obs.key if obs is not None else None, "status": 499,
        "duration": round(duration, 4),
        "ttfb": round(obs.ttfb, 4) if obs is not None and obs.ttfb is not None else None,
        "bytes": 0, "remote": request.remote})


_ACCESS = logging.getLogger("aiohttp.access")

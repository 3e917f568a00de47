"""Map what Poe reports (HTTP statuses, ``error`` events) onto :mod:`poe2openai.errors`. No I/O.

Poe's bot endpoint usually answers failures with HTTP 200 and an ``error`` event
whose only reliable content is a user-facing text, so besides ``error_type`` the
known texts (poe-protocol §2.4) are recognised here, in this one table.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
    InsufficientQuota,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    ProxyError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["map_error_event", "map_http_error", "map_upload_error"]

_ERROR_TYPES: dict[str, type[ProxyError]] = {
    "user_message_too_long": ContextLengthExceeded,
    "insufficient_fund": InsufficientQuota,
    "user_caused_error": InvalidRequest,
    "privacy_authorization_error": PermissionDenied,
}

# (pattern in lower-cased text, error class) — first match wins.
_TEXTS: tuple[tuple[str, type[ProxyError]], ...] = (
    ("needs more points", InsufficientQuota),
    ("not have enough points", InsufficientQuota),
    ("used up your points", InsufficientQuota),
    ("insufficient", InsufficientQuota),
    ("rate limit", RateLimited),
    ("too many requests", RateLimited),
    ("invalid token", AuthenticationFailed),
    ("invalid api key", AuthenticationFailed),
    ("unauthorized", AuthenticationFailed),
    ("access denied", AuthenticationFailed),
    ("bot does not exist", ModelNotFound),
    ("bot not found", ModelNotFound),
    ("message too long", ContextLengthExceeded),
    ("too long", ContextLengthExceeded),
)

_MAX_MESSAGE = 500


def map_error_event(data: dict[str, Any]) -> ProxyError:
    """Turn the data of a Poe ``error`` event into the error to report."""
    text = data.get("text")
    message = text.strip() if isinstance(text, str) and text.strip() else "Poe reported an error"
    message = message[:_MAX_MESSAGE]
    allow_retry = data.get("allow_retry", True) is not False
    cls = _ERROR_TYPES.get(str(data.get("error_type") or "")) or _match_text(message)
    if cls is None:
        # An unrecognised failure of the bot: a gateway error, retryable only if Poe says so.
        return UpstreamError(message, retryable=allow_retry)
    err = cls(message)
    if not allow_retry:
        err.retryable = False  # type: ignore[misc]
    return err


def map_http_error(status: int, body: bytes, headers: dict[str, str]) -> ProxyError:
    """Turn a non-2xx (or non-SSE) answer of Poe into the error to report."""
    message, err_type = _describe(status, body)
    extra: dict[str, str] = {}
    for name in ("retry-after", "retry-after-ms"):
        value = headers.get(name) or headers.get(name.title())
        if value:
            extra[name] = value
    cls: type[ProxyError]
    if status == 400:
        cls = _match_text(message) or InvalidRequest
    elif status == 401:
        cls = AuthenticationFailed
        message = f"Poe rejected the API key: {message}"
    elif status == 402:
        cls = InsufficientQuota
    elif status == 403:
        cls = ContentFiltered if "moderation" in (err_type or "") else PermissionDenied
    elif status == 404:
        cls = ModelNotFound
    elif status in (408, 504, 524):
        cls = UpstreamTimeout
    elif status == 413:
        cls = ContextLengthExceeded
    elif status == 429:
        cls = _match_text(message) or RateLimited
        if cls is not InsufficientQuota:
            cls = RateLimited
    elif status in (503, 529):
        cls = UpstreamUnavailable
    elif status >= 500:
        cls = UpstreamError
        if not message.startswith("Poe answered"):  # Poe's own words ("Internal server
            message = f"Poe answered HTTP {status}: {message}"  # error") would read as ours
    elif status >= 400:
        cls = InvalidRequest
    else:
        cls = UpstreamError
    return cls(message, headers=extra)


def map_upload_error(status: int, body: bytes, headers: dict[str, str]) -> ProxyError:
    """Turn a failed answer of Poe's file upload endpoint into the error to report.

    A rejected file is the client's problem (400 ``upload_failed``), except a rejected
    key (401) and rate limiting (429, which clients retry); Poe's own failures are 502.
    """
    message, _ = _describe(status, body)
    if status == 401:
        return AuthenticationFailed(f"Poe rejected the API key for the file upload: {message}")
    if status == 429:
        extra = {k: v for k in ("retry-after", "retry-after-ms") if (v := headers.get(k))}
        return RateLimited(f"Poe rate-limited the file upload: {message}", headers=extra)
    if 400 <= status < 500:
        return InvalidRequest(f"Poe rejected the file upload: {message}", code="upload_failed")
    return UpstreamError(f"Poe's file upload failed: {message}")


def _match_text(message: str) -> type[ProxyError] | None:
    low = message.lower()
    for needle, cls in _TEXTS:
        if needle in low:
            return cls
    return None


_TAG = re.compile(r"<[^>]+>")


def _describe(status: int, body: bytes) -> tuple[str, str | None]:
    """A short message and Poe's error type from an error body (JSON, text or HTML)."""
    text = body[:65536].decode(errors="replace").strip()
    if text.startswith("{"):
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            err = payload.get("error", payload)
            if isinstance(err, dict):
                msg = err.get("message") or err.get("text") or err.get("detail")
                if isinstance(msg, str) and msg:
                    return f"{msg[:_MAX_MESSAGE]}", str(err.get("type") or "") or None
            elif isinstance(err, str) and err:
                return err[:_MAX_MESSAGE], None
    if text.lstrip().lower().startswith(("<!doctype", "<html")):
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        detail = _TAG.sub("", title.group(1)).strip() if title else "HTML error page"
        return f"Poe answered HTTP {status}: {detail[:200]}", None
    if text:
        return f"Poe answered HTTP {status}: {text[:_MAX_MESSAGE]}", None
    return f"Poe answered HTTP {status}", None

"""Errors that become OpenAI error envelopes.

Every error the server reports to a client is a :class:`ProxyError`. The class
carries the HTTP status, the OpenAI ``type`` and ``code``; every API route's guard
(``poe2openai.api.guard``) turns it into
``{"error": {"message", "type", "param", "code"}}`` (Anthropic's envelope on its face).

ProxyError
├── InvalidRequest            400 invalid_request_error
│   ├── ContextLengthExceeded 400 context_length_exceeded (never retried)
│   └── ContentFiltered       400 content_filter (never retried)
├── AuthenticationFailed      401 invalid_api_key
├── PermissionDenied          403 permission_denied
├── NotFound                  404 not_found
│   └── ModelNotFound         404 model_not_found
├── MethodNotAllowed          405 method_not_allowed
├── RequestTooLarge           413 request_too_large
├── StructuredOutputFailed    422 structured_output_failed (never retried)
├── InsufficientQuota         429 insufficient_quota (never retried)
├── RateLimited               429 rate_limit_exceeded
├── InternalError             500 internal_error
├── UpstreamError             502 upstream_error
│   └── UpstreamUnavailable   503 upstream_unavailable
└── UpstreamTimeout           504 timeout

This module imports nothing from aiohttp: the translation core raises these too.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProxyError(Exception):
    """An error with an HTTP status and an OpenAI error body."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = "internal_error"
    #: ``False`` adds ``x-should-retry: false`` so SDKs do not re-send a paid request.
    retryable: ClassVar[bool | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code  # type: ignore[misc]
        if retryable is not None:
            self.retryable = retryable  # type: ignore[misc]
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retryable is not None:
            headers["x-should-retry"] = "true" if self.retryable else "false"
        return headers


class InvalidRequest(ProxyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"
    retryable = False


class ContentFiltered(InvalidRequest):
    code = "content_filter"
    retryable = False


class AuthenticationFailed(ProxyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    retryable = False


class PermissionDenied(ProxyError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"
    retryable = False


class NotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"
    retryable = False


class MethodNotAllowed(ProxyError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTooLarge(ProxyError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
    retryable = False


class StructuredOutputFailed(ProxyError):
    """The bot's answer did not match the requested JSON format, repairs included. Not the
    client's fault, but retrying the same request costs points for the same outcome."""

    status = 422
    type = "invalid_response_format"
    code = "structured_output_failed"
    retryable = False


class InsufficientQuota(ProxyError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"
    retryable = False


class RateLimited(ProxyError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class InternalError(ProxyError):
    status = 500
    type = "server_error"
    code = "internal_error"


class UpstreamError(ProxyError):
    status = 502
    type = "server_error"
    code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(ProxyError):
    status = 504
    type = "server_error"
    code = "timeout"

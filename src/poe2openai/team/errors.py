"""The team features' errors, as :class:`~poe2openai.errors.ProxyError` subclasses, so
every face renders them in its own envelope.

PermissionDenied
└── ModelNotAllowed       403 model_not_allowed (the key may not use this model)
InsufficientQuota
└── DailyBudgetUsed       429 daily_budget_exceeded, ``x-should-retry: false``, Retry-After
RateLimited               429 rate_limit_exceeded, Retry-After (rpm and concurrency)
LowBalance                402 insufficient_points (``POE_MIN_POINTS``)
ServerMisconfigured       503 server_misconfigured (proxy keys without ``POE_API_KEY``)
"""

from __future__ import annotations

from ..errors import InsufficientQuota, PermissionDenied, ProxyError

__all__ = ["DailyBudgetUsed", "LowBalance", "ModelNotAllowed", "ServerMisconfigured"]


class ModelNotAllowed(PermissionDenied):
    code = "model_not_allowed"


class DailyBudgetUsed(InsufficientQuota):
    code = "daily_budget_exceeded"


class LowBalance(ProxyError):
    status = 402
    type = "insufficient_quota"
    code = "insufficient_points"
    retryable = False


class ServerMisconfigured(ProxyError):
    status = 503
    type = "server_error"
    code = "server_misconfigured"
    retryable = False

"""The hooks every API face calls: who is asking, may they, and what happened.

In a handler of the shared answering loop::

    team = request.app[TEAM]
    obs = team.observe(request, face="chat")      # metrics, usage log, access log
    access = team.authenticate(request)           # 401 / 503, or who is asking
    obs.model = name                              # the name the client sent
    access.check_model(name)                      # 403 naming the model
    async with team.admit(access):                # 402 low balance, 429 limits
        ... query Poe with access.poe_key ...
        obs.first_byte()                          # when the first byte goes to the client
        obs.upstream += seconds_waiting_on_poe
        obs.tokens_in, obs.tokens_out = usage

``/v1/models`` lists ``access.visible(models)``. Every API route's guard
(``api/guard.py``) calls :func:`request_ended` for every request: an observed one is
recorded (status, duration, cancellation), whatever happened in between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from ..cluster.limits import SharedLimits
from ..errors import AuthenticationFailed, ProxyError
from .balance import BalanceGuard
from .errors import LowBalance, ModelNotAllowed, ServerMisconfigured
from .keyfile import KeyRecord
from .keystore import KeyStore
from .limits import Limits
from .metrics import Metrics
from .usagelog import UsageLog

__all__ = ["ARRIVED", "OBSERVATION", "TEAM", "Access", "Observation", "Team", "presented_key",
           "request_ended"]

log = logging.getLogger(__name__)

#: The key name of pass-through requests (no proxy keys) in metrics and logs.
PASS_THROUGH: Final = "-"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a client sent: ``Authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


@dataclass(frozen=True, slots=True)
class Access:
    """Who a request is from and which Poe key answers it."""

    key: KeyRecord | None  #: the proxy key, or None: the client's own Poe key passes through
    poe_key: str = field(repr=False)  #: the key sent upstream; never log it

    @property
    def name(self) -> str:
        """The key's name for metrics, logs and limits (``-`` for pass-through)."""
        return self.key.name if self.key is not None else PASS_THROUGH

    @property
    def owner(self) -> str:
        """Whose per-user state this is (``RATE_LIMIT_MS`` spacing, stored responses):
        ``proxy:<name>`` for a proxy key, else the client's own Poe key. Never use
        ``poe_key`` for that: with proxy keys every user shares the server's key."""
        return f"proxy:{self.key.name}" if self.key is not None else self.poe_key

    def allows(self, model: str) -> bool:
        return self.key is None or self.key.allows(model)

    def check_model(self, model: str) -> None:
        if not self.allows(model):
            raise ModelNotAllowed(f"The API key {self.name!r} may not use the model "
                                  f"'{model[:200]}'.", param="model")

    def visible(self, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return models if self.key is None else self.key.visible(models)


class Observation:
    """What one API request did; filled in by the handler, recorded when it ends."""

    __slots__ = ("cancelled", "face", "key", "model", "start", "team", "tokens_in",
                 "tokens_out", "ttfb", "upstream")

    def __init__(self, face: str, start: float, team: Team) -> None:
        self.team = team  #: the app's, which records it (no app lookup per use)
        self.face = face
        self.start = start  #: time.perf_counter() at arrival
        self.model: str | None = None
        self.key: str = PASS_THROUGH
        self.ttfb: float | None = None  #: seconds to the first byte sent to the client
        self.upstream: float | None = None  #: seconds spent waiting on Poe
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cancelled = False

    def first_byte(self) -> None:
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.start

    def add_upstream(self, seconds: float) -> None:
        self.upstream = (self.upstream or 0.0) + seconds


OBSERVATION: Final = web.RequestKey("team_observation", Observation)


class Team:
    """Proxy keys, limits, the balance guard, metrics and the usage log of one app."""

    def __init__(self, store: KeyStore, limits: Limits | SharedLimits, metrics: Metrics,
                 usage: UsageLog, balance: BalanceGuard | None, poe_api_key: str) -> None:
        self.store = store
        self.limits = limits
        self.metrics = metrics
        self.usage = usage
        self.balance = balance
        self._poe_key = poe_api_key

    def observe(self, request: web.Request, face: str) -> Observation:
        """Start observing an API request (idempotent); the route's guard records it."""
        obs = request.get(OBSERVATION)
        if obs is None:
            obs = Observation(face, request.get(ARRIVED, time.perf_counter()), self)
            request[OBSERVATION] = obs
        obs.face = face
        return obs

    def authenticate(self, request: web.Request) -> Access:
        """Who is asking. With proxy keys: an active key (else 401), answered with
        ``POE_API_KEY`` (503 when unset). Without: the client's own Poe key (401 if none)."""
        presented = presented_key(request.headers)
        if self.store.empty:
            if presented is None:
                raise AuthenticationFailed(
                    "Missing API key: send your Poe API key as 'Authorization: Bearer <key>' "
                    "or 'x-api-key: <key>'.")
            return Access(None, presented)
        record, reason = self.store.check(presented)
        if record is None:
            raise AuthenticationFailed(reason)
        obs = request.get(OBSERVATION)
        if obs is not None:
            obs.key = record.name
        if not self._poe_key:
            raise ServerMisconfigured(
                "This server has proxy keys but no Poe key of its own (POE_API_KEY); "
                "ask its admin.")
        return Access(record, self._poe_key)

    def admit(self, access: Access) -> _Admit:
        """``async with``: the low-balance guard (402) and the key's limits (429)."""
        return _Admit(self, access)


class _Admit:
    __slots__ = ("_access", "_inner", "_team")

    def __init__(self, team: Team, access: Access) -> None:
        self._team = team
        self._access = access
        self._inner = team.limits.admit(access.key)

    async def __aenter__(self) -> None:
        team, access = self._team, self._access
        try:
            if access.key is not None and team.balance is not None:
                await team.balance.check()
            await self._inner.__aenter__()
        except LowBalance:
            team.metrics.rejected("low_balance", access.name)
            raise
        except ProxyError as err:
            team.metrics.rejected(err.code or "limit", access.name)
            raise

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


#: When the request reached its route's guard (``perf_counter``).
ARRIVED: Final = web.RequestKey("team_arrived", float)
TEAM: Final = web.AppKey("team", Team)


def request_ended(request: web.Request, status: int, cancelled: bool = False) -> None:
    """Record an API request that a handler observed (:meth:`Team.observe`), once it ends
    with ``status`` (``cancelled``: the client left; recorded as 499). Called by each API
    route's guard (``api/guard.py``) for every request."""
    obs = request.get(OBSERVATION)
    if obs is not None:
        if cancelled:
            obs.cancelled = True
            status = 499
        _record(request, obs, status)


def _record(request: web.Request, obs: Observation, status: int) -> None:
    duration = time.perf_counter() - obs.start
    if status == 499:
        from .logs import log_cancelled  # (logs imports this module)

        log_cancelled(request, duration)
    if obs.ttfb is None and not obs.cancelled:
        obs.ttfb = duration  # an answer sent in one piece: its first byte left at the end
    team = obs.team
    info = request.match_info.route.resource
    route = info.canonical if info is not None else request.path
    try:
        team.metrics.request(face=obs.face, route=route, model=obs.model, key=obs.key,
                             status=status, ttfb=obs.ttfb, duration=duration,
                             upstream=obs.upstream, tokens_in=obs.tokens_in,
                             tokens_out=obs.tokens_out, cancelled=obs.cancelled)
        team.usage.record(obs.face, obs.model, obs.key, status, obs.tokens_in, obs.tokens_out,
                          obs.ttfb, duration)
    except Exception:  # pragma: no cover - recording must never fail a request
        log.exception("Recording a request's metrics failed")

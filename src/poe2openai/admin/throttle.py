"""Failed admin logins, per client address: a few free tries, then lockouts that double.

While an address is locked out its attempts are refused unchecked (even a right password:
otherwise the lockout would still answer guesses). A success clears the address's record.
Wrong logins are logged as one summary line per address and interval, never one per guess.
The table of addresses is bounded (least recently seen go first).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginThrottle", "client_key"]

log = logging.getLogger(__name__)


def client_key(remote: str | None) -> str:
    """The address a client is throttled by: IPv4, or the IPv6 /64 (one site's usual share)."""
    if not remote:
        return "unknown"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = -math.inf
    locked_until: float = -math.inf
    logged_at: float = -math.inf
    unlogged: int = 0  # wrong logins since the last log line
    refused: int = 0  # attempts refused while locked out, since the last log line


class LoginThrottle:
    """``free`` wrong logins in a row are free; each one after that locks the address out
    for ``first`` seconds, doubling up to ``cap``. A record is forgotten ``forget`` seconds
    after its last wrong login."""

    def __init__(self, *, free: int = 5, first: float = 1.0, cap: float = 300.0,
                 forget: float = 3600.0, log_every: float = 60.0, max_addresses: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.first, self.cap, self.forget = free, first, cap, forget
        self.log_every, self.max_addresses, self.clock = log_every, max_addresses, clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now). A refused attempt is counted."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        now = self.clock()
        if now - record.last_failure > self.forget:
            del self._records[key]
            return 0.0
        left = record.locked_until - now
        if left <= 0:
            return 0.0
        record.refused += 1
        self._maybe_log(key, record, now)
        return left

    def failed(self, key: str) -> None:
        now = self.clock()
        record = self._records.pop(key, None)
        if record is None or now - record.last_failure > self.forget:
            record = _Record()
        self._records[key] = record  # most recently seen last
        while len(self._records) > self.max_addresses:
            self._records.popitem(last=False)
        record.failures += 1
        record.last_failure = now
        record.unlogged += 1
        over = record.failures - self.free
        if over >= 0:
            record.locked_until = now + min(self.first * 2.0 ** min(over, 64), self.cap)
        self._maybe_log(key, record, now)

    def succeeded(self, key: str) -> None:
        record = self._records.pop(key, None)
        if record is not None and (record.unlogged or record.refused):
            log.warning("Admin login from %s after %d more wrong user name or password "
                        "attempt(s) and %d refused while locked out",
                        key, record.unlogged, record.refused)

    def _maybe_log(self, key: str, record: _Record, now: float) -> None:
        if now - record.logged_at < self.log_every:
            return
        locked = max(0.0, record.locked_until - now)
        log.warning("Wrong admin user name or password from %s: %d wrong in a row; %d since "
                    "the last report, %d more refused while locked out%s", key,
                    record.failures, record.unlogged, record.refused,
                    f"; locked out for {math.ceil(locked)} s" if locked else "")
        record.logged_at = now
        record.unlogged = record.refused = 0

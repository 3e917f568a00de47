"""Proxy keys: the records and ``$CONFIG_DIR/proxy-keys.json`` (blocking file helpers).

Each key has a name, allowed models (names or globs, case-insensitive; none means
all), optional per-key limits (requests per minute, concurrent requests, requests per
UTC day) and an optional expiry. The secret (``p2o-`` and 43 random URL-safe
characters, 256 bits) is shown once at creation; the file keeps only its SHA-256,
which is safe for a secret of that entropy, and a short hint (its first 8
characters) to tell keys apart. The file is written atomically with mode 0600;
writers (the ``keys`` command, the admin page) take a lock file so they never lose
each other's changes.

A revoked key stays in the file (so a client using it is told it was revoked) until a
new key takes its name. As long as the file has any key, revoked or not, every API
request needs one: delete the file to go back to passing clients' own Poe keys through.
A file that cannot be read or parsed keeps the last good keys; when it is broken at
start, nothing is accepted (fail closed) until it is fixed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from ..configfile import atomic_write, read_snapshot
from ..jsonlib import JSONDecodeError, loads

__all__ = ["FILE_NAME", "SECRET_PREFIX", "KeyError_", "KeyRecord", "check_name", "create_key",
           "digest_of", "format_time", "new_secret", "parse_expiry", "parse_keys", "read_keys",
           "revoke_key"]

FILE_NAME: Final = "proxy-keys.json"
SECRET_PREFIX: Final = "p2o-"
MAX_KEYS: Final = 10_000
MAX_PATTERNS: Final = 100
MAX_PATTERN_LEN: Final = 200
MAX_LIMIT: Final = 1_000_000_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class KeyError_(ValueError):
    """A bad key definition or key file; the message says what is wrong."""


def format_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KeyError_(f"{what} must be a date-time string like 2026-01-31T00:00:00Z")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise KeyError_(f"{what}: {value!r} is not an ISO date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_expiry(text: str, now: float | None = None) -> float:
    """When a key expires, from ``YYYY-MM-DD`` (valid through that UTC day), an ISO
    date-time (UTC unless it has an offset), or ``N`` + ``d``/``h`` from now."""
    now = time.time() if now is None else now
    raw = text.strip()
    rel = re.fullmatch(r"(\d{1,5})\s*([dh])", raw.lower())
    if rel:
        amount = int(rel.group(1)) * (86400 if rel.group(2) == "d" else 3600)
        ts = now + amount
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise KeyError_(f"{raw!r} is not a date") from None
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86400
    else:
        parsed = _parse_time(raw, "expiry")
        assert parsed is not None
        ts = parsed
    if ts <= now:
        raise KeyError_(f"the expiry {format_time(ts)} is in the past")
    return ts


def _limit(value: Any, what: str) -> int | None:
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_LIMIT:
        raise KeyError_(f"{what} must be a whole number from 1 to {MAX_LIMIT} (or 0/null: none)")
    return value


def _patterns(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or len(value) > MAX_PATTERNS:
        raise KeyError_(f"models must be a list of at most {MAX_PATTERNS} names or globs")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_PATTERN_LEN:
            raise KeyError_(f"every model must be a non-empty name of at most "
                            f"{MAX_PATTERN_LEN} characters")
        out += [p.strip() for p in item.split(",") if p.strip()]
    return () if "*" in out else tuple(dict.fromkeys(out))


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeyError_("a key name is 1-64 letters, digits and . _ @ + - (starting with a "
                        "letter or digit)")
    return name


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One proxy key, as the file has it (never the secret)."""

    name: str
    digest: str  #: SHA-256 of the secret, hex
    hint: str = ""  #: the secret's first 8 characters
    models: tuple[str, ...] = ()  #: names or globs; empty: every model
    rpm: int | None = None
    concurrency: int | None = None
    daily: int | None = None
    expires: float | None = None  #: Unix time, or None
    created: float = 0.0
    revoked: float | None = None

    def allows(self, model: str) -> bool:
        """May this key use ``model`` (the name the client sends and ``/v1/models`` lists)?"""
        if not self.models:
            return True
        if len(model) > 4 * MAX_PATTERN_LEN:
            return False
        low = model.lower()
        return any(fnmatch.fnmatchcase(low, p.lower()) for p in self.models)

    def visible(self, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entries of a ``/v1/models`` list this key may use."""
        return models if not self.models else [m for m in models if self.allows(m["id"])]

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def state(self, now: float | None = None) -> str:
        return "revoked" if self.revoked is not None else \
            "expired" if self.expired(now) else "active"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.digest, "hint": self.hint,
                "models": list(self.models), "rpm": self.rpm, "concurrency": self.concurrency,
                "daily": self.daily, "expires": format_time(self.expires),
                "created": format_time(self.created), "revoked": format_time(self.revoked)}

    def public(self, now: float | None = None) -> dict[str, Any]:
        """What lists show: everything but the hash."""
        out = self.to_json()
        del out["sha256"]
        out["state"] = self.state(now)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> KeyRecord:
        if not isinstance(obj, dict):
            raise KeyError_("every key must be an object")
        name = check_name(obj.get("name"))
        digest = obj.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise KeyError_(f"key {name!r}: sha256 must be 64 lower-case hex digits")
        hint = obj.get("hint") or ""
        try:
            return cls(
                name=name, digest=digest, hint=hint if isinstance(hint, str) else "",
                models=_patterns(obj.get("models")), rpm=_limit(obj.get("rpm"), "rpm"),
                concurrency=_limit(obj.get("concurrency"), "concurrency"),
                daily=_limit(obj.get("daily"), "daily"),
                expires=_parse_time(obj.get("expires"), "expires"),
                created=_parse_time(obj.get("created"), "created") or 0.0,
                revoked=_parse_time(obj.get("revoked"), "revoked"))
        except KeyError_ as exc:
            raise KeyError_(f"key {name!r}: {exc}") from None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# ------------------------------------------------------------------ the file (blocking)


def parse_keys(data: bytes) -> list[KeyRecord]:
    try:
        doc = loads(data)
    except JSONDecodeError as exc:
        raise KeyError_(f"not valid JSON: {exc}") from None
    items = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise KeyError_('expected {"keys": [...]}')
    if len(items) > MAX_KEYS:
        raise KeyError_(f"more than {MAX_KEYS} keys")
    records = [KeyRecord.from_json(item) for item in items]
    names = [r.name.lower() for r in records]
    if len(set(names)) != len(names):
        raise KeyError_("two keys have the same name")
    return records


def read_keys(path: Path) -> list[KeyRecord]:
    """The keys in the file (none when it does not exist)."""
    snap = read_snapshot(path)
    return [] if snap.data is None else parse_keys(snap.data)


def _write(path: Path, records: list[KeyRecord]) -> None:
    doc = {"version": 1, "keys": [r.to_json() for r in records]}
    text = json.dumps(doc, indent=2, ensure_ascii=False)  # readable by people, too
    atomic_write(path, text.encode("utf-8") + b"\n", private=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time (the keys command and the server's admin page)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: writers are not serialised
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create_key(path: Path, name: str, *, models: Any = None, rpm: int | None = None,
               concurrency: int | None = None, daily: int | None = None,
               expires: float | None = None, now: float | None = None) -> tuple[KeyRecord, str]:
    """Add a key; returns it and its secret (the only time the secret exists).

    A revoked key of the same name is replaced; an active or expired one is an error.
    """
    now = float(int(time.time() if now is None else now))  # the file keeps whole seconds
    expires = None if expires is None else float(int(expires))
    secret = new_secret()
    record = KeyRecord(name=check_name(name), digest=digest_of(secret), hint=secret[:8],
                       models=_patterns(models), rpm=_limit(rpm, "rpm"),
                       concurrency=_limit(concurrency, "concurrency"),
                       daily=_limit(daily, "daily"), expires=expires, created=now)
    if expires is not None and not now < expires < 253402300800:  # before year 10000
        raise KeyError_("the expiry must be in the future (and before the year 10000)")
    with _locked(path):
        records = read_keys(path)
        old = next((r for r in records if r.name.lower() == name.lower()), None)
        if old is not None and old.revoked is None:
            raise KeyError_(f"a key named {name!r} exists; revoke it first or pick another name")
        records = [r for r in records if r is not old]
        if len(records) >= MAX_KEYS:
            raise KeyError_(f"there are already {MAX_KEYS} keys")
        _write(path, [*records, record])
    return record, secret


def revoke_key(path: Path, name: str, now: float | None = None) -> KeyRecord:
    """Revoke a key by name (revoking twice keeps the first time)."""
    with _locked(path):
        records = read_keys(path)
        for i, r in enumerate(records):
            if r.name.lower() == name.lower():
                if r.revoked is None:
                    records[i] = replace(r, revoked=time.time() if now is None else now)
                    _write(path, records)
                return records[i]
    raise KeyError_(f"there is no key named {name!r}")

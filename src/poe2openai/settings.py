"""Server settings from environment variables: one table, validated once at start."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["SETTINGS", "Setting", "Settings", "SettingsError", "default_config_dir",
           "load_settings"]


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable."""


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _float(lo: float, hi: float = math.inf) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
        if not (lo <= value <= hi) or math.isnan(value):
            raise ValueError(f"must be between {lo} and {hi}, got {raw.strip()}")
        return value

    return parse


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return value


_LEVELS = ("trace", "debug", "info", "warning", "warn", "error", "critical")


def _level(raw: str) -> str:
    value = raw.strip().lower()
    if value not in _LEVELS:
        raise ValueError(f"expected one of {', '.join(_LEVELS)}, got {raw!r}")
    return "warning" if value == "warn" else value


def _str(raw: str) -> str:
    return raw


def _nonempty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _secret(raw: str) -> str:
    return raw.strip()


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("text", "json"):
        raise ValueError(f"expected text or json, got {raw!r}")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    items = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not items:
        raise ValueError("expected '*' or a comma-separated list of origins")
    return items


def _redis_url(raw: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.netloc or parts.path):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")  # never echo it: a password may be in it
    return value


def _instance_id(raw: str) -> str:
    value = raw.strip()
    if len(value) > 100 or not all(c.isalnum() or c in "-_.:@" for c in value):
        raise ValueError("expected at most 100 letters, digits and - _ . : @")
    return value


def _path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("must not be empty")
    return Path(raw.strip()).expanduser()


def default_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The data folder when ``CONFIG_DIR`` is not set: ``$XDG_CONFIG_HOME/poe2openai``, else
    ``~/.config/poe2openai``. Never a folder of the current directory, so a server started
    from a checkout of the repository leaves the checkout's files alone."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CONFIG_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG spec ignores relative paths
        return Path(xdg) / "poe2openai"
    home = env.get("HOME", "").strip()
    try:
        base = Path(home) if home else Path.home()
    except RuntimeError:
        raise SettingsError("CONFIG_DIR: not set, and there is no home folder for the "
                            "default ~/.config/poe2openai; set CONFIG_DIR") from None
    return base / ".config" / "poe2openai"


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    parse: Callable[[str], Any]
    default: str
    help: str
    #: The default when it depends on other variables (``default`` then only documents it).
    computed: Callable[[Mapping[str, str]], Any] | None = None


#: Every setting: environment variable, parser, default (as the user would write it), help.
SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "host", _nonempty, "0.0.0.0", "Address to listen on."),
    Setting("PORT", "port", _int(1, 65535), "8080", "Port to listen on."),
    Setting("LOG_LEVEL", "log_level", _level, "info", "debug, info, warning or error."),
    Setting("CONFIG_DIR", "config_dir", _path, "$XDG_CONFIG_HOME/poe2openai or ~/.config/poe2openai",
            "Folder of models.yaml, the proxy keys, the usage log and the upload cache "
            "(created when missing).", computed=default_config_dir),
    Setting("MAX_REQUEST_SIZE", "max_request_size", _int(1024, 2**40), "1073741824",
            "Largest request body accepted, in bytes (larger: 413)."),
    Setting("BODY_READ_TIMEOUT", "body_read_timeout", _float(0.1, 86400), "60",
            "Seconds a client gets to send a whole request body (then 408)."),
    Setting("POE_BASE_URL", "poe_base_url", _url, "https://api.poe.com",
            "Poe API root: bots at {POE_BASE_URL}/bot/{name}, models at {POE_BASE_URL}/v1/models."),
    Setting("POE_FILE_UPLOAD_URL", "poe_file_upload_url", _url,
            "https://www.quora.com/poe_api/file_upload_3RD_PARTY_POST", "Poe's file upload endpoint."),
    Setting("POE_CONNECT_TIMEOUT", "connect_timeout", _float(0.1, 600), "15",
            "Seconds to wait for a connection to Poe (then 504)."),
    Setting("POE_READ_TIMEOUT", "read_timeout", _float(1, 86400), "180",
            "Longest silence (no bytes at all) accepted from Poe mid-answer (then 504 or an error chunk)."),
    Setting("FIRST_BYTE_WAIT", "first_byte_wait", _float(0, 600), "10",
            "Streaming: seconds to hold the HTTP status back while waiting for Poe's first event, "
            "so early Poe errors become real HTTP errors; after that the stream starts with keep-alives."),
    Setting("KEEPALIVE_INTERVAL", "keepalive_interval", _float(0.05, 600), "15",
            "Streaming: send an SSE comment after this many seconds without output."),
    Setting("SHUTDOWN_TIMEOUT", "shutdown_timeout", _float(0, 3600), "10",
            "On SIGTERM: seconds in-flight requests get to finish before they are ended."),
    Setting("MODELS_CACHE_TTL", "models_cache_ttl", _float(0, 86400 * 30), "600",
            "Seconds Poe's model list is cached (served stale when Poe is unreachable)."),
    Setting("CORS_ALLOW_ORIGINS", "cors_allow_origins", _origins, "*",
            "Origins allowed to call the API from a browser: '*' or a comma-separated list."),
    Setting("CONFIG_RELOAD_INTERVAL", "reload_interval", _float(0.01, 3600), "1",
            "Seconds between checks of models.yaml for hand edits."),
    Setting("ADMIN_USERNAME", "admin_username", _nonempty, "admin", "User name for /admin."),
    Setting("ADMIN_PASSWORD", "admin_password", _str, "",
            "Password for /admin; when empty a random one is generated and logged once at start."),
    Setting("RATE_LIMIT_MS", "rate_limit_ms", _int(0, 3_600_000), "0",
            "Least time between the starts of two chat requests with the same API key, in ms "
            "(0: no limit). Requests queue for their turn, at most 30 s (then 429)."),
    Setting("STRUCTURED_OUTPUT_RETRIES", "structured_retries", _int(0, 5), "1",
            "Structured output: repair rounds (the validator's error sent back to the bot) "
            "before an answer that does not match the schema is an error."),
    Setting("STRUCTURED_OUTPUT_STREAM", "structured_stream", _choice("stream", "buffer"),
            "stream", "Structured output in streams: 'stream' sends the JSON as it is produced; "
            "'buffer' holds it and sends only a validated document."),
    Setting("RESPONSES_MAX_STORED", "responses_max_stored", _int(0, 10**7), "1000",
            "Responses API: most responses kept for previous_response_id (0: none kept)."),
    Setting("RESPONSES_MAX_BYTES", "responses_max_bytes", _int(0, 2**40), "67108864",
            "Responses API: memory budget of the stored responses, in bytes."),
    Setting("RESPONSES_TTL", "responses_ttl", _float(1, 365 * 86400), "86400",
            "Responses API: seconds a stored response is kept."),
    Setting("URL_CACHE_TTL_SECONDS", "url_cache_ttl_seconds", _int(0, 10 * 365 * 86400), "259200",
            "Seconds an uploaded attachment is reused for the same bytes or URL."),
    Setting("URL_CACHE_SIZE_MB", "url_cache_size_mb", _int(0, 1024 * 1024), "100",
            "Size budget of the upload cache, in MB of uploaded data (least recently used go first)."),
    Setting("POE_API_KEY", "poe_api_key", _secret, "",
            "The server's own Poe key: used upstream for clients holding proxy keys "
            "(poe2openai keys), and for the point balance. Never logged or shown."),
    Setting("POE_MIN_POINTS", "poe_min_points", _int(0, 10**12), "0",
            "With POE_API_KEY: below this Poe point balance, new requests get 402 (0: off)."),
    Setting("METRICS_TOKEN", "metrics_token", _secret, "",
            "When set, GET /metrics needs 'Authorization: Bearer <token>'."),
    Setting("LOG_FORMAT", "log_format", _log_format, "text",
            "text, or json (one JSON object per log line)."),
    Setting("USAGE_RETENTION_DAYS", "usage_retention_days", _int(0, 3650), "30",
            "Days of per-request usage kept for the admin dashboard (0: none recorded)."),
    Setting("REDIS_URL", "redis_url", _redis_url, "",
            "Several instances: the Redis holding the per-key limits, stored responses and the "
            "upload cache they share (redis://[:password@]host:port/db, rediss://, unix://). "
            "Empty: all of it in this process. Never logged with its password."),
    Setting("REDIS_TIMEOUT", "redis_timeout", _float(0.01, 10), "0.5",
            "With REDIS_URL: seconds one Redis call may take before it counts as failed "
            "(limits then let the request through, stored-response lookups answer 503)."),
    Setting("INSTANCE_ID", "instance_id", _instance_id, "",
            "The instance_id label on every metric (empty: none; with REDIS_URL the host "
            "name and PORT)."),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "info"
    config_dir: Path = field(default_factory=default_config_dir)
    max_request_size: int = 1073741824
    body_read_timeout: float = 60.0
    poe_base_url: str = "https://api.poe.com"
    poe_file_upload_url: str = "https://www.quora.com/poe_api/file_upload_3RD_PARTY_POST"
    connect_timeout: float = 15.0
    read_timeout: float = 180.0
    first_byte_wait: float = 10.0
    keepalive_interval: float = 15.0
    shutdown_timeout: float = 10.0
    models_cache_ttl: float = 600.0
    cors_allow_origins: tuple[str, ...] = ("*",)
    reload_interval: float = 1.0
    admin_username: str = "admin"
    structured_retries: int = 1
    structured_stream: str = "stream"
    responses_max_stored: int = 1000
    responses_max_bytes: int = 67108864
    responses_ttl: float = 86400.0
    admin_password: str = ""
    rate_limit_ms: int = 0
    url_cache_ttl_seconds: int = 259200
    url_cache_size_mb: int = 100
    poe_api_key: str = field(default="", repr=False)
    poe_min_points: int = 0
    metrics_token: str = field(default="", repr=False)
    log_format: str = "text"
    usage_retention_days: int = 30
    redis_url: str = field(default="", repr=False)
    redis_timeout: float = 0.5
    instance_id: str = ""

    @property
    def models_path(self) -> Path:
        return self.config_dir / "models.yaml"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read every setting from ``environ``; raise :class:`SettingsError` naming a bad one."""
    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw = environ.get(s.env)
        if raw is None or (raw == "" and s.env != "ADMIN_PASSWORD"):
            if s.computed is not None:
                values[s.field] = s.computed(environ)
                continue
            raw = s.default
        try:
            values[s.field] = s.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{s.env}: {exc}") from None
    return Settings(**values)

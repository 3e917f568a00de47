"""Downloads of the files Poe's answers point to (the Images API's ``b64_json``).

Only URLs that come from Poe are fetched, never a URL a client gave, and only from Poe's
own hosts: its CDN (``poecdn.net`` and its subdomains) and the hosts of ``POE_BASE_URL``
and ``POE_FILE_UPLOAD_URL``. A bot on Poe can put any URL in a ``file`` event, so this
keeps the server from fetching internal addresses for it. Redirects are not followed (a
redirect could lead anywhere). No credential is sent.

A download goes through the same outbound proxy as Poe's calls (``HTTPS_PROXY`` …, see
:func:`.client.proxy_for`), is bounded in size (:data:`MAX_DOWNLOAD`, checked against
``Content-Length`` and again as bytes arrive) and in time (:data:`DOWNLOAD_TIMEOUT` in
all, and the session's connect and read timeouts). Every failure is a
:class:`~poe2openai.errors.ProxyError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from .. import __version__
from ..errors import ProxyError, UpstreamError, UpstreamTimeout

__all__ = ["DOWNLOAD_TIMEOUT", "MAX_DOWNLOAD", "fetch_file", "is_poe_host"]

log = logging.getLogger(__name__)

#: The largest file downloaded, in bytes.
MAX_DOWNLOAD: Final = 64 * 1024 * 1024
#: Seconds one download may take in all.
DOWNLOAD_TIMEOUT: Final = 300.0
_CDN: Final = "poecdn.net"


def is_poe_host(url: str, hosts: Iterable[str]) -> bool:
    """Whether ``url`` is http(s) on Poe's CDN or one of ``hosts``."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    return host == _CDN or host.endswith("." + _CDN) or host in {h.lower() for h in hosts}


async def fetch_file(session: aiohttp.ClientSession, url: str, *, hosts: Iterable[str],
                     proxy: str | None, max_bytes: int = MAX_DOWNLOAD,
                     time_limit: float = DOWNLOAD_TIMEOUT) -> tuple[bytes, str]:
    """The bytes of the file at ``url`` and its content type (empty when not given)."""
    if not is_poe_host(url, hosts):
        raise UpstreamError("The bot's image is not on a Poe host, so this server does not "
                            "download it; ask for response_format 'url' to get its address.")
    base = session.timeout
    limits = aiohttp.ClientTimeout(total=time_limit, sock_connect=base.sock_connect,
                                   sock_read=base.sock_read)
    headers = {"User-Agent": f"poe2openai/{__version__}", "Accept-Encoding": "identity"}
    try:
        async with session.get(url, headers=headers, timeout=limits, proxy=proxy,
                               allow_redirects=False) as resp:
            if resp.status != 200:
                raise UpstreamError(f"Downloading the bot's image failed: HTTP {resp.status}.")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise _too_large(max_bytes)
            data = bytearray()
            async for chunk in resp.content.iter_any():
                data += chunk
                if len(data) > max_bytes:
                    raise _too_large(max_bytes)
            return bytes(data), resp.content_type if "Content-Type" in resp.headers else ""
    except ProxyError:
        raise
    except TimeoutError:
        raise UpstreamTimeout("Timed out downloading the bot's image.") from None
    except aiohttp.ClientError as exc:
        log.warning("Image download problem: %s: %s", type(exc).__name__, exc)
        raise UpstreamError("Downloading the bot's image failed: "
                            f"{type(exc).__name__}.") from None


def _too_large(limit: int) -> UpstreamError:
    return UpstreamError(f"The bot's image is larger than {limit // (1024 * 1024)} MiB, the "
                         "most this server downloads; ask for response_format 'url'.")

"""Response header values built from client input. Pure: no I/O.

A name the client chose (a request field such as ``"x\\ny"``) must never reach a
header as it is: aiohttp refuses CR and LF (the response is then lost), and
clients refuse other control characters. :func:`name_list` writes such names as
plain tokens: every character outside visible ASCII, and ``%`` and ``,``, is
percent-encoded (UTF-8), so the value is visible ASCII, splits on ``", "``
unambiguously, and ``urllib.parse.unquote`` gives each name back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

__all__ = ["MAX_HEADER_VALUE", "header_token", "name_list"]

#: Longest value :func:`name_list` builds (HTTP clients limit header sizes, e.g. 8 KiB).
MAX_HEADER_VALUE: Final = 4096
#: Characters kept as they are: visible ASCII except ``%`` (the escape) and ``,`` (the separator).
_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%,")


def header_token(name: str) -> str:
    """``name`` as a plain token: visible ASCII, no ``,`` (percent-encoded otherwise)."""
    return quote(name, safe=_SAFE, errors="surrogatepass")


def name_list(names: Sequence[str], limit: int = MAX_HEADER_VALUE) -> str:
    """``"a, b, c"`` of :func:`header_token` names, at most ``limit`` characters long.

    Names that do not fit are counted in a last item ``"+N more"`` (its space cannot
    occur in an encoded name).
    """
    out: list[str] = []
    size = 0
    for i, name in enumerate(names):
        token = header_token(name)
        rest = len(names) - i - 1
        # Room for this token, and for a "+N more" after it if more are to come.
        need = size + len(token) + (2 if out else 0) + (len(f", +{rest} more") if rest else 0)
        if need > limit:
            out.append(f"+{len(names) - i} more")
            break
        out.append(token)
        size += len(token) + (2 if len(out) > 1 else 0)
    return ", ".join(out)

"""Token counting with tiktoken's ``o200k_base`` when its file is on this machine.

tiktoken downloads its encoding files on first use. A proxy must not: on a
machine without internet that download stalls or fails, and token counts must
never hold a request up. So :class:`Tokenizer` only ever reads local files,
once, in a worker thread:

1. ``TIKTOKEN_ENCODING_PATH``: an ``o200k_base.tiktoken`` file (set it to an
   empty string to always use the estimate);
2. otherwise tiktoken's own cache (``TIKTOKEN_CACHE_DIR``, else
   ``DATA_GYM_CACHE_DIR``, else ``<tmp>/data-gym-cache``), used only when the
   cached file is there and its SHA-256 is right (tiktoken would download it
   again otherwise).

When neither is there, or tiktoken is not installed, counts come from the
estimate in :mod:`poe2openai.translate.usage` (about four bytes per token).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from .translate.usage import count_tokens as estimate
from .translate.usage import estimate_cut, o200k_cut

__all__ = ["ENCODING_SHA256", "ENCODING_URL", "TOKENIZER", "Tokenizer", "cache_file"]

log = logging.getLogger(__name__)

ENCODING_URL: Final = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
ENCODING_SHA256: Final = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

# tiktoken_ext.openai_public.o200k_base(), which cannot be called offline.
_O200K_PATTERN: Final = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_SPECIAL: Final = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}


def cache_file(environ: Mapping[str, str]) -> str | None:
    """Where tiktoken keeps its downloaded ``o200k_base`` (``None``: caching is off)."""
    if "TIKTOKEN_CACHE_DIR" in environ:
        cache_dir = environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in environ:
        cache_dir = environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return None
    return os.path.join(cache_dir, hashlib.sha1(ENCODING_URL.encode()).hexdigest())


class Tokenizer:
    """Counts tokens; loads the encoding at most once (call :meth:`load` off the event loop)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ
        self._lock = threading.Lock()
        self._encoding: Any = None
        #: What counts come from: "" (not loaded yet), "estimate", or the encoding's file.
        self.source = ""
        # Plain attributes, set by load(): read on every request.
        #: :meth:`load` has run (successfully or not).
        self.loaded = False
        #: Counts come from o200k_base.
        self.exact = False
        #: Counts ``text``'s tokens (the estimate until an encoding is loaded).
        self.count: Callable[[str], int] = estimate

    def load(self) -> None:
        """Read the encoding if it is on this machine. Blocking; safe to call from any thread."""
        with self._lock:
            if self.loaded:
                return
            try:
                self._encoding, self.source = self._open()
            except Exception as exc:  # a broken file or tiktoken: the estimate still works
                log.warning("Token counts are estimated: the o200k_base encoding could not be "
                            "loaded (%s: %s)", type(exc).__name__, exc)
                self._encoding, self.source = None, "estimate"
            else:
                if self._encoding is None:
                    log.info("Token counts are estimated (no local o200k_base encoding; see "
                             "TIKTOKEN_ENCODING_PATH)")
                else:
                    log.info("Token counts use tiktoken o200k_base from %s", self.source)
            if self._encoding is not None:
                self.count = self._count_exact
                self.exact = True
            self.loaded = True  # last: whoever sees it sees the rest

    def _open(self) -> tuple[Any, str]:
        path = self._environ.get("TIKTOKEN_ENCODING_PATH")
        if path is not None:
            if not path.strip():
                return None, "estimate"
            import tiktoken

            with open(os.path.expanduser(path.strip()), "rb") as f:
                data = f.read()
            ranks = {base64.b64decode(token): int(rank)
                     for token, rank in (line.split() for line in data.splitlines() if line)}
            return tiktoken.Encoding(name="o200k_base", pat_str=_O200K_PATTERN,
                                     mergeable_ranks=ranks, special_tokens=_SPECIAL), path
        cached = cache_file(self._environ)
        if cached is None or not os.path.isfile(cached):
            return None, "estimate"
        with open(cached, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != ENCODING_SHA256:
                # tiktoken would delete it and download it again: not here.
                log.warning("Ignoring %s: it is not the o200k_base encoding tiktoken expects",
                            cached)
                return None, "estimate"
        import tiktoken

        return tiktoken.get_encoding("o200k_base"), cached

    def _count_exact(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def cut(self, text: str, start: int = 1) -> int:
        """Where ``text`` can be cut so that the counts of its halves add up to its count (0:
        nowhere); no cut before ``start`` needs looking at."""
        if self._encoding is not None:
            return o200k_cut(text, start)
        return estimate_cut(text, start)


#: The process-wide tokenizer (the encoding is immutable data, shared by every app).
TOKENIZER: Final = Tokenizer()

"""Files a bot produced → Markdown in the answer. Pure: no I/O.

Poe sends a ``file`` event (``url``, ``content_type``, ``name``, ``inline_ref``)
before the text that shows it, and that text refers to the file Markdown-style
as ``![title][ref]`` (or ``[title][ref]``) with ``ref`` = the ``inline_ref``.
OpenAI clients know nothing of those references, so :class:`MediaStage`:

* rewrites ``[title][ref]`` to ``[title](url)`` for every ``ref`` seen, also when
  the reference is split across text events (a trailing fragment that may be the
  start of one, at most :data:`MAX_HOLD` characters, is held back until the next
  text or the end of the answer);
* appends every file that was not shown that way (no ``inline_ref``, or a ref the
  text never used, and a URL that does not appear in the text) at the end of the
  answer: ``![name](url)`` for images, ``[name](url)`` for other files, each after
  a blank line.

Only ``http(s)`` file URLs are used; others are dropped (a bot cannot slip a
``javascript:`` link into the answer). The stage consumes ``FILE`` items and
passes every other kind on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from .items import CONTENT, FILE, RESET, Out

__all__ = ["MAX_HOLD", "MediaStage", "markdown_link"]

#: The longest trailing text held back because it may be the start of a reference.
MAX_HOLD: Final = 256

#: A complete reference: link text, then the label. Neither spans lines.
_REF: Final = re.compile(r"(!?\[[^\]\n]*\])\[([^\]\n]+)\]")
#: A text end that could still become a reference: ``!``, ``[t``, ``[t]``, ``[t][r``.
_PARTIAL: Final = re.compile(r"!?\[[^\]\n]*\]\[[^\]\n]*\Z|!?\[[^\]\n]*\]?\Z|!\Z")


@dataclass(slots=True)
class _File:
    url: str
    content_type: str
    name: str
    shown: bool = False


#: The shared empty state of a stage that has seen no file (see ``MediaStage.__init__``).
_NO_FILES: Final[dict[str, _File]] = {}
_NO_TEXT: Final[list[str]] = []


class MediaStage:
    """Resolves ``inline_ref`` references and lists unreferenced files (see module docs)."""

    __slots__ = ("_by_ref", "_files", "_held", "_last", "_text", "active")

    def __init__(self) -> None:
        self.active = True
        # Most answers have no file: until the first one, these are shared empty objects
        # (never added to; :meth:`_add` gives the stage its own), not two dicts and a list
        # for every open stream.
        self._files: dict[str, _File] = _NO_FILES  # by URL, in arrival order
        self._by_ref: dict[str, _File] = _NO_FILES
        self._held = ""  # a possibly incomplete reference at the end of the text
        self._text: list[str] = _NO_TEXT  # content since the first file, to spot URLs shown
        self._last = ""  # the last two characters of the content

    def feed(self, items: list[Out]) -> list[Out]:
        if not self._files:
            # The common case, no file yet: text passes as is; only its end is remembered.
            last = self._last
            for item in items:
                if item[0] != CONTENT:
                    break
                text = item[1]
                last = text[-2:] if len(text) >= 2 else (last + text)[-2:]
            else:
                self._last = last
                return items
        out: list[Out] = []
        for item in items:
            kind = item[0]
            if kind == FILE:
                self._add(item)
            elif kind == CONTENT:
                self._content(item[1], out)
            else:
                if kind == RESET:  # non-stream: the content so far is thrown away
                    self._held = ""
                    self._text.clear()
                    self._last = ""
                    for f in self._files.values():
                        f.shown = False
                elif self._held:
                    self._emit(self._held, out)
                    self._held = ""
                out.append(item)
        return out

    def flush(self) -> list[Out]:
        out: list[Out] = []
        if self._held:
            self._emit(self._held, out)
            self._held = ""
        text = "".join(self._text)
        links = [markdown_link(f.name, f.url, f.content_type)
                 for f in self._files.values() if not f.shown and f.url not in text]
        if links:
            sep = "" if not self._last or self._last == "\n\n" else (
                "\n" if self._last.endswith("\n") else "\n\n")
            out.append((CONTENT, sep + "\n\n".join(links)))
        return out

    def _add(self, item: Out) -> None:
        _, url, content_type, name, ref = item
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            return
        if scheme not in ("http", "https"):
            return
        if self._files is _NO_FILES:
            self._files, self._by_ref, self._text = {}, {}, []
        f = self._files.get(url)
        if f is None:
            f = self._files[url] = _File(url, content_type, name)
        if ref:
            self._by_ref[ref] = f

    def _content(self, text: str, out: list[Out]) -> None:
        if self._by_ref:
            text = self._held + text
            self._held = ""
            if "[" in text:
                text = _REF.sub(self._resolve, text)
            if "[" in text[-MAX_HOLD:] or text.endswith("!"):
                m = _PARTIAL.search(text, max(0, len(text) - MAX_HOLD))
                if m:
                    text, self._held = text[:m.start()], text[m.start():]
        if text:
            self._emit(text, out)

    def _emit(self, text: str, out: list[Out]) -> None:
        if self._files:
            self._text.append(text)
        self._last = (self._last + text)[-2:]
        out.append((CONTENT, text))

    def _resolve(self, m: re.Match[str]) -> str:
        f = self._by_ref.get(m.group(2))
        if f is None:
            return m.group(0)
        f.shown = True
        return f"{m.group(1)}({_link_url(f.url)})"


def markdown_link(name: str, url: str, content_type: str) -> str:
    """``![name](url)`` for images, ``[name](url)`` for other files."""
    if not name:
        name = urlsplit(url).path.rsplit("/", 1)[-1] or "file"
    label = re.sub(r"([\[\]\\])", r"\\\1", " ".join(name.split()))
    bang = "!" if content_type.lower().startswith("image/") else ""
    return f"{bang}[{label}]({_link_url(url)})"


def _link_url(url: str) -> str:
    """The URL made safe inside ``( )``: spaces and parentheses percent-encoded."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")

"""Incremental server-sent-event parser: bytes in, ``(event name, data bytes)`` pairs out. No I/O.

Follows the WHATWG event-stream rules: lines end in LF, CRLF or CR (also mixed,
and a CR and its LF may arrive in different reads); lines starting with ``:``
are comments; ``data`` lines of one event are joined with ``\\n``; an event
without an ``event:`` field is named ``message``; ``id`` and ``retry`` are
ignored. Data stays bytes (JSON parsers take bytes; no decode step per line).
Unlike some clients, the last event is not lost when the stream ends
without a blank line: :meth:`SSEParser.feed_eof` dispatches it.
"""

from __future__ import annotations

__all__ = ["SSEError", "SSEParser"]

_CR = b"\r"
_LF = b"\n"
_CRLF = b"\r\n"


class SSEError(ValueError):
    """The upstream sent an event larger than the parser accepts."""


_NAMES = {n.encode(): n for n in ("text", "replace_response", "done", "meta", "error", "json",
                                  "file", "suggested_reply", "data", "ping")}


#: No data line yet (shared; a tuple, so that nothing can be appended to it).
_NO_DATA: tuple[()] = ()


class SSEParser:
    """Feed it network reads; it returns every event completed by them."""

    __slots__ = ("_data", "_event", "_max_event_size", "_parts", "_pending", "_size",
                 "_skip_lf")

    def __init__(self, max_event_size: int = 64 * 1024 * 1024) -> None:
        # The unfinished last line, in the pieces it came in, and its length (0: none). The
        # usual read ends in a whole event: then neither list is touched (nor made anew).
        self._parts: list[bytes] = []
        self._pending = 0
        self._event = ""
        # The data lines of the event being read (_NO_DATA: none yet).
        self._data: list[bytes] | tuple[()] = _NO_DATA
        self._size = 0
        self._max_event_size = max_event_size
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        if self._skip_lf and chunk:
            # The previous read ended in CR; an LF now is the second half of that CRLF.
            self._skip_lf = False
            if chunk[:1] == _LF:
                chunk = chunk[1:]
        # find(), not ``in``: on Python 3.11 ``bytes in bytes`` first tries the operand as an
        # integer and raises (and clears) a TypeError with a formatted message every time.
        if chunk.find(_LF) < 0 and chunk.find(_CR) < 0:
            # No line ends here: keep the piece (joining only once a line is complete keeps
            # a huge line arriving in many reads linear, not quadratic).
            if chunk:
                self._parts.append(chunk)
                self._pending += len(chunk)
                if self._pending > self._max_event_size:
                    raise SSEError("server-sent event line too long")
            return []
        if self._pending:
            self._parts.append(chunk)
            buf = b"".join(self._parts)
        else:
            buf = chunk
        if buf.find(_CR) >= 0:
            self._skip_lf = buf.endswith(_CR)
            buf = buf.replace(_CRLF, _LF).replace(_CR, _LF)
        # Whole events first: the usual "event: x\ndata: {...}\n\n" takes a few slices;
        # anything else (comments, multi-line data, other fields) goes line by line.
        blocks = buf.split(_LF + _LF)
        tail = blocks.pop()
        out: list[tuple[str, bytes]] = []
        lines = self._lines
        names = _NAMES
        for block in blocks:
            if block.startswith(b"event: ") and self._data is _NO_DATA and not self._event:
                nl = block.find(_LF)
                if nl > 0 and block.startswith(b"data: ", nl + 1) \
                        and block.find(_LF, nl + 1) < 0:
                    name = block[7:nl]
                    out.append((names.get(name) or name.decode(errors="replace"),
                                block[nl + 7:]))
                    continue
            out += lines([*block.split(_LF), b""])
        if tail.find(_LF) >= 0:
            rest_lines = tail.split(_LF)
            rest = rest_lines.pop()
            out += lines(rest_lines)
        else:
            rest = tail
        if rest:
            self._parts = [rest]
        elif self._pending:
            self._parts = []
        self._pending = len(rest)
        if self._pending > self._max_event_size:
            raise SSEError("server-sent event line too long")
        return out

    def feed_eof(self) -> list[tuple[str, bytes]]:
        """End of stream: finish a last line and event that had no terminator."""
        buf = b"".join(self._parts) if self._pending else b""
        self._parts = []
        self._pending = 0
        out = self._lines([buf]) if buf else []
        if self._data:
            out.append(self._dispatch())
        self._event = ""
        self._skip_lf = False
        return out

    def _lines(self, lines: list[bytes]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        data = self._data
        for raw in lines:
            if not raw:
                if data:
                    out.append(self._dispatch())
                    data = self._data
                else:
                    self._event = ""
                continue
            first = raw[0]
            if first == 0x64 and raw.startswith(b"data:"):  # the common case first
                value = raw[6:] if raw[5:6] == b" " else raw[5:]
            elif first == 0x3A:  # ":" comment
                continue
            else:
                field, sep, value = raw.partition(b":")
                if sep and value[:1] == b" ":
                    value = value[1:]
                if field == b"event":
                    self._event = _NAMES.get(value) or value.decode(errors="replace")
                    continue
                if field != b"data":
                    continue  # "id", "retry" and unknown fields are ignored
            self._size += len(value)
            if self._size > self._max_event_size:
                raise SSEError("server-sent event too large")
            if isinstance(data, tuple):  # the event's first data line
                data = self._data = []
            data.append(value)
        return out

    def _dispatch(self) -> tuple[str, bytes]:
        data = self._data
        event = (self._event or "message", data[0] if len(data) == 1 else b"\n".join(data))
        self._data = _NO_DATA
        self._event = ""
        self._size = 0
        return event

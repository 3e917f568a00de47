"""Shared by the benchmark's processes: scenario payloads, checks, statistics, /proc readers.

Everything here is plain, dependency-free Python (no aiohttp, no event loop), so the fake
upstream, the load generator and the driver agree byte for byte on what a stream contains.
"""

from __future__ import annotations

import os
import re
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

# Filler for answer chunks: ordinary words, so the JSON encoders see typical text.
_FILL = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 4

THINKING_MARKER = "*Thinking...*"


def chunk_text(i: int, size: int) -> str:
    """The text of answer chunk ``i`` (``size`` ASCII characters, deterministic).

    Every 7th chunk carries a double quote and every 10th ends in a newline, so JSON
    escaping is exercised the way real model output exercises it.
    """
    text = (f"w{i} " + _FILL * (1 + size // len(_FILL)))[:size - 1] + " "
    if size >= 4 and i % 7 == 3:
        text = text[:size // 2] + '"' + text[size // 2 + 1:]
    if size >= 2 and i % 10 == 9:
        text = text[:-1] + "\n"
    return text


def thinking_block(lines: int = 8) -> tuple[str, str]:
    """Poe's reasoning preamble: ``*Thinking...*``, a blank line, ``> `` quoted lines, a blank line.

    Returns (the raw text as Poe sends it, the reasoning body without the quoting).
    """
    body = [f"Step {k}: weigh the benchmark request and plan the answer" for k in range(lines)]
    raw = THINKING_MARKER + "\n\n" + "".join(f"> {line}\n" for line in body) + "\n"
    return raw, "\n".join(body)


@dataclass(frozen=True)
class Spec:
    """What the fake upstream sends for one query: ``count`` answer chunks of ``size``
    characters, ``delay_ms`` apart, optionally preceded by a thinking block."""

    count: int = 100
    size: int = 20
    delay_ms: float = 0.0
    think: bool = False

    _NAME = re.compile(r"^bench-n(\d+)-s(\d+)-d([0-9.]+)-t([01])$")

    @property
    def bot(self) -> str:
        """The bot name that encodes this spec (the model name clients ask for)."""
        delay = f"{self.delay_ms:g}"
        return f"bench-n{self.count}-s{self.size}-d{delay}-t{int(self.think)}"

    @classmethod
    def from_bot(cls, name: str) -> Spec | None:
        m = cls._NAME.match(name)
        if not m:
            return None
        return cls(int(m[1]), int(m[2]), float(m[3]), m[4] == "1")

    @cached_property
    def thinking(self) -> tuple[str, str]:
        return thinking_block() if self.think else ("", "")

    @cached_property
    def answer(self) -> str:
        return "".join(chunk_text(i, self.size) for i in range(self.count))

    @cached_property
    def full_text(self) -> str:
        """Everything the upstream sends as ``text`` events, concatenated."""
        return self.thinking[0] + self.answer

    @cached_property
    def events(self) -> list[str]:
        """The ``text`` event payloads in order (thinking split into ``size``-sized pieces)."""
        raw = self.thinking[0]
        pieces = [raw[i:i + self.size] for i in range(0, len(raw), self.size)]
        return pieces + [chunk_text(i, self.size) for i in range(self.count)]

    @property
    def n_events(self) -> int:
        return len(self.events)


def _norm(text: str) -> str:
    for token in (THINKING_MARKER, "Thinking...", "<think>", "</think>", ">"):
        text = text.replace(token, "")
    return "".join(text.split())


def check_stream(spec: Spec, content: str, reasoning: str) -> str:
    """Verify what a client received against what the upstream sent.

    Returns ``"raw"`` (content is exactly the upstream text), ``"parsed"`` (a thinking
    block was split off: the reasoning matches the quoted lines and the content matches
    the answer, whitespace aside), or an error description.
    """
    if content == spec.full_text and not reasoning:
        return "raw"
    if spec.think:
        if "<think>" in content and "</think>" in content:  # reasoning_format "think"
            before, _, rest = content.partition("<think>")
            inner, _, after = rest.partition("</think>")
            reasoning, content = reasoning + inner, before + after
        answer_ok = _norm(content) == _norm(spec.answer)
        reasoning_ok = not reasoning or _norm(reasoning) == _norm(spec.thinking[1])
        if answer_ok and reasoning_ok:
            return "parsed"
    if not content:
        return "error: no content"
    got, want = content, spec.full_text
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
              min(len(got), len(want)))
    return f"error: content differs at char {at} (got {len(got)} chars, want {len(want)})"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of unsorted values; None when empty."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


# ---- /proc readers (Linux) ------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (threads included)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of stat(5)


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, e.g. VmRSS (resident now) or VmHWM (peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system = fields[0], fields[1], fields[2]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system) / _TICK, steal / _TICK


def listen_overflows() -> int:
    """Kernel-wide count of connections dropped because a listen queue was full
    (TcpExt ListenOverflows): each one costs the client a SYN retry, 1 s later."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > clear_refs``); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def new_loop_policy() -> bool:
    """Install uvloop's event loop policy when available; returns whether it is on."""
    try:
        import uvloop
    except ImportError:
        return False
    import asyncio

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True

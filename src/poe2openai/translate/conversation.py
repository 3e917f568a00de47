"""The neutral conversation every API face parses into, and the neutral result of an
answer. Pure: no I/O.

A face (Chat Completions, Responses, Anthropic Messages) turns its wire format into a
:class:`Conversation`; :func:`~.query.build_poe_query` turns that into Poe's query. The
answer comes back as output items (:mod:`.response`), ends with a neutral finish reason
(:data:`FINISH_REASONS`) and is counted as :class:`Usage`; each face encodes those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .attachments import MediaPart
from .params import Candidate
from .structured import OutputFormat
from .tooloptions import ToolOptions

__all__ = ["FINISH_REASONS", "Conversation", "Role", "ToolCall", "Turn", "Usage"]

Role = Literal["system", "user", "assistant", "tool"]

#: Why an answer ended: the bot finished, hit a length limit or a stop sequence, called
#: tools, or was filtered. Faces name these their own way.
FINISH_REASONS: Final = ("stop", "length", "tool_calls", "content_filter")


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    #: JSON text of the arguments; for a free-form (custom) tool, its raw input text.
    arguments: str
    custom: bool = False


@dataclass(slots=True)
class Turn:
    """One message of the conversation.

    ``system``: instructions; ``user``: the user's text and media; ``assistant``: the
    bot's text, reasoning (accepted, not sent to Poe) and tool calls; ``tool``: the
    result of one tool call (``call_id``, ``name`` when known, ``text``).
    """

    role: Role
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    is_error: bool = False
    reasoning: str = ""


@dataclass(slots=True)
class Conversation:
    model: str
    turns: list[Turn]
    stream: bool = False
    temperature: float | None = None
    stop: list[str] = field(default_factory=list)
    logit_bias: dict[str, float] | None = None
    #: The answer's length limit as the client gave it (Poe's bot protocol has no such
    #: field; kept for the faces that echo it).
    max_tokens: int | None = None
    tools: ToolOptions = field(default_factory=ToolOptions)
    #: Bot-parameter candidates; serving resolves them against the bot's schema and
    #: removes the consumed names from ``dropped``.
    param_candidates: list[Candidate] = field(default_factory=list)
    #: Request fields that were accepted but have no effect (``x-dropped-params``).
    dropped: list[str] = field(default_factory=list)
    #: Image and file parts, checked but not uploaded; ``MediaPart.message`` is a turn index.
    media: list[MediaPart] = field(default_factory=list)
    #: Poe attachments by turn index, filled in by the upload step before the query is built.
    attachments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: Chat Completions: a final usage chunk in a stream (``stream_options.include_usage``).
    stream_usage: bool = False
    #: The Images API: the files of the answer are wanted as they are (``Accumulator.files``),
    #: not as Markdown links in its text.
    want_files: bool = False
    #: Structured output (``response_format`` / ``text.format``), if asked for.
    output_format: OutputFormat | None = None
    #: The bot takes the format as its own parameter (no instruction in the prompt).
    native_format: bool = False
    #: Repair rounds done so far (structured output that did not validate).
    structured_repairs: int = 0

    def let_go(self) -> None:
        """Drop the prompt (turns, media, attachments) once the Poe query is built, so that an
        open stream does not hold a long conversation, or its images, for its whole answer."""
        self.turns = []
        self.media = []
        self.attachments = {}


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int  #: includes the reasoning tokens
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

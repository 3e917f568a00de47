"""What a face gives the answering loop (:mod:`.answer`): an opener that turns a request into
an access, a conversation and an exchange, and the exchange's stream encoder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ..errors import ProxyError
from ..team.gate import Access
from ..translate.conversation import Conversation, Usage
from ..translate.items import Accumulator, Out

__all__ = ["Exchange", "Opener", "StreamEncoder"]


class StreamEncoder(Protocol):
    """One streamed answer in a face's wire format."""

    #: Whether :meth:`finish` needs the usage (counting costs a little).
    wants_usage: bool
    #: Whether the encoder keeps the whole answer anyway (then :meth:`output` gives it for
    #: counting, and nothing else keeps a copy). One that does not counts the answer's
    #: bytes as it encodes it (:class:`~..translate.usage.TallyingEncoder`).
    keeps_output: bool

    def start(self, prompt_tokens: int | None = None) -> bytes:
        """What goes out first, with the first items (e.g. the role chunk). ``prompt_tokens``:
        the prompt's count, when it is known already (Messages' ``message_start`` has it)."""

    def encode(self, items: list[Out]) -> bytes:
        """A batch of output items (never an error item)."""

    def finish(self, reason: str, usage: Usage | None) -> bytes:
        """The end of a complete answer, terminators included."""

    def fail(self, err: ProxyError) -> bytes:
        """The end of an answer that failed after the stream started."""

    def output(self) -> Accumulator:
        """The answer so far (:attr:`keeps_output`), else its count in bytes (a
        :class:`~..translate.usage.ByteTally`, right for the estimate only)."""


class Exchange(Protocol):
    """A face's side of one request: its encoders, keep-alive bytes and response headers.

    An exchange may also have ``async def before_end()``: awaited once a streamed answer is
    complete, before its last bytes go out (the Responses face stores the response there, so
    a client that continues it the moment it ends, on any instance, finds it)."""

    keepalive: bytes

    @property
    def keeps_turns(self) -> bool:
        """Whether the exchange reads the conversation's turns after the query is built (else
        a stream lets them go)."""

    def stream_encoder(self) -> StreamEncoder: ...

    def complete(self, acc: Accumulator, reason: str, usage: Usage) -> dict[str, Any]:
        """The non-stream answer's JSON body."""


#: A face's first step: the request's access (:func:`.credentials.authorize`), its parsed
#: conversation and the face's exchange. It reads and checks; nothing is asked of Poe yet.
Opener = Callable[[web.Request], Awaitable[tuple[Access, Conversation, Exchange]]]

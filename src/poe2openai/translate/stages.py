"""Which output stages an answer goes through. Pure: no I/O."""

from __future__ import annotations

from ..modeloptions import ResolvedModel
from .conversation import Conversation
from .media import MediaStage
from .nativetools import FirstToolCallOnly
from .reasoning import ReasoningSplitter
from .response import Stage
from .xmltools import XmlToolCalls

__all__ = ["make_stages"]


def make_stages(conv: Conversation, model: ResolvedModel) -> list[Stage]:
    """The stages for one answer, in order: the "Thinking..." split first (it looks at the
    very start of the answer, and a tool call written while thinking is not a call), then
    the media links (files a bot produced), then tool-call detection."""
    stages: list[Stage] = [ReasoningSplitter(model.options.reasoning_format,
                                             streaming=conv.stream), MediaStage()]
    tools = conv.tools
    if tools.enabled:
        if model.options.tool_mode == "xml":
            stages.append(XmlToolCalls(tools))
        elif not tools.parallel:
            stages.append(FirstToolCallOnly())
    return stages

"""Which output stages an answer goes through. Pure: no I/O."""

from __future__ import annotations

from ..modeloptions import ResolvedModel
from .media import MediaStage
from .reasoning import ReasoningSplitter
from .request import ChatRequest
from .response import Stage
from .tools import FirstToolCallOnly, XmlToolCalls

__all__ = ["make_stages"]


def make_stages(req: ChatRequest, model: ResolvedModel) -> list[Stage]:
    """The stages for one answer, in order: the "Thinking..." split first (it looks at the
    very start of the answer, and a tool call written while thinking is not a call), then
    the media links (files a bot produced), then tool-call detection."""
    stages: list[Stage] = [ReasoningSplitter(model.options.reasoning_format,
                                             streaming=req.stream), MediaStage()]
    tools = req.tool_options
    if tools.enabled:
        if model.options.tool_mode == "xml":
            stages.append(XmlToolCalls(tools))
        elif not tools.parallel:
            stages.append(FirstToolCallOnly())
    return stages

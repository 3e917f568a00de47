"""Which output stages an answer goes through. Pure: no I/O."""

from __future__ import annotations

from ..modeloptions import ResolvedModel
from .conversation import Conversation
from .media import MediaStage
from .nativetools import FirstToolCallOnly
from .reasoning import ReasoningSplitter
from .response import Stage
from .structured import JsonStage
from .xmltools import XmlToolCalls

__all__ = ["make_stages"]


def make_stages(conv: Conversation, model: ResolvedModel, *,
                stream_json: bool = True) -> list[Stage]:
    """The stages for one answer, in order: the "Thinking..." split first (it looks at the
    very start of the answer, and a tool call written while thinking is not a call), then
    the media links (files a bot produced), then tool-call detection, and for structured
    output last the stage that lets only the JSON document through (streamed as it comes
    when ``stream_json``, else held for validation). With structured output, thinking
    always goes to the reasoning fields (never inline, where it would be in the JSON)."""
    reasoning = model.options.reasoning_format
    if conv.output_format is not None and reasoning == "think":
        reasoning = "reasoning_content"
    stages: list[Stage] = [ReasoningSplitter(reasoning, streaming=conv.stream)]
    if not conv.want_files:  # the Images API takes the files as they are
        stages.append(MediaStage())
    tools = conv.tools
    if tools.enabled:
        if model.options.tool_mode == "xml":
            stages.append(XmlToolCalls(tools))
        elif not tools.parallel:
            stages.append(FirstToolCallOnly())
    if conv.output_format is not None:
        stages.append(JsonStage(stream=conv.stream and stream_json))
    return stages

"""Tool calls for bots without native tools: the XML protocol's prompt side. Pure: no I/O.

The bot is told (:func:`xml_instructions`) to write ``<tool_call>`` blocks; earlier calls
and results are shown to it in the same XML (:func:`render_call`, :func:`render_results`).
Its answers are read by :mod:`.xmltools`.
"""

from __future__ import annotations

from typing import Any

from ..jsonlib import JSONDecodeError, dumps_str, loads, too_deep
from .tooloptions import ToolOptions

__all__ = ["render_call", "render_results", "xml_instructions"]


def render_call(name: str, arguments: str) -> str:
    """One tool call in the XML format the model is told to use."""
    try:
        args = loads(arguments) if arguments.strip() else {}
    except JSONDecodeError:
        args = None
    if too_deep(args) is not None:  # parses, but could not be written back as JSON
        args = None
    lines = ["<tool_call>", f'<invoke name="{_attr(name)}">']
    if isinstance(args, dict):
        for key, value in args.items():
            text = value if isinstance(value, str) else dumps_str(value)
            lines.append(f'<parameter name="{_attr(str(key))}">{text}</parameter>')
    else:  # not a JSON object: give the bot the raw text
        lines.append(arguments)
    lines += ["</invoke>", "</tool_call>"]
    return "\n".join(lines)


def render_results(results: list[dict[str, Any]]) -> str:
    parts = ["<tool_results>"]
    for r in results:
        parts.append(f'<tool_result name="{_attr(r["name"])}" '
                     f'tool_call_id="{_attr(r["tool_call_id"])}">\n{r["content"]}\n</tool_result>')
    parts.append("</tool_results>")
    return "\n".join(parts)


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def xml_instructions(opts: ToolOptions) -> str:
    """The instruction block that teaches a bot without native tools to call them."""
    tools = opts.offered()
    defs = []
    for t in tools:
        desc = t["description"].strip()
        defs.append(
            f'<tool name="{_attr(t["name"])}">\n'
            + (f"<description>{desc}</description>\n" if desc else "")
            + f"<parameters>{dumps_str(t['parameters'])}</parameters>\n</tool>"
        )
    if opts.named:
        rule = f'In this reply you MUST call the tool "{opts.choice}".'
    elif opts.choice == "required":
        rule = "In this reply you MUST call at least one tool."
    else:
        rule = ("Call a tool only when it helps; when you can answer directly, answer "
                "normally without any <tool_call> block.")
    many = ("To make several calls, write several <tool_call> blocks one after another."
            if opts.parallel else "Make at most one tool call per reply.")
    return (
        "# Tools\n\n"
        "You can call the tools described below. To call a tool, write a block in exactly "
        "this format:\n\n"
        "<tool_call>\n"
        '<invoke name="TOOL_NAME">\n'
        '<parameter name="PARAMETER_NAME">VALUE</parameter>\n'
        "</invoke>\n"
        "</tool_call>\n\n"
        "Rules:\n"
        f"- {rule}\n"
        f"- {many}\n"
        "- One <parameter> element per argument, named as in the tool's JSON schema. "
        "Write string values as plain text, exactly as they are (no quotes, no escaping). "
        "Write numbers, booleans, arrays and objects as JSON.\n"
        "- After your tool call block(s), stop and write nothing else. The results come "
        "back in the next message inside a <tool_results> block.\n"
        "- Never write <tool_call> except to call a tool, and never invent tool results.\n\n"
        "<tools>\n" + "\n".join(defs) + "\n</tools>"
    )

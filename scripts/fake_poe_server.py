#!/usr/bin/env python3
"""A standalone fake Poe (tests/fake_poe.py) with scripted bots for trying real agents.

    python scripts/fake_poe_server.py --port 18081
    POE_BASE_URL=http://127.0.0.1:18081 \\
    POE_FILE_UPLOAD_URL=http://127.0.0.1:18081/poe_api/file_upload_3RD_PARTY_POST \\
    python -m poe2openai

Then point Codex CLI or Claude Code at poe2openai and use one of these model names:

* ``gpt-5.5`` / ``agent-patch``: first answers with an ``apply_patch`` call (Codex's
  free-form tool; the bot sees a function with one string argument ``input``) whose patch
  adds ``hello.txt``; once the query carries a tool result, a short text.
* ``agent-exec``: the same with Codex's ``exec_command`` tool (``cmd``), which writes
  ``hello-exec.txt`` in the working directory.
* ``agent-code``: the same with the code-mode ``exec`` tool that Codex offers to
  ``gpt-5.6*`` names (a free-form tool in the ``functions`` namespace, so the bot sees
  ``functions__exec``): JavaScript that runs ``exec_command`` to write ``hello-code.txt``.
* ``agent-write``: the same with Claude Code's ``Write`` tool: ``hello.txt`` in the
  working directory (read from the agent's prompt, else ``--write-dir``).
* ``agent-multi``: three rounds: the file is created (``apply_patch``, else ``Write``),
  then read back (``exec_command`` ``cat``, else ``Bash``), then a text quoting what the
  read gave; so earlier rounds reach the bot as history.
* ``agent-look``: asks to see ``picture.png`` in the working directory (Codex's
  ``view_image``, Claude Code's ``Read``), then says how many attachments the tool result
  carried to Poe (``Done. Attachments: N``).
* ``agent-parallel``: two calls in one answer, their arguments interleaved as Poe may
  send them: ``exec_command`` (Codex) or ``Write`` (Claude Code) writing ``one.txt`` and
  ``two.txt``; then ``Done. Results: N``, N being the tool results the bot got back.
* ``agent-xml``: for ``tool_mode: xml`` in models.yaml (no native tools): writes a
  ``<tool_call>`` block, values on lines of their own, calling ``apply_patch`` (Codex) or
  ``Write`` (Claude Code) to create ``page.html``, whose text has ``<``, ``>`` and ``&``;
  then ``Done.`` quoting the result from the ``<tool_results>`` message.
* ``agent-text``: a plain streamed answer.
* ``agent-json``: prose and a fenced JSON document made from the JSON Schema in the prompt
  (for trying structured output: ``chat.completions.parse``, ``responses.parse``…).
* ``agent-image``: an image the fake serves itself, for the Images API (``url`` and
  ``b64_json`` both work offline).
* ``agent-sleep``: says "Hmm. ", then nothing for 5 seconds (Poe's own pings only), then
  the rest: for trying keep-alives against a client's idle timeout.
* ``agent-patch-think``, ``agent-exec-think``, ``agent-write-think``: the same, but the
  first answer starts with Poe-style thinking (``*Thinking...*`` and a quote) and a line
  of text before the call, as reasoning bots answer.
* ``<any name above>-flaky``: the 1st, 3rd, 5th… query breaks off after a first word with
  a Poe error (``allow_retry: true``), the others are answered as by ``<name>``: for
  trying the clients' retries.
* ``scenario-<x>``: the fake's own scenarios (see tests/fake_poe.py), e.g.
  ``scenario-no-points-text``; any other name answers "Hello, world!".

Every final answer starts with ``Done.`` and quotes the last line of the last tool result.
With ``--port 0`` a free port is chosen; the first line on stdout is always
``fake Poe listening on http://127.0.0.1:<port>``. ``GET /_fake/queries`` lists the
queries received so far (bot name, JSON body, and whether the proxy cancelled it), oldest
first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_poe import (
    FakePoe,
    Received,
    Step,
    done,
    error,
    file_event,
    json_event,
    ping,
    sleep,
    text,
)

PATCH_FILE = "hello.txt"
PATCH_TEXT = "hello from the fake Poe bot"
PATCH = f"*** Begin Patch\n*** Add File: {PATCH_FILE}\n+{PATCH_TEXT}\n*** End Patch\n"
EXEC_FILE = "hello-exec.txt"
CODE_FILE = "hello-code.txt"
WRITE_FILE = "hello.txt"
PICTURE = "picture.png"
HTML_FILE = "page.html"
HTML = '<p class="x">a && b</p>\n<p>1 < 2</p>\n'
HTML_PATCH = (f"*** Begin Patch\n*** Add File: {HTML_FILE}\n"
              + "".join(f"+{line}\n" for line in HTML.splitlines()) + "*** End Patch\n")
WRITE_TEXT = "written by the fake Poe bot\n"

_CWD_PATTERNS = (re.compile(r"<cwd>([^<\n]+)</cwd>"),
                 re.compile(r"Primary working directory: (\S+)"))


def _tool_results(rec: Received) -> list[str]:
    """The tool results of the query: the top-level field, else ``tool`` messages."""
    out: list[str] = []
    for result in rec.tool_results or ():
        if isinstance(result, dict):
            out.append(str(result.get("content", "")))
    if out:
        return out
    for msg in rec.query:
        if msg.get("role") != "tool":
            continue
        try:
            entries = json.loads(msg.get("content") or "[]")
        except ValueError:
            entries = [{"content": msg.get("content")}]
        out += [str(e.get("content", "")) for e in entries if isinstance(e, dict)]
    return out


def _round(rec: Received) -> int:
    """How many tool rounds the conversation has had (history and the last one)."""
    rounds = sum(1 for m in rec.query if m.get("role") == "tool")
    return rounds + (1 if rec.tool_results else 0)


def _tool_names(rec: Received) -> list[str]:
    names = []
    for tool in rec.tools or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def _cwd(rec: Received, fallback: str) -> str:
    for msg in rec.query:
        content = msg.get("content")
        if not isinstance(content, str):
            continue
        for pattern in _CWD_PATTERNS:
            found = pattern.search(content)
            if found:
                return found.group(1).strip()
    return fallback


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> list[Step]:
    """One native tool call as Poe sends it: chat.completion.chunk deltas in ``json``
    events, the arguments in two fragments."""
    args = json.dumps(arguments)
    cut = len(args) // 2
    head = {"index": 0, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": args[:cut]}}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Step:
        return json_event({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    return [chunk({"role": "assistant", "content": None, "tool_calls": [head]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[cut:]}}]}),
            chunk({}, "tool_calls"), done()]


def _calls(*calls: tuple[str, str, dict[str, Any]]) -> list[Step]:
    """Several native tool calls in one answer, their argument fragments interleaved."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> Step:
        return json_event({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    steps: list[Step] = []
    halves = []
    for i, (call_id, name, arguments) in enumerate(calls):
        args = json.dumps(arguments)
        halves.append((args[:len(args) // 2], args[len(args) // 2:]))
        steps.append(chunk({"tool_calls": [{"index": i, "id": call_id, "type": "function",
                                            "function": {"name": name, "arguments": ""}}]}))
    for part in (0, 1):
        for i, pair in enumerate(halves):
            steps.append(chunk({"tool_calls": [{"index": i,
                                                "function": {"arguments": pair[part]}}]}))
    return [*steps, chunk({}, "tool_calls"), done()]


def _thinking(steps: list[Step]) -> list[Step]:
    """Poe-style reasoning and a sentence before the call."""
    return [text("*Thinking...*"), text("\n\n> The user wants a file."),
            text("\n> I will use the tool.\n\n"), text("Creating the file now."), *steps]


def _final(results: list[str]) -> list[Step]:
    lines = [line for line in results[-1].splitlines() if line.strip()] if results else []
    last = lines[-1].strip()[:200] if lines else "(nothing)"
    return [text("Done. "), text("The tool said: "), text(last), done()]


def _missing(rec: Received, wanted: str) -> list[Step]:
    offered = ", ".join(_tool_names(rec)) or "none"
    return [text(f"The tool {wanted} was not offered (tools: {offered})."), done()]


class Bots:
    """The scripted bots; ``write_dir`` is the fallback directory of ``agent-write``."""

    def __init__(self, write_dir: str) -> None:
        self.write_dir = write_dir

    def patch(self, rec: Received) -> list[Step]:
        results = _tool_results(rec)
        if results:
            return _final(results)
        if "apply_patch" not in _tool_names(rec):
            return _missing(rec, "apply_patch")
        return _call("call_patch_1", "apply_patch", {"input": PATCH})

    def exec(self, rec: Received) -> list[Step]:
        results = _tool_results(rec)
        if results:
            return _final(results)
        if "exec_command" not in _tool_names(rec):
            return _missing(rec, "exec_command")
        return _call("call_exec_1", "exec_command",
                     {"cmd": f"printf 'hello from exec\\n' > {EXEC_FILE}"})

    def code(self, rec: Received) -> list[Step]:
        results = _tool_results(rec)
        if results:
            return _final(results)
        if "functions__exec" not in _tool_names(rec):
            return _missing(rec, "functions__exec")
        js = (f"const r = await tools.exec_command({{cmd: \"printf 'hello from code mode\\\\n' "
              f"> {CODE_FILE}\"}});\ntext(JSON.stringify(r));\n")
        return _call("call_code_1", "functions__exec", {"input": js})

    def write(self, rec: Received) -> list[Step]:
        results = _tool_results(rec)
        if results:
            return _final(results)
        if "Write" not in _tool_names(rec):
            return _missing(rec, "Write")
        path = os.path.join(_cwd(rec, self.write_dir), WRITE_FILE)
        return _call("toolu_write_1", "Write", {"file_path": path, "content": WRITE_TEXT})

    def multi(self, rec: Received) -> list[Step]:
        tools, cwd = _tool_names(rec), _cwd(rec, self.write_dir)
        rounds = _round(rec)
        if rounds == 0 and "apply_patch" in tools:
            return _call("call_multi_1", "apply_patch", {"input": PATCH})
        if rounds == 0 and "Write" in tools:
            return _call("toolu_multi_1", "Write", {"file_path": os.path.join(cwd, WRITE_FILE),
                                                     "content": WRITE_TEXT})
        if rounds == 1 and "exec_command" in tools:
            return _call("call_multi_2", "exec_command", {"cmd": f"cat {PATCH_FILE}"})
        if rounds == 1 and "Bash" in tools:
            return _call("toolu_multi_2", "Bash", {
                "command": f"cat {os.path.join(cwd, WRITE_FILE)}",
                "description": "Show the new file"})
        if rounds >= 2:
            return _final(_tool_results(rec))
        return _missing(rec, "apply_patch/Write" if rounds == 0 else "exec_command/Bash")

    def look(self, rec: Received) -> list[Step]:
        tools, cwd = _tool_names(rec), _cwd(rec, self.write_dir)
        if _round(rec) == 0:
            path = os.path.join(cwd, PICTURE)
            if "view_image" in tools:
                return _call("call_look_1", "view_image", {"path": path})
            if "Read" in tools:
                return _call("toolu_look_1", "Read", {"file_path": path})
            return _missing(rec, "view_image/Read")
        seen = sum(len(m.get("attachments") or ()) for m in rec.query if m.get("role") == "tool")
        return [text(f"Done. Attachments: {seen}"), done()]

    def parallel(self, rec: Received) -> list[Step]:
        tools, cwd = _tool_names(rec), _cwd(rec, self.write_dir)
        if _round(rec):
            return [text(f"Done. Results: {len(_tool_results(rec))}"), done()]
        if "exec_command" in tools:
            return _calls(*[(f"call_par_{n}", "exec_command",
                             {"cmd": f"printf '{n}\\n' > {n}.txt"}) for n in ("one", "two")])
        if "Write" in tools:
            return _calls(*[(f"toolu_par_{n}", "Write", {
                "file_path": os.path.join(cwd, f"{n}.txt"), "content": f"{n}\n"})
                for n in ("one", "two")])
        return _missing(rec, "exec_command/Write")

    def xml(self, rec: Received) -> list[Step]:
        last = rec.last_user_message or {}
        content = last.get("content") or ""
        if "<tool_results>\n<tool_result " in content:
            result = content.split("<tool_results>\n", 1)[1].split("</tool_results>", 1)[0]
            return _final([result.replace("</tool_result>", "")])
        if '<tool name="apply_patch">' in content:
            name, params = "apply_patch", {"input": HTML_PATCH}
        elif '<tool name="Write">' in content:
            cwd = _cwd(rec, self.write_dir)
            name, params = "Write", {"file_path": os.path.join(cwd, HTML_FILE), "content": HTML}
        else:
            return [text("No apply_patch or Write tool in the XML instructions."), done()]
        body = "".join(f'<parameter name="{k}">\n{v}\n</parameter>\n' for k, v in params.items())
        block = f'<tool_call>\n<invoke name="{name}">\n{body}</invoke>\n</tool_call>'
        cut = len(block) // 3
        return [text("I will write the page.\n\n"), text(block[:cut]), text(block[cut:]), done()]

    @staticmethod
    def sleepy(rec: Received) -> list[Step]:
        pause = [step for _ in range(5) for step in (sleep(1), ping())]
        return [text("Hmm. "), *pause, text("Awake "), text("again."), done()]

    @staticmethod
    def plain(rec: Received) -> list[Step]:
        return [text("Hello "), text("from the "), text("fake Poe."), done()]

    @staticmethod
    def json(rec: Received) -> list[Step]:
        """Prose, then a fenced JSON document made from the schema in the prompt."""
        prompt = rec.query[-1]["content"] if rec.query else ""
        schema: Any = {"type": "object"}
        start = prompt.find("{", prompt.find("JSON Schema"))
        if "JSON Schema" in prompt and start >= 0:
            with contextlib.suppress(ValueError):
                schema = json.JSONDecoder().raw_decode(prompt, start)[0]
        doc = json.dumps(_example(schema))
        return [text("Here is the JSON you asked for:\n\n```json\n"), text(doc),
                text("\n```\nAnything else?"), done()]


def _example(schema: Any, depth: int = 0) -> Any:
    """A value that satisfies a simple JSON Schema (types, required, enums, arrays)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _example(schema[key][0], depth + 1)
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _example(v, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [_example(schema.get("items") or {}, depth + 1)]
    return {"string": "example", "integer": 1, "number": 1.5, "boolean": True}.get(kind)


def _with_thinking(bot: Any) -> Any:
    def script(rec: Received) -> list[Step]:
        steps = bot(rec)
        return _thinking(steps) if not _tool_results(rec) else steps

    return script


def _flaky(bot: Any) -> Any:
    count = 0

    def script(rec: Received) -> list[Step]:
        nonlocal count
        count += 1
        if count % 2:
            return [text("Working"), error("Internal server error", allow_retry=True), done()]
        return bot(rec)

    return script


#: A 1x1 PNG (what agent-image serves).
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def scripts(write_dir: str) -> dict[str, Any]:
    """Bot name → script (a callable of the received query)."""
    bots = Bots(write_dir)
    table: dict[str, Any] = {"gpt-5.5": bots.patch, "agent-patch": bots.patch,
                             "agent-exec": bots.exec, "agent-write": bots.write,
                             "agent-code": bots.code, "agent-multi": bots.multi, "agent-look": bots.look,
                             "agent-sleep": bots.sleepy, "agent-parallel": bots.parallel,
                             "agent-xml": bots.xml,
                             "agent-text": bots.plain, "agent-json": bots.json}
    for name in ("agent-patch", "agent-exec", "agent-write"):
        table[f"{name}-think"] = _with_thinking(table[name])
    for name in list(table):
        table[f"{name}-flaky"] = _flaky(table[name])
    return table


def build(write_dir: str) -> tuple[FakePoe, web.Application]:
    fake = FakePoe()
    for name, script in scripts(write_dir).items():
        fake.script(name, script)
    # agent-image: an image the fake serves itself (so b64_json downloads work offline).
    fake._files["fake-image"] = ("cat.png", "image/png", _PNG)

    def image(rec: Received) -> list[Step]:
        url = f"{fake.base_url}/files/fake-image/cat.png"
        return [file_event(url, "cat.png", "image/png", "ref1"),
                text("Here is your image:\n\n![cat.png][ref1]"), done()]

    fake.script("agent-image", image)
    app = fake.make_app()

    @web.middleware
    async def base_url(request: web.Request, handler: Any) -> web.StreamResponse:
        fake.base_url = f"{request.scheme}://{request.host}"
        return await handler(request)

    app.middlewares.append(base_url)

    async def queries(request: web.Request) -> web.Response:
        return web.json_response([{"bot": r.bot, "body": r.body,
                                   "cancelled": r.cancelled.is_set()} for r in fake.queries])

    app.router.add_get("/_fake/queries", queries)
    return fake, app


async def _serve(host: str, port: int, write_dir: str) -> None:
    _, app = build(write_dir)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"fake Poe listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081, help="0: any free port")
    parser.add_argument("--write-dir", default=os.environ.get("FAKE_POE_WRITE_DIR", "/tmp"),
                        help="where agent-write writes when the prompt names no directory")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.write_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

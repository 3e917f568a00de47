"""The real coding agents, end to end: Codex CLI (``/v1/responses``) and Claude Code
(``/v1/messages``) run as subprocesses against a real server process, which talks to the
scripted fake Poe of ``scripts/fake_poe_server.py`` (another process).

Each agent is looked up in ``$CODEX_BIN`` / ``$CLAUDE_BIN``, else in
``node_modules/.bin`` under ``$POE2OPENAI_AGENTS_DIR`` (default
``~/.cache/poe2openai-agents``, where ``scripts/tryout-agents.sh`` installs them). A test
is skipped only when its agent is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from poe2openai.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = ROOT / "scripts" / "fake_poe_server.py"
AGENT_TIMEOUT = 40.0  # seconds one agent run may take (pytest's own limit is 60)
KEY = "poe-key-for-the-agents"


def _agent(env_var: str, name: str) -> str | None:
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    base = Path(os.environ.get("POE2OPENAI_AGENTS_DIR")
                or Path.home() / ".cache" / "poe2openai-agents")
    path = base / "node_modules" / ".bin" / name
    return str(path) if path.exists() else None


CODEX = _agent("CODEX_BIN", "codex")
CLAUDE = _agent("CLAUDE_BIN", "claude")
needs_codex = pytest.mark.skipif(CODEX is None, reason="Codex CLI is not installed "
                                 "(scripts/tryout-agents.sh, or set CODEX_BIN)")
needs_claude = pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed "
                                  "(scripts/tryout-agents.sh, or set CLAUDE_BIN)")


def _png(side: int = 8) -> bytes:
    """A small red square as a PNG file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited early:\n{log.read_text()}")
        try:
            _get(url)
            return
        except (OSError, urllib.error.URLError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    """The fake Poe and the server in front of it; ``work`` is the agent's folder."""

    url: str
    fake_url: str
    log: Path
    fake_log: Path
    work: Path
    home: Path

    def queries(self, bot: str) -> list[dict[str, Any]]:
        """The Poe query bodies the fake received for ``bot``, oldest first."""
        return [q["body"] for q in _get(self.fake_url + "/_fake/queries")
                if q["bot"].lower() == bot.lower()]

    def assert_logs_clean(self, *allowed: str) -> None:
        """No error, warning or traceback in either log, except lines containing ``allowed``."""
        for path in (self.log, self.fake_log):
            for line in path.read_text().splitlines():
                if any(a in line for a in allowed):
                    continue
                for bad in ("Traceback", " ERROR ", " WARNING ", "Error handling request",
                            "Unclosed", "exception"):
                    assert bad not in line, f"{path.name}: {line}"


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Any]:
    """Start the fake Poe and the server; ``models`` (bot → options, e.g.
    ``{"agent-x": {"mapping": "gpt-5.5"}}``) go into models.yaml, keyword arguments are
    server settings (``KEEPALIVE_INTERVAL="0.5"``)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(models: dict[str, dict[str, str]] | None = None, **settings_: str) -> Stack:
        config = tmp_path / "config"
        config.mkdir()
        lines = [f"  {bot}: {{{', '.join(f'{k}: {v}' for k, v in options.items())}}}"
                 for bot, options in (models or {}).items()]
        (config / "models.yaml").write_text(
            "enable: true\nallow_unlisted: true\nmodels:" + ("\n" if lines else " {}\n")
            + "".join(line + "\n" for line in lines))
        work, home = tmp_path / "work", tmp_path / "home"
        work.mkdir()
        home.mkdir()
        fake_port, port = _free_port(), _free_port()
        fake_log, log = tmp_path / "fake_poe.log", tmp_path / "server.log"
        settings = {s.env for s in SETTINGS}
        env = {k: v for k, v in os.environ.items() if k not in settings}
        env.update(PORT=str(port), HOST="127.0.0.1", CONFIG_DIR=str(config),
                   POE_BASE_URL=f"http://127.0.0.1:{fake_port}",
                   POE_FILE_UPLOAD_URL=f"http://127.0.0.1:{fake_port}"
                                       "/poe_api/file_upload_3RD_PARTY_POST",
                   ADMIN_PASSWORD="agents-admin", SHUTDOWN_TIMEOUT="2", LOG_LEVEL="info",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
                   **settings_)
        fake_url, url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{port}"
        with fake_log.open("wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, str(FAKE_SERVER), "--port", str(fake_port),
                 "--write-dir", str(work)], stdout=out, stderr=subprocess.STDOUT, env=env))
        _wait_up(fake_url + "/_fake/queries", procs[-1], fake_log)
        with log.open("wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "poe2openai"], stdout=out,
                                          stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
        _wait_up(url + "/healthz", procs[-1], log)
        return Stack(url, fake_url, log, fake_log, work, home)

    try:
        yield start
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _report(done: subprocess.CompletedProcess[str]) -> str:
    """The end of an agent's output, for assertion messages."""
    return f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run an agent in its own process group, killed whole when it overstays."""
    base = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR", "SYSTEMROOT")
            if k in os.environ}
    proc = subprocess.Popen(argv, env={**base, **env}, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=AGENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        raise AssertionError(f"{argv[0]} did not finish in {AGENT_TIMEOUT} s\n"
                             + _report(done)) from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# ---------------------------------------------------------------------------------------
# Codex CLI
# ---------------------------------------------------------------------------------------

CODEX_CONFIG = """\
model_provider = "poe"
check_for_update_on_startup = false

[model_providers.poe]
name = "Poe via poe2openai"
base_url = "{url}/v1"
env_key = "POE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[otel]
exporter = "none"

[features]
plugins = false
"""


def _codex(stack: Stack, model: str, prompt: str, *options: str
           ) -> subprocess.CompletedProcess[str]:
    assert CODEX is not None
    codex_home = stack.home / ".codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(url=stack.url))
    env = {"HOME": str(stack.home), "CODEX_HOME": str(codex_home), "POE_API_KEY": KEY}
    return _run([CODEX, "exec", "--skip-git-repo-check", "-s", "workspace-write",
                 "-C", str(stack.work), "-m", model, *options, prompt], env, stack.work)


@dataclass(frozen=True)
class CodexCase:
    model: str  #: what Codex is told (an alias in models.yaml, or the bot's own name)
    bot: str  #: the Poe bot the fake plays
    file: str  #: what the agent's tool writes ...
    content: str  #: ... with this content
    results: tuple[str, ...]  #: a piece of each tool result the bot gets back, in order
    tool: str  #: a tool the bot must be offered (as the bot sees it)


CODEX_CASES = [
    # A catalog name: Codex offers its free-form apply_patch tool. The bot thinks first and
    # writes a sentence before the call (reasoning, message and custom_tool_call items).
    CodexCase("gpt-5.5", "agent-patch-think", "hello.txt", "hello from the fake Poe bot\n",
              ("Success. Updated the following files",), "apply_patch"),
    # Three rounds: patch, exec_command `cat`, then the answer (earlier rounds as history).
    CodexCase("gpt-5.5", "agent-multi", "hello.txt", "hello from the fake Poe bot\n",
              ("Success. Updated the following files", "hello from the fake Poe bot"),
              "apply_patch"),
    # Any other bot name: exec_command, and namespace tools flattened for the bot.
    CodexCase("agent-exec", "agent-exec", "hello-exec.txt", "hello from exec\n",
              ("Process exited with code 0",), "multi_agent_v1__spawn_agent"),
    # gpt-5.6 names: tools in an additional_tools input item; code mode's free-form `exec`
    # sits in the `functions` namespace.
    CodexCase("gpt-5.6-sol", "agent-code", "hello-code.txt", "hello from code mode\n",
              ('"exit_code":0',), "functions__exec"),
]


@needs_codex
@pytest.mark.parametrize("case", CODEX_CASES, ids=lambda c: c.bot)
def test_codex_runs_the_bots_tool_calls(make_stack: Any, case: CodexCase) -> None:
    stack = make_stack({case.bot: {"mapping": case.model}} if case.model != case.bot else None)
    done = _codex(stack, case.model, f"Create {case.file}")
    report = _report(done)
    assert done.returncode == 0, report
    assert _read(stack.work / case.file) == case.content, report
    assert done.stdout.strip().startswith("Done. The tool said:"), report

    queries = stack.queries(case.bot)
    assert len(queries) == len(case.results) + 1, report
    offered = {t["function"]["name"]: t["function"] for t in queries[0]["tools"]}
    assert case.tool in offered, sorted(offered)
    if case.tool == "apply_patch":  # free-form: one string argument, the grammar told
        assert offered["apply_patch"]["parameters"]["properties"]["input"]["type"] == "string"
        assert "begin_patch" in offered["apply_patch"]["description"]
    for query, expected in zip(queries[1:], case.results, strict=True):
        results = query["tool_results"]  # the round just run, in Poe's top-level field
        assert len(results) == 1 and expected in results[0]["content"], results
    stack.assert_logs_clean()


@needs_codex
def test_codex_shows_the_bot_an_image(make_stack: Any) -> None:
    """view_image: the picture comes back in the tool output and reaches Poe as an upload
    attached to the tool result."""
    stack = make_stack()
    (stack.work / "picture.png").write_bytes(_png())
    done = _codex(stack, "agent-look", "Look at picture.png")
    assert done.returncode == 0, _report(done)
    assert done.stdout.strip() == "Done. Attachments: 1", _report(done)
    stack.assert_logs_clean()


XML_PAGE = '<p class="x">a && b</p>\n<p>1 < 2</p>\n'


@needs_codex
def test_codex_with_a_bot_in_xml_tool_mode(make_stack: Any) -> None:
    """tool_mode: xml (no native tools): the bot writes a <tool_call> block with the patch,
    whose text has <, > and &; Codex applies it and the result comes back as XML."""
    stack = make_stack({"agent-xml": {"mapping": "gpt-5.5", "tool_mode": "xml"}})
    done = _codex(stack, "gpt-5.5", "Write page.html")
    assert done.returncode == 0, _report(done)
    assert _read(stack.work / "page.html") == XML_PAGE, _report(done)
    assert done.stdout.strip() == "Done. The tool said: A page.html", _report(done)
    first, second = stack.queries("agent-xml")
    assert "tools" not in first and '<tool name="apply_patch">' in first["query"][-1]["content"]
    assert "<tool_results>" in second["query"][-1]["content"]
    stack.assert_logs_clean()


@needs_codex
def test_codex_runs_parallel_calls(make_stack: Any) -> None:
    """Two calls in one answer, their arguments interleaved: both run, both results go back
    to the bot in one query."""
    stack = make_stack()
    done = _codex(stack, "agent-parallel", "Write two files")
    assert done.returncode == 0, _report(done)
    assert [_read(stack.work / f"{n}.txt") for n in ("one", "two")] == ["one\n", "two\n"]
    assert done.stdout.strip() == "Done. Results: 2", _report(done)
    second = stack.queries("agent-parallel")[1]
    assert [r["tool_call_id"] for r in second["tool_results"]] == ["call_par_one", "call_par_two"]
    stack.assert_logs_clean()


@needs_codex
def test_codex_waits_through_a_long_silence(make_stack: Any) -> None:
    """The bot is silent for 5 s mid-answer; Codex's idle timeout is 2 s here (300 s by
    default). Keep-alive events every 0.5 s keep the stream alive; comments would not."""
    stack = make_stack(KEEPALIVE_INTERVAL="0.5")
    done = _codex(stack, "agent-sleep", "Hi",
                  "-c", "model_providers.poe.stream_idle_timeout_ms=2000")
    assert done.returncode == 0, _report(done)
    assert done.stdout.strip() == "Hmm. Awake again.", _report(done)
    assert len(stack.queries("agent-sleep")) == 1
    stack.assert_logs_clean()


# ---------------------------------------------------------------------------------------
# Claude Code
# ---------------------------------------------------------------------------------------

def _claude(stack: Stack, model: str, prompt: str, *tools: str) -> list[dict[str, Any]]:
    """Run Claude Code in print mode; its stream-json events."""
    assert CLAUDE is not None
    env = {"HOME": str(stack.home), "CLAUDE_CONFIG_DIR": str(stack.home / ".claude"),
           "ANTHROPIC_BASE_URL": stack.url, "ANTHROPIC_API_KEY": KEY,
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}
    done = _run([CLAUDE, "-p", prompt, "--model", model, "--allowedTools", *tools,
                 "--permission-mode", "acceptEdits", "--output-format", "stream-json",
                 "--verbose", "--include-partial-messages"], env, stack.work)
    report = _report(done)
    assert done.returncode == 0, report
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert events and events[-1]["type"] == "result", report
    assert events[-1]["subtype"] == "success" and not events[-1]["is_error"], report
    return events


@needs_claude
def test_claude_code_writes_then_reads_back(make_stack: Any) -> None:
    """Write, then Bash `cat`, then the answer: three streamed turns."""
    stack = make_stack()
    events = _claude(stack, "agent-multi", "Write hello.txt, then show it.",
                     "Write", "Bash(cat:*)")
    assert _read(stack.work / "hello.txt") == "written by the fake Poe bot\n", events[-1]
    assert events[-1]["result"] == "Done. The tool said: written by the fake Poe bot"
    assert events[-1]["num_turns"] == 3
    # Streamed: the answer came as text deltas, the calls as input_json_delta.
    deltas = [e["event"]["delta"]["type"] for e in events if e["type"] == "stream_event"
              and e["event"]["type"] == "content_block_delta"]
    assert "text_delta" in deltas and "input_json_delta" in deltas

    queries = stack.queries("agent-multi")
    assert len(queries) == 3
    # Claude Code's `role: "system"` message inside `messages` reaches Poe in place, as a
    # system message after the user's turn.
    roles = [m["role"] for m in queries[0]["query"]]
    assert roles[0] == "system" and "system" in roles[roles.index("user"):], roles
    assert "Write" in {t["function"]["name"] for t in queries[0]["tools"]}
    assert "File created successfully" in queries[1]["tool_results"][0]["content"]
    history = [m for m in queries[2]["query"] if m["role"] == "tool"]
    assert len(history) == 1 and "File created successfully" in history[0]["content"]
    assert queries[2]["tool_results"][0]["content"] == "written by the fake Poe bot"
    stack.assert_logs_clean()


@needs_claude
def test_claude_code_with_a_bot_in_xml_tool_mode(make_stack: Any) -> None:
    stack = make_stack({"agent-xml": {"tool_mode": "xml"}})
    events = _claude(stack, "agent-xml", "Write page.html", "Write")
    assert _read(stack.work / "page.html") == XML_PAGE, events[-1]
    assert events[-1]["result"].startswith("Done. The tool said: File created successfully")
    assert "tools" not in stack.queries("agent-xml")[0]
    stack.assert_logs_clean()


@needs_claude
def test_claude_code_runs_parallel_calls(make_stack: Any) -> None:
    stack = make_stack()
    events = _claude(stack, "agent-parallel", "Write two files", "Write")
    assert [_read(stack.work / f"{n}.txt") for n in ("one", "two")] == ["one\n", "two\n"]
    assert events[-1]["result"] == "Done. Results: 2"
    second = stack.queries("agent-parallel")[1]
    assert [r["tool_call_id"] for r in second["tool_results"]] == ["toolu_par_one",
                                                                   "toolu_par_two"]
    stack.assert_logs_clean()


@needs_claude
def test_claude_code_falls_back_to_a_non_streamed_request(make_stack: Any) -> None:
    """Poe breaks off every other answer mid-stream: Claude Code repeats the request
    without streaming, and the non-streamed answers (thinking, text, tool_use) work too."""
    stack = make_stack()
    events = _claude(stack, "agent-write-think-flaky", "Write hello.txt", "Write")
    assert _read(stack.work / "hello.txt") == "written by the fake Poe bot\n", events[-1]
    assert events[-1]["result"].startswith("Done. The tool said: File created successfully")
    assert len(stack.queries("agent-write-think-flaky")) == 4
    stack.assert_logs_clean("Poe reported an error mid-stream")


@needs_claude
def test_claude_code_shows_the_bot_an_image(make_stack: Any) -> None:
    """Read on a picture: an image block in the tool_result, uploaded and attached."""
    stack = make_stack()
    (stack.work / "picture.png").write_bytes(_png())
    events = _claude(stack, "agent-look", "Look at picture.png", "Read")
    assert events[-1]["result"] == "Done. Attachments: 1"
    stack.assert_logs_clean()

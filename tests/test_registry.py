"""The model map (matching and listing) and the registry (loading, hot reload)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from poe2openai.errors import ModelNotFound
from poe2openai.modelconfig import parse_yaml
from poe2openai.registry import ModelMap, ModelRegistry

POE = [
    {"id": "GPT-4o", "created": 1715641234567, "owned_by": "OpenAI"},
    {"id": "Claude-Sonnet-4", "created": 1758868894, "owned_by": "Anthropic"},
    {"id": "Assistant", "created": 1689984000000, "owned_by": "Poe"},
    {"id": "FLUX-pro", "owned_by": "fal"},
    {"id": "claude", "owned_by": "Someone"},  # wears the alias of Claude-Sonnet-4 below
]

CONFIG = """\
enable: true
models:
  gpt-4o:                # key in another case than Poe's id
    mapping: My-4o
    reasoning_format: think
  Claude-Sonnet-4:
    mapping: claude
    tool_mode: xml
    parameters: {thinking_budget: 1024}
  Assistant:
    enable: false
  FLUX-pro:
    replace_response: true
  secret-bot:
    enable: false
custom_models:
  - id: my-private-bot
    owned_by: me
    created: 1754000000
  - id: secret-bot
  - id: bare
"""


def make(text: str = CONFIG, **kw: Any) -> ModelMap:
    return ModelMap(parse_yaml(text), **kw)


def ids(m: ModelMap) -> list[str]:
    return [e["id"] for e in m.list_models(POE)]


# ------------------------------------------------------------------------- matching


@pytest.mark.parametrize(("name", "bot"), [
    ("My-4o", "gpt-4o"), ("my-4o", "gpt-4o"), ("MY-4O", "gpt-4o"),  # alias, any case
    ("GPT-4o", "gpt-4o"), ("gpt-4O", "gpt-4o"),  # the real name still works
    ("claude", "Claude-Sonnet-4"),  # an alias wins over a bot of that name
    ("claude-sonnet-4", "Claude-Sonnet-4"),
    ("flux-PRO", "FLUX-pro"),
    ("My-Private-Bot", "my-private-bot"),  # custom
    ("Unlisted-Bot", "Unlisted-Bot"),  # passes through, case kept
])
def test_resolve(name: str, bot: str) -> None:
    resolved = make().resolve(name)
    assert resolved.bot == bot
    assert resolved.requested == name  # responses echo what the client sent


def test_options_follow_the_bot_in_any_case() -> None:
    m = make()
    assert m.resolve("my-4o").options.reasoning_format == "think"
    opts = m.resolve("CLAUDE").options
    assert (opts.tool_mode, opts.parameters) == ("xml", {"thinking_budget": 1024})
    assert m.resolve("flux-pro").options.replace_response is True  # B15: case-insensitive
    assert m.resolve("Unlisted").options == m.resolve("bare").options  # defaults
    assert m.resolve("Unlisted").options.replace_response is False


@pytest.mark.parametrize("name", ["Assistant", "assistant", "secret-bot", "SECRET-BOT"])
def test_disabled_model_is_404(name: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        make().resolve(name)
    assert info.value.status == 404 and info.value.code == "model_not_found"
    assert info.value.param == "model"


def test_disabled_alias_is_404() -> None:
    m = make("enable: true\nmodels:\n  GPT-4o: {mapping: four, enable: false}\n")
    for name in ("four", "GPT-4o"):
        with pytest.raises(ModelNotFound):
            m.resolve(name)


def test_allow_unlisted_false_is_an_allow_list() -> None:
    m = make(CONFIG.replace("enable: true", "enable: true\nallow_unlisted: false"))
    assert m.resolve("my-4o").bot == "gpt-4o"
    assert m.resolve("flux-pro").bot == "FLUX-pro"
    assert m.resolve("bare").bot == "bare"
    for name in ("Unlisted-Bot", "gpt-5"):
        with pytest.raises(ModelNotFound):
            m.resolve(name)
    assert ids(m) == ["My-4o", "claude", "FLUX-pro", "my-private-bot", "bare"]


def test_master_switch_off_means_no_map() -> None:
    for text in (CONFIG.replace("enable: true", "enable: false"),
                 CONFIG.replace("enable: true\n", ""),
                 CONFIG.replace("enable: true", "enable: false\nallow_unlisted: false")):
        m = make(text)
        assert m.resolve("Assistant").bot == "Assistant"  # disabled, but the map is off
        assert m.resolve("My-4o").bot == "My-4o"  # no alias
        assert m.resolve("FLUX-pro").options.replace_response is False  # B15: respects enable
        assert m.resolve("anything").bot == "anything"
        assert ids(m) == [e["id"] for e in POE]
    assert ModelMap().resolve("x").bot == "x"


# ------------------------------------------------------------------------- listing


def test_list_applies_the_map() -> None:
    m = make(created=1700000000)
    listed = {e["id"]: e for e in m.list_models(POE)}
    # Aliases renamed (the real names hidden), disabled ones gone, the bot called
    # "claude" shadowed by Claude-Sonnet-4's alias, custom ones added (not twice).
    assert list(listed) == ["My-4o", "claude", "FLUX-pro", "my-private-bot", "bare"]
    assert listed["My-4o"] == {"id": "My-4o", "object": "model", "created": 1715641234,
                               "owned_by": "OpenAI"}
    assert listed["claude"]["owned_by"] == "Anthropic"
    assert listed["my-private-bot"] == {"id": "my-private-bot", "object": "model",
                                        "created": 1754000000, "owned_by": "me"}
    assert listed["bare"] == {"id": "bare", "object": "model", "created": 1700000000,
                              "owned_by": "poe"}
    for entry in listed.values():
        assert entry["created"] < 10_000_000_000  # seconds, never milliseconds


def test_custom_model_with_alias_and_options() -> None:
    m = make("enable: true\nmodels:\n  my-bot: {mapping: mine, tool_mode: xml}\n"
             "custom_models: [my-bot]\n")
    assert ids(m)[-1] == "mine" and "my-bot" not in ids(m)
    assert m.resolve("MINE").bot == "my-bot" and m.resolve("mine").options.tool_mode == "xml"


def test_api_token() -> None:
    assert make(CONFIG + "api_token: sk-123\n").api_token == "sk-123"
    assert make().api_token is None and ModelMap().api_token is None


# ------------------------------------------------------------------------- registry


async def wait_for(check: Callable[[], bool], timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Poll until ``check`` is true (what is awaited is a file on disk: no event)."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "models.yaml"


async def test_load_now(path: Path) -> None:
    reg = ModelRegistry(path)
    assert await reg.load_now() and reg.version == "missing"
    assert reg.current.resolve("x").bot == "x"
    path.write_text(CONFIG)
    assert await reg.load_now()
    assert reg.current.resolve("my-4o").bot == "gpt-4o"
    assert reg.version == hashlib.sha256(CONFIG.encode()).hexdigest()
    assert reg.last_error is None


async def test_invalid_edit_keeps_the_last_good_map(path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path.write_text(CONFIG)
    reg = ModelRegistry(path)
    await reg.load_now()
    good, version = reg.current, reg.version
    caplog.set_level(logging.INFO, "poe2openai.registry")
    path.write_text(CONFIG.replace("    tool_mode: xml", "    tool_mode: xmll"))
    for _ in range(3):  # the watcher's polls; the same error is logged once
        await reg.refresh()
    assert not await reg.load_now()
    assert reg.current is good and reg.version == version
    assert reg.current.resolve("claude").options.tool_mode == "xml"
    err = reg.last_error
    assert err is not None and err.line == 8 and err.where == "models['Claude-Sonnet-4'].tool_mode"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    line = errors[0].getMessage()
    assert f"{path}:8: " in line and "tool_mode" in line and "xmll" in line
    assert "last good" in line and "\n" not in line
    # A different mistake is logged (once) too; then the fix is picked up.
    path.write_text("enable: [\n")
    await reg.refresh()
    await reg.refresh()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2
    assert reg.last_error is not None and reg.last_error.line == 2
    path.write_text(CONFIG.replace("My-4o", "Four"))
    await reg.refresh()
    assert reg.last_error is None and reg.current.resolve("four").bot == "gpt-4o"


async def test_file_deleted_means_defaults(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path.write_text(CONFIG)
    reg = ModelRegistry(path)
    await reg.load_now()
    path.unlink()
    caplog.set_level(logging.INFO, "poe2openai.registry")
    await reg.refresh(debounce_missing=True)  # an editor may be between rename and write
    assert reg.current.resolve("my-4o").bot == "gpt-4o"
    await reg.refresh(debounce_missing=True)
    assert reg.current.resolve("my-4o").bot == "my-4o" and reg.version == "missing"
    assert reg.last_error is None
    assert any("deleted" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    path.write_text(CONFIG)  # and created again later
    await reg.refresh(debounce_missing=True)
    assert reg.current.resolve("my-4o").bot == "gpt-4o"


async def test_file_replaced_by_rename_is_noticed(path: Path) -> None:
    path.write_text(CONFIG)
    reg = ModelRegistry(path)
    await reg.load_now()
    st = path.stat()
    # Same size and the same mtime: only the inode tells (an editor saving by rename).
    tmp = path.with_name(".models.yaml.swp")
    tmp.write_text(CONFIG.replace("My-4o", "Ab-4o"))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    await reg.refresh(debounce_missing=True)
    assert reg.current.resolve("ab-4o").bot == "gpt-4o"


async def test_file_created_later(path: Path) -> None:
    reg = ModelRegistry(path)
    await reg.load_now()
    await reg.refresh(debounce_missing=True)
    path.write_text(CONFIG)
    await reg.refresh(debounce_missing=True)
    assert reg.current.resolve("my-4o").bot == "gpt-4o"


@pytest.mark.parametrize("bad", ["directory", "binary"])
async def test_unreadable_file_is_an_error_not_a_crash(path: Path, bad: str) -> None:
    path.write_text(CONFIG)
    reg = ModelRegistry(path)
    await reg.load_now()
    path.unlink()
    if bad == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"enable: true\nmodels: {\xff\xfe}\n")
    assert not await reg.load_now()
    assert reg.last_error is not None
    assert reg.current.resolve("my-4o").bot == "gpt-4o"


async def test_watcher_picks_up_edits(path: Path) -> None:
    path.write_text(CONFIG)
    reg = ModelRegistry(path)
    await reg.load_now()
    task = asyncio.create_task(reg.watch(0.02))
    try:
        path.write_text(CONFIG.replace("My-4o", "Edited-4o"))
        await wait_for(lambda: reg.current.config.models["gpt-4o"].mapping == "Edited-4o")
        path.write_text("models: [\n")  # broken: kept, and reported
        await wait_for(lambda: reg.last_error is not None)
        assert reg.current.resolve("edited-4o").bot == "gpt-4o"
        tmp = path.with_name("new.yaml")
        tmp.write_text(CONFIG)
        os.replace(tmp, path)
        await wait_for(lambda: reg.last_error is None)
        assert reg.current.resolve("my-4o").bot == "gpt-4o"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_list_and_resolve_agree_on_a_disabled_alias_that_names_a_real_bot() -> None:
    m = make("enable: true\nmodels:\n  Claude: {mapping: GPT-4o, enable: false}\n")
    listed = [e["id"] for e in m.list_models([{"id": "gpt-4o"}, {"id": "claude"}, {"id": "x"}])]
    assert listed == ["x"]
    for name in ("GPT-4o", "claude"):
        with pytest.raises(ModelNotFound):
            m.resolve(name)

"""models.yaml that is half-written, oversized, expanding or deep: never applied,
never a crash, always reported, and read again only when it changes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import encode_basic_auth
from aiohttp.test_utils import TestClient

from poe2openai import keys
from poe2openai.modelfile import MAX_FILE_SIZE
from poe2openai.registry import ModelRegistry
from poe2openai.yamlload import MAX_DEPTH
from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, chat_body
from tests.yaml_cases import deep, laughs

Proxy = TestClient[Any, Any]
MakeProxy = Callable[..., Awaitable[Proxy]]
ADMIN = {"Authorization": encode_basic_auth("admin", "test-password")}

GOOD = """\
enable: true
models:
  GPT-4o:
    mapping: four
    parameters: {thinking_budget: 1024}
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "models.yaml"
    p.write_text(GOOD)
    return p


async def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Poll until ``check()`` (sync or async) is true: what is awaited is a file."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


async def loaded(path: Path) -> ModelRegistry:
    reg = ModelRegistry(path)
    assert await reg.load_now()
    assert reg.current.resolve("four").bot == "GPT-4o"
    return reg


def write_in_place(path: Path, data: str | bytes) -> None:
    """What `cat > file`, nano or a script does: truncate and write the same inode."""
    raw = data.encode() if isinstance(data, str) else data
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(raw)


def append(path: Path, data: str) -> None:
    with open(path, "a") as f:
        f.write(data)


# ------------------------------------------------------------------------- item 2: half-written


async def test_a_half_written_file_is_never_put_in_force(path: Path) -> None:
    """A file written in place in two parts, with a pause between them: the first
    part alone is valid (and different); the whole file is broken. The half must
    not be applied, or it would stay in force though it never existed as a file."""
    reg = await loaded(path)
    good = reg.current
    task = asyncio.create_task(reg.watch(0.02))
    try:
        first = "enable: true\nallow_unlisted: false\nmodels:\n  Half-Bot:\n    mapping: half\n"
        rest = "  GPT-4o:\n    mapping: [broken\n"
        write_in_place(path, first)
        await asyncio.sleep(0.2)  # the writer pauses: several checks see the first part
        append(path, rest)
        await wait_for(lambda: reg.last_error is not None)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert reg.current is good, reg.current.config  # never replaced by the half
    assert reg.current.resolve("anything").bot == "anything"


async def test_an_edit_takes_effect_once_the_file_stays_the_same(path: Path) -> None:
    reg = await loaded(path)
    write_in_place(path, GOOD.replace("four", "five"))
    await reg.refresh()  # waits until the file has stayed the same, then applies it
    assert reg.current.resolve("five").bot == "GPT-4o" and reg.last_error is None


# ------------------------------------------------------------------------- item 3: oversized


async def test_deleting_an_oversized_file_brings_the_defaults(path: Path) -> None:
    reg = await loaded(path)
    os.truncate(path, 8 * 1024 * 1024 + 1)  # sparse: over any limit, nothing to write
    assert MAX_FILE_SIZE < 8 * 1024 * 1024 + 1
    await reg.refresh(debounce_missing=True)
    assert reg.last_error is not None and "larger than" in reg.last_error.message
    assert reg.current.resolve("four").bot == "GPT-4o"  # the last good map stays
    path.unlink()
    for _ in range(2):  # missing on two checks in a row
        await reg.refresh(debounce_missing=True)
    assert reg.last_error is None, reg.last_error
    assert reg.current.resolve("four").bot == "four"  # the defaults
    assert reg.version == "missing"


async def test_a_file_just_over_the_limit_is_refused(path: Path) -> None:
    reg = await loaded(path)
    write_in_place(path, GOOD + "#" * MAX_FILE_SIZE + "\n")
    await reg.refresh()
    assert reg.last_error is not None and "larger than 1 MiB" in reg.last_error.describe()
    assert reg.current.resolve("four").bot == "GPT-4o"


# ------------------------------------------------------------------------- item 4: expansion


async def test_billion_laughs_is_refused_at_once(path: Path) -> None:
    reg = await loaded(path)
    good = reg.current
    path.write_text(laughs())
    async with asyncio.timeout(10):  # before the fix: memory grew until out-of-memory
        assert not await reg.load_now()
    err = reg.last_error
    assert err is not None and "aliases" in err.message and "billion laughs" in err.message
    assert err.line is not None and 5 < err.line <= 14
    assert reg.current is good


async def test_a_smaller_expansion_never_reaches_poe(path: Path, make_proxy: MakeProxy,
                                                     fake_poe: FakePoe) -> None:
    """6 levels of 9 repeat a 20-character string 531,441 times: about 11 MB of
    parameters in every request, from a 0.4 KB file."""
    path.write_text(laughs(levels=6, seed="x" * 20))
    proxy = await make_proxy()
    state = await (await proxy.get("/admin/api/state", headers=ADMIN)).json()
    assert state["error"] is not None and "aliases" in state["error"]["message"]
    fake_poe.script("GPT-4o", [text("ok"), done()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=chat_body())
    assert resp.status == 200
    assert fake_poe.last is not None
    assert fake_poe.last.query[-1].get("parameters") is None  # the defaults: no parameters


async def test_shared_parameters_by_alias_are_fine(path: Path) -> None:
    reg = await loaded(path)
    models = "".join(f"  bot-{i}:\n    parameters: *common\n" for i in range(200))
    path.write_text("enable: true\nmodels:\n  bot-a:\n    parameters: &common "
                    "{thinking_budget: 1024, web_search: true}\n" + models)
    assert await reg.load_now(), reg.last_error
    assert reg.current.resolve("bot-199").options.parameters == {"thinking_budget": 1024,
                                                                 "web_search": True}


@pytest.mark.parametrize("text", [
    "enable: true\nmodels: &m\n  GPT-4o:\n    parameters: {loop: *m}\n",
    "enable: true\nmodels:\n  GPT-4o:\n    parameters: &p\n      self: *p\n",
], ids=["mapping", "parameters"])
async def test_an_alias_inside_its_own_anchor_is_refused(path: Path, text: str) -> None:
    reg = await loaded(path)
    path.write_text(text)
    assert not await reg.load_now()
    assert reg.last_error is not None and "loop" in reg.last_error.message


async def test_aliases_cannot_nest_past_the_depth_limit(path: Path) -> None:
    reg = await loaded(path)
    chain = "".join(f"      a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 60))
    path.write_text(deep(1, flow=True).replace("      x: []\n", "      a0: &a0 [1]\n") + chain)
    assert not await reg.load_now()
    assert reg.last_error is not None and "levels deep" in reg.last_error.message


# ------------------------------------------------------------------------- item 5: deep nesting


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
async def test_deep_nesting_is_reported_like_any_invalid_file(path: Path, flow: bool) -> None:
    reg = await loaded(path)
    good = reg.current
    path.write_text(deep(260, flow=flow))
    assert not await reg.load_now()  # before the fix: RecursionError
    err = reg.last_error
    assert err is not None and f"nested more than {MAX_DEPTH} levels deep" in err.message
    assert err.line is not None and reg.current is good
    path.write_text(deep(MAX_DEPTH - 5, flow=flow))  # deep, but within the limit
    assert await reg.load_now(), reg.last_error


async def test_a_bad_file_is_parsed_once_not_at_every_check(
        path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = await loaded(path)
    caplog.set_level(logging.DEBUG, "poe2openai.registry")
    path.write_text(deep(260))
    for _ in range(5):  # five checks of an unchanged (bad) file
        await reg.refresh(debounce_missing=True)
    parses = [r for r in caplog.records if r.getMessage().startswith("Parsing ")]
    assert len(parses) == 1, [r.getMessage() for r in caplog.records]
    assert reg.last_error is not None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1


async def test_deep_file_at_start_means_the_defaults(path: Path, make_proxy: MakeProxy) -> None:
    path.write_text(deep(260))
    proxy = await make_proxy()  # before the fix: start-up failed with RecursionError
    resp = await proxy.get("/admin/api/state", headers=ADMIN)
    assert resp.status == 200
    state = await resp.json()
    assert "levels deep" in state["error"]["message"]
    assert state["config"]["enable"] is False  # the defaults are in force


async def test_deep_file_at_run_time_is_reported_by_the_admin_api(
        path: Path, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy()
    path.write_text(deep(260))
    seen: dict[str, Any] = {}

    async def reported() -> bool:
        resp = await proxy.get("/admin/api/state", headers=ADMIN)
        assert resp.status == 200  # before the fix: 500
        seen.update(await resp.json())
        return seen["error"] is not None

    await wait_for(reported)
    assert "levels deep" in seen["error"]["text"]
    assert seen["config"]["models"]["GPT-4o"]["mapping"] == "four"  # still in force


async def test_sighup_with_a_deep_file_reports_it(path: Path, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(reload_interval=3600)  # only SIGHUP reloads
    if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None):
        pytest.fail("no SIGHUP handler installed")  # sending it would kill the test run
    registry = proxy.app[keys.REGISTRY]
    path.write_text(deep(260))
    os.kill(os.getpid(), signal.SIGHUP)
    await wait_for(lambda: registry.last_error is not None)  # before: the task died
    assert "levels deep" in registry.last_error.message  # type: ignore[union-attr]


# ------------------------------------------------------------------------- the real server


@pytest.fixture
async def start_server(fake_poe: FakePoe, tmp_path: Path
                       ) -> AsyncIterator[Callable[[], Awaitable[tuple[str, Any]]]]:
    procs: list[Any] = []

    async def start() -> tuple[str, Any]:
        from tests.test_lifecycle import _free_port
        port = _free_port()
        env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1",
               "POE_BASE_URL": fake_poe.base_url, "CONFIG_DIR": str(tmp_path),
               "SHUTDOWN_TIMEOUT": "2", "ADMIN_PASSWORD": "test-password",
               "CONFIG_RELOAD_INTERVAL": "0.05"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "poe2openai", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        procs.append(proc)
        return f"http://127.0.0.1:{port}", proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def test_server_with_a_billion_laughs_starts_reloads_and_stops(
        path: Path, start_server: Callable[[], Awaitable[tuple[str, Any]]]) -> None:
    """Before the fix the server never got past loading the file: no answers, later
    edits ignored, and SIGTERM did not stop it."""
    path.write_text(laughs())
    url, proc = await start_server()
    async with aiohttp.ClientSession() as session:

        async def state() -> dict[str, Any] | None:
            try:
                async with session.get(url + "/admin/api/state", headers=ADMIN) as resp:
                    return await resp.json() if resp.status == 200 else None
            except aiohttp.ClientError:
                return None

        async def up() -> bool:
            return await state() is not None

        await wait_for(up, timeout=20)
        first = await state()
        assert first is not None and "aliases" in first["error"]["message"]
        path.write_text(GOOD.replace("four", "edited"))  # a later edit is picked up

        async def edited() -> bool:
            s = await state()
            return s is not None and s["error"] is None \
                and s["config"]["models"]["GPT-4o"]["mapping"] == "edited"

        await wait_for(edited)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0

"""Admin saves racing hand edits of models.yaml: a hand edit is never lost.

A save reads the file, computes the edited text (slow on a big file), and must
replace the file only if it still holds what was read: the check and the
replace are one step. These tests edit the file by hand, for real, while saves
run; whatever the interleaving, every hand edit must survive.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from poe2openai import configfile
from poe2openai.configfile import FileChanged, replace_if_unchanged, version_of
from tests.test_admin import csrf_token, get_state, post_config
from tests.yaml_cases import big_map

Proxy = TestClient[Any, Any]
MakeProxy = Callable[..., Awaitable[Proxy]]


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    return tmp_path / "models.yaml"


def append(path: Path, data: str) -> None:
    with open(path, "a") as f:
        f.write(data)


async def test_a_line_appended_during_a_save_survives(models_file: Path,
                                                      make_proxy: MakeProxy) -> None:
    """The reported case: 3,000 models; a line appended by hand shortly after
    pressing save. Before the fix the save answered 200 and the line was gone."""
    models_file.write_text(big_map(3000))
    proxy = await make_proxy(reload_interval=3600)
    token = await csrf_token(proxy)
    state = await get_state(proxy)
    config = state["config"]
    config["models"]["bot-5"]["mapping"] = "saved-by-the-page"
    # Make the file's access time older than its modification time: the next read
    # (the save's) moves it (relatime), which shows when the save has read the file.
    st = models_file.stat()
    os.utime(models_file, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))
    armed = models_file.stat().st_atime_ns
    save = asyncio.create_task(post_config(proxy, {"version": state["version"],
                                                   "config": config}, token=token))
    for _ in range(400):  # at most 2 s (a noatime mount never shows the read)
        if models_file.stat().st_atime_ns != armed or save.done():
            break
        await asyncio.sleep(0.005)
    append(models_file, "  - id: added-by-hand\n")  # lands while the save is being made
    resp = await save
    body = await resp.json()
    text = models_file.read_text()
    assert "  - id: added-by-hand\n" in text  # never lost
    if resp.status == 200:  # only when the save finished before the edit
        assert "saved-by-the-page" in text
    else:
        assert resp.status == 409, body
        assert "changed on disk" in body["error"]["message"]
        assert "saved-by-the-page" not in text  # nothing was written


async def test_saves_racing_hand_edits_never_lose_a_hand_edit(models_file: Path,
                                                              make_proxy: MakeProxy) -> None:
    """A hand editor adds comment lines, in place or by renaming a new file over the
    old one, at random moments, while the admin page saves again and again. Each
    save is based on the file as it was just before it was sent."""
    models_file.write_text(big_map(60))
    proxy = await make_proxy(reload_interval=3600)
    token = await csrf_token(proxy)
    config = (await get_state(proxy))["config"]
    written: list[str] = []
    stop = threading.Event()

    def hand_editor() -> None:
        rng = random.Random()
        n = 0
        while not stop.is_set():
            n += 1
            line = f"# hand edit {n}\n"
            if rng.random() < 0.5:  # in place (`echo >> models.yaml`, nano)
                fd = os.open(models_file, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
            else:  # a new file renamed over the old one (vim, IDEs)
                tmp = models_file.with_name(f".models.yaml.hand-{n}")
                tmp.write_bytes(models_file.read_bytes() + line.encode())
                os.replace(tmp, models_file)
            written.append(line)
            stop.wait(rng.uniform(0.002, 0.2))

    editor = threading.Thread(target=hand_editor)
    editor.start()
    statuses: list[int] = []
    try:
        for n in range(20):
            config["models"]["bot-1"]["mapping"] = f"page-save-{n}"
            version = version_of(models_file.read_bytes())  # what the page just loaded
            resp = await post_config(proxy, {"version": version, "config": config},
                                     token=token)
            statuses.append(resp.status)
            assert resp.status in (200, 409), await resp.text()
    finally:
        stop.set()
        await asyncio.to_thread(editor.join)
    text = models_file.read_text()
    missing = [line for line in written if line not in text]
    assert not missing, (missing, statuses)
    assert written
    assert sorted(p.name for p in models_file.parent.iterdir()) == ["models.yaml"]


# ------------------------------------------------------------------------- the file helper


def test_replace_if_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_bytes(b"one\n")
    sig = replace_if_unchanged(path, b"two\n", b"one\n")
    assert path.read_bytes() == b"two\n" and sig == configfile.signature(path)
    with pytest.raises(FileChanged):
        replace_if_unchanged(path, b"three\n", b"one\n")  # it holds "two" now
    assert path.read_bytes() == b"two\n"
    with pytest.raises(FileChanged):
        replace_if_unchanged(path, b"new\n", None)  # expected missing, but it exists
    path.unlink()
    with pytest.raises(FileChanged):
        replace_if_unchanged(path, b"x\n", b"two\n")  # expected content, but it is gone
    replace_if_unchanged(path, b"created\n", None)
    assert path.read_bytes() == b"created\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.yaml"]  # no temp, no lock

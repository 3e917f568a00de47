"""Proxy keys: the keys file, the server's key store, and the ``poe2openai keys`` command
(run as a real process)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from poe2openai.team.keyfile import (
    FILE_NAME,
    KeyError_,
    KeyRecord,
    create_key,
    parse_expiry,
    read_keys,
    revoke_key,
)
from poe2openai.team.keystore import KeyStore

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_allows_names_and_globs_without_regard_to_case() -> None:
    r = KeyRecord(name="a", digest="0" * 64, models=("claude-*", "GPT-4o"))
    assert r.allows("Claude-Sonnet-4.5") and r.allows("gpt-4o")
    assert not r.allows("gpt-4o-mini") and not r.allows("o3")
    assert KeyRecord(name="b", digest="0" * 64).allows("anything")
    assert [m["id"] for m in r.visible([{"id": "claude-x"}, {"id": "o3"}])] == ["claude-x"]


def test_expiry_forms() -> None:
    assert parse_expiry("2027-01-15", NOW) == NOW - 8 * 3600 + 86400  # through that UTC day
    assert parse_expiry("30d", NOW) == NOW + 30 * 86400
    assert parse_expiry("12h", NOW) == NOW + 12 * 3600
    assert parse_expiry("2027-01-15T11:00:00+02:00", NOW) == NOW + 3600
    assert parse_expiry("2027-01-15T09:00:00", NOW) == NOW + 3600  # UTC without an offset
    with pytest.raises(KeyError_, match="in the past"):
        parse_expiry("2020-01-01", NOW)
    with pytest.raises(KeyError_):
        parse_expiry("next week", NOW)


def test_file_keeps_only_a_hash_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    record, secret = create_key(path, "alice", models=["claude-*"], rpm=10, daily=0)
    assert secret.startswith("p2o-") and len(secret) >= 4 + 43
    text = path.read_text()
    assert secret not in text and secret[8:] not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(text)["keys"][0]
    assert doc["name"] == "alice" and doc["rpm"] == 10 and doc["daily"] is None
    assert read_keys(path) == [record]
    with pytest.raises(KeyError_, match="exists"):
        create_key(path, "ALICE")
    revoke_key(path, "alice")
    again, secret2 = create_key(path, "alice")  # a revoked name can be given again
    assert read_keys(path) == [again] and secret2 != secret
    with pytest.raises(KeyError_, match="no key named"):
        revoke_key(path, "bob")
    with pytest.raises(KeyError_, match="key name"):
        create_key(path, "bad name!")


async def test_store_tells_unknown_revoked_and_expired_apart(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    clock = [NOW]
    _, good = create_key(path, "good", now=NOW)
    _, gone = create_key(path, "gone", now=NOW)
    _, old = create_key(path, "old", expires=NOW + 60, now=NOW)
    revoke_key(path, "gone", now=NOW)
    store = KeyStore(path, clock=lambda: clock[0])
    assert not store.empty  # before the first load nothing is accepted
    assert await store.load_now()
    assert not store.empty
    rec = store.authenticate(good)
    assert rec is not None and rec.name == "good"
    assert store.check(good[:-1] + ("A" if good[-1] != "A" else "B")) == (None, "Unknown API key.")
    assert "revoked" in store.check(gone)[1]
    assert store.authenticate(old) is not None
    clock[0] = NOW + 61
    assert store.authenticate(old) is None and "expired" in store.check(old)[1]
    assert "Missing API key" in store.check(None)[1]
    assert "p2o-" in store.check("sk-poe-something")[1]


async def test_store_without_file_is_empty_and_a_broken_file_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    store = KeyStore(path)
    seen: list[bool] = []
    store.on_reload.append(seen.append)
    assert await store.load_now() and store.empty
    path.write_text("{not json")
    broken = KeyStore(path)
    assert not await broken.load_now()
    assert not broken.empty and broken.authenticate("p2o-x") is None
    assert "cannot read its proxy keys" in broken.check("p2o-x")[1]
    # A store that had good keys keeps them when the file breaks.
    path.unlink()
    _, secret = create_key(path, "k")
    await store.refresh()
    assert store.authenticate(secret) is not None
    path.write_text('{"keys": [{"name": "k"}]}')
    await store.load_now()
    assert store.last_error is not None and store.authenticate(secret) is not None
    assert seen == [True, True, False]


async def test_reload_sees_a_change_that_kept_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    create_key(path, "one")
    store = KeyStore(path)
    await store.load_now()
    rewrite_in_place(path, '"one"', '"two"')
    await store.refresh()  # polling cannot tell
    assert store.get("one") is not None
    await store.reload()  # SIGHUP
    assert store.get("one") is None and store.get("two") is not None


def rewrite_in_place(path: Path, old: str, new: str) -> None:
    """Replace text of the same length keeping the inode, size and modification time."""
    st = path.stat()
    text = path.read_text().replace(old, new)
    assert len(old) == len(new)
    with open(path, "r+", encoding="utf-8") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONFIG_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "poe2openai", "keys", *args], env=env,
                          capture_output=True, text=True, timeout=30)


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    out = _cli(tmp_path, "create", "alice", "--models", "claude-*", "gpt-4o", "--rpm", "5",
               "--concurrency", "2", "--daily", "100", "--expires", "30d")
    assert out.returncode == 0, out.stderr
    secret = out.stdout.strip()
    assert secret.startswith("p2o-") and "\n" not in secret  # stdout is the secret alone
    assert "only time" in out.stderr
    listed = _cli(tmp_path, "list")
    assert listed.returncode == 0
    assert "alice" in listed.stdout and "claude-*,gpt-4o" in listed.stdout
    assert secret not in listed.stdout + listed.stderr and secret[8:] not in listed.stdout
    data = json.loads(_cli(tmp_path, "list", "--json").stdout)
    assert data[0]["rpm"] == 5 and data[0]["concurrency"] == 2 and data[0]["daily"] == 100
    assert data[0]["state"] == "active" and "sha256" not in data[0]
    assert _cli(tmp_path, "revoke", "alice").returncode == 0
    assert json.loads(_cli(tmp_path, "list", "--json").stdout)[0]["state"] == "revoked"
    dup = _cli(tmp_path, "create", "bob")
    assert dup.returncode == 0
    again = _cli(tmp_path, "create", "bob")
    assert again.returncode == 1 and "exists" in again.stderr and again.stdout == ""
    assert _cli(tmp_path, "revoke", "nobody").returncode == 1
    assert _cli(tmp_path, "create", "x", "--expires", "1999-01-01").returncode == 1
    assert _cli(tmp_path, "create", "x", "--rpm", "-3").returncode == 1


def test_cli_keeps_the_server_command(tmp_path: Path) -> None:
    help_ = subprocess.run([sys.executable, "-m", "poe2openai", "--help"], capture_output=True,
                           text=True, timeout=30)
    assert help_.returncode == 0 and "poe2openai keys" in help_.stdout
    keys_help = _cli(tmp_path, "--help")
    assert keys_help.returncode == 0 and "create" in keys_help.stdout
    assert _cli(tmp_path).returncode == 2  # a subcommand is required


def test_access_owner_keeps_proxy_users_apart() -> None:
    from poe2openai.team.gate import Access

    alice = KeyRecord(name="alice", digest="0" * 64, models=("gpt-4o",))
    assert Access(alice, "server-key").owner == "proxy:alice"
    assert Access(None, "own-poe-key").owner == "own-poe-key"
    assert Access(alice, "server-key").name == "alice" and Access(None, "k").name == "-"
    assert "server-key" not in repr(Access(alice, "server-key"))

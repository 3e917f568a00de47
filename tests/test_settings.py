"""Settings from the environment, and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from poe2openai.settings import SETTINGS, Settings, SettingsError, default_config_dir, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_match_the_original() -> None:
    s = load_settings({})
    assert (s.host, s.port, s.log_level) == ("0.0.0.0", 8080, "info")
    assert s.max_request_size == 1073741824
    assert s.poe_base_url == "https://api.poe.com"
    assert s.poe_file_upload_url == "https://www.quora.com/poe_api/file_upload_3RD_PARTY_POST"
    assert s.config_dir == Path.home() / ".config" / "poe2openai"  # never the checkout's
    assert s.url_cache_ttl_seconds == 259200 and s.url_cache_size_mb == 100
    assert s.admin_username == "admin" and s.admin_password == ""


def test_table_defaults_equal_dataclass_defaults() -> None:
    assert load_settings({}) == Settings(config_dir=default_config_dir({}))
    assert Settings().config_dir == default_config_dir(os.environ)


def test_config_dir_default_follows_xdg() -> None:
    assert load_settings({"XDG_CONFIG_HOME": "/srv/cfg"}).config_dir == Path("/srv/cfg/poe2openai")
    assert load_settings({"HOME": "/home/u"}).config_dir == Path("/home/u/.config/poe2openai")
    # A relative XDG_CONFIG_HOME is ignored, as the XDG spec says; CONFIG_DIR wins over both.
    assert load_settings({"HOME": "/home/u", "XDG_CONFIG_HOME": "cfg"}).config_dir == \
        Path("/home/u/.config/poe2openai")
    assert load_settings({"XDG_CONFIG_HOME": "/srv/cfg", "CONFIG_DIR": "~/x"}).config_dir == \
        Path.home() / "x"


def test_values_are_parsed() -> None:
    s = load_settings({"PORT": "3000", "LOG_LEVEL": "DEBUG", "POE_BASE_URL": "http://x:1/",
                       "CORS_ALLOW_ORIGINS": "https://a.example, https://b.example/",
                       "CONFIG_DIR": "/data", "POE_READ_TIMEOUT": "30.5"})
    assert s.port == 3000 and s.log_level == "debug" and s.poe_base_url == "http://x:1"
    assert s.cors_allow_origins == ("https://a.example", "https://b.example")
    assert s.models_path == Path("/data/models.yaml") and s.read_timeout == 30.5


@pytest.mark.parametrize(("env", "value"), [
    ("PORT", "abc"), ("PORT", "70000"), ("LOG_LEVEL", "loud"), ("POE_BASE_URL", "ftp://x"),
    ("POE_BASE_URL", "api.poe.com"), ("MAX_REQUEST_SIZE", "-1"), ("POE_READ_TIMEOUT", "nan"),
    ("KEEPALIVE_INTERVAL", "0"), ("HOST", " "),
])
def test_bad_value_names_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{env}: "):
        load_settings({env: value})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in readme]
    assert not missing, f"README lacks: {missing}"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "poe2openai", *args], capture_output=True,
                          text=True, env=full_env, timeout=30)


def test_cli_version_and_help() -> None:
    from poe2openai import __version__

    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"poe2openai {__version__}"
    out = _run("--help")
    assert out.returncode == 0
    for s in SETTINGS:
        assert s.env in out.stdout


def test_cli_bad_setting_is_one_line_and_exit_2() -> None:
    out = _run(env={"PORT": "not-a-port"})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "poe2openai: bad setting PORT: expected a whole number, got 'not-a-port'"]

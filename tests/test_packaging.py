"""What ships: the wheel carries the admin page and the default config; the image is sane."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(240)  # builds in an isolated environment (fetches setuptools)
def test_wheel_contains_package_data(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    [wheel] = tmp_path.glob("poe2openai-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("poe2openai/admin/templates/index.html", "poe2openai/admin/static/admin.js",
                     "poe2openai/admin/static/admin.css", "poe2openai/py.typed"):
        assert required in names, required
    assert any(n.startswith("poe2openai/data/") and n.endswith(".yaml") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "poe2openai = poe2openai.__main__:main" in zipfile.ZipFile(wheel).read(
        entry_points).decode()


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\S+", text, re.M)  # not root
    assert re.search(r'^CMD \["poe2openai"\]', text, re.M)  # exec form: Python gets SIGTERM
    assert re.search(r'^VOLUME \["/data"\]', text, re.M) and "CONFIG_DIR=/data" in text
    assert re.search(r"^HEALTHCHECK .*healthz", text, re.M | re.S)


def test_shipped_models_yaml_means_the_defaults() -> None:
    from poe2openai.modelconfig import parse_yaml
    from poe2openai.registry import ModelMap, openai_model

    config = parse_yaml((ROOT / "config" / "models.yaml").read_text(), "config/models.yaml")
    shipped, default = ModelMap(config), ModelMap()
    poe = [{"id": "gpt-4o", "created": 1700000000000, "owned_by": "OpenAI"}, {"id": "x"}]
    assert shipped.list_models(poe) == default.list_models(poe) == [openai_model(m) for m in poe]
    for name in ("GPT-4o", "any-private-bot"):
        assert shipped.resolve(name) == default.resolve(name)
    assert shipped.api_token is None


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()

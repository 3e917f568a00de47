"""The Vercel AI SDK's structured output (``generateObject``, ``streamObject``, and
``generateText`` / ``streamText`` with ``Output.object``) against the proxy and fake Poe bots
that answer with JSON in prose, in a code fence, after a thinking block, or invalid first;
through the default OpenAI provider (Responses) and ``openai.chat`` (Chat Completions).

``scripts/test.sh`` installs the SDK into ``tests/js/node_modules`` (``npm ci``); without
Node.js or those modules this test is skipped and says why.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.fake_poe import FakePoe, done
from tests.test_structured import ANSWERS, repairing

JS = Path(__file__).parent / "js"
PARIS = {"name": "Paris", "population": 2102650}
EMBEDDED = ["json-fenced", "json-prose", "json-thinking"]


@pytest.mark.timeout(120)
async def test_vercel_ai_sdk_objects(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "ai").is_dir():
        pytest.skip("Node.js or tests/js/node_modules is missing (run scripts/test.sh)")
    for name, steps in ANSWERS.items():
        fake_poe.script(f"json-{name}", [*steps, done()])
    fake_poe.script("json-repair", repairing)
    proc = await asyncio.create_subprocess_exec(
        node, str(JS / "vercel_ai_object.mjs"), str(proxy.make_url("/v1")), cwd=JS,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 100)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    out = json.loads(stdout)
    for face in ("responses", "chat"):
        for bot in EMBEDDED:
            assert out["embedded"][f"{face} {bot}"] == {
                "generateObject": PARIS, "streamObject": PARIS, "partials": True,
                "generateText": PARIS, "streamText": PARIS}, (face, bot)
        assert out["repair"][face] == PARIS
        assert out["noSchema"][face] == PARIS
    # What the SDK sends: a strict json_schema as text.format (Responses) or response_format
    # (Chat); output "no-schema" sends json_object.
    sent = out["sent"]
    per_face = len(EMBEDDED) * 4 + 2
    assert len(sent) == 2 * per_face
    for path, first in (("/v1/responses", 0), ("/v1/chat/completions", per_face)):
        calls = sent[first:first + per_face]
        assert {c[0] for c in calls} == {path}
        assert [c[3:] for c in calls[:-1]] == [["json_schema", True]] * (per_face - 1)
        assert calls[-1][3] == "json_object"
        assert [c[2] for c in calls[:4]] == [False, True, False, True]
    # The repair bot was asked twice per face (invalid, then repaired by the proxy); the rest
    # once per call: the SDK never had to retry.
    assert len(fake_poe.requests) == 2 * (per_face + 1)

"""The Vercel AI SDK's default OpenAI provider (it speaks the Responses API) against the proxy
and the fake Poe: text, streaming, reasoning and tool loops, in Node.js.

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

from tests.fake_poe import FakePoe, done, text

JS = Path(__file__).parent / "js"


@pytest.mark.timeout(90)
async def test_vercel_ai_sdk(proxy: TestClient[Any, Any], fake_poe: FakePoe) -> None:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "ai").is_dir():
        pytest.skip("Node.js or tests/js/node_modules is missing (run scripts/test.sh)")
    fake_poe.script("GPT-4o", [text("Hel"), text("lo!"), done()])
    proc = await asyncio.create_subprocess_exec(
        node, str(JS / "vercel_ai.mjs"), str(proxy.make_url("/v1")), cwd=JS,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 80)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    out = json.loads(stdout)
    assert out["text"] == {"text": "Hello!", "finish": "stop", "tokens": out["text"]["tokens"]}
    assert out["text"]["tokens"] > 0
    assert out["stream"] == {"text": "Hello!", "finish": "stop"}
    assert out["reasoning"] == {"text": "The answer is 42.", "reasoning": "step one\nstep two"}
    assert out["tools"] == {"text": "Tool result: 18C in Paris", "steps": 2,
                            "calls": [["get_weather", {"location": "Paris"}]]}
    assert out["streamTools"] == {"text": "Tool result: 18C in Paris", "steps": 2}
    assert len(fake_poe.requests) == 7  # text, stream, reasoning, two 2-step tool loops

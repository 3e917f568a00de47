"""The three API faces as a client sees them: a minimal request for each, the headers its
SDKs send a key in, the usage it reports, and its error envelope (OpenAI's on Chat and
Responses, Anthropic's on Messages)."""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers import assert_openai_error, chat_body

FACES: Final = ("chat", "responses", "messages")
PATHS: Final = {"chat": "/v1/chat/completions", "responses": "/v1/responses",
                "messages": "/v1/messages"}
#: Anthropic's error type for each status our errors have (see messages_encode._TYPES).
ANTHROPIC_TYPES: Final = {401: "authentication_error", 402: "billing_error",
                          403: "permission_error", 429: "rate_limit_error",
                          529: "overloaded_error"}


def body(face: str, model: str = "GPT-4o", *, stream: bool = False,
         text: str = "Hi") -> dict[str, Any]:
    """The smallest request of ``face`` (a Chat stream asks for its usage chunk)."""
    if face == "chat":
        extra = {"stream_options": {"include_usage": True}} if stream else {}
        return chat_body(text, model=model, stream=stream, **extra)
    if face == "responses":
        return {"model": model, "input": text, "stream": stream}
    return {"model": model, "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


def key_headers(face: str, key: str | None, *, bearer: bool = False) -> dict[str, str]:
    """The key as the face's SDKs send it: Anthropic's ``x-api-key`` (with
    ``anthropic-version``), else ``Authorization: Bearer``."""
    if face == "messages":
        headers = {"anthropic-version": "2023-06-01"}
        if key is not None:
            headers["Authorization" if bearer else "x-api-key"] = (
                f"Bearer {key}" if bearer else key)
        return headers
    return {"Authorization": f"Bearer {key}"} if key is not None else {}


async def ask(client: TestClient[Any, Any], face: str, key: str | None,
              model: str = "GPT-4o", *, stream: bool = False) -> ClientResponse:
    return await client.post(PATHS[face], json=body(face, model, stream=stream),
                             headers=key_headers(face, key))


async def face_error(resp: ClientResponse, face: str, status: int, *,
                     code: str | None = None) -> str:
    """The response is ``status`` in the face's own error envelope; its message.
    ``code`` is checked on the OpenAI faces (Anthropic's envelope has none)."""
    if face != "messages":
        err = await assert_openai_error(resp, status, code=code)
        return str(err["message"])
    data = await resp.json(content_type=None)
    wanted = 529 if status == 503 else status
    assert resp.status == wanted, (resp.status, data)
    assert resp.content_type == "application/json"
    assert set(data) == {"type", "error"} and data["type"] == "error", data
    assert set(data["error"]) == {"type", "message"}, data
    assert data["error"]["type"] == ANTHROPIC_TYPES[wanted], data
    message = data["error"]["message"]
    assert isinstance(message, str) and message
    return message


def usage_of(face: str, raw: bytes, stream: bool) -> tuple[int, int]:
    """(tokens in, tokens out) as the face reported them to the client."""
    if not stream:
        usage = json.loads(raw)["usage"]
        if face == "chat":
            return usage["prompt_tokens"], usage["completion_tokens"]
        return usage["input_tokens"], usage["output_tokens"]
    events = [json.loads(line[6:]) for line in raw.decode().split("\n")
              if line.startswith("data: ") and line != "data: [DONE]"]
    if face == "chat":
        [usage] = [e["usage"] for e in events if e.get("usage")]
        return usage["prompt_tokens"], usage["completion_tokens"]
    if face == "responses":
        [done] = [e for e in events if e["type"] == "response.completed"]
        usage = done["response"]["usage"]
        return usage["input_tokens"], usage["output_tokens"]
    [delta] = [e for e in events if e["type"] == "message_delta"]
    return delta["usage"]["input_tokens"], delta["usage"]["output_tokens"]

"""Structured output through the client libraries people use for it, over real loopback HTTP
against the proxy and fake Poe bots that answer with JSON in prose, in a code fence, after a
thinking block, or invalid first: LangChain's ``with_structured_output`` (Chat and, with
``use_responses_api=True``, Responses; ``ainvoke`` and ``astream``) and instructor
(``Mode.JSON``, ``Mode.JSON_SCHEMA``, ``Mode.MD_JSON``; ``create`` and ``create_partial``).
The openai SDK's own ``parse`` helpers are in ``test_structured.py``; the Vercel AI SDK's are
in ``test_vercel_ai_object.py``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import instructor
import openai
import pydantic
import pytest
from aiohttp.test_utils import TestClient
from langchain_openai import ChatOpenAI

from tests.fake_poe import FakePoe, done, text
from tests.helpers import AUTH, assert_openai_error, parse_sse
from tests.test_structured import ANSWERS, BAD, GOOD, City, repairing

Proxy = TestClient[Any, Any]
PARIS = City(name="Paris", population=2102650)
QUESTION = "Largest city of France?"
#: Bots whose JSON is in prose, a fence, or after a thinking block (valid the first time).
EMBEDDED = ["json-fenced", "json-prose", "json-thinking"]
#: LangChain's Chat stream hands the openai SDK's ``content.done`` event (its ``parsed`` field
#: typed None, holding the object) to pydantic's model_dump, which warns; a client-side
#: warning that shows against any server, so it is not an error here.
LANGCHAIN_STREAM_WARNING = "ignore:Pydantic serializer warnings:UserWarning"


@pytest.fixture(autouse=True)
def bots(fake_poe: FakePoe) -> None:
    for name, steps in ANSWERS.items():
        fake_poe.script(f"json-{name}", [*steps, done()])
    fake_poe.script("json-repair", repairing)


def prompt_sent(fake_poe: FakePoe) -> str:
    """The last user message the bot got (the question plus the proxy's instruction)."""
    assert fake_poe.last is not None
    return str(fake_poe.last.query[-1]["content"])


def chat_model(proxy: Proxy, bot: str, *, responses: bool = False) -> ChatOpenAI:
    return ChatOpenAI(model=bot, base_url=str(proxy.make_url("/v1")), api_key="test-key",
                      max_retries=0, timeout=20, use_responses_api=responses)


# ---------------------------------------------------------------------------------------
# LangChain
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
@pytest.mark.parametrize("bot", [*EMBEDDED, "json-repair"])
async def test_langchain_invoke(proxy: Proxy, fake_poe: FakePoe, bot: str,
                                responses: bool) -> None:
    """The default method (json_schema, strict): ``response_format`` or ``text.format``."""
    structured = chat_model(proxy, bot, responses=responses).with_structured_output(City)
    assert await structured.ainvoke(QUESTION) == PARIS
    assert fake_poe.requests[-1].bot == bot
    assert '"population"' in fake_poe.requests[0].query[-1]["content"]  # the schema, to the bot
    assert len(fake_poe.requests) == (2 if bot == "json-repair" else 1)


@pytest.mark.filterwarnings(LANGCHAIN_STREAM_WARNING)
@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
@pytest.mark.parametrize("bot", EMBEDDED)
async def test_langchain_stream(proxy: Proxy, fake_poe: FakePoe, bot: str,
                                responses: bool) -> None:
    structured = chat_model(proxy, bot, responses=responses).with_structured_output(City)
    chunks = [chunk async for chunk in structured.astream(QUESTION)]
    assert chunks and chunks[-1] == PARIS
    assert len(fake_poe.requests) == 1


async def test_langchain_json_mode(proxy: Proxy, fake_poe: FakePoe) -> None:
    """``method="json_mode"``: ``response_format: {"type": "json_object"}``, no schema sent."""
    structured = chat_model(proxy, "json-prose").with_structured_output(City, method="json_mode")
    assert await structured.ainvoke(QUESTION) == PARIS
    assert "must be a JSON object" in prompt_sent(fake_poe)


async def test_langchain_include_raw(proxy: Proxy) -> None:
    """The raw message's content is exactly the JSON, and nothing failed to parse."""
    structured = chat_model(proxy, "json-fenced").with_structured_output(City, include_raw=True)
    result: Any = await structured.ainvoke(QUESTION)
    assert result["parsed"] == PARIS and result["parsing_error"] is None
    assert result["raw"].content == GOOD


# ---------------------------------------------------------------------------------------
# instructor
# ---------------------------------------------------------------------------------------

@pytest.fixture
async def raw_client(proxy: Proxy) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=str(proxy.make_url("/v1")), api_key="test-key",
                                  max_retries=0, timeout=20) as client:
        yield client


MODES = [instructor.Mode.JSON, instructor.Mode.JSON_SCHEMA, instructor.Mode.MD_JSON]


def same_city(city: Any) -> bool:
    """instructor's objects carry the raw completion, so compare the fields."""
    return isinstance(city, City) and city.model_dump() == PARIS.model_dump()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize("bot", EMBEDDED)
async def test_instructor_create(raw_client: openai.AsyncOpenAI, fake_poe: FakePoe, bot: str,
                                 mode: instructor.Mode) -> None:
    client = instructor.from_openai(raw_client, mode=mode)
    city = await client.chat.completions.create(
        model=bot, response_model=City, messages=[{"role": "user", "content": QUESTION}])
    assert same_city(city)
    assert len(fake_poe.requests) == 1  # valid the first time: instructor did not retry
    if mode is instructor.Mode.MD_JSON:  # no response_format: the bot gets no instruction
        assert "# Response format" not in prompt_sent(fake_poe)
    else:
        assert "# Response format" in prompt_sent(fake_poe)


async def test_instructor_gets_the_repaired_answer(raw_client: openai.AsyncOpenAI,
                                                   fake_poe: FakePoe) -> None:
    """JSON_SCHEMA mode sends the schema, so the proxy validates: the bot's first answer is
    invalid, the proxy's repair round fixes it, and instructor sees one valid answer."""
    client = instructor.from_openai(raw_client, mode=instructor.Mode.JSON_SCHEMA)
    city = await client.chat.completions.create(
        model="json-repair", response_model=City,
        messages=[{"role": "user", "content": QUESTION}])
    assert same_city(city)
    assert len(fake_poe.requests) == 2
    assert "That answer cannot be used" in prompt_sent(fake_poe)


async def test_instructor_json_mode_retries_itself(raw_client: openai.AsyncOpenAI,
                                                   fake_poe: FakePoe) -> None:
    """JSON mode sends only ``{"type": "json_object"}`` (the schema is in its system message),
    so the proxy checks for an object and nothing more; an object that does not fit the model
    goes back to instructor, whose own retry (the answer and pydantic's error, in the same
    conversation) reaches the bot and gets a valid one."""
    fake_poe.script("json-client-repair", lambda rec: (
        [text(GOOD), done()] if len(rec.query) > 2 else [text("Here:\n" + BAD), done()]))
    client = instructor.from_openai(raw_client, mode=instructor.Mode.JSON)
    city = await client.chat.completions.create(
        model="json-client-repair", response_model=City, max_retries=2,
        messages=[{"role": "user", "content": QUESTION}])
    assert same_city(city)
    assert len(fake_poe.requests) == 2
    retry = fake_poe.requests[1].query
    assert retry[-2]["role"] == "bot" and BAD in retry[-2]["content"]
    assert "population" in retry[-1]["content"] and "must be a JSON object" in retry[-1]["content"]


@pytest.mark.parametrize("mode", [instructor.Mode.JSON, instructor.Mode.JSON_SCHEMA],
                         ids=lambda m: m.name)
@pytest.mark.parametrize("bot", EMBEDDED)
async def test_instructor_create_partial(raw_client: openai.AsyncOpenAI, fake_poe: FakePoe,
                                         bot: str, mode: instructor.Mode) -> None:
    client = instructor.from_openai(raw_client, mode=mode)
    partials = [p async for p in client.chat.completions.create_partial(
        model=bot, response_model=City, messages=[{"role": "user", "content": QUESTION}])]
    assert partials and same_city(partials[-1])
    assert len(fake_poe.requests) == 1


# ---------------------------------------------------------------------------------------
# A forced tool call: instructor's default mode (TOOLS), LangChain's function_calling
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bot", [*EMBEDDED, "json-repair"])
async def test_instructor_tools_mode(raw_client: openai.AsyncOpenAI, fake_poe: FakePoe,
                                     bot: str) -> None:
    """TOOLS (instructor's default) offers one tool and forces it with a named tool_choice.
    A bot that answers with the arguments in text instead still gives instructor its call."""
    client = instructor.from_openai(raw_client)
    assert client.mode is instructor.Mode.TOOLS
    city = await client.chat.completions.create(
        model=bot, response_model=City, messages=[{"role": "user", "content": QUESTION}])
    assert same_city(city)
    assert len(fake_poe.requests) == (2 if bot == "json-repair" else 1)
    first = fake_poe.requests[0]
    assert first.tools is not None and first.tools[0]["function"]["name"] == "City"
    assert 'Answer with a call of the tool "City"' in first.query[-1]["content"]


@pytest.mark.parametrize("bot", EMBEDDED)
async def test_instructor_tools_mode_partial(raw_client: openai.AsyncOpenAI,
                                             fake_poe: FakePoe, bot: str) -> None:
    client = instructor.from_openai(raw_client)
    partials = [p async for p in client.chat.completions.create_partial(
        model=bot, response_model=City, messages=[{"role": "user", "content": QUESTION}])]
    assert partials and same_city(partials[-1])
    assert len(fake_poe.requests) == 1


@pytest.mark.parametrize("bot", EMBEDDED)
async def test_instructor_responses_tools_mode(raw_client: openai.AsyncOpenAI,
                                               fake_poe: FakePoe, bot: str) -> None:
    """RESPONSES_TOOLS: the same through the Responses API."""
    client = instructor.from_openai(raw_client, mode=instructor.Mode.RESPONSES_TOOLS)
    city = await client.responses.create(
        model=bot, response_model=City, input=[{"role": "user", "content": QUESTION}])
    assert same_city(city)
    assert len(fake_poe.requests) == 1


async def test_a_bot_that_calls_the_tool_itself(raw_client: openai.AsyncOpenAI,
                                                fake_poe: FakePoe) -> None:
    """A bot that makes the call (Poe's tool calling) is passed through as it is."""

    class Where(pydantic.BaseModel):
        location: str

    client = instructor.from_openai(raw_client)
    where = await client.chat.completions.create(
        model="scenario-tools-native", response_model=Where,
        messages=[{"role": "user", "content": QUESTION}])
    assert where.location == "Paris"
    assert len(fake_poe.requests) == 1


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
@pytest.mark.parametrize("bot", [*EMBEDDED, "json-repair"])
async def test_langchain_function_calling(proxy: Proxy, fake_poe: FakePoe, bot: str,
                                          responses: bool) -> None:
    structured = chat_model(proxy, bot, responses=responses).with_structured_output(
        City, method="function_calling")
    assert await structured.ainvoke(QUESTION) == PARIS
    assert len(fake_poe.requests) == (2 if bot == "json-repair" else 1)


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
async def test_langchain_function_calling_stream(proxy: Proxy, responses: bool) -> None:
    structured = chat_model(proxy, "json-prose", responses=responses).with_structured_output(
        City, method="function_calling")
    chunks = [chunk async for chunk in structured.astream(QUESTION)]
    assert chunks and chunks[-1] == PARIS


# The same on the wire: what the proxy answers to a forced tool call from a prose bot.

CITY_TOOL = {"type": "function", "function": {
    "name": "City", "description": "A city.", "parameters": City.model_json_schema()}}
FORCED = {"type": "function", "function": {"name": "City"}}


def forced_call(bot: str, **extra: Any) -> dict[str, Any]:
    return {"model": bot, "messages": [{"role": "user", "content": QUESTION}],
            "tools": [CITY_TOOL], "tool_choice": FORCED, **extra}


@pytest.mark.parametrize("choice", [FORCED, "required"], ids=["named", "required"])
async def test_forced_call_in_a_chat_stream(proxy: Proxy, choice: Any) -> None:
    """The arguments are held until they validate, then sent as the call; no content."""
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=forced_call(
        "json-fenced", stream=True, tool_choice=choice))
    chunks = [p for p in parse_sse(await resp.read()) if isinstance(p, dict)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    assert not any(d.get("content") for d in deltas)
    calls = [call for d in deltas for call in d.get("tool_calls") or ()]
    assert calls[0]["function"]["name"] == "City" and calls[0]["id"].startswith("call_")
    assert "".join(c["function"].get("arguments") or "" for c in calls) == GOOD
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert resp.headers["x-structured-output"] == "instructed"


async def test_forced_call_in_a_responses_stream(proxy: Proxy) -> None:
    resp = await proxy.post("/v1/responses", headers=AUTH, json={
        "model": "json-prose", "input": QUESTION, "stream": True,
        "tools": [{"type": "function", "name": "City", "parameters": City.model_json_schema()}],
        "tool_choice": {"type": "function", "name": "City"}})
    frames = [json.loads(line[6:]) for line in (await resp.text()).splitlines()
              if line.startswith("data: ")]
    assert frames[-1]["type"] == "response.completed"
    output = frames[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["function_call"]
    assert output[0]["name"] == "City" and output[0]["arguments"] == GOOD
    assert not any(f["type"] == "response.output_text.delta" for f in frames)


@pytest.mark.parametrize("stream", [False, True])
async def test_forced_call_never_made_is_an_error(proxy: Proxy, fake_poe: FakePoe,
                                                  stream: bool) -> None:
    fake_poe.script("json-never", [text("I would rather write a poem."), done()])
    resp = await proxy.post("/v1/chat/completions", headers=AUTH,
                            json=forced_call("json-never", stream=stream))
    if stream:
        err = parse_sse(await resp.read())[-2]["error"]
    else:
        err = await assert_openai_error(resp, 422, "invalid_response_format",
                                        "structured_output_failed")
    assert err["code"] == "structured_output_failed"
    assert "arguments of the forced call of tool 'City'" in err["message"]
    assert "I would rather write a poem." in err["message"]
    assert len(fake_poe.requests) == 2  # one repair round


async def test_auto_tool_choice_is_not_structured_output(proxy: Proxy,
                                                         fake_poe: FakePoe) -> None:
    """Only a forced call is: with tool_choice auto the bot may answer in prose."""
    body = forced_call("json-prose")
    del body["tool_choice"]
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json=body)
    reply = await resp.json()
    assert reply["choices"][0]["message"]["content"] == "The city you asked about:\n" + GOOD \
        + "\nHope this helps."
    assert "x-structured-output" not in resp.headers
    assert "# Response format" not in prompt_sent(fake_poe)


async def test_a_tool_with_an_invalid_schema_is_plain_tool_calling(proxy: Proxy,
                                                                   fake_poe: FakePoe) -> None:
    tool = {"type": "function", "function": {"name": "City", "parameters": {
        "type": "object", "properties": {"name": {"type": "nope"}}}}}
    resp = await proxy.post("/v1/chat/completions", headers=AUTH, json={
        **forced_call("json-prose"), "tools": [tool]})
    assert resp.status == 200 and "x-structured-output" not in resp.headers
    assert "# Response format" not in prompt_sent(fake_poe)


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
async def test_langchain_stream_of_invalid_json_raises(proxy: Proxy, responses: bool) -> None:
    """Streamed JSON cannot be taken back: the stream ends with the face's error, which
    LangChain raises (the README's caveat)."""
    structured = chat_model(proxy, "json-repair", responses=responses).with_structured_output(
        City)
    # The Chat stream's error chunk is an openai.APIError; LangChain raises Responses'
    # response.failed as a ValueError naming the code.
    with pytest.raises((openai.APIError, ValueError), match="does not match the requested"):
        async for _chunk in structured.astream(QUESTION):
            pass

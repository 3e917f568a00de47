"""Bot parameters (Poe protocol 1.2 ``ProtocolMessage.parameters``). Pure: no I/O.

Poe bots take options such as ``thinking_budget``, ``web_search``,
``reasoning_effort`` or ``aspect_ratio``; ``/v1/models`` publishes each bot's
list with a JSON schema per option. Clients reach them three ways:

* OpenAI-style fields the proxy translates: ``reasoning_effort`` (any string),
  ``verbosity``, ``thinking: {type, budget_tokens}`` (Anthropic style),
  ``reasoning: {effort, max_tokens}`` (OpenRouter style),
  ``google.thinking_config.thinking_budget`` / ``thinking_level``, and
  ``web_search_options`` (→ ``web_search: true`` where the bot has that option);
* unknown top-level keys, which is how the OpenAI SDKs send ``extra_body``
  (``extra_body={"web_search": True}`` arrives as ``"web_search": true``);
* a literal nested ``extra_body`` object (some clients send it as is).

:func:`collect_candidates` gathers them from the body (validating their shapes);
:func:`resolve_parameters` decides, given the bot's schema when known, which
become parameters (validated: type, enum, bounds, lengths), which are dropped,
and merges the model's default parameters (``models.yaml``; request values win,
``null`` removes a default). Standard OpenAI parameters (``temperature``,
``max_tokens``…) never become bot parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from ..errors import InvalidRequest
from .schema import check_schema, is_num

__all__ = ["OPENAI_PARAMS", "Candidate", "ParameterPlan", "attach_parameters",
           "collect_candidates", "resolve_parameters"]

#: Chat Completions request fields. They are never sent as bot parameters.
OPENAI_PARAMS: Final = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop",
    "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format", "tools",
    "tool_choice", "parallel_tool_calls", "functions", "function_call", "metadata", "store",
    "service_tier", "modalities", "audio", "prediction", "web_search_options",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "verbosity",
    "reasoning_effort",
})

#: Fields read here (translated), besides the unknown keys.
_MAPPED: Final = frozenset({"reasoning_effort", "verbosity", "thinking", "reasoning", "google",
                            "extra_body", "web_search_options"})

#: reasoning_effort → share of the bot's maximum ``thinking_budget`` (bots without a
#: ``reasoning_effort`` option but with a budget, e.g. Claude), as OpenRouter does it.
EFFORT_SHARE: Final = {"none": 0.0, "minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8,
                       "xhigh": 1.0}
#: The same, in tokens, when the schema gives no maximum.
EFFORT_BUDGET: Final = {"none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 16384,
                        "xhigh": 32768}


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str  #: the Poe parameter name
    value: Any
    path: str  #: where the client put it (for errors and x-dropped-params)
    top: str  #: the top-level request field it came from
    #: "param": a parameter; "effort": reasoning_effort (may map to a budget/level);
    #: "if_known": only when the bot's schema has it
    kind: str = "param"


@dataclass(slots=True)
class ParameterPlan:
    parameters: dict[str, Any]
    #: Top-level request fields that were read as bot parameters (not "dropped").
    consumed: set[str]
    #: Paths of values that had no effect (for x-dropped-params).
    dropped: list[str]


def collect_candidates(body: dict[str, Any],
                       standard: frozenset[str] = OPENAI_PARAMS) -> list[Candidate]:
    """Bot-parameter candidates in a request body, in precedence order (later wins).

    ``standard`` is the face's own list of request fields: those are never bot parameters.
    """
    mapped: list[Candidate] = []
    direct: list[Candidate] = []
    _collect(body, "", mapped, direct, top_level=True, standard=standard)
    extra = body.get("extra_body")
    if extra is not None:
        if not isinstance(extra, dict):
            raise InvalidRequest("'extra_body' must be an object.", param="extra_body")
        _collect(extra, "extra_body.", mapped, direct, top_level=False, standard=standard)
    return mapped + direct


def _collect(src: dict[str, Any], prefix: str, mapped: list[Candidate],
             direct: list[Candidate], *, top_level: bool, standard: frozenset[str]) -> None:
    top = prefix.rstrip(".") if prefix else ""

    def cand(name: str, value: Any, path: str, kind: str = "param") -> None:
        mapped.append(Candidate(name, value, prefix + path, top or path.split(".")[0], kind))

    effort = src.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or not effort.strip():
            raise InvalidRequest("'reasoning_effort' must be a string such as 'low', 'medium' "
                                 "or 'high'.", param=prefix + "reasoning_effort")
        cand("reasoning_effort", effort.strip(), "reasoning_effort", "effort")
    verbosity = src.get("verbosity")
    if verbosity is not None:
        if not isinstance(verbosity, str):
            raise InvalidRequest("'verbosity' must be a string.", param=prefix + "verbosity")
        cand("verbosity", verbosity, "verbosity")

    thinking = src.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise InvalidRequest("'thinking' must be an object such as {\"type\": \"enabled\", "
                                 "\"budget_tokens\": 2048}.", param=prefix + "thinking")
        budget = thinking.get("budget_tokens")
        if budget is not None:
            cand("thinking_budget", _budget(budget, prefix + "thinking.budget_tokens"),
                 "thinking.budget_tokens")
        elif thinking.get("type") == "disabled":
            cand("thinking_budget", 0, "thinking.type")

    reasoning = src.get("reasoning")
    if isinstance(reasoning, dict):  # OpenRouter style
        r_effort = reasoning.get("effort")
        if isinstance(r_effort, str) and r_effort.strip():
            cand("reasoning_effort", r_effort.strip(), "reasoning.effort", "effort")
        if reasoning.get("max_tokens") is not None:
            cand("thinking_budget", _budget(reasoning["max_tokens"],
                                            prefix + "reasoning.max_tokens"),
                 "reasoning.max_tokens")
    elif reasoning is not None:
        direct.append(Candidate("reasoning", reasoning, prefix + "reasoning",
                                top or "reasoning"))

    google = src.get("google")
    if google is not None:
        config = google.get("thinking_config") if isinstance(google, dict) else None
        if not isinstance(config, dict):
            raise InvalidRequest("'google' must be an object with 'thinking_config'.",
                                 param=prefix + "google")
        if config.get("thinking_budget") is not None:
            cand("thinking_budget", _budget(config["thinking_budget"],
                                            prefix + "google.thinking_config.thinking_budget",
                                            allow_dynamic=True),
                 "google.thinking_config.thinking_budget")
        if config.get("thinking_level") is not None:
            cand("thinking_level", config["thinking_level"],
                 "google.thinking_config.thinking_level")

    if src.get("web_search_options") is not None:
        cand("web_search", True, "web_search_options", "if_known")

    for key, value in src.items():
        if key in _MAPPED or (top_level and key in standard):
            continue
        if not top_level and key in standard:
            continue  # a standard field inside extra_body: not a bot option
        direct.append(Candidate(key, value, prefix + key, top or key))


#: Largest token budget taken (a 32-bit count; larger numbers could not even be encoded).
MAX_BUDGET: Final = 2**31 - 1


def _budget(value: Any, path: str, *, allow_dynamic: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value != int(value) or (value < 0 and not (allow_dynamic and value == -1)) \
            or value > MAX_BUDGET:
        raise InvalidRequest(f"'{path}' must be a whole number of tokens from 0 to "
                             f"{MAX_BUDGET}.", param=path)
    return int(value)


def resolve_parameters(candidates: list[Candidate], schema: list[dict[str, Any]] | None,
                       defaults: dict[str, Any] | None = None, *, bot: str = "") -> ParameterPlan:
    """The ``parameters`` for the Poe query.

    ``schema`` is the bot's ``parameters`` list from Poe's ``/v1/models`` (``None``
    when unknown). With a schema, only its names become parameters (values
    checked, 400 naming the field otherwise) and other candidates are dropped;
    without one, every candidate is passed on except ``if_known`` ones.
    """
    params: dict[str, Any] = dict(defaults or {})
    consumed: set[str] = set()
    dropped: list[str] = []
    known: dict[str, Any] | None = None
    if schema is not None:
        known = {}
        for entry in schema:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                s = entry.get("schema")
                known[entry["name"]] = s if isinstance(s, dict) else {}
    explicit_budget = any(c.name == "thinking_budget" for c in candidates)
    for c in candidates:
        name, value = c.name, c.value
        if known is not None and name not in known:
            mapped = _map_effort(c, known, explicit_budget) if c.kind == "effort" else None
            if mapped is None:
                if value is not None:  # a null the bot has no use for was not "carried"
                    dropped.append(c.path)
                continue
            name, value = mapped
        elif known is None and c.kind == "if_known":
            dropped.append(c.path)
            continue
        if value is None:  # "use the bot's default" (also over models.yaml defaults)
            params.pop(name, None)
            consumed.add(c.top)
            continue
        if known is not None:
            problem = check_schema(value, known[name])
            if problem is not None:
                where = f" of {bot}" if bot else ""
                raise InvalidRequest(f"Invalid value for '{c.path}' (bot parameter '{name}'"
                                     f"{where}): {problem}.", param=c.path)
        params[name] = value
        consumed.add(c.top)
    return ParameterPlan(params, consumed, dropped)


def _map_effort(c: Candidate, known: dict[str, Any],
                explicit_budget: bool) -> tuple[str, Any] | None:
    """reasoning_effort for a bot that has no such option: a budget or a level, if it has one."""
    effort = str(c.value).lower()
    if "thinking_budget" in known and not explicit_budget and effort in EFFORT_SHARE:
        s = known["thinking_budget"]
        hi, lo = s.get("maximum"), s.get("minimum")
        if is_num(hi):
            budget = int(hi * EFFORT_SHARE[effort])
        else:
            budget = EFFORT_BUDGET[effort]
        if is_num(lo) and budget < lo and effort != "none":
            budget = math.ceil(lo)
        if is_num(hi):
            budget = min(budget, int(hi))
        return "thinking_budget", max(budget, int(lo) if is_num(lo) else 0)
    if "thinking_level" in known:
        enum = known["thinking_level"].get("enum")
        if isinstance(enum, list):
            if effort in enum:
                return "thinking_level", effort
            guess = "low" if effort in ("none", "minimal", "low") else "high"
            if guess in enum:
                return "thinking_level", guess
    return None


def attach_parameters(query: list[dict[str, Any]], parameters: dict[str, Any]) -> None:
    """Put ``parameters`` on the last user message of a Poe query."""
    if not parameters:
        return
    for msg in reversed(query):
        if msg.get("role") == "user":
            msg["parameters"] = {**(msg.get("parameters") or {}), **parameters}
            return
    # No user message at all (e.g. only a system prompt): the last message carries them.
    if query:
        query[-1]["parameters"] = {**(query[-1].get("parameters") or {}), **parameters}

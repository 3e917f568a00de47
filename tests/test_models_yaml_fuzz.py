"""Randomized models.yaml histories: valid edits interleaved with truncated, binary,
wrong-shape, expanding and deep files, and deletions, written in place or by
rename. After every step the last valid config (the defaults once the file is
deleted) is the one in force, and a bad file is reported for what it is.

The expected config is built by the generator, not by the parser under test;
every bad file is bad by construction (an unterminated quoted string, a byte
that is never UTF-8, a schema violation, an expansion or nesting far over the
limits).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poe2openai import registry as registry_module
from poe2openai.registry import ModelRegistry
from tests.yaml_cases import deep, laughs

BOTS = ["GPT-4o", "Claude-Sonnet-4", "bot-a", "bot_b", "Gemini 2.5", "x"]


@dataclass(frozen=True)
class Step:
    kind: str  # valid | truncated | binary | shape | expanding | deep | delete
    data: bytes
    expected: dict[str, Any] | None  # for a valid step: what it means
    error: str | None  # for a bad step: a word the error must contain
    how: str  # rename | inplace | refresh


DEFAULTS: dict[str, Any] = {"enable": False, "allow_unlisted": True, "models": {},
                            "custom": []}


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid models.yaml, rendered by hand, and what it means."""
    enable = draw(st.booleans())
    allow = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(BOTS), unique=True, max_size=4))
    shared = draw(st.booleans())  # parameters shared through an anchor and aliases
    lines = [f"enable: {str(enable).lower()}", f"allow_unlisted: {str(allow).lower()}"]
    models: dict[str, Any] = {}
    if names:
        lines.append("models:")
    anchored = False
    for i, name in enumerate(names):
        mapping = draw(st.one_of(st.none(), st.just(f"alias-{i}")))
        on = draw(st.booleans())
        budget = draw(st.one_of(st.none(), st.integers(0, 10**6)))
        lines.append(f'  "{name}":')
        lines.append(f"    enable: {str(on).lower()}")
        if mapping is not None:
            lines.append(f'    mapping: "{mapping}"')
        params: dict[str, Any] = {}
        if budget is not None:
            params = {"thinking_budget": budget, "nested": {"list": [1, "two", [3]]}}
            if shared and anchored:
                lines.append("    parameters: *shared")
                params = models[next(n for n in models if models[n][2])][2]
            else:
                lines.append("    parameters: " + ("&shared " if shared else "")
                             + f"{{thinking_budget: {budget}, nested: {{list: [1, two, [3]]}}}}")
                anchored = anchored or shared
        models[name] = (mapping, on, params)
    custom = draw(st.lists(st.sampled_from(["priv-1", "priv-2", "priv-3"]), unique=True,
                           max_size=2))
    if custom:
        lines.append("custom_models:")
        lines += [f'  - id: "{c}"' for c in custom]
    meaning = {"enable": enable, "allow_unlisted": allow, "models": models, "custom": custom}
    return "\n".join(lines) + "\n", meaning


@st.composite
def steps(draw: st.DrawFn) -> Step:
    kind = draw(st.sampled_from(["valid", "valid", "truncated", "binary", "shape",
                                 "expanding", "deep", "delete"]))
    how = draw(st.sampled_from(["rename", "inplace", "refresh"]))
    if kind == "valid":
        text, meaning = draw(configs())
        return Step(kind, text.encode(), meaning, None, how)
    if kind == "truncated":
        text, _ = draw(configs())
        text += 'custom_models:\n  - id: "a-long-quoted-name"\n' if "custom_models" not in text \
            else ""
        quoted = [i for i in range(len(text)) if _inside_quotes(text, i)]
        cut = draw(st.sampled_from(quoted))  # inside a quoted string: never valid YAML
        return Step(kind, text[:cut].encode(), None, "YAML syntax error", how)
    if kind == "binary":
        data = draw(st.binary(max_size=200)) + b"\xff" + draw(st.binary(max_size=200))
        return Step(kind, data, None, "UTF-8", how)
    if kind == "shape":
        text, word = draw(st.sampled_from([
            ("- a\n- b\n", "mapping"),
            ("models: [GPT-4o, x]\n", "mapping"),
            ("enable: yes\n", "true or false"),
            ("models:\n  GPT-4o: 5\n", "mapping"),
            ("models:\n  GPT-4o:\n    mappin: x\n", "unknown key"),
            ("custom_models: {a: 1}\n", "list"),
            ("42\n", "mapping"),
            ("enable: true\nmodels:\n  a: {mapping: same}\n  b: {mapping: SAME}\n",
             "already used"),
        ]))
        return Step(kind, text.encode(), None, word, how)
    if kind == "expanding":
        levels = draw(st.integers(6, 12))
        width = draw(st.integers(9, 16))
        return Step(kind, laughs(levels, width).encode(), None, "aliases", how)
    if kind == "deep":
        flow = draw(st.booleans())
        levels = draw(st.integers(33, 600 if flow else 120))
        return Step(kind, deep(levels, flow=flow).encode(), None, "levels deep", how)
    return Step("delete", b"", DEFAULTS, None, how)


def _inside_quotes(text: str, i: int) -> bool:
    """True when a cut at ``i`` leaves a double-quoted string open."""
    return text[:i].count('"') % 2 == 1


def meaning_of(reg: ModelRegistry) -> dict[str, Any]:
    cfg = reg.current.config
    return {
        "enable": cfg.enable,
        "allow_unlisted": cfg.allow_unlisted,
        "models": {k: (e.mapping, e.enable, dict(e.parameters)) for k, e in cfg.models.items()},
        "custom": [c.id for c in cfg.custom_models],
    }


def write(path: Path, step: Step) -> None:
    if step.kind == "delete":
        if path.exists():
            path.unlink()
        return
    if step.how == "inplace" and path.exists():
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(step.data)
        return
    tmp = path.with_name(".models.yaml.new")
    tmp.write_bytes(step.data)
    os.replace(tmp, path)  # a new inode: a check always sees the change


async def run(history: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "models.yaml"
        reg = ModelRegistry(path)
        assert await reg.load_now()
        expected = DEFAULTS
        for n, step in enumerate(history):
            write(path, step)
            async with asyncio.timeout(10):  # bounded work for every file
                if step.how == "refresh":
                    await reg.refresh()
                else:
                    await reg.load_now()
            if step.expected is not None:
                expected = step.expected
                assert reg.last_error is None, (n, step, reg.last_error)
            else:
                assert reg.last_error is not None, (n, step)
                assert step.error in reg.last_error.message, (n, step, reg.last_error)
            assert meaning_of(reg) == expected, (n, step)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(steps(), min_size=1, max_size=8))
def test_the_last_valid_config_is_the_one_in_force(history: list[Step]) -> None:
    saved = registry_module.SETTLE
    registry_module.SETTLE = 0  # each step waits for nothing: the writes here are whole
    try:
        asyncio.run(run(history))
    finally:
        registry_module.SETTLE = saved

"""Saving from the admin page edits models.yaml minimally: comments, order, quotes and
indentation survive; only what changed is touched."""

from __future__ import annotations

import dataclasses
import random
import re
from types import MappingProxyType

import pytest

from poe2openai.modelconfig import CustomModel, ModelConfig, ModelEntry, parse_yaml
from poe2openai.registry import default_text, same_config
from poe2openai.yamledit import ConfigEdit, apply_config

HAND_WRITTEN = """\
# My poe2openai models
enable: true   # on

models:
  # --- OpenAI ---
  GPT-4o:
    mapping: gpt-4o   # what Cursor wants
  GPT-5:
    enable: false

  # --- Anthropic ---
  Claude-Sonnet-4:
    mapping: claude   # short
    tool_mode: xml

# private bots
custom_models:
- id: my-bot   # mine
  owned_by: me

api_token: "sk-abc"  # keep secret
"""

ORIGINAL_STYLE = """\
enable: true
models:
  claude-3.7-sonnet:
    mapping: claude-3-7-sonnet-latest
  gpt-3.5-turbo:
    enable: false
custom_models:
- id: my-private-bot
  owned_by: custom
  created: 1754000000
api_token: poe-key
use_v1_api: true
"""

FOUR_SPACES = """\
enable: true
models:
    GPT-4o:
        mapping: x
custom_models:
    -   id: a
"""

FLOW = "{enable: true, models: {GPT-4o: {mapping: x}}, custom_models: [a, b]}\n"


def edit(text: str, **changes: object) -> tuple[ModelConfig, str]:
    cfg = dataclasses.replace(parse_yaml(text), **changes)  # type: ignore[arg-type]
    out, result = ConfigEdit(text).apply(cfg)
    reread = parse_yaml(out)
    assert same_config(reread, cfg), out
    assert result == reread  # what a save puts in force is what the file says, in its order
    return cfg, out


def models(old: ModelConfig, **entries: ModelEntry | None) -> MappingProxyType[str, ModelEntry]:
    out = dict(old.models)
    for k, v in entries.items():
        k = k.replace("_", "-")
        if v is None:
            out.pop(k)
        else:
            out[k] = v
    return MappingProxyType(out)


@pytest.mark.parametrize("text", [HAND_WRITTEN, ORIGINAL_STYLE, FOUR_SPACES, FLOW, default_text(),
                                  "", "# just a note\n"],
                         ids=["hand", "original", "four", "flow", "template", "empty", "comment"])
def test_no_change_is_byte_identical(text: str) -> None:
    assert apply_config(text, parse_yaml(text)) == text


def test_change_alias_in_place_keeps_comments() -> None:
    old = parse_yaml(HAND_WRITTEN)
    _, out = edit(HAND_WRITTEN, models=models(old, **{"GPT-4o": ModelEntry(mapping="4o")}))
    # ruamel keeps the comment about where it was (its column may move by a space).
    assert re.sub(r" +#", " #", out) == re.sub(r" +#", " #", HAND_WRITTEN).replace(
        "mapping: gpt-4o #", "mapping: 4o #")


def test_disable_and_enable() -> None:
    old = parse_yaml(HAND_WRITTEN)
    _, out = edit(HAND_WRITTEN, models=models(old, **{
        "GPT-4o": ModelEntry(mapping="gpt-4o", enable=False), "GPT-5": ModelEntry()}))
    assert "  GPT-4o:\n    mapping: gpt-4o   # what Cursor wants\n    enable: false\n" in out
    # GPT-5 had only `enable: false`: the entry stays, now empty; the comment below it stays.
    assert "  GPT-5: {}\n\n  # --- Anthropic ---\n  Claude-Sonnet-4:" in out
    assert out.replace("    enable: false\n", "", 1).replace("  GPT-5: {}\n", "  GPT-5:\n"
                                                               "    enable: false\n") == HAND_WRITTEN


@pytest.mark.parametrize("victim", ["GPT-4o", "GPT-5", "Claude-Sonnet-4"])
def test_delete_an_entry_keeps_the_comments_around_it(victim: str) -> None:
    old = parse_yaml(HAND_WRITTEN)
    _, out = edit(HAND_WRITTEN, models=models(old, **{victim: None}))
    for line in ("# My poe2openai models", "enable: true   # on", "  # --- OpenAI ---",
                 "  # --- Anthropic ---", "# private bots", "- id: my-bot   # mine",
                 'api_token: "sk-abc"  # keep secret'):
        assert line in out, (victim, out)
    assert f"  {victim}:" not in out
    # Comments stay in order, before what they describe.
    assert out.index("# --- Anthropic ---") < out.index("Claude-Sonnet-4" if victim != "Claude-Sonnet-4" else "# private bots")
    assert out.index("# private bots") < out.index("custom_models:")


def test_delete_every_entry() -> None:
    _, out = edit(HAND_WRITTEN, models=MappingProxyType({}))
    assert "models: {}\n  # --- OpenAI ---\n" in out
    assert "# private bots\ncustom_models:" in out
    assert out.index("models: {}") < out.index("# --- Anthropic ---") < out.index("# private bots")


def test_add_entries_goes_before_the_next_sections_comment() -> None:
    old = parse_yaml(HAND_WRITTEN)
    _, out = edit(HAND_WRITTEN, models=models(old, Gemini=ModelEntry(
        reasoning_format="hidden", parameters=MappingProxyType({"thinking_budget": 0}))))
    assert ("    tool_mode: xml\n  Gemini:\n    reasoning_format: hidden\n    parameters:\n"
            "      thinking_budget: 0\n\n# private bots\ncustom_models:") in out


def test_custom_models_keep_their_list_style() -> None:
    _, out = edit(ORIGINAL_STYLE, custom_models=(
        CustomModel("my-private-bot", 1754000000, "custom"), CustomModel("new-bot", 5, None)))
    assert out == ORIGINAL_STYLE.replace("  created: 1754000000\n",
                                         "  created: 1754000000\n- id: new-bot\n  created: 5\n")
    _, out = edit(FOUR_SPACES, custom_models=(CustomModel("a"), CustomModel("b")))
    assert out.endswith("    -   id: a\n    -   id: b\n")
    _, out = edit(FLOW, custom_models=(CustomModel("b", owned_by="me"),))
    assert "custom_models: [{id: b, owned_by: me}]" in out or "id: b" in out


def test_remove_and_change_custom_models() -> None:
    _, out = edit(HAND_WRITTEN, custom_models=())
    assert "custom_models: []" in out and "# private bots" in out
    assert out.index("custom_models: []") < out.index("api_token")
    _, out = edit(HAND_WRITTEN, custom_models=(CustomModel("my-bot", None, "you"),))
    assert "- id: my-bot   # mine\n  owned_by: you\n" in out


def test_template_grows_into_a_real_file() -> None:
    text = default_text()
    _, out = edit(text, allow_unlisted=False, api_token="poe-secret",
                    models=MappingProxyType({"GPT-4o": ModelEntry(mapping="gpt-4o-mini")}),
                    custom_models=(CustomModel("mine", 1754000000, "me"),))
    # Every comment line of the template is still there, in the same order.
    comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    kept = [ln for ln in out.splitlines() if ln.lstrip().startswith("#")]
    assert kept == comments
    assert "models:\n  GPT-4o:\n    mapping: gpt-4o-mini\n" in out
    assert "custom_models:\n  - id: mine\n" in out
    assert out.rstrip().endswith('# api_token: "..."\napi_token: poe-secret')
    # And back: emptied again, it is the template once more (but for the switch).
    _, back = edit(out, allow_unlisted=True, api_token=None, models=MappingProxyType({}),
                   custom_models=())
    assert [ln for ln in back.splitlines() if ln.lstrip().startswith("#")] == comments
    assert parse_yaml(back) == parse_yaml(text)


def test_new_top_level_key_goes_after_enable() -> None:
    _, out = edit(ORIGINAL_STYLE, allow_unlisted=False)
    assert out.startswith("enable: true\nallow_unlisted: false\nmodels:\n")


def test_token_set_replace_and_remove() -> None:
    _, out = edit(HAND_WRITTEN, api_token="sk-new")
    assert "api_token: sk-new  # keep secret" in out or 'api_token: "sk-new"' in out
    _, out = edit(HAND_WRITTEN, api_token=None)
    assert "api_token" not in out and out.endswith("  owned_by: me\n")


def test_file_of_only_comments_keeps_them() -> None:
    _, out = edit("# notes about my setup\n", enable=True)
    assert out == "# notes about my setup\nenable: true\n"


_POOL = {
    "GPT-4o": [ModelEntry(mapping="gpt-4o"), ModelEntry(enable=False), ModelEntry(),
               ModelEntry(mapping="x", tool_mode="xml", parameters=MappingProxyType({"a": [1]}))],
    "GPT-5": [ModelEntry(enable=False), ModelEntry(replace_response=True)],
    "Claude-Sonnet-4": [ModelEntry(mapping="claude", tool_mode="xml"),
                        ModelEntry(reasoning_format="think")],
    "Gemini": [ModelEntry(mapping="gem"), ModelEntry(parameters=MappingProxyType({"b": {"c": 1}}))],
    "Zed": [ModelEntry()],
}


@pytest.mark.parametrize("seed", range(6))
def test_random_edit_sequences_always_mean_what_was_asked(seed: int) -> None:
    rng = random.Random(seed)
    text = HAND_WRITTEN
    comments = {"# My poe2openai models", "# private bots"}
    for _ in range(25):
        chosen = {k: rng.choice(v) for k, v in _POOL.items() if rng.random() < 0.6}
        customs = tuple(CustomModel(i, rng.choice([None, 7]), rng.choice([None, "me"]))
                        for i in ("my-bot", "other", "third") if rng.random() < 0.5)
        cfg = dataclasses.replace(
            parse_yaml(text), enable=rng.random() < 0.8, allow_unlisted=rng.random() < 0.5,
            models=MappingProxyType(chosen), custom_models=customs,
            api_token=rng.choice([None, "sk-abc", "sk-other"]))
        text, result = ConfigEdit(text).apply(cfg)
        assert same_config(parse_yaml(text), cfg), text
        assert result == parse_yaml(text), text
        for c in comments:
            assert c in text, text


def test_many_deletions_and_additions_at_once_keep_the_comments() -> None:
    """A save that drops every other model of a big map and adds as many (one pass,
    not one scan of the map per model)."""
    lines = ["enable: true", "models:"]
    for i in range(400):
        if i % 50 == 0:
            lines.append(f"  # --- block {i // 50} ---")
        lines += [f"  bot-{i}:", f"    mapping: m-{i}   # note {i}"]
    text = "\n".join(lines) + "\n# the end\n"
    old = parse_yaml(text)
    kept = {k: v for i, (k, v) in enumerate(old.models.items()) if i % 2}
    kept.update({f"new-{i}": ModelEntry(mapping=f"n-{i}") for i in range(200)})
    _, out = edit(text, models=MappingProxyType(kept))
    for b in range(8):
        assert f"  # --- block {b} ---" in out
    assert "# note 1\n" in out and "# note 0\n" not in out
    assert out.index("bot-399") < out.index("new-0") < out.index("# the end")

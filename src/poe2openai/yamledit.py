"""Apply a new model config to models.yaml as minimal round-trip edits.

A save from the admin page must not turn a hand-written, commented file into
a machine dump. So the file is loaded with ruamel.yaml's round-trip mode and
only what changed is touched: changed values are replaced in place, removed
entries are deleted, new ones are appended; every other key, comment, quote
style and the indentation stay as they were.

Comments are kept with what they describe by the container edits of
:mod:`.yamlnodes`. Pure: text in, text out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .modelconfig import (
    CustomModel,
    ModelConfig,
    ModelEntry,
    custom_to_json,
    entry_to_json,
    validate,
)
from .yamlload import load_yaml
from .yamlnodes import (
    Container,
    add_at_end,
    append,
    delete,
    dump,
    guess_indent,
    insert_after,
)

__all__ = ["ConfigEdit", "apply_config"]

_ENTRY_DEFAULTS = entry_to_json(ModelEntry())



# --------------------------------------------------------------------------- values


def _block_map(data: Mapping[str, Any]) -> CommentedMap:
    out = CommentedMap()
    for k, v in data.items():
        out[k] = _block(v)
    return out


def _block(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _block_map(value)
    if isinstance(value, list | tuple):
        seq = CommentedSeq()
        seq.extend(_block(v) for v in value)
        return seq
    return value


def _ensure_block(node: Container) -> None:
    if not len(node) and node.fa.flow_style():
        node.fa.set_block_style()


def _set_field(node: CommentedMap, key: str, new: Any, old: Any, default: Any,
               parent: tuple[Container, Any] | None) -> None:
    """Make ``node[key]`` mean ``new``: untouched if it already does, deleted when
    ``new`` is the default, replaced in place or appended otherwise."""
    if new == old:
        return
    if new == default or new is None:
        if key in node:
            delete(node, key, parent)
        return
    if key in node:
        node[key] = _block(new)
    else:
        _ensure_block(node)
        append(node, key, _block(new), parent)


def _entry_fields(entry: ModelEntry) -> dict[str, Any]:
    out = entry_to_json(entry)
    out["parameters"] = dict(entry.parameters)
    return out


def _update_entry(models: CommentedMap, key: str, old: ModelEntry | None, new: ModelEntry,
                  parent: tuple[Container, Any]) -> None:
    fields = _entry_fields(new)
    node = models.get(key) if key in models else None
    if not isinstance(node, CommentedMap):
        # New entry, or `name:` with no value: write only what differs from the defaults.
        value = CommentedMap()
        for name, v in fields.items():
            if v != _ENTRY_DEFAULTS[name]:
                value[name] = _block(v)
        if key in models:
            if old is not None and _entry_fields(old) == fields:
                return
            models[key] = value
        else:
            _ensure_block(models)
            append(models, key, value, parent)
        return
    before = _entry_fields(old) if old is not None else dict(_ENTRY_DEFAULTS)
    for name, v in fields.items():
        _set_field(node, name, v, before[name], _ENTRY_DEFAULTS[name], (models, key))


def _custom_fields(model: CustomModel) -> dict[str, Any]:
    return custom_to_json(model)


def _update_customs(doc: CommentedMap, old: tuple[CustomModel, ...],
                    new: tuple[CustomModel, ...]) -> None:
    wanted = {c.id: c for c in new}
    if "custom_models" not in doc or not isinstance(doc["custom_models"], CommentedSeq):
        if not new:
            return
        seq = CommentedSeq()
        if "custom_models" in doc:
            doc["custom_models"] = seq
        else:
            add_at_end(doc, "custom_models", seq)
        old = ()
    seq = doc["custom_models"]
    before = {c.id: c for c in old}
    # Delete from the end so indexes stay valid.
    for index in reversed(range(len(seq))):
        item = seq[index]
        item_id = item.get("id") if isinstance(item, Mapping) else item
        if not isinstance(item_id, str) or str(item_id) not in wanted:
            delete(seq, index, (doc, "custom_models"))
    present: set[str] = set()
    for index, item in enumerate(list(seq)):
        item_id = str(item.get("id") if isinstance(item, Mapping) else item)
        present.add(item_id)
        target = _custom_fields(wanted[item_id])
        current = _custom_fields(before.get(item_id, CustomModel(id=item_id)))
        if target == current:
            continue
        if not isinstance(item, CommentedMap):
            seq[index] = _block_map({k: v for k, v in target.items() if v is not None})
            continue
        for name, v in target.items():
            _set_field(item, name, v, current[name], None, (seq, index))
    for model in new:
        if model.id not in present:
            _ensure_block(seq)
            fields = {k: v for k, v in _custom_fields(model).items() if v is not None}
            append(seq, None, _block_map(fields), (doc, "custom_models"))


def _top_scalar(doc: CommentedMap, key: str, new: Any, old: Any, default: Any,
                after: str | None) -> None:
    if new == old:
        return
    if key in doc:
        if new is None:
            delete(doc, key, None)
        else:
            doc[key] = new
        return
    if new is None or new == default:
        return
    if after is not None and after in doc:
        insert_after(doc, after, key, new)
    else:
        add_at_end(doc, key, new)


# --------------------------------------------------------------------------- entry point


class ConfigEdit:
    """One edit of a models.yaml: the text is loaded once (``old`` is what it
    means), then :meth:`apply` changes it, minimally, to mean a new config.

    ``text`` must be a valid models.yaml (its current content, or the template
    for a file that does not exist yet). Raises ConfigError/YAMLError otherwise.
    """

    def __init__(self, text: str, source: str | None = None, *,
                 cancel: threading.Event | None = None) -> None:
        self.text = text
        self.source = source
        self._doc = load_yaml(text, source=source, cancel=cancel)
        self.old: ModelConfig = validate(self._doc, source=source)
        self._done = False

    def apply(self, new: ModelConfig) -> tuple[str, ModelConfig]:
        """The new text, and what it means (checked on the edited document). Once."""
        assert not self._done, "a ConfigEdit applies once"
        self._done = True
        text, doc, old = self.text, self._doc, self.old
        prefix = ""
        was_empty = doc is None
        if doc is None:  # empty, or comments only: keep those lines above the new content
            prefix = text if text.strip() else ""
            if prefix and not prefix.endswith("\n"):
                prefix += "\n"
            doc = CommentedMap()
        indent = guess_indent(doc, text)

        _top_scalar(doc, "enable", new.enable, old.enable, False, None)
        _top_scalar(doc, "allow_unlisted", new.allow_unlisted, old.allow_unlisted, True,
                    "enable")

        if new.models or (doc.get("models") is not None and old.models):
            models = doc.get("models")
            if not isinstance(models, CommentedMap):
                models = CommentedMap()
                if "models" in doc:
                    doc["models"] = models
                else:
                    add_at_end(doc, "models", models)
            order = list(models)
            # From the end, so the key before each one is still there when it goes.
            for pos in reversed(range(len(order))):
                if order[pos] not in new.models:
                    delete(models, order[pos], (doc, "models"),
                            order[pos - 1] if pos else None)
            for key, entry in new.models.items():
                _update_entry(models, key, old.models.get(key), entry, (doc, "models"))

        _update_customs(doc, old.custom_models, new.custom_models)
        _top_scalar(doc, "api_token", new.api_token, old.api_token, None, None)
        _top_scalar(doc, "use_v1_api", new.use_v1_api, old.use_v1_api, None, None)
        if was_empty and not len(doc):
            return text, validate(None, source=self.source)  # still nothing but comments
        result = validate(doc, source=self.source)
        out = prefix + dump(doc, indent)
        if out.endswith("\n\n") and not text.endswith("\n\n"):
            out = out.rstrip("\n") + "\n"
        return out, result


def apply_config(text: str, new: ModelConfig) -> str:
    """The text of models.yaml after changing it, minimally, to mean ``new``."""
    return ConfigEdit(text).apply(new)[0]

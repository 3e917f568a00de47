"""models.yaml on disk: its size limit, decoding and parsing, and the admin
page's save (minimal edits, written only if the file is still what the page
saw). Blocking: run these in a worker thread. No asyncio here."""

from __future__ import annotations

import dataclasses
import threading
from importlib import resources
from pathlib import Path
from typing import Final

from .configfile import (
    FileChanged,
    FileTooLarge,
    Signature,
    read_snapshot,
    replace_if_unchanged,
)
from .modelconfig import ConfigError, ModelConfig, parse_yaml
from .yamledit import ConfigEdit
from .yamlload import LoadCancelled

__all__ = ["KEEP", "MAX_FILE_SIZE", "ConfigConflict", "decode", "default_text", "parse_file",
           "same_config", "save_file"]

#: Largest models.yaml accepted: a bigger file is reported, not read (3,000
#: models take about 150 KB; loading 1 MiB already takes seconds and ~100 MB).
MAX_FILE_SIZE = 1024 * 1024


class ConfigConflict(Exception):
    """The file changed on disk since the admin page loaded it (HTTP 409)."""


class _Keep:
    """Marker: keep the api_token that is in the file."""


KEEP: Final = _Keep()


def too_large() -> str:
    return (f"larger than {MAX_FILE_SIZE // 1024 // 1024} MiB (a model map is a few "
            "kilobytes; 3,000 models take about 150 KB)")


def decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (bad byte at offset {exc.start})",
                          source=source) from None


def parse_file(data: bytes, source: str, *, cancel: threading.Event) -> ModelConfig:
    """The config in a file's bytes (stops early once ``cancel`` is set)."""
    return parse_yaml(decode(data, source), source, cancel=cancel)


def default_text() -> str:
    """The shipped, commented models.yaml (the start of a file the admin page creates)."""
    return resources.files("poe2openai").joinpath("data/models.yaml").read_text("utf-8")


def same_config(a: ModelConfig, b: ModelConfig) -> bool:
    """Equal in meaning (custom models compared by id, in any order)."""
    return (
        a.enable == b.enable and a.allow_unlisted == b.allow_unlisted
        and a.api_token == b.api_token and a.use_v1_api == b.use_v1_api
        and dict(a.models) == dict(b.models)
        and {c.id: c for c in a.custom_models} == {c.id: c for c in b.custom_models}
    )


def save_file(path: Path, config: ModelConfig, version: str, api_token: str | _Keep | None,
              *, error: ConfigError | None, cancel: threading.Event,
              ) -> tuple[ModelConfig, bytes, Signature]:
    """Write ``config`` into the file at ``path`` as minimal edits.

    ``version`` is the token of the content the page based its edits on. The
    file is read once, edited in memory, and replaced only if it still holds
    exactly what was read (checked and replaced in one step); otherwise
    :class:`ConfigConflict` and nothing is written. ``error``: why the file on
    disk is not in use, for the message. Returns what the new file means, its
    bytes and its signature.
    """
    name = path.name
    source = str(path)
    try:
        snap = read_snapshot(path, MAX_FILE_SIZE)
    except FileTooLarge:
        raise ConfigConflict(f"{name} is {too_large()}. Fix it in the file first; the page "
                             "cannot save over it.") from None
    if snap.version != version:
        if error is not None:
            raise ConfigConflict(f"{name} has an error ({error.describe()}). Fix it in the "
                                 "file first; the page cannot save over it.")
        raise ConfigConflict(f"{name} was changed on disk after this page loaded it. Reload "
                             "to see the changes; saving now would overwrite them.")
    text = decode(snap.data, source) if snap.data is not None else default_text()
    edit = ConfigEdit(text, source, cancel=cancel)
    final = dataclasses.replace(
        config,
        api_token=edit.old.api_token if isinstance(api_token, _Keep) else api_token,
        use_v1_api=edit.old.use_v1_api,
    )
    new_text, result = edit.apply(final)
    if not same_config(result, final):  # pragma: no cover
        raise RuntimeError("editing models.yaml gave a different result than asked for")
    data = new_text.encode("utf-8")
    if cancel.is_set():
        raise LoadCancelled  # nobody waits for this save any more: write nothing
    try:
        sig = replace_if_unchanged(path, data, snap.data, private=final.api_token is not None,
                                   max_size=MAX_FILE_SIZE)
    except FileChanged:
        raise ConfigConflict(f"{name} was changed on disk while this save was being made, so "
                             "nothing was written. Reload to see the changes; saving now "
                             "would overwrite them.") from None
    return result, data, sig

"""Round-trip YAML containers edited the way a reader expects: comments stay with what
they describe, and the file keeps its indentation.

ruamel keeps a comment that sits *between* two entries on the last leaf of the entry before
it. Deleting that entry (or appending after it) would lose or misplace the comment, which
usually describes what follows; :func:`delete`, :func:`append`, :func:`add_at_end` and
:func:`insert_after` move those lines to the right place. :func:`guess_indent` and
:func:`dump` write a document back in its own layout. Pure: no I/O.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

__all__ = ["Container", "add_at_end", "append", "delete", "dump", "guess_indent",
           "insert_after"]

Container = CommentedMap | CommentedSeq


# --------------------------------------------------------------------------- comments


def _token(text: str) -> CommentToken:
    return CommentToken(text, CommentMark(0), None)


def _post_index(container: Container) -> int:
    return 0 if isinstance(container, CommentedSeq) else 2


def _tail_slot(container: Container, key: Any) -> tuple[Container, Any]:
    """The node whose trailing comment follows ``container[key]`` in the file."""
    value = container[key]
    if isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
        return _tail_slot(value, _last_key(value))
    if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
        return _tail_slot(value, len(value) - 1)
    return container, key


def _get_post(container: Container, key: Any) -> CommentToken | None:
    slot = container.ca.items.get(key)
    if not slot:
        return None
    token = slot[_post_index(container)]
    return token if isinstance(token, CommentToken) else None


def _set_post(container: Container, key: Any, token: CommentToken | None) -> None:
    slot = container.ca.items.get(key)
    if slot is None:
        if token is None:
            return
        slot = container.ca.items[key] = [None, None, None, None]
    slot[_post_index(container)] = token
    value = container[key]
    if isinstance(value, CommentedMap | CommentedSeq) and not len(value):
        # ruamel writes the comment after `{}`/`[]` from the collection's own slot.
        value.ca.comment = [token, None]


def _take_following(container: Container, key: Any) -> str:
    """Cut the comment lines that follow ``container[key]`` (not its own end-of-line
    comment) out of the file and return them."""
    return _cut_following(*_tail_slot(container, key))


def _cut_following(owner: Any, leaf: Any) -> str:
    """Cut the comment lines after the end-of-line comment of ``owner[leaf]``."""
    token = _get_post(owner, leaf)
    if token is None or not isinstance(token.value, str):
        return ""
    text = token.value
    newline = text.find("\n")
    if newline < 0:
        return ""
    own, following = text[: newline + 1], text[newline + 1 :]
    if own.strip():
        token.value = own
    else:
        _set_post(owner, leaf, None)
    return following


def _give_following(container: Container, key: Any, following: str) -> None:
    """Put comment lines after ``container[key]`` (after its own comment, if any)."""
    if not following:
        return
    owner, leaf = _tail_slot(container, key)
    token = _get_post(owner, leaf)
    if token is not None and isinstance(token.value, str):
        token.value = token.value + ("" if token.value.endswith("\n") else "\n") + following
    else:
        _set_post(owner, leaf, _token("\n" + following))


_UNKNOWN: Any = object()


def _last_key(container: CommentedMap) -> Any:
    """The last key, in O(1) (a CommentedMap iterates in its OrderedDict order)."""
    return next(OrderedDict.__reversed__(container))


def delete(container: Container, key: Any, parent: tuple[Container, Any] | None,
            previous: Any = _UNKNOWN) -> None:
    """Delete an entry, keeping the comment lines that followed it. ``previous``:
    the key before ``key`` (None: it is the first), when the caller knows it."""
    following = _take_preceding(container, key) + _take_following(container, key)
    if isinstance(container, CommentedMap):
        if previous is _UNKNOWN:
            keys = list(container.keys())
            pos = keys.index(key)
            previous = keys[pos - 1] if pos > 0 else None
            has_previous = pos > 0
        else:
            has_previous = previous is not None
        del container[key]
        container.ca.items.pop(key, None)
    else:
        pos = int(key)
        del container[pos]
        previous = pos - 1
        has_previous = pos > 0
    if not len(container):
        # Written as `{}` / `[]`; flow style also makes ruamel put a comment that
        # follows it after the brackets rather than between key and brackets.
        container.fa.set_flow_style()
        # Comment lines that stood above the first entry go below the brackets.
        following = _take_leading(container, parent) + following
    if not following.strip():
        return
    if has_previous:
        _give_following(container, previous, following)
    elif len(container) and isinstance(container, CommentedMap):
        first = next(iter(container.keys()))
        slot = container.ca.items.setdefault(first, [None, None, None, None])
        pre = slot[1] if isinstance(slot[1], list) else []
        slot[1] = [_token(following), *pre]
    elif len(container):
        slot = container.ca.items.setdefault(0, [None, None, None, None])
        pre = slot[1] if isinstance(slot[1], list) else []
        slot[1] = [_token(following), *pre]
    elif parent is not None:
        pc, pk = parent
        token = _get_post(pc, pk)
        if token is not None and isinstance(token.value, str):
            token.value += following
        else:
            token = _token("\n" + following)
        _set_post(pc, pk, token)


def _take_preceding(container: Container, key: Any) -> str:
    """Cut the comment lines ruamel keeps as "before this entry" (they are kept
    when the entry goes: a comment is never dropped)."""
    slot = container.ca.items.get(key)
    if not slot or not isinstance(slot[1], list):
        return ""
    tokens, slot[1] = slot[1], None
    return "".join(t.value for t in tokens if isinstance(getattr(t, "value", None), str))


def _take_leading(container: Container, parent: tuple[Container, Any] | None) -> str:
    """Cut the comment lines that sit above a collection's first entry."""
    tokens: list[Any] = []
    comment = getattr(container.ca, "comment", None)
    if isinstance(comment, list) and len(comment) > 1 and isinstance(comment[1], list):
        tokens = comment[1]
        comment[1] = None
    if parent is not None and isinstance(parent[0], CommentedMap):
        slot = parent[0].ca.items.get(parent[1])
        if slot and isinstance(slot[3], list):
            tokens = tokens or slot[3]
            slot[3] = None
    text = ""
    for token in tokens:
        value = getattr(token, "value", None)
        if isinstance(value, str):
            indent = getattr(token, "column", 0) or 0
            text += (" " * indent if value.startswith("#") else "") + value
    return text


def append(container: Container, key: Any, value: Any,
            parent: tuple[Container, Any] | None) -> None:
    """Append an entry at the end; comment lines that followed the old last entry
    (they describe what comes after this block) move below the new one."""
    if len(container):
        last = _last_key(container) if isinstance(container, CommentedMap) \
            else len(container) - 1
        following = _take_following(container, last)
    elif parent is not None:
        following = _take_following_direct(*parent)
    else:
        following = ""
    if isinstance(container, CommentedMap):
        container[key] = value
    else:
        container.append(value)
        key = len(container) - 1
    _give_following(container, key, following)


def _take_following_direct(container: Container, key: Any) -> str:
    """Like :func:`_take_following` for an empty collection's own key."""
    return _cut_following(container, key)


def add_at_end(doc: CommentedMap, key: str, value: Any) -> None:
    """A new top-level key at the end of the file. Comment lines already at the
    end stay above it: they usually document it, as in the shipped template."""
    end = getattr(doc.ca, "end", None)
    if end and len(doc):
        text = "".join(t.value for t in end if isinstance(getattr(t, "value", None), str))
        doc.ca.end = []
        _give_following(doc, _last_key(doc), text)
    doc[key] = value


def insert_after(container: CommentedMap, after: Any, key: Any, value: Any) -> None:
    keys = list(container.keys())
    if after not in keys or after == keys[-1]:
        container[key] = value
        return
    following = _take_following(container, after)
    container.insert(keys.index(after) + 1, key, value)
    _give_following(container, key, following)


# --------------------------------------------------------------------------- layout


def guess_indent(doc: Any, text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file already uses them."""
    mapping, sequence, offset = 2, 4, 2
    lines = text.splitlines()

    def first_block_map(node: Any) -> tuple[Any, Any] | None:
        if isinstance(node, CommentedMap):
            for k, v in node.items():
                if isinstance(v, CommentedMap) and len(v) and not v.fa.flow_style():
                    return node, k
                found = first_block_map(v)
                if found:
                    return found
        return None

    found = first_block_map(doc)
    if found:
        parent, key = found
        try:
            child = parent[key]
            col = child.lc.key(next(iter(child.keys())))[1] - parent.lc.key(key)[1]
            if 1 <= col <= 8:
                mapping = col
        except (AttributeError, KeyError, TypeError, IndexError, StopIteration):
            pass
    if isinstance(doc, CommentedMap):
        for k, v in doc.items():
            if isinstance(v, CommentedSeq) and len(v) and not v.fa.flow_style():
                try:
                    line, col = v.lc.item(0)
                    dash = lines[line].index("-")
                    base = doc.lc.key(k)[1]
                    if 0 <= dash - base <= 8 and col > dash:
                        offset = dash - base
                        sequence = col - base
                except (AttributeError, KeyError, TypeError, IndexError, ValueError):
                    pass
                break
    return mapping, max(sequence, offset + 2), offset


def dump(doc: Any, indent: tuple[int, int, int]) -> str:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()

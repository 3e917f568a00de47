"""Pure tests of the media stage: inline_ref rewriting and appended file links."""

from __future__ import annotations

from typing import Any

import pytest

from poe2openai.translate.media import MAX_HOLD, MediaStage, markdown_link
from poe2openai.translate.response import (
    CONTENT,
    ERROR,
    FILE,
    REASONING,
    RESET,
    Accumulator,
    Out,
    ResponseTranslator,
)

URL = "https://pfst.cf2.poecdn.net/base/image/abc123.png"
URL2 = "https://pfst.cf2.poecdn.net/base/doc/report.pdf"


def file_ev(url: str = URL, ref: str | None = "ref1", name: str = "cat.png",
            content_type: str = "image/png") -> tuple[str, dict[str, Any]]:
    return ("file", {"url": url, "content_type": content_type, "name": name, "inline_ref": ref})


def text(s: str) -> tuple[str, dict[str, Any]]:
    return ("text", {"text": s})


def run(events: list[tuple[str, dict[str, Any]]], *, streaming: bool = True,
        batches: int = 1) -> tuple[str, list[list[Out]]]:
    """Feed events one per batch (or all at once) and return the content and the batches."""
    tr = ResponseTranslator(streaming=streaming, stages=[MediaStage()])
    acc = Accumulator()
    outs: list[list[Out]] = []
    if batches == 1:
        chunks = [[e] for e in events]
    else:
        chunks = [events]
    for chunk in chunks:
        out = tr.feed(chunk)
        outs.append(out)
        acc.add(out)
    if not tr.done:
        out = tr.finish()
        outs.append(out)
        acc.add(out)
    for out in outs:
        assert all(item[0] != FILE for item in out)
    return "".join(acc.content), outs


def test_reference_rewritten() -> None:
    content, _ = run([file_ev(), text("Here: ![a cat][ref1] done"), ("done", {})])
    assert content == f"Here: ![a cat]({URL}) done"


@pytest.mark.parametrize("cut", range(1, len("![a cat][ref1]")))
def test_reference_split_anywhere(cut: int) -> None:
    ref = "![a cat][ref1]"
    content, outs = run([file_ev(), text("Look " + ref[:cut]), text(ref[cut:] + " ok"),
                         ("done", {})])
    assert content == f"Look ![a cat]({URL}) ok"
    # The part before the reference was not held back.
    assert outs[1] and outs[1][0][1].startswith("Look")


def test_reference_split_over_many_events() -> None:
    content, _ = run([file_ev(), *[text(c) for c in "x [pic][ref1] y"], ("done", {})])
    assert content == f"x [pic]({URL}) y"


def test_unknown_ref_and_ordinary_brackets_pass_through() -> None:
    body = "a [link][other] and [x] and arr[0] ! end!"
    content, _ = run([file_ev(), *[text(c) for c in body], ("done", {})])
    # ref1 was never used, so the file is appended after a blank line.
    assert content == body + f"\n\n![cat.png]({URL})"


def test_hold_back_is_bounded() -> None:
    long_title = "[" + "t" * (MAX_HOLD * 2)
    _, outs = run([file_ev(), text("a " + long_title), text(" more"), ("done", {})])
    first = "".join(i[1] for i in outs[1] if i[0] == CONTENT)
    assert len("a " + long_title) - len(first) <= MAX_HOLD


def test_trailing_fragment_flushed_at_end() -> None:
    content, _ = run([file_ev(), text("![a cat][ref1]! and [unfinished"), ("done", {})])
    assert content == f"![a cat]({URL})! and [unfinished"


def test_files_without_ref_appended_each_after_blank_line() -> None:
    content, _ = run([file_ev(ref=None), file_ev(URL2, ref=None, name="report.pdf",
                                                 content_type="application/pdf"),
                      text("Here you go."), ("done", {})])
    assert content == f"Here you go.\n\n![cat.png]({URL})\n\n[report.pdf]({URL2})"


def test_no_text_only_files() -> None:
    content, _ = run([file_ev(ref=None), ("done", {})])
    assert content == f"![cat.png]({URL})"


def test_url_already_in_text_is_not_repeated() -> None:
    content, _ = run([file_ev(ref=None), text(f"See ![x]({URL})\n"), ("done", {})])
    assert content == f"See ![x]({URL})\n"


def test_duplicate_file_events_listed_once() -> None:
    content, _ = run([file_ev(ref=None), file_ev(ref=None), text("a\n"), ("done", {})])
    assert content == f"a\n\n![cat.png]({URL})"


def test_non_http_urls_dropped() -> None:
    content, _ = run([file_ev("javascript:alert(1)", ref="r"), text("![x][r]"), ("done", {})])
    assert content == "![x][r]"


@pytest.mark.parametrize("streaming", [True, False])
def test_replace_response_media_bot(streaming: bool) -> None:
    """An image bot: placeholder, file, final Markdown as replace_response, done."""
    events = [("replace_response", {"text": "Generating image..."}),
              file_ev(ref="img0"),
              ("replace_response", {"text": "![a cat][img0]"}),
              ("done", {})]
    content, _ = run(events, streaming=streaming)
    assert content == f"![a cat]({URL})"


def test_replace_response_after_streamed_text_nonstream_reset() -> None:
    events = [text("Working on it"), file_ev(ref="img0"),
              ("replace_response", {"text": "Done: ![cat][img0]"}), ("done", {})]
    content, _ = run(events, streaming=False)
    assert content == f"Done: ![cat]({URL})"
    content, _ = run(events, streaming=True)
    assert content == f"Working on it\n\nDone: ![cat]({URL})"


def test_reset_forgets_that_a_ref_was_shown() -> None:
    stage = MediaStage()
    out = stage.feed([(FILE, URL, "image/png", "cat.png", "r"), (CONTENT, "![c][r]"),
                      (RESET,), (CONTENT, "plain")])
    assert out == [(CONTENT, f"![c]({URL})"), (RESET,), (CONTENT, "plain")]
    assert stage.flush() == [(CONTENT, f"\n\n![cat.png]({URL})")]


def test_other_items_pass_and_release_held_text_in_order() -> None:
    stage = MediaStage()
    out = stage.feed([(FILE, URL, "image/png", "cat.png", "r"), (CONTENT, "x ![c]"),
                      (REASONING, "hmm"), (CONTENT, "[r]")])
    assert out == [(CONTENT, "x "), (CONTENT, "![c]"), (REASONING, "hmm")]
    # "[r]" may still be the text of a reference; the end of the answer releases it.
    assert stage.flush() == [(CONTENT, "[r]"), (CONTENT, f"\n\n![cat.png]({URL})")]


def test_no_files_means_no_holding() -> None:
    stage = MediaStage()
    assert stage.feed([(CONTENT, "a [b][c")]) == [(CONTENT, "a [b][c")]
    assert stage.flush() == []


def test_error_releases_held_text_first_and_appends_nothing() -> None:
    _, outs = run([file_ev(), text("x ![a]"), ("error", {"text": "boom", "allow_retry": False})])
    assert outs[-1] == [(CONTENT, "![a]"), (ERROR, outs[-1][-1][1])]


def test_separator_after_trailing_newlines() -> None:
    stage = MediaStage()
    stage.feed([(FILE, URL, "image/png", "n", None), (CONTENT, "a\n\n")])
    assert stage.flush() == [(CONTENT, f"![n]({URL})")]
    stage = MediaStage()
    stage.feed([(FILE, URL, "image/png", "n", None), (CONTENT, "a\n")])
    assert stage.flush() == [(CONTENT, f"\n![n]({URL})")]


def test_markdown_link() -> None:
    assert markdown_link("a [b]", "https://x/y z(1).png", "IMAGE/PNG") == \
        r"![a \[b\]](https://x/y%20z%281%29.png)"
    assert markdown_link("", "https://x/dir/r.pdf", "application/pdf") == "[r.pdf](https://x/dir/r.pdf)"
    assert markdown_link("", "https://x/", "") == "[file](https://x/)"


def test_file_event_with_other_index_or_no_url_ignored() -> None:
    content, _ = run([("file", {"url": URL, "index": 1, "inline_ref": None}),
                      ("file", {"name": "x"}), text("hi"), ("done", {})])
    assert content == "hi"

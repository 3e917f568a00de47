"""Text kept for a whole answer is merged as it comes, so an open stream does not hold one
string per Poe event; joining it gives exactly the text."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from poe2openai.translate.items import CONTENT, REASONING, Accumulator, add_text


@given(st.lists(st.text(max_size=30), max_size=300))
def test_joined_parts_are_the_text(pieces: list[str]) -> None:
    parts: list[str] = []
    for piece in pieces:
        add_text(parts, piece)
    assert "".join(parts) == "".join(pieces)
    # Lengths fall strictly from the front: few pieces, whatever came.
    assert all(len(a) > len(b) for a, b in pairwise(parts))


def test_an_answer_of_many_events_is_a_few_strings() -> None:
    acc = Accumulator()
    for i in range(1000):
        acc.add([(CONTENT, f"w{i % 10} "), (REASONING, "r")])
    assert "".join(acc.content) == "".join(f"w{i % 10} " for i in range(1000))
    assert "".join(acc.reasoning) == "r" * 1000
    assert len(acc.content) <= 11 and len(acc.reasoning) <= 11  # not 1000

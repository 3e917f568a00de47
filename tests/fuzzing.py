"""Property-based fuzzing of an API face through the real server (hypothesis).

A face is a path, a strategy for request bodies and the shape of its errors. Each
example is sent as it is (raw JSON text, so that it can nest deeper than an encoder
writes or hold numbers like ``1e400``) to the proxy in front of the fake Poe, and then:

* the answer is not a 5xx, and the connection is not dropped;
* a 4xx carries the face's error envelope, and uploaded nothing (the whole request is
  checked before any upload);
* every response header is sendable (visible ASCII);
* every query the proxy sent on to Poe passed the fake's strict checks;
* the same connection still answers a normal request.

To fuzz another face, give it a :class:`Face` in its own test module: a strategy of
valid bodies, the places its parser reads (:func:`slot`), a normal request, and for
faces with another error shape (Anthropic's Messages), an ``error_envelope`` check::

    RESPONSES = Face("/v1/responses", mutated(responses_bodies(), RESPONSES_SLOTS),
                     normal={"model": "GPT-4o", "input": "Hi"}, seeds=[...])

    @FUZZ
    @RESPONSES.seeded
    @given(body=RESPONSES.bodies)
    async def test_responses_survive_fuzzing(proxy, fake_poe, body):
        await RESPONSES.check(proxy, fake_poe, body)

The generic strategies here (:func:`odd_text`, :func:`weird`, :func:`deep_values`,
:func:`huge_numbers`…) make the damage; :func:`mutated` puts it into valid bodies, mostly
at the given slots. Note for strategies: hypothesis favours the first of several choices
and small, empty values, so put the rich shapes first (see :func:`weighted`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, example, settings
from hypothesis import strategies as st

from tests.fake_poe import FakePoe
from tests.hardening import assert_headers_sendable
from tests.helpers import AUTH

# Hypothesis' pytest plugin imports this module when an example fails, to suggest a patch;
# with some libcst versions that import warns, and filterwarnings=error would then turn
# the report of the failing example into an internal error. Imported here, quietly.
with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401

#: Bounded and reproducible: a fixed number of examples from a derandomized run, no
#: example database, no deadline (a loaded CI machine must not fail a test for slowness),
#: no "explain" phase (it traces every line of the server: minutes instead of seconds).
#: The server is shared by all examples of a test (that is the point: it must survive them).
FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


# --- raw JSON -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Raw:
    """JSON text put into a body as it is (deep nesting, ``1e400``, ``NaN``…)."""

    text: str


def encode(value: Any) -> bytes:
    """``value`` as JSON text, :class:`Raw` parts inserted verbatim."""
    raws: dict[str, str] = {}
    nonce = secrets.token_hex(8)

    def placeholder(obj: Any) -> str:
        if isinstance(obj, Raw):
            key = f"@@{nonce}:{len(raws)}@@"
            raws[key] = obj.text
            return key
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=placeholder)
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw, 1)
    return text.encode("utf-8", "surrogatepass")


def deep(depth: int, kind: str = "object") -> Raw:
    """A value nested ``depth`` levels deep."""
    if kind == "object":
        return Raw('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1))
    return Raw("[" * depth + "]" * depth)


# --- generic strategies -------------------------------------------------------------------

#: Characters that break things: controls, separators, quotes, escapes, non-ASCII.
_ODD = st.one_of(
    st.sampled_from(list("\x00\x01\t\n\r\x1b\x7f\x85\u2028\ufeff ,;%\"'\\<>&=:{}[]é漢😀")),
    st.characters(codec="utf-8"),
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked in proportion to its weight (hypothesis favours the
    first one more than that: put the richest first)."""
    table = [s for w, s in choices for _ in range(w)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


#: Names and strings known to break things: header and line injection, separators, escapes,
#: NUL, non-ASCII, a lone surrogate's neighbours, the empty string, a long one.
NASTY_STRINGS: Final = ("x\ny", "\r\nSet-Cookie: a=b", "\x00", "a,b", "a, b", "100%", "%0A",
                        "é", "漢字", "😀", "tab\there", "\x7f", "\u2028", " ", "", "a" * 300,
                        "\"quoted\"", "<b>", "../../etc/passwd", "\\")


def odd_text(max_size: int = 12) -> st.SearchStrategy[str]:
    """Strings for names and values: mostly known-nasty ones (generated text favours
    plain characters), otherwise generated from odd characters."""
    return weighted((2, st.sampled_from(NASTY_STRINGS)), (1, st.text(_ODD, max_size=max_size)))


def huge_numbers() -> st.SearchStrategy[Any]:
    """Numbers at and past the limits of 32/64-bit integers and doubles (valid JSON)."""
    return st.sampled_from([
        1e300, 1e20, 2**64, 2**63, 2**31, 10**30, -1e300, 1.7976931348623157e308, -(2**63) - 1,
        2**64 - 1, 2**53 + 1, 2**31 - 1, 5e-324, -0.0, 0.5, 1.0, 0, -1,
    ])


def bad_numbers() -> st.SearchStrategy[Raw]:
    """Number literals a JSON parser may refuse (the whole body is then malformed)."""
    return st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("NaN"), Raw("Infinity"),
                            Raw("1" * 5000), Raw("-"), Raw("01")])


def deep_values() -> st.SearchStrategy[Raw]:
    return st.builds(deep, st.sampled_from([300, 255, 1000, 129, 256, 500, 1023, 1024, 128,
                                            127, 200, 253, 254, 1025, 2, 64]),
                     st.sampled_from(["object", "array"]))


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6),
                        st.floats(allow_nan=False, allow_infinity=False), odd_text(),
                        huge_numbers())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(odd_text(6), inner, max_size=3)),
        max_leaves=max_leaves)


def weird() -> st.SearchStrategy[Any]:
    """A value of the wrong type, too big, too deep, or full of odd characters."""
    return weighted(
        (3, st.sampled_from([True, None, 7, "x", [], {}, ["user"], {"a": 1}, [None], False, 0,
                             "", {"": None}])),
        (3, deep_values()), (2, huge_numbers()), (2, odd_text(40)), (2, json_values()),
        (1, st.one_of(bad_numbers(), st.just("\ud800 lone surrogate"))))


def optional(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


#: A place in a body, for :func:`mutated`: keys, ``"*"`` for any element of a list, and
#: ``"?"`` for a new key with an odd name; with the values to put there.
@dataclass(frozen=True)
class Slot:
    path: tuple[str, ...]
    values: st.SearchStrategy[Any]


def slot(*path: str, values: st.SearchStrategy[Any] | None = None, weight: int = 1
         ) -> tuple[Slot, ...]:
    """A :class:`Slot` (``weight`` times, to be chosen that much more often); its values
    are :func:`weird` unless given."""
    return (Slot(path, weird() if values is None else values),) * weight


def slots(*groups: tuple[Slot, ...]) -> tuple[Slot, ...]:
    """The slots of several :func:`slot` calls, as one tuple for :func:`mutated`."""
    return tuple(s for group in groups for s in group)


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[Any], slots: tuple[Slot, ...] = (),
            max_mutations: int = 3) -> Any:
    """A body from ``bodies`` with 1 to ``max_mutations`` changes: mostly a value put at
    one of the ``slots`` (the fields the face reads: bugs hide where the parser looks),
    otherwise anywhere (a value replaced by a :func:`weird` one, a key removed or added).

    One change at a time on an otherwise valid body is what reaches deep into the
    server; several at once find the interactions.
    """
    body = draw(bodies)
    for _ in range(draw(st.integers(1, max_mutations))):
        placed = _NO_FIT
        if slots and draw(st.integers(0, 7)) < 7:  # (hypothesis favours small numbers)
            for _try in range(4):  # a slot in a list the body does not have: another one
                chosen = draw(st.sampled_from(slots))
                placed = _put(draw, body, chosen.path, chosen.values)
                if placed is not _NO_FIT:
                    break
        body = _mutate(draw, body) if placed is _NO_FIT else placed
    return body


class _NoFit:
    """:func:`_put`'s answer when the slot does not fit the body."""


_NO_FIT: Any = _NoFit()


def _put(draw: st.DrawFn, value: Any, path: tuple[str, ...],
         values: st.SearchStrategy[Any]) -> Any:
    """``value`` with a value from ``values`` at ``path`` (missing object keys are
    created), or ``_NO_FIT`` when the path does not fit (a list is missing or empty)."""
    if not path:
        return draw(values)
    step, rest = path[0], path[1:]
    if step == "*":  # any element where the rest of the path fits, from a random start
        if not isinstance(value, list) or not value:
            return _NO_FIT
        start = draw(st.integers(0, len(value) - 1))
        for k in range(len(value)):
            i = (start + k) % len(value)
            inner = _put(draw, value[i], rest, values)
            if inner is not _NO_FIT:
                return [*value[:i], inner, *value[i + 1:]]
        return _NO_FIT
    if not isinstance(value, dict):
        if value is not None:
            return _NO_FIT
        value = {}
    key = draw(odd_text(8)) if step == "?" else step
    inner = _put(draw, value.get(key), rest, values)
    return _NO_FIT if inner is _NO_FIT else {**value, key: inner}


def _mutate(draw: st.DrawFn, value: Any, *, root: bool = True) -> Any:
    # Below the root, stop at a random depth; the root itself is never replaced.
    if isinstance(value, dict) and value and (root or draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["descend", "descend", "replace", "delete", "add"]))
        out = dict(value)
        if action == "descend":
            out[key] = _mutate(draw, value[key], root=False)
        elif action == "replace":
            out[key] = draw(weird())
        elif action == "delete":
            del out[key]
        else:
            out[draw(odd_text(8))] = draw(weird())
        return out
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        i = draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        out_list[i] = _mutate(draw, value[i], root=False) if draw(st.booleans()) \
            else draw(weird())
        return out_list
    return draw(weird())


# --- the face and its checks --------------------------------------------------------------

def openai_error(body: Any) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    assert err["param"] is None or isinstance(err["param"], str)


@dataclass
class Face:
    path: str
    bodies: st.SearchStrategy[Any]
    #: A request that must succeed after each example (on the same connection).
    normal: dict[str, Any]
    #: Bodies always tried first (hypothesis' explicit examples): the shapes of bugs found
    #: before, so that a random run that misses them still covers them.
    seeds: list[Any] = field(default_factory=list)
    #: Asserts that a parsed 4xx body is this face's error envelope.
    error_envelope: Callable[[Any], None] = openai_error
    headers: dict[str, str] = field(default_factory=lambda: dict(AUTH))

    def seeded(self, test: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator (outside ``@given(body=...)``): the :attr:`seeds` as explicit examples."""
        for seed in reversed(self.seeds):
            test = example(body=seed)(test)
        return test

    async def check(self, proxy: TestClient[Any, Any], fake: FakePoe, body: Any) -> None:
        seen, uploads = len(fake.requests), len(fake.uploads)
        resp = await proxy.post(self.path, data=encode(body), headers={
            **self.headers, "Content-Type": "application/json"})
        raw = await resp.read()  # a dropped connection or a broken body fails here
        assert resp.status < 500, (resp.status, raw[:500])
        assert_headers_sendable(resp)
        if resp.status >= 400:
            assert resp.content_type == "application/json", resp.content_type
            self.error_envelope(json.loads(raw))
            assert len(fake.uploads) == uploads, "a refused request uploaded files"
        for rec in fake.requests[seen:]:
            if rec.is_bot:
                assert rec.status == 200, (rec.status, rec.body)
        await self.answers_normally(proxy)

    async def answers_normally(self, proxy: TestClient[Any, Any]) -> None:
        resp = await proxy.post(self.path, json=self.normal, headers=self.headers)
        assert resp.status == 200, (resp.status, await resp.text())
        await resp.read()

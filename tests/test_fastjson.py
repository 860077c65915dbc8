"""engine/fastjson.py: the orjson fast paths read and write exactly what the strict parser and the stdlib write."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import render
from engine.fastjson import LeadDecoder, compact_bytes
from engine.jsonstrict import Decoder

STRICT = Decoder(nonfinite=True).decode
FAST = LeadDecoder().decode


def outcome(decode: Any, text: str | bytes) -> tuple[Any, ...]:
    """A value by its repr (so 1 and 1.0, 0.0 and -0.0 differ) or an error by everything a caller reads."""
    try:
        value = decode(text)
    except (ValueError, RecursionError) as exc:
        return ("error", type(exc).__name__, str(exc), getattr(exc, "kind", None), getattr(exc, "path", None))
    return ("value", repr(value))


HOSTILE = [
    '{"id": "a", "id": "b"}', '{"id" :"a","id"  :  "b"}', '{"a": {"b": 1, "b": 2}}',
    '{"a": [{"b": 1}, {"c": {"d": "e", "d": "f"}}]}', '{"a": "x:y", "a": "z"}', '{"x": "\\":", "x": 1}',
    '{"a\\u003a": 1, "a:": 2}', '{"a\\u003A": "b", "c": 1}', '{"k\\u0022": 1, "k\\"": 2}',
    '{"n": 123456789012345678901234567890}', '{"n": -9223372036854775809}', '{"n": 18446744073709551615}',
    '{"n": 9223372036854775807}', '{"x": NaN}', '{"x": -Infinity}', '{"x": 1e400}', '{"x": -0}', '{"x": -0.0}',
    '{"x": 1E5}', '{"x": 1.50}', '{"id": "\\ud800"}', '{"id": "\\ud83d\\ude00"}', '{"\\udc00": 1}',
    "\ufeff{}", '{"a": 1,}', '{"a" 1}', "[1, 2", "{oops", '"just a string"', "[1, 2, 3]", "null", "",
    "[" * 300 + "]" * 300, "[" * 100_000, '{"a": "tab\there"}', '{"a": "\\/"}', '{"a":1}  \n',
    '{"a": "caf\udce9"}',  # an undecodable byte read with surrogateescape
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_documents_read_as_the_strict_parser_reads_them(text: str) -> None:
    assert outcome(FAST, text) == outcome(STRICT, text)


@pytest.mark.parametrize("data", [b'{"id": "caf\xe9"}', b'{"id": "\xed\xa0\x80"}', b'{"a": 1, "a": 2}', b'{"a": 1}'])
def test_bytes_read_as_the_strict_parser_reads_them(data: bytes) -> None:
    assert outcome(FAST, data) == outcome(STRICT, data)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=20)


@st.composite
def documents(draw: Any) -> str:
    """A JSON text in one of several styles, sometimes with a key repeated somewhere inside."""
    value = draw(json_values)
    style = draw(st.sampled_from([{}, {"ensure_ascii": False}, {"separators": (",", ":")},
                                  {"indent": 1}, {"separators": (" ,", " : ")}]))
    text = json.dumps(value, **style)
    at = text.find('{"')
    end = text.find('"', at + 2) if at >= 0 else -1
    if draw(st.booleans()) and end > 0:
        key = text[at + 1:end + 1]  # the first key of some object, quoted (a cut-off escape makes it malformed)
        text = text[:at + 1] + key + ": 0, " + text[at + 1:]
    return text


@settings(max_examples=400, deadline=None)
@given(documents())
def test_generated_documents_read_as_the_strict_parser_reads_them(text: str) -> None:
    assert outcome(FAST, text) == outcome(STRICT, text)
    data = text.encode("utf-8", "surrogatepass")
    assert outcome(FAST, data) == outcome(STRICT, data)


def stdlib_compact(data: Any) -> bytes:
    return render.to_json(data, pretty=False).encode("utf-8", "surrogatepass")


TINY = [1e-5, -1e-5, 9.99e-5, 1e-4, 1e-9, 2.5e-8, 1e-10, 5e-324, 1e16, 1.5e300, 0.1, -0.0, 65.0]


@pytest.mark.parametrize("value", TINY + [[x] for x in TINY] + [{"a": 1e-7, "b": "page-1e-5"}])
def test_floats_are_written_as_the_stdlib_writes_them(value: Any) -> None:
    assert compact_bytes(value) == stdlib_compact(value)


@pytest.mark.parametrize("value", [{"id": "a\udcff"}, 2**64, [2**100, "x"], {"s": "\x00\x1f\x7f\u2028 é \"\\ /"}])
def test_what_orjson_refuses_or_escapes_is_written_as_the_stdlib_writes_it(value: Any) -> None:
    assert compact_bytes(value, "surrogatepass") == stdlib_compact(value)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_generated_values_are_written_as_the_stdlib_writes_them(value: Any) -> None:
    assert compact_bytes(value, "surrogatepass") == stdlib_compact(value)

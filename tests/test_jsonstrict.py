"""engine/jsonstrict.py: the one strict JSON parser (bundles, signatures, request bodies, leads)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

import cli
from conftest import MINIMAL
from engine.jsonstrict import Decoder, StrictJSONError, loads

NOW = "2026-11-23T09:00:00+10:00"


@pytest.mark.parametrize(
    ("data", "path", "key"),
    [
        ('{"id": "a", "id": "b"}', "id", "id"),
        ('{"id": "x", "company": {"name": "A", "name": "B"}}', "company.name", "name"),
        ('{"activities": [{}, {"at": 1, "at": 2}]}', "activities[1].at", "at"),
        ('{"a.b": 1, "a.b": 2}', "a.b", "a.b"),
    ],
)
def test_a_repeated_key_is_an_error_naming_it(data: str, path: str, key: str) -> None:
    with pytest.raises(StrictJSONError) as info:
        loads(data)
    assert (info.value.kind, info.value.path, info.value.key) == ("duplicate-key", path, key)
    assert str(info.value) == f"the key '{key}' appears more than once"


@pytest.mark.parametrize("text", ['{"x": NaN}', '[Infinity]', '{"x": -Infinity}'])
def test_nan_and_infinity_are_rejected_unless_left_to_the_lead_schema(text: str) -> None:
    with pytest.raises(StrictJSONError) as info:
        loads(text)
    assert info.value.kind == "constant" and "is not valid JSON" in str(info.value)
    assert loads(text, nonfinite=True) is not None


@pytest.mark.parametrize("data", [b'{"id": "caf\xe9"}', b'{"id": "\xed\xa0\x80"}', '{"id": "\\ud800"}',
                                  '{"id": "a\udcff"}', '{"\\udc00": 1}'])
def test_invalid_utf8_and_lone_surrogates_are_rejected(data: bytes | str) -> None:
    with pytest.raises(StrictJSONError) as info:
        loads(data)
    assert info.value.kind == "utf-8" and "not valid UTF-8" in str(info.value)


def test_valid_documents_and_a_reused_decoder() -> None:
    assert loads(b'{"e": "\\ud83d\\ude00", "n": [1, 2.5, null]}') == {"e": "\U0001F600", "n": [1, 2.5, None]}
    decode = Decoder().decode
    with pytest.raises(StrictJSONError):
        decode('{"a": 1, "a": 1}')
    assert decode('{"a": 1}') == {"a": 1}  # no state left over from the failed document
    with pytest.raises(ValueError):
        decode("{")
    with pytest.raises(StrictJSONError) as info:
        decode("[" * 100_000)
    assert info.value.kind == "depth"


def test_cli_single_lead_with_a_repeated_key_exits_1(tmp_path) -> None:
    lead = tmp_path / "lead.json"
    lead.write_text('{"id": "a", "id": "b"}')
    runner = CliRunner()
    for args in (["eval", str(lead)], ["expr", "lead.id", "--lead", str(lead)]):
        r = runner.invoke(cli.cli, [*args, "--now", NOW, "--policies", str(MINIMAL / "policies")])
        assert r.exit_code == 1, r.output
        assert "the key 'id' appears more than once" in r.stderr


# ---------------------------------------------------------------- issue 17: linear in the input size


class _CountingKey(str):
    """A key that counts comparisons, to show duplicate detection is one pass (not pairwise)."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountingKey.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_duplicate_key_detection_is_one_pass_over_the_keys() -> None:
    from engine.jsonstrict import Decoder

    n = 5_000
    pairs = [(_CountingKey(f"k{i}"), i) for i in range(n)] + [(_CountingKey("k7"), 0)]
    _CountingKey.comparisons = 0
    obj = Decoder()._object(pairs)
    assert obj.repeated == "k7"  # type: ignore[attr-defined]
    assert _CountingKey.comparisons < 4 * n  # pairwise would be ~n²/2 = 12,500,000


def test_sixty_thousand_keys_are_accepted_or_rejected_by_key() -> None:
    from engine.jsonstrict import StrictJSONError, loads

    body = "{" + ",".join(f'"k{i}":1' for i in range(60_000))
    assert len(loads(body + "}")) == 60_000
    with pytest.raises(StrictJSONError) as info:
        loads('{"lead":' + body + ',"k59999":2}}')
    assert info.value.kind == "duplicate-key" and info.value.path == "lead.k59999"


def test_big_documents_leave_the_garbage_collector_as_they_found_it() -> None:
    import gc

    from engine.jsonstrict import GC_PAUSE_MIN_LENGTH, loads

    big = "[" + ",".join(["[[1]]"] * (GC_PAUSE_MIN_LENGTH // 5)) + "]"
    assert gc.isenabled()
    loads(big)
    assert gc.isenabled()
    gc.disable()
    try:
        loads(big)
        assert not gc.isenabled()
    finally:
        gc.enable()


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.sampled_from(["a", "b", "c", "d", "k1", "é"]), min_size=1, max_size=12))
def test_the_first_repeated_key_in_document_order_is_named(keys: list[str]) -> None:
    """Property: the reported key is the first one (in document order) that repeats an earlier one."""
    body = "{" + ",".join(f'"{k}":{i}' for i, k in enumerate(keys)) + "}"
    seen: set[str] = set()
    first = next((k for k in keys if k in seen or seen.add(k)), None)  # type: ignore[func-returns-value]
    if first is None:
        assert loads(body) == {k: i for i, k in enumerate(keys)}
    else:
        with pytest.raises(StrictJSONError) as info:
            loads('{"x":[' + body + "]}")
        assert info.value.key == first and info.value.path == f"x[0].{first}"

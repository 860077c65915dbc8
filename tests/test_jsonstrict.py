"""engine/jsonstrict.py: the one strict JSON parser (bundles, signatures, request bodies, leads)."""

from __future__ import annotations

import pytest
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

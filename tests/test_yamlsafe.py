"""engine/yamlsafe.py: plain data + marks out of untrusted YAML, every problem a located Diagnostic."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import yamlsafe
from engine.errors import Diagnostic, Location, PolicyError
from engine.yamlsafe import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_DIAGNOSTICS,
    MAX_YAML_KEY_CHARS,
    MAX_YAML_NODES,
    MAX_YAML_NUMBER_CHARS,
    Marks,
    YamlError,
    load_yaml,
)

FIXTURES = Path(__file__).parent / "fixtures" / "yaml"
TIME_BOUND = 5.0  # seconds: catches a hang or quadratic blow-up on hostile input (linear cost is ~0.1 s); not a performance goal


def errors(source: str | bytes, file: str = "p.yaml") -> list[Diagnostic]:
    with pytest.raises(YamlError) as info:
        load_yaml(source, file)
    assert info.value.diagnostics, "YamlError without diagnostics"
    return info.value.diagnostics


def codes(source: str | bytes) -> list[str]:
    return [d.code for d in errors(source)]


def where(d: Diagnostic) -> tuple[str, int, int]:
    return d.code, d.location.line, d.location.column


def rejected_fast(source: str | bytes) -> list[Diagnostic]:
    start = time.perf_counter()
    found = errors(source)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND, f"took {elapsed:.2f}s"
    return found


# ------------------------------------------------------------------------------ one fixture per code

FIXTURE_CASES = [
    ("yaml001_syntax.yaml", "YAML001", 4, 14),
    ("yaml002_duplicate_key.yaml", "YAML002", 6, 5),
    ("yaml003_python_tag.yaml", "YAML003", 4, 11),
    ("yaml004_alias.yaml", "YAML004", 2, 11),
    ("yaml005_tab.yaml", "YAML005", 4, 1),
    ("yaml006_invalid_utf8.yaml", "YAML006", 3, 10),
    ("yaml006_nul.yaml", "YAML006", 4, 13),
    ("yaml007_depth.yaml", "YAML007", 2, 9 + MAX_YAML_DEPTH),
    ("yaml008_two_documents.yaml", "YAML008", 3, 1),
    ("yaml009_empty.yaml", "YAML009", 1, 1),
    ("yaml009_top_level_list.yaml", "YAML009", 1, 1),
    ("yaml010_complex_key.yaml", "YAML010", 3, 5),
    ("yaml011_non_finite.yaml", "YAML011", 2, 6),
]


@pytest.mark.parametrize(("name", "code", "line", "column"), FIXTURE_CASES, ids=[c[0] for c in FIXTURE_CASES])
def test_fixture_reports_code_at_location(name: str, code: str, line: int, column: int) -> None:
    path = FIXTURES / name
    found = errors(path.read_bytes(), file=str(path))
    first = found[0]
    assert where(first) == (code, line, column), [d.format() for d in found]
    assert first.location.file == str(path)
    assert first.hint, "every diagnostic carries a hint"
    assert first.severity == "error"
    assert first.format().startswith(f"{path}:{line}:{column}: error[{code}]: ")


def test_every_code_has_a_fixture() -> None:
    assert {c[1] for c in FIXTURE_CASES} == {f"YAML{n:03d}" for n in range(1, 12)}


def test_fixture_messages_are_precise() -> None:
    [dup] = errors((FIXTURES / "yaml002_duplicate_key.yaml").read_bytes())
    assert dup.message == "duplicate key 'points' (first defined at line 4)"
    alias = errors((FIXTURES / "yaml004_alias.yaml").read_bytes())
    assert [where(d) for d in alias] == [("YAML004", 2, 11), ("YAML004", 6, 15)]
    assert "'*defaults'" in alias[1].message and "repeat the value" in alias[1].hint
    [bad] = errors((FIXTURES / "yaml006_invalid_utf8.yaml").read_bytes())
    assert "0xFC" in bad.message and "byte offset 28" in bad.message
    [syntax] = errors((FIXTURES / "yaml001_syntax.yaml").read_bytes())
    assert "quote" in syntax.hint


def test_yaml_error_is_a_policy_error_sorted_by_location() -> None:
    with pytest.raises(PolicyError) as info:
        load_yaml("b: *x\na: !!binary aGk=\na: 1\n", "p.yaml")
    assert isinstance(info.value, YamlError)
    assert [where(d) for d in info.value.diagnostics] == [
        ("YAML004", 1, 4),
        ("YAML003", 2, 4),
        ("YAML002", 3, 1),
    ]
    assert "3 YAML error(s)" in str(info.value)


# --------------------------------------------------------------------------------- data and marks


@pytest.fixture(scope="module")
def valid() -> tuple[dict, Marks]:
    path = FIXTURES / "valid_policy.yaml"
    return load_yaml(path.read_bytes(), "policies/scoring.yaml")


def test_plain_data_yaml_1_2_core_schema(valid: tuple[dict, Marks]) -> None:
    data, _ = valid
    assert data == {
        "kind": "scoring",
        "version": 3,
        "name": "Inbound scoring",
        "rules": [
            {
                "id": "demo_request",
                "when": "lead.demo_requested and lead.country in ['DE', 'AT']",
                "points": 25,
                "since": "2026-12-24",
            },
            {
                "id": "webinar",
                "when": "activity.type == 'webinar' and activity.attended",
                "points": -5,
                "weight": 1.5,
            },
        ],
        "calendar": {
            "holidays": ["2026-12-25", "2026-12-26"],
            "on": "yes",
            "off": "no",
            "closed": False,
            "zip": 1234,
            "owner": None,
            "quoted: key": "12",
        },
    }
    assert list(data) == ["kind", "version", "name", "rules", "calendar"]  # insertion order
    assert type(data["version"]) is int and type(data["rules"][1]["weight"]) is float


def test_marks_for_nested_paths(valid: tuple[dict, Marks]) -> None:
    _, marks = valid
    f = "policies/scoring.yaml"
    assert marks.at(()) == Location(f, 2, 1)
    assert marks.at(("kind",)) == Location(f, 2, 7)
    assert marks.at(("rules",)) == Location(f, 6, 3)  # a block sequence starts at its first '-'
    assert marks.at(("rules", 0)) == Location(f, 6, 5)  # a block mapping starts at its first key
    assert marks.at(("rules", 0, "when")) == Location(f, 7, 11)
    assert marks.at(("rules", 1, "when")) == Location(f, 11, 11)  # the '>-' of the folded scalar
    assert marks.at(("rules", 1, "weight")) == Location(f, 15, 13)
    assert marks.at(("calendar", "holidays", 1)) == Location(f, 17, 26)
    assert marks.key_at(("rules", 0, "points")) == Location(f, 8, 5)
    assert marks.key_at(("calendar", "quoted: key")) == Location(f, 23, 3)
    assert marks.at(("calendar", "owner")) == Location(f, 22, 10)


def test_marks_fall_back_to_nearest_ancestor(valid: tuple[dict, Marks]) -> None:
    _, marks = valid
    f = "policies/scoring.yaml"
    assert marks.at(("rules", 1, "missing", 0)) == marks.at(("rules", 1))
    assert marks.at(("rules", 99)) == marks.at(("rules",))
    assert marks.at(("nope",)) == Location(f, 2, 1)
    assert marks.key_at(("rules", 0, "unknown")) == marks.at(("rules", 0))
    assert marks.key_at(("rules", 0)) == marks.at(("rules", 0))  # a list item has no key
    # JSON Schema's error.absolute_path is a deque: any iterable path works
    assert marks.at(collections.deque(["rules", 0, "when"])) == Location(f, 7, 11)
    assert ("rules", 0, "when") in marks and ("rules", 7) not in marks


def test_dates_and_timestamps_stay_strings() -> None:
    data, _ = load_yaml(
        "d: 2026-12-24\nt: 2026-12-24T09:30:00Z\ns: 2026-12-24 09:30:00+01:00\nl: [2026-01-01]\n", "p.yaml"
    )
    assert data == {
        "d": "2026-12-24",
        "t": "2026-12-24T09:30:00Z",
        "s": "2026-12-24 09:30:00+01:00",
        "l": ["2026-01-01"],
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("Yes", "Yes"),
        ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
        ("null", None), ("Null", None), ("~", None), ("", None), ("none", "none"),
        ("12", 12), ("-3", -3), ("+7", 7), ("010", 10), ("0o17", 15), ("0x1F", 31), ("1_000", "1_000"),
        ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("1e3", 1000.0), ("-2.5E-3", -0.0025),
        ("1:30", "1:30"), ("0b101", "0b101"), ("'12'", "12"), ('"true"', "true"), ("! 12", "12"),
        ("!!str 12", "12"), ("!!int '12'", 12), ("!!float 3", 3.0), ("!!bool 'false'", False),
        ("!!null ''", None), ("=", "="), ("<<", "<<"),
    ],
)
def test_scalar_resolution(text: str, value: object) -> None:
    data, _ = load_yaml(f"v: {text}\n", "p.yaml")
    assert data["v"] == value and type(data["v"]) is type(value)


def test_keys_are_the_literal_text_written() -> None:
    data, marks = load_yaml("on: 1\nyes: 2\n1: 3\n2026-12-24: 4\nnull: 5\n'~': 6\n!!str 7: 8\n", "p.yaml")
    assert data == {"on": 1, "yes": 2, "1": 3, "2026-12-24": 4, "null": 5, "~": 6, "7": 8}
    assert all(type(k) is str for k in data)
    assert marks.key_at(("2026-12-24",)) == Location("p.yaml", 4, 1)


@pytest.mark.parametrize(
    ("source", "code", "line", "column"),
    [
        ("? {a: 1}\n: x\n", "YAML010", 1, 3),
        ("!!int 1: x\n", "YAML010", 1, 1),
        (": x\n", "YAML001", 1, 1),
        ("'': x\n", "YAML010", 1, 1),
        ("a:\n  ? \n  : x\n", "YAML010", 2, 4),
        ("<<: {a: 1}\n", "YAML004", 1, 1),
        (f"{'k' * (MAX_YAML_KEY_CHARS + 1)}: 1\n", "YAML007", 1, 1),
        ("a: !!bool yes\n", "YAML003", 1, 4),
        ("a: !!int 1.5\n", "YAML003", 1, 4),
        ("a: !!float abc\n", "YAML003", 1, 4),
        ("a: -.INF\n", "YAML011", 1, 4),
        ("a: .NaN\n", "YAML011", 1, 4),
        ("a: 1e999\n", "YAML011", 1, 4),
        (f"a: {'9' * (MAX_YAML_NUMBER_CHARS + 1)}\n", "YAML011", 1, 4),
        ("---\n", "YAML009", 1, 1),
        ("just a string\n", "YAML009", 1, 1),
        ("a: 1\n...\n---\nb: 2\n", "YAML008", 3, 1),
        ("a: 1\n...\nb: 2\n", "YAML001", 3, 1),
        ("a: [1, 2\nb: 3\n", "YAML001", 2, 2),
        ("a: 'unterminated\n", "YAML001", 2, 1),
        ("a:\n  - 1\n  -\t2\n", "YAML005", 3, 4),
        ("a: 1\n \tb: 2\n", "YAML005", 2, 2),
        ("a: [1,\n\t2]\n", "YAML005", 2, 1),
    ],
)
def test_rejections(source: str, code: str, line: int, column: int) -> None:
    found = errors(source)
    assert where(found[0]) == (code, line, column), [d.format() for d in found]


def test_tabs_inside_quoted_and_block_scalars_are_text() -> None:
    data, _ = load_yaml("a: |\n  x\n  \ty\nb: 'p\n\tq'\nc: \"\\tz\"\nd: x\ty\n", "p.yaml")
    assert data == {"a": "x\n\ty\n", "b": "p q", "c": "\tz", "d": "x\ty"}


def test_every_tab_line_is_reported() -> None:
    found = errors("a:\n\tb: 1\nc:\n\t\td: 2\n")
    assert [where(d) for d in found] == [("YAML005", 2, 1), ("YAML005", 4, 1)]


def test_all_semantic_problems_collected_then_syntax_error() -> None:
    found = errors("a: 1\na: 2\nb: !foo x\nc: *z\nd: [1\n")
    assert [d.code for d in found] == ["YAML002", "YAML003", "YAML004", "YAML001"]


# -------------------------------------------------------------------------------------- encodings


def test_utf8_bom_is_accepted_and_columns_ignore_it() -> None:
    data, marks = load_yaml(b"\xef\xbb\xbfkind: scoring\n", "p.yaml")
    assert data == {"kind": "scoring"}
    assert marks.at(("kind",)) == Location("p.yaml", 1, 7)
    data, _ = load_yaml("\ufeffkind: scoring\n", "p.yaml")
    assert data == {"kind": "scoring"}


def test_crlf_and_non_ascii_columns() -> None:
    data, marks = load_yaml("a: 1\r\nné: été\r\nc: |\r\n  x\r\n  y\r\n".encode(), "p.yaml")
    assert data == {"a": 1, "né": "été", "c": "x\ny\n"}
    assert marks.at(("né",)) == Location("p.yaml", 2, 5)  # columns count characters, not bytes


@pytest.mark.parametrize(
    ("source", "line", "column", "needle"),
    [
        (b"a: ok\nb: caf\xe9!\n", 2, 7, "0xE9 at byte offset 12"),
        (b"a: \xc3\xa9\xc3\n", 1, 5, "0xC3 at byte offset 5"),
        (b"\xff\xfea\x00:\x00", 1, 1, "UTF-16"),
        (b"a: \xed\xa0\x80\n", 1, 4, "0xED"),  # an encoded surrogate is not UTF-8
        (b"a: \xc0\xaf\n", 1, 4, "0xC0"),  # overlong encoding
        ("a: x\u202eb\n", 1, 5, "U+202E"),
        ("a: x\x1bb\n", 1, 5, "U+001B"),
        ("a: x\x7f\n", 1, 5, "U+007F"),
        ("a: 1\nb: x\x85y\n", 2, 5, "U+0085"),
        ("a: 1\u2028b: 2\n", 1, 5, "U+2028"),
        ("a: x\ufeffy\n", 1, 5, "U+FEFF"),
        ("a: x\ud800\n", 1, 5, "U+D800"),
    ],
)
def test_encoding_and_control_characters(source: str | bytes, line: int, column: int, needle: str) -> None:
    found = errors(source)
    assert where(found[0]) == ("YAML006", line, column), [d.format() for d in found]
    assert needle in found[0].message


def test_every_invalid_byte_is_reported() -> None:
    found = errors(b"a: \xff\nb: \xfe\nc: ok\n")
    assert [where(d) for d in found] == [("YAML006", 1, 4), ("YAML006", 2, 4)]


def test_rejects_non_text_argument() -> None:
    with pytest.raises(TypeError):
        load_yaml(123, "p.yaml")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- parsers agree


@pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="libyaml not available")
def test_pure_python_parser_gives_same_data_and_marks(monkeypatch: pytest.MonkeyPatch) -> None:
    source = (FIXTURES / "valid_policy.yaml").read_bytes()
    fast_data, fast_marks = load_yaml(source, "p.yaml")
    monkeypatch.setattr(yamlsafe, "_LOADER", yaml.SafeLoader)
    slow_data, slow_marks = load_yaml(source, "p.yaml")
    assert fast_data == slow_data
    assert fast_marks._values == slow_marks._values and fast_marks._keys == slow_marks._keys
    for name, code, line, column in FIXTURE_CASES:
        found = errors((FIXTURES / name).read_bytes())
        assert where(found[0]) == (code, line, column), name


# ----------------------------------------------------------------------------------- hostile input


@pytest.mark.security
def test_billion_laughs_rejected_fast() -> None:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, 10):
        prev = f"*lol{i - 1}"
        lines.append(f"lol{i}: &lol{i} [{', '.join([prev] * 10)}]")
    found = rejected_fast("\n".join(lines) + "\n")
    assert {d.code for d in found} == {"YAML004"}
    assert where(found[0]) == ("YAML004", 1, 7)


@pytest.mark.security
def test_billion_laughs_in_flow_form_rejected_fast() -> None:
    source = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    found = rejected_fast(source)
    assert found[0].code == "YAML004"
    assert len(found) <= MAX_YAML_DIAGNOSTICS + 1


@pytest.mark.security
@pytest.mark.parametrize(
    "source",
    [
        "a: " + "[" * 100_000,
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a: " + "{a: " * 100_000,
        "a:\n" + "- " * 100_000 + "x\n",
        "a:\n" + "".join(" " * (i + 1) + "b:\n" for i in range(MAX_YAML_DEPTH + 5)),
        "[" * 100_000,
    ],
    ids=["flow-seq-open", "flow-seq-closed", "flow-map", "block-seq", "block-map", "top-level"],
)
def test_deep_nesting_rejected_fast_without_recursion(source: str) -> None:
    found = rejected_fast(source)
    assert any(d.code == "YAML007" and "deeper than" in d.message for d in found), [d.format() for d in found]


@pytest.mark.security
def test_depth_limit_is_exact() -> None:
    ok = "a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n"
    data, _ = load_yaml(ok, "p.yaml")
    assert isinstance(data["a"], list)
    too_deep = "a: " + "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH + "\n"
    assert codes(too_deep) == ["YAML007"]


@pytest.mark.security
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "str"])
def test_five_megabyte_file_rejected_fast(as_bytes: bool) -> None:
    source = "k: v\n" * (5 * 1024 * 1024 // 5)
    found = rejected_fast(source.encode() if as_bytes else source)
    assert [where(d) for d in found] == [("YAML007", 1, 1)]
    assert str(MAX_YAML_BYTES) in found[0].message


@pytest.mark.security
def test_size_limit_counts_utf8_bytes() -> None:
    source = "a: " + "é" * (MAX_YAML_BYTES // 2) + "\n"  # fewer characters than the limit, more bytes
    assert codes(source) == ["YAML007"]


@pytest.mark.security
def test_node_limit_rejected_fast() -> None:
    source = "a: [" + "1," * (MAX_YAML_NODES + 10) + "]\n"
    assert len(source.encode()) <= MAX_YAML_BYTES
    found = rejected_fast(source)
    assert [d.code for d in found] == ["YAML007"] and "more than" in found[0].message


@pytest.mark.security
@pytest.mark.parametrize(
    "source",
    [
        "a: !!python/object/apply:os.system ['echo pwned']\n",
        "a: !!python/object/apply:os.system\n  args: ['echo pwned']\n",
        "a: !!python/name:os.system\n",
        "a: !!python/module:os\n",
        "a: !!python/object/new:subprocess.Popen [['id']]\n",
        "!!python/object/apply:os.system ['id']\n",
        "a: !<tag:yaml.org,2002:python/object/apply:os.system> ['id']\n",
        "%TAG !p! tag:yaml.org,2002:python/\n---\na: !p!object/apply:os.system ['id']\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!timestamp 2026-12-24\n",
        "a: !!set {x, y}\n",
        "a: !!omap [x: 1]\n",
        "a: !!pairs [x: 1]\n",
        "a: !custom 1\n",
        "a: !<!custom> 1\n",
        "a: !!merge x\n",
    ],
)
def test_unsafe_and_custom_tags_rejected(source: str) -> None:
    found = rejected_fast(source)
    tagged = [d for d in found if d.code == "YAML003"]
    assert tagged and "is not allowed" in tagged[0].message, [d.format() for d in found]


@pytest.mark.security
def test_python_tag_never_executes(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = f"a: !!python/object/apply:os.system ['touch {marker}']\n"
    errors(source)
    assert not marker.exists()


@pytest.mark.security
def test_diagnostics_are_capped() -> None:
    source = "".join(f"a: {i}\n" for i in range(10 * MAX_YAML_DIAGNOSTICS))
    found = rejected_fast(source)
    assert len(found) == MAX_YAML_DIAGNOSTICS + 1
    assert found[-1].code == "YAML007" and "too many problems" in found[-1].message


@pytest.mark.security
def test_large_valid_file_loads_within_bound() -> None:
    rule = "  - id: rule_{i}\n    when: lead.country == 'DE' and lead.employees > {i}\n    points: {i}\n"
    source = "kind: scoring\nrules:\n" + "".join(rule.format(i=i) for i in range(4000))
    start = time.perf_counter()
    data, marks = load_yaml(source, "p.yaml")
    assert time.perf_counter() - start < TIME_BOUND
    assert len(data["rules"]) == 4000
    assert marks.at(("rules", 3999, "points")) == Location("p.yaml", 2 + 3 * 3999 + 3, 13)


@pytest.mark.security
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.text(alphabet="ab:- \n\t[]{},'\"!&*?|>#%@`~.0123", max_size=200)))
def test_arbitrary_input_gives_data_or_diagnostics_never_a_crash(source: str | bytes) -> None:
    try:
        data, marks = load_yaml(source, "fuzz.yaml")
    except YamlError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.code.startswith("YAML") and d.location.line >= 1 and d.location.column >= 1
        return
    assert isinstance(data, dict)
    assert marks.at(()).line >= 1

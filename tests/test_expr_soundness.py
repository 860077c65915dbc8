"""Issue 17, expressions: sound types (unknown stays unknown), fast path == reference on what the checker
cannot prove, no lone surrogates in or out, and date-time limits on the instant rather than the written year."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from conftest import EXAMPLE_POLICIES, NOW, both_paths
from engine.errors import EvaluationError, ExpressionError, LeadError, LeadopsError
from engine.expr import ANY, DATETIME, NUMBER, Scope, compile_expression, encodable_text
from engine.expr import sandbox
from engine.leads import LeadSchema

LEADS = LeadSchema.from_json_schema({
    "type": "object",
    "properties": {"n": {"type": "integer"}, "s": {"type": "string"}, "any": {},
                   "company": {"type": "object", "properties": {"k": {"type": "string"}}}},
})  # fmt: skip
SCOPE = Scope({"lead": LEADS.type, "now": DATETIME})
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)


def both(source: str, raw: dict | None = None) -> tuple[object, object]:
    """(fast outcome, reference outcome): the value, or the EvaluationError code."""
    compiled = compile_expression(source, SCOPE)
    lead = LEADS.prepare(raw or {})
    return both_paths(compiled, lead, T0)


@pytest.mark.parametrize("source", [
    '("%0999999999d" or 0) * 1 % 1', '(lead.any or 0) * 1 % 1', '(lead.s if lead.n else 0) * 2 % 3',
    '(now or 0) - (now or 0)', '(now or 0) / 2', '(now or 0) // 2', '-((now or 0) - (now or 0))',
    '((now or 0) - (now or 0)) / 2', '(lead.any * 1) ** 2', '(lead.any or 0) - 1',
])  # fmt: skip
def test_unknown_operands_go_through_the_guarded_operation(source: str) -> None:
    """Values of unknown type never reach a native operator that formats, repeats or subtracts dates."""
    raw = {"any": "%0999999999d", "s": "%d", "n": 1}
    fast, ref = both(source, raw)
    assert fast == ref == sandbox.EVAL_TYPE, (source, fast, ref)


@pytest.mark.parametrize("source, want", [
    ("(lead.any or 0) * 1", ANY), ('("a" or 0) * 3', ANY), ("(lead.any or 0) % 2", ANY), ("(lead.any or 0) / 2", ANY),
    ("(lead.any or 0) - 1", ANY), ("lead.n * 2", "integer"), ("lead.n / 2", NUMBER),
])  # fmt: skip
def test_unknown_stays_unknown(source: str, want: object) -> None:
    compiled = compile_expression(source, SCOPE)
    assert (compiled.result_type.describe() if isinstance(want, str) else compiled.result_type) == want


def test_native_arithmetic_only_on_proven_numbers() -> None:
    assert compile_expression("lead.n - 1", SCOPE).py == "(lead['n'] - 1)"
    for op, helper in (("-", "_sub"), ("/", "_div"), ("//", "_floordiv"), ("%", "_mod"), ("+", "_add")):
        assert compile_expression(f"lead.any {op} 1", SCOPE).py.startswith(helper + "(")


def test_string_repetition_through_unknown_is_bounded_on_both_paths() -> None:
    fast, ref = both('(lead.any or 0) * 1000000', {"any": "ab"})
    assert fast == ref == sandbox.EVAL_LIMIT


@pytest.mark.parametrize("raw", [{"company": {"k": "x"}}, {}, {"any": [1, 2]}, {"any": {"k": 1}}, {"any": 3}])
def test_long_literal_lists_agree_on_unhashable_values(raw: dict) -> None:
    """Lists of 8+ literals become sets only for values proven hashable; both paths agree on the rest."""
    for source in ("(([lead.company] or 0) * 1) in [1, 2, 3, 4, 5, 6, 7, 8]",
                   "lead.any in [1, 2, 3, 4, 5, 6, 7, 8, 9]", "lead.any not in [1, 2, 3, 4, 5, 6, 7, 8, 9]",
                   "((lead.any or 0) * 1) not in [1, 2, 3, 4, 5, 6, 7, 8, 9]"):  # fmt: skip
        fast, ref = both(source, raw)
        assert fast == ref, (source, raw, fast, ref)


@pytest.mark.parametrize("literal", ['"\\ud800"', '"ok" + "\\udfff"', '["a", "\\udc00x"]', "'\\ud83d'"])
def test_lone_surrogate_literals_are_refused_at_load(literal: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(f"lead.s == {literal}" if not literal.startswith("[") else f"lead.s in {literal}", SCOPE)
    assert info.value.code == sandbox.EXPR_CHARACTER and "surrogate" in info.value.message
    assert info.value.column > 1  # located at the literal, not the start of the expression


def test_a_surrogate_pair_written_as_two_escapes_is_refused_with_the_fix() -> None:
    """Python string escapes do not pair up (unlike JSON): "\\ud83d\\ude00" is two lone surrogates."""
    with pytest.raises(ExpressionError) as info:
        compile_expression('lead.s == "\\ud83d\\ude00"', SCOPE)
    assert "\\U0001F600" in info.value.hint
    assert both('"\\U0001F600" == "\U0001F600"') == (True, True)


def test_encodable_text() -> None:
    assert encodable_text("é ok") == "é ok"
    with pytest.raises(EvaluationError) as info:
        encodable_text("a\udc80")
    assert info.value.code == sandbox.EVAL_OUTPUT


def test_an_owner_expression_giving_a_lone_surrogate_is_a_warning_not_a_crash(example_ps: engine.PolicySet) -> None:
    raw = json.loads((EXAMPLE_POLICIES.parent / "scenarios" / "leads" / "icp-enterprise-brisbane.json").read_text())
    raw["account_owner"] = "bad\ud800owner"
    decision = example_ps.evaluate(raw, NOW).to_dict()
    assert decision["route"]["rule"] != "existing-account-owner"
    assert any("surrogate" in w["message"] for w in decision.get("warnings", []))
    json.dumps(decision, ensure_ascii=False).encode("utf-8")


def test_expr_value_with_a_lone_surrogate_is_a_typed_error(example_ps: engine.PolicySet) -> None:
    with pytest.raises(EvaluationError) as info:
        example_ps.evaluate_expression("lead.account_owner", {"id": "x", "email": "a@b.co",
                                                              "account_owner": "\udc80"}, NOW)
    assert info.value.code == sandbox.EVAL_OUTPUT


def test_cli_expr_never_prints_a_traceback_or_invalid_utf8(tmp_path) -> None:
    from click.testing import CliRunner

    from cli import cli

    runner = CliRunner()
    for source in ("(now or 0) - (now or 0)", '"\\ud800"', '("%0999999999d" or 0) * 1 % 1'):
        result = runner.invoke(cli, ["expr", "-p", str(EXAMPLE_POLICIES), "--now", "2026-01-01T00:00:00Z", source])
        assert result.exit_code == 1, (source, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), source
        assert "Traceback" not in result.output and "error:" in result.output


@pytest.mark.parametrize("text", ["1900-01-01T00:00:00+23:59", "1900-01-01T05:00:00+06:00",
                                  "9000-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00",
                                  "9999-12-31T23:00:00-05:00"])  # fmt: skip
def test_year_limits_hold_for_the_instant(text: str, example_ps: engine.PolicySet) -> None:
    """The written year is inside 1900–9000 (or at the very edge of datetime) but the instant is not."""
    instant = datetime.fromisoformat(text)
    assert not sandbox.instant_in_range(instant)
    with pytest.raises(LeadopsError):
        example_ps.evaluate({"id": "x", "email": "a@b.co"}, instant)
    with pytest.raises(LeadError) as info:
        example_ps.evaluate({"id": "x", "email": "a@b.co", "stage_entered_at": text}, NOW)
    assert info.value.field == "stage_entered_at"


def test_year_limits_accept_the_edges_as_instants() -> None:
    assert sandbox.instant_in_range(datetime.fromisoformat("1900-01-01T00:00:00+00:00"))
    assert sandbox.instant_in_range(datetime.fromisoformat("1899-12-31T23:00:00-01:00"))
    assert sandbox.instant_in_range(datetime.fromisoformat("9000-12-31T23:59:59+00:00"))
    assert not sandbox.instant_in_range(datetime.fromisoformat("9000-12-31T23:59:59-00:01"))


def test_the_pattern_cache_is_bounded_by_memory() -> None:
    from engine.expr import functions

    limit = sandbox.RE2_CACHE_MAX_BYTES
    for i in range(limit // sandbox.RE2_MAX_MEMORY + 50):
        functions.compile_pattern(f"^cache-test-{i}$")
        assert functions.pattern_cache_bytes() <= limit
    assert functions.compile_pattern("^cache-test-0$").search("cache-test-0")  # evicted, compiled again


def test_regex_scans_are_metered_per_decision() -> None:
    compiled = compile_expression('matches(lead.s, "z$")', SCOPE)
    lead = LEADS.prepare({"s": "a" * 50_000})
    sandbox.start_meter(sandbox.string_units(50_000) * 3)
    try:
        for _ in range(3):
            assert compiled.fn(lead, T0) is False
        with pytest.raises(sandbox.CostLimitError):
            compiled.fn(lead, T0)
    finally:
        sandbox.stop_meter()


@settings(max_examples=300, deadline=None)
@given(year=st.sampled_from([1899, 1900, 1901, 8999, 9000, 9001]), month=st.sampled_from([1, 12]),
       day=st.sampled_from([1, 31]), hour=st.integers(0, 23), offset_minutes=st.integers(-1439, 1439))
def test_the_instant_decides_for_every_offset(year: int, month: int, day: int, hour: int, offset_minutes: int) -> None:
    """Property: in range exactly when the UTC instant is, whatever the written year and offset."""
    local = datetime(year, month, day, hour, tzinfo=timezone(timedelta(minutes=offset_minutes)))
    utc = local.replace(tzinfo=None) - timedelta(minutes=offset_minutes)  # naive UTC, never overflows here
    assert sandbox.instant_in_range(local) == (datetime(1900, 1, 1) <= utc <= datetime(9000, 12, 31, 23, 59, 59, 999999))
    text = local.isoformat()
    try:
        LEADS_D.prepare({"d": text})
        accepted = True
    except LeadError:
        accepted = False
    assert accepted == sandbox.instant_in_range(local), text


LEADS_D = LeadSchema.from_json_schema({"type": "object", "properties": {"d": {"type": "string", "format": "date-time"}}})


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(min_codepoint=0xD700, max_codepoint=0xE0FF, blacklist_categories=("Cc",)), max_size=6))
def test_string_literals_are_valid_text_or_refused(text: str) -> None:
    """Property: a literal written with escapes either loads and evaluates to encodable text, or is refused."""
    literal = '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'
    try:
        compiled = compile_expression(literal, SCOPE)
    except ExpressionError as exc:
        assert exc.code == sandbox.EXPR_CHARACTER and any("\ud800" <= c <= "\udfff" for c in text)
        return
    assert encodable_text(compiled.fn(LEADS.prepare({}), T0)) == text

"""Static checks: names, fields, helper calls, types, result types and paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import ExpressionError
from engine.expr import (
    ANY,
    BOOL,
    DATETIME,
    INTEGER,
    NUMBER,
    STRING,
    ListType,
    ObjectType,
    Scope,
    StringType,
    compile_expression,
    types_from_schema,
)
from engine.expr.functions import HELPERS
from engine.expr.types import join

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "lead.schema.json").read_text())
LEAD = types_from_schema(SCHEMA)
SCORE = ObjectType({"total": NUMBER, "fit_grade": StringType(("A", "B", "C", "D"))}, open=False)
ACTIVITY = LEAD.props["activities"].item  # type: ignore[attr-defined]
FULL = Scope({"lead": LEAD, "now": DATETIME, "score": SCORE, "activity": ACTIVITY, "stage": STRING})
LEAD_ONLY = Scope({"lead": LEAD, "now": DATETIME})


def reject(source: str, scope: Scope = FULL, want=None) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, scope, want=want)
    return info.value


# ---------------------------------------------------------------------------------------------- types


def test_types_from_schema() -> None:
    assert LEAD.props["employees"] == INTEGER
    assert LEAD.props["company"].props["annual_revenue"] == NUMBER  # type: ignore[attr-defined]
    assert LEAD.props["stage_entered_at"] == DATETIME
    assert LEAD.props["seniority"].enum[0] == "c_level"  # type: ignore[attr-defined]
    assert LEAD.props["is_student"] == BOOL
    assert isinstance(LEAD.props["activities"], ListType)
    assert LEAD.open is True
    assert LEAD.props["transition_request"].open is False  # type: ignore[attr-defined]
    assert "id" in LEAD.required


def test_types_from_schema_nullable_and_unknown() -> None:
    t = types_from_schema(
        {
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"type": ["integer", "null"], "minimum": 0},
                "c": {"type": ["string", "integer"]},
                "d": {},
                "e": {"type": ["string", "null"], "format": "date-time"},
                "f": {"enum": ["x", "y"]},
                "g": {"type": "array", "items": {"type": "number"}},
            },
            "additionalProperties": False,
        }
    )
    assert t.props["a"] == STRING and t.props["b"] == INTEGER and t.props["c"] == ANY and t.props["d"] == ANY
    assert t.props["e"] == DATETIME
    assert t.props["f"] == StringType(("x", "y"))
    assert t.props["g"] == ListType(NUMBER)
    assert t.open is False
    with pytest.raises(ValueError):
        types_from_schema({"type": "string"})


# ---------------------------------------------------------------------------------------------- names


def test_unknown_name_did_you_mean() -> None:
    err = reject("leed.employees > 5")
    assert err.code == "EXPR003"
    assert err.column == 1
    assert "did you mean 'lead'?" in err.hint


def test_context_name_not_in_scope() -> None:
    err = reject("score.total > 50", LEAD_ONLY)
    assert err.code == "EXPR003"
    assert "not available here" in err.message


@pytest.mark.parametrize("source, hint", [("lead.abn == null", "present"), ("lead.is_student == true", "True")])
def test_json_spellings_get_hints(source: str, hint: str) -> None:
    err = reject(source)
    assert err.code == "EXPR003"
    assert hint in err.hint


def test_helper_used_as_value() -> None:
    err = reject("lower")
    assert err.code == "EXPR008"


# ---------------------------------------------------------------------------------------------- fields


def test_unknown_field_did_you_mean() -> None:
    err = reject("lead.employes >= 50")
    assert err.code == "EXPR004"
    assert err.hint == "did you mean 'employees'?"
    assert err.column == 1


def test_unknown_nested_field() -> None:
    err = reject('lead.company.industri == "software"')
    assert err.code == "EXPR004"
    assert "lead.company" in err.message
    assert "industry" in err.hint


def test_unknown_field_without_close_match_lists_fields() -> None:
    err = reject("lead.zzzzqqq")
    assert err.code == "EXPR004"
    assert "employees" in err.hint


def test_unknown_field_via_string_subscript_and_on_score_and_activity() -> None:
    assert reject('lead["employes"] > 1').code == "EXPR004"
    assert reject("score.totl > 1").code == "EXPR004"
    assert reject('activity.urll == "/pricing"').code == "EXPR004"


def test_field_of_non_object() -> None:
    err = reject("lead.email.length > 3")
    assert err.code == "EXPR005"
    assert reject("lead[0]").code == "EXPR005"
    assert reject('lead.activities["x"]').code == "EXPR005"


def test_fields_of_untyped_values_allowed() -> None:
    scope = Scope({"lead": ObjectType({"extra": ANY}), "now": DATETIME})
    compiled = compile_expression('lead.extra.anything["deep"][0] == 1', scope)
    assert compiled.result_type == BOOL


# ---------------------------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    "source",
    [
        'lead.employees > "5"',
        'lead.employees == "5"',
        'lead.email == 5',
        "lead.is_student == 1",
        'lead.stage_entered_at > "2024-01-01"',
        "lead.stage_entered_at > 5",
        "lead.email < 5",
        "lead.is_student < True",
        "lead.company > 1",
        'lead.employees in ["1", "2"]',
        'lead.employees in "abc"',
        "lead.email in lead.employees",
        '"x" in lead.company',
    ],
)
def test_comparison_type_errors(source: str) -> None:
    err = reject(source)
    assert err.code == "EXPR005", err.message


def test_enum_literal_not_allowed_lists_values() -> None:
    err = reject('lead.seniority == "ceo"')
    assert err.code == "EXPR005"
    assert err.column == 19
    assert "'c_level'" in err.hint and "'vp'" in err.hint
    err = reject('lead.seniority in ["vp", "CEO"]')
    assert err.code == "EXPR005" and "'CEO'" in err.message
    err = reject('"directr" != lead.seniority')
    assert "did you mean 'director'?" in err.hint
    assert reject('score.fit_grade in ["A", "E"]').code == "EXPR005"
    assert reject('count_activities("pageview") > 0').code == "EXPR005"
    assert reject('has_activity(["page_view", "demo"])').code == "EXPR005"


def test_literal_that_can_never_match_the_schema_pattern_is_rejected() -> None:
    err = reject('lead.country == "AUS"')
    assert err.code == "EXPR005" and err.column == 17
    assert err.message == "'AUS' can never be a value of lead.country (it must match ^[A-Z]{2}$)"
    assert "^[A-Z]{2}$" in err.hint
    err = reject('"1234" != lead.abn')
    assert err.code == "EXPR005" and err.column == 1 and "lead.abn" in err.message


def test_literal_matching_the_schema_pattern_is_accepted() -> None:
    for source in ('lead.country == "AU"', 'lead.country != "NZ"', 'lead.abn == "51824753556"',
                   'lead.country in ["AU", "NZ"]', '"AU" in [lead.country]', 'lead.country > "ZZZ"'):
        assert compile_expression(source, FULL).result_type == BOOL, source


def test_in_list_with_one_literal_outside_the_pattern_is_rejected() -> None:
    err = reject('lead.country in ["AU", "nz"]')
    assert err.code == "EXPR005" and err.column == 24 and "'nz'" in err.message
    assert "did you mean 'NZ'?" in err.hint
    assert reject('lead.country not in ["AU", "NZL"]').code == "EXPR005"


def test_pattern_is_searched_unanchored_like_json_schema() -> None:
    scope = Scope({"lead": types_from_schema({"type": "object", "properties": {"code": {"type": "string", "pattern": "[0-9]"}}})})
    compile_expression('lead.code == "abc1def"', scope)
    assert reject('lead.code == "abcdef"', scope).code == "EXPR005"


def test_literal_outside_the_schema_lengths_is_rejected() -> None:
    err = reject('lead.id == ""')
    assert err.code == "EXPR005" and "at least 1 character" in err.message
    err = reject('lead.state == "' + "Q" * 11 + '"')
    assert err.code == "EXPR005" and "at most 10 characters" in err.message
    compile_expression('lead.state == "QLD" and lead.id != "x"', FULL)


def test_field_without_pattern_is_unaffected() -> None:
    for source in ('lead.email == "AUS"', 'lead.job_title in ["", "nz", "x y z"]', 'lead.seniority == "vp"',
                   'stage == "anything at all"', 'lead.company.name == ""'):
        compile_expression(source, FULL)


def test_string_constraints_do_not_change_type_equality_and_joins() -> None:
    country, abn = LEAD.props["country"], LEAD.props["abn"]
    assert country == STRING and abn == STRING and hash(country) == hash(STRING)
    assert join(country, country) is country
    joined = join(country, abn)
    assert joined == STRING and joined.pattern is None  # type: ignore[attr-defined]
    compile_expression('(lead.country if present(lead.country) else lead.abn) == "51824753556"', FULL)


@pytest.mark.parametrize(
    "source, hint",
    [
        ("lead.email * 2", "strings"),
        ('lead.email - "x"', "strings"),
        ("lead.email + 1", "strings"),
        ("lead.stage_entered_at - now", "days_since"),
        ("-lead.email", ""),
        ("lead.is_student + 1", ""),
        ("lead.activities * 2", ""),
    ],
)
def test_arithmetic_type_errors(source: str, hint: str) -> None:
    err = reject(source)
    assert err.code == "EXPR005"
    assert hint in err.hint


def test_want_bool_mismatch() -> None:
    err = reject("lead.email", want=BOOL)
    assert err.code == "EXPR005"
    assert "present(x)" in err.hint
    assert reject("lead.employees + 1", want=BOOL).code == "EXPR005"
    assert reject("lead.employees > 1", want=STRING).code == "EXPR005"
    assert compile_expression("lead.email", FULL, want=STRING).result_type == STRING
    assert compile_expression("present(lead.email)", FULL, want=BOOL).result_type == BOOL


@pytest.mark.parametrize(
    "source, message",
    [
        ("lower(lead.email, 2)", "at most 1"),
        ("lower()", "needs 1"),
        ("coalesce(lead.email)", "needs 2"),
        ("foo(lead)", "unknown function"),
        ("getattr(lead, 'x')", "unknown function"),
        ("eval('1')", "unknown function"),
        ("lead(1)", "not a function"),
        ('count_activities("page_view", days=3)', "no keyword"),
        ('lower(s=lead.email)', "no keyword"),
        ('count_activities("page_view", 3, within_days=3)', "twice"),
        ("min()", "at least 1"),
        ('matches(lead.email, lead.first_name)', "string literal"),
        ('matches(lead.email, "(a")', "invalid regular expression"),
        ('matches(lead.email, "(a)\\\\1")', "invalid regular expression"),
        ('matches(lead.email, "(?=a)")', "invalid regular expression"),
    ],
)
def test_bad_helper_calls_are_expr008(source: str, message: str) -> None:
    err = reject(source)
    assert err.code == "EXPR008", err.message
    assert message in err.message


def test_helper_argument_types() -> None:
    assert reject("lower(lead.employees)").code == "EXPR005"
    assert reject("days_since(lead.email)").code == "EXPR005"
    assert reject("round(lead.employees, ndigits=lead.email)").code == "EXPR005"
    assert reject("contains(lead.employees, 1)").code == "EXPR005"
    assert reject("min(lead.email, lead.employees)").code == "EXPR005"
    assert reject("endswith(lead.email, 1)").code == "EXPR005"
    assert reject("len(lead.employees)").code == "EXPR005"


def test_helper_typo_suggestion() -> None:
    err = reject("lowr(lead.email)")
    assert err.code == "EXPR008"
    assert "did you mean 'lower'?" in err.hint


def test_activity_helpers_need_activities_in_schema() -> None:
    scope = Scope({"lead": ObjectType({"email": STRING}), "now": DATETIME})
    assert reject('has_activity("page_view")', scope).code == "EXPR008"


# ---------------------------------------------------------------------------------------------- results


def test_result_types() -> None:
    cases = {
        "lead.employees": INTEGER,
        "lead.employees / 2": NUMBER,
        "lead.employees + 1": INTEGER,
        "lead.company.annual_revenue * 2": NUMBER,
        "lower(lead.email)": STRING,
        "days_since(lead.stage_entered_at)": NUMBER,
        'count_activities("page_view")': INTEGER,
        'last_activity_at("form_fill")': DATETIME,
        "coalesce(lead.employees, 0)": INTEGER,
        "lead.employees > 1 and present(lead.abn)": BOOL,
        "lead.activities[0].url": STRING,
        "[1, 2]": ListType(INTEGER),
        "not lead.email": BOOL,
    }
    for source, expected in cases.items():
        assert compile_expression(source, FULL).result_type == expected, source


def test_paths_are_the_data_paths_read() -> None:
    compiled = compile_expression('lead.employees >= 50 and lead.company.industry == "software"', FULL)
    assert compiled.paths == ("lead.company.industry", "lead.employees")
    compiled = compile_expression("present(lead.company) and score.total > 1 and now > lead.stage_entered_at", FULL)
    assert compiled.paths == ("lead.company", "lead.stage_entered_at", "score.total")
    compiled = compile_expression('has_activity("page_view") or activity.url == "/pricing"', FULL)
    assert compiled.paths == ("activity.url", "lead.activities")
    compiled = compile_expression('lead["company"]["industry"] == "software" and lead.activities[0].at < now', FULL)
    assert compiled.paths == ("lead.activities[0].at", "lead.company.industry")


def test_chained_in_rejected() -> None:
    err = reject("lead.employees > 5 in [1]")
    assert err.code == "EXPR002"


def test_scope_rejects_other_names() -> None:
    with pytest.raises(ValueError):
        Scope({"lead": LEAD, "os": ANY})


def test_every_helper_has_a_docstring() -> None:
    expected = {
        "present", "missing", "coalesce", "lower", "upper", "strip", "startswith", "endswith", "contains", "len",
        "min", "max", "abs", "round", "email_domain", "is_free_email", "days_since", "hours_since",
        "count_activities", "has_activity", "last_activity_at", "matches",
    }  # fmt: skip
    assert set(HELPERS) == expected
    for helper in HELPERS.values():
        assert helper.doc, helper.name

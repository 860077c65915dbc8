"""The fast path (generated code) and the reference evaluator: semantics, helpers, limits, safety, speed."""

from __future__ import annotations

import ast
import copy
import json
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.errors import EvaluationError
from engine.expr import (
    DATETIME,
    MISSING,
    NUMBER,
    PARAMETERS,
    RUNTIME_GLOBALS,
    STRING,
    ObjectType,
    Scope,
    StringType,
    compile_expression,
)
from engine.expr import sandbox
from engine.leads import LeadSchema

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "lead.schema.json").read_text())
SCHEMA["properties"]["extra"] = {}  # an untyped field: runtime type checks
LEADS = LeadSchema.from_json_schema(SCHEMA)
SCORE = ObjectType({"total": NUMBER, "fit_grade": StringType(("A", "B", "C", "D"))}, open=False)
ACTIVITY = LEADS.type.props["activities"].item  # type: ignore[attr-defined]
SCOPE = Scope({"lead": LEADS.type, "now": DATETIME, "score": SCORE, "activity": ACTIVITY, "stage": STRING})
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)

FULL_LEAD = {
    "id": "L-1",
    "email": "Jo.Smith@Uni.EDU",
    "first_name": "Jo",
    "seniority": "director",
    "country": "AU",
    "state": "QLD",
    "employees": 120,
    "abn": "12345678901",
    "is_student": False,
    "company": {"name": "Acme", "industry": "software", "annual_revenue": 2.5e6},
    "stage_entered_at": "2024-05-20T10:00:00+10:00",
    "activities": [
        {"type": "page_view", "at": "2024-05-30T00:00:00Z", "url": "/pricing"},
        {"type": "page_view", "at": "2024-05-25T00:00:00Z", "url": "/blog"},
        {"type": "page_view", "at": "2024-03-01T00:00:00Z", "url": "/pricing"},
        {"type": "form_fill", "at": "2024-05-31T09:00:00+02:00"},
        {"type": "page_view", "at": "2024-07-01T00:00:00Z", "url": "/pricing"},  # after `now`: ignored
    ],
}


def run(source: str, raw: dict | None = None, **context):
    """Evaluate with both evaluators; they must agree. Returns the value."""
    lead = LEADS.prepare(raw if raw is not None else FULL_LEAD)
    compiled = compile_expression(source, SCOPE)
    fast = compiled.fn(lead, NOW, **context)
    ref = compiled.reference(lead, NOW, **context)
    assert type(fast) is type(ref) and (fast == ref or fast is ref), (source, fast, ref)
    return fast


def run_error(source: str, raw: dict | None = None, **context) -> EvaluationError:
    lead = LEADS.prepare(raw if raw is not None else FULL_LEAD)
    compiled = compile_expression(source, SCOPE)
    with pytest.raises(EvaluationError) as fast:
        compiled.fn(lead, NOW, **context)
    with pytest.raises(EvaluationError) as ref:
        compiled.reference(lead, NOW, **context)
    assert fast.value.code == ref.value.code
    return fast.value


# ------------------------------------------------------------------------------------ typical policies


@pytest.mark.parametrize(
    "source, expected",
    [
        ('lead.employees >= 50 and lead.country in ["AU", "NZ"]', True),
        ("present(lead.abn)", True),
        ('lead.company.industry == "software"', True),
        ("days_since(lead.stage_entered_at) <= 30", True),
        ('count_activities("page_view", within_days=30) >= 3', False),
        ('count_activities("page_view", within_days=30) >= 2', True),
        ('endswith(lower(lead.email), ".edu")', True),
        ('lead.seniority in ["vp", "director", "c_level", "manager", "individual", "student", "other"]', True),
        ('lead.country not in ["NZ", "US"]', True),
        ('lead.country not in ["AU"]', False),
        ("lead.employees > 100 > 50", True),
        ("1 < 2 < 3 > 4", False),
        ('"Uni" in lead.email', True),
        ('lead.company.industry == "software" if lead.is_student else lead.employees > 1000', False),
    ],
)
def test_typical_expressions(source: str, expected: object) -> None:
    assert run(source) is expected


def test_score_activity_and_stage_names() -> None:
    score = {"total": 60, "fit_grade": "B"}
    assert run('score.total >= 50 and score.fit_grade in ["A", "B"]', score=score) is True
    activity = LEADS.prepare(FULL_LEAD)["activities"][0]
    assert run('activity.url == "/pricing" and activity.type == "page_view"', activity=activity) is True
    assert run('stage == "mql"', stage="mql") is True


# ------------------------------------------------------------------------------------ missing values

MISSING_TABLE = [
    # every comparison involving MISSING is False
    ("lead.employees == 5", False),
    ("lead.employees != 5", False),
    ("5 != lead.employees", False),
    ("lead.employees < 5", False),
    ("lead.employees <= 5", False),
    ("lead.employees > 5", False),
    ("lead.employees >= 5", False),
    ("50 <= lead.employees", False),
    ("0 < lead.employees < 10", False),
    ('lead.country in ["AU", "NZ"]', False),
    ('lead.country not in ["AU", "NZ"]', False),
    ('lead.country in ["AU", lead.state]', False),
    ('lead.country not in [lead.state, "NZ"]', False),
    ('lead.country in "AUS"', False),
    ('lead.country not in "AUS"', False),
    ('"AU" in lead.state', False),
    ('"AU" not in lead.state', False),
    ("lead.state == lead.country", False),
    ("lead.state != lead.country", False),
    ("lead.stage_entered_at < now", False),
    ("now >= lead.stage_entered_at", False),
    ('lead.company.industry == "software"', False),
    ('lead.company.industry != "software"', False),
    ("lead.is_student == False", False),
    # MISSING is falsy
    ("not lead.is_student", True),
    ("lead.is_student or lead.employees > 1", False),
    ("present(lead.employees)", False),
    ("missing(lead.employees)", True),
    ("missing(lead.company.industry)", True),
    ("coalesce(lead.employees, 7)", 7),
    ("coalesce(lead.employees + 1, 7)", 7),
    ("present(lead.employees * 2)", False),
    ("present(-lead.employees)", False),
    ("present(lead.employees / 2)", False),
    ("present(2 ** lead.employees)", False),
    ("present(lead.employees % 2)", False),
    ("present(lead.employees // 2)", False),
    ('present(lead.email + "x")', False),
    ("present(lower(lead.email))", False),
    ("present(days_since(lead.stage_entered_at))", False),
    ("present(email_domain(lead.email))", False),
    ("present(lead.activities[0])", False),
    ("present(lead.email[0])", False),
    ("present(len(lead.email))", False),
    ("present(min(lead.employees, 3))", False),
    ("has_activity(\"page_view\")", False),
    ('count_activities("page_view")', 0),
    ('present(last_activity_at("page_view"))', False),
    ("present(round(lead.company.annual_revenue))", False),
    ("present(abs(lead.employees))", False),
    ('present(matches(lead.email, "x"))', False),
    ('present(startswith(lead.email, "x"))', False),
    ('present(contains(lead.email, "x"))', False),
    ('present(is_free_email(lead.email))', False),
]


@pytest.mark.parametrize("source, expected", MISSING_TABLE)
def test_missing_value_semantics(source: str, expected: object) -> None:
    sparse = {"id": "L-2", "company": {"name": "Acme"}}
    assert run(source, sparse) == expected
    assert type(run(source, sparse)) is type(expected)


def test_null_reads_as_missing_when_nullable() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["employees"]["type"] = ["integer", "null"]
    leads = LeadSchema.from_json_schema(schema)
    compiled = compile_expression("lead.employees != 5", Scope({"lead": leads.type, "now": DATETIME}))
    assert compiled.fn(leads.prepare({"id": "x", "employees": None}), NOW) is False


def test_missing_singleton_behaviour() -> None:
    assert MISSING is sandbox._MissingType()
    assert copy.copy(MISSING) is MISSING and copy.deepcopy(MISSING) is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert not MISSING and repr(MISSING) == "MISSING"
    assert (MISSING == MISSING) is False and (MISSING != MISSING) is False
    assert MISSING["x"] is MISSING and (MISSING + 1) is MISSING and (1 - MISSING) is MISSING
    with pytest.raises(TypeError):
        iter(MISSING)  # never an endless sequence through __getitem__


# ------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    "source, expected",
    [
        ("lower(lead.email)", "jo.smith@uni.edu"),
        ("upper(lead.first_name)", "JO"),
        ('strip("  a b ")', "a b"),
        ('startswith(lead.email, "Jo")', True),
        ('startswith(lead.email, ["x", "Jo"])', True),
        ('endswith(lead.email, ".com")', False),
        ('contains(lead.email, "Smith")', True),
        ('contains(["a", "b"], "b")', True),
        ('contains(["a", "b"], "c")', False),
        ("len(lead.email)", 16),
        ("len(lead.activities)", 5),
        ("len(lead.company)", 4),
        ("min(3, 1, 2)", 1),
        ("max([3, 9, 2])", 9),
        ("min(lead.employees, 100)", 100),
        ('max("a", "b")', "b"),
        ("abs(-3)", 3),
        ("abs(-2.5)", 2.5),
        ("round(2.567, ndigits=2)", 2.57),
        ("round(2.567, 1)", 2.6),
        ("round(2.6)", 3),
        ("round(lead.company.annual_revenue / 1000000)", 2),
        ("email_domain(lead.email)", "uni.edu"),
        ('email_domain("no-at-sign")', MISSING),
        ("is_free_email(lead.email)", False),
        ('is_free_email("x@GMail.com")', True),
        ('is_free_email("x@bigpond.com")', True),
        ('is_free_email("x@outlook.com")', True),
        ('days_since(lead.stage_entered_at)', (NOW - datetime(2024, 5, 20, tzinfo=timezone.utc)).total_seconds() / 86400),
        ("hours_since(lead.stage_entered_at)", (NOW - datetime(2024, 5, 20, tzinfo=timezone.utc)).total_seconds() / 3600),
        ('count_activities("page_view")', 3),
        ('count_activities("page_view", within_days=30)', 2),
        ('count_activities("page_view", url="/pricing")', 2),
        ('count_activities("page_view", 30, "/pricing")', 1),
        ('count_activities(["page_view", "form_fill"], within_days=7)', 2),
        ('has_activity("form_fill", within_days=1.5)', True),
        ('has_activity("demo_request")', False),
        ('last_activity_at("page_view")', datetime(2024, 5, 30, tzinfo=timezone.utc)),
        ('last_activity_at("form_fill") == last_activity_at("form_fill")', True),
        ('present(last_activity_at("demo_request"))', False),
        ('matches(lead.email, "@uni\\\\.edu$")', False),
        ('matches(lead.email, "(?i)@uni\\\\.edu$")', True),
        ('matches(lead.abn, "^[0-9]{11}$")', True),
        ('matches("café", "é$")', True),
        ("coalesce(lead.employees, 0)", 120),
    ],
)
def test_helpers(source: str, expected: object) -> None:
    result = run(source)
    if isinstance(expected, float):
        assert result == pytest.approx(expected)
    else:
        assert result == expected or result is expected


def test_activity_window_is_relative_to_explicit_now() -> None:
    compiled = compile_expression('count_activities("page_view", within_days=30)', SCOPE)
    lead = LEADS.prepare(FULL_LEAD)
    assert compiled.fn(lead, NOW) == 2
    assert compiled.fn(lead, datetime(2024, 3, 2, tzinfo=timezone.utc)) == 1
    assert compiled.fn(lead, datetime(2030, 1, 1, tzinfo=timezone.utc)) == 0
    later = compile_expression("days_since(lead.stage_entered_at)", SCOPE)
    assert later.fn(lead, NOW + timedelta(days=1)) == pytest.approx(later.fn(lead, NOW) + 1)


def test_helpers_type_errors_at_runtime_on_untyped_values() -> None:
    raw = {**FULL_LEAD, "extra": 42}
    for source in ["lower(lead.extra)", "days_since(lead.extra)", 'startswith(lead.extra, "a")', "len(lead.extra)",
                   "abs(lead.extra.x)", 'lead.extra < "a"', 'lead.extra + "a"', "lead.extra[0]",
                   'count_activities(lead.extra)', "round(1.5, lead.extra)"]:  # fmt: skip
        err = run_error(source, raw)
        assert err.code in ("EVAL001", "EVAL002"), source


# ------------------------------------------------------------------------------------ limits / adversarial


@pytest.mark.parametrize(
    "source, code",
    [
        ("9**9**9", "EVAL002"),
        ("2 ** 5000", "EVAL002"),
        ("(10 ** 300) ** 4", "EVAL002"),
        ("10.0 ** 400", "EVAL003"),
        ("(-8) ** 0.5", "EVAL003"),
        ("1 / 0", "EVAL003"),
        ("1 // 0", "EVAL003"),
        ("1 % 0", "EVAL003"),
        ("(2 ** 1000) * (2 ** 1000)", "EVAL002"),
        ("round(1.5, 1000000000)", "EVAL002"),
    ],
)
def test_runtime_limits(source: str, code: str) -> None:
    assert run_error(source).code == code


def test_sequence_repetition_and_concatenation_bounded() -> None:
    raw = {**FULL_LEAD, "extra": "a"}
    assert run_error("lead.extra * 10 ** 9", raw).code == "EVAL002"
    assert run_error("10 ** 9 * lead.extra", raw).code == "EVAL002"
    assert run("lead.extra * 3", raw) == "aaa"
    raw = {**FULL_LEAD, "extra": "a" * 60_000}
    assert run_error("lead.extra + lead.extra", raw).code == "EVAL002"
    raw = {**FULL_LEAD, "extra": [1] * 6000}
    assert run_error("lead.extra + lead.extra", raw).code == "EVAL002"
    assert run_error("lead.extra * 2", raw).code == "EVAL002"


def test_string_percent_formatting_refused() -> None:
    raw = {**FULL_LEAD, "extra": "%999999999d"}
    assert run_error("lead.extra % 1", raw).code == "EVAL001"


def test_non_prepared_data_gives_evaluation_error() -> None:
    compiled = compile_expression("score.total > 1", SCOPE)
    with pytest.raises(EvaluationError) as info:
        compiled.fn(LEADS.prepare(FULL_LEAD), NOW, score={})
    assert info.value.code == "EVAL004"
    with pytest.raises(EvaluationError):
        compiled.fn(LEADS.prepare(FULL_LEAD), NOW)  # score=None


def test_naive_now_is_an_evaluation_error() -> None:
    compiled = compile_expression("days_since(lead.stage_entered_at) < 5", SCOPE)
    with pytest.raises(EvaluationError):
        compiled.fn(LEADS.prepare(FULL_LEAD), datetime(2024, 6, 1))


# ------------------------------------------------------------------------------------ generated code


def test_generated_code_only_uses_parameters_and_runtime_globals() -> None:
    sources = [src for src, _ in MISSING_TABLE] + [
        'lead.employees >= 50 and lead.country in ["AU", "NZ"]',
        '[1, 2] + [lead.employees] == (1, 2, 3)',
        '{"a", lead.email}',
        'lead["company"]["industry"]',
        "lead.extra.x[0]",
        "lead.activities[-1].url",
        'lead.country in ["AU","NZ","US","GB","CA","IE","SG","HK","JP"]',
    ]
    allowed = set(PARAMETERS) | set(RUNTIME_GLOBALS)
    for source in sources:
        compiled = compile_expression(source, SCOPE)
        tree = ast.parse(compiled.py, mode="eval")
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Attribute), compiled.py
            if isinstance(node, ast.Name):
                assert node.id in allowed, (node.id, compiled.py)


def test_fragments_can_be_inlined_into_one_function() -> None:
    a = compile_expression('lead.employees >= 50 and lead.country in ["AU", "NZ"]', SCOPE)
    b = compile_expression('count_activities("page_view", within_days=30) + len(lead.email)', SCOPE)
    src = (
        "def rule(lead, now, score=None, activity=None, stage=None):\n"
        f"    return ({a.py}, {b.py})\n"
    )
    namespace = {"__builtins__": {}, **RUNTIME_GLOBALS}
    exec(compile(src, "<test>", "exec"), namespace)
    assert namespace["rule"](LEADS.prepare(FULL_LEAD), NOW) == (True, 18)


def test_fn_has_empty_builtins() -> None:
    compiled = compile_expression("lead.employees > 1", SCOPE)
    assert compiled.fn.__globals__["__builtins__"] == {}
    assert "open" not in compiled.fn.__globals__ and "__import__" not in compiled.fn.__globals__


def test_literals_in_generated_code_are_not_names() -> None:
    compiled = compile_expression('lead.email == "__import__(\'os\')" or lead.email == "\\" or 1"', SCOPE)
    assert compiled.fn(LEADS.prepare(FULL_LEAD), NOW) is False


def test_set_and_list_literal_values() -> None:
    assert run("[1, 2]") == (1, 2)
    assert run("(1, 2)") == (1, 2)
    assert run("{1, 1, 2}") == frozenset({1, 2})
    assert run("[1] + [2]") == (1, 2)


def test_want_bool_always_returns_a_real_bool() -> None:
    from engine.expr import BOOL

    sparse = LEADS.prepare({"id": "x"})
    for source in ["lead.is_student", 'endswith(lead.email, ".edu")', "lead.is_student and lead.employees > 1",
                   "lead.is_student or lead.is_competitor"]:  # fmt: skip
        compiled = compile_expression(source, SCOPE, want=BOOL)
        assert compiled.fn(sparse, NOW) is False, source
        assert compiled.reference(sparse, NOW) is False, source
    compiled = compile_expression("lead.employees > 1 and present(lead.abn)", SCOPE, want=BOOL)
    assert not compiled.py.startswith("(True if")  # already boolean: no wrapper
    assert compiled.fn(LEADS.prepare(FULL_LEAD), NOW) is True

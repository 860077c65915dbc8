"""Differential test: the generated fast path and the simpleeval reference agree on random expressions and leads.

Both must return the same value (same type; NaN equals NaN; MISSING is MISSING) or both raise EvaluationError.
"""

from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import same
from engine.errors import EvaluationError, ExpressionError
from engine.expr import BOOL, DATETIME, MISSING, PARAMETERS, RUNTIME_GLOBALS, Scope, compile_expression
from engine.expr.compile import QUANTIFIER_VARIABLES
from engine.expr.cost import expression_cost
from engine.expr.sandbox import start_meter, stop_meter
from engine.leads import LeadSchema

pytestmark = pytest.mark.security

ACTIVITY_TYPES = ["page_view", "form_fill", "demo_request"]
SCHEMA = {
    "type": "object",
    "properties": {
        "n": {"type": ["integer", "null"]},
        "x": {"type": ["number", "null"]},
        "s": {"type": ["string", "null"]},
        "t": {"type": "string"},
        "b": {"type": ["boolean", "null"]},
        "d": {"type": ["string", "null"], "format": "date-time"},
        "tags": {"type": ["array", "null"], "items": {"type": ["string", "null"]}},
        "any": {},
        "company": {
            "type": ["object", "null"],
            "properties": {"k": {"type": "string"}, "m": {"type": ["integer", "null"]}},
        },
        "activities": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "at"],
                "properties": {
                    "type": {"type": "string", "enum": ACTIVITY_TYPES},
                    "at": {"type": "string", "format": "date-time"},
                    "url": {"type": "string"},
                },
            },
        },
    },
}
LEADS = LeadSchema.from_json_schema(SCHEMA)
SCOPE = Scope({"lead": LEADS.type, "now": DATETIME})
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
ALLOWED_NAMES = set(PARAMETERS) | set(RUNTIME_GLOBALS) | set(QUANTIFIER_VARIABLES)

# ------------------------------------------------------------------------------------------ expressions

small_ints = st.integers(-5, 40).map(str)
edge_numbers = st.sampled_from(["0", "1", "-1", "0.5", "2.5", "1e300", "10 ** 300", "2 ** 64", "3.0"])
str_literals = st.sampled_from(['"a"', '"AU"', '""', '"b c"', '"é"', '"Ab"', '"%d"', '"/pricing"'])

num_leaves = st.one_of(
    small_ints,
    edge_numbers,
    st.sampled_from(
        [
            "lead.n", "lead.x", "lead.company.m", "len(lead.t)", "lead.any", "len(lead.tags)",
            'count_activities("page_view")', 'count_activities("form_fill", within_days=7)',
            "days_since(lead.d)", "hours_since(lead.d)", 'count_activities(["page_view", "demo_request"], 30, "/p")',
        ]
    ),
)
str_leaves = st.one_of(
    str_literals,
    st.sampled_from(["lead.s", "lead.t", "lead.company.k", "lead.any", "lead.tags[0]", "lead.tags[-1]",
                     "lead.activities[0].url", "lead.activities[-1].type", "lead.s[0]"]),
)  # fmt: skip
date_leaves = st.sampled_from(["lead.d", "now", 'last_activity_at("page_view")', "lead.activities[0].at"])


def _num(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    op = st.sampled_from(["+", "-", "*", "/", "//", "%", "**"])
    return st.one_of(
        st.tuples(children, op, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda a: f"(-{a})"),
        children.map(lambda a: f"abs({a})"),
        children.map(lambda a: f"round({a})"),
        st.tuples(children, st.integers(-3, 3)).map(lambda t: f"round({t[0]}, ndigits={t[1]})"),
        st.tuples(children, children).map(lambda t: f"min({t[0]}, {t[1]})"),
        st.tuples(children, children).map(lambda t: f"max([{t[0]}, {t[1]}])"),
        st.tuples(children, children).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    )


num_expr = st.recursive(num_leaves, _num, max_leaves=6)


def _str(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        children.map(lambda a: f"lower({a})"),
        children.map(lambda a: f"upper({a})"),
        children.map(lambda a: f"strip({a})"),
        children.map(lambda a: f"email_domain({a})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} + {t[1]})"),
        st.tuples(children, children).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        st.tuples(children, st.integers(0, 4)).map(lambda t: f"(lead.any * {t[1]})"),
    )


str_expr = st.recursive(str_leaves, _str, max_leaves=4)

cmp_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _bool_leaves() -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(num_expr, cmp_ops, num_expr).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(str_expr, cmp_ops, str_expr).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(date_leaves, cmp_ops, date_leaves).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(num_expr, cmp_ops, num_expr, cmp_ops, num_expr).map(lambda t: f"({' '.join(t)})"),
        st.tuples(str_expr, st.sampled_from(["in", "not in"]), st.lists(str_literals, max_size=9)).map(
            lambda t: f"({t[0]} {t[1]} [{', '.join(t[2])}])"
        ),
        st.tuples(num_expr, st.sampled_from(["in", "not in"]), st.lists(small_ints, max_size=9)).map(
            lambda t: f"({t[0]} {t[1]} [{', '.join(t[2])}])"
        ),
        st.tuples(str_expr, st.sampled_from(["in", "not in"]), str_expr).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(str_expr, st.sampled_from(["in", "not in"]), st.sampled_from(["lead.tags", "lead.any"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(str_expr, str_expr).map(lambda t: f"({t[0]} in [{t[1]}, \"a\"])"),
        st.tuples(str_expr, str_expr).map(lambda t: f"({t[0]} not in [{t[1]}, \"a\"])"),
        st.sampled_from(["present", "missing"]).flatmap(
            lambda f: st.one_of(num_expr, str_expr, date_leaves).map(lambda a: f"{f}({a})")
        ),
        st.tuples(str_expr, str_expr).map(lambda t: f"startswith({t[0]}, {t[1]})"),
        st.tuples(str_expr, str_expr).map(lambda t: f"endswith({t[0]}, [{t[1]}, \"x\"])"),
        st.tuples(str_expr, str_expr).map(lambda t: f"contains({t[0]}, {t[1]})"),
        str_expr.map(lambda a: f"contains(lead.tags, {a})"),
        str_expr.map(lambda a: f'matches({a}, "^[a-z]+$")'),
        str_expr.map(lambda a: f"is_free_email({a})"),
        st.sampled_from(
            ["lead.b", "lead.any", 'has_activity("demo_request")', 'has_activity("page_view", within_days=3)',
             "True", "False"]
        ),
    )  # fmt: skip


def _bool(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        children.map(lambda a: f"(not {a})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} and {t[1]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} or {t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[1]} if {t[0]} else {t[2]})"),
    )


bool_expr = st.recursive(_bool_leaves(), _bool, max_leaves=4)
any_expr = st.one_of(bool_expr, num_expr, str_expr)

# Values of every type, including those the checker cannot type (from `or` / `if` over different types), long
# literal lists (compiled to sets from 8 items), lists of objects; combined with every operator.
unknown_leaves = st.sampled_from([
    '("%0999d" or 0)', '("ab" or 0)', "(lead.s or 0)", "(lead.n or lead.s)", "(now or 0)", "(lead.d or 1)",
    "([lead.company] or 0)", "(lead.tags or 1)", "(lead.n if lead.b else lead.s)", "(lead.company if lead.b else 2)",
    "(lead.any or lead.tags)", "([1, 2] if lead.b else \"xy\")", "(lead.activities or 0)", "(lead.b or 2)",
])  # fmt: skip
list_leaves = st.one_of(
    st.sampled_from(["lead.tags", "[lead.company]", "[lead.company, lead.company]", "lead.activities", "[]",
                     "[lead.n, lead.s]", "[[1], [2]]", "lead.company"]),
    st.lists(st.one_of(small_ints, str_literals), min_size=7, max_size=12).map(lambda xs: f"[{', '.join(xs)}]"),
)  # fmt: skip
value_leaves = st.one_of(num_leaves, str_leaves, date_leaves, unknown_leaves, list_leaves,
                         st.sampled_from(["lead.b", "True", "False"]))
all_binary = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "in", "not in"])


def _mixed(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, all_binary, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} or {t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[1]} if {t[0]} else {t[2]})"),
        children.map(lambda a: f"(-{a})"),
        st.tuples(children, st.lists(st.one_of(small_ints, str_literals), min_size=8, max_size=11)).map(
            lambda t: f"({t[0]} {'in' if len(t[1]) % 2 else 'not in'} [{', '.join(t[1])}])"),
        st.tuples(st.sampled_from(["any", "all"]), st.sampled_from(["lead.tags", "lead.activities", "lead.any", "[1, 2, 3]"]),
                  all_binary, children).map(lambda t: f"{t[0]}({t[1]}, v, not not (v {t[2]} {t[3]}))"),
    )  # fmt: skip


mixed_expr = st.recursive(value_leaves, _mixed, max_leaves=4)

# ------------------------------------------------------------------------------------------ leads

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "AU", "%s", "x@gmail.com", "Ab", "é"]),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["k", "m", "x"]), inner, max_size=3)),
    max_leaves=6,
)
text = st.sampled_from(["", "a", "AU", "b c", "Jo@Uni.edu", "x@gmail.com", "é", "Ab", " pad ", "/p"])
dates = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2025, 1, 1), timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=10))])
).map(lambda d: d.isoformat())


def _maybe(strategy: st.SearchStrategy, nullable: bool = True) -> st.SearchStrategy:
    options = [st.just(_ABSENT), strategy]
    if nullable:
        options.append(st.none())
    return st.one_of(*options)


_ABSENT = object()

activity = st.fixed_dictionaries(
    {"type": st.sampled_from(ACTIVITY_TYPES), "at": dates}, optional={"url": st.sampled_from(["/p", "/pricing", ""])}
)
leads = st.fixed_dictionaries(
    {
        "n": _maybe(st.integers(-(2**40), 2**40)),
        "x": _maybe(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-100, 100))),
        "s": _maybe(text),
        "t": _maybe(text, nullable=False),
        "b": _maybe(st.booleans()),
        "d": _maybe(dates),
        "tags": _maybe(st.lists(st.one_of(text, st.none()), max_size=3)),
        "any": _maybe(json_values, nullable=False),
        "company": _maybe(
            st.fixed_dictionaries({}, optional={"k": text, "m": st.one_of(st.none(), st.integers(-10, 10))})
        ),
        "activities": _maybe(st.lists(activity, max_size=4), nullable=False),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not _ABSENT})

# ------------------------------------------------------------------------------------------ comparison


def outcome(fn, *args):
    try:
        return ("value", fn(*args))
    except EvaluationError as exc:
        return ("error", exc.code)


def check_agreement(source: str, raw: dict, want=None) -> None:
    try:
        compiled = compile_expression(source, SCOPE, want=want)
    except ExpressionError:
        assume(False)
        return
    for node in ast.walk(ast.parse(compiled.py, mode="eval")):
        assert not isinstance(node, ast.Attribute)
        if isinstance(node, ast.Name):
            assert node.id in ALLOWED_NAMES
    lead = LEADS.prepare(raw)
    start_meter(expression_cost(compiled.tree, LEADS.type.props["activities"]))  # the static bound holds at run time
    try:
        fast = outcome(compiled.fn, lead, NOW)
    finally:
        stop_meter()
    ref = outcome(compiled.reference, lead, NOW)
    assert fast[0] == ref[0], (source, compiled.py, raw, fast, ref)
    if fast[0] == "value":
        assert same(fast[1], ref[1]), (source, compiled.py, raw, fast, ref)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(source=bool_expr, raw=leads, as_condition=st.booleans())
def test_fast_path_matches_reference_on_conditions(source: str, raw: dict, as_condition: bool) -> None:
    check_agreement(source, raw, BOOL if as_condition else None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(source=any_expr, raw=leads)
def test_fast_path_matches_reference_on_values(source: str, raw: dict) -> None:
    check_agreement(source, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(source=mixed_expr, raw=leads, as_condition=st.booleans())
def test_fast_path_matches_reference_on_every_operator_and_type_pair(source: str, raw: dict, as_condition: bool) -> None:
    """Unknown types from or/if, long literal lists, lists of objects, quantifiers: the paths still agree."""
    check_agreement(source, raw, BOOL if as_condition else None)


@settings(max_examples=200, deadline=None)
@given(raw=leads)
def test_missing_comparisons_are_false_for_every_lead(raw: dict) -> None:
    lead = LEADS.prepare(raw)
    for field in ("n", "x", "s", "d", "b"):
        if lead[field] is not MISSING:
            continue
        for op in ("==", "!=", "<", "<=", ">", ">="):
            literal = {"n": "1", "x": "1.5", "s": '"a"', "d": "now", "b": "True"}[field]
            for source in (f"lead.{field} {op} {literal}", f"{literal} {op} lead.{field}"):
                if field == "b" and op not in ("==", "!="):
                    continue
                compiled = compile_expression(source, SCOPE)
                assert compiled.fn(lead, NOW) is False and compiled.reference(lead, NOW) is False, source
        if field == "s":
            for source in ('lead.s in ["a", "b"]', 'lead.s not in ["a", "b"]', '"a" in lead.s', '"a" not in lead.s',
                           'lead.s not in [lead.s]', 'lead.s in [lead.s]'):  # fmt: skip
                compiled = compile_expression(source, SCOPE)
                assert compiled.fn(lead, NOW) is False and compiled.reference(lead, NOW) is False, source


@pytest.mark.parametrize(
    "source, raw",
    [
        ('(lead.any * 3)', {"any": "ab"}),
        ('(lead.any * 3)', {"any": [1, None]}),
        ("(lead.any + lead.any)", {"any": {"k": 1}}),
        ("lead.any < 1", {"any": "a"}),
        ('lead.any in ["a"]', {"any": {"k": 1}}),
        ('lead.any not in "abc"', {"any": 5}),
        ('"a" in lead.any', {"any": 5}),
        ("lead.any % 2", {"any": "%d"}),
        ("(10 ** 300) * (10 ** 300)", {}),
        ("lead.n ** 3", {"n": 2**40}),
        ("lead.any == lead.any", {"any": [None]}),
        ("(1e300 * 1e300) - (1e300 * 1e300)", {}),
        # issue 17: found by the red team
        ('present(("%0999999999d" or 0) * 1 % 1)', {}),
        ("(([lead.company] or 0) * 1) in [1, 2, 3, 4, 5, 6, 7, 8]", {"company": {"k": "a"}}),
        ("(now or 0) - (now or 0)", {}),
        ("((now or 0) - (now or 0)) / 2", {}),
        ("(lead.d or 0) // 2", {"d": "2024-01-01T00:00:00Z"}),
        ('(lead.any or 0) * 3 + "x"', {"any": "ab"}),
        ("lead.any in [1, 2, 3, 4, 5, 6, 7, 8, 9]", {"any": [1]}),
        ("(lead.any or 0) not in [1, 2, 3, 4, 5, 6, 7, 8, 9]", {"any": {"k": 1}}),
        ("any(lead.tags, v, v in [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\"])", {"tags": ["h", None]}),
    ],
)
def test_regression_cases(source: str, raw: dict) -> None:
    check_agreement(source, raw)

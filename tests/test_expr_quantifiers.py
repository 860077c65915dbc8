"""any(list, x, condition) / all(list, x, condition): checked against the lead schema, compiled to a plain loop,
bounded by the sandbox's list limits and held to the reference evaluator."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import both_paths
from engine.errors import ExpressionError
from engine.expr import BOOL, DATETIME, MISSING, Scope, compile_expression
from engine.expr import sandbox
from engine.leads import LeadSchema

LEADS = LeadSchema.from_json_schema({"type": "object", "properties": {
    "pages_visited": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
    "scores": {"type": "array", "items": {"type": "integer"}},
    "contacts": {"type": "array", "items": {"type": "object", "properties": {"email": {"type": "string"},
                                                                             "role": {"type": "string"}}}},
    "name": {"type": "string"}, "any": {}}})  # fmt: skip
SCOPE = Scope({"lead": LEADS.type, "now": DATETIME})
T = datetime(2024, 6, 1, tzinfo=timezone.utc)


def run(source: str, raw: dict, want=None) -> tuple[object, object]:
    compiled = compile_expression(source, SCOPE, want=want)
    lead = LEADS.prepare(raw)
    return both_paths(compiled, lead, T)


@pytest.mark.parametrize("source, raw, want", [
    ('any(lead.pages_visited, p, startswith(p, "/blog/"))', {"pages_visited": ["/", "/blog/x"]}, True),
    ('any(lead.pages_visited, p, startswith(p, "/blog/"))', {"pages_visited": ["/", "/pricing"]}, False),
    ('any(lead.pages_visited, p, startswith(p, "/blog/"))', {"pages_visited": []}, False),
    ('all(lead.pages_visited, p, startswith(p, "/blog/"))', {"pages_visited": []}, True),
    ('all(lead.scores, s, s > 2)', {"scores": [3, 4]}, True),
    ('all(lead.scores, s, s > 2)', {"scores": [3, 1]}, False),
    ('any(lead.pages_visited, p, startswith(p, "/blog/"))', {}, MISSING),
    ('any(lead.contacts, c, c.role == "cto" and any(lead.pages_visited, p, contains(p, c.email)))',
     {"contacts": [{"role": "cto", "email": "x"}], "pages_visited": ["/a?x"]}, True),
    ('any(lead.contacts, c, present(c.email))', {"contacts": [{"role": "a"}, {"email": "e"}]}, True),
    ('any(lead.any, v, v == 3)', {"any": [1, 3]}, True),
    ('any(lead.any, v, v == 3)', {"any": "abc"}, sandbox.EVAL_TYPE),
    ('any(lead.any, v, v == 3)', {"any": list(range(sandbox.MAX_COLLECTION_LENGTH + 1))}, sandbox.EVAL_LIMIT),
    ('all([1, 2, 3], n, n * 2 < 7)', {}, True),
])  # fmt: skip
def test_semantics_match_the_reference(source: str, raw: dict, want: object) -> None:
    fast, ref = run(source, raw)
    if want is MISSING:
        assert fast is MISSING and ref is MISSING
    else:
        assert fast == ref == want


def test_compiled_to_a_plain_loop() -> None:
    py = compile_expression('any(lead.pages_visited, p, startswith(p, "/blog/"))', SCOPE).py
    assert py == "_q_any(lead['pages_visited'], lambda _v0: _f_startswith(_v0, '/blog/'))"


def test_as_a_condition_missing_is_false() -> None:
    assert run('any(lead.pages_visited, p, p == "x")', {}, BOOL) == (False, False)


@pytest.mark.parametrize("source, code, fragment", [
    ("any(lead.name, c, c == \"a\")", sandbox.EXPR_TYPE, "needs a list"),
    ("any(lead.pages_visited, p)", sandbox.EXPR_BAD_CALL, "exactly 3 arguments"),
    ("any(lead.pages_visited, \"p\", True)", sandbox.EXPR_BAD_CALL, "plain name"),
    ("any(lead.pages_visited, lead, True)", sandbox.EXPR_BAD_CALL, "already a name"),
    ("any(lead.pages_visited, lower, True)", sandbox.EXPR_BAD_CALL, "already a name"),
    ("any(lead.pages_visited, p, any(lead.pages_visited, p, True))", sandbox.EXPR_BAD_CALL, "already a name"),
    ("any(lead.pages_visited, p, p + 1)", sandbox.EXPR_TYPE, "cannot apply"),
    ("any(lead.pages_visited, p, len(p))", sandbox.EXPR_TYPE, "must be true/false"),
    ("any(lead.contacts, c, c.emial == \"x\")", sandbox.EXPR_UNKNOWN_FIELD, "unknown field"),
    ("p == \"x\" and any(lead.pages_visited, p, True)", sandbox.EXPR_UNKNOWN_NAME, "unknown name"),
    ("any(lead.scores, a, any(lead.scores, b, any(lead.scores, c, any(lead.scores, d, True))))",
     sandbox.EXPR_LIMIT, "nested"),
])  # fmt: skip
def test_checked_against_the_schema(source: str, code: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, SCOPE)
    assert info.value.code == code and fragment in info.value.message, info.value.message


def test_the_item_name_is_not_reachable_outside_its_condition() -> None:
    with pytest.raises(ExpressionError):
        compile_expression('any(lead.pages_visited, p, True) and p == "x"', SCOPE)

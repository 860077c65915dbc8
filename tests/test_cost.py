"""The static cost bound (validate reports it, refuses a policy over budget) and the runtime meter behind it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

import cli
from conftest import EXAMPLE_POLICIES, NOW, PolicyDir
from engine.batch import evaluate_lines
from engine.costbound import PolicyCost, policy_cost
from engine.errors import LeadError
from engine.expr import DATETIME, Scope, compile_expression
from engine.expr import sandbox
from engine.expr.cost import expression_cost, loop_cost
from engine.leads import LeadSchema


def _scope(tags: dict) -> Scope:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, **tags},
                                               "name": {"type": "string", "maxLength": 80}, "any": {}}}
    return Scope({"lead": LeadSchema.from_json_schema(schema).type, "now": DATETIME})


def cost_of(source: str, tags: dict | None = None) -> int:
    compiled = compile_expression(source, _scope(tags or {}))
    return expression_cost(compiled.tree)


def test_declared_sizes_bound_the_cost() -> None:
    small = cost_of('contains(lead.tags, "x")', {"maxItems": 5})
    default = cost_of('contains(lead.tags, "x")')
    assert small < 20 and default >= sandbox.DEFAULT_LEAD_MAX_ITEMS
    assert cost_of("lower(lead.name)") < cost_of("lower(lead.any)")
    assert cost_of('lead.name == "a"') < 10


def test_quantifier_cost_is_items_times_condition() -> None:
    one = cost_of('any(lead.tags, t, startswith(t, "/blog/"))', {"maxItems": 10})
    many = cost_of('any(lead.tags, t, startswith(t, "/blog/"))', {"maxItems": 1000})
    assert many > 50 * one  # a hundred times the items: about a hundred times the cost
    nested = cost_of("any(lead.tags, t, any(lead.tags, u, t == u))", {"maxItems": 1000})
    assert nested > 1000 * 1000


def test_activity_filter_scans_of_its_own_fields_are_bounded_by_the_lead_size() -> None:
    schema = {"type": "object", "properties": {"big": {"type": "string"}, "activities": {"type": "array", "items": {
        "type": "object", "properties": {"url": {"type": "string"}}}}}}  # fmt: skip
    lead_type = LeadSchema.from_json_schema(schema).type
    scope = Scope({"lead": lead_type, "now": DATETIME, "activity": lead_type.props["activities"].item})
    own = compile_expression('lower(activity.url) == "x"', scope)
    other = compile_expression('lower(lead.big) == "x"', scope)
    n = sandbox.DEFAULT_LEAD_MAX_ITEMS
    assert loop_cost(own.tree, n) < loop_cost(other.tree, n) // 10  # the same 100,000-char scan, once vs per item


def test_validate_reports_the_bound_in_text_and_json() -> None:
    runner = CliRunner()
    text = runner.invoke(cli.cli, ["validate", "--policies", str(EXAMPLE_POLICIES)])
    assert text.exit_code == 0 and "worst-case cost per lead" in text.output
    data = json.loads(runner.invoke(cli.cli, ["validate", "--policies", str(EXAMPLE_POLICIES), "--format", "json"]).output)
    cost = data["policy"]["cost"]
    assert cost["within_budget"] and 0 < cost["per_lead"] <= cost["budget"] == sandbox.DEFAULT_COST_BUDGET
    assert cost["dominant"][0]["cost"] >= cost["dominant"][-1]["cost"]


def test_a_policy_over_budget_is_refused_naming_the_dominant_rule(example_set: PolicyDir) -> None:
    example_set.patch("scoring.yaml", 'where: startswith(activity.url, "/pricing")',
                      'where: any(lead.activities, a, a.url == activity.url)')
    diags = example_set.diagnostics()
    assert [d.code for d in diags] == ["COST001"]
    assert "'pricing-page'" in diags[0].message and diags[0].location.file.endswith("scoring.yaml")
    assert "maxItems" in diags[0].hint


def test_the_budget_is_set_in_leadops_yaml(example_set: PolicyDir) -> None:
    bound = example_set.load().cost.total
    example_set.patch("leadops.yaml", "  max_changed_percent: 10\n",
                      f"  max_changed_percent: 10\n  max_cost_per_lead: {bound - 1}\n")
    diags = example_set.diagnostics()
    assert [d.code for d in diags] == ["COST001"] and diags[0].location.file.endswith("leadops.yaml")
    example_set.patch("leadops.yaml", f"max_cost_per_lead: {bound - 1}", f"max_cost_per_lead: {bound}")
    assert example_set.load().cost.budget == bound


def test_the_budget_setting_is_checked_by_the_leadops_schema(example_set: PolicyDir) -> None:
    example_set.patch("leadops.yaml", "  max_changed_percent: 10\n", "  max_changed_percent: 10\n  max_cost_per_lead: 5\n")
    assert example_set.codes() and "COST001" not in example_set.codes()


def test_the_meter_stops_a_lead_past_its_budget(example_set: PolicyDir) -> None:
    """The meter is the bound's backstop: a PolicySet held to a tiny budget refuses the lead, typed, per lead."""
    example_set.patch("scoring.yaml", 'where: startswith(activity.url, "/pricing")', 'where: matches(activity.url, "^/pricing")')
    ps = example_set.load()
    ps.cost = PolicyCost(ps.cost.rules, budget=200)
    acts = [{"type": "page_view", "at": (NOW - timedelta(minutes=i)).isoformat(), "url": "/x" * 200} for i in range(50)]
    with pytest.raises(LeadError) as info:
        ps.evaluate({"id": "big", "email": "a@b.co", "activities": acts}, NOW)
    assert info.value.code == sandbox.EVAL_COST
    assert ps.evaluate({"id": "small", "email": "a@b.co"}, NOW).to_dict()["lead_id"] == "small"  # next lead is fine
    lines = [json.dumps({"id": "a", "email": "a@b.co"}), json.dumps({"id": "big", "email": "a@b.co", "activities": acts}),
             json.dumps({"id": "c", "email": "a@b.co"})]
    out = io.StringIO()
    assert evaluate_lines(ps, enumerate(lines, 1), out, NOW, jobs=1, progress=False) == (3, 1)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(records) == 3 and records[1]["error"]["code"] == sandbox.EVAL_COST
    assert records[0]["lead_id"] == "a" and records[2]["lead_id"] == "c"


def test_outside_a_policy_evaluation_nothing_is_metered() -> None:
    compiled = compile_expression('any(lead.tags, t, matches(t, "x"))', _scope({}))
    lead = LeadSchema.from_json_schema({"type": "object", "properties": {"tags": {"type": "array"}}}).prepare(
        {"tags": ["y" * 1000] * 1000})
    assert compiled.fn(lead, NOW) is False


def test_lists_without_max_items_are_limited_by_the_validator() -> None:
    leads = LeadSchema.from_json_schema({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}})
    assert len(leads.prepare({"tags": ["x"] * sandbox.DEFAULT_LEAD_MAX_ITEMS})["tags"]) == sandbox.DEFAULT_LEAD_MAX_ITEMS
    with pytest.raises(LeadError) as info:
        leads.prepare({"tags": ["x"] * (sandbox.DEFAULT_LEAD_MAX_ITEMS + 1)})
    assert info.value.field == "tags"


def test_example_policy_bound_counts_every_rule(example_ps) -> None:
    bound = policy_cost(example_ps.model, example_ps.lead_schema.type)
    kinds = {r.kind for r in bound.rules}
    assert {"scoring", "stage", "routing", "sla", "activity-index"} <= kinds
    assert bound.total == sum(r.cost for r in bound.rules) <= bound.budget


def test_every_rule_run_of_one_lead_can_be_metered(example_set: PolicyDir) -> None:
    """`PolicySet.metered()` is the one way a caller that runs rules itself (the scorecard's facts) gets the
    same budget as a decision: past it the rules raise CostLimitError; outside it they are unmetered."""
    from engine.scoring import activities_by_type

    example_set.patch("scoring.yaml", 'where: startswith(activity.url, "/pricing")', 'where: matches(activity.url, "^/pricing")')
    ps = example_set.load()
    ps.cost = PolicyCost(ps.cost.rules, budget=200)
    acts = [{"type": "page_view", "at": (NOW - timedelta(minutes=i)).isoformat(), "url": "/x" * 200} for i in range(50)]
    view = ps.prepare({"id": "big", "email": "a@b.co", "activities": acts})
    ps.scoring.evaluate(view, NOW, activities_by_type(view, NOW), None, [])  # unmetered: runs
    with pytest.raises(LeadError) as info, ps.metered():
        ps.scoring.evaluate(view, NOW, activities_by_type(view, NOW), None, [])
    assert info.value.code == sandbox.EVAL_COST

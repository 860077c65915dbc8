"""The diff scores a lead once when both revisions score alike (`PolicySet.same_scoring` / `score_once`).

A reused score must decide exactly as scoring again would: same decision bytes, the scoring warnings first,
the scoring's cost units charged to the other revision's meter, and the same impact report."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from conftest import NOW
from benchmarks.leadgen import generate_leads
from engine.costbound import PolicyCost
from engine.errors import LeadError
from engine.expr import sandbox
from engine.impact import Comparer, analyse
from engine.scoring import activities_by_type


def _views(ps: Any, n: int, seed: int) -> list[Any]:
    views = []
    for lead in generate_leads(n, seed=seed, now=NOW):
        try:
            views.append(ps.prepare(lead))
        except LeadError:
            continue
    return views


def test_a_reused_score_decides_as_scoring_again(example_set) -> None:
    base = example_set.load()
    example_set.patch("stages.yaml", "score.total >= 50", "score.total >= 60")
    head = example_set.load()
    assert base.same_scoring(head)
    for view in _views(base, 800, seed=3):
        acts = activities_by_type(view, NOW, base.activity_kinds | head.activity_kinds)
        scored = base.score_once(view, NOW, acts)
        for ps in (base, head):
            assert ps.evaluate_prepared(view, NOW, acts=acts, scored=scored).to_dict() == \
                ps.evaluate_prepared(view, NOW).to_dict()


def test_scoring_warnings_come_first_as_when_scored_again(example_set) -> None:
    example_set.patch("scoring.yaml", "lead.employees >= 1000", "lead.employees / lead.company.annual_revenue >= 1000")
    ps = example_set.load()
    view = ps.prepare({"id": "w", "email": "a@b.co", "employees": 5, "company": {"annual_revenue": 0},
                       "stage": "mql", "stage_entered_at": NOW.isoformat()})
    again = ps.evaluate_prepared(view, NOW).to_dict()
    assert again["warnings"]  # division by zero in a scoring rule
    reused = ps.evaluate_prepared(view, NOW, acts={}, scored=ps.score_once(view, NOW, {})).to_dict()
    assert reused == again


def test_the_reused_scores_cost_counts_against_the_budget(example_set) -> None:
    example_set.patch("scoring.yaml", 'where: startswith(activity.url, "/pricing")', 'where: matches(activity.url, "^/pricing")')
    ps = example_set.load()
    acts = [{"type": "page_view", "at": (NOW - timedelta(minutes=i)).isoformat(), "url": "/x" * 200} for i in range(50)]
    view = ps.prepare({"id": "big", "email": "a@b.co", "activities": acts})
    index = activities_by_type(view, NOW, ps.activity_kinds)
    scored = ps.score_once(view, NOW, index)
    assert scored.units > 200
    ps.cost = PolicyCost(ps.cost.rules, budget=scored.units - 1)  # one unit short of what scoring takes
    for run in (lambda: ps.evaluate_prepared(view, NOW, acts=index, scored=scored), lambda: ps.evaluate_prepared(view, NOW)):
        with pytest.raises(LeadError) as info:
            run()
        assert info.value.code == sandbox.EVAL_COST
    ps.cost = PolicyCost(ps.cost.rules, budget=scored.units)  # exactly enough: both decide, alike
    assert ps.evaluate_prepared(view, NOW, acts=index, scored=scored).to_dict() == ps.evaluate_prepared(view, NOW).to_dict()


def test_sets_that_score_differently_never_share(example_set) -> None:
    base = example_set.load()
    example_set.patch("scoring.yaml", "lead.employees >= 1000", "lead.employees >= 900")
    assert not base.same_scoring(example_set.load())


def test_the_impact_is_the_same_with_and_without_sharing(example_set) -> None:
    base = example_set.load()
    example_set.patch("stages.yaml", "score.total >= 50", "score.total >= 60")
    head = example_set.load()
    lines = [(str(i), json.dumps(lead)) for i, lead in enumerate(generate_leads(1500, seed=21, now=NOW))]
    shared = Comparer(base, head, NOW, [])
    assert shared.share_score
    alone = Comparer(base, head, NOW, [])
    alone.share_score = False
    a, b = shared.compare(lines), alone.compare(lines)
    assert a.changed["stage"] > 0
    assert a == b
    assert analyse(base, head, lines, NOW, [], jobs=1).changed == a.changed

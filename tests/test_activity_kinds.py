"""The per-lead activity index holds only the types a policy counts (`PolicySet.activity_kinds`).

Decisions must not depend on it: the restricted index decides every lead exactly as the full one, and the diff,
which shares one index between two revisions, indexes what either revision counts."""

from __future__ import annotations

import json
from typing import Any

from conftest import NOW
from benchmarks.leadgen import generate_leads
from engine.errors import LeadError
from engine.impact import analyse
from engine.scoring import activities_by_type


def _valid(ps: Any, n: int, seed: int) -> list[Any]:
    out = []
    for lead in generate_leads(n, seed=seed, now=NOW):
        try:
            out.append((lead, ps.prepare(lead)))
        except LeadError:
            continue
    return out


def test_the_kinds_are_what_scoring_and_attempt_rules_count(example_set) -> None:
    ps = example_set.load()
    counted = {r.activity for g in ps.model.scoring.groups for r in g.rules if r.activity}
    assert counted and counted <= ps.activity_kinds
    assert "call_attempt" in ps.activity_kinds  # the first-touch SLA's attempt rule
    assert "email_open" not in ps.activity_kinds  # in the lead schema, counted by no rule


def test_a_restricted_index_decides_as_the_full_one(example_set) -> None:
    ps = example_set.load()
    leads = _valid(ps, 1500, seed=5)
    skipped = 0
    for _, view in leads:
        full = activities_by_type(view, NOW)
        skipped += sum(len(v) for k, v in full.items() if k not in ps.activity_kinds)
        assert ps.evaluate_prepared(view, NOW).to_dict() == ps.evaluate_prepared(view, NOW, acts=full).to_dict()
    assert skipped > 100  # the generated leads do carry activities no rule counts


def test_a_policy_counting_no_activity_builds_no_index(example_set) -> None:
    ps = example_set.load()
    _, view = next((lead, v) for lead, v in _valid(ps, 200, seed=9) if v["activities"])
    assert activities_by_type(view, NOW, frozenset()) == {}
    assert activities_by_type(view, NOW, frozenset({"page_view"})).keys() <= {"page_view"}


def test_the_diff_indexes_what_either_revision_counts(example_set) -> None:
    base = example_set.load()
    example_set.patch("scoring.yaml", "      - id: webinar\n        activity: webinar_attended\n",
                      "      - id: opened\n        activity: email_open\n        within: 30d\n        points: 7\n"
                      "        limit: 1\n      - id: webinar\n        activity: webinar_attended\n")
    head = example_set.load()
    assert "email_open" in head.activity_kinds - base.activity_kinds
    leads = [lead for lead, _ in _valid(base, 600, seed=11)]
    opened = [lead for lead in leads if any(a.get("type") == "email_open" for a in lead.get("activities", ()))]
    assert opened
    impact = analyse(base, head, ((str(i), json.dumps(lead)) for i, lead in enumerate(leads)), NOW, [], jobs=1)
    # decided apart, each revision with its own index: the diff must count the same score changes
    def total(ps: Any, lead: Any) -> float:
        return ps.evaluate(lead, NOW).to_dict()["score"]["total"]

    changed = sum(1 for lead in leads if total(base, lead) != total(head, lead))
    assert changed > 0
    assert impact.changed["score"] == changed

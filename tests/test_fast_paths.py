"""The generated fast paths for decisions without a trace (routing: `routing.build_fast_router`, stages:
`stages.build_fast_forward`) decide exactly what the explained rule-by-rule walk decides, warnings included,
also when a condition fails at run time (a warning and no match, never a crash)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from conftest import NOW
from benchmarks.leadgen import generate_leads


def with_campaign(example_set: Any) -> Any:
    """The example set whose lead schema has an untyped `campaign` field (so `lower(lead.campaign)` can fail)."""
    schema = example_set.root / "schemas" / "lead.schema.json"
    schema.write_text(schema.read_text().replace('"properties": {', '"properties": {"campaign": {}, ', 1))
    return example_set


def compare(ps: Any, section: str, rule_of: Any) -> tuple[Counter, int]:
    """Fast vs explained decisions of generated leads (campaign: 42 / "VIP" / "other" / null in turn):
    the `section` and the warnings must be equal, byte for byte. Returns (rules counted, leads warned about)."""
    leads = list(generate_leads(600, seed=21, now=NOW))
    for k, lead in enumerate(leads):
        lead["campaign"] = (42, "VIP", "other", None)[k % 4]
    seen: Counter = Counter()
    warned = 0
    for lead in leads:
        try:
            fast = ps.evaluate(lead, NOW).to_dict()
        except Exception as exc:  # invalid generated leads fail the same way on both paths
            with pytest.raises(type(exc)):
                ps.evaluate(lead, NOW, explain=True)
            continue
        slow = ps.evaluate(lead, NOW, explain=True).to_dict()
        assert json.dumps(fast[section]) == json.dumps(slow[section])
        assert fast.get("warnings") == slow.get("warnings")
        seen[rule_of(fast[section])] += 1
        warned += bool(fast.get("warnings"))
    return seen, warned


def test_fast_router_equals_the_rule_by_rule_walk(example_set) -> None:
    with_campaign(example_set).patch("routing.yaml", "rules:\n", 'rules:\n  - id: vip\n    when: lower(lead.campaign) == "vip"\n'
                                     "    assign: {queue: partner-desk}\n")
    routed, warned = compare(example_set.load(), "route", lambda r: r["rule"])
    assert routed["vip"] > 100 and warned > 100 and len(routed) >= 6


def test_fast_stage_walk_equals_the_rule_by_rule_walk(example_set) -> None:
    with_campaign(example_set).patch("stages.yaml", "entry: present(lead.email) and not lead.unsubscribed",
                                     'entry: lower(lead.campaign) != "other" and present(lead.email) and not lead.unsubscribed')
    stages, warned = compare(example_set.load(), "stage", lambda s: s["to"])
    assert warned > 10 and stages["lead"] > 50 and stages["mql"] > 10 and len(stages) >= 4

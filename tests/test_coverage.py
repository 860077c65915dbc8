"""engine/coverage.py: decision coverage of the scenario suite, listed by policy file:line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

import engine
from engine import coverage, scenarios as sc

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.fromisoformat("2026-11-23T09:00:00+10:00")


@pytest.fixture(scope="module")
def ps() -> engine.PolicySet:
    return engine.load_policies(str(ROOT / "policies"))


def test_targets_of_the_example_policies(ps: engine.PolicySet) -> None:
    targets = coverage.targets(ps)
    counts = {k: sum(t.kind == k for t in targets) for k in coverage.KINDS}
    assert counts == {"scoring": 23, "stage": 3, "transition": 12, "routing": 13, "sla": 3, "escalation": 6}
    by_id = {(t.kind, t.id): t for t in targets}
    assert str(by_id[("scoring", "pricing-page")].location).startswith("policies/scoring.yaml:68")
    assert by_id[("transition", "nurture->mql")].label == "auto transition nurture -> mql"
    assert by_id[("escalation", "sql-first-response#2")].location.line == 23
    assert by_id[("stage", "sql")].location.file == "policies/stages.yaml"


def run_sample(ps: engine.PolicySet, name: str, asserted: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    import json

    data = json.loads((ROOT / "scenarios" / "leads" / name).read_text())
    return coverage.exercised(ps, ps.evaluate(data, NOW).to_dict(), asserted)


def test_exercised_by_one_decision(ps: engine.PolicySet) -> None:
    hit = run_sample(ps, "icp-enterprise-brisbane.json")
    assert ("stage", "sql") in hit and ("routing", "anz-enterprise") in hit
    assert ("sla", "enterprise-first-response") in hit and ("scoring", "demo-request") in hit
    # the SLA applies, but at 09:00 none of its escalation steps (12:00, 13:00, 17:00) is due yet
    assert not any(k == "escalation" for k, _ in hit)
    asserted = run_sample(ps, "icp-enterprise-brisbane.json", ("slas[sql-first-response].escalations[2].at",))
    assert ("escalation", "sql-first-response#2") in asserted


def test_transitions_and_auto_transitions(ps: engine.PolicySet) -> None:
    assert ("transition", "sql->nurture") in run_sample(ps, "handback-with-reason.json")
    # a refused hand-back covers nothing
    assert not any(k == "transition" for k, _ in run_sample(ps, "handback-without-reason.json"))
    import json

    lead = json.loads((ROOT / "scenarios" / "leads" / "seq-smb-pricing.json").read_text())
    lead["stage"] = "recycled"
    hit = coverage.exercised(ps, ps.evaluate(lead, NOW).to_dict())
    assert {("transition", "recycled->mql"), ("stage", "mql")} <= hit


def test_report_numbers_for_the_sample_leads(ps: engine.PolicySet) -> None:
    scenarios, diags = sc.load_all([ROOT / "scenarios" / "sample-leads.yaml"])
    assert diags == []
    results = sc.run(ps, scenarios)
    rep = coverage.report(ps, ((r.decision, [e.path for e in r.scenario.expect]) for r in results))
    assert rep["total"] == 60
    assert rep["kinds"]["sla"] == {"covered": 3, "total": 3, "coverage": 100.0}
    assert rep["kinds"]["transition"]["covered"] == 1          # only sql -> nurture
    assert rep["covered"] < rep["total"]
    assert rep["coverage"] == round(100 * rep["covered"] / 60, 1)
    missing = {(m["kind"], m["id"]) for m in rep["not_covered"]}
    assert ("transition", "opportunity->recycled") in missing and ("routing", "anz-public-sector") in missing
    text = coverage.report_text(rep)
    assert f"coverage: {rep['covered']}/60 policy rules exercised" in text
    assert "  policies/routing.yaml:26: routing rule anz-public-sector" in text


def test_full_suite_reaches_every_rule(ps: engine.PolicySet) -> None:
    scenarios, diags = sc.load_all([ROOT / "scenarios"])
    assert diags == [] and len(scenarios) >= 60
    results = sc.run(ps, scenarios)
    assert all(r.ok for r in results), "\n".join(sc.failure_text(r) for r in results if not r.ok)
    rep = coverage.report(ps, ((r.decision, [e.path for e in r.scenario.expect]) for r in results))
    assert (rep["covered"], rep["total"], rep["coverage"], rep["not_covered"]) == (60, 60, 100.0, [])

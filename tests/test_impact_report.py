"""The approver's report: funnel, teams and reps, cut-off histograms, named example leads, redaction, HTML."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from engine import handbook as hb
from engine.impact import Report, analyse, iter_lead_texts, lead_facts, team_label
from engine.impact_html import ImpactDocumentError, report_body, report_page
from engine.semantic_diff import semantic_diff
from engine.thresholds import changed_thresholds, thresholds
from tests.test_impact import BASE, NOW, SCENARIO_LEADS, SEQ_200, SQL_60, generated, head_with

PRICING_25 = {"scoring.yaml": [("        points: 20\n        limit: 1", "        points: 25\n        limit: 1")]}


def report_for(head, leads, redact: bool = False) -> Report:
    changes = semantic_diff(BASE.model, head.model)
    imp = analyse(BASE, head, leads, NOW, changes, progress=False)
    words = [c.to_dict() for c in hb.diff_handbooks(hb.handbook(BASE, NOW.date()), hb.handbook(head, NOW.date()))]
    return Report("main", "head", "base", "head", NOW, changes, imp, "test leads", None, False, "leadops diff …",
                  words, changed_thresholds(BASE.model, head.model), redact)


def decisions(ps, leads):
    return [ps.evaluate(json.loads(text), NOW).to_dict() for _, text in leads]


@pytest.fixture(scope="module")
def sql_and_seq():
    leads = generated(400, seed=11)
    head = head_with({**SQL_60, **SEQ_200})
    return leads, head, report_for(head, leads)


def test_funnel_counts_each_stage_before_and_after(sql_and_seq) -> None:
    leads, head, rep = sql_and_seq
    want_base = Counter(d["stage"]["to"] for d in decisions(BASE, leads))
    want_head = Counter(d["stage"]["to"] for d in decisions(head, leads))
    funnel = rep.impact.funnel()
    assert {r["stage"]: r["base"] for r in funnel["stages"]} == want_base
    assert {r["stage"]: r["head"] for r in funnel["stages"]} == want_head
    for side, want in (("base", want_base), ("head", want_head)):  # weeks partition the sample
        per_week = Counter()
        for w in funnel["weeks"]:
            for stage, c in w["stages"].items():
                per_week[stage] += c[side]
        assert +per_week == want
    assert want_head["sql"] < want_base["sql"]
    md = rep.markdown()
    assert f"| SQL | {want_base['sql']} | {want_head['sql']} |" in md


def test_team_and_rep_gains_and_losses_match_the_decisions(sql_and_seq) -> None:
    leads, head, rep = sql_and_seq
    gained, lost = Counter(), Counter()
    for a, b in zip(decisions(BASE, leads), decisions(head, leads)):
        ra = (a["route"].get("queue"), a["route"].get("team"), a["route"].get("owner"))
        rb = (b["route"].get("queue"), b["route"].get("team"), b["route"].get("owner"))
        if team_label(ra) != team_label(rb):
            lost[team_label(ra)] += 1
            gained[team_label(rb)] += 1
    teams = {r["name"]: r for r in rep.impact.assignees()["teams"]}
    assert gained["team seq-smb"] > 0
    assert {n: r["gained"] for n, r in teams.items() if r["gained"]} == gained
    assert {n: r["lost"] for n, r in teams.items() if r["lost"]} == lost
    assert sum(r["leads_head"] for r in teams.values()) == rep.impact.total
    assert "### Impact per team and rep" in rep.markdown()


def test_histogram_around_the_moved_sql_cut_off(sql_and_seq) -> None:
    leads, head, rep = sql_and_seq
    assert [(o.gate, o.score, o.value, n.value) for o, n in rep.thresholds] == [("stage:sql", "total", 50, 60)]
    totals = [d["score"]["total"] for d in decisions(BASE, leads)]
    (window,) = rep.threshold_windows()
    assert window["near_old"] == sum(1 for t in totals if abs(int(t // 1) - 50) <= 10)
    assert sum(r["base"] for r in window["histogram"]) == sum(1 for t in totals if 40 <= t // 1 <= 70)
    assert "### Near the SQL entry cut-off (total score >= 50 → 60)" in rep.markdown()


def test_thresholds_are_read_from_entry_expressions_and_grades() -> None:
    found = {(t.gate, t.score, t.op, t.value) for t in thresholds(BASE.model)}
    assert {("stage:mql", "total", ">=", 30), ("stage:mql", "fit", ">=", 10), ("stage:sql", "total", ">=", 50),
            ("grade:fit:A", "fit", ">=", 60)} <= found
    assert changed_thresholds(BASE.model, BASE.model) == []


def test_the_change_in_words_comes_first(sql_and_seq) -> None:
    md = sql_and_seq[2].markdown()
    assert md.index("### The change in words") < md.index("### Funnel") < md.index("### Policy changes")
    assert "**60**" in md and "Rule 7, seq-smb" in md


def test_examples_name_the_lead_its_company_and_score_and_redact_masks_names() -> None:
    head = head_with(PRICING_25)
    leads = list(iter_lead_texts(SCENARIO_LEADS))
    plain = report_for(head, leads)
    md = plain.markdown()
    row = next(line for line in md.splitlines() if "`L-1001`" in line and line.startswith("| score"))
    assert "Olivia Hart" in row and "CoralSoft Pty Ltd" in row and "→" in row
    icp = plain.impact.examples["score"]
    assert any(ex["name"] == "Olivia Hart" and float(ex["score_after"]) - float(ex["score_before"]) == 5 for ex in icp)
    hidden = report_for(head, leads, redact=True)
    for text in (hidden.markdown(), json.dumps(hidden.to_dict()), report_page(hidden.to_dict()), hidden.text()):
        assert "Olivia" not in text and "Hart" not in text
        assert "O. H." in text and "CoralSoft Pty Ltd" in text


def test_lead_facts_week_and_name() -> None:
    facts = lead_facts({"first_name": "Ann", "last_name": " ", "company": {"name": "X"},
                        "activities": [{"at": "2026-11-02T10:00:00+10:00"}, {"at": "2026-11-20T10:00:00+10:00"}]})
    assert facts == {"name": "Ann", "company": "X", "week": "2026-W47"}
    assert lead_facts({"stage_entered_at": "not a date"})["week"] == "undated"
    assert lead_facts([1]) == {}


def test_html_report_is_self_contained_and_escapes_lead_data(sql_and_seq) -> None:
    head = head_with(PRICING_25)
    hostile = json.dumps({"id": "H-1", "first_name": "<img src=x onerror=alert(1)>", "country": "AU", "email": "a@b.co",
                          "activities": [{"type": "page_view", "at": "2026-11-20T10:00:00+10:00", "url": "/pricing"}]})
    rep = report_for(head, [("hostile.json", hostile)])
    page = report_page(rep.to_dict())
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)
    assert "<img" not in page and "&lt;img src=x" in page
    full = report_page(sql_and_seq[2].to_dict())
    assert "Funnel" in full and "Near the SQL entry cut-off" in full and "Impact per team and rep" in full


@pytest.mark.parametrize("doc, words", [
    ([], "JSON object"),
    ({"base": {}}, "no 'head'"),
    ({"base": {}, "head": {}, "headline": "", "changes": [], "impact": {"leads": "x"}, "guard": {}}, "not a `leadops diff"),
])
def test_html_refuses_documents_of_the_wrong_shape(doc, words) -> None:
    with pytest.raises(ImpactDocumentError, match=re.escape(words)):
        report_body(doc)


def test_html_report_is_the_same_bytes_for_the_same_inputs() -> None:
    head = head_with(SQL_60)
    leads = list(iter_lead_texts(SCENARIO_LEADS))
    first, second = (report_page(report_for(head, leads).to_dict()) for _ in range(2))
    assert first == second

"""The policy diff in words: each kind of change named the way a reviewer would say it."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.semantic_diff import Change, changes_markdown, describe_expr_change, semantic_diff
from engine.sources import read_directory

ROOT = Path(__file__).resolve().parents[1]
BASE_FILES, BASE_ROOT = read_directory(ROOT / "policies")
BASE = engine.load_policy_files(BASE_FILES, BASE_ROOT, revision="base")


def changed(edits: dict[str, list[tuple[str, str]]]) -> list[str]:
    files = dict(BASE_FILES)
    for name, pairs in edits.items():
        text = files[f"policies/{name}"].decode()
        for old, new in pairs:
            assert old in text, old
            text = text.replace(old, new, 1)
        files[f"policies/{name}"] = text.encode()
    head = engine.load_policy_files(files, BASE_ROOT, revision="head")
    return [str(c) for c in semantic_diff(BASE.model, head.model)]


def test_no_change_no_words() -> None:
    assert semantic_diff(BASE.model, BASE.model) == []
    assert changes_markdown([]) == "_No policy changes._"


def test_points_window_limit_decay() -> None:
    out = changed({"scoring.yaml": [
        ("        within: 30d\n        points: 20\n", "        within: 14d\n        points: 25\n"),
        ("        points: 3\n        limit: 3\n", "        points: 3\n        limit: 5\n"),
        ("decay: {every: 30d, factor: 0.5}", "decay: {every: 30d, factor: 0.25}"),
    ]})
    assert "scoring › pricing-page: 20 → 25 points" in out
    assert "scoring › pricing-page: window 30d → 14d" in out
    assert "scoring › product-pages: counted at most 3 → 5 times" in out
    assert "scoring › whitepaper: decay ×0.5 every 30d → ×0.25 every 30d" in out


def test_rules_added_removed_and_thresholds() -> None:
    out = changed({"scoring.yaml": [
        ("      - id: manager\n        when: lead.seniority == \"manager\"\n        points: 8\n", ""),
        ("      - id: free-email\n", "      - id: gov-domain\n        when: endswith(lower(lead.email), \".gov.au\")\n"
                                     "        points: 5\n      - id: free-email\n"),
        ("{grade: A, min: 60}", "{grade: A, min: 65}"),
        ("when: lead.employees >= 1000\n        points: 10", "when: lead.employees >= 500\n        points: 10"),
    ]})
    assert any(x.startswith("scoring › manager: rule removed from fit (was 8 points") for x in out)
    assert any(x.startswith("scoring › gov-domain: rule added to fit: 5 points when") for x in out)
    assert "scoring › fit grades: grade A: ≥ 60 → ≥ 65" in out
    assert "scoring › enterprise-1000-plus: when: lead.employees >= 1000 → 500" in out


def test_stage_threshold_in_words() -> None:
    out = changed({"stages.yaml": [("score.total >= 50 and not lead.is_competitor",
                                    "score.total >= 60 and not lead.is_competitor")]})
    assert out == ["stages › sql: entry: score.total >= 50 → 60"]


def test_routing_reorder_target_and_condition() -> None:
    seq = ("  - id: seq-smb\n    description: South East Queensland small business, worked from Brisbane.\n"
           "    when: lead.country == \"AU\" and lead.state == \"QLD\" and lead.employees < 101\n"
           "    assign: {team: seq-smb}\n")
    out = changed({"routing.yaml": [
        (seq, ""),
        ("  - id: anz-enterprise\n", seq + "  - id: anz-enterprise\n"),
        ("    when: lead.source == \"partner\"\n    assign: {queue: partner-desk}",
         "    when: lead.source == \"partner\"\n    assign: {team: anz-mid-market}"),
        ('lead.country in ["US", "CA", "MX", "BR"]', 'lead.country in ["US", "CA", "MX"]'),
    ]})
    assert "routing › seq-smb: moved from #7 to #5 (now before anz-enterprise)" in out
    assert "routing › partner-referrals: assigns to queue partner-desk → team anz-mid-market" in out
    assert 'routing › americas: when: `lead.country in ["US", "CA", "MX", "BR"]` → `lead.country in ["US", "CA", "MX"]`' in out
    assert len([x for x in out if "moved" in x]) == 1  # only the rule that moved, not every rule it passed


def test_sla_hours_calendars_and_teams() -> None:
    out = changed({
        "slas.yaml": [("    respond_within: 4h\n", "    respond_within: 3h\n"), ("{at: 75%, action: notify, to: owner}",
                                                                               "{at: 50%, action: notify, to: owner}")],
        "calendars.yaml": [('hours: {mon-fri: "08:30-17:00"}', 'hours: {mon-fri: "08:00-17:00"}'),
                           ("      - {date: \"2026-12-31\", name: Office shutdown}\n", "")],
        "teams.yaml": [("{id: ben.taylor, weight: 1}", "{id: ben.taylor, weight: 2}"),
                       ("{id: emma.wilson, weight: 1, active: false}", "{id: emma.wilson, weight: 1}")],
    })
    assert "slas › sql-first-response: respond within 4h → 3h (business time)" in out
    assert "slas › sql-first-response: escalation added: 50% notify owner" in out
    assert "slas › sql-first-response: escalation removed: 75% notify owner" in out
    assert any(x.startswith("calendars › brisbane: business hours mon 08:30-17:00") and "mon 08:00-17:00" in x for x in out)
    assert "calendars › brisbane: closure removed: 2026-12-31 (Office shutdown)" in out
    assert "teams › anz-enterprise: ben.taylor weight 1 → 2" in out
    assert "teams › seq-smb: emma.wilson re-activated" in out


def test_owners_and_guard() -> None:
    out = changed({"leadops.yaml": [("max_changed_percent: 10", "max_changed_percent: 25"),
                                    ("members: [dan-salesops]", "members: [dan-salesops, eve-salesops]"),
                                    ("approvers: [sales-ops]}\n    slas", "approvers: [sales-ops, sales]}\n    slas")]})
    assert "policy-set: blast-radius guard (max % of leads changing stage or route) 10 → 25" in out
    assert "owners › sales-ops: member added: eve-salesops" in out
    assert "owners › area routing: approver group added: sales" in out


@pytest.mark.parametrize("old,new,words", [
    ("score.total >= 50", "score.total >= 55", "score.total >= 50 → 55"),
    ('has_activity("demo_request", within_days=30)', 'has_activity("demo_request", within_days=14)',
     'has_activity("demo_request") within_days = 30 → 14'),
    ("lead.employees < 101 and x", "lead.employees <= 101 and x", "`lead.employees < 101 and x` → `lead.employees <= 101 and x`"),
])
def test_expression_changes(old: str, new: str, words: str) -> None:
    assert describe_expr_change(old, new) == words


def test_markdown_table_escapes_pipes() -> None:
    md = changes_markdown([Change("routing", "x", "changed", "when: `a | b` → `c`")])
    assert "\\|" in md and md.count("\n") == 2

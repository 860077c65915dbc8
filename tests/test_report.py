"""The scorecard (engine.report, `leadops report`): fact rows computed by hand, aggregates recomputed here from the
fact table with the standard library, policy revisions from real git history, outputs, and the HTML page in
Chromium."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import cli
from engine.report import report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package

from benchmarks.historygen import generate_histories  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
T = datetime.fromisoformat


def sql_lead(ident: str, entered: str, *, owner: str = "chloe.smith", acts: list[dict[str, Any]] = (),
             **extra: Any) -> dict[str, Any]:
    """A South East Queensland small business SQL (routes to seq-smb, Brisbane hours 08:30-17:00)."""
    lead = {"id": ident, "email": f"{ident.lower()}@coralsoft.com.au", "country": "AU", "state": "QLD",
            "employees": 12, "source": "website", "created_at": entered,
            "stage_history": [{"stage": "lead", "at": entered}, {"stage": "sql", "at": entered}],
            "owner_history": [{"owner": owner, "at": entered}], "activities": list(acts)}
    lead.update(extra)
    return lead


def touch(kind: str, at: str, actor: str = "chloe.smith", **more: Any) -> dict[str, Any]:
    return {"type": kind, "at": at, "actor": actor, "direction": "outbound", **more}


def rows_of(policies: Path, leads: list[dict[str, Any]], now: str, **kw: Any) -> dict[str, dict[str, Any]]:
    card = report([("test", i + 1, lead) for i, lead in enumerate(leads)], T(now), policies=str(policies), jobs=1, **kw)
    assert card.errors == []
    return {r["lead_id"]: r for r in card.facts.to_pylist()}


# ------------------------------------------------------------------------------------------ hand-computed rows


def test_friday_evening_sql_touched_monday_morning(example_set) -> None:
    lead = sql_lead("FRI", "2026-11-20T18:30:00+10:00", acts=[touch("call_attempt", "2026-11-23T09:10:00+10:00",
                                                                       outcome="no_answer")])
    row = rows_of(example_set.policies, [lead], "2026-11-23T12:00:00+10:00")["FRI"]
    assert row["sla_id"] == "sql-first-response" and row["owner"] == "chloe.smith" and row["team"] == "seq-smb"
    assert row["clock_start"] == T("2026-11-20T18:30:00+10:00")
    assert row["due"] == T("2026-11-23T12:30:00+10:00")  # closed from Friday 17:00 to Monday 08:30, then 4 h
    assert row["warning_at"] == T("2026-11-23T11:30:00+10:00")  # the 75 % escalation step
    assert row["first_touch_at"] == T("2026-11-23T09:10:00+10:00") and row["first_touch_by"] == "chloe.smith"
    assert row["status"] == "met" and row["business_minutes_to_touch"] == 40.0
    assert row["week"] == "2026-W47" and row["calendar"] == "brisbane"


def test_christmas_closures_and_holidays_stop_the_clock(example_set) -> None:
    # Thu 24 Dec: open 11:00-12:00 (early close); 25 Christmas, 26-27 weekend, 28 Boxing Day (observed),
    # 29-31 office shutdown, 1 Jan New Year's Day, 2-3 weekend: the other 3 h run from Mon 4 Jan 08:30
    lead = sql_lead("XMAS", "2026-12-24T11:00:00+10:00", acts=[touch("email_sent", "2027-01-04T09:00:00+10:00")])
    row = rows_of(example_set.policies, [lead], "2027-01-05T09:00:00+10:00")["XMAS"]
    assert row["due"] == T("2027-01-04T11:30:00+10:00")
    assert row["warning_at"] == T("2027-01-04T10:30:00+10:00")
    assert row["business_minutes_to_touch"] == 90.0 and row["status"] == "met"


def test_daylight_saving_change_counts_business_hours_not_wall_hours(example_set) -> None:
    # New York: EDT ends Sunday 1 Nov 2026. Friday 16:00-17:00 EDT is 1 h; Monday 09:00 EST on: 3 h more
    lead = sql_lead("DST", "2026-10-30T16:00:00-04:00", owner="mia.johnson",
                    acts=[touch("call_attempt", "2026-11-02T10:00:00-05:00", actor="mia.johnson")],
                    country="US", state="NY", employees=50)
    lead.pop("state")
    row = rows_of(example_set.policies, [lead], "2026-11-03T12:00:00-05:00")["DST"]
    assert row["team"] == "americas" and row["calendar"] == "new-york"
    assert row["due"] == T("2026-11-02T12:00:00-05:00")
    assert row["business_minutes_to_touch"] == 120.0  # the wall clock says 67 h; the extra hour is not business time


def test_paused_clock_excludes_the_pause_and_an_open_pause_holds_it(example_set) -> None:
    closed = sql_lead("PAUSE", "2026-11-23T09:00:00+10:00", acts=[touch("meeting", "2026-11-23T13:00:00+10:00")],
                      sla_pauses=[{"from": "2026-11-23T10:00:00+10:00", "to": "2026-11-23T11:30:00+10:00"}])
    holding = sql_lead("HOLD", "2026-11-23T09:00:00+10:00", sla_pauses=[{"from": "2026-11-23T10:00:00+10:00"}])
    rows = rows_of(example_set.policies, [closed, holding], "2026-11-24T09:00:00+10:00")
    assert rows["PAUSE"]["due"] == T("2026-11-23T14:30:00+10:00")  # 4 h + the 1.5 h pause
    assert rows["PAUSE"]["business_minutes_to_touch"] == 150.0 and rows["PAUSE"]["status"] == "met"
    assert rows["HOLD"]["status"] == "paused" and rows["HOLD"]["due"] is None


def test_only_the_assignee_answers_when_the_sla_requires_the_assignee(example_set) -> None:
    lead = sql_lead("WRONG", "2026-11-23T09:00:00+10:00", acts=[
        touch("call_attempt", "2026-11-23T09:30:00+10:00", actor="dylan.jones"),  # a teammate: not the assignee
        {**touch("call_attempt", "2026-11-23T09:15:00+10:00"), "direction": "inbound"},  # the lead called us
        touch("page_view", "2026-11-23T09:20:00+10:00"),  # not a touch type
        touch("email_sent", "2026-11-23T14:00:00+10:00"),
    ])
    row = rows_of(example_set.policies, [lead], "2026-11-24T09:00:00+10:00")["WRONG"]
    assert row["first_touch_at"] == T("2026-11-23T14:00:00+10:00") and row["first_touch_type"] == "email_sent"
    assert row["status"] == "breached" and row["business_minutes_to_touch"] == 300.0


def test_open_at_risk_and_breached_without_a_touch(example_set) -> None:
    lead = sql_lead("NONE", "2026-11-23T10:00:00+10:00")
    at = {"open": "2026-11-23T11:00:00+10:00", "at_risk": "2026-11-23T13:30:00+10:00",
          "breached": "2026-11-23T16:00:00+10:00"}
    rows = {status: rows_of(example_set.policies, [lead], now)["NONE"] for status, now in at.items()}
    assert {s: r["status"] for s, r in rows.items()} == {s: s for s in at}
    assert rows["open"]["business_minutes_left"] == 180.0 and rows["at_risk"]["business_minutes_left"] == 30.0
    assert rows["breached"]["business_minutes_left"] is None and rows["breached"]["first_touch_at"] is None


def test_attempts_counted_before_disqualification(example_set) -> None:
    lead = sql_lead("DQ", "2026-11-23T09:00:00+10:00", acts=[
        touch("call_attempt", "2026-11-23T09:10:00+10:00", outcome="no_answer"),
        touch("call_attempt", "2026-11-23T11:00:00+10:00", outcome="voicemail"),
        touch("call_attempt", "2026-11-23T15:00:00+10:00", outcome="no_answer"),
        touch("call_attempt", "2026-11-25T09:00:00+10:00", outcome="connected"),  # after the lead left the stage
    ])
    lead["stage_history"].append({"stage": "disqualified", "at": "2026-11-24T10:00:00+10:00", "reason_code": "no-need"})
    row = rows_of(example_set.policies, [lead], "2026-11-26T09:00:00+10:00")["DQ"]
    assert (row["attempts_made"], row["attempts_required"]) == (3, 6)
    assert row["disqualified_before_attempts"] is True
    assert (row["exit_stage"], row["exit_reason"]) == ("disqualified", "no-need")
    assert row["status"] == "met" and row["business_minutes_to_touch"] == 10.0


def test_an_sla_without_touched_by_is_answered_by_leaving_the_stage(example_set) -> None:
    lead = sql_lead("MQL", "2026-11-23T09:00:00+10:00")
    lead["stage_history"] = [{"stage": "mql", "at": "2026-11-23T09:00:00+10:00"},
                             {"stage": "sal", "at": "2026-11-23T11:00:00+10:00", "by": "chloe.smith"}]
    card = report([("t", 1, lead)], T("2026-11-24T09:00:00+10:00"), policies=str(example_set.policies), jobs=1)
    (row,) = card.facts.to_pylist()
    assert row["sla_id"] == "mql-acceptance" and row["first_touch_type"] == "stage:sal" and row["status"] == "met"
    assert row["business_minutes_to_touch"] == 120.0


# ------------------------------------------------------------------------------------------ the policy and input


def test_touched_by_names_activity_types_the_lead_schema_knows(example_set) -> None:
    example_set.patch("slas.yaml", "types: [call_attempt, meeting], by: team", "types: [call_atempt], by: team")
    (diag,) = [d for d in example_set.diagnostics() if d.code == "REF010"]
    assert "call_atempt" in diag.message and "did you mean 'call_attempt'" in diag.hint
    assert diag.location.file.endswith("slas.yaml") and diag.location.line > 1


def test_touched_by_rejects_an_unknown_by(example_set) -> None:
    example_set.patch("slas.yaml", "by: assignee", "by: manager")
    assert "SCHEMA001" in example_set.codes() or any(c.startswith("SCHEMA") for c in example_set.codes())


def test_bad_leads_are_counted_and_named_the_rest_goes_on(example_set, tmp_path: Path) -> None:
    good = sql_lead("OK", "2026-11-23T09:00:00+10:00")
    bad_stage = sql_lead("BAD", "2026-11-23T09:00:00+10:00")
    bad_stage["stage_history"][1]["stage"] = "sqll"
    path = tmp_path / "leads.jsonl"
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps(bad_stage)]) + "\n", encoding="utf-8")
    card = report([str(path)], T("2026-11-24T09:00:00+10:00"), policies=str(example_set.policies), jobs=1)
    assert card.leads == 3 and len(card.errors) == 2 and card.facts.num_rows == 1
    errors = {e["line"]: e for e in card.errors}
    assert errors[2]["error"]["code"] == "LEAD000"
    assert errors[3]["lead_id"] == "BAD" and errors[3]["error"]["field"] == "stage_history[1].stage"
    assert "did you mean 'sql'" in errors[3]["error"]["message"]


# ------------------------------------------------------------------------------------------ revisions from git


def _git(cwd: Path, *args: str, when: str | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    if when:
        env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_each_lead_is_judged_by_the_revision_in_force_at_its_clock_start(example_set) -> None:
    root = example_set.root
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "4 h", when="2026-10-01T00:00:00+00:00")
    first = _git(root, "rev-parse", "HEAD")
    example_set.patch("slas.yaml", "    respond_within: 4h\n", "    respond_within: 2h\n")
    _git(root, "commit", "-qam", "2 h from November", when="2026-11-01T00:00:00+00:00")
    second = _git(root, "rev-parse", "HEAD")
    october = sql_lead("OCT", "2026-10-19T09:00:00+10:00")
    november = sql_lead("NOV", "2026-11-23T09:00:00+10:00")
    rows = rows_of(example_set.policies, [october, november], "2026-11-30T09:00:00+10:00")
    assert (rows["OCT"]["policy_revision"], rows["OCT"]["due"]) == (first, T("2026-10-19T13:00:00+10:00"))
    assert (rows["NOV"]["policy_revision"], rows["NOV"]["due"]) == (second, T("2026-11-23T11:00:00+10:00"))
    forced = rows_of(example_set.policies, [october], "2026-11-30T09:00:00+10:00", rev=second)
    assert forced["OCT"]["policy_revision"] == second and forced["OCT"]["due"] == T("2026-10-19T11:00:00+10:00")
    example_set.patch("slas.yaml", "respond_within: 2h\n    calendar: assignee\n    attempts:",
                      "respond_within: soon\n    calendar: assignee\n    attempts:")
    _git(root, "commit", "-qam", "a broken change", when="2026-11-10T00:00:00+00:00")
    card = report([("t", 1, november)], T("2026-11-30T09:00:00+10:00"), policies=str(example_set.policies), jobs=1)
    assert card.facts.column("policy_revision").to_pylist() == [second]  # the broken one was never in force
    assert any("does not load" in n for n in card.notes)


# ------------------------------------------------------------------------------------------ aggregates


@pytest.fixture(scope="module")
def sample() -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    leads = list(generate_histories(400, seed=5, now="2026-11-27T17:00:00+10:00"))
    card = report([("gen", i + 1, lead) for i, lead in enumerate(leads)], T("2026-11-27T17:00:00+10:00"),
                  policies=str(REPO / "policies"), rev="HEAD", within=timedelta(hours=8), jobs=1)
    return card, card.facts.to_pylist(), leads


def nearest_rank(values: list[float], p: float) -> float | None:
    values = sorted(values)
    return values[math.ceil(p / 100 * len(values)) - 1] if values else None


def test_attainment_matches_an_independent_count(sample) -> None:
    card, rows, _ = sample
    assert rows and card.facts.num_rows == len(rows)
    for dim in ("sla_id", "team", "owner", "source", "week"):
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows:
            counts[r[dim] or "(none)"][r["status"]] += 1
        got = {g[dim]: g for g in card.aggregates["attainment"][dim]}
        assert set(got) == set(counts)
        for key, c in counts.items():
            assert got[key]["met"] == c["met"] and got[key]["breached"] == c["breached"]
            assert got[key]["total"] == sum(c.values())
            decided = c["met"] + c["breached"]
            expected = round(100 * c["met"] / decided, 1) if decided else None
            assert got[key]["attainment_pct"] == expected


def test_speed_delays_and_bands_match_an_independent_computation(sample) -> None:
    card, rows, _ = sample
    by_sla = {s["sla_id"]: s for s in card.aggregates["speed"]}
    for sla in {r["sla_id"] for r in rows} | {"(all)"}:
        group = [r for r in rows if sla in ("(all)", r["sla_id"])]
        minutes = [r["business_minutes_to_touch"] for r in group if r["business_minutes_to_touch"] is not None]
        got = by_sla[sla]
        assert got["speed_to_lead"]["n"] == len(minutes)
        assert got["speed_to_lead"]["median"] == (statistics.median(minutes) if minutes else None)
        assert got["speed_to_lead"]["p95"] == nearest_rank(minutes, 95)
        edges = [0, 5, 15, 60, 1440, math.inf]
        assert list(got["bands"].values()) == [sum(1 for m in minutes if lo <= m < hi) for lo, hi in zip(edges, edges[1:])]
        human = [r["human_delay_minutes"] for r in group if r["human_delay_minutes"] is not None]
        system = [r["system_delay_minutes"] for r in group if r["system_delay_minutes"] is not None]
        assert got["human_delay"]["p95"] == nearest_rank(human, 95)
        assert got["system_delay"]["median"] == (statistics.median(system) if system else None)
    assert by_sla["(all)"]["speed_to_lead"]["n"] > 50  # the sample exercises it


def test_at_risk_queue_and_early_disqualifications_match_the_fact_table(sample) -> None:
    card, rows, _ = sample
    due_soon = [r for r in rows if r["status"] in ("open", "at_risk") and r["business_minutes_left"] is not None
                and r["business_minutes_left"] <= 8 * 60]
    got = {q["owner"]: [i["lead_id"] for i in q["items"]] for q in card.aggregates["at_risk"]}
    expected: dict[str, list[str]] = defaultdict(list)
    for r in sorted(due_soon, key=lambda r: (r["due"], r["lead_id"], r["sla_id"])):
        expected[r["owner"] or "(none)"].append(r["lead_id"])
    assert got == dict(expected)
    early = [r for r in rows if r["exit_stage"] in ("disqualified", "nurture", "recycled")
             and r["attempts_required"] and r["attempts_made"] < r["attempts_required"]]
    assert card.aggregates["disqualified_before_attempts"]["count"] == len(early) > 0


def test_funnel_and_reasons_match_the_leads_history(sample) -> None:
    card, _, leads = sample
    pipeline = ["subscriber", "lead", "mql", "sal", "sql", "opportunity", "customer"]
    reached: Counter[str] = Counter()
    reasons: Counter[tuple[str, str]] = Counter()
    for lead in leads:
        stages = [h["stage"] for h in lead["stage_history"]]
        furthest = max(pipeline.index(s) for s in stages if s in pipeline)
        reached.update(pipeline[:furthest + 1])
        reasons.update((h["stage"], h.get("reason_code", "(none)")) for h in lead["stage_history"]
                       if h["stage"] in ("nurture", "recycled", "disqualified"))
    funnel = card.aggregates["funnel"]
    assert funnel["leads"] == len(leads)
    assert funnel["reached"] == {s: reached[s] for s in pipeline}
    assert sum(w["leads"] for w in funnel["by_week"]) == len(leads)
    assert {(r["stage"], r["reason_code"]): r["count"] for r in card.aggregates["reasons"]} == dict(reasons)
    counts = [r["count"] for r in card.aggregates["reasons"]]
    assert counts == sorted(counts, reverse=True) and card.aggregates["reasons"][-1]["cumulative_pct"] == 100.0


def test_workers_give_the_same_table_as_one_process(tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in generate_histories(1200, seed=9)), encoding="utf-8")
    kw = {"policies": str(REPO / "policies"), "rev": "HEAD"}
    one = report([str(path)], T("2026-11-27T17:00:00+10:00"), jobs=1, **kw)
    two = report([str(path)], T("2026-11-27T17:00:00+10:00"), jobs=2, **kw)
    assert one.facts.equals(two.facts) and one.to_dict() == two.to_dict()


# ------------------------------------------------------------------------------------------ CLI and outputs


def test_cli_prints_tables_writes_html_and_facts(tmp_path: Path) -> None:
    html, parquet, csv = tmp_path / "r.html", tmp_path / "f.parquet", tmp_path / "f.csv"
    args = ["report", "examples/report/leads.jsonl", "--rev", "HEAD", "--now", "2026-11-27T17:00:00+10:00", "--jobs", "1"]
    r = CliRunner().invoke(cli, [*args, "--html", str(html), "--facts", str(parquet)])
    assert r.exit_code == 0, r.output
    assert "Attainment by team" in r.output and "Speed to lead" in r.output and "At-risk queue" in r.output
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    j = CliRunner().invoke(cli, [*args, "--format", "json", "--facts", str(csv)])
    data = json.loads(j.stdout)
    assert data["fact_rows"] == table.num_rows == len(csv.read_text().splitlines()) - 1
    assert data["leads"] == 600 and data["errors"] == 0
    again = tmp_path / "again.html"
    CliRunner().invoke(cli, [*args, "--html", str(again)])
    assert html.read_bytes() == again.read_bytes()  # same inputs, same bytes


def test_cli_usage_and_partial_errors(tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text(json.dumps(sql_lead("OK", "2026-11-23T09:00:00+10:00")) + "\n[1]\n", encoding="utf-8")
    base = ["report", str(path), "--rev", "HEAD", "--now", "2026-11-24T09:00:00+10:00"]
    r = CliRunner().invoke(cli, base)
    assert r.exit_code == 2 and "1 error" in r.stderr and "a lead must be a JSON object" in r.stdout
    assert CliRunner().invoke(cli, [*base, "--since", "last week"]).exit_code == 2
    assert CliRunner().invoke(cli, [*base, "--facts", "out.xlsx"]).exit_code == 2
    missing = CliRunner().invoke(cli, ["report", "nope.jsonl", "--now", "2026-11-24T09:00:00+10:00"])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_html_report_in_chromium_renders_every_chart_offline(page, artifacts_dir: Path, tmp_path: Path) -> None:
    card = report(["examples/report/leads.jsonl"], T("2026-11-27T17:00:00+10:00"), policies="policies", rev="HEAD",
                  jobs=1)
    path = tmp_path / "report.html"
    card.write_html(path)
    page.goto(path.as_uri())
    charts = page.locator("figure[data-chart]")
    titles = [charts.nth(i).get_attribute("data-chart") for i in range(charts.count())]
    assert len(titles) == 5 and any("attainment" in t for t in titles) and any("Pareto" in t for t in titles)
    for i in range(charts.count()):
        box = charts.nth(i).locator("svg").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50
    assert page.locator("h1").count() == 1 and page.locator("h2").count() >= 6
    assert page.locator("table caption").count() == page.locator("table").count() >= 10
    assert page.console_errors == [] and page.external_requests == []
    page.screenshot(path=str(artifacts_dir / "report.png"), full_page=True)


CRM_MAPPING = """\
kind: mapping
name: report-test
time_zone: Australia/Brisbane
lead:
  id: {from: Id, required: true}
  email: {from: Email}
  country: {from: Country}
  state: {from: State}
  employees: {from: Employees}
  source: {from: Source}
  stage: {from: Stage, values: {sql: [salesqualifiedlead]}}
  stage_entered_at: {stage_dates: {sql: SqlDate}}
  account_owner: {from: Owner, owners: {chloe.smith: ["71000004"]}}
activities:
  lead_id: {from: LeadId}
  fields:
    type: {join: [Kind, Direction], values: {call_attempt: ["CALL/OUTBOUND"]}, skip: ["CALL/INBOUND"]}
    at: {from: When}
    actor: {from: Rep, owners: {chloe.smith: ["71000004"]}}
"""


def test_crm_exports_through_a_mapping(example_set, tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text(CRM_MAPPING, encoding="utf-8")
    (tmp_path / "leads.csv").write_text(
        "Id,Email,Country,State,Employees,Source,Stage,SqlDate,Owner\n"
        "C1,c1@coralsoft.com.au,AU,QLD,12,website,salesqualifiedlead,2026-11-20T18:30:00+10:00,71000004\n"
        "C2,c2@coralsoft.com.au,AU,QLD,12,website,salesqualifiedlead,2026-11-23T09:00:00+10:00,71000004\n"
        "C3,c3@coralsoft.com.au,AU,QLD,12,website,nosuchstage,2026-11-23T09:00:00+10:00,71000004\n", encoding="utf-8")
    (tmp_path / "calls.csv").write_text(
        "LeadId,Kind,Direction,When,Rep\n"
        "C1,CALL,OUTBOUND,2026-11-23T09:10:00+10:00,71000004\n"
        "C2,CALL,INBOUND,2026-11-23T09:05:00+10:00,71000004\n", encoding="utf-8")
    args = ["report", str(tmp_path / "leads.csv"), "--mapping", str(tmp_path / "map.yaml"), "--activities",
            str(tmp_path / "calls.csv"), "-p", str(example_set.policies), "--now", "2026-11-23T15:00:00+10:00",
            "--format", "json", "--jobs", "1", "--facts", str(tmp_path / "f.csv")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output  # C3: a stage the mapping does not know
    data = json.loads(r.stdout)
    assert (data["leads"], data["errors"], data["fact_rows"]) == (3, 1, 2)
    assert data["error_records"][0]["line"] == 4 and "nosuchstage" in data["error_records"][0]["error"]["message"]
    import csv

    rows = {r["lead_id"]: r for r in csv.DictReader((tmp_path / "f.csv").open())}
    assert rows["C1"]["status"] == "met" and rows["C1"]["business_minutes_to_touch"] == "40"
    assert rows["C2"]["status"] == "breached" and rows["C2"]["first_touch_at"] == ""  # an inbound call is no touch


def test_since_keeps_later_clock_starts_and_cohorts(example_set) -> None:
    early, late = sql_lead("EARLY", "2026-11-02T09:00:00+10:00"), sql_lead("LATE", "2026-11-23T09:00:00+10:00")
    card = report([("t", 1, early), ("t", 2, late)], T("2026-11-24T09:00:00+10:00"),
                  policies=str(example_set.policies), since=datetime(2026, 11, 16).date(), jobs=1)
    assert card.facts.column("lead_id").to_pylist() == ["LATE"] and card.aggregates["funnel"]["leads"] == 1


def test_the_page_escapes_what_leads_carry(example_set, tmp_path: Path) -> None:
    lead = sql_lead("<b>X</b>", "2026-11-23T09:00:00+10:00", owner="<img src=x onerror=alert(1)>")
    lead["stage_history"].append({"stage": "nurture", "at": "2026-11-23T10:00:00+10:00", "reason_code": "<script>"})
    card = report([("t", 1, lead)], T("2026-11-24T09:00:00+10:00"), policies=str(example_set.policies), jobs=1)
    path = tmp_path / "r.html"
    card.write_html(path)
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "<b>X" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "&lt;script&gt;" in text


def test_routing_that_reads_the_score_is_judged_with_the_score(example_set) -> None:
    example_set.patch("routing.yaml", 'lead.state == "QLD" and lead.employees < 101',
                      'lead.state == "QLD" and lead.employees < 101 and score.total > -1000000')
    lead = sql_lead("SCORED", "2026-11-23T09:00:00+10:00")
    del lead["owner_history"]  # the policy's route decides the owner
    row = rows_of(example_set.policies, [lead], "2026-11-24T09:00:00+10:00")["SCORED"]
    assert row["team"] == "seq-smb" and row["owner"] in ("chloe.smith", "dylan.jones")

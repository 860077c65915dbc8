"""SLA clocks (engine/sla.py docstring) through the policy: due dates in business time, the assignee's calendar
vs the default, clock start, pauses, escalations, applicability filters and the attempts guard.

The minimal set: SLA `mql-response` applies to stage mql, 4h in the assignee's calendar, 2 call attempts before
nurture, escalations 50% -> owner and +2h -> queue:triage. Team reps uses `syd` (Australia/Sydney 09-17
Mon-Fri), queue triage and the default calendar use `bne` (Australia/Brisbane 09-17 Mon-Fri, QLD holidays,
closed 2026-12-24 from 12:00). A lead with employees >= 50 scores 30 and enters mql.
NOW is Monday 2026-11-23 09:00 in Brisbane = 10:00 in Sydney."""

from __future__ import annotations

from datetime import datetime

import pytest

from conftest import NOW

MQL = {"employees": 60}


def slas(ps, now: datetime = NOW, explain: bool = False, **fields) -> list[dict]:
    return ps.evaluate({"id": "L-1", **fields}, now, explain=explain).to_dict()["slas"]


def only(items: list[dict]) -> dict:
    assert len(items) == 1, items
    return items[0]


def test_due_date_in_the_team_calendar(mini_set) -> None:
    ps = mini_set.load()
    s = only(slas(ps, country="AU", **MQL))
    owner = ps.evaluate({"id": "L-1", "country": "AU", **MQL}, NOW).to_dict()["route"]["owner"]
    assert s == {
        "id": "mql-response",
        "clock_starts": "2026-11-23T10:00:00+11:00",
        "due": "2026-11-23T14:00:00+11:00",
        "calendar": "syd",
        "attempts_required": 2,
        "escalations": [
            {"at": "2026-11-23T12:00:00+11:00", "when": "50%", "action": "notify", "to": owner},
            {"at": "2026-11-23T16:00:00+11:00", "when": "+2h", "action": "reassign", "to": "queue:triage"},
        ],
        "status": "running",
    }


def test_assignee_without_calendar_uses_the_default_calendar(mini_set) -> None:
    s = only(slas(mini_set.load(), account_owner="zed", **MQL))
    assert s["calendar"] == "bne"
    assert (s["clock_starts"], s["due"]) == ("2026-11-23T09:00:00+10:00", "2026-11-23T13:00:00+10:00")
    assert s["escalations"][0]["to"] == "zed"


def test_queue_assignee_uses_the_queue_calendar_and_manager(mini_set) -> None:
    mini_set.patch("slas.yaml", "      - {at: +2h,", "      - {at: 100%, action: notify, to: manager}\n      - {at: +2h,")
    s = only(slas(mini_set.load(), **MQL))  # no country: routed to the triage queue (calendar bne)
    assert s["calendar"] == "bne" and s["due"] == "2026-11-23T13:00:00+10:00"
    assert [(e["when"], e["at"], e["to"]) for e in s["escalations"]] == [
        ("50%", "2026-11-23T11:00:00+10:00", "queue:triage"),
        ("100%", "2026-11-23T13:00:00+10:00", "lead-boss"),
        ("+2h", "2026-11-23T15:00:00+10:00", "queue:triage"),
    ]


def test_team_manager_is_the_escalation_target(mini_set) -> None:
    mini_set.patch("slas.yaml", "to: owner}", "to: manager}")
    assert only(slas(mini_set.load(), country="AU", **MQL))["escalations"][0]["to"] == "boss"


def test_named_calendar_overrides_the_assignee(mini_set) -> None:
    mini_set.patch("slas.yaml", "calendar: assignee", "calendar: syd")
    s = only(slas(mini_set.load(), account_owner="zed", **MQL))
    assert (s["calendar"], s["due"]) == ("syd", "2026-11-23T14:00:00+11:00")


def test_clock_starts_at_stage_entered_at_when_the_stage_does_not_change(mini_set) -> None:
    # entered mql Friday 16:00 Sydney: 1h on Friday, 3h on Monday
    s = only(slas(mini_set.load(), country="AU", stage="mql", stage_entered_at="2026-11-20T16:00:00+11:00", **MQL))
    assert s["clock_starts"] == "2026-11-20T16:00:00+11:00"
    assert s["due"] == "2026-11-23T12:00:00+11:00"
    assert s["status"] == "running"


def test_clock_start_is_rendered_in_the_calendar_zone(mini_set) -> None:
    s = only(slas(mini_set.load(), country="AU", stage="mql", stage_entered_at="2026-11-20T05:00:00Z", **MQL))
    assert s["clock_starts"] == "2026-11-20T16:00:00+11:00"


def test_a_stage_change_restarts_the_clock_now(mini_set) -> None:
    s = only(slas(mini_set.load(), country="AU", stage="new", stage_entered_at="2026-11-01T10:00:00+11:00", **MQL))
    assert s["clock_starts"] == "2026-11-23T10:00:00+11:00"


def test_missing_stage_entered_at_starts_the_clock_now_and_says_so(mini_set) -> None:
    d = mini_set.load().evaluate({"id": "L-1", "country": "AU", "stage": "mql", **MQL}, NOW, explain=True).to_dict()
    assert only(d["slas"])["clock_starts"] == "2026-11-23T10:00:00+11:00"
    (entry,) = [t for t in d["trace"] if t["kind"] == "sla"]
    assert "lead.stage_entered_at is missing; the clock starts now" in entry["reason"]
    # without --explain too: the decision itself warns that this clock restarts at every evaluation
    plain = mini_set.load().evaluate({"id": "L-1", "country": "AU", "stage": "mql", **MQL}, NOW).to_dict()
    assert plain["warnings"] == [
        {"rule": "mql-response", "message": "SLA clock started at now: lead.stage_entered_at is missing"}]
    from test_policyset import VALIDATOR

    assert not [e.message for e in VALIDATOR.iter_errors(plain)]


@pytest.mark.parametrize("fields", [{"stage": "mql", "stage_entered_at": "2026-11-20T16:00:00+11:00"},
                                    {"stage": "new"}, {}], ids=["entered-at-known", "stage-changes", "new-lead"])
def test_no_clock_warning_when_the_clock_start_is_known(mini_set, fields: dict) -> None:
    d = mini_set.load().evaluate({"id": "L-1", "country": "AU", **MQL, **fields}, NOW).to_dict()
    assert d["slas"] and "warnings" not in d


def test_breached_when_now_is_past_due(mini_set) -> None:
    s = only(slas(mini_set.load(), country="AU", stage="mql", stage_entered_at="2026-11-19T09:00:00+11:00", **MQL))
    assert s["due"] == "2026-11-19T13:00:00+11:00" and s["status"] == "breached"


def test_clock_started_outside_hours_runs_from_the_next_opening(mini_set) -> None:
    saturday = datetime.fromisoformat("2026-11-21T11:00:00+11:00")
    s = only(slas(mini_set.load(), now=saturday, country="AU", **MQL))
    assert s["clock_starts"] == "2026-11-21T11:00:00+11:00"
    assert s["due"] == "2026-11-23T13:00:00+11:00"


def test_calendar_closures_and_holidays_from_the_policy(mini_set) -> None:
    # bne closes at 12:00 on 2026-12-24; 25, 26 (Sat) and 28 Dec (Boxing Day observed) are QLD holidays
    start = datetime.fromisoformat("2026-12-24T11:00:00+10:00")
    s = only(slas(mini_set.load(), now=start, **MQL))
    assert s["calendar"] == "bne"
    assert s["due"] == "2026-12-29T12:00:00+10:00"  # 1h on the 24th, 3h on Tuesday the 29th


# ---------------------------------------------------------------- pauses


def test_closed_pause_does_not_count(mini_set) -> None:
    pauses = [{"from": "2026-11-23T11:00:00+11:00", "to": "2026-11-23T12:30:00+11:00"}]
    s = only(slas(mini_set.load(), country="AU", sla_pauses=pauses, **MQL))
    assert s["due"] == "2026-11-23T15:30:00+11:00"
    assert s["escalations"][0]["at"] == "2026-11-23T13:30:00+11:00"  # 2h of unpaused time
    assert s["status"] == "running"


def test_pause_outside_business_hours_changes_nothing(mini_set) -> None:
    pauses = [{"from": "2026-11-23T18:00:00+11:00", "to": "2026-11-24T08:00:00+11:00"}]
    assert only(slas(mini_set.load(), country="AU", sla_pauses=pauses, **MQL))["due"] == "2026-11-23T14:00:00+11:00"


def test_open_ended_pause_means_no_due_date(mini_set) -> None:
    pauses = [{"from": "2026-11-23T11:00:00+11:00"}]
    d = mini_set.load().evaluate({"id": "L-1", "country": "AU", "sla_pauses": pauses, **MQL}, NOW, explain=True).to_dict()
    s = only(d["slas"])
    assert s["due"] is None and s["status"] == "paused"
    assert [e["at"] for e in s["escalations"]] == [None, None]  # 50% (2h) is also beyond the pause start
    (entry,) = [t for t in d["trace"] if t["kind"] == "sla"]
    assert "1 pause(s) excluded" in entry["reason"]


def test_open_ended_pause_after_an_escalation_keeps_that_step(mini_set) -> None:
    pauses = [{"from": "2026-11-23T12:30:00+11:00", "to": None}]
    s = only(slas(mini_set.load(), country="AU", sla_pauses=pauses, **MQL))
    assert s["due"] is None and s["status"] == "paused"
    assert s["escalations"][0]["at"] == "2026-11-23T12:00:00+11:00"


# ---------------------------------------------------------------- applicability


def test_sla_applies_only_to_its_stages(mini_set) -> None:
    assert slas(mini_set.load(), country="AU", employees=10) == []  # stage `new`


def test_routes_filter(mini_set) -> None:
    mini_set.patch("slas.yaml", "applies_to: {stages: [mql]}", "applies_to: {stages: [mql], routes: [au]}")
    mini_set.patch("slas.yaml", "    attempts: {min: 2, before: [nurture]}\n", "")  # attempts need a stage-only SLA
    ps = mini_set.load()
    assert only(slas(ps, country="AU", **MQL))["id"] == "mql-response"
    d = ps.evaluate({"id": "L-1", "account_owner": "zed", **MQL}, NOW, explain=True).to_dict()
    assert d["slas"] == []
    (entry,) = [t for t in d["trace"] if t["kind"] == "sla"]
    assert entry["reason"] == "route 'owner' is not one of ['au']" and entry["fired"] is False


def test_when_filter_and_unstaged_sla(mini_set) -> None:
    mini_set.patch("slas.yaml", "slas:\n", "slas:\n  - id: big-accounts\n    applies_to: {when: 'lead.employees >= 1000'}\n"
                                          "    respond_within: 1h\n")
    ps = mini_set.load()
    assert [s["id"] for s in slas(ps, country="AU", employees=5000)] == ["mql-response", "big-accounts"]
    big = slas(ps, country="NZ", employees=5000)[1]
    assert (big["calendar"], big["due"], big["attempts_required"], big["escalations"]) == (
        "bne", "2026-11-23T10:00:00+10:00", 0, [])
    assert [s["id"] for s in slas(ps, country="AU", employees=60)] == ["mql-response"]


def test_attempts_due_counts_business_days(mini_set) -> None:
    mini_set.patch("slas.yaml", "attempts: {min: 2, before: [nurture]}",
                   "attempts: {min: 2, before: [nurture], within_business_days: 2}")
    s = only(slas(mini_set.load(), country="AU", **MQL))
    assert s["attempts_due"] == "2026-11-24T17:00:00+11:00"  # Monday counts (open time left), then Tuesday
    friday_evening = datetime.fromisoformat("2026-11-20T18:00:00+11:00")
    s = only(slas(mini_set.load(), now=friday_evening, country="AU", **MQL))
    assert s["attempts_due"] == "2026-11-24T17:00:00+11:00"  # Friday is over: Monday, Tuesday


# ---------------------------------------------------------------- the attempts guard


def request(n_calls: int, call_at: str, **extra) -> dict:
    return {
        "id": "L-1", "country": "AU", "stage": "mql", "stage_entered_at": "2026-11-20T09:00:00+10:00", **MQL,
        "activities": [{"type": "call_attempt", "at": call_at}] * n_calls,
        "transition_request": {"to": "nurture", "reason_code": "no-budget"}, **extra,
    }


def test_attempts_guard_counts_only_attempts_since_the_stage_was_entered(mini_set) -> None:
    ps = mini_set.load()
    before_entry = ps.evaluate(request(5, "2026-11-19T09:00:00+10:00"), NOW).to_dict()["stage"]
    assert before_entry["to"] == "mql"
    assert before_entry["rejected"]["reason"].endswith("; 0 recorded")
    after_entry = ps.evaluate(request(2, "2026-11-20T09:00:00+10:00"), NOW).to_dict()["stage"]
    assert after_entry["to"] == "nurture"


def test_attempts_guard_ignores_future_attempts(mini_set) -> None:
    s = mini_set.load().evaluate(request(2, "2026-11-24T09:00:00+10:00"), NOW).to_dict()["stage"]
    assert s["to"] == "mql" and s["rejected"]["reason"].endswith("; 0 recorded")


def test_attempts_guard_uses_the_configured_activity(mini_set) -> None:
    mini_set.patch("slas.yaml", "attempts: {min: 2, before: [nurture]}",
                   "attempts: {min: 1, before: [nurture], activity: demo_request}")
    ps = mini_set.load()
    calls_only = ps.evaluate(request(3, "2026-11-21T09:00:00+10:00"), NOW).to_dict()["stage"]
    assert calls_only["rejected"]["reason"].startswith("SLA 'mql-response' requires 1 demo_request activities")
    demo = request(0, "2026-11-21T09:00:00+10:00", activities=[{"type": "demo_request", "at": "2026-11-21T09:00:00+10:00"}])
    assert ps.evaluate(demo, NOW).to_dict()["stage"]["to"] == "nurture"


@pytest.mark.parametrize("stage_entered_at", [None, "absent"])
def test_attempts_guard_without_stage_entered_at_counts_every_attempt(mini_set, stage_entered_at) -> None:
    raw = request(2, "2026-11-01T09:00:00+10:00")
    if stage_entered_at == "absent":
        del raw["stage_entered_at"]
    else:
        raw["stage_entered_at"] = None
    assert mini_set.load().evaluate(raw, NOW).to_dict()["stage"]["to"] == "nurture"


def test_a_pause_that_ends_before_it_starts_is_the_leads_error(mini_set) -> None:
    """Found by the property suite: the same instant written in two offsets (00:00Z vs 00:00+10:00)."""
    from engine.errors import LeadError

    pauses = [{"from": "2026-11-23T00:00:00+00:00", "to": "2026-11-23T00:00:00+10:00"}]
    with pytest.raises(LeadError) as info:
        slas(mini_set.load(), country="AU", sla_pauses=pauses, **MQL)
    assert info.value.field == "sla_pauses[0].to" and "before it starts" in info.value.message


def test_an_escalation_at_300_percent_after_plus_4h_is_in_order(mini_set) -> None:
    """The ladder check compares real offsets: on a 4h SLA, +2h after due is 6h and 300% is 12h."""
    mini_set.patch("slas.yaml", '      - {at: +2h, action: reassign, to: "queue:triage"}',
                   '      - {at: +2h, action: reassign, to: "queue:triage"}\n      - {at: 300%, action: notify, to: manager}')
    s = only(slas(mini_set.load(), country="AU", **MQL))
    assert [e["when"] for e in s["escalations"]] == ["50%", "+2h", "300%"]
    assert s["escalations"][1]["at"] < s["escalations"][2]["at"]


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"])
def test_timestamps_outside_real_years_are_the_leads_error(mini_set, value: str) -> None:
    """Found by review: datetime arithmetic near year 1 or 9999 overflowed inside the calendar."""
    from engine.errors import LeadError

    with pytest.raises(LeadError) as info:
        slas(mini_set.load(), country="AU", stage="mql", stage_entered_at=value, **MQL)
    assert info.value.field == "stage_entered_at" and "outside the years" in info.value.message


def test_a_bad_pause_is_refused_even_when_no_sla_applies(mini_set) -> None:
    from engine.errors import LeadError

    pauses = [{"from": "2026-11-23T10:00:00+10:00", "to": "2026-11-23T09:00:00+10:00"}]
    with pytest.raises(LeadError):
        mini_set.load().evaluate({"id": "L-1", "sla_pauses": pauses}, NOW)  # no SLA applies to a new lead

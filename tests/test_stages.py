"""Lifecycle stages (engine/stages.py docstring): forward progression, manual stages, high-water mark, detours
with auto re-entry, requested transitions with reason codes, and the SLA attempts guard."""

from __future__ import annotations

import pytest

from conftest import NOW
from engine.errors import LeadError

STAGES = """\
kind: stages
initial: new
pipeline:
  - id: new
    side: marketing
  - id: lead
    side: marketing
    entry: present(lead.email)
  - id: mql
    side: marketing
    entry: score.total >= 30
    transitions:
      - {to: nurture, reason_required: true}
      - {to: disqualified}
  - id: sal
    side: sales
    manual: true
  - id: sql
    side: sales
    entry: score.total >= 60
    transitions:
      - {to: nurture, reason_required: true}
  - id: won
    side: sales
    manual: true
detours:
  - id: nurture
    side: marketing
    transitions:
      - {to: mql, auto: true}
  - id: disqualified
    side: sales
    transitions:
      - {to: lead, reason_required: true}
reason_codes:
  - {code: no-budget}
  - {code: bad-timing}
"""

# fit: employees >= 50 -> 30 points (mql), employees >= 1000 -> +40 (sql)
SCORING = """\
kind: scoring
grade: [fit]
groups:
  - id: fit
    grades:
      - {grade: A}
    rules:
      - id: big
        when: lead.employees >= 50
        points: 30
      - id: huge
        when: lead.employees >= 1000
        points: 40
"""

SMALL, MQL_SIZE, SQL_SIZE = 0, 60, 2000


@pytest.fixture
def ps(mini_set):
    mini_set.write("stages.yaml", STAGES).write("scoring.yaml", SCORING)
    return mini_set.load()


def stage(ps, explain: bool = False, **fields) -> dict:
    raw = {"id": "L-1", "email": "a@b.com", **fields}
    return ps.evaluate(raw, NOW, explain=explain).to_dict()["stage"]


def calls(n: int, at: str = "2026-11-22T10:00:00+10:00") -> list[dict]:
    return [{"type": "call_attempt", "at": at} for _ in range(n)]


# ---------------------------------------------------------------- forward progression


def test_absent_stage_is_the_initial_stage(ps) -> None:
    s = ps.evaluate({"id": "L-1"}, NOW).to_dict()["stage"]
    assert s == {"from": "new", "to": "new", "changed": False, "rule": None}


def test_moves_to_the_furthest_stage_whose_entry_holds(ps) -> None:
    assert stage(ps, employees=SMALL) == {"from": "new", "to": "lead", "changed": True, "rule": "stage:lead"}
    assert stage(ps, employees=MQL_SIZE)["to"] == "mql"
    s = stage(ps, employees=SQL_SIZE)
    assert (s["from"], s["to"], s["rule"]) == ("new", "sql", "stage:sql")  # skips lead, mql and manual sal


def test_manual_stages_are_never_entered_automatically(ps) -> None:
    assert stage(ps, stage="sql", employees=SQL_SIZE)["to"] == "sql"  # not won
    assert stage(ps, stage="mql", employees=MQL_SIZE)["to"] == "mql"  # not sal


def test_stages_are_a_high_water_mark(ps) -> None:
    s = stage(ps, stage="sql", employees=SMALL)
    assert s == {"from": "sql", "to": "sql", "changed": False, "rule": None}
    s = stage(ps, stage="won")
    assert (s["to"], s["changed"]) == ("won", False)


def test_progression_starts_from_the_current_stage(ps) -> None:
    # in the manual `sal` stage, only stages after it are candidates: sql when its entry holds
    assert stage(ps, stage="sal", employees=MQL_SIZE)["to"] == "sal"
    assert stage(ps, stage="sal", employees=SQL_SIZE)["to"] == "sql"


def test_unknown_current_stage_is_a_lead_error(ps) -> None:
    with pytest.raises(LeadError) as info:
        stage(ps, stage="bogus")
    assert info.value.field == "stage" and "bogus" in info.value.message


# ---------------------------------------------------------------- detours


def test_detour_reenters_the_pipeline_by_an_auto_transition_and_keeps_going(ps) -> None:
    assert stage(ps, stage="nurture", employees=SMALL) == {"from": "nurture", "to": "nurture", "changed": False,
                                                          "rule": None}
    assert stage(ps, stage="nurture", employees=MQL_SIZE) == {"from": "nurture", "to": "mql", "changed": True,
                                                             "rule": "stage:mql"}
    s = stage(ps, stage="nurture", employees=SQL_SIZE)
    assert (s["to"], s["rule"]) == ("sql", "stage:sql")


def test_detour_without_auto_transition_stays(ps) -> None:
    s = stage(ps, stage="disqualified", employees=SQL_SIZE)
    assert (s["to"], s["changed"]) == ("disqualified", False)


# ---------------------------------------------------------------- requested transitions


def test_forward_request_to_a_manual_stage_is_honoured(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "sal"})
    assert s == {"from": "mql", "to": "sal", "changed": True, "rule": "transition:mql->sal"}


def test_forward_request_needs_the_target_entry_criteria(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "sql"})
    assert (s["to"], s["changed"]) == ("mql", False)
    assert s["rejected"] == {"to": "sql", "reason_code": None, "reason": "the entry criteria of 'sql' do not hold"}
    s = stage(ps, stage="mql", employees=SQL_SIZE, transition_request={"to": "sql"})
    assert (s["to"], s["rule"]) == ("sql", "transition:mql->sql") and "rejected" not in s


def test_declared_transition_requiring_a_reason_is_refused_without_one(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, activities=calls(2), transition_request={"to": "nurture"})
    assert s["to"] == "mql" and not s["changed"]
    assert s["rejected"]["reason"] == "moving from 'mql' to 'nurture' requires a reason code (one of: no-budget, bad-timing)"


def test_unknown_reason_code_is_refused(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, activities=calls(2),
              transition_request={"to": "nurture", "reason_code": "too-expensive"})
    assert s["to"] == "mql"
    assert s["rejected"] == {"to": "nurture", "reason_code": "too-expensive",
                             "reason": "unknown reason code 'too-expensive' (known: no-budget, bad-timing)"}


def test_transition_without_reason_requirement_and_recorded_reason(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "disqualified"})
    assert s == {"from": "mql", "to": "disqualified", "changed": True, "rule": "transition:mql->disqualified"}
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "disqualified", "reason_code": "bad-timing"})
    assert s["reason_code"] == "bad-timing"


def test_undeclared_backward_move_is_refused_naming_the_allowed_ones(ps) -> None:
    s = stage(ps, stage="sql", employees=SQL_SIZE, transition_request={"to": "lead", "reason_code": "no-budget"})
    assert s["to"] == "sql"
    assert s["rejected"]["reason"] == "no transition from 'sql' to 'lead' is declared (allowed from sql: nurture)"


def test_request_to_an_unknown_or_the_same_stage_is_refused(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "nowhere"})
    assert s["rejected"]["reason"].startswith("'nowhere' is not a stage of this policy")
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "mql"})
    assert s["rejected"]["reason"] == "the lead is already in 'mql'"


def test_request_from_a_detour_along_a_declared_transition(ps) -> None:
    s = stage(ps, stage="disqualified", transition_request={"to": "lead", "reason_code": "no-budget"})
    assert s == {"from": "disqualified", "to": "lead", "changed": True, "rule": "transition:disqualified->lead",
                 "reason_code": "no-budget"}


def test_an_accepted_request_is_final_for_the_decision(ps) -> None:
    """A lead handed back to nurture does not bounce straight back to mql although mql's entry holds."""
    s = stage(ps, stage="mql", employees=SQL_SIZE, activities=calls(2),
              transition_request={"to": "nurture", "reason_code": "no-budget"})
    assert s == {"from": "mql", "to": "nurture", "changed": True, "rule": "transition:mql->nurture",
                 "reason_code": "no-budget"}


def test_a_refused_request_keeps_the_stage(ps) -> None:
    """README: "A refused request keeps the stage and says why"; stages.py: "A rejected request leaves the
    stage where it was". Here sql's entry also holds, and the refused hand-back must not become a promotion."""
    s = stage(ps, stage="mql", employees=SQL_SIZE, activities=calls(2), transition_request={"to": "nurture"})
    assert "rejected" in s
    assert (s["to"], s["changed"]) == ("mql", False)


def test_request_is_traced(ps) -> None:
    trace = ps.evaluate({"id": "L-1", "stage": "mql", "employees": MQL_SIZE, "transition_request": {"to": "nurture"}},
                        NOW, explain=True).to_dict()["trace"]
    (entry,) = [t for t in trace if t["rule"] == "transition:mql->nurture"]
    assert entry["kind"] == "stage" and entry["fired"] is False and "requires a reason code" in entry["reason"]


# ---------------------------------------------------------------- the SLA attempts guard


def test_hand_back_needs_the_sla_minimum_attempts(ps) -> None:
    request = {"to": "nurture", "reason_code": "no-budget"}
    s = stage(ps, stage="mql", employees=MQL_SIZE, activities=calls(1), transition_request=request)
    assert s["to"] == "mql"
    assert s["rejected"]["reason"] == ("SLA 'mql-response' requires 2 call_attempt activities before a lead in "
                                       "'mql' may move to 'nurture'; 1 recorded")
    s = stage(ps, stage="mql", employees=MQL_SIZE, activities=calls(2), transition_request=request)
    assert s["to"] == "nurture"


def test_attempts_guard_does_not_apply_to_other_targets(ps) -> None:
    s = stage(ps, stage="mql", employees=MQL_SIZE, transition_request={"to": "disqualified"})
    assert s["to"] == "disqualified"


def test_explain_shows_what_an_activity_condition_read_not_the_whole_array(example_ps) -> None:
    """Issue 11: a stage rule's values list each activity helper call with its matching count and first items,
    and the activities array only as a count, so --explain stays readable for a lead with a long history."""
    views = [{"type": "page_view", "at": f"2026-11-{d:02d}T10:00:00+10:00", "url": f"/p{d}"} for d in range(1, 21)]
    demos = [{"type": "demo_request", "at": f"2026-11-{d:02d}T16:00:00+10:00"} for d in (16, 18, 19, 20)]
    lead = {"id": "L-x", "email": "a@acme.com.au", "country": "AU", "employees": 500, "seniority": "director",
            "company": {"name": "Acme", "industry": "software"}, "activities": views + demos}
    trace = example_ps.evaluate(lead, NOW, explain=True).to_dict()["trace"]
    (sql,) = [t for t in trace if t["rule"] == "stage:sql"]
    values = sql["values"]
    assert values["lead.activities"] == {"count": 24}
    demo = values['has_activity("demo_request", within_days=30)']
    assert demo["matching"] == 4 and demo["first"] == [{"type": "demo_request", "at": a["at"]} for a in demos[:3]]
    assert values['has_activity("quote_request", within_days=30)'] == {"matching": 0}
    assert "/p1" not in str(values)

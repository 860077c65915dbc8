"""PolicySet and Decision: the public API, determinism (same inputs -> same bytes) and the decision schema."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import jsonschema
import pytest

import engine
from conftest import NOW, REPO, SAMPLE_LEADS
from engine.errors import LeadError, LeadopsError

DECISION_SCHEMA = json.loads((REPO / "schemas" / "decision.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(DECISION_SCHEMA, format_checker=jsonschema.FormatChecker())
LEAD_IDS = [p.stem for p in SAMPLE_LEADS]


def load_lead(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def dump(decision: engine.Decision) -> str:
    return json.dumps(decision.to_dict(), ensure_ascii=False)


def test_sample_leads_exist() -> None:
    assert len(SAMPLE_LEADS) >= 10


# ---------------------------------------------------------------- the decision schema


@pytest.mark.parametrize("explain", [False, True], ids=["plain", "explain"])
@pytest.mark.parametrize("path", SAMPLE_LEADS, ids=LEAD_IDS)
def test_decision_validates_against_the_schema(example_ps, path, explain: bool) -> None:
    data = example_ps.evaluate(load_lead(path), NOW, explain=explain).to_dict()
    errors = sorted(VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    assert ("trace" in data) is explain


def test_paused_decision_validates_against_the_schema(mini_set) -> None:
    raw = {"id": "L-1", "country": "AU", "employees": 60, "sla_pauses": [{"from": "2026-11-23T11:00:00+11:00"}]}
    data = mini_set.load().evaluate(raw, NOW, explain=True).to_dict()
    assert data["slas"][0]["status"] == "paused"
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data)]
    assert not errors, errors


def test_rejected_request_and_warnings_validate_against_the_schema(example_ps) -> None:
    raw = load_lead(REPO / "scenarios" / "leads" / "handback-without-reason.json")
    data = example_ps.evaluate(raw, NOW, explain=True).to_dict()
    assert "rejected" in data["stage"]
    assert not list(VALIDATOR.iter_errors(data))


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("path", SAMPLE_LEADS, ids=LEAD_IDS)
def test_same_inputs_same_bytes(example_ps, path) -> None:
    raw = load_lead(path)
    first = dump(example_ps.evaluate(raw, NOW, explain=True))
    assert dump(example_ps.evaluate(copy.deepcopy(raw), NOW, explain=True)) == first
    fresh = engine.load_policies(REPO / "policies")
    assert dump(fresh.evaluate(raw, NOW, explain=True)) == first


def test_evaluation_order_does_not_leak_between_leads(example_ps) -> None:
    leads = [load_lead(p) for p in SAMPLE_LEADS]
    forward = [dump(example_ps.evaluate(r, NOW, explain=True)) for r in leads]
    fresh = engine.load_policies(REPO / "policies")
    backward = [dump(fresh.evaluate(r, NOW, explain=True)) for r in reversed(leads)]
    assert forward == list(reversed(backward))


def test_same_instant_in_another_offset_gives_the_same_decision_apart_from_evaluated_at(example_ps) -> None:
    raw = load_lead(SAMPLE_LEADS[0])
    a = example_ps.evaluate(raw, NOW).to_dict()
    b = example_ps.evaluate(raw, NOW.astimezone(timezone.utc)).to_dict()
    assert a["evaluated_at"] == "2026-11-23T09:00:00+10:00" and b["evaluated_at"] == "2026-11-22T23:00:00+00:00"
    assert {k: v for k, v in a.items() if k != "evaluated_at"} == {k: v for k, v in b.items() if k != "evaluated_at"}


def test_evaluate_does_not_mutate_the_lead(example_ps) -> None:
    for path in SAMPLE_LEADS:
        raw = load_lead(path)
        before = copy.deepcopy(raw)
        example_ps.evaluate(raw, NOW, explain=True)
        assert raw == before


def test_json_key_order_of_the_input_does_not_matter(example_ps) -> None:
    raw = load_lead(REPO / "scenarios" / "leads" / "icp-enterprise-brisbane.json")
    shuffled = dict(reversed(list(raw.items())))
    assert dump(example_ps.evaluate(shuffled, NOW, explain=True)) == dump(example_ps.evaluate(raw, NOW, explain=True))


# ---------------------------------------------------------------- the API


def test_decision_shape_and_accessors(mini_set) -> None:
    ps = mini_set.load()
    d = ps.evaluate({"id": "L-1", "country": "AU", "employees": 60}, NOW)
    data = d.to_dict()
    assert list(data) == ["lead_id", "policy_revision", "evaluated_at", "score", "stage", "route", "slas"]
    assert data["policy_revision"] == ps.revision and data["evaluated_at"] == NOW.isoformat()
    assert (d.lead_id, d.score, d.stage, d.route, d.slas, d.trace) == (
        "L-1", data["score"], data["stage"], data["route"], data["slas"], None)
    assert d.fired_rules() == ["big", "stage:mql", "au", "mql-response"]
    assert repr(d) == "Decision(lead='L-1', score=30, stage=new->mql, route=au)"


def test_now_must_be_timezone_aware(mini_set) -> None:
    ps = mini_set.load()
    with pytest.raises(LeadopsError, match="timezone-aware"):
        ps.evaluate({"id": "L-1"}, datetime(2026, 11, 23, 9, 0))
    with pytest.raises(LeadopsError):
        ps.evaluate({"id": "L-1"}, "2026-11-23T09:00:00+10:00")


@pytest.mark.parametrize("raw,field", [
    ({"country": "AU"}, ""),                 # no id
    ({"id": "L-1", "employees": "many"}, "employees"),
    ({"id": "L-1", "activities": [{"type": "fax", "at": "2026-11-01T00:00:00Z"}]}, "activities"),
    ({"id": "L-1", "stage_entered_at": "yesterday"}, "stage_entered_at"),
])
def test_bad_lead_raises_lead_error_naming_the_field(mini_set, raw, field) -> None:
    with pytest.raises(LeadError) as info:
        mini_set.load().evaluate(raw, NOW)
    assert field in (info.value.field or "") + info.value.message


def test_non_object_lead_is_a_lead_error(mini_set) -> None:
    for raw in ([], "L-1", None, 3):
        with pytest.raises(LeadError):
            mini_set.load().evaluate(raw, NOW)


def test_describe(mini_set) -> None:
    info = mini_set.load().describe()
    assert {k: v for k, v in info.items() if k != "revision"} == {
        "name": "mini", "version": "1", "scoring_rules": 2, "stages": 4, "routing_rules": 3, "slas": 1, "calendars": 2}


def test_evaluate_expression_sees_lead_score_and_stage(mini_set) -> None:
    ps = mini_set.load()
    lead = {"id": "L-1", "employees": 60, "country": "AU"}
    assert ps.evaluate_expression("1 + 2 * 3", {"id": "x"}, NOW) == 7
    assert ps.evaluate_expression("score.total", lead, NOW) == 30
    assert ps.evaluate_expression("stage", lead, NOW) == "mql"
    assert ps.evaluate_expression("lead.account_owner", lead, NOW) is None  # MISSING -> null
    assert ps.evaluate_expression("now", lead, NOW) == NOW.isoformat()


def test_evaluate_expression_rejects_what_policies_reject(mini_set) -> None:
    from engine.errors import ExpressionError

    with pytest.raises(ExpressionError) as info:
        mini_set.load().evaluate_expression("lead.employes > 1", {"id": "x"}, NOW)
    assert info.value.code == "EXPR004"

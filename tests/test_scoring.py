"""Scoring semantics (engine/scoring.py docstring): condition rules, activity windows, limits, decay, caps,
floors, totals, grades, missing values, and run-time errors as warnings. Uses a purpose-made scoring.yaml."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import NOW

SCORING = """\
kind: scoring
grade: [fit, eng]
groups:
  - id: fit
    cap: 50
    floor: -20
    grades:
      - {grade: A, min: 40}
      - {grade: B, min: 20}
      - {grade: C}
    rules:
      - id: big
        when: lead.employees >= 50
        points: 30
      - id: huge
        when: lead.employees >= 1000
        points: 30
      - id: no-email
        when: missing(lead.email)
        points: -50
      - id: not-au
        when: lead.country != "AU"
        points: 5
      - id: half
        when: lead.country == "NZ"
        points: 2.5
  - id: eng
    floor: 0
    decay: {every: 7d, factor: 0.5}
    grades:
      - {grade: "1", min: 30}
      - {grade: "2"}
    rules:
      - id: pricing
        activity: page_view
        where: startswith(activity.url, "/pricing")
        within: 30d
        points: 20
        limit: 2
      - id: demo
        activity: demo_request
        within: 60d
        points: 25
        decay: false
      - id: thirds
        activity: call_attempt
        within: 30d
        points: 10
        decay: {every: 1d, factor: 0.333}
"""


@pytest.fixture
def ps(mini_set):
    mini_set.write("scoring.yaml", SCORING)
    return mini_set.load()


def at(**delta: float) -> str:
    """An ISO timestamp `delta` before NOW."""
    return (NOW - timedelta(**delta)).isoformat()


def lead(**fields) -> dict:
    return {"id": "L-1", "email": "jo@example.com", "country": "AU", **fields}


def score(ps, raw: dict, explain: bool = False) -> dict:
    return ps.evaluate(raw, NOW, explain=explain).to_dict()["score"]


def fired(section: dict) -> dict[str, float]:
    return {f["rule"]: f["points"] for f in section["fired"]}


# ---------------------------------------------------------------- condition rules


def test_condition_rule_adds_its_points_once(ps) -> None:
    s = score(ps, lead(employees=60))
    assert fired(s) == {"big": 30}
    assert s["groups"] == {"fit": 30, "eng": 0}
    assert s["total"] == 30
    (f,) = s["fired"]
    assert f == {"rule": "big", "group": "fit", "points": 30, "why": "lead.employees >= 50"}


def test_group_is_clamped_to_its_cap(ps) -> None:
    s = score(ps, lead(employees=5000), explain=True)
    assert fired(s) == {"big": 30, "huge": 30}
    assert s["groups"]["fit"] == 50
    trace = ps.evaluate(lead(employees=5000), NOW, explain=True).to_dict()["trace"]
    notes = [t for t in trace if t.get("note")]
    assert any("60 clamped to 50" in t["reason"] for t in notes)


def test_group_is_clamped_to_its_floor(ps) -> None:
    s = score(ps, {"id": "L-2", "country": "AU"})
    assert fired(s) == {"no-email": -50}
    assert s["groups"]["fit"] == -20
    assert s["total"] == -20


def test_total_is_clamped_to_the_total_limits(mini_set) -> None:
    mini_set.write("scoring.yaml", SCORING.replace("grade: [fit, eng]\n", "grade: [fit, eng]\ntotal: {cap: 40, floor: 0}\n"))
    ps = mini_set.load()
    assert score(ps, lead(employees=5000, activities=[{"type": "demo_request", "at": at(days=1)}]))["total"] == 40
    assert score(ps, {"id": "x", "country": "AU"})["total"] == 0


def test_points_are_ints_when_whole_and_keep_fractions_otherwise(ps) -> None:
    s = score(ps, lead(country="NZ", employees=60))
    assert fired(s) == {"big": 30, "not-au": 5, "half": 2.5}
    text = json.dumps(s)
    assert '"total": 37.5' in text and '"points": 30,' in text  # 30, not 30.0
    assert isinstance(s["groups"]["eng"], int)


# ---------------------------------------------------------------- grades


@pytest.mark.parametrize("employees,email,grade", [
    (5000, "a@b.com", "A2"),   # fit 50 >= 40
    (60, "a@b.com", "B2"),     # fit 30 >= 20
    (0, "a@b.com", "C2"),      # fit 0
    (0, None, "C2"),           # fit -20 (floor): the last grade catches everything below
])
def test_grade_is_the_first_grade_reached_joined_across_groups(ps, employees, email, grade) -> None:
    raw = lead(employees=employees)
    if email is None:
        del raw["email"]
    assert score(ps, raw)["grade"] == grade


def test_engagement_grade_threshold_is_inclusive(ps) -> None:
    s = score(ps, lead(activities=[{"type": "demo_request", "at": at(days=1)},
                                  {"type": "page_view", "at": at(hours=1), "url": "/pricing"}]))
    assert s["groups"]["eng"] == 45 and s["grade"] == "C1"
    s = score(ps, lead(activities=[{"type": "demo_request", "at": at(days=1)}]))
    assert s["groups"]["eng"] == 25 and s["grade"] == "C2"


# ---------------------------------------------------------------- activity rules


def test_activity_rule_adds_points_per_matching_activity_up_to_the_limit_newest_first(ps) -> None:
    acts = [  # given oldest first on purpose
        {"type": "page_view", "at": at(days=15), "url": "/pricing/a"},   # 2 full weeks: x0.25 -> 5
        {"type": "page_view", "at": at(days=8), "url": "/pricing/b"},    # 1 full week: x0.5 -> 10
        {"type": "page_view", "at": at(days=1), "url": "/pricing"},      # 20
    ]
    s = score(ps, lead(activities=acts))
    assert fired(s) == {"pricing": 30}  # newest two: 20 + 10 (the oldest two would give 15)
    why = s["fired"][0]["why"]
    assert why.startswith("2 × page_view where startswith(activity.url, \"/pricing\") in the last 30d (at most 2 counted)")
    assert "decayed ×0.5 per 7d" in why


def test_where_filters_activities(ps) -> None:
    acts = [{"type": "page_view", "at": at(days=1), "url": "/product"},
            {"type": "page_view", "at": at(days=2)}]  # url missing: startswith(MISSING, …) is false
    s = score(ps, lead(activities=acts), explain=True)
    assert "pricing" not in fired(s)


def test_where_filter_is_applied_before_the_limit(ps) -> None:
    acts = [{"type": "page_view", "at": at(hours=1), "url": "/blog"},
            {"type": "page_view", "at": at(hours=2), "url": "/blog"},
            {"type": "page_view", "at": at(hours=3), "url": "/pricing"}]
    assert fired(score(ps, lead(activities=acts)))["pricing"] == 20


@pytest.mark.parametrize("age,points", [
    (timedelta(days=6, hours=23, minutes=59), 20),
    (timedelta(days=7), 10),
    (timedelta(days=13, hours=23), 10),
    (timedelta(days=14), 5),
    (timedelta(days=28), 1.25),
])
def test_decay_is_a_step_per_full_period_of_age(ps, age, points) -> None:
    s = score(ps, lead(activities=[{"type": "page_view", "at": (NOW - age).isoformat(), "url": "/pricing"}]))
    assert fired(s) == {"pricing": points}


def test_rule_decay_false_overrides_the_group_decay(ps) -> None:
    s = score(ps, lead(activities=[{"type": "demo_request", "at": at(days=50)}]))
    assert fired(s) == {"demo": 25}
    assert "decayed" not in s["fired"][0]["why"]


def test_window_includes_its_boundary_and_excludes_older(ps) -> None:
    on_edge = score(ps, lead(activities=[{"type": "demo_request", "at": at(days=60)}]))
    assert fired(on_edge) == {"demo": 25}
    too_old = score(ps, lead(activities=[{"type": "demo_request", "at": at(days=60, seconds=1)}]))
    assert fired(too_old) == {}


def test_future_activities_are_ignored(ps) -> None:
    s = score(ps, lead(activities=[{"type": "demo_request", "at": (NOW + timedelta(minutes=1)).isoformat()},
                                   {"type": "demo_request", "at": NOW.isoformat()}]))
    assert fired(s) == {"demo": 25}  # the one at exactly `now` counts, the future one does not
    assert score(ps, lead(activities=[{"type": "demo_request", "at": (NOW + timedelta(days=1)).isoformat()}]))["fired"] == []


def test_activity_times_in_other_offsets_compare_as_instants(ps) -> None:
    # 60 days before NOW, written in UTC
    instant = (NOW - timedelta(days=60)).astimezone(__import__("datetime").timezone.utc).isoformat()
    assert fired(score(ps, lead(activities=[{"type": "demo_request", "at": instant}]))) == {"demo": 25}


def test_rule_points_are_rounded_to_two_decimals(ps) -> None:
    s = score(ps, lead(activities=[{"type": "call_attempt", "at": at(days=1, hours=1)}]))
    assert fired(s) == {"thirds": 3.33}  # 10 × 0.333
    s = score(ps, lead(activities=[{"type": "call_attempt", "at": at(days=2, hours=1)}]))
    assert fired(s) == {"thirds": 1.11}  # 10 × 0.333² = 1.10889


def test_activities_of_other_types_do_not_count(ps) -> None:
    s = score(ps, lead(activities=[{"type": "call_attempt", "at": at(days=40)},
                                   {"type": "page_view", "at": at(days=1), "url": "/x"}]))
    assert s["fired"] == []


# ---------------------------------------------------------------- missing values


def test_comparisons_with_a_missing_field_are_false(ps) -> None:
    s = score(ps, {"id": "L-3", "email": "a@b.com"})  # no employees, no country
    assert "big" not in fired(s)
    assert "not-au" not in fired(s)  # `!=` with a missing value is false too
    assert "half" not in fired(s)


def test_null_reads_as_missing(ps) -> None:
    s = score(ps, {"id": "L-3", "email": None, "employees": None, "country": None})
    assert fired(s) == {"no-email": -50}


def test_explain_lists_the_missing_fields_each_rule_read(ps) -> None:
    trace = ps.evaluate({"id": "L-3", "email": "a@b.com", "country": "AU"}, NOW, explain=True).to_dict()["trace"]
    by_rule = {t["rule"]: t for t in trace if t["kind"] == "scoring" and not t.get("note")}
    assert by_rule["big"]["missing"] == ["lead.employees"]
    assert by_rule["big"]["fired"] is False and by_rule["big"]["points"] == 0
    assert by_rule["not-au"]["values"] == {"lead.country": "AU"}
    assert "missing" not in by_rule["not-au"]
    assert set(by_rule) == {"big", "huge", "no-email", "not-au", "half", "pricing", "demo", "thirds"}


def test_arithmetic_with_missing_stays_missing_and_coalesce_replaces_it(mini_set) -> None:
    mini_set.write("scoring.yaml", SCORING.replace("lead.employees >= 1000", "lead.employees + 1000 >= 1000")
                   .replace('lead.country == "NZ"', "coalesce(lead.employees, 0) < 10"))
    ps = mini_set.load()
    s = score(ps, {"id": "L-4", "email": "a@b.com", "country": "AU"})
    assert "huge" not in fired(s)          # MISSING + 1000 is MISSING, the comparison is false
    assert fired(s)["half"] == 2.5         # coalesce gave 0


def test_missing_is_falsy_so_not_missing_is_true(mini_set) -> None:
    mini_set.write("scoring.yaml", SCORING.replace('lead.country == "NZ"', "not lead.employees"))
    ps = mini_set.load()
    assert "half" in fired(score(ps, {"id": "L-5", "email": "a@b.com"}))
    assert "half" not in fired(score(ps, {"id": "L-5", "email": "a@b.com", "employees": 3}))


# ---------------------------------------------------------------- run-time errors


def test_evaluation_error_becomes_a_warning_and_the_rule_does_not_fire(mini_set) -> None:
    schema = mini_set.root / "schemas" / "lead.schema.json"
    schema.write_text(schema.read_text().replace('"url": {"type": "string"}', '"url": {"type": "string"}, "campaign": {}'))
    mini_set.write("scoring.yaml", SCORING.replace('startswith(activity.url, "/pricing")', 'lower(activity.campaign) == "x"'))
    ps = mini_set.load()
    d = ps.evaluate(lead(activities=[{"type": "page_view", "at": at(days=1), "campaign": 42},
                                     {"type": "page_view", "at": at(days=2), "campaign": "X"}]), NOW).to_dict()
    assert fired(d["score"]) == {"pricing": 20}  # only the second activity matched
    assert d["warnings"] == [{"rule": "pricing", "message": "lower() expects a string, got number"}]


@pytest.mark.parametrize("explain", [False, True])
def test_grade_and_total_use_the_group_score_as_shown(mini_set, explain: bool) -> None:
    """0.7 + 0.1 is 0.7999999999999999 in floating point: shown as 0.8, it must also grade as 0.8."""
    text = SCORING.replace("      - {grade: A, min: 40}\n", "      - {grade: A, min: 0.8}\n").replace(
        "      - {grade: B, min: 20}\n", "")
    text = text.replace("""      - id: big
        when: lead.employees >= 50
        points: 30
      - id: huge
        when: lead.employees >= 1000
        points: 30""", """      - id: big
        when: lead.employees >= 50
        points: 0.7
      - id: huge
        when: lead.employees >= 50
        points: 0.1""")
    mini_set.write("scoring.yaml", text)
    section = score(mini_set.load(), lead(employees=60), explain=explain)
    assert section["groups"]["fit"] == 0.8
    assert section["grade"].startswith("A")
    assert section["total"] == section["groups"]["fit"] + section["groups"]["eng"]

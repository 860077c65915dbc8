"""LeadSchema: compiled validation with field paths, conversion into the read-only view, hostile-input bounds."""

from __future__ import annotations

import copy
import json
import pickle
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.errors import LeadError
from engine.expr import MISSING, sandbox
from engine.leads import LeadSchema, LeadSchemaError, LeadView

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "lead.schema.json").read_text())
LEADS = LeadSchema.from_json_schema(SCHEMA)

GOOD = {
    "id": "L-1",
    "email": "jo@acme.com",
    "employees": 120,
    "country": "AU",
    "seniority": "vp",
    "company": {"name": "Acme", "industry": "software", "annual_revenue": 1000, "crm_segment": "ent"},
    "stage_entered_at": "2024-05-20T10:00:00+10:00",
    "transition_request": {"to": "nurture", "reason_code": "no_budget"},
    "activities": [
        {"type": "page_view", "at": "2024-05-30T00:00:00Z", "url": "/pricing"},
        {"type": "form_fill", "at": "2024-05-31T09:00:00.250+02:00", "campaign": "q2"},
    ],
    "sla_pauses": [{"from": "2024-05-21T00:00:00Z"}],
    "crm_custom": {"tags": ["a", None], "nested": {"x": 1}},
}


def prepare_error(raw: object, leads: LeadSchema = LEADS) -> LeadError:
    with pytest.raises(LeadError) as info:
        leads.prepare(raw)
    return info.value


def with_(**changes: object) -> dict:
    raw = copy.deepcopy(GOOD)
    raw.update(changes)
    return raw


# -------------------------------------------------------------------------------------------- the view


def test_prepare_converts_to_read_only_view() -> None:
    view = LEADS.prepare(GOOD)
    assert isinstance(view, LeadView) and isinstance(view, dict)
    assert view["employees"] == 120 and view["country"] == "AU"
    assert view["abn"] is MISSING and view["state"] is MISSING  # declared, absent
    assert view["company"]["industry"] == "software"
    assert view["company"]["domain"] is MISSING
    assert view["company"]["crm_segment"] == "ent"  # undeclared property kept (additionalProperties: true)
    assert view["stage_entered_at"] == datetime(2024, 5, 20, tzinfo=timezone.utc)
    assert view["stage_entered_at"].utcoffset() == timedelta(hours=10)
    activities = view["activities"]
    assert isinstance(activities, tuple) and len(activities) == 2
    assert activities[1]["at"] == datetime(2024, 5, 31, 7, 0, 0, 250000, tzinfo=timezone.utc)
    assert activities[1]["asset"] is MISSING and activities[1]["campaign"] == "q2"
    assert view["sla_pauses"][0]["to"] is MISSING
    assert view["crm_custom"]["tags"] == ("a", MISSING)
    assert isinstance(view["crm_custom"]["nested"], LeadView)
    assert view["transition_request"]["note"] is MISSING


def test_every_declared_property_present() -> None:
    view = LEADS.prepare({"id": "x"})
    assert set(SCHEMA["properties"]) <= set(view)
    assert all(view[name] is MISSING for name in SCHEMA["properties"] if name != "id")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.__setitem__("employees", 1),
        lambda v: v.__delitem__("employees"),
        lambda v: v.update({"a": 1}),
        lambda v: v.pop("employees"),
        lambda v: v.popitem(),
        lambda v: v.clear(),
        lambda v: v.setdefault("zz", 1),
        lambda v: v.__ior__({"a": 1}),
        lambda v: v["company"].__setitem__("industry", "retail"),
        lambda v: v["activities"][0].__setitem__("type", "x"),
    ],
)
def test_view_is_read_only(mutate) -> None:
    view = LEADS.prepare(GOOD)
    with pytest.raises((TypeError, AttributeError)):
        mutate(view)
    assert view["employees"] == 120 and view["company"]["industry"] == "software"


def test_raw_input_is_not_modified_and_view_is_independent() -> None:
    raw = copy.deepcopy(GOOD)
    view = LEADS.prepare(raw)
    assert raw == GOOD
    raw["company"]["industry"] = "retail"
    assert view["company"]["industry"] == "software"


def test_view_pickles_and_copies() -> None:
    view = LEADS.prepare(GOOD)
    assert copy.deepcopy(view) is view
    again = pickle.loads(pickle.dumps(view))
    assert again == view and isinstance(again, LeadView)


def test_integral_floats_become_integers() -> None:
    view = LEADS.prepare(with_(employees=50.0))
    assert view["employees"] == 50 and type(view["employees"]) is int


# -------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "raw, field, fragment, code",
    [
        ({"email": "x"}, "id", "required", "LEAD002"),
        (with_(id=""), "id", "shorter", "LEAD001"),
        (with_(id=5), "id", "must be a string", "LEAD001"),
        (with_(employees="12"), "employees", "must be an integer", "LEAD001"),
        (with_(employees=True), "employees", "must be an integer", "LEAD001"),
        (with_(employees=1.5), "employees", "must be an integer", "LEAD001"),
        (with_(employees=-1), "employees", "at least 0", "LEAD001"),
        (with_(employees=float("nan")), "employees", "finite", "LEAD001"),
        (with_(country="au"), "country", "pattern", "LEAD001"),
        (with_(country="AUS"), "country", "pattern", "LEAD001"),
        (with_(seniority="ceo"), "seniority", "not an allowed value", "LEAD001"),
        (with_(email="x" * 321), "email", "longer than 320", "LEAD001"),
        (with_(is_student="yes"), "is_student", "true or false", "LEAD001"),
        (with_(company={"industry": "banking"}), "company.industry", "not an allowed value", "LEAD001"),
        (with_(company={"annual_revenue": -5}), "company.annual_revenue", "at least 0", "LEAD001"),
        (with_(company="Acme"), "company", "must be an object", "LEAD001"),
        (with_(transition_request={"reason_code": "x"}), "transition_request.to", "required", "LEAD002"),
        (with_(transition_request={"to": "x", "mood": "sad"}), "transition_request.mood", "unexpected", "LEAD003"),
        (with_(activities={"type": "page_view"}), "activities", "must be an array", "LEAD001"),
        (
            with_(activities=[{"type": "page_view", "at": "2024-05-30T00:00:00Z"}] * 3 + [{"type": "page_view", "at": "2024-05-30T00:00:00"}]),
            "activities[3].at", "no UTC offset", "LEAD004",
        ),
        (with_(activities=[{"type": "page_view"}]), "activities[0].at", "required", "LEAD002"),
        (with_(activities=[{"type": "tweet", "at": "2024-05-30T00:00:00Z"}]), "activities[0].type", "allowed", "LEAD001"),
        (with_(activities=[{"type": "page_view", "at": "yesterday"}]), "activities[0].at", "not a date-time", "LEAD004"),
        (with_(activities=[{"type": "page_view", "at": "2024-02-30T00:00:00Z"}]), "activities[0].at", "invalid date-time", "LEAD004"),
        (with_(sla_pauses=[{"from": "2024-05-21T00:00:00Z", "to": 5}]), "sla_pauses[0].to", "must be a string", "LEAD001"),
        (with_(stage_entered_at="2024-05-20"), "stage_entered_at", "not a date-time", "LEAD004"),
    ],
)
def test_validation_errors_name_the_field(raw: dict, field: str, fragment: str, code: str) -> None:
    err = prepare_error(raw)
    assert err.field == field
    assert fragment in err.message
    assert err.code == code
    assert str(err).startswith(field + ": ")


def test_naive_datetime_has_hint() -> None:
    err = prepare_error(with_(stage_entered_at="2024-05-20T10:00:00"))
    assert "offset" in err.hint  # type: ignore[attr-defined]
    assert "Z" in err.hint  # type: ignore[attr-defined]


def test_enum_error_lists_allowed_values() -> None:
    err = prepare_error(with_(source="billboard"))
    assert "'website'" in err.message


def test_lead_must_be_an_object() -> None:
    for raw in (None, [], "lead", 5):
        err = prepare_error(raw)
        assert "JSON object" in err.message


def test_nullable_fields_read_as_missing() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["employees"]["type"] = ["integer", "null"]
    leads = LeadSchema.from_json_schema(schema)
    assert leads.prepare(with_(employees=None))["employees"] is MISSING
    assert prepare_error(with_(employees="x"), leads).field == "employees"


def test_additional_properties_schema_and_array_bounds() -> None:
    leads = LeadSchema.from_json_schema(
        {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}},
            "additionalProperties": {"type": "integer"},
        }
    )
    assert leads.prepare({"tags": ["a"], "n": 3})["n"] == 3
    assert prepare_error({"tags": ["a"], "n": "x"}, leads).field == "n"
    assert prepare_error({"tags": ["a", "b", "c"]}, leads).field == "tags"
    assert prepare_error({"tags": []}, leads).field == "tags"
    assert prepare_error({"tags": ["a", 5]}, leads).field == "tags[1]"


def test_activities_max_items() -> None:
    activity = {"type": "page_view", "at": "2024-05-30T00:00:00Z"}
    err = prepare_error(with_(activities=[activity] * 10_001))
    assert err.field == "activities" and "more than 10000" in err.message


def test_type_unions_and_const() -> None:
    leads = LeadSchema.from_json_schema(
        {
            "type": "object",
            "properties": {
                "v": {"type": ["string", "integer"]},
                "c": {"const": "fixed"},
                "n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "b": {"enum": [1, "x"]},
            },
        }
    )
    assert leads.prepare({"v": "a"})["v"] == "a" and leads.prepare({"v": 3})["v"] == 3
    assert prepare_error({"v": 1.5}, leads).field == "v"
    assert prepare_error({"c": "other"}, leads).field == "c"
    assert prepare_error({"n": 0}, leads).field == "n"
    assert prepare_error({"n": 1}, leads).field == "n"
    assert leads.prepare({"n": 0.5})["n"] == 0.5
    assert prepare_error({"b": True}, leads).field == "b"  # JSON: true is not 1
    assert leads.prepare({"b": 1})["b"] == 1


# -------------------------------------------------------------------------------------------- hostile input


def test_nesting_depth_bounded() -> None:
    deep: object = "x"
    for _ in range(sandbox.MAX_LEAD_DEPTH + 5):
        deep = {"a": deep}
    err = prepare_error(with_(crm_custom=deep))
    assert err.code == "LEAD005"
    assert err.field.startswith("crm_custom.a.a")


def test_cyclic_input_is_a_lead_error_not_a_recursion_error() -> None:
    loop: dict = {}
    loop["self"] = loop
    assert prepare_error(with_(crm_custom=loop)).code == "LEAD005"
    items: list = []
    items.append(items)
    assert prepare_error(with_(crm_custom=items)).code == "LEAD005"


def test_total_string_size_bounded() -> None:
    chunk = "x" * 90_000
    raw = with_(crm_custom={f"k{i}": chunk for i in range(sandbox.MAX_LEAD_TOTAL_CHARS // 90_000 + 2)})
    err = prepare_error(raw)
    assert err.code == "LEAD005"


def test_single_string_and_int_bounded() -> None:
    assert prepare_error(with_(crm_custom="x" * (sandbox.MAX_STRING_LENGTH + 1))).code == "LEAD005"
    assert prepare_error(with_(crm_custom=2 ** (sandbox.MAX_INT_BITS + 1))).code == "LEAD005"
    assert prepare_error(with_(employees=2 ** (sandbox.MAX_INT_BITS + 1))).code == "LEAD005"


def test_number_of_values_bounded() -> None:
    raw = with_(crm_custom=[[0] * 1000 for _ in range(sandbox.MAX_LEAD_VALUES // 1000 + 1)])
    assert prepare_error(raw).code == "LEAD005"


def test_keys_bounded_and_strings_only() -> None:
    assert prepare_error(with_(crm_custom={"k" * 1000: 1})).code == "LEAD005"
    assert prepare_error(with_(crm_custom={1: 1})).field == "crm_custom"


def test_non_json_values_rejected() -> None:
    err = prepare_error(with_(crm_custom={"when": datetime(2024, 1, 1)}))
    assert err.field == "crm_custom.when"
    assert prepare_error(with_(crm_custom=float("inf"))).field == "crm_custom"


# -------------------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize(
    "schema, fragment",
    [
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "$ref"),
        ({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}}, "oneOf"),
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(a"}}}, "pattern"),
        ({"type": "object", "properties": {"a": {"type": "strnig"}}}, "unknown type"),
        ({"type": "object", "properties": {"a": {"type": "string", "maxLength": "5"}}}, "maxLength"),
        ({"type": "array"}, "type"),
        ([], "JSON object"),
    ],
)
def test_unsupported_schemas_fail_loudly(schema: object, fragment: str) -> None:
    with pytest.raises(LeadSchemaError) as info:
        LeadSchema.from_json_schema(schema)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)


def test_schema_type_is_exposed() -> None:
    assert set(LEADS.type.props) == set(SCHEMA["properties"])


def test_optional_null_reads_as_missing_but_required_null_is_an_error() -> None:
    """CRM exports write empty fields as null: an optional null is absent; a required one is still invalid."""
    view = LEADS.prepare(with_(employees=None))
    assert view["employees"] is MISSING
    err = prepare_error({"id": None})
    assert err.field == "id"

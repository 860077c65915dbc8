"""Mappings: validation diagnostics (file:line:col), coercions, value maps, owners, activities, stage history,
unused fields, and the presets on the records HubSpot and Salesforce send."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.crm import MappingError, load_mapping
from engine.crm.coerce import CoerceError, to_band, to_bool, to_datetime, to_number
from engine.errors import LeadError, PolicyError

MINI = """\
kind: mapping
name: mini
time_zone: Australia/Brisbane
lead:
  id: {from: [Id, "Record ID"], required: true}
  employees: {from: Size, band: lower}
  country: {from: Country, values: {AU: [Australia, AU], US: [United States, USA]}}
  is_student: {from: Student}
  stage: {from: Stage, values: {mql: [marketingqualifiedlead, "Marketing Qualified Lead"]}, default: lead}
  stage_entered_at: {stage_dates: {mql: MqlDate}}
  company.annual_revenue: {from: Revenue}
  account_owner: {from: Owner, owners: {alice.nguyen: ["71000001", Alice Nguyen]}, skip: [QUEUE]}
ignore: [Phone]
activities:
  lead_id: {from: LeadId}
  fields:
    type: {join: [Kind, Direction], values: {call_attempt: ["CALL/OUTBOUND"]}, skip: [EMAIL]}
    at: {from: When}
"""


def write(tmp_path: Path, text: str, name: str = "mini.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def diagnostics(tmp_path: Path, ps, text: str) -> list:
    with pytest.raises(PolicyError) as info:
        load_mapping(write(tmp_path, text), ps)
    return info.value.diagnostics


@pytest.fixture
def mini(tmp_path, example_ps):
    return load_mapping(write(tmp_path, MINI), example_ps)


# ------------------------------------------------------------------------------------------ coercions


@pytest.mark.parametrize("raw,integer,expected", [
    ("1,200", True, 1200), ("1200", True, 1200), ("1200.0", True, 1200), (" 42 ", True, 42), (7, True, 7),
    ("1,234.5", False, 1234.5), ("3.5e2", False, 350), (2.5, False, 2.5),
])
def test_numbers(raw, integer, expected):
    assert to_number(raw, integer) == expected


@pytest.mark.parametrize("raw,integer", [("12a", True), ("1.5", True), ("1,20", True), (True, False), ("", True), ("nan", False)])
def test_numbers_refused(raw, integer):
    with pytest.raises(CoerceError):
        to_number(raw, integer)


@pytest.mark.parametrize("raw,bound,expected", [
    ("201-500", "lower", 201), ("201-500", "upper", 500), ("10,001+", "upper", 10001), ("1000+", "lower", 1000),
    ("1 - 5", "upper", 5), ("350", "lower", 350), (80, "upper", 80),
])
def test_bands(raw, bound, expected):
    assert to_band(raw, bound) == expected


def test_band_refused():
    with pytest.raises(CoerceError, match="band"):
        to_band("lots", "lower")


@pytest.mark.parametrize("raw,expected", [("true", True), ("FALSE", False), ("Yes", True), ("n", False), ("1", True),
                                          (0, False), (True, True)])
def test_booleans(raw, expected):
    assert to_bool(raw) is expected


def test_boolean_refused():
    with pytest.raises(CoerceError, match="true or false"):
        to_bool("maybe")


@pytest.mark.parametrize("raw,zone,expected", [
    ("1763600000000", "UTC", "2025-11-20T00:53:20+00:00"),          # HubSpot epoch milliseconds
    (1763600000, "UTC", "2025-11-20T00:53:20+00:00"),               # epoch seconds
    ("2026-11-20T03:04:05.000+0000", "UTC", "2026-11-20T03:04:05+00:00"),  # Salesforce API
    ("2026-11-20T03:04:05Z", "UTC", "2026-11-20T03:04:05+00:00"),
    ("2026-11-20", "UTC", "2026-11-20T00:00:00+00:00"),             # Salesforce ActivityDate (a date)
    ("2026-11-20 14:03", "Australia/Brisbane", "2026-11-20T14:03:00+10:00"),  # naive: in the declared zone
    ("2026-07-01 09:00", "Australia/Sydney", "2026-07-01T09:00:00+10:00"),
    ("2026-01-01 09:00", "Australia/Sydney", "2026-01-01T09:00:00+11:00"),    # DST
])
def test_datetimes(raw, zone, expected):
    assert to_datetime(raw, zone) == expected


def test_datetime_refused():
    with pytest.raises(CoerceError, match="ISO 8601"):
        to_datetime("20/11/2026", "UTC")


# ------------------------------------------------------------------------------------------ mapping records


def test_mini_mapping_maps_every_kind_of_rule(mini):
    lead = mini.to_lead({"Id": "7", "Size": "201-500", "Country": "australia", "Student": "no",
                         "Stage": "Marketing Qualified Lead", "MqlDate": "2026-11-20 09:00", "Revenue": "1,200,000",
                         "Owner": "Alice Nguyen", "Phone": "555"},
                        [{"LeadId": "7", "Kind": "CALL", "Direction": "OUTBOUND", "When": "1763600000000"},
                         {"LeadId": "7", "Kind": "EMAIL", "When": "2026-11-21"}], row=2)
    assert lead == {
        "id": "7", "employees": 201, "country": "AU", "is_student": False, "stage": "mql",
        "stage_entered_at": "2026-11-20T09:00:00+10:00", "company": {"annual_revenue": 1200000},
        "account_owner": "alice.nguyen", "activities": [{"type": "call_attempt", "at": "2025-11-20T00:53:20+00:00"}],
    }


def test_default_skip_and_empty(mini):
    lead = mini.to_lead({"Id": "8", "Stage": "customer", "Owner": "QUEUE", "Country": "", "Size": " "})
    assert lead == {"id": "8", "stage": "lead"}  # unknown stage -> declared default; queue and blanks absent


def test_unknown_value_names_row_column_value_and_closest(mini):
    with pytest.raises(MappingError) as info:
        mini.to_lead({"Id": "9", "Country": "Austrlia"}, row=14)
    err = info.value
    assert isinstance(err, LeadError) and err.code == "MAP001" and err.field == "country"
    assert (err.row, err.column, err.value, err.closest) == (14, "Country", "Austrlia", "Australia")
    assert "row 14, column 'Country': unknown value 'Austrlia'" in err.message and "did you mean 'Australia'" in err.message


def test_unknown_owner_and_bad_number(mini):
    with pytest.raises(MappingError, match=r"row 3, column 'Owner': unknown value '999'"):
        mini.to_lead({"Id": "9", "Owner": "999"}, row=3)
    with pytest.raises(MappingError, match=r"row 4, column 'Revenue': 'lots' is not a number") as info:
        mini.to_lead({"Id": "9", "Revenue": "lots"}, row=4)
    assert info.value.code == "MAP002"
    with pytest.raises(MappingError, match=r"'Student': 'perhaps' is not true or false"):
        mini.to_lead({"Id": "9", "Student": "perhaps"}, row=5)


def test_required_id(mini):
    with pytest.raises(MappingError, match=r"row 6: no value for id \(looked in 'Id', 'Record ID'\)") as info:
        mini.to_lead({"Id": " ", "Country": "AU"}, row=6)
    assert info.value.code == "MAP006"


def test_unknown_activity_type_names_the_activity_row(mini):
    with pytest.raises(MappingError, match=r"activity row 31, column 'Kind/Direction': unknown value 'MEETING/X'"):
        mini.to_lead({"Id": "1"}, [(31, {"LeadId": "1", "Kind": "MEETING", "Direction": "X", "When": "2026-11-20"})])


def test_unused_fields_and_strict(tmp_path, example_ps, mini):
    record = {"Id": "1", "Phone": "555", "Fax": "1", "Empty": "", "Nested": {"a": 1, "b": None}}
    assert mini.unused_fields(record) == ["Fax", "Nested.a"]
    strict = load_mapping(write(tmp_path, MINI), example_ps, strict=True)
    with pytest.raises(MappingError, match=r"row 2, column 'Fax': no mapping rule uses this field") as info:
        strict.to_lead(record, row=2)
    assert info.value.code == "MAP005"
    assert strict.to_lead({"Id": "1", "Phone": "555"}) == {"id": "1"}


def test_join_key(mini):
    assert mini.join_key({"LeadId": 12}) == "12"
    assert mini.join_key({"Other": 1}) is None


# ------------------------------------------------------------------------------------------ validation


def test_unknown_lead_field_with_did_you_mean(tmp_path, example_ps):
    text = MINI.replace("  employees: {from: Size, band: lower}", "  employes: {from: Size, band: lower}")
    (d,) = diagnostics(tmp_path, example_ps, text)
    assert d.code == "MAPPING002" and (d.location.line, d.location.column) == (6, 3)
    assert d.location.file.endswith("mini.yaml") and "did you mean 'employees'" in d.hint


def test_unknown_enum_value_with_did_you_mean(tmp_path, example_ps):
    (d,) = diagnostics(tmp_path, example_ps, MINI.replace("values: {mql: [", "values: {mqll: ["))
    assert d.code == "MAPPING005" and d.location.line == 9 and "did you mean 'mql'" in d.hint


def test_unknown_rep_and_stage(tmp_path, example_ps):
    text = MINI.replace("owners: {alice.nguyen:", "owners: {alice.nguyan:").replace("{mql: MqlDate}", "{mq: MqlDate}")
    found = diagnostics(tmp_path, example_ps, text)
    assert [(d.code, d.location.line) for d in found] == [("MAPPING005", 10), ("MAPPING005", 12)]
    assert "did you mean 'mql'" in found[0].hint and "did you mean 'alice.nguyen'" in found[1].hint


def test_schema_error_is_located(tmp_path, example_ps):
    (d,) = diagnostics(tmp_path, example_ps, MINI.replace("band: lower", "bnad: lower"))
    assert d.code == "SCHEMA001" and (d.location.line, d.location.column) == (6, 27)
    assert "did you mean 'band'" in d.hint


def test_yaml_error_and_bad_zone(tmp_path, example_ps):
    (d,) = diagnostics(tmp_path, example_ps, MINI + "ignore: [x]\n")
    assert d.code == "YAML002"
    (d,) = diagnostics(tmp_path, example_ps, MINI.replace("Australia/Brisbane", "Australia/Brisbne"))
    assert d.code == "MAPPING004" and d.location.line == 3


def test_band_on_a_string_and_two_sources(tmp_path, example_ps):
    text = MINI.replace("is_student: {from: Student}", "is_student: {from: Student, const: true}")
    (d,) = diagnostics(tmp_path, example_ps, text)
    assert d.code == "MAPPING003" and d.location.line == 8


def test_unknown_preset_or_file(example_ps):
    with pytest.raises(PolicyError) as info:
        load_mapping("hubspt", example_ps)
    assert "did you mean 'hubspot'" in info.value.diagnostics[0].hint


# ------------------------------------------------------------------------------------------ presets


def test_hubspot_api_json(example_ps):
    hubspot = load_mapping("hubspot", example_ps)
    record = {"id": "101", "createdAt": "2026-11-01T00:00:00Z", "archived": False, "properties": {
        "email": "kim@acme.com.au", "numemployees": "100-500", "country": "Australia", "state": "Queensland",
        "lifecyclestage": "marketingqualifiedlead", "industry": "BANKING", "annualrevenue": "1200000",
        "hs_lifecyclestage_marketingqualifiedlead_date": "2026-11-20T01:02:03.000Z", "hubspot_owner_id": "71000001",
        "hs_email_optout": "false", "hs_lead_status": "NEW"}}
    assert hubspot.to_lead(record) == {
        "id": "101", "email": "kim@acme.com.au", "country": "AU", "state": "QLD", "employees": 100,
        "unsubscribed": False, "company": {"industry": "financial_services", "annual_revenue": 1200000},
        "stage": "mql", "account_owner": "alice.nguyen", "stage_entered_at": "2026-11-20T01:02:03+00:00"}
    assert hubspot.unused_fields(record) == []


def test_hubspot_csv_labels_and_engagements(example_ps):
    hubspot = load_mapping("hubspot", example_ps)
    row = {"Record ID": "5", "Lifecycle Stage": "Sales Qualified Lead", "Number of Employees": "1000+",
           "Industry": "Airlines/Aviation", "Contact owner": "Ben Taylor",
           "Became a Sales Qualified Lead Date": "2026-11-18 10:00"}
    events = [{"contact_id": "5", "hs_engagement_type": "CALL", "hs_call_direction": "OUTBOUND",
               "hs_timestamp": "1763600000000", "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7"},
              {"contact_id": "5", "hs_engagement_type": "MEETING", "hs_activity_type": "Discovery call",
               "hs_timestamp": "1763700000000"}]
    lead = hubspot.to_lead(row, events)
    assert lead["stage"] == "sql" and lead["employees"] == 1000 and lead["company"] == {"industry": "other"}
    assert lead["account_owner"] == "ben.taylor" and lead["stage_entered_at"] == "2026-11-18T10:00:00+00:00"
    assert [a["type"] for a in lead["activities"]] == ["call_attempt", "discovery_call_booked"]


def test_salesforce_converted_lead_and_tasks(example_ps):
    salesforce = load_mapping("salesforce", example_ps)
    record = {"attributes": {"type": "Lead", "url": "/services/data/v62.0/sobjects/Lead/00Q1"}, "Id": "00Q1",
              "Status": "Closed - Converted", "IsConverted": True, "ConvertedDate": "2026-11-19",
              "CountryCode": "US", "Country": "United States", "StateCode": "NY", "NumberOfEmployees": 250,
              "LeadSource": "Partner Referral", "OwnerId": "0055g00000Rep14AAA"}
    tasks = [{"WhoId": "00Q1", "TaskSubtype": "Call", "CallType": "Outbound", "ActivityDate": "2026-11-19",
              "CompletedDateTime": "2026-11-19T23:10:00.000+0000"},
             {"WhoId": "00Q1", "TaskSubtype": "Email", "ActivityDate": "2026-11-19"},
             {"WhoId": "00Q1", "EventSubtype": "Event", "Type": "Demo", "StartDateTime": "2026-11-21T01:00:00.000+0000"}]
    lead = salesforce.to_lead(record, tasks)
    assert lead == {"id": "00Q1", "country": "US", "state": "NY", "employees": 250, "source": "partner",
                    "stage": "opportunity", "stage_entered_at": "2026-11-19T00:00:00+00:00",
                    "account_owner": "mia.johnson",
                    "activities": [{"type": "call_attempt", "at": "2026-11-19T23:10:00+00:00"},
                                   {"type": "demo_request", "at": "2026-11-21T01:00:00+00:00"}]}
    assert salesforce.reverse_value("stage", "opportunity", column="Status") == "Closed - Converted"


def test_no_id_band_on_text_and_writeback_errors(tmp_path, example_ps):
    text = MINI.replace('  id: {from: [Id, "Record ID"], required: true}\n', "")
    (d,) = diagnostics(tmp_path, example_ps, text)
    assert d.code == "MAPPING001" and "no lead 'id'" in d.message and d.location.line == 5
    (d,) = diagnostics(tmp_path, example_ps, MINI.replace("is_student: {from: Student}", "email: {from: Mail, band: upper}"))
    assert d.code == "MAPPING006" and d.location.line == 8 and "band applies to numbers" in d.message
    text = MINI + "writeback: {Score: {column: scroe}, Stage: {column: stage, through: email}}\n"
    found = diagnostics(tmp_path, example_ps, text)
    assert [d.code for d in found] == ["MAPPING007", "MAPPING007"]
    assert "did you mean 'score'" in found[0].hint and "fields with maps" in found[1].hint

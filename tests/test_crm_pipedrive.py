"""The pipedrive mapping preset: the round trip native -> Pipedrive (API JSON, Fivetran warehouse table through
Parquet) -> mapping gives the same leads and the same decisions byte for byte; the example export becomes
decisions; primary e-mails, label ids and custom-field keys are read as Pipedrive writes them; `leadops validate
--fields` names the custom fields."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import engine
from cli import cli
from engine.crm import MappingError, load_mapping
from engine.crm.synth import crm_records, native_leads, strip_private

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "scenarios" / "crm"
NOW = "2026-11-23T09:00:00+10:00"
NOW_DT = engine.policyset.parse_instant(NOW)
SQL_LABEL = "07cc0278-cdf4-5c83-89be-244144e572a7"
ABN_KEY = "8d24960a61209774805fde0e2a504311674c3c35"


@pytest.fixture(scope="module")
def mapping(example_ps):
    return load_mapping("pipedrive", example_ps)


def through_parquet(rows: list[dict]) -> list[dict]:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return pq.read_table(buf).to_pylist()


@pytest.mark.parametrize("shape", ["api", "warehouse"])
def test_round_trip_native_pipedrive_native_same_leads_and_decisions(example_ps, mapping, shape):
    leads = native_leads(300, 7, "pipedrive")
    records, activities = crm_records("pipedrive", mapping, leads, shape, 7)
    if shape == "warehouse":  # a warehouse table: typed columns, lists as JSON text
        records, activities = through_parquet(records), through_parquet(activities)
    else:  # as the API sends it
        records, activities = json.loads(json.dumps(records)), json.loads(json.dumps(activities))
    joined: dict[str, list] = {}
    for act in activities:
        joined.setdefault(mapping.join_key(act), []).append(act)
    assert sum(len(lead.get("activities", [])) for lead in leads) < len(activities)  # planned calls, tasks: skipped
    for lead, record in zip(leads, records):
        assert mapping.unused_fields(record) == []
        mapped = mapping.to_lead(record, joined.get(lead["id"]))
        assert mapped == strip_private(lead)
        native = json.dumps(example_ps.evaluate(strip_private(lead), NOW_DT).to_dict())
        assert json.dumps(example_ps.evaluate(mapped, NOW_DT).to_dict()) == native


def test_example_export_becomes_decisions(tmp_path):
    out = tmp_path / "decisions.jsonl"
    r = CliRunner().invoke(cli, ["eval", str(DATA / "pipedrive-leads.json"), "--mapping", "pipedrive", "--activities",
                                 str(DATA / "pipedrive-activities.json"), "--now", NOW, "--out", str(out)])
    assert r.exit_code == 0, r.output
    decisions = [json.loads(x) for x in out.read_text().splitlines()]
    leads = json.loads((DATA / "pipedrive-leads.json").read_text())["data"]
    assert [d["lead_id"] for d in decisions] == [x["id"] for x in leads] and len(leads) == 500
    assert "500 records in = 500 decisions + 0 error records" in r.stderr
    assert any(d["stage"]["to"] == "sql" for d in decisions)


def test_primary_email_label_ids_and_custom_keys(mapping):
    record = {"id": "5f0e2c1a-3b8d-4f6e-9a7c-1d2e3f4a5b6c", "owner_id": 13000003, "source_name": "Web forms",
              "label_ids": [SQL_LABEL, "f0359510-e376-5300-b071-35a8c363c9a7"], "add_time": "2026-11-20T01:02:03.000Z",
              ABN_KEY: "51824753556",
              "person": {"first_name": "Ann", "email": [{"value": "ann@home.example", "primary": False},
                                                        {"value": "ann@acme.com.au", "primary": True}]},
              "organization": {"name": "Acme", "address_country": "Australia",
                               "address_admin_area_level_1": "Queensland", "employee_count": 40}}
    lead = mapping.to_lead(record)
    assert lead["email"] == "ann@acme.com.au" and lead["stage"] == "sql" and lead["abn"] == "51824753556"
    assert lead["account_owner"] == "raj.patel" and (lead["country"], lead["state"]) == ("AU", "QLD")
    flat = {"id": "x", "label_ids": json.dumps(["c8c99083-83dc-5fae-b780-38a0dca2f503"]), "person_email": "b@c.io"}
    assert mapping.to_lead(flat) == {"id": "x", "email": "b@c.io", "stage": "mql"}  # a warehouse row
    with pytest.raises(MappingError) as err:
        mapping.to_lead({**record, "label_ids": ["Nurturing"]}, row=7)
    assert "row 7" in err.value.message and "'Nurturing'" in err.value.message and err.value.closest == "Nurture"


def test_validate_shows_custom_field_names_next_to_keys(tmp_path):
    fields = DATA / "pipedrive-deal-fields.json"
    r = CliRunner().invoke(cli, ["validate", "--policies", str(REPO / "policies"), "--mapping", "pipedrive",
                                 "--fields", str(fields)])
    assert r.exit_code == 0, r.output
    assert f"pipedrive: abn <- {ABN_KEY} (ABN)" in r.stdout
    assert "pipedrive: requested_quote <- 61c88fabcb017760d4940647e528564b15e33a05 (Requested a quote)" in r.stdout
    partial = tmp_path / "fields.json"
    partial.write_text(json.dumps({"success": True, "data": [{"key": ABN_KEY, "name": "ABN (AU)"}]}))
    j = CliRunner().invoke(cli, ["validate", "--policies", str(REPO / "policies"), "--mapping", "pipedrive",
                                 "--fields", str(partial), "--format", "json"])
    named = {c["field"]: c["name"] for c in json.loads(j.stdout)["policy"]["custom_fields"]}
    assert {k: v for k, v in named.items() if " = " not in k} == {"abn": "ABN (AU)", "requested_quote": None,
                                                                  "stage_entered_at": None}
    labels = CliRunner().invoke(cli, ["validate", "--policies", str(REPO / "policies"), "--mapping", "pipedrive",
                                      "--fields", str(DATA / "pipedrive-lead-labels.json")])
    assert f"pipedrive: stage = sql <- {SQL_LABEL} (SQL)" in labels.stdout  # label ids named by the label list
    t = CliRunner().invoke(cli, ["validate", "--policies", str(REPO / "policies"), "--mapping", "pipedrive",
                                 "--fields", str(partial)])
    assert "stage_entered_at <- 922d81bf85238c1a6f36f4f5443177b26e9ccbfc (not in the field list" in t.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    b = CliRunner().invoke(cli, ["validate", "--policies", str(REPO / "policies"), "--fields", str(bad)])
    assert b.exit_code == 1 and "not valid JSON" in b.output and "Traceback" not in b.output


def test_init_crm_pipedrive_validates_and_names_its_custom_fields(tmp_path, monkeypatch):
    target = tmp_path / "repo"
    r = CliRunner().invoke(cli, ["init", str(target), "--crm", "pipedrive", "--no-git"])
    assert r.exit_code == 0, r.output
    assert "user_id" in (target / "policies" / "mappings" / "pipedrive.yaml").read_text()  # starter reps: no owner map
    monkeypatch.chdir(target)
    ok = CliRunner().invoke(cli, ["validate", "--fields", str(DATA / "pipedrive-deal-fields.json")])
    assert ok.exit_code == 0, ok.output
    assert f"pipedrive: abn <- {ABN_KEY} (ABN)" in ok.stdout  # the repository's own mapping file

"""Leads as CRMs hold them, end to end: readers (CSV, JSON, JSON Lines, Parquet), the presets on the example
exports, the round trip native -> CRM -> mapping (byte for byte), the CLI options on eval / diff / record,
validate and init --crm, the service's "mapping" field and the SDK."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import engine
from cli import cli
from engine.crm import DECISION_COLUMNS, RecordError, flatten_decision, load_mapping, read_records
from engine.crm.records import InputError
from engine.crm.synth import FILES, crm_records, csv_text, native_leads, strip_private

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "scenarios" / "crm"
NOW = "2026-11-23T09:00:00+10:00"
NOW_DT = engine.policyset.parse_instant(NOW)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------ readers


def test_csv_bom_quotes_and_newlines(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes('\ufeffId,Name,Note\r\n1,"Smith, Jo","said ""hi""\nthen left"\r\n\r\n2,Ann,\r\n'.encode())
    assert list(read_records(path)) == [(2, {"Id": "1", "Name": "Smith, Jo", "Note": 'said "hi"\nthen left'}),
                                        (5, {"Id": "2", "Name": "Ann", "Note": ""})]


def test_csv_broken_rows_are_error_records_and_reading_goes_on(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b'Id,Name\n1,"open\n2,Ann\n3,Bob,extra\n4,"ok"x\n5,Zo\xe9\n6,Eve\n')
    got = list(read_records(path))
    assert [(row, type(r).__name__ if isinstance(r, RecordError) else r["Id"]) for row, r in got] == [
        (2, "RecordError"), (3, "2"), (4, "RecordError"), (5, "RecordError"), (6, "RecordError"), (7, "6")]
    codes = [r.code for _, r in got if isinstance(r, RecordError)]
    assert codes == ["CSV001", "CSV002", "CSV001", "CSV003"]
    assert "byte 0xe9" in got[4][1].message and "--encoding" in got[4][1].message


def test_csv_encoding_option(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("Id,Name\n1,Zoé\n".encode("cp1252"))
    assert list(read_records(path, encoding="cp1252")) == [(2, {"Id": "1", "Name": "Zoé"})]
    with pytest.raises(InputError, match="unknown encoding 'nope'"):
        list(read_records(path, encoding="nope"))


def test_csv_header_problems(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("Id,Id\n1,2\n")
    with pytest.raises(InputError, match="the column 'Id' appears twice"):
        list(read_records(path))
    path.write_text("")
    with pytest.raises(InputError, match="no header row"):
        list(read_records(path))


def test_json_pages_jsonl_and_parquet(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps({"results": [{"id": "1"}, 7], "paging": {}}))
    got = list(read_records(tmp_path / "h.json"))
    assert got[0] == (1, {"id": "1"}) and isinstance(got[1][1], RecordError)
    (tmp_path / "s.json").write_text(json.dumps({"totalSize": 1, "done": True, "records": [{"Id": "00Q"}]}))
    assert list(read_records(tmp_path / "s.json")) == [(1, {"Id": "00Q"})]
    (tmp_path / "l.jsonl").write_text('{"id": "1"}\n\n{"id": "2", "id": "3"}\n[1]\n')
    got = list(read_records(tmp_path / "l.jsonl"))
    assert [row for row, _ in got] == [1, 3, 4] and got[1][1].code == "LEAD000" and "more than once" in got[1][1].message
    pq.write_table(pa.table({"id": ["a", "b"], "employees": [10, None]}), tmp_path / "p.parquet")
    assert list(read_records(tmp_path / "p.parquet")) == [(1, {"id": "a", "employees": 10}),
                                                          (2, {"id": "b", "employees": None})]
    with pytest.raises(InputError, match="--input-format"):
        list(read_records(tmp_path / "x.txt"))


def test_flatten_decision_matches_the_columns(example_ps):
    lead = json.loads((REPO / "scenarios" / "leads" / "icp-enterprise-brisbane.json").read_text())
    decision = example_ps.evaluate(lead, NOW_DT).to_dict()
    flat = flatten_decision(decision)
    assert list(flat) == [name for name, _ in DECISION_COLUMNS]
    assert flat["lead_id"] == decision["lead_id"] and flat["score"] == decision["score"]["total"]
    assert flat["stage"] == decision["stage"]["to"] and flat["team"] == decision["route"]["team"]
    pa.Table.from_pylist([flat], schema=pa.schema(DECISION_COLUMNS))  # the declared types hold


# ------------------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
@pytest.mark.parametrize("shape", ["export", "api"])
def test_round_trip_native_crm_native_same_decisions_byte_for_byte(example_ps, crm, shape):
    mapping = load_mapping(crm, example_ps)
    leads = native_leads(400, 7, crm)
    records, activities = crm_records(crm, mapping, leads, shape, 7)
    if shape == "export":  # through the CSV text, as the example files are written
        records = [dict(r) for r in csv.DictReader(io.StringIO(csv_text(records)))]
    joined: dict[str, list] = {}
    for act in activities:
        joined.setdefault(mapping.join_key(act), []).append(act)
    for lead, record in zip(leads, records):
        assert mapping.unused_fields(record) == []
        native = json.dumps(example_ps.evaluate(strip_private(lead), NOW_DT).to_dict())
        mapped = json.dumps(example_ps.evaluate(mapping.to_lead(record, joined.get(lead["id"])), NOW_DT).to_dict())
        assert mapped == native



def test_example_data_is_the_generators_output(example_ps, tmp_path):
    from engine.crm.synth import write_examples

    for path in write_examples(tmp_path, example_ps, n=2000, seed=12):
        assert path.read_bytes() == (DATA / path.name).read_bytes(), f"regenerate {path.name}: python -m engine.crm.synth"


# ------------------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_eval_presets_on_the_example_exports(crm):
    leads_file, acts_file = (str(DATA / f) for f in FILES[crm])
    result = run("eval", leads_file, "--mapping", crm, "--activities", acts_file, "--now", NOW, "-j", "1")
    assert result.exit_code == 0, result.output
    decisions = lines(result.stdout)
    assert len(decisions) == 2000 and all("decision" not in d and "lead_id" in d for d in decisions)
    assert "2000 records in = 2000 decisions + 0 error records" in result.stderr
    assert "unused source fields" not in result.stderr
    assert len({d["route"]["rule"] for d in decisions}) >= 8 and len({d["stage"]["to"] for d in decisions}) >= 5
    assert sum(1 for d in decisions if d["score"]["groups"]["engagement"] > 0) > 300  # activities were joined


def test_eval_outputs_csv_parquet_and_crm_csv(tmp_path):
    leads_file = tmp_path / "contacts.csv"  # the first 600 contacts of the example export
    leads_file.write_text("".join((DATA / "hubspot-contacts.csv").read_text().splitlines(keepends=True)[:601]))
    base = ["eval", str(leads_file), "--mapping", "hubspot", "--now", NOW, "-j", "2"]
    assert run(*base, "--out", str(tmp_path / "d.csv")).exit_code == 0
    assert run(*base, "--out", str(tmp_path / "d.parquet")).exit_code == 0
    assert run(*base, "--out", str(tmp_path / "i.csv"), "--output-format", "crm-csv").exit_code == 0
    assert run(*base, "--out", str(tmp_path / "d.jsonl")).exit_code == 0
    rows = list(csv.DictReader((tmp_path / "d.csv").open(newline="")))
    table = pq.read_table(tmp_path / "d.parquet")
    native = lines((tmp_path / "d.jsonl").read_text())
    assert len(rows) == table.num_rows == len(native) == 600
    assert table.schema == pa.schema(DECISION_COLUMNS)
    assert [r["lead_id"] for r in rows] == table.column("lead_id").to_pylist() == [d["lead_id"] for d in native]
    assert table.column("stage").to_pylist() == [d["stage"]["to"] for d in native]
    crm_rows = list(csv.DictReader((tmp_path / "i.csv").open(newline="")))
    assert list(crm_rows[0])[:3] == ["Record ID", "lifecyclestage", "hubspot_owner_id"]
    back = {"mql": "marketingqualifiedlead", "sql": "salesqualifiedlead", "lead": "lead", "subscriber": "subscriber",
            "opportunity": "opportunity", "customer": "customer"}
    assert all(r["lifecyclestage"] == back[d["stage"]["to"]] for r, d in zip(crm_rows, native))
    owned = [(r, d) for r, d in zip(crm_rows, native) if d["route"]["owner"]]
    assert owned and all(r["hubspot_owner_id"].startswith("7100000") or r["hubspot_owner_id"].startswith("710000")
                         for r, _ in owned)


def test_eval_bad_rows_unknown_values_and_unused_fields(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('Record ID,Lifecycle Stage,Number of Employees,Fax\n'
                    '1,Lead,1-5,555\n2,Marketing Qualifed Lead,5-25,\n3,"broken,1-5\n4,Lead,lots,\n5,Lead,1-5,556\n')
    result = run("eval", str(path), "--mapping", "hubspot", "--now", NOW, "-j", "1")
    assert result.exit_code == 2
    out = lines(result.stdout)
    assert [o.get("line") for o in out] == [None, 3, 4, 5, None]
    assert out[1]["error"]["code"] == "MAP001" and out[1]["lead_id"] == "2"
    assert "row 3, column 'Lifecycle Stage': unknown value 'Marketing Qualifed Lead'" in out[1]["error"]["message"]
    assert "did you mean 'Marketing Qualified Lead'" in out[1]["error"]["message"]
    assert out[2]["error"]["code"] == "CSV001" and out[3]["error"]["code"] == "MAP002"
    assert "5 records in = 2 decisions + 3 error records" in result.stderr
    assert result.stderr.count("unused source fields") == 1 and "'Fax' (2 rows)" in result.stderr
    strict = run("eval", str(path), "--mapping", "hubspot", "--now", NOW, "--strict", "-j", "1")
    assert [o["error"]["code"] for o in lines(strict.stdout)][::4] == ["MAP005", "MAP005"]
    errors_file = tmp_path / "d.csv.errors.jsonl"
    assert run("eval", str(path), "--mapping", "hubspot", "--now", NOW, "--out", str(tmp_path / "d.csv")).exit_code == 2
    assert len(lines(errors_file.read_text())) == 3 and len((tmp_path / "d.csv").read_text().splitlines()) == 3


def test_eval_native_csv_without_mapping_and_bad_options(tmp_path):
    path = tmp_path / "native.csv"
    path.write_text("id,country,employees,company.industry\nA,AU,1200,software\nB,NZ,x,software\n")
    result = run("eval", str(path), "--now", NOW)
    assert result.exit_code == 2
    out = lines(result.stdout)
    assert out[0]["route"]["rule"] == "anz-enterprise" and out[1]["error"]["field"] == "employees"
    assert run("eval", str(path), "--mapping", "hubspt", "--now", NOW).exit_code == 1
    bad = run("eval", str(path), "--output-format", "parquet", "--now", NOW)
    assert bad.exit_code == 1 and "needs --out FILE" in bad.stderr
    bad = run("eval", str(path), "--activities", str(path), "--now", NOW)
    assert bad.exit_code == 1 and "has no activities section" in bad.stderr


def test_diff_and_record_take_the_same_options(tmp_path):
    leads_file, acts_file = (str(DATA / f) for f in FILES["salesforce"])
    result = run("diff", "--base", "HEAD", "--leads", leads_file, "--mapping", "salesforce", "--activities", acts_file,
                 "--now", NOW, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["impact"]["leads"] == 2000 and report["impact"]["errors"] == 0
    rec = run("record", leads_file, "--mapping", "salesforce", "--activities", acts_file, "--row", "3", "--now", NOW)
    assert rec.exit_code == 0, rec.output
    assert '"id": "00Q5g0000000001AAA"' in rec.stdout and "lead_file" not in rec.stdout
    many = run("record", leads_file, "--mapping", "salesforce", "--now", NOW)
    assert many.exit_code == 1 and "--row N" in many.stderr


def test_validate_checks_mapping_files_and_init_crm(tmp_path, monkeypatch):
    target = tmp_path / "repo"
    assert run("init", str(target), "--crm", "hubspot", "--no-git").exit_code == 0
    mapping = target / "policies" / "mappings" / "hubspot.yaml"
    assert mapping.is_file()
    monkeypatch.chdir(target)
    ok = run("validate")
    assert ok.exit_code == 0, ok.output
    text = mapping.read_text().replace("  employees:\n", "  employes:\n")
    mapping.write_text(text)
    bad = run("validate")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  employes:"))
    assert bad.exit_code == 1
    assert f"policies/mappings/hubspot.yaml:{line}:3: error[MAPPING002]: unknown lead field 'employes'" in bad.stderr
    assert "did you mean 'employees'" in bad.stderr


# ------------------------------------------------------------------------------------------ service and SDK


def test_service_mapping_field_and_client(tmp_path, example_ps):
    from engine.bundle import build_bundle
    from engine.client import PolicyClient
    from engine.server import BackgroundServer, create_app
    from engine.signing import generate_keypair, sign_bundle

    keys = generate_keypair(tmp_path / "keys", "crm")
    files = dict(example_ps.source_files)
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(sign_bundle(build_bundle(files, "rev-crm", policy_version="t"), keys.private_path, "crm", 1,
                                   "30d"))
    contact = {"id": "501", "properties": {"numemployees": "1000+", "country": "Australia", "state": "Queensland",
                                           "lifecyclestage": "lead", "email": "a@coral.com.au"}}
    mapping = load_mapping("hubspot", example_ps)
    expected = engine.load_policy_files(files, revision="rev-crm").evaluate(mapping.to_lead(contact), NOW_DT).to_dict()
    with BackgroundServer(create_app(bundle, keys.public_path)) as srv, httpx.Client(base_url=srv.url) as http:
        one = http.post("/v1/decisions", json={"lead": contact, "mapping": "hubspot", "now": NOW})
        assert one.status_code == 200 and one.json()["decision"] == expected
        bad = dict(contact, properties={"lifecyclestage": "Marketing Qualifed Lead"})
        many = http.post("/v1/decisions", json={"leads": [contact, bad], "mapping": "hubspot", "now": NOW}).json()
        assert many["summary"] == {"leads": 2, "decisions": 1, "errors": 1}
        assert many["results"][1]["error"]["code"] == "MAP001" and "row 2" in many["results"][1]["error"]["message"]
        unknown = http.post("/v1/decisions", json={"lead": contact, "mapping": "hubspt"})
        assert unknown.status_code == 400 and "did you mean 'hubspot'" in unknown.json()["error"]["message"]
        with PolicyClient(srv.url, keys.public_path, tmp_path / "cache") as client:
            client.refresh()
            assert client.evaluate(contact, NOW_DT, mapping="hubspot").to_dict() == expected


def test_scenarios_hold_raw_crm_records(tmp_path, example_ps):
    from engine import scenarios as sc

    found, diags = sc.load_all([str(REPO / "scenarios" / "crm.yaml")])
    assert not diags and len(found) == 2 and all(s.record is not None for s in found)
    results = sc.run(example_ps, found)
    assert [r.status for r in results] == ["passed", "passed"]
    assert found[0].lead["employees"] == 1000 and found[0].lead["activities"][0]["type"] == "demo_request"
    bad = tmp_path / "bad.yaml"
    bad.write_text("now: 2026-11-23T09:00:00+10:00\nname: typo\nmapping: hubspot\n"
                   "record: {id: '1', properties: {lifecyclestage: marketingqualifiedleed}}\nexpect: {stage.to: mql}\n")
    (scenario,), _ = sc.load_all([str(bad)])
    (diag,) = sc.check_scenario(example_ps, scenario)
    assert diag.code == "SCN005" and "unknown value 'marketingqualifiedleed'" in diag.message
    assert "did you mean 'marketingqualifiedlead'" in diag.message
    assert sc.run(example_ps, [scenario])[0].status == "error"
    missing = tmp_path / "missing.yaml"
    missing.write_text("now: 2026-11-23T09:00:00+10:00\nname: x\nrecord: {id: '1'}\nexpect: {stage.to: mql}\n")
    assert [d.code for d in sc.load_all([str(missing)])[1]] == ["SCN001"]


def test_csv_field_limit_is_an_error_record_not_a_crash(tmp_path):
    from engine.crm.records import MAX_CSV_FIELD

    path = tmp_path / "big.csv"
    path.write_text("Id,Note\n1," + "x" * (MAX_CSV_FIELD + 10) + '\n2,"' + "y\n" * 10 + '"\n3,ok\n')
    got = list(read_records(path))
    assert isinstance(got[0][1], RecordError) and "field larger than field limit" in got[0][1].message
    assert got[1] == (3, {"Id": "2", "Note": "y\n" * 10}) and got[2] == (14, {"Id": "3", "Note": "ok"})


def test_init_crm_fits_the_preset_to_the_starter_set(tmp_path, monkeypatch):
    for crm in ("hubspot", "salesforce"):
        target = tmp_path / crm
        assert run("init", str(target), "--crm", crm, "--no-git").exit_code == 0
        text = (target / "policies" / "mappings" / f"{crm}.yaml").read_text()
        import yaml

        assert "fitted to this policy set" in text and "account_owner" not in yaml.safe_load(text)["lead"]
        monkeypatch.chdir(target)
        result = run("eval", str(DATA / FILES[crm][0]), "--mapping", crm, "--activities", str(DATA / FILES[crm][1]),
                     "--now", NOW, "-j", "1")
        assert result.exit_code == 0 and "2000 records in = 2000 decisions + 0 error records" in result.stderr


def test_native_parquet_keeps_nested_fields_like_json_lines(tmp_path):
    """A Parquet file of native leads (activities as list<struct>, company as struct, nulls where a lead lacks a
    field) decides byte for byte as the same leads in JSON Lines: nothing nested is dropped."""
    leads = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((REPO / "scenarios" / "leads").glob("*.json"))]
    assert any(lead.get("activities") for lead in leads)
    (tmp_path / "leads.jsonl").write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    table = pa.Table.from_batches([pa.RecordBatch.from_struct_array(pa.array(leads))])  # columns: every lead's keys
    pq.write_table(table, tmp_path / "leads.parquet")
    now = "2026-11-23T09:00:00+10:00"
    from_json = run("eval", str(tmp_path / "leads.jsonl"), "--now", now)
    from_parquet = run("eval", str(tmp_path / "leads.parquet"), "--now", now)
    assert from_json.exit_code == 0 and from_parquet.exit_code == 0, from_parquet.stderr
    assert from_parquet.stdout == from_json.stdout
    assert "unused" not in from_parquet.stderr


def test_plain_reads_typed_values_in_utc():
    import datetime as dt
    from decimal import Decimal

    from engine.crm.records import plain

    local = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=10)))
    row = {"id": "L-1", "at": local, "naive": dt.datetime(2026, 1, 1, 9, 0), "day": dt.date(2026, 1, 2),
           "n": Decimal("12"), "x": Decimal("1.5"), "gone": None, "acts": [{"type": "call", "url": None}]}
    assert plain(row) == {"id": "L-1", "at": "2026-11-20T08:00:00+00:00", "naive": "2026-01-01T09:00:00+00:00",
                          "day": "2026-01-02", "n": 12, "x": 1.5, "acts": [{"type": "call"}]}
    with pytest.raises(ValueError):
        plain({"blob": b"\x00"})

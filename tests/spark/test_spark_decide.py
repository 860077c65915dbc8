"""Spark decisions (real Spark, local[2]) against `leadops eval`: the same bytes, the same errors, fail-closed
bundles, reconciled counts and reproducible output files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from engine.crm.columns import COLUMN_NAMES
from engine.bundle import MANIFEST, SIGNATURES, BundleError, build_bundle, pack, read_bundle
from engine.signing import sign_bundle
from engine.spark import decide, read_table

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-23T09:00:00+10:00"

sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package
from benchmarks import golden  # noqa: E402

LEADOPS = Path(sys.executable).with_name("leadops")


@pytest.fixture(scope="module")
def golden_leads() -> list[dict]:
    """The golden set for one `now`: the sample leads + 1,000 generated (nested activities, nulls, SLA pauses,
    transition requests, undeclared fields, 3 % invalid)."""
    leads = [lead for now, lead in golden.cases() if now == golden.NOWS[0]]
    text = json.dumps(leads)
    for feature in ('"sla_pauses"', '"transition_request"', "null", '"activities"'):
        assert feature in text
    return leads


@pytest.fixture(scope="module")
def golden_jsonl(tmp_path_factory, golden_leads) -> Path:
    path = tmp_path_factory.mktemp("golden") / "golden.jsonl"
    lines = [json.dumps(lead, ensure_ascii=False) for lead in golden_leads]
    lines.insert(7, '{"id": "broken", "employees": 12,')  # a malformed line
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a trailing blank line is not a lead
    return path


@pytest.fixture(scope="module")
def eval_output(golden_jsonl) -> tuple[Counter, Counter, dict[str, str]]:
    """What `leadops eval` prints for the golden file: decisions (bytes), error (code, field, message), by id."""
    proc = subprocess.run([str(LEADOPS), "eval", str(golden_jsonl), "--policies", str(REPO / "policies"),
                           "--now", golden.NOWS[0], "--jobs", "1"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr  # partial: some leads are invalid
    decisions, errors, by_id = Counter(), Counter(), {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "error" in record:
            errors[(record["error"]["code"], record["error"]["field"], record["error"]["message"])] += 1
        else:
            decisions[line] += 1
            by_id[record["lead_id"]] = line
    return decisions, errors, by_id


def test_json_lines_decisions_are_byte_identical_to_leadops_eval(spark, signed_bundle, spark_keys, golden_jsonl,
                                                                   eval_output, repo_policies):
    decisions, errors, _ = eval_output
    result = decide(read_table(spark, str(golden_jsonl)).df, signed_bundle, spark_keys.public_path, golden.NOWS[0])
    rows = result.result.collect()  # the cached worker output (the written frames are checked through the CLI)
    got = [row for row in rows if row["ok"]]
    assert Counter(row["decision"] for row in got) == decisions
    assert {row["policy_revision"] for row in got} == {repo_policies.revision}
    assert {row["evaluated_at"] for row in got} == {golden.NOWS[0]}
    assert result.bundle.sha256 == read_bundle_digest(signed_bundle)
    bad = [row for row in rows if not row["ok"]]
    assert Counter((r["error_code"], r["error_field"], r["error_message"]) for r in bad) == errors
    assert any(r["input"].startswith('{"id": "broken"') for r in bad)
    n_decided, n_failed = result.counts()
    assert result.rows_in() == n_decided + n_failed == sum(decisions.values()) + sum(errors.values())
    result.close()


def read_bundle_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_leads_with_nested_activities_decide_as_leadops_eval(spark, tmp_path, signed_bundle, spark_keys,
                                                                     golden_leads, eval_output, repo_policies):
    """Typed columns (struct company, array<struct> activities, nulls for absent fields) give the same bytes."""
    _, _, by_id = eval_output
    valid = [lead for lead in golden_leads if lead.get("id") in by_id]
    table = pa.Table.from_struct_array(pa.array(valid))  # every field any lead has
    assert pa.types.is_list(table.schema.field("activities").type)
    pq.write_table(table, tmp_path / "leads.parquet")
    result = decide(read_table(spark, str(tmp_path / "leads.parquet")).df, signed_bundle, spark_keys.public_path,
                    golden.NOWS[0])
    got = {row["lead_id"]: row["decision"] for row in result.result.collect()}
    assert result.counts() == (len(valid), 0)
    assert got == {lead["id"]: by_id[lead["id"]] for lead in valid}
    result.close()


def test_activities_from_an_events_table_are_joined_by_lead_id(spark, tmp_path, signed_bundle, spark_keys,
                                                               golden_leads, eval_output):
    _, _, by_id = eval_output
    sample = [lead for lead in golden_leads if lead.get("id") in by_id and lead.get("activities")][:200]
    events = [{"lead_id": lead["id"], **activity} for lead in sample for activity in lead["activities"]]
    orphans = [{"lead_id": "L-NOT-IN-INPUT", "type": "page_view", "at": "2026-11-20T09:00:00+10:00"},
               {"lead_id": None, "type": "page_view", "at": "2026-11-20T09:00:00+10:00"}]
    events += orphans
    bare = [{k: v for k, v in lead.items() if k != "activities"} for lead in sample]
    (tmp_path / "leads.jsonl").write_text("\n".join(json.dumps(lead) for lead in bare) + "\n", encoding="utf-8")
    pq.write_table(pa.Table.from_struct_array(pa.array(events)), tmp_path / "events.parquet")
    result = decide(read_table(spark, str(tmp_path / "leads.jsonl")).df, signed_bundle, spark_keys.public_path,
                    golden.NOWS[0], activities=read_table(spark, str(tmp_path / "events.parquet"), text=False).df)
    got = {row["lead_id"]: row["decision"] for row in result.result.collect()}
    assert got == {lead["id"]: by_id[lead["id"]] for lead in sample}
    assert result.unjoined_activities() == len(orphans)  # reported, never dropped silently
    result.close()


# --------------------------------------------------------------------------------------------- fail closed


def tampered(bundle: Path, tmp_path: Path) -> Path:
    """The signed bundle with one policy file changed after signing (signature and manifest kept)."""
    parsed = read_bundle(bundle.read_bytes())
    entries = dict(parsed.files)
    name = next(n for n in entries if n.endswith("scoring.yaml"))
    entries[name] = entries[name].replace(b"points: ", b"points: 1", 1)
    entries[MANIFEST] = parsed.manifest_bytes
    entries[SIGNATURES] = parsed.signatures_bytes
    path = tmp_path / "tampered.tar.gz"
    path.write_bytes(pack(entries))
    return path


def expired(repo_policies, spark_keys, tmp_path: Path) -> Path:
    data = build_bundle(repo_policies.source_files, repo_policies.revision, policy_version="test")
    path = tmp_path / "expired.tar.gz"
    path.write_bytes(sign_bundle(data, spark_keys.private_path, spark_keys.key_id, expires_in="1h",
                                 now=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    return path


@pytest.mark.parametrize("kind, code", [("tampered", "file-modified"), ("expired", "expired")])
def test_a_tampered_or_expired_bundle_fails_and_writes_nothing(spark, tmp_path, spark_keys, signed_bundle,
                                                                repo_policies, golden_jsonl, kind, code):
    bundle = tampered(signed_bundle, tmp_path) if kind == "tampered" else expired(repo_policies, spark_keys, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(BundleError) as info:
        decide(read_table(spark, str(golden_jsonl)).df, bundle, spark_keys.public_path, AS_OF).write(str(out))
    assert info.value.code == code
    result = CliRunner().invoke(cli_group(), ["spark", "decide", "--input", str(golden_jsonl), "--bundle", str(bundle),
                                              "--key", str(spark_keys.public_path), "--as-of", AS_OF,
                                              "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"error: {code}:" in result.output
    assert not out.exists()


def test_a_worker_refuses_a_bundle_file_that_is_not_the_one_the_driver_verified(spark, signed_bundle, spark_keys):
    """Fail closed on the workers too: a shipped file whose digest differs from the driver's fails the task."""
    from dataclasses import replace
    from functools import partial

    from engine.spark.decide import decide_partition, result_schema
    from engine.spark.inputs import with_lead_id
    from engine.spark.shipping import ship

    shipped = ship(spark, signed_bundle, spark_keys.public_path)
    wrong = replace(shipped.shipment, sha256="0" * 64)
    df = with_lead_id(spark.createDataFrame([('{"id": "L-1"}',)], "value string"), "text")
    with pytest.raises(Exception, match="not the one the driver verified"):
        df.mapInArrow(partial(decide_partition, wrong, AS_OF, "text", None), result_schema()).collect()


# --------------------------------------------------------------------------------------------- output


def cli_group():
    from cli import cli

    return cli


def part_files(directory: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(directory.glob("part-*"), key=lambda p: p.name.split("-")[1])]


def test_cli_writes_decisions_and_errors_reproducibly_and_counts_reconcile(spark, tmp_path, signed_bundle,
                                                                            spark_keys, golden_jsonl, eval_output,
                                                                            repo_policies):
    _, _, by_id = eval_output
    lines = [line for line in golden_jsonl.read_text(encoding="utf-8").splitlines() if line.strip()][:120]
    lines.append('{"id": "L-BAD", "employees": "lots"}')  # an invalid lead beside the malformed line
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ids = [json.loads(line).get("id") if line.endswith("}") else None for line in lines]
    expected = Counter(by_id[i] for i in ids if i in by_id)
    n_dec, n_err = sum(expected.values()), len(lines) - sum(expected.values())
    assert n_err >= 2  # the malformed line and invalid leads
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        result = CliRunner().invoke(cli_group(), [
            "spark", "decide", "--input", str(small), "--bundle", str(signed_bundle), "--key",
            str(spark_keys.public_path), "--as-of", golden.NOWS[0], "--out", str(out), "--master", "local[2]"])
        assert result.exit_code == 2, result.output  # partial: some rows failed
        assert f"{len(lines)} leads in: {n_dec} decisions in {out}, {n_err} errors in {out}/errors" in result.output
        runs.append(out)
    first, second = (part_files(out) + [b"--"] + part_files(out / "errors") for out in runs)
    assert first == second  # the same job twice: the same bytes in every output file
    written = spark.read.parquet(str(runs[0]))
    assert written.columns == [*COLUMN_NAMES, "decision", "bundle_sha256", "as_of"]
    row = written.where("lead_id = 'L-1001'").first()
    assert (row["stage"], row["policy_revision"], row["as_of"]) == (json.loads(row["decision"])["stage"]["to"],
                                                                     repo_policies.revision, golden.NOWS[0])
    assert Counter(r["decision"] for r in written.collect()) == expected
    errors = spark.read.parquet(str(runs[0] / "errors"))
    assert errors.count() == n_err and errors.where("error_code IS NULL OR error_message IS NULL").count() == 0
    again = CliRunner().invoke(cli_group(), [
        "spark", "decide", "--input", str(small), "--bundle", str(signed_bundle), "--key",
        str(spark_keys.public_path), "--as-of", golden.NOWS[0], "--out", str(runs[0])])
    assert again.exit_code == 1 and "already exists" in again.output


def test_as_of_needs_an_offset_and_the_module_entry_point_has_help():
    result = CliRunner().invoke(cli_group(), ["spark", "decide", "--input", "x.jsonl", "--bundle", "x", "--key", "k",
                                              "--as-of", "2026-11-23T09:00:00", "--out", "o"])
    assert result.exit_code == 2 and "--as-of" in result.output and "no UTC offset" in result.output
    proc = subprocess.run([sys.executable, "-m", "engine.spark", "decide", "--help"], capture_output=True, text=True,
                          check=False, cwd=REPO)
    assert proc.returncode == 0 and "Example:" in proc.stdout and "spark decide" in proc.stdout

"""Parquet in -> Parquet out as Arrow batches (engine/crm/arrowbatch.py): the column-wise converter agrees with
`records.plain` row by row, the buffer-built decision columns agree with `pa.Table.from_pylist`, and the CLI's
Arrow path writes the same decisions, error records and counts as JSON Lines, in input order, with and without
workers, never importing pandas."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from cli import cli
from engine.crm.columns import ARROW_SCHEMA, decision_batch, flatten_decision
from engine.crm.records import PARQUET_BATCH, RecordError, batch_leads, plain

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-23T09:00:00+10:00"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_batch_leads_is_plain_column_by_column():
    """Every Arrow type a lead file holds (nulls in each), nested timestamps included, converts as `plain` does,
    key order too; a binary value fails its row only, with plain's message."""
    aware = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=10)))
    act = pa.struct([("type", pa.string()), ("at", pa.timestamp("us", tz="Australia/Brisbane")), ("n", pa.int64())])
    table = pa.table({
        "id": pa.array(["a", "b", None, "d"]),
        "employees": pa.array([10, None, 3, 4], pa.int32()),
        "revenue": pa.array([1.5, 2.0, None, float("nan")]),
        "ok": pa.array([True, False, None, True]),
        "seen": pa.array([aware, None, dt.datetime(2026, 1, 1, 9), aware], pa.timestamp("ms")),
        "day": pa.array([dt.date(2026, 1, 2), None, None, dt.date(2025, 12, 31)]),
        "amount": pa.array([Decimal("12.00"), Decimal("1.25"), None, None], pa.decimal128(10, 2)),
        "company": pa.array([{"name": "X", "size": None}, None, {"name": None, "size": 5}, {"name": "Y", "size": 1}],
                            pa.struct([("name", pa.string()), ("size", pa.int64())])),
        "tags": pa.array([["a", None], [], None, ["b"]], pa.list_(pa.string())),
        "activities": pa.array([[{"type": "call", "at": aware, "n": None}], None, [None, {"type": "x"}], []],
                               pa.list_(act)),
        "pauses": pa.array([[{"kind": "a", "n": None}, None], None, [], [{"kind": None, "n": 2}, {"kind": "b", "n": 3}]],
                           pa.list_(pa.struct([("kind", pa.string()), ("n", pa.int64())]))),
        "blob": pa.array([None, b"\x00", None, None], pa.binary()),
    })
    batch = table.combine_chunks().to_batches()[0]
    for part in (batch, batch.slice(1), batch.slice(2, 1)):  # a slice: list offsets that do not start at 0
        got = batch_leads(part)
        for index, row in enumerate(part.to_pylist()):
            try:
                want = plain(row)
            except ValueError as exc:
                assert isinstance(got[index], RecordError) and got[index].message == str(exc)
                continue
            assert json.dumps(got[index]) == json.dumps(want), index  # values and key order (NaN == NaN here)
    got = batch_leads(batch)
    assert [isinstance(lead, RecordError) for lead in got] == [False, True, False, False]
    assert got[0]["pauses"] == [{"kind": "a"}, None] and got[2]["pauses"] == []
    assert "pauses" not in batch_leads(batch.drop_columns(["blob"]))[1]
    assert got[0]["seen"] == "2026-11-20T08:00:00+00:00" and got[0]["activities"][0]["at"] == "2026-11-20T08:00:00+00:00"


def test_decision_batch_matches_from_pylist():
    """The buffer-built columns: nulls, non-ASCII text, true/false, numbers, more rows than a byte of bits."""
    rows = []
    for i in range(21):
        rows.append({name: None for name in ARROW_SCHEMA.names} | {
            "lead_id": f"L-{i}-é✓" if i % 3 else f"L-{i}", "score": i * 1.5, "score_groups": "{}", "stage": "mql",
            "stage_from": "lead", "stage_changed": i % 2 == 0, "route_rule": "r", "route_fallback": i % 5 == 0,
            "sla_count": i, "warnings": -i if i % 7 == 0 else 0, "policy_revision": "rev", "evaluated_at": NOW,
            "owner": None if i % 4 else "ana@example.com", "grade": "B" if i % 2 else None})
    built = decision_batch(rows)
    built.validate(full=True)
    assert built.schema == ARROW_SCHEMA
    assert pa.Table.from_batches([built]).equals(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA))
    assert built.to_pylist() == rows
    assert decision_batch([]).num_rows == 0


def _leads(n: int) -> list[dict]:
    sys.path.insert(0, str(REPO))  # benchmarks/ is not an installed package
    from benchmarks.leadgen import generate_leads

    return list(generate_leads(n, seed=7, now=NOW))


def test_parquet_to_parquet_over_arrow_batches_is_json_lines(tmp_path):
    """Several batches through 2 workers and in-process: the decisions of the JSON Lines run flattened, in input
    order; bad rows (a lead the schema refuses, a binary value) become error records with their row number and
    lead id in OUT.errors.jsonl; counts in = counts out; exit 2 for a partial batch."""
    leads = _leads(PARQUET_BATCH * 2 + 300)
    leads[5]["employees"] = -3  # the lead schema refuses it
    leads[PARQUET_BATCH + 7]["email"] = None  # null: absent, as in JSON Lines without the key
    (tmp_path / "leads.jsonl").write_text("".join(json.dumps({k: v for k, v in lead.items() if v is not None}) + "\n"
                                                  for lead in leads))
    table = pa.Table.from_struct_array(pa.array(leads))
    blob = pa.array([b"\x00" if i == PARQUET_BATCH * 2 + 1 else None for i in range(len(leads))], pa.binary())
    pq.write_table(table.append_column("blob", blob), tmp_path / "leads.parquet")
    common = ["--now", NOW]
    by_json = run("eval", str(tmp_path / "leads.jsonl"), *common, "-j", "1")
    expected = [json.loads(line) for line in by_json.stdout.splitlines()]
    for jobs in ("2", "1"):
        out = tmp_path / f"d{jobs}.parquet"
        result = run("eval", str(tmp_path / "leads.parquet"), *common, "-j", jobs, "--out", str(out))
        assert result.exit_code == 2, result.stderr
        assert f"{len(leads)} records in = {len(leads) - 2} decisions + 2 error records" in result.stderr
        errors = [json.loads(line) for line in Path(f"{out}.errors.jsonl").read_text().splitlines()]
        assert [(e["line"], e.get("lead_id"), e["error"]["field"]) for e in errors] == [
            (6, leads[5]["id"], "employees"), (PARQUET_BATCH * 2 + 2, None, "")]
        assert "binary column values" in errors[1]["error"]["message"]
        assert errors[0] == expected[5]  # the same error record as JSON Lines
        decided = [flatten_decision(d) for i, d in enumerate(expected) if i not in (5, PARQUET_BATCH * 2 + 1)]
        written = pq.read_table(out)
        assert written.schema == ARROW_SCHEMA
        assert written.to_pylist() == decided


def test_arrow_path_never_imports_pandas(tmp_path):
    """pyarrow imports pandas on the first `pa.array`/`from_pylist` (over a second without bytecode): the Parquet
    path builds its columns without them, in the parent and in the workers."""
    leads = _leads(PARQUET_BATCH + 10)
    pq.write_table(pa.Table.from_struct_array(pa.array(leads)), tmp_path / "leads.parquet")
    sys.modules.pop("pandas", None)
    script = ("import sys\nfrom cli import cli\nfrom engine.crm import arrowbatch\n"
              "decide = arrowbatch.decide_batch\n"
              "def checked(evaluator, chunk):\n"
              "    out = decide(evaluator, chunk)\n"
              "    assert 'pandas' not in sys.modules, 'a worker imported pandas'\n"
              "    return out\n"
              "arrowbatch.decide_batch = checked\n"
              "try:\n"
              f"    cli.main(['eval', {str(tmp_path / 'leads.parquet')!r}, '--now', {NOW!r}, '-j', '2', "
              f"'--out', {str(tmp_path / 'd.parquet')!r}])\n"
              "except SystemExit as exc:\n"
              "    assert exc.code in (0, None), exc.code\n"
              "assert 'pandas' not in sys.modules, 'the parent imported pandas'\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pq.read_metadata(tmp_path / "d.parquet").num_rows == len(leads)

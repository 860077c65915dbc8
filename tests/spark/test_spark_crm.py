"""CRM tables on Spark through the HubSpot and Salesforce presets: the same decisions as `leadops eval --mapping`,
activities joined from a separate events table by the mapping's lead id, unknown values in the error output."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.crm import read_records
from engine.spark import decide, read_table

REPO = Path(__file__).resolve().parents[2]
LEADOPS = Path(sys.executable).with_name("leadops")
AS_OF = "2026-11-23T09:00:00+10:00"
PRESETS = {"hubspot": ("hubspot-contacts.csv", "hubspot-engagements.csv", "Seniority"),
           "salesforce": ("salesforce-leads.csv", "salesforce-tasks.csv", "LeadSource")}
LEADS = 250


def records(path: Path) -> list[dict]:
    return [rec for _, rec in read_records(str(path))]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_tables_decide_as_leadops_eval_mapping(spark, tmp_path, signed_bundle, spark_keys, preset):
    leads_csv, events_csv, column = PRESETS[preset]
    rows = records(REPO / "scenarios" / "crm" / leads_csv)[:LEADS]
    rows[4][column] = "Grand Wizard"  # an unknown value: an error row in both, with the same code and field
    subset = tmp_path / leads_csv
    with subset.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    events = REPO / "scenarios" / "crm" / events_csv
    proc = subprocess.run([str(LEADOPS), "eval", str(subset), "--mapping", preset, "--activities", str(events),
                           "--policies", str(REPO / "policies"), "--now", AS_OF, "--jobs", "1"],
                          capture_output=True, text=True, check=False)
    expected_decisions, expected_errors = Counter(), Counter()
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "error" in record:
            expected_errors[(record["error"]["code"], record["error"]["field"])] += 1
        else:
            expected_decisions[line] += 1
    assert expected_errors and len(expected_decisions) > LEADS // 2, proc.stderr

    if preset == "hubspot":  # the CSV export itself
        leads_in, events_in = subset, events
    else:  # the tables a warehouse sync holds
        leads_in, events_in = tmp_path / "leads.parquet", tmp_path / "events.parquet"
        pq.write_table(pa.Table.from_pylist(rows), leads_in)
        pq.write_table(pa.Table.from_pylist(records(events)), events_in)
    result = decide(read_table(spark, str(leads_in)).df, signed_bundle, spark_keys.public_path, AS_OF,
                    mapping=preset, activities=read_table(spark, str(events_in), text=False).df)
    got = result.result.collect()
    assert Counter(r["decision"] for r in got if r["ok"]) == expected_decisions
    assert Counter((r["error_code"], r["error_field"]) for r in got if not r["ok"]) == expected_errors
    assert any(r["lead_id"] and "Grand Wizard" in r["error_message"] for r in got if not r["ok"])
    result.close()

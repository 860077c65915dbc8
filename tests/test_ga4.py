"""GA4 events as lead activities (engine.crm.ga4, the ga4 preset, `leadops ga4`): the BigQuery export shape in
Parquet and JSON Lines, joins by lead id, hashed e-mail and join table, unmatched events counted, the first
session's traffic source, and a page_view of /pricing adding the pricing rule's points."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

import engine
from cli import cli
from engine.crm import load_mapping
from engine.crm.coerce import to_datetime
from engine.crm.ga4 import email_hash, join_web_events

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "scenarios" / "crm"
NOW = engine.policyset.parse_instant("2026-11-23T09:00:00+10:00")


@pytest.fixture(scope="module")
def ga4(example_ps):
    return load_mapping("ga4", example_ps)


def param(key: str, value: object) -> dict:
    slots = {"string_value": None, "int_value": None, "float_value": None, "double_value": None}
    slots["int_value" if isinstance(value, int) else "string_value"] = value
    return {"key": key, "value": slots}


def event(name: str, micros: int, *, user_id: str | None = None, pseudo: str = "111.222", params=(),
          medium: str = "organic", source: str = "google") -> dict:
    return {"event_date": "20261120", "event_timestamp": micros, "event_name": name,
            "event_params": [param("ga_session_id", 1795000000), *params], "user_id": user_id,
            "user_pseudo_id": pseudo, "traffic_source": {"name": "(organic)", "medium": medium, "source": source}}


def write_parquet(path: Path, events: list[dict]) -> str:
    pq.write_table(pa.Table.from_pylist(events), path)  # nested: event_params a list of structs, as BigQuery's
    return str(path)


def pricing_points() -> int:
    doc = yaml.safe_load((REPO / "policies" / "scoring.yaml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"] if r["id"] == "pricing-page"]
    return rules[0]["points"]


LEAD = {"id": "L-1", "email": "Ann.Lee@Coralsoft.com.au", "country": "AU", "state": "QLD", "employees": 12,
        "stage": "mql", "stage_entered_at": "2026-11-19T00:00:00+00:00"}
MICROS = 1_795_000_000_000_000 + 123_456  # 2026-11-18T11:06:40.123456Z


def test_a_page_view_of_pricing_adds_the_pricing_rules_points(example_ps, ga4, tmp_path):
    before = example_ps.evaluate(LEAD, NOW).to_dict()
    lead = json.loads(json.dumps(LEAD))
    events = [event("page_view", MICROS, user_id=email_hash("ann.lee@coralsoft.com.au"),
                    params=[param("page_location", "https://www.acme.example/pricing?plan=team")]),
              event("scroll", MICROS + 5_000_000, user_id=email_hash("ann.lee@coralsoft.com.au"))]
    stats = join_web_events([lead], [write_parquet(tmp_path / "events_20261118.parquet", events)], ga4)
    assert lead["activities"] == [{"type": "page_view", "at": "2026-11-18T11:06:40.123456+00:00", "url": "/pricing"}]
    assert (stats.events, stats.activities, stats.not_activities, stats.unmatched_events) == (2, 1, 1, 0)
    after = example_ps.evaluate(lead, NOW).to_dict()
    assert after["score"]["total"] - before["score"]["total"] == pricing_points()
    assert "pricing-page" in {f["rule"] for f in after["score"]["fired"]}


def test_joins_by_id_hash_and_table_and_counts_the_rest(ga4, tmp_path):
    leads = [{"id": "L-1", "email": "a@x.io"}, {"id": "L-2", "email": "b@y.io"}, {"id": "L-3", "email": "c@z.io"}]
    page = [param("page_location", "https://www.acme.example/product/sla")]
    events = [event("page_view", MICROS, user_id="L-1", params=page),
              event("page_view", MICROS + 1, user_id=email_hash("B@Y.io "), params=page),
              event("generate_lead", MICROS + 2, pseudo="p-3", params=page),
              event("page_view", MICROS + 3, pseudo="stranger", params=page),
              event("page_view", MICROS + 4, user_id="L-999", params=page),
              event("session_start", MICROS + 5, user_id="L-1")]
    path = tmp_path / "events_20261118.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "{broken\n")
    stats = join_web_events(leads, [str(path)], ga4, {"p-3": "L-3"})
    assert [a["type"] for lead in leads for a in lead.get("activities", [])] == ["page_view", "page_view", "form_fill"]
    assert dict(stats.unmatched) == {"stranger": 1, "L-999": 1} and len(stats.unreadable) == 1
    assert stats.events == 7 == stats.activities + stats.not_activities + stats.unmatched_events + len(stats.unreadable)
    assert "2 events of 2 users match no lead" in "\n".join(stats.summary())
    again = join_web_events(leads, [str(path)], ga4, {"p-3": "L-3"})  # the same events joined again
    assert (again.activities, again.already, again.leads_touched) == (0, 3, 0)
    assert [a["type"] for lead in leads for a in lead.get("activities", [])] == ["page_view", "page_view", "form_fill"]


def test_lead_source_from_the_first_sessions_traffic_source(ga4, tmp_path):
    leads = [{"id": "L-1"}, {"id": "L-2", "source": "event"}]
    events = [event("page_view", MICROS + 10, user_id="L-1", medium="organic"),
              event("page_view", MICROS, user_id="L-1", medium="cpc"),
              event("page_view", MICROS, user_id="L-2", medium="cpc")]
    stats = join_web_events(leads, [write_parquet(tmp_path / "e.parquet", events)], ga4)
    assert leads[0]["source"] == "paid_search" and leads[1]["source"] == "event"  # the CRM's own source wins
    assert stats.sources_set == 1


def test_microsecond_timestamps():
    assert to_datetime("1795000000123456", "UTC") == "2026-11-18T11:06:40.123456+00:00"
    assert to_datetime(1795000000123, "UTC") == "2026-11-18T11:06:40.123000+00:00"  # milliseconds still


def test_cli_example_events_change_scores(example_ps, tmp_path):
    out = tmp_path / "leads.jsonl"
    r = CliRunner().invoke(cli, ["ga4", str(DATA / "pipedrive-leads.json"), "--mapping", "pipedrive", "--activities",
                                 str(DATA / "pipedrive-activities.json"), "--events",
                                 str(DATA / "ga4-events_20261120.jsonl"), "--join-table", str(DATA / "ga4-join.csv"),
                                 "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stderr)
    assert stats["leads"] == 500 and stats["activities"] > 0 and stats["unmatched_events"] > 0
    assert stats["events"] == stats["activities"] + stats["already_there"] + stats["not_activities"] + \
        stats["unmatched_events"]
    events = sum(1 for _ in (DATA / "ga4-events_20261120.jsonl").open())
    assert stats["events"] == events
    pricing = 0
    for line in out.read_text().splitlines():
        lead = json.loads(line)
        web = [a for a in lead.get("activities", []) if a["type"] == "page_view"]
        fired = {f["rule"] for f in example_ps.evaluate(lead, NOW).to_dict()["score"]["fired"]}
        if any(a.get("url", "").startswith("/pricing") for a in web):
            pricing += 1
            assert "pricing-page" in fired
    assert pricing > 50

"""The shared scorecard: SLA attainment, speed to lead and funnel conversion from leads' recorded history.

    from engine.report import report
    card = report(["leads.jsonl"], now, policies="policies", since=date(2026, 10, 1), within=timedelta(hours=4))
    card.aggregates            # attainment, speed, funnel, reasons, early disqualifications, at-risk queue
    card.facts                 # the fact table (pyarrow.Table, one row per lead x SLA x stage entry)
    card.text(); card.to_dict(); card.write_html("report.html"); card.write_facts("facts.parquet")

`leadops report` is a thin skin over `report`. Modules: history (a lead's stage entries and owners), facts
(one lead stage entry judged into fact rows), revisions (the policy revision in force at a time), scan (leads
to fact batches on every core), aggregates (the numbers), tables (text and JSON), html (the offline page with
charts), export (CSV and Parquet).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import LeadError, LeadopsError
from engine.policyset import require_aware
from engine.report.aggregates import aggregate
from engine.report.facts import FACT_COLUMNS, FACT_NAMES, STATUSES
from engine.report.revisions import PolicyTimeline
from engine.report.scan import Funnel, Record, arrow_schema, scan

DEFAULT_WITHIN = timedelta(hours=4)


@dataclass
class Scorecard:
    """The report: counts in and out, the revisions that judged, the fact table and the aggregates."""

    now: datetime
    since: date | None
    within: timedelta
    leads: int
    errors: list[dict[str, Any]]
    revisions: list[dict[str, Any]]
    facts: Any  # pyarrow.Table
    aggregates: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from engine.report.tables import jsonable

        return jsonable({
            "now": self.now.isoformat(), "since": self.since.isoformat() if self.since else None,
            "at_risk_within_minutes": self.within.total_seconds() / 60,
            "leads": self.leads, "errors": len(self.errors), "fact_rows": self.facts.num_rows,
            "revisions": self.revisions, "notes": self.notes, **self.aggregates, "error_records": self.errors,
        })

    def text(self) -> str:
        from engine.report.tables import scorecard_text

        return scorecard_text(self)

    def write_html(self, path: str | Path) -> None:
        from engine.report.html import scorecard_html

        Path(path).write_text(scorecard_html(self), encoding="utf-8")

    def write_facts(self, path: str | Path) -> None:
        from engine.report.export import write_facts

        write_facts(self.facts, path)


def read_jsonl(paths: Sequence[str]) -> Iterator[Record]:
    """(input name, line number, line text) of every non-blank line of JSON Lines files ('-' = stdin)."""
    for name in paths:
        stream = sys.stdin if name == "-" else open(name, encoding="utf-8", errors="surrogateescape")
        try:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    yield name, number, line
        finally:
            if stream is not sys.stdin:
                stream.close()


def crm_records(paths: Sequence[str], mapping: Any, activities: str | None) -> Iterator[Record]:
    """Leads from CRM exports through an engine.crm mapping: (input name, row, native lead or the error).

    The activity file (any format read_records reads) is joined by `mapping.join_key` and held in memory by
    lead id; a lead's activities go through the mapping with it. Raises engine.crm.InputError for a file that
    cannot be read at all."""
    from engine.crm import read_records

    joined: dict[str, list[tuple[int, Any]]] = {}
    if activities:
        for row, item in read_records(activities):
            key = None if isinstance(item, Exception) else mapping.join_key(item)
            if key is not None:
                joined.setdefault(key, []).append((row, item))
    for name in paths:
        for row, record in read_records(name):
            if isinstance(record, Exception):
                yield name, row, record
                continue
            try:
                lead = mapping.to_lead(record, row=row)
                acts = joined.get(str(lead.get("id")))
                yield name, row, mapping.to_lead(record, acts, row=row) if acts else lead
            except LeadError as exc:
                yield name, row, exc


def report(leads: Sequence[str] | Iterable[Record], now: datetime, *, policies: str | None = None,
           rev: str | None = None, since: date | None = None, within: timedelta = DEFAULT_WITHIN,
           jobs: int | None = None, mapping: str | None = None, activities: str | None = None,
           timeline: PolicyTimeline | None = None) -> Scorecard:
    """The scorecard of `leads` at `now`: JSON Lines paths of native leads, CRM exports with `mapping` (a preset
    name or mapping file, engine.crm; `activities`: the activity export joined to them), or an iterable of
    (name, line, lead dict or text) records.

    Each stage entry is judged by the policy revision in force at its clock start (`policies` DIR's git history;
    REV:DIR or `rev` forces one). Raises PolicyError when no policy revision loads or the mapping is invalid; a
    lead that cannot be read becomes an error record (`errors`), the others are still counted.
    """
    import pyarrow as pa

    now = require_aware(now)
    timeline = timeline or PolicyTimeline.open(policies, rev)
    paths = isinstance(leads, (list, tuple)) and all(isinstance(x, str) for x in leads)
    if mapping is not None:
        from engine.crm import load_mapping

        if not paths:
            raise LeadopsError("with a mapping, `leads` are the paths of CRM export files")
        records: Iterable[Record] = crm_records(list(leads), load_mapping(mapping, timeline.latest), activities)
    else:
        records = read_jsonl(leads) if paths else leads  # type: ignore[arg-type]
    batches, errors, funnel, total = [], [], Funnel(), 0
    for result in scan(records, timeline, now, since, within, jobs):
        batches.append(result.batch)
        errors.extend(result.errors)
        funnel.merge(result.funnel)
        total += result.leads
    table = pa.Table.from_batches(batches, schema=arrow_schema()).unify_dictionaries()
    head = timeline.latest
    pipeline = [s.id for s in head.model.stages.pipeline]
    card = Scorecard(now, since, within, total, errors, timeline.describe(), table,
                     aggregate(table, funnel, pipeline, within))
    used = table.group_by("policy_revision", use_threads=False).aggregate([("policy_revision", "count")]).to_pylist()
    counts = {r["policy_revision"]: r["policy_revision_count"] for r in used}
    for item in card.revisions:
        item["fact_rows"] = counts.get(item["revision"], 0)
    card.notes.extend(timeline.notes())
    return card


__all__ = ["report", "Scorecard", "PolicyTimeline", "FACT_COLUMNS", "FACT_NAMES", "STATUSES", "DEFAULT_WITHIN"]

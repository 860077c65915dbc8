"""Leads in, fact rows and funnel counts out: on every core, in input order; memory holds the columnar fact table
and the funnel counts, never the leads (about 160 bytes per fact row).

Each chunk of leads becomes one Arrow record batch of fact rows (columnar, so a million leads' rows stay
small), a partial funnel (counts per cohort week x source x stage, stage-to-stage durations, reason codes)
and error records for leads that could not be read. Workers are forked with the policy timeline and build
each revision's policy set from its files once; chunks come back in input order, at most `2 * jobs + 2` in
flight (the same bound as engine.batch).
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from engine.batch import _chunks, default_jobs, error_record, lead_json_error
from engine.errors import LeadError
from engine.jsonstrict import Decoder
from engine.report.facts import FACT_COLUMNS, FACT_NAMES, Judge, iso_week
from engine.report.history import History, read_history
from engine.report.revisions import PolicyTimeline

CHUNK = 500
Record = tuple[str, int, Any]  # (input name, line number, raw lead dict, or an Exception for a line not read)


@dataclass
class Funnel:
    """Partial funnel aggregates; `merge` adds another chunk's."""

    reached: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (week, source, stage) -> leads
    cohort: Counter[tuple[str, str]] = field(default_factory=Counter)  # (week, source) -> leads
    days: dict[tuple[str, str], array[float]] = field(default_factory=dict)  # (stage, next stage) -> business days
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (detour stage, reason code) -> entries

    def merge(self, other: "Funnel") -> None:
        self.reached.update(other.reached)
        self.cohort.update(other.cohort)
        for key, values in other.days.items():
            self.days.setdefault(key, array("d")).extend(values)
        self.reasons.update(other.reasons)


@dataclass
class ChunkResult:
    batch: Any  # pyarrow.RecordBatch of fact rows
    funnel: Funnel
    errors: list[dict[str, Any]]
    leads: int


def arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {"string": pa.string(), "category": pa.dictionary(pa.int32(), pa.string()),
             "timestamp": pa.timestamp("us", tz="UTC"), "float": pa.float64(), "int": pa.int32(), "bool": pa.bool_()}
    return pa.schema([(name, kinds[kind]) for name, kind in FACT_COLUMNS])


class Scanner:
    """Turns chunks of numbered leads into ChunkResults; one per process."""

    def __init__(self, timeline: PolicyTimeline, now: datetime, since: date | None, within: timedelta):
        self.timeline = timeline
        self.now = now
        self.since = since
        self.within = within
        self.judges: dict[int, Judge] = {}
        self.head = timeline.latest
        model = self.head.model
        self.stage_ids = [s.id for s in (*model.stages.pipeline, *model.stages.detours)]
        self.pipeline = [s.id for s in model.stages.pipeline]
        self.detours = {s.id for s in model.stages.detours}
        self.calendar = model.calendars[model.default_calendar]
        self.day_length = business_day_length(self.calendar)
        self.loads = Decoder(nonfinite=True).decode

    def judge(self, instant: datetime) -> Judge:
        ps = self.timeline.at(instant)
        judge = self.judges.get(id(ps))
        if judge is None:
            judge = self.judges[id(ps)] = Judge(ps, self.now, self.within)
        return judge

    def run(self, chunk: list[Record]) -> ChunkResult:
        import pyarrow as pa

        columns: dict[str, list[Any]] = {name: [] for name in FACT_NAMES}
        funnel = Funnel()
        errors: list[dict[str, Any]] = []
        leads = 0
        for name, number, raw in chunk:
            leads += 1
            try:
                if isinstance(raw, Exception):
                    raise raw
                if isinstance(raw, str):
                    raw = self.loads(raw)
                rows, history = self.lead(raw)
            except (ValueError, LeadError, RecursionError) as exc:
                record = error_record(number, lead_json_error(exc), raw.get("id") if isinstance(raw, dict) else None)
                errors.append({"input": name, **record})
                continue
            for row in rows:
                for key in FACT_NAMES:
                    columns[key].append(row[key])
            self.count(history, funnel)
        batch = pa.RecordBatch.from_pydict(columns, schema=arrow_schema())
        return ChunkResult(batch, funnel, errors, leads)

    def lead(self, raw: Any) -> tuple[list[dict[str, Any]], History]:
        if not isinstance(raw, dict):
            raise LeadError(f"a lead must be a JSON object, not {type(raw).__name__}", code="LEAD001")
        view = self.head.prepare(raw)
        history = read_history(view, self.now, self.stage_ids)
        rows: list[dict[str, Any]] = []
        for k, entry in enumerate(history.entries):
            if self.since is not None and entry.at.astimezone(self.calendar.zone).date() < self.since:
                continue
            judge = self.judge(entry.at)
            if judge.has_slas(entry.stage):
                rows.extend(judge.entry(raw, view if judge.ps is self.head else None, history, k))
        return rows, history

    def count(self, history: History, funnel: Funnel) -> None:
        """The lead's place in the funnel: its cohort (week created), stages reached, time between, reasons."""
        start = history.created_at or (history.entries[0].at if history.entries else None)
        if start is None or (self.since is not None and start.astimezone(self.calendar.zone).date() < self.since):
            return
        week = iso_week(start.astimezone(self.calendar.zone).date())
        source = history.source or "(none)"
        funnel.cohort[(week, source)] += 1
        first: dict[str, datetime] = {}
        for entry in history.entries:
            first.setdefault(entry.stage, entry.at)
            if entry.stage in self.detours:
                funnel.reasons[(entry.stage, entry.reason_code or "(none)")] += 1
        furthest = max((self.pipeline.index(s) for s in first if s in self.pipeline), default=-1)
        for stage in self.pipeline[:furthest + 1]:
            funnel.reached[(week, source, stage)] += 1
        for a, b in zip(self.pipeline, self.pipeline[1:]):
            if a in first and b in first and first[b] >= first[a]:
                spent = self.calendar.business_time_between(first[a], first[b])
                funnel.days.setdefault((a, b), array("d")).append(round(spent / self.day_length, 3))


def business_day_length(calendar: Any) -> timedelta:
    """The average open hours of the calendar's working weekdays: the unit of "business days" in the funnel."""
    def length(start: time, end: time) -> timedelta:
        stop = timedelta(days=1) if end == time(0) else timedelta(hours=end.hour, minutes=end.minute)
        return stop - timedelta(hours=start.hour, minutes=start.minute)

    days = [sum((length(s, e) for s, e in ivs), timedelta()) for ivs in calendar.weekly_hours.values()]
    return sum(days, timedelta()) / len(days)


_WORKER: Scanner | None = None


def _init_worker(timeline: PolicyTimeline, now: datetime, since: date | None, within: timedelta) -> None:
    global _WORKER
    _WORKER = Scanner(timeline, now, since, within)


def _run_chunk(chunk: list[Record]) -> ChunkResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(chunk)


def scan(records: Iterable[Record], timeline: PolicyTimeline, now: datetime, since: date | None,
         within: timedelta, jobs: int | None = None) -> Iterator[ChunkResult]:
    """ChunkResults in input order; `jobs` worker processes (None/0: every core, 1: this process)."""
    jobs = default_jobs() if not jobs or jobs < 1 else jobs
    chunks = _chunks(records, CHUNK)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if jobs == 1 or second is None:
        local = Scanner(timeline, now, since, within)
        yield local.run(first)
        if second is not None:
            yield local.run(second)
        for chunk in chunks:
            yield local.run(chunk)
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    window = 2 * jobs + 2
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(timeline, now, since, within)) as pool:
        pending: deque[Any] = deque([pool.apply_async(_run_chunk, (first,)), pool.apply_async(_run_chunk, (second,))])
        for chunk in chunks:
            while len(pending) >= window:
                yield pending.popleft().get()
            pending.append(pool.apply_async(_run_chunk, (chunk,)))
        while pending:
            yield pending.popleft().get()

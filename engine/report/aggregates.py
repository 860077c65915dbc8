"""The scorecard's numbers, computed from the fact table and the funnel counts (nothing else).

Definitions (the README repeats them for readers of the report):
* attainment % = met / (met + breached): open, at-risk and paused SLAs are not decided yet and do not count;
* median = the middle value (the mean of the two middle ones for an even count); p95 = nearest rank, the
  ceil(0.95 n)-th smallest value;
* speed to lead = business minutes from clock start to the first touch (pauses excluded), in bands
  0-5, 5-15, 15-60 minutes, 1-24 business hours and more than 24 business hours (lower bound included);
* system delay = business minutes from the lead's creation to the assignment of its owner of record;
  human delay = from that assignment (or the clock start, when later) to the first touch;
* the funnel counts a lead in its cohort week (created, else its first stage entry) and source; a lead reached
  a pipeline stage when it entered it or any later pipeline stage; conversion = reached this / reached the
  previous stage; days between stages = business days (the default calendar's average open day) between the
  first entries of two consecutive stages, where both are recorded;
* the at-risk queue = unanswered, unpaused SLAs not yet due whose due time is within `within` business time.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from engine.report.facts import STATUSES
from engine.report.scan import Funnel

BANDS: tuple[tuple[str, float, float], ...] = (
    ("0–5 min", 0, 5), ("5–15 min", 5, 15), ("15–60 min", 15, 60), ("1–24 h", 60, 1440), ("> 24 h", 1440, math.inf),
)
DIMENSIONS = ("sla_id", "team", "owner", "source", "week")
NONE = "(none)"
MAX_ITEMS = 1000  # example rows listed (the fact table has them all; counts are always complete)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for no values)."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def summary(values: Iterable[float | None]) -> dict[str, Any]:
    ordered = sorted(v for v in values if v is not None)
    return {"n": len(ordered), "median": statistics.median(ordered) if ordered else None,
            "p95": percentile(ordered, 95)}


def column_summary(column: Any) -> tuple[dict[str, Any], Any]:
    """`summary` of a numeric Arrow column without turning it into Python objects; also the sorted values."""
    import pyarrow.compute as pc

    values = pc.drop_null(column)
    values = values.combine_chunks() if hasattr(values, "combine_chunks") else values
    ordered = values.take(pc.sort_indices(values))
    n = len(ordered)
    if not n:
        return {"n": 0, "median": None, "p95": None}, ordered
    mid = n // 2
    median = ordered[mid].as_py() if n % 2 else (ordered[mid - 1].as_py() + ordered[mid].as_py()) / 2
    return {"n": n, "median": median, "p95": ordered[max(0, math.ceil(0.95 * n) - 1)].as_py()}, ordered


def attainment(table: Any, dimension: str) -> list[dict[str, Any]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    grouped = table.group_by([dimension, "status"], use_threads=False).aggregate([("status", "count")])
    for key, status, n in zip(*(grouped[c].to_pylist() for c in (dimension, "status", "status_count"))):
        counts[key or NONE][status] += n
    out = []
    for key in sorted(counts):
        c = counts[key]
        decided = c["met"] + c["breached"]
        out.append({dimension: key, **{s: c[s] for s in STATUSES}, "total": sum(c.values()),
                    "attainment_pct": round(100 * c["met"] / decided, 1) if decided else None})
    return out


def speed(table: Any) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    out = []
    table = table.select(["sla_id", "business_minutes_to_touch", "system_delay_minutes", "human_delay_minutes"])
    for sla in ["(all)", *sorted(set(table["sla_id"].unique().to_pylist()))]:
        group = table if sla == "(all)" else table.filter(pc.equal(table["sla_id"], sla))
        speed_to_lead, touched = column_summary(group["business_minutes_to_touch"])
        bands = {label: pc.sum(pc.and_(pc.greater_equal(touched, lo), pc.less(touched, hi))).as_py() or 0
                 for label, lo, hi in BANDS}
        out.append({"sla_id": sla, "rows": group.num_rows, "speed_to_lead": speed_to_lead, "bands": bands,
                    "system_delay": column_summary(group["system_delay_minutes"])[0],
                    "human_delay": column_summary(group["human_delay_minutes"])[0]})
    return out


def funnel_tables(funnel: Funnel, pipeline: Sequence[str]) -> dict[str, Any]:
    def conversion(reached: dict[str, int]) -> dict[str, float | None]:
        return {f"{a}→{b}": round(100 * reached[b] / reached[a], 1) if reached[a] else None
                for a, b in zip(pipeline, pipeline[1:])}

    def rows(keys: Iterable[str], index: int) -> list[dict[str, Any]]:
        out = []
        for key in keys:
            cohort = sum(n for k, n in funnel.cohort.items() if k[index] == key)
            reached = {s: sum(n for k, n in funnel.reached.items() if k[index] == key and k[2] == s) for s in pipeline}
            out.append({"week" if index == 0 else "source": key, "leads": cohort, "reached": reached,
                        "conversion_pct": conversion(reached)})
        return out

    weeks = sorted({k[0] for k in funnel.cohort})
    sources = sorted({k[1] for k in funnel.cohort})
    totals = {s: sum(n for k, n in funnel.reached.items() if k[2] == s) for s in pipeline}
    days = {f"{a}→{b}": summary(funnel.days.get((a, b), ())) for a, b in zip(pipeline, pipeline[1:])}
    return {"stages": list(pipeline), "leads": sum(funnel.cohort.values()), "reached": totals,
            "conversion_pct": conversion(totals),
            "by_week": rows(weeks, 0), "by_source": rows(sources, 1), "business_days_between": days,
            "by_week_and_source": [{"week": w, "source": s, "leads": n,
                                    "reached": {st: funnel.reached.get((w, s, st), 0) for st in pipeline}}
                                   for (w, s), n in sorted(funnel.cohort.items())]}


def pareto(reasons: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    total = sum(reasons.values())
    out, running = [], 0
    for (stage, code), n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        running += n
        out.append({"reason_code": code, "stage": stage, "count": n, "share_pct": round(100 * n / total, 1),
                    "cumulative_pct": round(100 * running / total, 1)})
    return out


def at_risk_queue(table: Any, within: timedelta) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    mask = pc.and_(pc.is_in(table["status"], value_set=pa_strings(["open", "at_risk"])),
                   pc.less_equal(table["business_minutes_left"], within.total_seconds() / 60))
    queue = table.filter(mask).select(["lead_id", "sla_id", "status", "due", "business_minutes_left", "team",
                                       "owner"]).to_pylist()
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(queue, key=lambda r: (r["due"], r["lead_id"], r["sla_id"])):
        owner = r.pop("owner") or NONE
        by_owner[owner].append(r)
    return [{"owner": o, "count": len(items), "items": items}
            for o, items in sorted(by_owner.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def early_disqualifications(table: Any) -> dict[str, Any]:
    early = table.filter(table["disqualified_before_attempts"])
    owners = Counter(o or NONE for o in early["owner"].to_pylist())
    items = early.slice(0, MAX_ITEMS).select(["lead_id", "sla_id", "owner", "attempts_made", "attempts_required",
                                               "exit_stage", "exit_reason", "exit_at"]).to_pylist()
    return {"count": early.num_rows, "by_owner": [{"owner": o, "count": n} for o, n in
                                                   sorted(owners.items(), key=lambda kv: (-kv[1], kv[0]))],
            "items": items, "items_cut": early.num_rows - len(items)}


def pa_strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


def aggregate(table: Any, funnel: Funnel, pipeline: Sequence[str], within: timedelta) -> dict[str, Any]:
    """Every aggregate of the scorecard from the fact table (pyarrow, FACT_COLUMNS) and the funnel counts."""
    return {
        "statuses": {r["status"]: r["status_count"] for r in sorted(
            table.group_by("status", use_threads=False).aggregate([("status", "count")]).to_pylist(),
            key=lambda r: r["status"])},
        "attainment": {d: attainment(table, d) for d in DIMENSIONS},
        "speed": speed(table),
        "funnel": funnel_tables(funnel, pipeline),
        "reasons": pareto(funnel.reasons),
        "disqualified_before_attempts": early_disqualifications(table),
        "at_risk": at_risk_queue(table, within),
    }

"""The scorecard as readable text tables (for people) and JSON-ready data (for machines)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

MAX_LIST_ROWS = 20  # long lists (reps, at-risk items) are cut in text; JSON and HTML hold them all


def jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601, tuples as lists, the rest as is (the JSON the CLI prints)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], limit: int | None = None) -> str:
    """A titled, aligned table; numbers right-aligned; `limit` rows at most (the rest counted)."""
    shown = list(rows if limit is None else rows[:limit])
    cells = [[cell(v) for v in row] for row in shown]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in shown) and bool(shown)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    out = [title, line(list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells] or ["(none)"]
    if limit is not None and len(rows) > limit:
        out.append(f"… {len(rows) - limit} more (see --format json or --html)")
    return "\n".join(out)


def attainment_rows(items: list[dict[str, Any]], key: str) -> list[list[Any]]:
    return [[i[key], i["met"], i["breached"], i["at_risk"], i["open"], i["paused"], i["attainment_pct"]] for i in items]


def scorecard_text(card: Any) -> str:
    a = card.aggregates
    parts = [f"SLA scorecard at {card.now.isoformat()}" + (f", clock starts since {card.since}" if card.since else "")
             + f": {card.leads:,} leads, {card.facts.num_rows:,} SLA rows, {len(card.errors):,} errors"]
    parts += [f"note: {n}" for n in card.notes]
    parts.append(table("Policy revisions (each lead judged by the one in force at its clock start)",
                       ["revision", "in force from", "SLA rows"],
                       [[r["label"], r["in_force_from"] or "–", r["fact_rows"]] for r in card.revisions]))
    heads = ["met", "breached", "at risk", "open", "paused", "attainment %"]
    for dim, title in (("sla_id", "SLA"), ("team", "team"), ("owner", "rep"), ("source", "source"), ("week", "week")):
        parts.append(table(f"Attainment by {title}", [title, *heads], attainment_rows(a["attainment"][dim], dim),
                           MAX_LIST_ROWS))
    speed = a["speed"]
    parts.append(table("Speed to lead (business minutes, clock start -> first touch, pauses excluded)",
                       ["SLA", "touched", "median", "p95", *speed[0]["bands"].keys()],
                       [[s["sla_id"], s["speed_to_lead"]["n"], s["speed_to_lead"]["median"], s["speed_to_lead"]["p95"],
                         *s["bands"].values()] for s in speed]))
    parts.append(table("System delay (created -> assigned) vs human delay (assigned -> first touch), business minutes",
                       ["SLA", "system median", "system p95", "human median", "human p95"],
                       [[s["sla_id"], s["system_delay"]["median"], s["system_delay"]["p95"], s["human_delay"]["median"],
                         s["human_delay"]["p95"]] for s in speed]))
    f = a["funnel"]
    stages = f["stages"]
    parts.append(table("Funnel by cohort week (leads reaching each stage)", ["week", "leads", *stages],
                       [[w["week"], w["leads"], *(w["reached"][s] for s in stages)] for w in f["by_week"]]))
    parts.append(table("Funnel by source", ["source", "leads", *stages],
                       [[w["source"], w["leads"], *(w["reached"][s] for s in stages)] for w in f["by_source"]]))
    conv = [[k, f["conversion_pct"][k], d["median"], d["n"]] for k, d in f["business_days_between"].items()]
    parts.append(table("Stage to stage", ["step", "conversion %", "median business days", "timed leads"], conv))
    parts.append(table("Disqualification and hand-back reasons (Pareto)", ["reason", "stage", "count", "share %", "cumulative %"],
                       [[r["reason_code"], r["stage"], r["count"], r["share_pct"], r["cumulative_pct"]] for r in a["reasons"]]))
    early = a["disqualified_before_attempts"]
    parts.append(table(f"Disqualified or handed back before the required attempts: {early['count']:,}",
                       ["rep", "count"], [[o["owner"], o["count"]] for o in early["by_owner"]], MAX_LIST_ROWS))
    within_h = card.within.total_seconds() / 3600
    queue = [[q["owner"], i["lead_id"], i["sla_id"], i["status"], i["due"], i["business_minutes_left"]]
             for q in a["at_risk"] for i in q["items"]]
    parts.append(table(f"At-risk queue: unanswered SLAs due within {within_h:g} business hours, by rep",
                       ["rep", "lead", "SLA", "status", "due", "business min left"], queue, MAX_LIST_ROWS))
    if card.errors:
        from engine.batch import error_text

        parts.append("Leads not read:\n" + "\n".join(f"{e['input']}: {error_text(e)}" for e in card.errors[:MAX_LIST_ROWS]))
    return "\n\n".join(parts) + "\n"

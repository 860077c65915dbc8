"""The scorecard as one self-contained HTML page: tables with captions and SVG charts drawn by matplotlib.

Nothing is loaded from anywhere (no script, no CDN, no web font): the charts are inline SVG, so the page opens
offline and prints. Same scorecard, same bytes: the SVG carries no date or creator, element ids come from a
fixed `svg.hashsalt`, and text stays text (`svg.fonttype: none`, which also lets screen readers read it).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from html import escape
from typing import Any

from engine.report.tables import cell

RC = {"svg.hashsalt": "leadops-report", "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 10,
      "axes.spines.top": False, "axes.spines.right": False}
MET, BREACHED, ACCENT, MUTED = "#1b7f5a", "#c0392b", "#2c5aa0", "#8a94a6"
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header,main{max-width:1100px;margin:0 auto;padding:0 24px}header{padding-top:24px}
h1{font-size:1.6rem;margin:.2em 0}h2{font-size:1.2rem;margin:1.6em 0 .4em}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:8px 20px 16px;margin:16px 0}
.kpis{display:flex;flex-wrap:wrap;gap:12px;list-style:none;padding:0}.kpis li{background:#fff;border:1px solid #dde1e8;
border-radius:8px;padding:10px 16px;min-width:150px}.kpis b{display:block;font-size:1.5rem}
table{border-collapse:collapse;margin:8px 0;font-size:.9rem}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e6e9ef;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:8px 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.9rem;color:#4a5568}
.note{color:#7a4b00}.tables{display:flex;flex-wrap:wrap;gap:0 40px;align-items:flex-start}
"""


def svg(fig: Any) -> str:
    """The figure as inline SVG markup (no XML prolog, no metadata)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
                bbox_inches="tight")
    text = buf.getvalue()
    return re.sub(r"^.*?(<svg\b)", r"\1", text, count=1, flags=re.S)


def figure(title: str, draw: Any, width: float = 8.0, height: float = 3.2) -> str:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height))
        draw(fig.add_subplot())
        markup = svg(fig)
    return (f'<figure role="img" aria-label="{escape(title)}" data-chart="{escape(title)}">{markup}'
            f"<figcaption>{escape(title)}</figcaption></figure>")


def html_table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) for i in range(len(headers))]
    head = "".join(f'<th scope="col"{" class=n" if numeric[i] else ""}>{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=n" if numeric[i] else ""}>{escape(cell(v))}</td>'
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">(none)</td></tr>'
    return f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(ident: str, title: str, chart: str, *tables: str) -> str:
    return (f'<section aria-labelledby="{ident}"><h2 id="{ident}">{escape(title)}</h2>{chart}'
            f'<div class="tables">{"".join(tables)}</div></section>')


def empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=MUTED)
    ax.set_xticks([])
    ax.set_yticks([])


def attainment_chart(weeks: list[dict[str, Any]]) -> str:
    def draw(ax: Any) -> None:
        if not weeks:
            return empty(ax, "no SLA clocks in this period")
        labels = [w["week"] for w in weeks]
        x = range(len(labels))
        ax.bar(x, [w["met"] for w in weeks], color=MET, label="met")
        ax.bar(x, [w["breached"] for w in weeks], bottom=[w["met"] for w in weeks], color=BREACHED, label="breached")
        ax.set_xticks(list(x), labels, rotation=45, ha="right")
        ax.set_ylabel("SLAs decided")
        line = ax.twinx()
        pct = [math.nan if w["attainment_pct"] is None else w["attainment_pct"] for w in weeks]
        line.plot(list(x), pct, color=ACCENT, marker="o", label="attainment %")
        line.set_ylim(0, 105)
        line.set_ylabel("attainment %")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)

    return figure("SLA attainment by week (met / breached, and attainment %)", draw)


def speed_chart(bands: dict[str, int]) -> str:
    def draw(ax: Any) -> None:
        labels = list(bands)
        bars = ax.bar(labels, list(bands.values()), color=[MET, MET, ACCENT, "#d68910", BREACHED])
        ax.bar_label(bars)
        ax.set_ylabel("first touches")
        ax.set_xlabel("business time from clock start to first touch")

    return figure("Speed to lead in business time, by band", draw)


def funnel_chart(funnel: dict[str, Any]) -> str:
    def draw(ax: Any) -> None:
        stages = funnel["stages"]
        counts = [funnel["reached"][s] for s in stages]
        bars = ax.bar(stages, counts, color=ACCENT)
        ax.bar_label(bars, [f"{c:,}" for c in counts])
        for i, (a, b) in enumerate(zip(stages, stages[1:])):
            pct = funnel["conversion_pct"][f"{a}→{b}"]
            if pct is not None:
                ax.annotate(f"{pct:g}%", ((i + 0.5), max(counts) * 0.5 if counts else 0), ha="center", color=MUTED,
                            fontsize=8)
        ax.set_ylabel("leads reaching the stage")

    return figure("Funnel waterfall: leads reaching each stage, with stage-to-stage conversion", draw)


def pareto_chart(reasons: list[dict[str, Any]]) -> str:
    def draw(ax: Any) -> None:
        if not reasons:
            return empty(ax, "no disqualifications or hand-backs")
        top = reasons[:12]
        labels = [f"{r['reason_code']}\n({r['stage']})" for r in top]
        ax.bar(labels, [r["count"] for r in top], color=BREACHED)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("leads")
        line = ax.twinx()
        line.plot(range(len(top)), [r["cumulative_pct"] for r in top], color=ACCENT, marker="o")
        line.set_ylim(0, 105)
        line.set_ylabel("cumulative %")

    return figure("Disqualification and hand-back reasons (Pareto)", draw)


def at_risk_chart(queue: list[dict[str, Any]]) -> str:
    def draw(ax: Any) -> None:
        if not queue:
            return empty(ax, "nothing due soon")
        top = queue[:15][::-1]
        ax.barh([q["owner"] for q in top], [q["count"] for q in top], color="#d68910")
        ax.set_xlabel("unanswered SLAs due soon")

    return figure("At-risk queue by rep", draw, height=max(2.0, 0.3 * min(len(queue), 15) + 1))


def scorecard_html(card: Any) -> str:
    a = card.aggregates
    statuses = a["statuses"]
    decided = statuses.get("met", 0) + statuses.get("breached", 0)
    overall = a["speed"][0]
    kpis = [("attainment", f"{100 * statuses.get('met', 0) / decided:.1f} %" if decided else "–"),
            ("SLA rows", f"{card.facts.num_rows:,}"), ("leads", f"{card.leads:,}"),
            ("median speed to lead", f"{cell(overall['speed_to_lead']['median'])} business min"),
            ("p95 speed to lead", f"{cell(overall['speed_to_lead']['p95'])} business min"),
            ("at risk now", f"{sum(q['count'] for q in a['at_risk']):,}")]
    att = a["attainment"]
    heads = ["met", "breached", "at risk", "open", "paused", "attainment %"]

    def att_table(dim: str, title: str) -> str:
        return html_table(f"Attainment by {title}", [title, *heads],
                          [[i[dim], i["met"], i["breached"], i["at_risk"], i["open"], i["paused"], i["attainment_pct"]]
                           for i in att[dim]])

    f = a["funnel"]
    stages = f["stages"]
    within = card.within.total_seconds() / 3600
    parts = [
        section("attainment", "SLA attainment", attainment_chart(att["week"]), att_table("sla_id", "SLA"),
                att_table("team", "team"), att_table("owner", "rep"), att_table("source", "source"),
                att_table("week", "week")),
        section("speed", "Speed to lead", speed_chart(overall["bands"]), html_table(
            "Speed to lead and delays by SLA (business minutes; system: created to assigned, human: assigned to touch)",
            ["SLA", "touched", "median", "p95", "system median", "system p95", "human median", "human p95"],
            [[s["sla_id"], s["speed_to_lead"]["n"], s["speed_to_lead"]["median"], s["speed_to_lead"]["p95"],
              s["system_delay"]["median"], s["system_delay"]["p95"], s["human_delay"]["median"], s["human_delay"]["p95"]]
             for s in a["speed"]])),
        section("funnel", "Funnel", funnel_chart(f),
                html_table("Leads reaching each stage by cohort week", ["week", "leads", *stages],
                           [[w["week"], w["leads"], *(w["reached"][s] for s in stages)] for w in f["by_week"]]),
                html_table("Leads reaching each stage by source", ["source", "leads", *stages],
                           [[w["source"], w["leads"], *(w["reached"][s] for s in stages)] for w in f["by_source"]]),
                html_table("Stage to stage: conversion and median business days", ["step", "conversion %",
                                                                                   "median business days", "timed leads"],
                           [[k, f["conversion_pct"][k], d["median"], d["n"]] for k, d in f["business_days_between"].items()])),
        section("reasons", "Why leads are disqualified or handed back", pareto_chart(a["reasons"]),
                html_table("Reason codes (Pareto)", ["reason", "stage", "count", "share %", "cumulative %"],
                           [[r["reason_code"], r["stage"], r["count"], r["share_pct"], r["cumulative_pct"]]
                            for r in a["reasons"]]),
                html_table(f"Disqualified or handed back before the required attempts "
                           f"({a['disqualified_before_attempts']['count']:,}; up to 200 listed here, all in the fact table)",
                           ["lead", "SLA", "rep", "attempts made", "required", "moved to", "reason"],
                           [[i["lead_id"], i["sla_id"], i["owner"], i["attempts_made"], i["attempts_required"],
                             i["exit_stage"], i["exit_reason"]] for i in a["disqualified_before_attempts"]["items"][:200]])),
        section("at-risk", f"At-risk queue (due within {within:g} business hours)", at_risk_chart(a["at_risk"]),
                html_table("Unanswered SLAs due soon, by rep", ["rep", "lead", "SLA", "status", "due", "business min left"],
                           [[q["owner"], i["lead_id"], i["sla_id"], i["status"], i["due"], i["business_minutes_left"]]
                            for q in a["at_risk"] for i in q["items"]])),
        section("revisions", "Policy revisions", "", html_table(
            "Each lead is judged by the policy revision in force at its clock start",
            ["revision", "in force from", "SLA rows"],
            [[r["label"], r["in_force_from"], r["fact_rows"]] for r in card.revisions])),
    ]
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in card.notes)
    errors = f"<p>{len(card.errors):,} leads could not be read (see the CLI output).</p>" if card.errors else ""
    since = f" · clock starts since {card.since.isoformat()}" if card.since else ""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>SLA scorecard at {escape(card.now.isoformat())}</title><style>{CSS}</style></head><body>"
            f"<header><h1>SLA scorecard</h1><p>As of {escape(card.now.isoformat())}{escape(since)} · "
            f"{card.leads:,} leads</p>{notes}{errors}"
            "<ul class=\"kpis\">" + "".join(f"<li>{escape(k)}<b>{escape(v)}</b></li>" for k, v in kpis) + "</ul></header>"
            f"<main>{''.join(parts)}</main></body></html>\n")

"""leadops vs GoRules Zen (the `zen-engine` package: a Rust expression engine) on one flat policy, same leads.

    .venv/bin/python -m benchmarks.zen_compare -n 20000     # check every lead, then time both; prints a table

The flat policy: 30 scoring conditions (one group, no activity rules), 5 pipeline stages (the furthest whose
entry holds wins: a first match from the top), 12 routing rules to queues (the last is the fallback), no SLAs.
Each rule is written twice, once in leadops' expression language and once in Zen's (Zen raises on comparing
null, so its comparisons are guarded with `!= null` where leadops' missing value is simply false).

Zen runs the policy as one compiled expression (`zen.compile_expression`), one `evaluate` call per lead, which
returns the fired rule ids, the total, the stage (from the total) and the route (from the stage). That is the
fastest Zen form measured: a decision graph with one expression node (also timed, on a tenth of the leads) pays
a fixed cost per call that is larger than the whole policy, and one compiled expression per rule pays Zen's
context conversion per rule. leadops returns its full decision (score with groups, grade and fired rules with
points and why, stage section, route section, SLAs). Before timing, every lead's total, fired rule ids (in
order), stage and route rule are compared with both Zen forms; any difference stops the benchmark.

Leads: `benchmarks.leadgen` (seed 11), without their current stage or transition request (so the stage is a
pure function of the lead, which is what the Zen translation computes); activities stay in the data.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.fromisoformat("2026-11-23T09:00:00+10:00")

# (leadops condition, Zen condition) templates, filled per rule
_EMPLOYEES = ("lead.employees >= {v}", "employees != null and employees >= {v}")
_COUNTRY = ("lead.country in {v}", "country in {v}")
_SENIORITY = ('lead.seniority == "{v}"', "seniority == '{v}'")
_INDUSTRY = ('lead.company.industry == "{v}"', "company.industry == '{v}'")
_SOURCE = ('lead.source == "{v}"', "source == '{v}'")

SCORING: list[tuple[str, str, str, int]] = []  # (id, leadops, zen, points)
for i, (template, values, points) in enumerate([
    (_EMPLOYEES, [10, 50, 200, 1000, 5000], [3, 10, 8, 10, 5]),
    (_COUNTRY, [["AU", "NZ"], ["SG", "MY", "IN", "JP"], ["GB", "DE", "FR", "NL", "IE"], ["US", "CA"], ["BR", "MX"]],
     [10, 6, 5, 4, 2]),
    (_SENIORITY, ["c_level", "vp", "director", "manager", "individual"], [15, 12, 10, 8, 2]),
    (_INDUSTRY, ["software", "financial_services", "healthcare", "education", "government"], [10, 8, 8, -5, 4]),
    (_SOURCE, ["website", "paid_search", "webinar", "partner", "event"], [2, 3, 6, 8, 5]),
]):
    for value, pts in zip(values, points):
        lit = json.dumps(value)
        zen_lit = lit.replace('"', "'")
        SCORING.append((f"r{len(SCORING):02d}-{str(value if not isinstance(value, list) else value[0]).lower()}",
                        template[0].format(v=lit.strip('"') if template is not _COUNTRY else lit),
                        template[1].format(v=zen_lit.strip("'") if template is not _COUNTRY else zen_lit), pts))
SCORING += [
    ("r25-abn", "present(lead.abn)", "abn != null", 10),
    ("r26-student", "lead.is_student", "is_student == true", -40),
    ("r27-competitor", "lead.is_competitor", "is_competitor == true", -100),
    ("r28-quote", "lead.requested_quote", "requested_quote == true", 20),
    ("r29-edu", 'endswith(lower(coalesce(lead.email, "")), ".edu")', "email != null and endsWith(lower(email), '.edu')", -20),
]

STAGES: list[tuple[str, str | None, str | None]] = [  # pipeline order: (id, leadops entry, Zen entry)
    ("subscriber", None, None),
    ("lead", "present(lead.email) and not lead.unsubscribed", "email != null and unsubscribed != true"),
    ("mql", "score.total >= 30 and not lead.is_competitor", "$.total >= 30 and is_competitor != true"),
    ("sql", "score.total >= 55 and lead.requested_quote", "$.total >= 55 and requested_quote == true"),
    ("opportunity", "score.total >= 80 and lead.employees >= 200",
     "$.total >= 80 and employees != null and employees >= 200"),
]

ROUTES: list[tuple[str, str | None, str | None, str]] = [  # (id, leadops when, Zen when, queue)
    ("competitors", "lead.is_competitor", "is_competitor == true", "marketing-nurture"),
    ("students", 'lead.is_student or lead.seniority == "student"', "is_student == true or seniority == 'student'",
     "marketing-nurture"),
    ("partners", 'lead.source == "partner"', "source == 'partner'", "partner-desk"),
    ("early", 'stage in ["subscriber", "lead"]', "$.stage in ['subscriber', 'lead']", "marketing-nurture"),
    ("anz-large", 'lead.country in ["AU", "NZ"] and lead.employees >= 1000',
     "country in ['AU', 'NZ'] and employees != null and employees >= 1000", "sales-escalations"),
    ("anz-qld", 'lead.country == "AU" and lead.state == "QLD"', "country == 'AU' and state == 'QLD'", "partner-desk"),
    ("anz", 'lead.country in ["AU", "NZ"]', "country in ['AU', 'NZ']", "global-triage"),
    ("apac", 'lead.country in ["SG", "MY", "ID", "PH", "TH", "VN", "IN", "JP", "KR", "HK"]',
     "country in ['SG', 'MY', 'ID', 'PH', 'TH', 'VN', 'IN', 'JP', 'KR', 'HK']", "global-triage"),
    ("emea", 'lead.country in ["GB", "IE", "DE", "FR", "NL", "SE", "ES", "IT"]',
     "country in ['GB', 'IE', 'DE', 'FR', 'NL', 'SE', 'ES', 'IT']", "sales-escalations"),
    ("americas", 'lead.country in ["US", "CA", "MX", "BR"]', "country in ['US', 'CA', 'MX', 'BR']", "partner-desk"),
    ("big-unknown", "lead.employees >= 500", "employees != null and employees >= 500", "sales-escalations"),
    ("fallback", None, None, "global-triage"),
]


def flat_policy_dir() -> Path:
    """The flat policy as a leadops policy set (the example set's lead schema, teams, calendars; no SLAs)."""
    from benchmarks.policies import _load, _write_set

    scoring = {"kind": "scoring", "groups": [{"id": "fit", "rules": [
        {"id": rid, "when": when, "points": pts} for rid, when, _, pts in SCORING]}]}
    stages = _load("stages.yaml")
    stages["pipeline"] = [{"id": sid, "side": "marketing" if k < 3 else "sales", **({"entry": entry} if entry else {})}
                          for k, (sid, entry, _) in enumerate(STAGES)]
    stages["detours"] = []
    stages.pop("transitions", None)
    routing = {"kind": "routing", "rules": [
        {"id": rid, **({"when": when} if when else {"fallback": True}), "assign": {"queue": queue}}
        for rid, when, _, queue in ROUTES]}
    slas = {"kind": "slas", "default_calendar": "brisbane", "slas": []}
    return _write_set({"scoring.yaml": scoring, "stages.yaml": stages, "routing.yaml": routing, "slas.yaml": slas},
                      "flat")


def zen_parts() -> dict[str, str]:
    """The flat policy's four outputs in Zen's expression language; `$.total` / `$.stage` name earlier outputs."""
    fired = "filter([" + ", ".join(f"({zen}) ? '{rid}' : null" for rid, _, zen, _ in SCORING) + "], # != null)"
    total = " + ".join(f"(({zen}) ? {pts} : 0)" for _, _, zen, pts in SCORING)
    stage = "'subscriber'"
    for sid, _, zen in STAGES[1:]:
        stage = f"(({zen}) ? '{sid}' : {stage})"
    route = f"'{ROUTES[-1][0]}'"
    for rid, _, zen, _ in reversed(ROUTES[:-1]):
        route = f"(({zen}) ? '{rid}' : {route})"
    return {"fired": fired, "total": total, "stage": stage, "route": route}


def zen_expression() -> str:
    """The whole policy as one Zen expression: the total is bound once with a closure (`map([total], ...)`, Zen
    has no variables), the stage is computed from it and the route from the stage."""
    p = zen_parts()
    stage = p["stage"].replace("$.total", "#")
    route = p["route"].replace("$.stage", "#")
    return f"map([{p['total']}], {{fired: {p['fired']}, total: #, stage: {stage}, route: map([{stage}], {route})[0]}})[0]"


def zen_graph() -> dict[str, Any]:
    """The flat policy as a Zen decision graph: input -> one expression node (outputs in order) -> output."""
    pos = {"x": 0, "y": 0}
    return {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "lead", "position": pos},
            {"id": "policy", "type": "expressionNode", "name": "policy", "position": pos,
             "content": {"expressions": [{"id": k, "key": k, "value": v} for k, v in zen_parts().items()]}},
            {"id": "out", "type": "outputNode", "name": "decision", "position": pos},
        ],
        "edges": [{"id": "e1", "type": "edge", "sourceId": "in", "targetId": "policy"},
                  {"id": "e2", "type": "edge", "sourceId": "policy", "targetId": "out"}],
    }


def leads(n: int) -> list[dict[str, Any]]:
    from benchmarks.leadgen import generate_leads

    out = []
    for lead in generate_leads(n, seed=11, now=NOW):
        for key in ("stage", "stage_entered_at", "transition_request"):
            lead.pop(key, None)
        out.append(lead)
    return out


def check(ps: Any, zen_fns: list[Callable[[Any], dict[str, Any]]], pool: list[dict[str, Any]]) -> int:
    """Compare leadops and every Zen form on every lead (total, fired ids in order, stage, route rule)."""
    for lead in pool:
        d = ps.evaluate(lead, NOW).to_dict()
        mine = (d["score"]["total"], [f["rule"] for f in d["score"]["fired"]], d["stage"]["to"], d["route"]["rule"])
        for fn in zen_fns:
            z = fn(lead)
            theirs = (z["total"], z["fired"], z["stage"], z["route"])
            if mine != theirs:
                raise AssertionError(f"lead {lead.get('id')}: leadops {mine} != Zen {theirs}")
    return len(pool)


def _rate(fn: Callable[[Any], Any], items: list[Any]) -> float:
    gc.collect()
    t = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - t)


def run(n: int = 20_000, rounds: int = 5) -> dict[str, Any]:
    """Check, then time (interleaved rounds, best of each): from a lead dict and from its JSON line."""
    import orjson
    import zen

    import engine

    try:
        from engine.fastjson import LeadDecoder, compact_bytes
    except ImportError:  # an engine before the orjson batch path (benchmarks/targets.py's baseline)
        from engine.jsonstrict import Decoder

        def LeadDecoder() -> Any:  # noqa: N802 - stands in for the class
            return Decoder(nonfinite=True)

        _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

        def compact_bytes(data: Any) -> bytes:
            return _encode(data).encode("utf-8")

    ps = engine.load_policies(flat_policy_dir(), revision="flat")
    expression = zen.compile_expression(zen_expression()).evaluate
    graph = zen.ZenEngine().create_decision(json.dumps(zen_graph())).evaluate
    pool = leads(n)
    checked = check(ps, [expression, lambda lead: graph(lead)["result"]], pool)
    lines = [orjson.dumps(lead) for lead in pool]
    decode = LeadDecoder().decode
    evaluate = ps.evaluate
    contenders: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {
        "leadops_dict": (lambda lead: evaluate(lead, NOW).to_dict(), pool),
        "zen_dict": (expression, pool),
        "leadops_json": (lambda line: compact_bytes(evaluate(decode(line), NOW).to_dict()), lines),
        "zen_json": (lambda line: orjson.dumps(expression(line)), lines),
        "zen_graph_dict": (graph, pool[: max(1, len(pool) // 10)]),
    }
    best = {name: 0.0 for name in contenders}
    for _ in range(rounds):
        for name, (fn, items) in contenders.items():
            best[name] = max(best[name], _rate(fn, items))
    return {"leads": n, "verified_identical_leads": checked, "scoring_rules": len(SCORING), "stages": len(STAGES),
            "routes": len(ROUTES), **{f"{k}_leads_per_s": v for k, v in best.items()},
            "ratio_dict": best["leadops_dict"] / best["zen_dict"], "ratio_json": best["leadops_json"] / best["zen_json"]}


def report(r: dict[str, Any]) -> str:
    return "\n".join([
        f"Flat policy ({r['scoring_rules']} scoring rules, {r['stages']} stages, {r['routes']} routes); "
        f"identical total, fired rules, stage and route on {r['verified_identical_leads']:,} leads.", "",
        "| input → output | leadops (full decision) leads/s | Zen (total, fired ids, stage, route) leads/s | leadops / Zen |",
        "|---|---:|---:|---:|",
        f"| lead dict → decision dict | {r['leadops_dict_leads_per_s']:,.0f} | {r['zen_dict_leads_per_s']:,.0f} | "
        f"{r['ratio_dict']:.2f} |",
        f"| JSON line → JSON bytes | {r['leadops_json_leads_per_s']:,.0f} | {r['zen_json_leads_per_s']:,.0f} | "
        f"{r['ratio_json']:.2f} |",
        f"| lead dict → Zen decision graph (one expression node) | | {r['zen_graph_dict_leads_per_s']:,.0f} | "
        f"{r['leadops_dict_leads_per_s'] / r['zen_graph_dict_leads_per_s']:.2f} |",
    ])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="leadops vs GoRules Zen on a flat policy")
    p.add_argument("-n", type=int, default=20_000, help="leads (default 20,000)")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    print(report(run(a.n, a.rounds)))


if __name__ == "__main__":
    main()

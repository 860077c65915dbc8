"""Where one lead's time goes on the batch path, stage by stage, in microseconds (one core, this process).

    .venv/bin/python -m benchmarks.breakdown            # example policy and the Zen comparison's flat policy, ~40 s
    .venv/bin/python -m benchmarks.breakdown -n 5000    # fewer leads

Each stage is timed alone over the same valid leads (the benchmark's seeded JSON Lines file, best of 3 passes),
its inputs computed beforehand, so the rows add up to roughly what a lead costs in `_Evaluator.run`; the last
rows are that whole loop (read a line, decide, write a line) and, for scale, a bare `json.loads` +
`json.dumps` of the same line and the hand-written Python of the example policy (`handwritten.py`, no
validation, no SLAs, no `why` texts). This is the floor analysis behind issue 13's table in README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent


def _best(fn: Callable[[Any], Any], items: list[Any], passes: int = 3) -> float:
    """Microseconds per item of the best pass."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def stages(ps: Any, lines: list[str], now: Any) -> tuple[dict[str, float], list[Any]]:
    """µs per lead of each step of a decision, for the valid leads among `lines` (also returned, decoded)."""
    from engine.batch import _Evaluator, _compact
    from engine.errors import LeadError
    from engine.fastjson import LeadDecoder
    from engine.scoring import activities_by_type

    decode = LeadDecoder().decode
    valid: list[tuple[str, Any]] = []
    for line in lines:
        try:
            raw = decode(line)
            ps.prepare(raw)
        except (ValueError, LeadError):
            continue
        valid.append((line, raw))
    kinds = getattr(ps, "activity_kinds", None)
    views = [ps.prepare(raw) for _, raw in valid]
    acts = [activities_by_type(v, now, kinds) if kinds is not None else activities_by_type(v, now) for v in views]
    sc, st, ro, sl = ps.scoring, ps.stages, ps.routing, ps.slas
    scored = [sc.evaluate(v, now, a, None, [])[1] for v, a in zip(views, acts)]
    staged = [st.evaluate(v, now, s, sl.attempt_check(v, now, a), None, []) for v, a, s in zip(views, acts, scored)]
    routed = [ro.evaluate(v, now, s, g["to"], None, []) for v, s, g in zip(views, scored, staged)]
    decisions = [ps.evaluate_prepared(v, now).to_dict() for v in views]
    index = (lambda v: activities_by_type(v, now, kinds)) if kinds is not None else (lambda v: activities_by_type(v, now))
    evaluator = _Evaluator(ps, now, False, "json")
    chunk = [(i, line) for i, (line, _) in enumerate(valid, 1)]
    out = {
        "read the JSON line (fastjson.LeadDecoder)": _best(lambda x: decode(x[0]), valid),
        "validate + read-only view (LeadSchema.prepare)": _best(lambda x: ps.prepare(x[1]), valid),
        "activity index (the kinds rules count)": _best(index, views),
        "score": _best(lambda x: sc.evaluate(x[0], now, x[1], None, []), list(zip(views, acts))),
        "stage": _best(lambda x: st.evaluate(x[0], now, x[2], sl.attempt_check(x[0], now, x[1]), None, []),
                       list(zip(views, acts, scored))),
        "route": _best(lambda x: ro.evaluate(x[0], now, x[1], x[2]["to"], None, []), list(zip(views, scored, staged))),
        "SLAs": _best(lambda x: sl.evaluate(x[0], now, x[1], x[2], x[3], None, []),
                      list(zip(views, staged, routed, scored))),
        "whole decision from the view (evaluate_prepared)": _best(lambda v: ps.evaluate_prepared(v, now), views),
        "write the JSON line (fastjson.compact_bytes)": _best(lambda d: _compact(d, False), decisions),
        "the batch loop per lead (_Evaluator.run: all of the above)": _best(lambda c: evaluator.run(c), [chunk], 3) / len(chunk),
        "bare json.loads + json.dumps of the same line": _best(lambda x: json.dumps(json.loads(x[0])), valid),
    }
    out["leads"] = len(valid)
    return out, [raw for _, raw in valid]


def run(n: int) -> dict[str, Any]:
    import engine
    from benchmarks import handwritten
    from benchmarks.run import NOW, leads_file
    from benchmarks.zen_compare import flat_policy_dir
    from benchmarks.zen_compare import leads as flat_leads

    with open(leads_file(20_000), encoding="utf-8") as f:
        lines = [line for _, line in zip(range(n), f)]
    example = engine.load_policies(ROOT / "policies", revision="breakdown")
    steps, valid = stages(example, lines, NOW)
    steps["hand-written Python of the same policy (dict in, no validation, no SLAs)"] = _best(
        lambda lead: handwritten.decide(lead, NOW), valid)
    flat = engine.load_policies(flat_policy_dir(), revision="flat")
    return {"example": steps, "flat": stages(flat, [json.dumps(lead) for lead in flat_leads(n)], NOW)[0]}


def table(r: dict[str, Any]) -> str:
    ex, fl = r["example"], r["flat"]
    rows = [f"| step (µs a lead, one core) | example policy ({ex['leads']:,} leads) | flat policy ({fl['leads']:,} leads) |",
            "|---|---:|---:|"]
    for key, value in ex.items():
        if key == "leads":
            continue
        other = fl.get(key)
        rows.append(f"| {key} | {value:.1f} | {'' if other is None else f'{other:.1f}'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="µs per lead, stage by stage (one core)")
    p.add_argument("-n", type=int, default=20_000, help="leads (default 20,000)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    r = run(a.n)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    print(table(r))


if __name__ == "__main__":
    main()

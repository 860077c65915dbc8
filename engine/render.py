"""Text and JSON renderings of diagnostics and decisions (people read text, machines read JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from engine.errors import Diagnostic


def to_json(data: Any, pretty: bool = True) -> str:
    if pretty:
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def diagnostics_text(diags: Iterable[Diagnostic]) -> str:
    diags = list(diags)
    lines = [d.format() for d in diags]
    lines.append(f"{len(diags)} error{'s' if len(diags) != 1 else ''} found")
    return "\n".join(lines)


def diagnostics_json(diags: Iterable[Diagnostic], valid: bool = False, summary: dict[str, Any] | None = None) -> str:
    return to_json({"valid": valid, "errors": [d.to_dict() for d in diags], **({"policy": summary} if summary else {})})


def _pts(p: Any) -> str:
    return f"{'+' if p >= 0 else '−'}{abs(p):g}"


def decision_text(d: dict[str, Any], explain: bool = False) -> str:
    s, st, r = d["score"], d["stage"], d["route"]
    out = [f"lead {d['lead_id']}  ·  policy {d['policy_revision']}  ·  at {d['evaluated_at']}"]
    groups = " · ".join(f"{k} {v:g}" for k, v in s["groups"].items())
    out.append(f"score  {s['total']:g}  ({groups})  grade {s['grade'] or '-'}")
    for f in s["fired"]:
        out.append(f"  {_pts(f['points']):>6}  {f['group']}/{f['rule']}: {f['why']}")
    move = f"{st['from']} → {st['to']}" if st["changed"] else f"{st['to']} (unchanged)"
    out.append(f"stage  {move}" + (f"  [{st['rule']}]" if st.get("rule") else "")
               + (f"  reason: {st['reason_code']}" if st.get("reason_code") else ""))
    if st.get("rejected"):
        rj = st["rejected"]
        out.append(f"  requested move to '{rj['to']}' refused: {rj['reason']}")
    target = (f"queue {r['queue']}" if r["queue"] else
              f"team {r['team']}, owner {r['owner']}" if r["team"] else f"owner {r['owner']}")
    out.append(f"route  {target}  [{r['rule']}{', fallback' if r['fallback'] else ''}]")
    for sla in d["slas"]:
        due = sla["due"] or "paused (no due date)"
        out.append(f"sla    {sla['id']}: due {due}  (clock from {sla['clock_starts']}, calendar {sla['calendar']}"
                   + (f", {sla['attempts_required']} attempts required" if sla["attempts_required"] else "")
                   + f", {sla['status']})")
        for e in sla["escalations"]:
            out.append(f"         {e.get('when', ''):>5} {e['at'] or '-'}  {e['action']} {e['to'] or '-'}")
    for w in d.get("warnings", ()):
        out.append(f"warning  {w['rule']}: {w['message']}")
    if explain and d.get("trace"):
        out.append("explain")
        for t in d["trace"]:
            mark = "✓" if t["fired"] else ("·" if t.get("note") else "✗")
            line = f"  {mark} {t['kind']:<8} {t['rule']}: {t['reason']}"
            if t.get("values"):
                line += "  " + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in t["values"].items())
            if t.get("missing"):
                line += "  missing: " + ", ".join(t["missing"])
            out.append(line)
    return "\n".join(out)

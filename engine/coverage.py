"""Decision coverage of a scenario suite: which rules no scenario exercises.

Counted per policy element (not per line), each listed at its `file:line` in the policy set:

* scoring      a scoring rule is exercised when it fires (adds points) in some scenario;
* stage        a stage's entry criteria are exercised when a lead moves into the stage by them (`stage:<id>`);
* transition   a declared transition is exercised when a requested move along it is accepted
               (`transition:<from>-><to>`), or for an `auto` transition when a lead re-enters the pipeline
               from that detour;
* routing      a routing rule is exercised when it assigns a lead;
* sla          an SLA is exercised when it applies to a decision;
* escalation   an escalation step is exercised when a scenario reaches it (the step's time is at or before the
               scenario's `now`) or checks it explicitly (`slas[<id>].escalations[<n>]...` in `expect`).

Coverage is read from the decisions themselves (no trace needed), so it costs nothing extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import Location

KINDS = ("scoring", "stage", "transition", "routing", "sla", "escalation")
KIND_LABELS = {"scoring": "scoring rules", "stage": "stage entry criteria", "transition": "transitions",
               "routing": "routing rules", "sla": "SLAs", "escalation": "escalation steps"}


@dataclass(frozen=True)
class Target:
    kind: str
    id: str
    label: str
    location: Location


def targets(ps: Any) -> list[Target]:
    """Every coverable element of a policy set, in policy order."""
    m = ps.model
    out: list[Target] = []
    for g in m.scoring.groups:
        for r in g.rules:
            out.append(Target("scoring", r.id, f"scoring rule {r.id} ({g.id}, {r.points:+g})", r.location))
    for st in m.stages.pipeline:
        if st.entry is not None and not st.manual:
            out.append(Target("stage", st.id, f"entry criteria of stage {st.id}", st.entry.location))
    for st in (*m.stages.pipeline, *m.stages.detours):
        for t in st.transitions:
            kind = "auto " if t.auto else ""
            out.append(Target("transition", f"{st.id}->{t.to}", f"{kind}transition {st.id} -> {t.to}", t.location))
    for r in m.routing:
        out.append(Target("routing", r.id, f"routing rule {r.id}" + (" (fallback)" if r.fallback else ""), r.location))
    for s in m.slas:
        out.append(Target("sla", s.id, f"SLA {s.id}", s.location))
        for i, e in enumerate(s.escalations):
            out.append(Target("escalation", f"{s.id}#{i}", f"escalation {s.id}[{i}] at {e.text}: {e.action} {e.to}",
                              e.location))
    return out


def _aware(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def exercised(ps: Any, decision: Mapping[str, Any], asserted: Iterable[str] = ()) -> set[tuple[str, str]]:
    """(kind, id) of every element this one decision exercises; `asserted` are the scenario's expectation paths."""
    hit: set[tuple[str, str]] = set()
    for f in decision["score"]["fired"]:
        hit.add(("scoring", f["rule"]))
    st = decision["stage"]
    rule = st.get("rule") or ""
    if rule.startswith("stage:"):
        hit.add(("stage", rule[6:]))
    elif rule.startswith("transition:"):
        hit.add(("transition", rule[11:]))
    if st["changed"] and not rule.startswith("transition:"):
        detours = {d.id: d for d in ps.model.stages.detours}
        src = detours.get(st["from"])
        if src is not None:
            for t in src.transitions:
                if t.auto:
                    hit.add(("transition", f"{src.id}->{t.to}"))
                    break
    hit.add(("routing", decision["route"]["rule"]))
    now = _aware(decision.get("evaluated_at"))
    for s in decision["slas"]:
        hit.add(("sla", s["id"]))
        for i, e in enumerate(s["escalations"]):
            at = _aware(e.get("at"))
            if now is not None and at is not None and at <= now:
                hit.add(("escalation", f"{s['id']}#{i}"))
    for path in asserted:
        if path.startswith("slas[") and ".escalations[" in path:
            sid = path[5:path.index("]")]
            idx = path.split(".escalations[", 1)[1].split("]", 1)[0]
            if idx.isdigit():
                hit.add(("escalation", f"{sid}#{int(idx)}"))
    return hit


def report(ps: Any, runs: Iterable[tuple[Mapping[str, Any], Sequence[str]]]) -> dict[str, Any]:
    """Coverage of (decision, asserted expectation paths) pairs: totals, per kind, per file, and the gaps."""
    all_targets = targets(ps)
    hit: set[tuple[str, str]] = set()
    for decision, asserted in runs:
        hit |= exercised(ps, decision, asserted)
    kinds: dict[str, dict[str, Any]] = {}
    files: dict[str, dict[str, Any]] = {}
    missing = []
    for t in all_targets:
        ok = (t.kind, t.id) in hit
        k = kinds.setdefault(t.kind, {"covered": 0, "total": 0})
        f = files.setdefault(t.location.file, {"covered": 0, "total": 0, "not_covered": []})
        k["total"] += 1
        f["total"] += 1
        if ok:
            k["covered"] += 1
            f["covered"] += 1
        else:
            item = {"kind": t.kind, "id": t.id, "label": t.label, "file": t.location.file, "line": t.location.line}
            missing.append(item)
            f["not_covered"].append(item)
    for d in (*kinds.values(), *files.values()):
        d["coverage"] = _pct(d["covered"], d["total"])
    covered = sum(k["covered"] for k in kinds.values())
    total = sum(k["total"] for k in kinds.values())
    return {"covered": covered, "total": total, "coverage": _pct(covered, total), "kinds": kinds, "files": files,
            "not_covered": missing}


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 1) if b else 100.0


def report_text(cov: Mapping[str, Any]) -> str:
    lines = [f"coverage: {cov['covered']}/{cov['total']} policy rules exercised ({cov['coverage']:g}%)"]
    for kind in KINDS:
        k = cov["kinds"].get(kind)
        if k:
            lines.append(f"  {KIND_LABELS[kind]:<22} {k['covered']:>3}/{k['total']:<3} {k['coverage']:g}%")
    if cov["not_covered"]:
        lines.append("not exercised by any scenario:")
        for m in cov["not_covered"]:
            lines.append(f"  {m['file']}:{m['line']}: {m['label']}")
    return "\n".join(lines)

"""A policy diff in words: what changed between two compiled policy models, not which YAML lines moved.

`semantic_diff(base.model, head.model)` returns `Change`s such as

    scoring › pricing-page: 20 → 25 points
    stages › sql entry: score.total >= 50 → 60
    routing › seq-smb moved from #7 to #5 (now before anz-public-sector)
    slas › sql-first-response: respond within 4h → 3h (business hours)

Renamed or split files do not matter: models are compared by kind and id.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable

from engine.model import PolicyModel, RouteRule, ScoreRule, Sla, Stage

AREAS = ("policy-set", "scoring", "stages", "routing", "teams", "calendars", "slas", "owners")


@dataclass(frozen=True)
class Change:
    area: str  # one of AREAS
    subject: str  # "pricing-page", "sql", "anz-enterprise" ("" for the area as a whole)
    kind: str  # added | removed | changed | moved
    text: str  # the change in words, without the area/subject prefix

    def __str__(self) -> str:
        who = f" › {self.subject}" if self.subject else ""
        return f"{self.area}{who}: {self.text}"

    def to_dict(self) -> dict[str, str]:
        return {"area": self.area, "subject": self.subject, "kind": self.kind, "text": self.text}


# --------------------------------------------------------------------------------------------- formatting


def fmt_num(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return f"{x:g}" if isinstance(x, float) else str(x)


def fmt_duration(d: timedelta | None) -> str:
    if d is None:
        return "none"
    minutes = int(round(d.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return "".join(parts) or "0m"


def norm_expr(source: str | None) -> str:
    return " ".join(source.split()) if source else ""


def _tokens(source: str) -> list[tuple[int, str]] | None:
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.COMMENT)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def _operand_before(tokens: list[tuple[int, str]], i: int) -> str:
    """The text left of a number: 'score.total >=' for 'score.total >= 50'."""
    out: list[str] = []
    j = i - 1
    if j >= 0 and tokens[j][0] == tokenize.OP and tokens[j][1] in ("<", "<=", ">", ">=", "==", "!=", "=", "+", "-", "*"):
        out.append(tokens[j][1])
        j -= 1
        while j >= 0 and (tokens[j][0] == tokenize.NAME and tokens[j][1] not in ("and", "or", "not", "in", "if")
                          or tokens[j][1] == "."):
            out.append(tokens[j][1])
            j -= 1
    elif j >= 0 and tokens[j][1] == "=":
        pass
    text = ""
    for part in reversed(out):
        text += part if part == "." or text.endswith(".") or not text else " " + part
    return text.replace(" >", " >").strip()


def describe_expr_change(old: str, new: str) -> str:
    """'score.total >= 50 → 60' when only numbers changed, else '`old` → `new`'."""
    a, b = _tokens(old), _tokens(new)
    if a is not None and b is not None and len(a) == len(b):
        diffs = []
        for i, (x, y) in enumerate(zip(a, b)):
            if x == y:
                continue
            if x[0] == y[0] == tokenize.NUMBER:
                diffs.append(i)
            else:
                diffs = []
                break
        else:
            if diffs:
                parts = []
                for i in diffs:
                    left = _operand_before(a, i)
                    if tokens_kw := _kwarg_before(a, i):
                        left = tokens_kw
                    parts.append(f"{left + ' ' if left else ''}{a[i][1]} → {b[i][1]}")
                return "; ".join(parts)
    return f"`{norm_expr(old)}` → `{norm_expr(new)}`"


def _kwarg_before(tokens: list[tuple[int, str]], i: int) -> str:
    """'has_activity("demo_request", within_days=' for within_days=30 → 'demo_request within_days'."""
    if i >= 2 and tokens[i - 1][1] == "=" and tokens[i - 2][0] == tokenize.NAME:
        name = tokens[i - 2][1]
        # find the call's first string argument for context
        j = i - 3
        depth = 0
        while j >= 0:
            t = tokens[j][1]
            if t == ")":
                depth += 1
            elif t == "(":
                if depth == 0:
                    fn = tokens[j - 1][1] if j >= 1 else ""
                    first = tokens[j + 1][1] if tokens[j + 1][0] == tokenize.STRING else ""
                    return f"{fn}({first}) {name} ="
                depth -= 1
            j -= 1
        return f"{name} ="
    return ""


def _value(x: Any) -> str:
    if x is None:
        return "none"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return fmt_num(x)
    if isinstance(x, timedelta):
        return fmt_duration(x)
    if isinstance(x, (tuple, list)):
        return "[" + ", ".join(_value(v) for v in x) + "]" if x else "none"
    return str(x)


class _Collector:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def add(self, area: str, subject: str, kind: str, text: str) -> None:
        self.changes.append(Change(area, subject, kind, text))

    def field(self, area: str, subject: str, label: str, old: Any, new: Any, unit: str = "") -> None:
        if old == new:
            return
        suffix = f" {unit}" if unit else ""
        self.add(area, subject, "changed", f"{label}{' ' if label else ''}{_value(old)} → {_value(new)}{suffix}".strip())

    def expr(self, area: str, subject: str, label: str, old: str | None, new: str | None) -> None:
        o, n = norm_expr(old), norm_expr(new)
        if o == n:
            return
        if not o:
            self.add(area, subject, "changed", f"{label} added: `{n}`")
        elif not n:
            self.add(area, subject, "changed", f"{label} removed (was `{o}`)")
        else:
            self.add(area, subject, "changed", f"{label}: {describe_expr_change(o, n)}")

    def sets(self, area: str, subject: str, label: str, old: Iterable[str], new: Iterable[str]) -> None:
        o, n = list(old), list(new)
        added = [x for x in n if x not in o]
        removed = [x for x in o if x not in n]
        if added:
            self.add(area, subject, "changed", f"{label} added: {', '.join(map(str, added))}")
        if removed:
            self.add(area, subject, "changed", f"{label} removed: {', '.join(map(str, removed))}")


def _moves(old_ids: list[str], new_ids: list[str]) -> list[tuple[str, int, int, str | None]]:
    """Ids whose relative order changed: (id, old position, new position, the id it now precedes).

    Ids on a longest common subsequence of the common ids stayed; the others moved.
    """
    common = set(old_ids) & set(new_ids)
    a = [x for x in old_ids if x in common]
    b = [x for x in new_ids if x in common]
    n, m = len(a), len(b)
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            dp[i][j] = dp[i + 1][j + 1] + 1 if a[i] == b[j] else max(dp[i + 1][j], dp[i][j + 1])
    keep: set[str] = set()
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            keep.add(a[i])
            i += 1
            j += 1
        elif dp[i + 1][j] >= dp[i][j + 1]:
            i += 1
        else:
            j += 1
    out = []
    for x in b:
        if x not in keep:
            k = new_ids.index(x)
            nxt = new_ids[k + 1] if k + 1 < len(new_ids) else None
            out.append((x, old_ids.index(x) + 1, k + 1, nxt))
    return out


# --------------------------------------------------------------------------------------------- per area


def _scoring(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "scoring"
    og = {g.id: g for g in old.scoring.groups}
    ng = {g.id: g for g in new.scoring.groups}
    for gid in ng.keys() - og.keys():
        c.add(area, gid, "added", f"score group added ({len(ng[gid].rules)} rules)")
    for gid in og.keys() - ng.keys():
        c.add(area, gid, "removed", "score group removed")
    for gid in [g for g in ng if g in og]:
        a, b = og[gid], ng[gid]
        c.field(area, f"{gid} group", "cap", a.cap, b.cap)
        c.field(area, f"{gid} group", "floor", a.floor, b.floor)
        ga = {x.grade: x.min for x in a.grades}
        gb = {x.grade: x.min for x in b.grades}
        for grade in gb:
            if grade not in ga:
                c.add(area, f"{gid} grades", "added", f"grade {grade} added (≥ {_value(gb[grade])})")
            elif ga[grade] != gb[grade]:
                c.add(area, f"{gid} grades", "changed", f"grade {grade}: ≥ {_value(ga[grade])} → ≥ {_value(gb[grade])}")
        for grade in ga:
            if grade not in gb:
                c.add(area, f"{gid} grades", "removed", f"grade {grade} removed")
    c.field(area, "", "grade made of", list(old.scoring.grade_groups), list(new.scoring.grade_groups))
    c.field(area, "", "total cap", old.scoring.total_cap, new.scoring.total_cap)
    c.field(area, "", "total floor", old.scoring.total_floor, new.scoring.total_floor)
    orules = {r.id: r for g in old.scoring.groups for r in g.rules}
    nrules = {r.id: r for g in new.scoring.groups for r in g.rules}
    for rid, r in nrules.items():
        if rid not in orules:
            c.add(area, rid, "added", f"rule added to {r.group}: {fmt_num(r.points):>s} points {_rule_what(r)}")
    for rid, r in orules.items():
        if rid not in nrules:
            c.add(area, rid, "removed", f"rule removed from {r.group} (was {fmt_num(r.points)} points {_rule_what(r)})")
    for rid in [r for r in nrules if r in orules]:
        a, b = orules[rid], nrules[rid]
        if a.group != b.group:
            c.add(area, rid, "moved", f"moved from group {a.group} to {b.group}")
        c.field(area, rid, "", a.points, b.points, "points")
        c.expr(area, rid, "when", a.when.source if a.when else None, b.when.source if b.when else None)
        c.field(area, rid, "counts activity", a.activity, b.activity)
        c.expr(area, rid, "where", a.where.source if a.where else None, b.where.source if b.where else None)
        c.field(area, rid, "window", a.within, b.within)
        c.field(area, rid, "counted at most", a.limit, b.limit, "times")
        if a.decay != b.decay:
            c.add(area, rid, "changed", f"decay {_decay(a)} → {_decay(b)}")
        if a.description != b.description:
            c.add(area, rid, "changed", "description reworded")


def _rule_what(r: ScoreRule) -> str:
    if r.activity:
        return f"per {r.activity}" + (f" within {fmt_duration(r.within)}" if r.within else "")
    return f"when `{norm_expr(r.when.source)}`" if r.when else ""


def _decay(r: ScoreRule) -> str:
    return f"×{fmt_num(r.decay.factor)} every {fmt_duration(r.decay.every)}" if r.decay else "none"


def _stage_list(stages: Iterable[Stage]) -> list[str]:
    return [s.id for s in stages]


def _stages(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "stages"
    c.field(area, "", "initial stage", old.stages.initial, new.stages.initial)
    op, np_ = _stage_list(old.stages.pipeline), _stage_list(new.stages.pipeline)
    if [x for x in op if x in np_] != [x for x in np_ if x in op]:
        c.add(area, "pipeline", "moved", f"pipeline re-ordered: {' → '.join(op)}  ⇒  {' → '.join(np_)}")
    a_all, b_all = old.stages.by_id(), new.stages.by_id()
    for sid in b_all.keys() - a_all.keys():
        s = b_all[sid]
        where = "pipeline" if s.pipeline_index is not None else "detour"
        c.add(area, sid, "added", f"{where} stage added" + (f", entry `{norm_expr(s.entry.source)}`" if s.entry else ""))
    for sid in a_all.keys() - b_all.keys():
        c.add(area, sid, "removed", "stage removed")
    for sid in [s for s in b_all if s in a_all]:
        a, b = a_all[sid], b_all[sid]
        if (a.pipeline_index is None) != (b.pipeline_index is None):
            c.add(area, sid, "moved", "moved into the pipeline" if b.pipeline_index is not None else "moved out of the pipeline (now a detour)")
        c.field(area, sid, "side", a.side, b.side)
        c.field(area, sid, "manual only", a.manual, b.manual)
        c.expr(area, sid, "entry", a.entry.source if a.entry else None, b.entry.source if b.entry else None)
        ta = {t.to: t for t in a.transitions}
        tb = {t.to: t for t in b.transitions}
        for to in tb.keys() - ta.keys():
            c.add(area, sid, "changed", f"transition to {to} added" + (" (reason required)" if tb[to].reason_required else "")
                  + (" (automatic)" if tb[to].auto else ""))
        for to in ta.keys() - tb.keys():
            c.add(area, sid, "changed", f"transition to {to} removed")
        for to in [t for t in tb if t in ta]:
            c.field(area, sid, f"transition to {to}: reason required", ta[to].reason_required, tb[to].reason_required)
            c.field(area, sid, f"transition to {to}: automatic", ta[to].auto, tb[to].auto)
    c.sets(area, "reason codes", "", old.stages.reason_codes, new.stages.reason_codes)


def _target(r: RouteRule) -> str:
    if r.target_kind == "owner":
        return f"owner `{norm_expr(r.target)}`"
    return f"{r.target_kind} {r.target}"


def _routing(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "routing"
    oi = [r.id for r in old.routing]
    ni = [r.id for r in new.routing]
    orules = {r.id: r for r in old.routing}
    nrules = {r.id: r for r in new.routing}
    for pos, r in enumerate(new.routing, 1):
        if r.id not in orules:
            cond = f" when `{norm_expr(r.when.source)}`" if r.when else ""
            c.add(area, r.id, "added", f"rule added at #{pos} → {_target(r)}{cond}")
    for pos, r in enumerate(old.routing, 1):
        if r.id not in nrules:
            c.add(area, r.id, "removed", f"rule removed (was #{pos} → {_target(r)})")
    for rid, was, now, before in _moves(oi, ni):
        c.add(area, rid, "moved", f"moved from #{was} to #{now}" + (f" (now before {before})" if before else " (now last)"))
    for rid in [r for r in ni if r in orules]:
        a, b = orules[rid], nrules[rid]
        c.expr(area, rid, "when", a.when.source if a.when else None, b.when.source if b.when else None)
        if _target(a) != _target(b):
            c.add(area, rid, "changed", f"assigns to {_target(a)} → {_target(b)}")
        c.field(area, rid, "fallback", a.fallback, b.fallback)


def _teams(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "teams"
    for tid in new.teams.keys() - old.teams.keys():
        t = new.teams[tid]
        c.add(area, tid, "added", f"team added ({', '.join(m.id for m in t.members)}; calendar {t.calendar})")
    for tid in old.teams.keys() - new.teams.keys():
        c.add(area, tid, "removed", "team removed")
    for tid in sorted(new.teams.keys() & old.teams.keys()):
        a, b = old.teams[tid], new.teams[tid]
        c.field(area, tid, "calendar", a.calendar, b.calendar)
        c.field(area, tid, "manager", a.manager, b.manager)
        c.field(area, tid, "slack channel", a.slack_channel, b.slack_channel)
        ma = {m.id: m for m in a.members}
        mb = {m.id: m for m in b.members}
        for mid in [m for m in mb if m not in ma]:
            c.add(area, tid, "changed", f"member {mid} added (weight {mb[mid].weight})")
        for mid in [m for m in ma if m not in mb]:
            c.add(area, tid, "changed", f"member {mid} removed")
        for mid in [m for m in mb if m in ma]:
            x, y = ma[mid], mb[mid]
            c.field(area, tid, f"{mid} weight", x.weight, y.weight)
            if x.active != y.active:
                c.add(area, tid, "changed", f"{mid} {'re-activated' if y.active else 'made inactive'}")
            if x.out_of_office != y.out_of_office:
                c.add(area, tid, "changed", f"{mid} out of office: {_absences(x.out_of_office)} → {_absences(y.out_of_office)}")
    for qid in new.queues.keys() - old.queues.keys():
        c.add(area, f"queue {qid}", "added", "queue added")
    for qid in old.queues.keys() - new.queues.keys():
        c.add(area, f"queue {qid}", "removed", "queue removed")
    for qid in sorted(new.queues.keys() & old.queues.keys()):
        a, b = old.queues[qid], new.queues[qid]
        c.field(area, f"queue {qid}", "calendar", a.calendar, b.calendar)
        c.field(area, f"queue {qid}", "manager", a.manager, b.manager)
        c.field(area, f"queue {qid}", "slack channel", a.slack_channel, b.slack_channel)


def _absences(xs: Iterable[Any]) -> str:
    xs = list(xs)
    return ", ".join(f"{a.start.isoformat()}…{a.end.isoformat()}" for a in xs) if xs else "none"


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours(weekly: Any) -> str:
    parts = []
    for day in range(7):
        spans = weekly.get(day, ()) if hasattr(weekly, "get") else ()
        if spans:
            parts.append(f"{_DAYS[day]} " + ",".join(f"{s.strftime('%H:%M')}-{e.strftime('%H:%M')}" for s, e in spans))
    return "; ".join(parts) or "closed"


def _closure(cl: Any) -> str:
    when = cl.day.isoformat()
    if cl.start or cl.end:
        when += f" {cl.start.strftime('%H:%M') if cl.start else '00:00'}-{cl.end.strftime('%H:%M') if cl.end else '24:00'}"
    return when + (f" ({cl.name})" if getattr(cl, "name", "") else "")


def _calendars(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "calendars"
    for cid in sorted(new.calendars.keys() - old.calendars.keys()):
        c.add(area, cid, "added", f"calendar added ({new.calendars[cid].timezone})")
    for cid in sorted(old.calendars.keys() - new.calendars.keys()):
        c.add(area, cid, "removed", "calendar removed")
    for cid in sorted(new.calendars.keys() & old.calendars.keys()):
        a, b = old.calendars[cid], new.calendars[cid]
        c.field(area, cid, "time zone", a.timezone, b.timezone)
        ha, hb = _hours(a.weekly_hours), _hours(b.weekly_hours)
        if ha != hb:
            c.add(area, cid, "changed", f"business hours {ha} → {hb}")
        c.field(area, cid, "public holidays", _hol(a), _hol(b))
        c.sets(area, cid, "closure", [_closure(x) for x in a.closures], [_closure(x) for x in b.closures])


def _hol(cal: Any) -> str:
    if not cal.holiday_country:
        return "none"
    return cal.holiday_country + (f"/{cal.holiday_subdivision}" if cal.holiday_subdivision else "")


def _escalation(e: Any) -> str:
    return f"{e.text} {e.action} {e.to}"


def _slas(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "slas"
    c.field(area, "", "default calendar", old.default_calendar, new.default_calendar)
    oa = {s.id: s for s in old.slas}
    nb = {s.id: s for s in new.slas}
    for sid in [s for s in nb if s not in oa]:
        s = nb[sid]
        c.add(area, sid, "added", f"SLA added: respond within {fmt_duration(s.respond_within)} business time"
              + _applies(s))
    for sid in [s for s in oa if s not in nb]:
        c.add(area, sid, "removed", f"SLA removed (was respond within {fmt_duration(oa[sid].respond_within)}{_applies(oa[sid])})")
    for sid in [s for s in nb if s in oa]:
        a, b = oa[sid], nb[sid]
        if a.respond_within != b.respond_within:
            c.add(area, sid, "changed", f"respond within {fmt_duration(a.respond_within)} → {fmt_duration(b.respond_within)} (business time)")
        c.field(area, sid, "calendar", a.calendar, b.calendar)
        c.field(area, sid, "applies to stages", list(a.stages), list(b.stages))
        c.field(area, sid, "applies to routes", list(a.routes), list(b.routes))
        c.expr(area, sid, "applies when", a.when.source if a.when else None, b.when.source if b.when else None)
        if a.attempts != b.attempts:
            c.add(area, sid, "changed", f"attempts {_attempts(a)} → {_attempts(b)}")
        ea, eb = [_escalation(e) for e in a.escalations], [_escalation(e) for e in b.escalations]
        if ea != eb:
            c.sets(area, sid, "escalation", ea, eb)
            if sorted(ea) == sorted(eb):
                c.add(area, sid, "moved", "escalations re-ordered")


def _attempts(s: Sla) -> str:
    a = s.attempts
    if a is None:
        return "none"
    text = f"≥{a.min} {a.activity}"
    if a.within_business_days:
        text += f" within {a.within_business_days} business days"
    if a.before:
        text += f" before {', '.join(a.before)}"
    return text


def _applies(s: Sla) -> str:
    parts = []
    if s.stages:
        parts.append("stages " + ", ".join(s.stages))
    if s.routes:
        parts.append("routes " + ", ".join(s.routes))
    if s.when:
        parts.append(f"when `{norm_expr(s.when.source)}`")
    return f" for {'; '.join(parts)}" if parts else ""


def _policy_set(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "policy-set"
    c.field(area, "", "name", old.name, new.name)
    c.field(area, "", "version", old.version, new.version)
    c.field(area, "", "lead schema", old.lead_schema_path, new.lead_schema_path)
    c.field(area, "", "blast-radius guard (max % of leads changing stage or route)",
            old.max_changed_percent, new.max_changed_percent)
    if norm_expr(old.description) != norm_expr(new.description):
        c.add(area, "", "changed", "description reworded")


def _owners(c: _Collector, old: PolicyModel, new: PolicyModel) -> None:
    area = "owners"
    a, b = old.ownership, new.ownership
    ga = dict(a.groups) if a else {}
    gb = dict(b.groups) if b else {}
    for g in [g for g in gb if g not in ga]:
        c.add(area, g, "added", f"owner group added: {', '.join(gb[g])}")
    for g in [g for g in ga if g not in gb]:
        c.add(area, g, "removed", "owner group removed")
    for g in [g for g in gb if g in ga]:
        c.sets(area, g, "member", ga[g], gb[g])
        ta = (a.github_teams if a else {}).get(g)
        tb = (b.github_teams if b else {}).get(g)
        c.field(area, g, "GitHub team", ta, tb)
    aa = dict(a.areas) if a else {}
    ab = dict(b.areas) if b else {}
    for x in [x for x in ab if x not in aa]:
        c.add(area, f"area {x}", "added", f"area added: {', '.join(ab[x][0])} approved by {' and '.join(ab[x][1])}")
    for x in [x for x in aa if x not in ab]:
        c.add(area, f"area {x}", "removed", "area removed")
    for x in [x for x in ab if x in aa]:
        c.sets(area, f"area {x}", "file", aa[x][0], ab[x][0])
        c.sets(area, f"area {x}", "approver group", aa[x][1], ab[x][1])


def semantic_diff(old: PolicyModel, new: PolicyModel) -> list[Change]:
    """Every difference between two policy models, in words, grouped by area in AREAS order."""
    c = _Collector()
    _policy_set(c, old, new)
    _scoring(c, old, new)
    _stages(c, old, new)
    _routing(c, old, new)
    _teams(c, old, new)
    _calendars(c, old, new)
    _slas(c, old, new)
    _owners(c, old, new)
    return c.changes


# --------------------------------------------------------------------------------------------- rendering


def changes_text(changes: list[Change]) -> str:
    if not changes:
        return "  none"
    return "\n".join(f"  {ch}" for ch in changes)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def changes_markdown(changes: list[Change]) -> str:
    if not changes:
        return "_No policy changes._"
    lines = ["| area | rule / item | change |", "|---|---|---|"]
    for ch in changes:
        lines.append(f"| {ch.area} | {_md_escape(ch.subject) or '—'} | {_md_escape(_mdcode(ch.text))} |")
    return "\n".join(lines)


def _mdcode(text: str) -> str:
    # number-only changes read better bold: "score.total >= 50 → 60" -> "score.total >= **50 → 60**"
    return re.sub(r"(\b[\d.]+[a-z%]*) → ([\d.]+[a-z%]*\b)", r"**\1 → \2**", text)


def changed_subjects(changes: list[Change]) -> dict[str, set[str]]:
    """area -> subjects that changed (the rules responsible for a lead's different outcome)."""
    out: dict[str, set[str]] = {}
    for ch in changes:
        out.setdefault(ch.area, set()).add(ch.subject)
    return out

"""Impact of a policy change: evaluate the base and head revisions on the same leads and count what moves.

Both policy sets decide every lead at the same `now`. Per lead the outcomes are compared (stage, route,
grade, score, SLA due times) and folded into an `Impact` of counters: memory stays bounded however many
leads stream through (examples are capped). Large inputs are split into chunks evaluated by worker
processes (bounded in flight), merged in input order so the report is deterministic.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import LeadError, LeadopsError
from engine.handbook.content import stage_name
from engine.semantic_diff import Change, changed_subjects, changes_markdown, changes_text, fmt_num
from engine.thresholds import Threshold

MARKER = "<!-- leadops-impact-report -->"
SCORE_BUCKET = 10
CHUNK = 2000  # leads per worker task: few, big IPC messages; at most 3 per worker in flight
KINDS = ("stage", "route", "grade", "score", "sla")
NEAR = 10  # the threshold histograms count leads within ±NEAR points of an old or new cut-off


# --------------------------------------------------------------------------------------------- lead input


def default_lead_files(start: str | os.PathLike[str] = ".") -> list[str]:
    """The scenario leads (scenarios/leads/*.json) of the repository holding `start`, else of the current directory."""
    here = Path(start).resolve()
    for p in (here, *here.parents):
        cand = p / "scenarios" / "leads"
        if cand.is_dir():
            return sorted(str(x) for x in cand.glob("*.json"))
        if (p / ".git").exists():
            break
    return []


def default_leads(start: str | os.PathLike[str] = ".") -> list[tuple[str, str]]:
    """The scenario leads: scenarios/leads/*.json plus the leads written inside scenario YAML files (each
    distinct lead once). Small by nature, so held in memory."""
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    files = default_lead_files(start)
    for label, text in iter_lead_texts(files):
        key = _canonical(text)
        if key not in seen:
            seen.add(key)
            items.append((label, text))
    if files:
        scen_dir = Path(files[0]).parent.parent
    else:
        here = Path(start).resolve()
        scen_dir = next((p / "scenarios" for p in (here, *here.parents) if (p / "scenarios").is_dir()), None)
    if scen_dir is None:
        return items
    try:
        from engine.scenarios import discover, load_scenario_file
    except ImportError:  # pragma: no cover - the scenario runner is optional here
        return items
    for path in discover([scen_dir]):
        try:
            sf = load_scenario_file(path)
        except Exception:  # noqa: BLE001 - a broken scenario file is `leadops test`'s to report, not ours
            continue
        for scen in sf.scenarios:
            if getattr(scen, "record", None) is not None:  # a raw CRM record: needs its mapping and a policy set
                continue
            text = json.dumps(scen.lead, default=str)
            key = _canonical(text)
            if key not in seen:
                seen.add(key)
                items.append((f"{Path(path).name}: {scen.name}", text))
    return items


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return text


def _count_lines(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return None


def iter_lead_texts(paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(label, JSON text) per lead: a .json file is one lead (or an array of leads); .jsonl/.ndjson/'-' one per line."""
    for path in paths:
        if path == "-" or path.endswith((".jsonl", ".ndjson")):
            stream = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            name = "stdin" if path == "-" else Path(path).name
            try:
                for number, line in enumerate(stream, 1):
                    if line.strip():
                        yield f"{name}:{number}", line
            finally:
                if stream is not sys.stdin:
                    stream.close()
            continue
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                yield Path(path).name, f"\0malformed JSON: {exc}"
                continue
            for i, item in enumerate(items, 1):
                yield f"{Path(path).name}[{i}]", json.dumps(item)
        else:
            yield Path(path).name, text


def estimate_total(paths: list[str]) -> int | None:
    total = 0
    for path in paths:
        if path == "-":
            return None
        if path.endswith((".jsonl", ".ndjson")):
            n = _count_lines(path)
            if n is None:
                return None
            total += n
        else:
            total += 1
    return total


# --------------------------------------------------------------------------------------------- one lead


@dataclass
class Outcome:
    """What matters of one decision for the comparison."""

    stage: str
    stage_rule: str | None
    route: tuple[str | None, str | None, str | None]  # queue, team, owner
    route_rule: str
    grade: str | None
    total: float
    fired: dict[str, float]
    slas: dict[str, str]  # id -> due (ISO)
    groups: dict[str, float] = field(default_factory=dict)  # score group -> points

    @classmethod
    def of(cls, d: dict[str, Any]) -> "Outcome":
        r = d["route"]
        return cls(d["stage"]["to"], d["stage"].get("rule"), (r.get("queue"), r.get("team"), r.get("owner")),
                   r.get("rule", ""), d["score"].get("grade"), d["score"]["total"],
                   {f["rule"]: f["points"] for f in d["score"]["fired"]},
                   {s["id"]: s.get("due") or "" for s in d.get("slas", ())}, dict(d["score"].get("groups", {})))


def stage_label(stage: str | None) -> str:
    """The business name of a stage ("SQL", "Nurture"), never its rule id."""
    return stage_name(stage) if stage else "—"


def team_label(route: tuple[str | None, str | None, str | None]) -> str:
    """Who is accountable for a lead as a unit: its team or queue; leads sent to an account owner share one row."""
    queue, team, _ = route
    return f"team {team}" if team else (f"queue {queue}" if queue else "account owners")


def lead_facts(raw: Any) -> dict[str, str]:
    """What a report may show of a lead besides its id: the person's name, the company, and the ISO week the lead
    belongs to in the sample (the week it entered its stage, else of its newest activity, else "undated")."""
    if not isinstance(raw, dict):
        return {}
    first, last = raw.get("first_name"), raw.get("last_name")
    name = " ".join(x for x in (first, last) if isinstance(x, str) and x.strip())
    company = raw.get("company")
    company_name = company.get("name") if isinstance(company, dict) else None
    stamps = [raw.get("stage_entered_at")] if isinstance(raw.get("stage_entered_at"), str) else []
    if not stamps and isinstance(raw.get("activities"), list):
        stamps = sorted((a.get("at") for a in raw["activities"] if isinstance(a, dict) and isinstance(a.get("at"), str)),
                        reverse=True)[:1]
    week = "undated"
    if stamps:
        when = _parse_due(stamps[0])
        if when is not None:
            year, number, _ = when.isocalendar()
            week = f"{year}-W{number:02d}"
    return {"name": name, "company": company_name if isinstance(company_name, str) else "", "week": week}


def redact_name(name: str) -> str:
    """Initials only ("Olivia Hart" -> "O. H."): enough to tell examples apart, not to identify a person."""
    return " ".join(f"{part[0]}." for part in name.split() if part) if name else ""


def route_label(route: tuple[str | None, str | None, str | None]) -> str:
    queue, team, owner = route
    if team:
        return f"team {team}"
    if queue:
        return f"queue {queue}"
    return f"owner {owner}" if owner else "unassigned"


def _bucket(total: float) -> int:
    return int(math.floor(total / SCORE_BUCKET) * SCORE_BUCKET)


def _parse_due(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------- aggregate


@dataclass
class Impact:
    """Counters over every compared lead; mergeable, so chunks can be evaluated anywhere and folded in order."""

    max_examples: int = 5
    total: int = 0  # leads decided by both revisions
    errors: int = 0  # leads neither / only one revision could decide
    error_kinds: Counter = field(default_factory=Counter)  # "both" | "base only" | "head only"
    error_examples: list[dict[str, str]] = field(default_factory=list)
    changed: Counter = field(default_factory=Counter)  # kind -> leads
    guarded: int = 0  # leads that change stage or route
    stage_base: Counter = field(default_factory=Counter)
    stage_head: Counter = field(default_factory=Counter)
    stage_moves: Counter = field(default_factory=Counter)  # (from, to) -> leads
    route_moves: Counter = field(default_factory=Counter)  # (from label, to label) -> leads
    route_rule_moves: Counter = field(default_factory=Counter)  # (base rule, head rule) -> leads
    grade_moves: Counter = field(default_factory=Counter)
    score_base: Counter = field(default_factory=Counter)  # bucket -> leads
    score_head: Counter = field(default_factory=Counter)
    score_sum_base: float = 0.0
    score_sum_head: float = 0.0
    score_up: int = 0
    score_down: int = 0
    score_rules: Counter = field(default_factory=Counter)  # rule -> leads whose points from it changed
    score_rule_delta: Counter = field(default_factory=Counter)  # rule -> sum of point changes
    sla_changed: Counter = field(default_factory=Counter)  # sla id -> leads with a different due time
    sla_added: Counter = field(default_factory=Counter)
    sla_removed: Counter = field(default_factory=Counter)
    sla_earlier: Counter = field(default_factory=Counter)
    sla_later: Counter = field(default_factory=Counter)
    sla_shift_hours: Counter = field(default_factory=Counter)  # sla id -> sum of shifts (hours)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stage_order: list[str] = field(default_factory=list)  # the policies' stage order (see `stage_order`), for reports
    weeks: Counter = field(default_factory=Counter)  # (week, "base" | "head", stage) -> leads
    load_base: Counter = field(default_factory=Counter)  # ("team" | "rep", name) -> leads
    load_head: Counter = field(default_factory=Counter)
    sla_load_base: Counter = field(default_factory=Counter)  # ("team" | "rep", name, SLA id) -> clocks running
    sla_load_head: Counter = field(default_factory=Counter)
    gained: Counter = field(default_factory=Counter)  # ("team" | "rep", name) -> leads it gets from someone else
    lost: Counter = field(default_factory=Counter)
    score_points_base: Counter = field(default_factory=Counter)  # (score field, whole points) -> leads
    score_points_head: Counter = field(default_factory=Counter)

    # -------------------------------------------------------------- folding
    def _example(self, kind: str, item: dict[str, Any]) -> None:
        xs = self.examples.setdefault(kind, [])
        if len(xs) < self.max_examples:
            xs.append(item)

    def add_error(self, label: str, side: str, message: str) -> None:
        self.errors += 1
        self.error_kinds[side] += 1
        if len(self.error_examples) < self.max_examples:
            self.error_examples.append({"lead": label, "revision": side, "error": message[:300]})

    def _tally(self, side: str, o: Outcome, week: str) -> None:
        """Funnel per week, each team's and rep's leads and SLA clocks, and the exact scores (for cut-offs)."""
        load, sla_load, points = ((self.load_base, self.sla_load_base, self.score_points_base) if side == "base"
                                  else (self.load_head, self.sla_load_head, self.score_points_head))
        self.weeks[(week, side, o.stage)] += 1
        for unit in (("team", team_label(o.route)),) + ((("rep", o.route[2]),) if o.route[2] else ()):
            load[unit] += 1
            for sla_id in o.slas:
                sla_load[(*unit, sla_id)] += 1
        points[("total", math.floor(o.total))] += 1
        for group, value in o.groups.items():
            points[(group, math.floor(value))] += 1

    def add(self, label: str, lead_id: str, a: Outcome, b: Outcome, subjects: dict[str, set[str]],
            facts: dict[str, str] | None = None) -> None:
        facts = facts or {}
        self._tally("base", a, facts.get("week", "undated"))
        self._tally("head", b, facts.get("week", "undated"))
        if team_label(a.route) != team_label(b.route):
            self.lost[("team", team_label(a.route))] += 1
            self.gained[("team", team_label(b.route))] += 1
        if a.route[2] != b.route[2]:
            if a.route[2]:
                self.lost[("rep", a.route[2])] += 1
            if b.route[2]:
                self.gained[("rep", b.route[2])] += 1
        self.total += 1
        self.stage_base[a.stage] += 1
        self.stage_head[b.stage] += 1
        self.score_base[_bucket(a.total)] += 1
        self.score_head[_bucket(b.total)] += 1
        self.score_sum_base += a.total
        self.score_sum_head += b.total
        who = {"lead": lead_id, "source": label, "name": facts.get("name", ""), "company": facts.get("company", ""),
               "score_before": fmt_num(a.total), "score_after": fmt_num(b.total)}
        stage_changed = a.stage != b.stage
        route_changed = a.route != b.route
        if stage_changed or route_changed:
            self.guarded += 1
        if stage_changed:
            self.changed["stage"] += 1
            self.stage_moves[(a.stage, b.stage)] += 1
            self._example("stage", {**who, "before": stage_label(a.stage), "after": stage_label(b.stage),
                                    "because": _stage_because(a, b, subjects)})
        if route_changed:
            self.changed["route"] += 1
            la, lb = route_label(a.route), route_label(b.route)
            if la == lb:  # same team, another rep
                la, lb = f"{la} ({a.route[2]})", f"{lb} ({b.route[2]})"
            self.route_moves[(la, lb)] += 1
            self.route_rule_moves[(a.route_rule, b.route_rule)] += 1
            self._example("route", {**who, "before": la, "after": lb, "because": _route_because(a, b, subjects)})
        if a.grade != b.grade:
            self.changed["grade"] += 1
            self.grade_moves[(a.grade or "—", b.grade or "—")] += 1
            self._example("grade", {**who, "before": a.grade or "—", "after": b.grade or "—",
                                    "because": _score_because(a, b)})
        if a.total != b.total:
            self.changed["score"] += 1
            if b.total > a.total:
                self.score_up += 1
            else:
                self.score_down += 1
            for rule in set(a.fired) | set(b.fired):
                delta = b.fired.get(rule, 0) - a.fired.get(rule, 0)
                if delta:
                    self.score_rules[rule] += 1
                    self.score_rule_delta[rule] += delta
            self._example("score", {**who, "before": fmt_num(a.total), "after": fmt_num(b.total),
                                    "because": _score_because(a, b)})
        if a.slas != b.slas:
            shifts, before, after = [], [], []
            for sid in sorted(set(a.slas) | set(b.slas)):
                da, db = a.slas.get(sid), b.slas.get(sid)
                if da is None and db is not None:
                    self.sla_added[sid] += 1
                    shifts.append(f"{sid} now applies")
                elif db is None and da is not None:
                    self.sla_removed[sid] += 1
                    shifts.append(f"{sid} no longer applies")
                else:
                    ta, tb = _parse_due(da or ""), _parse_due(db or "")
                    if ta == tb and (ta is not None or da == db):
                        continue  # the same instant (a calendar in another offset says it differently)
                    self.sla_changed[sid] += 1
                    if ta and tb:
                        hours = (tb - ta).total_seconds() / 3600
                        self.sla_shift_hours[sid] += hours
                        (self.sla_later if hours > 0 else self.sla_earlier)[sid] += 1
                        shifts.append(f"{sid} due {_signed(hours)}h")
                    else:
                        shifts.append(f"{sid} due changed")
                if da:
                    before.append(f"{sid} due {da}")
                if db:
                    after.append(f"{sid} due {db}")
            if shifts:
                self.changed["sla"] += 1
                self._example("sla", {**who, "before": "; ".join(before) or "no SLA", "after": "; ".join(after) or "no SLA",
                                      "because": "; ".join(shifts)})

    def merge(self, other: "Impact") -> None:
        self.total += other.total
        self.errors += other.errors
        self.guarded += other.guarded
        self.score_sum_base += other.score_sum_base
        self.score_sum_head += other.score_sum_head
        self.score_up += other.score_up
        self.score_down += other.score_down
        for name in ("error_kinds", "changed", "stage_base", "stage_head", "stage_moves", "route_moves",
                     "route_rule_moves", "grade_moves", "score_base", "score_head", "score_rules", "score_rule_delta",
                     "sla_changed", "sla_added", "sla_removed", "sla_earlier", "sla_later", "sla_shift_hours",
                     "weeks", "load_base", "load_head", "sla_load_base", "sla_load_head", "gained", "lost",
                     "score_points_base", "score_points_head"):
            getattr(self, name).update(getattr(other, name))
        room = self.max_examples - len(self.error_examples)
        self.error_examples.extend(other.error_examples[:max(room, 0)])
        for kind, xs in other.examples.items():
            for x in xs:
                self._example(kind, x)
        if not self.stage_order:
            self.stage_order = list(other.stage_order)

    # -------------------------------------------------------------- reading
    def stage_key(self, stage: str) -> tuple[int, str]:
        """Sort key following the policies' stage order; stages neither revision declares go last, by name."""
        order = self.stage_order
        return (order.index(stage), "") if stage in order else (len(order), stage)

    @property
    def guarded_percent(self) -> float:
        return 100.0 * self.guarded / self.total if self.total else 0.0

    @property
    def mean_base(self) -> float:
        return self.score_sum_base / self.total if self.total else 0.0

    @property
    def mean_head(self) -> float:
        return self.score_sum_head / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        def pairs(c: Counter) -> list[dict[str, Any]]:
            return [{"from": k[0], "to": k[1], "leads": v} for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]

        return {
            "leads": self.total, "errors": self.errors, "error_kinds": dict(self.error_kinds),
            "error_examples": self.error_examples,
            "changed": {k: self.changed.get(k, 0) for k in KINDS},
            "changed_stage_or_route": self.guarded, "changed_stage_or_route_percent": round(self.guarded_percent, 3),
            "stages": {"base": dict(sorted(self.stage_base.items())), "head": dict(sorted(self.stage_head.items())),
                       "moves": pairs(self.stage_moves)},
            "routes": {"moves": pairs(self.route_moves), "rules": pairs(self.route_rule_moves)},
            "grades": {"moves": pairs(self.grade_moves)},
            "score": {"mean_base": round(self.mean_base, 3), "mean_head": round(self.mean_head, 3),
                      "mean_shift": round(self.mean_head - self.mean_base, 3), "up": self.score_up,
                      "down": self.score_down, "bucket": SCORE_BUCKET,
                      "histogram_base": {str(k): v for k, v in sorted(self.score_base.items())},
                      "histogram_head": {str(k): v for k, v in sorted(self.score_head.items())},
                      "rules": [{"rule": r, "leads": n, "mean_delta": round(self.score_rule_delta[r] / n, 3)}
                                for r, n in self.score_rules.most_common()]},
            "slas": [{"sla": s, "leads": self.sla_changed.get(s, 0) + self.sla_added.get(s, 0) + self.sla_removed.get(s, 0),
                      "due_changed": self.sla_changed.get(s, 0), "earlier": self.sla_earlier.get(s, 0),
                      "later": self.sla_later.get(s, 0), "now_applies": self.sla_added.get(s, 0),
                      "no_longer_applies": self.sla_removed.get(s, 0),
                      "mean_shift_hours": round(self.sla_shift_hours[s] / self.sla_changed[s], 3) if self.sla_changed.get(s) else 0}
                     for s in sorted(set(self.sla_changed) | set(self.sla_added) | set(self.sla_removed))],
            "examples": self.examples,
            "funnel": self.funnel(),
            "assignees": self.assignees(),
        }

    def funnel(self) -> dict[str, Any]:
        """Leads per stage before and after, overall and per ISO week of the sample, in the policies' stage order."""
        stages = sorted(set(self.stage_base) | set(self.stage_head), key=self.stage_key)
        weeks = sorted({w for w, _, _ in self.weeks})
        return {"stages": [{"stage": s, "label": stage_label(s), "base": self.stage_base.get(s, 0),
                            "head": self.stage_head.get(s, 0)} for s in stages],
                "weeks": [{"week": w, "stages": {s: {"base": self.weeks.get((w, "base", s), 0),
                                                     "head": self.weeks.get((w, "head", s), 0)} for s in stages}}
                          for w in weeks]}

    def assignees(self) -> dict[str, list[dict[str, Any]]]:
        """Per team (or queue) and per rep: leads and SLA clocks before and after, leads gained and lost; the ones
        a change touches first, then by leads after."""
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in ("team", "rep"):
            names = {n for k, n in (*self.load_base, *self.load_head) if k == kind}
            rows = [{"name": n, "leads_base": self.load_base.get((kind, n), 0), "leads_head": self.load_head.get((kind, n), 0),
                     "gained": self.gained.get((kind, n), 0), "lost": self.lost.get((kind, n), 0),
                     "slas": self._sla_load(kind, n)} for n in names]
            rows.sort(key=lambda r: (-(r["gained"] + r["lost"] + sum(abs(x["head"] - x["base"]) for x in r["slas"].values())),
                                     -r["leads_head"], r["name"]))
            out[kind + "s"] = rows
        return out

    def _sla_load(self, kind: str, name: str) -> dict[str, dict[str, int]]:
        """SLA id -> clocks running for this team or rep, before and after."""
        ids = sorted({k[2] for k in (*self.sla_load_base, *self.sla_load_head) if k[0] == kind and k[1] == name})
        return {i: {"base": self.sla_load_base.get((kind, name, i), 0), "head": self.sla_load_head.get((kind, name, i), 0)}
                for i in ids}

    def near(self, old: Threshold, new: Threshold) -> dict[str, Any]:
        """Leads per whole score within ±NEAR points of a cut-off's old and new value, before and after."""
        lo, hi = math.floor(min(old.value, new.value)) - NEAR, math.ceil(max(old.value, new.value)) + NEAR
        field_ = new.score
        rows = [{"points": p, "base": self.score_points_base.get((field_, p), 0), "head": self.score_points_head.get((field_, p), 0)}
                for p in range(lo, hi + 1)]

        def within(value: float, side: Counter) -> int:
            return sum(n for (f, p), n in side.items() if f == field_ and abs(p - value) <= NEAR)

        return {"gate": new.gate, "label": gate_label(new.gate), "score": field_, "op": new.op,
                "old": old.value, "new": new.value, "near_old": within(old.value, self.score_points_base),
                "near_new": within(new.value, self.score_points_head), "histogram": rows}


def gate_label(gate: str) -> str:
    """"stage:sql" -> "SQL entry", "grade:fit:A" -> "fit grade A"."""
    kind, _, rest = gate.partition(":")
    if kind == "stage":
        return f"{stage_label(rest)} entry"
    group, _, grade = rest.partition(":")
    return f"{group} grade {grade}"


def _mark(subject: str, area: str, subjects: dict[str, set[str]]) -> str:
    return f"{subject} (changed)" if subject in subjects.get(area, set()) else subject


def _stage_because(a: Outcome, b: Outcome, subjects: dict[str, set[str]]) -> str:
    parts = []
    for st in dict.fromkeys((a.stage, b.stage)):
        if st in subjects.get("stages", set()):
            parts.append(f"stages › {st} (changed)")
    rules_a, rules_b = _stage_rule_words(a.stage_rule), _stage_rule_words(b.stage_rule)
    if rules_a != rules_b:
        parts.append(f"{rules_a} → {rules_b}")
    if a.total != b.total:
        parts.append(f"score {fmt_num(a.total)} → {fmt_num(b.total)}")
    return "; ".join(parts)


def _stage_rule_words(rule: str | None) -> str:
    """"stage:sql" -> "SQL entry criteria"; other rule ids as written; none -> "no stage rule"."""
    if not rule:
        return "no stage rule"
    kind, _, rest = rule.partition(":")
    return f"{stage_label(rest)} entry criteria" if kind == "stage" and rest else rule


def _route_because(a: Outcome, b: Outcome, subjects: dict[str, set[str]]) -> str:
    parts = []
    if a.route_rule != b.route_rule:
        parts.append(f"routing › {_mark(a.route_rule, 'routing', subjects)} → {_mark(b.route_rule, 'routing', subjects)}")
    else:
        parts.append(f"routing › {_mark(a.route_rule, 'routing', subjects)}")
        team = b.route[1] or a.route[1]
        if team and team in subjects.get("teams", set()):
            parts.append(f"teams › {team} (changed)")
    if a.stage != b.stage:
        parts.append(f"stage {stage_label(a.stage)} → {stage_label(b.stage)}")
    return "; ".join(parts)


def _score_because(a: Outcome, b: Outcome) -> str:
    parts = []
    for rule in sorted(set(a.fired) | set(b.fired)):
        pa, pb = a.fired.get(rule), b.fired.get(rule)
        if pa != pb:
            parts.append(f"{rule} {fmt_num(pa) if pa is not None else '—'} → {fmt_num(pb) if pb is not None else '—'}")
    return "scoring › " + ", ".join(parts) if parts else ""


# --------------------------------------------------------------------------------------------- evaluation


class Comparer:
    """Both policy sets plus `now`: compares leads chunk by chunk into an Impact.

    Each lead is read (strict JSON, `fastjson.LeadDecoder`) and validated once when both revisions share the
    lead schema; its activity index is built once and both revisions decide from the same view in this process.
    """

    def __init__(self, base: Any, head: Any, now: datetime, changes: list[Change], max_examples: int = 5):
        from engine.fastjson import LeadDecoder

        self.base, self.head, self.now = base, head, now
        self.subjects = changed_subjects(changes)
        self.max_examples = max_examples
        self.same_schema = _schema_bytes(base) == _schema_bytes(head)
        self.kinds = base.activity_kinds | head.activity_kinds  # one activity index serves both revisions
        self.share_score = self.same_schema and base.same_scoring(head)  # then a lead is scored once, not twice
        self.loads = LeadDecoder().decode

    def _decide(self, ps: Any, view: Any, acts: Any = None, scored: Any = None) -> dict[str, Any]:
        return ps.evaluate_prepared(view, self.now, acts=acts, scored=scored).to_dict()

    def compare(self, items: list[tuple[str, str]]) -> Impact:
        from engine.scoring import activities_by_type

        out = Impact(self.max_examples)
        loads, now = self.loads, self.now
        for label, text in items:
            if text.startswith("\0"):
                out.add_error(label, "both", text[1:])
                continue
            try:
                raw = loads(text)
            except (ValueError, RecursionError) as exc:
                out.add_error(label, "both", f"malformed JSON: {exc}")
                continue
            a = b = None
            err_a = err_b = ""
            acts = scored = None
            try:
                view = self.base.prepare(raw)
                acts = activities_by_type(view, now, self.kinds)  # a function of the view and `now` only: shared
                if self.share_score:
                    scored = self.base.score_once(view, now, acts)
                a = Outcome.of(self._decide(self.base, view, acts, scored))
            except (LeadopsError, ValueError, TypeError) as exc:
                view = None
                err_a = _lead_error(exc)
            try:
                if self.same_schema and view is not None:
                    b = Outcome.of(self._decide(self.head, view, acts, scored))
                else:
                    b = Outcome.of(self._decide(self.head, self.head.prepare(raw)))
            except (LeadopsError, ValueError, TypeError) as exc:
                err_b = _lead_error(exc)
            if a is None or b is None:
                side = "both" if a is None and b is None else ("base only" if a is None else "head only")
                out.add_error(label, side, err_a or err_b)
                continue
            lead_id = raw.get("id") if isinstance(raw, dict) else None
            out.add(label, str(lead_id or label), a, b, self.subjects, lead_facts(raw))
        return out


def _lead_error(exc: Exception) -> str:
    if isinstance(exc, LeadError):
        return f"{exc.field + ': ' if exc.field else ''}{exc.message}"
    return str(exc)


def _schema_bytes(ps: Any) -> bytes | None:
    for name, data in sorted(ps.source_files.items()):
        if not name.endswith((".yaml", ".yml")):
            return data
    return None


# worker processes: each rebuilds both policy sets once from their files
_WORKER: Comparer | None = None


def _worker_init(base_src: tuple, head_src: tuple, now: datetime, changes: list[Change], max_examples: int) -> None:
    import engine

    global _WORKER
    base = engine.load_policy_files(*base_src)
    head = engine.load_policy_files(*head_src)
    _WORKER = Comparer(base, head, now, changes, max_examples)


def _worker_compare(items: list[tuple[str, str]]) -> Impact:
    assert _WORKER is not None
    return _WORKER.compare(items)


def _chunks(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stage_order(base: Any, head: Any) -> list[str]:
    """Stage ids in the policies' order: the head's pipeline then detours, then stages only the base declares
    (in the base's order)."""
    order: list[str] = []
    for ps in (head, base):
        stages = getattr(getattr(ps, "model", None), "stages", None)
        for st in (*getattr(stages, "pipeline", ()), *getattr(stages, "detours", ())):
            if st.id not in order:
                order.append(st.id)
    return order


def analyse(base: Any, head: Any, leads: Iterable[tuple[str, str]], now: datetime, changes: list[Change], *,
            max_examples: int = 5, jobs: int = 1, total: int | None = None, progress: bool | None = None) -> Impact:
    """Compare every lead; `jobs` > 1 uses that many worker processes with a bounded number of chunks in flight."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total, unit=" leads", disable=not show, file=sys.stderr, dynamic_ncols=True,
               desc="impact", mininterval=0.5)
    result = Impact(max_examples, stage_order=stage_order(base, head))
    try:
        if jobs <= 1:
            comparer = Comparer(base, head, now, changes, max_examples)
            for chunk in _chunks(leads, CHUNK):
                result.merge(comparer.compare(chunk))
                bar.update(len(chunk))
            return result
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        base_src = (base.source_files, base.root, base.revision)
        head_src = (head.source_files, head.root, head.revision)
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                                 initargs=(base_src, head_src, now, changes, max_examples)) as pool:
            window: deque = deque()
            for chunk in _chunks(leads, CHUNK):
                window.append((pool.submit(_worker_compare, chunk), len(chunk)))
                if len(window) >= jobs * 3:  # bounded memory: at most 3 chunks per worker in flight
                    fut, n = window.popleft()
                    result.merge(fut.result())
                    bar.update(n)
            while window:
                fut, n = window.popleft()
                result.merge(fut.result())
                bar.update(n)
        return result
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------- report


@dataclass
class Report:
    base_label: str
    head_label: str
    base_revision: str
    head_revision: str
    now: datetime
    changes: list[Change]
    impact: Impact | None
    lead_source: str
    max_changed: float | None
    acknowledged: bool = False
    command: str = ""  # the exact command that reproduces this report (with --now and --leads)
    handbook_changes: list[dict[str, str]] = field(default_factory=list)  # the handbook diff (SentenceChange.to_dict)
    thresholds: list[tuple[Threshold, Threshold]] = field(default_factory=list)  # (old, new) score cut-offs that moved
    redact: bool = False  # example leads show initials instead of names

    @property
    def guard_exceeded(self) -> bool:
        return (self.impact is not None and self.max_changed is not None and self.impact.total > 0
                and self.impact.guarded_percent > self.max_changed)

    @property
    def blocked(self) -> bool:
        return self.guard_exceeded and not self.acknowledged

    def headline(self) -> str:
        imp = self.impact
        n_changes = len(self.changes)
        if imp is None or imp.total == 0:
            what = f"{n_changes} policy change{'s' if n_changes != 1 else ''}"
            return f"{what}; no leads evaluated" if imp is None or imp.errors == 0 else f"{what}; no lead could be evaluated"
        parts = []
        if imp.changed["route"]:
            parts.append(f"{imp.changed['route']} of {imp.total} leads would change route")
        moves = sorted(imp.stage_moves.items(), key=lambda kv: (-kv[1], kv[0]))
        for (frm, to), n in moves[:3]:
            parts.append(f"{n} lead{'s' if n != 1 else ''} {stage_label(frm)} → {stage_label(to)}")
        if len(moves) > 3:
            rest = sum(n for _, n in moves[3:])
            parts.append(f"{rest} more stage change{'s' if rest != 1 else ''}")
        if not parts:
            parts.append(f"no lead of {imp.total} changes stage or route")
            if imp.changed["score"]:
                parts.append(f"{imp.changed['score']} change score (mean {_signed(imp.mean_head - imp.mean_base)})")
        return "; ".join(parts)

    def guard_line(self) -> str:
        imp = self.impact
        if imp is None or imp.total == 0:
            return ""
        pct = f"{imp.guarded_percent:.1f}%"
        limit = f"{fmt_num(self.max_changed)}%" if self.max_changed is not None else "none"
        if not self.guard_exceeded:
            return f"Blast radius: {imp.guarded} of {imp.total} leads ({pct}) change stage or route (limit {limit})."
        if self.acknowledged:
            return (f"Blast radius: {imp.guarded} of {imp.total} leads ({pct}) change stage or route, above the "
                    f"limit of {limit}, acknowledged.")
        return (f"Blast radius exceeded: {imp.guarded} of {imp.total} leads ({pct}) change stage or route, above "
                f"the limit of {limit}. Acknowledge it (`--acknowledge`, or the pull-request label) if this is intended.")

    def examples(self) -> dict[str, list[dict[str, Any]]]:
        """The example leads, names reduced to initials when the report is redacted."""
        imp = self.impact
        if imp is None:
            return {}
        if not self.redact:
            return imp.examples
        return {k: [{**ex, "name": redact_name(ex.get("name", ""))} for ex in xs] for k, xs in imp.examples.items()}

    def threshold_windows(self) -> list[dict[str, Any]]:
        imp = self.impact
        return [imp.near(old, new) for old, new in self.thresholds] if imp is not None and imp.total else []

    # -------------------------------------------------------------- json
    def to_dict(self) -> dict[str, Any]:
        impact = self.impact.to_dict() if self.impact else None
        if impact is not None:
            impact["examples"] = self.examples()
        return {
            "base": {"label": self.base_label, "revision": self.base_revision},
            "head": {"label": self.head_label, "revision": self.head_revision},
            "evaluated_at": self.now.isoformat(), "leads_from": self.lead_source,
            "headline": self.headline(),
            "handbook_changes": self.handbook_changes,
            "changes": [c.to_dict() for c in self.changes],
            "impact": impact,
            "thresholds": self.threshold_windows(),
            "redacted": self.redact,
            "guard_line": self.guard_line(),
            "command": self.command,
            "guard": {"max_changed_percent": self.max_changed, "exceeded": self.guard_exceeded,
                      "acknowledged": self.acknowledged, "blocked": self.blocked},
        }

    # -------------------------------------------------------------- text
    def text(self) -> str:
        out = [f"policy diff {self.base_label} → {self.head_label}", self.headline(), ""]
        if self.handbook_changes:
            from engine.handbook.render import diff_text

            out += ["the agreement in words:", diff_text(self.handbook_changes), ""]
        out.append(f"policy changes ({len(self.changes)}):")
        out.append(changes_text(self.changes))
        imp = self.impact
        if imp is not None:
            out += ["", f"impact on {imp.total} leads from {self.lead_source} at {self.now.isoformat()}"
                    + (f" ({imp.errors} could not be evaluated)" if imp.errors else "") + ":"]
            for kind in KINDS:
                out.append(f"  {kind:<6} {imp.changed.get(kind, 0):>7} leads change")
            if imp.stage_moves:
                out.append("  stage moves:")
                moves = sorted(_top(imp.stage_moves), key=lambda kv: (imp.stage_key(kv[0][0]), imp.stage_key(kv[0][1])))
                out += [f"    {stage_label(a)} → {stage_label(b)}: {n}" for (a, b), n in moves]
            if imp.route_moves:
                out.append("  route moves:")
                out += [f"    {a} → {b}: {n}" for (a, b), n in _top(imp.route_moves)]
            if imp.grade_moves:
                out.append("  grade moves:")
                out += [f"    {a} → {b}: {n}" for (a, b), n in _top(imp.grade_moves)]
            if imp.total:
                out.append(f"  score mean {imp.mean_base:.1f} → {imp.mean_head:.1f} ({_signed(imp.mean_head - imp.mean_base)}); "
                           f"{imp.score_up} up, {imp.score_down} down")
            slas = imp.to_dict()["slas"]
            for s in slas:
                out.append(f"  SLA {s['sla']}: {s['leads']} leads: {s['due_changed']} due times changed "
                           f"(mean {_signed(s['mean_shift_hours'])}h), {s['now_applies']} now apply, "
                           f"{s['no_longer_applies']} no longer apply")
            if slas:
                out.append(f"  SLA total: {imp.changed.get('sla', 0)} leads with an SLA whose due time changed, "
                           f"started or stopped applying (a lead counts once however many of its SLAs change)")
            for kind in KINDS:
                for ex in imp.examples.get(kind, []):
                    company = f", {ex['company']}" if ex.get("company") else ""
                    out.append(f"  e.g. {kind} {_who(ex, self.redact)}{company}: {ex['before']} → {ex['after']}"
                               + (f"  [{ex['because']}]" if ex["because"] else ""))
            for ex in imp.error_examples:
                out.append(f"  error {ex['lead']} ({ex['revision']}): {ex['error']}")
            if self.guard_line():
                out += ["", self.guard_line()]
        return "\n".join(out)

    # -------------------------------------------------------------- markdown
    def markdown(self) -> str:
        imp = self.impact
        icon = "⛔" if self.blocked else ("⚠️" if self.guard_exceeded else "📋")
        md = [MARKER, f"## {icon} leadops policy impact: {self.headline()}", ""]
        md.append(f"`{self.base_label}` → `{self.head_label}` · "
                  + (f"{imp.total} leads from {self.lead_source}" if imp is not None else "no leads evaluated")
                  + f" · evaluated at {self.now.isoformat()}")
        md.append("")
        if self.guard_line():
            md += [f"> **{self.guard_line()}**" if self.guard_exceeded else f"> {self.guard_line()}", ""]
        if self.handbook_changes:
            from engine.handbook.render import diff_markdown_dicts

            md += ["### The change in words", "", diff_markdown_dicts(self.handbook_changes), ""]
        if imp is not None and imp.total:
            md += self._funnel_markdown() + self._assignees_markdown() + self._thresholds_markdown()
            md += ["### What changes", "", "| what changes | leads | share |", "|---|---:|---:|"]
            names = {"stage": "Stage", "route": "Route (queue / team / rep)", "grade": "Grade", "score": "Score",
                     "sla": "SLA (due time changed, started or stopped applying)"}
            for kind in KINDS:
                n = imp.changed.get(kind, 0)
                md.append(f"| {names[kind]} | {n} | {100.0 * n / imp.total:.1f}% |")
            md.append("")
            chart = self._mermaid_moves()
            if chart:
                md += ["### Where leads move", "", chart, ""]
            if imp.stage_moves:
                md += ["### Stage changes", "", self._stage_matrix(), ""]
            if imp.route_moves:
                md += ["### Route changes", "", "| from | to | leads |", "|---|---|---:|"]
                md += [f"| {a} | {b} | {n} |" for (a, b), n in _top(imp.route_moves, 15)]
                md += ["", "| routing rule before | routing rule after | leads |", "|---|---|---:|"]
                md += [f"| `{a}` | `{b}` | {n} |" for (a, b), n in _top(imp.route_rule_moves, 15)]
                md.append("")
            if imp.grade_moves:
                md += ["### Grade changes", "", "| from | to | leads |", "|---|---|---:|"]
                md += [f"| {a} | {b} | {n} |" for (a, b), n in _top(imp.grade_moves, 15)]
                md.append("")
            md += ["### Score", "", f"Mean score {imp.mean_base:.1f} → {imp.mean_head:.1f} "
                   f"(**{_signed(imp.mean_head - imp.mean_base)}**); {imp.score_up} leads score higher, "
                   f"{imp.score_down} lower.", ""]
            if imp.changed["score"]:
                md += [self._score_chart(), ""]
                if imp.score_rules:
                    md += ["| scoring rule | leads affected | mean change |", "|---|---:|---:|"]
                    md += [f"| `{r}` | {n} | {_signed(imp.score_rule_delta[r] / n)} |" for r, n in imp.score_rules.most_common(10)]
                    md.append("")
            slas = imp.to_dict()["slas"]
            if slas:
                md += ["### SLA due times", "", "| SLA | leads | due time changed | earlier | later | mean shift | now applies "
                       "| no longer applies |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
                md += [f"| `{s['sla']}` | {s['leads']} | {s['due_changed']} | {s['earlier']} | {s['later']} "
                       f"| {_signed(s['mean_shift_hours'])}h | {s['now_applies']} | {s['no_longer_applies']} |" for s in slas]
                md += [f"| **any SLA** | **{imp.changed.get('sla', 0)}** | | | | | | |", "",
                       "<sub>leads = due time changed + now applies + no longer applies for that SLA; *any SLA* counts "
                       "each lead once however many of its SLAs change (the SLA row of the summary above).</sub>"]
                md.append("")
            if any(imp.examples.values()):
                md += ["### Examples", "", "| change | lead | company | score | before | after | rules responsible |",
                       "|---|---|---|---:|---|---|---|"]
                examples = self.examples()
                for kind in KINDS:
                    for ex in examples.get(kind, []):
                        md.append(f"| {kind} | {_cell(_who(ex, False))} | {_cell(ex.get('company', ''))} "
                                  f"| {ex.get('score_before', '')} → {ex.get('score_after', '')} "
                                  f"| {_cell(ex['before'])} | {_cell(ex['after'])} | {_cell(ex['because'])} |")
                md.append("")
        if imp is not None and imp.errors:
            md += [f"**{imp.errors} lead(s) could not be evaluated** "
                   + ", ".join(f"{v} {k}" for k, v in sorted(imp.error_kinds.items())) + ":", ""]
            md += [f"- `{ex['lead']}` ({ex['revision']}): {_cell(ex['error'])}" for ex in imp.error_examples]
            md.append("")
        md += [f"### Policy changes ({len(self.changes)})", "", changes_markdown(self.changes), ""]
        md.append(f"<sub>base `{self.base_revision}` · head `{self.head_revision}` · "
                  f"reproduce: `{self.command or 'leadops diff --base ' + self.base_label.split(' ')[0] + ' --format markdown'}`</sub>")
        return "\n".join(md) + "\n"

    def _funnel_markdown(self) -> list[str]:
        f = self.impact.funnel() if self.impact else {"stages": [], "weeks": []}
        md = ["### Funnel", "", "| stage | leads before | leads after | change |", "|---|---:|---:|---:|"]
        md += [f"| {r['label']} | {r['base']} | {r['head']} | {_signed_int(r['head'] - r['base'])} |" for r in f["stages"]]
        md.append("")
        if len(f["weeks"]) > 1 or (f["weeks"] and f["weeks"][0]["week"] != "undated"):
            labels = [r["label"] for r in f["stages"]]
            md += ["Per week of the sample (before → after):", "", "| week | " + " | ".join(labels) + " |",
                   "|---|" + "---:|" * len(labels)]
            for w in f["weeks"][:26]:
                cells = [_before_after(c["base"], c["head"]) for c in w["stages"].values()]
                md.append(f"| {w['week']} | " + " | ".join(cells) + " |")
            md.append("")
        return md

    def _assignees_markdown(self) -> list[str]:
        a = self.impact.assignees() if self.impact else {}
        md = []
        for kind, title in (("teams", "team or queue"), ("reps", "rep")):
            rows = [r for r in a.get(kind, []) if touched(r)]
            if not rows:
                continue
            if not md:
                md += ["### Impact per team and rep", ""]
            md += [f"| {title} | leads before → after | gained | lost | SLA load (clocks running) |", "|---|---:|---:|---:|---|"]
            md += [f"| {r['name']} | {r['leads_base']} → {r['leads_head']} | {r['gained']} | {r['lost']} "
                   f"| {sla_load_words(r['slas'])} |" for r in rows[:20]]
            md.append("")
        return md

    def _thresholds_markdown(self) -> list[str]:
        md = []
        for t in self.threshold_windows():
            md += [f"### Near the {t['label']} cut-off ({t['score']} score {t['op']} {fmt_num(t['old'])} → {fmt_num(t['new'])})",
                   "", f"{t['near_old']} leads within ±{NEAR} points of the old cut-off {fmt_num(t['old'])} (before); "
                   f"{t['near_new']} within ±{NEAR} of the new cut-off {fmt_num(t['new'])} (after).", "",
                   "| points | leads before | leads after |", "|---:|---|---|"]
            marks = {math.floor(t["old"]): " ← old cut-off", math.floor(t["new"]): " ← new cut-off"}
            if math.floor(t["old"]) == math.floor(t["new"]):
                marks = {math.floor(t["new"]): " ← cut-off"}
            for r in t["histogram"]:
                if r["base"] or r["head"] or r["points"] in marks:
                    md.append(f"| {r['points']}{marks.get(r['points'], '')} | {_bar(r['base'])} | {_bar(r['head'])} |")
            md.append("")
        return md

    def _stage_matrix(self) -> str:
        imp = self.impact
        assert imp is not None
        froms = sorted({a for a, _ in imp.stage_moves}, key=imp.stage_key)
        tos = sorted({b for _, b in imp.stage_moves}, key=imp.stage_key)
        lines = ["| before ↓ / after → | " + " | ".join(stage_label(t) for t in tos) + " |",
                 "|---|" + "---:|" * len(tos)]
        for f in froms:
            cells = [str(imp.stage_moves.get((f, t), "")) or "·" for t in tos]
            lines.append(f"| **{stage_label(f)}** | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _mermaid_moves(self) -> str:
        imp = self.impact
        assert imp is not None
        if not imp.stage_moves and not imp.route_moves:
            return ""
        lines = ["```mermaid", "flowchart LR"]
        ids: dict[str, str] = {}

        def node(key: str, label: str) -> str:
            if key not in ids:
                ids[key] = f"n{len(ids)}"
                safe = label.replace('"', "'")
                lines.append(f'  {ids[key]}["{safe}"]')
            return ids[key]

        edges = []
        for (a, b), n in _top(imp.stage_moves, 8):
            edges.append((node(f"sb:{a}", f"{stage_label(a)} (before)"), node(f"sh:{b}", f"{stage_label(b)} (after)"), n))
        for (a, b), n in _top(imp.route_moves, 8):
            edges.append((node(f"rb:{a}", f"{a} (before)"), node(f"rh:{b}", f"{b} (after)"), n))
        for x, y, n in edges:
            lines.append(f'  {x} -->|"{n} lead{"s" if n != 1 else ""}"| {y}')
        lines.append("```")
        return "\n".join(lines)

    def _score_chart(self) -> str:
        imp = self.impact
        assert imp is not None
        buckets = sorted(set(imp.score_base) | set(imp.score_head))
        if len(buckets) > 30:  # coarser buckets for wide spreads
            step = SCORE_BUCKET * math.ceil(len(buckets) / 30)
            merged_b: Counter = Counter()
            merged_h: Counter = Counter()
            for k, v in imp.score_base.items():
                merged_b[k // step * step] += v
            for k, v in imp.score_head.items():
                merged_h[k // step * step] += v
            buckets = sorted(set(merged_b) | set(merged_h))
            base_c, head_c, width = merged_b, merged_h, step
        else:
            base_c, head_c, width = imp.score_base, imp.score_head, SCORE_BUCKET
        labels = ", ".join(f'"{b}–{b + width - 1}"' for b in buckets)
        top = max([base_c.get(b, 0) for b in buckets] + [head_c.get(b, 0) for b in buckets] + [1])
        return "\n".join([
            "```mermaid",
            "xychart-beta",
            '  title "Leads per score band: before (bars) and after (line)"',
            f"  x-axis [{labels}]",
            f'  y-axis "leads" 0 --> {top}',
            "  bar [" + ", ".join(str(base_c.get(b, 0)) for b in buckets) + "]",
            "  line [" + ", ".join(str(head_c.get(b, 0)) for b in buckets) + "]",
            "```",
        ])


def touched(row: dict[str, Any]) -> bool:
    """A team's or rep's row of `Impact.assignees` that the change affects (leads gained or lost, SLA load moved)."""
    return bool(row["gained"] or row["lost"] or any(x["base"] != x["head"] for x in row["slas"].values()))


def sla_load_words(slas: dict[str, dict[str, int]]) -> str:
    """'sql-first-response 5 → 3; mql-acceptance 2' (changed SLAs first)."""
    items = sorted(slas.items(), key=lambda kv: (kv[1]["base"] == kv[1]["head"], kv[0]))
    return "; ".join(f"{i} {_before_after(c['base'], c['head'])}" for i, c in items) or "none"


def _who(ex: dict[str, Any], redact: bool) -> str:
    """`L-1001` Olivia Hart (icp.json): the lead as a reader recognises it."""
    name = redact_name(ex.get("name", "")) if redact else ex.get("name", "")
    return f"`{ex['lead']}`" + (f" {name}" if name else "") + f" ({ex['source']})"


def _before_after(a: int, b: int) -> str:
    return str(a) if a == b else f"{a} → {b}"


def _signed_int(n: int) -> str:
    return f"+{n}" if n > 0 else (f"−{-n}" if n < 0 else "±0")


def _bar(n: int) -> str:
    return ("█" * min(n, 40) + (" …" if n > 40 else "") + f" {n}") if n else "·"


def _top(c: Counter, n: int = 10) -> list[tuple[Any, int]]:
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _signed(x: float) -> str:
    if abs(x) < 0.05:
        return "±0"
    return f"{'+' if x > 0 else '−'}{abs(x):.1f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") or "—"

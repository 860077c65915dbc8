"""Score groups: condition rules, activity rules with windows, limits and decay, caps, floors and grades.

Semantics (documented in the README and relied on by scenarios):
* A condition rule adds its points once when `when` is true.
* An activity rule looks at the lead's activities of its type that happened at or before `now` (future
  timestamps are ignored) and no longer ago than `within`, newest first, keeps those matching `where`, counts
  at most `limit` of them and adds `points` for each, multiplied by `factor` once for every full `every` of
  the activity's age when the rule (or its group) decays. Rule points are rounded to 2 decimals.
* A group's score is the sum of its rules, clamped to [floor, cap]. The floor keeps negative points and decay
  from trapping a lead below re-qualification. The total is the sum of groups, clamped to the total's limits.
* A group's grade is the first grade whose `min` the group score reaches; the lead's grade joins the grades of
  the groups named in `grade` ("A" + "1" -> "A1").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from engine.errors import EvaluationError
from engine.model import ScoreGroup, ScoreRule, Scoring
from engine.trace import Trace, describe_values


def number(x: float) -> float | int:
    """Scores are printed as integers when they are whole numbers (65, not 65.0)."""
    x = round(x, 2)
    return int(x) if x == int(x) else x


def clamp(x: float, floor: float | None, cap: float | None) -> float:
    if cap is not None and x > cap:
        x = cap
    if floor is not None and x < floor:
        x = floor
    return x


def activities_by_type(lead: Mapping[str, Any], now: datetime) -> dict[str, list[Mapping[str, Any]]]:
    """Index a lead's past activities by type, newest first (done once per lead, shared by every rule)."""
    index: dict[str, list[Mapping[str, Any]]] = {}
    acts = lead.get("activities")
    if not acts:
        return index
    for a in acts:
        at = a["at"]
        if isinstance(at, datetime) and at <= now:
            index.setdefault(a["type"], []).append(a)
    for items in index.values():
        if len(items) > 1:
            items.sort(key=lambda a: a["at"], reverse=True)
    return index


class GroupRunner:
    """One score group in runnable form: its rules split by kind, compiled functions bound once."""

    def __init__(self, group: ScoreGroup):
        self.group = group
        self.conditions: list[tuple[ScoreRule, Callable[..., Any]]] = [
            (r, r.when.fn) for r in group.rules if r.when is not None
        ]
        self.activity_rules = [r for r in group.rules if r.is_activity_rule]
        self.grades = [(g.grade, g.min) for g in group.grades]

    def grade_of(self, points: float) -> str | None:
        for grade, minimum in self.grades:
            if minimum is None or points >= minimum:
                return grade
        return None


class ScoreEngine:
    """Evaluates every score group of a policy for one lead."""

    def __init__(self, scoring: Scoring):
        self.scoring = scoring
        self.groups = [GroupRunner(g) for g in scoring.groups]

    def evaluate(self, lead: Mapping[str, Any], now: datetime, acts: dict[str, list[Any]],
                 trace: Trace | None, warnings: list[dict[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (score section of the decision, score view for later expressions)."""
        fired: list[dict[str, Any]] = []
        groups: dict[str, float | int] = {}
        view: dict[str, Any] = {}
        total = 0.0
        for runner in self.groups:
            gid = runner.group.id
            points = 0.0
            for rule, fn in runner.conditions:
                try:
                    hit = fn(lead, now)
                except EvaluationError as exc:
                    warnings.append({"rule": rule.id, "message": exc.message})
                    hit = False
                if hit:
                    points += rule.points
                    fired.append({"rule": rule.id, "group": gid, "points": number(rule.points),
                                  "why": " ".join(rule.when.source.split())})
                if trace is not None:
                    trace.rule("scoring", rule.id, bool(hit), rule.points if hit else 0,
                               "condition true" if hit else "condition false",
                               describe_values(rule.when.compiled, lead, now), group=gid)
            for rule in runner.activity_rules:
                got, count, considered = self.activity_points(rule, lead, now, acts, warnings)
                if count:
                    points += got
                    fired.append({"rule": rule.id, "group": gid, "points": number(got),
                                  "why": self.activity_why(rule, count)})
                if trace is not None:
                    trace.rule("scoring", rule.id, bool(count), number(got),
                               self.activity_why(rule, count) if count else
                               f"no {rule.activity} activity matched ({considered} of that type considered)",
                               {}, group=gid)
            clamped = clamp(points, runner.group.floor, runner.group.cap)
            if trace is not None and clamped != points:
                trace.note("scoring", gid, f"group {gid}: {number(points)} clamped to {number(clamped)} "
                           f"(floor {runner.group.floor}, cap {runner.group.cap})")
            groups[gid] = number(clamped)
            view[gid] = groups[gid]
            view[f"{gid}_grade"] = runner.grade_of(clamped)
            total += clamped
        total = clamp(total, self.scoring.total_floor, self.scoring.total_cap)
        grade_parts = [view.get(f"{g}_grade") for g in self.scoring.grade_groups]
        grade = "".join(p for p in grade_parts if p) if grade_parts and all(grade_parts) else None
        section = {"total": number(total), "groups": groups, "grade": grade, "fired": fired}
        view["total"] = section["total"]
        view["grade"] = grade
        return section, view

    @staticmethod
    def activity_points(rule: ScoreRule, lead: Mapping[str, Any], now: datetime, acts: dict[str, list[Any]],
                        warnings: list[dict[str, str]]) -> tuple[float, int, int]:
        """(points, activities counted, activities of the type considered) for one activity rule."""
        candidates = acts.get(rule.activity or "", ())
        where = rule.where.fn if rule.where is not None else None
        within = rule.within
        limit = rule.limit
        decay = rule.decay
        points = 0.0
        count = 0
        considered = 0
        for a in candidates:
            age = now - a["at"]
            if within is not None and age > within:
                break  # newest first: every later activity is older still
            considered += 1
            if where is not None:
                try:
                    if not where(lead, now, None, a):
                        continue
                except EvaluationError as exc:
                    warnings.append({"rule": rule.id, "message": exc.message})
                    continue
            got = rule.points
            if decay is not None:
                got *= decay.factor ** (age // decay.every)
            points += got
            count += 1
            if limit is not None and count >= limit:
                break
        return round(points, 2), count, considered

    @staticmethod
    def activity_why(rule: ScoreRule, count: int) -> str:
        parts = [f"{count} × {rule.activity}"]
        if rule.where is not None:
            parts.append(f"where {' '.join(rule.where.source.split())}")
        if rule.within is not None:
            parts.append(f"in the last {_fmt_span(rule.within)}")
        if rule.limit is not None:
            parts.append(f"(at most {rule.limit} counted)")
        if rule.decay is not None:
            parts.append(f"decayed ×{rule.decay.factor} per {_fmt_span(rule.decay.every)}")
        return " ".join(parts)


def _fmt_span(td: Any) -> str:
    seconds = int(td.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"

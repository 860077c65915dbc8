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
from operator import itemgetter
from typing import Any

from engine.expr import RUNTIME_GLOBALS, CompiledExpr
from engine.expr.compile import PARAMETERS
from engine.model import ScoreGroup, ScoreRule, Scoring
from engine.trace import Trace, describe_values, guarded


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


def activities_by_type(lead: Mapping[str, Any], now: datetime,
                       kinds: frozenset[str] | None = None) -> dict[str, list[Mapping[str, Any]]]:
    """Index a lead's past activities by type, newest first (done once per lead, shared by every rule).

    `kinds`: only these types (`PolicySet.activity_kinds`, what the rules count); None: every type. Leads carry
    many activities no rule counts (opens, views), and sorting them was a tenth of a decision."""
    index: dict[str, list[Mapping[str, Any]]] = {}
    acts = lead.get("activities")
    if not acts or (kinds is not None and not kinds):
        return index
    for a in acts:
        kind = a["type"]
        if kinds is not None and kind not in kinds:
            continue
        at = a["at"]
        if isinstance(at, datetime) and at <= now:
            items = index.get(kind)
            if items is None:
                index[kind] = [a]
            else:
                items.append(a)
    for items in index.values():
        if len(items) > 1:
            items.sort(key=_by_time, reverse=True)
    return index


_by_time = itemgetter("at")


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
    """Evaluates every score group of a policy for one lead.

    Without a trace, one generated function (`build_fast_scorer`) scores every group; with a trace the rules
    are walked one by one so each can be explained. Both give the same decision, byte for byte.
    """

    def __init__(self, scoring: Scoring):
        self.scoring = scoring
        self.groups = [GroupRunner(g) for g in scoring.groups]
        self.fast = build_fast_scorer(scoring)

    def evaluate(self, lead: Mapping[str, Any], now: datetime, acts: dict[str, list[Any]],
                 trace: Trace | None, warnings: list[dict[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (score section of the decision, score view for later expressions)."""
        if trace is None:
            return self.fast(lead, now, acts, warnings)
        fired: list[dict[str, Any]] = []
        groups: dict[str, float | int] = {}
        view: dict[str, Any] = {}
        total = 0.0
        for runner in self.groups:
            gid = runner.group.id
            points = 0.0
            for rule, fn in runner.conditions:
                hit = guarded(fn, rule.id, warnings, lead, now)
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
            groups[gid] = number(clamped)  # grades and the total use the group score as shown (rounded)
            view[gid] = groups[gid]
            view[f"{gid}_grade"] = runner.grade_of(groups[gid])
            total += groups[gid]
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
            if where is not None and not guarded(where, rule.id, warnings, lead, now, None, a):
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


# ---------------------------------------------------------------------------------------------------------
# The fast path: the whole scoring policy as one generated Python function.
#
# Each rule's condition is the expression's own generated source (`CompiledExpr.py`, see `_fragment`)
# inlined into one function, with the rule's constants (points, window, limit, decay, the `why` text) bound
# as literals or globals. Only names that are expression parameters, runtime helpers (`engine.expr.
# RUNTIME_GLOBALS`, empty builtins) or this template's own `lo_*` locals exist in it. When an inlined
# expression raises, the rule's own compiled function is run again to raise (or warn about) exactly the error
# the rule-by-rule path reports, so warnings and errors are identical too.


def _rerun_condition(rule: ScoreRule, lead: Any, now: datetime, warnings: list[dict[str, str]]) -> Any:
    return guarded(rule.when.fn, rule.id, warnings, lead, now)


def _rerun_where(rule: ScoreRule, lead: Any, now: datetime, activity: Any, warnings: list[dict[str, str]]) -> Any:
    return guarded(rule.where.fn, rule.id, warnings, lead, now, None, activity)


def _fragment(expr: Any) -> str:
    """A rule's expression source, as generated and verified by `engine.expr.compile_expression`.

    `CompiledExpr.py` only comes out of `compile_expression`, which checked the tree against the sandbox
    whitelist and ran `_verify_generated` on exactly this text (a single-line expression over parameters,
    runtime helpers, literals and operators); parenthesised, it stays one expression in the template.
    """
    compiled = expr.compiled
    if not isinstance(compiled, CompiledExpr) or "\n" in compiled.py:
        raise ValueError(f"not a compiled expression: {expr!r}")
    return "(" + compiled.py + ")"


def _emit_clamp(emit: Any, name: str, floor: Any, cap: Any) -> None:
    """Generated `clamp(name, floor, cap)`: the cap first, then the floor (as `clamp` does)."""
    for bound, op in ((cap, ">"), (floor, "<")):
        if bound is not None:
            emit(f"    if {name} {op} {_lit(bound)}:")
            emit(f"        {name} = {_lit(bound)}")


def _lit(value: Any) -> str:
    if value is None or type(value) in (bool, int, str):
        return repr(value)
    if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
        return repr(value)
    raise ValueError(f"cannot inline {value!r}")


def build_fast_scorer(scoring: Scoring) -> Callable[..., tuple[dict[str, Any], dict[str, Any]]]:
    """One function (lead, now, acts, warnings) -> (score section, score view), for decisions without a trace."""
    namespace: dict[str, Any] = {
        "__builtins__": {}, **RUNTIME_GLOBALS,
        "lo_round": round, "lo_number": number, "lo_str": str, "lo_all": all, "lo_Exception": Exception,
        "lo_rerun_condition": _rerun_condition, "lo_rerun_where": _rerun_where,
    }
    consts: list[Any] = []

    def bind(value: Any) -> str:
        name = f"lo_k{len(consts)}"
        consts.append(value)
        namespace[name] = value
        return name

    code = [
        "def lo_score(lead, now, lo_acts, lo_warnings):",
        "    score = activity = stage = None",
        "    lo_fired = []",
        "    lo_append = lo_fired.append",
        "    lo_groups = {}",
        "    lo_view = {}",
        "    lo_total = 0.0",
    ]
    emit = code.append
    for group in scoring.groups:
        gid = _lit(group.id)
        emit("    lo_points = 0.0")
        for rule in group.rules:
            if rule.when is None:
                continue
            r = bind(rule)
            why = " ".join(rule.when.source.split())
            emit("    try:")
            emit(f"        lo_hit = {_fragment(rule.when)}")
            emit("    except lo_Exception:")
            emit(f"        lo_hit = lo_rerun_condition({r}, lead, now, lo_warnings)")
            emit("    if lo_hit:")
            emit(f"        lo_points += {_lit(rule.points)}")
            emit(f"        lo_append({{'rule': {_lit(rule.id)}, 'group': {gid}, 'points': {_lit(number(rule.points))}, "
                 f"'why': {_lit(why)}}})")
        for rule in group.rules:
            if not rule.is_activity_rule:
                continue
            r = bind(rule)
            tail = ScoreEngine.activity_why(rule, 0)[1:]  # "0 × type ..." without the count
            emit(f"    lo_items = lo_acts.get({_lit(rule.activity or '')})")
            emit("    if lo_items:")
            emit("        lo_got = 0.0")
            emit("        lo_n = 0")
            emit("        for activity in lo_items:")
            emit("            lo_age = now - activity['at']")
            if rule.within is not None:
                emit(f"            if lo_age > {bind(rule.within)}:")
                emit("                break")
            if rule.where is not None:
                emit("            try:")
                emit(f"                lo_ok = {_fragment(rule.where)}")
                emit("            except lo_Exception:")
                emit(f"                lo_ok = lo_rerun_where({r}, lead, now, activity, lo_warnings)")
                emit("            if not lo_ok:")
                emit("                continue")
            if rule.decay is not None:
                emit(f"            lo_got += {_lit(rule.points)} * {_lit(rule.decay.factor)} ** (lo_age // {bind(rule.decay.every)})")
            else:
                emit(f"            lo_got += {_lit(rule.points)}")
            emit("            lo_n += 1")
            if rule.limit is not None:
                emit(f"            if lo_n >= {_lit(rule.limit)}:")
                emit("                break")
            emit("        if lo_n:")
            emit("            lo_got = lo_round(lo_got, 2)")
            emit("            lo_points += lo_got")
            emit(f"            lo_append({{'rule': {_lit(rule.id)}, 'group': {gid}, 'points': lo_number(lo_got), "
                 f"'why': lo_str(lo_n) + {_lit(tail)}}})")
            emit("        activity = None")
        emit("    lo_clamped = lo_points")
        _emit_clamp(emit, "lo_clamped", group.floor, group.cap)
        emit("    lo_g = lo_number(lo_clamped)")
        emit(f"    lo_groups[{gid}] = lo_g")
        emit(f"    lo_view[{gid}] = lo_g")
        grade_expr = "None"
        for grade in reversed(group.grades):
            if grade.min is None:
                grade_expr = _lit(grade.grade)
            else:
                grade_expr = f"({_lit(grade.grade)} if lo_g >= {_lit(grade.min)} else {grade_expr})"
        emit(f"    lo_view[{_lit(group.id + '_grade')}] = {grade_expr}")
        emit("    lo_total += lo_g")
    _emit_clamp(emit, "lo_total", scoring.total_floor, scoring.total_cap)
    parts = [f"lo_view.get({_lit(g + '_grade')})" for g in scoring.grade_groups]
    if parts:
        emit(f"    lo_parts = ({', '.join(parts)},)")
        emit("    lo_grade = ''.join([lo_p for lo_p in lo_parts if lo_p]) if lo_all(lo_parts) else None")
    else:
        emit("    lo_grade = None")
    emit("    lo_t = lo_number(lo_total)")
    emit("    lo_view['total'] = lo_t")
    emit("    lo_view['grade'] = lo_grade")
    emit("    return {'total': lo_t, 'groups': lo_groups, 'grade': lo_grade, 'fired': lo_fired}, lo_view")
    return exec_generated(code, namespace, "<leadops-scoring>", "lo_score")


def exec_generated(code: list[str], namespace: dict[str, Any], filename: str, name: str) -> Callable[..., Any]:
    """Compile generated source lines into `namespace` and return the function `name` (its text as `.source`).

    Shared by the scoring, routing and stage fast paths: their namespaces hold only runtime helpers, bound
    constants and `lo_*` names, never an expression parameter (checked), and builtins are empty.
    """
    source = "\n".join(code) + "\n"
    assert not set(namespace) & set(PARAMETERS)
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - verified fragments only
    fn = namespace[name]
    fn.source = source  # type: ignore[attr-defined]
    return fn

"""Semantic checks over the policy model: one function per concern, each reporting through `report`.

The JSON Schemas catch shapes; these catch meaning: references to stages, teams, queues and calendars that do
not exist, routing without a fallback, rules no lead can reach, grade ladders that do not add up. Codes:

REF001 duplicate id (reported by the compiler while building the model)
REF002 unknown stage          REF003 unknown team          REF004 unknown queue
REF005 unknown calendar       REF007 unknown score group   REF008 unknown routing rule
REF009 unknown owner group    REF010 unknown activity type (both reported by the compiler)
RULE001 routing has no fallback                RULE002 fallback misplaced or malformed
RULE003 rule unreachable after a catch-all     RULE004 grade ladder malformed
RULE005 floor above cap                        RULE006 transition malformed
RULE007 escalation ladder out of order        RULE008 out-of-office range invalid (compiler)
RULE009 minimum attempts on an SLA that is not decided by stage alone
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Iterable

from engine.errors import Location
from engine.model import PolicyModel

Report = Callable[[str, str, Location, str], None]


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """"did you mean 'x'? " for the option closest to `word`, or "". Case never hides a match: ids are
    lower-case, and an author who writes `SQL` for the stage `sql` is told so (case-insensitive comparison)."""
    by_folded: dict[str, str] = {}
    for option in options:
        by_folded.setdefault(str(option).casefold(), str(option))
    folded = str(word).casefold()
    if folded in by_folded:
        return f"did you mean '{by_folded[folded]}'? " if by_folded[folded] != word else ""
    close = difflib.get_close_matches(folded, list(by_folded), n=1)
    return f"did you mean '{by_folded[close[0]]}'? " if close else ""


def _known(report: Report, code: str, what: str, ident: str, options: Iterable[str], loc: Location) -> bool:
    options = list(options)
    if ident in options:
        return True
    report(code, f"unknown {what} '{ident}'", loc,
           did_you_mean(ident, options) + f"known {what}s: {', '.join(sorted(options)) or '(none)'}")
    return False


def check_references(model: PolicyModel, report: Report) -> None:
    check_stage_references(model, report)
    check_team_references(model, report)
    check_sla_references(model, report)
    check_scoring_references(model, report)


def check_rules(model: PolicyModel, report: Report) -> None:
    check_fallback(model, report)
    check_unreachable_routes(model, report)
    check_grades(model, report)
    check_caps(model, report)
    check_escalations(model, report)
    check_attempt_gates(model, report)


def check_stage_references(model: PolicyModel, report: Report) -> None:
    stages = model.stages.by_id()
    _known(report, "REF002", "stage", model.stages.initial, stages, model.stages.initial_location)
    for stage in stages.values():
        seen: set[str] = set()
        for t in stage.transitions:
            if not _known(report, "REF002", "stage", t.to, stages, t.location):
                continue
            if t.to == stage.id:
                report("RULE006", f"stage '{stage.id}' has a transition to itself", t.location,
                       "remove it: staying in a stage is not a transition")
            if t.to in seen:
                report("RULE006", f"stage '{stage.id}' declares the transition to '{t.to}' twice", t.location,
                       "keep one transition per target stage")
            seen.add(t.to)
            target = stages[t.to]
            if t.auto and target.entry is None:
                report("RULE006", f"auto transition '{stage.id}' -> '{t.to}' can never happen: '{t.to}' has no entry criteria",
                       t.location, f"give '{t.to}' an entry expression or drop 'auto'")
            elif t.auto and (target.manual or target.pipeline_index is None or stage.pipeline_index is not None):
                report("RULE006", f"auto transition '{stage.id}' -> '{t.to}' is not allowed: 'auto' re-enters the "
                       "pipeline from a detour, into a stage that is not manual", t.location,
                       "drop 'auto' (the move then needs a transition request) or point it at a non-manual pipeline stage")
        if stage.pipeline_index is not None and stage.entry is None and not stage.manual and stage.pipeline_index > 0:
            report("RULE006", f"pipeline stage '{stage.id}' has no entry criteria and is not manual", stage.location,
                   "add `entry: <expression>` or `manual: true` (entered only by a transition request)")


def calendar_ids(model: PolicyModel) -> set[str]:
    """Calendars declared in calendars.yaml, including invalid ones (already reported, so not 'unknown')."""
    return set(model.calendars) | set(model.broken_calendars)


def check_team_references(model: PolicyModel, report: Report) -> None:
    calendars = calendar_ids(model)
    for team in model.teams.values():
        _known(report, "REF005", "calendar", team.calendar, calendars, team.location)
    for queue in model.queues.values():
        if queue.calendar:
            _known(report, "REF005", "calendar", queue.calendar, calendars, queue.location)
    for rule in model.routing:
        if rule.target_kind == "team":
            _known(report, "REF003", "team", rule.target, model.teams, rule.location)
        elif rule.target_kind == "queue":
            _known(report, "REF004", "queue", rule.target, model.queues, rule.location)


def check_sla_references(model: PolicyModel, report: Report) -> None:
    stages = model.stages.by_id()
    routes = [r.id for r in model.routing]
    calendars = calendar_ids(model)
    _known(report, "REF005", "calendar", model.default_calendar, calendars, model.default_calendar_location)
    for sla in model.slas:
        if sla.calendar != "assignee":
            _known(report, "REF005", "calendar", sla.calendar, calendars, sla.location)
        for s in sla.stages:
            _known(report, "REF002", "stage", s, stages, sla.location)
        for r in sla.routes:
            _known(report, "REF008", "routing rule", r, routes, sla.location)
        if sla.attempts:
            for s in sla.attempts.before:
                _known(report, "REF002", "stage", s, stages, sla.location)
        for e in sla.escalations:
            kind, _, ident = e.to.partition(":")
            if kind == "queue":
                _known(report, "REF004", "queue", ident, model.queues, e.location)
            elif kind == "team":
                _known(report, "REF003", "team", ident, model.teams, e.location)


def check_scoring_references(model: PolicyModel, report: Report) -> None:
    groups = [g.id for g in model.scoring.groups]
    locations = model.scoring.grade_locations or tuple(model.scoring.location for _ in model.scoring.grade_groups)
    for g, loc in zip(model.scoring.grade_groups, locations):
        _known(report, "REF007", "score group", g, groups, loc)
        if g in groups and not next(x for x in model.scoring.groups if x.id == g).grades:
            report("RULE004", f"grade is built from group '{g}', which has no grades", loc,
                   f"add `grades:` to group '{g}' or remove it from `grade:`")


def check_fallback(model: PolicyModel, report: Report) -> None:
    rules = model.routing
    fallbacks = [r for r in rules if r.fallback]
    if not fallbacks:
        loc = rules[-1].location if rules else Location()
        report("RULE001", "routing has no fallback rule: a lead matching no rule would be orphaned", loc,
               "end routing.yaml with a rule that has `fallback: true` and `assign: {queue: <triage queue>}`")
        return
    for r in fallbacks:
        if r is not rules[-1]:
            report("RULE002", f"fallback rule '{r.id}' is not the last rule; the rules after it never run", r.location,
                   "move the fallback rule to the end of the list (there can be only one)")
        if r.when is not None:
            report("RULE002", f"fallback rule '{r.id}' has a `when`; a fallback must catch every lead", r.location,
                   "remove `when` from the fallback rule")
        if r.target_kind != "queue":
            report("RULE002", f"fallback rule '{r.id}' assigns to a {r.target_kind}; it must assign to a queue",
                   r.location, "a queue is always available; teams and owners can be away")


def check_unreachable_routes(model: PolicyModel, report: Report) -> None:
    catch_all = None
    for r in model.routing:
        if catch_all is not None and not r.fallback:
            report("RULE003", f"routing rule '{r.id}' is unreachable: '{catch_all.id}' before it matches every lead",
                   r.location, f"move '{r.id}' above '{catch_all.id}' or narrow '{catch_all.id}'s condition")
            continue
        always = r.when is None or _constant_true(r.when)
        if always and not r.fallback and r.target_kind == "queue":
            catch_all = r


def _constant_true(expr: object) -> bool:
    """Whether a compiled condition is the constant True (a catch-all), judged on its syntax tree."""
    tree = getattr(getattr(expr, "compiled", None), "tree", None)
    return isinstance(tree, ast.Expression) and isinstance(tree.body, ast.Constant) and tree.body.value is True


def check_grades(model: PolicyModel, report: Report) -> None:
    for g in model.scoring.groups:
        if not g.grades:
            continue
        mins = [x.min for x in g.grades]
        if mins[-1] is not None or any(m is None for m in mins[:-1]):
            report("RULE004", f"group '{g.id}': the last grade (and only the last) must have no `min`", g.location,
                   "grades go from best to worst; the last one catches every score below the others")
            continue
        numbers = [m for m in mins if m is not None]
        if numbers != sorted(numbers, reverse=True) or len(set(numbers)) != len(numbers):
            report("RULE004", f"group '{g.id}': grade thresholds must strictly decrease (got {numbers})", g.location,
                   "list grades from the highest `min` to the lowest")
        names = [x.grade for x in g.grades]
        if len(set(names)) != len(names):
            report("RULE004", f"group '{g.id}': a grade name is used twice", g.location, "give each grade its own name")


def check_caps(model: PolicyModel, report: Report) -> None:
    s = model.scoring
    for g in s.groups:
        if g.cap is not None and g.floor is not None and g.floor > g.cap:
            report("RULE005", f"group '{g.id}': floor {g.floor} is above cap {g.cap}", g.location,
                   "the floor is the lowest score a group can have; it must not exceed the cap")
    if s.total_cap is not None and s.total_floor is not None and s.total_floor > s.total_cap:
        report("RULE005", f"total floor {s.total_floor} is above total cap {s.total_cap}", s.location,
               "lower the floor or raise the cap")


def check_escalations(model: PolicyModel, report: Report) -> None:
    for sla in model.slas:
        last = None
        for e in sla.escalations:
            at = e.offset(sla.respond_within)
            if last is not None and at < last:
                report("RULE007", f"SLA '{sla.id}': escalation at {e.text} comes before the previous step", e.location,
                       "order escalation steps from earliest to latest")
            last = at


def check_attempt_gates(model: PolicyModel, report: Report) -> None:
    """Minimum attempts gate requested transitions, which are decided before routing: the SLA that carries them
    must apply by stage alone (no `routes`, no `when`), or the gate would depend on what it cannot know yet."""
    for sla in model.slas:
        if sla.attempts is None:
            continue
        if not sla.stages or sla.routes or sla.when is not None:
            report("RULE009", f"SLA '{sla.id}' sets minimum attempts but applies by "
                   f"{'routes or a condition' if sla.stages else 'no stage'}", sla.location,
                   "put `attempts` on an SLA whose applies_to names only stages (e.g. {stages: [sql]})")

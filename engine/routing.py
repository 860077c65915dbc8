"""Routing: ordered first-match rules to a queue, a team or a named owner, with availability and fallback.

Distribution inside a team uses weighted rendezvous hashing (highest random weight): each available member
scores -weight / ln(u), where u in (0, 1) comes from SHA-256 of the lead id and the member id, and the highest
score wins. It is deterministic (any decision replays from the lead id and the roster), honours weights in
expectation, and is stable: when a member goes out of office only that member's leads move, everyone else's
assignment stays put (plain modulo hashing would reshuffle the whole team).

Availability: inactive members never receive leads; a member out of office on `now`'s date in the team's time
zone is skipped. A team with nobody available, or an owner who is away, does not match: routing falls through
to the next rule. The fallback rule (mandatory, validated) always assigns to a queue.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from engine.calendar import BusinessCalendar
from engine.errors import EvaluationError
from engine.expr import MISSING
from engine.expr.sandbox import encodable_text
from engine.model import Member, Queue, RouteRule, Team
from engine.trace import Trace, describe_values, guarded

TWO_64 = float(2**64)


@lru_cache(maxsize=65536)
def _unit(lead_id: str, member_id: str) -> float:
    digest = hashlib.sha256(f"{lead_id}\x00{member_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / TWO_64


def rendezvous_pick(lead_id: str, members: list[Member]) -> Member:
    """The member with the highest weighted rendezvous score for this lead (ties broken by member id)."""
    best = None
    best_key: tuple[float, str] | None = None
    prefix = lead_id + "\x00"
    for m in members:
        digest = _sha256((prefix + m.id).encode()).digest()  # == _unit(lead_id, m.id), without the cache
        key = (-m.weight / _log((int.from_bytes(digest[:8], "big") + 0.5) / TWO_64), m.id)
        if best_key is None or key > best_key:
            best, best_key = m, key
    assert best is not None
    return best


_sha256 = hashlib.sha256
_log = math.log


def is_available(member: Member, today: date) -> bool:
    if not member.active:
        return False
    return not any(a.start <= today <= a.end for a in member.out_of_office)


@dataclass(frozen=True)
class Assignment:
    """Where a lead goes, plus what SLAs need to know about the assignee."""

    section: dict[str, Any]
    calendar: str | None
    manager: str | None


class RouteEngine:
    def __init__(self, rules: tuple[RouteRule, ...], teams: dict[str, Team], queues: dict[str, Queue],
                 calendars: dict[str, BusinessCalendar]):
        self.rules = rules
        self.teams = teams
        self.queues = queues
        self.zones = {t.id: ZoneInfo(calendars[t.calendar].timezone) for t in teams.values() if t.calendar in calendars}
        self._available: dict[tuple[Any, ...], tuple[date, list[Member]]] = {}
        self.member_team: dict[str, Team] = {}
        for t in teams.values():
            for m in t.members:
                self.member_team.setdefault(m.id, t)
        self.fast = build_fast_router(self)

    def today(self, team: Team, now: datetime) -> date:
        zone = self.zones.get(team.id)
        return now.astimezone(zone).date() if zone else now.date()

    def available(self, team: Team, now: datetime) -> tuple[date, list[Member]]:
        """(today in the team's zone, the team's available members): the same for every lead at `now`."""
        key = (team.id, now, now.fold)
        hit = self._available.get(key)
        if hit is None:
            today = self.today(team, now)
            hit = (today, [m for m in team.members if is_available(m, today)])
            if len(self._available) >= 1024:
                self._available.clear()
            self._available[key] = hit
        return hit

    def evaluate(self, lead: Mapping[str, Any], now: datetime, score: Mapping[str, Any], stage: str,
                 trace: Trace | None, warnings: list[dict[str, str]]) -> Assignment:
        lead_id = str(lead["id"])
        if trace is None:
            return self.fast(lead, now, score, stage, lead_id, warnings)
        for rule in self.rules:
            if rule.when is not None:
                if not guarded(rule.when.fn, rule.id, warnings, lead, now, score, None, stage):
                    if trace is not None:
                        trace.rule("routing", rule.id, False, None, "condition false",
                                   describe_values(rule.when.compiled, lead, now, score, None, stage))
                    continue
            assignment, why_not = self.assign(rule, lead, lead_id, now, score, stage, warnings)
            if trace is not None:
                trace.rule("routing", rule.id, assignment is not None, None,
                           why_not or ("fallback: no earlier rule matched" if rule.fallback else "condition true"),
                           describe_values(rule.when.compiled, lead, now, score, None, stage) if rule.when else {})
            if assignment is not None:
                return assignment
        raise AssertionError("routing has a validated fallback rule; it cannot fall off the end")

    def assign(self, rule: RouteRule, lead: Mapping[str, Any], lead_id: str, now: datetime,
               score: Mapping[str, Any], stage: str, warnings: list[dict[str, str]]) -> tuple[Assignment | None, str]:
        section = {"rule": rule.id, "queue": None, "team": None, "owner": None, "fallback": rule.fallback}
        if rule.target_kind == "queue":
            q = self.queues[rule.target]
            section["queue"] = q.id
            return Assignment(section, q.calendar, q.manager), ""
        if rule.target_kind == "team":
            team = self.teams[rule.target]
            today, available = self.available(team, now)
            if not available:
                return None, f"condition true but nobody in team '{team.id}' is available on {today}"
            member = rendezvous_pick(lead_id, available)
            section.update(team=team.id, owner=member.id)
            return Assignment(section, team.calendar, team.manager), ""
        try:
            owner = rule.owner.fn(lead, now, score, None, stage)
            if owner is MISSING or owner is None or owner == "":
                return None, "condition true but the owner expression gave no owner"
            owner = encodable_text(str(owner))
        except EvaluationError as exc:
            warnings.append({"rule": rule.id, "message": exc.message})
            return None, f"owner expression failed: {exc.message}"
        team = self.member_team.get(owner)
        if team is not None:
            member = next(m for m in team.members if m.id == owner)
            today = self.today(team, now)
            if not is_available(member, today):
                return None, f"owner '{owner}' is not available on {today} (inactive or out of office)"
            section.update(team=team.id, owner=owner)
            return Assignment(section, team.calendar, team.manager), ""
        section["owner"] = owner
        return Assignment(section, None, None), ""


# ---------------------------------------------------------------------------------------------------------
# The fast path: every routing rule in one generated function (decisions without a trace), as for scoring
# (`engine.scoring.build_fast_scorer`): each rule's `when` is its verified expression source inlined, tried in
# order; a queue target is a literal assignment, a team or owner target goes through `RouteEngine.assign`.
# When an inlined condition raises, the rule's own compiled function is run again through `guarded`, so the
# warning (or the error) is exactly the rule-by-rule path's.


def _rerun_when(rule: RouteRule, lead: Any, now: datetime, score: Any, stage: str,
                warnings: list[dict[str, str]]) -> Any:
    return guarded(rule.when.fn, rule.id, warnings, lead, now, score, None, stage)


def build_fast_router(engine: RouteEngine) -> Any:
    """One function (lead, now, score, stage, lead_id, warnings) -> Assignment, equal to the rule-by-rule walk."""
    from engine.expr import RUNTIME_GLOBALS
    from engine.scoring import _fragment, exec_generated

    namespace: dict[str, Any] = {"__builtins__": {}, **RUNTIME_GLOBALS, "lo_Exception": Exception,
                                 "lo_rerun": _rerun_when, "lo_assign": engine.assign, "lo_Assignment": Assignment,
                                 "lo_AssertionError": AssertionError}
    code = ["def lo_route(lead, now, score, stage, lo_lead_id, lo_warnings):", "    activity = None"]
    emit = code.append
    for k, rule in enumerate(engine.rules):
        r = f"lo_rule{k}"
        namespace[r] = rule
        indent = "    "
        if rule.when is not None:
            emit("    try:")
            emit(f"        lo_hit = {_fragment(rule.when)}")
            emit("    except lo_Exception:")
            emit(f"        lo_hit = lo_rerun({r}, lead, now, score, stage, lo_warnings)")
            emit("    if lo_hit:")
            indent = "        "
        if rule.target_kind == "queue":
            q = engine.queues[rule.target]
            namespace[f"lo_queue{k}"] = (q.calendar, q.manager)
            emit(f"{indent}return lo_Assignment({{'rule': {rule.id!r}, 'queue': {q.id!r}, 'team': None, 'owner': None, "
                 f"'fallback': {bool(rule.fallback)!r}}}, *lo_queue{k})")
        else:
            emit(f"{indent}lo_a = lo_assign({r}, lead, lo_lead_id, now, score, stage, lo_warnings)[0]")
            emit(f"{indent}if lo_a is not None:")
            emit(f"{indent}    return lo_a")
    emit("    raise lo_AssertionError('routing has a validated fallback rule; it cannot fall off the end')")
    return exec_generated(code, namespace, "<leadops-routing>", "lo_route")

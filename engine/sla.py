"""SLA clocks: due dates in business time, paused intervals, minimum attempts and escalation ladders.

Semantics:
* An SLA applies when the decided stage is one of `applies_to.stages`, the route rule one of
  `applies_to.routes`, and `applies_to.when` holds (each only when given).
* The clock starts when the lead entered the stage: `now` if the stage changes in this decision, else
  `lead.stage_entered_at`, else `now`, and then the decision carries a warning per SLA ("SLA clock started at
  now: lead.stage_entered_at is missing"): such a clock restarts at every evaluation and is never breached.
* Time runs in the calendar of whoever the lead is routed to (`calendar: assignee`: the team's or queue's
  calendar, else the set's `default_calendar`) or a named calendar. Paused intervals (`lead.sla_pauses`) do
  not count; while an open-ended pause lasts there is no due date (status `paused`).
* Escalation steps fire at a share of the allowed time (`75%`) or business time after the due date (`+4h`).
* `attempts.min` activities of `attempts.activity` since the lead entered the stage (`lead.stage_entered_at`;
  every recorded attempt when that is unknown) are required before the lead may be moved to any stage in
  `attempts.before`; `within_business_days` sets the window in which to make them (`attempts_due`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from engine.calendar import BusinessCalendar
from engine.errors import LeadError
from engine.expr import MISSING
from engine.model import Sla
from engine.routing import Assignment
from engine.trace import Trace, describe_values, guarded


TIMINGS_CACHE_SIZE = 4096  # cached (SLA, calendar, start, pauses) computations per policy set


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def business_days_end(cal: BusinessCalendar, start: datetime, days: int) -> datetime:
    """End of the `days`-th business day counted from `start` (a day counts when it still has open time)."""
    local = start.astimezone(cal.zone).date()
    counted = 0
    end = start
    for _ in range(days * 7 + 400):  # bounded: calendars are validated to have weekly hours
        intervals = [iv for iv in cal.open_intervals(local) if iv[1] > start]
        if intervals:
            counted += 1
            end = intervals[-1][1]
            if counted == days:
                return end.astimezone(cal.zone)
        local += timedelta(days=1)
    return end.astimezone(cal.zone)


class SlaEngine:
    def __init__(self, slas: tuple[Sla, ...], calendars: dict[str, BusinessCalendar], default_calendar: str):
        self.slas = slas
        self.calendars = calendars
        self.default_calendar = default_calendar
        self.by_stage: dict[str, list[Sla]] = {}
        for sla in slas:
            for stage in sla.stages or ():
                self.by_stage.setdefault(stage, []).append(sla)
        self.unstaged = [s for s in slas if not s.stages]
        # candidates per decided stage, in policy order of stage SLAs then unstaged ones (built once, not per lead)
        self.candidates = {stage: (*found, *self.unstaged) for stage, found in self.by_stage.items()}
        self.unstaged_only = tuple(self.unstaged)
        self._timings: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._offsets = {sla.id: tuple(e.offset(sla.respond_within) for e in sla.escalations) for sla in slas}

    @staticmethod
    def pauses(lead: Mapping[str, Any]) -> list[tuple[datetime, datetime | None]]:
        """The lead's paused intervals; one that ends before it starts is the lead's error, not the engine's."""
        raw = lead.get("sla_pauses", MISSING)
        if raw is MISSING or not raw:
            return []
        out = []
        for i, p in enumerate(raw):
            end = p.get("to", MISSING)
            end = None if end is MISSING or end is None else end
            if end is not None and end < p["from"]:
                raise LeadError(f"the pause ends ({end.isoformat()}) before it starts ({p['from'].isoformat()})",
                                field=f"sla_pauses[{i}].to")
            out.append((p["from"], end))
        return out

    @staticmethod
    def clock_start(lead: Mapping[str, Any], now: datetime, stage_changed: bool) -> tuple[datetime, str]:
        if stage_changed:
            return now, "the stage changes in this decision"
        entered = lead.get("stage_entered_at", MISSING)
        if entered is MISSING or entered is None:
            return now, CLOCK_STARTS_NOW_WHY
        return entered, "lead.stage_entered_at"

    def calendar_for(self, sla: Sla, assignment: Assignment) -> BusinessCalendar:
        if sla.calendar == "assignee":
            return self.calendars[assignment.calendar or self.default_calendar]
        return self.calendars[sla.calendar]

    def applicable(self, stage: str, route_rule: str, lead: Mapping[str, Any], now: datetime,
                   score: Mapping[str, Any], trace: Trace | None, warnings: list[dict[str, str]]) -> list[Sla]:
        out = []
        for sla in self.candidates.get(stage, self.unstaged_only):
            if sla.routes and route_rule not in sla.routes:
                if trace is not None:
                    trace.rule("sla", sla.id, False, None, f"route '{route_rule}' is not one of {list(sla.routes)}", {})
                continue
            if sla.when is not None:
                if not guarded(sla.when.fn, sla.id, warnings, lead, now, score, None, stage):
                    if trace is not None:
                        trace.rule("sla", sla.id, False, None, "applies_to.when is false",
                                   describe_values(sla.when.compiled, lead, now, score, None, stage))
                    continue
            out.append(sla)
        return out

    def evaluate(self, lead: Mapping[str, Any], now: datetime, stage: dict[str, Any], assignment: Assignment,
                 score: Mapping[str, Any], trace: Trace | None, warnings: list[dict[str, str]]) -> list[dict[str, Any]]:
        route = assignment.section
        pauses = self.pauses(lead)  # checked for every lead, so a bad pause is refused whatever SLA applies
        slas = self.applicable(stage["to"], route["rule"], lead, now, score, trace, warnings)
        if not slas:
            return []
        start, start_why = self.clock_start(lead, now, stage["changed"])
        if start_why == CLOCK_STARTS_NOW_WHY:  # every evaluation restarts the clock: say so in the decision
            warnings.extend({"rule": sla.id, "message": CLOCK_STARTS_NOW_WARNING} for sla in slas)
        out = []
        for sla in slas:
            cal = self.calendar_for(sla, assignment)
            clock_starts, due, due_iso, escalation_ats, attempts_due = self.timings(sla, cal, start, pauses)
            item: dict[str, Any] = {
                "id": sla.id,
                "clock_starts": clock_starts,
                "due": due_iso,
                "calendar": cal.id,
                "attempts_required": sla.attempts.min if sla.attempts else 0,
                "escalations": [
                    {"at": at, "when": e.text, "action": e.action, "to": self.target(e.to, route, assignment)}
                    for e, at in zip(sla.escalations, escalation_ats)
                ],
                "status": "paused" if due is None else ("breached" if now > due else "running"),
            }
            if attempts_due is not None:
                item["attempts_due"] = attempts_due
            out.append(item)
            if trace is not None:
                trace.rule("sla", sla.id, True, None,
                           f"applies to stage '{stage['to']}'; clock starts {item['clock_starts']} ({start_why}); "
                           f"{_hours(sla.respond_within)} business hours in calendar '{cal.id}'"
                           + (f"; {len(pauses)} pause(s) excluded" if pauses else ""), {})
        return out

    def timings(self, sla: Sla, cal: BusinessCalendar, start: datetime,
                pauses: list[tuple[datetime, datetime | None]]) -> tuple[Any, ...]:
        """(clock_starts, due, due as text, escalation instants as text, attempts_due as text or None).

        Pure calendar arithmetic of (SLA, calendar, start instant, pauses), so it is cached: every lead whose
        clock starts `now` (its stage changes in this decision) shares one computation. Equal instants give
        equal results whatever their offset (everything is converted to the calendar's zone).
        """
        key = (sla.id, cal.id, start, start.fold, tuple(pauses))  # fold: same wall time in one zone, twice
        hit = self._timings.get(key)
        if hit is not None:
            return hit
        due = cal.add_business_time(start, sla.respond_within, pauses)
        ats = tuple(iso(cal.add_business_time(start, offset, pauses)) for offset in self._offsets[sla.id])
        attempts_due = None
        if sla.attempts and sla.attempts.within_business_days:
            attempts_due = iso(business_days_end(cal, start, sla.attempts.within_business_days))
        hit = (iso(start.astimezone(cal.zone)), due, iso(due), ats, attempts_due)
        if len(self._timings) >= TIMINGS_CACHE_SIZE:
            self._timings.clear()
        self._timings[key] = hit
        return hit

    @staticmethod
    def target(to: str, route: dict[str, Any], assignment: Assignment) -> str | None:
        if to == "owner":
            return route.get("owner") or (f"queue:{route['queue']}" if route.get("queue") else None)
        if to == "manager":
            return assignment.manager
        return to

    def attempt_check(self, lead: Mapping[str, Any], now: datetime, acts: dict[str, list[Any]]):
        """A function (from_stage, to_stage) -> refusal message or None, for requested transitions."""

        def check(from_stage: str, to_stage: str) -> str | None:
            entered = lead.get("stage_entered_at", MISSING)
            for sla in self.by_stage.get(from_stage, ()):
                rule = sla.attempts
                if rule is None or to_stage not in rule.before:
                    continue
                made = [a for a in acts.get(rule.activity, ()) if entered is MISSING or a["at"] >= entered]
                if len(made) < rule.min:
                    return (f"SLA '{sla.id}' requires {rule.min} {rule.activity} activities before a lead in "
                            f"'{from_stage}' may move to '{to_stage}'; {len(made)} recorded")
            return None

        return check


CLOCK_STARTS_NOW_WHY = "lead.stage_entered_at is missing; the clock starts now"
CLOCK_STARTS_NOW_WARNING = "SLA clock started at now: lead.stage_entered_at is missing"


def _hours(td: timedelta) -> str:
    h = td.total_seconds() / 3600
    return str(int(h)) if h == int(h) else f"{h:g}"

"""The SLA fact table: one row per lead x SLA x stage entry, shaped like Salesforce's CaseMilestone.

For every recorded stage entry (stage S entered at T) the policy revision in force at T judges the lead as it
was then: the lead with stage S since T is scored and routed at `now = T` (routing availability on T's date),
and the SLAs of S apply exactly as `PolicySet.evaluate` applies them (engine.sla: applies_to, calendar of the
assignee, pauses, escalations). The recorded stage is a fact from the CRM, so stage progression is not re-run.

The owner of record is the CRM's assignment in force at T (`owner_history`; else the first one after T), else
the policy's route. The SLA calendar follows that owner: their team's calendar when the policy knows them.

Then the recorded activities answer the SLA (`touched_by` in slas.yaml): the first activity in
[T, the lead's next stage entry) whose type is listed, that is not inbound, and whose actor is the owner in force
at that time (`by: assignee`), on that owner's team or the owner (`team`), or anyone (`anyone`). An SLA without
`touched_by` is answered by the lead leaving the stage.

Status at `now`: met (answered by the due time; also when answered during an open-ended pause), breached
(answered late, not answered by the due time, or the lead left the stage unanswered), paused (an open-ended
pause holds the clock), at_risk (unanswered, not due yet, past the warning time: the first escalation step
below 100 % of the allowed time), open (unanswered, before the warning time or without one).
Business minutes exclude closed hours, holidays, closures and pauses, in the SLA's calendar.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from engine.expr import MISSING
from engine.leads import LeadView
from engine.model import Sla
from engine.policyset import PolicySet
from engine.report.history import History, StageEntry
from engine.routing import Assignment
from engine.scoring import activities_by_type
from engine.sla import SlaEngine

STATUSES = ("met", "breached", "at_risk", "open", "paused")

#: (column, kind) in table order; kind: string | category (a string repeated across rows, dictionary-encoded) |
#: timestamp | float | int | bool (engine.report.scan.arrow_schema)
FACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "string"), ("sla_id", "category"), ("stage", "category"), ("policy_revision", "category"),
    ("owner", "category"), ("team", "category"), ("source", "category"), ("calendar", "category"),
    ("week", "category"), ("clock_start", "timestamp"), ("warning_at", "timestamp"), ("due", "timestamp"),
    ("first_touch_at", "timestamp"), ("first_touch_type", "category"), ("first_touch_by", "category"),
    ("status", "category"), ("business_minutes_to_touch", "float"), ("business_minutes_left", "float"),
    ("created_at", "timestamp"), ("assigned_at", "timestamp"),
    ("system_delay_minutes", "float"), ("human_delay_minutes", "float"),
    ("attempts_made", "int"), ("attempts_required", "int"),
    ("exit_stage", "category"), ("exit_at", "timestamp"), ("exit_reason", "category"),
    ("disqualified_before_attempts", "bool"),
)
FACT_NAMES = tuple(name for name, _ in FACT_COLUMNS)


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def minutes(td: timedelta) -> float:
    return round(td.total_seconds() / 60, 2)


def reads_score(expr: Any) -> bool:
    """Whether a compiled expression names `score` (judged on its syntax tree)."""
    tree = getattr(getattr(expr, "compiled", None), "tree", None)
    return tree is None or any(isinstance(n, ast.Name) and n.id == "score" for n in ast.walk(tree))


class Judge:
    """Fact rows for one lead stage entry under one policy revision."""

    def __init__(self, ps: PolicySet, now: datetime, within: timedelta):
        self.ps = ps
        self.now = now
        self.within = within
        self.slas: dict[str, Sla] = {s.id: s for s in ps.model.slas}
        self.member_team = ps.routing.member_team
        self.queues = ps.model.queues
        model = ps.model
        exprs = [e for r in model.routing for e in (r.when, r.owner)] + [s.when for s in model.slas]
        self.needs_score = any(reads_score(e) for e in exprs if e is not None)

    def has_slas(self, stage: str) -> bool:
        return bool(self.ps.slas.candidates.get(stage, self.ps.slas.unstaged_only))

    def entry(self, raw: Mapping[str, Any], current: Mapping[str, Any] | None, history: History,
              k: int) -> list[dict[str, Any]]:
        """The fact rows of stage entry `k` (raises LeadError when the lead as it was then is invalid, and
        CostLimitError, a LeadError, past the policy's runtime cost budget, as a decision would).

        `current`: the lead's view under this revision's lead schema, when already prepared (then the view as it
        was at the entry is a copy with the stage fields replaced, instead of a second validation)."""
        with self.ps.metered():
            return self._entry(raw, current, history, k)

    def _entry(self, raw: Mapping[str, Any], current: Mapping[str, Any] | None, history: History,
               k: int) -> list[dict[str, Any]]:
        ps, entry = self.ps, history.entries[k]
        exit_ = history.entries[k + 1] if k + 1 < len(history.entries) else None
        if current is not None:
            view = LeadView({**current, "stage": entry.stage, "stage_entered_at": entry.at,
                             "transition_request": MISSING})
        else:
            as_of = {key: value for key, value in raw.items() if key != "transition_request"}
            as_of["stage"], as_of["stage_entered_at"] = entry.stage, entry.at.isoformat()
            view = ps.prepare(as_of)
        when = entry.at
        warnings: list[dict[str, str]] = []
        score_view = None  # routing and SLA conditions that never read `score` do not need the lead scored
        if self.needs_score:
            _, score_view = ps.scoring.evaluate(view, when, activities_by_type(view, when, ps.activity_kinds), None, warnings)
        routed = ps.routing.evaluate(view, when, score_view, entry.stage, None, warnings)
        owned = history.owner_at(when)
        assignment, owner, team = self.assignee(routed, owned.owner if owned else None)
        stage = {"to": entry.stage, "changed": False}
        items = ps.slas.evaluate(view, when, stage, assignment, score_view, None, warnings)
        if not items:
            return []
        pauses = SlaEngine.pauses(view)
        rows = []
        for item in items:
            sla = self.slas[item["id"]]
            cal = ps.slas.calendar_for(sla, assignment)
            rows.append(self.row(view, history, entry, exit_, sla, cal, item, pauses, owner, team, owned))
        return rows

    def assignee(self, routed: Assignment, recorded: str | None) -> tuple[Assignment, str | None, str | None]:
        """(assignment whose calendar the SLA runs in, owner, team): the CRM's owner when recorded, else the route's."""
        section = routed.section
        if recorded is None:
            return routed, section.get("owner") or (f"queue:{section['queue']}" if section.get("queue") else None), \
                section.get("team") or section.get("queue")
        if recorded.startswith("queue:"):
            queue = self.queues.get(recorded[6:])
            if queue is not None:
                return Assignment(section, queue.calendar, queue.manager), recorded, queue.id
            return Assignment(section, None, None), recorded, None
        team = self.member_team.get(recorded)
        if team is not None:
            return Assignment(section, team.calendar, team.manager), recorded, team.id
        return Assignment(section, None, None), recorded, None

    def row(self, view: Mapping[str, Any], history: History, entry: StageEntry, exit_: StageEntry | None, sla: Sla,
            cal: Any, item: dict[str, Any], pauses: list[Any], owner: str | None, team: str | None,
            owned: Any) -> dict[str, Any]:
        now, start = self.now, entry.at
        due = datetime.fromisoformat(item["due"]) if item["due"] else None
        warning = None
        for step, fired in zip(sla.escalations, item["escalations"]):
            if step.percent is not None and step.percent < 100:
                warning = datetime.fromisoformat(fired["at"]) if fired["at"] else None
                break
        window_end = min(exit_.at, now) if exit_ is not None else now
        touch = self.first_touch(view, history, sla, start, window_end, owner)
        if sla.touched_by is None and exit_ is not None:
            touch = (exit_.at, f"stage:{exit_.stage}", exit_.by)
        status = self.status(touch, due, warning, exit_ is not None and sla.touched_by is not None)
        left = None
        if status in ("open", "at_risk") and due is not None:
            left = minutes(cal.business_time_between(now, due, pauses))
        assigned = owned.at if owned is not None else None
        attempts_made = 0
        if sla.attempts is not None:
            attempts_made = sum(1 for a in view.get("activities") or () if a["type"] == sla.attempts.activity
                                and start <= a["at"] < window_end)
        required = sla.attempts.min if sla.attempts else 0
        return {
            "lead_id": history.lead_id, "sla_id": sla.id, "stage": entry.stage, "policy_revision": self.ps.revision,
            "owner": owner, "team": team, "source": history.source, "calendar": cal.id,
            "week": iso_week(start.astimezone(cal.zone).date()),
            "clock_start": start, "warning_at": warning, "due": due,
            "first_touch_at": touch[0] if touch else None, "first_touch_type": touch[1] if touch else None,
            "first_touch_by": touch[2] if touch else None, "status": status,
            "business_minutes_to_touch": minutes(cal.business_time_between(start, touch[0], pauses)) if touch else None,
            "business_minutes_left": left,
            "created_at": history.created_at, "assigned_at": assigned,
            "system_delay_minutes": (minutes(cal.business_time_between(history.created_at, assigned))
                                     if assigned is not None and history.created_at is not None
                                     and assigned >= history.created_at else None),
            "human_delay_minutes": (minutes(cal.business_time_between(max(assigned, start), touch[0], pauses))
                                    if assigned is not None and touch and touch[0] >= assigned else None),
            "attempts_made": attempts_made, "attempts_required": required,
            "exit_stage": exit_.stage if exit_ else None, "exit_at": exit_.at if exit_ else None,
            "exit_reason": exit_.reason_code if exit_ else None,
            "disqualified_before_attempts": bool(sla.attempts and exit_ and exit_.stage in sla.attempts.before
                                                 and attempts_made < required),
        }

    def first_touch(self, view: Mapping[str, Any], history: History, sla: Sla, start: datetime, end: datetime,
                    owner: str | None) -> tuple[datetime, str, str | None] | None:
        rule = sla.touched_by
        if rule is None:
            return None
        best = None
        for a in view.get("activities") or ():
            at = a["at"]
            if a["type"] not in rule.types or not start <= at < end or a.get("direction", MISSING) == "inbound":
                continue
            if best is not None and at >= best[0]:
                continue
            actor = a.get("actor", MISSING)
            actor = None if actor is MISSING else actor
            if rule.by != "anyone" and not self.counts(rule.by, actor, history, at, owner):
                continue
            best = (at, a["type"], actor)
        return best

    def counts(self, by: str, actor: str | None, history: History, at: datetime, owner: str | None) -> bool:
        """Whether `actor`'s activity at `at` answers an SLA that requires the assignee (or the assignee's team)."""
        if actor is None:
            return False
        in_force = history.owner_at(at)
        current = in_force.owner if in_force is not None and in_force.at <= at else owner
        if actor == current:
            return True
        if by == "team" and current is not None:
            team = self.member_team.get(current)
            return team is not None and self.member_team.get(actor) is team
        return False

    def status(self, touch: Any, due: datetime | None, warning: datetime | None, left_untouched: bool) -> str:
        if touch is not None:
            return "met" if due is None or touch[0] <= due else "breached"
        if left_untouched:
            return "breached"
        if due is None:
            return "paused"
        if self.now > due:
            return "breached"
        if warning is not None and self.now >= warning:
            return "at_risk"
        return "open"

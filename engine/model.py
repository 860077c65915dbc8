"""The authored policy as frozen dataclasses, each element carrying the Location it was written at.

The compiler builds these from validated YAML; expressions are held as `Expr` (source text + location) and
compiled in a later pass into `CompiledExpr`. Evaluation modules (scoring, stages, routing, sla) read this
model; nothing here evaluates anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from engine.calendar import BusinessCalendar
from engine.errors import Location


@dataclass
class Expr:
    """An expression as written, where it was written, and (after the expression pass) its compiled form."""

    source: str
    location: Location
    compiled: Any = None  # engine.expr.CompiledExpr once compiled

    @property
    def fn(self) -> Any:
        return self.compiled.fn


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Decay:
    """Points are multiplied by `factor` once for every full `every` of an activity's age (step decay)."""

    every: timedelta
    factor: float


@dataclass(frozen=True)
class ScoreRule:
    id: str
    group: str
    points: float
    location: Location
    description: str = ""
    when: Expr | None = None  # condition rule
    activity: str | None = None  # activity rule: counts activities of this type
    where: Expr | None = None
    within: timedelta | None = None
    limit: int | None = None
    decay: Decay | None = None

    @property
    def is_activity_rule(self) -> bool:
        return self.activity is not None


@dataclass(frozen=True)
class Grade:
    grade: str
    min: float | None  # None: the default grade (below every threshold)


@dataclass(frozen=True)
class ScoreGroup:
    id: str
    location: Location
    rules: tuple[ScoreRule, ...]
    cap: float | None = None
    floor: float | None = None
    grades: tuple[Grade, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Scoring:
    groups: tuple[ScoreGroup, ...]
    grade_groups: tuple[str, ...] = ()
    total_cap: float | None = None
    total_floor: float | None = None
    location: Location = field(default_factory=Location)
    grade_locations: tuple[Location, ...] = ()  # where each entry of `grade_groups` is written


# ---------------------------------------------------------------- stages


@dataclass(frozen=True)
class Transition:
    to: str
    location: Location
    reason_required: bool = False
    auto: bool = False


@dataclass(frozen=True)
class Stage:
    id: str
    side: str
    location: Location
    pipeline_index: int | None  # position in the pipeline; None for detours
    entry: Expr | None = None
    manual: bool = False
    transitions: tuple[Transition, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Stages:
    initial: str
    pipeline: tuple[Stage, ...]
    detours: tuple[Stage, ...]
    reason_codes: dict[str, str]
    location: Location = field(default_factory=Location)
    initial_location: Location = field(default_factory=Location)

    def by_id(self) -> dict[str, Stage]:
        return {s.id: s for s in (*self.pipeline, *self.detours)}


# ---------------------------------------------------------------- teams, routing


@dataclass(frozen=True)
class Absence:
    start: date
    end: date  # inclusive


@dataclass(frozen=True)
class Member:
    id: str
    weight: int
    active: bool
    out_of_office: tuple[Absence, ...]
    location: Location


@dataclass(frozen=True)
class Team:
    id: str
    calendar: str
    members: tuple[Member, ...]
    location: Location
    manager: str | None = None
    description: str = ""
    slack_channel: str | None = None  # where `leadops notify` addresses the team's messages


@dataclass(frozen=True)
class Queue:
    id: str
    location: Location
    calendar: str | None = None
    manager: str | None = None
    description: str = ""
    slack_channel: str | None = None


@dataclass(frozen=True)
class RouteRule:
    id: str
    location: Location
    target_kind: str  # "queue" | "team" | "owner"
    target: str  # queue id, team id, or (for owner) the expression source
    when: Expr | None = None
    owner: Expr | None = None
    fallback: bool = False
    description: str = ""


# ---------------------------------------------------------------- SLAs


@dataclass(frozen=True)
class Escalation:
    location: Location
    action: str  # notify | reassign
    to: str  # owner | manager | queue:<id> | team:<id>
    percent: float | None = None  # at a share of the allowed time
    after_due: timedelta | None = None  # or business time after the due date
    text: str = ""  # as written ("75%", "+4h")

    def offset(self, respond_within: timedelta) -> timedelta:
        """Business time after the clock starts at which this step fires (whole seconds)."""
        if self.percent is not None:
            raw = respond_within * (self.percent / 100.0)
        else:
            raw = respond_within + (self.after_due or timedelta(0))
        return timedelta(seconds=round(raw.total_seconds()))


@dataclass(frozen=True)
class Attempts:
    min: int
    activity: str = "call_attempt"
    within_business_days: int | None = None
    before: tuple[str, ...] = ()


@dataclass(frozen=True)
class Touch:
    """Which recorded activities answer an SLA (`touched_by`): their types, and whose count (assignee, team, anyone).

    Only the scorecard (engine.report) reads it; decisions never depend on it."""

    types: tuple[str, ...]
    by: str  # assignee | team | anyone
    location: Location


@dataclass(frozen=True)
class Sla:
    id: str
    location: Location
    respond_within: timedelta
    calendar: str  # "assignee" or a calendar id
    stages: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    when: Expr | None = None
    attempts: Attempts | None = None
    escalations: tuple[Escalation, ...] = ()
    description: str = ""
    touched_by: Touch | None = None


# ---------------------------------------------------------------- the whole set


@dataclass(frozen=True)
class Ownership:
    groups: dict[str, tuple[str, ...]]  # group -> members
    areas: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # area -> (files, approver groups)
    github_teams: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyModel:
    name: str
    version: str
    description: str
    lead_schema_path: str
    scoring: Scoring
    stages: Stages
    routing: tuple[RouteRule, ...]
    teams: dict[str, Team]
    queues: dict[str, Queue]
    calendars: dict[str, BusinessCalendar]
    slas: tuple[Sla, ...]
    default_calendar: str
    max_changed_percent: float | None = None
    max_cost_per_lead: int | None = None  # guard.max_cost_per_lead: the static cost budget (engine.costbound)
    ownership: Ownership | None = None
    locations: dict[str, Location] = field(default_factory=dict)  # "kind:id" -> where it is defined
    default_calendar_location: Location = field(default_factory=Location)
    broken_calendars: frozenset[str] = frozenset()  # declared but invalid (already reported): not "unknown"

"""PolicySet: the runnable form of a policy set, compiled once and evaluated many times."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from engine.compiler import compile_policy_files
from engine.costbound import policy_cost
from engine.decision import Decision
from engine.errors import EvaluationError, LeadopsError
from engine.expr.sandbox import (
    INSTANT_RANGE_TEXT, MAX_DATETIME_YEAR, MIN_DATETIME_YEAR, charge, encodable_text, instant_in_range,
    meter_remaining, start_meter, stop_meter,
)
from engine.leads import LeadSchema
from engine.model import PolicyModel
from engine.routing import RouteEngine
from engine.scoring import ScoreEngine, activities_by_type
from engine.sla import SlaEngine
from engine.stages import StageEngine
from engine.trace import Trace


def content_revision(files: Mapping[str, bytes]) -> str:
    """A revision for files that are not a git commit: SHA-256 over sorted (path, content) pairs."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return "sha256:" + h.hexdigest()[:16]


def parse_instant(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 date-time with a UTC offset ('Z' allowed); ValueError says what is wrong.

    The one parser for `now` and scenario times (CLI, service, scenario files); each caller words the error.
    """
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 date-time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("no UTC offset")
    return value


def require_aware(now: Any) -> datetime:
    """`now` is explicit and unambiguous: a datetime with a UTC offset (never the host's clock or zone)."""
    if not isinstance(now, datetime):
        raise LeadopsError(f"`now` must be a datetime, not {type(now).__name__} {now!r}; e.g. "
                           "datetime.fromisoformat('2026-11-23T09:00:00+10:00')")
    if now.tzinfo is None or now.utcoffset() is None:
        raise LeadopsError(f"`now` must be timezone-aware, got {now!r}; add an offset, e.g. tzinfo=timezone.utc")
    if not instant_in_range(now):
        raise LeadopsError(f"`now` ({now.isoformat()}) is outside the years {MIN_DATETIME_YEAR}–{MAX_DATETIME_YEAR} "
                           f"(as an instant: {INSTANT_RANGE_TEXT})")
    return now


class PolicySet:
    """A validated, compiled policy set. Build it with `engine.load_policies` / `engine.load_policy_files`."""

    def __init__(self, model: PolicyModel, lead_schema: LeadSchema, files: Mapping[str, bytes], root: str,
                 revision: str):
        self.model = model
        self.lead_schema = lead_schema
        self.source_files = dict(files)
        self.root = root
        self.revision = revision
        self.name = model.name
        self.version = model.version
        self.scoring = ScoreEngine(model.scoring)
        self.stages = StageEngine(model.stages)
        self.routing = RouteEngine(model.routing, model.teams, model.queues, model.calendars)
        self.slas = SlaEngine(model.slas, model.calendars, model.default_calendar)
        self.cost = policy_cost(model, lead_schema.type)  # worst case per lead; its budget meters every lead
        self.activity_kinds = activity_kinds(model)  # the activity index holds only the types rules count
        self._last_now: tuple[Any, str] = (None, "")

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], root: str = "policies", revision: str | None = None) -> "PolicySet":
        model, lead_schema = compile_policy_files(files, root)
        return cls(model, lead_schema, files, root, revision or content_revision(files))

    def prepare(self, lead: Any) -> Mapping[str, Any]:
        """Validate one raw lead against the lead schema into the read-only view (raises LeadError)."""
        return self.lead_schema.prepare(lead)

    def evaluate(self, lead: Any, now: datetime, explain: bool = False) -> Decision:
        """The decision for one lead at `now`. Raises LeadError when the lead does not match the schema."""
        now = require_aware(now)
        view = self.lead_schema.prepare(lead)
        return self.evaluate_prepared(view, now, explain)

    def evaluate_prepared(self, view: Mapping[str, Any], now: datetime, explain: bool = False, *,
                          acts: dict[str, list[Any]] | None = None, scored: "Scored | None" = None) -> Decision:
        """The decision for a prepared lead; raises CostLimitError (a LeadError, EVAL006) past the cost budget.

        `acts`: `activities_by_type(view, now, kinds)` when the caller already built it, for at least this
        set's `activity_kinds` (the diff shares one between the two revisions it compares). `scored`: this
        lead's `score_once` by a policy set whose scoring equals this one's (`same_scoring`), reused instead of
        scoring again: its warnings come first and its cost units are charged, as if scored here."""
        with self.metered():
            return self._decide(view, now, explain, acts, scored)

    def metered(self) -> "_Metered":
        """Run one lead's rule evaluation under the policy's runtime cost budget (CostLimitError past it).
        Every caller that runs the rules of one lead goes through this: decisions here, the scorecard's facts."""
        return _Metered(self.cost.budget)

    def same_scoring(self, other: "PolicySet") -> bool:
        """Do both sets score every lead alike? The same scoring model (its compiled expression code included,
        so the lead schemas' types agree too), lead schema and cost budget: then one `score_once` serves both."""
        return (self.model.scoring == other.model.scoring and self.cost.budget == other.cost.budget
                and self.lead_schema.schema == other.lead_schema.schema)

    def score_once(self, view: Mapping[str, Any], now: datetime, acts: dict[str, list[Any]]) -> "Scored":
        """The score of a prepared lead as a piece `evaluate_prepared(scored=)` can reuse (the diff scores a
        lead once when both revisions score alike). Raises CostLimitError as a decision would."""
        warnings: list[dict[str, str]] = []
        with self.metered():
            score, score_view = self.scoring.evaluate(view, now, acts, None, warnings)
            units = self.cost.budget - meter_remaining()
        return Scored(score, score_view, tuple(warnings), units)

    def _decide(self, view: Mapping[str, Any], now: datetime, explain: bool,
                acts: dict[str, list[Any]] | None, scored: "Scored | None" = None) -> Decision:
        trace = Trace() if explain else None
        warnings: list[dict[str, str]] = []
        if acts is None:
            acts = activities_by_type(view, now, self.activity_kinds)
        if scored is None or trace is not None:
            score, score_view = self.scoring.evaluate(view, now, acts, trace, warnings)
        else:
            charge(scored.units)
            warnings.extend(scored.warnings)
            score, score_view = scored.score, dict(scored.view)
        stage = self.stages.evaluate(view, now, score_view, self.slas.attempt_check(view, now, acts), trace, warnings)
        assignment = self.routing.evaluate(view, now, score_view, stage["to"], trace, warnings)
        slas = self.slas.evaluate(view, now, stage, assignment, score_view, trace, warnings)
        last = self._last_now  # (now, now.isoformat()): one ISO string per `now`; a tuple, so threads agree
        if last[0] is not now:
            last = self._last_now = (now, now.isoformat())
        data: dict[str, Any] = {
            "lead_id": view["id"],
            "policy_revision": self.revision,
            "evaluated_at": last[1],
            "score": score,
            "stage": stage,
            "route": assignment.section,
            "slas": slas,
        }
        if warnings:
            data["warnings"] = warnings
        if trace is not None:
            data["trace"] = trace.to_list()
        return Decision(data)

    def evaluate_expression(self, source: str, lead: Any, now: datetime) -> Any:
        """Check, compile and evaluate one expression against a lead, exactly as policy expressions are.

        Names: lead, now, and the lead's score and decided stage under this policy set. Returns JSON data.
        """
        from engine.compiler import build_scopes
        from engine.expr import compile_expression
        from engine.trace import jsonable

        now = require_aware(now)
        compiled = compile_expression(source, build_scopes(self.model, self.lead_schema.type)["route"])
        view = self.lead_schema.prepare(lead)
        acts = activities_by_type(view, now, self.activity_kinds)
        _, score_view = self.scoring.evaluate(view, now, acts, None, [])
        stage = self.stages.evaluate(view, now, score_view, self.slas.attempt_check(view, now, acts), None, [])
        value = compiled.fn(view, now, score_view, None, stage["to"])
        if isinstance(value, float) and not math.isfinite(value):
            raise EvaluationError("EVAL003", f"the result {value} is not a finite number (JSON has no NaN or Infinity)")
        value = jsonable(value)
        encodable_text(json.dumps(value, ensure_ascii=False))  # a lone surrogate: EVAL005, never invalid UTF-8
        return value

    def describe(self) -> dict[str, Any]:
        """Metadata for reports and the service: name, version, revision and rule counts."""
        m = self.model
        return {
            "name": m.name, "version": m.version, "revision": self.revision,
            "scoring_rules": sum(len(g.rules) for g in m.scoring.groups),
            "stages": len(m.stages.pipeline) + len(m.stages.detours),
            "routing_rules": len(m.routing), "slas": len(m.slas), "calendars": len(m.calendars),
        }


def activity_kinds(model: PolicyModel) -> frozenset[str]:
    """The activity types a decision counts: scoring's activity rules and the SLAs' attempt rules. Expression
    helpers (`count_activities`, ...) read the lead's activities through their own index, not this one."""
    kinds = {r.activity for g in model.scoring.groups for r in g.rules if r.activity is not None}
    kinds.update(s.attempts.activity for s in model.slas if s.attempts is not None)
    return frozenset(kinds)


class Scored(NamedTuple):
    """One lead's score under one scoring model (`PolicySet.score_once`): the decision's score section, the score
    view later expressions read, the warnings scoring gave and the cost units it took. Read-only by contract."""

    score: dict[str, Any]
    view: dict[str, Any]
    warnings: tuple[dict[str, str], ...]
    units: int


class _Metered:
    """`PolicySet.metered`'s context: a class, not a generator, as it wraps every decision (1.5 us -> 0.4 us)."""

    __slots__ = ("budget",)

    def __init__(self, budget: int):
        self.budget = budget

    def __enter__(self) -> None:
        start_meter(self.budget)

    def __exit__(self, *exc: object) -> None:
        stop_meter()

"""What the agreement wants sales told at once, read off the scorecard's fact table (engine.report): a new SQL
assigned, an SLA at its warning time, an SLA breached and still unanswered.

An event is the fact that something happened to one lead's SLA clock, named by a stable key
(`kind:lead:sla-or-stage:clock start`), so that a state file can say whether it was already sent. Only what a
person can still act on is an event: an answered SLA, or a lead that left the stage, sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = ("assigned", "warning", "breach")
DEFAULT_STAGES = ("sql",)


@dataclass(frozen=True)
class Event:
    """One message to send: who owns the lead, where to address it and which clock it is about."""

    kind: str  # assigned | warning | breach
    lead_id: str
    stage: str
    owner: str
    team: str
    at: datetime  # when it happened: clock start, warning time or due time
    clock_start: datetime
    due: tuple[tuple[str, datetime], ...]  # (sla id, due) — several SLAs can run on one stage entry
    channel: str | None = None
    manager: str | None = None
    sla_id: str = ""
    minutes_left: float | None = None
    policy_revision: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.lead_id}:{self.sla_id or self.stage}:{self.clock_start.isoformat()}"


def _unanswered(row: Mapping[str, Any]) -> bool:
    return row["first_touch_at"] is None and row["exit_at"] is None


def events_from_facts(rows: Iterable[Mapping[str, Any]], directory: Mapping[str, tuple[str | None, str | None]],
                      stages: Iterable[str] = DEFAULT_STAGES) -> list[Event]:
    """The events of fact rows (dicts with the columns of engine.report.FACT_COLUMNS), in the order they
    happened (then by key). `directory`: team or queue id -> (slack channel, manager), from teams.yaml.

    - assigned: one per entry into a stage of `stages` whose SLAs are still unanswered (due: each SLA's);
    - warning: an SLA at risk (past the policy's first escalation threshold below 100 %, not due yet);
    - breach: an SLA past due, unanswered, the lead still in the stage (with the manager to escalate to).
    """
    wanted = set(stages)
    entries: dict[tuple[str, str, datetime], list[Mapping[str, Any]]] = {}
    out: list[Event] = []
    for row in rows:
        channel, manager = directory.get(row["team"] or "", (None, None))
        common = dict(lead_id=row["lead_id"], stage=row["stage"], owner=row["owner"] or "", team=row["team"] or "",
                      clock_start=row["clock_start"], due=((row["sla_id"], row["due"]),), channel=channel,
                      manager=manager, sla_id=row["sla_id"], minutes_left=row["business_minutes_left"],
                      policy_revision=row["policy_revision"] or "")
        if row["stage"] in wanted and _unanswered(row):
            entries.setdefault((row["lead_id"], row["stage"], row["clock_start"]), []).append(row)
        if row["status"] == "at_risk" and row["warning_at"] is not None:
            out.append(Event("warning", at=row["warning_at"], **common))
        elif row["status"] == "breached" and _unanswered(row):
            out.append(Event("breach", at=row["due"], **common))
    for (lead_id, stage, start), group in entries.items():
        first = group[0]
        channel, manager = directory.get(first["team"] or "", (None, None))
        due = tuple(sorted(((r["sla_id"], r["due"]) for r in group), key=lambda d: (d[1], d[0])))
        out.append(Event("assigned", lead_id, stage, first["owner"] or "", first["team"] or "", start, start, due,
                         channel, manager, policy_revision=first["policy_revision"] or ""))
    out.sort(key=lambda e: (e.at, KINDS.index(e.kind), e.key))
    return out


def directory_of(ps: Any) -> dict[str, tuple[str | None, str | None]]:
    """team or queue id -> (slack_channel, manager) of a policy set's teams.yaml."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for team in ps.model.teams.values():
        out[team.id] = (team.slack_channel, team.manager)
    for queue in ps.model.queues.values():
        out[queue.id] = (queue.slack_channel, queue.manager)
    return out

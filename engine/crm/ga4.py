"""Google Analytics 4 events as lead activities: the BigQuery export (events_YYYYMMDD as Parquet or JSON Lines)
joined to leads and mapped through a `kind: mapping` file (the `ga4` preset by default).

Web engagement is what scoring counts ("visited the pricing page"), and GA4 is where it is recorded. An event
joins a lead when its `user_id` is the lead's id (the site sets the CRM id) or the SHA-256 of the lead's
normalised e-mail (the site sets a hashed e-mail), else when a declared join table maps its `user_pseudo_id` to
a lead id. The mapping's `activities` fields say which events count and how (its `unknown: skip` drops GA4's
automatic events); its `lead` fields, read from a user's earliest event, give the lead's source where the CRM
gave none. Every event is accounted for: an activity, not a lead activity, no matching lead, unreadable or a
mapping error — counted and reported, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.crm.mapping import Mapping
from engine.crm.records import InputError, RecordError, read_records
from engine.errors import LeadError


def email_hash(email: str) -> str:
    """SHA-256 hex of an e-mail trimmed and lower-cased (how sites hash the e-mail they give GA4 as user_id)."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


@dataclass
class WebEvents:
    """What became of every event: counts that add up, the unmatched users, the errors."""

    events: int = 0
    activities: int = 0
    not_activities: int = 0  # events the mapping does not count (page scrolls, session starts, …)
    already: int = 0  # activities the lead already had (the same events joined again): not added twice
    unmatched: Counter = field(default_factory=Counter)  # user key -> events without a lead
    unreadable: list[tuple[str, int, str]] = field(default_factory=list)  # (file, row, why)
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # mapping errors (file, row, message)
    leads_touched: int = 0
    sources_set: int = 0

    @property
    def unmatched_events(self) -> int:
        return sum(self.unmatched.values())

    def summary(self) -> list[str]:
        """Lines for people: the counts (events in = activities + not counted + unmatched + errors) and why."""
        lines = [f"{self.events} events = {self.activities} activities of {self.leads_touched} leads + "
                 + (f"{self.already} already there + " if self.already else "") +
                 f"{self.not_activities} not lead activities + {self.unmatched_events} without a lead + "
                 f"{len(self.unreadable) + len(self.errors)} errors; {self.sources_set} lead sources set"]
        if self.unmatched:
            shown = ", ".join(f"{k} ({n})" for k, n in self.unmatched.most_common(5))
            lines.append(f"{self.unmatched_events} events of {len(self.unmatched)} users match no lead "
                         f"(user_id neither a lead id nor a hashed e-mail, user_pseudo_id not in the join table): {shown}")
        for name, row, why in (self.unreadable + self.errors)[:10]:
            lines.append(f"{name}: row {row}: {why}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "activities": self.activities, "already_there": self.already,
                "not_activities": self.not_activities,
                "unmatched_events": self.unmatched_events, "unmatched_users": len(self.unmatched),
                "errors": [{"file": f, "row": r, "message": m} for f, r, m in self.unreadable + self.errors],
                "leads_touched": self.leads_touched, "sources_set": self.sources_set}


class LeadIndex:
    """Which lead a GA user is: lead ids, hashed e-mails, and a join table of user_pseudo_id -> lead id."""

    def __init__(self, leads: Iterable[dict[str, Any]], join_table: dict[str, str] | None = None):
        self.ids: set[str] = set()
        self.hashes: dict[str, str] = {}
        for lead in leads:
            self.ids.add(str(lead["id"]))
            if isinstance(lead.get("email"), str) and lead["email"].strip():
                self.hashes.setdefault(email_hash(lead["email"]), str(lead["id"]))
        self.table = join_table or {}

    def lead_of(self, event: dict[str, Any]) -> tuple[str | None, str]:
        """(lead id or None, the user key to report when None)."""
        user_id, pseudo = event.get("user_id"), event.get("user_pseudo_id")
        if user_id not in (None, ""):
            text = str(user_id)
            if text in self.ids:
                return text, text
            if text.lower() in self.hashes:
                return self.hashes[text.lower()], text
        if pseudo not in (None, "") and str(pseudo) in self.table:
            return self.table[str(pseudo)], str(pseudo)
        return None, str(user_id or pseudo or "(no user)")


def read_join_table(path: str) -> dict[str, str]:
    """user_pseudo_id -> lead id from a CSV / JSON Lines / Parquet file with those two columns."""
    out: dict[str, str] = {}
    for row, record in read_records(path):
        if isinstance(record, RecordError):
            raise InputError(f"{path}: row {row}: {record.message}")
        if not isinstance(record, dict) or not record.get("user_pseudo_id") or not record.get("lead_id"):
            raise InputError(f"{path}: row {row}: a join table row needs user_pseudo_id and lead_id")
        out[str(record["user_pseudo_id"])] = str(record["lead_id"])
    return out


def join_web_events(leads: list[dict[str, Any]], event_files: Sequence[str], mapping: Mapping,
                    join_table: dict[str, str] | None = None) -> WebEvents:
    """Add each event of `event_files` that the mapping counts to its lead's activities (in place, sorted by
    time); set `source` from the user's earliest event where the lead has none. Returns the accounting."""
    index = LeadIndex(leads, join_table)
    by_id = {str(lead["id"]): lead for lead in leads}
    stats = WebEvents()
    found: dict[str, list[dict[str, Any]]] = {}
    first: dict[str, tuple[Any, dict[str, Any]]] = {}  # lead id -> (timestamp, earliest event)
    for name in event_files:
        for row, event in read_records(name):
            stats.events += 1
            if isinstance(event, RecordError):
                stats.unreadable.append((name, row, event.message))
                continue
            lead_id, user = index.lead_of(event)
            if lead_id is None or lead_id not in by_id:
                stats.unmatched[user] += 1
                continue
            try:
                activity = mapping.to_activity(event, row)
            except LeadError as exc:
                stats.errors.append((name, row, exc.message))
                continue
            stamp = _stamp(event.get("event_timestamp"))
            if lead_id not in first or stamp < first[lead_id][0]:
                first[lead_id] = (stamp, event)
            if activity is None:
                stats.not_activities += 1
                continue
            stats.activities += 1
            found.setdefault(lead_id, []).append(activity)
    for lead_id, acts in found.items():
        lead = by_id[lead_id]
        held = {_same(a) for a in lead.get("activities", [])}
        new = [a for a in acts if _same(a) not in held]
        stats.already += len(acts) - len(new)
        stats.activities -= len(acts) - len(new)
        if new:
            lead["activities"] = sorted([*lead.get("activities", []), *new], key=lambda a: str(a.get("at", "")))
            stats.leads_touched += 1
    for lead_id, (_, event) in first.items():
        if "source" in by_id[lead_id]:
            continue
        try:
            source = mapping.to_lead(event).get("source")
        except LeadError:
            source = None
        if source is not None:
            by_id[lead_id]["source"] = source
            stats.sources_set += 1
    return stats


def _same(activity: dict[str, Any]) -> str:
    return json.dumps(activity, sort_keys=True)


def _stamp(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


__all__ = ["LeadIndex", "WebEvents", "email_hash", "join_web_events", "read_join_table"]

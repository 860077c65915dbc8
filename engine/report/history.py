"""One lead's recorded history, read from its validated view: stage entries, owner assignments, creation time.

The lead schema carries the history (`stage_history`, `owner_history`, `created_at`, activities with `actor`,
`direction` and `outcome`). A lead without `stage_history` has one entry: its `stage` since `stage_entered_at`
(when both are known), so a plain CRM snapshot still yields one SLA row. Entries are ordered by time (a CRM
exports them in no particular order; equal times keep their recorded order); entries after `now` have not
happened yet and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.checks import did_you_mean
from engine.errors import LeadError
from engine.expr import MISSING
from engine.policyset import parse_instant


@dataclass(frozen=True)
class StageEntry:
    """The lead entered `stage` at `at` (with the reason code and who moved it, when recorded)."""

    stage: str
    at: datetime
    reason_code: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class OwnerChange:
    """The lead was assigned to `owner` (a rep id or `queue:<id>`) at `at`."""

    owner: str
    at: datetime


@dataclass(frozen=True)
class History:
    lead_id: str
    source: str | None
    created_at: datetime | None
    entries: tuple[StageEntry, ...]
    owners: tuple[OwnerChange, ...]

    def owner_at(self, when: datetime) -> OwnerChange | None:
        """The assignment in force at `when`: the last one at or before it, else the first one after it (a lead
        that enters a stage before anyone is assigned belongs to whoever gets it first)."""
        found = None
        for change in self.owners:
            if change.at <= when:
                found = change
            elif found is None:
                return change
            else:
                break
        return found


def _instant(value: Any, where: str) -> datetime:
    """A time from the view: already a datetime when the lead schema declares the field, else read here."""
    if isinstance(value, datetime):
        return value
    try:
        return parse_instant(str(value))
    except ValueError as exc:
        raise LeadError(f"{value!r} is {exc}; write e.g. 2026-11-23T09:00:00+10:00", field=where,
                        code="LEAD004") from None


def _item(item: Any, where: str, key: str) -> Any:
    if not isinstance(item, Mapping) or item.get(key, MISSING) in (MISSING, None):
        raise LeadError(f"'{key}' is required", field=f"{where}.{key}", code="LEAD002")
    return item[key]


def _text(value: Any) -> str | None:
    return None if value is MISSING or value is None else str(value)


def read_history(view: Mapping[str, Any], now: datetime, stage_ids: Sequence[str]) -> History:
    """The lead's history up to `now`; an unknown stage id is a LeadError naming the entry (with did-you-mean)."""
    entries: list[StageEntry] = []
    recorded = view.get("stage_history", MISSING)
    if recorded is not MISSING and recorded:
        for i, item in enumerate(recorded):
            stage, at = (item.get("stage"), item.get("at")) if isinstance(item, Mapping) else (None, None)
            if stage not in stage_ids:
                stage = _item(item, f"stage_history[{i}]", "stage")
                raise LeadError(f"unknown stage '{stage}'; {did_you_mean(str(stage), stage_ids)}"
                                f"known stages: {', '.join(stage_ids)}", field=f"stage_history[{i}].stage")
            if not isinstance(at, datetime):  # the lead schema of this revision does not declare it
                at = _instant(_item(item, f"stage_history[{i}]", "at"), f"stage_history[{i}].at")
            if at <= now:
                entries.append(StageEntry(stage, at, _text(item.get("reason_code", MISSING)),
                                          _text(item.get("by", MISSING))))
    else:
        stage, entered = view.get("stage", MISSING), view.get("stage_entered_at", MISSING)
        if stage is not MISSING and entered is not MISSING and stage in stage_ids and entered <= now:
            entries.append(StageEntry(stage, entered))
    entries.sort(key=lambda e: e.at)
    owners = []
    for i, item in enumerate(view.get("owner_history", MISSING) or ()):
        at = _instant(_item(item, f"owner_history[{i}]", "at"), f"owner_history[{i}].at")
        if at <= now:
            owners.append(OwnerChange(str(_item(item, f"owner_history[{i}]", "owner")), at))
    owners.sort(key=lambda o: o.at)
    created = view.get("created_at", MISSING)
    created = None if created in (MISSING, None) else _instant(created, "created_at")
    return History(str(view["id"]), _text(view.get("source", MISSING)), created, tuple(entries), tuple(owners))

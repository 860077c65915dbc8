"""Arrow rows -> raw leads: JSON Lines text parsed exactly as `leadops eval` parses it, or typed columns as JSON data.

Two input shapes reach the workers (see `engine.spark.inputs`):

* ``text``: one column ``value`` holding each JSON Lines line. It is parsed by the same strict decoder the batch
  evaluator uses, so the lead (numbers as written, absent vs null, repeated keys) is exactly the one `leadops
  eval` sees and a malformed line becomes the same error record.
* ``columns``: a typed table (Parquet, Delta): one column per lead field, nested structs and ``array<struct>``
  activities. A null column value means the field is absent (a table has every column on every row), so nulls
  are dropped, recursively; timestamps become ISO 8601 in UTC and dates ISO dates (never the session time zone),
  decimals become numbers.

Columns whose names start with ``_leadops_`` are the job's own (lead id for joins and sorting, joined
activities) and never part of a lead.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from engine.crm.records import plain
from engine.jsonstrict import Decoder

INTERNAL = "_leadops_"
ID_COLUMN = INTERNAL + "id"
ACTIVITIES_COLUMN = INTERNAL + "activities"
TEXT_COLUMN = "value"

_loads = Decoder(nonfinite=True).decode  # NaN/Infinity are left to the lead schema, which names the field


def raw_leads(batch: Any, mode: str) -> Iterator[tuple[Any, list[Any] | None, str, Exception | None]]:
    """(record or None, joined activities or None, input text for error reports, read error or None) per row.

    The record is the raw lead, or the source record when a mapping turns it into one; joined activities are
    the rows of an events table for this lead (already plain JSON data)."""
    columns = batch.schema.names
    joined = batch.column(ACTIVITIES_COLUMN).to_pylist() if ACTIVITIES_COLUMN in columns else None

    def acts(i: int) -> list[Any] | None:
        return [plain(a) for a in joined[i]] if joined and joined[i] else None

    if mode == "text":
        for i, text in enumerate(batch.column(TEXT_COLUMN).to_pylist()):
            try:
                record = _loads(text + "\n")  # with its line end, as `leadops eval` reads it (same error columns)
            except (ValueError, RecursionError) as exc:
                yield None, None, text, exc
                continue
            yield record, acts(i), text, None
        return
    keep = [name for name in columns if not name.startswith(INTERNAL)]
    for i, row in enumerate(batch.select(keep).to_pylist()):
        try:
            record = plain(row)
        except ValueError as exc:
            yield None, None, _describe(row), exc
            continue
        yield record, acts(i), _describe(record), None


def with_activities(raw: Any, joined: list[Any] | None) -> Any:
    """A native lead with the activities joined from an events table appended to its own."""
    if not joined or not isinstance(raw, dict):
        return raw
    own = raw.get("activities")
    if own is not None and not isinstance(own, list):
        return raw  # the lead schema reports the malformed field; joining would hide it
    raw["activities"] = (own or []) + joined
    return raw


def _describe(row: Any) -> str:
    """A row as JSON text for the error output (what was read, so it can be found and fixed)."""
    return json.dumps(row, ensure_ascii=False, default=str, separators=(",", ":"))


__all__ = ["ACTIVITIES_COLUMN", "ID_COLUMN", "INTERNAL", "TEXT_COLUMN", "plain", "raw_leads", "with_activities"]

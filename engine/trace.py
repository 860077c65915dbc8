"""The explain trace: every rule considered, whether it fired, and the data it looked at.

Recorded only when a caller asks for an explanation, so the fast path pays nothing for it. Values are
rendered as JSON-safe data; a field the lead does not have is listed under `missing` instead, which is how an
author learns that a comparison was false because the field was absent (the documented missing-value rule).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.errors import EvaluationError
from engine.expr import MISSING
from engine.expr.functions import ACTIVITY_HELPERS, matching_activities

PREVIEW_ITEMS = 3  # a list value in the trace shows its length and this many items, never the whole list


class Trace:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def rule(self, kind: str, rule: str, fired: bool, points: Any, reason: str,
             values: tuple[dict[str, Any], list[str]] | dict[str, Any], **extra: Any) -> None:
        entry: dict[str, Any] = {"kind": kind, "rule": rule, "fired": fired, "reason": reason}
        if kind == "scoring":
            entry["points"] = points
        if isinstance(values, tuple):
            seen, missing = values
            if seen:
                entry["values"] = seen
            if missing:
                entry["missing"] = missing
        entry.update({k: v for k, v in extra.items() if v is not None})
        self.entries.append(entry)

    def note(self, kind: str, rule: str, reason: str) -> None:
        self.entries.append({"kind": kind, "rule": rule, "fired": False, "reason": reason, "note": True})

    def to_list(self) -> list[dict[str, Any]]:
        return self.entries


def guarded(fn: Any, rule: str, warnings: list[dict[str, str]], *args: Any) -> Any:
    """fn(*args) for a compiled condition; an EvaluationError becomes a warning naming `rule`, and False."""
    try:
        return fn(*args)
    except EvaluationError as exc:
        warnings.append({"rule": rule, "message": exc.message})
        return False


def jsonable(value: Any) -> Any:
    """Lead-view values (read-only mappings, tuples, datetimes, MISSING) as plain JSON data."""
    if value is MISSING:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=lambda v: (type(v).__name__, repr(v)))
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None  # NaN and infinities are not JSON; the CLI refuses them with a message
    return value


def read_path(names: Mapping[str, Any], path: str) -> Any:
    """Follow a dotted path such as 'lead.company.industry' through the evaluation names."""
    head, *rest = path.split(".")
    value = names.get(head, MISSING)
    for part in rest:
        if value is MISSING or value is None:
            return MISSING
        try:
            value = value[int(part)] if isinstance(value, tuple) else value[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return MISSING
    return value


def describe_values(compiled: Any, lead: Any, now: datetime, score: Any = None, activity: Any = None,
                    stage: Any = None) -> tuple[dict[str, Any], list[str]]:
    """(values of the data paths an expression reads, paths that were missing)."""
    if compiled is None:
        return {}, []
    names = {"lead": lead, "now": now, "score": score, "activity": activity, "stage": stage}
    seen: dict[str, Any] = {}
    missing: list[str] = []
    reads = activity_reads(compiled, lead, now)
    for path in compiled.paths:
        value = read_path(names, path)
        if value is MISSING or value is None:
            missing.append(path)
        elif path == "lead.activities" and reads:
            seen[path] = {"count": len(value)}  # what the rule looked at is listed per helper call below
        else:
            seen[path] = abbreviated(jsonable(value))
    seen.update(reads)
    return seen, missing


def abbreviated(value: Any) -> Any:
    """A long list as {"count", "first"}: an explanation shows what was read, not a copy of the lead."""
    if isinstance(value, list) and len(value) > PREVIEW_ITEMS:
        return {"count": len(value), "first": value[:PREVIEW_ITEMS]}
    return value


def activity_reads(compiled: Any, lead: Any, now: datetime) -> dict[str, Any]:
    """What each activity helper call with literal arguments read: how many activities matched, and the first
    few of them, keyed by the call as the author wrote it (`has_activity("demo_request", within_days=30)`)."""
    out: dict[str, Any] = {}
    for node in ast.walk(compiled.tree):
        helper = getattr(node, "lo_helper", None)
        if helper is None or helper.name not in ACTIVITY_HELPERS:
            continue
        try:
            values = [None if a is None else ast.literal_eval(a) for a in node.lo_args]  # type: ignore[attr-defined]
        except (ValueError, TypeError, SyntaxError):
            continue  # a computed argument: the helper's result is in the rule's outcome, not re-derived here
        args = {name: tuple(v) if isinstance(v, list) else v for name, v in zip(helper.params, values)}
        try:
            matched = matching_activities(lead, now, args.get("type"), args.get("within_days"), args.get("url"))
        except EvaluationError:
            continue
        key = ast.get_source_segment(compiled.source, node) or ast.unparse(node)
        entry: dict[str, Any] = {"matching": len(matched)}
        if matched:
            entry["first"] = [jsonable(a) for a in matched[:PREVIEW_ITEMS]]
        out[" ".join(key.split())] = entry
    return out

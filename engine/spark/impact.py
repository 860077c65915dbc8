"""The impact of two signed bundles on a whole table: `leadops diff`'s report data, computed on Spark.

Rows are sorted by lead id; each partition folds its leads into an `engine.impact.Impact` with the very
`Comparer` `leadops diff` uses, and sends it to the driver as JSON data (counters and examples, no pickled
objects). The driver merges the partitions in order, so the examples are the first ones by lead id and the report
does not depend on how the table was split. The `Report` is `leadops diff`'s, so text, Markdown and JSON are too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields
from datetime import datetime
from functools import partial
from typing import Any, Iterator

from engine.impact import Comparer, Impact, Report, stage_order
from engine.policyset import parse_instant
from engine.semantic_diff import semantic_diff
from engine.spark.decide import as_of_text
from engine.spark.inputs import prepare
from engine.errors import LeadError
from engine.spark.mapped import MappingSource, keyed, load_on_driver, worker_mapping
from engine.spark.rows import ACTIVITIES_COLUMN, ID_COLUMN, TEXT_COLUMN, raw_leads, with_activities
from engine.spark.session import require_map_in_arrow
from engine.spark.shipping import Shipment, ship, worker_policy_set

STATE_SCHEMA = "partition int, state string"
_COMPARERS: dict[tuple[str, str, str, int], Comparer] = {}  # per worker process


# --------------------------------------------------------------------------------------------- state codec


def _key(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _unkey(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def impact_state(impact: Impact) -> str:
    """An Impact as JSON text: counters as [key, count] pairs (tuple keys as lists), the rest as it is."""
    out: dict[str, Any] = {}
    for f in fields(impact):
        value = getattr(impact, f.name)
        out[f.name] = [[_key(k), v] for k, v in value.items()] if isinstance(value, Counter) else value
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def impact_from_state(text: str) -> Impact:
    """The inverse of `impact_state`."""
    data = json.loads(text)
    impact = Impact()
    for f in fields(impact):
        current = getattr(impact, f.name)
        value = data[f.name]
        setattr(impact, f.name, Counter({_unkey(k): v for k, v in value}) if isinstance(current, Counter) else value)
    return impact


# --------------------------------------------------------------------------------------------- worker side


def _comparer(base: Shipment, head: Shipment, as_of: str, max_examples: int) -> Comparer:
    key = (base.sha256, head.sha256, as_of, max_examples)
    comparer = _COMPARERS.get(key)
    if comparer is None:
        base_ps, head_ps = worker_policy_set(base), worker_policy_set(head)
        changes = semantic_diff(base_ps.model, head_ps.model)
        comparer = _COMPARERS[key] = Comparer(base_ps, head_ps, parse_instant(as_of), changes, max_examples)
    return comparer


def impact_partition(base: Shipment, head: Shipment, as_of: str, mode: str, max_examples: int,
                     mapping_source: MappingSource | None, batches: Iterator[Any]) -> Iterator[Any]:
    """The `mapInArrow` function: one row per partition holding its folded Impact."""
    import pyarrow as pa
    from pyspark import TaskContext

    comparer = _comparer(base, head, as_of, max_examples)
    mapping = worker_mapping(head, mapping_source) if mapping_source is not None else None
    total = Impact(max_examples)
    for batch in batches:
        total.merge(comparer.compare(_items(batch, mode, mapping)))
    context = TaskContext.get()
    yield pa.RecordBatch.from_pydict({"partition": [context.partitionId() if context else 0],
                                      "state": [impact_state(total)]},
                                     schema=pa.schema([("partition", pa.int32()), ("state", pa.string())]))


def _items(batch: Any, mode: str, mapping: Any = None) -> list[tuple[str, str]]:
    """(label, lead JSON) per row, as `Comparer.compare` takes them: JSON Lines text as read (so it is parsed as
    `leadops diff` parses it), typed rows, mapped records and rows with joined activities as JSON of the lead;
    a row that cannot be read or mapped as "\0reason" (counted as an error, as `leadops diff` does)."""
    labels = [lead_id or "(a row without an id)" for lead_id in batch.column(ID_COLUMN).to_pylist()]
    if mode == "text" and mapping is None and ACTIVITIES_COLUMN not in batch.schema.names:
        return [(label, text + "\n") for label, text in zip(labels, batch.column(TEXT_COLUMN).to_pylist())]
    items = []
    for label, (record, acts, _text, problem) in zip(labels, raw_leads(batch, mode)):
        try:
            if problem is not None:
                raise problem
            lead = mapping.to_lead(record, acts) if mapping is not None else with_activities(record, acts)
        except (ValueError, LeadError, RecursionError) as exc:
            items.append((label, "\0" + str(exc)))
            continue
        items.append((label, json.dumps(lead, ensure_ascii=False)))
    return items


# --------------------------------------------------------------------------------------------- driver side


def impact(df: Any, base_bundle: Any, head_bundle: Any, public_key: Any, as_of: datetime | str, *,
           mapping: str | None = None, activities: Any = None, activities_key: str = "lead_id", max_examples: int = 5,
           max_changed: float | None = None, acknowledge: bool = False, source: str = "the table",
           verify_now: datetime | None = None) -> Report:
    """`leadops diff`'s Report for every lead of `df` under two signed bundles at `as_of`.

    Both bundles are verified here before any job runs (BundleError / PolicyError otherwise); a `mapping` is
    checked against the head's policy set and reads every row for both. `max_changed`
    defaults to the policies' `guard.max_changed_percent`, as in `leadops diff`.
    """
    require_map_in_arrow()
    when = as_of_text(as_of)
    spark = df.sparkSession
    base = ship(spark, base_bundle, public_key, now=verify_now)
    head = ship(spark, head_bundle, public_key, now=verify_now)
    changes = semantic_diff(base.policy_set.model, head.policy_set.model)
    source = load_on_driver(mapping, head.policy_set) if mapping is not None else None
    keyer = partial(keyed, shipment=head.shipment, source=source) if source is not None else None
    prepared = prepare(df, activities, activities_key, keyer)
    frame, mode = prepared.df, prepared.mode
    tie = frame[TEXT_COLUMN] if mode == "text" else _row_hash(frame)
    ordered = frame.orderBy(frame[ID_COLUMN].asc_nulls_last(), tie)
    states = ordered.mapInArrow(partial(impact_partition, base.shipment, head.shipment, when, mode, max_examples,
                                        source), STATE_SCHEMA).collect()
    result = Impact(max_examples, stage_order=stage_order(base.policy_set, head.policy_set))
    for row in sorted(states, key=lambda r: r["partition"]):
        result.merge(impact_from_state(row["state"]))
    limits = [max_changed] if max_changed is not None else [
        x for x in (base.policy_set.model.max_changed_percent, head.policy_set.model.max_changed_percent)
        if x is not None]
    command = f"leadops spark impact --base {base.label} --head {head.label} --as-of {when} --format markdown"
    return Report(base.label, head.label, base.revision, head.revision, parse_instant(when), changes, result, source,
                  min(limits) if limits else None, acknowledge, command)


def _row_hash(df: Any) -> Any:
    from pyspark.sql import functions as F

    return F.xxhash64(*[df[c] for c in df.columns])


__all__ = ["impact", "impact_from_state", "impact_partition", "impact_state"]

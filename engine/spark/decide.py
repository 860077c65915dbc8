"""Decisions for a whole table on Spark: one `mapInArrow` pass, decisions and error rows, deterministic output.

Each worker gets the verified bundle from `engine.spark.shipping`, evaluates its Arrow batches lead by lead with
`PolicySet.evaluate` at the explicit `as_of` and emits one row per input row: the decision JSON exactly as
`leadops eval` prints it for JSON Lines (compact, the same encoder settings), or the error record's code, field
and message with the input that failed. The result is cached once, counted (which runs every partition, so a
worker that cannot verify the bundle fails the job before anything is written), then written sorted by lead id
into a fixed number of hash partitions: the same input, bundle and `as_of` give files with the same content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Iterator

from engine.batch import error_record, lead_json_error
from engine.crm.columns import COLUMN_NAMES, DECISION_COLUMNS, flatten_decision
from engine.errors import LeadError
from engine.policyset import parse_instant, require_aware
from engine.spark.inputs import Prepared, prepare
from engine.spark.mapped import MappingSource, keyed, load_on_driver, worker_mapping
from engine.spark.rows import ID_COLUMN, raw_leads, with_activities
from engine.spark.session import require_map_in_arrow
from engine.spark.shipping import Shipment, Verified, ship, worker_policy_set

# One result row per input row: the outcome, the error (if any), the decision JSON and its flat columns.
_OUTCOME = [("ok", "bool"), ("error_code", "string"), ("error_field", "string"), ("error_message", "string"),
            ("input", "string"), ("decision", "string")]
ERROR_FIELDS = ("lead_id", "error_code", "error_field", "error_message", "input")

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # == render.to_json(data, pretty=False)


def result_arrow_schema() -> Any:
    """The Arrow schema of the workers' output: outcome columns, then engine.crm's DECISION_COLUMNS."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, "bool_" if kind == "bool" else kind)()) for name, kind in _OUTCOME]
                     + DECISION_COLUMNS)


def result_schema() -> Any:
    """The same as a Spark schema (for `mapInArrow`)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(result_arrow_schema())


def as_of_text(as_of: datetime | str) -> str:
    """The explicit decision time as the ISO text decisions carry (`evaluated_at`); never a cluster clock."""
    when = parse_instant(as_of.strip()) if isinstance(as_of, str) else as_of
    return require_aware(when).isoformat()


# --------------------------------------------------------------------------------------------- worker side


def decide_rows(policy_set: Any, now: datetime, batch: Any, mode: str, mapping: Any = None) -> dict[str, list[Any]]:
    """One Arrow batch -> the result columns (one row per input row, in order)."""
    names = [name for name, _ in _OUTCOME] + COLUMN_NAMES
    out: dict[str, list[Any]] = {name: [] for name in names}
    empty = dict.fromkeys(COLUMN_NAMES)
    ids = batch.column(ID_COLUMN).to_pylist()
    evaluate = policy_set.evaluate
    for lead_id, (record, acts, text, problem) in zip(ids, raw_leads(batch, mode)):
        try:
            if problem is not None:
                raise problem
            lead = mapping.to_lead(record, acts) if mapping is not None else with_activities(record, acts)
            decision = evaluate(lead, now).to_dict()
        except (ValueError, LeadError, RecursionError) as exc:
            err = error_record(0, lead_json_error(exc))["error"]
            row = {"ok": False, "error_code": err["code"], "error_field": err["field"],
                   "error_message": err["message"], "input": text, "decision": None, **empty, "lead_id": lead_id}
        else:
            row = {"ok": True, "error_code": None, "error_field": None, "error_message": None, "input": None,
                   "decision": _dumps(decision), **flatten_decision(decision)}
        for name in names:
            out[name].append(row[name])
    return out


def decide_partition(shipment: Shipment, as_of: str, mode: str, mapping_source: MappingSource | None,
                     batches: Iterator[Any]) -> Iterator[Any]:
    """The `mapInArrow` function: verify (once per worker), then decide every batch."""
    import pyarrow as pa

    policy_set = worker_policy_set(shipment)
    mapping = worker_mapping(shipment, mapping_source) if mapping_source is not None else None
    now = parse_instant(as_of)
    schema = result_arrow_schema()
    for batch in batches:
        yield pa.RecordBatch.from_pydict(decide_rows(policy_set, now, batch, mode, mapping), schema=schema)


# --------------------------------------------------------------------------------------------- driver side


@dataclass
class Decisions:
    """The outcome of `decide`: lazily computed decision and error frames over one cached result."""

    result: Any  # the cached mapInArrow output
    source: Any  # the input frame, for the count of rows in
    bundle: Verified
    as_of: str
    partitions: int
    prepared: Prepared

    @property
    def decisions(self) -> Any:
        """engine.crm's DECISION_COLUMNS, decision (the JSON `leadops eval` prints), bundle_sha256, as_of: one
        row per decided lead, sorted by lead id."""
        return self._finish(self.result.where("ok"), (*COLUMN_NAMES, "decision"), ("lead_id", "decision"))

    @property
    def errors(self) -> Any:
        """lead_id, error_code, error_field, error_message, input, bundle_sha256, as_of: one row per failed row."""
        return self._finish(self.result.where("not ok"), ERROR_FIELDS, ("lead_id", "input", "error_message"))

    def _finish(self, df: Any, fields: tuple[str, ...], order: tuple[str, ...]) -> Any:
        from pyspark.sql import functions as F

        df = df.select(*fields, F.lit(self.bundle.sha256).alias("bundle_sha256"),
                       F.lit(self.as_of).alias("as_of"))
        return df.repartition(self.partitions, "lead_id").sortWithinPartitions(*order)

    def counts(self) -> tuple[int, int]:
        """(decisions, errors), computing every partition (and so verifying in every worker) if not done yet."""
        got = {row["ok"]: row["count"] for row in self.result.groupBy("ok").count().collect()}
        return got.get(True, 0), got.get(False, 0)

    def unjoined_activities(self) -> int:
        """Activity rows that joined no lead (see `Prepared.unjoined_activities`)."""
        return self.prepared.unjoined_activities()

    def rows_in(self) -> int:
        """Rows read from the input (blank JSON Lines lines are not rows): must equal decisions + errors."""
        return self.source.count()

    def write(self, out: str, *, overwrite: bool = False) -> tuple[int, int]:
        """Decisions as Parquet in `out`, errors in `out`/errors; returns (decisions, errors)."""
        counts = self.counts()  # every worker verified and decided before the first file is written
        mode = "overwrite" if overwrite else "errorifexists"
        self.decisions.write.mode(mode).parquet(out)
        self.errors.write.mode(mode).parquet(out.rstrip("/") + "/errors")
        return counts

    def close(self) -> None:
        self.result.unpersist()


def decide(df: Any, bundle: Any, public_key: Any, as_of: datetime | str, mapping: Any = None,
           activities: Any = None, *, activities_key: str = "lead_id", partitions: int | None = None,
           verify_now: datetime | None = None) -> Decisions:
    """Decide every lead of `df` with the signed `bundle` at `as_of` (see the module docstring).

    `df`: a typed lead table, or JSON Lines text (`spark.read.text`, one `value` column). `mapping`: a CRM
    mapping (preset name or YAML file, see engine.crm) that turns each row into a lead. `activities`: an events
    table, joined by `activities_key` (or by the mapping's activity `lead_id`). `bundle`: a path or bytes,
    verified here with `public_key` (a PEM file, a directory of them or a {key id: PEM} mapping) before any job
    runs; BundleError / PolicyError when it fails. `verify_now`: the instant the signature's expiry is checked at
    (default: now); decisions use `as_of` only.
    """
    require_map_in_arrow()
    when = as_of_text(as_of)
    spark = df.sparkSession
    shipped = ship(spark, bundle, public_key, now=verify_now)
    source = load_on_driver(mapping, shipped.policy_set) if mapping is not None else None
    keyer = partial(keyed, shipment=shipped.shipment, source=source) if source is not None else None
    prepared = prepare(df, activities, activities_key, keyer)
    result = prepared.df.mapInArrow(partial(decide_partition, shipped.shipment, when, prepared.mode, source),
                                    result_schema())
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    return Decisions(result.persist(), df, shipped, when, n, prepared)


__all__ = ["Decisions", "as_of_text", "decide", "decide_partition", "decide_rows", "result_schema"]

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
from engine.errors import LeadError, LeadopsError
from engine.policyset import parse_instant, require_aware
from engine.spark.inputs import prepare
from engine.spark.rows import raw_leads
from engine.spark.shipping import Shipment, Verified, ship, worker_policy_set

RESULT_SCHEMA = ("ok boolean, lead_id string, decision string, error_code string, error_field string, "
                 "error_message string, input string")
DECISION_FIELDS = ("lead_id", "decision")
ERROR_FIELDS = ("lead_id", "error_code", "error_field", "error_message", "input")

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # == render.to_json(data, pretty=False)


def as_of_text(as_of: datetime | str) -> str:
    """The explicit decision time as the ISO text decisions carry (`evaluated_at`); never a cluster clock."""
    when = parse_instant(as_of.strip()) if isinstance(as_of, str) else as_of
    return require_aware(when).isoformat()


# --------------------------------------------------------------------------------------------- worker side


def decide_rows(policy_set: Any, now: datetime, batch: Any, mode: str) -> dict[str, list[Any]]:
    """One Arrow batch -> the result columns (one row per input row, in order)."""
    out: dict[str, list[Any]] = {name: [] for name in ("ok", "lead_id", "decision", "error_code", "error_field",
                                                          "error_message", "input")}
    evaluate = policy_set.evaluate
    for raw, text, problem in raw_leads(batch, mode):
        lead_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            if problem is not None:
                raise problem
            decision = evaluate(raw, now).to_dict()
        except (ValueError, LeadError, RecursionError) as exc:
            err = error_record(0, lead_json_error(exc))["error"]
            _append(out, False, lead_id if isinstance(lead_id, str) else None, None,
                    err["code"], err["field"], err["message"], text)
            continue
        _append(out, True, decision["lead_id"], _dumps(decision), None, None, None, None)
    return out


def _append(out: dict[str, list[Any]], *values: Any) -> None:
    for column, value in zip(out.values(), values):
        column.append(value)


def decide_partition(shipment: Shipment, as_of: str, mode: str, batches: Iterator[Any]) -> Iterator[Any]:
    """The `mapInArrow` function: verify (once per worker), then decide every batch."""
    import pyarrow as pa

    policy_set = worker_policy_set(shipment)
    now = parse_instant(as_of)
    schema = _arrow_schema()
    for batch in batches:
        yield pa.RecordBatch.from_pydict(decide_rows(policy_set, now, batch, mode), schema=schema)


def _arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("ok", pa.bool_())] + [(name, pa.string()) for name in
                                             ("lead_id", "decision", "error_code", "error_field", "error_message",
                                              "input")])


# --------------------------------------------------------------------------------------------- driver side


@dataclass
class Decisions:
    """The outcome of `decide`: lazily computed decision and error frames over one cached result."""

    result: Any  # the cached mapInArrow output
    source: Any  # the input frame, for the count of rows in
    bundle: Verified
    as_of: str
    partitions: int

    @property
    def decisions(self) -> Any:
        """lead_id, decision, policy_revision, bundle_sha256, as_of: one row per decided lead, sorted by id."""
        return self._finish(self.result.where("ok"), DECISION_FIELDS, ("lead_id", "decision"))

    @property
    def errors(self) -> Any:
        """lead_id, error_code, error_field, error_message, input, bundle_sha256, as_of: one row per failed row."""
        return self._finish(self.result.where("not ok"), ERROR_FIELDS, ("lead_id", "input", "error_message"))

    def _finish(self, df: Any, fields: tuple[str, ...], order: tuple[str, ...]) -> Any:
        from pyspark.sql import functions as F

        extra = [F.lit(self.bundle.revision).alias("policy_revision")] if fields is DECISION_FIELDS else []
        df = df.select(*fields, *extra, F.lit(self.bundle.sha256).alias("bundle_sha256"),
                       F.lit(self.as_of).alias("as_of"))
        return df.repartition(self.partitions, "lead_id").sortWithinPartitions(*order)

    def counts(self) -> tuple[int, int]:
        """(decisions, errors), computing every partition (and so verifying in every worker) if not done yet."""
        got = {row["ok"]: row["count"] for row in self.result.groupBy("ok").count().collect()}
        return got.get(True, 0), got.get(False, 0)

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

    `df`: a typed lead table, or JSON Lines text (`spark.read.text`, one `value` column). `activities`: an events
    table joined by `activities_key`. `bundle`: a path or bytes, verified here with `public_key` (a PEM file, a
    directory of them or a {key id: PEM} mapping) before any job runs; BundleError / PolicyError when it fails.
    """
    if mapping is not None:
        raise LeadopsError("CRM mappings need engine.crm, which this build does not have yet")
    when = as_of_text(as_of)
    spark = df.sparkSession
    shipped = ship(spark, bundle, public_key, now=verify_now)
    prepared, mode = prepare(df, activities, activities_key)
    result = prepared.mapInArrow(partial(decide_partition, shipped.shipment, when, mode), RESULT_SCHEMA)
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    return Decisions(result.persist(), df, shipped, when, n)


__all__ = ["Decisions", "RESULT_SCHEMA", "as_of_text", "decide", "decide_partition", "decide_rows"]

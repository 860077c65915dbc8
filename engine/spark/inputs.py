"""Where the leads come from: Parquet, Delta, JSON Lines or CSV paths as DataFrames, plus activities joined by lead id.

JSON Lines are read as text (one `value` per line, blank lines dropped) so that each line is parsed by the
workers exactly as `leadops eval` parses it; Parquet and Delta tables are read typed (see `engine.spark.rows`), CSV exports (HubSpot, Salesforce) as strings
for a mapping to convert.
Every prepared frame carries `_leadops_id` (the lead id as text, for joins, sorting and error reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.errors import LeadopsError
from engine.spark.rows import ACTIVITIES_COLUMN, ID_COLUMN, INTERNAL, TEXT_COLUMN

FORMATS = ("jsonl", "parquet", "delta", "csv")
_JOIN = INTERNAL + "join"


@dataclass(frozen=True)
class LeadInput:
    """A DataFrame of leads and how its rows are read: mode "text" (JSON Lines) or "columns" (a typed table)."""

    df: Any
    mode: str
    source: str


def input_format(path: str, given: str | None = None) -> str:
    """jsonl, parquet or delta: `given`, else from the path's extension, else from a directory's content."""
    if given:
        if given not in FORMATS:
            raise LeadopsError(f"unknown input format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    p = Path(path)
    if p.suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if p.suffix == ".parquet":
        return "parquet"
    if p.suffix == ".csv":
        return "csv"
    if p.is_dir():
        if (p / "_delta_log").is_dir():
            return "delta"
        names = [c.name for c in p.rglob("*") if c.is_file() and not c.name.startswith((".", "_"))]
        if any(n.endswith(".parquet") for n in names):
            return "parquet"
        if any(n.endswith((".jsonl", ".ndjson", ".json")) for n in names):
            return "jsonl"
    if "://" in path:  # a cluster path (s3://, abfss://, dbfs:/): no local look-up possible
        raise LeadopsError(f"cannot tell the format of {path}; say it with --input-format {'|'.join(FORMATS)}")
    if not p.exists():
        raise LeadopsError(f"input {path} does not exist")
    raise LeadopsError(f"cannot tell the format of {path} (no .jsonl/.parquet files, no _delta_log); "
                       f"say it with --input-format {'|'.join(FORMATS)}")


def read_table(spark: Any, path: str, fmt: str | None = None, *, text: bool = True) -> LeadInput:
    """Read `path`; JSON Lines as text lines when `text` (leads), else typed (an events table)."""
    kind = input_format(path, fmt)
    source = Path(path.rstrip("/")).name or path
    if kind == "jsonl" and text:
        from pyspark.sql import functions as F

        df = spark.read.text(path).where(F.trim(F.col(TEXT_COLUMN)) != "")
        return LeadInput(df, "text", source)
    if kind == "jsonl":
        return LeadInput(spark.read.json(path), "columns", source)
    if kind == "csv":  # RFC 4180 exports (quoted newlines, "" escapes); every value a string, empty = absent
        reader = spark.read.options(header=True, multiLine=True, escape='"', encoding="UTF-8")
        return LeadInput(reader.csv(path), "columns", source)
    if kind == "delta":
        try:
            import delta  # noqa: F401 - only to say clearly what is missing
        except ImportError:
            raise LeadopsError(f"{path} is a Delta table; install delta-spark to read it (or export it to Parquet)") \
                from None
        return LeadInput(spark.read.format("delta").load(path), "columns", source)
    return LeadInput(spark.read.parquet(path), "columns", source)


def mode_of(df: Any) -> str:
    """"text" when the frame holds JSON Lines text (a single `value` column), else "columns"."""
    names = [c for c in df.columns if not c.startswith(INTERNAL)]
    return "text" if names == [TEXT_COLUMN] else "columns"


def with_lead_id(df: Any, mode: str) -> Any:
    """Add `_leadops_id`: the lead's id as text (null when the row has none)."""
    from pyspark.sql import functions as F

    if mode == "text":
        return df.withColumn(ID_COLUMN, F.get_json_object(F.col(TEXT_COLUMN), "$.id"))
    if "id" in df.columns:
        return df.withColumn(ID_COLUMN, F.col("id").cast("string"))
    return df.withColumn(ID_COLUMN, F.lit(None).cast("string"))


def join_activities(df: Any, events: Any, key: str = "lead_id") -> Any:
    """Attach each lead's rows of an events table (one row per activity, `key` = lead id) as `_leadops_activities`.

    The rows become structs of the table's own columns, sorted (so the list does not depend on how Spark read
    the table), and reach the workers next to the lead (appended to a native lead's own activities, or given to
    the mapping).
    """
    from pyspark.sql import functions as F

    if key not in events.columns:
        raise LeadopsError(f"the activities table has no {key!r} column to join on (columns: "
                           f"{', '.join(events.columns)})")
    fields = [c for c in events.columns if c != key and not c.startswith(INTERNAL)]
    order = [c for c in ("at", "type") if c in fields] + [c for c in fields if c not in ("at", "type")]
    grouped = events.where(F.col(key).isNotNull()).groupBy(F.col(key).cast("string").alias(_JOIN)).agg(
        F.array_sort(F.collect_list(F.struct(*order))).alias(ACTIVITIES_COLUMN))
    return df.join(grouped, df[ID_COLUMN] == grouped[_JOIN], "left").drop(_JOIN)


@dataclass(frozen=True)
class Prepared:
    """A lead frame ready for the workers (`_leadops_id` added, activities joined) and its events table."""

    df: Any
    mode: str
    events: Any = None  # the events table with its lead id column (None without activities)
    events_key: str = ""

    def unjoined_activities(self) -> int:
        """Activity rows that joined no lead (no lead id, or an id not in the input): reported, never dropped
        silently."""
        if self.events is None:
            return 0
        from pyspark.sql import functions as F

        ids = self.df.select(F.col(ID_COLUMN).alias(_JOIN)).where(F.col(_JOIN).isNotNull()).distinct()
        key = self.events[self.events_key].cast("string")
        return self.events.join(ids, key == ids[_JOIN], "left_anti").count()


def prepare(df: Any, activities: Any = None, activities_key: str = "lead_id",
            keyer: Callable[[Any, str, str], Any] | None = None) -> Prepared:
    """The frame ready for the workers: lead id column added, activities joined when given.

    `keyer(frame, mode, side)` adds `_leadops_id` when a mapping knows the ids (see `engine.spark.mapped`);
    without one the id is the lead's `id` and the events table's `activities_key` column.
    """
    mode = mode_of(df)
    df = with_lead_id(df, mode) if keyer is None else keyer(df, mode, "lead")
    if activities is None:
        return Prepared(df, mode)
    if keyer is not None:
        activities, activities_key = keyer(activities, mode_of(activities), "activity"), ID_COLUMN
    return Prepared(join_activities(df, activities, activities_key), mode, activities, activities_key)


__all__ = ["FORMATS", "LeadInput", "Prepared", "input_format", "join_activities", "mode_of", "prepare", "read_table",
           "with_lead_id"]

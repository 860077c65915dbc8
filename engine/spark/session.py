"""A Spark session for local runs and tests: Python workers on this interpreter, UTC, no UI, quiet logs."""

from __future__ import annotations

import os
import sys
from typing import Any


def local_session(master: str | None = "local[2]", *, shuffle_partitions: int | None = 2, app_name: str = "leadops",
                  conf: dict[str, str] | None = None) -> Any:
    """A (new or the running) SparkSession.

    `master` None: the session spark-submit or the cluster (Databricks) configured, left as it is; Spark's own
    default (local[*]) when there is none. A local master runs its Python workers on this interpreter (so they see
    leadops), without UI. The session time zone is pinned to UTC, although no decision reads it (`as_of` and
    timestamps are explicit).
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC")
    if master is not None:
        builder = builder.master(master)
    if master is not None and master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"]))
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        spark.sparkContext.setLogLevel("ERROR")
    except Exception:  # noqa: BLE001 - Spark Connect (Databricks serverless) has no SparkContext
        pass
    return spark


def require_map_in_arrow() -> None:
    """PySpark's `mapInArrow` refuses to run without pandas (its UDF plumbing checks for it, though no pandas step
    runs): say so in one line instead of a traceback from inside PySpark."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        from engine.errors import LeadopsError

        raise LeadopsError("Spark's DataFrame.mapInArrow needs pandas installed next to pyspark: "
                           "pip install 'pandas>=2.2,<3'") from None


__all__ = ["local_session", "require_map_in_arrow"]

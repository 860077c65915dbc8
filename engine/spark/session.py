"""A Spark session for local runs and tests: Python workers on this interpreter, UTC, no UI, quiet logs."""

from __future__ import annotations

import os
import sys
from typing import Any


def local_session(master: str | None = "local[2]", *, shuffle_partitions: int = 2, app_name: str = "leadops",
                  conf: dict[str, str] | None = None) -> Any:
    """A (new or the running) SparkSession. `master` None: the one spark-submit or the cluster configured (Spark's
    default, local[*], when there is none).

    The session time zone is pinned to UTC, although no decision reads it (`as_of` and timestamps are explicit).
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this interpreter (and see leadops)
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (builder.appName(app_name)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"]))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


__all__ = ["local_session"]

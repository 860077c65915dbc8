"""Whole tables on Apache Spark: the same signed policy and the same decisions, via DataFrame.mapInArrow.

    from engine.spark import decide, impact, local_session, read_table
    spark = local_session("local[2]")
    leads = read_table(spark, "leads.parquet")                # Parquet, Delta or JSON Lines
    result = decide(leads.df, "dist/bundle.tar.gz", "keys/ci.public.pem", "2026-11-23T09:00:00+10:00")
    result.write("out/")                                      # decisions in out/, failed rows in out/errors/
    report = impact(leads.df, "base.tar.gz", "head.tar.gz", "keys/", "2026-11-23T09:00:00+10:00")
    report.markdown()                                         # the same report as `leadops diff`

Modules: shipping.py (verify on the driver, ship as a file, verify and cache per worker), inputs.py (read and
join), rows.py (Arrow rows -> raw leads), decide.py (decisions and errors), impact.py (the diff report),
session.py (a local session). `python -m engine.spark` is `leadops spark` (for spark-submit and Databricks).
"""

from __future__ import annotations

from engine.spark.decide import Decisions, decide
from engine.spark.impact import impact
from engine.spark.inputs import LeadInput, read_table
from engine.spark.session import local_session

__all__ = ["Decisions", "LeadInput", "decide", "impact", "local_session", "read_table"]

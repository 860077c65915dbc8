"""The fact table as a file: CSV (ISO 8601 times, UTC) or Parquet (typed columns), chosen by the extension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import LeadopsError

FORMATS = (".csv", ".parquet")


def write_facts(table: Any, path: str | Path) -> None:
    """Write the fact table; an unknown extension is a LeadopsError naming the ones known."""
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, str(path))
    elif suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, str(path))
    else:
        raise LeadopsError(f"cannot write facts to '{path}': the file name must end in .csv or .parquet")

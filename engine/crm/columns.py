"""Decisions as flat columns for CRM write-back, CSV, Parquet and Spark: `flatten_decision` and
`DECISION_COLUMNS` (the ordered names and Arrow types of its output), and the batch output writers."""

from __future__ import annotations

import csv
import json
from array import array
from collections.abc import Iterable
from itertools import accumulate
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

# Times stay ISO 8601 strings with their offset (what the decision says, byte for byte; no zone is lost).
DECISION_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("lead_id", pa.string()),
    ("score", pa.float64()),
    ("grade", pa.string()),
    ("score_groups", pa.string()),        # JSON object {"fit": 45, "engagement": 12}
    ("stage", pa.string()),
    ("stage_from", pa.string()),
    ("stage_changed", pa.bool_()),
    ("stage_rule", pa.string()),
    ("owner", pa.string()),
    ("team", pa.string()),
    ("queue", pa.string()),
    ("route_rule", pa.string()),
    ("route_fallback", pa.bool_()),
    ("first_sla", pa.string()),           # the SLA with the earliest due time
    ("first_sla_due", pa.string()),
    ("first_sla_status", pa.string()),
    ("sla_count", pa.int32()),
    ("warnings", pa.int32()),
    ("policy_revision", pa.string()),
    ("evaluated_at", pa.string()),
]
COLUMN_NAMES = [name for name, _ in DECISION_COLUMNS]
ARROW_SCHEMA = pa.schema(DECISION_COLUMNS)


def _first_sla(slas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The SLA due first (ties: decision order); SLAs without a due time come last."""
    best = None
    for sla in slas:
        if sla.get("due") is None:
            continue
        if best is None or _instant(sla["due"]) < _instant(best["due"]):
            best = sla
    return best or (slas[0] if slas else None)


def _instant(text: str) -> Any:
    from engine.policyset import parse_instant

    return parse_instant(text)


_groups_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode  # == json.dumps(.., same options),
# without building an encoder per decision


def flatten_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """One decision (`Decision.to_dict()`) as the flat columns of DECISION_COLUMNS, in that order."""
    score, stage, route = decision["score"], decision["stage"], decision["route"]
    slas = decision.get("slas") or []
    first = _first_sla(slas)
    return {
        "lead_id": decision["lead_id"],
        "score": float(score["total"]),
        "grade": score.get("grade"),
        "score_groups": _groups_json(score.get("groups", {})),
        "stage": stage["to"],
        "stage_from": stage["from"],
        "stage_changed": bool(stage["changed"]),
        "stage_rule": stage.get("rule"),
        "owner": route.get("owner"),
        "team": route.get("team"),
        "queue": route.get("queue"),
        "route_rule": route["rule"],
        "route_fallback": bool(route["fallback"]),
        "first_sla": first["id"] if first else None,
        "first_sla_due": first.get("due") if first else None,
        "first_sla_status": first.get("status") if first else None,
        "sla_count": len(slas),
        "warnings": len(decision.get("warnings") or []),
        "policy_revision": decision["policy_revision"],
        "evaluated_at": decision["evaluated_at"],
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class CsvWriter:
    """Flat decision rows as RFC 4180 CSV (header first); `columns` picks and renames (CRM import CSV)."""

    def __init__(self, stream: TextIO, columns: list[tuple[str, str, Any]] | None = None):
        self.columns = columns or [(n, n, None) for n in COLUMN_NAMES]  # (header, decision column, reverse fn)
        self.writer = csv.writer(stream, lineterminator="\r\n")
        self.writer.writerow([header for header, _, _ in self.columns])

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.writer.writerow([_cell(rev(row[col]) if rev else row[col]) for _, col, rev in self.columns])

    def close(self) -> None:
        pass


def split_rows(output: Iterable[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One chunk of `evaluate_items(fmt="rows")` output as (flat decisions, error records), each in row order."""
    decisions: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for kind, row in output:
        (decisions if kind == "decision" else errors).append(row)
    return decisions, errors


def decision_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Flat decision rows as one Arrow record batch of ARROW_SCHEMA, built from the columns' buffers (Arrow's
    columnar layout) rather than `pa.array`/`from_pylist`, which import pandas on first use: 1.2 s in every
    process that writes Parquet, more than building the columns of 100,000 decisions. The text must be valid
    UTF-8 (the batch evaluator checks every decision's text before it becomes a row)."""
    return pa.RecordBatch.from_arrays([_BUILDERS[type_](name, rows) for name, type_ in DECISION_COLUMNS],
                                      schema=ARROW_SCHEMA)


def _bitmap(bits: str) -> pa.Buffer:
    """An Arrow bit-packed buffer (validity or booleans) from '0'/'1' per row, least significant bit first."""
    return pa.py_buffer(int(bits[::-1] or "0", 2).to_bytes((len(bits) + 7) // 8, "little"))


def _strings(name: str, rows: list[dict[str, Any]]) -> pa.Array:
    values = [row[name] for row in rows]
    nulls = values.count(None)
    texts = ["" if v is None else v for v in values] if nulls else values
    data = "".join(texts)
    if data.isascii():  # one character, one byte: the offsets are the lengths of the texts
        lengths, blob = map(len, texts), data.encode("ascii")
    else:
        encoded = [text.encode("utf-8") for text in texts]
        lengths, blob = map(len, encoded), b"".join(encoded)
    validity = _bitmap("".join("0" if v is None else "1" for v in values)) if nulls else None
    offsets = array("i", accumulate(lengths, initial=0))
    return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(offsets), pa.py_buffer(blob)],
                                 null_count=nulls)


def _fixed(code: str, type_: pa.DataType) -> Any:
    def build(name: str, rows: list[dict[str, Any]]) -> pa.Array:  # never null: flatten_decision always sets them
        return pa.Array.from_buffers(type_, len(rows), [None, pa.py_buffer(array(code, [row[name] for row in rows]))])
    return build


def _booleans(name: str, rows: list[dict[str, Any]]) -> pa.Array:
    return pa.Array.from_buffers(pa.bool_(), len(rows), [None, _bitmap("".join("1" if row[name] else "0" for row in rows))])


assert array("i").itemsize == 4, "int32 columns are built from C ints"
_BUILDERS = {pa.string(): _strings, pa.float64(): _fixed("d", pa.float64()), pa.int32(): _fixed("i", pa.int32()),
             pa.bool_(): _booleans}


class ParquetWriter:
    """Flat decision rows as Parquet, one row group per batch of rows written."""

    def __init__(self, path: str | Path):
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(str(path), ARROW_SCHEMA)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if rows:
            self.writer.write_batch(decision_batch(rows))

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """A batch of decision columns built elsewhere (a worker's `decision_batch`)."""
        if batch.num_rows:
            self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()


def crm_columns(mapping: Any) -> list[tuple[str, str, Any]]:
    """The CRM import CSV of a mapping's `writeback`: (CRM column, decision column, reverse through a map)."""
    if not mapping.writeback:
        from engine.errors import LeadopsError

        raise LeadopsError(f"mapping '{mapping.name}' has no writeback section; crm-csv needs one "
                           "(CRM column -> decision column), see README: Mappings")
    out = []
    for header, (column, through) in mapping.writeback.items():
        rev = (lambda value, t=through, h=header: None if value is None else mapping.reverse_value(t, value, column=h)) \
            if through else None
        out.append((header, column, rev))
    return out


__all__ = ["ARROW_SCHEMA", "COLUMN_NAMES", "CsvWriter", "DECISION_COLUMNS", "ParquetWriter", "crm_columns",
           "decision_batch", "flatten_decision", "split_rows"]

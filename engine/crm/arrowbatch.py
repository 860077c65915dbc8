"""Parquet in -> Parquet out as Arrow record batches: rows never cross a process boundary as Python objects.

The parent reads the lead file a record batch at a time and ships each batch to a worker as Arrow IPC bytes; the
worker turns the batch into leads (`records.batch_leads`, the same leads `records.plain` makes of each row),
decides them with the batch evaluator (`engine.batch._Evaluator.run`, so error records are the ones every other
path writes), and sends back the decision columns as one Arrow batch (`columns.decision_batch`) with the error
records. The parent only decodes and encodes Parquet, in input order, at most `2 * jobs + 2` batches in flight
(`engine.batch.evaluate_items`). Neither side imports pandas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from engine.crm.columns import decision_batch, split_rows
from engine.crm.records import batch_leads, parquet_batches


class DecidedBatch(NamedTuple):
    """One input batch decided: its decision columns as Arrow IPC bytes and its error records, in row order."""

    columns: bytes
    errors: list[dict[str, Any]]

    def record_batch(self) -> pa.RecordBatch:
        return _read_ipc(self.columns)


def ipc_batches(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(number of the batch's first row, the batch as Arrow IPC bytes) for each batch of a Parquet file, streamed
    (rows are numbered from 1, as `records.read_records` numbers them)."""
    first = 1
    for batch in parquet_batches(path):
        yield first, _ipc(batch)
        first += batch.num_rows


def decide_batch(evaluator: Any, chunk: tuple[int, bytes]) -> tuple[DecidedBatch, int, int, dict[str, int]]:
    """The `evaluate_items` task of a worker: one IPC batch of native leads -> (DecidedBatch, evaluated, failed,
    unused). `evaluator` is the worker's `_Evaluator` (fmt="rows", no mapping)."""
    first, data = chunk
    leads = batch_leads(_read_ipc(data))
    output, total, failed, unused = evaluator.run(list(enumerate(leads, first)))
    decisions, errors = split_rows(output)
    return DecidedBatch(_ipc(decision_batch(decisions)), errors), total, failed, unused


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _read_ipc(data: bytes) -> pa.RecordBatch:
    return pa.ipc.open_stream(data).read_next_batch()


__all__ = ["DecidedBatch", "decide_batch", "ipc_batches"]

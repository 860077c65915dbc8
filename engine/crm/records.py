"""Source records from files: CSV (RFC 4180, BOM, any encoding), JSON, JSON Lines and Parquet (streamed).

`read_records` yields ``(row, dict)`` for each record and ``(row, RecordError)`` for each one that cannot be
read (a broken CSV row, a bad JSON line, undecodable bytes), so a batch reports it and goes on. Rows are
1-based: the CSV line a record starts on (the header is line 1), the JSON Lines line, the element of a JSON
array, the Parquet row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import LeadError, LeadopsError
from engine.jsonstrict import NOT_UTF8, Decoder

FORMATS = ("json", "jsonl", "csv", "parquet")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv",
              ".parquet": "parquet", ".pq": "parquet"}
MAX_CSV_FIELD = 1 << 20  # one CSV cell (csv's default limit is 128 KiB)
PARQUET_BATCH = 2048
MAX_RECORD_LINES = 1000  # physical lines one CSV record may span (quoted newlines; also at most MAX_CSV_FIELD chars)
_SURROGATE = re.compile("[\udc80-\udcff]")


class RecordError(LeadError):
    """One record that could not be read; the batch writes it as an error record and goes on."""

    def __init__(self, message: str, code: str = "LEAD000", field: str = ""):
        super().__init__(message, field, code)


class InputError(LeadopsError):
    """The input as a whole cannot be read (missing file, no header, unknown format): one message, exit 1."""


def input_format(path: str | Path, given: str | None = None) -> str:
    """The format: `given`, else from the extension (.csv .tsv .json .jsonl .ndjson .parquet)."""
    if given:
        if given not in FORMATS:
            raise InputError(f"unknown input format '{given}'; use one of {', '.join(FORMATS)}")
        return given
    suffix = Path(str(path)).suffix.lower()
    if suffix not in EXTENSIONS:
        raise InputError(f"{path}: cannot tell the format from the extension '{suffix or '(none)'}'; "
                         f"pass --input-format {'|'.join(FORMATS)}")
    return EXTENSIONS[suffix]


def read_records(path: str | Path, input_format: str | None = None, encoding: str | None = None,
                 ) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """Records of a file as (row, dict) or (row, RecordError), in file order, streamed (bounded memory except
    for a JSON document, which is one value). Raises InputError when the file as a whole cannot be read."""
    fmt = globals()["input_format"](path, input_format)
    if str(path) != "-" and not Path(path).is_file():
        raise InputError(f"input file '{path}' does not exist")
    if fmt == "csv":
        return _csv_records(path, encoding, "\t" if str(path).lower().endswith(".tsv") else ",")
    if fmt == "jsonl":
        return _jsonl_records(path, encoding)
    if fmt == "json":
        return _json_records(path, encoding)
    return _parquet_records(path)


def _open_text(path: str | Path, encoding: str | None) -> Any:
    import sys

    name = encoding or "utf-8-sig"
    try:
        "".encode(name)
    except LookupError:
        raise InputError(f"unknown encoding '{encoding}' (e.g. utf-8, cp1252, latin-1)") from None
    if str(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=name, errors="surrogateescape", newline="")
    return open(path, encoding=name, errors="surrogateescape", newline="")


def _bad_bytes(text: str) -> str:
    match = _SURROGATE.search(text)
    byte = ord(match.group()) - 0xDC00 if match else 0
    return f"byte 0x{byte:02x} is {NOT_UTF8.split(' (')[0]}; pass --encoding (e.g. cp1252) if the file is not UTF-8"


def _ends_in_quotes(line: str, in_quotes: bool, delimiter: str) -> bool:
    """Whether a quoted field is still open at the end of `line` (RFC 4180: a quote opens a field only at its
    start; inside, "" is a quote and a lone " closes it)."""
    if '"' not in line:
        return in_quotes
    i, n = 0, len(line)
    field_start = not in_quotes
    while i < n:
        ch = line[i]
        if in_quotes:
            if ch == '"':
                if i + 1 < n and line[i + 1] == '"':
                    i += 1
                else:
                    in_quotes = False
        elif ch == '"' and field_start:
            in_quotes = True
        field_start = not in_quotes and ch == delimiter
        i += 1
    return in_quotes


class _PhysicalRecords:
    """(first line number, the lines of one CSV record): a record spans lines while a quoted field is open.
    A quote still open at the end of the file or after MAX_RECORD_LINES lines gives a one-line record. Lines
    can be pushed back (`push_back`) so that one broken row never swallows the rows after it."""

    def __init__(self, stream: Any, delimiter: str):
        from collections import deque

        self.queue: Any = deque()
        self.lines = enumerate(stream, 1)
        self.delimiter = delimiter

    def push_back(self, lines: list[tuple[int, str]]) -> None:
        self.queue.extendleft(reversed(lines))

    def __iter__(self) -> Iterator[tuple[int, list[tuple[int, str]]]]:
        pending: list[tuple[int, str]] = []
        open_quote = False
        while True:
            item = self.queue.popleft() if self.queue else next(self.lines, None)
            if item is None:
                if not pending:
                    return
                self.push_back(pending[1:])
                yield pending[0][0], pending[:1]
                pending, open_quote = [], False
                continue
            pending.append(item)
            open_quote = _ends_in_quotes(item[1], open_quote, self.delimiter)
            if not open_quote:
                yield pending[0][0], pending
                pending = []
            elif len(pending) > MAX_RECORD_LINES or sum(len(t) for _, t in pending) > MAX_CSV_FIELD:
                self.push_back(pending[1:])
                yield pending[0][0], pending[:1]
                pending, open_quote = [], False


def _csv_records(path: str | Path, encoding: str | None, delimiter: str) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(MAX_CSV_FIELD)

    def cells(text: str) -> list[str]:
        return next(csv.reader([text], delimiter=delimiter, strict=True), [])

    with _open_text(path, encoding) as stream:
        physical = _PhysicalRecords(stream, delimiter)
        records = iter(physical)
        first = next(records, None)
        if first is None:
            raise InputError(f"{path}: no header row (the first line must name the columns)")
        try:
            header = cells("".join(text for _, text in first[1]))
        except csv.Error as exc:
            raise InputError(f"{path}: line 1: the header row is not valid CSV ({exc})") from None
        if not header or not any(h.strip() for h in header):
            raise InputError(f"{path}: no header row (the first line must name the columns)")
        if any(_SURROGATE.search(h) for h in header):
            raise InputError(f"{path}: line 1: {_bad_bytes(''.join(header))}")
        names = [h.strip() for h in header]
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise InputError(f"{path}: line 1: the column '{n}' appears twice in the header; rename one")
            seen.add(n)
        width = len(names)
        for start, lines in records:
            text = "".join(t for _, t in lines)
            if not text.strip():
                continue  # a blank line
            try:
                line = text.rstrip("\r\n")
                # no quote, no stray CR: RFC 4180 reads it exactly as a plain split (the csv module is ~4x slower)
                plain = '"' not in line and "\r" not in line and len(line) <= MAX_CSV_FIELD  # else the csv module's limits
                row_cells = line.split(delimiter) if plain else cells(text)
                problem = None if len(row_cells) == width else RecordError(
                    f"broken CSV row: {len(row_cells)} fields, the header has {width} (an unquoted comma or quote?)",
                    "CSV002")
            except csv.Error as exc:
                problem = RecordError(f"broken CSV row: {exc} (an unbalanced quote?)", "CSV001")
            if problem is not None:
                if len(lines) > 1:  # a quote opened here swallowed the lines after it: blame this line only
                    problem = RecordError("broken CSV row: a quoted field opened on this line is never closed "
                                          "properly (an unbalanced quote)", "CSV001")
                    physical.push_back(lines[1:])
                yield start, problem
                continue
            row = dict(zip(names, row_cells))
            bad = next((n for n, c in row.items() if _SURROGATE.search(c)), None)
            if bad is not None:
                yield start, RecordError(f"column '{bad}': {_bad_bytes(row[bad])}", "CSV003", bad)
                continue
            yield start, row


def _jsonl_records(path: str | Path, encoding: str | None) -> Iterator[tuple[int, Any]]:
    from engine.batch import lead_json_error

    decode = Decoder(nonfinite=True).decode
    stream = _open_text(path, encoding or "utf-8")
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                value = decode(line)
            except (ValueError, RecursionError) as exc:
                err = lead_json_error(exc)
                yield number, RecordError(err.message, err.code, err.field)
                continue
            yield number, value if isinstance(value, dict) else RecordError(
                f"a record must be a JSON object, got {type(value).__name__}", "LEAD000")


def _json_records(path: str | Path, encoding: str | None) -> Iterator[tuple[int, Any]]:
    """A JSON array of records, one record, or an API page: HubSpot {"results": [...]}, Salesforce
    {"records": [...]}, Pipedrive {"success": true, "data": [...]}."""
    from engine.jsonstrict import loads

    with _open_text(path, encoding or "utf-8") as stream:
        text = stream.read()
    try:
        doc = loads(text, nonfinite=True)
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        for key in ("results", "records", "data"):  # HubSpot, Salesforce, Pipedrive
            if isinstance(doc.get(key), list) and "id" not in doc and "Id" not in doc:
                doc = doc[key]
                break
        else:
            doc = [doc]
    if not isinstance(doc, list):
        raise InputError(f"{path}: expected a JSON object or an array of objects, got {type(doc).__name__}")
    for number, value in enumerate(doc, 1):
        yield number, value if isinstance(value, dict) else RecordError(
            f"element {number} must be a JSON object, got {type(value).__name__}", "LEAD000")


def parquet_batches(path: str | Path) -> Iterator[Any]:
    """The record batches of a Parquet file (PARQUET_BATCH rows each), streamed; InputError if it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a Parquet file ({exc})") from None
    return source.iter_batches(batch_size=PARQUET_BATCH)


def _parquet_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    number = 0
    for batch in parquet_batches(path):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def batch_leads(batch: Any) -> list[dict[str, Any] | RecordError]:
    """The rows of an Arrow record batch as `plain` makes them (equal dicts, same key order), converted a column
    at a time: each column's type picks its converter once, so a string, number or boolean column costs no
    per-value Python work and a nested column only the conversion its types need. A row holding a value no
    lead can hold (binary) becomes a RecordError naming the column, as `plain` reports it."""
    names = batch.schema.names
    problems: dict[int, str] = {}
    columns = []
    for name, column in zip(names, batch.columns):
        if _is_list_of_flat_structs(column.type):
            columns.append(_struct_lists(column))
            continue
        values = column.to_pylist()
        convert = _converter(column.type)
        if convert is not None:
            values = _converted(values, convert, name, problems)
        columns.append(values)
    leads: list[dict[str, Any] | RecordError] = [
        {k: v for k, v in zip(names, row) if v is not None} for row in zip(*columns)]
    for index, message in problems.items():
        leads[index] = RecordError(message)
    return leads


def _is_list_of_flat_structs(type_: Any) -> bool:
    """list<struct<...>> whose fields are all strings, numbers or booleans (activities, sla_pauses)."""
    import pyarrow.types as t

    if not (t.is_list(type_) or t.is_large_list(type_)) or not t.is_struct(type_.value_type):
        return False
    struct = type_.value_type
    return all(_converter(struct.field(i).type) is None for i in range(struct.num_fields))


def _struct_lists(column: Any) -> list[Any]:
    """A list<struct> column's values as `plain` makes them, built from the struct's field columns: each element
    dict holds only its non-null fields from the start (to_pylist would build every field, then drop nulls)."""
    items = column.flatten()  # every element of every list, in order (slicing and null lists accounted for)
    names = [items.type.field(i).name for i in range(items.type.num_fields)]
    elements: list[Any] = [{k: v for k, v in zip(names, values) if v is not None}
                           for values in zip(*(field.to_pylist() for field in items.flatten()))]
    if items.null_count:  # a null element stays null, as in plain
        elements = [e if valid else None for e, valid in zip(elements, items.is_valid().to_pylist())]
    out: list[Any] = []
    start = 0
    for length in column.value_lengths().to_pylist():
        if length is None:
            out.append(None)
        else:
            out.append(elements[start:start + length])
            start += length
    return out


def _converted(values: list[Any], convert: Any, name: str, problems: dict[int, str]) -> list[Any]:
    try:
        return [None if v is None else convert(v) for v in values]
    except ValueError:  # a value no lead can hold: find the rows, each reported once (its first such column)
        out = []
        for index, value in enumerate(values):
            try:
                out.append(None if value is None else convert(value))
            except ValueError as exc:
                problems.setdefault(index, str(exc))
                out.append(None)
        return out


def _converter(type_: Any) -> Any:
    """A function turning one non-null Python value of this Arrow type into what `plain` makes of it, or None
    where the value is already JSON data (strings, numbers, booleans)."""
    import pyarrow.types as t

    if t.is_string(type_) or t.is_large_string(type_) or t.is_boolean(type_) or t.is_integer(type_) \
            or t.is_floating(type_) or t.is_null(type_):
        return None
    if t.is_struct(type_):
        fields = [(type_.field(i).name, _converter(type_.field(i).type)) for i in range(type_.num_fields)]
        if all(convert is None for _, convert in fields):
            return lambda d: {k: v for k, v in d.items() if v is not None}
        plainers = dict(fields)
        return lambda d: {k: v if plainers[k] is None else plainers[k](v) for k, v in d.items() if v is not None}
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_):
        item = _converter(type_.value_type)
        if item is None:
            return None
        return lambda items: [None if v is None else item(v) for v in items]
    return plain  # instants, dates, decimals, maps, binary (refused): value by value


def plain(value: Any) -> Any:
    """A value from Arrow (Parquet, Spark) as JSON data: nulls dropped from objects (a table has every column on
    every row, so null means absent), instants in UTC (never the local zone), dates ISO, decimals as numbers."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # Spark's TIMESTAMP_NTZ: a wall time with no zone is read as UTC, never local
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        raise ValueError("binary column values cannot be part of a lead (cast them to string)")
    return value


__all__ = ["EXTENSIONS", "FORMATS", "InputError", "RecordError", "batch_leads", "input_format", "parquet_batches",
           "plain", "read_records"]

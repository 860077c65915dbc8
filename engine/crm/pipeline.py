"""Source files -> batch items -> output files: what `eval`, `diff --leads` and `record` share when they read
leads as CRMs hold them (--mapping, --activities, --input-format, --encoding, --out, --output-format).

Counts always add up: every source record becomes a decision or an error record; every activity row is joined
to a lead, declared `skip`, or reported (unreadable, or no lead with its id).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from engine.crm.mapping import Context, Mapping, compile_mapping, load_mapping, schema_targets
from engine.crm.records import InputError, RecordError, input_format as detect_format, plain, read_records
from engine.errors import LeadError

OUTPUT_FORMATS = ("jsonl", "csv", "parquet", "crm-csv")
OUTPUT_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def native_mapping(ps: Any) -> Mapping:
    """The identity mapping of the lead schema: each scalar field from the column (or dotted JSON path) of the
    same name, typed by the schema. What a CSV or Parquet file of native leads is read with."""
    targets = schema_targets(ps.lead_schema.schema.get("properties", {}))
    lines = ["kind: mapping", "name: native", "lead:"]
    lines += [f"  {json.dumps(name)}: {{from: {json.dumps(name)}{', required: true' if name == 'id' else ''}}}"
              for name in targets]
    return compile_mapping("\n".join(lines).encode(), "native", ps)


def resolve_mapping(spec: str | None, ps: Any, input_format: str, strict: bool = False,
                    policy_dir: str | None = None) -> Mapping | None:
    """--mapping NAME|FILE (NAME: policy_dir/mappings/NAME.yaml, else the preset); without it, CSV and Parquet
    are read as native leads (CSV: one column per scalar field; Parquet: typed columns, nested lists and
    structs as they are), JSON as it is."""
    if spec == "native" or (spec is None and input_format == "csv"):
        mapping = native_mapping(ps)
        mapping.strict = strict
        return mapping
    if spec is None:
        return None
    search = Path(policy_dir or "policies") / "mappings"
    return load_mapping(spec, ps, strict=strict, search=search)


# ------------------------------------------------------------------------------------------ activities


@dataclass
class Activities:
    """Activity rows grouped by lead id, and what could not be joined (reported, never dropped silently)."""

    by_lead: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    rows: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    no_lead_id: list[int] = field(default_factory=list)
    joined: int = 0

    def take(self, lead_id: str | None) -> list[tuple[int, dict[str, Any]]] | None:
        acts = self.by_lead.pop(lead_id, None) if lead_id is not None else None
        if acts:
            self.joined += len(acts)
        return acts

    def report(self, path: str) -> list[str]:
        """Lines for the batch summary: unreadable rows, rows without a lead id, rows whose lead never came."""
        out = []
        if self.unreadable:
            shown = "; ".join(f"row {r}: {m}" for r, m in self.unreadable[:5])
            out.append(f"{path}: {len(self.unreadable)} activity row(s) could not be read: {shown}")
        if self.no_lead_id:
            out.append(f"{path}: {len(self.no_lead_id)} activity row(s) name no lead (rows "
                       f"{', '.join(map(str, self.no_lead_id[:10]))}{' …' if len(self.no_lead_id) > 10 else ''})")
        orphans = sum(len(v) for v in self.by_lead.values())
        if orphans:
            ids = ", ".join(list(self.by_lead)[:5])
            out.append(f"{path}: {orphans} activity row(s) for {len(self.by_lead)} lead id(s) not in the input "
                       f"(e.g. {ids})")
        return out

    @property
    def problems(self) -> int:
        return len(self.unreadable) + len(self.no_lead_id) + sum(len(v) for v in self.by_lead.values())


def read_activities(path: str, mapping: Mapping, input_format: str | None = None,
                    encoding: str | None = None) -> Activities:
    """Every activity row of an events file, grouped by `mapping.join_key` (held in memory: one lead's
    activities must all be at hand when the lead is mapped)."""
    if mapping.activity_key is None:
        raise InputError(f"mapping '{mapping.name}' has no activities section; --activities needs one "
                         "(lead_id and fields: type, at)")
    acts = Activities()
    for row, record in read_records(path, input_format, encoding):
        acts.rows += 1
        if isinstance(record, RecordError):
            acts.unreadable.append((row, record.message))
            continue
        key = mapping.join_key(record)
        if key is None:
            acts.no_lead_id.append(row)
            continue
        acts.by_lead.setdefault(key, []).append((row, record))
    return acts


# ------------------------------------------------------------------------------------------ batch items


def source_items(path: str, mapping: Mapping | None, input_format: str | None = None, encoding: str | None = None,
                 activities: Activities | None = None) -> Iterator[tuple[int, Any]]:
    """(row, item) for `engine.batch.evaluate_items`: a record, a (record, activities) pair, or a read error."""
    id_rule = mapping.rule("id") if mapping is not None else None
    typed = mapping is None and path != "-" and detect_format(path, input_format) == "parquet"
    for row, record in read_records(path, input_format, encoding):
        if isinstance(record, RecordError) or mapping is None:
            yield row, _native_row(record) if typed and not isinstance(record, RecordError) else record
            continue
        acts = None
        if activities is not None and id_rule is not None:
            try:
                lead_id = id_rule.get(record, {}, Context(row))
            except LeadError:
                lead_id = None
            acts = activities.take(lead_id if isinstance(lead_id, str) else None)
        yield row, (record, acts)


def evaluate_source(ps: Any, path: str, mapping: Mapping | None, target: "Output", now: Any, *,
                    input_format: str | None = None, encoding: str | None = None,
                    activities: Activities | None = None, explain: bool = False, fmt: str = "json",
                    jobs: int | None = None) -> Any:
    """Every record of one lead file decided into `target`, in input order (`engine.batch.evaluate_items`; its
    BatchResult). Native Parquet leads to Parquet decisions travel as Arrow batches (`engine.crm.arrowbatch`),
    everything else record by record (`source_items`)."""
    from engine.batch import evaluate_items

    if mapping is None and target.fmt == "parquet" and path != "-" and detect_format(path, input_format) == "parquet":
        from engine.crm.arrowbatch import decide_batch, ipc_batches

        return evaluate_items(ps, ipc_batches(path), target.write, now, explain=explain, fmt="rows", jobs=jobs,
                              task=decide_batch)
    items = source_items(path, mapping, input_format, encoding, activities)
    return evaluate_items(ps, items, target.write, now, explain=explain, fmt=fmt, jobs=jobs, mapping=mapping)


def _native_row(record: Any) -> Any:
    """A native lead from a typed (Parquet) row: nulls are absent, timestamps ISO in UTC (`records.plain`)."""
    try:
        return plain(record)
    except ValueError as exc:
        return RecordError(str(exc))


def mapped_lead_texts(paths: Iterable[str], mapping: Mapping | None, input_format: str | None = None,
                      encoding: str | None = None, activities: Activities | None = None,
                      ) -> Iterator[tuple[str, str]]:
    """(label, lead JSON) per source record for `diff --leads`; a record that cannot be read or mapped is
    ("label", "\\0message"), which the impact report counts as an error."""
    for path in paths:
        name = Path(path).name
        for row, item in source_items(path, mapping, input_format, encoding, activities):
            label = f"{name}:{row}"
            try:
                if isinstance(item, LeadError):
                    raise item
                record, acts = item if isinstance(item, tuple) else (item, None)
                lead = mapping.to_lead(record, acts, row) if mapping is not None else record
            except LeadError as exc:
                yield label, "\0" + (f"{exc.field}: " if exc.field and exc.field not in exc.message else "") + exc.message
                continue
            yield label, json.dumps(lead, ensure_ascii=False)


# ------------------------------------------------------------------------------------------ outputs


def output_format(out: str | None, given: str | None) -> str:
    """--output-format, else from the --out extension; stdout is JSON Lines."""
    if given:
        return given
    if out is None or out == "-":
        return "jsonl"
    fmt = OUTPUT_EXTENSIONS.get(Path(out).suffix.lower())
    if fmt is None:
        raise InputError(f"--out {out}: cannot tell the format from the extension; pass --output-format "
                         + "|".join(OUTPUT_FORMATS))
    return fmt


class Output:
    """Where a batch's decisions go: JSON Lines (file or stdout, error records in line), or CSV / Parquet /
    a CRM import CSV of flattened decision columns, with error records in OUT.errors.jsonl beside it."""

    def __init__(self, out: str | None, fmt: str, mapping: Mapping | None):
        from engine.crm.columns import CsvWriter, ParquetWriter, crm_columns

        self.fmt = fmt
        self.path = out
        self.errors_path = f"{out}.errors.jsonl" if out and fmt != "jsonl" else None
        self._errors: TextIO | None = None
        self._stream: TextIO | None = None
        self.writer: Any = None
        if fmt == "parquet" and out in (None, "-"):
            raise InputError("--output-format parquet needs --out FILE (Parquet is not written to a terminal)")
        columns = None
        if fmt == "crm-csv":
            if mapping is None or mapping.name == "native":
                raise InputError("--output-format crm-csv needs --mapping hubspot|salesforce|FILE (it names the CRM's columns)")
            columns = crm_columns(mapping)
        try:
            if fmt == "parquet":
                self.writer = ParquetWriter(out)  # type: ignore[arg-type]
            else:
                self._stream = sys.stdout if out in (None, "-") else open(out, "w", encoding="utf-8", newline="")  # noqa: SIM115
                if fmt != "jsonl":
                    self.writer = CsvWriter(self._stream, columns)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror}") from None
        self.batch_fmt = "json" if fmt == "jsonl" else "rows"

    def write(self, output: Any) -> None:
        """One chunk of `evaluate_items` output (a worker's DecidedBatch on the Arrow path)."""
        if self.batch_fmt != "rows":
            assert self._stream is not None
            self._stream.write(output)
            return
        from engine.crm.arrowbatch import DecidedBatch
        from engine.crm.columns import split_rows

        if isinstance(output, DecidedBatch):
            self.writer.write_batch(output.record_batch())
            errors = output.errors
        else:
            decisions, errors = split_rows(output)
            self.writer.write(decisions)
        for record in errors:
            self._error(record)

    def _error(self, record: dict[str, Any]) -> None:
        if self._errors is None:
            self._errors = sys.stderr if self.errors_path is None else open(self.errors_path, "w", encoding="utf-8")  # noqa: SIM115
        self._errors.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        for stream in (self._stream, self._errors):
            if stream is not None:
                stream.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        for stream in (self._stream, self._errors):
            if stream is not None and stream not in (sys.stdout, sys.stderr):
                stream.close()


def unused_report(unused: dict[str, int], limit: int = 20) -> str:
    """The once-per-batch line about source fields no mapping rule names (field, rows holding a value)."""
    if not unused:
        return ""
    items = sorted(unused.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"'{name}' ({count} row{'s' if count != 1 else ''})" for name, count in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return (f"unused source fields (no mapping rule names them): {shown}{more}; map them, list them under "
            "`ignore:`, or pass --strict to refuse such rows")


__all__ = ["Activities", "OUTPUT_FORMATS", "Output", "mapped_lead_texts", "native_mapping", "output_format",
           "evaluate_source", "read_activities", "resolve_mapping", "source_items", "unused_report"]

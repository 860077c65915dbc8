"""Batch evaluation of JSON Lines: every core, input order, bounded memory.

    from engine.batch import evaluate_lines
    total, failed = evaluate_lines(ps, enumerate(open("leads.jsonl"), 1), sys.stdout, now, jobs=None)

One output line per non-blank input line, in input order: a decision (compact JSON, or the text rendering
followed by a blank line with ``fmt="text"``) or an error record
``{"line": n, "error": {"code", "field", "message"}}`` for a line that is not JSON or not a valid lead (the
shape of `cli.lead_error_record`). Counts in = counts out.

Parallelism uses processes (``jobs`` workers, default: every core). Each worker builds the policy set once,
from exactly the files the parent's set was built from (`ps.source_files`, `ps.root`, `ps.revision` through
`engine.load_policy_files`), so a decision never depends on which process made it. Lines travel in chunks;
at most ``2 * jobs + 2`` chunks are in flight, so memory stays bounded however long the input is, and
results are written in input order as soon as the oldest chunk is done. A short input (one chunk) is
evaluated in-process without starting workers. A progress bar (tqdm) goes to stderr only when stderr is a
terminal.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, TextIO

from engine.errors import EvaluationError, LeadError
from engine.expr import encodable_text
from engine.fastjson import LeadDecoder, compact_bytes
from engine.jsonstrict import NOT_UTF8, StrictJSONError

DEFAULT_CHUNK = 2000  # lines per task: few, big IPC messages (≈3 MB in + out), still bounded: ≤ 2·jobs+2 in flight


def error_record(line: int, exc: Exception, lead_id: Any = None) -> dict[str, Any]:
    """The error record of one failed line (same shape as `cli.lead_error_record`); `lead_id` when one was read,
    so integrators can join the record back to their data by id as well as by line number."""
    if isinstance(exc, LeadError):
        record: dict[str, Any] = {"line": line, "error": {"code": exc.code, "field": exc.field, "message": exc.message}}
    else:
        record = {"line": line, "error": {"code": "LEAD000", "field": "", "message": str(exc)}}
    if isinstance(lead_id, str) and lead_id:
        record["lead_id"] = lead_id
    return record


def error_text(record: dict[str, Any]) -> str:
    """An error record as one readable line (for --format text)."""
    err = record["error"]
    where = f" {err['field']}:" if err.get("field") else ""
    lead = f" (lead {record['lead_id']})" if record.get("lead_id") else ""
    return f"line {record['line']}{lead}: error[{err['code']}]{where} {err['message']}"


_JSON_POSITION = re.compile(r": line \d+ column (\d+) \(char \d+\)$")


def lead_json_error(exc: Exception) -> LeadError:
    """A lead that could not be read or evaluated as a LeadError: JSON problems are LEAD000 "malformed JSON"
    (a repeated key names its path as the field)."""
    if isinstance(exc, LeadError):
        return exc
    if isinstance(exc, StrictJSONError) and exc.kind == "utf-8":
        return LeadError(f"the line is {NOT_UTF8}", code="LEAD000")
    message = _JSON_POSITION.sub(r" at column \1", str(exc))  # the record already names the input line
    return LeadError(f"malformed JSON: {message}", getattr(exc, "path", ""), "LEAD000")


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # == render.to_json(data, pretty=False)


class _Evaluator:
    """Turns chunks of (line number, item) into output; one per process.

    An item is a JSON line (str), an already-read record (dict: a native lead, or a source record when a
    mapping is given), a (record, activities) pair for a mapping, or a read error (LeadError) to pass on.
    With ``fmt="rows"`` the output is a list of ("decision", flat columns) / ("error", error record).

    JSON lines are read by `fastjson.LeadDecoder` (orjson where it provably agrees with the strict parser) and
    JSON output is written by `fastjson.compact_bytes` (orjson, byte-identical to `_dumps`); --explain and
    text output keep the original renderers."""

    def __init__(self, ps: Any, now: datetime, explain: bool, fmt: str, mapping: Any = None):
        self.ps = ps
        self.now = now
        self.explain = explain
        self.text = fmt == "text"
        self.rows = fmt == "rows"
        self.mapping = mapping
        self.loads = LeadDecoder().decode  # NaN/Infinity: left to the lead schema, which names the field
        if self.text:
            from engine.render import decision_text

            self.decision_text = decision_text
        if self.rows:
            from engine.crm.columns import flatten_decision

            self.flatten = flatten_decision

    def run(self, chunk: list[tuple[int, Any]]) -> tuple[Any, int, int, dict[str, int]]:
        """(output, items evaluated, items failed, {unused source field: rows}) for one chunk."""
        out: list[Any] = []
        append = out.append
        evaluate = self.ps.evaluate
        now, explain, text, rows = self.now, self.explain, self.text, self.rows
        loads, mapping = self.loads, self.mapping
        unused: dict[str, int] = {}
        total = failed = 0
        for number, item in chunk:
            if isinstance(item, str) and not item.strip():
                continue
            total += 1
            raw: Any = None
            try:
                if isinstance(item, LeadError):
                    raise item
                if isinstance(item, str):
                    raw = loads(item)
                elif mapping is not None:
                    record, acts = item if isinstance(item, tuple) else (item, None)
                    raw = record
                    raw, extra, act_extra = mapping.map_record(record, acts, number)
                    for name in extra:
                        unused[name] = unused.get(name, 0) + 1
                    for name in act_extra:
                        unused["activities: " + name] = unused.get("activities: " + name, 0) + 1
                else:
                    raw = item
                decision = evaluate(raw, now, explain).to_dict()
                if rows:
                    flat = self.flatten(decision)
                    for value in flat.values():  # Parquet/CSV writers need valid text too
                        if isinstance(value, str):
                            encodable_text(value)
                    append(("decision", flat))
                else:
                    append(encodable_text(self.decision_text(decision, explain) + "\n\n" if text else _compact(decision, explain) + "\n"))
            except (ValueError, LeadError, RecursionError, EvaluationError) as exc:
                failed += 1
                lead_id = raw.get("id") if isinstance(raw, dict) else None
                if isinstance(exc, EvaluationError):  # unencodable output: typed, and no bad text in the record
                    exc, lead_id = LeadError(f"the decision cannot be written: {exc.message}", code=exc.code), None
                elif lead_id is None and mapping is not None and isinstance(raw, dict):
                    lead_id = _source_id(mapping, raw)
                record = error_record(number, lead_json_error(exc), lead_id)
                if rows:
                    append(("error", record))
                else:
                    append(error_text(record) + "\n\n" if text else _compact(record, False) + "\n")
        return (out if rows else "".join(out)), total, failed, unused


def _compact(data: dict[str, Any], explain: bool) -> str:
    """Compact JSON text of a decision or error record (== `_dumps`); orjson unless there is a trace."""
    return _dumps(data) if explain else compact_bytes(data, "surrogatepass").decode("utf-8", "surrogatepass")


def _source_id(mapping: Any, record: dict[str, Any]) -> Any:
    """The lead id of a source record that failed to map (so the error record can be joined back by id)."""
    rule = mapping.rule("id")
    if rule is None:
        return None
    try:
        from engine.crm.mapping import Context

        value = rule.get(record, {}, Context())
    except (ValueError, LeadError):
        return None
    return value if isinstance(value, str) else None


_WORKER: _Evaluator | None = None


def _init_worker(files: dict[str, bytes], root: str, revision: str, now: datetime, explain: bool, fmt: str,
                 mapping_source: tuple[str, bytes, bool] | None = None) -> None:
    global _WORKER
    import engine

    ps = engine.load_policy_files(files, root, revision)
    mapping = None
    if mapping_source is not None:
        from engine.crm.mapping import compile_mapping

        name, data, strict = mapping_source
        mapping = compile_mapping(data, name, ps, strict=strict)
    _WORKER = _Evaluator(ps, now, explain, fmt, mapping)


def _run_chunk(chunk: Any, task: Any = None) -> tuple[Any, int, int, dict[str, int]]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(chunk) if task is None else task(_WORKER, chunk)


def _chunks(lines: Iterable[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    it = iter(lines)
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        yield chunk


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _progress(enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit=" leads", unit_scale=True, file=sys.stderr, dynamic_ncols=True, leave=True)


def evaluate_lines(ps: Any, lines: Iterable[tuple[int, str]], out: TextIO, now: datetime, *, explain: bool = False,
                   fmt: str = "json", jobs: int | None = None, chunk_size: int = DEFAULT_CHUNK,
                   progress: bool | None = None) -> tuple[int, int]:
    """Evaluate numbered JSON Lines into `out` in input order; return (lines evaluated, lines failed).

    `jobs`: worker processes (None or 0: every core; 1: in this process). `progress`: None = a tqdm bar on
    stderr when it is a terminal.
    """
    result = evaluate_items(ps, lines, out.write, now, explain=explain, fmt=fmt, jobs=jobs, chunk_size=chunk_size,
                            progress=progress)
    return result.total, result.failed


class BatchResult:
    """What a batch did: items in (= decisions + error records), items failed, unused source fields."""

    def __init__(self) -> None:
        self.total = 0
        self.failed = 0
        self.unused: dict[str, int] = {}  # source field no mapping rule names -> rows holding a value

    @property
    def decisions(self) -> int:
        return self.total - self.failed


def evaluate_items(ps: Any, items: Iterable[tuple[int, Any]], emit_output: Any, now: datetime, *,
                   explain: bool = False, fmt: str = "json", jobs: int | None = None, chunk_size: int = DEFAULT_CHUNK,
                   progress: bool | None = None, mapping: Any = None, task: Any = None) -> BatchResult:
    """Evaluate numbered items (JSON lines, records, (record, activities) pairs with `mapping`, read errors) in
    input order; `emit_output` receives each chunk's output in order (text, or with fmt="rows" a list of
    ("decision", flat columns) / ("error", error record)).

    `task`: a module-level function (evaluator, chunk) -> (output, evaluated, failed, unused); with it, each
    item is a whole chunk handed to it as it is, in a worker (e.g. an Arrow record batch,
    `engine.crm.arrowbatch`)."""
    jobs = default_jobs() if not jobs or jobs < 1 else jobs
    chunks = _chunks(items, max(1, chunk_size)) if task is None else iter(items)
    run = _Evaluator.run if task is None else task
    bar = _progress(progress)
    result = BatchResult()

    def emit(chunk_result: tuple[Any, int, int, dict[str, int]]) -> None:
        output, n, bad, unused = chunk_result
        if output:
            emit_output(output)
        result.total += n
        result.failed += bad
        for name, count in unused.items():
            result.unused[name] = result.unused.get(name, 0) + count
        if bar is not None:
            bar.update(n)

    try:
        first = next(chunks, None)
        if first is None:
            return result
        second = next(chunks, None)
        if jobs == 1 or second is None:
            local = _Evaluator(ps, now, explain, fmt, mapping)
            emit(run(local, first))
            if second is not None:
                emit(run(local, second))
                for chunk in chunks:
                    emit(run(local, chunk))
            return result
        for stream in (sys.stdout, sys.stderr):  # a forked worker must not inherit unflushed output
            stream.flush()
        flush = getattr(getattr(emit_output, "__self__", None), "flush", None)
        if flush is not None:
            flush()
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        mapping_source = (mapping.source[0], mapping.source[1], mapping.strict) if mapping is not None else None
        args = (dict(ps.source_files), ps.root, ps.revision, now, explain, fmt, mapping_source)
        window = 2 * jobs + 2
        with ctx.Pool(jobs, initializer=_init_worker, initargs=args) as pool:
            pending: deque[Any] = deque()
            pending.append(pool.apply_async(_run_chunk, (first, task)))
            pending.append(pool.apply_async(_run_chunk, (second, task)))
            for chunk in chunks:
                while len(pending) >= window:
                    emit(pending.popleft().get())
                pending.append(pool.apply_async(_run_chunk, (chunk, task)))
            while pending:
                emit(pending.popleft().get())
        return result
    finally:
        if bar is not None:
            bar.close()


__all__ = ["BatchResult", "evaluate_items", "evaluate_lines", "error_record", "default_jobs", "DEFAULT_CHUNK"]

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
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, TextIO

from engine.errors import LeadError
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
    """Turns chunks of (line number, text) into output bytes (UTF-8); one per process.

    A decision without a trace is written by `fastjson.compact_bytes` (orjson, byte-identical to `_dumps`);
    leads are read by `fastjson.LeadDecoder` (orjson where it provably agrees with the strict parser). With
    --explain and for text output the original renderers run unchanged.
    """

    def __init__(self, ps: Any, now: datetime, explain: bool, fmt: str, errors: str = "strict"):
        self.ps = ps
        self.now = now
        self.explain = explain
        self.text = fmt == "text"
        self.errors = errors  # how the output stream encodes what is not UTF-8 (lone surrogates)
        self.loads = LeadDecoder().decode  # NaN/Infinity: left to the lead schema, which names the field
        if self.text:
            from engine.render import decision_text

            self.decision_text = decision_text

    def run(self, chunk: list[tuple[int, str]]) -> tuple[bytes, int, int]:
        """(output bytes, lines evaluated, lines failed) for one chunk."""
        out: list[bytes] = []
        append = out.append
        evaluate = self.ps.evaluate
        now, explain, text, errors = self.now, self.explain, self.text, self.errors
        loads = self.loads
        plain = not (text or explain)
        total = failed = 0
        for number, line in chunk:
            if not line.strip():
                continue
            total += 1
            raw: Any = None
            try:
                raw = loads(line)
                decision = evaluate(raw, now, explain).to_dict()
                if plain:
                    append(compact_bytes(decision, errors))
                else:
                    append((self.decision_text(decision, explain) + "\n" if text else _dumps(decision))
                           .encode("utf-8", errors))
            except (ValueError, LeadError, RecursionError) as exc:
                failed += 1
                lead_id = raw.get("id") if isinstance(raw, dict) else None
                record = error_record(number, lead_json_error(exc), lead_id)
                append((error_text(record) + "\n").encode("utf-8", errors) if text else compact_bytes(record, errors))
        if out:
            out.append(b"")
        return b"\n".join(out), total, failed


_WORKER: _Evaluator | None = None


def _init_worker(files: dict[str, bytes], root: str, revision: str, now: datetime, explain: bool, fmt: str,
                 errors: str) -> None:
    global _WORKER
    import engine

    _WORKER = _Evaluator(engine.load_policy_files(files, root, revision), now, explain, fmt, errors)


def _run_chunk(chunk: list[tuple[int, str]]) -> tuple[bytes, int, int]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(chunk)


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


def _byte_sink(out: TextIO) -> tuple[Callable[[bytes], Any], str]:
    """(write UTF-8 bytes to `out`, the encode error handler the workers use).

    A UTF-8 text stream with a binary buffer (stdout, files) gets the bytes directly, encoded with the
    stream's own error handler, so the bytes are those its text layer would write; any other stream (StringIO)
    gets text decoded back from the bytes (``surrogatepass`` both ways, so nothing is lost or altered).
    """
    buffer = getattr(out, "buffer", None)
    encoding = (getattr(out, "encoding", None) or "").lower().replace("_", "-")
    if buffer is not None and encoding in ("utf-8", "utf8"):
        out.flush()  # text written before must come first
        return buffer.write, getattr(out, "errors", None) or "strict"
    return (lambda data: out.write(data.decode("utf-8", "surrogatepass"))), "surrogatepass"


def evaluate_lines(ps: Any, lines: Iterable[tuple[int, str]], out: TextIO, now: datetime, *, explain: bool = False,
                   fmt: str = "json", jobs: int | None = None, chunk_size: int = DEFAULT_CHUNK,
                   progress: bool | None = None) -> tuple[int, int]:
    """Evaluate numbered JSON Lines into `out` in input order; return (lines evaluated, lines failed).

    `jobs`: worker processes (None or 0: every core; 1: in this process). `progress`: None = a tqdm bar on
    stderr when it is a terminal.
    """
    jobs = default_jobs() if not jobs or jobs < 1 else jobs
    chunks = _chunks(lines, max(1, chunk_size))
    bar = _progress(progress)
    total = failed = 0
    write, errors = _byte_sink(out)

    def emit(result: tuple[bytes, int, int]) -> None:
        nonlocal total, failed
        data, n, bad = result
        if data:
            write(data)
        total += n
        failed += bad
        if bar is not None:
            bar.update(n)

    try:
        first = next(chunks, None)
        if first is None:
            return 0, 0
        second = next(chunks, None)
        if jobs == 1 or second is None:
            local = _Evaluator(ps, now, explain, fmt, errors)
            emit(local.run(first))
            if second is not None:
                emit(local.run(second))
                for chunk in chunks:
                    emit(local.run(chunk))
            return total, failed
        for stream in (out, sys.stdout, sys.stderr):  # a forked worker must not inherit unflushed output
            stream.flush()
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        args = (dict(ps.source_files), ps.root, ps.revision, now, explain, fmt, errors)
        window = 2 * jobs + 2
        with ctx.Pool(jobs, initializer=_init_worker, initargs=args) as pool:
            pending: deque[Any] = deque()
            pending.append(pool.apply_async(_run_chunk, (first,)))
            pending.append(pool.apply_async(_run_chunk, (second,)))
            for chunk in chunks:
                while len(pending) >= window:
                    emit(pending.popleft().get())
                pending.append(pool.apply_async(_run_chunk, (chunk,)))
            while pending:
                emit(pending.popleft().get())
        return total, failed
    finally:
        if bar is not None:
            bar.close()


__all__ = ["evaluate_lines", "error_record", "default_jobs", "DEFAULT_CHUNK"]

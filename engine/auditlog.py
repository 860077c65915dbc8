"""The decision log: an append-only JSON Lines audit record that fails closed and visibly, never torn.

Why each rule exists:

* a record is appended whole or not at all: a failed write (full disk, I/O error) is cut back to the last
  complete line, so a torn record never glues itself onto the next one; a torn tail left by a crash is moved
  to ``<log>.torn`` and cut off when the log is opened;
* a failed write raises `AuditLogUnavailable` (the service answers 503 and reports itself degraded) instead of
  serving decisions nobody recorded; the next successful write clears the problem;
* the file is reopened on request (``SIGHUP``, logrotate's convention) and when the path no longer names the
  open file (renamed or deleted), checked at most every `MOVED_CHECK_INTERVAL` seconds (a ``stat`` per record
  was a measurable share of a decision): records written in that window after a rename still land, whole, in
  the renamed file, which is what logrotate's rename-then-SIGHUP expects;
* records are canonical JSON (sorted keys, `canonical_bytes`: orjson where it writes the very bytes of
  `bundle.canonical_json`), one line each, appended with one ``write`` per request.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import orjson

from engine.bundle import canonical_json
from engine.fastjson import _float_may_differ

TAIL_CHUNK = 64 * 1024
MOVED_CHECK_INTERVAL = 0.5  # seconds between checks that the path still names the open file


def canonical_bytes(value: Any) -> bytes:
    """`bundle.canonical_json(value)`, byte for byte: orjson with sorted keys, else the stdlib encoder.

    orjson and the stdlib differ only where `fastjson.compact_bytes` says: some small floats, and what orjson
    refuses (lone surrogates, huge integers, other types), which go to canonical_json with its errors; and
    non-finite floats, which canonical_json refuses and orjson writes as null. Records and leads hold none:
    a request body with NaN or Infinity is malformed JSON (400), and a decision's numbers are finite
    (`scoring.number` raises on the others), as the batch's output relies on too."""
    try:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return canonical_json(value)
    return canonical_json(value) if _float_may_differ(out) else out


def process_log_path(path: str | os.PathLike, index: int) -> Path:
    """The decision log of server process `index` under ``leadops serve --processes``: ``decisions.jsonl`` ->
    ``decisions.0.jsonl``, ``decisions.1.jsonl``, ... One file per process, not one shared file: appends from
    several processes to one file contended for a lock (measured: p99 from 9 ms to 150 ms at 8 connections),
    and a failed write could only be cut back safely by the one process that writes the file."""
    path = Path(path)
    suffix = "".join(path.suffixes[-1:])
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f"{stem}.{index}{suffix}")


class AuditLogUnavailable(Exception):
    """The decision log could not take a record; the answer it belonged to must not be sent as a success."""


def repair_torn_tail(path: Path) -> int:
    """Cut an incomplete last line (a crash mid-write) off `path`; keep the cut bytes in `<path>.torn`.

    Returns the number of bytes cut (0 when the file ends with a newline or is empty).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return 0
        end = size
        keep = 0
        while end > 0:  # scan backwards for the last newline, a chunk at a time (records can be large)
            start = max(0, end - TAIL_CHUNK)
            chunk = os.pread(fd, end - start, start)
            at = chunk.rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        torn = os.pread(fd, size - keep, keep)
        with open(path.with_name(path.name + ".torn"), "ab") as sidecar:
            sidecar.write(torn + b"\n")
        os.ftruncate(fd, keep)
        return size - keep
    finally:
        os.close(fd)


class DecisionLog:
    """Append-only JSON Lines audit log; each batch of records is written whole under a lock, or not at all.
    One process writes one log (`process_log_path` names each process's own under `serve --processes`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._good_size = 0
        self._torn = False
        self._reopen_requested = False
        self._checked_at = 0.0
        self.problem: str | None = None  # why the last write failed; None once a write succeeds
        self.repaired_bytes = 0
        self._open()

    def _open(self) -> None:
        self.repaired_bytes += repair_torn_tail(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        st = os.fstat(fd)
        old, self._fd = self._fd, fd
        self._identity = (st.st_dev, st.st_ino)
        self._good_size = st.st_size
        self._checked_at = time.monotonic()
        self._torn = False
        if old is not None:
            os.close(old)

    def request_reopen(self) -> None:
        """Reopen before the next write (safe to call from a signal handler: it only sets a flag)."""
        self._reopen_requested = True

    def _moved(self) -> bool:
        """Whether the path no longer names the open file: checked every MOVED_CHECK_INTERVAL seconds, and at
        every write while writes fail (an operator who frees space by moving the log gets a fresh one at once)."""
        now = time.monotonic()
        if now - self._checked_at < MOVED_CHECK_INTERVAL and self.problem is None:
            return False
        self._checked_at = now
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._identity

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append the records (one JSON line each); raises AuditLogUnavailable when they could not all be written."""
        self.write_lines(b"".join(canonical_bytes(rec) + b"\n" for rec in records))

    def write_lines(self, data: bytes) -> None:
        """Append whole JSON lines (each ending in a newline) with one write; AuditLogUnavailable when it fails."""
        if not data:
            return
        with self._lock:
            try:
                if self._fd is None or self._reopen_requested or self._moved():
                    self._reopen_requested = False
                    self._open()
                assert self._fd is not None
                if self._torn:  # an earlier failed write could not be cut back: cut it now
                    os.ftruncate(self._fd, self._good_size)
                    self._torn = False
                self._append(data)
            except OSError as exc:
                self.problem = f"decision log {self.path}: {exc.strerror or exc}"
                raise AuditLogUnavailable(self.problem) from None
            self.problem = None

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError:
            try:
                os.ftruncate(self._fd, self._good_size)
            except OSError:
                self._torn = True
            raise
        self._good_size += len(data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

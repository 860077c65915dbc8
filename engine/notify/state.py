"""What notify already sent: a JSON state file, locked against overlapping runs and replaced atomically, so
that a rerun (or a second cron job started while the first still posts) never sends an event twice.

The lock is an exclusive `flock` on FILE.lock held for the whole run; the file is rewritten (temporary file in
the same directory, fsync, rename) after every delivered message, so a run killed half-way loses nothing it
sent.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.errors import LeadopsError

KIND = "leadops-notify-state"


class StateError(LeadopsError):
    """The state file cannot be read, written or locked."""


class NotifyState:
    """Sent event keys (key -> when, by `now` and by the wall clock). Use as a context manager to hold the lock."""

    def __init__(self, path: str | Path | None, wait: float = 30.0, lock: bool = True):
        self.path = Path(path) if path is not None else None
        self.wait = wait
        self.lock = lock  # False: read only (a dry run neither waits for nor creates the lock)
        self.sent: dict[str, dict[str, Any]] = {}
        self._lock: Any = None

    def __enter__(self) -> "NotifyState":
        if self.path is None:
            return self
        if self.lock:
            self._lock = self._acquire()
        self.sent = self._read()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _acquire(self) -> Any:
        assert self.path is not None
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = open(lock_path, "a+")
        except OSError as exc:
            raise StateError(f"{lock_path}: cannot open the lock file: {exc.strerror}") from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise StateError(f"{self.path}: another notify run holds {lock_path} (waited {self.wait:g} s); "
                                     "let it finish, or give each job its own --state") from None
                time.sleep(0.1)

    def _read(self) -> dict[str, dict[str, Any]]:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise StateError(f"{self.path}: not a notify state file ({exc}); move it away to start afresh "
                             "(every open event is then sent again)") from None
        if not isinstance(doc, dict) or doc.get("kind") != KIND or not isinstance(doc.get("sent"), dict):
            raise StateError(f"{self.path}: not a notify state file (expected {{\"kind\": \"{KIND}\", \"sent\": {{…}}}})")
        return doc["sent"]

    def seen(self, key: str) -> bool:
        return key in self.sent

    def record(self, key: str, now: str) -> None:
        """Mark `key` sent and write the file at once (atomically)."""
        self.sent[key] = {"now": now, "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.path is not None:
            if not self.lock:
                raise StateError(f"{self.path}: opened read-only (dry run)")
            self._write()

    def _write(self) -> None:
        assert self.path is not None
        data = json.dumps({"kind": KIND, "version": 1, "sent": self.sent}, indent=1, sort_keys=True) + "\n"
        folder = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the state file: {exc.strerror}") from None

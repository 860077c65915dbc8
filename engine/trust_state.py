"""The service's persisted trust state: the highest verified bundle sequence and the last good bundle.

TUF keeps trusted metadata on the client so that rollback and freeze protection survive a restart; without it
a restarted server would accept any older signed bundle. The state directory holds ``last-good.tar.gz`` (the
bundle bytes last published) and ``trust.json`` (its sequence, revision, SHA-256 and when it was verified).
Both are replaced atomically (engine.client's write: temporary file, fsync, rename, fsync the directory), bundle first,
so a crash at any point leaves either the old state or the new one, never a record without its bundle.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.client import _atomic_write as atomic_write  # the one atomic replace (tmp, fsync, rename, fsync dir)

STATE_FILE = "trust.json"
BUNDLE_FILE = "last-good.tar.gz"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class TrustRecord:
    """What the service last trusted: never go below `sequence`; `verified_at` (Unix time) was before expiry."""

    sequence: int
    revision: str
    sha256: str
    verified_at: int


def default_state_dir(source: str | os.PathLike) -> Path:
    """``$XDG_STATE_HOME/leadops/serve-<hash of the source path>`` (``~/.local/state`` when unset).

    Outside the bundle directory on purpose: whoever can replace a bundle must not also be able to reset the
    trusted sequence by deleting a file next to it.
    """
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:12]
    return base / "leadops" / f"serve-{digest}"


class TrustState:
    """Read and advance the persisted trust state of one service deployment."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)  # made on the first save, so merely looking leaves no trace

    def load(self) -> tuple[TrustRecord | None, str | None]:
        """The persisted record (None when there is none) and, when the state is unreadable, why."""
        path = self.directory / STATE_FILE
        try:
            raw: Any = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as exc:
            return None, f"trust state {path} is unreadable ({exc}); refusing anything below the last good bundle"
        try:
            record = TrustRecord(
                sequence=int(raw["sequence"]), revision=str(raw["revision"]), sha256=str(raw["sha256"]),
                verified_at=int(raw["verified_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None, f"trust state {path} is malformed; refusing anything below the last good bundle"
        return record, None

    def last_good(self) -> bytes | None:
        try:
            return (self.directory / BUNDLE_FILE).read_bytes()
        except OSError:
            return None

    def save(self, record: TrustRecord, bundle: bytes) -> None:
        """Persist a newly published bundle; raises OSError when the state directory cannot take it.

        Under an exclusive lock on ``.lock`` in the directory: the processes of ``leadops serve --processes``
        share one state directory, and the check against the stored sequence and the writes must not
        interleave (else a process publishing sequence 5 could overwrite another's 6)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current, _ = self.load()
            if current is not None and current.sequence > record.sequence:
                raise ValueError(f"refusing to lower the trusted sequence from {current.sequence} to "
                                 f"{record.sequence}")
            if current is None or current.sha256 != record.sha256 or self.last_good() is None:
                atomic_write(self.directory / BUNDLE_FILE, bundle)
            atomic_write(self.directory / STATE_FILE, json.dumps(asdict(record), sort_keys=True).encode() + b"\n")
        finally:
            os.close(lock)  # releases the lock

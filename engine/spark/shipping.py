"""A signed bundle's way to the Spark workers: verified on the driver, shipped as a file, verified again per worker.

The bundle travels as bytes in a file (`SparkSession.addArtifacts(path, file=True)`, which is
`SparkContext.addFile` on classic Spark and works on Spark Connect too), never as pickled compiled code. What
the task closure carries is a `Shipment` of plain data: the file's name, the SHA-256 the driver verified, the
trusted public keys (PEM) and the instant the driver verified at. Each Python worker reads the file, checks the
digest, runs the same `engine.signing.verify_bundle` the driver ran (at the driver's instant, so a partition that
Spark re-runs verifies exactly as the first run did) and keeps the compiled `PolicySet` in a module-level cache:
workers are reused, so that happens once per worker process, and any failure fails the task (fail closed).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.bundle import BundleError, sha256_hex
from engine.signing import TrustedKeys, VerifiedBundle, load_trusted_keys, verify_bundle

_PREFIX = "leadops-bundle-"


@dataclass(frozen=True)
class Shipment:
    """Plain data naming a verified bundle for the workers (safe to pickle: no code, no compiled policy)."""

    file_name: str
    sha256: str
    keys: tuple[tuple[str, bytes], ...]  # (key id, PEM) of every trusted public key
    verified_at: float  # POSIX seconds of the driver's verification


@dataclass(frozen=True)
class Verified:
    """A bundle verified on the driver: its policy set (for the driver's own work) and the shipment for workers."""

    verified: VerifiedBundle
    policy_set: Any
    shipment: Shipment
    label: str

    @property
    def revision(self) -> str:
        return self.policy_set.revision

    @property
    def sha256(self) -> str:
        return self.verified.sha256


def _key_pems(keys: dict[str, Any]) -> tuple[tuple[str, bytes], ...]:
    """The trusted keys as (key id, PEM bytes), read once on the driver (a key file need not exist on workers)."""
    from cryptography.hazmat.primitives import serialization

    return tuple(
        (kid, key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        for kid, key in sorted(keys.items())
    )


def verify_on_driver(bundle: str | os.PathLike | bytes, public_key: TrustedKeys, *,
                     now: datetime | None = None) -> tuple[VerifiedBundle, Any, tuple[tuple[str, bytes], ...], datetime]:
    """Verify and compile a bundle before any job starts; raise BundleError / PolicyError (fail closed)."""
    if isinstance(bundle, (bytes, bytearray)):
        data = bytes(bundle)
    else:
        try:
            data = Path(bundle).read_bytes()
        except OSError as exc:
            raise BundleError("unreadable", f"cannot read bundle {bundle}: {exc.strerror}") from None
    when = now or datetime.now(timezone.utc)
    keys = load_trusted_keys(public_key)
    verified = verify_bundle(data, keys, now=when)
    return verified, verified.load_policy_set(), _key_pems(keys), when


_STAGING: list[Path] = []


def _staging() -> Path:
    """A directory for the files handed to Spark: it fetches them lazily, so they live as long as this process."""
    if not _STAGING:
        _STAGING.append(Path(tempfile.mkdtemp(prefix="leadops-spark-")))
        atexit.register(shutil.rmtree, _STAGING[0], True)
    return _STAGING[0]


def ship(spark: Any, bundle: str | os.PathLike | bytes, public_key: TrustedKeys, *,
         now: datetime | None = None) -> Verified:
    """Verify `bundle` on the driver, then add it to the session as a content-addressed file for the workers."""
    verified, policy_set, pems, when = verify_on_driver(bundle, public_key, now=now)
    name = f"{_PREFIX}{verified.sha256}.tar.gz"
    path = _staging() / name
    if not path.exists():
        path.write_bytes(verified.raw)
    spark.addArtifacts(str(path), file=True)  # same name => same bytes, so adding it twice is a no-op
    label = Path(bundle).name if not isinstance(bundle, (bytes, bytearray)) else name
    return Verified(verified, policy_set, Shipment(name, verified.sha256, pems, when.timestamp()), label)


# --------------------------------------------------------------------------------------------- worker side

_POLICY_SETS: dict[str, Any] = {}  # bundle SHA-256 -> compiled PolicySet, one per worker process


def worker_policy_set(shipment: Shipment) -> Any:
    """The shipped bundle's PolicySet in this worker: read, digest-checked, verified and compiled once."""
    cached = _POLICY_SETS.get(shipment.sha256)
    if cached is not None:
        return cached
    from pyspark import SparkFiles

    try:
        data = Path(SparkFiles.get(shipment.file_name)).read_bytes()
    except OSError as exc:
        raise BundleError("unreadable", f"worker cannot read the shipped bundle {shipment.file_name}: {exc}") from None
    if sha256_hex(data) != shipment.sha256:
        raise BundleError("file-modified", f"the shipped bundle {shipment.file_name} is not the one the driver verified")
    when = datetime.fromtimestamp(shipment.verified_at, timezone.utc)
    verified = verify_bundle(data, load_trusted_keys(dict(shipment.keys)), now=when)
    policy_set = verified.load_policy_set()
    _POLICY_SETS[shipment.sha256] = policy_set
    return policy_set


__all__ = ["Shipment", "Verified", "ship", "verify_on_driver", "worker_policy_set"]

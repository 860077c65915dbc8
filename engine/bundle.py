"""Reproducible policy bundles and their safe, in-memory extraction.

A bundle is a gzipped tarball in the layout of an Open Policy Agent bundle: the policy set's files at their
repo-relative paths (``policies/*.yaml``, ``schemas/*.json``), a ``.manifest`` and, once signed, a
``.signatures.json`` (see ``engine.signing``).

Building is reproducible: the same files and revision give byte-identical archives (sorted entries, mtime 0,
uid/gid 0, empty owner names, mode 0644, a gzip header with mtime 0 and no file name).

Reading never touches the file system and trusts nothing in the archive: the compressed size, the
decompressed size (counted while streaming, so a gzip bomb stops at the limit), the entry count, every entry's
type (regular files and directories only: no symlinks, hard links, devices or FIFOs) and every name (no
absolute paths, no ``..``, no backslashes or control characters, no duplicates) are checked, and each problem is
a ``BundleError`` with a stable ``code``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from engine import jsonstrict
from engine.errors import LeadopsError

MANIFEST = ".manifest"
SIGNATURES = ".signatures.json"
RESERVED_NAMES = frozenset({MANIFEST, SIGNATURES})
# OPA hashes these base names as structured documents and would load them as data; a leadops bundle has none.
OPA_DATA_NAMES = frozenset({"data.json", "data.yaml", "data.yml", "patch.json"})

BUNDLE_FORMAT = 1
DEFAULT_ENGINE_COMPAT = ">=0.1,<1"

# Limits (all overridable per call). A policy set is a few dozen kilobytes; these leave a wide margin.
DEFAULT_MAX_ARCHIVE = 16 * 1024 * 1024  # compressed bytes accepted
DEFAULT_MAX_UNPACKED = 64 * 1024 * 1024  # decompressed tar bytes accepted
DEFAULT_MAX_ENTRIES = 2_000
MAX_NAME_LENGTH = 255
_CHUNK = 64 * 1024

_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_.@+=-][A-Za-z0-9_.@+= -]*$")


class BundleError(LeadopsError):
    """A bundle could not be built, read or verified; `code` is stable, `reason` says exactly what was wrong.

    Codes: ``oversize``, ``malformed-archive``, ``unsafe-path``, ``unsafe-link``, ``unsafe-type``,
    ``duplicate-entry``, ``too-many-entries``, ``malformed-manifest``, ``missing-manifest``, ``invalid-name``,
    plus the verification codes listed in ``engine.signing``.
    """

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class Bundle:
    """The parsed content of a bundle archive.

    `files` holds every regular file except `.manifest` and `.signatures.json` (name -> bytes, sorted);
    `manifest` is the parsed `.manifest` (None when absent); `manifest_bytes` its raw bytes; `signatures` the
    parsed `.signatures.json` (None when absent).
    """

    files: dict[str, bytes]
    manifest: dict[str, Any] | None
    manifest_bytes: bytes | None = None
    signatures: Any = None
    signatures_bytes: bytes | None = None
    size: int = 0
    unpacked_size: int = 0

    @property
    def revision(self) -> str:
        return str((self.manifest or {}).get("revision", ""))

    def signed_files(self) -> dict[str, bytes]:
        """Every file a signature must cover: the content files plus `.manifest` when present."""
        out = dict(self.files)
        if self.manifest_bytes is not None:
            out[MANIFEST] = self.manifest_bytes
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class _Limits:
    max_size: int = DEFAULT_MAX_ARCHIVE
    max_unpacked: int = DEFAULT_MAX_UNPACKED
    max_entries: int = DEFAULT_MAX_ENTRIES


# --------------------------------------------------------------------------------------------- helpers


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys, UTF-8, no NaN: the form `.manifest` is written in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_name(name: str, *, what: str = "entry") -> str:
    """Return `name` if it is a safe, normalized, relative posix path; raise BundleError otherwise."""
    if not isinstance(name, str) or not name:
        raise BundleError("unsafe-path", f"{what} has an empty name")
    if len(name) > MAX_NAME_LENGTH:
        raise BundleError("unsafe-path", f"{what} name longer than {MAX_NAME_LENGTH} characters: {name[:60]!r}…")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError("unsafe-path", f"{what} {name!r} is an absolute path")
    if "\\" in name:
        raise BundleError("unsafe-path", f"{what} {name!r} contains a backslash")
    parts = name.split("/")
    if ".." in parts:
        raise BundleError("unsafe-path", f"{what} {name!r} climbs out of the bundle with '..'")
    for part in parts:
        if part in ("", "."):
            raise BundleError("unsafe-path", f"{what} {name!r} is not a normalized path (empty or '.' component)")
        if not _SAFE_COMPONENT.match(part):
            raise BundleError(
                "unsafe-path",
                f"{what} {name!r} contains characters outside [A-Za-z0-9_.@+= -] (control, non-ASCII or shell characters)",
            )
    return name


def normalize_text(name: str, data: bytes) -> bytes:
    """The normalized form of a policy or schema file: no UTF-8 BOM, LF line endings.

    Both are invisible to YAML and JSON, so the policy set built from the bundle behaves exactly as the one built
    from the working tree; other files are stored unchanged.
    """
    if not name.endswith((".yaml", ".yml", ".json")):
        return data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n")


def engine_version() -> str:
    try:
        from importlib.metadata import version

        return version("leadops")
    except Exception:  # not installed (a plain checkout): fall back to the source version
        return "0.1.0"


def _version_tuple(text: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", text.split("+")[0].split("-")[0])
    if not nums:
        raise ValueError(f"not a version: {text!r}")
    out = [int(n) for n in nums[:4]]
    while len(out) < 3:
        out.append(0)
    return tuple(out)


def version_satisfies(version: str, spec: str) -> bool:
    """True when `version` meets every comma-separated clause of `spec` (>=, >, <=, <, ==, !=)."""
    v = _version_tuple(version)
    for clause in (c.strip() for c in spec.split(",")):
        if not clause:
            continue
        m = re.match(r"^(>=|<=|==|!=|>|<)\s*(\S+)$", clause)
        if not m:
            raise ValueError(f"bad version clause {clause!r}")
        op, target = m.group(1), _version_tuple(m.group(2))
        ok = {
            ">=": v >= target,
            "<=": v <= target,
            ">": v > target,
            "<": v < target,
            "==": v == target,
            "!=": v != target,
        }[op]
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------------------------- build


def make_manifest(
    files: Mapping[str, bytes],
    revision: str,
    *,
    policy_version: str,
    sequence: int | None = None,
    engine_compat: str = DEFAULT_ENGINE_COMPAT,
    roots: list[str] | None = None,
    policy_root: str = "policies",
) -> dict[str, Any]:
    if roots is None:
        roots = sorted({name.split("/", 1)[0] for name in files if "/" in name}) or [""]
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "revision": str(revision),
        "roots": roots,
        "policy_root": policy_root,
        "policy_version": str(policy_version),
        "engine": {"leadops": engine_compat},
        "files": [{"name": name, "sha256": sha256_hex(files[name])} for name in sorted(files)],
    }
    if sequence is not None:
        manifest["sequence"] = _check_sequence(sequence)
    return manifest


def _check_sequence(sequence: Any) -> int:
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0 or sequence >= 2**63:
        raise BundleError("invalid-sequence", f"sequence must be an integer in [0, 2^63), got {sequence!r}")
    return sequence


def pack(entries: Mapping[str, bytes]) -> bytes:
    """A reproducible .tar.gz holding `entries` (name -> bytes): sorted, zeroed metadata, fixed gzip header."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_bundle(
    files: Mapping[str, bytes],
    revision: str,
    *,
    policy_version: str,
    sequence: int | None = None,
    engine_compat: str = DEFAULT_ENGINE_COMPAT,
    roots: list[str] | None = None,
    policy_root: str = "policies",
) -> bytes:
    """Build a reproducible, unsigned bundle from `files` (repo-relative posix path -> bytes).

    Files are stored in their normalized form (see `normalize_text`) next to a `.manifest` listing each with
    its SHA-256. The same arguments always give the same bytes.
    """
    if not revision or not isinstance(revision, str):
        raise BundleError("invalid-revision", "a bundle needs a non-empty revision")
    normalized: dict[str, bytes] = {}
    for name, data in files.items():
        check_name(name, what="file")
        if name in RESERVED_NAMES or name.rsplit("/", 1)[-1] in RESERVED_NAMES:
            raise BundleError("invalid-name", f"{name!r} is reserved for the bundle's own metadata")
        if name.rsplit("/", 1)[-1] in OPA_DATA_NAMES:
            raise BundleError("invalid-name", f"{name!r}: OPA reserves this base name for data documents")
        if not isinstance(data, (bytes, bytearray)):
            raise BundleError("invalid-name", f"{name!r}: content must be bytes")
        normalized[name] = normalize_text(name, bytes(data))
    if not normalized:
        raise BundleError("invalid-name", "a bundle needs at least one file")
    if not any(name.startswith(policy_root + "/") for name in normalized):
        raise BundleError("invalid-name", f"no file under the policy root {policy_root!r}")
    manifest = make_manifest(
        normalized,
        revision,
        policy_version=policy_version,
        sequence=sequence,
        engine_compat=engine_compat,
        roots=roots,
        policy_root=policy_root,
    )
    entries = dict(normalized)
    entries[MANIFEST] = canonical_json(manifest)
    return pack(entries)


# --------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceState:
    """Where a policy directory's content comes from: its git commit and whether its files differ from it."""

    revision: str
    commit: str | None
    dirty: bool
    changed: tuple[str, ...] = ()


def content_revision(files: Mapping[str, bytes]) -> str:
    """A revision for content outside git: the SHA-256 of the canonical file list with each file's digest."""
    listing = [[name, sha256_hex(normalize_text(name, files[name]))] for name in sorted(files)]
    return "sha256:" + sha256_hex(canonical_json(listing))


def source_state(directory: str | os.PathLike, files: Mapping[str, bytes]) -> SourceState:
    """The git revision of the work tree holding `directory` and whether `files` are uncommitted there.

    `files` are keyed relative to the parent of `directory` (as `engine.sources.read_directory` returns them).
    Revision: the commit SHA when clean; `<sha>+dirty.<content hash prefix>` when a bundled file has uncommitted
    changes (unique per content, so two different dirty builds never share a revision); the content hash
    `sha256:…` outside git.
    """
    base = Path(directory).resolve().parent
    content = content_revision(files)

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(base), *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "--verify", "-q", "HEAD^{commit}")
    if top is None or commit is None:
        return SourceState(content, None, True, ("(not a git commit)",))
    commit = commit.strip()
    paths = [str(base / name) for name in sorted(files)]
    status = git("status", "--porcelain", "--untracked-files=all", "--", *paths)
    changed = tuple(line[3:] for line in (status or "").splitlines() if line.strip())
    if status is None:
        changed = ("(git status failed)",)
    if changed:
        return SourceState(f"{commit}+dirty.{content.split(':', 1)[1][:12]}", commit, True, changed)
    return SourceState(commit, commit, False, ())


# --------------------------------------------------------------------------------------------- read


def _gunzip_bounded(data: bytes, max_unpacked: int) -> bytes:
    """Decompress one gzip member, counting output as it streams; stop at `max_unpacked`."""
    if data[:2] != b"\x1f\x8b":
        raise BundleError("malformed-archive", "not a gzip file (bad magic number)")
    decomp = zlib.decompressobj(wbits=31)
    out = bytearray()
    view = memoryview(data)
    pos = 0
    try:
        while True:
            if decomp.unconsumed_tail:
                chunk = decomp.decompress(decomp.unconsumed_tail, _CHUNK)
            elif pos < len(data):
                chunk = decomp.decompress(view[pos : pos + _CHUNK], _CHUNK)
                pos += _CHUNK
            else:
                break
            out += chunk
            if len(out) > max_unpacked:
                raise BundleError(
                    "oversize", f"archive decompresses beyond the limit of {max_unpacked} bytes (a gzip bomb?)"
                )
            if decomp.eof:
                break
    except zlib.error as exc:
        raise BundleError("malformed-archive", f"corrupt gzip stream: {exc}") from None
    if not decomp.eof:
        raise BundleError("malformed-archive", "truncated gzip stream (download cut short?)")
    if decomp.unused_data or pos < len(data):
        raise BundleError("malformed-archive", "trailing data after the gzip stream")
    return bytes(out)


def read_bundle(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_ARCHIVE,
    max_unpacked: int = DEFAULT_MAX_UNPACKED,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Bundle:
    """Parse a bundle archive in memory, rejecting anything unsafe (see the module docstring)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BundleError("malformed-archive", "bundle must be bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise BundleError("oversize", f"archive is {len(data)} bytes, over the limit of {max_size}")
    raw = _gunzip_bounded(data, max_unpacked)
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    count = 0
    try:
        tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except (tarfile.TarError, EOFError, ValueError) as exc:
        raise BundleError("malformed-archive", f"not a tar archive: {exc}") from None
    try:
        while True:
            try:
                member = tar.next()
            except (tarfile.TarError, EOFError, ValueError, UnicodeError) as exc:
                raise BundleError("malformed-archive", f"corrupt tar header: {exc}") from None
            if member is None:
                break
            count += 1
            if count > max_entries:
                raise BundleError("too-many-entries", f"archive has more than {max_entries} entries")
            name = member.name
            if name.startswith("./") and len(name) > 2:
                name = name[2:]
            if member.isdir():
                name = name.rstrip("/")
            check_name(name)
            if member.issym() or member.islnk():
                raise BundleError(
                    "unsafe-link", f"entry {name!r} is a {'symbolic' if member.issym() else 'hard'} link to {member.linkname!r}"
                )
            if member.ischr() or member.isblk() or member.isfifo():
                kind = "character device" if member.ischr() else "block device" if member.isblk() else "FIFO"
                raise BundleError("unsafe-type", f"entry {name!r} is a {kind}")
            if name in seen:
                raise BundleError("duplicate-entry", f"entry {name!r} appears more than once")
            seen.add(name)
            if member.isdir():
                continue
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) or member.issparse():
                raise BundleError("unsafe-type", f"entry {name!r} has unsupported tar type {member.type!r}")
            fobj = tar.extractfile(member)
            content = fobj.read() if fobj is not None else b""
            if len(content) != member.size:
                raise BundleError("malformed-archive", f"entry {name!r} is truncated")
            files[name] = content
    except tarfile.TarError as exc:
        raise BundleError("malformed-archive", f"corrupt tar archive: {exc}") from None
    finally:
        tar.close()

    for name in list(files):
        if name not in RESERVED_NAMES and name.rsplit("/", 1)[-1] in RESERVED_NAMES:
            raise BundleError("invalid-name", f"{name!r}: bundle metadata files must be at the root")
    manifest_bytes = files.pop(MANIFEST, None)
    signatures_bytes = files.pop(SIGNATURES, None)
    manifest = None
    if manifest_bytes is not None:
        manifest = _parse_json_object(manifest_bytes, MANIFEST, "malformed-manifest")
    signatures = None
    if signatures_bytes is not None:
        try:
            signatures = jsonstrict.loads(signatures_bytes)
        except ValueError:
            signatures = None  # reported (as a malformed signature) by the verifier
    return Bundle(
        files=dict(sorted(files.items())),
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        signatures=signatures,
        signatures_bytes=signatures_bytes,
        size=len(data),
        unpacked_size=len(raw),
    )


def _parse_json_object(data: bytes, what: str, code: str) -> dict[str, Any]:
    try:
        value = jsonstrict.loads(data)
    except ValueError as exc:
        raise BundleError(code, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BundleError(code, f"{what} must be a JSON object")
    return value


def check_manifest(bundle: Bundle, *, engine_ver: str | None = None) -> dict[str, Any]:
    """Check `.manifest` against the archive content and this engine; return the manifest.

    Every file must be listed with its SHA-256 and nothing else may be listed; `revision` must be a non-empty
    string; the engine compatibility range must include this leadops version.
    """
    import hmac

    manifest = bundle.manifest
    if manifest is None:
        raise BundleError("missing-manifest", "bundle has no .manifest")
    revision = manifest.get("revision")
    if not isinstance(revision, str) or not revision:
        raise BundleError("malformed-manifest", ".manifest: 'revision' must be a non-empty string")
    listed = manifest.get("files")
    if not isinstance(listed, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("sha256"), str) for f in listed
    ):
        raise BundleError("malformed-manifest", ".manifest: 'files' must be a list of {name, sha256}")
    by_name = {f["name"]: f["sha256"] for f in listed}
    if len(by_name) != len(listed):
        raise BundleError("malformed-manifest", ".manifest: a file is listed twice")
    missing = sorted(set(by_name) - set(bundle.files))
    extra = sorted(set(bundle.files) - set(by_name))
    if missing or extra:
        raise BundleError(
            "manifest-mismatch",
            f".manifest does not match the archive (listed but absent: {missing}, present but unlisted: {extra})",
        )
    for name, want in by_name.items():
        if not hmac.compare_digest(sha256_hex(bundle.files[name]), want.lower()):
            raise BundleError("manifest-mismatch", f".manifest: digest mismatch for {name!r}")
    compat = (manifest.get("engine") or {}).get("leadops") if isinstance(manifest.get("engine"), dict) else None
    if compat is not None:
        if not isinstance(compat, str):
            raise BundleError("malformed-manifest", ".manifest: 'engine.leadops' must be a version range string")
        ver = engine_ver or engine_version()
        try:
            ok = version_satisfies(ver, compat)
        except ValueError as exc:
            raise BundleError("malformed-manifest", f".manifest: engine range: {exc}") from None
        if not ok:
            raise BundleError("incompatible", f"bundle needs leadops {compat}, this is leadops {ver}")
    return manifest


__all__ = [
    "Bundle",
    "BundleError",
    "MANIFEST",
    "SIGNATURES",
    "build_bundle",
    "canonical_json",
    "check_manifest",
    "check_name",
    "make_manifest",
    "normalize_text",
    "pack",
    "read_bundle",
    "sha256_hex",
]

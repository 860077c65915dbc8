"""Ed25519 keys, JWS (EdDSA) bundle signatures and their fail-closed verification.

Format (interoperable with Open Policy Agent's bundle signing, with Ed25519 instead of OPA's RSA default):

* ``.signatures.json`` at the archive root: ``{"signatures": ["<compact JWS>"]}`` — exactly one JWS.
* JWS protected header: ``{"alg": "EdDSA", "kid": "<key id>", "typ": "JWT"}`` (RFC 8037 EdDSA over Ed25519).
  The key id defaults to the key's RFC 7638 JWK thumbprint (derived from the key itself, so file names never
  matter and a rotation is never ambiguous); a name given with ``key_id`` is matched against the trusted key
  files' names (``<name>.public.pem``). A single trusted key verifies its own signatures whatever their kid.
* JWS payload (a JWT claims set, so any JWT library can verify it)::

      {"files": [{"name": "policies/scoring.yaml", "hash": "<lowercase hex>", "algorithm": "SHA-256"}, …],
       "keyid": "<key id>",            # OPA's deprecated payload key id, kept for older OPA readers
       "iat": 1700000000,              # NumericDate: when it was signed
       "exp": 1702592000,              # NumericDate: not valid at or after this instant (OPA has no expiry)
       "sequence": 42,                 # monotonic: a client never accepts a lower one (OPA has no rollback guard)
       "revision": "<commit sha>",     # must equal .manifest's revision
       "scope": "…"}                   # only when signed with a scope

* Hashing follows OPA (``v1/bundle/hash.go``): files whose base name is ``.manifest``, ``data.json`` or
  ``data.yaml`` are hashed over their canonical JSON form (compact, keys sorted by code point, number literals
  kept as written, Go's string escaping); every other file is hashed over its raw bytes. A leadops bundle's only
  structured file is ``.manifest``, which is *written* in that canonical form, so its raw and canonical digests
  coincide (a test holds them equal) and verifiers that hash raw bytes agree too. Policies (``*.yaml``) and
  schemas (``*.json``) are raw, as in OPA (only the base names above are structured there).

Verification fails closed, and every failure is a ``BundleError`` whose ``code`` is one of: ``oversize``,
``malformed-archive``, ``unsafe-path``, ``unsafe-link``, ``unsafe-type``, ``duplicate-entry``,
``too-many-entries`` (from the archive reader), ``missing-signature``, ``malformed-signature``,
``bad-algorithm``, ``unknown-key``, ``bad-signature``, ``file-modified``, ``file-added``, ``file-removed``,
``expired``, ``not-yet-valid``, ``rollback``, ``scope-mismatch``, ``missing-manifest``, ``malformed-manifest``,
``manifest-mismatch``, ``incompatible``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.bundle import (
    DEFAULT_MAX_ARCHIVE,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_UNPACKED,
    MANIFEST,
    SIGNATURES,
    Bundle,
    BundleError,
    canonical_json,
    check_manifest,
    pack,
    read_bundle,
    sha256_hex,
)
from engine import jsonstrict

ALGORITHM = "EdDSA"
HASH_ALGORITHM = "SHA-256"
_HASHES = {"SHA-256": hashlib.sha256, "SHA-384": hashlib.sha384, "SHA-512": hashlib.sha512}
STRUCTURED_BASENAMES = frozenset({".manifest", "data.json", "data.yaml"})
KEY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
THUMBPRINT_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest (RFC 7638)
PRIVATE_PEM_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_log = logging.getLogger("leadops.signing")
MAX_JWS_LENGTH = 1024 * 1024
DEFAULT_EXPIRES_IN = timedelta(days=30)

TrustedKeys = Union[Mapping[str, Any], str, os.PathLike]


# --------------------------------------------------------------------------------------------- base64url


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 §2): any other character, padding or a bad length is an error."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from None


# --------------------------------------------------------------------------------------------- keys


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not (KEY_ID_RE.match(key_id) or THUMBPRINT_RE.match(key_id)):
        raise BundleError("invalid-key-id", f"key id must match {KEY_ID_RE.pattern}, got {key_id!r}")
    return key_id


def key_thumbprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The key's RFC 7638 JWK thumbprint: base64url(SHA-256 of {"crv":"Ed25519","kty":"OKP","x":…}) (RFC 8037).

    The default key id: it comes from the key itself, so any file name works and two keys never share one."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = '{"crv":"Ed25519","kty":"OKP","x":"' + b64url_encode(raw) + '"}'  # required members, sorted, no spaces
    return b64url_encode(hashlib.sha256(jwk.encode("ascii")).digest())


def key_id_from_filename(path: str | os.PathLike) -> str:
    """`<kid>.public.pem`, `<kid>.pub.pem`, `<kid>.private.pem` or `<kid>.pem` -> `<kid>`."""
    name = Path(path).name
    for suffix in (".public.pem", ".pub.pem", ".private.pem", ".pem"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


@dataclass(frozen=True)
class KeyPair:
    key_id: str  # the JWK thumbprint: the JWS kid a signature carries by default
    private_path: Path
    public_path: Path
    name: str = ""  # the files' name (`<name>.private.pem`); a kid when signing with key_id=name


def generate_keypair(out_dir: str | os.PathLike, name: str = "default", *, overwrite: bool = False) -> KeyPair:
    """Write a new Ed25519 key pair as `<name>.private.pem` (PKCS#8, mode 0600) and `<name>.public.pem`."""
    check_key_id(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path = out / f"{name}.private.pem"
    public_path = out / f"{name}.public.pem"
    if not overwrite:
        for p in (private_path, public_path):
            if p.exists():
                raise BundleError("key-exists", f"{p} already exists (refusing to overwrite a key)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if overwrite else os.O_EXCL)
    fd = os.open(private_path, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(key_thumbprint(key), private_path, public_path, name)


def _pem_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii")
    if isinstance(value, (str, os.PathLike)):
        try:
            return Path(value).read_bytes()
        except OSError as exc:
            raise BundleError("bad-key", f"cannot read key file {value}: {exc.strerror}") from None
    raise BundleError("bad-key", f"expected PEM bytes or a path, got {type(value).__name__}")


def load_private_key(value: Ed25519PrivateKey | bytes | str | os.PathLike) -> Ed25519PrivateKey:
    if isinstance(value, Ed25519PrivateKey):
        return value
    try:
        key = serialization.load_pem_private_key(_pem_bytes(value), password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError("bad-key", f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("bad-key", f"signing key must be Ed25519, got {type(key).__name__}")
    return key


def load_public_key(value: Ed25519PublicKey | bytes | str | os.PathLike) -> Ed25519PublicKey:
    if isinstance(value, Ed25519PublicKey):
        return value
    try:
        key = serialization.load_pem_public_key(_pem_bytes(value))
    except (ValueError, TypeError) as exc:
        raise BundleError("bad-key", f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("bad-key", f"trusted key must be Ed25519, got {type(key).__name__}")
    return key


def is_private_pem(data: bytes) -> bool:
    return bool(PRIVATE_PEM_RE.search(data))


def load_trusted_keys(spec: TrustedKeys, *, warn: Callable[[str], None] | None = None) -> dict[str, Ed25519PublicKey]:
    """Trusted public keys by key id, from a mapping, a PEM file or a directory of PEM files.

    Every key is trusted under its JWK thumbprint (the default kid) and under its name: the mapping's key, or
    the file name without `.public.pem`/`.pub.pem`/`.pem` (for bundles signed with a named kid). In a
    directory every `*.pem` file is loaded; a private key is skipped with a warning through `warn` (default:
    the `leadops.signing` logger), since it does not belong with the keys verifiers are given; any other file
    that is not an Ed25519 public key is an error (never silently skipped). Several keys in a directory allow
    rotation: sign with the new key while clients still trust the old one.
    """
    warn = warn or _log.warning
    named: list[tuple[str, Ed25519PublicKey, str]] = []  # (name, key, where it came from)
    if isinstance(spec, Mapping):
        named = [(check_key_id(str(kid)), load_public_key(value), f"key {kid!r}") for kid, value in spec.items()]
    else:
        path = Path(spec)
        if path.is_dir():
            for pem in sorted(path.glob("*.pem")):
                data = _pem_bytes(pem)
                if is_private_pem(data):
                    warn(f"{pem}: skipped, this is a private key; a private key should not be in a directory of "
                         "trusted keys (keep it secret, e.g. a CI secret, and give verifiers only its public key)")
                    continue
                named.append(_trusted_file(pem, data))
        elif path.is_file():
            data = _pem_bytes(path)
            if is_private_pem(data):
                raise BundleError("bad-key", f"{path} is a private key; verify with its public key "
                                  f"(openssl pkey -in {path.name} -pubout -out {path.stem}.public.pem)")
            named.append(_trusted_file(path, data))
        else:
            raise BundleError("bad-key", f"no such key file or directory: {path}")
    keys: dict[str, Ed25519PublicKey] = {}
    for name, key, where in named:
        if name in keys and key_thumbprint(keys[name]) != key_thumbprint(key):
            raise BundleError("bad-key", f"{where}: key id {name!r} is used by two different keys in {spec}")
        keys[name] = key
        keys.setdefault(key_thumbprint(key), key)
    if not keys:
        raise BundleError("bad-key", "no trusted public keys given")
    return keys


def _trusted_file(pem: Path, data: bytes) -> tuple[str, Ed25519PublicKey, str]:
    try:
        key = load_public_key(data)
    except BundleError as exc:
        raise BundleError("bad-key", f"{pem}: {exc.reason}") from None
    name = key_id_from_filename(pem)
    return (name if KEY_ID_RE.match(name) else key_thumbprint(key)), key, str(pem)


def describe_trusted(keys: Mapping[str, Ed25519PublicKey]) -> str:
    """`<thumbprint> (also 'name')`, one per distinct key: what an unknown-key error lists."""
    by_print: dict[str, list[str]] = {}
    for kid, key in keys.items():
        names = by_print.setdefault(key_thumbprint(key), [])
        if kid != key_thumbprint(key):
            names.append(kid)
    return ", ".join(tp + (f" (also {', '.join(map(repr, sorted(n)))})" if n else "")
                     for tp, n in sorted(by_print.items()))


# --------------------------------------------------------------------------------------------- hashing


class _Number(str):
    """A JSON number kept as its literal text (OPA decodes with UseNumber and re-emits the digits)."""


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _go_string(text: str) -> str:
    """Go encoding/json string encoding with SetEscapeHTML(false) (Go >= 1.22)."""
    out = ['"']
    for ch in text:
        o = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif o < 0x20 or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:  # a lone surrogate: Go writes invalid UTF-8 as U+FFFD
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _walk(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if i:
                out.append(",")
            out.append(_go_string(key))
            out.append(":")
            _walk(value[key], out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _walk(item, out)
        out.append("]")
    elif isinstance(value, _Number):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(_go_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    else:  # pragma: no cover - json.loads yields nothing else
        raise TypeError(type(value).__name__)


def opa_canonical_json(data: bytes) -> bytes:
    """The bytes OPA hashes for a structured file: compact JSON, sorted keys, number literals kept."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    value = json.loads(
        data.decode("utf-8"),
        parse_int=_Number,
        parse_float=_Number,
        parse_constant=jsonstrict.reject_constant,  # repeated keys stay as OPA (Go) reads them: the last one wins
    )
    out: list[str] = []
    _walk(value, out)
    return "".join(out).encode("utf-8")


def file_digest(name: str, data: bytes, algorithm: str = HASH_ALGORITHM) -> str:
    """Lowercase hex digest of one bundle file under OPA's conventions (see the module docstring)."""
    hasher = _HASHES[algorithm]
    if name.rsplit("/", 1)[-1] in STRUCTURED_BASENAMES:
        try:
            data = opa_canonical_json(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # Not JSON (OPA would try YAML): hash the raw bytes; it can only match if the signer did the same.
            pass
    return hasher(data).hexdigest()


# --------------------------------------------------------------------------------------------- signing


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` or plain seconds -> timedelta (must be positive)."""
    if isinstance(text, timedelta):
        delta = text
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        delta = timedelta(seconds=text)
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", str(text))
        if not m:
            raise ValueError(f"bad duration {text!r}: use e.g. 30d, 12h, 90m, 45s or 2w")
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        delta = timedelta(seconds=int(m.group(1)) * unit)
    if delta <= timedelta(0):
        raise ValueError("duration must be positive")
    return delta


def encode_jws(header: Mapping[str, Any], payload: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    signing_input = b64url_encode(canonical_json(dict(header))) + "." + b64url_encode(canonical_json(dict(payload)))
    signature = key.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url_encode(signature)


def sign_bundle(
    bundle_bytes: bytes,
    private_key_pem: Ed25519PrivateKey | bytes | str | os.PathLike,
    key_id: str | None = None,
    sequence: int | None = None,
    expires_in: str | int | float | timedelta = DEFAULT_EXPIRES_IN,
    *,
    now: datetime | None = None,
    scope: str | None = None,
) -> bytes:
    """Return a new reproducible bundle: the same files and `.manifest` plus a fresh `.signatures.json`.

    `sequence` defaults to the manifest's `sequence`, else to the signing time in whole seconds (so successive
    signings increase); a `sequence` that contradicts the manifest's is an error. Any old signature is replaced.
    `key_id` (the JWS kid) defaults to the key's JWK thumbprint.
    """
    key = load_private_key(private_key_pem)
    key_id = check_key_id(key_thumbprint(key) if key_id is None else key_id)
    bundle = read_bundle(bundle_bytes)
    manifest = check_manifest(bundle)
    when = _now(now)
    manifest_seq = manifest.get("sequence")
    if sequence is None:
        sequence = manifest_seq if manifest_seq is not None else int(when.timestamp())
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence < 2**63:
        raise BundleError("invalid-sequence", f"sequence must be an integer in [0, 2^63), got {sequence!r}")
    if manifest_seq is not None and manifest_seq != sequence:
        raise BundleError(
            "invalid-sequence", f"--sequence {sequence} contradicts the bundle's manifest sequence {manifest_seq}"
        )
    delta = parse_duration(expires_in)
    iat = int(when.timestamp())
    entries = bundle.signed_files()
    payload: dict[str, Any] = {
        "files": [
            {"name": name, "hash": file_digest(name, data), "algorithm": HASH_ALGORITHM}
            for name, data in sorted(entries.items())
        ],
        "keyid": key_id,
        "iat": iat,
        "exp": iat + int(delta.total_seconds()),
        "sequence": sequence,
        "revision": manifest["revision"],
    }
    if scope is not None:
        payload["scope"] = scope
    header = {"alg": ALGORITHM, "kid": key_id, "typ": "JWT"}
    token = encode_jws(header, payload, key)
    entries[SIGNATURES] = canonical_json({"signatures": [token]})
    return pack(entries)


# --------------------------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature, files, expiry and sequence were all checked."""

    raw: bytes
    bundle: Bundle
    manifest: dict[str, Any]
    payload: dict[str, Any]
    key_id: str
    sequence: int
    issued_at: int | None
    expires_at: int
    sha256: str = field(default="")

    @property
    def revision(self) -> str:
        return self.manifest["revision"]

    @property
    def policy_version(self) -> str:
        return str(self.manifest.get("policy_version", ""))

    @property
    def files(self) -> dict[str, bytes]:
        """The content files (policies and schemas), without `.manifest`/`.signatures.json`."""
        return self.bundle.files

    def expires_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, timezone.utc)

    def is_expired(self, now: datetime | None = None) -> bool:
        return _now(now).timestamp() >= self.expires_at

    def policy_root(self) -> str:
        root = self.manifest.get("policy_root")
        return root if isinstance(root, str) and root else "policies"

    def load_policy_set(self) -> Any:
        """Compile the bundle's files with the one engine loader (raises engine.errors.PolicyError)."""
        from engine import load_policy_files

        return load_policy_files(self.files, root=self.policy_root(), revision=self.revision)

    def summary(self) -> str:
        return (
            f"ok: revision {self.revision} (policy version {self.policy_version or '-'}), sequence {self.sequence}, "
            f"signed by {self.key_id!r}, {len(self.files)} files, expires "
            f"{self.expires_datetime().isoformat().replace('+00:00', 'Z')}"
        )

    def info(self) -> dict[str, Any]:
        def iso(ts: int | None) -> str | None:
            return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")

        return {
            "revision": self.revision,
            "policy_version": self.policy_version,
            "sequence": self.sequence,
            "key_id": self.key_id,
            "issued_at": iso(self.issued_at),
            "expires_at": iso(self.expires_at),
            "engine": self.manifest.get("engine"),
            "roots": self.manifest.get("roots"),
            "files": sorted(self.files),
            "bundle_sha256": self.sha256,
        }


def _fail(code: str, reason: str) -> BundleError:
    return BundleError(code, reason)


def _int_claim(payload: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise _fail("malformed-signature", f"signed payload has no {name!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise _fail("malformed-signature", f"{name!r} claim must be a non-negative integer, got {value!r}")
    return value


def _decode_jws(token: Any) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    if not isinstance(token, str) or len(token) > MAX_JWS_LENGTH:
        raise _fail("malformed-signature", "the signature is not a compact JWS string")
    parts = token.split(".")
    if len(parts) != 3:
        raise _fail("malformed-signature", f"a compact JWS has 3 dot-separated parts, this one has {len(parts)}")
    try:
        header_raw, payload_raw, signature = (b64url_decode(p) for p in parts)
    except ValueError as exc:
        raise _fail("malformed-signature", f"JWS part is not base64url: {exc}") from None
    objects = []
    for what, raw in (("header", header_raw), ("payload", payload_raw)):
        try:
            value = jsonstrict.loads(raw)
        except ValueError as exc:
            raise _fail("malformed-signature", f"JWS {what} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise _fail("malformed-signature", f"JWS {what} must be a JSON object")
        objects.append(value)
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    return objects[0], objects[1], signing_input, signature


def verify_bundle(
    bundle_bytes: bytes,
    trusted_keys: TrustedKeys | Mapping[str, Ed25519PublicKey],
    *,
    now: datetime | None = None,
    min_sequence: int | None = None,
    current_revision: str | None = None,
    scope: str | None = None,
    max_size: int = DEFAULT_MAX_ARCHIVE,
    max_unpacked: int = DEFAULT_MAX_UNPACKED,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> VerifiedBundle:
    """Verify a signed bundle or raise BundleError with the precise reason (see the module docstring).

    Rollback: a sequence below `min_sequence` is refused, and so is a sequence equal to it whose revision
    differs from `current_revision` (the same sequence must always name the same policy).
    """
    if _is_key_map(trusted_keys):  # already loaded: make sure every key is also found by its thumbprint
        keys = {**{key_thumbprint(k): k for k in trusted_keys.values()}, **trusted_keys}  # type: ignore[union-attr]
    else:
        keys = load_trusted_keys(trusted_keys)  # type: ignore[arg-type]
    when = _now(now)
    if not isinstance(bundle_bytes, (bytes, bytearray)):
        raise _fail("malformed-archive", "bundle must be bytes")
    bundle_bytes = bytes(bundle_bytes)
    if len(bundle_bytes) > max_size:
        raise _fail("oversize", f"archive is {len(bundle_bytes)} bytes, over the limit of {max_size}")
    bundle = read_bundle(bundle_bytes, max_size=max_size, max_unpacked=max_unpacked, max_entries=max_entries)

    # 1. exactly one well-formed JWS
    if bundle.signatures_bytes is None:
        raise _fail("missing-signature", "bundle is not signed (no .signatures.json)")
    sigs = bundle.signatures
    if not isinstance(sigs, dict) or not isinstance(sigs.get("signatures"), list):
        raise _fail("malformed-signature", '.signatures.json must be {"signatures": ["<JWS>"]}')
    if len(sigs["signatures"]) != 1:
        raise _fail(
            "malformed-signature",
            f".signatures.json holds {len(sigs['signatures'])} JWS; exactly one is supported (as in OPA)",
        )
    if sigs.get("plugin") not in (None, ""):
        raise _fail("malformed-signature", f"signing plugin {sigs['plugin']!r} is not supported")
    header, payload, signing_input, signature = _decode_jws(sigs["signatures"][0])

    # 2. algorithm pinned (never taken from the token), no extensions we do not understand
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise _fail("bad-algorithm", f"JWS algorithm {alg!r} is not accepted; only {ALGORITHM} (Ed25519) is")
    if "crit" in header or "b64" in header or "jku" in header or "jwk" in header or "x5u" in header:
        raise _fail("malformed-signature", "JWS header carries an unsupported parameter (crit/b64/jku/jwk/x5u)")

    # 3. key id: header kid, else OPA's deprecated payload keyid; they must agree when both are present
    kid = header.get("kid")
    payload_kid = payload.get("keyid")
    if kid is None:
        kid = payload_kid
    elif payload_kid is not None and payload_kid != kid:
        raise _fail("malformed-signature", f"header kid {kid!r} and payload keyid {payload_kid!r} disagree")
    if not isinstance(kid, str) or not kid:
        raise _fail("unknown-key", "the signature names no key id")
    if len(signature) != 64:
        raise _fail("bad-signature", f"Ed25519 signature must be 64 bytes, got {len(signature)}")
    key = keys.get(kid)
    if key is None:
        key = _sole_key_that_signed(keys, signature, signing_input)
    if key is None:
        raise _fail(
            "unknown-key",
            f"signed with key {kid!r}, which is not trusted (trusted: {describe_trusted(keys)}); verify with the "
            "public key of the key that signed it (`leadops keys id FILE` prints a key's id), or re-sign the "
            "bundle with a trusted key",
        )

    # 4. the signature itself
    try:
        key.verify(signature, signing_input)
    except InvalidSignature:
        raise _fail("bad-signature", f"signature does not verify with trusted key {kid!r}") from None

    # 5. signed claims
    files_claim = payload.get("files")
    if not isinstance(files_claim, list):
        raise _fail("malformed-signature", "signed payload has no 'files' list")
    signed: dict[str, tuple[str, str]] = {}
    for entry in files_claim:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("hash"), str)
            and isinstance(entry.get("algorithm"), str)
        ):
            raise _fail("malformed-signature", "each signed file needs string 'name', 'hash' and 'algorithm'")
        if entry["algorithm"] not in _HASHES:
            raise _fail(
                "malformed-signature",
                f"hash algorithm {entry['algorithm']!r} for {entry['name']!r} is not accepted (use SHA-256)",
            )
        if entry["name"] in signed:
            raise _fail("malformed-signature", f"{entry['name']!r} is listed twice in the signature")
        signed[entry["name"]] = (entry["algorithm"], entry["hash"].lower())
    sequence = _int_claim(payload, "sequence", required=True)
    expires_at = _int_claim(payload, "exp", required=True)
    issued_at = _int_claim(payload, "iat", required=False)
    not_before = _int_claim(payload, "nbf", required=False)
    assert sequence is not None and expires_at is not None
    revision_claim = payload.get("revision")
    if not isinstance(revision_claim, str) or not revision_claim:
        raise _fail("malformed-signature", "signed payload has no 'revision'")
    if scope is not None and payload.get("scope") != scope:
        raise _fail("scope-mismatch", f"signature scope {payload.get('scope')!r} is not the required {scope!r}")

    # 6. every file in the archive signed, every signed file present, every digest equal
    present = bundle.signed_files()
    removed = sorted(set(signed) - set(present))
    added = sorted(set(present) - set(signed))
    modified = sorted(
        name
        for name in set(signed) & set(present)
        if not hmac.compare_digest(file_digest(name, present[name], signed[name][0]), signed[name][1])
    )
    if modified:
        raise _fail("file-modified", f"digest mismatch (file modified after signing): {', '.join(modified)}")
    if added:
        raise _fail("file-added", f"file(s) not covered by the signature (added after signing): {', '.join(added)}")
    if removed:
        raise _fail("file-removed", f"file(s) in the signature but missing from the bundle: {', '.join(removed)}")

    # 7. freshness: expiry, not-before, rollback
    ts = when.timestamp()
    if ts >= expires_at:
        raise _fail(
            "expired",
            f"bundle expired at {datetime.fromtimestamp(expires_at, timezone.utc).isoformat()} "
            f"(now {when.astimezone(timezone.utc).isoformat()})",
        )
    if not_before is not None and ts < not_before:
        raise _fail("not-yet-valid", "bundle is not valid yet (nbf in the future)")
    if min_sequence is not None:
        if sequence < min_sequence:
            raise _fail("rollback", f"sequence {sequence} is older than the trusted sequence {min_sequence}")
        if sequence == min_sequence and current_revision is not None and revision_claim != current_revision:
            raise _fail(
                "rollback",
                f"sequence {sequence} already names revision {current_revision}, not {revision_claim} "
                "(re-sign new content with a higher sequence)",
            )

    # 8. manifest agrees with the archive, the signature and this engine
    manifest = check_manifest(bundle)
    if manifest["revision"] != revision_claim:
        raise _fail(
            "manifest-mismatch", f"signed revision {revision_claim!r} differs from .manifest {manifest['revision']!r}"
        )
    if manifest.get("sequence") is not None and manifest["sequence"] != sequence:
        raise _fail(
            "manifest-mismatch", f"signed sequence {sequence} differs from .manifest sequence {manifest['sequence']}"
        )
    return VerifiedBundle(
        raw=bundle_bytes,
        bundle=bundle,
        manifest=manifest,
        payload=payload,
        key_id=kid,
        sequence=sequence,
        issued_at=issued_at,
        expires_at=expires_at,
        sha256=sha256_hex(bundle_bytes),
    )


def _sole_key_that_signed(keys: Mapping[str, Ed25519PublicKey], signature: bytes, signing_input: bytes):
    """With exactly one trusted key, whatever kid the signature names: that key, if it made the signature.

    A single trusted key file verifies its own signatures whatever the file or the kid is called; with several
    keys the kid must name one (never try them all: a rotation must stay unambiguous)."""
    distinct = {key_thumbprint(k): k for k in keys.values()}
    if len(distinct) != 1:
        return None
    (key,) = distinct.values()
    try:
        key.verify(signature, signing_input)
    except InvalidSignature:
        return None
    return key


def _is_key_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, Ed25519PublicKey) for v in value.values()) and bool(value)


__all__ = [
    "KeyPair",
    "VerifiedBundle",
    "b64url_decode",
    "b64url_encode",
    "file_digest",
    "generate_keypair",
    "key_thumbprint",
    "load_private_key",
    "load_public_key",
    "load_trusted_keys",
    "opa_canonical_json",
    "parse_duration",
    "sign_bundle",
    "verify_bundle",
]

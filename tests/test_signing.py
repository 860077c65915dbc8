"""Keys, JWS signatures and the tamper matrix: every way a bundle can be wrong is refused with its own reason."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import os
import stat
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.bundle import MANIFEST, SIGNATURES, BundleError, build_bundle, canonical_json, pack, read_bundle
from engine.signing import (
    b64url_decode,
    b64url_encode,
    encode_jws,
    file_digest,
    generate_keypair,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    parse_duration,
    sign_bundle,
    verify_bundle,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bundle"
REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
FILES = {
    "policies/leadops.yaml": b"kind: policy-set\nname: t\nversion: '1'\n",
    "policies/scoring.yaml": b"kind: scoring\ngroups: []\n",
    "schemas/lead.schema.json": b'{"type": "object"}\n',
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    main = generate_keypair(d / "trusted", "main")
    other = generate_keypair(d / "untrusted", "other")
    impostor = generate_keypair(d / "impostor", "main")  # same key id, different key
    return {"main": main, "other": other, "impostor": impostor, "trusted_dir": d / "trusted"}


def make_signed(keys, *, revision="rev-1", sequence=5, expires_in="30d", now=NOW, files=FILES, key="main", kid=None):
    unsigned = build_bundle(files, revision, policy_version="1")
    return sign_bundle(unsigned, keys[key].private_path, kid or keys[key].key_id, sequence, expires_in, now=now)


def entries_of(data: bytes) -> dict[str, bytes]:
    b = read_bundle(data)
    out = b.signed_files()
    if b.signatures_bytes is not None:
        out[SIGNATURES] = b.signatures_bytes
    return out


def token_of(data: bytes) -> str:
    return json.loads(entries_of(data)[SIGNATURES])["signatures"][0]


def with_token(data: bytes, token: str) -> bytes:
    entries = entries_of(data)
    entries[SIGNATURES] = canonical_json({"signatures": [token]})
    return pack(entries)


def forge(keys, data: bytes, *, header=None, payload=None, drop=(), key="main") -> bytes:
    """Re-sign `data`'s payload after changing claims: a validly signed but wrong bundle."""
    token = token_of(data)
    h = json.loads(b64url_decode(token.split(".")[0]))
    p = json.loads(b64url_decode(token.split(".")[1]))
    h.update(header or {})
    p.update(payload or {})
    for name in drop:
        p.pop(name, None)
    return with_token(data, encode_jws(h, p, load_private_key(keys[key].private_path)))


def verify(keys, data, **kw):
    kw.setdefault("now", NOW)
    return verify_bundle(data, keys["trusted_dir"], **kw)


def reason(keys, data, **kw) -> BundleError:
    with pytest.raises(BundleError) as exc:
        verify(keys, data, **kw)
    return exc.value


# --------------------------------------------------------------------------------------------- keys


def test_generate_keypair_files(tmp_path):
    kp = generate_keypair(tmp_path / "k", "ops-2026")
    assert kp.private_path.name == "ops-2026.private.pem" and kp.public_path.name == "ops-2026.public.pem"
    assert stat.S_IMODE(os.stat(kp.private_path).st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in kp.private_path.read_bytes()
    assert b"BEGIN PUBLIC KEY" in kp.public_path.read_bytes()
    priv = load_private_key(kp.private_path)
    pub = load_public_key(kp.public_path)
    pub.verify(priv.sign(b"m"), b"m")
    with pytest.raises(BundleError) as exc:
        generate_keypair(tmp_path / "k", "ops-2026")
    assert exc.value.code == "key-exists"
    with pytest.raises(BundleError):
        generate_keypair(tmp_path / "k", "../escape")


def test_trusted_keys_from_file_dir_and_mapping(keys, tmp_path):
    main_id = keys["main"].key_id  # every key is trusted under its thumbprint and its name
    assert sorted(load_trusted_keys(keys["main"].public_path)) == sorted(["main", main_id])
    warnings: list[str] = []
    assert sorted(load_trusted_keys(keys["trusted_dir"], warn=warnings.append)) == sorted(["main", main_id])
    (warning,) = warnings  # the private key beside it is skipped, by name, with the reason
    assert "main.private.pem: skipped, this is a private key" in warning and "should not be" in warning
    assert sorted(load_trusted_keys({"x": keys["main"].public_path.read_bytes()})) == sorted(["x", main_id])
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_bytes(
        rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(BundleError) as exc:
        load_trusted_keys(tmp_path)
    assert exc.value.code == "bad-key" and "Ed25519" in exc.value.reason
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(BundleError):
        load_trusted_keys(tmp_path / "junk.pem")
    with pytest.raises(BundleError):
        load_trusted_keys(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError):
        load_trusted_keys(empty)


def test_rsa_private_key_refused_for_signing(tmp_path):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(BundleError) as exc:
        sign_bundle(build_bundle(FILES, "r", policy_version="1"), pem, "k", 1)
    assert exc.value.code == "bad-key"


def test_key_rotation_with_a_directory_of_trusted_keys(keys, tmp_path):
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "main.public.pem").write_bytes(keys["main"].public_path.read_bytes())
    (trusted / "other.public.pem").write_bytes(keys["other"].public_path.read_bytes())
    for name in ("main", "other"):
        v = verify_bundle(make_signed(keys, key=name), trusted, now=NOW)
        assert v.key_id == keys[name].key_id  # the default kid: the key's thumbprint
        assert verify_bundle(make_signed(keys, key=name, kid=name), trusted, now=NOW).key_id == name  # named kid


# --------------------------------------------------------------------------------------------- format


def test_signed_bundle_verifies_and_reports(keys):
    data = make_signed(keys)
    v = verify(keys, data)
    assert (v.revision, v.sequence, v.key_id) == ("rev-1", 5, keys["main"].key_id)
    assert v.issued_at == int(NOW.timestamp())
    assert v.expires_at == int((NOW + timedelta(days=30)).timestamp())
    assert v.files == FILES
    assert v.sha256 == hashlib.sha256(data).hexdigest()
    assert v.summary().startswith("ok: revision rev-1")
    assert not v.is_expired(NOW)


def test_signatures_json_follows_opa(keys):
    data = make_signed(keys)
    doc = json.loads(entries_of(data)[SIGNATURES])
    assert list(doc) == ["signatures"] and len(doc["signatures"]) == 1
    header_b64, payload_b64, sig_b64 = doc["signatures"][0].split(".")
    header = json.loads(b64url_decode(header_b64))
    payload = json.loads(b64url_decode(payload_b64))
    assert header == {"alg": "EdDSA", "kid": keys["main"].key_id, "typ": "JWT"}
    assert len(b64url_decode(sig_b64)) == 64
    assert payload["keyid"] == keys["main"].key_id
    assert payload["sequence"] == 5 and payload["revision"] == "rev-1"
    assert payload["exp"] - payload["iat"] == 30 * 86400
    names = [f["name"] for f in payload["files"]]
    assert names == sorted([*FILES, MANIFEST])
    for f in payload["files"]:
        assert f["algorithm"] == "SHA-256"
        content = entries_of(data)[f["name"]]
        assert f["hash"] == hashlib.sha256(content).hexdigest()  # raw bytes (manifest is already canonical)
        assert f["hash"] == file_digest(f["name"], content)


def test_independent_jwt_library_verifies_our_signature(keys):
    """PyJWT (not our code) checks the EdDSA signature, exp and iat of the bundle's JWS."""
    data = make_signed(keys, now=datetime.now(timezone.utc))
    token = token_of(data)
    public = serialization.load_pem_public_key(keys["main"].public_path.read_bytes())
    claims = jwt.decode(token, public, algorithms=["EdDSA"])
    assert claims["sequence"] == 5 and claims["revision"] == "rev-1"
    assert jwt.get_unverified_header(token)["kid"] == keys["main"].key_id
    # and each listed hash matches the archive content, recomputed here with hashlib only
    entries = entries_of(data)
    for f in claims["files"]:
        assert hmac.compare_digest(hashlib.sha256(entries[f["name"]]).hexdigest(), f["hash"])
    # a different key fails in PyJWT too
    wrong = serialization.load_pem_public_key(keys["impostor"].public_path.read_bytes())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, wrong, algorithms=["EdDSA"])


def test_signing_is_reproducible_for_a_fixed_time(keys):
    assert make_signed(keys) == make_signed(keys)


def test_resigning_replaces_the_signature(keys):
    first = make_signed(keys, sequence=5)
    second = sign_bundle(first, keys["main"].private_path, "main", 6, "1d", now=NOW)
    assert verify(keys, second).sequence == 6
    assert len(json.loads(entries_of(second)[SIGNATURES])["signatures"]) == 1


def test_sequence_defaults(keys):
    with_seq = build_bundle(FILES, "r", policy_version="1", sequence=11)
    signed = sign_bundle(with_seq, keys["main"].private_path, "main", now=NOW)
    assert verify(keys, signed).sequence == 11
    with pytest.raises(BundleError) as exc:
        sign_bundle(with_seq, keys["main"].private_path, "main", 12, now=NOW)
    assert exc.value.code == "invalid-sequence"
    no_seq = build_bundle(FILES, "r", policy_version="1")
    assert verify(keys, sign_bundle(no_seq, keys["main"].private_path, "main", now=NOW)).sequence == int(
        NOW.timestamp()
    )
    for bad in (-1, True, 2**63, "3"):
        with pytest.raises(BundleError):
            sign_bundle(no_seq, keys["main"].private_path, "main", bad, now=NOW)


def test_parse_duration():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("45") == timedelta(seconds=45)
    for bad in ("0d", "-1d", "1y", "soon", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_jws_test_vector():
    """The fixed fixture key signs the fixed vector to exactly the stored token (Ed25519 is deterministic).

    Set LEADOPS_REGENERATE_VECTOR=1 to rewrite tests/fixtures/bundle/vector.json after an intended format change.
    """
    path = FIXTURES / "vector.json"
    priv = FIXTURES / "keys" / "fixture.private.pem"
    files = {"policies/a.yaml": b"kind: x\n", "schemas/lead.schema.json": b"{}\n"}
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    data = sign_bundle(build_bundle(files, "vector-rev", policy_version="1"), priv, "fixture", 1, "365d", now=now)
    token = token_of(data)
    if os.environ.get("LEADOPS_REGENERATE_VECTOR") == "1":
        vector = {
            "files": {k: v.decode() for k, v in files.items()},
            "revision": "vector-rev",
            "policy_version": "1",
            "key_id": "fixture",
            "sequence": 1,
            "expires_in": "365d",
            "now": now.isoformat(),
            "manifest_sha256": hashlib.sha256(read_bundle(data).manifest_bytes).hexdigest(),
            "token": token,
        }
        path.write_text(json.dumps(vector, indent=2) + "\n")
    vector = json.loads(path.read_text())
    assert token == vector["token"]
    public = serialization.load_pem_public_key((FIXTURES / "keys" / "fixture.public.pem").read_bytes())
    claims = jwt.decode(vector["token"], public, algorithms=["EdDSA"], options={"verify_exp": False})
    assert claims["revision"] == "vector-rev" and claims["sequence"] == 1


# --------------------------------------------------------------------------------------------- tamper matrix


def _tar_entries(data: bytes, extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """The signed archive with extra raw tar members appended (links, devices, traversal names …)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(entries_of(data).items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for info, content in extra:
            if content is None:
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buf.getvalue(), mtime=0)


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _modify(data: bytes, name: str, content: bytes) -> bytes:
    entries = entries_of(data)
    entries[name] = content
    return pack(entries)


def _remove(data: bytes, name: str) -> bytes:
    entries = entries_of(data)
    del entries[name]
    return pack(entries)


def _flip_signature(data: bytes) -> bytes:
    h, p, s = token_of(data).split(".")
    sig = bytearray(b64url_decode(s))
    sig[10] ^= 0x01
    return with_token(data, f"{h}.{p}.{b64url_encode(bytes(sig))}")


def _swap_payload(data: bytes, **changes) -> bytes:
    """Change claims but keep the original signature (the classic JWT payload tamper)."""
    h, p, s = token_of(data).split(".")
    payload = json.loads(b64url_decode(p))
    payload.update(changes)
    return with_token(data, f"{h}.{b64url_encode(canonical_json(payload))}.{s}")


def _alg_none(data: bytes) -> bytes:
    _, p, _ = token_of(data).split(".")
    return with_token(data, f"{b64url_encode(canonical_json({'alg': 'none', 'kid': 'main'}))}.{p}.")


def _alg_hs256(keys, data: bytes) -> bytes:
    """Algorithm confusion: an HMAC 'signature' keyed with the (public) verification key bytes."""
    _, p, _ = token_of(data).split(".")
    h = b64url_encode(canonical_json({"alg": "HS256", "kid": "main", "typ": "JWT"}))
    secret = keys["main"].public_path.read_bytes()
    mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return with_token(data, f"{h}.{p}.{b64url_encode(mac)}")


def _gzip_bomb(data: bytes) -> bytes:
    zeros = tarfile.TarInfo("policies/zeros.yaml")
    return _tar_entries(data, [(zeros, b"\0" * (80 * 1024 * 1024))])


TAMPER_CASES = {
    # signature presence and syntax
    "missing-signature": (lambda k, d: _remove(d, SIGNATURES), "missing-signature"),
    "signatures-not-json": (lambda k, d: _modify(d, SIGNATURES, b"{not json"), "malformed-signature"),
    "signatures-wrong-shape": (lambda k, d: _modify(d, SIGNATURES, b'{"signatures": "x.y.z"}'), "malformed-signature"),
    "no-jws": (lambda k, d: _modify(d, SIGNATURES, b'{"signatures": []}'), "malformed-signature"),
    "two-jws": (
        lambda k, d: _modify(d, SIGNATURES, canonical_json({"signatures": [token_of(d), token_of(d)]})),
        "malformed-signature",
    ),
    "jws-two-parts": (lambda k, d: with_token(d, ".".join(token_of(d).split(".")[:2])), "malformed-signature"),
    "jws-bad-base64": (lambda k, d: with_token(d, token_of(d).replace(".", ".*", 1)), "malformed-signature"),
    "jws-padded-base64": (lambda k, d: with_token(d, token_of(d) + "=="), "malformed-signature"),
    "jws-header-not-json": (
        lambda k, d: with_token(d, b64url_encode(b"{oops") + "." + token_of(d).split(".", 1)[1]),
        "malformed-signature",
    ),
    "jws-duplicate-claim": (
        lambda k, d: with_token(
            d,
            token_of(d).split(".")[0]
            + "."
            + b64url_encode(b64url_decode(token_of(d).split(".")[1])[:-1] + b',"sequence":999}')
            + "."
            + token_of(d).split(".")[2],
        ),
        "malformed-signature",
    ),
    "unsupported-plugin": (
        lambda k, d: _modify(d, SIGNATURES, canonical_json({"signatures": [token_of(d)], "plugin": "x"})),
        "malformed-signature",
    ),
    "crit-header": (lambda k, d: forge(k, d, header={"crit": ["exp"]}), "malformed-signature"),
    "kid-keyid-disagree": (lambda k, d: forge(k, d, payload={"keyid": "other"}), "malformed-signature"),
    "weak-hash-md5": (
        lambda k, d: forge(
            k, d, payload={"files": [{**f, "algorithm": "MD5"} for f in json.loads(b64url_decode(token_of(d).split(".")[1]))["files"]]}
        ),
        "malformed-signature",
    ),
    "missing-exp": (lambda k, d: forge(k, d, drop=["exp"]), "malformed-signature"),
    "missing-sequence": (lambda k, d: forge(k, d, drop=["sequence"]), "malformed-signature"),
    "sequence-not-int": (lambda k, d: forge(k, d, payload={"sequence": "7"}), "malformed-signature"),
    "missing-files-claim": (lambda k, d: forge(k, d, drop=["files"]), "malformed-signature"),
    # algorithm confusion
    "alg-none": (lambda k, d: _alg_none(d), "bad-algorithm"),
    "alg-hs256-with-public-key": (_alg_hs256, "bad-algorithm"),
    "alg-rs256": (lambda k, d: forge(k, d, header={"alg": "RS256"}), "bad-algorithm"),
    # keys
    "unknown-key-id": (lambda k, d: make_signed(k, key="other"), "unknown-key"),
    "no-key-id": (lambda k, d: forge(k, d, header={"kid": None}, drop=["keyid"]), "unknown-key"),
    "wrong-key-same-kid": (lambda k, d: make_signed(k, key="impostor", kid="main"), "bad-signature"),
    "wrong-key-trusted-thumbprint-kid": (lambda k, d: make_signed(k, key="impostor", kid=k["main"].key_id),
                                         "bad-signature"),
    "wrong-key-own-thumbprint-kid": (lambda k, d: make_signed(k, key="impostor"), "unknown-key"),
    "bad-signature-bitflip": (lambda k, d: _flip_signature(d), "bad-signature"),
    "signature-truncated": (
        lambda k, d: with_token(d, token_of(d)[:-8]),
        "bad-signature",
    ),
    "payload-swapped-sequence": (lambda k, d: _swap_payload(d, sequence=10**6), "bad-signature"),
    "payload-swapped-exp": (lambda k, d: _swap_payload(d, exp=4_000_000_000), "bad-signature"),
    # content
    "file-modified": (lambda k, d: _modify(d, "policies/scoring.yaml", b"kind: scoring\ngroups: [x]\n"), "file-modified"),
    "schema-modified": (lambda k, d: _modify(d, "schemas/lead.schema.json", b'{"type": "array"}\n'), "file-modified"),
    "manifest-modified": (
        lambda k, d: _modify(
            d, MANIFEST, entries_of(d)[MANIFEST].replace(b'"revision":"rev-1"', b'"revision":"rev-X"')
        ),
        "file-modified",
    ),
    "file-added": (lambda k, d: _modify(d, "policies/extra.yaml", b"kind: routing\n"), "file-added"),
    "file-added-nested": (lambda k, d: _modify(d, "policies/sub/x.yaml", b"a: 1\n"), "file-added"),
    "file-removed": (lambda k, d: _remove(d, "policies/scoring.yaml"), "file-removed"),
    "manifest-removed": (lambda k, d: _remove(d, MANIFEST), "file-removed"),
    "file-renamed": (
        lambda k, d: _remove(_modify(d, "policies/scoring2.yaml", entries_of(d)["policies/scoring.yaml"]),
                             "policies/scoring.yaml"),
        "file-added",
    ),
    "signed-revision-differs-from-manifest": (lambda k, d: forge(k, d, payload={"revision": "other"}), "manifest-mismatch"),
    # freshness
    "expired": (lambda k, d: make_signed(k, now=NOW - timedelta(days=2), expires_in="1d"), "expired"),
    "expires-exactly-now": (lambda k, d: make_signed(k, now=NOW - timedelta(days=1), expires_in="1d"), "expired"),
    "not-yet-valid": (lambda k, d: forge(k, d, payload={"nbf": int(NOW.timestamp()) + 3600}), "not-yet-valid"),
    # unsafe archives (signed content plus a hostile entry)
    "entry-absolute-path": (lambda k, d: _tar_entries(d, [(_member("/etc/cron.d/x"), b"x")]), "unsafe-path"),
    "entry-dotdot": (lambda k, d: _tar_entries(d, [(_member("../../x.yaml"), b"x")]), "unsafe-path"),
    "entry-symlink": (
        lambda k, d: _tar_entries(d, [(_member("policies/l.yaml", tarfile.SYMTYPE, "/etc/passwd"), None)]),
        "unsafe-link",
    ),
    "entry-hardlink": (
        lambda k, d: _tar_entries(d, [(_member("policies/h.yaml", tarfile.LNKTYPE, "policies/scoring.yaml"), None)]),
        "unsafe-link",
    ),
    "entry-device": (lambda k, d: _tar_entries(d, [(_member("policies/tty", tarfile.CHRTYPE), None)]), "unsafe-type"),
    "entry-fifo": (lambda k, d: _tar_entries(d, [(_member("policies/p", tarfile.FIFOTYPE), None)]), "unsafe-type"),
    "entry-duplicate": (
        lambda k, d: _tar_entries(d, [(_member("policies/scoring.yaml"), b"kind: scoring\ngroups: [evil]\n")]),
        "duplicate-entry",
    ),
    "metadata-in-subdir": (lambda k, d: _modify(d, "policies/.manifest", b"{}"), "invalid-name"),
    # size
    "gzip-bomb": (lambda k, d: _gzip_bomb(d), "oversize"),
    "oversize-archive": (lambda k, d: d + os.urandom(17 * 1024 * 1024), "oversize"),
    "truncated-download": (lambda k, d: d[: len(d) * 2 // 3], "malformed-archive"),
    "garbage": (lambda k, d: b"<html>502 Bad Gateway</html>", "malformed-archive"),
}


@pytest.mark.security
@pytest.mark.parametrize("case", sorted(TAMPER_CASES))
def test_tamper_matrix(keys, case):
    make, code = TAMPER_CASES[case]
    good = make_signed(keys)
    assert verify(keys, good).revision == "rev-1"  # the untampered bundle verifies
    tampered = make(keys, good)
    assert tampered != good
    err = reason(keys, tampered)
    assert err.code == code, f"{case}: expected {code}, got {err.code}: {err.reason}"
    assert err.reason and str(err).startswith(code)


@pytest.mark.security
def test_rollback_rules(keys):
    v5 = make_signed(keys, sequence=5, revision="rev-5")
    v6 = make_signed(keys, sequence=6, revision="rev-6")
    other5 = make_signed(keys, sequence=5, revision="rev-5b")
    assert verify(keys, v6, min_sequence=5, current_revision="rev-5").sequence == 6
    err = reason(keys, v5, min_sequence=6, current_revision="rev-6")
    assert err.code == "rollback" and "older" in err.reason
    # equal sequence: the same revision is fine (nothing new), a different one is refused
    assert verify(keys, v5, min_sequence=5, current_revision="rev-5").sequence == 5
    err = reason(keys, other5, min_sequence=5, current_revision="rev-5")
    assert err.code == "rollback" and "already names" in err.reason


@pytest.mark.security
def test_scope(keys):
    scoped = sign_bundle(build_bundle(FILES, "r", policy_version="1"), keys["main"].private_path, "main", 1, now=NOW,
                         scope="prod")
    assert verify(keys, scoped, scope="prod").sequence == 1
    assert reason(keys, scoped, scope="staging").code == "scope-mismatch"
    assert reason(keys, make_signed(keys), scope="prod").code == "scope-mismatch"


@pytest.mark.security
def test_incompatible_engine(keys):
    unsigned = build_bundle(FILES, "r", policy_version="1", engine_compat=">=9,<10")
    signed = sign_bundle_unchecked(unsigned, keys)
    assert reason(keys, signed).code == "incompatible"


def sign_bundle_unchecked(unsigned: bytes, keys) -> bytes:
    """Sign without sign_bundle's manifest check (it refuses an incompatible bundle too)."""
    b = read_bundle(unsigned)
    entries = b.signed_files()
    payload = {
        "files": [{"name": n, "hash": file_digest(n, c), "algorithm": "SHA-256"} for n, c in sorted(entries.items())],
        "keyid": "main",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 3600,
        "sequence": 1,
        "revision": b.manifest["revision"],
    }
    token = encode_jws({"alg": "EdDSA", "kid": "main"}, payload, load_private_key(keys["main"].private_path))
    entries[SIGNATURES] = canonical_json({"signatures": [token]})
    return pack(entries)


@pytest.mark.security
def test_sign_refuses_unsafe_input(keys):
    with pytest.raises(BundleError) as exc:
        sign_bundle(b"garbage", keys["main"].private_path, "main", 1)
    assert exc.value.code == "malformed-archive"


@pytest.mark.security
def test_a_real_policy_bundle_round_trips(keys):
    files = {f"policies/{p.name}": p.read_bytes() for p in (REPO / "policies").glob("*.yaml")}
    files["schemas/lead.schema.json"] = (REPO / "schemas" / "lead.schema.json").read_bytes()
    data = sign_bundle(build_bundle(files, "abc", policy_version="2026.11.1"), keys["main"].private_path, "main", 1,
                       now=NOW)
    v = verify(keys, data)
    assert set(v.files) == set(files)
    # one byte changed anywhere in any file is caught
    for name in files:
        content = bytearray(v.files[name])
        content[len(content) // 2] ^= 0x20
        assert reason(keys, _modify(data, name, bytes(content))).code == "file-modified"

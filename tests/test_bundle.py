"""Bundles: reproducible builds, the manifest, OPA's hashing conventions and safe in-memory extraction."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from engine.bundle import (
    MANIFEST,
    BundleError,
    build_bundle,
    canonical_json,
    check_manifest,
    check_name,
    content_revision,
    pack,
    read_bundle,
    source_state,
    version_satisfies,
)
from engine.signing import file_digest, opa_canonical_json

REPO = Path(__file__).resolve().parent.parent


def repo_files() -> dict[str, bytes]:
    files = {f"policies/{p.name}": p.read_bytes() for p in sorted((REPO / "policies").glob("*.yaml"))}
    files["schemas/lead.schema.json"] = (REPO / "schemas" / "lead.schema.json").read_bytes()
    return files


SMALL = {"policies/a.yaml": b"kind: x\n", "schemas/lead.schema.json": b'{"type": "object"}\n'}


def raw_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A .tar.gz from hand-made headers: lets a test put anything (links, devices, '..') in an archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return gzip.compress(buf.getvalue(), mtime=0)


def reg(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


# --------------------------------------------------------------------------------------------- build


def test_build_is_reproducible_byte_for_byte():
    files = repo_files()
    one = build_bundle(files, "abc123", policy_version="2026.11.1", sequence=7)
    reordered = dict(reversed(list(files.items())))
    two = build_bundle(reordered, "abc123", policy_version="2026.11.1", sequence=7)
    assert one == two
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
    # a different revision is a different archive
    assert build_bundle(files, "abc124", policy_version="2026.11.1", sequence=7) != one


def test_archive_metadata_is_fixed():
    data = build_bundle(SMALL, "r1", policy_version="1")
    # gzip header: magic, CM=8, FLG without FNAME, MTIME=0
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[3] & 0x08 == 0, "no file name in the gzip header"
    assert data[4:8] == b"\x00\x00\x00\x00", "gzip mtime is zero"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) == [MANIFEST, "policies/a.yaml", "schemas/lead.schema.json"]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
        assert m.isreg()


def test_manifest_content():
    files = repo_files()
    bundle = read_bundle(build_bundle(files, "abc123", policy_version="2026.11.1", sequence=3))
    m = bundle.manifest
    assert m["revision"] == "abc123"
    assert m["policy_version"] == "2026.11.1"
    assert m["sequence"] == 3
    assert m["roots"] == ["policies", "schemas"]
    assert m["policy_root"] == "policies"
    assert m["engine"] == {"leadops": ">=0.1,<1"}
    assert [f["name"] for f in m["files"]] == sorted(files)
    for entry in m["files"]:
        assert entry["sha256"] == hashlib.sha256(bundle.files[entry["name"]]).hexdigest()
    # written in canonical form (sorted keys, compact): raw bytes == canonical re-encoding
    assert bundle.manifest_bytes == canonical_json(json.loads(bundle.manifest_bytes))
    assert check_manifest(bundle) == m


def test_files_are_normalized_but_equivalent():
    files = {"policies/a.yaml": b"\xef\xbb\xbfkind: x\r\nname: y\r\n", "policies/raw.txt": b"a\r\nb"}
    bundle = read_bundle(build_bundle(files, "r", policy_version="1"))
    assert bundle.files["policies/a.yaml"] == b"kind: x\nname: y\n"
    assert bundle.files["policies/raw.txt"] == b"a\r\nb", "only YAML/JSON are normalized"


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../x.yaml", "policies/../../x", "policies//a.yaml", "./policies/a.yaml", "C:/x", "a\\b",
     "policies/\x00a", "policies/a\nb", ".manifest", "policies/.signatures.json", "policies/data.json", ""],
)
def test_build_rejects_bad_names(name):
    with pytest.raises(BundleError):
        build_bundle({name: b"x", "policies/ok.yaml": b"k: v\n"}, "r", policy_version="1")


def test_build_needs_revision_and_policy_root():
    with pytest.raises(BundleError) as exc:
        build_bundle(SMALL, "", policy_version="1")
    assert exc.value.code == "invalid-revision"
    with pytest.raises(BundleError):
        build_bundle({"schemas/lead.schema.json": b"{}"}, "r", policy_version="1")


def test_read_round_trip():
    data = build_bundle(SMALL, "r9", policy_version="1")
    bundle = read_bundle(data)
    assert bundle.files == SMALL
    assert bundle.revision == "r9"
    assert bundle.signatures is None
    assert set(bundle.signed_files()) == set(SMALL) | {MANIFEST}


def test_pack_then_read_preserves_arbitrary_entries():
    entries = {"policies/a.yaml": b"1", "policies/sub/b.yaml": b"2", MANIFEST: b"{}"}
    bundle = read_bundle(pack(entries))
    assert bundle.files == {"policies/a.yaml": b"1", "policies/sub/b.yaml": b"2"}
    assert bundle.manifest == {}


# --------------------------------------------------------------------------------------------- hashing (OPA)


def test_manifest_raw_digest_equals_opa_canonical_digest():
    """OPA hashes .manifest over canonical JSON; ours is written canonical, so both digests coincide."""
    bundle = read_bundle(build_bundle(repo_files(), "abc", policy_version="1", sequence=1))
    raw = hashlib.sha256(bundle.manifest_bytes).hexdigest()
    assert file_digest(MANIFEST, bundle.manifest_bytes) == raw
    assert opa_canonical_json(bundle.manifest_bytes) == bundle.manifest_bytes


def test_opa_canonical_json_conventions():
    # keys sorted, whitespace dropped, number literals kept as written (json.Number), BOM stripped
    assert opa_canonical_json(b'\xef\xbb\xbf{ "b": 1.0, "a": [1e2, 100, -0] }') == b'{"a":[1e2,100,-0],"b":1.0}'
    # Go's encoder with SetEscapeHTML(false): <>& raw, U+2028/2029 escaped, control characters \u00XX
    assert opa_canonical_json(b'{"s": "<&>\\u2028\\u0001\\n\\b"}') == b'{"s":"<&>\\u2028\\u0001\\n\\b"}'
    # non-ASCII stays UTF-8; keys sort by code point
    assert opa_canonical_json('{"é": 1, "z": 2}'.encode()) == '{"z":2,"é":1}'.encode()


def test_structured_vs_raw_files():
    data = b'{"b": 1,  "a": 2}'
    assert file_digest("data.json", data) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    assert file_digest("sub/data.json", data) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    # only the OPA structured base names are canonicalized; schemas and policies are raw bytes
    assert file_digest("schemas/lead.schema.json", data) == hashlib.sha256(data).hexdigest()
    assert file_digest("policies/data.yml", data) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------- safe reading


@pytest.mark.security
@pytest.mark.parametrize(
    ("members", "code"),
    [
        ([reg("/etc/passwd")], "unsafe-path"),
        ([reg("../evil.yaml")], "unsafe-path"),
        ([reg("policies/../../evil.yaml")], "unsafe-path"),
        ([reg("policies\\..\\evil.yaml")], "unsafe-path"),
        ([reg("C:/evil.yaml")], "unsafe-path"),
        ([reg("policies/\x1b[31mred.yaml")], "unsafe-path"),
        ([reg("a" * 300)], "unsafe-path"),
        ([reg("policies/" + "a" * 120 + "/../../../../etc/cron.d/x")], "unsafe-path"),
        ([reg("policies/a.yaml"), reg("policies/a.yaml", b"y")], "duplicate-entry"),
        ([reg("policies/a.yaml"), reg("./policies/a.yaml", b"y")], "duplicate-entry"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "backslash", "drive", "control-char", "long-name", "pax-long-dotdot",
         "duplicate",
         "duplicate-dot-slash"],
)
def test_read_rejects_unsafe_names(members, code):
    with pytest.raises(BundleError) as exc:
        read_bundle(raw_tar(members))
    assert exc.value.code == code


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


@pytest.mark.security
@pytest.mark.parametrize(
    ("member", "code"),
    [
        (_special("policies/link.yaml", tarfile.SYMTYPE, "/etc/passwd"), "unsafe-link"),
        (_special("policies/link.yaml", tarfile.SYMTYPE, "../../x"), "unsafe-link"),
        (_special("policies/hard.yaml", tarfile.LNKTYPE, "policies/a.yaml"), "unsafe-link"),
        (_special("policies/dev", tarfile.CHRTYPE), "unsafe-type"),
        (_special("policies/blk", tarfile.BLKTYPE), "unsafe-type"),
        (_special("policies/fifo", tarfile.FIFOTYPE), "unsafe-type"),
        (_special("policies/sparse", tarfile.GNUTYPE_SPARSE), "unsafe-type"),
        (_special("policies/unknown", b"Z"), "unsafe-type"),
    ],
    ids=["symlink-abs", "symlink-rel", "hardlink", "chardev", "blockdev", "fifo", "sparse", "unknown-type"],
)
def test_read_rejects_links_and_devices(member, code):
    with pytest.raises(BundleError) as exc:
        read_bundle(raw_tar([reg("policies/a.yaml"), member]))
    assert exc.value.code == code


@pytest.mark.security
def test_read_accepts_directories_but_not_as_duplicates():
    d = tarfile.TarInfo("policies")
    d.type = tarfile.DIRTYPE
    bundle = read_bundle(raw_tar([(d, None), reg("policies/a.yaml")]))
    assert list(bundle.files) == ["policies/a.yaml"]
    with pytest.raises(BundleError) as exc:
        read_bundle(raw_tar([(d, None), reg("policies")]))
    assert exc.value.code == "duplicate-entry"


@pytest.mark.security
def test_read_rejects_too_many_entries():
    data = raw_tar([reg(f"policies/{i}.yaml") for i in range(30)])
    with pytest.raises(BundleError) as exc:
        read_bundle(data, max_entries=20)
    assert exc.value.code == "too-many-entries"
    assert len(read_bundle(data, max_entries=30).files) == 30


@pytest.mark.security
def test_read_rejects_oversize_archive():
    data = build_bundle(SMALL, "r", policy_version="1")
    with pytest.raises(BundleError) as exc:
        read_bundle(data, max_size=len(data) - 1)
    assert exc.value.code == "oversize"


@pytest.mark.security
def test_gzip_bomb_stops_at_the_limit():
    # 64 MiB of zeros compresses to ~64 KiB; the reader must stop at its limit without inflating it all
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9, mtime=0)
    assert len(bomb) < 200_000
    with pytest.raises(BundleError) as exc:
        read_bundle(bomb, max_unpacked=1024 * 1024)
    assert exc.value.code == "oversize"
    assert "gzip bomb" in exc.value.reason


@pytest.mark.security
def test_one_large_member_beyond_limit():
    data = raw_tar([reg("policies/big.yaml", b"a" * 3_000_000)])
    with pytest.raises(BundleError) as exc:
        read_bundle(data, max_unpacked=2_000_000)
    assert exc.value.code == "oversize"


@pytest.mark.security
@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[: len(d) // 2],
        lambda d: d[:-4],
        lambda d: d + b"trailing",
        lambda d: d + gzip.compress(b"second member", mtime=0),
        lambda d: b"PK\x03\x04" + d[4:],
        lambda d: d[:20] + bytes(b ^ 0xFF for b in d[20:40]) + d[40:],
        lambda d: b"",
        lambda d: gzip.compress(b"this is not a tar archive at all" * 20, mtime=0),
    ],
    ids=["truncated-half", "truncated-trailer", "trailing-garbage", "second-member", "zip-magic", "corrupt-deflate",
         "empty", "gzip-not-tar"],
)
def test_read_rejects_corrupt_archives(mutate):
    data = build_bundle(repo_files(), "r", policy_version="1")
    with pytest.raises(BundleError) as exc:
        read_bundle(mutate(data))
    assert exc.value.code in {"malformed-archive", "oversize"}


@pytest.mark.security
def test_malformed_manifest():
    for manifest in (b"not json", b"[1, 2]", b'{"a": 1, "a": 2}', b'{"x": NaN}'):
        with pytest.raises(BundleError) as exc:
            read_bundle(pack({"policies/a.yaml": b"1", MANIFEST: manifest}))
        assert exc.value.code == "malformed-manifest"


def test_check_manifest_detects_mismatch_and_incompatibility():
    files = {"policies/a.yaml": b"1"}
    manifest = json.loads(read_bundle(build_bundle(files, "r", policy_version="1")).manifest_bytes)
    extra = read_bundle(pack({**files, "policies/b.yaml": b"2", MANIFEST: canonical_json(manifest)}))
    with pytest.raises(BundleError) as exc:
        check_manifest(extra)
    assert exc.value.code == "manifest-mismatch"
    changed = read_bundle(pack({"policies/a.yaml": b"2", MANIFEST: canonical_json(manifest)}))
    with pytest.raises(BundleError) as exc:
        check_manifest(changed)
    assert exc.value.code == "manifest-mismatch"
    manifest["engine"] = {"leadops": ">=2,<3"}
    future = read_bundle(pack({**files, MANIFEST: canonical_json(manifest)}))
    with pytest.raises(BundleError) as exc:
        check_manifest(future)
    assert exc.value.code == "incompatible"
    with pytest.raises(BundleError) as exc:
        check_manifest(read_bundle(pack(files)))
    assert exc.value.code == "missing-manifest"


@pytest.mark.parametrize(
    ("version", "spec", "ok"),
    [("0.1.0", ">=0.1,<1", True), ("0.9.3", ">=0.1,<1", True), ("1.0.0", ">=0.1,<1", False),
     ("0.0.9", ">=0.1,<1", False), ("0.1.0", "==0.1", True), ("0.2.0", "!=0.2.0", False), ("0.1.0", "", True)],
)
def test_version_ranges(version, spec, ok):
    assert version_satisfies(version, spec) is ok


def test_check_name_accepts_normal_paths():
    assert check_name("policies/scoring.yaml") == "policies/scoring.yaml"
    assert check_name("schemas/lead.schema.json") == "schemas/lead.schema.json"


def test_source_state_outside_git(tmp_path):
    (tmp_path / "policies").mkdir()
    files = {"policies/a.yaml": b"k: v\n"}
    (tmp_path / "policies" / "a.yaml").write_bytes(files["policies/a.yaml"])
    state = source_state(tmp_path / "policies", files)
    assert state.dirty and state.commit is None
    assert state.revision == content_revision(files)
    assert state.revision.startswith("sha256:")


def test_source_state_in_git(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin:/usr/local/bin",
                            "HOME": str(tmp_path)})

    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_bytes(b"k: v\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    files = {"policies/a.yaml": b"k: v\n"}
    clean = source_state(tmp_path / "policies", files)
    assert not clean.dirty and len(clean.revision) == 40 and clean.revision == clean.commit
    (tmp_path / "policies" / "a.yaml").write_bytes(b"k: w\n")
    dirty = source_state(tmp_path / "policies", {"policies/a.yaml": b"k: w\n"})
    assert dirty.dirty and dirty.revision.startswith(clean.commit + "+dirty.")
    assert dirty.changed


# --------------------------------------------------------------------------------------------- CLI


def test_cli_keys_build_sign_verify(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    runner = CliRunner()
    keys = tmp_path / "keys"
    r = runner.invoke(cli, ["keys", "generate", "--out", str(keys), "--name", "ci"])
    assert r.exit_code == 0, r.output
    assert (keys / "ci.private.pem").exists() and (keys / "ci.public.pem").exists()
    from engine.signing import key_thumbprint, load_public_key

    kid = key_thumbprint(load_public_key(keys / "ci.public.pem"))
    assert f"key id:      {kid}" in r.output  # printed by keys generate
    r = runner.invoke(cli, ["keys", "generate", "--out", str(keys), "--key-id", "ci"])
    assert r.exit_code == 1 and "already exists" in r.output and "Traceback" not in r.output

    out = tmp_path / "dist"
    args = ["bundle", "build", "--policies", str(REPO / "policies"), "--out", str(out), "--allow-dirty", "--sequence", "7"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    (bundle,) = out.glob("*.tar.gz")
    first = bundle.read_bytes()
    assert runner.invoke(cli, args).exit_code == 0
    assert bundle.read_bytes() == first, "rebuilding gives the same bytes"

    r = runner.invoke(cli, ["bundle", "verify", str(bundle), "--key", str(keys)])
    assert r.exit_code == 1 and "missing-signature" in r.output

    r = runner.invoke(cli, ["bundle", "sign", str(bundle), "--key", str(keys / "ci.private.pem"), "--expires-in", "2d"])
    assert r.exit_code == 0, r.output
    assert "sequence 7" in r.output and f"'{kid}'" in r.output
    r = runner.invoke(cli, ["bundle", "verify", str(bundle), "--key", str(keys / "ci.public.pem")])
    assert r.exit_code == 0 and "ok: revision" in r.output and "sequence 7" in r.output
    r = runner.invoke(cli, ["bundle", "verify", str(bundle), "--key", str(keys), "--min-sequence", "8"])
    assert r.exit_code == 1 and "rollback" in r.output

    signed_copy = tmp_path / "copy.tar.gz"
    r = runner.invoke(cli, ["bundle", "sign", str(bundle), "--key", str(keys / "ci.private.pem"), "--out",
                            str(signed_copy), "--sequence", "9"])
    assert r.exit_code == 1 and "contradicts" in r.output  # the manifest says 7
    tampered = bytearray(bundle.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    signed_copy.write_bytes(bytes(tampered))
    r = runner.invoke(cli, ["bundle", "verify", str(signed_copy), "--key", str(keys)])
    assert r.exit_code == 1 and r.output.splitlines()[-1].startswith("error: ") and "Traceback" not in r.output

    r = runner.invoke(cli, ["bundle", "sign", str(bundle), "--key", str(keys / "ci.private.pem"), "--expires-in", "soon"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["serve", "--key", str(keys)])
    assert r.exit_code == 2 and "exactly one of --bundle" in r.output
    r = runner.invoke(cli, ["serve", "--bundle", str(tmp_path / "missing.tar.gz"), "--key", str(keys)])
    assert r.exit_code == 1
    for command in (["keys", "generate"], ["keys", "id"], ["bundle", "build"], ["bundle", "sign"], ["bundle", "verify"], ["serve"]):
        help_text = runner.invoke(cli, [*command, "--help"]).output
        assert "Example:" in help_text and "leadops " in help_text.split("Example:")[1]

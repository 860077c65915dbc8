"""Key ids come from the keys, not from file names (issue 11): keys made by `openssl genpkey` and named
signer.pem / verifier.pem sign and verify; the default kid is the RFC 7638 JWK thumbprint; private keys among
the trusted keys are skipped with a warning; an unknown kid says which kids are trusted and how to fix it;
`bundle sign` warns when the private key would be committed."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cli import cli
from engine.bundle import BundleError, build_bundle
from engine.signing import key_thumbprint, load_public_key, load_trusted_keys, sign_bundle, verify_bundle

FILES = {
    "policies/leadops.yaml": b"kind: policy-set\nname: t\nversion: '1'\n",
    "policies/scoring.yaml": b"kind: scoring\ngroups: []\n",
    "schemas/lead.schema.json": b'{"type": "object"}\n',
}
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def openssl_pair(directory: Path, private: str = "signer.pem", public: str = "verifier.pem") -> tuple[Path, Path]:
    """An Ed25519 key pair made the way the openssl documentation does it, under arbitrary file names."""
    directory.mkdir(parents=True, exist_ok=True)
    priv, pub = directory / private, directory / public
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "ed25519", "-out", str(priv)], check=True, capture_output=True)
    subprocess.run([OPENSSL, "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return priv, pub


def unsigned_bundle(tmp_path: Path) -> Path:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(build_bundle(FILES, "rev-1", policy_version="1", sequence=3))
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_thumbprint_matches_the_rfc_8037_example() -> None:
    """RFC 8037 appendix A.3: the JWK thumbprint of the example Ed25519 public key."""
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert key_thumbprint(Ed25519PublicKey.from_public_bytes(x)) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@needs_openssl
def test_openssl_keys_with_any_names_sign_and_verify(tmp_path: Path) -> None:
    priv, pub = openssl_pair(tmp_path / "k")
    bundle = unsigned_bundle(tmp_path)
    kid = key_thumbprint(load_public_key(pub))
    r = run("bundle", "sign", str(bundle), "--key", str(priv))
    assert r.exit_code == 0, r.output
    assert f"signed with key '{kid}'" in r.output
    r = run("bundle", "verify", str(bundle), "--key", str(pub))
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"{bundle}: ok: revision rev-1") and f"signed by '{kid}'" in r.output
    assert run("keys", "id", str(priv), str(pub)).output.split() == [kid, str(priv), kid, str(pub)]


@needs_openssl
def test_a_single_trusted_key_verifies_its_own_signature_whatever_the_kid(tmp_path: Path) -> None:
    priv, pub = openssl_pair(tmp_path / "k")
    bundle = unsigned_bundle(tmp_path)
    assert run("bundle", "sign", str(bundle), "--key", str(priv), "--key-id", "prod-2026").exit_code == 0
    r = run("bundle", "verify", str(bundle), "--key", str(pub))
    assert r.exit_code == 0 and "signed by 'prod-2026'" in r.output, r.output


@needs_openssl
def test_private_key_in_the_trusted_directory_is_skipped_with_a_warning(tmp_path: Path) -> None:
    priv, pub = openssl_pair(tmp_path / "keys")
    bundle = unsigned_bundle(tmp_path)
    assert run("bundle", "sign", str(bundle), "--key", str(priv)).exit_code == 0
    r = run("bundle", "verify", str(bundle), "--key", str(tmp_path / "keys"))
    assert r.exit_code == 0, r.output
    assert "ok: revision rev-1" in r.stdout and "bad-key" not in r.output
    assert f"warning: {priv}: skipped, this is a private key" in r.stderr
    assert "should not be in a directory of trusted keys" in r.stderr


@needs_openssl
def test_a_private_key_given_as_the_trusted_key_says_how_to_get_its_public_key(tmp_path: Path) -> None:
    priv, _ = openssl_pair(tmp_path / "k")
    with pytest.raises(BundleError) as exc:
        load_trusted_keys(priv)
    assert exc.value.code == "bad-key" and "is a private key" in exc.value.reason and "-pubout" in exc.value.reason


@needs_openssl
def test_unknown_kid_lists_the_trusted_kids_and_the_fix(tmp_path: Path) -> None:
    priv, pub = openssl_pair(tmp_path / "signer")
    _, old = openssl_pair(tmp_path / "trusted", "a.pem", "old.pem")
    _, new = openssl_pair(tmp_path / "trusted2", "b.pem", "new.pem")
    trusted = tmp_path / "dir"
    trusted.mkdir()
    shutil.copy(old, trusted / "old.pem")
    shutil.copy(new, trusted / "new.pem")
    signed = sign_bundle(build_bundle(FILES, "rev-1", policy_version="1"), priv, None, 1)
    with pytest.raises(BundleError) as exc:
        verify_bundle(signed, trusted)
    reason = exc.value.reason
    assert exc.value.code == "unknown-key"
    assert f"signed with key '{key_thumbprint(load_public_key(pub))}', which is not trusted" in reason
    for path, name in ((old, "old"), (new, "new")):
        assert f"{key_thumbprint(load_public_key(path))} (also '{name}')" in reason
    assert "leadops keys id" in reason and "re-sign" in reason
    # a single trusted key that did not make the signature is unknown too (never "verified")
    with pytest.raises(BundleError) as exc:
        verify_bundle(signed, old)
    assert exc.value.code == "unknown-key"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


@needs_openssl
@pytest.mark.parametrize(("ignore", "warned"), [(None, True), ("keys/\n", False), ("*.private.pem\n", True)])
def test_sign_warns_when_the_private_key_would_be_committed(tmp_path: Path, ignore: str | None, warned: bool) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    if ignore:
        (repo / ".gitignore").write_text(ignore)
    priv, _ = openssl_pair(repo / "keys")  # signer.pem: not matched by *.private.pem
    bundle = unsigned_bundle(tmp_path)
    r = run("bundle", "sign", str(bundle), "--key", str(priv))
    assert r.exit_code == 0, r.output
    assert ("warning: the private key" in r.stderr and "not git-ignored" in r.stderr) is warned, r.stderr


@needs_openssl
def test_sign_warns_when_the_private_key_is_committed_and_not_outside_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    priv, _ = openssl_pair(repo / "keys")
    git(repo, "init", "-q")
    git(repo, "add", "keys/signer.pem")
    bundle = unsigned_bundle(tmp_path)
    assert "is committed to the git repository" in run("bundle", "sign", str(bundle), "--key", str(priv)).stderr
    outside, _ = openssl_pair(tmp_path / "outside")
    assert run("bundle", "sign", str(bundle), "--key", str(outside)).stderr == ""

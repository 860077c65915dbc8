"""Real Spark in local mode for tests/spark: one session for the whole run (local[2], 2 shuffle partitions, no UI),
a signing key and a signed bundle of the repository's policies."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.bundle import build_bundle
from engine.signing import generate_keypair, sign_bundle

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-23T09:00:00+10:00"


@pytest.fixture(scope="session")
def spark():
    from engine.spark import local_session

    session = local_session("local[2]", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_keys(tmp_path_factory):
    return generate_keypair(tmp_path_factory.mktemp("spark-keys"), "spark-ci")


@pytest.fixture(scope="session")
def repo_policies():
    """The repository's policy set, loaded as `leadops eval --policies policies` loads it (same revision)."""
    return engine.load_policies(REPO / "policies")


@pytest.fixture(scope="session")
def signed_bundle(tmp_path_factory, spark_keys, repo_policies) -> Path:
    data = build_bundle(repo_policies.source_files, repo_policies.revision, policy_version="test")
    path = tmp_path_factory.mktemp("spark-bundle") / "leadops.tar.gz"
    path.write_bytes(sign_bundle(data, spark_keys.private_path, spark_keys.key_id))
    return path

"""leadops: lifecycle stages, scoring, routing and SLAs as reviewed, tested, signed policy.

Public API (everything else is internal):

    ps = load_policies("policies")                  # or load_policy_files(files, root, revision)
    decision = ps.evaluate(lead, now, explain=True)
    decision.to_dict()
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engine.decision import Decision
from engine.errors import Diagnostic, EvaluationError, ExpressionError, LeadError, LeadopsError, Location, PolicyError
from engine.policyset import PolicySet

__version__ = "0.1.0"
ENGINE_VERSION = __version__


def load_policy_files(files: Mapping[str, bytes], root: str = "policies", revision: str | None = None) -> PolicySet:
    """Validate and compile a policy set from an in-memory mapping of repo-relative paths to bytes."""
    return PolicySet.from_files(files, root, revision)


def load_policies(path: str | Path = "policies", revision: str | None = None) -> PolicySet:
    """Validate and compile the policy set in a directory (raises PolicyError listing every problem)."""
    from engine.sources import read_directory

    files, root = read_directory(path)
    if revision is None:  # inside a git work tree: the commit SHA, "+dirty…" when policy files are uncommitted
        from engine.gitops import worktree_revision  # lazy: gitpython is imported only inside a git work tree

        revision = worktree_revision(path, files)
    return PolicySet.from_files(files, root, revision)


__all__ = [
    "Decision", "Diagnostic", "EvaluationError", "ExpressionError", "LeadError", "LeadopsError", "Location",
    "PolicyError", "PolicySet", "load_policies", "load_policy_files", "ENGINE_VERSION",
]

"""Policy sets at any git revision, read straight from git's objects (no checkout, working tree untouched).

Every source builds the same `files` mapping as `engine.sources.read_directory` (repo-relative posix paths,
keyed relative to the parent of the policy directory, plus the lead schema the policy set names) and goes
through `engine.load_policy_files`. Revisions:

* a commit                          -> its 40-hex SHA
* a working tree equal to HEAD      -> HEAD's SHA
* a working tree with uncommitted policy or lead-schema changes
                                    -> ``<HEAD sha>+dirty.<content hash>`` (the same form `leadops bundle build`
                                       records, so two different dirty states never share a revision)
* a directory outside git           -> None here; the loader falls back to the content hash ``sha256:…``

gitpython is imported lazily: loading a plain directory outside any git work tree never imports it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import Diagnostic, Location, PolicyError
from engine.sources import MAX_POLICY_FILES, lead_schema_key

if TYPE_CHECKING:  # pragma: no cover
    import git

    from engine.policyset import PolicySet

POLICY_SUFFIXES = (".yaml", ".yml")


def _error(code: str, message: str, where: str, hint: str) -> PolicyError:
    return PolicyError([Diagnostic(code, message, Location(where), hint)])


# --------------------------------------------------------------------------------------------- repository


def _inside_git(path: Path) -> bool:
    """Cheap check (no gitpython import): is there a .git entry in `path` or one of its parents?"""
    if os.environ.get("GIT_DIR"):
        return True
    for p in (path, *path.parents):
        if (p / ".git").exists():
            return True
    return False


def exposure_in_git(path: str | os.PathLike[str]) -> str | None:
    """Why a secret file would reach git: "is committed" / "is not git-ignored", or None (outside any work
    tree, or ignored). Used to warn before a private key gets pushed with the policies."""
    import subprocess

    file = Path(path).absolute()
    if not _inside_git(file.parent):
        return None

    def git(*args: str) -> int:
        try:
            return subprocess.run(["git", "-C", str(file.parent), *args], capture_output=True, check=False,
                                  timeout=30).returncode
        except (OSError, subprocess.SubprocessError):
            return -1

    if git("rev-parse", "--is-inside-work-tree") != 0:
        return None
    if git("ls-files", "--error-unmatch", "--", file.name) == 0:
        return "is committed to the git repository"
    if git("check-ignore", "-q", "--", file.name) == 1:  # 0 ignored, 1 not ignored, 128 error
        return "is inside a git work tree and not git-ignored"
    return None


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path if path.is_dir() else path.parent


def open_repo(path: str | os.PathLike[str] = ".") -> "git.Repo":
    """The git repository holding `path` (or its nearest existing ancestor); PolicyError outside git."""
    start = _existing_ancestor(Path(path))
    if not _inside_git(start):
        raise _error("GIT001", f"'{path}' is not inside a git repository", str(path),
                     "run the command inside a git clone, or pass a plain policy directory")
    import git

    try:
        return git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError) as exc:
        raise _error("GIT001", f"'{path}' is not inside a usable git repository ({type(exc).__name__})", str(path),
                     "run the command inside a git clone, or pass a plain policy directory") from None


def resolve_commit(repo: "git.Repo", rev: str) -> "git.Commit":
    """A commit from any revision git understands (SHA, branch, tag, origin/main, HEAD~2 …)."""
    import git
    from gitdb.exc import BadName, BadObject

    try:
        obj = repo.rev_parse(rev)
        while isinstance(obj, git.TagObject):
            obj = obj.object
        if not isinstance(obj, git.Commit):
            raise ValueError(f"it names a {obj.type}, not a commit")
        return obj
    except (BadName, BadObject, ValueError, git.GitCommandError, IndexError) as exc:
        detail = str(exc) if isinstance(exc, ValueError) and "not a commit" in str(exc) else "unknown revision"
        raise _error("GIT002", f"cannot resolve git revision '{rev}': {detail}", rev,
                     "use a commit SHA, a branch (main, origin/main), a tag or HEAD~N; in CI fetch enough "
                     "history (actions/checkout with fetch-depth: 0)") from None


def repo_relative(repo: "git.Repo", path: str | os.PathLike[str]) -> str:
    """`path` (relative to the current directory, or absolute) as a posix path inside the repository."""
    top = Path(repo.working_tree_dir or ".").resolve()
    target = Path(os.path.abspath(path))
    try:
        # resolve symlinks in the part that exists, keep the rest as written
        anc = _existing_ancestor(target)
        rest = target.relative_to(anc.absolute()) if target != anc else Path()
        rel = (anc.resolve() / rest).relative_to(top)
    except ValueError:
        raise _error("GIT003", f"'{path}' is outside the git repository at {top}", str(path),
                     "pass a policy directory inside the repository") from None
    text = rel.as_posix()
    return "" if text == "." else text


# --------------------------------------------------------------------------------------------- read objects


def _tree_at(commit: "git.Commit", path: str) -> Any:
    tree = commit.tree
    if not path:
        return tree
    try:
        return tree / path
    except KeyError:
        return None


def _blob_bytes(commit: "git.Commit", path: str) -> bytes | None:
    try:
        obj = commit.tree / path
    except KeyError:
        return None
    if obj.type != "blob" or obj.mode == 0o120000:  # symlinks are not followed inside git objects
        return None
    return obj.data_stream.read()


def read_revision(repo: "git.Repo", commit: "git.Commit", policy_dir: str) -> tuple[dict[str, bytes], str]:
    """The files mapping of `policy_dir` (repo-relative posix path) at `commit`, exactly as read_directory builds it."""
    policy_dir = posixpath.normpath(policy_dir) if policy_dir else ""
    if policy_dir in ("", "."):
        policy_dir = ""
    tree = _tree_at(commit, policy_dir)
    shown = policy_dir or "."
    if tree is None or tree.type != "tree":
        raise _error("POL001", f"policy directory '{shown}' does not exist at {commit.hexsha[:12]}", shown,
                     "pass --policies REV:DIR with the directory (relative to the repository root) holding "
                     "stages.yaml … at that revision")
    root = posixpath.basename(policy_dir) if policy_dir else posixpath.basename(repo.working_tree_dir or "policies")
    files: dict[str, bytes] = {}
    blobs = sorted((b for b in tree.blobs if b.name.endswith(POLICY_SUFFIXES) and b.mode != 0o120000),
                   key=lambda b: b.name)
    for blob in blobs[:MAX_POLICY_FILES]:
        files[f"{root}/{blob.name}"] = blob.data_stream.read()
    problems: list[Diagnostic] = []
    schema_key = lead_schema_key(files, root, problems)
    in_repo = in_repo_path(policy_dir, root, schema_key) if schema_key is not None else None
    if in_repo is not None:
        data = _blob_bytes(commit, in_repo)
        if data is not None:
            files[schema_key] = data
    if problems:
        raise PolicyError(problems)
    return files, root


def in_repo_path(policy_dir: str, root: str, key: str) -> str | None:
    """A `files` key (relative to the policy directory's parent) as a repo-relative path; None if outside."""
    path = posixpath.normpath(posixpath.join(policy_dir or ".", posixpath.relpath(key, root)))
    return None if path.startswith("../") or path == ".." else path


@dataclass(frozen=True)
class PolicySource:
    """Where a policy set came from: a commit (`commit` set, `dirty` False) or a working directory."""

    files: dict[str, bytes]
    root: str
    revision: str | None
    repo_dir: str | None  # repo-relative policy directory ("" = repository root); None outside git
    commit: str | None
    dirty: bool
    label: str  # what to show people: "main (3f2a1b4c)", "working tree (3f2a1b4c+dirty…)"


def source_at_revision(rev: str, policy_dir: str = "policies", repo: "git.Repo | None" = None) -> PolicySource:
    """The policy files at git revision `rev`; `policy_dir` is a path from the current directory."""
    repo = repo or open_repo(policy_dir)
    commit = resolve_commit(repo, rev)
    rel = repo_relative(repo, policy_dir)
    files, root = read_revision(repo, commit, rel)
    label = rev if rev.lower().startswith(commit.hexsha[:7]) else f"{rev} ({commit.hexsha[:8]})"
    return PolicySource(files, root, commit.hexsha, rel, commit.hexsha, False, label)


def load_at_revision(rev: str, policy_dir: str = "policies") -> "PolicySet":
    """Validate and compile the policy set at git revision `rev` (raises PolicyError)."""
    import engine

    src = source_at_revision(rev, policy_dir)
    return engine.load_policy_files(src.files, src.root, revision=src.revision)


# --------------------------------------------------------------------------------------------- working tree


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object id


def worktree_state(directory: str | os.PathLike[str], files: dict[str, bytes]) -> tuple[str, str, bool, str] | None:
    """(HEAD sha, repo-relative policy dir, dirty, revision) of a policy directory on disk; None outside git.

    Dirty means the bytes in `files` (policy YAML and lead schema) differ from HEAD's, or a policy file that
    HEAD has is missing on disk. Compared by git object id, so HEAD's blobs are never read.
    """
    path = Path(directory)
    if not _inside_git(path.resolve()):
        return None
    try:
        import git
    except ImportError:  # pragma: no cover - gitpython is a dependency
        return None
    try:
        repo = git.Repo(path.resolve(), search_parent_directories=True)
        if repo.bare or repo.head.is_valid() is False:
            return None
        commit = repo.head.commit
        rel = repo_relative(repo, path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError, PolicyError):
        return None
    root = path.resolve().name
    dirty = False
    try:
        for key, data in files.items():
            in_repo = in_repo_path(rel, root, key)
            try:
                if in_repo is None:
                    raise KeyError(key)
                obj = commit.tree / in_repo
            except KeyError:
                dirty = True
                break
            if obj.type != "blob" or obj.hexsha != _git_blob_sha(data):
                dirty = True
                break
        if not dirty:
            tree = _tree_at(commit, rel)
            if tree is None or tree.type != "tree":
                dirty = True
            else:
                committed = {f"{root}/{b.name}" for b in tree.blobs if b.name.endswith(POLICY_SUFFIXES)}
                dirty = not committed <= set(files)
    except (git.GitCommandError, ValueError):  # pragma: no cover - unreadable objects
        return None
    sha = commit.hexsha
    if dirty:
        from engine.policyset import content_revision

        return sha, rel, True, f"{sha}+dirty.{content_revision(files).split(':', 1)[1][:12]}"
    return sha, rel, False, sha


def worktree_revision(directory: str | os.PathLike[str], files: dict[str, bytes]) -> str | None:
    """The revision to record for a policy directory on disk: HEAD sha, `<sha>+dirty.<hash>`, or None outside git."""
    state = worktree_state(directory, files)
    return state[3] if state else None


def source_from_directory(directory: str = "policies") -> PolicySource:
    from engine.sources import read_directory

    files, root = read_directory(directory)
    state = worktree_state(directory, files)
    if state is None:
        return PolicySource(files, root, None, None, None, False, f"{directory} (not in git)")
    sha, rel, dirty, revision = state
    label = f"working tree ({sha[:8]}{' + uncommitted changes' if dirty else ''})"
    return PolicySource(files, root, revision, rel, sha, dirty, label)


# --------------------------------------------------------------------------------------------- addressing


def split_spec(spec: str | None, rev: str | None) -> tuple[str | None, str]:
    """(revision or None for the working tree, policy directory) from `--policies [REV:]DIR` and `--rev REV`."""
    spec = spec or "policies"
    if rev is None and ":" in spec and not Path(spec).is_dir():
        rev_part, _, dir_part = spec.partition(":")
        if not rev_part:
            raise _error("GIT002", f"'{spec}' names no revision before ':'", spec,
                         "write REV:DIR, e.g. main:policies or HEAD~1:policies")
        return rev_part, dir_part or "policies"
    return rev, spec


def open_source(spec: str | None, rev: str | None = None) -> PolicySource:
    revision, directory = split_spec(spec, rev)
    if revision is None:
        return source_from_directory(directory)
    return source_at_revision(revision, directory)


def open_policy_source(spec: str | None, rev: str | None = None) -> "PolicySet":
    """The one resolver behind every `--policies`/`--rev`: "DIR" (working tree, git revision detected),
    "REV:DIR" or DIR with `rev` (from git objects). Raises PolicyError with located diagnostics."""
    import engine

    revision, directory = split_spec(spec, rev)
    if revision is None:
        return engine.load_policies(directory)
    src = source_at_revision(revision, directory)
    return engine.load_policy_files(src.files, src.root, revision=src.revision)


def load_source(src: PolicySource) -> "PolicySet":
    import engine

    return engine.load_policy_files(src.files, src.root, revision=src.revision)


def changed_paths(repo: "git.Repo", base: str, head: str | None, paths: list[str]) -> list[tuple[str, str, str]]:
    """[(status, old path, new path)] between two commits (head None = working tree) under `paths`, with renames."""
    base_commit = resolve_commit(repo, base)
    args = ["--name-status", "-M", "--no-color", base_commit.hexsha]
    if head is not None:
        args.append(resolve_commit(repo, head).hexsha)
    out = repo.git.diff(*args, "--", *(paths or ["."]))
    result = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            result.append((parts[0][0], parts[1], parts[2]))
        elif len(parts) == 2:
            result.append((parts[0][0], parts[1], parts[1]))
    return result

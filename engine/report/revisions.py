"""Which policy revision was in force when: the git history of the policy directory (or one forced revision).

A lead is judged by the revision in force at its clock start, so a change mid-quarter does not rewrite last
month's attainment (Salesforce keeps a case on the entitlement process version it started with; the same idea).
In force at T = the newest first-parent commit of HEAD that changed the policy directory or its lead schema and
was committed at or before T. A clock that started before the first such commit is judged by the first one
(nothing older exists). Uncommitted changes are never in force: they have no time. Outside git, or with
`--rev` / REV:DIR, one policy set judges every lead. Revisions load lazily, once each.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from engine.errors import PolicyError
from engine.gitops import (PolicySource, in_repo_path, load_source, open_repo, open_source, source_at_revision,
                           split_spec)
from engine.policyset import PolicySet


@dataclass(frozen=True)
class Commit:
    """A commit of the policy history, read from git only when a clock that started in its time needs it."""

    sha: str
    directory: str

    @property
    def revision(self) -> str:
        return self.sha

    @property
    def label(self) -> str:
        return self.sha[:12]

    def source(self) -> PolicySource:
        return source_at_revision(self.sha, self.directory)


class PolicyTimeline:
    """Policy sets by the time they came into force; `at(instant)` is the one that judges a clock started then."""

    def __init__(self, points: list[tuple[float, PolicySource | Commit]], note: str = ""):
        self.times = [t for t, _ in points]
        self.sources = [s for _, s in points]
        self.note = note
        self._loaded: dict[int, PolicySet] = {}
        self.broken: dict[int, PolicyError] = {}

    def __getstate__(self) -> dict[str, Any]:  # workers rebuild policy sets from the files, never from pickles
        state = dict(self.__dict__)
        state["_loaded"], state["broken"] = {}, {}
        return state

    @classmethod
    def open(cls, spec: str | None, rev: str | None = None) -> "PolicyTimeline":
        """The timeline for `--policies DIR|REV:DIR` and `--rev` (raises PolicyError)."""
        revision, directory = split_spec(spec, rev)
        if revision is not None:
            return cls([(0.0, source_at_revision(revision, directory))], f"revision {revision} judges every lead")
        current = open_source(directory)
        if current.commit is None:
            return cls([(0.0, current)], f"{directory} is not in git: one policy set judges every lead")
        points = _history(directory, current)
        note = "" if not current.dirty else (f"uncommitted changes in {directory} are not in force at any time; "
                                             "commit them, or pass --rev to judge by one revision")
        return cls(points or [(0.0, current)], note)

    @property
    def latest(self) -> PolicySet:
        return self.at(None)

    def load(self, index: int) -> PolicySet | None:
        """The policy set of revision `index`, or None when it does not load (it could never have been deployed)."""
        if index in self.broken:
            return None
        ps = self._loaded.get(index)
        if ps is None:
            try:
                src = self.sources[index]
                ps = self._loaded[index] = load_source(src.source() if isinstance(src, Commit) else src)
            except PolicyError as exc:
                self.broken[index] = exc
                return None
        return ps

    def at(self, instant: datetime | None) -> PolicySet:
        """The revision in force at `instant` (None: the newest); a revision that does not load is skipped, so
        the one before it stays in force (or the first that loads, before the history). Raises PolicyError when
        no revision loads."""
        last = len(self.sources) - 1
        if last == 0 and 0 in self._loaded:  # one revision judges every lead: the common, hot case
            return self._loaded[0]
        index = last if instant is None else max(0, bisect_right(self.times, instant.timestamp()) - 1)
        for candidate in (*range(index, -1, -1), *range(index + 1, last + 1)):
            ps = self.load(candidate)
            if ps is not None:
                return ps
        raise self.broken[last]

    def notes(self) -> list[str]:
        out = [self.note] if self.note else []
        for index in sorted(self.broken):
            src = self.sources[index]
            out.append(f"policy revision {src.label} does not load ({self.broken[index].diagnostics[0].code}: "
                       f"{self.broken[index].diagnostics[0].message}); the revision before it stays in force")
        return out

    def describe(self) -> list[dict[str, Any]]:
        """Every revision with the time it came into force (None: forced or outside git)."""
        out = []
        for t, src in zip(self.times, self.sources):
            out.append({"revision": src.revision or "", "label": src.label,
                        "in_force_from": datetime.fromtimestamp(t, timezone.utc).isoformat() if t else None})
        return out


def _history(directory: str, current: PolicySource) -> list[tuple[float, PolicySource | Commit]]:
    """(commit time, source) for each first-parent commit of HEAD that changed the policy files, oldest first."""
    repo = open_repo(directory)
    rel = current.repo_dir or ""
    paths = [rel or "."]
    root = next(iter(current.files)).split("/", 1)[0] if current.files else ""
    for key in current.files:
        if not key.startswith(root + "/"):
            in_repo = in_repo_path(rel, root, key)
            if in_repo is not None:
                paths.append(in_repo)
    log = repo.git.log("--first-parent", "--format=%H %ct", "HEAD", "--", *paths)
    points: list[tuple[float, PolicySource | Commit]] = []
    for line in reversed(log.splitlines()):
        sha, _, stamp = line.partition(" ")
        points.append((float(stamp), Commit(sha, directory)))
    return points
